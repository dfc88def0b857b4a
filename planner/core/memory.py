"""Memory per GPU as a breakdown, for the most loaded GPU.

Sources:

* **Model states** (Rajbhandari et al. 2020, ZeRO §3): mixed-precision Adam holds 2 bytes of weights, 2 (or 4 with
  fp32 gradient accumulation) of gradients and 12 of optimizer state (fp32 master, momentum, variance) per
  parameter. ZeRO-1 shards the optimizer state over the data-parallel group, ZeRO-2 also the gradients, ZeRO-3
  (= FSDP full shard) also the weights. Optimizer bytes per kind: :data:`OPTIMIZER_STATE_BYTES`. PyTorch DDP
  (``framework: ddp``) runs mixed precision as torch.autocast does, fp32 parameters and gradients plus cached casts,
  and holds the gradients twice: its all-reduce buckets beside ``param.grad`` (the DistributedDataParallel docs,
  ``gradient_as_bucket_view``: off by default; on, it "saves memory equal to the total gradients size");
  Megatron's, DeepSpeed's and FSDP's gradients are views of their own buffers (:func:`state_bytes`).
* **Activations** (Korthikanti et al. 2022 §4, Table 2): per layer and micro-batch, s·b·h·(34 + 5·a·s/h) bytes with
  no parallelism, derived there tensor by tensor. :func:`layer_activation_bytes` keeps that derivation but sizes
  each tensor from the real shapes (GQA's narrower K/V, SwiGLU's three FFN tensors, dropout on or off, fused
  attention that keeps no s x s scores, context parallelism), and reproduces all five rows of Table 2 when set
  to the paper's case (a test checks it). Full recomputation keeps only the layer input (2·s·b·h, /t with sequence
  parallelism) plus one layer's working set for the layer being recomputed. That working set is never alive beside
  the loss's tensors (the head's backward frees them before the last layer is recomputed), so the stage that
  computes the loss counts the larger of the two, not both.
* **Pipeline** (Korthikanti §4.2.3, Narayanan 2021 §2.2): with 1F1B rank r holds min(pp - r, m) micro-batches of
  its layers in flight, so the first stage one micro-batch of all L layers; interleaving with v virtual stages holds
  what Megatron-LM's schedule loop warms up (:func:`in_flight_microbatches`: pp·(1 + (pp-1)/(pp·v)) on the first
  rank when m >= 2pp, but only m when m = pp, where the first half of the ranks run every forward first). The last
  stage holds one micro-batch (1F1B) but also the logits and what the loss keeps (**Loss** below), and the output
  head's weights. Uneven stages are short at the ends (:meth:`Exec.edge_stage_layers`: Llama 3 405B's 7, 14 x 8, 7),
  so the second rank, fullest with one micro-batch less, can hold the most. First, second and last rank are
  computed; the largest is the GPU that must fit.
  Recomputation as Megatron-LM implements it: selective = the attention core (the s x s scores) recomputed; full
  = the layer input kept; torchtitan's per-layer policy = full recomputation of every other block.
* **Loss**, as the framework implements it (``loss``, :data:`LOSS_KINDS`), bytes per logit element:
  ``fused`` (the default; Megatron's vocab-parallel cross entropy keeps the fp32 softmax, Korthikanti's 4·s·b·V/t,
  beside the bf16 logits): e + 4; ``unfused`` (PyTorch's ``F.cross_entropy(pred.float(), labels)`` as torchtitan
  calls it, uncompiled: ``log_softmax`` saves its fp32 result for backward (autograd derivatives.yaml) while the
  bf16 logits and the fp32 copy it reads are alive): e + 4 + 4; ``inplace`` (flash-attn's Triton cross entropy,
  llm-foundry's ``fused_crossentropy``, and a torch.compile'd loss: the logits and an fp32 log-sum-exp per row,
  the gradient written over the logits): e.
* **ZeRO / FSDP buffers** (Zhao et al. 2023, "PyTorch FSDP", §3.2-3.3 and §4.2: a unit's parameters are
  all-gathered just before use and freed after; with forward/backward prefetch two units are unsharded at once,
  and backward reduce-scatters each unit's unsharded gradient): ZeRO-3 holds the largest unit's full weights twice
  (current and prefetched) and the root unit (embedding, final norm, head), which FSDP keeps unsharded from the
  start of forward to the end of backward (FSDP1 does not reshard the root after forward; torchtitan's FSDP2 root
  spans the whole forward); ZeRO-2 and -3 hold one unit's unsharded gradient plus the reduce-scatter in flight.
  Bounded by DeepSpeed's defaults and by what sharding saved. torchtitan's behaviour (:func:`torchtitan_fsdp`):
  with pipeline parallelism it passes ``reshard_after_forward=False`` (parallelize_llama.apply_fsdp) and
  torch.distributed.pipelining skips gradient reduction until the last micro-batch (``backward_maybe_with_nosync``):
  the stage's whole weights stay unsharded and its gradients accumulate unsharded in the fp32 reduce dtype. Counted
  in ``weights_bytes`` and ``gradients_bytes``, and in :attr:`MemoryBreakdown.fsdp_buffer_bytes`.
* **Overhead**, in named parts (:attr:`MemoryBreakdown.overhead_parts`):
  - ``runtime``: CUDA context, kernels and NCCL initialisation, outside PyTorch's caching allocator: the hardware
    profile's ``accelerator.memory_overhead_bytes`` (measured: stas00/ml-engineering, 2.0 GiB on A100);
  - ``nccl``: each communicator's buffers (:data:`NCCL_COMMUNICATOR_BYTES` per process group larger than one:
    NCCL_BUFFSIZE 4 MiB per channel and protocol, up to 32 channels), also outside the allocator;
  - ``fragmentation``: the caching allocator's reserved-but-unallocated memory, :data:`ALLOCATOR_FRAGMENTATION`
    of the reserved segments (GMLake, Guo et al. ASPLOS 2024, arXiv:2401.08156: the PyTorch caching allocator wastes
    15% on average, up to 33%, training eight LLMs on A100-80GB with recomputation and distributed training). Under
    memory pressure the allocator frees cached blocks and retries before it reports OOM (PyTorch docs, CUDA
    semantics: memory_stats num_alloc_retries), so fragmentation only takes the room the device has left: a run
    whose tensors, runtime and NCCL buffers fit its raw capacity is predicted to fit it (published runs ran); a
    plan fits when the total, fragmentation included, is within the capacity less the planning headroom.
  What a measurement counts (:meth:`MemoryBreakdown.comparable_bytes`): ``allocated`` (torch.cuda.max_memory_
  allocated) = the tensors; ``reserved`` (max_memory_reserved) = tensors + fragmentation; ``device`` (nvidia-smi) = the
  total.

Left out: temporary buffers inside kernels (cuBLAS workspaces, a few tens of MB), op-level selective recomputation
as its own saved-tensor set (torchtitan's op policy is counted as full recomputation of half the layers), and
activation memory of the embedding lookup other than its dropout mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

import numpy as np

from ..specs.hardware import HardwareSpec
from ..specs.layout import FRAMEWORK_CODE
from ..specs.model import AttentionSpec, ModelSpec
from ..specs.run import RunSpec
from .checks import costed_exec
from .flops import RECOMPUTE_FULL, RECOMPUTE_SELECTIVE, attention_pairs, sequence_lengths
from .layout import Exec, Num
from .params import ParamBreakdown, expert_width, layer_groups, param_breakdown

#: Optimizer state bytes per parameter, master weights included under mixed precision.
#: Adam/AdamW: fp32 momentum + variance (8) + fp32 master (4) (ZeRO §3.1: K = 12).
#: SGD with momentum: fp32 momentum (4) + master (4). 8-bit Adam (Dettmers et al. 2022): 1 + 1 byte of
#: quantised moments + master (4) (block-wise quantisation constants, < 0.1 byte, left out). Adafactor (Shazeer &
#: Stern 2018): factored second moment, O(rows + cols) per matrix (~0 per parameter) and no momentum + master (4).
#: fp32 bytes per logit element: the (log-)softmax a loss keeps for backward, and the fp32 copy an unfused loss
#: reads (module docstring, **Loss**).
LOSS_FP32_BYTES = 4.0
#: Bytes per gradient element torchtitan's FSDP2 accumulates and reduce-scatters under mixed precision: its
#: ``training.mixed_precision_reduce`` defaults to float32 (torchtitan's job config), whatever the parameters' dtype
TORCHTITAN_REDUCE_BYTES = 4.0

#: How a framework computes the loss: fused (the default), unfused or inplace (module docstring, **Loss**).
LOSS_KINDS = ("fused", "unfused", "inplace")
#: The loss of each ``layout.framework`` (FRAMEWORK_CODE; 0 = unset): Megatron-LM/NeMo's vocab-parallel cross
#: entropy is fused; torchtitan calls F.cross_entropy on fp32 logits uncompiled (train.py of 2024); DeepSpeed and
#: plain FSDP run the model's own loss, most often Hugging Face Transformers' cross entropy on logits upcast to
#: fp32: unfused (the conservative choice where a model brings a fused one, as llm-foundry's MPT does).
FRAMEWORK_LOSS = {FRAMEWORK_CODE[None]: "fused", FRAMEWORK_CODE["megatron"]: "fused",
                  FRAMEWORK_CODE["deepspeed"]: "unfused", FRAMEWORK_CODE["torchtitan"]: "unfused",
                  FRAMEWORK_CODE["fsdp"]: "unfused", FRAMEWORK_CODE["ddp"]: "unfused"}

#: Live unsharded parameters and gradient-bucket elements of ZeRO-3 per GPU are bounded: DeepSpeed's defaults
#: stage3_max_live_parameters 1e9 and reduce_bucket_size 5e8 (DeepSpeed config docs, "ZeRO optimizations");
#: PyTorch FSDP's per-block units stay below these for any model that fits (a Llama 3.1 405B block is 3.2e9
#: parameters, 4e8 per GPU at tp 8).
ZERO3_MAX_LIVE_PARAMETERS = 1e9
ZERO3_REDUCE_BUCKET_ELEMENTS = 5e8

#: Share of the caching allocator's reserved memory that is fragmentation at the peak: GMLake (Guo et al., ASPLOS
#: 2024, arXiv:2401.08156, abstract and §6): 15% on average (up to 33%) over eight LLMs on A100-80GB. Reserved =
#: allocated / (1 - fraction).
ALLOCATOR_FRAGMENTATION = 0.15

#: NCCL buffers per communicator (process group of more than one rank), bytes: NCCL_BUFFSIZE defaults to 4 MiB per
#: channel for the Simple protocol, LL128 about as much again and LL a fraction of it (NCCL environment-variable
#: docs, NCCL_BUFFSIZE / NCCL_PROTO), times up to 32 channels on NVLink/InfiniBand (NCCL_MAX_NCHANNELS) = 0.25 GiB.
NCCL_COMMUNICATOR_BYTES = 0.25 * 2.0 ** 30

OPTIMIZER_STATE_BYTES = {  # (mixed precision, full precision): bytes/parameter
    "adam": (12.0, 8.0),
    "adamw": (12.0, 8.0),
    "sgd": (8.0, 4.0),
    "adam8bit": (6.0, 2.0),
    "adafactor": (4.0, 0.0),
}


def bytes_per_weight(run: RunSpec) -> float:
    """Bytes per stored weight: 4 for fp32/tf32 training, 2 under mixed precision (fp8/fp4 keep bf16 weights, as
    Transformer Engine does; a named recipe's quantised copies are :func:`weight_copy_bytes`)."""
    return 2.0 if run.mixed_precision else 4.0


def bytes_per_grad(run: RunSpec) -> float:
    """Bytes per gradient element."""
    if run.grad_bytes_per_param is not None:
        return run.grad_bytes_per_param
    return 2.0 if run.mixed_precision else 4.0


def optimizer_bytes_per_param(run: RunSpec) -> float:
    """Optimizer state (and master copy) bytes per parameter.

    Mixed precision: master weights (``run.master_weights_dtype``: fp32 4, bf16 2) + the optimizer's moments
    (:data:`OPTIMIZER_STATE_BYTES`' full-precision column), halved when ``run.optimizer_moments_dtype`` is bf16
    (8-bit Adam's 1-byte moments stay). DeepSeek-V3 (§3.3.3: fp32 master weights, bf16 AdamW moments): 4 + 4 = 8
    bytes instead of 12."""
    if run.optimizer_state_bytes_per_param is not None:
        return run.optimizer_state_bytes_per_param
    mixed, full = OPTIMIZER_STATE_BYTES[run.optimizer]
    if not run.mixed_precision:
        return full
    if run.master_weights_dtype == "fp32" and run.optimizer_moments_dtype == "fp32":
        return mixed
    master = 4.0 if run.master_weights_dtype == "fp32" else 2.0
    moments = mixed - 4.0
    if run.optimizer_moments_dtype == "bf16" and run.optimizer != "adam8bit":
        moments = moments / 2.0
    return master + moments


#: Bytes per parameter of the fp16/bf16 copies torch.autocast caches of the weights it casts for its matmuls
#: (``torch.autocast(cache_enabled=True)``, the default: kept until the autocast region is left, so all of them at
#: the loss of a forward run in one region).
AUTOCAST_CACHE_BYTES = 2.0


def state_bytes(run: RunSpec, code: Num) -> tuple[Num, Num, Num]:
    """(weight, gradient, optimizer) bytes per parameter for the framework ``code`` (FRAMEWORK_CODE; arrays too).

    Mixed precision as Megatron-LM, DeepSpeed and FSDP run it: :func:`bytes_per_weight`, :func:`bytes_per_grad`,
    :func:`optimizer_bytes_per_param`. PyTorch DDP (``ddp``) runs it as torch.autocast does (Lightning's
    ``16-mixed``/``bf16-mixed``, the Hugging Face Trainer's fp16/bf16): fp32 parameters (4 bytes, no separate master
    copy: the optimizer keeps its moments only) plus :data:`AUTOCAST_CACHE_BYTES` of cast copies, fp32 gradients
    (4), and its all-reduce buckets beside ``param.grad`` (``gradient_as_bucket_view`` off by default: the gradients
    twice)."""
    w, o = bytes_per_weight(run), optimizer_bytes_per_param(run)
    ddp = np.asarray(code) == FRAMEWORK_CODE["ddp"]
    amp = ddp & run.mixed_precision
    master = 4.0 if run.master_weights_dtype == "fp32" else 2.0
    o_amp = o if run.optimizer_state_bytes_per_param is not None else o - master
    return (np.where(amp, 4.0 + AUTOCAST_CACHE_BYTES, w), gradient_bytes(run, code) * np.where(ddp, 2.0, 1.0),
            np.where(amp, o_amp, o))


def gradient_bytes(run: RunSpec, code: Num) -> Num:
    """Bytes of one gradient element as the framework ``code`` keeps and reduces it: :func:`bytes_per_grad`, but fp32
    (4) under PyTorch DDP's torch.autocast mixed precision, whose parameters and so gradients are fp32."""
    g = bytes_per_grad(run)
    amp = (np.asarray(code) == FRAMEWORK_CODE["ddp"]) & run.mixed_precision & (run.grad_bytes_per_param is None)
    return np.where(amp, 4.0, g)


def weight_copy_bytes(run: RunSpec) -> float:
    """Bytes per parameter of the low-precision weight copies a named recipe keeps between micro-batches of a step
    (``kernels.RECIPES``: Transformer Engine caches the fp8 weight and its transpose; block formats whose blocks
    serve the transpose keep one). 0 for bf16, and for fp8 named without a recipe (planner's model before recipes
    left these copies out)."""
    from .kernels import RECIPES

    if run.precision_recipe is None or run.recipe is None:
        return 0.0
    return RECIPES[run.recipe].weight_copy_bytes


def activation_bytes_per_element(run: RunSpec) -> float:
    """Bytes per stored activation element: 4 in fp32/tf32 training, else 2 (fp8 GEMM inputs are cast copies)."""
    return 2.0 if run.mixed_precision else 4.0


def layer_activation_bytes(
    model: ModelSpec, run: RunSpec, ex: Exec, *, decoder_side: bool, cross: bool, is_moe: bool, s_other: int
) -> Num:
    """Activation bytes one layer keeps for backward, per micro-batch, on one GPU (no recomputation).

    Tensor by tensor after Korthikanti et al. 2022 §4.1 (their element counts in brackets, for MHA, 4h GELU,
    dropout on): replicated across TP ranks unless sequence parallel: both norm inputs [4sbh], the QKV input [2sbh],
    the FFN input [2sbh], two dropout masks [2sbh, 1 byte each]; sharded over TP: Q, K, V [6sbh], attention output
    [2sbh], FFN hidden tensors [16sbh], and without a fused kernel the softmax output [2as²b], its dropout mask
    [as²b] and dropout output [2as²b]. With a fused kernel the scores are not kept; the row log-sum-exp (fp32, a·s·b)
    is. Context parallelism splits every tensor's sequence by cp.
    """
    s_enc, s_dec = sequence_lengths(model, run)
    s = s_dec if decoder_side else s_enc
    b = ex.micro_batch
    t = ex.tp
    c = ex.cp
    d, a, dh, kv = model.hidden_size, model.num_heads, model.head_size, model.kv_heads
    q_w, kv_w = a * dh, kv * dh
    e = activation_bytes_per_element(run)
    drop = 1.0 if model.dropout > 0 else 0.0
    sb = s * b / c  # tokens of this micro-batch on one context-parallel rank

    n_norms = (1 if model.parallel_block else 2) + (1 if cross else 0)
    replicated = sb * d * (e * n_norms + e * 2 + drop * 2)  # norm inputs, QKV and FFN inputs, 2 dropout masks
    sharded = sb * e * (q_w + 2 * kv_w + q_w)  # Q, K, V and the attention output (input of the O projection)
    if model.mla is not None:  # MLA (DeepSeek-V2 §2.1): Q and K of a·(nope+rope), V and the output of a·v; the
        mla = model.mla        # query and KV latents (+ rotary key) and their normed copies feed the up projections
        sharded = sb * e * (2 * a * mla.qk_head_dim + 2 * a * mla.v_head_dim)
        replicated = replicated + sb * e * 2 * ((mla.q_lora_rank or 0) + mla.kv_lora_rank + mla.qk_rope_head_dim)

    attn = model.attention if (model.arch != "encoder_decoder" or decoder_side) else AttentionSpec(pattern="full")
    _, hw_pairs = attention_pairs(attn, s, causal=(model.arch == "decoder" or decoder_side), fused=0)
    # Without a fused kernel: softmax output (e), dropout mask (1 byte) and dropout output (e) per scored pair.
    # Dense kernels materialise every scored pair; CP splits the queries.
    score_bytes = a * b * hw_pairs / c * (e + drop * (1.0 + e))
    lse_bytes = a * sb * 4.0  # fused kernel: fp32 log-sum-exp per query row
    if cross:
        replicated = replicated + sb * d * (e + drop)  # cross-attention Q input and its dropout mask
        sharded = sharded + sb * e * 2 * q_w + s_other * b / c * e * 2 * kv_w
        score_bytes = score_bytes + a * b * float(s) * s_other / c * (e + drop * (1.0 + e))
        lse_bytes = lse_bytes + a * sb * 4.0
    # FFN hidden tensors: GELU/ReLU keep fc1 output and activation output [2 x f]; gated FFNs keep the gate and up
    # outputs and their product [3 x f]. MoE: each token passes top_k (+ shared) experts.
    f_tensors = 3 if model.ffn_matrices == 3 else 2
    if is_moe:
        width = expert_width(model) * (model.moe.top_k + model.moe.shared_experts)
        sharded = sharded + sb * e * f_tensors * width + sb * 4.0 * model.moe.num_experts  # + fp32 router logits
    else:
        sharded = sharded + sb * e * f_tensors * model.ffn_hidden

    keep_scores = np.where(ex.flash == 1, lse_bytes, np.where(ex.recompute == RECOMPUTE_SELECTIVE, 0.0, score_bytes))
    shard_rep = np.where(ex.sp == 1, t, 1)
    return replicated / shard_rep + (sharded + keep_scores) / t


def layer_input_bytes(model: ModelSpec, run: RunSpec, ex: Exec, decoder_side: bool) -> Num:
    """What full recomputation keeps per layer: the layer input, 2·s·b·h bytes (/t with SP, /cp)."""
    s_enc, s_dec = sequence_lengths(model, run)
    s = s_dec if decoder_side else s_enc
    e = activation_bytes_per_element(run)
    return s * ex.micro_batch / ex.cp * model.hidden_size * e / np.where(ex.sp == 1, ex.tp, 1)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on the most loaded GPU. ``total_bytes`` is the sum of the parts (a test checks it)."""

    weights_bytes: Num
    gradients_bytes: Num
    optimizer_bytes: Num
    activations_bytes: Num
    logits_bytes: Num
    overhead_bytes: Num
    stage: Num  #: which pipeline stage is the most loaded one: 0 (first) or pp-1 (last)
    capacity_bytes: float  #: device memory of one GPU
    usable_bytes: float  #: capacity less the plan's headroom (hardware.memory_headroom_fraction): what fits
    optimizer_offloaded_bytes: Num  #: optimizer state held in CPU memory instead (not in total): bytes
    #: named parts of ``overhead_bytes`` (runtime, nccl, fragmentation): bytes; they sum to it
    overhead_parts: dict = field(default_factory=dict, compare=False)
    fsdp_buffer_bytes: Num = 0.0  #: of weights + gradients: FSDP/ZeRO-3 unsharded parameters and gradients, bytes
    params_per_gpu: Num = 0.0  #: parameters the most loaded GPU holds before ZeRO sharding (its stage's)

    @property
    def allocated_bytes(self) -> Num:
        """Tensors at the peak (what torch.cuda.max_memory_allocated measures): total less the overhead."""
        return self.total_bytes - self.overhead_bytes

    @property
    def reserved_bytes(self) -> Num:
        """The caching allocator's segments (torch.cuda.max_memory_reserved): tensors + fragmentation."""
        return self.allocated_bytes + self.overhead_parts.get("fragmentation", 0.0)

    def comparable_bytes(self, kind: str) -> Num:
        """The prediction comparable to a measurement of ``kind``: allocated, reserved or device (the total)."""
        return {"allocated": self.allocated_bytes, "reserved": self.reserved_bytes}.get(kind, self.total_bytes)

    @property
    def total_bytes(self) -> Num:
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes
                + self.logits_bytes + self.overhead_bytes)

    @property
    def fits(self) -> Num:
        return self.total_bytes <= self.usable_bytes

    def parts(self) -> dict[str, Num]:
        names = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "logits_bytes",
                 "overhead_bytes")
        return {n: getattr(self, n) for n in names}

    def to_dict(self) -> dict:
        out = {f"memory_{k}": v for k, v in self.parts().items()}
        out["memory_per_gpu_bytes"] = self.total_bytes
        out["memory_capacity_bytes"] = self.capacity_bytes
        out["memory_usable_bytes"] = self.usable_bytes
        out["memory_optimizer_offloaded_bytes"] = self.optimizer_offloaded_bytes
        out["memory_stage"] = self.stage
        return out


