"""Error bands and extrapolation flags on every answer (issue 16 items 4-5; planner/core/accuracy.py)."""

from __future__ import annotations

import numpy as np
import pytest

import planner
from planner.core.estimate import estimate
from planner.search import Constraints, search


def _d(hardware="h100-sxm", gpus=64, seq=4096, model="llama-3-8b", **layout):
    p = planner.make_plan(model=model, hardware=hardware,
                          run={"seq_len": seq, "global_batch_seqs": 256, "training_tokens": 1e11},
                          layout={"gpus": gpus, **layout})
    return estimate(p).to_dict()


@pytest.mark.parametrize("key", ["step_time_s", "wall_clock_days", "gpu_hours", "cost_usd", "mfu",
                                 "tokens_per_s_per_gpu"])
def test_every_quantity_sits_inside_its_band(key):
    d = _d()
    assert d[f"{key}_p10"] < d[key] < d[f"{key}_p90"]


def test_band_is_the_cross_validated_error_and_wider_outside_the_region():
    inside = _d(gpus=64, tp=8)  # MFU 0.25 on 64 GPUs: inside what the Hopper runs cover
    outside = _d(gpus=2048, tp=8)  # more GPUs than any validated Hopper run
    assert inside["extrapolation"] == ""
    assert "GPU count beyond the largest validated hopper run" in outside["extrapolation"]
    acc = planner.make_plan(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 4096},
                            layout={"gpus": 8}).hardware.accuracy
    assert inside["step_time_s_p90"] / inside["step_time_s"] == pytest.approx(1 + acc.p90_signed_pct_error / 100)
    assert inside["step_time_s_p10"] / inside["step_time_s"] == pytest.approx(1 + acc.p10_signed_pct_error / 100)
    w_in = inside["step_time_s_p90"] / inside["step_time_s_p10"]
    w_out = outside["step_time_s_p90"] / outside["step_time_s_p10"]
    assert w_out > w_in


def test_borrowed_calibration_is_said():
    d = _d(hardware="b200")
    assert "borrowed calibration" in d["extrapolation"]


def test_sequence_beyond_the_data_is_said():
    d = _d(seq=131072, gpus=64, tp=8, cp=8)
    assert "longer than any validated hopper run" in d["extrapolation"]


def test_search_rows_carry_the_same_bands_and_flags_as_estimate():
    p = planner.make_plan(model="llama-3-8b", hardware="h100-sxm",
                          run={"seq_len": 4096, "global_batch_seqs": 256, "training_tokens": 1e11},
                          layout={"gpus": 64})
    res = search(p, Constraints(gpus=(64, 1024)))
    idx = [int(i) for i in res.ranked(5)] + [int(i) for i in np.flatnonzero(res.column("gpus") == 1024)[:3]]
    for i, row in zip(idx, res.rows(idx)):
        d = estimate(res.plan_of(i)).to_dict()
        for k in ("extrapolation", "step_time_s_p10", "step_time_s_p90", "mfu_p10", "cost_usd_p90"):
            assert row[k] == d[k], (k, row[k], d[k])


def test_pessimistic_ranking_penalises_what_lies_outside_the_region():
    p = planner.make_plan(model="llama-3-8b", hardware="h100-sxm",
                          run={"seq_len": 4096, "global_batch_seqs": 256, "training_tokens": 1e11},
                          layout={"gpus": 64})
    plain = search(p, Constraints(gpus=(64, 1024)), rank_by="time-to-train")
    pess = search(p, Constraints(gpus=(64, 1024)), rank_by="time-to-train-p90")
    factor = pess.metric / plain.metric
    outside = pess.column("gpus") > 512
    # every layout beyond the validated GPU count carries the widened band; inside, those that stay in the region
    # carry the plain one (some 64-GPU layouts leave it too: an MFU above the published record)
    assert (factor >= 1).all() and factor[outside].min() == pytest.approx(factor.max())
    assert factor[~outside].min() < factor[outside].min()


def test_the_fast_end_never_outruns_the_matmul_ceiling():
    """GPT-3 175B, ZeRO-3 on 1,024 A100 (the issue's case, predicted MFU ~0.7): the band's fast end stays at or
    below the A100's measured MAMF (0.869 of peak)."""
    p = planner.make_plan(model="gpt3-175b", hardware="a100-80gb", run={"seq_len": 2048, "global_batch_seqs": 1536},
                          layout={"gpus": 1024, "tp": 4, "zero_stage": 3, "recompute": "none"},)
    d = estimate(p).to_dict()
    assert d["mfu_p90"] <= 0.87 + 1e-9 and d["mfu_p10"] < d["mfu"] <= d["mfu_p90"]


def test_a_shard_group_beyond_the_validated_ones_is_said():
    """Fully sharded runs are validated on Ampere up to 128 GPUs per shard group (llm-foundry) and on Hopper up to
    512; the published DeepSpeed ZeRO-3 runs over 384-2,240 A100 missed by 1.6-4.5x in sample and do not count. A plan past
    the largest validated group says so, a hybrid shard (inside one node) does not, nor does an unsharded plan."""
    acc = planner.make_plan(model="llama-3-8b", hardware="a100-80gb", run={"seq_len": 4096},
                            layout={"gpus": 8}).hardware.accuracy
    assert acc.max_full_shard_gpus == 128
    text = "ZeRO-3/FSDP shard group larger than any validated on ampere (128 GPUs)"
    assert text in _d(hardware="a100-80gb", gpus=256, fsdp="full")["extrapolation"]
    assert text not in _d(hardware="a100-80gb", gpus=128, fsdp="full")["extrapolation"]
    assert text not in _d(hardware="a100-80gb", gpus=256, fsdp="hybrid")["extrapolation"]
    assert text not in _d(hardware="a100-80gb", gpus=256, zero_stage=1)["extrapolation"]
    assert text in _d(hardware="a100-80gb", gpus=256, zero_stage=3)["extrapolation"]


def test_the_validated_shard_group_leaves_out_runs_missed_by_more_than_30_percent():
    from planner.calibrate.bands import full_shard_gpus, validated_region
    from planner.calibrate.measured import load_runs
    from planner.calibrate.validate import modelable

    runs, _ = modelable(load_runs()[0])
    zero3 = [r for r in runs if r.id.startswith("ptdp_t2_ZeRO-3")]
    assert len(zero3) == 6 and {full_shard_gpus(r) for r in zero3} == {384, 640, 768, 1120, 1536, 2240}
    held_out = {r.id: 0.0 for r in runs}
    assert validated_region(runs, held_out)["ampere"]["max_full_shard_gpus"] == 2240  # all within: all count
    held_out.update({r.id: 0.56 for r in zero3})
    assert validated_region(runs, held_out)["ampere"]["max_full_shard_gpus"] == 128
