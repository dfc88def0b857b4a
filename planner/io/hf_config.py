"""Hugging Face ``config.json`` -> model spec (a local file; planner never downloads anything).

Supported ``model_type`` values and what is read from each (field names are those of the ``transformers``
configuration classes; a missing required field is a one-line :class:`SpecError` naming it):

- **llama, mistral, mixtral, qwen2, gemma** (decoder, RMSNorm, rotary positions, gated FFN): ``num_hidden_layers``,
  ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (GQA; default = heads), ``head_dim`` (Gemma),
  ``intermediate_size``, ``hidden_act`` (silu -> SwiGLU, gelu* -> GeGLU), ``vocab_size``, ``tie_word_embeddings``
  (the family's ``transformers`` default when absent: tied for Gemma, untied for the others), ``sliding_window``
  (Mistral; Qwen2 only with ``use_sliding_window``), ``num_local_experts`` / ``num_experts_per_tok`` (Mixtral).
- **gpt2** (decoder, pre-LN LayerNorm with biases, learned positions, tied head): ``n_layer``, ``n_embd``,
  ``n_head``, ``n_inner`` (default 4·n_embd), ``n_positions``, ``vocab_size``, ``activation_function``.
- **bert, roberta** (encoder, post-LN): ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
  ``intermediate_size``, ``max_position_embeddings``, ``type_vocab_size``, ``vocab_size``. Counted as in masked-LM
  pre-training, like the ``bert-base`` preset: pooler and MLM head (dense + LayerNorm + output bias) included.
- **t5, mt5** (encoder-decoder, scale-only norms, bucketed relative positions, no biases): ``num_layers``,
  ``num_decoder_layers`` (default num_layers), ``d_model``, ``num_heads``, ``d_kv``, ``d_ff``,
  ``feed_forward_proj`` (relu; gated-gelu / gated-silu -> a gated FFN of 3 matrices),
  ``relative_attention_num_buckets``, ``vocab_size``, ``tie_word_embeddings`` (default tied).

Left out, and how much it matters: Qwen2's q/k/v projection biases (ModelSpec's ``bias`` is all-or-nothing;
(h + 2·kv)·d_head per layer = 129,024 parameters for Qwen2-7B, 0.002%); Llama's ``attention_bias`` / ``mlp_bias``
set every linear bias (exact when both are set); rope scaling and position limits of rotary models (no weights);
dropout probabilities other than the hidden dropout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import SpecError

#: model_type -> family handled by one mapping function below.
FAMILIES = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "llama", "gemma": "llama",
    "gpt2": "gpt2",
    "bert": "bert", "roberta": "bert",
    "t5": "t5", "mt5": "t5",
}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES)

#: ``tie_word_embeddings`` default of each ``transformers`` config class (PretrainedConfig defaults to True; the
#: Llama, Mistral, Mixtral and Qwen2 configs override it to False).
TIE_DEFAULT = {"llama": False, "mistral": False, "mixtral": False, "qwen2": False, "gemma": True, "gpt2": True,
               "bert": True, "roberta": True, "t5": True, "mt5": False}


def read_hf_config(path) -> dict:
    """The mapping in a local ``config.json``; SpecError naming the file when it is missing or not JSON."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise SpecError(f"{p}: no such file (a local Hugging Face config.json)") from None
    except IsADirectoryError:
        raise SpecError(f"{p}: is a folder; give the config.json inside it") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


class _Cfg:
    """Field access that names the file and the field when a required one is missing."""

    def __init__(self, data: dict, where: str):
        self.data, self.where = data, where

    def need(self, *keys: str) -> Any:
        for k in keys:
            if self.data.get(k) is not None:
                return self.data[k]
        raise SpecError(f"{self.where}: {keys[0]}: missing (model_type {self.data.get('model_type')!r} needs it)")

    def get(self, key: str, default=None):
        v = self.data.get(key)
        return default if v is None else v


def _gated_kind(act: str, where: str) -> str:
    a = str(act).lower()
    if a in ("silu", "swish"):
        return "swiglu"
    if a.startswith("gelu"):
        return "geglu"
    raise SpecError(f"{where}: hidden_act: {act!r} not supported for a gated FFN (expected silu or gelu*)")


