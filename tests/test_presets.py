"""Model presets reproduce the parameter counts their authors published (DESIGN.md §2, "Parameters").

Each row of ``COUNTS`` is (preset, expected total parameters) with its citation in a comment. The expected value is
the figure the authors published when the official architecture lands within 0.5% of it. Where the paper only gives a
rounded figure ("11B", "340M") that the official architecture does not reach within 0.5%, the row uses the exact
count of the released checkpoint or official config instead, says which, and the preset's ``source`` records the
discrepancy. Architecture numbers are never moved away from the official config to hit a count.
"""

from __future__ import annotations

import pytest

from planner.core.params import param_breakdown
from planner.errors import SpecError
from planner.registry import load_model, preset_data, preset_names

try:  # tests/ on sys.path (pytest's rootdir-relative import)
    from test_presets_modern import NAMES as MODERN
except ImportError:  # tests imported as a package
    from tests.test_presets_modern import NAMES as MODERN

TOLERANCE = 0.005  # 0.5%

COUNTS = [
    # --- GPT-3, Brown et al. 2020 (arXiv:2005.14165). Table 2.1 rounds; Table D.1 ("Params (M)") is finer.
    ("gpt3-125m", 125e6),  # Table 2.1: 125M
    ("gpt3-350m", 356e6),  # Table D.1: 356M (Table 2.1's "350M" is 1.6% below the architecture)
    ("gpt3-760m", 760e6),  # Table 2.1: 760M
    ("gpt3-1.3b", 1320e6),  # Table D.1: 1,320M (Table 2.1's "1.3B" is 1.2% below)
    ("gpt3-2.7b", 2650e6),  # Table D.1: 2,650M (Table 2.1's "2.7B" is 1.8% above)
    ("gpt3-6.7b", 6660e6),  # Table D.1: 6,660M (Table 2.1's "6.7B" is 0.6% above)
    ("gpt3-13b", 12850e6),  # Table D.1: 12,850M (d_model 5120; Table 2.1's "5140" is a typo, see preset source)
    ("gpt3-175b", 175.0e9),  # Table 2.1: 175.0B
    # --- BERT, Devlin et al. 2019 §3
    ("bert-base", 110e6),  # §3: 110M
    # §3 says 340M, 1.1% above what the official bert-large-uncased config holds. Checkpoint count:
    # BertModel 335,141,888 + MLM head 1,082,170 (the NSP classifier's 2,050 are not modelled).
    ("bert-large", 336_224_058),
    # --- RoBERTa, Liu et al. 2019
    ("roberta-base", 125e6),  # fairseq README model table: roberta.base 125M
    ("roberta-large", 355e6),  # §5: BERT-Large architecture, 355M
    # --- ALBERT, Lan et al. 2020 Table 1
    # Table 1 says 12M (rounded; 1.6% above the checkpoint). Checkpoint albert-base-v2: AlbertModel 11,683,584 (pooler included) + MLM
    # head 128,688 (the SOP classifier's 1,538 are not modelled).
    ("albert-base", 11_812_272),
    # Table 1 says 235M; NOT reproducible: the official albert-xxlarge-v2 architecture holds 223.2M (235M is 5.3%
    # above it; no official setting accounts for the gap).
    # Checkpoint count: AlbertModel 222,595,584 + MLM head 554,672.
    ("albert-xxlarge", 223_150_256),
    # --- T5 v1.0, Raffel et al. 2020 §3.7 (60M, 220M, 770M, "3B", "11B"), all rounded beyond 0.5%; the rows use the
    # HF checkpoints t5-small ... t5-11b (T5ForConditionalGeneration, LM head tied to the shared embedding).
    # Percentages: the published figure relative to the checkpoint.
    ("t5-small", 60_506_624),  # published 60M (-0.8%)
    ("t5-base", 222_903_552),  # published 220M (-1.3%)
    ("t5-large", 737_668_096),  # published 770M: NOT reproducible from the official config (+4.4% over it)
    ("t5-3b", 2_851_598_336),  # published "3B" (+5.2%)
    ("t5-11b", 11_307_321_344),  # published "11B" (-2.7%)
    # --- LLaMA, Touvron et al. 2023a Table 2 (6.7B, 13.0B, 32.5B, 65.2B)
    ("llama-7b", 6_738_415_616),  # Table 2 rounds to 6.7B (-0.6% vs the checkpoint); checkpoint huggyllama/llama-7b
    ("llama-13b", 13.0e9),  # Table 2: 13.0B
    ("llama-33b", 32.5e9),  # Table 2: 32.5B
    ("llama-65b", 65.2e9),  # Table 2: 65.2B
    # --- Llama 2, Touvron et al. 2023b Table 1 (7B, 13B, 70B)
    ("llama-2-7b", 6_738_415_616),  # "7B" is +3.9% vs the checkpoint; checkpoint meta-llama/Llama-2-7b-hf
    ("llama-2-13b", 13e9),  # Table 1: 13B
    ("llama-2-70b", 68_976_648_192),  # "70B" is +1.5% vs the checkpoint; checkpoint meta-llama/Llama-2-70b-hf
    # --- Llama 3 model card (Apr 2024) / Llama 3.1, Llama Team 2024 (arXiv:2407.21783) Table 3
    ("llama-3-8b", 8.0e9),  # model card: 8B (checkpoint 8,030,261,248)
    ("llama-3-70b", 70_553_706_496),  # "70B" is -0.8% vs the checkpoint; checkpoint meta-llama/Meta-Llama-3-70B
    ("llama-3.1-8b", 8.0e9),  # Table 3: 8B
    ("llama-3.1-70b", 70_553_706_496),  # "70B" is -0.8% vs the checkpoint; checkpoint meta-llama/Llama-3.1-70B
    ("llama-3.1-405b", 405e9),  # Table 3: 405B
    # --- Mistral AI
    ("mistral-7b", 7_241_732_096),  # announcement says 7.3B (+0.8% vs the checkpoint); checkpoint mistralai/Mistral-7B-v0.1
    ("mixtral-8x7b", 46.7e9),  # Mixtral announcement (Dec 2023): 46.7B total
    ("mixtral-8x22b", 141e9),  # Mixtral 8x22B announcement (Apr 2024): 141B total
    # --- long-context encoders: neither paper publishes a count; the rows are the counts of the official configs
    ("longformer-base", 148_711_257),  # allenai/longformer-base-4096, MLM head, no pooler
    ("bigbird-base", 127_520_694),  # google/bigbird-roberta-base as BigBirdForMaskedLM (no pooler / NSP)
    # --- other decoders
    ("opt-175b", 175e9),  # Zhang et al. 2022 Table 1: 175B
    ("bloom-176b", 176_247_271_424),  # BigScience bigscience/bloom model card: 176,247,271,424 (exact)
    ("gopher-280b", 280e9),  # Rae et al. 2021 Table 1: 280B
    ("chinchilla-70b", 70e9),  # Hoffmann et al. 2022 Table 4: 70B
    ("mpt-7b", 6_649_286_656),  # model card says 6.7B (+0.8% vs the checkpoint); checkpoint mosaicml/mpt-7b
    ("mpt-30b", 29.95e9),  # MPT-30B model card: 29.95B
]

