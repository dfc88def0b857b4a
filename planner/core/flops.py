"""FLOPs per sequence, per token and per step, from the layer shapes.

Sources and conventions (docs/DESIGN.md §2):

* A dense layer n_in -> n_out costs 2·n_in·n_out FLOPs per token forward (multiply + add) and twice that backward
  (gradients of inputs and of weights), so training costs 3x forward (Kaplan et al. 2020 §2.1: C ≈ 6·N per token).
* Attention scores QK^T and the weighted sum AV cost 2·2·d_head·a per (query, key) pair forward (Kaplan 2020
  Table 1). How many pairs: see :func:`attention_pairs`.
* **Model FLOPs** (the MFU convention of PaLM, Chowdhery et al. 2022 App. B: 6N + 12·L·H·Q·T per token) count every
  matmul once per pass, causal attention over the full T (not halved), and no recomputation.
* **Hardware FLOPs** are what the kernels execute: a fused causal kernel (FlashAttention) skips masked blocks, so
  ~s²/2 pairs; a dense kernel computes s² and masks. Recomputation adds its forward work: full recomputation
  re-runs each layer's forward (not the output layer), selective recomputation (Korthikanti et al. 2022 §4.2)
  re-runs the attention core. FlashAttention's backward recomputes the scores: 2.5x its forward rather than 2x
  (Dao 2023, FlashAttention-2 §4.1 counts it so).
* With full recomputation, no FlashAttention, MHA, a 4h GELU MLP and no biases this reproduces Narayanan et al.
  2021 Eq. 3, F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) exactly (a test checks it).

* 2024-25 architectures: multi-head latent attention runs its five projections (DeepSeek-V2 §2.1,
  :func:`planner.core.params.mla_matmul_shapes`) and scores with a query/key width (nope + rope) that differs from
  the value width, so a (query, key) pair costs 2·a·(d_qk + d_v) (= 4·a·d_head when they are equal). Per-layer
  attention types (Gemma 2/3, gpt-oss) count each layer's own pattern: local layers their window, global layers
  the full causal length. DeepSeek-V3's multi-token-prediction modules (§2.2) add, per depth, one more
  transformer layer (counted with the layers), the 2d -> d projection of Eq. 21 and one more output layer.

Left out: norms, activations, softmax, residuals and the optimizer (O(d) per token, < 1% of the FLOPs for
d >= 1024; they are memory-bound and timed by bytes in the time model), embedding lookups (no FLOPs), and the
router's top-k selection; LSH attention's bucket sort and linear attention's feature maps (elu+1 is
elementwise; Performer's random projection, 4·a·d_head·m per token, is left out); attention sinks (one extra logit per query row) and logit soft-capping (a tanh per
score or logit), elementwise work that adds no matmul FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..specs.model import AttentionSpec, ModelSpec
from ..specs.run import RunSpec
from .layout import Exec, Num
from .params import attention_matmul_params, expert_width, layer_groups, stack_layer_list

RECOMPUTE_SELECTIVE, RECOMPUTE_FULL = 1, 2
#: FlashAttention-2's backward does 5 matmuls over the tile where the forward does 2 (Dao 2023 §4.1): 2.5x forward.
FLASH_BWD_OVER_FWD = 2.5
#: A plain backward costs two forwards: gradients of the inputs and of the weights (Kaplan et al. 2020 §2.1).
BWD_OVER_FWD = 2.0


def span_corruption_lengths(raw_tokens: int, noise_density: float, mean_span: float) -> tuple[int, int]:
    """(encoder input, decoder target) lengths T5's span corruption makes from ``raw_tokens`` of text.

    Raffel et al. 2020 §3.1.4 and the released ``random_spans_helper``: noise = round(raw·density) tokens in
    round(noise/mean_span) spans; each span becomes one sentinel in the input and the targets hold a sentinel per
    span plus the noise tokens, and each side ends with EOS.
    """
    noise = int(round(raw_tokens * noise_density))
    spans = max(1, int(round(noise / mean_span)))
    return raw_tokens - noise + spans + 1, noise + spans + 1


def sequence_lengths(model: ModelSpec, run: RunSpec) -> tuple[int, int]:
    """(encoder tokens, decoder tokens) per sequence; a single-stack model puts seq_len in the one it has."""
    if model.arch == "encoder_decoder":
        if run.decoder_seq_len is not None:
            return run.seq_len, run.decoder_seq_len
        if run.objective.kind == "span_corruption":
            obj = run.objective
            raw = run.seq_len  # find the raw length whose corrupted input is seq_len (T5: 568 -> 512 in, 114 out)
            while span_corruption_lengths(raw, obj.noise_density, obj.mean_span_tokens)[0] < run.seq_len:
                raw += 1
            return run.seq_len, span_corruption_lengths(raw, obj.noise_density, obj.mean_span_tokens)[1]
        return run.seq_len, run.seq_len
    if model.arch == "encoder":
        return run.seq_len, 0
    return 0, run.seq_len


def attention_pairs(attn: AttentionSpec, s: int, causal: bool, fused: Num, kind: str | None = None
                    ) -> tuple[float, Num]:
    """(model, hardware) count of (query, key) pairs one attention layer scores for one sequence of ``s`` tokens.

    With a per-layer ``layer_pattern`` (Gemma 2/3, gpt-oss), ``kind`` picks the layer type: 'local' counts the
    sliding window, 'global' the full causal (or bidirectional) length; without ``kind`` the result is the mean
    per layer over one cycle of the pattern (exact when the cycle divides the layer count).

    Model count (PaLM convention): s² for full and causal attention; the pattern's own pairs for windowed and
    sparse patterns. Hardware count: causal and sliding-window attention skip masked blocks only with a fused
    kernel (``fused`` = 1); otherwise they compute s² and mask. Strided (Child et al. 2019: a local block of c plus
    s/c strided positions per query) and global+local (Beltagy et al. 2020: (s-g) local queries see w + g + r keys,
    g global queries see all s) run on their own sparse kernels, so both counts are the pattern's pairs. So do
    LSH attention (Reformer: ``lsh_hashes`` rounds of chunked attention over bucket-sorted queries, Kitaev et al.
    2020 §2) and linear attention (Katharopoulos et al. 2020 §3.2: no (query, key) pairs; its two state products
    cost 4·m·d_v per token and head, which this returns as s·m equivalent pairs at the 2·(d_qk + d_v) = 4·d_head
    FLOPs a pair costs).
    """
    full = float(s) * s
    if attn.layer_pattern is not None:
        glob = attn.model_copy(update={"pattern": "causal" if causal else "full", "layer_pattern": None})
        loc = attn.model_copy(update={"layer_pattern": None})
        if kind == "local":
            return attention_pairs(loc, s, causal, fused)
        if kind == "global":
            return attention_pairs(glob, s, causal, fused)
        share = attn.local_share
        (lm, lh), (gm, gh) = attention_pairs(loc, s, causal, fused), attention_pairs(glob, s, causal, fused)
        return share * lm + (1 - share) * gm, share * lh + (1 - share) * gh
    pattern = attn.pattern
    if pattern == "full" or (pattern == "causal" and not causal):
        return full, full
    if pattern == "causal":
        return full, np.where(fused, s * (s + 1) / 2.0, full)
    if pattern == "sliding_window":
        w = min(attn.window_tokens, s)
        band = w * (w + 1) / 2.0 + (s - w) * w  # causal band of width w, exact for integer positions
        return float(s) * w, np.where(fused, band, full)
    if pattern == "strided":
        c = attn.stride_tokens
        pairs = float(s) * (min(c, s) + s // c)
        return pairs, pairs
    if pattern == "lsh":  # Kitaev et al. 2020 §2: per round, each chunk of c sorted queries sees its own chunk
        c = attn.lsh_chunk_tokens  # and lsh_chunks_before (+ after) others, so s x (1 + before + after)·c pairs
        keys = min(s, (1 + attn.lsh_chunks_before + attn.lsh_chunks_after) * c)
        pairs = float(attn.lsh_hashes) * s * keys
        return pairs, pairs
    if pattern == "linear":  # Katharopoulos et al. 2020 Eq. 4-6: S = sum phi(k) v^T and phi(q) S cost 2·m·d_v each
        pairs = float(s) * attn.feature_dim  # per token and head, what s x m (query, key) pairs would cost
        return pairs, pairs
    # global_local
    w, g, r = min(attn.window_tokens, s), min(attn.global_tokens, s), attn.random_tokens
    pairs = float(s - g) * min(w + g + r, s) + float(g) * s
    return pairs, pairs


@dataclass(frozen=True)
class ForwardFlops:
    """Forward-pass FLOPs of one sequence, by part. Attention core has a model and a hardware count."""

    dense_matmul: float  #: Q/K/V/O, cross-attention projections, dense FFN, router: FLOPs
    expert_matmul: float  #: routed + shared expert FFNs, top_k per token: FLOPs
    attention_model: float  #: QK^T and AV, model convention: FLOPs
    attention_hw: Num  #: QK^T and AV as executed: FLOPs
    logits: float  #: output projection (+ MLM transform): FLOPs

    @property
    def matmul(self) -> float:
        return self.dense_matmul + self.expert_matmul


def forward_flops_per_seq(model: ModelSpec, run: RunSpec, fused_attention: Num = 1) -> ForwardFlops:
    """Forward FLOPs of one sequence (encoder input of seq_len, decoder target of the derived length)."""
    s_enc, s_dec = sequence_lengths(model, run)
    d, a, dh, kv = model.hidden_size, model.num_heads, model.head_size, model.kv_heads
    q_w, kv_w = a * dh, kv * dh
    proj_per_token = 2 * attention_matmul_params(model)  # standard: 2·(d·q_w + 2·d·kv_w + q_w·d); MLA: its five
    per_pair = 2 * a * (model.qk_head_size + model.v_head_size)  # QK^T + AV (= 4·a·d_head when widths match)
    # Longformer's separate global Q/K/V run on the g global tokens only
    global_tokens = model.attention.global_tokens if model.attention.global_projections else 0
    if model.position == "relative_xl":  # Transformer-XL's W_r runs over s relative positions per layer
        proj_per_token += 2 * d * q_w
    dense = expert = attn_m = 0.0
    attn_h: Num = 0.0
    for (is_dec, is_moe), n in layer_groups(model):
        decoder_side = model.arch == "decoder" or is_dec
        s = s_dec if decoder_side else s_enc
        dense += n * (s * proj_per_token + global_tokens * 2 * (d * q_w + 2 * d * kv_w))
        stack_attn = model.attention if (model.arch != "encoder_decoder" or is_dec) else AttentionSpec(pattern="full")
        if stack_attn.pattern == "lsh" and stack_attn.lsh_buckets:  # random rotation d_head x buckets/2 per round
            dense += n * s * stack_attn.lsh_hashes * a * dh * stack_attn.lsh_buckets  # (Reformer §2 hashing)
        for kind, n_kind in _attention_kinds(model, stack_attn, (is_dec, is_moe), n):
            m_pairs, h_pairs = attention_pairs(stack_attn, s, causal=decoder_side, fused=fused_attention, kind=kind)
            attn_m += n_kind * per_pair * m_pairs
            attn_h = attn_h + n_kind * per_pair * h_pairs
        if is_dec:  # cross-attention: Q and O on decoder tokens, K and V on encoder tokens, s_dec x s_enc pairs
            dense += n * (s_dec * 2 * (d * q_w + q_w * d) + s_enc * 2 * (2 * d * kv_w))
            cross = 4 * dh * a * float(s_dec) * s_enc
            attn_m += n * cross
            attn_h = attn_h + n * cross
        m = model.ffn_matrices
        if is_moe:
            k = model.moe.top_k + model.moe.shared_experts
            expert += n * s * k * 2 * m * d * expert_width(model)
            dense += n * s * 2 * d * model.moe.num_experts
        else:
            dense += n * s * 2 * m * d * model.ffn_hidden
    s_out = s_dec if model.arch != "encoder" else s_enc
    e_out = model.embedding_dim or d
    logits = s_out * 2 * e_out * model.vocab_size
    if model.lm_head_transform:
        logits += s_out * 2 * d * e_out
    if model.embedding_dim and model.embedding_dim != d:  # ALBERT's e -> d projection of the input
        dense += (s_enc or s_dec) * 2 * model.embedding_dim * d
    if model.mtp_depth:  # DeepSeek-V3 §2.2: per depth, M_k [h; emb] (2d -> d) and one more output layer
        dense += model.mtp_depth * s_out * 2 * (2 * d) * d
        logits += model.mtp_depth * s_out * 2 * e_out * model.vocab_size
    return ForwardFlops(dense, expert, attn_m, attn_h, logits)


def _attention_kinds(model: ModelSpec, attn: AttentionSpec, group: tuple[bool, bool], n: int
                     ) -> list[tuple[str | None, int]]:
    """How many of the ``n`` layers of one (decoder_of_encdec, is_moe) group are local and global, when the
    attention has a per-layer pattern; otherwise [(None, n)]. Layers are numbered from 0 in each stack (MTP layers
    continue the numbering, as in DeepSeek-V3's checkpoint)."""
    if attn.layer_pattern is None:
        return [(None, n)]
    counts = {"local": 0, "global": 0}
    layers = stack_layer_list(model)
    # a pattern belongs to a decoder-only or encoder-only stack, or to the decoder of an encoder-decoder (whose
    # encoder is always bidirectional full attention, without a pattern)
    start = model.stack_layers[0] if model.arch == "encoder_decoder" else 0
    local = attn.local_layer_mask(len(layers) - start)
    for i, kind in enumerate(layers[start:]):
        if kind == group:
            counts["local" if local[i] else "global"] += 1
    assert counts["local"] + counts["global"] == n, (counts, n)
    return [(k, v) for k, v in counts.items() if v]


@dataclass(frozen=True)
class StepFlops:
    """Training FLOPs per step and per token, in both conventions."""

    model_flops_per_step: Num  #: fwd + bwd, PaLM convention (no recompute, causal counted full): FLOPs
    hardware_flops_per_step: Num  #: what the kernels execute, recomputation included: FLOPs
    recompute_flops_per_step: Num  #: the part of hardware FLOPs that recomputation adds: FLOPs
    model_flops_per_token: Num  #: model FLOPs per training token (tokens = seq_len per sequence): FLOPs
    hardware_flops_per_token: Num  #: hardware FLOPs per training token: FLOPs
    tokens_per_step: Num  #: sequences per step x seq_len: tokens

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def step_flops(model: ModelSpec, run: RunSpec, ex: Exec) -> StepFlops:
    """FLOPs of one optimizer step of ``ex.global_batch`` sequences."""
    fwd = forward_flops_per_seq(model, run, ex.flash)
    model_per_seq = 3.0 * (fwd.matmul + fwd.attention_model + fwd.logits)
    attn_bwd = np.where(ex.flash, FLASH_BWD_OVER_FWD, BWD_OVER_FWD)
    base_hw = 3.0 * (fwd.matmul + fwd.logits) + (1.0 + attn_bwd) * fwd.attention_hw
    # Full recomputation re-runs the forward of the recomputed layers (all, or recompute_fraction of them);
    # selective re-runs the attention core, which a fused kernel already recomputes inside its backward (counted
    # in attn_bwd), so selective adds nothing there.
    recompute = np.where(
        ex.recompute == RECOMPUTE_FULL,
        ex.full_recompute_share * (fwd.matmul + fwd.attention_hw),
        np.where((ex.recompute == RECOMPUTE_SELECTIVE) & (ex.flash == 0), fwd.attention_hw, 0.0),
    )
    tokens = ex.global_batch * run.seq_len
    model_step = model_per_seq * ex.global_batch
    hw_step = (base_hw + recompute) * ex.global_batch
    return StepFlops(
        model_flops_per_step=model_step,
        hardware_flops_per_step=hw_step,
        recompute_flops_per_step=recompute * ex.global_batch,
        model_flops_per_token=model_per_seq / run.seq_len,
        hardware_flops_per_token=(base_hw + recompute) / run.seq_len,
        tokens_per_step=tokens,
    )


def megatron_eq3_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Narayanan et al. 2021 Eq. 3: FLOPs per iteration of GPT with full recomputation (their TFLOP/s counting)."""
    return 96.0 * batch * seq * layers * hidden**2 * (1 + seq / (6.0 * hidden) + vocab / (16.0 * layers * hidden))
