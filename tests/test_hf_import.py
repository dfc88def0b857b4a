"""Hugging Face config.json import (planner/io/hf_config.py, `planner models import`, `model: {hf_config: ...}`).

The configs in tests/data/hf/ are hand-written from the public configs' field values (README there). Each imported
model must count the parameters of the matching preset exactly (the presets are themselves checked against the
released checkpoints in test_presets.py) or, without a preset, the published checkpoint count:
GPT-2 124,439,808 (openai-community/gpt2), Gemma 7B 8,537,680,896 (google/gemma-7b), Qwen2-7B 7,615,616,512
(Qwen/Qwen2-7B, its q/k/v biases included).

Where ``transformers`` and ``torch`` are installed, every config is also built as the ``transformers`` module on
the meta device (no weights, no network) and the analytic total must equal ``sum(p.numel())`` exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.cli import main
from planner.core.params import param_breakdown
from planner.errors import SpecError
from planner.io.hf_config import SUPPORTED_MODEL_TYPES, load_hf_config, model_from_hf_config
from planner.registry import load_model
from planner.specs.model import ModelSpec
from helpers import run_cli  # noqa: E402

HF = Path(__file__).parent / "data" / "hf"

#: config file -> preset with the same architecture
PRESET_OF = {
    "llama-3-8b": "llama-3-8b",
    "mistral-7b": "mistral-7b",
    "mixtral-8x7b": "mixtral-8x7b",
    "bert-base-uncased": "bert-base",
    "t5-small": "t5-small",
    **{stem: stem for stem in (
        "deepseek-v3", "deepseek-v2", "deepseek-v2-lite", "qwen2-7b", "qwen2.5-7b", "qwen2.5-72b", "qwen3-8b",
        "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b", "gemma-2-9b", "gemma-2-27b", "gemma-3-27b",
        "gpt-oss-120b", "gpt-oss-20b", "olmo-2-7b", "olmo-2-13b", "dbrx", "phi-3-mini", "phi-3-medium")},
}
#: config file -> (total, active) parameters of the released checkpoint
PUBLISHED = {
    "gpt2": (124_439_808, 124_439_808),
    "gemma-7b": (8_537_680_896, 8_537_680_896),
    "qwen2-7b": (7_615_616_512, 7_615_616_512),
    "mixtral-8x7b": (46_702_792_704, 12_879_925_248),
    "llama-3-8b": (8_030_261_248, 8_030_261_248),
    "mistral-7b": (7_241_732_096, 7_241_732_096),
    "t5-small": (60_506_624, 60_506_624),
}
IGNORED = ("name", "source", "published_params")


def test_every_shipped_config_is_covered():
    assert sorted(p.stem for p in HF.glob("*.json")) == sorted(set(PRESET_OF) | set(PUBLISHED) | {"bert-base-uncased"})
    assert {json.loads(p.read_text())["model_type"] for p in HF.glob("*.json")} <= set(SUPPORTED_MODEL_TYPES)
    readme = (HF / "README.md").read_text()
    assert all(f"| {p.name} |" in readme for p in HF.glob("*.json")), "tests/data/hf/README.md lists every file"


@pytest.mark.parametrize("stem, preset", sorted(PRESET_OF.items()))
def test_import_matches_the_preset(stem, preset):
    got = model_from_hf_config(HF / f"{stem}.json")
    want = load_model(preset)
    assert param_breakdown(got).to_dict() == param_breakdown(want).to_dict()
    a = {k: v for k, v in got.model_dump().items() if k not in IGNORED}
    b = {k: v for k, v in want.model_dump().items() if k not in IGNORED}
    assert a == b


@pytest.mark.parametrize("stem, counts", sorted(PUBLISHED.items()))
def test_import_matches_published_counts(stem, counts):
    pb = param_breakdown(model_from_hf_config(HF / f"{stem}.json"))
    assert (pb.total, pb.active) == counts


def test_family_specifics():
    gemma = model_from_hf_config(HF / "gemma-7b.json")
    assert (gemma.head_size, gemma.ffn_kind, gemma.tie_embeddings) == (256, "geglu", True)
    qwen = model_from_hf_config(HF / "qwen2-7b.json")
    assert qwen.attention.pattern == "causal" and qwen.kv_heads == 4  # use_sliding_window false
    assert qwen.qkv_bias and not qwen.bias
    mistral = model_from_hf_config(HF / "mistral-7b.json")
    assert (mistral.attention.pattern, mistral.attention.window_tokens) == ("sliding_window", 4096)
    gpt2 = model_from_hf_config(HF / "gpt2.json")
    assert (gpt2.position, gpt2.max_positions, gpt2.ffn_hidden, gpt2.bias) == ("learned", 1024, 3072, True)
    t5 = model_from_hf_config(HF / "t5-small.json", name="T5 small")
    assert (t5.arch, t5.encoder_layers, t5.decoder_layers, t5.name) == ("encoder_decoder", 6, 6, "T5 small")


def test_v1_1_style_t5_and_missing_fields(tmp_path):
    cfg = json.loads((HF / "t5-small.json").read_text())
    cfg.update(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_decoder_layers=4)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = model_from_hf_config(p)
    assert (m.ffn_kind, m.tie_embeddings, m.decoder_layers) == ("geglu", False, 4)
    del cfg["d_model"]
    p.write_text(json.dumps(cfg))
    with pytest.raises(SpecError, match=r"config.json: d_model: missing"):
        load_hf_config(p)
    p.write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(SpecError, match="'mamba' not supported") as exc:
        load_hf_config(p)
    assert "deepseek_v3" in str(exc.value) and "gpt_oss" in str(exc.value)
    p.write_text("{not json")
    with pytest.raises(SpecError, match=r"config.json:1: not valid JSON"):
        load_hf_config(p)




def test_modern_family_specifics():
    v3 = model_from_hf_config(HF / "deepseek-v3.json")
    assert (v3.mla.q_lora_rank, v3.mla.kv_lora_rank, v3.moe.shared_experts, v3.moe.first_dense_layers,
            v3.mtp_depth) == (1536, 512, 1, 3, 1)
    assert model_from_hf_config(HF / "deepseek-v2-lite.json").mla.q_lora_rank is None
    g2 = model_from_hf_config(HF / "gemma-2-9b.json")  # no layer_types in the file: Gemma 2's even layers slide
    assert (g2.attention.layer_pattern, g2.attn_logit_softcap, g2.final_logit_softcap,
            g2.norm_placement) == (("local", "global"), 50.0, 30.0, "sandwich")
    g3 = model_from_hf_config(HF / "gemma-3-27b.json")  # multimodal wrapper: the text_config
    assert (g3.attention.layer_pattern, g3.attention.window_tokens, g3.vocab_size, g3.qk_norm) == (
        ("local",) * 5 + ("global",), 1024, 262208, "head")
    oss = model_from_hf_config(HF / "gpt-oss-120b.json")  # layer_types in the file
    assert (oss.attention.layer_pattern, oss.attention.window_tokens, oss.attention_sinks, oss.bias) == (
        ("local", "global"), 128, True, True)
    olmo = model_from_hf_config(HF / "olmo-2-7b.json")
    assert (olmo.qk_norm, olmo.norm_placement) == ("full", "post")
    assert model_from_hf_config(HF / "qwen3-30b-a3b.json").moe.expert_ffn_hidden == 768
    assert model_from_hf_config(HF / "dbrx.json").norm == "layernorm_nobias"


@pytest.mark.parametrize("stem, change, message", [
    ("qwen3-30b-a3b", {"mlp_only_layers": [0, 5]}, "mlp_only_layers: [0, 5] not supported"),
    ("deepseek-v3", {"moe_layer_freq": 2}, "moe_layer_freq: 2 not supported"),
    ("deepseek-v3", {"num_key_value_heads": 8}, "num_key_value_heads: 8 with multi-head latent attention"),
    ("gpt-oss-20b", {"layer_types": ["linear_attention", "full_attention"] * 12},
     "layer_types: 'linear_attention' not supported (supported: sliding_attention, full_attention)"),
    ("gpt-oss-20b", {"layer_types": ["full_attention"] * 3}, "layer_types: 3 entries for num_hidden_layers 24"),
    ("deepseek-v2", {"kv_lora_rank": None}, "kv_lora_rank: missing"),
])
def test_unsupported_values_are_one_line_errors(tmp_path, stem, change, message):
    cfg = json.loads((HF / f"{stem}.json").read_text())
    cfg.update(change)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(SpecError) as exc:
        load_hf_config(p)
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_qwen_sliding_window_layers_from_max_window_layers(tmp_path):
    """Qwen2/3: with use_sliding_window, layers from max_window_layers on slide (transformers' layer_types)."""
    cfg = json.loads((HF / "qwen2-7b.json").read_text())
    cfg.update(use_sliding_window=True, sliding_window=4096, max_window_layers=21)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = model_from_hf_config(p)
    assert m.attention.window_tokens == 4096
    assert m.attention.local_layer_mask(28) == [False] * 21 + [True] * 7


def _meta_count(cfg: dict) -> int:
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    transformers = pytest.importorskip("transformers", reason="transformers is not installed (the test extra has it)")
    if cfg.get("model_type") == "gemma3":  # the language model of the multimodal wrapper
        cfg = dict(cfg["text_config"])
    cfg = {k: v for k, v in cfg.items() if k != "quantization_config"}  # built unquantised
    if cfg["model_type"] not in transformers.CONFIG_MAPPING:
        pytest.skip(f"transformers {transformers.__version__} does not know model_type {cfg['model_type']!r}")
    config = transformers.AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        module = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in module.parameters())


