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
from ..core.memory import memory_breakdown
from ..specs.plan import Plan
from .measured import MEMORY_ONLY_PATH, MeasuredRun, SkippedRun, hardware_of, load_runs


@dataclass(frozen=True)
class Prediction:
    run: MeasuredRun
    tokens_per_s_per_gpu: float
    step_time_s: float
    mfu: float
    memory_bytes: float
    capacity_bytes: float
    breakdown: dict
    #: predicted memory comparable to what the source measured (MemoryBreakdown.comparable_bytes of the run's
    #: measured_memory_kind: allocated, reserved or device = memory_bytes); bytes
    memory_comparable_bytes: Optional[float] = None

    @property
    def memory_error(self) -> Optional[float]:
        """Signed relative error of predicted vs measured memory, like with like (None where not measured)."""
        m = self.run.measured_memory_bytes
        return None if not m else self.memory_comparable_bytes / m - 1.0

    @property
    def error(self) -> Optional[float]:
        """Signed relative error of predicted vs measured tokens/s per GPU (+0.1 = predicted 10% faster)."""
        m = self.run.measured_tokens_per_s_per_gpu
        return None if not m else self.tokens_per_s_per_gpu / m - 1.0


def plan_of(run: MeasuredRun) -> Plan:
    return Plan(model=run.model, run=run.run, layout=run.layout, hardware=hardware_of(run), name=run.id)


def predict(run: MeasuredRun, params: Optional[TimeParams] = None, plan: Optional[Plan] = None) -> Prediction:
    """Predict one measured run; ``params`` overrides the profile's calibrated time parameters."""
    plan = plan or plan_of(run)
    ex = exec_from_spec(plan.layout, plan.run)
    ev = evaluate(plan, ex, params)
    th, mem = ev.throughput, ev.memory
    # the loss as the source's own code computed it (MeasuredRun; llm-foundry's MPT brings a fused loss where its
    # framework's default is unfused); torchtitan's unsharded pipelined stage follows from its framework
    mem = memory_breakdown(plan.model, plan.run, ex, plan.hardware, loss=run.loss)
    return Prediction(run=run, tokens_per_s_per_gpu=float(th.tokens_per_s_per_gpu), step_time_s=float(th.step_time_s),
                      mfu=float(th.mfu), memory_bytes=float(mem.total_bytes), capacity_bytes=mem.capacity_bytes,
                      breakdown={k: float(v) for k, v in ev.time.parts().items()},
                      memory_comparable_bytes=float(mem.comparable_bytes(run.measured_memory_kind)))


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
    """Predict every run of a measured-runs file; the report holds per-run rows, summaries and skipped runs. With the
    default file, the memory check also covers the memory-only runs of ``MEMORY_ONLY_PATH``."""
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
            "measured_memory_kind": r.measured_memory_kind if r.measured_memory_bytes else None,
            "predicted_memory_bytes": p.memory_comparable_bytes if r.measured_memory_bytes else p.memory_bytes,
            "memory_error_pct": 100.0 * p.memory_error if r.measured_memory_bytes else None,
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
        "memory_check": memory_check(rows, memory_only_rows(runs + (load_runs(MEMORY_ONLY_PATH)[0] if path is None
                                                                    else []))),
    }


def memory_only_rows(runs: Iterable[MeasuredRun]) -> list[dict]:
    """Rows of the runs that measured memory but no throughput (or no global batch): memory is predicted for them
    too (the pipeline in-flight count needs the global batch; without one a single micro-batch is assumed)."""
    out = []
    for r in runs:
        if not r.measured_memory_bytes or (r.measured_tokens_per_s_per_gpu is not None and
                                           r.run.batch_seqs is not None):
            continue
        p = predict(r)
        out.append({"id": r.id, "source": r.source_key, "hardware": r.hardware, "gpus": r.gpus, "model": r.model.name,
                    "measured_memory_bytes": r.measured_memory_bytes, "measured_memory_kind": r.measured_memory_kind,
                    "predicted_memory_bytes": p.memory_comparable_bytes, "memory_error_pct": 100.0 * p.memory_error,
                    "predicted_fits": p.memory_bytes <= p.capacity_bytes})
    return out


def memory_check(rows: list[dict], memory_rows: list[dict]) -> dict:
    """Memory against the record. Every published run ran, so each one predicted not to fit (against raw capacity:
    the planning headroom does not apply here) is a memory-model miss; where a source measured memory, the
    prediction of the same kind (allocated, reserved or device) is compared and summarised: median, p90 and worst
    |error| (``measured_*``), by source and by what was measured."""
    measured = [r for r in rows + memory_rows if r["measured_memory_bytes"]]
    by: dict[str, list[float]] = {}
    for r in measured:
        by.setdefault(f"{r['source']} ({r['measured_memory_kind']})", []).append(r["memory_error_pct"] / 100.0)
    return {
        "runs": len(rows) + len(memory_rows),
        "ran_but_predicted_oom": [r["id"] for r in rows + memory_rows if not r["predicted_fits"]],
        **{f"measured_{k}": v for k, v in summary(r["memory_error_pct"] / 100.0 for r in measured).items()},
        "measured_by_source": {k: summary(v) for k, v in sorted(by.items())},
        "measured_runs": [{k: r[k] for k in ("id", "source", "hardware", "gpus", "measured_memory_kind",
                                             "measured_memory_bytes", "predicted_memory_bytes", "memory_error_pct")}
                          for r in measured],
    }
