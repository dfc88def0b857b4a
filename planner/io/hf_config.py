"""Hugging Face ``config.json`` -> model spec (a local file; planner never downloads anything).

Supported ``model_type`` values and what is read from each (field names are those of the ``transformers``
configuration classes; a missing required field is a one-line :class:`SpecError` naming it; a value planner cannot
represent, such as a layer type it does not model, is a one-line error listing what is supported):

- **llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, gemma, gemma2, gemma3_text (and gemma3's text_config),
  olmo2, phi3, gpt_oss** (decoder, RMSNorm, rotary positions, gated FFN): ``num_hidden_layers``, ``hidden_size``,
  ``num_attention_heads``, ``num_key_value_heads`` (GQA; default = heads), ``head_dim``, ``intermediate_size``,
  ``hidden_act`` / ``hidden_activation`` (silu -> SwiGLU, gelu* -> GeGLU), ``vocab_size``, ``tie_word_embeddings``
  (the family's ``transformers`` default when absent), ``attention_bias`` / ``mlp_bias``. Attention windows:
  ``layer_types`` (sliding_attention / full_attention per layer) where given, else the family's rule: Mistral's
  and Phi-3's ``sliding_window`` on every layer; Qwen2/3 only with ``use_sliding_window``, on layers from
  ``max_window_layers`` on; Gemma 2 alternating local/global (local first); Gemma 3 ``sliding_window_pattern``
  (default 6: five local, then one global); gpt-oss alternating. Per family: Qwen2 biases Q, K and V (its
  attention hard-codes them; 129,024 parameters on Qwen2-7B); Qwen3 and Gemma 3 normalise Q and K per head, OLMo
  2 over the full widths and puts its norms after each sublayer; Gemma 2/3 have sandwich norms and Gemma 2
  ``attn_logit_softcapping`` / ``final_logit_softcapping``; gpt-oss has sinks and biases everywhere (attention,
  experts, router). MoE: ``num_local_experts`` (or ``num_experts``) / ``num_experts_per_tok``,
  ``moe_intermediate_size`` (Qwen3-MoE), ``decoder_sparse_step``; ``mlp_only_layers`` must be empty.
- **deepseek_v2, deepseek_v3** (multi-head latent attention, fine-grained MoE): the above plus ``q_lora_rank``
  (null = no query latent), ``kv_lora_rank``, ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``,
  ``n_routed_experts``, ``n_shared_experts``, ``moe_intermediate_size``, ``first_k_dense_replace``,
  ``moe_layer_freq`` (1 only), ``num_nextn_predict_layers`` (MTP depth).
- **dbrx**: ``d_model``, ``n_heads``, ``n_layers``, ``attn_config.kv_n_heads``, ``ffn_config.ffn_hidden_size``,
  ``ffn_config.moe_num_experts`` / ``moe_top_k``, ``vocab_size``; LayerNorm without bias.
- **gpt2** (decoder, pre-LN LayerNorm with biases, learned positions, tied head): ``n_layer``, ``n_embd``,
  ``n_head``, ``n_inner`` (default 4·n_embd), ``n_positions``, ``vocab_size``, ``activation_function``.
- **bert, roberta** (encoder, post-LN): ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
  ``intermediate_size``, ``max_position_embeddings``, ``type_vocab_size``, ``vocab_size``. Counted as in masked-LM
  pre-training, like the ``bert-base`` preset: pooler and MLM head (dense + LayerNorm + output bias) included.
- **t5, mt5** (encoder-decoder, scale-only norms, bucketed relative positions, no biases): ``num_layers``,
  ``num_decoder_layers`` (default num_layers), ``d_model``, ``num_heads``, ``d_kv``, ``d_ff``,
  ``feed_forward_proj`` (relu; gated-gelu / gated-silu -> a gated FFN of 3 matrices),
  ``relative_attention_num_buckets``, ``vocab_size``, ``tie_word_embeddings`` (default tied).

Each import counts exactly the parameters of the ``transformers`` module built from the same config
(tests/test_hf_import.py checks it on the meta device where ``transformers`` is installed), except: DeepSeek-V3's
MTP module is counted (it is trained; ``transformers`` does not build it); Llama's ``attention_bias`` /
``mlp_bias`` set every linear bias (exact when both are set). Left out: rope scaling and position limits of rotary
models (no weights); dropout probabilities other than the hidden dropout; vision towers of multimodal wrappers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from ..errors import SpecError
from .files import read_json_file

#: model_type -> family handled by one mapping function below.
FAMILIES = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "llama", "gemma": "llama",
    "qwen3": "llama", "qwen3_moe": "llama", "gemma2": "llama", "gemma3_text": "llama", "olmo2": "llama",
    "phi3": "llama", "gpt_oss": "llama",
    "deepseek_v2": "deepseek", "deepseek_v3": "deepseek",
    "dbrx": "dbrx",
    "gpt2": "gpt2",
    "bert": "bert", "roberta": "bert",
    "t5": "t5", "mt5": "t5",
}
#: multimodal wrappers whose language model is the ``text_config`` of another supported type
WRAPPERS = {"gemma3": "gemma3_text"}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES) + tuple(WRAPPERS)

#: ``tie_word_embeddings`` default of each ``transformers`` config class (PretrainedConfig defaults to True; the
#: Llama, Mistral, Mixtral, Qwen2/3, OLMo 2, Phi-3, gpt-oss, DBRX and DeepSeek configs override it to False).
TIE_DEFAULT = {"llama": False, "mistral": False, "mixtral": False, "qwen2": False, "gemma": True, "gpt2": True,
               "bert": True, "roberta": True, "t5": True, "mt5": False, "qwen3": False, "qwen3_moe": False,
               "gemma2": True, "gemma3_text": True, "olmo2": False, "phi3": False, "gpt_oss": False,
               "deepseek_v2": False, "deepseek_v3": False, "dbrx": False}
#: defaults of ``transformers`` config classes for keys the published files leave out (Gemma3TextConfig: the
#: gemma-3 checkpoints' text_config gives no vocab_size; 262,208 is the Gemma 3 tokenizer's size)
FIELD_DEFAULTS = {"gemma3_text": {"vocab_size": 262208, "sliding_window_pattern": 6,
                                  "hidden_activation": "gelu_pytorch_tanh"},
                  "gemma2": {"hidden_activation": "gelu_pytorch_tanh"}}
#: ``layer_types`` entries planner models, and what each becomes
LAYER_TYPES = {"sliding_attention": "local", "full_attention": "global"}


def read_hf_config(path) -> dict:
    """The mapping in a local ``config.json``; SpecError naming the file when it is missing, a folder, too large,
    not UTF-8, not JSON or nested too deeply (through :func:`planner.io.files.read_json_file`)."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"{p}: is a folder; give the config.json inside it")
    if not p.exists():
        raise SpecError(f"{p}: no such file (a local Hugging Face config.json)")
    data = read_json_file(p)
    if not isinstance(data, dict):
        raise SpecError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