DECODERS = sorted(stem for stem in PRESET_OF if stem not in ("bert-base-uncased", "t5-small")) + ["gemma-7b", "gpt2"]


@pytest.mark.parametrize("stem", DECODERS)
def test_analytic_total_equals_the_transformers_module(stem):
    """Ground truth without a download: the module transformers builds from the same config (meta device)."""
    from planner.core.params import mtp_params

    cfg = json.loads((HF / f"{stem}.json").read_text())
    want = _meta_count(cfg)
    model = model_from_hf_config(HF / f"{stem}.json")
    got = param_breakdown(model).total - mtp_params(model)[0]  # transformers does not build DeepSeek-V3's MTP
    assert got == want, f"{stem}: planner {got:,} vs transformers {want:,} ({got - want:+,})"


def test_cli_import_prints_a_model_spec(capsys):
    code, out, err = run_cli(capsys, "models", "import", HF / "mixtral-8x7b.json", "--name", "Mixtral (HF)")
    assert code == 0, err
    data = yaml.safe_load(out)
    m = ModelSpec.model_validate(data)
    assert m.name == "Mixtral (HF)" and param_breakdown(m).total == 46_702_792_704
    assert out.startswith("# generated by planner models import")


def test_cli_models_still_lists_and_shows(capsys):
    code, out, err = run_cli(capsys, "models", "llama-3-8b", "--format", "json")
    assert code == 0 and json.loads(out)["preset"] == "llama-3-8b"
    code, out, err = run_cli(capsys, "models", "--format", "json")
    assert code == 0 and len(json.loads(out)) > 10


