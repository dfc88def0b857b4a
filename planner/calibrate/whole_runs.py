"""Whole runs as teams ran them: predicted vs published GPU-hours, the end-to-end overhead, and its cross-validation.

The planner separates two rates (:mod:`planner.core.cost`): the **steady-state** rate of the chosen layout (step
time, MFU) and the **end-to-end** rate of the whole run, which adds the modelled failures, checkpoints and
evaluation and ``ScheduleSpec.run_overhead_fraction``: whatever else a real run loses (stragglers, hangs, data
stalls, loss-spike rollbacks, hardware churn, a layout below the best). This module

* holds the finished runs of ``planner/data/whole_runs.yaml`` that the planner can predict (:data:`CASES`): model
  preset, hardware profile, token count and the published layout (or, where none is published, the stated
  assumption, each cited at its plan);
* predicts each one through the same path as ``planner estimate`` (:func:`planner.core.estimate.estimate` for the
  step time, :func:`planner.core.cost.run_costs` for the whole run) as a function of the overhead, which enters
  linearly (:class:`Prediction`);
* derives the overhead from the runs whose published GPU-hours are wall clock (:func:`derive_overhead`: the median
  of the overhead each run implies) and cross-validates it leave-one-out (:func:`leave_one_out`).

What a published figure counts decides what it is compared with (``gpu_hours_basis`` in whole_runs.yaml): GPU-hours
that are GPUs x elapsed time (OPT, BLOOM, Llama 2) are compared with the end-to-end prediction; GPU-hours that are
tokens / measured throughput (LLaMA 1's Table 15: its 65B figure is exactly 1.4T tokens / 380 tokens/s/GPU) are
compared with the steady-state prediction, and they take no part in deriving the overhead.

``benchmarks/whole_runs.py`` prints the leave-one-out table; ``tests/test_whole_runs.py`` gates it (each held-out
run within 25%); ``tests/test_cost.py`` checks every case under the committed default.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from ..core.cost import checkpoint_bytes_of, run_costs
from ..core.estimate import estimate
from ..registry import load_hardware, load_model, read_yaml
from ..specs.layout import LayoutSpec
from ..specs.plan import Plan
from ..specs.run import RunSpec
from ..specs.schedule import BatchRampSpec, ScheduleSpec
from ..units import SECONDS_PER_DAY

WHOLE_RUNS = Path(__file__).resolve().parent.parent / "data" / "whole_runs.yaml"

#: Held-out predictions must land within this of the published GPU-hours (issue 16's "done when").
LOO_BOUND = 0.25

STEADY, WALL = "steady_state", "wall_clock"


@lru_cache(maxsize=1)
def whole_runs() -> dict:
    """whole_runs.yaml entries by id."""
    return {e["id"]: e for e in read_yaml(WHOLE_RUNS)["whole_runs"]}


# ---- the plans: published layouts, or the stated assumptions --------------------------------------------------

LLAMA_LAYOUT_NOTE = (
    "Touvron et al. 2023 §2.4: 2048 A100-80GB for 65B (the only count given; assumed for all sizes), "
    "model + sequence parallelism (Korthikanti et al. 2022), checkpointing that saves the expensive activations "
    "(selective), xformers memory-efficient causal attention (fused); Table 2: 4M-token batch, 2048 context. TP = "
    "the model-parallel size of the released checkpoints (facebookresearch/llama: MP 1/2/4/8 for 7B/13B/33B/65B), "
    "assumed to be the training TP; ZeRO-1 (optimizer sharding) assumed; bf16 assumed.")


def _llama(preset: str, tp: int, tokens: float) -> dict:
    return {"model": preset, "hardware": "a100-80gb",
            "run": {"seq_len": 2048, "global_batch_tokens": 4194304, "micro_batch": 1, "training_tokens": tokens,
                    "precision": "bf16"},
            "layout": {"gpus": 2048, "tp": tp, "sequence_parallel": tp > 1, "recompute": "selective",
                       "flash_attention": True, "zero_stage": 1}}


LLAMA2_LAYOUT_NOTE = (
    "Touvron et al. 2023b (Llama 2) Table 1: 2.0T tokens, 4096 context, 4M-token batch (1024 sequences). The GPU "
    "count and layout are not published: LLaMA 1's are assumed (2048 A100-80GB, TP = the released checkpoints' "
    "model-parallel size, 1/2/8 for 7B/13B/70B, sequence parallelism, selective recomputation, fused attention, "
    "ZeRO-1, bf16), except that the 7B at TP 1 runs on 1024 GPUs: 1024 sequences cannot fill 2048 data-parallel "
    "ranks.")


def _llama2(preset: str, tp: int, gpus: int = 2048) -> dict:
    return {"model": preset, "hardware": "a100-80gb",
            "run": {"seq_len": 4096, "global_batch_tokens": 4194304, "micro_batch": 1, "training_tokens": 2.0e12,
                    "precision": "bf16"},
            "layout": {"gpus": gpus, "tp": tp, "sequence_parallel": tp > 1, "recompute": "selective",
                       "flash_attention": True, "zero_stage": 1}}


OPT_PLAN = {
    # Zhang et al. 2022 (OPT) §2.4: 992 A100-80GB, FSDP + Megatron-LM tensor parallelism, fp16 weights; Table 1:
    # 2M-token batch, 2048 context. TP 8 x 124 FSDP ranks = 992 (the released checkpoint's 992 shards); the batch
    # taken as 8 sequences per rank = 992 x 2048 = 2.03M tokens; activation checkpointing (full) and no fused
    # attention (2021, Megatron softmax) assumed. Tokens (not in whole_runs.yaml): 300B, the learning-rate schedule
    # length of §2.2 and ~143K steps x 2M tokens of the final run.
    "model": "opt-175b", "hardware": "a100-80gb",
    "run": {"seq_len": 2048, "global_batch_seqs": 992, "micro_batch": 8, "training_tokens": 300e9,
            "precision": "fp16"},
    "layout": {"gpus": 992, "tp": 8, "fsdp": "full", "recompute": "full", "flash_attention": False},
}

BLOOM_PLAN = {
    # BigScience tr11-176B-ml README and .slurm: 384 A100-80GB (48 nodes), TP 4, PP 12, DP 8, micro-batch 2,
    # global batch 2048 x 2048 tokens, bf16, BF16_Optimizer = ZeRO-1, --checkpoint-activations (full), no fused
    # attention (Megatron softmax kernels, 2022). Tokens (not in whole_runs.yaml): 366B (BigScience 2022,
    # arXiv:2211.05100: 341B ROOTS + 25B repeated).
    "model": "bloom-176b", "hardware": "a100-80gb",
    "run": {"seq_len": 2048, "global_batch_seqs": 2048, "micro_batch": 2, "training_tokens": 366e9,
            "precision": "bf16"},
    "layout": {"gpus": 384, "tp": 4, "pp": 12, "zero_stage": 1, "recompute": "full", "flash_attention": False},
}
#: --rampup-batch-size 192 16 9_765_625 (tr11-176B-ml.slurm): 192 sequences, ramped over 9,765,625 samples
BLOOM_RAMP = BatchRampSpec(start_batch_tokens=192 * 2048, ramp_tokens=9_765_625 * 2048)

GPT3_PTDP_PLAN = {
    # Narayanan et al. 2021 §5.1 (Eq. 4): GPT-3 175B, 300B tokens, 1024 A100-80GB, batch 1536, fp16, full
    # recomputation. The layout of that projection is not given; TP 8 x PP 16 (6 layers per stage) as in Table 1's
    # neighbouring rows (145.6B: TP 8, PP 8; 310.1B: TP 8, PP 16) is assumed.
    "model": "gpt3-175b", "hardware": "a100-80gb",
    "run": {"seq_len": 2048, "global_batch_seqs": 1536, "micro_batch": 1, "training_tokens": 300e9,
            "precision": "fp16"},
    "layout": {"gpus": 1024, "tp": 8, "pp": 16, "recompute": "full", "flash_attention": False},
}


def plan_of(data: dict, schedule: Optional[ScheduleSpec] = None) -> Plan:
    """A :class:`Plan` from a ``{model, hardware, run, layout}`` mapping of presets and spec fields (the API's
    ``plan_from_dict`` lives above this layer)."""
    model = data["model"] if not isinstance(data["model"], str) else load_model(data["model"])
    return Plan(model=model, run=RunSpec(**data["run"]), layout=LayoutSpec(**data["layout"]),
                hardware=load_hardware(data["hardware"]), name=str(data.get("name", "")),
                schedule=schedule or ScheduleSpec())


# ---- the cases -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One comparison with a published whole-run figure."""

    run_id: str  #: entry of whole_runs.yaml
    quantity: str  #: gpu_hours | energy_mwh | compute_days (projections) | model_flops (GPT-3)
    bound: float  #: |relative error| allowed under the committed default (tests/test_cost.py)
    plan: Optional[dict] = None
    measured_run: Optional[str] = None  #: a planner.calibrate.measured run id to take the plan from instead
    tokens: Optional[float] = None  #: with measured_run
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)  #: run-specific schedule (ramp, PUE convention)

    @property
    def basis(self) -> str:
        """What the published figure counts: ``steady_state`` (tokens / measured throughput) or ``wall_clock``
        (GPUs x elapsed time; also projections and FLOP counts, which no overhead touches)."""
        return whole_runs()[self.run_id].get("gpu_hours_basis", WALL)

    @property
    def label(self) -> str:
        return f"{self.run_id}-{self.quantity}"


