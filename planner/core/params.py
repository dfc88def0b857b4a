"""Parameter counts from the architecture, weight matrix by weight matrix.

Source: the layer shapes of Vaswani et al. 2017 as used by GPT-2/3, BERT, T5 and LLaMA (docs/DESIGN.md §2): attention
Q and O are d x (a·d_head), K and V d x (kv·d_head) each (GQA/MQA when kv < a, Ainslie et al. 2023); the FFN is 2·d·f
(ReLU/GELU) or 3·d·f (SwiGLU/GeGLU, Shazeer 2020); LayerNorm has 2·d (scale, bias), RMSNorm d. MoE layers hold
E experts plus a d x E router (Fedus et al. 2021); *active* parameters count top_k (+ shared) experts per token.
ALBERT (Lan et al. 2019) counts shared layer weights once and factorises the embedding as V·e + e·d. Learned
position tables (GPT-2/3, BERT) add max_positions·e; T5's bucketed relative bias adds buckets·a per stack (Raffel
et al. 2020 §2.1); Transformer-XL/Gopher relative positions add a d x (a·d_head) projection and two a·d_head biases
per layer (Dai et al. 2019 Eq. 3). Presets check every count against its published figure within 0.5%.

Architectures of 2024-25 (each formula cites its source where it is defined): multi-head latent attention
(DeepSeek-V2 §2.1, :func:`mla_params`), Q/K/V-only biases (Qwen2), QK-norm per head (Qwen3, Gemma 3) or over the
full width (OLMo 2), sandwich norms (Gemma 2/3: 4 per layer), attention sinks (gpt-oss: one logit per head),
router biases where every linear has one (gpt-oss), fine-grained MoE with shared experts and leading dense layers
(DeepSeekMoE, Dai et al. 2024), and DeepSeek-V3's multi-token-prediction modules (:func:`mtp_params`), which are
counted in the totals because they are trained (the published 671B excludes them; the preset test subtracts
them).

Left out: buffers that are not trained (rotary tables, attention masks); Longformer/BigBird's position-table
copying tricks (the table size is what counts). Both are zero or a few thousand parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from ..specs.model import ModelSpec


def norm_params(model: ModelSpec, width: int) -> int:
    """Parameters of one normalisation layer over ``width`` features."""
    return 2 * width if model.norm == "layernorm" else width


def _linear(model: ModelSpec, n_in: int, n_out: int) -> int:
    """A dense layer n_in -> n_out with an optional bias."""
    return n_in * n_out + (n_out if model.bias else 0)


def mla_matmul_shapes(model: ModelSpec) -> list[tuple[int, int]]:
    """(n_in, n_out) of every MLA projection, in order (DeepSeek-V2, arXiv:2405.04434 §2.1.2-2.1.3, Eq. 9-14;
    the Hugging Face ``DeepseekV3Attention`` module names in brackets).

    Queries: d -> d'_c [q_a_proj], d'_c -> a·(nope + rope) [q_b_proj]; or d -> a·(nope + rope) [q_proj] without a
    query latent. Keys/values: d -> d_c + rope [kv_a_proj_with_mqa: the latent and the shared rotary key],
    d_c -> a·(nope + v) [kv_b_proj]. Output: a·v -> d [o_proj]. This is the training form; the weight absorption
    of inference (W_UK into W_UQ) is not used in training.
    """
    d, a, m = model.hidden_size, model.num_heads, model.mla
    qk, v = m.qk_head_dim, m.v_head_dim
    q = [(d, m.q_lora_rank), (m.q_lora_rank, a * qk)] if m.q_lora_rank else [(d, a * qk)]
    return q + [(d, m.kv_lora_rank + m.qk_rope_head_dim), (m.kv_lora_rank, a * (m.qk_nope_head_dim + v)),
                (a * v, d)]


def mla_params(model: ModelSpec) -> int:
    """Weights of one MLA block: the projections of :func:`mla_matmul_shapes`, an RMSNorm on each latent
    (V2 §2.1.2 footnote; HF q_a_layernorm, kv_a_layernorm) and, with ``bias`` (HF attention_bias), biases on
    q_a_proj (or none on a full-rank q_proj), kv_a_proj_with_mqa and o_proj.

    DeepSeek-V3 (d 7168, a 128, d'_c 1536, d_c 512, nope 128, rope 64, v 128): 187,107,328 per layer.
    """
    m, d = model.mla, model.hidden_size
    p = sum(i * o for i, o in mla_matmul_shapes(model)) + norm_params(model, m.kv_lora_rank)
    if m.q_lora_rank:
        p += norm_params(model, m.q_lora_rank)
    if model.bias:
        p += (m.q_lora_rank or 0) + m.kv_lora_rank + m.qk_rope_head_dim + d
    return p


def attention_matmul_params(model: ModelSpec) -> int:
    """Weights of the self-attention projections alone (no biases, norms or sinks): 2x this is their forward
    FLOPs per token. Standard: d·(a·d_head) for Q and O, d·(kv·d_head) for K and V; MLA: its five projections."""
    if model.mla is not None:
        return sum(i * o for i, o in mla_matmul_shapes(model))
    d, q_width, kv_width = model.hidden_size, model.num_heads * model.head_size, model.kv_heads * model.head_size
    k_mats = 1 if model.attention.shared_qk else 2  # Reformer's shared QK: no K projection
    return 2 * d * q_width + k_mats * d * kv_width


def attention_params(model: ModelSpec) -> int:
    """Q, K, V and O projections of one self-attention block (no layer norm; Reformer's shared QK drops K), with
    its own extras: Q/K/V biases (Qwen2), QK-norm weights (Qwen3/Gemma 3: 2·d_head; OLMo 2: (a + kv)·d_head, all RMSNorm scales), and the
    per-head sink logits of gpt-oss (a per layer: HF ``GptOssAttention.sinks``)."""
    if model.mla is not None:
        p = mla_params(model)
        return p + (model.num_heads if model.attention_sinks else 0)
    d, q_width, kv_width = model.hidden_size, model.num_heads * model.head_size, model.kv_heads * model.head_size
    k_mats = 1 if model.attention.shared_qk else 2  # Reformer (Kitaev et al. 2020 §2): K = normalised Q
    p = _linear(model, d, q_width) + k_mats * _linear(model, d, kv_width) + _linear(model, q_width, d)
    if model.qkv_bias and not model.bias:
        p += q_width + k_mats * kv_width
    if model.qk_norm == "head":
        p += 2 * norm_params(model, model.head_size)
    elif model.qk_norm == "full":
        p += norm_params(model, q_width) + norm_params(model, kv_width)
    if model.attention_sinks:
        p += model.num_heads
    if model.attention.global_projections:  # Longformer: separate Q, K, V for global attention
        p += _linear(model, d, q_width) + 2 * _linear(model, d, kv_width)
    if model.position == "relative_xl":  # Transformer-XL: W_r projection and the u, v biases (Dai et al. 2019)
        p += d * q_width + 2 * q_width
    return p


def cross_attention_params(model: ModelSpec) -> int:
    """Q, K, V, O of one encoder-decoder cross-attention block (no norm)."""
    d, q_width, kv_width = model.hidden_size, model.num_heads * model.head_size, model.kv_heads * model.head_size
    return _linear(model, d, q_width) + 2 * _linear(model, d, kv_width) + _linear(model, q_width, d)


def ffn_params(model: ModelSpec, width: int) -> int:
    """One feed-forward block of inner width ``width``: 2 or 3 matrices (gated), biases if the model has them."""
    d, m = model.hidden_size, model.ffn_matrices
    p = m * d * width
    if model.bias:
        p += (m - 1) * width + d
    return p


def expert_width(model: ModelSpec) -> int:
    """FFN width of one expert, features."""
    return model.moe.expert_ffn_hidden or model.ffn_hidden


def router_params(model: ModelSpec) -> int:
    """The d x E router of one MoE layer, with a bias of E when every linear has one (gpt-oss's router)."""
    e = model.moe.num_experts
    return model.hidden_size * e + (e if model.bias else 0)


def moe_ffn_params(model: ModelSpec) -> tuple[int, int]:
    """(total, active-per-token) parameters of one MoE FFN block, router included.

    Fine-grained MoE (DeepSeekMoE, Dai et al. 2024, arXiv:2401.06066 §3): E routed experts of width f_e, top_k of
    them per token, plus always-on shared experts of the same width; the router is d x E.
    """
    moe = model.moe
    one = ffn_params(model, expert_width(model))
    router = router_params(model)
    total = (moe.num_experts + moe.shared_experts) * one + router
    active = (moe.top_k + moe.shared_experts) * one + router
    return total, active


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one layer, split into the part replicated per expert-parallel rank and the expert part."""

    dense: int  #: attention, norms, dense FFN, router: parameters
    expert: int  #: routed + shared expert FFNs: parameters
    active: int  #: parameters one token passes through (dense + top_k experts): parameters

    @property
    def total(self) -> int:
        return self.dense + self.expert


def layer_params(model: ModelSpec, decoder_of_encdec: bool, is_moe: bool) -> LayerParams:
    """Parameters of one transformer layer."""
    d = model.hidden_size
    n_norms = 1 if model.parallel_block else (4 if model.norm_placement == "sandwich" else 2)
    dense = attention_params(model)
    if decoder_of_encdec:
        dense += cross_attention_params(model)
        n_norms += 1
    dense += n_norms * norm_params(model, d)
    if is_moe:
        total, active = moe_ffn_params(model)
        router = router_params(model)
        return LayerParams(dense=dense + router, expert=total - router, active=dense + active)
    ffn = ffn_params(model, model.ffn_hidden)
    return LayerParams(dense=dense + ffn, expert=0, active=dense + ffn)


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by part. ``total`` is the sum of the parts (a test checks it)."""

    embedding: int  #: token (+ position, token-type, factorisation, embedding norm) tables: parameters
    layers_dense: int  #: non-expert layer weights, shared weights counted once: parameters
    layers_expert: int  #: expert FFN weights, all experts: parameters
    final_norms: int  #: norms after each stack: parameters
    head: int  #: untied output projection, MLM transform, output bias, pooler: parameters
    active: int  #: parameters one token passes through (embedding lookup included): parameters

    @property
    def total(self) -> int:
        return self.embedding + self.layers_dense + self.layers_expert + self.final_norms + self.head

    @property
    def non_embedding(self) -> int:
        """Total minus the embedding tables (Kaplan et al. 2020's N excludes embeddings and positions)."""
        return self.total - self.embedding

    def to_dict(self) -> dict[str, int]:
        out = {f"params_{f.name}": getattr(self, f.name) for f in fields(self)}
        out["params_total"] = self.total
        out["params_non_embedding"] = self.non_embedding
        return out


def embedding_params(model: ModelSpec) -> int:
    """Input embedding tables: tokens, positions, token types, ALBERT factorisation, embedding norm."""
    d = model.hidden_size
    e = model.embedding_dim or d
    p = model.vocab_size * e
    if model.position == "learned":
        p += model.max_positions * e
    p += model.token_types * e
    if e != d:
        p += e * d + d  # ALBERT projection e -> d, with bias
    if model.embedding_norm:
        p += norm_params(model, e)
    if model.position == "t5_relative":
        p += model.relative_buckets * model.num_heads * len(model.stack_layers)
    return p


def head_params(model: ModelSpec) -> int:
    """Output side: MLM transform, untied projection, output bias, pooler."""
    d = model.hidden_size
    e_out = model.embedding_dim or d
    p = 0
    if model.lm_head_transform:
        p += d * e_out + e_out + norm_params(model, e_out)
    if not model.tie_embeddings:
        p += e_out * model.vocab_size
    if model.output_bias:
        p += model.vocab_size
    if model.pooler:
        p += d * d + d
    return p


def stack_layer_list(model: ModelSpec) -> list[tuple[bool, bool]]:
    """One (decoder_of_encdec, is_moe) pair per layer, in execution order (encoder first).

    DeepSeek-V3's multi-token-prediction modules follow the last layer, one transformer layer each, numbered on
    from it (layer 61 of V3's checkpoint, an MoE layer), so they count wherever layers count (parameters,
    FLOPs, activations, time); ``model.total_layers`` stays the main model's.
    """
    out: list[tuple[bool, bool]] = []
    for stack_index, n in enumerate(model.stack_layers):
        is_dec = model.arch == "encoder_decoder" and stack_index == 1
        mask = model.moe_layer_mask(n + (model.mtp_depth if stack_index == len(model.stack_layers) - 1 else 0))
        out.extend((is_dec, m) for m in mask)
    return out


def mtp_extra_params(model: ModelSpec) -> int:
    """Weights of one MTP module outside its transformer layer (DeepSeek-V3, arXiv:2412.19437 §2.2, Eq. 21; HF
    checkpoint layer 61: enorm, hnorm, eh_proj, shared_head.norm): the 2d -> d projection M_k and three RMSNorms.
    The embedding and output head are shared with the main model (not counted again)."""
    d = model.hidden_size
    return 2 * d * d + 3 * norm_params(model, d)


def mtp_params(model: ModelSpec) -> tuple[int, int]:
    """(total, active) parameters of the ``mtp_depth`` MTP modules, their transformer layers included.

    DeepSeek-V3: 11,610,067,968 (the README_WEIGHTS of deepseek-ai/DeepSeek-V3 says "11.5B unique parameters,
    excluding the shared 0.9B Embedding and 0.9B output Head"); main model 671,026,404,352 + this = 682.6B.
    """
    if not model.mtp_depth:
        return 0, 0
    n = model.total_layers
    mask = model.moe_layer_mask(n + model.mtp_depth)[n:]
    total = active = 0
    for is_moe in mask:
        lp = layer_params(model, False, is_moe)
        total += lp.total + mtp_extra_params(model)
        active += lp.active + mtp_extra_params(model)
    return total, active


def layer_groups(model: ModelSpec) -> list[tuple[tuple[bool, bool], int]]:
    """Distinct (decoder_of_encdec, is_moe) layer kinds with how many layers of each, in first-seen order.

    Layers of one kind cost the same, so the core computes each kind once and multiplies.
    """
    counts: dict[tuple[bool, bool], int] = {}
    for kind in stack_layer_list(model):
        counts[kind] = counts.get(kind, 0) + 1
    return list(counts.items())


@lru_cache(maxsize=4096)
def param_breakdown(model: ModelSpec) -> ParamBreakdown:
    """Every parameter of ``model``, by part (cached: specs are frozen and hashable)."""
    dense = expert = active = 0
    for is_dec, is_moe in stack_layer_list(model):
        lp = layer_params(model, is_dec, is_moe)
        dense, expert, active = dense + lp.dense, expert + lp.expert, active + lp.active
    if model.shared_layer_groups is not None:  # ALBERT: G distinct weight sets serve all L layers of a stack
        share = model.shared_layer_groups / model.total_layers * len(model.stack_layers)
        dense, expert = round(dense * share), round(expert * share)
        active_layers = round(active * share)
    else:
        active_layers = active
    mtp_extra = model.mtp_depth * mtp_extra_params(model)
    dense, active_layers = dense + mtp_extra, active_layers + mtp_extra
    final = len(model.stack_layers) * norm_params(model, model.hidden_size) if model.final_norm else 0
    emb, head = embedding_params(model), head_params(model)
    return ParamBreakdown(
        embedding=emb,
        layers_dense=dense,
        layers_expert=expert,
        final_norms=final,
        head=head,
        active=emb + active_layers + final + head,
    )
