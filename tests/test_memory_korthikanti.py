"""Activation memory against Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models" (arXiv:2205.05198).

* §4.1 and Table 2: activation bytes per transformer layer per micro-batch, in the paper's setting (multi-head
  attention, a 4h GELU FFN, dropout on, attention scores materialised — no FlashAttention —, 16-bit activations):

      no parallelism                        sbh(34 + 5as/h)
      tensor parallel (t)                   sbh(10 + 24/t + 5as/(ht))
      tensor + sequence parallel            sbh(34/t + 5as/(ht))
      tensor parallel + selective recompute sbh(10 + 24/t)
      tensor + sequence + selective         sbh·34/t

* §4.3 (full recomputation): only the layer input is stored, 2sbh bytes per layer (2sbh/t with sequence
  parallelism).
* §4.2.3 (pipeline parallelism): with 1F1B the first stage holds pp micro-batches of its L/pp layers in flight, i.e.
  the activations of one micro-batch through all L layers; the interleaved schedule with v virtual stages multiplies
  that by 1 + (pp-1)/(pp·v). §4.3 adds the embedding dropout mask, sbh·pp bytes (/t with sequence parallelism).

Every comparison is exact up to float rounding (rel 1e-12).
"""

from __future__ import annotations

import pytest

from planner.core.memory import layer_activation_bytes, layer_input_bytes, memory_breakdown
from planner.specs.run import RunSpec

try:  # tests/ on sys.path (pytest's default rootdir-relative import of conftest)
    from conftest import gpt_model, make_exec
except ImportError:  # tests imported as a package
    from tests.conftest import gpt_model, make_exec

EXACT = 1e-12

# (name, s, b, h, a, t): Korthikanti et al. 2022 Table 3 (sequence 2048; micro-batch 4 for 22B, 1 for the others;
# tensor-parallel size 8 throughout), then a few other shapes, t = 1 included.
CONFIGS = [
    ("22B", 2048, 4, 6144, 64, 8),
    ("175B", 2048, 1, 12288, 96, 8),
    ("530B", 2048, 1, 20480, 128, 8),
    ("1T", 2048, 1, 25600, 160, 8),
    ("small-t2", 1024, 2, 1024, 16, 2),
    ("mid-t4", 4096, 3, 4096, 32, 4),
    ("bert-like-t1", 512, 8, 768, 12, 1),
]
IDS = [c[0] for c in CONFIGS]


def _layer_bytes(s, b, h, a, t, *, sp=0, recompute=0):
    """layer_activation_bytes for one decoder layer in the paper's setting."""
    model = gpt_model(layers=2, hidden=h, heads=a, seq=s, dropout=0.1)
    run = RunSpec(seq_len=s, precision="bf16")
    ex = make_exec(tp=t, sp=sp, recompute=recompute, flash=0, micro_batch=b)
    return layer_activation_bytes(model, run, ex, decoder_side=True, cross=False, is_moe=False, s_other=0)


# Korthikanti et al. 2022 Table 2, row 1: no parallelism, sbh(34 + 5as/h).
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_table2_no_parallelism(name, s, b, h, a, t):
    expected = s * b * h * (34 + 5 * a * s / h)
    assert float(_layer_bytes(s, b, h, a, 1)) == pytest.approx(expected, rel=EXACT)


# Korthikanti et al. 2022 Table 2, row 2: tensor parallelism, sbh(10 + 24/t + 5as/(ht)).
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_table2_tensor_parallel(name, s, b, h, a, t):
    expected = s * b * h * (10 + 24 / t + 5 * a * s / (h * t))
    assert float(_layer_bytes(s, b, h, a, t)) == pytest.approx(expected, rel=EXACT)


# Korthikanti et al. 2022 Table 2, row 3: tensor + sequence parallelism, sbh(34/t + 5as/(ht)).
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_table2_tensor_sequence_parallel(name, s, b, h, a, t):
    expected = s * b * h * (34 / t + 5 * a * s / (h * t))
    assert float(_layer_bytes(s, b, h, a, t, sp=1)) == pytest.approx(expected, rel=EXACT)


# Korthikanti et al. 2022 Table 2, row 4: tensor parallelism + selective recomputation, sbh(10 + 24/t).
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_table2_tensor_parallel_selective(name, s, b, h, a, t):
    expected = s * b * h * (10 + 24 / t)
    assert float(_layer_bytes(s, b, h, a, t, recompute=1)) == pytest.approx(expected, rel=EXACT)


# Korthikanti et al. 2022 Table 2, row 5: tensor + sequence parallelism + selective recomputation, sbh·34/t.
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_table2_tensor_sequence_parallel_selective(name, s, b, h, a, t):
    expected = s * b * h * 34 / t
    assert float(_layer_bytes(s, b, h, a, t, sp=1, recompute=1)) == pytest.approx(expected, rel=EXACT)


# Korthikanti et al. 2022 §4.3 / Table 2 discussion: the 5as/h term is the attention scores (softmax output 2as²b,
# dropout mask as²b, dropout output 2as²b). Selective recomputation removes exactly that term: row 2 - row 4.
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_selective_removes_exactly_the_score_term(name, s, b, h, a, t):
    saved = float(_layer_bytes(s, b, h, a, t)) - float(_layer_bytes(s, b, h, a, t, recompute=1))
    assert saved == pytest.approx(5 * a * s * s * b / t, rel=EXACT)