#: Bounds under the committed default overhead, from the measured errors (``python benchmarks/whole_runs.py``
#: prints them) with a margin of about 4-8 points; the cross-validated gate is :data:`LOO_BOUND`. What drives the
#: misses above 10%:
#:
#: * LLaMA 1's GPU-hours are tokens / measured throughput (steady state): the time model gives the 7B 56% MFU where
#:   LLaMA implies 46%, the 65B 336 tokens/s/GPU where LLaMA measured 380; the GPU count of the 7B-33B runs and the
#:   TP of all four are not published, and a TP of 8 costs the 65B exposed TP communication that a smaller TP with
#:   FSDP would not.
#: * Llama 2's GPU count and layout are not published (LLAMA2_LAYOUT_NOTE); the time model gives its 7B and 13B
#:   54-60% MFU where the published GPU-hours imply about 45% end to end.
CASES = [
    Case("llama1_7b", "gpu_hours", 0.20, plan=_llama("llama-7b", 1, 1.0e12)),
    Case("llama1_7b", "energy_mwh", 0.20, plan=_llama("llama-7b", 1, 1.0e12)),
    Case("llama1_13b", "gpu_hours", 0.10, plan=_llama("llama-13b", 2, 1.0e12)),
    Case("llama1_13b", "energy_mwh", 0.10, plan=_llama("llama-13b", 2, 1.0e12)),
    Case("llama1_33b", "gpu_hours", 0.10, plan=_llama("llama-33b", 4, 1.4e12)),
    Case("llama1_33b", "energy_mwh", 0.10, plan=_llama("llama-33b", 4, 1.4e12)),
    Case("llama1_65b", "gpu_hours", 0.20, plan=_llama("llama-65b", 8, 1.4e12)),
    Case("llama1_65b", "energy_mwh", 0.20, plan=_llama("llama-65b", 8, 1.4e12)),
    Case("opt_175b_llama_table15", "gpu_hours", 0.20, plan=OPT_PLAN),
    Case("opt_175b_llama_table15", "energy_mwh", 0.20, plan=OPT_PLAN),
    Case("bloom_176b", "gpu_hours", 0.20, plan=BLOOM_PLAN, schedule=ScheduleSpec(batch_rampup=BLOOM_RAMP)),
    Case("bloom_176b", "energy_mwh", 0.20, plan=BLOOM_PLAN,
         schedule=ScheduleSpec(batch_rampup=BLOOM_RAMP, pue=1.0)),  # Luccioni: TDP x GPU-h
    Case("bloom_176b_llama_table15", "energy_mwh", 0.20, plan=BLOOM_PLAN,
         schedule=ScheduleSpec(batch_rampup=BLOOM_RAMP)),
    Case("llama2_7b", "gpu_hours", 0.20, plan=_llama2("llama-2-7b", 1, gpus=1024)),
    Case("llama2_13b", "gpu_hours", 0.20, plan=_llama2("llama-2-13b", 2)),
    Case("llama2_70b", "gpu_hours", 0.20, plan=_llama2("llama-2-70b", 8)),
    # GPT-3 publishes no GPU-hours or hardware: only its total compute, 6 x 174.6B x 300B = 3.14e23 (Table D.1);
    # the planner's model FLOPs add the attention scores (+2.8%, with the preset's 175.0B parameters).
    Case("gpt3_175b", "model_flops", 0.05, plan=GPT3_PTDP_PLAN),
    # Projections from measured throughput (Narayanan et al. 2021 §5.1), not finished runs: days of training steps.
    Case("gpt3_175b_ptdp_estimate", "compute_days", 0.10, plan=GPT3_PTDP_PLAN),
    Case("ptdp_1t_estimate", "compute_days", 0.10, measured_run="ptdp_t1_1008.0B", tokens=450e9),
]