#: Fields read as integers (counts and sizes), as numbers, as booleans and as names: each is checked for its type
#: before it is used, so ``"hidden_size": "4096"`` or ``4096.5`` is an error naming the field, not a traceback or
#: a silently truncated value.
INT_FIELDS = frozenset((
    "d_ff", "d_kv", "d_model", "decoder_sparse_step", "experts_per_token", "ffn_hidden_size", "first_k_dense_replace",
    "hidden_size", "intermediate_size", "kv_lora_rank", "kv_n_heads", "max_position_embeddings",
    "max_window_layers", "moe_intermediate_size", "moe_layer_freq", "moe_num_experts", "moe_top_k", "n_ctx",
    "n_embd", "n_group", "n_head", "n_heads", "n_inner", "n_layer", "n_layers", "n_positions", "n_routed_experts",
    "n_shared_experts", "num_attention_heads", "num_decoder_layers", "num_experts_per_tok", "num_heads",
    "num_hidden_layers", "num_key_value_heads", "num_layers", "num_nextn_predict_layers", "q_lora_rank",
    "qk_nope_head_dim", "qk_rope_head_dim", "relative_attention_num_buckets", "sliding_window",
    "sliding_window_pattern", "topk_group", "type_vocab_size", "v_head_dim", "vocab_size", "num_local_experts", "num_experts",
    "head_dim"))
FLOAT_FIELDS = frozenset(("attention_dropout", "dropout_rate", "hidden_dropout_prob", "resid_pdrop",
                          "attn_logit_softcapping", "final_logit_softcapping"))