# Korthikanti et al. 2022 §4.3: full recomputation stores only the layer input, 2sbh bytes per layer; with tensor +
# sequence parallelism the input is split over the t ranks, 2sbh/t. Tensor parallelism without SP keeps it whole.
@pytest.mark.parametrize("name,s,b,h,a,t", CONFIGS, ids=IDS)
def test_full_recompute_keeps_layer_input(name, s, b, h, a, t):
    model = gpt_model(layers=2, hidden=h, heads=a, seq=s)
    run = RunSpec(seq_len=s, precision="bf16")
    no_sp = make_exec(tp=t, sp=0, recompute=2, micro_batch=b)
    with_sp = make_exec(tp=t, sp=1, recompute=2, micro_batch=b)
    assert float(layer_input_bytes(model, run, no_sp, True)) == pytest.approx(2 * s * b * h, rel=EXACT)
    assert float(layer_input_bytes(model, run, with_sp, True)) == pytest.approx(2 * s * b * h / t, rel=EXACT)


# ---- pipeline in-flight factor, checked through memory_breakdown (the most loaded GPU is the first stage) ----

# A 24-layer model with a small vocabulary, so the first pipeline stage (pp micro-batches in flight) and not the
# last (logits) is the most loaded GPU.
PIPE_L, PIPE_H, PIPE_A, PIPE_S, PIPE_B, PIPE_T = 24, 1024, 16, 1024, 2, 2


def _pipe_case(dropout, **ex_changes):
    model = gpt_model(layers=PIPE_L, hidden=PIPE_H, heads=PIPE_A, vocab=1024, seq=PIPE_S, dropout=dropout)
    run = RunSpec(seq_len=PIPE_S, precision="bf16")
    ex = make_exec(tp=PIPE_T, micro_batch=PIPE_B, **ex_changes)
    per_layer = float(layer_activation_bytes(model, run, ex, decoder_side=True, cross=False, is_moe=False,
                                             s_other=0))
    return model, run, ex, per_layer


@pytest.mark.parametrize("pp", [2, 4, 8])
@pytest.mark.parametrize("sp", [0, 1])
def test_pipeline_1f1b_first_stage_holds_all_layers(pp, sp, hw):
    # Korthikanti §4.2.3: 1F1B with m >= pp micro-batches: first stage = pp in flight x L/pp layers = L layers.
    m = 2 * pp
    model, run, ex, per_layer = _pipe_case(0.0, pp=pp, sp=sp, global_batch=m * PIPE_B)
    mem = memory_breakdown(model, run, ex, hw)
    assert int(mem.stage) == 0
    assert float(mem.activations_bytes) == pytest.approx(PIPE_L * per_layer, rel=EXACT)


@pytest.mark.parametrize("pp,v", [(2, 2), (4, 2), (4, 3), (8, 3)])
def test_pipeline_interleaved_factor(pp, v, hw):
    # Korthikanti §4.2.3: the interleaved schedule multiplies the first stage's memory by 1 + (pp-1)/(pp·v).
    m = 2 * pp
    model, run, ex, per_layer = _pipe_case(0.0, pp=pp, vpp=v, global_batch=m * PIPE_B)
    mem = memory_breakdown(model, run, ex, hw)
    assert int(mem.stage) == 0
    expected = PIPE_L * per_layer * (1 + (pp - 1) / (pp * v))
    assert float(mem.activations_bytes) == pytest.approx(expected, rel=EXACT)


@pytest.mark.parametrize("pp,m", [(4, 1), (4, 2), (8, 3)])
def test_pipeline_fewer_microbatches_than_stages(pp, m, hw):
    # Narayanan et al. 2021 §2.2 (1F1B): at most min(pp, m) micro-batches are in flight on the first stage.
    model, run, ex, per_layer = _pipe_case(0.0, pp=pp, global_batch=m * PIPE_B)
    mem = memory_breakdown(model, run, ex, hw)
    assert int(mem.stage) == 0
    assert float(mem.activations_bytes) == pytest.approx(PIPE_L / pp * min(pp, m) * per_layer, rel=EXACT)


@pytest.mark.parametrize("pp", [2, 4])
@pytest.mark.parametrize("sp", [0, 1])
def test_pipeline_embedding_dropout_mask(pp, sp, hw):
    # Korthikanti §4.3: with dropout on, the first stage also keeps the embedding dropout mask of each in-flight
    # micro-batch, sbh·pp bytes (1 byte per element), /t with sequence parallelism.
    m = 2 * pp
    model, run, ex, per_layer = _pipe_case(0.1, pp=pp, sp=sp, global_batch=m * PIPE_B)
    mem = memory_breakdown(model, run, ex, hw)
    assert int(mem.stage) == 0
    emb_mask = PIPE_S * PIPE_B * PIPE_H * pp / (PIPE_T if sp else 1)
    assert float(mem.activations_bytes) == pytest.approx(PIPE_L * per_layer + emb_mask, rel=EXACT)


def test_paper_175b_first_stage_total(hw):
    # Korthikanti §4.2.3 applied to their Table 3 GPT-3 175B row (s 2048, b 1, h 12288, a 96, L 96, t 8, pp 8,
    # global batch 64 -> m = 64 micro-batches): with TP+SP+selective the first stage holds sbhL·34/t plus the
    # embedding dropout mask sbh·pp/t.
    s, b, h, a, L, t, pp = 2048, 1, 12288, 96, 96, 8, 8
    model = gpt_model(layers=L, hidden=h, heads=a, seq=s, vocab=51200, dropout=0.1)
    run = RunSpec(seq_len=s, precision="bf16")
    ex = make_exec(tp=t, pp=pp, sp=1, recompute=1, micro_batch=b, global_batch=64)
    mem = memory_breakdown(model, run, ex, hw)
    expected = s * b * h * L * 34 / t + s * b * h * pp / t
    assert int(mem.stage) == 0
    assert float(mem.activations_bytes) == pytest.approx(expected, rel=EXACT)
