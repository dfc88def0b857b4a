"""Step time from achievable (not peak) throughput, operation by operation, with a breakdown that sums.

Per micro-batch and pipeline stage (Narayanan et al. 2021 §3; Korthikanti et al. 2022 §5; docs/DESIGN.md, "The time
model"), in named pieces:

* :func:`layer_gemms`: the GEMMs of each layer with their per-GPU shapes after TP/CP/EP sharding (QKV, attention
  out, FFN up/gate, down, expert FFNs, router, cross-attention), timed by the one GEMM model of ``kernels.py``.
* :func:`attention_core_s`: a fused kernel at ``attention_fraction x peak`` on its executed FLOPs
  (``attention_fraction_flash3`` for the Hopper-native FlashAttention-3/cuDNN kernels); without one, QK^T and AV
  are batched GEMMs and softmax/mask/dropout move the s x s scores through HBM.
* :func:`elementwise_s`: norms, activation functions, residual adds, rotary, dropout: bytes / achievable HBM.
* :func:`layer_comm_s`: TP all-reduces (or all-gather + reduce-scatter with sequence parallelism), CP ring
  exchange of K/V hidden under attention, EP all-to-all (dispatch and combine, forward and backward).
* :func:`output_layer_s`: the logits GEMM and the fp32 loss on the last stage.
* :func:`pipeline_s`: PP point-to-point activations and the 1F1B/interleaved bubble ((pp-1)/v stage-micro-batch
  times, Narayanan 2021 Eq. 1-2).
* :func:`data_parallel_s`: DP gradient reduce overlapping the last micro-batch's backward bucket by bucket;
  ZeRO-3/FSDP all-gathers (forward, backward) and reduce-scatter per layer and micro-batch, each hidden under the
  layer it is prefetched beside, the first gather and last reduce-scatter exposed.
* :func:`fsdp2_copy_out_s`: FSDP2 copying each gathered layer into its parameters on the compute stream.
* :func:`optimizer_s`: a memory-bound sweep over the local parameters.

**Step** = m x (stage compute + exposed comm) + bubble + exposed DP/FSDP comm + optimizer step. The efficiency
parameters (``eff``, :class:`~planner.core.efficiency.TimeParams`) are measured or fitted per GPU generation.

Hidden communication is not free (:func:`overlap_s`): while a collective runs beside compute kernels, its CTAs hold
SMs and its copies HBM bandwidth, and the compute kernels run ``overlap_compute_slowdown`` slower for that time
(measured: 18.9% on average, Lee et al. 2025). Each comm part of the breakdown carries the slowdown it causes.

Left out: kernel launch gaps between layers beyond the per-GEMM cost, data loading, NVLS/SHARP, MoE routing
imbalance beyond one factor on the busiest rank (``moe.load_imbalance``), stragglers, and the first/last-stage imbalance beyond the logits (the
embedding lookup is free).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..specs.hardware import HardwareSpec
from ..specs.layout import FRAMEWORK_CODE, SCHEDULE_CODE
from ..specs.model import AttentionSpec, ModelSpec
from ..specs.run import RunSpec
from .checks import costed_exec
from .comm import ALL_GATHER, ALL_REDUCE, ALL_TO_ALL, P2P, REDUCE_SCATTER, collective_time_s, crosses_nodes
from .efficiency import TimeParams, mfu_dtype, peak_flop_per_s, run_peak_flop_per_s
from .flops import (BWD_OVER_FWD, FLASH_BWD_OVER_FWD, RECOMPUTE_FULL, RECOMPUTE_SELECTIVE, StepFlops,
                    attention_pairs, sequence_lengths)
from .kernels import Rates, attention_kernel_rates, gemm_pass_s, rates_of
from .layout import Exec, Num
from .memory import (TORCHTITAN_REDUCE_BYTES, activation_bytes_per_element, bytes_per_weight,
                     gradient_bytes, rank_params, torchtitan_fsdp)
from .params import expert_width, layer_groups, param_breakdown

#: Bytes the optimizer step moves per parameter besides the gradient, under mixed precision: fp32 master weight
#: read + written (8), each fp32 moment read + written (8 each), the bf16 weight copy written (2). Adam(W): 26;
#: SGD with momentum: 18; 8-bit Adam (1-byte moments, Dettmers et al. 2022): 14; Adafactor (factored second
#: moment, no momentum; Shazeer & Stern 2018): 10. A fused multi-tensor kernel (apex/PyTorch foreach) is one pass.
OPTIMIZER_STREAM_BYTES = {"adam": 26.0, "adamw": 26.0, "sgd": 18.0, "adam8bit": 14.0, "adafactor": 10.0}

#: The loss streams the vocabulary-parallel logits in fp32 (Megatron-LM's vocab_parallel_cross_entropy): upcast
#: write, max/sum-exp read, softmax write and gradient read-modify, about four 4-byte passes per logit; the bf16
#: logits are written once and read once more (the 2·e bytes beside it).
LOSS_FP32_BYTES_PER_LOGIT = 16.0

#: One collective: (kind, message bytes, ranks, stride between ranks) -> seconds (``comm.collective_time_s`` with
#: the hardware's links bound in; :func:`collective_of` also sets its ``gpus_per_node``).
Collective = Callable[[str, Num, Num, Num], Num]


@dataclass(frozen=True)
class TimeBreakdown:
    """Seconds per optimizer step, by part. ``step_time_s`` is their sum (a test checks it)."""

    compute_s: Num  #: GEMMs, attention and memory-bound ops of all micro-batches on the critical stage
    recompute_s: Num  #: forward work recomputation repeats (not included in compute_s)
    tp_comm_s: Num  #: exposed tensor-parallel collectives, plus the compute the hidden ones slow (overlap_s)
    cp_comm_s: Num  #: exposed context-parallel K/V exchange, plus the attention it slows while hidden
    ep_comm_s: Num  #: exposed expert-parallel all-to-all
    pp_comm_s: Num  #: pipeline point-to-point
    bubble_s: Num  #: pipeline fill and drain
    dp_comm_s: Num  #: exposed data-parallel gradient reduce and ZeRO/FSDP gathers, plus the compute the hidden
    #: part slows (overlap_s) and FSDP2's copies of the gathered weights (fsdp2_copy_out_s)
    optimizer_s: Num  #: optimizer step

    PARTS = ("compute_s", "recompute_s", "tp_comm_s", "cp_comm_s", "ep_comm_s", "pp_comm_s", "bubble_s",
             "dp_comm_s", "optimizer_s")

    @property
    def step_time_s(self) -> Num:
        return sum(getattr(self, p) for p in self.PARTS)

    def parts(self) -> dict[str, Num]:
        return {p: getattr(self, p) for p in self.PARTS}


def collective_of(hw: HardwareSpec, eff: TimeParams) -> Collective:
    """The collective timer of ``hw``: NVLink inside a node, the NICs across nodes, at measured/fitted busbw."""
    intra_bw = hw.node.intra_node_bandwidth_bytes_per_s.value * eff.nvlink_busbw_fraction
    over = hw.network.oversubscription_ratio.value if hw.network.oversubscription_ratio is not None else 1.0
    inter_bw = hw.network.inter_node_bandwidth_bytes_per_s.value * eff.network_busbw_fraction / over
    lat_in, lat_out = hw.node.intra_node_latency_s.value, hw.network.inter_node_latency_s.value
    gpn = hw.gpus_per_node

    def coll(kind, nbytes, n, stride):
        return collective_time_s(kind, nbytes, n, stride, gpus_per_node=gpn, intra_busbw_bytes_per_s=intra_bw,
                                 inter_busbw_bytes_per_s=inter_bw, intra_latency_s=lat_in, inter_latency_s=lat_out)
    coll.gpus_per_node = gpn
    return coll


def overlap_s(comm_s: Num, window_s: Num, slowdown: float, link_busy_s: Num = 0.0) -> Num:
    """Seconds a collective of ``comm_s`` adds to compute of ``window_s`` it runs beside: what sticks out past the
    window, plus the compute slowed while both run: max(0, comm + busy - window) + slowdown x min(comm, window).

    ``link_busy_s``: time other traffic holds the same links within the window (the NICs a context-parallel ring
    shares with the ZeRO-3 gathers of the same GPUs, :func:`data_parallel_s`), beyond what it already lengthened
    the window by; the collective gets the links for the rest.

    The slowdown is measured, not fitted (``TimeParams.overlap_compute_slowdown``): Lee et al. 2025
    (arXiv:2507.03114) time GPT and Llama layers on 4 x A100, H100, MI250 and MI210 and find compute that overlaps
    communication 18.9% slower on average (40.0% at most) than the same compute alone. The physical reason is the
    collective's share of the GPU: NCCL runs one CTA per channel, and an all-gather beside a GEMM on an H100 held
    24 of its 132 SMs (18%) in an NVIDIA forum trace of FSDP's prefetch. Left out: the collective's own slowdown
    beside compute (it lengthens ``comm_s`` a little where it is already exposed), and wave-quantisation tails of
    GEMMs sized to the full SM count (the same forum trace: up to 2x on one GEMM)."""
    return np.maximum(0.0, comm_s + link_busy_s - window_s) + slowdown * np.minimum(comm_s, window_s)


def routed_load(moe, ep: Num) -> Num:
    """Routed tokens of the busiest expert-parallel rank over the balanced share (>= 0; 1 = balanced).

    Dropless routing (``capacity_factor`` None; Megatron-Core's default, DeepSeek-V3 §2.1.2 "no token-dropping"):
    every routed token is processed, so the busiest of ep > 1 ranks carries ``load_imbalance`` x the mean and the
    others wait for it at the next all-to-all. With a capacity factor c (GShard, Lepikhin et al. 2020 §2.2; Switch
    Transformer, Fedus et al. 2022 §2.2) an expert processes at most c·tokens·top_k/E rows and drops the rest, so
    the load is min(imbalance, c); c < 1 drops tokens even when balanced. One GPU holding every expert (ep = 1) does
    all routed work whatever the split between its experts: load 1 (capped by c). No rank receives more than every
    token: the load is at most E/top_k (top_k = E routes every token everywhere: balanced by construction)."""
    load = np.where(np.asarray(ep) > 1, min(moe.load_imbalance, moe.num_experts / moe.top_k), 1.0)
    if moe.capacity_factor is not None:
        load = np.minimum(load, moe.capacity_factor)
    return load


def ep_all_to_all_s(model: ModelSpec, ex: Exec, r: Rates, coll: Collective, s: int) -> Num:
    """Seconds of one EP all-to-all (dispatch or combine) of one MoE layer per micro-batch on the busiest rank.

    Each GPU sends m_tok·top_k routed copies of its d-wide tokens (times :func:`routed_load`: the busiest rank
    receives that much more in dispatch and sends it back in combine) to the ep ranks of its group, tp·cp apart.

    * **Inside one NVLink domain** (ep·tp·cp <= GPUs per node: 8 on HGX, 72 on GB200 NVL72): the all-to-all at the
      NVLink bus bandwidth, (ep-1)/ep of the message (nccl-tests convention, ``comm.py``).
    * **Across nodes**, with k members per node and N = ep/k nodes, the copies bound for other nodes leave
      through each GPU's own NIC (rail-optimised, one per GPU), those for its node's other GPUs go over NVLink, the
      two at once: max(network, NVLink). Plain routing sends top_k·(N-1)/N copies per token over the network and
      top_k·(k-1)/ep over NVLink. **Node-limited routing** (``max_nodes_per_token`` M; DeepSeek-V3 §2.1.2 and
      §3.2.2: M = 4 of 8 nodes, IB 50 GB/s vs NVLink 160 GB/s) sends each token once to each of its <= M nodes, to
      the GPU of the same in-node index, which forwards it over NVLink to its experts there: min(M, top_k, N)·
      (N-1)/N network copies, and NVLink carries the forwards too. DeepSeek-V3 (top-8, ep 64 over 8 nodes): 7
      network copies per token plain, 3.5 node-limited.

    Left out: the SM share the all-to-all kernels take from compute (DeepSeek-V3: 20 of 132 SMs), and dispatch in
    fp8 (it moves the run's activation bytes per element)."""
    moe = model.moe
    d, e = model.hidden_size, r.elem_bytes
    m_tok = ex.micro_batch * s / ex.cp
    n = np.asarray(ex.ep, dtype=float)
    stride = np.asarray(ex.tp * ex.cp, dtype=float)
    gpn = r.gpus_per_node
    token_bytes = m_tok * d * e * routed_load(moe, ex.ep)
    inside = coll(ALL_TO_ALL, token_bytes * moe.top_k, n, stride)
    k = np.clip(np.floor(gpn / np.maximum(stride, 1.0)), 1.0, np.maximum(n, 1.0))  # members per node
    nodes = np.maximum(n / k, 1.0)
    remote = (nodes - 1.0) / nodes
    if moe.max_nodes_per_token is None:
        net_copies = moe.top_k * remote
        nvl_copies = moe.top_k * (k - 1.0) / np.maximum(n, 1.0)
    else:
        net_copies = np.minimum(np.minimum(moe.max_nodes_per_token, moe.top_k), nodes) * remote
        nvl_copies = moe.top_k * ((k - 1.0) / np.maximum(n, 1.0) + remote * (k - 1.0) / k)
    across = np.maximum(coll(P2P, token_bytes * net_copies, 2, gpn), coll(P2P, token_bytes * nvl_copies, 2, 1))
    return np.where(n * stride > gpn, across, inside)


def layer_gemms(model: ModelSpec, ex: Exec, is_dec: bool, is_moe: bool, s: int, s_enc: int) -> tuple[list, Num]:
    """([(label, m, n, k, count), ...], FFN width per token) of one layer for one micro-batch on one GPU.

    (m x k) @ (k x n) per forward GEMM after TP (columns/rows split by t), CP (tokens split by c) and EP (experts
    split by ep; each local expert gets m·top_k·ep/E rows with balanced routing, times :func:`routed_load` on the
    busiest rank). The expert GEMMs are one grouped GEMM of ``count`` = E/ep problems of those rows each, so the
    shape efficiency of ``kernels.gemm_efficiency`` applies per expert: fine-grained experts at few tokens per
    expert run far below the matmul peak. The one list of a layer's GEMMs: the time model sums it and
    ``planner bench`` measures its shapes."""
    d, a, dh, kv = model.hidden_size, model.num_heads, model.head_size, model.kv_heads
    q_w, kv_w = a * dh, kv * dh
    t, c, b = ex.tp, ex.cp, ex.micro_batch
    mats = model.ffn_matrices
    m_tok = b * s / c  # tokens per GPU in GEMMs (sequence-parallel all-gathers restore s/c before them)
    if model.mla is not None:
        # Multi-head latent attention (DeepSeek-V2 §2.1; planner.core.params.mla_matmul_shapes): the down
        # projections to the latents are replicated on every TP rank (Megatron-Core MLA), the up projections split
        # their heads over TP, and the output projection is row-parallel.
        from .params import mla_matmul_shapes

        shapes = mla_matmul_shapes(model)
        *qs, (kv_in, kv_out), (kvu_in, kvu_out), (o_in, _) = shapes
        gemms: list[tuple] = [("q_down", m_tok, qs[0][1], d, 1), ("q_up", m_tok, qs[1][1] / t, qs[1][0], 1)] \
            if len(qs) == 2 else [("q_proj", m_tok, qs[0][1] / t, d, 1)]
        gemms += [("kv_down", m_tok, kv_out, kv_in, 1), ("kv_up", m_tok, kvu_out / t, kvu_in, 1),
                  ("attn_out", m_tok, d, o_in / t, 1)]
    else:
        gemms = [("qkv", m_tok, (q_w + 2 * kv_w) / t, d, 1), ("attn_out", m_tok, d, q_w / t, 1)]
    if is_moe:
        moe = model.moe
        fe = expert_width(model)
        # rows of each local expert's GEMM on the busiest EP rank: the balanced share times its load
        # (routed_load); the shape efficiency of kernels.gemm_efficiency then applies per expert (grouped GEMM)
        rows = m_tok * moe.top_k * ex.ep / moe.num_experts * routed_load(moe, ex.ep)
        local = moe.num_experts / ex.ep
        gemms += [("expert_up", rows, (mats - 1) * fe / t, d, local), ("expert_down", rows, d, fe / t, local)]
        if moe.shared_experts:
            w = moe.shared_experts * fe
            gemms += [("shared_up", m_tok, (mats - 1) * w / t, d, 1), ("shared_down", m_tok, d, w / t, 1)]
        gemms.append(("router", m_tok, moe.num_experts, d, 1))
        ffn_width = moe.top_k * fe + moe.shared_experts * fe
    else:
        f = model.ffn_hidden
        gemms += [("ffn_up", m_tok, (mats - 1) * f / t, d, 1), ("ffn_down", m_tok, d, f / t, 1)]
        ffn_width = f
    if is_dec:  # cross-attention: Q/O on decoder tokens, K/V on encoder tokens
        gemms += [("cross_q", m_tok, q_w / t, d, 1), ("cross_kv", b * s_enc / c, 2 * kv_w / t, d, 1),
                  ("cross_out", m_tok, d, q_w / t, 1)]
    return gemms, ffn_width


def attention_core_s(model: ModelSpec, ex: Exec, r: Rates, is_dec: bool, s: int, s_enc: int) -> tuple[Num, Num]:
    """(forward, forward + backward) seconds of one layer's attention core (QK^T, softmax, AV) per micro-batch."""
    decoder_side = model.arch == "decoder" or is_dec
    attn = model.attention if (model.arch != "encoder_decoder" or is_dec) else AttentionSpec(pattern="full")
    _, pairs = attention_pairs(attn, s, causal=decoder_side, fused=ex.flash)
    if is_dec:
        pairs = pairs + float(s) * s_enc
    heads = model.num_heads / ex.tp
    # QK^T over the query/key width plus AV over the value width: 2·(d_qk + d_v) per pair and head (= 4·d_head
    # unless MLA's value heads are narrower; DeepSeek-V2 §2.1.2)
    core_flops_fwd = 2.0 * (model.qk_head_size + model.v_head_size) * heads * ex.micro_batch * pairs / ex.cp
    flash_fwd, flash_total = fused_attention_s(model, ex, r, attn, s, decoder_side, core_flops_fwd,
                                               (model.qk_head_size, model.v_head_size))
    # unfused: two batched GEMMs at matmul speed + softmax/mask/dropout streaming the scores
    drop = 1.0 if model.dropout > 0 else 0.0
    score_elems = heads * ex.micro_batch * pairs / ex.cp
    stream_fwd = r.stream_s(score_elems * r.elem_bytes * (3 + 3 * drop))  # write S, read S write P, (dropout)
    plain_fwd = core_flops_fwd / (r.eff16.matmul_fraction * r.peak16_flop_per_s) + stream_fwd
    plain_total = plain_fwd * (1 + BWD_OVER_FWD)
    fused = ex.flash == 1
    return np.where(fused, flash_fwd, plain_fwd), np.where(fused, flash_total, plain_total)


#: Head dims each fused kernel is compiled for; another head dim runs the next larger one on zero-padded Q, K and V,
#: so it costs that one's FLOPs (:func:`kernel_head_dim_factor`). FlashAttention-2: csrc/flash_attn/src/flash_*_hdim
#: {32,64,96,128,160,192,224,256}_*_sm80.cu; FlashAttention-3: hopper/instantiations/flash_*_hdim{64,96,128,192,256}
#: _*_sm90.cu (Dao-AILab/flash-attention); the Triton kernel (flash_attn_triton.py, as llm-foundry ran it) sets
#: BLOCK_HEADDIM = max(next power of 2 of d, 16). E.g. MPT-30B's 112 runs as 128 (+14% attention FLOPs), Phi-2's
#: 80 as 96 (FlashAttention-2) or 128 (Triton).
KERNEL_HEAD_DIMS = {"flash2": (32, 64, 96, 128, 160, 192, 224, 256), "flash3": (64, 96, 128, 192, 256)}


def kernel_head_dim(kernel: str, d: int) -> int:
    """The head dim ``kernel`` runs for a head of ``d``: the smallest it is compiled for that holds d (``d`` itself
    above its largest, where the kernel would not run: no padding assumed)."""
    if kernel == "triton":
        return max(16, 1 << max(0, int(d) - 1).bit_length())
    return next((h for h in KERNEL_HEAD_DIMS[kernel] if h >= d), int(d))


def kernel_head_dim_factor(kernel: str, head_dims: tuple[int, int]) -> float:
    """Executed over useful attention FLOPs of ``kernel`` for (query/key, value) head dims: 1 where both are sizes the
    kernel is compiled for. The QK^T FLOPs scale with the query/key dim, AV's with the value dim."""
    dqk, dv = head_dims
    return (kernel_head_dim(kernel, dqk) + kernel_head_dim(kernel, dv)) / (dqk + dv)


def fused_attention_s(model: ModelSpec, ex: Exec, r: Rates, attn: AttentionSpec, s: int, decoder_side: bool,
                      core_flops_fwd: Num, head_dims: tuple[int, int]) -> tuple[Num, Num]:
    """(forward, forward + backward) seconds of a fused attention kernel on ``core_flops_fwd`` executed FLOPs, times
    :func:`kernel_head_dim_factor` for ``head_dims`` (query/key, value) the kernel pads to its next compiled size.

    Where the profile or its generation has a measured curve of the kernel (a profile's own from ``planner
    calibrate`` of a ``planner bench`` file; ``hardware_profiles/kernels/``: FlashAttention-2 and Triton on Ampere,
    Dao 2023 Fig. 4; FlashAttention-2 and -3 on Hopper, Shah et al. 2024 Fig. 5-6, and Triton derived from Dao 2023
    Fig. 4 and 7) its rate at the kernel's sequence length is used: the tokens each GPU attends over (s/cp with
    context parallelism, at most the window of sliding-window attention), causal when the mask is. A curve of
    combined forward + backward rates is split by its measured forward/backward ratio
    (:func:`~planner.core.kernels.attention_kernel_rates`). Generations without curves (Volta, Blackwell, CDNA3)
    use ``attention_fraction`` (FlashAttention-2 and Triton kernels) or ``attention_fraction_flash3`` of the bf16 peak, priors or borrowed, the backward at
    2.5 x the forward's FLOPs (Dao 2023 §4.1)."""
    eff, peak16 = r.eff, r.peak16_flop_per_s
    s_kernel = s / ex.cp
    if attn.pattern == "sliding_window":
        s_kernel = np.minimum(s_kernel, attn.window_tokens)
    causal = decoder_side and attn.pattern in ("causal", "sliding_window")
    out = []
    for name, frac in (("flash2", eff.attention_fraction), ("flash3", eff.attention_fraction_flash3),
                       ("triton", eff.attention_fraction)):
        curve = r.attention_kernels.get(name)
        flops = core_flops_fwd * kernel_head_dim_factor(name, head_dims)
        if curve is not None:
            fwd_rate, bwd_rate = attention_kernel_rates(curve, s_kernel, causal, peak16)
            fwd = flops / fwd_rate
            total = fwd + FLASH_BWD_OVER_FWD * flops / bwd_rate
        else:
            fwd = flops / (frac * peak16)
            total = fwd * (1 + FLASH_BWD_OVER_FWD)
        out.append((fwd, total))
    code = np.asarray(ex.fa3)
    return (np.choose(code, [f for f, _ in out]) if code.ndim else out[int(code)][0],
            np.choose(code, [t for _, t in out]) if code.ndim else out[int(code)][1])


def elementwise_s(model: ModelSpec, ex: Exec, r: Rates, is_dec: bool, m_tok: Num, ffn_width: Num) -> tuple[Num, Num]:
    """(forward, forward + backward) seconds of one layer's memory-bound traffic per micro-batch.

    Per token, forward (backward ~2x), as fused kernels run them (Megatron-LM's fused LayerNorm, bias-GeLU/SwiGLU,
    bias-dropout-add and RoPE): norms (read + write d each), residual adds with their dropout (2 reads + 1 write of
    d, plus a 1-byte mask per element where the model has dropout), FFN activation (read 1-2 f, write f), rotary on
    Q and K; sequence parallelism splits the d-wide ones over t (``elementwise_traffic_fraction`` of it moves: 1
    unless a calibration says otherwise). Eager layers (``layout.eager_elementwise``) move what
    :func:`eager_elementwise_bytes` counts instead."""
    d, t = model.hidden_size, ex.tp
    sp_div = np.where(ex.sp == 1, t, 1)
    drop = 1.0 if model.dropout > 0 else 0.0
    n_norms = (1 if model.parallel_block else 2) + (1 if is_dec else 0)
    per_tok = (2 * n_norms + 6) * d / sp_div + (model.ffn_matrices * ffn_width) / t
    if model.position == "rotary":
        per_tok = per_tok + 2 * (model.num_heads * model.head_size + model.kv_heads * model.head_size) / t
    mask_bytes = 2 * drop * d / sp_div  # the two bias-dropout-add sites' masks, one byte per element
    fused = (per_tok * r.elem_bytes + mask_bytes) * r.eff.elementwise_traffic_fraction
    eager = eager_elementwise_bytes(model, ex, r.elem_bytes, n_norms, drop, ffn_width)
    fwd = r.stream_s(m_tok * np.where(ex.eager == 1, eager, fused))
    return fwd, 3.0 * fwd


def eager_elementwise_bytes(model: ModelSpec, ex: Exec, e: float, n_norms: int, drop: float, ffn_width: Num) -> Num:
    """Bytes per token one layer's elementwise ops move forward when each runs as its own PyTorch kernel, counted
    from torchtitan's Llama as 2024 runs it without torch.compile (models/norms.py RMSNorm, models/llama/model.py):

    * RMSNorm ``(x.float() * rsqrt(x.float().pow(2).mean(-1) + eps)).type_as(x) * w``: upcast (e + 4), pow (4 + 4),
      mean (4), scale (4 + 4), downcast (4 + e), weight (2e): 4e + 28 bytes per element (36 in bf16, 9x a fused
      norm's read and write); LayerNorm is ``F.layer_norm``, one kernel even in eager mode: 2e (read, write). Before
      this distinction an eager GPT-style layer (MPT-7B, LayerNorm and GELU) measured on an H200 was predicted
      14-18% slow (``benchmarks/layer_bench.py``, ``hardware_profiles/benches/h200-layers.yaml``);
    * RoPE through ``view_as_complex(x.float())``: upcast (e + 4), complex multiply (4 + 4), downcast (4 + e): 2e + 16
      per element of Q and K;
    * SwiGLU ``silu(w1 x) * w3 x``: silu (2e), multiply (3e) per hidden unit; a plain activation 2e;
    * GQA ``repeat_kv`` materialises K and V for every query head: reads 2·kv·hd, writes 2·heads·hd elements;
    * residual adds (each reads two and writes one d-wide tensor); dropout, where the model has it, as its own
      kernel: reads and writes the tensor and writes a 1-byte mask.

    Sequence parallelism splits the d-wide ones over t, tensor parallelism the head- and FFN-wide ones."""
    d, t, hd = model.hidden_size, ex.tp, model.head_size
    sp_div = np.where(ex.sp == 1, t, 1)
    f32, mask = 4.0, 1.0  # bytes of an fp32 element and of a dropout-mask element
    if model.norm == "rmsnorm":  # upcast, pow, mean, scale, downcast, weight
        norm = (e + f32) + 2 * f32 + f32 + 2 * f32 + (f32 + e) + 2 * e
    else:  # F.layer_norm: one ATen kernel reads x and writes y (its per-row mean and rstd are negligible)
        norm = 2 * e
    rope = (e + f32) + 2 * f32 + (f32 + e)  # upcast, complex multiply, downcast
    per_tok = (n_norms * norm + 6 * e + drop * 2 * (2 * e + mask)) * d / sp_div
    per_tok = per_tok + (5 * e if model.ffn_matrices == 3 else 2 * e) * ffn_width / t
    if model.position == "rotary":
        per_tok = per_tok + rope * (model.num_heads + model.kv_heads) * hd / t
    if model.kv_heads < model.num_heads:
        per_tok = per_tok + 2 * (model.kv_heads + model.num_heads) * hd * e / t
    return per_tok


def layer_comm_s(model: ModelSpec, ex: Exec, r: Rates, coll: Collective, is_dec: bool, is_moe: bool, s: int,
                 core_total: Num) -> tuple[Num, Num, Num, Num]:
    """(TP, exposed CP, EP, CP on the NICs) communication seconds of one layer per micro-batch.

    TP: 2 collectives forward + 2 backward per block of m_tok·d activations (self-attention, FFN; + cross-attention),
    Megatron-LM's f/g operators (Shoeybi et al. 2019 §3). CP: ring exchange of K and V forward, K, V, dK, dV backward
    (3 x (c-1) steps), hidden under the attention core (Liu et al. 2023, Ring Attention), which it slows
    (:func:`overlap_s`). Every step waits for its slowest hop: when the ring spans nodes (cp·tp GPUs > a node)
    that is a hop over one GPU's NIC, and the ring's time is then also NIC time (the fourth value), which the
    ZeRO-3/FSDP gathers of the same GPUs share (:func:`data_parallel_s`). EP: dispatch + combine,
    forward and backward: 4 all-to-alls of the routed activations (Lepikhin et al. 2020), placed on NVLink or the
    network and node-limited as :func:`ep_all_to_all_s` says."""
    d, e = model.hidden_size, r.elem_bytes
    m_tok = ex.micro_batch * s / ex.cp
    blocks = 2 + (1 if is_dec else 0)
    tp_comm = 2 * blocks * coll(ALL_REDUCE, m_tok * d * e, ex.tp, 1)
    kv_bytes = ex.micro_batch * s / ex.cp * 2 * (model.kv_heads * model.head_size) / ex.tp * e
    gpn = coll.gpus_per_node
    ring_spans_nodes = ex.cp * ex.tp > gpn
    # a 2-rank hop crosses nodes iff 2·stride > gpn: a node's width makes the hop between nodes the one timed
    hop_stride = np.where(ring_spans_nodes, np.maximum(ex.tp, gpn), ex.tp)
    cp_t = 3 * (ex.cp - 1) * coll(P2P, kv_bytes, 2, hop_stride)
    cp_comm = overlap_s(cp_t, core_total, r.eff.overlap_compute_slowdown)
    ep_comm = 4 * ep_all_to_all_s(model, ex, r, coll, s) if is_moe else 0.0
    return tp_comm, cp_comm, ep_comm, np.where(ring_spans_nodes, cp_t, 0.0)


@dataclass(frozen=True)
class LayerWork:
    """Seconds of all layers (the whole model, before the stage split) for one micro-batch on one GPU."""

    total_s: Num  #: forward + backward compute
    fwd_s: Num  #: forward only (what full recomputation repeats)
    attn_fwd_s: Num  #: attention-core forward (what selective recomputation repeats without a fused kernel)
    gemm_s: Num  #: forward + backward GEMMs (what TP overlap can hide communication under)
    tp_comm_s: Num
    cp_comm_s: Num  #: exposed
    ep_comm_s: Num
    cp_link_s: Num = 0.0  #: the CP ring's time on the NICs (0 when it stays inside a node), forward + backward


def layers_s(model: ModelSpec, run: RunSpec, ex: Exec, r: Rates, coll: Collective) -> LayerWork:
    """Sum the layer pieces over every layer group of the model."""
    s_enc, s_dec = sequence_lengths(model, run)
    total = fwd = attn_fwd = gemm_all = tp_comm = cp_comm = ep_comm = cp_link = 0.0
    for (is_dec, is_moe), n_layers in layer_groups(model):
        s = s_dec if (model.arch == "decoder" or is_dec) else s_enc
        gemms, ffn_width = layer_gemms(model, ex, is_dec, is_moe, s, s_enc)
        passes = [(k, gemm_pass_s(gm, gn, gk, r)) for _, gm, gn, gk, k in gemms]
        gemm = sum(k * both for k, (_, both) in passes)
        gemm_f = sum(k * f for k, (f, _) in passes)
        core_fwd, core_total = attention_core_s(model, ex, r, is_dec, s, s_enc)
        elem_fwd, elem_total = elementwise_s(model, ex, r, is_dec, ex.micro_batch * s / ex.cp, ffn_width)
        tp_c, cp_c, ep_c, cp_l = layer_comm_s(model, ex, r, coll, is_dec, is_moe, s, core_total)
        total = total + n_layers * (gemm + core_total + elem_total)
        fwd = fwd + n_layers * (gemm_f + core_fwd + elem_fwd)
        attn_fwd = attn_fwd + n_layers * core_fwd
        gemm_all = gemm_all + n_layers * gemm
        tp_comm = tp_comm + n_layers * tp_c
        cp_comm = cp_comm + n_layers * cp_c
        ep_comm = ep_comm + n_layers * ep_c
        cp_link = cp_link + n_layers * cp_l
    return LayerWork(total, fwd, attn_fwd, gemm_all, tp_comm, cp_comm, ep_comm, cp_link)


def output_gemm(model: ModelSpec, run: RunSpec, ex: Exec) -> tuple[str, Num, Num, Num, int]:
    """(label, m, n, k, count) of the logits GEMM of one micro-batch on the last stage (vocabulary split by TP)."""
    s_enc, s_dec = sequence_lengths(model, run)
    m_out = ex.micro_batch * (s_dec if model.arch != "encoder" else s_enc) / ex.cp
    return "logits", m_out, model.vocab_size / ex.tp, model.embedding_dim or model.hidden_size, 1


def output_layer_s(model: ModelSpec, run: RunSpec, ex: Exec, r: Rates) -> Num:
    """Logits GEMM (forward + backward, bf16 under fp8 recipes) and the fp32 loss of one micro-batch (last stage)."""
    _, m_out, n_out, e_out, _ = output_gemm(model, run, ex)
    _, logits = gemm_pass_s(m_out, n_out, e_out, r, bf16=True)
    return logits + r.stream_s(m_out * model.vocab_size / ex.tp * (2 * r.elem_bytes + LOSS_FP32_BYTES_PER_LOGIT))


def recompute_s(ex: Exec, work: LayerWork) -> tuple[Num, Num]:
    """(recomputed forward seconds per micro-batch, TP collectives including the recomputed forward's).

    Full recomputation re-runs the forward of the recomputed layers, TP collectives included (Korthikanti et al.
    2022 §5); selective re-runs the attention core, which a fused kernel already recomputes in its backward."""
    share = ex.full_recompute_share
    fused = ex.flash == 1
    again = np.where(ex.recompute == RECOMPUTE_FULL, share * work.fwd_s,
                     np.where((ex.recompute == RECOMPUTE_SELECTIVE) & ~fused, work.attn_fwd_s, 0.0))
    return again, work.tp_comm_s * (1.0 + 0.5 * share)


def pipeline_s(model: ModelSpec, run: RunSpec, ex: Exec, r: Rates, coll: Collective, stage_mb_s: Num,
               wgrad_mb_s: Num = 0.0) -> tuple[Num, Num]:
    """(PP point-to-point seconds per micro-batch, bubble seconds per step).

    Each micro-batch sends its activations forward and its gradients back across every one of the v chunk
    boundaries; the 1F1B and interleaved schedules idle (pp-1)/v stage-micro-batch times (Narayanan et al. 2021
    Eq. 1-2). ZB-H1 (Qi et al. 2024, Table 2) splits the backward into the input gradient (B) and the weight
    gradient (W, ``wgrad_mb_s``: the stage's weight-gradient GEMMs of one micro-batch) and defers W into the
    bubble: (p-1)(T_F + T_B - T_W) instead of (p-1)(T_F + T_B + T_W), a third of it when the three are equal.
    Each of the t tensor-parallel ranks sends 1/t of the boundary tensor: with sequence parallelism the tensor is
    already split, without it Megatron-LM's scatter/gather optimisation (Narayanan et al. 2021 §4.1)
    sends one slice per rank across the link and all-gathers it over NVLink inside the receiving stage.
    DeepSpeed's pipeline engine (``framework: deepspeed``) has no such optimisation: every rank sends the whole
    tensor unless sequence parallelism already split it."""
    s_enc, s_dec = sequence_lengths(model, run)
    s_out = s_dec if model.arch != "encoder" else s_enc
    full_bytes = ex.micro_batch * s_out / ex.cp * model.hidden_size * r.elem_bytes
    split = (ex.sp == 1) | (ex.tp == 1)
    whole = ex.framework == FRAMEWORK_CODE["deepspeed"]  # no scatter/gather
    gather = np.where(split | whole, 0.0, coll(ALL_GATHER, full_bytes, ex.tp, 1))
    sent = np.where(split | ~np.asarray(whole), full_bytes / ex.tp, full_bytes)
    hop = coll(P2P, sent, 2, ex.tp * ex.cp * ex.dp) + gather
    per_mb_pp = np.where(ex.pp > 1, 2 * ex.vpp * hop, 0.0)
    zb = ex.schedule == SCHEDULE_CODE["zb-h1"]
    bubble = (ex.pp - 1) / ex.vpp * (stage_mb_s + per_mb_pp - np.where(zb, 2.0 * wgrad_mb_s, 0.0))
    return per_mb_pp, bubble


def fullest_stage_params(model: ModelSpec, ex: Exec) -> Num:
    """Parameters one GPU of the fullest pipeline stage holds before ZeRO sharding (first, middle or last stage)."""
    ranks = rank_params(model, param_breakdown(model), ex)
    per_gpu = {k: dense + expert for k, (dense, expert, _root) in ranks.items()}
    return np.maximum.reduce([per_gpu["first"], np.where(ex.pp > 2, per_gpu["middle"], 0.0), per_gpu["last"]])


def fsdp2_copy_out_s(model: ModelSpec, run: RunSpec, ex: Exec, r: Rates) -> Num:
    """Seconds per step FSDP2 (torchtitan) spends copying each gathered layer into its parameters, on the compute
    stream: PyTorch's ``foreach_all_gather_copy_out`` (torch/distributed/_composable/fsdp/_fsdp_collectives.py)
    waits for the all-gather on the current stream and copies its output into every parameter's unsharded tensor
    (``split_with_sizes_copy``): the stage's weights read and written once per gather, two gathers per layer and
    micro-batch (embedding and head are units of their own, gathered alike), once per layer and step when a
    pipelined stage stays unsharded (:func:`torchtitan_fsdp`). FSDP1 (``framework: fsdp``, llm-foundry) gathers
    into the flat parameter itself and copies nothing; the reduce-scatter's input copy (``chunk_cat``) runs on its
    own stream and is left out."""
    fsdp2, piped = torchtitan_fsdp(ex)
    gathers = np.where(piped, 1.0, 2.0 * ex.grad_accum)  # per layer and step
    copies = gathers * r.stream_s(2.0 * fullest_stage_params(model, ex) * bytes_per_weight(run))
    return np.where(fsdp2, copies, 0.0)


def data_parallel_s(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, coll: Collective, work: LayerWork,
                    recompute_mb_s: Num, slowdown: float) -> Num:
    """Exposed data-parallel and sharding seconds per step, from the layer-by-layer overlap frameworks implement.

    Layer by layer, one stage of n layers, per micro-batch: forward f and backward b seconds per layer (the
    recomputed forward runs inside the backward), g/r seconds to all-gather one layer's weights / reduce-scatter
    its gradients over the shard group.

    * **ZeRO-3 / FSDP** (Rajbhandari et al. 2020 §5; Zhao et al. 2023 §3.4, PyTorch FSDP's backward prefetch):
      each micro-batch gathers every layer's weights in the forward and again in the backward and reduce-scatters
      its gradients. The next layer's gather runs while the current layer computes, so per micro-batch the exposed
      time is g + (n-1)·overlap(g, f) forward and g + (n-1)·overlap(g + r, b) + r backward (:func:`overlap_s`:
      what sticks out past the layer's compute plus the compute it slows; the first gather of each pass and the
      last reduce-scatter have nothing to hide under; gathers and reduce-scatters share the links). Hybrid sharding
      adds the all-reduce of the gradient shards between replicas after the last one.
    * **DP, ZeRO-1/2** (PyTorch DDP and Megatron-LM's overlapped gradient reduce, Li et al. 2020 §3.2): buckets of
      gradients are reduced while the last micro-batch's backward goes on, so what shows is the last layer's bucket
      plus overlap(the rest, backward); ZeRO-1/2 then all-gather the updated weights (Megatron's distributed
      optimizer), exposed.

    Gathers, reduce-scatters and gradient reduces that cross nodes share each GPU's NIC with a context-parallel ring
    that crosses nodes too (``work.cp_link_s``: K and V forward, a third; K, V, dK and dV backward, two thirds): the
    ring's NIC time beyond what its own exposure already added to the layer is time those links are busy
    (``link_busy_s`` of :func:`overlap_s`), as NICs are shared by every group that crosses nodes at once.

    torchtitan (FSDP2) reduce-scatters in fp32 under mixed precision (:data:`TORCHTITAN_REDUCE_BYTES`) and, with a
    pipeline, gathers and reduces each layer once per step (:func:`torchtitan_fsdp`).

    Left out: bucket sizes other than one layer, the embedding's separate gather, FSDP's limit on gathers in
    flight, the ring exchange of a recomputed forward, and NIC sharing with EP all-to-alls (exposed, not hidden)
    and pipeline sends (one per micro-batch and stage boundary)."""
    stage_params_gpu = fullest_stage_params(model, ex)
    g_bytes, w_bytes = gradient_bytes(run, ex.framework), bytes_per_weight(run)  # DDP's autocast: fp32 gradients
    n_dp = ex.dp * ex.cp
    shard = ex.shard_group(hw.gpus_per_node)
    L = model.total_layers
    n = np.maximum(1.0, np.round(L * ex.stage_fraction(L)))  # layers on the fullest stage
    f = work.fwd_s / L  # per layer and micro-batch
    b = (work.total_s - work.fwd_s) / L + recompute_mb_s / L
    layer_params = stage_params_gpu / n

    fsdp2, piped = torchtitan_fsdp(ex)
    rs_bytes = np.where(fsdp2 & run.mixed_precision, TORCHTITAN_REDUCE_BYTES, g_bytes)
    g = coll(ALL_GATHER, layer_params * w_bytes, shard, ex.tp)
    r = coll(REDUCE_SCATTER, layer_params * rs_bytes, shard, ex.tp)
    # the CP ring's NIC time per layer that its own exposure did not already add to the layer, forward / backward
    cp_busy = np.maximum(0.0, work.cp_link_s - work.cp_comm_s) / L
    gpn = hw.gpus_per_node
    fsdp_busy = np.where(crosses_nodes(shard, ex.tp, gpn), cp_busy, 0.0)
    gather_fwd = g + (n - 1) * overlap_s(g, f, slowdown, fsdp_busy / 3.0)
    fsdp_mb = gather_fwd + (g + (n - 1) * overlap_s(g + r, b, slowdown, 2.0 * fsdp_busy / 3.0) + r)
    # an unsharded pipelined stage: gathered in the first micro-batch's forward, reduced after the last backward
    once = gather_fwd + (n - 1) * overlap_s(r, b, slowdown, 2.0 * fsdp_busy / 3.0) + r
    hybrid_replicas = n_dp / shard
    fsdp_step = np.where(piped, once, ex.grad_accum * fsdp_mb) + coll(
        ALL_REDUCE, stage_params_gpu * rs_bytes / shard, hybrid_replicas, ex.tp * shard)

    grad_bytes = stage_params_gpu * g_bytes
    t_reduce = np.where(ex.zero_stage >= 1, coll(REDUCE_SCATTER, grad_bytes, n_dp, ex.tp),
                        coll(ALL_REDUCE, grad_bytes, n_dp, ex.tp))
    t_param_gather = np.where((ex.zero_stage >= 1) & (ex.zero_stage < 3),
                              coll(ALL_GATHER, stage_params_gpu * w_bytes, n_dp, ex.tp), 0.0)
    last_bwd = n * b
    dp_busy = np.where(crosses_nodes(n_dp, ex.tp, gpn), n * 2.0 * cp_busy / 3.0, 0.0)
    dp_exposed = t_reduce / n + overlap_s(t_reduce * (1.0 - 1.0 / n), last_bwd, slowdown, dp_busy) + t_param_gather
    return np.where(ex.zero_stage >= 3, fsdp_step, dp_exposed)


def optimizer_s(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, r: Rates) -> Num:
    """The optimizer step: a memory-bound sweep over the local (ZeRO-sharded) parameters, reading the gradient and
    :data:`OPTIMIZER_STREAM_BYTES` of state per parameter; nothing on the GPU when the optimizer is offloaded."""
    stage_params_gpu = fullest_stage_params(model, ex)
    opt_params = stage_params_gpu / np.where(ex.zero_stage >= 1, ex.shard_group(hw.gpus_per_node), 1)
    stream = OPTIMIZER_STREAM_BYTES[run.optimizer]
    return np.where(ex.offload == 1, 0.0, r.stream_s(opt_params * (stream + gradient_bytes(run, ex.framework))))


#: SMs the communication holds beside the compute. NCCL: 24 CTAs of an all-gather beside a GEMM on an H100 (NVIDIA
#: developer forum, "Compute-Communication Overlap Causes Severe GEMM Performance Degradation because of Tail Effect",
#: an FSDP prefetch traced with Nsight Systems): 24 of 132 SMs, 0.18, the size of the measured mean slowdown
#: (``TimeParams.overlap_compute_slowdown``, 0.189). Transformer Engine's userbuffers (``tp_comm_overlap``;
#: ``initialize_ub`` defaults in transformer_engine/pytorch/module/base.py): the all-gathers of qkv_fprop, fc1_fprop,
#: proj_dgrad and fc2_dgrad ring-exchange through the copy engines with 1 SM, the reduce-scatters of proj_fprop and
#: fc2_fprop (pipeline) and the qkv/fc1 dgrad and wgrad overlaps (bulk) hold 16: 8.5 on average over the eight.
NCCL_OVERLAP_SMS = 24.0
TE_USERBUFFER_SMS = (4 * 1.0 + 4 * 16.0) / 8.0

#: Frameworks whose tensor-parallel linear layers overlap the backward collective with the weight-gradient GEMM
#: (Megatron-LM's LinearWithGradAccumulationAndAsyncCommunication; Megatron-DeepSpeed runs the same layers)
ASYNC_TP_BACKWARD = (FRAMEWORK_CODE[None], FRAMEWORK_CODE["megatron"], FRAMEWORK_CODE["deepspeed"])


def tp_exposed_s(ex: Exec, work: LayerWork, tp_comm: Num, slowdown: float) -> Num:
    """Exposed tensor-parallel communication per micro-batch (all layers).

    Transformer Engine userbuffers (``tp_comm_overlap``) hide it under the layer's GEMMs. Without them Megatron-LM
    still overlaps each backward collective of a column-parallel layer's input gradient with that layer's
    weight-gradient GEMM (Korthikanti et al. 2022 §6.2: the optimisation that makes full recomputation cost 39%
    rather than 33% of a layer; ``--no-async-tensor-model-parallel-allreduce`` turns it off): half the layer's TP
    collectives (the backward ones) hide under the weight-gradient GEMMs (a third of the GEMM time). torchtitan's
    DTensor layers (without async TP) expose them all. What hides slows the GEMMs it hides under
    (:func:`overlap_s`): NCCL's all-reduce by the measured slowdown, Transformer Engine's userbuffers by the share
    of it their fewer SMs hold (:data:`TE_USERBUFFER_SMS` / :data:`NCCL_OVERLAP_SMS`)."""
    bwd = work.tp_comm_s / 2.0
    async_bwd = tp_comm - bwd + overlap_s(bwd, work.gemm_s / 3.0, slowdown)
    plain = np.where(np.isin(ex.framework, ASYNC_TP_BACKWARD), async_bwd, tp_comm)
    userbuffers = overlap_s(tp_comm, work.gemm_s, slowdown * TE_USERBUFFER_SMS / NCCL_OVERLAP_SMS)
    return np.where(ex.tp_overlap == 1, userbuffers, plain)


def step_time(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, eff: TimeParams | None = None
              ) -> TimeBreakdown:
    """Seconds per optimizer step for ``ex`` (scalars or broadcastable arrays); ``eff`` overrides the profile's
    efficiency parameters (the calibration fits do). A plan naming no framework is costed, layout by layout, as the
    framework that runs it (:func:`~planner.core.checks.costed_framework`)."""
    ex = costed_exec(model, ex)
    r = rates_of(hw, run, activation_bytes_per_element(run), eff)
    coll = collective_of(hw, r.eff)
    work = layers_s(model, run, ex, r, coll)
    recompute_mb, tp_comm = recompute_s(ex, work)
    tp_exposed = tp_exposed_s(ex, work, tp_comm, r.eff.overlap_compute_slowdown)

    frac = ex.stage_fraction(model.total_layers)  # 1/pp for even stages; the fullest stage when uneven
    per_mb_compute = work.total_s * frac + output_layer_s(model, run, ex, r)  # the last stage: critical
    per_mb_recompute = recompute_mb * frac
    per_mb_tp, per_mb_cp, per_mb_ep = tp_exposed * frac, work.cp_comm_s * frac, work.ep_comm_s * frac
    stage_mb = per_mb_compute + per_mb_recompute + per_mb_tp + per_mb_cp + per_mb_ep
    wgrad_mb = work.gemm_s / 3.0 * frac  # dW = X^T dY: one of each GEMM's three passes (gemm_pass_s)
    per_mb_pp, bubble = pipeline_s(model, run, ex, r, coll, stage_mb, wgrad_mb)
    m = ex.grad_accum
    return TimeBreakdown(
        compute_s=m * per_mb_compute,
        recompute_s=m * per_mb_recompute,
        tp_comm_s=m * per_mb_tp,
        cp_comm_s=m * per_mb_cp,
        ep_comm_s=m * per_mb_ep,
        pp_comm_s=m * per_mb_pp,
        bubble_s=bubble,
        dp_comm_s=(data_parallel_s(model, run, ex, hw, coll, work, recompute_mb, r.eff.overlap_compute_slowdown)
                   + fsdp2_copy_out_s(model, run, ex, r)),
        optimizer_s=optimizer_s(model, run, ex, hw, r),
    )


@dataclass(frozen=True)
class Throughput:
    step_time_s: Num
    tokens_per_s_per_gpu: Num
    model_tflop_per_s_per_gpu: Num
    mfu: Num
    hfu: Num
    mfu_at_run_precision: Num  #: model FLOPs against the dense peak of the precision the GEMMs run in (fp8: fp8)


def throughput(flops: StepFlops, tb: TimeBreakdown, ex: Exec, hw: HardwareSpec, precision: str) -> Throughput:
    """Tokens/s per GPU, model TFLOP/s per GPU, MFU and HFU from a step time.

    MFU: model FLOPs (PaLM App. B) / (step time x GPUs x peak). HFU: the same plus the FLOPs recomputation repeats
    (PaLM App. B: hardware FLOPs utilization counts rematerialisation), so HFU ≥ MFU always; what the kernels
    execute (causal blocks skipped by a fused kernel) is ``hardware_flops_per_step``, which the time model uses
    and which can be below the model count for long causal sequences without recomputation."""
    st = tb.step_time_s
    gpus = ex.gpus
    peak = peak_flop_per_s(hw, mfu_dtype(precision))
    peak_run = run_peak_flop_per_s(hw, precision)
    return Throughput(
        step_time_s=st,
        tokens_per_s_per_gpu=flops.tokens_per_step / st / gpus,
        model_tflop_per_s_per_gpu=flops.model_flops_per_step / st / gpus / 1e12,
        mfu=flops.model_flops_per_step / st / gpus / peak,
        hfu=(flops.model_flops_per_step + flops.recompute_flops_per_step) / st / gpus / peak,
        mfu_at_run_precision=flops.model_flops_per_step / st / gpus / peak_run,
    )