def _llama_family(c: _Cfg, mt: str) -> dict:
    heads = int(c.need("num_attention_heads"))
    hidden = int(c.need("hidden_size"))
    out: dict = {
        "arch": "decoder",
        "num_layers": int(c.need("num_hidden_layers")),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": int(c.get("num_key_value_heads", heads)),
        "ffn_hidden": int(c.need("intermediate_size")),
        "ffn_kind": _gated_kind(c.get("hidden_activation") or c.get("hidden_act", "silu"), c.where),
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", TIE_DEFAULT[mt])),
        "position": "rotary",
        "norm": "rmsnorm",
        "final_norm": True,
        "bias": bool(c.get("attention_bias", False) or c.get("mlp_bias", False)),
        "dropout": float(c.get("attention_dropout", 0.0)),
    }
    head_dim = c.get("head_dim")
    if head_dim is not None and (hidden % heads or int(head_dim) != hidden // heads):
        out["head_dim"] = int(head_dim)
    window = c.get("sliding_window")
    uses_window = c.get("use_sliding_window", True) if mt == "qwen2" else True
    if window is not None and uses_window:
        out["attention"] = {"pattern": "sliding_window", "window_tokens": int(window)}
    else:
        out["attention"] = {"pattern": "causal"}
    if mt == "mixtral" or c.get("num_local_experts"):
        out["moe"] = {"num_experts": int(c.need("num_local_experts")), "top_k": int(c.need("num_experts_per_tok"))}
    return out


def _gpt2(c: _Cfg, mt: str) -> dict:
    d = int(c.need("n_embd", "hidden_size"))
    act = str(c.get("activation_function", "gelu_new")).lower()
    return {
        "arch": "decoder",
        "num_layers": int(c.need("n_layer", "num_hidden_layers")),
        "hidden_size": d,
        "num_heads": int(c.need("n_head", "num_attention_heads")),
        "ffn_hidden": int(c.get("n_inner") or 4 * d),
        "ffn_kind": "relu" if act == "relu" else "gelu",
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", True)),
        "position": "learned",
        "max_positions": int(c.need("n_positions", "n_ctx")),
        "norm": "layernorm",
        "final_norm": True,
        "bias": True,
        "attention": {"pattern": "causal"},
        "dropout": float(c.get("resid_pdrop", 0.1)),
    }


def _bert(c: _Cfg, mt: str) -> dict:
    act = str(c.get("hidden_act", "gelu")).lower()
    return {
        "arch": "encoder",
        "num_layers": int(c.need("num_hidden_layers")),
        "hidden_size": int(c.need("hidden_size")),
        "num_heads": int(c.need("num_attention_heads")),
        "ffn_hidden": int(c.need("intermediate_size")),
        "ffn_kind": "relu" if act == "relu" else "gelu",
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", True)),
        "position": "learned",
        "max_positions": int(c.need("max_position_embeddings")),
        "token_types": int(c.get("type_vocab_size", 2)),
        "norm": "layernorm",
        "embedding_norm": True,
        "final_norm": False,
        "bias": True,
        "pooler": True,
        "lm_head_transform": True,
        "output_bias": True,
        "attention": {"pattern": "full"},
        "dropout": float(c.get("hidden_dropout_prob", 0.1)),
    }


def _t5(c: _Cfg, mt: str) -> dict:
    proj = str(c.get("feed_forward_proj", "relu")).lower()
    if proj == "relu":
        kind = "relu"
    elif proj.startswith("gated-"):
        kind = "geglu"  # any gated FFN holds 3 matrices: the parameter count and FLOPs are those of GeGLU
    else:
        kind = "gelu"
    layers = int(c.need("num_layers"))
    return {
        "arch": "encoder_decoder",
        "encoder_layers": layers,
        "decoder_layers": int(c.get("num_decoder_layers", layers)),
        "hidden_size": int(c.need("d_model")),
        "num_heads": int(c.need("num_heads")),
        "head_dim": int(c.need("d_kv")),
        "ffn_hidden": int(c.need("d_ff")),
        "ffn_kind": kind,
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", TIE_DEFAULT[mt])),
        "position": "t5_relative",
        "relative_buckets": int(c.get("relative_attention_num_buckets", 32)),
        "norm": "rmsnorm",
        "final_norm": True,
        "bias": False,
        "attention": {"pattern": "causal"},
        "dropout": float(c.get("dropout_rate", 0.1)),
    }


_MAPPERS = {"llama": _llama_family, "gpt2": _gpt2, "bert": _bert, "t5": _t5}


def model_data_from_hf_config(cfg: dict, name: Optional[str] = None, where: str = "config.json") -> dict:
    """The raw ModelSpec mapping of a Hugging Face configuration mapping (not yet validated)."""
    if "model_type" not in cfg and isinstance(cfg.get("text_config"), dict):
        cfg = cfg["text_config"]  # multimodal wrappers keep the language model's config here
    mt = cfg.get("model_type")
    if mt is None:
        raise SpecError(f"{where}: model_type: missing (is this a Hugging Face config.json?)")
    family = FAMILIES.get(str(mt).lower())
    if family is None:
        raise SpecError(f"{where}: model_type: {mt!r} not supported (supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
    data = _MAPPERS[family](_Cfg(cfg, where), str(mt).lower())
    arch = ", ".join(cfg.get("architectures") or []) or "-"
    label = name or cfg.get("_name_or_path") or Path(where).stem
    source = f"Hugging Face config.json ({where}): model_type {mt}, architectures {arch}; imported by planner"
    return {"name": str(label), "source": source, **data}


def load_hf_config(path, name: Optional[str] = None) -> dict:
    """The raw ModelSpec mapping of a local ``config.json`` (``name`` defaults to the file's stem)."""
    p = Path(path)
    stem = p.parent.name if p.stem == "config" and p.parent.name else p.stem
    return model_data_from_hf_config(read_hf_config(p), name=name or stem, where=str(p))


def model_from_hf_config(path, name: Optional[str] = None):
    """A validated :class:`~planner.specs.model.ModelSpec` from a local ``config.json``."""
    from pydantic import ValidationError

    from ..errors import format_validation_error
    from ..specs.model import ModelSpec

    data = load_hf_config(path, name)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: " + format_validation_error(exc, prefix="model")) from None


__all__ = ["SUPPORTED_MODEL_TYPES", "load_hf_config", "model_data_from_hf_config", "model_from_hf_config",
           "read_hf_config"]
