"""One plan in, one :class:`Estimate` out: parameters, FLOPs, memory (and, where modelled, time and cost).

``evaluate`` is the single entry point of the core: :func:`estimate` calls it with the scalar :class:`Exec` of a
plan, the layout search with arrays of candidates. The keys of :meth:`Estimate.to_dict` are the stable,
unit-suffixed output columns documented in README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..specs.plan import Plan
from ..units import GIB, SECONDS_PER_DAY
from .accuracy import band_columns
from .checks import check_layout, costed_exec, framework_name
from .flops import StepFlops, sequence_lengths, step_flops
from .layout import Exec, exec_from_spec
from .memory import ALLOCATOR_FRAGMENTATION, MemoryBreakdown, memory_breakdown
from .params import ParamBreakdown, param_breakdown
from .cost import checkpoint_bytes_of, run_costs
from .efficiency import TimeParams
from .time import Throughput, TimeBreakdown, step_time, throughput



@dataclass(frozen=True)
class Evaluation:
    """What the core computes for one Exec (scalar or arrays)."""

    params: ParamBreakdown
    flops: StepFlops
    memory: MemoryBreakdown
    time: TimeBreakdown
    throughput: Throughput
    framework: object  #: FRAMEWORK_CODE each layout was costed as (checks.costed_framework)

    @property
    def params_per_gpu(self):
        """Parameters held by the most loaded GPU before ZeRO sharding (that of ``memory.stage``)."""
        return self.memory.params_per_gpu


def evaluate(plan: Plan, ex: Exec, eff: Optional[TimeParams] = None) -> Evaluation:
    """Run the core over ``ex`` (scalars or broadcastable arrays).

    The one route from a plan to its numbers: estimates, the layout search, validation against published runs and
    the calibration fits all call it. ``eff`` overrides the profile's efficiency parameters (what a fit varies)."""
    pb = param_breakdown(plan.model)
    fl = step_flops(plan.model, plan.run, ex)
    # the framework each layout is costed as, once: memory and time both read it from ex.framework
    ex = costed_exec(plan.model, ex)
    mem = memory_breakdown(plan.model, plan.run, ex, plan.hardware)
    tb = step_time(plan.model, plan.run, ex, plan.hardware, eff)
    th = throughput(fl, tb, ex, plan.hardware, plan.run.precision)
    return Evaluation(params=pb, flops=fl, memory=mem, time=tb, throughput=th, framework=ex.framework)


def _scalar(v):
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return x
    return v


