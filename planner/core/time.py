"""Step time from achievable (not peak) throughput, operation by operation, with a breakdown that sums.

Per micro-batch and pipeline stage (Narayanan et al. 2021 §3; Korthikanti et al. 2022 §5; DESIGN.md §2 "Time"):

* **GEMMs** of each layer with their per-GPU shapes after TP/CP/EP sharding (QKV, attention out, FFN up/gate,
  down, expert FFNs, cross-attention, logits), forward and the two backward GEMMs. Each runs at the measured
  *maximum achievable matmul FLOPs* (MAMF: ~87% of peak on A100, ~80% on H100; ``../shared/data/microbench.yaml``)
  times x/(x + ``gemm_half_dim``) for each of its three dimensions (small and skinny GEMMs get less; fitted), or
  at HBM speed when too skinny to be compute-bound (roofline on the bytes of its three operands).
* **Attention core**: a fused kernel runs at ``attention_fraction x peak`` on its executed FLOPs (FlashAttention-2;
  ``attention_fraction_flash3`` for the Hopper-native FlashAttention-3/cuDNN kernels; fitted); without one, QK^T
  and AV are batched GEMMs and softmax/mask/dropout move the s x s scores through HBM.
* **Memory-bound operations** (norms, activation functions, residual adds, rotary, dropout, the loss, the
  optimizer step): bytes / (HBM bandwidth x ``hbm_fraction``).
* **Recomputation** adds the forward it repeats (full: the whole layer; selective: the attention core).
* **Communication** (``comm.py``): TP all-reduces (or all-gather + reduce-scatter with sequence parallelism), exposed
  unless the layout overlaps them; CP ring exchange of K/V hidden under attention; EP all-to-all (dispatch and
  combine, forward and backward), exposed; PP point-to-point activations; DP gradient reduce overlapping the last
  micro-batch's backward by ``dp_overlap_fraction``; ZeRO-3/FSDP all-gathers (forward, backward) and
  reduce-scatter per micro-batch, hidden under compute by ``fsdp_overlap_fraction``.
* **Step** = m x (stage compute + exposed comm) + pipeline bubble ((pp-1)/v stage-micro-batch times, 1F1B and
  interleaved, Narayanan 2021 Eq. 1-2) + exposed DP/FSDP comm + optimizer step.

Fitted parameters live in ``hardware_profiles/calibration/*.yaml`` (one set per GPU generation, fitted by
``python -m planner.calibrate.fit`` on the public measured runs); the defaults below are priors used only when a
profile has no calibration.

Left out: kernel launch gaps between layers beyond the per-GEMM cost, data loading, NVLS/SHARP, load imbalance
of MoE routing (assumed balanced), stragglers, and the first/last-stage imbalance beyond the logits (the
embedding lookup is free).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..specs.hardware import HardwareSpec
from ..specs.model import AttentionSpec, ModelSpec
from ..specs.run import RunSpec
from .comm import ALL_GATHER, ALL_REDUCE, ALL_TO_ALL, P2P, REDUCE_SCATTER, collective_time_s
from .flops import (BWD_OVER_FWD, FLASH_BWD_OVER_FWD, RECOMPUTE_FULL, RECOMPUTE_SELECTIVE, StepFlops,
                    attention_pairs, sequence_lengths)
from .layout import Exec, Num
from .memory import activation_bytes_per_element, bytes_per_grad, bytes_per_weight, stage_params
from .params import expert_width, layer_groups, param_breakdown


@dataclass(frozen=True)
class TimeParams:
    """Efficiency parameters of the time model (dimensionless unless the name says otherwise)."""

    matmul_fraction: float = 0.80  #: achievable / peak for large GEMMs in the run's dtype (MAMF, measured)
    matmul_fraction_bf16: float = 0.80  #: the same for bf16 (fp8 runs keep attention and logits in bf16)
    gemm_half_dim: float = 256.0  #: GEMM dimension at which that dimension alone halves efficiency (fitted)
    attention_fraction: float = 0.45  #: FlashAttention-2 achieved / peak, forward and backward (fitted)
    attention_fraction_flash3: float = 0.60  #: FlashAttention-3/cuDNN on Hopper (fitted; prior: Shah et al. 2024
    #: report 75% of peak forward in bf16 and a slower backward)
    hbm_fraction: float = 0.80  #: achievable / peak HBM bandwidth for streaming kernels (fitted)
    nvlink_busbw_fraction: float = 0.78  #: all-reduce busbw / unidirectional NVLink bandwidth (measured)
    network_busbw_fraction: float = 0.80  #: busbw / per-GPU NIC bandwidth across nodes (fitted)
    dp_overlap_fraction: float = 0.8  #: share of the last backward that hides the DP gradient reduce (fitted)
    fsdp_overlap_fraction: float = 0.8  #: share of compute that hides ZeRO-3/FSDP gathers (fitted)

    #: which fields a calibration fits (the others are measured or datasheet numbers)
    FITTED = ("gemm_half_dim", "attention_fraction", "attention_fraction_flash3", "hbm_fraction", "network_busbw_fraction",
              "dp_overlap_fraction", "fsdp_overlap_fraction")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def replace(self, **kw) -> "TimeParams":
        return TimeParams(**{**{n: getattr(self, n) for n in self.names()}, **kw})


def time_params(hw: HardwareSpec, precision: str) -> TimeParams:
    """The profile's efficiency parameters (calibration merged in by the registry), defaults for missing ones."""
    eff = {k: q.value for k, q in hw.efficiency.items()}
    kw = {n: eff[n] for n in TimeParams.names() if n in eff}
    dtype = "fp8" if precision == "fp8" else ("bf16" if precision in ("bf16", "fp16") else precision)
    mm_key = f"matmul_max_achievable_fraction_{dtype}"
    bf16_key = "matmul_max_achievable_fraction_bf16"
    if bf16_key in eff:
        kw["matmul_fraction_bf16"] = eff[bf16_key]
    if mm_key in eff:
        kw["matmul_fraction"] = eff[mm_key]
    elif bf16_key in eff:
        kw["matmul_fraction"] = eff[bf16_key]
    return TimeParams(**kw)


