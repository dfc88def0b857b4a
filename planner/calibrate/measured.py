"""Published measured training runs as planner specs, with the throughput each source measured.

``load_runs()`` reads a measured-runs YAML file (the schema of ``planner/data/measured_runs.yaml``, see
``planner/data/README.md``) and turns every entry into a :class:`MeasuredRun` (a ``ModelSpec``, ``RunSpec`` and
``LayoutSpec`` that the specs' own validators accept, a hardware profile name, and the measured throughput) or a
:class:`SkippedRun` that says why it could not be represented. Nothing is dropped silently: the two lists together
hold one item per entry in the file.

**Like with like** (docs/DESIGN.md §3). Sources report different quantities in different FLOP conventions, so every
measurement is brought to one quantity the time model predicts directly, *tokens per second per GPU*, with the
source's own formula:

1. ``measured.tokens_per_s_per_gpu`` when the source gives it (llm-foundry, NeMo, torchtitan);
2. else ``step_time_s``: tokens/s/GPU = global batch tokens / step time / GPUs (Korthikanti et al. 2022 Table 5);
3. else ``tflops_per_gpu``: tokens/s/GPU = TFLOP/s·1e12 / (FLOPs per token in that source's convention); for
   Megatron-LM that is Narayanan et al. 2021 Eq. 3, which counts the recomputed forward pass;
4. else ``mfu`` (``hfu``): tokens/s/GPU = MFU·peak / model FLOPs per token (HFU: hardware FLOPs per token), with
   the peak the source itself divided by (its *peak basis*, :data:`SOURCE_PEAK_FLOP_PER_S`), not our profile's.

When a source gives more than one of these, the others are converted too and compared with the one used
(``MeasuredRun.cross_checks``): a check of the formula, the peak basis and the architecture at once.

**Assumptions.** Every value the file does not give and this loader fills in (ffn_hidden = 4h, micro-batch 1,
precision, position embedding, dropout, an architecture taken from its published config, ...) is written to
``MeasuredRun.assumptions`` in words, so a reader of a validation table can see what the comparison rests on.
Architectures missing from an entry are filled only from :data:`KNOWN_ARCHITECTURES` (each with its citation), and
only when the source's own redundant numbers (parameter count, or TFLOP/s vs tokens/s, or MFU vs tokens/s) agree
with the filled-in architecture; ``load_runs(fill_architectures=False)`` skips those entries instead.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from ..core.params import param_breakdown
from ..errors import SpecError, format_validation_error
from ..registry import read_yaml
from ..specs.layout import LayoutSpec, data_parallel_of, model_parallel_size
from ..specs.model import ModelSpec
from ..specs.run import RunSpec
from ..units import GB
from .architectures import FAMILIES, known_architecture, norm_name
from .conventions import (FLOP_CONVENTION, FORMULAS, OTHER_SOURCE, SOURCE_PEAK_FLOP_PER_S, nemo_model_flops_per_token,
                          source_key_of, tokens_per_s_from_flop_rate)

#: The project's copy of the published measured runs (see planner/data/README.md for where it comes from).
DEFAULT_PATH = Path(__file__).parent.parent / "data" / "measured_runs.yaml"

#: Memory-only measured runs whose layouts the layout search does not enumerate yet (Llama 3.1 405B's 126 layers on 8
#: pipeline stages); same schema. ``planner validate``'s memory check reads it beside :data:`DEFAULT_PATH`.
MEMORY_ONLY_PATH = Path(__file__).parent.parent / "data" / "measured_memory_runs.yaml"


#: ``hardware.gpu`` (normalised names of the data README) -> hardware profile name.
#: H100-SXM5-96GB-HBM2e-500W has its own profile: it differs from the H100 SXM5 80GB in memory, HBM bandwidth and
#: power cap, so mapping it to ``h100-sxm`` would compare against the wrong machine.
GPU_PROFILES = {
    "H100-SXM5-96GB-HBM2e-500W": "h100-96gb-hbm2e",
    "A100-SXM4-40GB": "a100-40gb",
    "A100-SXM4-80GB": "a100-80gb",
    "H100-SXM5-80GB": "h100-sxm",
    "H200-SXM-141GB": "h200",
    "B200-SXM-180GB": "b200",
}

#: Profiles of Hopper GPUs (where Hopper-native attention kernels exist).
HOPPER_PROFILES = ("h100-sxm", "h100-96gb-hbm2e", "h200")

#: Relative disagreement above which a cross-check is flagged (and an architecture filled in here is rejected).
#: Sources round tokens/s and TFLOP/s to integers and MFU to 3-4 digits, which alone gives well under 1%.
CROSS_CHECK_TOLERANCE = 0.03

#: Bytes in one ``memory_gb`` unit. The schema says GB; vendors' and papers' GB are 1e9 bytes.
BYTES_PER_GB = GB

#: ``measured.memory_unit`` -> bytes. PyTorch's own figures (``torch.cuda.max_memory_allocated() / 2**30``,
#: torchtitan's "Memory(GiB)" column, nvidia-smi's MiB) are binary units; papers and vendors mostly write GB = 1e9.
MEMORY_UNITS = {"GB": 1e9, "GiB": 2.0 ** 30, "MB": 1e6, "MiB": 2.0 ** 20}

#: ``measured.memory_kind``: what a memory figure counts (the PyTorch CUDA semantics docs, "Memory management").
#: allocated: tensors live at the peak (torch.cuda.max_memory_allocated); reserved: the caching allocator's segments
#: (max_memory_reserved, memory_stats()['reserved_bytes.all.peak']): tensors plus the allocator's fragmentation;
#: device: everything on the GPU (nvidia-smi / NVML): reserved plus the CUDA context, kernels and NCCL's buffers,
#: which live outside the caching allocator. A figure whose source does not say is taken as ``device``.
MEMORY_KINDS = ("allocated", "reserved", "device")


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasuredRun:
    """One published run as planner specs plus what was measured, in tokens/s per GPU.

    ``measured_tokens_per_s_per_gpu`` is what the source measured, converted (if it was not already tokens/s) with
    the source's own FLOP formula; ``conversion`` says how. ``measured_step_time_s`` is the source's step time, or
    derived as global batch tokens / (tokens/s/GPU x GPUs) when the source gives throughput and a global batch.
    ``measured_mfu``/``measured_hfu`` are the source's fractions (0-1), in its own convention, or None.
    """

    id: str
    source: str  #: full source text of the entry
    source_key: str  #: 'megatron-ptdp', 'megatron-korthikanti', 'llm-foundry', 'nemo', 'torchtitan'
    model: ModelSpec
    run: RunSpec
    layout: LayoutSpec
    hardware: str  #: hardware profile name (a100-40gb, a100-80gb, h100-sxm, h200, b200)
    measured_tokens_per_s_per_gpu: Optional[float]  #: tokens/s per GPU
    measured_step_time_s: Optional[float]  #: seconds per optimizer step
    measured_mfu: Optional[float]  #: fraction, source's convention
    measured_hfu: Optional[float]  #: fraction, source's convention
    measured_memory_bytes: Optional[float]  #: bytes per GPU (memory_gb x 1e9, or memory x its memory_unit)
    flop_convention: str  #: the FLOP count behind the source's TFLOP/s and MFU/HFU
    assumptions: tuple[str, ...]  #: every default filled in, in words
    raw: dict = field(compare=False, hash=False)  #: the entry as read from the file (not compared or hashed)
    conversion: str = ""  #: how measured_tokens_per_s_per_gpu was obtained
    cross_checks: tuple[str, ...] = field(default_factory=tuple)  #: other measurements converted and compared
    #: what the memory figure counts (:data:`MEMORY_KINDS`): 'allocated', 'reserved' or 'device' (the default)
    measured_memory_kind: str = "device"
    cluster: Optional[str] = None  #: hardware_profiles/clusters/ name of the node and fabric the run used, if stated
    loss: str = "fused"  #: how the source's framework computes the loss (planner.core.memory.LOSS_KINDS)

    @property
    def gpus(self) -> int:
        """GPUs in the run."""
        return self.layout.num_gpus


@dataclass(frozen=True)
class SkippedRun:
    """An entry that could not be represented, and why (the reason names the field)."""

    id: str
    source_key: str
    reason: str


class _Skip(Exception):
    """Raised inside the loader for an entry that becomes a SkippedRun."""


# ---------------------------------------------------------------------------------------------------------------
# Field access that names the field when it is wrong
# ---------------------------------------------------------------------------------------------------------------

_MISSING = object()


def _section(entry: dict, name: str, required: bool = True) -> dict:
    sec = entry.get(name, _MISSING)
    if sec is _MISSING or sec is None:
        if required:
            raise _Skip(f"{name}: missing")
        return {}
    if not isinstance(sec, dict):
        raise _Skip(f"{name}: expected a mapping, got {type(sec).__name__} {sec!r}")
    return sec


def _num(sec: dict, where: str, key: str, *, integer: bool = False, positive: bool = True) -> Optional[float]:
    """A number or None; a _Skip naming ``where.key`` when it is neither."""
    v = sec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Skip(f"{where}.{key}: expected a number, got {v!r}")
    if not math.isfinite(v):
        raise _Skip(f"{where}.{key}: not finite ({v!r})")
    if integer and v != int(v):
        raise _Skip(f"{where}.{key}: expected a whole number, got {v!r}")
    if positive and v <= 0:
        raise _Skip(f"{where}.{key}: must be > 0, got {v!r}")
    return int(v) if integer else float(v)


def _int(sec: dict, where: str, key: str) -> Optional[int]:
    return _num(sec, where, key, integer=True)


def _flag(sec: dict, where: str, key: str) -> Optional[bool]:
    v = sec.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise _Skip(f"{where}.{key}: expected true/false, got {v!r}")


def _choice(sec: dict, where: str, key: str, allowed: tuple[str, ...]) -> Optional[str]:
    v = sec.get(key)
    if v is None:
        return None
    if v not in allowed:
        raise _Skip(f"{where}.{key}: expected one of {', '.join(allowed)}, got {v!r}")
    return v


def _rel(a: float, b: float) -> float:
    return (a - b) / b


# ---------------------------------------------------------------------------------------------------------------
# One entry
# ---------------------------------------------------------------------------------------------------------------

def _family_of(key: str, name: str, glu: Optional[bool]) -> str:
    if key in ("megatron-ptdp", "megatron-korthikanti"):
        return "gpt"
    if key == "llm-foundry":
        return "mpt"
    if key == "torchtitan":
        return "llama"
    n = norm_name(name)
    if n.startswith("gpt"):
        return "gpt"
    if n.startswith("nemotron"):
        return "nemotron"
    if n.startswith("llama") or glu:
        return "llama"
    if key == OTHER_SOURCE:  # an unknown source and family: GPT-style (GELU MLP, learned positions, biases)
        return "gpt"
    raise _Skip(f"model.name: cannot tell the architecture family of {name!r} for source {key}")


#: Key spellings of an entry's ``model.moe`` mapping (the schema leaves it open): our name -> accepted names.
_MOE_KEYS = {
    "num_experts": ("num_experts", "experts", "n_experts", "num_local_experts", "moe_num_experts"),
    "top_k": ("top_k", "topk", "experts_per_token", "num_experts_per_tok", "moe_top_k", "router_topk"),
    "expert_ffn_hidden": ("expert_ffn_hidden", "expert_hidden", "moe_ffn_hidden", "moe_intermediate_size"),
    "shared_experts": ("shared_experts", "n_shared_experts", "num_shared_experts"),
    "layer_frequency": ("layer_frequency", "moe_layer_freq", "expert_interval"),
}


def _moe_of(value, notes: list[str]) -> Optional[dict]:
    """The MoESpec mapping of an entry's ``model.moe`` (a mapping, or text such as '8 experts, top-2')."""
    if value in (None, False, {}):
        return None
    if isinstance(value, str):
        import re

        nums = re.findall(r"\d+", value)
        top = re.search(r"top[- ]?(\d+)", value, re.I)
        if not nums or not top:
            raise _Skip(f"model.moe: cannot read experts and top-k from {value!r}")
        notes.append(f"model.moe {value!r} read as {nums[0]} experts, top-{top.group(1)}")
        return {"num_experts": int(nums[0]), "top_k": int(top.group(1))}
    if not isinstance(value, dict):
        raise _Skip(f"model.moe: expected a mapping or text, got {type(value).__name__}")
    out = {}
    for ours, names in _MOE_KEYS.items():
        for n in names:
            if value.get(n) is not None:
                out[ours] = int(value[n])
                break
    if "num_experts" not in out or "top_k" not in out:
        raise _Skip(f"model.moe: needs the number of experts and top-k (got keys {', '.join(map(str, value))})")
    return out