#: The pipeline ranks the memory model costs, each with the stage whose layer count it holds (:func:`rank_params`)
RANKS = {"first": "first", "middle": "fullest", "last": "last"}


def rank_params(model: ModelSpec, pb: ParamBreakdown, ex: Exec) -> dict[str, tuple[Num, Num, Num]]:
    """Rank (``first``, ``middle``: rank 1 of pp >= 3, ``last``) -> (dense, expert, root) parameters per GPU.

    Layers split over pp stages as evenly as they go, uneven ones shorter at the ends (:meth:`Exec.edge_stage_layers`;
    a middle rank holds the fullest stage's; MoE layers pro rata). ``root``, part of ``dense``, is what lies outside
    the transformer layers: the first stage holds the embeddings, the last the final norms and head, plus a copy of
    a tied embedding when pp > 1 (Megatron keeps one for the output layer), a middle one none. Dense weights shard
    over tp (vocabulary-parallel embeddings included; replicated norms and row-parallel biases, < 0.1% of weights,
    are treated as sharded); experts over ep·tp.
    """
    single = ex.pp == 1
    tied_copy = (model.vocab_size * (model.embedding_dim or model.hidden_size)) if model.tie_embeddings else 0
    roots = {"first": pb.embedding + np.where(single, pb.final_norms + pb.head, 0),
             "middle": 0.0,
             "last": pb.final_norms + pb.head + np.where(single, pb.embedding, tied_copy)}
    out = {}
    for rank, which in RANKS.items():
        if model.shared_layer_groups is not None:  # ALBERT: every stage holds the shared set it uses (upper bound)
            frac = np.minimum(1.0, model.shared_layer_groups / ex.pp)
        else:
            frac = stage_layer_fraction(model, ex, which)
        root = roots[rank] / ex.tp
        out[rank] = (pb.layers_dense * frac / ex.tp + root, pb.layers_expert * frac / (ex.tp * ex.ep), root)
    return out