BOOL_FIELDS = frozenset(("attention_bias", "mlp_bias", "tie_word_embeddings", "use_sliding_window"))
STR_FIELDS = frozenset(("model_type", "hidden_act", "hidden_activation", "activation_function",
                        "feed_forward_proj"))
#: Largest integer a config field may hold (larger is no model planner can plan; the spec bounds each field).
MAX_CONFIG_INT = 2**40


def _check_types(data: dict, where: str) -> dict:
    """``data`` with integral floats of integer fields made ints; SpecError naming the first field of the wrong
    type."""
    out = dict(data)
    for k, v in data.items():
        if v is None:
            continue
        if k in INT_FIELDS:
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = out[k] = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise SpecError(f"{where}: {k}: expected an integer (got {v!r})")
            if not 0 <= v <= MAX_CONFIG_INT:
                raise SpecError(f"{where}: {k}: {v} out of range (0 to {MAX_CONFIG_INT:,})")
        elif k in FLOAT_FIELDS:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SpecError(f"{where}: {k}: expected a finite number (got {v!r})")
        elif k in BOOL_FIELDS:
            if not isinstance(v, bool):
                raise SpecError(f"{where}: {k}: expected true or false (got {v!r})")
        elif k in STR_FIELDS:
            if not isinstance(v, str):
                raise SpecError(f"{where}: {k}: expected a name (got {v!r})")
        elif k in ("attn_config", "ffn_config", "text_config"):
            if not isinstance(v, dict):
                raise SpecError(f"{where}: {k}: expected an object (got {type(v).__name__})")
        elif k in ("layer_types", "mlp_only_layers", "architectures"):
            if not isinstance(v, list) or (k != "mlp_only_layers" and not all(isinstance(t, str) for t in v)):
                raise SpecError(f"{where}: {k}: expected a list of {'layer indices' if k == 'mlp_only_layers' else 'names'}"
                                f" (got {v!r:.80})")
    return out


class _Cfg:
    """Field access that names the file and the field when a required one is missing."""

    def __init__(self, data: dict, where: str, defaults: Optional[dict] = None):
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected an object (got {type(data).__name__})")
        data = _check_types(data, where)
        self.data, self.where = {**(defaults or {}), **{k: v for k, v in data.items() if v is not None}}, where

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


def _window_layers(c: _Cfg, mt: str, n_layers: int) -> Optional[list[str]]:
    """Per-layer 'local'/'global' of a windowed model, or None when no layer uses a window."""
    types = c.get("layer_types")
    if types is not None:
        bad = sorted({t for t in types if t not in LAYER_TYPES})
        if bad:
            raise SpecError(f"{c.where}: layer_types: {', '.join(map(repr, bad))} not supported "
                            f"(supported: {', '.join(LAYER_TYPES)})")
        if len(types) != n_layers:
            raise SpecError(f"{c.where}: layer_types: {len(types)} entries for num_hidden_layers {n_layers}")
        kinds = [LAYER_TYPES[t] for t in types]
    elif mt in ("gemma2", "gpt_oss"):  # transformers: even layers sliding (Gemma2DecoderLayer, GptOssConfig)
        kinds = ["local" if i % 2 == 0 else "global" for i in range(n_layers)]
    elif mt == "gemma3_text":
        k = int(c.get("sliding_window_pattern", 6))
        kinds = ["global" if (i + 1) % k == 0 else "local" for i in range(n_layers)]
    elif mt in ("qwen2", "qwen3", "qwen3_moe"):
        if not c.get("use_sliding_window", False):
            return None
        first = int(c.get("max_window_layers", n_layers))
        kinds = ["local" if i >= first else "global" for i in range(n_layers)]
    else:  # Mistral, Mixtral, Phi-3, Llama: a window, when given, applies to every layer
        return None if c.get("sliding_window") is None else ["local"] * n_layers
    if "local" not in kinds:
        return None
    return kinds


def _cycle(kinds: list[str]) -> list[str]:
    """The shortest cycle that repeats into ``kinds`` (its own length when none does)."""
    n = len(kinds)
    for p in range(1, n + 1):
        if all(kinds[i] == kinds[i % p] for i in range(n)):
            return kinds[:p]
    return kinds