def peak_flop_per_s(hw: HardwareSpec, dtype: str) -> float:
    """Dense peak for ``dtype``; bf16 falls back to fp16 on chips without bf16 (V100), which run such jobs in fp16."""
    table = hw.accelerator.peak_flop_per_s
    if dtype not in table and dtype == "bf16" and "fp16" in table:
        dtype = "fp16"
    return hw.accelerator.peak(dtype)


def mfu_dtype(precision: str) -> str:
    """The peak MFU is quoted against: bf16 for mixed precision, fp8 runs included (NeMo, Megatron convention)."""
    return {"fp32": "fp32", "tf32": "tf32"}.get(precision, "bf16")


#: Bytes the optimizer step moves per parameter besides the gradient, under mixed precision: fp32 master weight
#: read + written (8), each fp32 moment read + written (8 each), the bf16 weight copy written (2). Adam(W): 26;
#: SGD with momentum: 18; 8-bit Adam (1-byte moments, Dettmers et al. 2022): 14; Adafactor (factored second
#: moment, no momentum; Shazeer & Stern 2018): 10. A fused multi-tensor kernel (apex/PyTorch foreach) is one pass.
OPTIMIZER_STREAM_BYTES = {"adam": 26.0, "adamw": 26.0, "sgd": 18.0, "adam8bit": 14.0, "adafactor": 10.0}

#: The loss streams the vocabulary-parallel logits in fp32 (Megatron-LM's vocab_parallel_cross_entropy): upcast
#: write, max/sum-exp read, softmax write and gradient read-modify, about four 4-byte passes per logit; the bf16
#: logits are written once and read once more (the 2·e bytes beside it).
LOSS_FP32_BYTES_PER_LOGIT = 16.0

#: FP8 GEMMs (Transformer Engine; Micikevicius et al. 2022 §4) need fp8 copies of their inputs. Activations are
#: cast inside the kernel that produces them (TE's fused LayerNorm/activation + cast): one extra byte written per
#: element. Weights are cast (read 2 bytes, write 1) each time a micro-batch uses them.
FP8_CAST_BYTES_PER_ACTIVATION = 1.0
FP8_CAST_BYTES_PER_WEIGHT = 3.0