@dataclass(frozen=True)
class Estimate:
    """The answer for one plan. ``fits`` is False with a ``reason`` when it does not fit (a result, not an error)."""

    plan: Plan
    evaluation: Evaluation
    fits: bool
    reason: Optional[str]

    @property
    def params(self) -> ParamBreakdown:
        return self.evaluation.params

    @property
    def flops(self) -> StepFlops:
        return self.evaluation.flops

    @property
    def memory(self) -> MemoryBreakdown:
        return self.evaluation.memory

    def to_dict(self) -> dict:
        """Flat mapping with stable unit-suffixed keys (JSON/CSV output)."""
        p, lay, run = self.plan, self.plan.layout, self.plan.run
        ex = exec_from_spec(lay, run)
        s_enc, s_dec = sequence_lengths(p.model, run)
        out: dict = {
            "plan": p.name,
            "model": p.model.name,
            "hardware": p.hardware.name,
            "gpus": lay.num_gpus,
            "dp": lay.data_parallel, "tp": lay.tp, "pp": lay.pp, "cp": lay.cp, "ep": lay.ep, "vpp": lay.vpp,
            "zero_stage": lay.effective_zero_stage, "fsdp": lay.fsdp,
            "sequence_parallel": lay.sequence_parallel, "recompute": lay.recompute,
            "recompute_fraction": lay.recompute_fraction, "flash_attention": lay.flash_attention,
            "attention_kernel": lay.attention_kernel, "tp_comm_overlap": lay.tp_comm_overlap,
            "framework": lay.framework, "costed_framework": framework_name(self.evaluation.framework),
            "pipeline_schedule": lay.pipeline_schedule,
            "eager_elementwise": lay.eager_elementwise,
            "seq_len_tokens": run.seq_len,
            "decoder_seq_len_tokens": s_dec if p.model.arch == "encoder_decoder" else None,
            "micro_batch_seqs": run.micro_batch,
            "global_batch_seqs": int(_scalar(self.evaluation.flops.tokens_per_step)) // run.seq_len,
            "grad_accum_steps": int(_scalar(ex.grad_accum)),
            "precision": run.precision,
        }
        out.update(self.params.to_dict())
        out["params_per_gpu"] = _scalar(self.evaluation.params_per_gpu)
        fl = self.flops
        out.update({
            "model_flops_per_token": _scalar(fl.model_flops_per_token),
            "hardware_flops_per_token": _scalar(fl.hardware_flops_per_token),
            "model_flops_per_step": _scalar(fl.model_flops_per_step),
            "hardware_flops_per_step": _scalar(fl.hardware_flops_per_step),
            "tokens_per_step": _scalar(fl.tokens_per_step),
        })
        if run.training_tokens is not None:
            out["training_tokens"] = run.training_tokens
            out["training_steps"] = float(np.ceil(run.training_tokens / _scalar(fl.tokens_per_step)))
            out["model_flops_total"] = _scalar(fl.model_flops_per_token) * run.training_tokens
        th = self.evaluation.throughput
        out.update({
            "step_time_s": _scalar(th.step_time_s),
            "tokens_per_s_per_gpu": _scalar(th.tokens_per_s_per_gpu),
            "model_tflop_per_s_per_gpu": _scalar(th.model_tflop_per_s_per_gpu),
            "mfu": _scalar(th.mfu),
            "hfu": _scalar(th.hfu),
            "mfu_at_run_precision": _scalar(th.mfu_at_run_precision),
        })
        out.update({f"time_{k}": _scalar(v) for k, v in self.evaluation.time.parts().items()})
        if run.training_tokens is not None:
            out["training_time_ideal_days"] = out["training_steps"] * out["step_time_s"] / SECONDS_PER_DAY
            out.update(run_costs(out, p.schedule, p.hardware,
                                 checkpoint_bytes=checkpoint_bytes_of(p.model, p.run)).to_dict())
        out.update(band_columns(out, p.hardware, precision=run.precision))
        out.update({k: _scalar(v) for k, v in self.memory.to_dict().items()})
        out["memory_per_gpu_gib"] = out["memory_per_gpu_bytes"] / GIB
        out["fits"] = self.fits
        out["reason"] = self.reason
        return out


def fit_reason(mem: MemoryBreakdown, pp: int = 1) -> Optional[str]:
    """Why a scalar memory breakdown does not fit, naming the largest parts; None when it fits."""
    total, cap, usable = float(mem.total_bytes), mem.capacity_bytes, mem.usable_bytes
    if total <= usable:
        return None
    parts = sorted(((float(v), k) for k, v in mem.parts().items()), reverse=True)
    top = ", ".join(f"{k.removesuffix('_bytes')} {v / GIB:.1f}" for v, k in parts[:3])
    stage = {0: "first", pp - 1: "last"}.get(int(mem.stage), "second")  # stage 1 of pp >= 3 (a middle one)
    where = "per GPU" if pp == 1 else f"on the {stage} pipeline stage's GPUs"
    room = f"{cap / GIB:.1f} GiB" + (f", {usable / GIB:.1f} GiB after the memory headroom" if usable < cap else "")
    # what fragmentation alone decides: the tensors, runtime and NCCL buffers fit, the allocator's usual waste not
    frag = float(mem.overhead_parts.get("fragmentation", 0.0)) if mem.overhead_parts else 0.0
    tight = (f"; {(total - frag) / GIB:.1f} GiB before allocator fragmentation ({ALLOCATOR_FRAGMENTATION:.0%} of "
             f"reserved, the measured average), so it fits only if the caching allocator wastes less (e.g. "
             f"expandable_segments)") if total - frag <= usable else ""
    return (f"needs {total / GIB:.1f} GiB {where} but the GPU has {room} "
            f"(largest parts, GiB: {top}){tight}")


def estimate(plan: Plan) -> Estimate:
    """Estimate one plan. Raises SpecError when the layout does not divide; a plan that does not fit is a result."""
    ex = exec_from_spec(plan.layout, plan.run)
    check_layout(plan.model, plan.run, ex)
    ev = evaluate(plan, ex)
    reason = fit_reason(ev.memory, int(ex.pp))
    return Estimate(plan=plan, evaluation=ev, fits=reason is None, reason=reason)

