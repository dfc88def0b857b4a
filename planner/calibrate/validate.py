"""Predictions against published measured runs, compared like with like (tokens/s per GPU).

Each run of a measured-runs file (``planner.calibrate.measured``) is predicted from its model, run, layout and hardware
alone; the source's TFLOP/s or MFU were already converted to tokens/s per GPU with the source's own FLOP formula,
so no FLOP convention enters the comparison. Runs the model cannot represent are listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..core.efficiency import TimeParams
from ..core.estimate import evaluate
from ..core.layout import exec_from_spec
from ..registry import load_hardware
from ..specs.plan import Plan
from .measured import MeasuredRun, SkippedRun, load_runs


@dataclass(frozen=True)
class Prediction:
    run: MeasuredRun
    tokens_per_s_per_gpu: float
    step_time_s: float
    mfu: float
    memory_bytes: float
    capacity_bytes: float
    breakdown: dict

    @property
    def error(self) -> Optional[float]:
        """Signed relative error of predicted vs measured tokens/s per GPU (+0.1 = predicted 10% faster)."""
        m = self.run.measured_tokens_per_s_per_gpu
        return None if not m else self.tokens_per_s_per_gpu / m - 1.0


def plan_of(run: MeasuredRun) -> Plan:
    return Plan(model=run.model, run=run.run, layout=run.layout, hardware=load_hardware(run.hardware), name=run.id)


def predict(run: MeasuredRun, params: Optional[TimeParams] = None, plan: Optional[Plan] = None) -> Prediction:
    """Predict one measured run; ``params`` overrides the profile's calibrated time parameters."""
    plan = plan or plan_of(run)
    ev = evaluate(plan, exec_from_spec(plan.layout, plan.run), params)
    th, mem = ev.throughput, ev.memory
    return Prediction(run=run, tokens_per_s_per_gpu=float(th.tokens_per_s_per_gpu), step_time_s=float(th.step_time_s),
                      mfu=float(th.mfu), memory_bytes=float(mem.total_bytes), capacity_bytes=mem.capacity_bytes,
                      breakdown={k: float(v) for k, v in ev.time.parts().items()})


def modelable(runs: Iterable[MeasuredRun]) -> tuple[list[MeasuredRun], list[SkippedRun]]:
    """Split loaded runs into those with a throughput and a global batch, and the rest with a reason."""
    ok, skipped = [], []
    for r in runs:
        if r.measured_tokens_per_s_per_gpu is None:
            skipped.append(SkippedRun(r.id, r.source_key, "no throughput measured (tokens/s, step time, TFLOP/s or MFU)"))
        elif r.run.batch_seqs is None:
            skipped.append(SkippedRun(r.id, r.source_key, "run.global_batch not given: the pipeline bubble and "
                                      "accumulation cannot be modelled"))
        else:
            ok.append(r)
    return ok, skipped


def summary(errors: Iterable[float]) -> dict:
    """Median, 90th percentile and worst absolute percentage error, and the count."""
    e = np.abs(np.asarray(list(errors), dtype=float)) * 100.0
    if e.size == 0:
        return {"n": 0, "median_abs_pct_error": None, "p90_abs_pct_error": None, "max_abs_pct_error": None,
                "mean_signed_pct_error": None}
    return {"n": int(e.size), "median_abs_pct_error": float(np.median(e)),
            "p90_abs_pct_error": float(np.percentile(e, 90)), "max_abs_pct_error": float(e.max())}


def validate(path=None) -> dict:
    """Predict every run of a measured-runs file; the report holds per-run rows, summaries and skipped runs."""
    runs, skipped = load_runs(path)
    usable, not_modelled = modelable(runs)
    preds = [predict(r) for r in usable]
    rows = []
    for p in preds:
        r = p.run
        rows.append({
            "id": r.id, "source": r.source_key, "hardware": r.hardware, "gpus": r.gpus, "model": r.model.name,
            "measured_tokens_per_s_per_gpu": r.measured_tokens_per_s_per_gpu,
            "predicted_tokens_per_s_per_gpu": p.tokens_per_s_per_gpu,
            "error_pct": 100.0 * p.error,
            "predicted_mfu": p.mfu,
            "measured_memory_bytes": r.measured_memory_bytes,
            "predicted_memory_bytes": p.memory_bytes,
            "memory_error_pct": (100.0 * (p.memory_bytes / r.measured_memory_bytes - 1.0)
                                 if r.measured_memory_bytes else None),
            "predicted_fits": p.memory_bytes <= p.capacity_bytes,
        })
    by_source: dict[str, list[float]] = {}
    by_hw: dict[str, list[float]] = {}
    for p in preds:
        by_source.setdefault(p.run.source_key, []).append(p.error)
        by_hw.setdefault(p.run.hardware, []).append(p.error)
    overall = summary(p.error for p in preds)
    overall["mean_signed_pct_error"] = float(np.mean([100 * p.error for p in preds])) if preds else None
    return {
        "runs": rows,
        "summary": overall,
        "by_source": {k: summary(v) for k, v in sorted(by_source.items())},
        "by_hardware": {k: summary(v) for k, v in sorted(by_hw.items())},
        "skipped": [{"id": s.id, "source": s.source_key, "reason": s.reason} for s in skipped + not_modelled],
        # Every published run ran, so each one predicted not to fit is a memory-model miss (none measured memory
        # directly in the public set; where a source does, measured_memory_bytes is compared row by row).
        "memory_check": {
            "runs": len(rows),
            "ran_but_predicted_oom": [r["id"] for r in rows if not r["predicted_fits"]],
            **{f"measured_{k}": v for k, v in summary(
                r["predicted_memory_bytes"] / r["measured_memory_bytes"] - 1.0
                for r in rows if r["measured_memory_bytes"]).items()},
        },
    }