#: Published whole runs in whole_runs.yaml with GPU-hours that :data:`CASES` does not predict, and why.
NOT_PREDICTED = {
    "llama2_34b": "no released weights, so no preset of its shape",
    "llama31_405b": "the published layout (TP 8, PP 16, DP 128, 8K sequences, 16M-token batch) fits the "
                    "planner's memory model only with full recomputation (the first stage needs 80-110 GiB of 80 "
                    "otherwise), and then the time model runs it at 18-28% MFU where Table 4 measured 41%: the "
                    "steady-state model, not the overhead, is what would be scored; the GPU-hours also include the 128K "
                    "long-context stage (CP 16). Used as a fact instead: 30.84M GPU-h against 3.8e25 FLOPs at the "
                    "published 400 TFLOP/s per GPU is 17% above steady state (llama3_steady_ratio)",
    "llama31_8b": "GPU count and layout not published; 1.46M H100-hours for 15T tokens is ~18% MFU, well below "
                  "any steady rate the layouts of its size reach, so it was not run like the 405B",
    "llama31_70b": "GPU count and layout not published",
}

#: The whole-run cases that the leave-one-out scores: every case of GPU-hours.
LOO_CASES = [c for c in CASES if c.quantity == "gpu_hours"]


# ---- predictions -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """One case predicted, as a function of the run overhead ``f``: ``end_to_end(f) = base + f * slope``."""

    case: Case
    published: float
    steady: float  #: the quantity at the steady-state rate: training steps only
    base: float  #: end to end with the modelled failures, checkpoints and evaluation, run overhead 0
    slope: float  #: d(end to end)/d(run overhead): the overhead enters linearly
    goodput: float  #: steady / end to end at the committed default overhead
    fits: bool

    def predicted(self, overhead: float) -> float:
        """The prediction to compare with the published figure: steady state when that is what was published,
        else end to end with ``overhead``."""
        if self.case.basis == STEADY:
            return self.steady
        return self.base + overhead * self.slope

    def error(self, overhead: float) -> float:
        return self.predicted(overhead) / self.published - 1.0

    def implied_overhead(self) -> float:
        """The overhead that reproduces the published figure exactly (wall-clock cases)."""
        return (self.published - self.base) / self.slope if self.slope > 0 else float("nan")


