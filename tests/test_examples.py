"""Every shipped example runs with `planner estimate --format json` and prints the documented keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.cli import main

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
REQUIRED = ("params_total", "params_active", "model_flops_per_token", "hardware_flops_per_step",
            "memory_per_gpu_bytes", "memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes",
            "memory_activations_bytes", "memory_logits_bytes", "memory_overhead_bytes", "fits", "reason",
            "step_time_s", "tokens_per_s_per_gpu", "mfu", "hfu", "wall_clock_days", "gpu_hours", "cost_usd",
            "energy_mwh", "co2_tonnes", "goodput")


def test_there_are_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_estimates(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["estimate", str(path), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert exc.value.code == (0 if out["fits"] else 1)
    assert all(k in out for k in REQUIRED), [k for k in REQUIRED if k not in out]
    assert out["fits"], out["reason"]  # the shipped examples are plans that fit
    parts = sum(v for k, v in out.items() if k.startswith("time_") and k.endswith("_s"))
    assert parts == pytest.approx(out["step_time_s"], rel=1e-12)


def test_estimate_plot_writes_breakdowns(tmp_path, capsys):
    out = tmp_path / "breakdown.svg"
    with pytest.raises(SystemExit) as exc:
        main(["estimate", str(EXAMPLES[0]), "--plot", str(out), "--format", "json"])
    assert exc.value.code in (0, 1)
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "planner plot" in text  # the marker that allows overwriting
    assert "wrote" in capsys.readouterr().err
    # a file planner did not write is not clobbered
    other = tmp_path / "mine.png"
    other.write_bytes(b"my own picture")
    with pytest.raises(SystemExit) as exc:
        main(["estimate", str(EXAMPLES[0]), "--plot", str(other), "--format", "json"])
    assert exc.value.code == 2 and other.read_bytes() == b"my own picture"
