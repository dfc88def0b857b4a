"""Leave-one-out over the public whole runs: predicted vs published GPU-hours, and the run overhead derived.

    python benchmarks/whole_runs.py

For each finished run of ``planner/data/whole_runs.yaml`` that the planner predicts (``planner.calibrate.whole_runs``:
model preset, hardware profile, tokens, GPU count and the published layout, or the stated assumption where none is
published), the end-to-end run overhead (``ScheduleSpec.run_overhead_fraction``) is derived from every *other*
wall-clock run, and the held-out run's GPU-hours are predicted with it. Runs whose published GPU-hours are tokens /
measured throughput (LLaMA 1's Table 15) are predicted at the steady-state rate and take no part in the derivation.
The summary gives the overhead derived from all runs (what the committed default should be), the committed
default, and the model-free Llama 3.1 405B cross-check. ``tests/test_whole_runs.py`` gates each held-out error at
25%.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.calibrate import whole_runs as wr  # noqa: E402
from planner.specs.schedule import DEFAULT_RUN_OVERHEAD_FRACTION  # noqa: E402


def report() -> str:
    rows = wr.leave_one_out()
    preds = [r.prediction for r in rows]
    errors = [abs(r.error) for r in rows]
    implied = {p.case.run_id: p.implied_overhead() for p in preds if p.case.basis == wr.WALL}
    lines = [
        "Leave-one-out over the public whole runs (GPU-hours; overhead derived from the other wall-clock runs)",
        "",
        wr.loo_table(rows),
        "",
        f"held-out |error|: median {statistics.median(errors):.1%}, max {max(errors):.1%} "
        f"({rows[errors.index(max(errors))].prediction.case.run_id}); bound {wr.LOO_BOUND:.0%} for each: "
        + ("all within" if max(errors) <= wr.LOO_BOUND else "NOT all within"),
        "overhead implied by each wall-clock run: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in implied.items()),
        f"run overhead derived from all of them (median): {wr.derive_overhead(preds):.3f}; "
        f"committed default (ScheduleSpec.run_overhead_fraction): {DEFAULT_RUN_OVERHEAD_FRACTION:.3f}",
        f"model-free check, Llama 3.1 405B: published GPU-hours / (FLOPs at its published steady 400 TFLOP/s per "
        f"GPU) = {wr.llama3_steady_ratio():.3f}",
        "",
        "not predicted: " + "; ".join(f"{k}: {v}" for k, v in wr.NOT_PREDICTED.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