def gemm_efficiency(a, b, c, tp: TimeParams) -> Num:
    """Achieved / peak FLOP/s of an (a x c) @ (c x b) GEMM: the measured best (MAMF) times x/(x + x_half) for each
    dimension, so large GEMMs approach MAMF and small or skinny ones (few rows, narrow TP shards, short K) lose
    tile, wave-quantisation and pipeline-fill efficiency. x_half is fitted per GPU generation; faster tensor
    cores need larger tiles to stay busy, so it grows from Ampere to Hopper."""
    h = tp.gemm_half_dim
    return tp.matmul_fraction * (a / (a + h)) * (b / (b + h)) * (c / (c + h))


def _gemm_one(a, b, c, peak, bw, e, tp: TimeParams, fp8: bool) -> Num:
    """One (a x c) @ (c x b) GEMM: roofline on FLOPs (at its shape's efficiency) and on operand bytes."""
    t_c = 2.0 * a * b * c / (gemm_efficiency(a, b, c, tp) * peak)
    t_m = e * (a * c + c * b + a * b) / (tp.hbm_fraction * bw)
    t = np.maximum(t_c, t_m)
    if fp8:  # operand (a x c) is the activation side, (c x b) the weight side for the forward GEMM
        t = t + (FP8_CAST_BYTES_PER_ACTIVATION * a * c + FP8_CAST_BYTES_PER_WEIGHT * c * b) / (tp.hbm_fraction * bw)
    return t


def _gemm_s(m, n, k, peak, bw, e, tp: TimeParams, fp8: bool = False) -> Num:
    """Forward + two backward GEMMs of an (m x k) @ (k x n) product (Y = XW, dX = dY W^T, dW = X^T dY)."""
    return (_gemm_one(m, n, k, peak, bw, e, tp, fp8) + _gemm_one(m, k, n, peak, bw, e, tp, fp8)
            + _gemm_one(k, n, m, peak, bw, e, tp, fp8))


def _gemm_fwd_s(m, n, k, peak, bw, e, tp: TimeParams, fp8: bool = False) -> Num:
    return _gemm_one(m, n, k, peak, bw, e, tp, fp8)


@dataclass(frozen=True)
class TimeBreakdown:
    """Seconds per optimizer step, by part. ``step_time_s`` is their sum (a test checks it)."""

    compute_s: Num  #: GEMMs, attention and memory-bound ops of all micro-batches on the critical stage
    recompute_s: Num  #: forward work recomputation repeats (not included in compute_s)
    tp_comm_s: Num  #: exposed tensor-parallel collectives
    cp_comm_s: Num  #: exposed context-parallel K/V exchange
    ep_comm_s: Num  #: exposed expert-parallel all-to-all
    pp_comm_s: Num  #: pipeline point-to-point
    bubble_s: Num  #: pipeline fill and drain
    dp_comm_s: Num  #: exposed data-parallel gradient reduce and ZeRO/FSDP gathers
    optimizer_s: Num  #: optimizer step

    PARTS = ("compute_s", "recompute_s", "tp_comm_s", "cp_comm_s", "ep_comm_s", "pp_comm_s", "bubble_s",
             "dp_comm_s", "optimizer_s")

    @property
    def step_time_s(self) -> Num:
        return sum(getattr(self, p) for p in self.PARTS)

    def parts(self) -> dict[str, Num]:
        return {p: getattr(self, p) for p in self.PARTS}