def _preset_for(m: dict, name: str, fill: bool, notes: list[str]) -> Optional[ModelSpec]:
    """The planner preset an entry names, when the entry gives no dimensions and no known architecture matches
    (e.g. 'LLAMA3-70B', 'Mixtral-8x7B', 'Llama 3.1 405B'). Given dimensions must agree with it."""
    given = {k: m.get(k) for k in ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab")}
    if all(given[k] is not None for k in ("layers", "hidden", "heads")) or known_architecture(name) is not None:
        return None
    from ..registry import load_model, preset_names

    key = norm_name(name)
    match = next((p for p in preset_names() if norm_name(p) == key), None)
    if match is None:
        return None
    if not fill:
        raise _Skip(f"model: dimensions not given (they would come from the planner preset {match}; "
                    f"fill_architectures=False)")
    spec = load_model(match)
    mine = {"layers": spec.total_layers, "hidden": spec.hidden_size, "heads": spec.num_heads,
            "kv_heads": spec.kv_heads, "ffn_hidden": spec.ffn_hidden, "vocab": spec.vocab_size}
    for k, v in given.items():
        if v is not None and int(v) != mine[k]:
            raise _Skip(f"model.{k}: {v} disagrees with the planner preset {match} ({mine[k]})")
    notes.append(f"architecture not in the entry; taken from the planner preset {match} ({spec.source})")
    # the entry's own count (or none) is what the loader cross-checks, not the preset's rounded published figure
    return spec.replace(published_params=_num(m, "model", "params"))


def _build_model(key: str, m: dict, seq_len: int, fill: bool, notes: list[str]) -> tuple[ModelSpec, bool]:
    """The ModelSpec of an entry; second value: True when the dimensions came from KNOWN_ARCHITECTURES."""
    name = str(m.get("name") or "unnamed")
    moe_flag = m.get("moe") is True
    moe = None if moe_flag else _moe_of(m.get("moe"), notes)
    preset = _preset_for(m, name, fill, notes)
    if preset is not None:
        return preset, True
    if moe_flag:
        raise _Skip("model.moe: true, but the number of experts and top-k are not given and the name matches no "
                    "planner preset")
    layers, hidden, heads = _int(m, "model", "layers"), _int(m, "model", "hidden"), _int(m, "model", "heads")
    kv_heads, ffn, vocab = _int(m, "model", "kv_heads"), _int(m, "model", "ffn_hidden"), _int(m, "model", "vocab")
    glu = _flag(m, "model", "glu")
    filled = False
    arch = None
    if layers is None or hidden is None or heads is None:
        missing = [k for k, v in (("layers", layers), ("hidden", hidden), ("heads", heads)) if v is None]
        arch = known_architecture(name)
        if arch is None:
            raise _Skip(f"model.{'/'.join(missing)}: not given, and {name!r} is not a known architecture")
        if not fill:
            raise _Skip(f"model.{'/'.join(missing)}: not given (architecture of {name!r} would come from "
                        f"KNOWN_ARCHITECTURES; fill_architectures=False)")
        for k, mine, theirs in (("layers", layers, arch.layers), ("hidden", hidden, arch.hidden),
                                ("heads", heads, arch.heads), ("vocab", vocab, arch.vocab)):
            if mine is not None and mine != theirs:
                raise _Skip(f"model.{k}: {mine} disagrees with the known {name} architecture ({theirs})")
        layers, hidden, heads = arch.layers, arch.hidden, arch.heads
        kv_heads = kv_heads or arch.kv_heads
        ffn = ffn or arch.ffn_hidden
        vocab = vocab or arch.vocab
        filled = True
        notes.append(f"architecture not in the entry; filled from {arch.source}")
    if vocab is None:
        raise _Skip("model.vocab: not given")
    family = arch.family if arch is not None else _family_of(key, name, glu)
    fam = FAMILIES[family]
    notes.append(fam["why"])
    if glu is None:
        glu = fam["ffn_kind"] in ("swiglu", "geglu")
        notes.append(f"model.glu not given: {fam['ffn_kind']} assumed from the {family} family")
    ffn_kind = "swiglu" if glu else (fam["ffn_kind"] if fam["ffn_kind"] not in ("swiglu", "geglu") else "gelu")
    if ffn is None:
        if glu:
            raise _Skip("model.ffn_hidden: not given for a gated (GLU) model, whose width is not a fixed multiple of h")
        ffn = 4 * hidden
        notes.append(f"model.ffn_hidden not given: 4h = {ffn} (the GPT convention; Narayanan et al. 2021 assume 4h)")
    if kv_heads is None:
        kv_heads = heads
        notes.append("model.kv_heads not given: = heads (multi-head attention)")
    position = fam["position"]
    data = dict(
        name=name, arch="decoder", num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
        ffn_hidden=ffn, ffn_kind=ffn_kind, vocab_size=vocab, tie_embeddings=fam["tie_embeddings"],
        position=position, max_positions=seq_len if position == "learned" else None, norm=fam["norm"],
        bias=fam["bias"], dropout=fam["dropout"], attention={"pattern": "causal"}, moe=moe,
        source=(arch.source if arch is not None else None),
        published_params=_num(m, "model", "params"),
    )
    try:
        return ModelSpec.model_validate(data), filled
    except ValidationError as exc:
        raise _Skip(format_validation_error(exc, prefix="model")) from None


_PRECISION_WORDS = {"amp_bf16": "bf16", "bf16": "bf16", "amp_fp8": "fp8", "fp8": "fp8", "amp_fp16": "fp16",
                    "fp16": "fp16", "fp32": "fp32", "tf32": "tf32"}

#: Recipe names as sources publish them (lower-cased, '_' and '-' read as spaces) -> run.precision_recipe. NeMo's
#: performance tables: FP8-DS / FP8-CS / FP8-MX (MXFP8) / FP8-BLK (block-wise); torchtitan/torchao: "float8
#: rowwise", "float8 tensorwise" and "Float8 linears" (torchao Float8Linear: dynamic, i.e. current, per-tensor
#: scaling); DeepSeek-V3: fine-grained block-wise FP8; Blackwell: MXFP8, NVFP4, MXFP4.
_RECIPE_WORDS = {
    "fp8 ds": "fp8_delayed", "fp8 delayed": "fp8_delayed", "fp8 delayed scaling": "fp8_delayed",
    "delayed scaling": "fp8_delayed", "fp8 tensorwise delayed": "fp8_delayed",
    "fp8 cs": "fp8_current", "fp8 current": "fp8_current", "fp8 current scaling": "fp8_current",
    "current scaling": "fp8_current", "float8 tensorwise": "fp8_current", "fp8 tensorwise": "fp8_current",
    "float8 linears": "fp8_current", "float8 linear": "fp8_current", "float8": "fp8_current",
    "fp8 rowwise": "fp8_rowwise", "float8 rowwise": "fp8_rowwise", "rowwise": "fp8_rowwise",
    "fp8 rowwise with gw hp": "fp8_rowwise", "float8 rowwise with gw hp": "fp8_rowwise",
    "fp8 blk": "fp8_blockwise", "fp8 blockwise": "fp8_blockwise", "fp8 block wise": "fp8_blockwise",
    "fp8 block scaling": "fp8_blockwise", "blockwise fp8": "fp8_blockwise", "fp8 bs": "fp8_blockwise",
    "mxfp8": "mxfp8", "fp8 mx": "mxfp8", "mx fp8": "mxfp8",
    "nvfp4": "nvfp4", "mxfp4": "mxfp4", "fp4 mx": "mxfp4",
}


def _recipe_word(word: str) -> str:
    return " ".join(str(word).strip().lower().replace("_", " ").replace("-", " ").split())


def _precision(key: str, extra: dict, notes: list[str]) -> tuple[str, Optional[str]]:
    """(precision, precision_recipe or None) a source ran in, from ``extra.precision`` (a precision such as
    ``amp_bf16``/``FP8``, or a recipe name as the source publishes it: ``FP8-CS``, ``MXFP8``, ``float8 rowwise``,
    ``Float8 linears``, ...). An unknown word skips the run, naming the word and what is known; a bare ``fp8`` is
    fp8 without a named recipe (Transformer Engine's default delayed scaling, as before recipes existed)."""
    word = extra.get("precision")
    if word is not None:
        p = _PRECISION_WORDS.get(str(word).strip().lower())
        if p is None:
            recipe = _RECIPE_WORDS.get(_recipe_word(word))
            if recipe is None:
                raise _Skip(f"extra.precision: unknown precision or recipe {word!r} (known: "
                            f"{', '.join(sorted(_PRECISION_WORDS))}; recipes: FP8-DS, FP8-CS, float8 rowwise, "
                            f"Float8 linears, FP8 blockwise, MXFP8, NVFP4, MXFP4)")
            from ..specs.run import RECIPE_PRECISION

            notes.append(f"precision {word!r}: the {recipe} recipe ({RECIPE_PRECISION[recipe]} GEMMs)")
            return RECIPE_PRECISION[recipe], recipe
        if key == "llm-foundry" and str(word) == "bf16":
            notes.append("llm-foundry precision 'bf16' with FSDP mixed_precision PURE (bf16 params/grads in FSDP "
                         "communication) represented as bf16 mixed precision")
        return p, None
    if key == "megatron-ptdp":
        notes.append("precision: fp16 mixed precision (extra.peak_basis '312 TFLOP/s fp16'; A100 peak is the same "
                     "for bf16)")
        return "fp16", None
    notes.append("precision not given: bf16 mixed precision assumed")
    return "bf16", None


def _build_run(key: str, b: dict, seq_len: int, extra: dict, notes: list[str]) -> RunSpec:
    seqs, toks = _int(b, "batch", "global_batch_seqs"), _int(b, "batch", "global_batch_tokens")
    micro = _int(b, "batch", "micro_batch")
    if micro is None:
        micro = 1
        notes.append("batch.micro_batch not given: 1 assumed (Megatron-LM's GPT-3 example scripts and the paper's "
                     "Table 2 PTD-P rows use 1)" if key.startswith("megatron") else
                     "batch.micro_batch not given: 1 assumed")
    if seqs is None and toks is None:
        notes.append("global batch not given: left unknown (None); throughput per GPU does not need it")
    precision, recipe = _precision(key, extra, notes)
    data = dict(seq_len=seq_len, global_batch_seqs=seqs, global_batch_tokens=toks, micro_batch=micro,
                precision=precision, precision_recipe=recipe)
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        raise _Skip(format_validation_error(exc, prefix="batch")) from None


def _layout_dims(p: dict, gpus: int, model: ModelSpec, notes: list[str]) -> tuple[int, int, int, int, int, int]:
    """(tp, pp, dp, cp, ep, vpp) of an entry's parallelism, with the defaults it leaves out noted."""
    tp, pp, dp = _int(p, "parallelism", "tp"), _int(p, "parallelism", "pp"), _int(p, "parallelism", "dp")
    cp, ep, vpp = _int(p, "parallelism", "cp"), _int(p, "parallelism", "ep"), _int(p, "parallelism", "vpp")
    if ep not in (None, 1) and model.moe is None:
        raise _Skip(f"parallelism.ep: expert parallelism ({ep}) without an MoE model")
    ep = ep or 1
    mp = _int(p, "parallelism", "model_parallel_size")
    if tp is None and pp is None and mp is not None:
        tp = min(8, mp)
        if mp % tp:
            raise _Skip(f"parallelism.model_parallel_size: {mp} not divisible by tp={tp}; split not given")
        pp = mp // tp
        notes.append(f"parallelism.tp/pp not given, only model_parallel_size={mp}: tp={tp} (one 8-GPU node, as in "
                     f"every Table 1 row of >= 18B) and pp={pp} assumed")
    defaulted = [n for n, v in (("tp", tp), ("pp", pp), ("cp", cp), ("vpp", vpp)) if v is None]
    if defaulted:
        notes.append(f"parallelism.{'/'.join(defaulted)} not given: 1 (not used)")
    tp, pp, cp, vpp = tp or 1, pp or 1, cp or 1, vpp or 1
    if dp is None:
        if gpus % model_parallel_size(tp, pp, cp):
            raise _Skip(f"parallelism.dp: not given and gpus({gpus}) not divisible by tp({tp})·pp({pp})·cp({cp})")
        dp = data_parallel_of(gpus, tp, pp, cp)
        notes.append(f"parallelism.dp not given: gpus/(tp·pp·cp) = {dp}")
    return tp, pp, dp, cp, ep, vpp


#: ``parallelism.sharding`` values the schema accepts (see the file's schema_note).
SHARDINGS = ("none", "zero1", "zero2", "zero3", "hybrid")


def _layout_sharding(key: str, p: dict, notes: list[str]) -> tuple[int, str]:
    """(zero_stage, fsdp) of an entry's sharding, as published: zero1 (ZeRO-1 / Megatron's distributed optimizer:
    optimizer state and fp32 master weights sharded over dp), zero2, zero3 (FSDP full shard), hybrid (FSDP
    HYBRID_SHARD / HSDP: full shard inside a node, replicas across nodes); NeMo left blank: the distributed
    optimizer."""
    sharding = _choice(p, "parallelism", "sharding", SHARDINGS)
    as_published = str(p.get("zero_fsdp_as_published") or "")
    zero_stage, fsdp = 0, "none"
    if sharding == "zero1":
        zero_stage = 1
        notes.append(f"{as_published or 'zero1'} represented as zero_stage=1 (optimizer state and master weights "
                     "sharded over dp; Megatron's distributed optimizer is ZeRO-1: Megatron-LM docs, "
                     "distrib_optimizer.md)")
    elif sharding == "hybrid":
        zero_stage, fsdp = 3, "hybrid"
        notes.append(f"{as_published or 'hybrid'} represented as fsdp=hybrid (ZeRO-3 inside a node, replicated "
                     "across nodes: PyTorch FSDP ShardingStrategy.HYBRID_SHARD)")
    elif sharding == "zero3":
        zero_stage, fsdp = 3, "full"
        if "FSDP" not in as_published:
            notes.append(f"{as_published or 'zero3'} represented as fsdp=full (ZeRO-3 over dp)")
    elif sharding == "zero2":
        zero_stage = 2
        notes.append(f"{as_published or 'zero2'} represented as zero_stage=2 (gradients and optimizer state sharded, "
                     "weights replicated)")
    elif key == "nemo":
        zero_stage = 1
        notes.append("NeMo: Megatron distributed optimizer (optimizer state sharded over dp, ZeRO-1) assumed: the "
                     "NeMo-Framework-Launcher configs use optim distributed_fused_adam / mcore_distributed_optim "
                     "(entries written before the schema had sharding: zero1)")
    elif sharding is None:
        notes.append("parallelism.sharding not given: none")
    return zero_stage, fsdp


def _layout_sequence_parallel(key: str, p: dict, tp: int, notes: list[str]) -> bool:
    """An entry's sequence parallelism, or the framework's default of the source's era when it is not given (blank
    is not "off"; the assumption is noted)."""
    sp = _flag(p, "parallelism", "sequence_parallel")
    if sp is None:
        if key == "nemo" and tp > 1:
            sp = True
            notes.append("parallelism.sequence_parallel not given: true (NeMo-Framework-Launcher configs with tp > 1 "
                         "set sequence_parallel: true)")
        elif key == "torchtitan" and tp > 1:
            sp = True
            notes.append("parallelism.sequence_parallel not given: true (the framework default: torchtitan's tensor-"
                         "parallel plan, torchtitan/models/llama*/parallelize_llama.py apply_tp, shards the norms and "
                         "the block inputs with SequenceParallel; there is no switch to turn it off)")
        else:
            sp = False
            if tp > 1:
                notes.append("parallelism.sequence_parallel not given: false" +
                             (" (sequence parallelism came with Korthikanti et al. 2022, after this paper)"
                              if key == "megatron-ptdp" else ""))
    return sp


def _layout_recompute(key: str, p: dict, notes: list[str]) -> tuple[str, float]:
    """(recompute, recompute_fraction) of an entry; torchtitan's selective AC as full recompute of half."""
    recompute = _choice(p, "parallelism", "recompute", ("none", "selective", "full"))
    rp = str(p.get("recompute_as_published") or "")
    if recompute is None and key == "torchtitan":
        recompute, rp = "selective", rp or "selective op"
        notes.append("parallelism.recompute not given: torchtitan's default of its train configs, "
                     "activation_checkpoint mode 'selective' with selective_ac_option 'op' "
                     "(torchtitan/models/llama3/train_configs/*.toml)")
    elif recompute is None:
        recompute = "none"
        notes.append("parallelism.recompute not given: none assumed" +
                     (" (NeMo-Framework-Launcher configs of the era set activations_checkpoint_granularity: null)"
                      if key == "nemo" else ""))
    recompute_fraction = 1.0
    if key == "torchtitan" and ("layer" in rp or "op" in rp):
        # torchtitan's selective AC (torchtitan/models/llama/parallelize_llama.py at that commit): "layer" wraps
        # every 2nd transformer block in full activation checkpointing (selective_ac_option "2"); "op" saves the
        # outputs of every other matmul and of attention and recomputes the rest, about half the forward matmuls.
        recompute, recompute_fraction = "full", 0.5
        notes.append(f"torchtitan 'selective {'layer' if 'layer' in rp else 'op'}' represented as full "
                     f"recomputation of half the layers (recompute_fraction 0.5): every other block (layer), or "
                     f"every other matmul with attention saved (op)")
    return recompute, recompute_fraction


def _layout_flash(key: str, extra: dict, notes: list[str]) -> bool:
    """Whether the source ran a fused (flash) attention kernel: ``extra.attention`` (``eager`` or ``fused``) where
    the entry states it, else the source's stack."""
    stated = extra.get("attention")
    if stated is not None:
        if stated not in ("eager", "fused"):
            raise _Skip(f"extra.attention: expected eager or fused, got {stated!r}")
        notes.append(f"flash_attention {'true' if stated == 'fused' else 'false'}: the entry states {stated} attention")
        return stated == "fused"
    flash = key in ("llm-foundry", "nemo", "torchtitan", OTHER_SOURCE)
    if key == OTHER_SOURCE:
        notes.append(f"source not one this loader knows: modern defaults assumed (fused attention, "
                     f"FlashAttention-2); throughput in {FLOP_CONVENTION[OTHER_SOURCE]}")
    notes.append("flash_attention " + ("true (fused attention kernel: llm-foundry triton/flash, NeMo Transformer "
                                       "Engine, torchtitan SDPA)" if flash else
                                       "false (Megatron-LM 2021/2022 papers predate FlashAttention)"))
    return flash


def _layout_kernel(key: str, profile: str, tp: int, notes: list[str]) -> tuple[str, bool]:
    """(attention_kernel, tp_comm_overlap) the source ran on its hardware."""
    kernel, overlap = "flash2", False
    if key == "llm-foundry":
        kernel = "triton"
        notes.append("attention_kernel triton: the llm-foundry benchmark tables ran MPT with its Triton/flash "
                     "attention implementation, which has no measured per-length curve here (the fitted attention "
                     "fraction applies)")
    if key == "torchtitan" and profile in HOPPER_PROFILES:
        kernel = "flash3"
        notes.append("attention_kernel flash3: torchtitan on H100 runs PyTorch SDPA, whose default backend on Hopper "
                     "is cuDNN fused attention since PyTorch 2.5 (Hopper-native, FlashAttention-3 class)")
    if key == "nemo":
        kernel = "flash3"
        notes.append("attention_kernel flash3: NeMo 24.07 on H100 runs Transformer Engine's cuDNN fused attention "
                     "(Hopper-native, FlashAttention-3 class)")
        if tp > 1:
            overlap = True
            notes.append("tp_comm_overlap true: NeMo-Framework-Launcher 24.07 training configs with tp > 1 enable "
                         "Transformer Engine userbuffer TP overlap (ub_tp_comm_overlap)")
    return kernel, overlap


#: The framework each source ran (layout.framework: its layout rules apply to the run as to any plan)
SOURCE_FRAMEWORK = {"llm-foundry": "fsdp", "torchtitan": "torchtitan", "nemo": "megatron",
                    "megatron-korthikanti": "megatron", "megatron-ptdp": "megatron"}


def _layout_framework(key: str, zero_stage: int, p: dict, notes: list[str]):
    """The framework of a source's runs (``parallelism.framework`` where the entry names it); Narayanan et al.
    2021's ZeRO-3 baseline rows ran DeepSpeed."""
    if p.get("framework") is not None:
        notes.append(f"framework {p['framework']}: named by the entry")
        return p["framework"]
    if key == "megatron-ptdp" and zero_stage == 3:
        notes.append("framework deepspeed: Narayanan et al. 2021 Table 2's ZeRO-3 baseline ran DeepSpeed")
        return "deepspeed"
    return SOURCE_FRAMEWORK.get(key)


def _layout_eager(key: str, extra: dict, notes: list[str]) -> bool:
    """Whether the source ran its elementwise ops eagerly: torchtitan without torch.compile (an entry's
    ``extra.torch_compile`` when it says; torchtitan's 2024 A100 presets, train_configs/llama3_8b.toml "a preset for
    64 A100 GPUs": compile = false, norm_type rmsnorm). The others fuse them (Megatron's and Transformer Engine's
    fused kernels, MPT's low-precision LayerNorm and fused loss)."""
    if key != "torchtitan":
        return False
    compiled = extra.get("torch_compile")
    eager = not compiled
    notes.append("eager_elementwise " + ("false: torch.compile on" if compiled else
                                         "true: torchtitan without torch.compile (eager RMSNorm, RoPE, SwiGLU)"))
    return eager


def _build_layout(key: str, p: dict, gpus: int, model: ModelSpec, notes: list[str],
                  profile: str = "", extra: Optional[dict] = None) -> LayoutSpec:
    """The LayoutSpec of an entry's parallelism section, every default and representation choice noted."""
    tp, pp, dp, cp, ep, vpp = _layout_dims(p, gpus, model, notes)
    zero_stage, fsdp = _layout_sharding(key, p, notes)
    sp = _layout_sequence_parallel(key, p, tp, notes)
    recompute, recompute_fraction = _layout_recompute(key, p, notes)
    flash = _layout_flash(key, extra or {}, notes)
    if pp > 1 and model.total_layers % (pp * vpp):
        notes.append(f"layers({model.total_layers}) not divisible by pp({pp})·vpp({vpp}): uneven stages")
    kernel, overlap = _layout_kernel(key, profile, tp, notes)
    framework = _layout_framework(key, zero_stage, p, notes)
    data = dict(gpus=gpus, dp=dp, tp=tp, pp=pp, cp=cp, ep=ep, vpp=vpp, zero_stage=zero_stage, fsdp=fsdp,
                framework=framework,
                sequence_parallel=sp, recompute=recompute, recompute_fraction=recompute_fraction,
                flash_attention=flash, attention_kernel=kernel,
                tp_comm_overlap=overlap, eager_elementwise=_layout_eager(key, extra or {}, notes))
    try:
        return LayoutSpec.model_validate(data)
    except ValidationError as exc:
        raise _Skip(format_validation_error(exc, prefix="parallelism")) from None


def _convert(key: str, meas: dict, model: ModelSpec, run: RunSpec, layout: LayoutSpec, profile: str,
             n_params: float) -> tuple[Optional[float], str, list[tuple[str, float]]]:
    """(tokens/s/GPU, how, [(label, tokens/s/GPU implied by each other measurement)])."""
    gpus = layout.num_gpus
    batch_tokens = run.batch_seqs * run.seq_len if run.batch_seqs is not None else None
    candidates: list[tuple[str, float]] = []  # in priority order
    tok = _num(meas, "measured", "tokens_per_s_per_gpu")
    if tok is not None:
        candidates.append(("tokens_per_s_per_gpu as published", tok))
    step = _num(meas, "measured", "step_time_s")
    if step is not None and batch_tokens is not None:
        candidates.append((f"global batch {batch_tokens} tokens / step_time_s {step:g} / {gpus} GPUs",
                           batch_tokens / step / gpus))
    tflops = _num(meas, "measured", "tflops_per_gpu")
    if tflops is not None and (key, "tflops") in FORMULAS:
        fname, f = FORMULAS[(key, "tflops")]
        fpt = f(model, run, layout, n_params)
        candidates.append((f"tflops_per_gpu {tflops:g} / {fname} ({fpt:.4g} FLOP/token)",
                           tokens_per_s_from_flop_rate(tflops * 1e12, fpt)))
    for kind in ("mfu", "hfu"):
        frac = _num(meas, "measured", kind)
        if frac is None or (key, kind) not in FORMULAS:
            continue
        peak = SOURCE_PEAK_FLOP_PER_S.get((key, profile, run.precision))
        if peak is None and key == OTHER_SOURCE:
            from ..core.efficiency import mfu_dtype, peak_flop_per_s
            from ..registry import load_hardware

            peak = peak_flop_per_s(load_hardware(profile), mfu_dtype(run.precision))
        if peak is None:
            continue
        fname, f = FORMULAS[(key, kind)]
        fpt = f(model, run, layout, n_params)
        candidates.append((f"{kind} {frac:g} x peak {peak / 1e12:g} TFLOP/s / {fname} ({fpt:.4g} FLOP/token)",
                           tokens_per_s_from_flop_rate(frac * peak, fpt)))
    if not candidates:
        return None, "", []
    return candidates[0][1], candidates[0][0], candidates[1:]


def _entry_target(hw: dict, m: dict, extra: dict) -> tuple[str, int, int, str]:
    """(hardware profile, GPU count, seq_len, task) of an entry; a _Skip for what is missing or unrepresentable."""
    gpu = hw.get("gpu")
    if gpu is None:
        raise _Skip("hardware.gpu: missing")
    profile = GPU_PROFILES.get(str(gpu))
    if profile is None:
        raise _Skip(f"hardware.gpu: no hardware profile for {gpu!r} (known: {', '.join(GPU_PROFILES)})")
    gpus = _int(hw, "hardware", "count")
    if gpus is None:
        raise _Skip("hardware.count: missing")
    seq_len = _int(m, "model", "seq_len")
    if seq_len is None:
        raise _Skip("model.seq_len: missing")
    task = str(extra.get("task") or "")
    if task.lower() == "lora":
        raise _Skip("extra.task: LoRA fine-tuning (frozen base weights: no weight gradients or optimizer state for "
                    "them) cannot be represented by RunSpec/LayoutSpec")
    return profile, gpus, seq_len, task


def _batch_notes(b: dict, run: RunSpec, layout: LayoutSpec, task: str, notes: list[str]) -> None:
    """Note a fine-tuning task and a global batch that dp, micro_batch and grad_accum do not multiply to."""
    if task:
        notes.append(f"extra.task {task}: full fine-tuning on sequences packed to seq_len, computed as "
                     "pre-training (loss masking does not change the FLOPs; per-document attention masks in packed "
                     "batches would lower the attention FLOPs somewhat)")
    if run.batch_seqs is not None and run.batch_seqs % (layout.data_parallel * run.micro_batch):
        notes.append(f"global batch {run.batch_seqs} not a multiple of dp({layout.data_parallel})·micro_batch"
                     f"({run.micro_batch})")
    ga = _num(b, "batch", "grad_accum")
    if ga is not None and run.batch_seqs is not None:
        if int(ga) * layout.data_parallel * run.micro_batch != run.batch_seqs:
            notes.append(f"batch.grad_accum {int(ga)} x dp {layout.data_parallel} x micro_batch {run.micro_batch} "
                         f"!= global batch {run.batch_seqs} (the source rounds grad_accum up)")


def _param_counts(key: str, model: ModelSpec, notes: list[str]
                  ) -> tuple[int, Optional[float], float, Optional[float]]:
    """(counted, published, parameters the FLOP formulas use, relative error against published)."""
    counted = param_breakdown(model).total
    published = model.published_params
    n_params = published if (key == "llm-foundry" and published) else float(counted)
    param_err = _rel(counted, published) if published else None
    if param_err is not None and abs(param_err) > 0.005:
        notes.append(f"parameter count {counted / 1e9:.4g}B differs from the source's {published / 1e9:.4g}B by "
                     f"{param_err:+.1%}")
    return counted, published, n_params, param_err


def _memory(meas: dict, notes: list[str]) -> tuple[Optional[float], str]:
    """(bytes per GPU or None, kind) of an entry's memory figure: ``memory_gb`` (GB = 1e9 bytes, the schema's unit) or
    ``memory`` with ``memory_unit`` (:data:`MEMORY_UNITS`), and ``memory_kind`` (:data:`MEMORY_KINDS`)."""
    gb = _num(meas, "measured", "memory_gb")
    value = _num(meas, "measured", "memory")
    unit = meas.get("memory_unit")
    kind = _choice(meas, "measured", "memory_kind", MEMORY_KINDS)
    if gb is not None and value is not None:
        raise _Skip("measured.memory_gb and measured.memory: give one (memory_gb is GB; memory needs memory_unit)")
    if value is not None and unit is None:
        raise _Skip("measured.memory: given without measured.memory_unit (one of " + ", ".join(MEMORY_UNITS) + ")")
    if unit is not None and unit not in MEMORY_UNITS:
        raise _Skip(f"measured.memory_unit: expected one of {', '.join(MEMORY_UNITS)}, got {unit!r}")
    if gb is None and value is None:
        return None, kind or "device"
    nbytes = gb * BYTES_PER_GB if gb is not None else value * MEMORY_UNITS[unit]
    if kind is None:
        kind = "device"
        notes.append("measured.memory_kind not given: device (everything on the GPU, as nvidia-smi reports) assumed")
    return nbytes, kind


def _loss(key: str, extra: dict, notes: list[str]) -> str:
    """How the source's framework computes the loss (memory at the loss, planner.core.memory.LOSS_KINDS): ``extra.loss``
    when the entry says, else torchtitan's uncompiled ``F.cross_entropy(pred.flatten(0, 1).float(), labels)``
    (torchtitan train.py of 2024: the loss is not compiled, a TODO there says compiling it caused CUDA errors) and the
    fused losses of the others: Megatron-LM/NeMo vocab-parallel cross entropy (fused), llm-foundry's MPT
    fused_crossentropy (inplace)."""
    from ..core.memory import LOSS_KINDS

    word = extra.get("loss")
    if word is not None:
        if word not in LOSS_KINDS:
            raise _Skip(f"extra.loss: expected one of {', '.join(LOSS_KINDS)}, got {word!r}")
        notes.append(f"extra.loss {word}: " + str(extra.get("loss_note") or "as the entry says"))
        return str(word)
    if key == "torchtitan":
        notes.append("loss unfused: torchtitan computes F.cross_entropy(pred.flatten(0, 1).float(), labels) eagerly "
                     "(bf16 logits, their fp32 copy and the fp32 log-softmax alive at the loss)")
        return "unfused"
    if key == "llm-foundry":
        notes.append("loss inplace: MPT's loss_fn fused_crossentropy (flash-attn's Triton cross entropy: the logits "
                     "and a log-sum-exp per row, the gradient written in place)")
        return "inplace"
    return "fused"


def _cluster(hw: dict, notes: list[str]) -> Optional[str]:
    """The ``hardware.cluster`` an entry names (a hardware_profiles/clusters/ profile), checked; None if not given."""
    name = hw.get("cluster")
    if name is None:
        return None
    from ..registry import cluster_names

    if str(name) not in cluster_names():
        raise _Skip(f"hardware.cluster: unknown cluster {name!r} (known: {', '.join(cluster_names())})")
    notes.append(f"hardware.cluster {name}: the node and fabric of hardware_profiles/clusters/{name}.yaml")
    return str(name)


def hardware_of(run: "MeasuredRun"):
    """The HardwareSpec a measured run ran on: its GPU profile, inside its cluster's node and fabric when the entry
    names one (as a plan's ``hardware: {extends: <profile>, cluster: <name>}`` does)."""
    from ..registry import load_hardware

    if run.cluster is None:
        return load_hardware(run.hardware)
    from ..registry import cluster_data, profile_data, with_calibration
    from ..specs.hardware import HardwareSpec

    merged = copy.deepcopy(profile_data(run.hardware))
    fabric = cluster_data(run.cluster)
    for k in ("node", "network"):
        if k in fabric:
            merged[k] = {**merged.get(k, {}), **fabric[k]}
    merged["cluster"] = run.cluster
    return HardwareSpec.model_validate(with_calibration(merged))


def _require_measurement(key: str, meas: dict, tok: Optional[float], memory_gb: Optional[float]) -> None:
    """A _Skip when the entry has neither a convertible throughput nor a memory figure."""
    if tok is None and memory_gb is None:
        given = [k for k in ("tokens_per_s_per_gpu", "step_time_s", "tflops_per_gpu", "mfu", "hfu")
                 if meas.get(k) is not None]
        raise _Skip("measured: no throughput convertible to tokens/s per GPU" +
                    (f" ({', '.join(given)} given, but no {key} formula/peak basis/batch for them)" if given else
                     " and no memory given"))


def _cross_checks(others: list[tuple[str, float]], tok: Optional[float]) -> tuple[list[str], float]:
    """(one line per redundant measurement against the chosen one, the worst relative disagreement)."""
    checks = []
    worst = 0.0
    for label, value in others:
        err = _rel(value, tok)
        worst = max(worst, abs(err))
        flag = "  <-- disagrees" if abs(err) > CROSS_CHECK_TOLERANCE else ""
        checks.append(f"{label} -> {value:.4g} tokens/s/GPU ({err:+.1%}){flag}")
    return checks, worst


def _check_packed_task(key: str, task: str, worst: float, meas: dict, tok: Optional[float], model: ModelSpec,
                       seq_len: int) -> None:
    """A _Skip for a NeMo fine-tuning entry whose numbers imply attention over short packed documents."""
    if task and worst > CROSS_CHECK_TOLERANCE and key == "nemo":
        tflops = _num(meas, "measured", "tflops_per_gpu")
        if tflops is not None and tok:
            implied = tflops * 1e12 / tok
            per_attended = 12.0 * model.total_layers * model.num_heads * model.head_size
            attended = (implied - nemo_model_flops_per_token(model, 0)) / per_attended
            raise _Skip(f"extra.task {task}: sequences packed to {seq_len} tokens; the source's TFLOP/s / tokens/s "
                        f"= {implied:.4g} FLOP/token implies attention over ~{max(attended, 0):.0f} tokens (the "
                        f"short packed documents), not {seq_len}; RunSpec/ModelSpec cannot state a per-document "
                        f"attention length, so the comparison would not be like with like")


def _check_filled(param_err: Optional[float], counted: int, published: Optional[float], others: list,
                  worst: float, checks: list[str], notes: list[str]) -> None:
    """Check a filled-in architecture against the entry's parameter count and redundant measurements."""
    evidence = []
    if param_err is not None:
        evidence.append(f"parameter count {param_err:+.2%} from the source's")
        if abs(param_err) > CROSS_CHECK_TOLERANCE:
            raise _Skip(f"model.params: the filled-in architecture has {counted / 1e9:.4g}B parameters, the "
                        f"source {published / 1e9:.4g}B ({param_err:+.1%})")
    if others:
        evidence.append(f"the source's redundant measurements agree within {worst:.1%}")
        if worst > CROSS_CHECK_TOLERANCE:
            raise _Skip("measured: the filled-in architecture does not reproduce the source's own numbers: " +
                        "; ".join(checks))
    notes.append("filled-in architecture checked: " + "; ".join(evidence) if evidence else
                 "the filled-in architecture could not be checked against the entry (no parameter count "
                 "and a single measurement)")


def _load_entry(entry: dict, key: str, fill: bool) -> MeasuredRun:
    """One entry of a measured-runs file as a MeasuredRun; a _Skip saying why when it cannot be."""
    notes: list[str] = []
    m, hw, par = _section(entry, "model"), _section(entry, "hardware"), _section(entry, "parallelism")
    b, meas, extra = _section(entry, "batch"), _section(entry, "measured"), _section(entry, "extra", required=False)
    profile, gpus, seq_len, task = _entry_target(hw, m, extra)
    cluster = _cluster(hw, notes)

    model, filled = _build_model(key, m, seq_len, fill, notes)
    run = _build_run(key, b, seq_len, extra, notes)
    layout = _build_layout(key, par, gpus, model, notes, profile, extra)
    _batch_notes(b, run, layout, task, notes)
    counted, published, n_params, param_err = _param_counts(key, model, notes)

    tok, how, others = _convert(key, meas, model, run, layout, profile, n_params)
    memory_bytes, memory_kind = _memory(meas, notes)
    loss = _loss(key, extra, notes)
    _require_measurement(key, meas, tok, memory_bytes)
    checks, worst = _cross_checks(others, tok)
    _check_packed_task(key, task, worst, meas, tok, model, seq_len)
    if filled:
        _check_filled(param_err, counted, published, others, worst, checks, notes)

    step_time = _num(meas, "measured", "step_time_s")
    if step_time is None and tok is not None and run.batch_seqs is not None:
        step_time = run.batch_seqs * run.seq_len / (tok * layout.num_gpus)
        how += "; step time derived as global batch tokens / (tokens/s/GPU x GPUs)"
    return MeasuredRun(
        id=str(entry["id"]),
        source=str(entry.get("source") or ""),
        source_key=key,
        model=model,
        run=run,
        layout=layout,
        hardware=profile,
        measured_tokens_per_s_per_gpu=tok,
        measured_step_time_s=step_time,
        measured_mfu=_num(meas, "measured", "mfu"),
        measured_hfu=_num(meas, "measured", "hfu"),
        measured_memory_bytes=memory_bytes,
        flop_convention=FLOP_CONVENTION[key],
        assumptions=tuple(notes),
        raw=copy.deepcopy(entry),
        conversion=how,
        cross_checks=tuple(checks),
        measured_memory_kind=memory_kind,
        cluster=cluster,
        loss=loss,
    )


# ---------------------------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------------------------

def load_runs(path: str | Path | None = None, *, fill_architectures: bool = True
              ) -> tuple[list[MeasuredRun], list[SkippedRun]]:
    """Every entry of a measured-runs file, as (loaded, skipped); one item per entry, in file order.

    ``path``: a YAML file of the schema of ``planner/data/measured_runs.yaml``; default: the package copy.
    ``fill_architectures``: take dimensions an entry lacks from :data:`KNOWN_ARCHITECTURES` (default), or skip it.

    Raises SpecError when the file itself is unusable (missing, not YAML, no ``runs`` list, or a ``count`` that
    disagrees with the number of entries); a bad *entry* becomes a SkippedRun whose reason names the field.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    data = read_yaml(path)
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise SpecError(f"{path}: expected a list under 'runs', got {type(runs).__name__}")
    count = data.get("count")
    if count is not None and count != len(runs):
        raise SpecError(f"{path}: count says {count} but 'runs' holds {len(runs)} entries")
    loaded: list[MeasuredRun] = []
    skipped: list[SkippedRun] = []
    seen: set[str] = set()
    for i, entry in enumerate(runs):
        if not isinstance(entry, dict):
            skipped.append(SkippedRun(f"<entry {i}>", "unknown", f"entry {i}: expected a mapping, got "
                                                                   f"{type(entry).__name__}"))
            continue
        run_id = entry.get("id")
        if not run_id:
            skipped.append(SkippedRun(f"<entry {i}>", source_key_of(entry) or "unknown", "id: missing"))
            continue
        run_id = str(run_id)
        key = source_key_of(entry) or OTHER_SOURCE
        if run_id in seen:
            skipped.append(SkippedRun(run_id, key, "id: duplicate of an earlier entry"))
            continue
        seen.add(run_id)
        try:
            loaded.append(_load_entry(entry, key, fill_architectures))
        except _Skip as why:
            skipped.append(SkippedRun(run_id, key, str(why)))
    return loaded, skipped


def summary(loaded: list[MeasuredRun], skipped: list[SkippedRun]) -> str:
    """A short text account: loaded per source, skipped with reasons."""
    lines = [f"{len(loaded) + len(skipped)} entries: {len(loaded)} loaded, {len(skipped)} skipped"]
    by_key: dict[str, int] = {}
    for r in loaded:
        by_key[r.source_key] = by_key.get(r.source_key, 0) + 1
    for k in sorted(by_key):
        lines.append(f"  loaded  {k:22s} {by_key[k]}")
    for s in skipped:
        lines.append(f"  skipped {s.source_key:22s} {s.id}: {s.reason}")
    return "\n".join(lines)