def stage_layer_fraction(model: ModelSpec, ex: Exec, which: str) -> Num:
    """Share of the model's layers on the ``first``, ``fullest`` (a middle one when uneven) or ``last`` stage."""
    L = model.total_layers
    if which == "fullest":
        return ex.stage_fraction(L)
    first, last = ex.edge_stage_layers(L)
    return (first if which == "first" else last) / L


def memory_breakdown(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, *, loss: Optional[str] = None
                     ) -> MemoryBreakdown:
    """Memory of the most loaded GPU (first, second or last pipeline stage) for one plan or an array of layouts, with
    the behaviour of the framework each layout is costed as (``ex.framework`` after
    :func:`~planner.core.checks.costed_framework`, as the time model costs it): its loss (:data:`FRAMEWORK_LOSS`;
    ``loss`` overrides it, :data:`LOSS_KINDS`, where a source's model brings its own) and torchtitan's unsharded
    pipelined stage (:func:`torchtitan_fsdp`)."""
    ex = costed_exec(model, ex)
    if loss is None:
        code = np.asarray(ex.framework)
        loss = FRAMEWORK_LOSS[int(code)] if code.ndim == 0 else code  # an array: the kind varies by layout
    w_b, g_b, o_b = state_bytes(run, ex.framework)  # per parameter (PyTorch DDP: autocast's fp32 copies, its buckets)
    pb = param_breakdown(model)
    ranks = rank_params(model, pb, ex)
    shard = ex.shard_group(hw.gpus_per_node)
    exp_shard = np.maximum(1, shard / ex.ep)  # expert weights are replicated over dp·cp/ep ranks

    def states(dense, expert):
        z = ex.zero_stage
        weights = dense * w_b / np.where(z >= 3, shard, 1) + expert * w_b / np.where(z >= 3, exp_shard, 1)
        # low-precision weight copies of a named recipe; ZeRO-3/FSDP casts the gathered layer and drops it
        weights = weights + (dense + expert) * weight_copy_bytes(run) * np.where(z >= 3, 0.0, 1.0)
        grads = dense * g_b / np.where(z >= 2, shard, 1) + expert * g_b / np.where(z >= 2, exp_shard, 1)
        opt = dense * o_b / np.where(z >= 1, shard, 1) + expert * o_b / np.where(z >= 1, exp_shard, 1)
        return weights, grads, opt

    acts = stage_activation_bytes(model, run, ex)
    logits = logits_bytes(model, run, ex, loss)
    buffers = fsdp_buffer_bytes(model, run, ex, hw, pb, ranks=ranks)
    loss_on = {"first": np.where(ex.pp == 1, logits, 0.0), "middle": 0.0, "last": logits}
    stages = {}  # rank -> (weights, gradients, optimizer, activations, logits, FSDP buffers, parameters)
    for name, (dense, expert, _root) in ranks.items():
        logit = loss_on[name]
        w, g, o = states(dense, expert)
        bw, bg = buffers[name]
        # the loss's tensors are freed once the head's backward has run, before the last layer is recomputed:
        # the recomputation working set and the logits are never alive together, so only what the one exceeds
        # the other by adds to the peak of the stage that computes the loss
        act = acts[name] - np.minimum(acts["working"], logit)
        stages[name] = (w + bw, g + bg, o, act, logit, bw + bg, dense + expert)
    totals = {k: v[0] + v[1] + v[2] * (1 - ex.offload) + v[3] + v[4] for k, v in stages.items()}
    # the most loaded GPU: first stage, a middle one (pp >= 3; uneven stages or interleaving can make it the
    # fullest) or the last; ties go to the first
    use_mid = (totals["middle"] > totals["first"]) & (ex.pp > 2)
    top = np.where(use_mid, totals["middle"], totals["first"])
    use_last = (totals["last"] > top) & (ex.pp > 1)

    def pick(i):
        return np.where(use_last, stages["last"][i], np.where(use_mid, stages["middle"][i], stages["first"][i]))

    usable = hw.accelerator.hbm_bytes.value * (1.0 - hw.memory_headroom_fraction)
    allocated = np.where(use_last, totals["last"], top)
    parts = overhead_parts(ex, hw, allocated)
    return MemoryBreakdown(
        weights_bytes=pick(0),
        gradients_bytes=pick(1),
        optimizer_bytes=pick(2) * (1 - ex.offload),
        activations_bytes=pick(3),
        logits_bytes=pick(4),
        overhead_bytes=parts["runtime"] + parts["nccl"] + parts["fragmentation"],
        stage=np.where(use_last, ex.pp - 1, np.where(use_mid, 1, 0)),
        capacity_bytes=hw.accelerator.hbm_bytes.value,
        usable_bytes=usable,
        optimizer_offloaded_bytes=pick(2) * ex.offload,
        overhead_parts=parts,
        fsdp_buffer_bytes=pick(5),
        params_per_gpu=pick(6),
    )