def step_time(model: ModelSpec, run: RunSpec, ex: Exec, hw: HardwareSpec, tp: TimeParams | None = None
              ) -> TimeBreakdown:
    """Seconds per optimizer step for ``ex`` (scalars or broadcastable arrays)."""
    tp = tp or time_params(hw, run.precision)
    acc = hw.accelerator
    peak = peak_flop_per_s(hw, run.precision)
    fp8 = run.precision == "fp8"
    # fp8 recipes (Transformer Engine, NeMo) run the attention core and the output layer in bf16
    peak16 = peak_flop_per_s(hw, "bf16") if fp8 else peak
    tp16 = tp.replace(matmul_fraction=tp.matmul_fraction_bf16) if fp8 else tp
    bw = acc.hbm_bandwidth_bytes_per_s.value
    e = activation_bytes_per_element(run)
    gpn = hw.gpus_per_node
    intra_bw = hw.node.intra_node_bandwidth_bytes_per_s.value * tp.nvlink_busbw_fraction
    inter_bw = hw.network.inter_node_bandwidth_bytes_per_s.value * tp.network_busbw_fraction
    lat_in, lat_out = hw.node.intra_node_latency_s.value, hw.network.inter_node_latency_s.value

    def coll(kind, nbytes, n, stride):
        return collective_time_s(kind, nbytes, n, stride, gpus_per_node=gpn, intra_busbw_bytes_per_s=intra_bw,
                                 inter_busbw_bytes_per_s=inter_bw, intra_latency_s=lat_in, inter_latency_s=lat_out)

    s_enc, s_dec = sequence_lengths(model, run)
    d, a, dh, kv = model.hidden_size, model.num_heads, model.head_size, model.kv_heads
    q_w, kv_w = a * dh, kv * dh
    t, c, b = ex.tp, ex.cp, ex.micro_batch
    mats = model.ffn_matrices
    sp_div = np.where(ex.sp == 1, t, 1)
    drop = 1.0 if model.dropout > 0 else 0.0
    fused = ex.flash == 1

    layer_total = 0.0  # fwd+bwd compute of all layers for one micro-batch (whole model), s
    layer_fwd = 0.0  # forward only (what full recomputation repeats), s
    attn_fwd_total = 0.0  # attention-core forward (what selective recomputation repeats without a fused kernel), s
    tp_comm = cp_comm = ep_comm = 0.0
    tp_gemm_hide = 0.0
    for (is_dec, is_moe), n_layers in layer_groups(model):
        decoder_side = model.arch == "decoder" or is_dec
        s = s_dec if decoder_side else s_enc
        m_tok = b * s / c  # tokens per GPU in GEMMs (sequence-parallel all-gathers restore s/c before them)
        gemms: list[tuple] = [(m_tok, (q_w + 2 * kv_w) / t, d, 1), (m_tok, d, q_w / t, 1)]  # (m, n, k, count)
        if is_moe:
            moe = model.moe
            fe = expert_width(model)
            rows = m_tok * moe.top_k * ex.ep / moe.num_experts  # tokens per local expert, balanced routing
            local = moe.num_experts / ex.ep
            gemms += [(rows, (mats - 1) * fe / t, d, local), (rows, d, fe / t, local)]
            if moe.shared_experts:
                w = moe.shared_experts * fe
                gemms += [(m_tok, (mats - 1) * w / t, d, 1), (m_tok, d, w / t, 1)]
            gemms.append((m_tok, moe.num_experts, d, 1))  # router
            # dispatch + combine, forward and backward: 4 all-to-alls of the routed activations
            ep_comm = ep_comm + n_layers * 4 * coll(ALL_TO_ALL, m_tok * moe.top_k * d * e, ex.ep, ex.tp * ex.cp)
            ffn_width = moe.top_k * fe + moe.shared_experts * fe
        else:
            f = model.ffn_hidden
            gemms += [(m_tok, (mats - 1) * f / t, d, 1), (m_tok, d, f / t, 1)]
            ffn_width = f
        if is_dec:  # cross-attention: Q/O on decoder tokens, K/V on encoder tokens
            gemms += [(m_tok, q_w / t, d, 1), (b * s_enc / c, 2 * kv_w / t, d, 1), (m_tok, d, q_w / t, 1)]
        gemm = sum(k * _gemm_s(gm, gn, gk, peak, bw, e, tp, fp8) for gm, gn, gk, k in gemms)
        gemm_f = sum(k * _gemm_fwd_s(gm, gn, gk, peak, bw, e, tp, fp8) for gm, gn, gk, k in gemms)

        # attention core
        attn = model.attention if (model.arch != "encoder_decoder" or is_dec) else AttentionSpec(pattern="full")
        _, pairs = attention_pairs(attn, s, causal=decoder_side, fused=ex.flash)
        if is_dec:
            pairs = pairs + float(s) * s_enc
        core_flops_fwd = 4.0 * dh * (a / t) * b * pairs / c
        attn_frac = np.where(ex.fa3 == 1, tp.attention_fraction_flash3, tp.attention_fraction)
        flash_fwd = core_flops_fwd / (attn_frac * peak16)
        flash_total = flash_fwd * (1 + FLASH_BWD_OVER_FWD)
        # unfused: two batched GEMMs at matmul speed + softmax/mask/dropout streaming the scores
        score_elems = (a / t) * b * pairs / c
        stream_fwd = score_elems * e * (3 + 3 * drop) / (tp.hbm_fraction * bw)  # write S, read S write P, (dropout)
        plain_fwd = core_flops_fwd / (tp16.matmul_fraction * peak16) + stream_fwd
        plain_total = plain_fwd * (1 + BWD_OVER_FWD)
        core_fwd = np.where(fused, flash_fwd, plain_fwd)
        core_total = np.where(fused, flash_total, plain_total)

        # memory-bound elementwise traffic per token, forward (backward ~2x): norms (read+write d each), residual
        # adds (2 reads + 1 write of d each), FFN activation (read 1-2 f, write f), rotary on Q and K, dropout
        n_norms = (1 if model.parallel_block else 2) + (1 if is_dec else 0)
        per_tok = (2 * n_norms + 6 + 3 * drop * 2) * d / sp_div + (mats * ffn_width) / t
        if model.position == "rotary":
            per_tok = per_tok + 2 * (q_w + kv_w) / t
        elem_fwd = m_tok * per_tok * e / (tp.hbm_fraction * bw)
        elem_total = 3.0 * elem_fwd

        layer_total = layer_total + n_layers * (gemm + core_total + elem_total)
        layer_fwd = layer_fwd + n_layers * (gemm_f + core_fwd + elem_fwd)
        attn_fwd_total = attn_fwd_total + n_layers * core_fwd
        tp_gemm_hide = tp_gemm_hide + n_layers * gemm

        # TP: 2 collectives forward + 2 backward per block of m_tok·d activations (self-attn, FFN; +1 cross-attn)
        blocks = 2 + (1 if is_dec else 0)
        tp_comm = tp_comm + n_layers * 2 * blocks * coll(ALL_REDUCE, m_tok * d * e, t, 1)
        # CP: ring exchange of K and V forward, K, V, dK, dV backward, hidden under the attention core
        kv_bytes = b * s / c * 2 * kv_w / t * e
        cp_t = 3 * (c - 1) * coll(P2P, kv_bytes, 2, ex.tp)
        cp_comm = cp_comm + n_layers * np.maximum(0.0, cp_t - core_total)

    # full recomputation repeats TP collectives of the forward
    full = ex.recompute == RECOMPUTE_FULL
    share = ex.full_recompute_share
    recompute_mb = np.where(full, share * layer_fwd,
                            np.where((ex.recompute == RECOMPUTE_SELECTIVE) & ~fused, attn_fwd_total, 0.0))
    tp_comm = tp_comm * (1.0 + 0.5 * share)
    tp_exposed = np.where(ex.tp_overlap == 1, np.maximum(0.0, tp_comm - tp_gemm_hide), tp_comm)

    # output layer (last stage): logits GEMM + loss (fp32 softmax: read and write the logits a few times)
    s_out = s_dec if model.arch != "encoder" else s_enc
    m_out = b * s_out / c
    e_out = model.embedding_dim or d
    logits = _gemm_s(m_out, model.vocab_size / t, e_out, peak16, bw, e, tp16)
    logits = logits + m_out * model.vocab_size / t * (2 * e + LOSS_FP32_BYTES_PER_LOGIT) / (tp.hbm_fraction * bw)

    pp, v = ex.pp, ex.vpp
    frac = ex.stage_fraction(model.total_layers)  # 1/pp for even stages; the fullest stage when uneven
    per_mb_compute = layer_total * frac + logits  # the last stage carries the output layer: critical stage
    per_mb_recompute = recompute_mb * frac
    per_mb_tp = tp_exposed * frac
    per_mb_cp = cp_comm * frac
    per_mb_ep = ep_comm * frac
    act_bytes = b * s_out / c * d * e / sp_div
    per_mb_pp = np.where(pp > 1, 2 * v * coll(P2P, act_bytes, 2, ex.tp * ex.cp * ex.dp), 0.0)
    m = ex.grad_accum
    stage_mb = per_mb_compute + per_mb_recompute + per_mb_tp + per_mb_cp + per_mb_ep + per_mb_pp
    bubble = (pp - 1) / v * stage_mb

    # data parallel and sharding
    pb = param_breakdown(model)
    f_dense, f_exp, l_dense, l_exp = stage_params(model, pb, ex)
    stage_params_gpu = np.maximum(f_dense + f_exp, l_dense + l_exp)
    g_bytes = bytes_per_grad(run)
    w_bytes = bytes_per_weight(run)
    n_dp = ex.dp * ex.cp
    shard = ex.shard_group(gpn)
    zero3 = ex.zero_stage >= 3
    grad_kind_bytes = stage_params_gpu * g_bytes
    t_reduce = np.where(ex.zero_stage >= 1, coll(REDUCE_SCATTER, grad_kind_bytes, n_dp, ex.tp),
                        coll(ALL_REDUCE, grad_kind_bytes, n_dp, ex.tp))
    t_param_gather = np.where((ex.zero_stage >= 1) & ~zero3, coll(ALL_GATHER, stage_params_gpu * w_bytes, n_dp, ex.tp), 0.0)
    last_bwd = per_mb_compute * (2.0 / 3.0)
    dp_exposed = np.maximum(t_reduce - tp.dp_overlap_fraction * last_bwd, 0.0) + t_param_gather
    # ZeRO-3 / FSDP: per micro-batch gather weights twice (forward, backward) and reduce-scatter gradients
    fsdp_mb = (2 * coll(ALL_GATHER, stage_params_gpu * w_bytes, shard, ex.tp)
               + coll(REDUCE_SCATTER, stage_params_gpu * g_bytes, shard, ex.tp))
    hybrid_replicas = n_dp / shard
    fsdp_step = m * np.maximum(fsdp_mb - tp.fsdp_overlap_fraction * (per_mb_compute + per_mb_recompute), 0.0)
    fsdp_step = fsdp_step + coll(ALL_REDUCE, stage_params_gpu * g_bytes / shard, hybrid_replicas, ex.tp * shard)
    dp_total = np.where(zero3, fsdp_step, dp_exposed)

    # optimizer: a memory-bound sweep over the local (ZeRO-sharded) parameters, reading the gradient and
    # OPTIMIZER_STREAM_BYTES of state per parameter
    opt_params = stage_params_gpu / np.where(ex.zero_stage >= 1, shard, 1)
    stream = OPTIMIZER_STREAM_BYTES[run.optimizer]
    optimizer = np.where(ex.offload == 1, 0.0, opt_params * (stream + g_bytes) / (tp.hbm_fraction * bw))

    return TimeBreakdown(
        compute_s=m * per_mb_compute,
        recompute_s=m * per_mb_recompute,
        tp_comm_s=m * per_mb_tp,
        cp_comm_s=m * per_mb_cp,
        ep_comm_s=m * per_mb_ep,
        pp_comm_s=m * per_mb_pp,
        bubble_s=bubble,
        dp_comm_s=dp_total,
        optimizer_s=optimizer,
    )


@dataclass(frozen=True)
class Throughput:
    step_time_s: Num
    tokens_per_s_per_gpu: Num
    model_tflop_per_s_per_gpu: Num
    mfu: Num
    hfu: Num


def throughput(flops: StepFlops, tb: TimeBreakdown, ex: Exec, hw: HardwareSpec, precision: str) -> Throughput:
    """Tokens/s per GPU, model TFLOP/s per GPU, MFU and HFU from a step time."""
    st = tb.step_time_s
    gpus = ex.gpus
    peak = peak_flop_per_s(hw, mfu_dtype(precision))
    return Throughput(
        step_time_s=st,
        tokens_per_s_per_gpu=flops.tokens_per_step / st / gpus,
        model_tflop_per_s_per_gpu=flops.model_flops_per_step / st / gpus / 1e12,
        mfu=flops.model_flops_per_step / st / gpus / peak,
        hfu=flops.hardware_flops_per_step / st / gpus / peak,
    )
