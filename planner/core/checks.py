"""Divisibility rules of a layout, as boolean masks with a reason per rule.

One list of rules serves both a single plan (the first broken rule becomes a one-line :class:`SpecError` naming
every factor) and the layout search (each rule is a mask over all candidates; the reason code is kept per row).
The rules are Megatron-LM's (``megatron/core/parallel_state.py`` and its argument checks): heads and KV heads
split over tp, at least one layer per virtual pipeline stage (uneven stages are allowed, as Megatron-LM's
``decoder_first/last_pipeline_num_layers``; the fullest stage is costed), experts over ep, ep inside dp, sequence over 2·cp for load-balanced causal
ring attention, batch over micro-batch·dp, and the interleaved 1F1B schedule only with a micro-batch count that is a
multiple of pp (Megatron-LM ``schedules.forward_backward_pipelining_with_interleaving``: "number of microbatches
must be divisible by pipeline-model-parallel-size when using interleaved schedule"; Narayanan et al. 2021 §2.2.2:
with m < p micro-batches nothing fills the pipeline and the interleaved bubble (p-1)/v holds only for m ≥ p).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SpecError
from ..specs.model import ModelSpec
from ..specs.run import RunSpec
from .layout import Exec


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
    return rules


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