def _plan(case: Case) -> Plan:
    if case.plan is not None:
        return plan_of(case.plan)
    from .measured import load_runs

    r = {m.id: m for m in load_runs()[0]}[case.measured_run]
    return Plan(model=r.model, run=r.run.model_copy(update={"training_tokens": case.tokens}), layout=r.layout,
                hardware=load_hardware(r.hardware), name=r.id)


def _quantity(case: Case, cost, values: dict) -> float:
    if case.quantity == "gpu_hours":
        return float(cost.gpu_hours)
    if case.quantity == "energy_mwh":
        return float(cost.energy_mwh)
    if case.quantity == "compute_days":
        return float(cost.compute_s) / SECONDS_PER_DAY
    if case.quantity == "model_flops":
        return float(values["model_flops_total"])
    raise ValueError(case.quantity)  # pragma: no cover


def _published(case: Case) -> float:
    e = whole_runs()[case.run_id]
    if case.quantity == "gpu_hours":
        return float(e["gpu_hours"])
    if case.quantity == "energy_mwh":
        return float(e["energy_mwh"]) if "energy_mwh" in e else float(e["energy_kwh"]) / 1e3
    if case.quantity == "compute_days":
        return float(e["wall_days_estimated"])
    if case.quantity == "model_flops":
        return float(e["total_flops"])
    raise ValueError(case.quantity)  # pragma: no cover


@lru_cache(maxsize=None)
def _predict_index(i: int) -> Prediction:
    case = CASES[i]
    plan = _plan(case)
    est = estimate(plan)  # BLOOM's 70 layers on 12 stages: the fullest stage (6 layers) is costed, as for any plan
    values = est.to_dict()
    ckpt = checkpoint_bytes_of(plan.model, plan.run)
    s = case.schedule

    def q(schedule: ScheduleSpec) -> float:
        return _quantity(case, run_costs(values, schedule, plan.hardware, checkpoint_bytes=ckpt), values)

    steady = q(s.replace(failures_per_gpu_hour=0.0, eval_overhead_fraction=0.0, data_loading_overhead_fraction=0.0,
                         run_overhead_fraction=0.0))
    base = q(s.replace(run_overhead_fraction=0.0))
    slope = q(s.replace(run_overhead_fraction=1.0)) - base
    full = run_costs(values, s, plan.hardware, checkpoint_bytes=ckpt)
    return Prediction(case=case, published=_published(case), steady=steady, base=base, slope=slope,
                      goodput=float(full.goodput), fits=est.fits)


