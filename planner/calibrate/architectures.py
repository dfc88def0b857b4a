"""Architectures that published measured runs name but do not spell out, each with its citation.

An entry of ``planner/data/measured_runs.yaml`` that gives only ``model.name: GPT3-175B`` is filled in from here (or
from a planner preset of that name), and only when the source's own redundant numbers agree with the filled-in
architecture (see :mod:`planner.calibrate.measured`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class KnownArchitecture:
    """A published architecture, with its citation, for entries that name a model but give no dimensions."""

    family: str  #: 'gpt', 'llama' or 'nemotron' (see FAMILIES)
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn_hidden: int
    vocab: int
    source: str
    names: tuple[str, ...]  #: model.name spellings it answers to (compared case- and punctuation-insensitively)


KNOWN_ARCHITECTURES: tuple[KnownArchitecture, ...] = (
    KnownArchitecture(
        "gpt", 96, 12288, 96, 96, 4 * 12288, 51200,
        "GPT-3 175B: Brown et al. 2020 Table 2.1 (96 layers, d_model 12288, 96 heads); the same shape as "
        "Korthikanti et al. 2022 Table 3 and NeMo-Framework-Launcher conf/training/gpt3/175b.yaml; vocab 51200 as "
        "padded in Megatron-LM and assumed by its FLOP formulas",
        ("GPT 174.6B", "GPT3-175B", "GPT 175B"),
    ),
    KnownArchitecture(
        "gpt", 105, 20480, 128, 128, 4 * 20480, 51200,
        "Megatron 530B: Narayanan et al. 2021 Table 1 (105 layers, hidden 20480, 128 heads), same as Korthikanti "
        "et al. 2022 Table 3",
        ("GPT 529.6B", "GPT 530B"),
    ),
    KnownArchitecture(
        "gpt", 24, 4096, 32, 32, 4 * 4096, 51200,
        "NeMo GPT3-5B: NeMo-Framework-Launcher launcher_scripts/conf/training/gpt3/5b.yaml (24 layers, hidden 4096, "
        "32 heads, ffn 4h); vocab 51200 as in NeMo's GPT-3 FLOP formula (the GPT-2 BPE vocab 50257 padded)",
        ("GPT3-5B",),
    ),
    KnownArchitecture(
        "gpt", 44, 6144, 48, 48, 4 * 6144, 51200,
        "NeMo GPT3-20B: NeMo-Framework-Launcher launcher_scripts/conf/training/gpt3/20b.yaml (44 layers, hidden "
        "6144, 48 heads, ffn 4h); vocab 51200 as in NeMo's GPT-3 FLOP formula",
        ("GPT3-20B",),
    ),
    KnownArchitecture(
        "nemotron", 32, 4096, 32, 32, 16384, 256000,
        "Nemotron-8B: NeMo-Framework-Launcher launcher_scripts/conf/training/nemotron/nemotron_8b.yaml (32 layers, "
        "4096, 32 heads, ffn 16384, squared-ReLU, RoPE, untied, 256k SentencePiece vocab)",
        ("Nemotron-8B",),
    ),
    KnownArchitecture(
        "nemotron", 40, 6144, 48, 48, 24576, 256000,
        "Nemotron-22B: NeMo-Framework-Launcher launcher_scripts/conf/training/nemotron/nemotron_22b.yaml (40 layers, "
        "6144, 48 heads, ffn 24576, squared-ReLU, RoPE, untied, 256k vocab)",
        ("Nemotron-22B",),
    ),
    KnownArchitecture(
        "nemotron", 96, 18432, 96, 8, 73728, 256000,
        "Nemotron-4 340B: NeMo-Framework-Launcher launcher_scripts/conf/training/nemotron/nemotron_340b.yaml (96 "
        "layers, 18432, 96 heads, 8 KV groups, ffn 4h, squared-ReLU, RoPE, untied, 256k vocab)",
        ("Nemotron-340B",),
    ),
)


def norm_name(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum() or ch == ".")


def known_architecture(name: str) -> Optional[KnownArchitecture]:
    """The :data:`KNOWN_ARCHITECTURES` entry a model name answers to, or None."""
    key = norm_name(name)
    for arch in KNOWN_ARCHITECTURES:
        if key in {norm_name(n) for n in arch.names}:
            return arch
    return None


# Architecture conventions by family: what a GPT-era Megatron model, an MPT benchmark model, a Llama and a
# Nemotron are made of. ffn: the non-gated FFN kind of the family (a row with glu: true overrides it).
FAMILIES: dict[str, dict[str, Any]] = {
    "gpt": dict(ffn_kind="gelu", position="learned", norm="layernorm", bias=True, tie_embeddings=True, dropout=0.1,
                why="GPT-style Megatron model: GeLU MLP, learned absolute positions (max_positions = seq_len), "
                    "LayerNorm and linear biases, tied embeddings, dropout 0.1 (Megatron-LM defaults; not in the "
                    "entry)"),
    "mpt": dict(ffn_kind="gelu", position="learned", norm="layernorm", bias=True, tie_embeddings=True, dropout=0.0,
                why="MPT benchmark model (llm-foundry yamls/pretrain/mpt-*.yaml with MPTConfig defaults): learned "
                    "positions (max_positions = seq_len), LayerNorm and linear biases, tied embeddings, GeLU, "
                    "dropout 0 - not ALiBi: these settings reproduce the logged NumParams exactly, and NumParams "
                    "grows with seq_len by seq_len x d_model"),
    "llama": dict(ffn_kind="swiglu", position="rotary", norm="rmsnorm", bias=False, tie_embeddings=False, dropout=0.0,
                  why="Llama-style model: SwiGLU, rotary positions, RMSNorm, no biases, untied head, dropout 0"),
    "nemotron": dict(ffn_kind="relu", position="rotary", norm="layernorm", bias=False, tie_embeddings=False,
                     dropout=0.0,
                     why="Nemotron: squared-ReLU MLP (two matrices; represented as relu), RoPE on half the head "
                         "dims (no weights), LayerNorm1p (scale and bias), no linear biases, untied head, dropout 0"),
}
