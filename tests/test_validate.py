"""Time model against the public measured runs (issue: step time, MFU and `planner validate`).

The calibration in hardware_profiles/calibration/ was fitted by `planner fit-time --write` on the same public set;
these tests gate its accuracy so it can only get better, check that a source held out of the fit is predicted
about as well as in-sample, and check the breakdown and the FLOP conventions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.core.flops import megatron_eq3_flops
from planner.core.efficiency import TimeParams
from planner.calibrate.measured import load_runs
from planner.registry import load_hardware, load_model
from planner.calibrate.validate import modelable, predict, validate

# In-sample fit quality (the calibration is fitted on these runs, so this is not an accuracy: the cross-validated
# figures and their gates are in tests/test_accuracy.py). The median gate is issue 15's: no worse than the 5.0%
# (4.98) `planner validate` printed before the microbenchmark-grounded model; the p90 one guards against a broken fit.
GATE_MEDIAN_ABS_PCT = 5.0  # measured 4.74
GATE_P90_ABS_PCT = 20.0  # measured 12.3


@pytest.fixture(scope="module")
def report():
    return validate()


def test_public_set_median_gate(report):
    s = report["summary"]
    assert s["n"] >= 230
    assert s["median_abs_pct_error"] <= GATE_MEDIAN_ABS_PCT
    assert s["p90_abs_pct_error"] <= GATE_P90_ABS_PCT


def test_every_run_is_predicted_or_listed_with_a_reason(report):
    runs, skipped = load_runs()
    assert len(report["runs"]) + len(report["skipped"]) == len(runs) + len(skipped)
    assert all(s["reason"] for s in report["skipped"])


def test_report_keys_for_json_consumers(report):
    assert {"runs", "summary"} <= set(report)
    assert {"median_abs_pct_error", "p90_abs_pct_error", "n"} <= set(report["summary"])
    row = report["runs"][0]
    assert {"measured_tokens_per_s_per_gpu", "predicted_tokens_per_s_per_gpu", "error_pct"} <= set(row)


def test_gpt3_175b_1024_a100_narayanan():
    """Narayanan et al. 2021 §5.1: GPT-3 175B on 1024 A100s with batch 1536 reached 140 TFLOP/s per GPU in their
    Eq. 3 counting (tp 8 x pp 16, full recomputation). The prediction in that counting (138 when gated) must stay
    within 5%, and the breakdown must sum."""
    from planner.core.estimate import estimate
    from planner.specs.plan import Plan
    from planner.specs import LayoutSpec, RunSpec

    model = load_model("gpt3-175b")
    run = RunSpec(seq_len=2048, global_batch_seqs=1536, micro_batch=1, precision="fp16")
    layout = LayoutSpec(gpus=1024, tp=8, pp=16, recompute="full", flash_attention=False)
    est = estimate(Plan(model=model, run=run, layout=layout, hardware=load_hardware("a100-80gb")))
    d = est.to_dict()
    eq3_tflops = megatron_eq3_flops(1536, 2048, 96, 12288, model.vocab_size) / d["step_time_s"] / 1024 / 1e12
    assert eq3_tflops == pytest.approx(140, rel=0.05)
    parts = sum(v for k, v in d.items() if k.startswith("time_") and k.endswith("_s"))
    assert parts == pytest.approx(d["step_time_s"], rel=1e-12)


def test_time_breakdown_sums_and_mfu_definitions():
    r = next(r for r in modelable(load_runs()[0])[0] if r.source_key == "nemo")
    p = predict(r)
    assert sum(p.breakdown.values()) == pytest.approx(p.step_time_s, rel=1e-12)
    assert 0 < p.mfu < 1


def test_fitted_parameters_have_provenance():
    hw = load_hardware("h100-sxm")
    for name in TimeParams.FITTED:
        if name in hw.efficiency:
            assert "planner fit-time" in hw.efficiency[name].source
    assert "gemm_half_dim" in hw.efficiency


def test_published_runs_fit_in_predicted_memory(report):
    """Every public run ran, so the memory model should say it fits. Measured when gated: 5 of 236 do not (4
    llm-foundry 350M rows 1-2% over 40 GiB, Nemotron-340B 3% over)."""
    assert len(report["memory_check"]["ran_but_predicted_oom"]) <= 5


def test_validate_cli_on_a_custom_runs_file(tmp_path, capsys):
    """`planner validate --runs FILE` takes any file of the same schema and reports JSON with runs and summary."""
    import json

    import yaml

    from planner.cli import main

    src = yaml.safe_load((Path(__file__).parent.parent / "planner" / "data" / "measured_runs.yaml").read_text())
    keep = [r for r in src["runs"] if r["id"].startswith(("ptdp_t1_", "nemo2407_pretrain_LLAMA2"))]
    src["runs"], src["count"] = keep, len(keep)
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(src, sort_keys=False))
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--runs", str(path), "--format", "json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["n"] == len(keep)
    assert {r["source"] for r in out["runs"]} == {"megatron-ptdp", "nemo"}
    assert all(abs(r["error_pct"]) < 40 for r in out["runs"])


def test_memory_compared_where_a_source_measured_it(tmp_path):
    """Rows with measured.memory_gb get a memory error, summarised under memory_check."""
    import yaml

    src = yaml.safe_load((Path(__file__).parent.parent / "planner" / "data" / "measured_runs.yaml").read_text())
    run = next(r for r in src["runs"] if r["id"].startswith("torchtitan_a100_Llama_3_8B"))
    run["measured"]["memory_gb"] = 60.0
    src["runs"], src["count"] = [run], 1
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(src, sort_keys=False))
    rep = validate(path)
    row = rep["runs"][0]
    assert row["measured_memory_bytes"] == 60e9
    assert row["memory_error_pct"] == pytest.approx(100 * (row["predicted_memory_bytes"] / 60e9 - 1))
    assert rep["memory_check"]["measured_n"] == 1
