"""Divisibility rules of a layout, as boolean masks with a reason per rule.

One list of rules serves both a single plan (the first broken rule becomes a one-line :class:`SpecError` naming
every factor) and the layout search (each rule is a mask over all candidates; the reason code is kept per row).
The rules are Megatron-LM's (``megatron/core/parallel_state.py`` and its argument checks): heads and KV heads
split over tp, at least one layer per virtual pipeline stage (uneven stages are allowed, shorter at the ends as
torchtitan splits them and Megatron-LM's ``decoder_first/last_pipeline_num_layers`` set: ``Exec.edge_stage_layers``;
the fullest stage sets the pace), experts over ep, ep inside dp, sequence over 2·cp for load-balanced causal ring
attention, batch over micro-batch·dp, and the interleaved 1F1B schedule only with a micro-batch count that is a
multiple of pp (Megatron-LM ``schedules.forward_backward_pipelining_with_interleaving``: "number of microbatches
must be divisible by pipeline-model-parallel-size when using interleaved schedule"; Narayanan et al. 2021 §2.2.2:
with m < p micro-batches nothing fills the pipeline and the interleaved bubble (p-1)/v holds only for m ≥ p).

A plan that names its framework (``layout.framework``) also gets that framework's limits (:func:`framework_rules`),
so that neither an estimate nor a search accepts a layout the framework cannot run:

* **megatron** (Megatron-LM / Megatron-Core, NeMo): optimizer-state sharding is its distributed optimizer (ZeRO-1)
  and full sharding its FSDP (ZeRO-3); there is no ZeRO-2. Mixture-of-experts layers with tp > 1 need sequence
  parallelism (Megatron-Core MoE: "sequence parallelism must be used" with expert and tensor parallelism).
* **deepspeed**: its pipeline engine runs ZeRO-1 only ("ZeRO-2 and ZeRO-3 are incompatible with pipeline
  parallelism"), runs plain 1F1B (no interleaved schedule: vpp 1), and its sequence parallelism is Ulysses
  (all-to-all over heads), not the ring context parallelism planner costs (cp 1). Its pipeline sends the whole
  boundary tensor from every tensor-parallel rank (no Megatron scatter/gather; core/time.py, pipeline_s).
* **torchtitan**: shards with FSDP2 (ZeRO-3, or ZeRO-2 with reshard_after_forward off) or replicates with DDP: no
  ZeRO-1; its tensor parallelism always shards norms along the sequence (SequenceParallel), so tp > 1 means
  sequence_parallel on; torch.distributed.pipelining has no non-interleaved ZB-H1 schedule. ZB-H1 runs in Sea AI
  Lab's Megatron-LM fork (Qi et al. 2024), so megatron and an unset framework accept it.
* **fsdp** (PyTorch FSDP as llm-foundry/Composer and Hugging Face Accelerate run it): data parallelism only
  (tp = pp = cp = ep = 1), sharding NO_SHARD (0), SHARD_GRAD_OP (2), FULL_SHARD (3) or HYBRID_SHARD: no ZeRO-1.
* **ddp** (PyTorch DistributedDataParallel, as Lightning's DDPStrategy and the Hugging Face Trainer run it without
  FSDP or DeepSpeed): data parallelism only, the model replicated (zero_stage 0, or 1 with ZeroRedundancyOptimizer);
  its autocast mixed precision and gradient buckets are costed in memory and its fp32 gradient all-reduce in time
  (core/memory.py, state_bytes). Only where a plan names it: a plan that names no
  framework is costed as one of the four above.

A plan that names no framework must be runnable by one of the four (``no-framework``: the union of their rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..errors import SpecError
from ..specs.model import ModelSpec
from ..specs.layout import FRAMEWORK_CODE, SCHEDULE_CODE
from ..specs.run import RunSpec
from .layout import Exec, Num


@dataclass(frozen=True)
class Rule:
    code: str  #: short reason code kept per row in searches
    ok: object  #: bool or boolean array
    message: Callable[[Exec], str]  #: one line naming every factor (for scalars)


def layout_rules(model: ModelSpec, run: RunSpec, ex: Exec) -> list[Rule]:
    """Every divisibility rule of ``ex`` for ``model`` and ``run``."""
    layers = model.total_layers
    kv = model.kv_heads
    causal_cp = 2 if model.arch != "encoder" else 1
    rules = [
        Rule("heads%tp", model.num_heads % ex.tp == 0,
             lambda e: f"num_heads({model.num_heads}) not divisible by tp({e.tp})"),
        Rule("kv_heads%tp", kv % ex.tp == 0,
             lambda e: f"num_kv_heads({kv}) not divisible by tp({e.tp})"),
        Rule("ffn%tp", model.ffn_hidden % ex.tp == 0,
             lambda e: f"ffn_hidden({model.ffn_hidden}) not divisible by tp({e.tp})"),
        Rule("layers<pp·vpp", layers >= ex.pp * ex.vpp,
             lambda e: f"layers({layers}) < pp({e.pp})·vpp({e.vpp})={e.pp * e.vpp}: a virtual stage needs a layer"),
        Rule("seq%cp", run.seq_len % (causal_cp * ex.cp) == 0,
             lambda e: f"seq_len({run.seq_len}) not divisible by {causal_cp}·cp({e.cp})={causal_cp * e.cp}"
             + (" (causal ring attention balances 2·cp chunks)" if causal_cp == 2 else "")),
        Rule("batch%(mb·dp)", ex.global_batch % (ex.micro_batch * ex.dp) == 0,
             lambda e: f"global_batch({e.global_batch}) ≠ micro_batch({e.micro_batch})·dp({e.dp})·accumulation "
             f"(not divisible: {e.global_batch}/{e.micro_batch * e.dp} = {e.global_batch / (e.micro_batch * e.dp):g})"),
        Rule("interleaved:m%pp", (ex.vpp == 1) | (np.floor(ex.grad_accum) % ex.pp == 0),
             lambda e: f"interleaved schedule (vpp {e.vpp}) needs micro-batches per step ({e.grad_accum:g} = "
             f"global_batch/(micro_batch·dp)) to be a multiple of pp({e.pp})"),
        Rule("ep%dp", ex.dp % ex.ep == 0,
             lambda e: f"ep({e.ep}) must divide dp({e.dp}) (experts are split across data-parallel ranks)"),
    ]
    if model.moe is not None:
        n = model.moe.num_experts
        rules.append(Rule("experts%ep", n % ex.ep == 0,
                          lambda e: f"moe.num_experts({n}) not divisible by ep({e.ep})"))
    else:
        rules.append(Rule("ep_without_moe", ex.ep == 1, lambda e: f"ep({e.ep}) > 1 but the model has no experts"))
    rules.append(Rule("zb-h1:vpp", (ex.schedule != SCHEDULE_CODE["zb-h1"]) | (ex.vpp == 1),
                      lambda e: f"pipeline_schedule zb-h1 is not interleaved: vpp({e.vpp}) must be 1"))
    return rules + framework_rules(model, ex)


def framework_rules(model: ModelSpec, ex: Exec) -> list[Rule]:
    """The limits of the plan's framework (``Exec.framework``), as in the module docstring. A plan that names none
    gets one rule: some framework must run the layout (the union of the four), so that no estimate or search
    accepts a layout none of them can run (ZeRO-2 with a pipeline and tensor parallelism without sequence
    parallelism, say: Megatron has no ZeRO-2, DeepSpeed's pipeline no ZeRO-2, torchtitan no TP without SP)."""
    code = int(ex.framework)
    if code != FRAMEWORK_CODE[None]:
        return _rules_of(code, model, ex)

    def why(e):
        first = {name: next(r for r in _rules_of(FRAMEWORK_CODE[name], model, e) if not bool(r.ok))
                 for name in COSTING_ORDER}
        return "no framework runs this layout: " + "; ".join(r.message(e) for r in first.values())
    return [Rule("no-framework", np.any(np.broadcast_arrays(*_runs(model, ex).values()), axis=0), why)]


#: The frameworks a plan that names none is costed as, in this order: the first that runs the layout
COSTING_ORDER = ("megatron", "deepspeed", "torchtitan", "fsdp")


def _runs(model: ModelSpec, ex: Exec) -> dict[str, Num]:
    """Per framework of :data:`COSTING_ORDER`, where its rules run the layout (masks)."""
    return {name: np.all(np.broadcast_arrays(*[np.asarray(r.ok, dtype=bool)
                                               for r in _rules_of(FRAMEWORK_CODE[name], model, ex)]), axis=0)
            for name in COSTING_ORDER}


def costed_framework(model: ModelSpec, ex: Exec) -> Num:
    """The FRAMEWORK_CODE a layout is costed as: the plan's own; with none named, the first framework of
    :data:`COSTING_ORDER` whose rules run it, so that what one framework does is costed only where that framework
    runs the layout (Megatron-LM's overlapped backward TP all-reduce, DeepSpeed's whole-tensor pipeline sends,
    torchtitan's FSDP2); 0 where none runs it (the ``no-framework`` rule rejects those). An array ``framework`` is
    one this function returned (a plan names one framework, a scalar): it comes back as it is."""
    if np.ndim(ex.framework) or int(ex.framework) != FRAMEWORK_CODE[None]:
        return ex.framework
    runs = _runs(model, ex)
    return np.select([runs[n] for n in COSTING_ORDER], [FRAMEWORK_CODE[n] for n in COSTING_ORDER],
                     FRAMEWORK_CODE[None])


def costed_exec(model: ModelSpec, ex: Exec) -> Exec:
    """``ex`` with ``framework`` the one each layout is costed as (:func:`costed_framework`); ``ex`` itself when that
    is what it holds already (evaluate costs it once; memory and time then reuse it, and what ``ex`` caches)."""
    code = costed_framework(model, ex)
    return ex if code is ex.framework else ex.replace(framework=code)


#: FRAMEWORK_CODE -> name (None for 0: no framework)
FRAMEWORK_NAMES = {code: name for name, code in FRAMEWORK_CODE.items()}


def framework_name(code) -> Optional[str]:
    """The framework a (scalar) FRAMEWORK_CODE names; None for none."""
    return FRAMEWORK_NAMES[int(code)]


def _rules_of(code: int, model: ModelSpec, ex: Exec) -> list[Rule]:
    """The rules of one framework (FRAMEWORK_CODE)."""
    zero = ex.zero_stage
    if code == FRAMEWORK_CODE["megatron"]:
        rules = [Rule("megatron:zero2", zero != 2, lambda e: "framework megatron has no ZeRO-2: its distributed "
                      "optimizer is ZeRO-1 (zero_stage 1) and its FSDP ZeRO-3 (zero_stage 3)")]
        if model.moe is not None:
            rules.append(Rule("megatron:moe-tp-sp", (ex.tp == 1) | (ex.sp == 1), lambda e: f"framework megatron "
                              f"runs MoE layers with tp({e.tp}) > 1 only with sequence_parallel on"))
        return rules
    if code == FRAMEWORK_CODE["deepspeed"]:
        return [
            Rule("deepspeed:zero+pp", (ex.pp == 1) | (zero <= 1), lambda e: f"framework deepspeed runs ZeRO-"
                 f"{int(e.zero_stage)} only without pipeline parallelism (pp {e.pp}): its pipeline engine supports "
                 f"ZeRO-1 at most"),
            Rule("deepspeed:vpp", ex.vpp == 1, lambda e: f"framework deepspeed has no interleaved pipeline schedule: "
                 f"vpp({e.vpp}) must be 1"),
            Rule("deepspeed:zb-h1", (ex.schedule == 0) | (ex.pp == 1), lambda e: "framework deepspeed's pipeline "
                 "engine runs 1F1B only: no zb-h1 schedule"),
            Rule("deepspeed:cp", ex.cp == 1, lambda e: f"framework deepspeed has no ring context parallelism (its "
                 f"Ulysses sequence parallelism is another scheme): cp({e.cp}) must be 1"),
        ]
    if code == FRAMEWORK_CODE["torchtitan"]:
        return [
            Rule("torchtitan:zero1", zero != 1, lambda e: "framework torchtitan has no ZeRO-1: it shards with FSDP2 "
                 "(zero_stage 3, or 2 with reshard_after_forward off) or replicates with DDP (zero_stage 0)"),
            Rule("torchtitan:zb-h1", (ex.schedule == 0) | (ex.pp == 1), lambda e: "framework torchtitan "
                 "(torch.distributed.pipelining) has 1F1B, interleaved 1F1B and the interleaved/V-shaped zero-bubble "
                 "schedules, not the non-interleaved zb-h1"),
            Rule("torchtitan:tp-sp", (ex.tp == 1) | (ex.sp == 1), lambda e: f"framework torchtitan's tensor "
                 f"parallelism (tp {e.tp}) always shards norms along the sequence: sequence_parallel must be on"),
        ]
    if code == FRAMEWORK_CODE["fsdp"]:
        return [
            Rule("fsdp:dp-only", (ex.tp == 1) & (ex.pp == 1) & (ex.cp == 1) & (ex.ep == 1),
                 lambda e: f"framework fsdp is data parallel only: tp({e.tp}) pp({e.pp}) cp({e.cp}) ep({e.ep}) "
                 f"must all be 1"),
            Rule("fsdp:zero1", zero != 1, lambda e: "framework fsdp has no ZeRO-1: NO_SHARD (zero_stage 0), "
                 "SHARD_GRAD_OP (2), FULL_SHARD (3) or HYBRID_SHARD (fsdp hybrid)"),
        ]
    if code == FRAMEWORK_CODE["ddp"]:
        return [
            Rule("ddp:dp-only", (ex.tp == 1) & (ex.pp == 1) & (ex.cp == 1) & (ex.ep == 1),
                 lambda e: f"framework ddp is data parallel only: tp({e.tp}) pp({e.pp}) cp({e.cp}) ep({e.ep}) "
                 f"must all be 1"),
            Rule("ddp:sharding", zero <= 1, lambda e: f"framework ddp replicates the model: zero_stage"
                 f"({int(e.zero_stage)}) at most 1 (ZeroRedundancyOptimizer), no FSDP"),
            Rule("ddp:offload", ex.offload == 0, lambda e: "framework ddp keeps the optimizer on the GPU: no "
                 "offload_optimizer (ZeRO-Offload is DeepSpeed's, CPU offload FSDP's)"),
        ]
    return []


def valid_mask(model: ModelSpec, run: RunSpec, ex: Exec) -> tuple[np.ndarray, np.ndarray]:
    """(ok, reason) arrays: ok is True where every rule holds; reason holds the first broken rule's code."""
    rules = layout_rules(model, run, ex)
    shape = np.broadcast(*[np.asarray(r.ok) for r in rules]).shape
    ok = np.ones(shape, dtype=bool)
    reason = np.full(shape, "", dtype=object)
    for r in rules:
        bad = ~np.broadcast_to(np.asarray(r.ok, dtype=bool), shape) & ok
        reason[bad] = r.code
        ok &= ~bad
    return ok, reason


def check_layout(model: ModelSpec, run: RunSpec, ex: Exec) -> None:
    """Raise :class:`SpecError` with the first broken rule of a single (scalar) layout."""
    for r in layout_rules(model, run, ex):
        if not bool(r.ok):
            raise SpecError(f"layout: {r.message(ex)}")
