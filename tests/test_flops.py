"""FLOP counts against published formulas and hand counts.

Sources:
* Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM"
  (arXiv:2104.04473), Eq. 3: F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) FLOPs per iteration, GPT with full
  activation recomputation, no FlashAttention, MHA, a 4h GELU FFN; Table 1 gives the configurations.
* Kaplan et al. 2020, "Scaling Laws for Neural Language Models" §2.1: C ≈ 6N per training token (2N forward).
* Chowdhery et al. 2022, "PaLM", Appendix B: model FLOPs per token 6N + 12·L·H·Q·T (H heads of size Q, sequence T).
* Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1: GPT-3 175B shape.
* Dao 2023, "FlashAttention-2" §4.1: a fused causal kernel skips masked blocks; backward = 2.5 x forward.
* Raffel et al. 2020, "Exploring the Limits of Transfer Learning" (T5) §3.1.4 and the released
  random_spans_helper: 512 encoder inputs -> 114 targets at noise density 0.15, mean span 3.
* Fedus et al. 2021 (Switch) / Jiang et al. 2024 (Mixtral): each token goes through top_k experts.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.core.flops import (
    attention_pairs,
    forward_flops_per_seq,
    megatron_eq3_flops,
    sequence_lengths,
    span_corruption_lengths,
    step_flops,
)
from planner.core.params import param_breakdown
from planner.specs.model import AttentionSpec, ModelSpec
from planner.specs.run import RunSpec

try:  # tests/ on sys.path (pytest's default rootdir-relative import of conftest)
    from conftest import gpt_model, make_exec
except ImportError:  # tests imported as a package
    from tests.conftest import gpt_model, make_exec

EXACT = 1e-12

# Narayanan et al. 2021 Table 1: (params in billions, heads, hidden, layers, global batch); s = 2048, V = 51200.
NARAYANAN_TABLE1 = [
    (1.7, 24, 2304, 24, 512),
    (3.6, 32, 3072, 30, 512),
    (7.5, 32, 4096, 36, 512),
    (18.4, 48, 6144, 40, 1024),
    (39.1, 64, 8192, 48, 1536),
    (76.1, 80, 10240, 60, 1792),
    (145.6, 96, 12288, 80, 2304),
    (310.1, 128, 16384, 96, 2160),
    (529.6, 128, 20480, 105, 2520),
    (1008.0, 160, 25600, 128, 3072),
]


def _eq3_literal(B, s, l, h, V):
    """Narayanan et al. 2021 Eq. 3, transcribed independently of planner.core.flops."""
    return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))


@pytest.mark.parametrize("billions,heads,hidden,layers,batch", NARAYANAN_TABLE1,
                         ids=[f"{r[0]}B" for r in NARAYANAN_TABLE1])
def test_megatron_eq3_equals_hardware_flops(billions, heads, hidden, layers, batch):
    # Narayanan et al. 2021 Eq. 3 (full recomputation, no FlashAttention, MHA, 4h GELU, no bias), Table 1 configs.
    s, V = 2048, 51200
    model = gpt_model(layers=layers, hidden=hidden, heads=heads, vocab=V, seq=s)
    run = RunSpec(seq_len=s)
    ex = make_exec(global_batch=batch, recompute=2, flash=0)
    hw = float(step_flops(model, run, ex).hardware_flops_per_step)
    eq3 = megatron_eq3_flops(batch, s, layers, hidden, V)
    assert eq3 == pytest.approx(_eq3_literal(batch, s, layers, hidden, V), rel=EXACT)
    assert hw == pytest.approx(eq3, rel=EXACT)
    # Narayanan Eq. 2, P = 12lh²(1 + 13/(12h) + (V+s)/(12lh)), counts these shapes with biases and learned
    # positions, less the final LayerNorm (2h); Table 1's rounded sizes are within 3% of it.
    biased = gpt_model(layers=layers, hidden=hidden, heads=heads, vocab=V, seq=s, bias=True)
    eq2 = 12 * layers * hidden**2 * (1 + 13 / (12 * hidden) + (V + s) / (12 * layers * hidden))
    assert param_breakdown(biased).total == pytest.approx(eq2 + 2 * hidden, rel=EXACT)
    assert eq2 / 1e9 == pytest.approx(billions, rel=0.03)
    # biases add no matmul FLOPs: Eq. 3 holds for the biased model too
    assert float(step_flops(biased, run, ex).hardware_flops_per_step) == pytest.approx(eq3, rel=EXACT)


def test_eq3_includes_recompute_as_one_extra_forward():
    # Narayanan et al. 2021 §5.1: Eq. 3 counts 4 passes (forward, recomputed forward, 2x backward) for the
    # transformer layers and 3 for the logits. Without recomputation the layers cost 3 passes: the difference is
    # one forward of the layers, 24Bslh²(1 + s/(6h)).
    B, s, l, h, a, V = 8, 2048, 24, 2304, 24, 51200
    model = gpt_model(layers=l, hidden=h, heads=a, vocab=V, seq=s)
    run = RunSpec(seq_len=s)
    full = step_flops(model, run, make_exec(global_batch=B, recompute=2, flash=0))
    none = step_flops(model, run, make_exec(global_batch=B, recompute=0, flash=0))
    one_fwd = 24 * B * s * l * h * h * (1 + s / (6 * h))
    assert float(full.recompute_flops_per_step) == pytest.approx(one_fwd, rel=EXACT)
    assert float(full.hardware_flops_per_step - none.hardware_flops_per_step) == pytest.approx(one_fwd, rel=EXACT)
    # model FLOPs never include recomputation (PaLM App. B)
    assert float(full.model_flops_per_step) == float(none.model_flops_per_step)


@pytest.mark.parametrize("flash,expected_extra", [(0, "attention"), (1, "nothing")])
def test_selective_recompute_flops(flash, expected_extra):
    # Korthikanti et al. 2022 §4.2 (selective recomputation re-runs the attention core: QK^T, softmax, dropout, AV)
    # adds one forward of the core; with FlashAttention the kernel already recomputes the scores in its backward
    # (Dao 2023 §3.1), which the 2.5x backward counts, so selective adds nothing more.
    B, s, l, h, a, V = 4, 1024, 6, 1024, 16, 51200
    model = gpt_model(layers=l, hidden=h, heads=a, vocab=V, seq=s)
    run = RunSpec(seq_len=s)
    sel = step_flops(model, run, make_exec(global_batch=B, recompute=1, flash=flash))
    none = step_flops(model, run, make_exec(global_batch=B, recompute=0, flash=flash))
    pairs = s * s if flash == 0 else s * (s + 1) / 2
    extra = B * l * 4 * h * pairs if expected_extra == "attention" else 0.0
    assert float(sel.recompute_flops_per_step) == pytest.approx(extra, rel=EXACT)
    assert float(sel.hardware_flops_per_step - none.hardware_flops_per_step) == pytest.approx(extra, rel=EXACT)


def _gpt3_175b() -> ModelSpec:
    # Brown et al. 2020 Table 2.1: 96 layers, d_model 12288, 96 heads of 128, n_ctx 2048; GPT-2 BPE vocabulary 50257.
    return gpt_model(layers=96, hidden=12288, heads=96, vocab=50257, seq=2048, bias=True)


def test_gpt3_175b_model_flops_close_to_6n():
    # Kaplan et al. 2020 §2.1: C ≈ 6N per token; the attention term adds 12·L·d·s / 6N ≈ 2.8% at s = 2048.
    model = _gpt3_175b()
    run = RunSpec(seq_len=2048)
    n = param_breakdown(model).total
    assert n / 1e9 == pytest.approx(175, rel=0.01)
    per_token = float(step_flops(model, run, make_exec(global_batch=1)).model_flops_per_token)
    ratio = per_token / (6 * n)
    assert 1.0 < ratio < 1.04


@pytest.mark.parametrize("flash,recompute", [(0, 0), (1, 0), (1, 1), (0, 2)])
def test_model_flops_palm_appendix_b_by_hand(flash, recompute):
    # Chowdhery et al. 2022 App. B: model FLOPs per token = 6·N_matmul + 12·L·H·Q·T, with N_matmul the weights
    # that multiply activations (L·12·d² for MHA + 4d GELU FFN without biases, plus the V·d output projection) and
    # H·Q = d. Independent of the kernel and of recomputation (those change hardware FLOPs only).
    L, d, a, V, s = 96, 12288, 96, 50257, 2048
    model = gpt_model(layers=L, hidden=d, heads=a, vocab=V, seq=s, bias=False)
    run = RunSpec(seq_len=s)
    n_matmul = L * (4 * d * d + 2 * d * 4 * d) + V * d
    expected = 6 * n_matmul + 12 * L * d * s
    got = step_flops(model, run, make_exec(global_batch=3, flash=flash, recompute=recompute))
    assert float(got.model_flops_per_token) == pytest.approx(expected, rel=EXACT)
    assert float(got.model_flops_per_step) == pytest.approx(3 * s * expected, rel=EXACT)
    assert float(got.tokens_per_step) == 3 * s


@pytest.mark.parametrize("s", [1, 2, 7, 128, 2048, 4096])
def test_causal_flash_halves_pair_count(s):
    # Dao 2023 (FlashAttention-2): a fused causal kernel scores only the s(s+1)/2 unmasked pairs; a dense kernel
    # scores all s² and masks. The model count (PaLM App. B) keeps s² either way.
    attn = AttentionSpec(pattern="causal")
    model_f, hw_f = attention_pairs(attn, s, causal=True, fused=1)
    model_d, hw_d = attention_pairs(attn, s, causal=True, fused=0)
    assert float(hw_f) == s * (s + 1) / 2
    assert float(hw_d) == s * s
    assert model_f == model_d == s * s
    # a brute-force count of the lower triangle, diagonal included
    assert np.tril(np.ones((s, s))).sum() == s * (s + 1) / 2


def test_causal_flash_attention_flops_in_step():
    # Dao 2023 §4.1: attention core costs fwd + 2.5·fwd backward with the fused kernel over s(s+1)/2 pairs, and
    # fwd + 2·fwd over s² pairs with a dense kernel; QK^T and AV cost 4·d_head·a per pair forward (Kaplan Table 1).
    L, d, a, V, s, B = 4, 512, 8, 1000, 256, 2
    model = gpt_model(layers=L, hidden=d, heads=a, vocab=V, seq=s)
    run = RunSpec(seq_len=s)
    dense = L * s * (2 * 4 * d * d + 2 * 2 * d * 4 * d) + s * 2 * d * V  # forward matmuls + logits per sequence
    flash = step_flops(model, run, make_exec(global_batch=B, flash=1))
    plain = step_flops(model, run, make_exec(global_batch=B, flash=0))
    attn_flash = L * 4 * d * s * (s + 1) / 2
    attn_plain = L * 4 * d * s * s
    assert float(flash.hardware_flops_per_step) == pytest.approx(B * (3 * dense + 3.5 * attn_flash), rel=EXACT)
    assert float(plain.hardware_flops_per_step) == pytest.approx(B * (3 * dense + 3 * attn_plain), rel=EXACT)


def _band_pairs_bruteforce(s, w):
    """Pairs (i, j) with 0 <= i - j < w: a causal sliding window of w keys including the query itself."""
    i, j = np.indices((s, s))
    return int(((i - j >= 0) & (i - j < w)).sum())


@pytest.mark.parametrize("s,w", [(16, 4), (100, 1), (128, 128), (64, 200), (4096, 1024), (1000, 333)])
def test_sliding_window_pair_counts(s, w):
    # Mistral-style causal sliding window (Jiang et al. 2023; Beltagy et al. 2020): a fused kernel scores the band,
    # counted exactly; a dense kernel scores s² and masks; the model count is s·min(w, s) (each query over its
    # window, not reduced at the start of the sequence, as PaLM counts causal attention over the full T).
    attn = AttentionSpec(pattern="sliding_window", window_tokens=w)
    model_f, hw_f = attention_pairs(attn, s, causal=True, fused=1)
    _, hw_d = attention_pairs(attn, s, causal=True, fused=0)
    assert float(hw_f) == _band_pairs_bruteforce(s, w)
    assert float(hw_d) == s * s
    assert model_f == s * min(w, s)


def test_full_bidirectional_pairs():
    # An encoder (BERT) attends all s² pairs whatever the kernel.
    attn = AttentionSpec(pattern="full")
    for fused in (0, 1):
        m, h = attention_pairs(attn, 512, causal=False, fused=fused)
        assert m == float(h) == 512 * 512


def test_t5_span_corruption_lengths():
    # Raffel et al. 2020 §3.1.4 / random_spans_helper: 568 raw tokens at density 0.15, mean span 3 -> 85 noise
    # tokens in 28 spans -> 512 inputs (483 kept + 28 sentinels + EOS) and 114 targets (85 + 28 sentinels + EOS).
    assert span_corruption_lengths(568, 0.15, 3.0) == (512, 114)


def _t5_like(**changes) -> ModelSpec:
    # T5-style shape with heads·head_dim != d (as T5 11B), ReLU FFN, tied embeddings, relative position bias.
    data = dict(name="t5-like", arch="encoder_decoder", encoder_layers=3, decoder_layers=2, hidden_size=256,
                num_heads=4, head_dim=128, ffn_hidden=1024, ffn_kind="relu", vocab_size=32128,
                tie_embeddings=True, position="t5_relative", norm="rmsnorm", bias=False)
    data.update(changes)
    return ModelSpec.model_validate(data)


def test_t5_sequence_lengths_from_objective():
    model = _t5_like()
    run = RunSpec(seq_len=512, objective={"kind": "span_corruption", "noise_density": 0.15, "mean_span_tokens": 3})
    assert sequence_lengths(model, run) == (512, 114)
    # an explicit decoder length wins
    assert sequence_lengths(model, RunSpec(seq_len=512, decoder_seq_len=64)) == (512, 64)


def test_encoder_decoder_flops_by_hand():
    # Forward FLOPs of an encoder-decoder by hand (Vaswani et al. 2017 layer shapes; T5 lengths from Raffel et al.):
    # encoder layers: Q, K, V, O on 512 tokens, bidirectional attention over 512² pairs, FFN;
    # decoder layers: the same on 114 tokens with causal self-attention (model count 114², PaLM convention),
    # cross-attention Q and O on 114 decoder tokens, K and V on 512 encoder tokens, 114·512 pairs; logits on 114.
    model = _t5_like()
    run = RunSpec(seq_len=512, objective={"kind": "span_corruption"})
    d, a, dh, f, V, Le, Ld = 256, 4, 128, 1024, 32128, 3, 2
    se, sd = 512, 114
    qw = a * dh
    proj = 2 * 4 * d * qw  # Q, K, V, O (MHA: K and V as wide as Q)
    ffn = 2 * 2 * d * f
    pair = 4 * dh * a
    enc = Le * (se * (proj + ffn) + pair * se * se)
    dec = Ld * (sd * (proj + ffn) + pair * sd * sd
                + sd * 2 * 2 * d * qw + se * 2 * 2 * d * qw + pair * sd * se)
    logits = sd * 2 * d * V
    fwd = forward_flops_per_seq(model, run, fused_attention=0)
    assert fwd.matmul + fwd.attention_model + fwd.logits == pytest.approx(enc + dec + logits, rel=EXACT)
    assert fwd.logits == pytest.approx(logits, rel=EXACT)
    B = 4
    st = step_flops(model, run, make_exec(global_batch=B, flash=0))
    assert float(st.model_flops_per_step) == pytest.approx(3 * B * (enc + dec + logits), rel=EXACT)
    # no flash, no recompute: the kernels execute exactly the model count
    assert float(st.hardware_flops_per_step) == pytest.approx(float(st.model_flops_per_step), rel=EXACT)
    # with the fused kernel only the decoder self-attention is halved (encoder is bidirectional, cross is full)
    fl = forward_flops_per_seq(model, run, fused_attention=1)
    expected_hw = Le * pair * se * se + Ld * (pair * sd * (sd + 1) / 2 + pair * sd * se)
    assert float(fl.attention_hw) == pytest.approx(expected_hw, rel=EXACT)


def _moe_model(top_k=2, experts=8, shared=0, freq=1, **changes) -> ModelSpec:
    # Mixtral-like (Jiang et al. 2024): SwiGLU experts, GQA, untied head; shrunk to test size.
    data = dict(name="moe", arch="decoder", num_layers=4, hidden_size=512, num_heads=8, num_kv_heads=2,
                ffn_hidden=1792, ffn_kind="swiglu", vocab_size=1000, tie_embeddings=False, position="rotary",
                norm="rmsnorm", bias=False,
                moe={"num_experts": experts, "top_k": top_k, "shared_experts": shared, "layer_frequency": freq})
    data.update(changes)
    return ModelSpec.model_validate(data)


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_moe_top_k_scales_expert_flops(k):
    # Fedus et al. 2021 / Jiang et al. 2024: each token runs top_k experts, 2·3·d·f_e FLOPs each forward (SwiGLU).
    run = RunSpec(seq_len=256)
    one = forward_flops_per_seq(_moe_model(top_k=1), run)
    fk = forward_flops_per_seq(_moe_model(top_k=k), run)
    assert fk.expert_matmul == pytest.approx(k * one.expert_matmul, rel=EXACT)
    assert one.expert_matmul == pytest.approx(4 * 256 * 2 * 3 * 512 * 1792, rel=EXACT)
    assert fk.dense_matmul == one.dense_matmul  # attention projections and router do not depend on top_k
    # shared experts run for every token, like extra routed ones (DeepSeekMoE)
    shared = forward_flops_per_seq(_moe_model(top_k=k, experts=8, shared=2), run)
    assert shared.expert_matmul == pytest.approx((k + 2) * one.expert_matmul, rel=EXACT)


def test_moe_expert_count_changes_only_router():
    # At fixed top_k the number of experts changes only the d x E router matmul (2·d·E per token per MoE layer).
    run = RunSpec(seq_len=256)
    e8 = forward_flops_per_seq(_moe_model(experts=8), run)
    e32 = forward_flops_per_seq(_moe_model(experts=32), run)
    assert e32.expert_matmul == e8.expert_matmul
    assert e32.dense_matmul - e8.dense_matmul == pytest.approx(4 * 256 * 2 * 512 * 24, rel=EXACT)


def test_moe_layer_frequency():
    # GShard/Switch place an MoE FFN in every other layer (layer_frequency 2): half the layers run experts.
    run = RunSpec(seq_len=128)
    every = forward_flops_per_seq(_moe_model(freq=1), run)
    half = forward_flops_per_seq(_moe_model(freq=2), run)
    assert half.expert_matmul == pytest.approx(every.expert_matmul / 2, rel=EXACT)


@pytest.mark.parametrize("make", [
    lambda: _moe_model(top_k=2, experts=8),
    lambda: _moe_model(top_k=1, experts=16, shared=1, freq=2),
    lambda: gpt_model(layers=6, hidden=512, heads=8, vocab=1000, seq=128, position="rotary", norm="rmsnorm"),
])
def test_forward_matmul_is_2x_active_matmul_params(make):
    # Kaplan et al. 2020 §2.1: a forward pass costs 2 FLOPs per weight a token passes through. Active parameters
    # minus those without matmul FLOPs (input embedding lookup, norms) = the weights a token multiplies.
    model = make()
    s = 128
    pb = param_breakdown(model)
    norms = model.total_layers * 2 * model.hidden_size + pb.final_norms  # RMSNorm: d per norm, 2 per layer
    lookup = model.vocab_size * model.hidden_size
    fwd = forward_flops_per_seq(model, RunSpec(seq_len=s))
    head = model.vocab_size * model.hidden_size  # tied or not, the output projection multiplies V·d weights
    matmul_weights = pb.active - lookup - norms - pb.head + head
    assert fwd.matmul + fwd.logits == pytest.approx(2 * s * matmul_weights, rel=EXACT)
