"""The budget query: from dollars, days, GPUs or a target loss to the best model, data, cluster and layout.

The loop (issue 5 item 4) ties the scaling law to the time model so that budget, MFU and size agree:

1. GPUs and GPU-hours from the budget: ``--usd`` and ``--days`` fix both (GPUs = usd / (price x 24 x days));
   ``--gpus`` fixes the count; ``--usd`` alone runs on ``--max-gpus`` or fewer within ``DEFAULT_MAX_DAYS``; ``--days``
   alone uses ``--max-gpus``.
2. Model FLOPs available = GPU-hours x 3600 x peak x MFU, MFU starting at :data:`MFU_START`.
3. The law's compute-optimal N and D for those FLOPs (6ND convention), turned into a concrete architecture
   (``planner.core.scaling.plan_for_compute``); unique tokens cap D (Muennighoff et al. 2023's repetition law).
4. The layout search over that model at that GPU count: the fastest feasible layout gives the time model's MFU.
5. Back to 2 with that MFU (and the ratio of the model's own FLOPs per token to 6N) until MFU moves < 0.5 points
   (from the second round on, the next MFU is the mean of the assumed and predicted ones: the shape rule's rounding
   can otherwise make it jump between two neighbouring architectures).

A target loss ("what does loss 2.1 cost?") runs the law backwards (``plan_for_loss``), then 4, and prices it.
The wall clock, GPU-hours and dollars come from the same whole-run model as ``planner estimate`` (failures,
checkpoints), so a budget answer can be re-checked with the ``planner estimate`` command it prints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .core.scaling import DEFAULT_LAW, ComputePlan, Law, plan_for_compute, plan_for_loss
from .errors import SpecError
from .search import Constraints, search
from .specs.hardware import HardwareSpec
from .specs.layout import LayoutSpec
from .specs.plan import Plan
from .units import SECONDS_PER_HOUR
from .specs.run import RunSpec
from .specs.schedule import ScheduleSpec

#: Where the MFU iteration starts: the median MFU of the public measured runs' predictions (~0.4).
MFU_START = 0.40
MFU_TOLERANCE = 0.005
MAX_ITERATIONS = 8
#: With only a dollar budget the time is free; the planner then bounds the run to this many days (stated in output).
DEFAULT_MAX_DAYS = 90.0


@dataclass(frozen=True)
class BudgetAnswer:
    """The answer, with the iteration that got there."""

    scaling: ComputePlan
    plan: Plan  #: the chosen model, run and layout (re-check with `planner estimate`)
    estimate: dict  #: `planner estimate`'s output for that plan (step time, MFU, days, GPU-hours, dollars...)
    gpus: int
    iterations: list[dict]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        e = self.estimate
        lay = self.plan.layout
        out = {
            "law": self.scaling.law,
            "params_total": e["params_total"],
            "training_tokens": self.plan.run.training_tokens,
            "tokens_per_param": self.plan.run.training_tokens / e["params_total"],
            "predicted_loss": self.scaling.loss,
            "predicted_perplexity": math.exp(self.scaling.loss),
            "model_flops_total": e.get("model_flops_total"),
            "gpus": self.gpus,
            "tp": lay.tp, "pp": lay.pp, "dp": lay.data_parallel, "cp": lay.cp, "ep": lay.ep, "vpp": lay.vpp,
            "zero_stage": lay.effective_zero_stage, "recompute": lay.recompute,
            "micro_batch_seqs": self.plan.run.micro_batch,
            "mfu": e["mfu"],
            "step_time_s": e["step_time_s"],
            "wall_clock_days": e.get("wall_clock_days"),
            "gpu_hours": e.get("gpu_hours"),
            "cost_usd": e.get("cost_usd"),
            "energy_mwh": e.get("energy_mwh"),
            "memory_per_gpu_bytes": e["memory_per_gpu_bytes"],
            "model": self.scaling.model.model_dump(exclude_none=True),
            "iterations": self.iterations,
            "notes": list(self.notes) + list(self.scaling.warnings),
        }
        return out


def _price(hw: HardwareSpec, schedule: ScheduleSpec) -> float:
    if schedule.price_usd_per_gpu_hour is not None:
        return schedule.price_usd_per_gpu_hour
    if hw.price_usd_per_gpu_hour is None:
        raise SpecError(f"hardware {hw.name}: no price_usd_per_gpu_hour; give --price")
    return hw.price_usd_per_gpu_hour.value


def _whole_nodes(gpus: float, per_node: int) -> int:
    """The largest GPU count <= ``gpus`` that is a whole number of nodes (or a power of two below one node).
    ``gpus`` must be finite (a SpecError otherwise: an infinite count would never end below one node and overflow
    above)."""
    if not math.isfinite(gpus) or per_node < 1:
        raise SpecError(f"budget: {gpus:g} GPUs ({per_node} per node) is not a GPU count planner can plan")
    if gpus >= per_node:
        return int(gpus // per_node) * per_node
    g = 1
    while g * 2 <= gpus:
        g *= 2
    return g


def _whole_nodes_up(gpus: float, per_node: int) -> int:
    """The smallest GPU count >= ``gpus`` that is a whole number of nodes (or a power of two below one node)."""
    if not math.isfinite(gpus) or per_node < 1:
        raise SpecError(f"budget: {gpus:g} GPUs ({per_node} per node) is not a GPU count planner can plan")
    if gpus > per_node:
        return int(math.ceil(gpus / per_node)) * per_node
    g = 1
    while g < gpus:
        g *= 2
    return min(g, per_node)


def _overrun(est: dict, days: Optional[float], usd: Optional[float]) -> tuple[float, str]:
    """(how far the answer overshoots its tightest target, as actual/target, and which target): 1 or less when
    every target holds."""
    worst, what = 0.0, ""
    for target, key, name in ((days, "wall_clock_days", "days"), (usd, "cost_usd", "dollars")):
        got = est.get(key)
        if target is not None and got is not None and got / target > worst:
            worst, what = got / target, name
    return worst, what


def gpu_count_candidates(gpus: int, per_node: int, n: int = 6) -> list[int]:
    """Up to ``n`` GPU counts <= ``gpus``, largest first, of whole nodes whose node count is 2^a x {1, 3, 5}:
    counts like 928 (= 8 x 116) leave a data-parallel degree that divides no power-of-two batch, so the budget
    query tries the nearest counts that do."""
    if gpus < per_node:
        return [_whole_nodes(gpus, per_node)]
    nodes = gpus // per_node
    nice = sorted({m * 2**a for m in (1, 3, 5) for a in range(0, 20) if m * 2**a <= nodes}, reverse=True)
    return [k * per_node for k in nice[:n]]


def _best_layout(model, run: RunSpec, hw: HardwareSpec, schedule: ScheduleSpec, gpus: int):
    """The fastest feasible layout of ``model`` on ``gpus`` GPUs or the nearest smaller count that has one, as
    (estimate dict, Plan, GPUs); (None, None, gpus) when none fits. One search over every candidate count."""
    from .core.estimate import estimate

    counts = gpu_count_candidates(gpus, hw.gpus_per_node)
    base = Plan(model=model, run=run, layout=LayoutSpec(gpus=counts[0]), hardware=hw, name="budget",
                schedule=schedule)
    b = run.batch_seqs  # nearby batch sizes with factors 3 and 5, so data-parallel degrees like 96 divide one
    batches = tuple(sorted({b, 3 * b // 4, 5 * b // 4, 3 * b // 2, 5 * b // 8} - {0}))
    res = search(base, Constraints(gpus=tuple(counts), global_batch=batches), rank_by="time-to-train")
    counts_ok = res.column("gpus")[res.feasible]
    if len(counts_ok) == 0:
        return None, None, gpus
    g = int(counts_ok.max())  # the largest candidate count that has a layout, at its quickest time to train
    feasible = np.flatnonzero(res.feasible & (res.column("gpus") == g))
    i = feasible[np.argmin(res.metric[feasible])]
    plan = res.plan_of(int(i))
    return estimate(plan).to_dict(), plan, g


def _choose_gpus(usd, days, target_loss, max_gpus: int, price: float, per_node: int, notes: list[str]):
    """(GPUs, days target) when the query does not fix the GPU count: what the dollars buy over the days; with
    dollars alone, enough GPUs that the run lasts at most :data:`DEFAULT_MAX_DAYS`; else ``max_gpus``."""
    if usd is not None and days is not None:
        return _whole_nodes(usd / (price * 24.0 * days), per_node), days
    if usd is not None and target_loss is None:
        gpus = min(_whole_nodes_up(usd / (price * 24.0 * DEFAULT_MAX_DAYS), per_node), _whole_nodes(max_gpus, per_node))
        notes.append(f"only a dollar budget: GPUs chosen so the run takes about {DEFAULT_MAX_DAYS:g} days or "
                     f"fewer (at most --max-gpus {max_gpus}); give --days or --gpus to choose otherwise")
        return gpus, DEFAULT_MAX_DAYS
    return _whole_nodes(max_gpus, per_node), days


def _keep_targets(est, plan, sc, gpus, days, usd, flops_model, flop_ratio, hw, schedule, iterations, *, law,
                  vocab_size, tokens_available, seq_len, batch_tokens):
    """Keep the promise: the MFU iteration agrees to half a point, and restarts, checkpoints and the run overhead
    are only known once estimated; shrink the compute until the days and dollars hold (at most four rounds). Each
    round is appended to ``iterations`` (``shrink``: True), so the last entry is always the answer's."""
    for _ in range(4):
        over, _what = _overrun(est, days, usd)
        if over <= 1.0:
            break
        flops_model *= 0.998 / over
        sc = plan_for_compute(flops_model / flop_ratio, law, vocab_size=vocab_size, unique_tokens=tokens_available)
        run = RunSpec(seq_len=seq_len, global_batch_seqs=max(1, batch_tokens // seq_len), training_tokens=sc.tokens)
        est, plan, gpus = _best_layout(sc.model, run, hw, schedule, gpus)
        if est is None:
            raise SpecError(f"budget: no layout of a {sc.params_model / 1e9:.1f}B-parameter model fits on {gpus} "
                            f"{hw.name} GPUs; raise --gpus/--max-gpus or lower the budget")
        iterations.append(_iteration(len(iterations), iterations[-1]["mfu_assumed"], est, sc.tokens, shrink=True))
    return est, plan, sc, gpus


def _next_mfu(mfu: float, iterations: list[dict], notes: list[str]) -> tuple[float, bool]:
    """(MFU to assume next, whether that is the last step) after an iteration that did not settle.

    The architecture rule rounds widths and depths, so MFU can jump between two neighbouring shapes; after the first
    step the assumed and predicted MFU are averaged so the loop settles between them. When a model comes back (the
    loop alternates between shapes whose MFUs differ by more than the tolerance, so none has the MFU its size
    assumes), the lowest MFU of the cycle is assumed once more and the loop stops: the plan then meets or beats the
    MFU its compute was sized with."""
    last = iterations[-1]
    earlier = [i for i, row in enumerate(iterations[:-1]) if row["params_total"] == last["params_total"]]
    if earlier:
        cycle = [row["mfu_predicted"] for row in iterations[earlier[-1]:]]
        notes.append(f"MFU alternates between neighbouring model shapes ({min(cycle):.3f}-{max(cycle):.3f}); "
                     f"sized with the lower, so the plan meets or beats it")
        return min(cycle), True
    return (last["mfu_predicted"] if len(iterations) == 1 else 0.5 * (mfu + last["mfu_predicted"])), False


def _iteration(it: int, mfu_assumed: float, est: dict, tokens: float, shrink: bool = False) -> dict:
    """One row of the budget's trace: the MFU assumed, the MFU the estimate predicted and what it led to."""
    return {"iteration": it, "mfu_assumed": mfu_assumed, "mfu_predicted": float(est["mfu"]),
            "params_total": est["params_total"], "training_tokens": tokens, "goodput": est.get("goodput") or 1.0,
            "wall_clock_days": est.get("wall_clock_days"), "cost_usd": est.get("cost_usd"), "shrink": shrink}


def budget(hw: HardwareSpec, *, usd: Optional[float] = None, days: Optional[float] = None,
           gpus: Optional[int] = None, max_gpus: int = 4096, target_loss: Optional[float] = None,
           tokens_available: Optional[float] = None, seq_len: int = 4096, batch_tokens: int = 4 * 2**20,
           law: Law = DEFAULT_LAW, vocab_size: int = 128256, schedule: ScheduleSpec = ScheduleSpec(),
           progress=None) -> BudgetAnswer:
    """Answer one budget query (see the module docstring for the loop)."""
    if all(v is None for v in (usd, days, gpus, target_loss)):
        raise SpecError("budget: give at least one of --usd, --days, --gpus, --target-loss")
    for name, v in (("usd", usd), ("days", days), ("gpus", gpus), ("max_gpus", max_gpus),
                    ("target_loss", target_loss), ("tokens_available", tokens_available)):
        if v is not None and not v > 0:
            raise SpecError(f"budget: {name} must be > 0, got {v}")
    price = _price(hw, schedule)
    per_node = hw.gpus_per_node
    notes: list[str] = []
    peak = hw.accelerator.peak("bf16") if "bf16" in hw.accelerator.peak_flop_per_s else hw.accelerator.peak("fp16")

    # GPUs and GPU-hours
    if gpus is None:
        gpus, days = _choose_gpus(usd, days, target_loss, max_gpus, price, per_node, notes)
    if gpus < 1:
        raise SpecError(f"budget: ${usd:,.0f} buys less than one GPU for {days:g} days at ${price}/GPU-hour")
    hours = usd / price if usd is not None else (gpus * 24.0 * days if days is not None else None)
    if usd is not None and days is not None:
        hours = min(hours, gpus * 24.0 * days)

    mfu, flop_ratio = MFU_START, 1.0  # flop_ratio: the model's FLOPs per token over 6N
    iterations: list[dict] = []
    est = plan = sc = None
    settling = False
    for it in range(MAX_ITERATIONS):
        if target_loss is not None:
            sc = plan_for_loss(target_loss, law, vocab_size=vocab_size)
        else:
            # usable hours lose the goodput of failures/checkpoints; the estimate below accounts for them exactly
            flops_model = hours * SECONDS_PER_HOUR * peak * mfu * (iterations[-1]["goodput"] if iterations else 1.0)
            sc = plan_for_compute(flops_model / flop_ratio, law, vocab_size=vocab_size,
                                  unique_tokens=tokens_available)
        tokens = sc.tokens
        if tokens_available is not None and target_loss is not None and tokens > tokens_available * 4:
            notes.append("the target loss needs more than 4 epochs of the available tokens")
        batch_seqs = max(1, batch_tokens // seq_len)
        run = RunSpec(seq_len=seq_len, global_batch_seqs=batch_seqs, training_tokens=tokens)
        est, plan, used = _best_layout(sc.model, run, hw, schedule, gpus)
        if used != gpus:
            notes.append(f"{gpus} GPUs leave no layout that divides the batch; using {used}")
            gpus = used
            if usd is not None and days is not None:
                hours = min(usd / price, gpus * 24.0 * days)
        if est is None:
            raise SpecError(f"budget: no layout of a {sc.params_model / 1e9:.1f}B-parameter model fits on {gpus} "
                            f"{hw.name} GPUs; raise --gpus/--max-gpus or lower the budget")
        new_mfu = float(est["mfu"])
        flop_ratio = est["model_flops_per_token"] / (6.0 * est["params_total"])
        iterations.append(_iteration(it, mfu, est, tokens))
        if progress:
            progress(it)
        if target_loss is not None or abs(new_mfu - mfu) < MFU_TOLERANCE or settling:
            break
        mfu, settling = _next_mfu(mfu, iterations, notes)
    else:
        notes.append(f"MFU did not settle within {MAX_ITERATIONS} iterations (last change "
                     f"{abs(iterations[-1]['mfu_predicted'] - iterations[-1]['mfu_assumed']):.3f})")
    if target_loss is None:
        est, plan, sc, gpus = _keep_targets(est, plan, sc, gpus, days, usd, flops_model, flop_ratio, hw, schedule,
                                            iterations, law=law, vocab_size=vocab_size,
                                            tokens_available=tokens_available, seq_len=seq_len,
                                            batch_tokens=batch_tokens)
    over, what = _overrun(est, days, usd)
    if over > 1.0:
        why = ("the target loss fixes the model and tokens" if target_loss is not None
               else "no smaller plan on these GPUs meets it")
        notes.append(f"misses the {what} target by {100 * (over - 1):.1f}% ({why})")
    plan = dataclasses.replace(plan, name=f"budget-{sc.params_model / 1e9:.1f}b")
    return BudgetAnswer(scaling=sc, plan=plan, estimate=est, gpus=gpus, iterations=iterations, notes=tuple(notes))
