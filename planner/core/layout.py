"""The execution choices as numbers that broadcast.

The core never reads a ``LayoutSpec`` directly: it reads an :class:`Exec`, whose fields are ints *or* numpy
arrays. One estimate builds it from a spec (scalars); the layout search builds it from arrays of 10^6 candidates.
Both run the same formulas (docs/DESIGN.md §1). String choices become integer codes (see ``RECOMPUTE_CODE``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..specs.layout import FRAMEWORK_CODE, FSDP_CODE, RECOMPUTE_CODE, SCHEDULE_CODE, LayoutSpec
from ..specs.run import RunSpec

Num = Any  # int | float | np.ndarray: everything here broadcasts

#: Fused attention kernels as the integer codes of ``Exec.fa3``.
ATTENTION_KERNEL_CODE = {"flash2": 0, "flash3": 1, "triton": 2}


@dataclass(frozen=True)
class Exec:
    """Parallel degrees and execution switches, scalar or array-valued (all fields broadcast together)."""

    tp: Num  #: tensor-parallel degree
    pp: Num  #: pipeline stages
    dp: Num  #: data-parallel replicas
    cp: Num  #: context-parallel degree
    ep: Num  #: expert-parallel degree
    vpp: Num  #: virtual stages per GPU
    micro_batch: Num  #: sequences per micro-batch
    global_batch: Num  #: sequences per step
    zero_stage: Num  #: effective ZeRO stage 0-3 (FSDP = 3)
    fsdp: Num  #: FSDP_CODE: 0 none, 1 full, 2 hybrid
    sp: Num  #: sequence parallel 0/1
    recompute: Num  #: RECOMPUTE_CODE: 0 none, 1 selective, 2 full
    flash: Num  #: FlashAttention 0/1
    offload: Num  #: optimizer offload 0/1
    tp_overlap: Num = 0  #: TP communication overlapped with GEMMs 0/1
    fa3: Num = 0  #: ATTENTION_KERNEL_CODE of the fused kernel: 0 flash2, 1 flash3 (Hopper-native), 2 triton
    recompute_frac: Num = 1.0  #: with full recomputation, the share of layers recomputed
    framework: Num = 0  #: FRAMEWORK_CODE of the plan's framework (0: unset; the time model costs an unset one
    #: per layout, checks.costed_framework); one per plan, never searched over
    schedule: int = 0  #: SCHEDULE_CODE of the pipeline schedule (0: 1F1B, 1: ZB-H1); one per plan
    eager: int = 0  #: elementwise ops run eagerly, unfused, with fp32 upcasts (layout.eager_elementwise); one per plan

    @property
    def full_recompute_share(self) -> Num:
        """Share of layers fully recomputed: recompute_frac under full recomputation, else 0."""
        return np.where(self.recompute == 2, self.recompute_frac, 0.0)

    @property
    def gpus(self) -> Num:
        """GPUs in the job."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def grad_accum(self) -> Num:
        """Micro-batches per step per replica (may be fractional when the batch does not divide: masked)."""
        return self.global_batch / (self.micro_batch * self.dp)

    def stage_fraction(self, layers: int) -> Num:
        """Share of the model's layers on the most loaded pipeline stage: ceil(L/(pp·vpp))·vpp / L.

        1/pp when pp·vpp divides L; otherwise the stages are uneven (Megatron-LM's uneven first/last stages, as
        Llama 3 405B's 126 layers on 16 stages) and the fullest one sets the pace and the memory."""
        return np.ceil(layers / (self.pp * self.vpp)) * self.vpp / layers

    def edge_stage_layers(self, layers: int) -> tuple[Num, Num]:
        """Layers on the (first, last) pipeline rank when the stages are uneven, split as torchtitan's default
        does (``generate_split_points``; the same split Llama 3 405B ran, 126 layers on 16 stages as 7, 14 x 8, 7:
        Dubey et al. 2024 §3.3.2): over S = pp·vpp virtual stages of base = floor(L/S) layers, the first virtual
        stage keeps base, the middle ones take the L mod S extra layers in order, the last the remainder. A rank
        holds virtual stages rank, rank + pp, ... (looped). Even stages: L/pp each. The fullest rank, which sets the
        pace, is counted as ceil(L/S)·vpp (:meth:`stage_fraction`). Kept per instance and layer count: the memory
        model asks for it a dozen times per evaluation, and over a search's arrays each asking costs milliseconds."""
        cache = self.__dict__.setdefault("_edge_layers", {})  # not a field: equality and replace() ignore it
        if layers not in cache:
            cache[layers] = self._edge_stage_layers(layers)
        return cache[layers]

    def _edge_stage_layers(self, layers: int) -> tuple[Num, Num]:
        S = self.pp * self.vpp
        base, extra = np.floor(layers / S), np.mod(layers, S)
        first = base * self.vpp + np.minimum(self.vpp - 1, np.floor(extra / self.pp))
        own = np.clip(np.floor((extra - self.pp + 1) / self.pp) + 1, 0, self.vpp - 1)  # its middle stages' extras
        last = base * self.vpp + own + np.maximum(0, extra - (S - 2))
        single = self.pp == 1
        return np.where(single, layers, first), np.where(single, layers, last)

    def shard_group(self, gpus_per_node: int) -> Num:
        """Ranks a ZeRO/FSDP shard spans: :func:`shard_group` of this layout."""
        return shard_group(self.dp, self.cp, self.tp, self.fsdp == FSDP_CODE["hybrid"], gpus_per_node)

    def replace(self, **changes) -> "Exec":
        return replace(self, **changes)

    def size(self) -> int:
        """Number of candidates (1 for scalars)."""
        return int(np.broadcast(*[np.asarray(getattr(self, f.name)) for f in fields(self)]).size)


def shard_group(dp: Num, cp: Num, tp: Num, hybrid: Num, gpus_per_node: int) -> Num:
    """Ranks a ZeRO/FSDP shard spans: dp·cp (full sharding), or under hybrid sharding the data-parallel replicas
    inside one node (gpus_per_node / tp), at most dp·cp."""
    full = np.asarray(dp) * np.asarray(cp)
    in_node = np.maximum(1, gpus_per_node // np.maximum(1, np.asarray(tp)))
    return np.where(np.asarray(hybrid, dtype=bool), np.minimum(full, in_node), full)


def exec_from_spec(layout: LayoutSpec, run: RunSpec) -> Exec:
    """The scalar :class:`Exec` of one plan."""
    batch = run.batch_seqs
    return Exec(
        tp=layout.tp, pp=layout.pp, dp=layout.data_parallel, cp=layout.cp, ep=layout.ep, vpp=layout.vpp,
        micro_batch=run.micro_batch,
        global_batch=batch if batch is not None else run.micro_batch * layout.data_parallel,
        zero_stage=layout.effective_zero_stage, fsdp=FSDP_CODE[layout.fsdp], sp=int(layout.sequence_parallel),
        recompute=RECOMPUTE_CODE[layout.recompute], flash=int(layout.flash_attention),
        offload=int(layout.offload_optimizer), tp_overlap=int(layout.tp_comm_overlap),
        fa3=ATTENTION_KERNEL_CODE[layout.attention_kernel], recompute_frac=layout.recompute_fraction,
        framework=FRAMEWORK_CODE[layout.framework], schedule=SCHEDULE_CODE[layout.pipeline_schedule],
        eager=int(layout.eager_elementwise),
    )