def in_flight_microbatches(ex: Exec, rank: Num) -> Num:
    """Micro-batches of activations pipeline rank ``rank`` holds at its peak, in units of one micro-batch through
    all of the rank's layers. 1F1B (and ZB-H1, same peak): min(pp - rank, m) (Narayanan et al. 2021 §2.2.1). The
    interleaved schedule as Megatron-LM runs it (``forward_backward_pipelining_with_interleaving``): (pp - rank -
    1)·2 + (v - 1)·pp warm-up forwards of model chunks plus the one in steady state, capped at all m·v chunks (with
    m = pp the first half of the ranks run every forward first); each chunk holds 1/v of the rank's layers. Rank 0
    with m >= 2pp: pp·(1 + (pp-1)/(pp·v)) (Korthikanti et al. 2022 §4.2.3)."""
    m = np.maximum(1, np.floor(ex.grad_accum))
    pp, v = ex.pp, ex.vpp
    r = np.minimum(rank, pp - 1)
    chunks = np.minimum((pp - r - 1) * 2 + (v - 1) * pp + 1, m * v)
    return np.where((v > 1) & (m >= pp), chunks / v, np.minimum(pp - r, m))


def stage_activation_bytes(model: ModelSpec, run: RunSpec, ex: Exec) -> dict[str, Num]:
    """Activation bytes at the peak on the ``first``, a ``middle`` (rank 1) and the ``last`` pipeline rank: one
    micro-batch through all layers (:func:`layer_activation_bytes`, full recomputation keeping layer inputs only)
    times the rank's share of the layers (:func:`stage_layer_fraction`) times the micro-batches it holds
    (:func:`in_flight_microbatches`), plus the working set of the layer being recomputed (also returned alone as
    ``working``) and, on the first rank, the embedding's dropout masks."""
    s_enc, s_dec = sequence_lengths(model, run)
    stored = working = kept_input = 0.0
    for (is_dec, is_moe), n_layers in layer_groups(model):
        decoder_side = model.arch == "decoder" or is_dec
        per = layer_activation_bytes(model, run, ex, decoder_side=decoder_side, cross=is_dec, is_moe=is_moe,
                                     s_other=s_enc if is_dec else 0)
        kept = layer_input_bytes(model, run, ex, decoder_side)
        stored = stored + n_layers * per
        working = np.maximum(working, per - kept)  # the layer being recomputed: its input is already kept
        kept_input = kept_input + n_layers * kept
    full = ex.recompute == RECOMPUTE_FULL
    share = ex.full_recompute_share  # recomputed layers keep their input only; the others keep everything
    per_microbatch_all_layers = np.where(full, share * kept_input + (1.0 - share) * stored, stored)
    recompute_buffer = np.where(full, working, 0.0)  # the one layer being recomputed holds its full working set
    m = np.maximum(1, np.floor(ex.grad_accum))
    s_in = s_enc or s_dec
    emb_drop = (np.minimum(ex.pp, m) * s_in * ex.micro_batch / ex.cp * model.hidden_size
                * (1.0 if model.dropout > 0 else 0.0) / np.where(ex.sp == 1, ex.tp, 1))
    out = {"working": recompute_buffer}
    for (name, which), rank in zip(RANKS.items(), (0, 1, ex.pp - 1)):
        out[name] = (per_microbatch_all_layers * stage_layer_fraction(model, ex, which)
                     * in_flight_microbatches(ex, rank) + recompute_buffer)
    out["first"] = out["first"] + emb_drop
    return out