def test_cli_import_out_and_use_in_a_plan(capsys, tmp_path):
    out_file = tmp_path / "gemma.yaml"
    code, out, err = run_cli(capsys, "models", "import", HF / "gemma-7b.json", "--out", out_file)
    assert code == 0 and out == "" and out_file.exists()
    code, out, err = run_cli(capsys, "models", "import", HF / "gemma-7b.json", "--out", out_file)
    assert code == 0  # its own output may be replaced
    foreign = tmp_path / "notes.yaml"
    foreign.write_text("keep: me\n")
    code, out, err = run_cli(capsys, "models", "import", HF / "gemma-7b.json", "--out", foreign)
    assert code == 2 and foreign.read_text() == "keep: me\n"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""\
model: gemma.yaml
hardware: h100-sxm
run: {{seq_len: 4096, global_batch_seqs: 64}}
layout: {{gpus: 8, fsdp: full}}
scenarios:
  from-file: {{}}
  from-config: {{model: {{hf_config: {HF / 'gemma-7b.json'}}}}}
""")
    code, out, err = run_cli(capsys, "plan", plan, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["params_total"] for r in rows] == [8_537_680_896, 8_537_680_896]


def test_cli_import_errors_are_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "models", "import", tmp_path / "missing.json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "no such file" in err