def _attention(c: _Cfg, mt: str, n_layers: int) -> dict:
    kinds = _window_layers(c, mt, n_layers)
    if kinds is None:
        return {"pattern": "causal"}
    out = {"pattern": "sliding_window", "window_tokens": int(c.need("sliding_window"))}
    if "global" in kinds:
        out["layer_pattern"] = _cycle(kinds)
    return out


def _moe(c: _Cfg, mt: str) -> Optional[dict]:
    experts = c.get("num_local_experts", c.get("num_experts"))
    if not experts:
        return None
    moe = {"num_experts": int(experts), "top_k": int(c.need("num_experts_per_tok", "experts_per_token"))}
    if c.get("moe_intermediate_size") is not None:
        moe["expert_ffn_hidden"] = int(c.get("moe_intermediate_size"))
    if mt == "qwen3_moe":
        if c.get("mlp_only_layers"):
            raise SpecError(f"{c.where}: mlp_only_layers: {c.get('mlp_only_layers')} not supported (dense layers "
                            f"are supported only as a leading block or every k-th layer; give [])")
        step = int(c.get("decoder_sparse_step", 1))
        if step != 1:
            moe["layer_frequency"] = step  # (i + 1) % step == 0 is MoE, as planner's layer_frequency
    return moe


def _llama_family(c: _Cfg, mt: str) -> dict:
    heads = int(c.need("num_attention_heads"))
    hidden = int(c.need("hidden_size"))
    layers = int(c.need("num_hidden_layers"))
    all_bias = mt == "gpt_oss" and bool(c.get("attention_bias", True))
    out: dict = {
        "arch": "decoder",
        "num_layers": layers,
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
        "bias": all_bias or bool(c.get("attention_bias", False) or c.get("mlp_bias", False)),
        "dropout": float(c.get("attention_dropout", 0.0)),
    }
    head_dim = c.get("head_dim")
    if head_dim is not None and (hidden % heads or int(head_dim) != hidden // heads):
        out["head_dim"] = int(head_dim)
    if mt == "qwen2" and not out["bias"]:
        out["qkv_bias"] = True  # Qwen2Attention: q/k/v_proj bias=True, o_proj bias=False
    if mt in ("qwen3", "qwen3_moe", "gemma3_text"):
        out["qk_norm"] = "head"
    if mt == "olmo2":
        out["qk_norm"], out["norm_placement"] = "full", "post"
    if mt in ("gemma2", "gemma3_text"):
        out["norm_placement"] = "sandwich"
    if mt == "gemma2":
        for key, field in (("attn_logit_softcapping", "attn_logit_softcap"),
                           ("final_logit_softcapping", "final_logit_softcap")):
            if c.get(key) is not None:
                out[field] = float(c.get(key))
    if mt == "gpt_oss":
        out["attention_sinks"] = True
    out["attention"] = _attention(c, mt, layers)
    moe = _moe(c, mt)
    if moe is not None:
        out["moe"] = moe
    return out


def _deepseek(c: _Cfg, mt: str) -> dict:
    heads = int(c.need("num_attention_heads"))
    kv = c.get("num_key_value_heads", heads)
    if int(kv) != heads:
        raise SpecError(f"{c.where}: num_key_value_heads: {kv} with multi-head latent attention (needs "
                        f"num_attention_heads {heads})")
    out: dict = {
        "arch": "decoder",
        "num_layers": int(c.need("num_hidden_layers")),
        "hidden_size": int(c.need("hidden_size")),
        "num_heads": heads,
        "ffn_hidden": int(c.need("intermediate_size")),
        "ffn_kind": _gated_kind(c.get("hidden_act", "silu"), c.where),
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", TIE_DEFAULT[mt])),
        "position": "rotary",
        "norm": "rmsnorm",
        "final_norm": True,
        "bias": bool(c.get("attention_bias", False)),
        "dropout": float(c.get("attention_dropout", 0.0)),
        "attention": {"pattern": "causal"},
        "mla": {
            "q_lora_rank": None if c.get("q_lora_rank") is None else int(c.get("q_lora_rank")),
            "kv_lora_rank": int(c.need("kv_lora_rank")),
            "qk_nope_head_dim": int(c.need("qk_nope_head_dim")),
            "qk_rope_head_dim": int(c.need("qk_rope_head_dim")),
            "v_head_dim": int(c.need("v_head_dim")),
        },
    }
    if c.get("n_routed_experts"):
        freq = int(c.get("moe_layer_freq", 1))
        if freq != 1:
            raise SpecError(f"{c.where}: moe_layer_freq: {freq} not supported (DeepSeek's layer_idx % freq == 0 "
                            f"rule; supported: 1)")
        out["moe"] = {
            "num_experts": int(c.get("n_routed_experts")),
            "top_k": int(c.need("num_experts_per_tok")),
            "shared_experts": int(c.get("n_shared_experts", 0)),
            "expert_ffn_hidden": int(c.need("moe_intermediate_size")),
            "first_dense_layers": int(c.get("first_k_dense_replace", 0)),
        }
        # group-limited routing: experts in n_group groups, each token's top_k taken from its best topk_group
        # groups. DeepSeek places one group per node (V3: 8 groups on 8 nodes, 4 per token, §2.1.2) or per device
        # (V2: at most 3 devices, which bounds the nodes too): the planner's node-limited routing
        groups, per_token = int(c.get("n_group", 1) or 1), int(c.get("topk_group", 1) or 1)
        if 1 < groups and 1 <= per_token < groups:
            out["moe"]["max_nodes_per_token"] = min(per_token, out["moe"]["top_k"])
    depth = int(c.get("num_nextn_predict_layers", 0))
    if depth:
        out["mtp_depth"] = depth
    return out


def _dbrx(c: _Cfg, mt: str) -> dict:
    attn = _Cfg(c.get("attn_config", {}), c.where + ": attn_config")
    ffn = _Cfg(c.get("ffn_config", {}), c.where + ": ffn_config")
    act = ffn.get("ffn_act_fn", {"name": "silu"})
    return {
        "arch": "decoder",
        "num_layers": int(c.need("n_layers")),
        "hidden_size": int(c.need("d_model")),
        "num_heads": int(c.need("n_heads")),
        "num_kv_heads": int(attn.get("kv_n_heads", 1)),
        "ffn_hidden": int(ffn.need("ffn_hidden_size")),
        "ffn_kind": _gated_kind(act.get("name", "silu") if isinstance(act, dict) else act, c.where),
        "vocab_size": int(c.need("vocab_size")),
        "tie_embeddings": bool(c.get("tie_word_embeddings", TIE_DEFAULT[mt])),
        "position": "rotary",
        "norm": "layernorm_nobias",
        "final_norm": True,
        "bias": False,
        "dropout": float(c.get("resid_pdrop", 0.0)),
        "attention": {"pattern": "causal"},
        "moe": {"num_experts": int(ffn.need("moe_num_experts")), "top_k": int(ffn.need("moe_top_k"))},
    }


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


_MAPPERS = {"llama": _llama_family, "deepseek": _deepseek, "dbrx": _dbrx, "gpt2": _gpt2, "bert": _bert, "t5": _t5}


def model_data_from_hf_config(cfg: dict, name: Optional[str] = None, where: str = "config.json") -> dict:
    """The raw ModelSpec mapping of a Hugging Face configuration mapping (not yet validated)."""
    outer = cfg
    if "model_type" not in cfg and isinstance(cfg.get("text_config"), dict):
        cfg = cfg["text_config"]  # multimodal wrappers keep the language model's config here
    elif str(cfg.get("model_type", "")).lower() in WRAPPERS:
        text = cfg.get("text_config")
        if not isinstance(text, dict):
            raise SpecError(f"{where}: text_config: missing (model_type {cfg['model_type']!r} keeps its language "
                            f"model there)")
        cfg = {"model_type": WRAPPERS[str(cfg["model_type"]).lower()], **text}
    mt = cfg.get("model_type")
    if mt is None:
        raise SpecError(f"{where}: model_type: missing (is this a Hugging Face config.json?)")
    family = FAMILIES.get(str(mt).lower())
    if family is None:
        raise SpecError(f"{where}: model_type: {mt!r} not supported (supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
    mt = str(mt).lower()
    try:
        data = _MAPPERS[family](_Cfg(cfg, where, FIELD_DEFAULTS.get(mt)), mt)
    except (TypeError, ValueError, AttributeError, OverflowError, ZeroDivisionError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{where}: a field has a value planner cannot read ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:120]})") from None
    cfg = outer
    arch = ", ".join(map(str, cfg.get("architectures") or [])) if isinstance(cfg.get("architectures"), list) else "-"
    arch = arch or "-"
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
