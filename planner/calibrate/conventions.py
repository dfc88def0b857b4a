"""The FLOP conventions of the sources of published measured runs: one small function per source.

A source's TFLOP/s, MFU or HFU is in its own FLOP count, so comparing it with a prediction means converting it with
that source's formula (docs/DESIGN.md §3, "compare like with like"). Each function returns FLOPs per *trained token*
(forward + backward [+ recomputation]) and cites the formula it reproduces; ``FORMULAS`` says which converts which
measurement, ``SOURCE_PEAK_FLOP_PER_S`` the peak each source divided by. Used by :mod:`planner.calibrate.measured`.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..core.flops import megatron_eq3_flops
from ..specs.layout import LayoutSpec
from ..specs.model import ModelSpec
from ..specs.run import RunSpec

#: Source groups this loader knows the FLOP convention of.
SOURCE_KEYS = ("megatron-ptdp", "megatron-korthikanti", "llm-foundry", "nemo", "torchtitan")
#: Entries from any other source: tokens/s and step times are used as given (they need no FLOP convention);
#: TFLOP/s and MFU are read in the PaLM model-FLOPs convention against the profile's dense peak, stated as an
#: assumption on each run.
OTHER_SOURCE = "other"

#: The peak each source divided by to get its MFU/HFU (dense, FLOP/s), by (source, profile, precision). This is part
#: of the source's convention, so it lives here rather than in a hardware profile.
SOURCE_PEAK_FLOP_PER_S: dict[tuple[str, str, str], float] = {
    # Narayanan et al. 2021 §5 and the entries' extra.peak_basis: "312 TFLOP/s fp16" (A100 datasheet, dense).
    ("megatron-ptdp", "a100-80gb", "fp16"): 312e12,
    ("megatron-ptdp", "a100-80gb", "bf16"): 312e12,
    # Korthikanti et al. 2022 §6: MFU/HFU against the A100's 312 TFLOP/s half-precision peak.
    ("megatron-korthikanti", "a100-80gb", "bf16"): 312e12,
    ("megatron-korthikanti", "a100-80gb", "fp16"): 312e12,
    # llm-foundry scripts/train/benchmarking/collect_results.py uses composer's GPU_AVAILABLE_FLOPS:
    # A100 312e12 (bf16), H100 SXM 989e12 (bf16), 1979e12 (fp8); restated in the entries' extra.note.
    ("llm-foundry", "a100-40gb", "bf16"): 312e12,
    ("llm-foundry", "a100-80gb", "bf16"): 312e12,
    ("llm-foundry", "h100-sxm", "bf16"): 989e12,
    ("llm-foundry", "h100-sxm", "fp8"): 1979e12,
    # torchtitan (utils.get_peak_flops): A100 312e12, H100 SXM 989e12, bf16 dense.
    ("torchtitan", "a100-40gb", "bf16"): 312e12,
    ("torchtitan", "a100-80gb", "bf16"): 312e12,
    ("torchtitan", "h100-sxm", "bf16"): 989e12,
}


# ---------------------------------------------------------------------------------------------------------------
# FLOP conventions, one small function per source. All return FLOPs per *trained token* (fwd + bwd [+ recompute]).
# ---------------------------------------------------------------------------------------------------------------

def megatron_eq3_flops_per_token(layers: int, hidden: int, seq_len: int, vocab: int) -> float:
    """Megatron-LM's FLOPs per token, Narayanan et al. 2021 (arXiv:2104.04473) Eq. 3.

    F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) per iteration of B sequences of s tokens, so per token
    F/(B·s) = 96·l·h²·(1 + s/(6h) + V/(16·l·h)) = 96·l·h² + 16·l·s·h + 6·h·V.

    Per layer and token one forward pass costs 24·h² FLOPs in the weight matmuls (QKV 6h², attention output 2h²,
    MLP with f = 4h 16h²) and 4·s·h in the attention scores and values. The layers run four such passes: forward,
    the forward again (full activation recomputation, the paper's setting) and the backward (twice the forward):
    96·h² + 16·s·h. The logit layer, 2·h·V per pass, runs three (not recomputed): 6·h·V.
    Left out: norms, softmax, activations, biases (a fraction of a percent). The paper's TFLOP/s and its percent of
    peak are therefore hardware-FLOP figures (HFU-like), not MFU.
    """
    return megatron_eq3_flops(1, seq_len, layers, hidden, vocab) / seq_len


def korthikanti_model_flops_per_token(layers: int, hidden: int, seq_len: int, vocab: int) -> float:
    """Model FLOPs per token behind MFU, Korthikanti et al. 2022 (arXiv:2205.05198) §6.

    72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)) per iteration, i.e. Narayanan's Eq. 3 with three passes instead of four
    (no recomputation): per token 72·l·h² + 12·l·s·h + 6·h·V. Its HFU adds whatever is recomputed.
    """
    l, h, s, v = layers, hidden, seq_len, vocab
    return 72.0 * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h))


def llm_foundry_model_flops_per_token(n_params: float, layers: int, d_model: int, seq_len: int) -> float:
    """llm-foundry's model FLOPs per token (scripts/train/benchmarking/collect_results.py, ``parse_run``).

    flops_per_seq = 2·N·s, attn_flops_per_seq = L·2·2·d·s², MFU = 3·(flops_per_seq + attn_flops_per_seq)·seq/s /
    (GPUs·peak); per token that is 6·N + 12·L·d·s, with N the *logged* parameter count (embeddings and the learned
    position table included) and no causal halving of the attention term. Its HFU multiplies by 4 instead of 3
    when activation checkpointing is on.
    """
    return 6.0 * n_params + 12.0 * layers * d_model * seq_len


def torchtitan_model_flops_per_token(n_params: float, layers: int, heads: int, head_dim: int, seq_len: int) -> float:
    """torchtitan's model FLOPs per token (``get_num_flop_per_token``, used by train.py for MFU).

    6·N + 12·l·h·q·t with h heads of q features and t = seq_len (PaLM Appendix B's 6N + 12·L·H·Q·T; no causal
    halving). At the commit the measured rows come from, N counted every parameter, embeddings included: with that
    N the published MFU and words-per-second agree to 0.1% (a later torchtitan excludes the token embedding).
    """
    return 6.0 * n_params + 12.0 * layers * heads * head_dim * seq_len


def nemo_model_flops_per_token(model: ModelSpec, seq_len: int) -> float:
    """NeMo's model FLOPs per token behind its 'Model TFLOP / sec / GPU' column (NeMo 24.07 performance summary).

    Three passes (no recomputation) of every matmul: 6 x (attention projections h·(2·a·d_head + 2·kv·d_head) +
    FFN m·h·f) per layer, plus attention scores and values 12·s·a·d_head per layer (no causal halving), plus the
    logits 6·h·V. For GPT-3 shapes this is Korthikanti et al.'s 72·l·h²(1 + s/(6h) + V/(12lh)); for Llama/Nemotron
    it is NeMo's l·h²·(12 + 12·g/a + 18·f/h [gated] or 12·f/h + 12·s/h + 6·V/(l·h)).
    Checked against the table itself: TFLOP/s ÷ tokens/s reproduces this to < 0.5% for every pretraining row.
    """
    h, l = model.hidden_size, model.total_layers
    q_width, kv_width = model.num_heads * model.head_size, model.kv_heads * model.head_size
    matmul_params_per_layer = 2 * h * q_width + 2 * h * kv_width + model.ffn_matrices * h * model.ffn_hidden
    return 6.0 * l * matmul_params_per_layer + 12.0 * l * seq_len * q_width + 6.0 * h * model.vocab_size


def tokens_per_s_from_flop_rate(flop_per_s: float, flops_per_token: float) -> float:
    """Tokens per second from a FLOP rate and FLOPs per token (both in the same convention)."""
    return flop_per_s / flops_per_token



# ---------------------------------------------------------------------------------------------------------------
# Per-source conventions
# ---------------------------------------------------------------------------------------------------------------

FLOP_CONVENTION = {
    "megatron-ptdp": "megatron-eq3 (Narayanan et al. 2021 Eq. 3: 96·B·s·l·h²·(1 + s/6h + V/16lh); counts the "
                     "recomputed forward, so TFLOP/s and % of peak are HFU-like)",
    "megatron-korthikanti": "korthikanti model FLOPs (Korthikanti et al. 2022 §6: 72·B·s·l·h²·(1 + s/6h + V/12lh) "
                            "for MFU; HFU adds the recomputed work)",
    "llm-foundry": "llm-foundry 6·N·s + 12·L·d·s² per sequence (collect_results.py; N = logged params incl. "
                   "embeddings; HFU x4/3 with activation checkpointing)",
    "nemo": "NeMo model FLOPs (3 passes of every matmul + 12·l·s·h attention + 6·h·V logits; no recompute, no "
            "causal halving)",
    "torchtitan": "torchtitan 6·N + 12·l·h·q·t per token (train.py MFU; N = all params at that commit)",
    OTHER_SOURCE: "unknown source: tokens/s and step time as given; TFLOP/s and MFU assumed to be PaLM model FLOPs "
                  "(6·N + 12·L·H·Q·T per token, no recomputation) against the dense peak of the run's precision",
}

#: Which source formula converts which measurement: f(model, run, layout, n_params) -> FLOPs per token.
Formula = Callable[[ModelSpec, RunSpec, LayoutSpec, float], float]


def _f_megatron_eq3(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    return megatron_eq3_flops_per_token(model.total_layers, model.hidden_size, run.seq_len, model.vocab_size)


def _f_korthikanti(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    return korthikanti_model_flops_per_token(model.total_layers, model.hidden_size, run.seq_len, model.vocab_size)


def _f_foundry(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    return llm_foundry_model_flops_per_token(n_params, model.total_layers, model.hidden_size, run.seq_len)


def _f_foundry_hfu(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    # collect_results.py: HFU uses 4 passes instead of 3 when activation checkpointing is on, else HFU = MFU.
    return _f_foundry(model, run, layout, n_params) * (4.0 / 3.0 if layout.recompute != "none" else 1.0)


def _f_torchtitan(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    return torchtitan_model_flops_per_token(
        n_params, model.total_layers, model.num_heads, model.head_size, run.seq_len
    )


def _f_nemo(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    return nemo_model_flops_per_token(model, run.seq_len)


def _f_palm(model: ModelSpec, run: RunSpec, layout: LayoutSpec, n_params: float) -> float:
    # PaLM App. B model FLOPs, planner's own MFU convention (planner.core.flops)
    from ..core.flops import step_flops
    from ..core.layout import exec_from_spec

    return float(step_flops(model, run, exec_from_spec(layout, run)).model_flops_per_token)


#: (source, measurement) -> (formula name, formula). 'tflops' is the source's TFLOP/s column, 'mfu'/'hfu' its
#: fractions of the peak basis. Absent pairs have no known conversion (Korthikanti's HFU with selective
#: recomputation counts part of the attention twice, which the paper does not give per row).
FORMULAS: dict[tuple[str, str], tuple[str, Formula]] = {
    ("megatron-ptdp", "tflops"): ("Narayanan Eq. 3", _f_megatron_eq3),
    ("megatron-ptdp", "hfu"): ("Narayanan Eq. 3", _f_megatron_eq3),
    ("megatron-korthikanti", "mfu"): ("Korthikanti model FLOPs", _f_korthikanti),
    ("llm-foundry", "tflops"): ("llm-foundry 6N+12Lds", _f_foundry),
    ("llm-foundry", "mfu"): ("llm-foundry 6N+12Lds", _f_foundry),
    ("llm-foundry", "hfu"): ("llm-foundry HFU (x4/3 with checkpointing)", _f_foundry_hfu),
    ("torchtitan", "tflops"): ("torchtitan 6N+12lhqt", _f_torchtitan),
    ("torchtitan", "mfu"): ("torchtitan 6N+12lhqt", _f_torchtitan),
    ("nemo", "tflops"): ("NeMo model FLOPs", _f_nemo),
    (OTHER_SOURCE, "tflops"): ("PaLM model FLOPs (assumed)", _f_palm),
    (OTHER_SOURCE, "mfu"): ("PaLM model FLOPs (assumed)", _f_palm),
}


def source_key_of(entry: dict) -> Optional[str]:
    """The source group of an entry: its ``source_key`` field if it has one, else recognised from ``source``."""
    explicit = entry.get("source_key")
    if explicit:
        return str(explicit) if str(explicit) in SOURCE_KEYS else None
    text = str(entry.get("source") or "")
    if text.startswith("Narayanan") or "2104.04473" in text:
        return "megatron-ptdp"
    if "Korthikanti" in text or "2205.05198" in text:
        return "megatron-korthikanti"
    if "llm-foundry" in text:
        return "llm-foundry"
    if "torchtitan" in text:
        return "torchtitan"
    if "NeMo" in text:
        return "nemo"
    return None