#: Active parameters per token of the MoE presets (embedding and head included, as the announcements count them).
ACTIVE = [
    ("mixtral-8x7b", 12.9e9),  # Mistral AI, Mixtral announcement (Dec 2023): 12.9B active
    ("mixtral-8x22b", 39e9),  # Mistral AI, Mixtral 8x22B announcement (Apr 2024): 39B active
]


def _rel_err(got: float, want: float) -> float:
    return abs(got - want) / want


def test_table_covers_every_preset():
    """Every preset is in this table or in the 2024-25 table of test_presets_modern.py (totals and actives)."""
    assert sorted([name for name, _ in COUNTS] + MODERN) == preset_names()


@pytest.mark.parametrize("name,expected", COUNTS, ids=[n for n, _ in COUNTS])
def test_total_matches_published(name, expected):
    total = param_breakdown(load_model(name)).total
    err = _rel_err(total, expected)
    assert err <= TOLERANCE, f"{name}: computed {total:,} vs expected {expected:,.0f} ({err:.2%} off)"


@pytest.mark.parametrize("name,expected", ACTIVE, ids=[n for n, _ in ACTIVE])
def test_moe_active_matches_published(name, expected):
    bd = param_breakdown(load_model(name))
    err = _rel_err(bd.active, expected)
    assert err <= TOLERANCE, f"{name}: active {bd.active:,} vs published {expected:,.0f} ({err:.2%} off)"
    assert bd.active < bd.total


@pytest.mark.parametrize("name", preset_names())
def test_preset_loads_with_source_and_published_count(name):
    model = load_model(name)
    assert model.source and model.source.strip()
    assert model.published_params is not None and model.published_params > 0
    assert model.name and model.name != "custom"
    # a number in the YAML itself (PyYAML reads "7e+10", without a dot, as a string)
    assert isinstance(preset_data(name)["published_params"], (int, float))


@pytest.mark.parametrize("name", preset_names())
def test_breakdown_parts_sum_to_total(name):
    bd = param_breakdown(load_model(name))
    parts = bd.embedding + bd.layers_dense + bd.layers_expert + bd.final_norms + bd.head
    assert parts == bd.total
    assert all(v >= 0 for v in (bd.embedding, bd.layers_dense, bd.layers_expert, bd.final_norms, bd.head))
    assert 0 < bd.active <= bd.total
    d = bd.to_dict()
    assert d["params_total"] == bd.total
    assert d["params_non_embedding"] == bd.total - bd.embedding


@pytest.mark.parametrize("name", preset_names())
def test_preset_name_is_lowercase_dashes(name):
    assert name == name.lower() and "_" not in name and " " not in name


def test_dense_presets_have_no_expert_weights():
    for name in preset_names():
        model = load_model(name)
        bd = param_breakdown(model)
        if model.moe is None:
            assert bd.layers_expert == 0 and bd.active == bd.total, name
        else:
            assert bd.layers_expert > 0, name


def test_dropout_follows_original_configs():
    for name in preset_names():
        model = load_model(name)
        if name.startswith(("gpt3-", "bert-", "roberta-", "t5-")):
            assert model.dropout == pytest.approx(0.1), name
        if name.startswith(("llama-", "mistral-", "mixtral-", "deepseek-", "qwen", "gemma-", "gpt-oss-", "olmo-",
                            "dbrx", "phi-3-")):
            assert model.dropout == 0.0, name


def test_unknown_preset_lists_close_names():
    with pytest.raises(SpecError) as exc:
        load_model("lama-7b")
    msg = str(exc.value)
    assert "lama-7b" in msg
    assert "llama-7b" in msg