def predict(case: Case) -> Prediction:
    """The prediction of one case of :data:`CASES` (cached)."""
    return _predict_index(CASES.index(case))


def predictions(cases: Sequence[Case] = tuple(CASES)) -> list[Prediction]:
    return [predict(c) for c in cases]


# ---- the overhead: derived, and cross-validated ----------------------------------------------------------------

def derive_overhead(preds: Sequence[Prediction]) -> float:
    """The run overhead the wall-clock runs among ``preds`` imply: the median of each run's implied overhead (one
    value per run, its GPU-hours case), floored at 0 (an overhead cannot be negative). The median, not the mean,
    so that one run's churn (OPT's 35+ restarts) does not set everyone's default."""
    implied = [p.implied_overhead() for p in preds if p.case.basis == WALL and p.case.quantity == "gpu_hours"]
    if not implied:
        raise ValueError("no wall-clock whole run to derive the run overhead from")
    return max(0.0, statistics.median(implied))


@dataclass(frozen=True)
class HeldOut:
    """One leave-one-out row: the overhead derived without the run, and the run predicted with it."""

    prediction: Prediction
    overhead: float  #: derived from every other wall-clock run

    @property
    def predicted(self) -> float:
        return self.prediction.predicted(self.overhead)

    @property
    def error(self) -> float:
        return self.prediction.error(self.overhead)


def leave_one_out(cases: Sequence[Case] = tuple(LOO_CASES)) -> list[HeldOut]:
    """Each run held out in turn: the overhead is derived from all the others, then the held-out run's GPU-hours
    are predicted with it (steady-state runs are predicted at the steady rate and need no overhead)."""
    preds = predictions(cases)
    return [HeldOut(p, derive_overhead([q for q in preds if q is not p])) for p in preds]


def llama3_steady_ratio() -> float:
    """Llama 3.1 405B's published GPU-hours over what its published steady rate gives (a fact, no model): 30.84M
    H100-hours vs 3.8e25 FLOPs (Dubey et al. 2024 §3.1) at 400 TFLOP/s per GPU (Table 4, 16,384 GPUs)."""
    e = whole_runs()["llama31_405b"]
    steady_gpu_hours = float(e["total_flops"]) / (float(e["tflops_per_gpu"]) * 1e12) / 3600.0
    return float(e["gpu_hours"]) / steady_gpu_hours


# ---- tables ----------------------------------------------------------------------------------------------------

def loo_table(rows: Sequence[HeldOut]) -> str:
    head = (f"{'run':<24} {'basis':<12} {'published GPU-h':>15} {'steady':>11} {'overhead':>9} "
            f"{'predicted':>11} {'error':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        p = r.prediction
        over = "-" if p.case.basis == STEADY else f"{r.overhead:+.3f}"
        lines.append(f"{p.case.run_id:<24} {p.case.basis:<12} {p.published:>15,.0f} {p.steady:>11,.0f} "
                     f"{over:>9} {r.predicted:>11,.0f} {r.error * 100:>+7.1f}%")
    return "\n".join(lines)


def cases_table(overhead: float) -> str:
    head = (f"{'run (whole_runs.yaml)':<26} {'quantity':<13} {'basis':<12} {'published':>11} {'predicted':>11} "
            f"{'error':>8} {'steady':>11} {'goodput':>8} {'bound':>6}")
    lines = [head, "-" * len(head)]
    for p in predictions():
        lines.append(f"{p.case.run_id:<26} {p.case.quantity:<13} {p.case.basis:<12} {p.published:>11.4g} "
                     f"{p.predicted(overhead):>11.4g} {p.error(overhead) * 100:>+7.1f}% {p.steady:>11.4g} "
                     f"{p.goodput:>8.3f} {p.case.bound * 100:>5.0f}%")
    return "\n".join(lines)


__all__ = [
    "CASES", "Case", "HeldOut", "LOO_BOUND", "LOO_CASES", "NOT_PREDICTED", "Prediction", "STEADY", "WALL",
    "cases_table", "derive_overhead", "leave_one_out", "llama3_steady_ratio", "loo_table", "plan_of", "predict",
    "predictions", "whole_runs",
]
