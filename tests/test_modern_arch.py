"""Attention and MoE variants of 2024-25 models: parameter and FLOP formulas against hand-worked examples.

Every expected number below is worked by hand from the source's shapes, independently of planner's code:

* MLA: DeepSeek-V2 (arXiv:2405.04434) §2.1.2-2.1.3, Eq. 9-14, with DeepSeek-V3's sizes (arXiv:2412.19437 §4.2:
  d 7168, 128 heads, d_c 512, d'_c 1536, d_h 128, d^R_h 64) and the Hugging Face DeepseekV3Attention modules
  (q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj).
* MTP: DeepSeek-V3 §2.2, Eq. 21-22 (M_k is d x 2d; RMSNorm on both inputs; one transformer block; shared head).
* QKV bias: Qwen2 (arXiv:2407.10671 §2.2.1), Qwen2-7B: 28 x (3584 + 512 + 512) = 129,024.
* QK-norm: Qwen3 (per head, d_head each for q and k), OLMo 2 (arXiv:2501.00656 §3.1, over the full widths).
* Sandwich norms and local/global layers: Gemma 2 (arXiv:2408.00118 §2), Gemma 3 (arXiv:2503.19786 §2.1).
* Attention sinks: gpt-oss model card (arXiv:2508.10925) §2.1, one learned logit per head.
* LSH attention: Reformer (Kitaev et al. 2020) §2: bucket-sorted queries in chunks of c attend within their chunk
  and one chunk back, n_rounds times; shared-QK drops the K projection; hashing is a d_head x b/2 rotation.
* Linear attention: Katharopoulos et al. 2020 §3.2, Eq. 4-6: S = sum phi(K)^T V and phi(Q) S, O(s·m·d) instead of
  O(s²·d).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from planner.core.flops import attention_pairs, forward_flops_per_seq
from planner.core.params import attention_params, layer_params, mla_params, mtp_params, param_breakdown
from planner.errors import format_validation_error
from planner.registry import load_model
from planner.specs.model import AttentionSpec, ModelSpec
from planner.specs.run import RunSpec
from helpers import plan_file_error  # noqa: E402

V3_MLA = {"q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
          "v_head_dim": 128}


def _small(**changes) -> ModelSpec:
    base = dict(name="t", arch="decoder", num_layers=4, hidden_size=256, num_heads=8, ffn_hidden=512,
                ffn_kind="swiglu", vocab_size=1000, tie_embeddings=False, norm="rmsnorm")
    base.update(changes)
    return ModelSpec.model_validate(base)


# ---------------------------------------------------------------- multi-head latent attention
def test_mla_params_deepseek_v3_layer():
    m = load_model("deepseek-v3")
    d, a = 7168, 128
    by_hand = (d * 1536 + 1536            # q_a_proj + q_a_layernorm
               + 1536 * a * (128 + 64)    # q_b_proj
               + d * (512 + 64) + 512     # kv_a_proj_with_mqa + kv_a_layernorm
               + 512 * a * (128 + 128)    # kv_b_proj
               + a * 128 * d)             # o_proj
    assert by_hand == 187_107_328
    assert mla_params(m) == attention_params(m) == by_hand
    # a dense layer of V3: MLA + 2 RMSNorms + SwiGLU 18432; a MoE layer: 257 experts of 2048 + 256 x d router
    assert layer_params(m, False, False).total == by_hand + 2 * d + 3 * d * 18432
    moe = layer_params(m, False, True)
    assert moe.total == by_hand + 2 * d + 257 * 3 * d * 2048 + 256 * d
    assert moe.active == by_hand + 2 * d + 9 * 3 * d * 2048 + 256 * d


def test_mla_without_query_latent_deepseek_v2_lite():
    m = load_model("deepseek-v2-lite")
    d, a = 2048, 16
    by_hand = d * a * 192 + d * 576 + 512 + 512 * a * 256 + a * 128 * d
    assert mla_params(m) == by_hand


def test_mla_forward_flops_per_token():
    """Projections 2 FLOPs per weight; scores 2·a·(nope+rope) and AV 2·a·v per (query, key) pair."""
    m = load_model("deepseek-v3").replace(num_layers=4, moe=None, mtp_depth=0)
    s = 4096
    run = RunSpec(seq_len=s, global_batch_seqs=1)
    fwd = forward_flops_per_seq(m, run, fused_attention=1)
    d, a = 7168, 128
    proj = d * 1536 + 1536 * a * 192 + d * 576 + 512 * a * 256 + a * 128 * d
    ffn = 3 * d * 18432
    assert fwd.dense_matmul == 4 * s * 2 * (proj + ffn)
    per_pair = 2 * a * 192 + 2 * a * 128
    assert fwd.attention_model == 4 * per_pair * s * s
    assert fwd.attention_hw == 4 * per_pair * s * (s + 1) / 2


def test_mtp_module_params_and_flops():
    m = load_model("deepseek-v3")
    d = 7168
    total, active = mtp_params(m)
    moe_layer = layer_params(m, False, True)
    assert total == moe_layer.total + 2 * d * d + 3 * d == 11_610_067_968
    assert active == moe_layer.active + 2 * d * d + 3 * d
    pb = param_breakdown(m)
    assert pb.total - total == 671_026_404_352  # the Hugging Face module count of the main model
    # FLOPs: the MTP depth adds one MoE layer, M_k (2d -> d) and one more output layer per token
    run = RunSpec(seq_len=4096, global_batch_seqs=1)
    with_mtp = forward_flops_per_seq(m, run)
    without = forward_flops_per_seq(m.replace(mtp_depth=0), run)
    s, v = 4096, 129280
    assert with_mtp.logits - without.logits == s * 2 * d * v
    one_layer = forward_flops_per_seq(m.replace(mtp_depth=0, num_layers=62), run)
    assert with_mtp.matmul - one_layer.matmul == s * 2 * 2 * d * d
    assert with_mtp.attention_model == one_layer.attention_model


# ---------------------------------------------------------------- small attention extras
def test_qkv_bias_qwen2_7b_adds_129024():
    m = load_model("qwen2-7b")
    assert param_breakdown(m).total - param_breakdown(m.replace(qkv_bias=False)).total == 129_024
    assert param_breakdown(m).total == 7_615_616_512


def test_qk_norm_per_head_and_full_width():
    base = _small(num_kv_heads=2, head_dim=64)
    head = base.replace(qk_norm="head")
    full = base.replace(qk_norm="full")
    assert attention_params(head) - attention_params(base) == 2 * 64
    assert attention_params(full) - attention_params(base) == 8 * 64 + 2 * 64


def test_sandwich_norms_and_sinks():
    base = _small()
    assert (layer_params(base.replace(norm_placement="sandwich"), False, False).total
            - layer_params(base, False, False).total) == 2 * 256
    assert layer_params(base.replace(norm_placement="post"), False, False).total == layer_params(base, False, False).total
    assert attention_params(base.replace(attention_sinks=True)) - attention_params(base) == 8


def test_softcaps_cost_no_params_or_matmul_flops():
    base = _small()
    capped = base.replace(attn_logit_softcap=50.0, final_logit_softcap=30.0)
    run = RunSpec(seq_len=512, global_batch_seqs=1)
    assert param_breakdown(capped).total == param_breakdown(base).total
    assert forward_flops_per_seq(capped, run) == forward_flops_per_seq(base, run)


def test_router_bias_with_all_biases():
    base = _small(moe={"num_experts": 8, "top_k": 2})
    biased = base.replace(bias=True)
    lp, lb = layer_params(base, False, True), layer_params(biased, False, True)
    q, kv = 8 * 32, 8 * 32
    ffn_bias_per_expert = 2 * 512 + 256
    assert lb.total - lp.total == (q + 2 * kv + 256) + 8 * ffn_bias_per_expert + 8


# ---------------------------------------------------------------- per-layer attention types
def test_gemma2_alternating_local_global_attention_flops():
    m = load_model("gemma-2-9b")
    s, w, a, dh = 8192, 4096, 16, 256
    run = RunSpec(seq_len=s, global_batch_seqs=1)
    fwd = forward_flops_per_seq(m, run, fused_attention=1)
    local_model, global_model = s * w, s * s
    local_hw = w * (w + 1) / 2 + (s - w) * w
    global_hw = s * (s + 1) / 2
    assert fwd.attention_model == 21 * 4 * a * dh * local_model + 21 * 4 * a * dh * global_model
    assert fwd.attention_hw == pytest.approx(21 * 4 * a * dh * (local_hw + global_hw), rel=1e-12)


def test_gemma3_five_local_per_global_counts_exact_layers():
    m = load_model("gemma-3-27b")
    mask = m.attention.local_layer_mask(62)
    assert mask.count(True) == 52 and mask.count(False) == 10  # 10 cycles of 6 + 2 local layers
    assert [i for i, loc in enumerate(mask) if not loc][:3] == [5, 11, 17]  # HF: (i + 1) % 6 == 0 is global
    s, w, a, dh = 32768, 1024, 32, 128
    fwd = forward_flops_per_seq(m, RunSpec(seq_len=s, global_batch_seqs=1), fused_attention=1)
    assert fwd.attention_model == 4 * a * dh * (52 * s * w + 10 * s * s)


def test_cycle_mean_when_no_layer_kind_is_given():
    attn = AttentionSpec(pattern="sliding_window", window_tokens=128, layer_pattern=("local", "global"))
    (lm, _), (gm, _) = (attention_pairs(attn, 1024, True, 1, kind=k) for k in ("local", "global"))
    mean_m, _ = attention_pairs(attn, 1024, True, 1)
    assert (lm, gm) == (1024 * 128, 1024 * 1024)
    assert mean_m == (lm + gm) / 2


# ---------------------------------------------------------------- Reformer LSH and linear attention
def test_lsh_attention_pairs_and_hashing_flops():
    s, c, rounds, a, dh = 4096, 64, 8, 8, 64
    attn = AttentionSpec(pattern="lsh", lsh_chunk_tokens=c, lsh_hashes=rounds)
    assert attention_pairs(attn, s, causal=True, fused=1) == (rounds * s * 2 * c, rounds * s * 2 * c)
    assert attention_pairs(attn.model_copy(update={"lsh_chunks_before": 0}), s, True, 0)[0] == rounds * s * c
    assert attention_pairs(attn, 100, True, 1)[0] == rounds * 100 * 100  # a chunk pair longer than the sequence
    m = _small(num_layers=2, hidden_size=512, num_heads=a, attention={"pattern": "lsh", "lsh_chunk_tokens": c,
                                                                     "lsh_hashes": rounds, "shared_qk": True})
    run = RunSpec(seq_len=s, global_batch_seqs=1)
    fwd = forward_flops_per_seq(m, run)
    assert fwd.attention_model == 2 * 4 * a * dh * rounds * s * 2 * c
    hashed = forward_flops_per_seq(m.replace(attention={**m.attention.model_dump(), "lsh_buckets": 64}), run)
    assert hashed.dense_matmul - fwd.dense_matmul == 2 * s * rounds * a * dh * 64  # 2·d_head·(b/2) per head


def test_shared_qk_drops_the_key_projection():
    base = _small()
    shared = base.replace(attention={"pattern": "causal", "shared_qk": True})
    assert attention_params(base) - attention_params(shared) == 256 * 256
    run = RunSpec(seq_len=128, global_batch_seqs=1)
    diff = forward_flops_per_seq(base, run).dense_matmul - forward_flops_per_seq(shared, run).dense_matmul
    assert diff == 4 * 128 * 2 * 256 * 256


def test_linear_attention_is_linear_in_the_sequence():
    a, dh, m_feat = 8, 32, 32
    model = _small(attention={"pattern": "linear", "feature_dim": m_feat})
    for s in (1024, 4096):
        fwd = forward_flops_per_seq(model, RunSpec(seq_len=s, global_batch_seqs=1))
        # per token and head: phi(k) v^T into S (2·m·d_v) and phi(q)·S (2·m·d_v), 4 layers
        assert fwd.attention_model == fwd.attention_hw == 4 * s * a * 4 * m_feat * dh


# ---------------------------------------------------------------- fine-grained MoE layout
def test_first_dense_layers_and_layer_frequency():
    m = load_model("deepseek-v3")
    mask = m.moe_layer_mask(61)
    assert mask[:3] == [False] * 3 and all(mask[3:])
    every_other = _small(num_layers=6, moe={"num_experts": 4, "top_k": 1, "layer_frequency": 2})
    assert every_other.moe_layer_mask(6) == [False, True] * 3  # Qwen decoder_sparse_step 2: (i + 1) % 2 == 0


# ---------------------------------------------------------------- validation: one clear line
@pytest.mark.parametrize("changes, message", [
    ({"mla": dict(V3_MLA), "head_dim": 64}, "head_dim(64) with mla"),
    ({"mla": dict(V3_MLA), "num_kv_heads": 2}, "num_kv_heads(2) with mla"),
    ({"mla": dict(V3_MLA), "qk_norm": "head"}, "qk_norm head with mla"),
    ({"mla": {**V3_MLA, "kv_lora_rank": 0}}, "mla.kv_lora_rank"),
    ({"attention": {"pattern": "causal", "layer_pattern": ["local", "global"]}},
     "attention.layer_pattern needs pattern sliding_window"),
    ({"attention": {"pattern": "sliding_window", "window_tokens": 8, "layer_pattern": ["global"]}},
     "no 'local' layer"),
    ({"attention": {"pattern": "sliding_window", "window_tokens": 8, "layer_pattern": ["local", "glob"]}},
     "attention.layer_pattern.1"),
    ({"attn_logit_softcap": 0}, "attn_logit_softcap"),
    ({"mtp_depth": -1}, "mtp_depth"),
    ({"qk_norm": "layer"}, "qk_norm"),
    ({"moe": {"num_experts": 8, "top_k": 9}}, "moe.top_k(9) > moe.num_experts(8)"),
    ({"moe": {"num_experts": 8, "top_k": 2, "first_dense_layers": 4}}, "moe.first_dense_layers(4) >= layers(4)"),
    ({"parallel_block": True, "norm_placement": "sandwich"}, "parallel_block with norm_placement sandwich"),
    ({"attention": {"pattern": "linear"}}, "attention.feature_dim is required for pattern linear"),
    ({"attention": {"pattern": "causal", "feature_dim": 64}}, "attention.feature_dim(64) applies to pattern linear"),
    ({"attention": {"pattern": "lsh", "lsh_buckets": 33}}, "attention.lsh_buckets(33) must be even"),
    ({"attention": {"pattern": "lsh", "lsh_hashes": 0}}, "attention.lsh_hashes"),
    ({"attention": {"pattern": "lsh", "shared_qk": True}, "num_kv_heads": 2},
     "attention.shared_qk needs num_kv_heads = num_heads(8) (got 2)"),
])
def test_invalid_fields_give_one_line_naming_them(changes, message):
    data = dict(name="t", arch="decoder", num_layers=4, hidden_size=256, num_heads=8, ffn_hidden=512,
                vocab_size=1000)
    data.update(changes)
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(data)
    line = format_validation_error(exc.value, prefix="model")
    assert message in line and "\n" not in line, line


def test_extending_a_modern_preset_is_validated(tmp_path):
    msg = plan_file_error(tmp_path, "model: {extends: deepseek-v3, head_dim: 64}\nhardware: h100-sxm\n"
                          "run: {seq_len: 4096, global_batch_seqs: 64}\nlayout: {gpus: 64}\n")
    assert "head_dim(64) with mla" in msg


# ---------------------------------------------------------------- the time model's GEMM list
def test_time_model_runs_mla_projections_not_mha_shapes():
    """core.time.layer_gemms lists MLA's five projections: their FLOPs are the params' 2·weights per token; with
    TP the down projections are replicated (Megatron-Core MLA) and the up/output projections split by t."""
    from planner.core.params import attention_matmul_params
    from planner.core.time import layer_gemms

    try:
        from conftest import make_exec
    except ImportError:
        from tests.conftest import make_exec
    m = load_model("deepseek-v3")
    s = 4096
    attn = ("q_down", "q_up", "q_proj", "kv_down", "kv_up", "attn_out")

    def attn_flops(ex):
        gemms, _ = layer_gemms(m, ex, False, True, s, 0)
        assert "qkv" not in [g[0] for g in gemms]
        return sum(2 * gm * gn * gk * cnt for label, gm, gn, gk, cnt in gemms if label in attn)

    one = attn_flops(make_exec(tp=1, micro_batch=1))
    assert one == 2 * s * attention_matmul_params(m)
    d, a = 7168, 128
    down = 2 * s * (d * 1536 + d * 576)
    assert attn_flops(make_exec(tp=8, micro_batch=1)) == pytest.approx(down + (one - down) / 8)


def test_mla_activation_bytes_per_layer():
    """Korthikanti et al. 2022's tensor-by-tensor count with MLA's tensors: Q, K (a·192), V, output (a·128) and
    the latents c_q (1536), c_kv + k_rope (576) with their normed copies; bf16, fused attention, no dropout."""
    from planner.core.memory import layer_activation_bytes

    try:
        from conftest import make_exec
    except ImportError:
        from tests.conftest import make_exec
    m = load_model("deepseek-v3")
    run = RunSpec(seq_len=4096, global_batch_seqs=1)
    ex = make_exec(tp=1, micro_batch=1, flash=1, sp=0, recompute=0)
    got = layer_activation_bytes(m, run, ex, decoder_side=True, cross=False, is_moe=False, s_other=0)
    s, d, a, e = 4096, 7168, 128, 2
    replicated = s * d * e * 4 + s * e * 2 * (1536 + 512 + 64)
    sharded = s * e * (2 * a * 192 + 2 * a * 128) + s * e * 3 * 18432
    lse = a * s * 4
    assert float(got) == replicated + sharded + lse