def torchtitan_fsdp(ex: Exec) -> tuple[Num, Num]:
    """(FSDP2 as torchtitan runs it: ZeRO-3 under ``framework: torchtitan``, and the pipelined case of it).

    With a pipeline, torchtitan sets ``reshard_after_forward=False`` (parallelize_llama.apply_fsdp) and
    torch.distributed.pipelining reduces the gradients only after the last micro-batch: the stage stays unsharded
    for the step (memory: :func:`fsdp_buffer_bytes`), one gather per layer and step and one
    reduce-scatter after the last backward (time: ``time.data_parallel_s``). ``ex.framework``: the costed one."""
    fsdp2 = (ex.zero_stage >= 3) & (ex.framework == FRAMEWORK_CODE["torchtitan"])
    return fsdp2, fsdp2 & (ex.pp > 1)


def logits_bytes(model: ModelSpec, run: RunSpec, ex: Exec, loss) -> Num:
    """Bytes at the loss of one micro-batch on the last stage: the bf16 logits, the fp32 softmax and, unfused, the
    fp32 copy (:func:`loss_bytes_per_logit`). ``loss``: a kind, or FRAMEWORK_CODEs (that framework's kind)."""
    s_enc, s_dec = sequence_lengths(model, run)
    s_out = s_dec if model.arch != "encoder" else s_enc
    if isinstance(loss, str):
        per_logit = loss_bytes_per_logit(run, loss)
    else:
        per_logit = np.choose(np.asarray(loss, dtype=np.int64),
                              [loss_bytes_per_logit(run, FRAMEWORK_LOSS[c]) for c in range(len(FRAMEWORK_LOSS))])
    return s_out * ex.micro_batch / ex.cp * model.vocab_size / ex.tp * per_logit


