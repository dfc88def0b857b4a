"""What is trained: the transformer architecture.

Every field's docstring gives its unit. Sizes are counts (of layers, heads, features, tokens); nothing here is in
bytes or seconds. The parameter and FLOP formulas that read these fields live in ``planner.core``.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from .base import Spec

Architecture = Literal["decoder", "encoder", "encoder_decoder"]
FFNKind = Literal["gelu", "relu", "swiglu", "geglu"]
PositionKind = Literal["learned", "sinusoidal", "rotary", "alibi", "t5_relative", "relative_xl", "none"]
NormKind = Literal["layernorm", "rmsnorm", "layernorm_nobias"]
AttentionPatternKind = Literal["full", "causal", "sliding_window", "strided", "global_local", "lsh", "linear"]
LayerAttentionKind = Literal["local", "global"]
QKNormKind = Literal["none", "head", "full"]
NormPlacement = Literal["pre", "post", "sandwich"]

#: FFN kinds with a gate: three weight matrices (gate, up, down) instead of two (Shazeer 2020, "GLU Variants").
GATED_FFN = ("swiglu", "geglu")


#: Bounds of a model's sizes and counts: well beyond any published model, small enough that every product the
#: core forms (layers x width^2, vocabulary x width, experts x FFN) stays finite and exact.
MAX_LAYERS = 2**14
MAX_WIDTH = 2**20
MAX_HEADS = 2**14
MAX_EXPERTS = 2**16
MAX_VOCAB = 2**24
MAX_TOKENS = 2**25
MAX_COUNT = 2**16


class AttentionSpec(Spec):
    """Which key positions each query attends to. Sets the attention FLOPs and, for global+local, extra weights."""

    pattern: AttentionPatternKind = Field(
        "causal",
        description="full (bidirectional), causal, sliding_window (causal band of `window_tokens`), strided "
        "(Child et al. 2019: local block of `stride_tokens` plus every stride-th position), global_local "
        "(Longformer/BigBird: local window plus `global_tokens` that attend and are attended everywhere), lsh "
        "(Reformer, Kitaev et al. 2020 §2: queries sorted by hash bucket attend within chunks of "
        "`lsh_chunk_tokens`, `lsh_hashes` rounds), linear (Katharopoulos et al. 2020: kernel feature maps of "
        "`feature_dim` features replace the softmax; cost linear in the sequence).",
    )
    window_tokens: Optional[PositiveInt] = Field(
        None, le=MAX_TOKENS, description="Local attention window, tokens (sliding_window, global_local). For global_local it is "
        "the full two-sided window (Longformer's w)."
    )
    stride_tokens: Optional[PositiveInt] = Field(None, le=MAX_TOKENS, description="Stride of strided attention, tokens.")
    global_tokens: int = Field(0, le=MAX_TOKENS, ge=0, description="Number of global tokens (global_local), tokens.")
    random_tokens: int = Field(0, le=MAX_TOKENS, ge=0, description="Random keys per query (BigBird), tokens.")
    global_projections: bool = Field(
        False, description="Separate Q/K/V projections for global attention (Longformer adds 3 d x d matrices "
        "and biases per layer; Beltagy et al. 2020 §3.1). Unitless flag."
    )
    lsh_chunk_tokens: PositiveInt = Field(
        64, le=MAX_TOKENS, description="LSH attention (lsh): chunk length of the bucket-sorted sequence, tokens (Reformer; HF "
        "ReformerConfig lsh_attn_chunk_length default 64)."
    )
    lsh_chunks_before: int = Field(
        1, le=MAX_COUNT, ge=0, description="LSH attention: earlier chunks each chunk also attends to, count (Reformer §2: 'one "
        "chunk back'; HF lsh_num_chunks_before default 1)."
    )
    lsh_chunks_after: int = Field(0, le=MAX_COUNT, ge=0, description="LSH attention: later chunks each chunk attends to, count.")
    lsh_hashes: PositiveInt = Field(
        1, le=MAX_COUNT, description="LSH attention: hashing rounds n_rounds, count (Reformer §2, 'Multi-round LSH attention'; "
        "each round repeats the chunked attention)."
    )
    lsh_buckets: Optional[PositiveInt] = Field(
        None, le=MAX_WIDTH, description="LSH attention: hash buckets per round, count (even; Reformer hashes with a random "
        "rotation of d_head x buckets/2). Sets the hashing FLOPs; None = leave them out."
    )
    feature_dim: Optional[PositiveInt] = Field(
        None, le=MAX_WIDTH, description="Linear attention (linear): features of the kernel map phi per head, features "
        "(Katharopoulos et al. 2020's elu+1: d_head; Performer, Choromanski et al. 2021: m random features)."
    )
    shared_qk: bool = Field(
        False, description="Queries and keys share one projection (Reformer §2, 'Shared-QK Transformer'): no "
        "separate K weights (flag)."
    )
    layer_pattern: Optional[tuple[LayerAttentionKind, ...]] = Field(
        None,
        description="Per-layer attention types of a sliding_window model, repeated cyclically over the layers of "
        "the stack: 'local' = the sliding window of `window_tokens`, 'global' = full causal (or bidirectional) "
        "attention. Gemma 2 [local, global] (1:1; Gemma Team 2024, arXiv:2408.00118 §2), Gemma 3 5 x local + "
        "global (5:1; arXiv:2503.19786 §2.1), gpt-oss [local, global] with 128-token windows (OpenAI 2025, "
        "gpt-oss model card §2.1). None = every layer local.",
    )

    @model_validator(mode="after")
    def _check(self):
        if self.pattern == "sliding_window" and self.window_tokens is None:
            raise ValueError("attention.window_tokens is required for pattern sliding_window")
        if self.layer_pattern is not None:
            if self.pattern != "sliding_window":
                raise ValueError(
                    f"attention.layer_pattern needs pattern sliding_window (got pattern {self.pattern}); "
                    f"'local' layers use its window_tokens"
                )
            if len(self.layer_pattern) == 0:
                raise ValueError("attention.layer_pattern is empty; give at least one of 'local', 'global'")
            if "local" not in self.layer_pattern:
                raise ValueError("attention.layer_pattern has no 'local' layer; use pattern causal instead")
        if self.pattern == "global_local" and self.window_tokens is None:
            raise ValueError("attention.window_tokens is required for pattern global_local")
        if self.pattern == "strided" and self.stride_tokens is None:
            raise ValueError("attention.stride_tokens is required for pattern strided")
        if self.pattern == "linear" and self.feature_dim is None:
            raise ValueError("attention.feature_dim is required for pattern linear (elu+1 feature maps: the head "
                             "dimension; Performer: its number of random features)")
        if self.pattern != "linear" and self.feature_dim is not None:
            raise ValueError(f"attention.feature_dim({self.feature_dim}) applies to pattern linear only "
                             f"(got pattern {self.pattern})")
        if self.lsh_buckets is not None and self.lsh_buckets % 2:
            raise ValueError(f"attention.lsh_buckets({self.lsh_buckets}) must be even (Reformer hashes with "
                             f"argmax over [xR; -xR], R of buckets/2 columns)")
        return self

    def local_layer_mask(self, n_layers: int) -> list[bool]:
        """Which of ``n_layers`` layers use the local window (all for sliding_window without a layer_pattern)."""
        if self.layer_pattern is None:
            return [self.pattern == "sliding_window"] * n_layers
        cycle = self.layer_pattern
        return [cycle[i % len(cycle)] == "local" for i in range(n_layers)]

    @property
    def local_share(self) -> float:
        """Share of layers that are local over one cycle of ``layer_pattern`` (1 without one)."""
        if self.layer_pattern is None:
            return 1.0
        return self.layer_pattern.count("local") / len(self.layer_pattern)


class MLASpec(Spec):
    """Multi-head latent attention (DeepSeek-AI 2024, DeepSeek-V2, arXiv:2405.04434 §2.1; DeepSeek-V3,
    arXiv:2412.19437 §2.1.1): queries and keys/values pass through low-rank latents, and a decoupled rotary part
    is shared by all heads for the keys.

    Field names are those of the Hugging Face ``DeepseekV2Config``/``DeepseekV3Config``. DeepSeek-V3: q_lora_rank
    1536, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128 (report §4.2).
    """

    q_lora_rank: Optional[PositiveInt] = Field(
        None, le=MAX_WIDTH, description="Query latent width d'_c, features (V2/V3: 1536). None = a full-rank d x a·(nope+rope) "
        "query projection (DeepSeek-V2-Lite)."
    )
    kv_lora_rank: PositiveInt = Field(..., le=MAX_WIDTH, description="Key/value latent width d_c (the cached latent), features.")
    qk_nope_head_dim: PositiveInt = Field(..., le=MAX_WIDTH, description="Per-head query/key width without rotary, features.")
    qk_rope_head_dim: PositiveInt = Field(
        ..., le=MAX_WIDTH, description="Per-head decoupled rotary width d^R_h, features (the key's rotary part is shared by heads)."
    )
    v_head_dim: PositiveInt = Field(..., le=MAX_WIDTH, description="Per-head value width, features.")

    @property
    def qk_head_dim(self) -> int:
        """Query/key width per head: nope + rope, features."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim


#: Default ``moe.load_imbalance``: tokens routed to the busiest expert-parallel rank over the mean. A prior, not a
#: measurement of any one run. Sources: Switch Transformer trains with capacity factor 1.0-1.25 and reports few
#: dropped tokens at 1.25 (Fedus et al. 2022 §2.2, Table 1), so the busiest expert stays within ~1.25x the mean under
#: an auxiliary balance loss; DeepSeek-V3's auxiliary-loss-free balancing keeps "a good load balance during the
#: entire training" (DeepSeek-AI 2024 §2.1.2), and its source paper measures the busiest expert's excess over the
#: mean (MaxVio) at a few percent over the whole run, more within one batch (Wang et al. 2024, arXiv:2408.15664,
#: Table 2 and Fig. 3); a rank holding several experts averages part of the per-expert excess out. 1.1 sits between.
DEFAULT_LOAD_IMBALANCE = 1.1


class MoESpec(Spec):
    """Mixture-of-experts feed-forward layers (Shazeer et al. 2017; Fedus et al. 2021; Jiang et al. 2024)."""

    num_experts: PositiveInt = Field(..., le=MAX_EXPERTS, description="Routed experts per MoE layer, count.")
    top_k: PositiveInt = Field(..., le=MAX_EXPERTS, description="Routed experts each token goes to, count.")
    shared_experts: int = Field(0, le=MAX_EXPERTS, ge=0, description="Always-on shared experts per MoE layer, count (DeepSeekMoE).")
    expert_ffn_hidden: Optional[PositiveInt] = Field(
        None, le=MAX_WIDTH, description="FFN width of one expert, features; defaults to the model's ffn_hidden."
    )
    layer_frequency: PositiveInt = Field(
        1, le=MAX_LAYERS, description="Every k-th layer is MoE (1 = all layers; 2 = every other layer, as GShard/Switch), count."
    )
    first_dense_layers: int = Field(0, le=MAX_LAYERS, ge=0, description="Leading layers that stay dense, count.")
    capacity_factor: Optional[float] = Field(
        None, gt=0, le=MAX_EXPERTS, description="Token capacity factor per expert (dimensionless): each expert "
        "processes at most capacity_factor·tokens·top_k/num_experts rows and drops the rest (GShard: 2 for top-2; "
        "Switch Transformer: 1.0-1.25). None = dropless (every routed token is processed; load imbalance applies)."
    )
    load_imbalance: float = Field(
        DEFAULT_LOAD_IMBALANCE, ge=1, le=MAX_EXPERTS, description="Routed tokens of the busiest expert-parallel rank "
        "over the mean (dimensionless, >= 1): it scales the expert GEMMs and the all-to-all of the rank every other "
        "waits for. Default 1.1, a prior (planner.specs.model.DEFAULT_LOAD_IMBALANCE gives its sources)."
    )
    max_nodes_per_token: Optional[PositiveInt] = Field(
        None, le=MAX_EXPERTS, description="Node-limited routing (DeepSeek-V3 §2.1.2 and §3.2.2: 4): each token's "
        "experts lie on at most this many nodes, and the token crosses the network once per node, then NVLink "
        "forwards it to its experts there, count. None = plain all-to-all (one network copy per routed expert)."
    )

    @model_validator(mode="after")
    def _check(self):
        if self.top_k > self.num_experts:
            raise ValueError(f"moe.top_k({self.top_k}) > moe.num_experts({self.num_experts})")
        # the default applies capped at the bound (time.routed_load; a dumped plan may repeat it), another value not
        bound = self.num_experts / self.top_k
        if self.load_imbalance > bound and self.load_imbalance != DEFAULT_LOAD_IMBALANCE:
            raise ValueError(f"moe.load_imbalance({self.load_imbalance:g}) > moe.num_experts({self.num_experts})/"
                             f"moe.top_k({self.top_k}) = {bound:g}: a rank cannot receive more than every token")
        if self.max_nodes_per_token is not None and self.max_nodes_per_token > self.top_k:
            raise ValueError(f"moe.max_nodes_per_token({self.max_nodes_per_token}) > moe.top_k({self.top_k}): a token "
                             f"reaches at most top_k nodes")
        return self