def loss_bytes_per_logit(run: RunSpec, loss: str = "fused") -> float:
    """Bytes per logit element at the loss: the logits (e) and, unless the loss works in place, the fp32
    (log-)softmax kept for backward, plus, for an unfused loss under mixed precision, the fp32 copy it reads (module
    docstring, **Loss**)."""
    if loss not in LOSS_KINDS:
        raise ValueError(f"loss: expected one of {', '.join(LOSS_KINDS)}, got {loss!r}")
    e = activation_bytes_per_element(run)
    if loss == "inplace":
        return e
    copy = LOSS_FP32_BYTES if (loss == "unfused" and e < LOSS_FP32_BYTES) else 0.0
    return e + copy + LOSS_FP32_BYTES


def fsdp_buffer_bytes(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, pb: ParamBreakdown, *,
                      ranks: Optional[dict] = None) -> dict[str, tuple[Num, Num]]:
    """Stage (``first``, ``middle``, ``last``) -> (weights, gradients) bytes of the unsharded ZeRO buffers on one GPU
    of that pipeline stage (module docstring, **FSDP / ZeRO-3 buffers**); 0 with a shard group of one.

    Weights, ZeRO-3/FSDP: the largest unit (one transformer block: its dense weights /tp, experts /(tp·ep)) twice,
    current and prefetched (Zhao et al. 2023 §3.3: backward and forward prefetch keep at most two units' all-gathers
    in flight), plus the root unit (embedding, final norm, head) for the whole step. Gradients, ZeRO-2 and -3: one
    unit's unsharded gradient and the reduce-scatter of the previous one in flight. Both bounded: DeepSpeed's live
    parameter and bucket limits (:data:`ZERO3_MAX_LIVE_PARAMETERS`, :data:`ZERO3_REDUCE_BUCKET_ELEMENTS`), and never
    more than sharding saved (a ZeRO stage holds no more than the stage below it, Rajbhandari et al. 2020).

    torchtitan with pp > 1 (``ex.framework``, the costed one: :func:`torchtitan_fsdp`; ``reshard_after_forward=False``,
    and torch.distributed.pipelining reduces gradients only after the last micro-batch): the stage's weights stay
    unsharded and its gradients accumulate unsharded, in fp32 (torchtitan's reduce dtype) under mixed precision
    (checked on torchtitan's Llama 3.1 405B runs): more than ZeRO-2 would hold. ``ranks``: :func:`rank_params`, when
    the caller has them."""
    w, g = bytes_per_weight(run), bytes_per_grad(run)
    shard = ex.shard_group(hw.gpus_per_node)
    saved = 1.0 - 1.0 / np.maximum(shard, 1)  # share of the dense weights / gradients sharding removes from a GPU
    saved_exp = 1.0 - 1.0 / np.maximum(1, shard / ex.ep)  # experts shard over dp·cp/ep ranks
    layers = max(model.total_layers, 1)
    unit = (pb.layers_dense / ex.tp + pb.layers_expert / (ex.tp * ex.ep)) / layers
    ranks = rank_params(model, pb, ex) if ranks is None else ranks
    acc = TORCHTITAN_REDUCE_BYTES if run.mixed_precision else g
    piped = torchtitan_fsdp(ex)[1] & (shard > 1)
    live = np.minimum(2 * unit, ZERO3_MAX_LIVE_PARAMETERS)
    bucket = np.minimum(2 * unit, ZERO3_REDUCE_BUCKET_ELEMENTS)

    def one(dense, expert, root):
        stage = dense + expert
        sharded_away = dense * saved + expert * saved_exp
        weights = np.where(ex.zero_stage >= 3, np.minimum(live + root, sharded_away) * w, 0.0)
        grads = np.where(ex.zero_stage >= 2, np.minimum(bucket, sharded_away) * g, 0.0)
        return np.where(piped, stage * w, weights), np.where(piped, stage * acc, grads)

    return {rank: one(*p) for rank, p in ranks.items()}