class ModelSpec(Spec):
    """A transformer language model.

    Single-stack models (``decoder``/``encoder``) give ``num_layers``; ``encoder_decoder`` gives ``encoder_layers``
    and ``decoder_layers`` (decoder layers carry cross-attention).
    """

    name: str = Field("custom", description="Display name (free text).")
    arch: Architecture = Field("decoder", description="decoder (GPT/LLaMA), encoder (BERT), encoder_decoder (T5).")
    num_layers: Optional[PositiveInt] = Field(None, le=MAX_LAYERS, description="Transformer layers of a single stack, count.")
    encoder_layers: Optional[PositiveInt] = Field(None, le=MAX_LAYERS, description="Encoder layers (encoder_decoder), count.")
    decoder_layers: Optional[PositiveInt] = Field(None, le=MAX_LAYERS, description="Decoder layers (encoder_decoder), count.")
    hidden_size: PositiveInt = Field(..., le=MAX_WIDTH, description="Model width d, features.")
    num_heads: PositiveInt = Field(..., le=MAX_HEADS, description="Query heads a, count.")
    num_kv_heads: Optional[PositiveInt] = Field(
        None, le=MAX_HEADS, description="Key/value heads, count: = num_heads is MHA, 1 is MQA, between is GQA. Default num_heads."
    )
    head_dim: Optional[PositiveInt] = Field(None, le=MAX_WIDTH, description="Features per head; default hidden_size/num_heads.")
    ffn_hidden: PositiveInt = Field(..., le=MAX_WIDTH, description="FFN inner width f, features.")
    ffn_kind: FFNKind = Field("gelu", description="gelu/relu: two matrices (d x f, f x d); swiglu/geglu: three.")
    vocab_size: PositiveInt = Field(..., le=MAX_VOCAB, description="Vocabulary V, tokens (the padded size the model allocates).")
    tie_embeddings: bool = Field(True, description="Output head shares the input embedding matrix (flag).")
    embedding_dim: Optional[PositiveInt] = Field(
        None, le=MAX_WIDTH, description="Factorised embedding width e, features (ALBERT: V x e + e x d). None = d."
    )
    position: PositionKind = Field(
        "rotary",
        description="learned (adds max_positions x d weights), sinusoidal/rotary/alibi/none (no weights), "
        "t5_relative (bucketed bias, buckets x heads per stack), relative_xl (Transformer-XL/Gopher: a d x d "
        "position projection per layer).",
    )
    max_positions: Optional[PositiveInt] = Field(
        None, le=MAX_TOKENS, description="Learned position table length, tokens (learned positions only)."
    )
    relative_buckets: int = Field(32, le=MAX_COUNT, ge=1, description="T5 relative-position buckets, count (t5_relative only).")
    token_types: int = Field(0, le=MAX_COUNT, ge=0, description="Segment/token-type embeddings (BERT: 2), count.")
    norm: NormKind = Field("rmsnorm", description="layernorm (scale+bias), layernorm_nobias or rmsnorm (scale).")
    embedding_norm: bool = Field(False, description="A norm after the embeddings (BERT) (flag).")
    final_norm: bool = Field(True, description="A norm after the last layer of each stack (pre-LN models) (flag).")
    bias: bool = Field(False, description="Linear layers carry biases (flag).")
    parallel_block: bool = Field(
        False, description="Attention and MLP read one shared norm (GPT-J/PaLM parallel block) (flag)."
    )
    pooler: bool = Field(False, description="A d x d pooler on the first token (BERT) (flag).")
    lm_head_transform: bool = Field(
        False, description="A d x d dense + norm before the output projection (BERT/RoBERTa MLM head) (flag)."
    )
    output_bias: bool = Field(False, description="The output projection has a vocabulary-sized bias (flag).")
    attention: AttentionSpec = Field(
        default_factory=AttentionSpec,
        description="Self-attention pattern of the decoder (decoder, encoder_decoder) or of the encoder (encoder). "
        "The encoder stack of an encoder_decoder is always full bidirectional.",
    )
    moe: Optional[MoESpec] = Field(None, description="Mixture-of-experts settings; None = dense.")
    mla: Optional[MLASpec] = Field(
        None, description="Multi-head latent attention (DeepSeek-V2/V3) instead of Q/K/V/O projections; None = "
        "standard multi-head (or grouped-query) attention."
    )
    qkv_bias: bool = Field(
        False, description="Biases on the Q, K and V projections only (Qwen2/2.5: (a + 2·kv)·d_head per layer; "
        "Qwen2 technical report, arXiv:2407.10671 §2.2.1) (flag). `bias` sets every linear bias."
    )
    qk_norm: QKNormKind = Field(
        "none", description="Normalisation of queries and keys before the scores: 'head' = one norm over "
        "d_head shared by all heads (Qwen3, Gemma 3: 2·d_head per layer), 'full' = over the whole Q and K widths "
        "(OLMo 2, arXiv:2501.00656 §3.1: (a + kv)·d_head per layer), 'none'."
    )
    norm_placement: NormPlacement = Field(
        "pre", description="Where each block's norms sit: 'pre' (GPT-2/LLaMA), 'post' (OLMo 2: norm of the "
        "sublayer output; same count), 'sandwich' (Gemma 2/3: both, 4 norms per layer)."
    )
    attention_sinks: bool = Field(
        False, description="A learned sink logit per head and layer added to the softmax denominator "
        "(gpt-oss; OpenAI 2025 gpt-oss model card §2.1, after Xiao et al. 2023) (flag): a parameters per layer."
    )
    attn_logit_softcap: Optional[float] = Field(
        None, gt=0, description="Soft-cap c of the attention scores, c·tanh(x/c) (Gemma 2: 50). No weights, no "
        "matmul FLOPs: an elementwise op a fused kernel applies inside its tile."
    )
    final_logit_softcap: Optional[float] = Field(
        None, gt=0, description="Soft-cap of the output logits (Gemma 2: 30). No weights, no matmul FLOPs."
    )
    mtp_depth: int = Field(
        0, le=MAX_LAYERS, ge=0, description="Multi-token-prediction modules trained with the model, count (DeepSeek-V3 §2.2: 1; "
        "HF num_nextn_predict_layers). Each adds a 2d x d projection, two input norms, one transformer layer and a "
        "final norm, and shares the embedding and output head; it runs an extra layer and output layer per token."
    )
    shared_layer_groups: Optional[PositiveInt] = Field(
        None, le=MAX_LAYERS, description="ALBERT cross-layer sharing: distinct sets of layer weights, count (1 = all layers "
        "share one set). None = no sharing."
    )
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="Dropout probability (dimensionless). Non-zero keeps dropout masks in activation memory.",
    )
    source: Optional[str] = Field(None, description="Where the architecture numbers come from (citation).")
    published_params: Optional[float] = Field(
        None, gt=0, description="Parameter count its authors published, parameters (for checks)."
    )

    @model_validator(mode="after")
    def _check(self):
        if self.arch == "encoder_decoder":
            if self.encoder_layers is None or self.decoder_layers is None:
                raise ValueError(
                    f"arch encoder_decoder needs encoder_layers and decoder_layers "
                    f"(got encoder_layers={self.encoder_layers}, decoder_layers={self.decoder_layers})"
                )
            if self.num_layers is not None:
                raise ValueError("arch encoder_decoder takes encoder_layers/decoder_layers, not num_layers")
        else:
            if self.num_layers is None:
                raise ValueError(f"arch {self.arch} needs num_layers")
            if self.encoder_layers is not None or self.decoder_layers is not None:
                raise ValueError(f"arch {self.arch} takes num_layers, not encoder_layers/decoder_layers")
        kv = self.kv_heads
        if self.num_heads % kv:
            raise ValueError(f"num_heads({self.num_heads}) not divisible by num_kv_heads({kv})")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size({self.hidden_size}) not divisible by num_heads({self.num_heads}); give head_dim"
            )
        if self.position == "learned" and self.max_positions is None:
            raise ValueError("position learned needs max_positions")
        if self.shared_layer_groups is not None:
            for n in self.stack_layers:
                if n % self.shared_layer_groups:
                    raise ValueError(
                        f"layers({n}) not divisible by shared_layer_groups({self.shared_layer_groups})"
                    )
        if self.moe is not None:
            dense_lead = self.moe.first_dense_layers
            if dense_lead >= self.total_layers:
                raise ValueError(
                    f"moe.first_dense_layers({dense_lead}) >= layers({self.total_layers}): no MoE layer left"
                )
        if self.mla is not None:
            if self.arch != "decoder":
                raise ValueError(f"mla needs arch decoder (got arch {self.arch})")
            if self.head_dim is not None:
                raise ValueError(
                    f"head_dim({self.head_dim}) with mla: give mla.qk_nope_head_dim/qk_rope_head_dim/v_head_dim instead"
                )
            if self.num_kv_heads is not None and self.num_kv_heads != self.num_heads:
                raise ValueError(
                    f"num_kv_heads({self.num_kv_heads}) with mla: every head has its own keys and values "
                    f"(num_kv_heads = num_heads({self.num_heads}) or unset)"
                )
            if self.qk_norm != "none":
                raise ValueError(f"qk_norm {self.qk_norm} with mla: MLA normalises its latents, not Q and K")
            if self.qkv_bias:
                raise ValueError("qkv_bias with mla: MLA's biases follow `bias` (HF attention_bias)")
            if self.attention.shared_qk:
                raise ValueError("attention.shared_qk with mla: MLA has no separate Q and K projections to share")
        if self.attention.shared_qk and self.kv_heads != self.num_heads:
            raise ValueError(f"attention.shared_qk needs num_kv_heads = num_heads({self.num_heads}) "
                             f"(got {self.kv_heads}): keys are the queries")
        if self.mtp_depth and self.arch != "decoder":
            raise ValueError(f"mtp_depth({self.mtp_depth}) needs arch decoder (got arch {self.arch})")
        if self.parallel_block and self.norm_placement != "pre":
            raise ValueError(f"parallel_block with norm_placement {self.norm_placement}: a parallel block has "
                             f"one pre-norm")
        return self

    # ---- derived sizes (pure properties, no state) ----
    @property
    def kv_heads(self) -> int:
        """Key/value heads, count."""
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def head_size(self) -> int:
        """Features per head (MLA: the query/key width nope + rope)."""
        if self.mla is not None:
            return self.mla.qk_head_dim
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads

    @property
    def qk_head_size(self) -> int:
        """Query/key features per head (the QK^T contraction), features."""
        return self.head_size

    @property
    def v_head_size(self) -> int:
        """Value features per head (the AV output width), features: MLA's v_head_dim, else d_head."""
        return self.mla.v_head_dim if self.mla is not None else self.head_size

    @property
    def stack_layers(self) -> tuple[int, ...]:
        """Layers per stack: (layers,) or (encoder_layers, decoder_layers)."""
        if self.arch == "encoder_decoder":
            return (self.encoder_layers, self.decoder_layers)
        return (self.num_layers,)

    @property
    def total_layers(self) -> int:
        """All transformer layers, count."""
        return sum(self.stack_layers)

    @property
    def ffn_matrices(self) -> int:
        """Weight matrices in one FFN: 3 for gated (SwiGLU/GeGLU), else 2."""
        return 3 if self.ffn_kind in GATED_FFN else 2

    def moe_layer_mask(self, n_layers: int):
        """Which of the first ``n_layers`` layers are MoE, as a list of bools (all False when dense).

        Layer i (from 0) is MoE when i >= first_dense_layers and (i - first_dense_layers) % k == k - 1, k =
        layer_frequency: k = 1 makes every layer after the dense lead MoE (DeepSeek's first_k_dense_replace),
        k = 2 every other one, as GShard and Qwen's decoder_sparse_step ((i + 1) % k == 0).
        """
        if self.moe is None:
            return [False] * n_layers
        k, lead = self.moe.layer_frequency, self.moe.first_dense_layers
        return [i >= lead and (i - lead) % k == k - 1 for i in range(n_layers)]