def communicators(ex: Exec, gpus_per_node: int) -> Num:
    """NCCL communicators one GPU belongs to: data parallel (dp·cp ranks: gradients or the FSDP shard group, and
    the replica group across nodes under hybrid sharding), tensor, pipeline (point-to-point), context and expert
    parallel, each counted when it spans more than one rank."""
    data = ex.dp * ex.cp
    hybrid_replicas = (ex.fsdp == 2) & (data > ex.shard_group(gpus_per_node))
    groups = [data > 1, ex.tp > 1, ex.pp > 1, ex.cp > 1, ex.ep > 1, hybrid_replicas]
    return sum(np.asarray(x, dtype=float) for x in groups)


def overhead_parts(ex: Exec, hw: HardwareSpec, allocated: Num) -> dict[str, Num]:
    """The overhead in named parts (module docstring, **Overhead**): ``runtime`` (the profile's CUDA context, kernels
    and NCCL initialisation), ``nccl`` (communicator buffers) and ``fragmentation`` (the caching allocator's reserved
    but unallocated memory, at most the room left in the device's raw capacity; the planning headroom is not room
    the allocator knows of)."""
    shape = np.ones_like(np.asarray(allocated, dtype=float))
    runtime = hw.accelerator.memory_overhead_bytes.value * shape
    nccl = NCCL_COMMUNICATOR_BYTES * communicators(ex, hw.gpus_per_node) * shape
    wanted = allocated * ALLOCATOR_FRAGMENTATION / (1.0 - ALLOCATOR_FRAGMENTATION)
    room = hw.accelerator.hbm_bytes.value - runtime - nccl - allocated
    fragmentation = np.minimum(wanted, np.maximum(0.0, room))
    return {"runtime": runtime, "nccl": nccl, "fragmentation": fragmentation}
