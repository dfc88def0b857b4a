"""planner.calibrate.measured: published runs -> specs + tokens/s per GPU in each source's own FLOP convention."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import yaml

from planner.core.params import param_breakdown
from planner.errors import SpecError
from planner.calibrate.conventions import (
    SOURCE_KEYS,
    SOURCE_PEAK_FLOP_PER_S,
    korthikanti_model_flops_per_token,
    llm_foundry_model_flops_per_token,
    megatron_eq3_flops_per_token,
    nemo_model_flops_per_token,
    torchtitan_model_flops_per_token,
)
from planner.calibrate.measured import DEFAULT_PATH, GPU_PROFILES, MeasuredRun, SkippedRun, load_runs, summary
from planner.specs import LayoutSpec, ModelSpec, RunSpec

N_ENTRIES = 257
N_SHARED = 243  #: entries of the workspace's shared copy; the package copy adds memory-only runs after them


@pytest.fixture(scope="module")
def data():
    return yaml.safe_load(DEFAULT_PATH.read_text())


@pytest.fixture(scope="module")
def result():
    return load_runs()


@pytest.fixture(scope="module")
def by_id(result):
    loaded, _ = result
    return {r.id: r for r in loaded}


# ---- every entry is accounted for -------------------------------------------------------------------------------

def test_every_entry_loaded_or_skipped_with_a_reason(data, result):
    loaded, skipped = result
    assert data["count"] == len(data["runs"]) == N_ENTRIES
    assert len(loaded) + len(skipped) == N_ENTRIES
    file_ids = [e["id"] for e in data["runs"]]
    assert sorted(file_ids) == sorted([r.id for r in loaded] + [s.id for s in skipped])
    for s in skipped:
        assert isinstance(s, SkippedRun) and s.reason.strip()


def test_counts_per_source(result):
    loaded, skipped = result
    assert Counter(r.source_key for r in loaded) == {
        "llm-foundry": 186, "megatron-ptdp": 22, "megatron-korthikanti": 9, "nemo": 12, "torchtitan": 22,
    }
    # The only entries that cannot be represented: NeMo LoRA (frozen base weights) and packed SFT (attention over
    # short packed documents, which the specs cannot state).
    assert Counter(s.source_key for s in skipped) == {"nemo": 6}
    assert sorted(s.id for s in skipped) == sorted(
        f"nemo2407_finetune_LLAMA2-{m}_{t}" for m in ("7B", "13B", "70B") for t in ("SFT", "LoRA")
    )
    reasons = {s.id: s.reason for s in skipped}
    assert "LoRA" in reasons["nemo2407_finetune_LLAMA2-7B_LoRA"]
    assert "packed" in reasons["nemo2407_finetune_LLAMA2-7B_SFT"]


def test_every_spec_is_valid_and_consistent(result):
    loaded, _ = result
    for r in loaded:
        assert isinstance(r, MeasuredRun) and r.source_key in SOURCE_KEYS
        # The specs' own validators accept a round trip.
        ModelSpec.model_validate(r.model.model_dump())
        RunSpec.model_validate(r.run.model_dump())
        LayoutSpec.model_validate(r.layout.model_dump())
        lay = r.layout
        assert lay.gpus == lay.dp * lay.tp * lay.pp * lay.cp == r.raw["hardware"]["count"], r.id
        assert r.hardware in set(GPU_PROFILES.values())
        assert r.run.seq_len == r.raw["model"]["seq_len"]
        if r.measured_tokens_per_s_per_gpu is None:  # a memory-only entry (its throughput kept under extra)
            assert r.measured_memory_bytes and r.measured_memory_bytes > 0, r.id
            assert r.flop_convention and r.assumptions
            continue
        assert r.measured_tokens_per_s_per_gpu and r.measured_tokens_per_s_per_gpu > 0, r.id
        assert r.conversion and r.flop_convention and r.assumptions
        if r.measured_step_time_s is not None and r.run.batch_seqs is not None:
            tokens = r.run.batch_seqs * r.run.seq_len
            assert tokens / r.measured_step_time_s / lay.num_gpus == pytest.approx(
                r.measured_tokens_per_s_per_gpu, rel=1e-9)


def test_cross_checks_agree_within_tolerance(result):
    """Where a source gives redundant numbers, the source formulas and peak bases reproduce them within 1.5%."""
    loaded, _ = result
    n = 0
    for r in loaded:
        for c in r.cross_checks:
            n += 1
            pct = float(c.rsplit("(", 1)[1].split("%")[0])
            assert abs(pct) < 1.5, (r.id, c)
    assert n > 500


# ---- conversions checked by hand from the papers ----------------------------------------------------------------

def test_narayanan_table1_76b_row_by_hand(by_id):
    """Narayanan et al. 2021 Table 1: GPT 76.1B, 1024 A100s, 140 TFLOP/s per GPU, batch 1792, tp 8, pp 4."""
    r = by_id["ptdp_t1_76.1B"]
    B, s, l, h, V = 1792, 2048, 60, 10240, 51200
    F = 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))  # Eq. 3, FLOPs per iteration
    by_hand = 140e12 / (F / (B * s))  # tokens/s per GPU
    assert by_hand == pytest.approx(223.19, abs=0.01)
    assert r.measured_tokens_per_s_per_gpu == pytest.approx(by_hand, rel=1e-12)
    assert (r.layout.tp, r.layout.pp, r.layout.dp, r.layout.gpus) == (8, 4, 32, 1024)
    assert r.layout.recompute == "full" and r.layout.flash_attention is False
    assert r.measured_hfu == 0.45 and r.measured_mfu is None
    assert r.model.ffn_hidden == 4 * h and r.model.position == "learned"
    assert any("micro_batch" in a for a in r.assumptions) and r.run.micro_batch == 1
    assert any("ffn_hidden" in a for a in r.assumptions)


def test_narayanan_table2_matches_the_papers_own_training_time(by_id):
    """Table 2 gives the projected days for 300B tokens; our tokens/s must imply them (the paper used its Eq. 4
    approximation 8·T·P/(n·X), which is within ~1% of Eq. 3 for these shapes)."""
    for run_id, days in (("ptdp_t2_PTD-P_174.6B_384gpu", 84), ("ptdp_t2_PTD-P_529.6B_560gpu", 156),
                         ("ptdp_t2_ZeRO-3_174.6B_384gpu", None)):
        r = by_id[run_id]
        days = days if days is not None else r.raw["extra"]["training_days_300B_tokens_projected"]
        ours = 300e9 / (r.measured_tokens_per_s_per_gpu * r.gpus) / 86400
        assert ours == pytest.approx(days, rel=0.02), run_id


def test_narayanan_table2_architecture_filled_and_checked(by_id):
    r = by_id["ptdp_t2_PTD-P_174.6B_384gpu"]
    assert (r.model.num_layers, r.model.hidden_size, r.model.num_heads) == (96, 12288, 96)
    assert (r.layout.tp, r.layout.pp, r.layout.dp) == (8, 12, 4)
    assert any("model_parallel_size" in a for a in r.assumptions)
    assert any("filled-in architecture checked" in a for a in r.assumptions)
    z = by_id["ptdp_t2_ZeRO-3_529.6B_640gpu"]
    assert (z.layout.dp, z.layout.fsdp, z.layout.effective_zero_stage, z.run.micro_batch) == (640, "full", 3, 4)


def test_korthikanti_step_time_and_mfu_agree(by_id):
    """Korthikanti et al. 2022 Table 5, 175B with seq-par + selective: 64 GPUs, 64 x 2048 tokens in 13.75 s."""
    r = by_id["korthikanti_175B_seqpar_selective"]
    by_hand = 64 * 2048 / 13.75 / 64
    assert r.measured_tokens_per_s_per_gpu == pytest.approx(by_hand, rel=1e-12)
    assert r.measured_step_time_s == 13.75
    l, h, s, V = 96, 12288, 2048, 51200
    model_flops_per_token = 72 * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h))
    assert 0.514 * 312e12 / model_flops_per_token == pytest.approx(by_hand, rel=0.005)
    assert (r.layout.vpp, r.layout.sequence_parallel, r.layout.recompute) == (3, True, "selective")


def test_mfu_only_row_uses_the_source_formula(by_id):
    """The 530B-on-2240-GPU row has only an MFU: tokens/s = MFU x 312e12 / Korthikanti model FLOPs per token."""
    r = by_id["korthikanti_530B_dp8_2240gpu"]
    expected = 0.542 * 312e12 / korthikanti_model_flops_per_token(105, 20480, 2048, 51200)
    assert r.measured_tokens_per_s_per_gpu == pytest.approx(expected, rel=1e-12)
    assert r.run.batch_seqs is None and r.measured_step_time_s is None
    assert r.conversion.startswith("mfu")


def test_llm_foundry_rows_keep_their_tokens_per_s(result):
    loaded, _ = result
    rows = [r for r in loaded if r.source_key == "llm-foundry"]
    assert len(rows) == 186
    for r in rows:
        assert r.measured_tokens_per_s_per_gpu == r.raw["measured"]["tokens_per_s_per_gpu"]
        assert r.conversion.startswith("tokens_per_s_per_gpu as published")
        # and its MFU, in its own convention and peak basis, says the same thing
        peak = SOURCE_PEAK_FLOP_PER_S[("llm-foundry", r.hardware, r.run.precision)]
        fpt = llm_foundry_model_flops_per_token(r.raw["model"]["params"], r.model.num_layers, r.model.hidden_size,
                                                r.run.seq_len)
        assert r.raw["measured"]["mfu"] * peak / fpt == pytest.approx(r.measured_tokens_per_s_per_gpu, rel=0.01)
        assert r.layout.flash_attention is True
        assert r.run.precision == ("fp8" if "fp8" in r.raw["extra"]["precision"] else "bf16")


def test_mpt_benchmark_shape_reproduces_logged_params_exactly(result):
    """Learned positions + biases (not ALiBi) is what the benchmark yamls ran: NumParams matches to the parameter."""
    loaded, _ = result
    for r in loaded:
        if r.source_key == "llm-foundry":
            assert param_breakdown(r.model).total == r.raw["model"]["params"], r.id
            assert r.model.position == "learned" and r.model.max_positions == r.run.seq_len


def test_torchtitan_mfu_formula_reproduces_wps(result):
    loaded, _ = result
    rows = [r for r in loaded if r.source_key == "torchtitan" and r.measured_tokens_per_s_per_gpu is not None]
    assert len(rows) == 8
    for r in rows:
        m = r.model
        fpt = torchtitan_model_flops_per_token(param_breakdown(m).total, m.num_layers, m.num_heads, m.head_size,
                                               r.run.seq_len)
        assert r.raw["measured"]["mfu"] * 312e12 / fpt == pytest.approx(r.measured_tokens_per_s_per_gpu, rel=0.005)
        assert r.layout.fsdp == "full" and r.model.ffn_kind == "swiglu"


def test_nemo_tflops_and_tokens_agree_under_nemo_formula(result):
    loaded, _ = result
    rows = [r for r in loaded if r.source_key == "nemo"]
    assert len(rows) == 12
    for r in rows:
        implied = r.raw["measured"]["tflops_per_gpu"] * 1e12 / r.raw["measured"]["tokens_per_s_per_gpu"]
        assert nemo_model_flops_per_token(r.model, r.run.seq_len) == pytest.approx(implied, rel=0.01), r.id
        assert r.run.precision == "fp8" and r.hardware == "h100-sxm"


def test_formulas_relate_as_the_papers_say():
    """Eq. 3 is the model count plus one more forward pass of the layers (the logits are not recomputed)."""
    l, h, s, V = 96, 12288, 2048, 51200
    eq3, model = megatron_eq3_flops_per_token(l, h, s, V), korthikanti_model_flops_per_token(l, h, s, V)
    logits = 6 * h * V
    assert (eq3 - logits) == pytest.approx((model - logits) * 4 / 3, rel=1e-12)
    gpt3 = ModelSpec(num_layers=l, hidden_size=h, num_heads=96, ffn_hidden=4 * h, vocab_size=V)
    assert nemo_model_flops_per_token(gpt3, s) == pytest.approx(model, rel=1e-12)


def test_assumptions_follow_the_sources(by_id):
    assert by_id["ptdp_t1_1.7B"].run.precision == "fp16"
    nemo = by_id["nemo2407_pretrain_LLAMA3-70B_64gpu"]
    assert (nemo.layout.cp, nemo.layout.vpp, nemo.layout.zero_stage, nemo.layout.sequence_parallel) == (2, 5, 1, True)
    assert nemo.model.ffn_kind == "swiglu" and nemo.model.num_kv_heads == 8 and not nemo.model.tie_embeddings
    assert any("recompute not given" in a for a in nemo.assumptions)
    nemotron = by_id["nemo2407_pretrain_Nemotron-340B_128gpu"]
    assert nemotron.model.ffn_kind == "relu" and nemotron.model.num_kv_heads == 8
    titan = by_id["torchtitan_a100_Llama_2_70B_full_lbs2"]
    assert titan.model.num_kv_heads == 8 and titan.layout.recompute == "full"


def test_fill_architectures_off_skips_the_entries_that_need_it(result):
    loaded, skipped = load_runs(fill_architectures=False)
    assert len(loaded) + len(skipped) == N_ENTRIES
    filled = {r.id for r in result[0] if any("filled from" in a or "planner preset" in a for a in r.assumptions)}
    assert len(filled) == 12 + 5 + 10  # Narayanan Table 2, torchtitan Llama 2, NeMo rows without dims
    reasons = {s.id: s.reason for s in skipped}
    assert filled <= set(reasons)
    assert all("KNOWN_ARCHITECTURES" in reasons[i] or "planner preset" in reasons[i] for i in filled)


def test_summary_lists_loaded_and_skipped(result):
    text = summary(*result)
    assert f"{N_ENTRIES} entries: 251 loaded, 6 skipped" in text
    assert "llm-foundry" in text and "nemo2407_finetune_LLAMA2-7B_LoRA" in text


def test_package_copy_is_the_default():
    assert DEFAULT_PATH.name == "measured_runs.yaml" and DEFAULT_PATH.parent.name == "data"
    assert (DEFAULT_PATH.parent / "whole_runs.yaml").exists()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "measured_runs.yaml"
    if shared.exists():  # the workspace's shared copy, when there is one: every entry of it, unchanged and in order,
        # then the runs added here (public measured memory: issue 15 item 6)
        theirs = yaml.safe_load(shared.read_text())["runs"]
        ours = yaml.safe_load(DEFAULT_PATH.read_text())["runs"]
        assert len(theirs) == N_SHARED and ours[:N_SHARED] == theirs


# ---- custom files of the same schema ----------------------------------------------------------------------------

def _write(tmp_path, runs, count=True):
    doc = {"runs": runs}
    if count:
        doc["count"] = len(runs)
    p = tmp_path / "runs.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _entry(data, run_id="ptdp_t1_76.1B"):
    return copy.deepcopy(next(e for e in data["runs"] if e["id"] == run_id))


def test_custom_file_via_path(tmp_path, data, by_id):
    e = _entry(data)
    e["id"] = "my_run"
    h200 = _entry(data, "foundry_h100_80gb_amp_bf16_70b_seq2048_512gpu_largescale")
    h200["id"], h200["hardware"]["gpu"] = "my_h200_run", "H200-SXM-141GB"
    loaded, skipped = load_runs(_write(tmp_path, [e, h200], count=False))
    assert not skipped and [r.id for r in loaded] == ["my_run", "my_h200_run"]
    assert loaded[0].measured_tokens_per_s_per_gpu == by_id["ptdp_t1_76.1B"].measured_tokens_per_s_per_gpu
    assert loaded[1].hardware == "h200"
    loaded, _ = load_runs(str(_write(tmp_path, [e])))  # str path, with count
    assert loaded[0].id == "my_run"


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda e: e["hardware"].__setitem__("count", "many"), "hardware.count"),
        (lambda e: e["hardware"].pop("count"), "hardware.count"),
        (lambda e: e["model"].__setitem__("layers", -3), "model.layers"),
        (lambda e: e["model"].__setitem__("hidden", 10241), "model"),  # not divisible by heads: the spec says so
        (lambda e: e["hardware"].__setitem__("gpu", "TPU-v5p"), "hardware.gpu"),
        (lambda e: e["hardware"].__setitem__("gpu", "MI250X-128GB"), "hardware.gpu"),
        (lambda e: e["parallelism"].__setitem__("dp", 31), "parallelism"),
        (lambda e: e["parallelism"].__setitem__("recompute", "sometimes"), "parallelism.recompute"),
        (lambda e: e.pop("measured"), "measured"),
        (lambda e: e["measured"].update(tflops_per_gpu=None, hfu=None), "measured"),
        (lambda e: e["batch"].__setitem__("global_batch_tokens", 12345), "batch"),
        (lambda e: e["model"].__setitem__("moe", {"num_experts": 8}), "model.moe"),
    ],
)
def test_malformed_entry_is_skipped_naming_the_field(tmp_path, data, edit, field):
    good, bad = _entry(data), _entry(data)
    bad["id"] = "bad_one"
    edit(bad)
    loaded, skipped = load_runs(_write(tmp_path, [good, bad]))
    assert [r.id for r in loaded] == ["ptdp_t1_76.1B"]
    assert len(skipped) == 1 and skipped[0].id == "bad_one" and skipped[0].source_key == "megatron-ptdp"
    assert field in skipped[0].reason, skipped[0].reason


def test_unknown_source_loads_duplicate_id_and_non_mapping_are_skipped(tmp_path, data):
    good = _entry(data)
    alien = _entry(data)
    alien["id"], alien["source"] = "alien", "Some blog post"
    loaded, skipped = load_runs(_write(tmp_path, [good, good, alien, "not an entry", {"source": "x"}]))
    assert [(r.id, r.source_key) for r in loaded] == [("ptdp_t1_76.1B", "megatron-ptdp"), ("alien", "other")]
    reasons = [(s.id, s.source_key, s.reason) for s in skipped]
    assert reasons[0][0] == "ptdp_t1_76.1B" and "duplicate" in reasons[0][2]
    assert "expected a mapping" in reasons[1][2] and "id: missing" in reasons[2][2]


def test_explicit_source_key_overrides_the_text(tmp_path, data):
    e = _entry(data)
    e["source"], e["source_key"] = "my own cluster, same method as Narayanan", "megatron-ptdp"
    loaded, skipped = load_runs(_write(tmp_path, [e]))
    assert not skipped and loaded[0].source_key == "megatron-ptdp"


def test_unusable_file_is_a_spec_error(tmp_path, data):
    with pytest.raises(SpecError, match="count says 5"):
        p = tmp_path / "c.yaml"
        p.write_text(yaml.safe_dump({"count": 5, "runs": [_entry(data)]}))
        load_runs(p)
    with pytest.raises(SpecError, match="runs"):
        p = tmp_path / "n.yaml"
        p.write_text(yaml.safe_dump({"entries": []}))
        load_runs(p)
    with pytest.raises(SpecError, match="no such file"):
        load_runs(tmp_path / "missing.yaml")


def test_unknown_source_is_loaded_with_stated_assumptions(tmp_path):
    """A run from a source this loader does not know is still modelled: tokens/s as given, TFLOP/s read as PaLM
    model FLOPs, modern defaults; each assumption is recorded, nothing is silently dropped."""
    import copy

    import yaml

    from planner.calibrate.conventions import OTHER_SOURCE

    data = yaml.safe_load((Path(__file__).parent.parent / "planner" / "data" / "measured_runs.yaml").read_text())
    base = next(r for r in data["runs"] if r["id"].startswith("foundry_a100_80gb"))
    given = copy.deepcopy(base)
    given["id"], given["source"] = "new_tokens", "Some 2026 benchmark report, Table 9"
    flops_only = copy.deepcopy(given)
    flops_only["id"] = "new_tflops"
    flops_only["measured"] = {**flops_only["measured"], "tokens_per_s_per_gpu": None, "mfu": None, "hfu": None}
    data["runs"], data["count"] = [given, flops_only], 2
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded, skipped = load_runs(path)
    assert not skipped and {r.source_key for r in loaded} == {OTHER_SOURCE}
    by_id = {r.id: r for r in loaded}
    assert by_id["new_tokens"].measured_tokens_per_s_per_gpu == base["measured"]["tokens_per_s_per_gpu"]
    assert "PaLM" in by_id["new_tflops"].conversion
    assert any("not one this loader knows" in a for a in by_id["new_tokens"].assumptions)


@pytest.mark.parametrize("moe", [{"num_experts": 8, "top_k": 2}, {"num_local_experts": 8, "num_experts_per_tok": 2},
                                 "8 experts, top-2"])
def test_moe_entries_load(tmp_path, data, moe):
    """A mixture-of-experts entry (the schema leaves `model.moe` open) becomes a MoE model with its ep degree."""
    e = _entry(data)
    e["model"]["moe"] = moe
    e["parallelism"]["ep"] = 2
    loaded, skipped = load_runs(_write(tmp_path, [e]))
    assert not skipped, skipped
    r = loaded[0]
    assert r.model.moe.num_experts == 8 and r.model.moe.top_k == 2 and r.layout.ep == 2


def test_unreadable_moe_is_skipped_naming_the_field(tmp_path, data):
    e = _entry(data)
    e["model"]["moe"] = {"routing": "fancy"}
    loaded, skipped = load_runs(_write(tmp_path, [e]))
    assert not loaded and skipped[0].reason.startswith("model.moe")


@pytest.mark.parametrize("name,moe,preset", [("LLAMA3-70B", None, "llama-3-70b"), ("Mixtral-8x7B", True, "mixtral-8x7b"),
                                             ("Llama 3.1 405B", None, "llama-3.1-405b")])
def test_named_model_without_dimensions_uses_the_preset(tmp_path, data, name, moe, preset):
    """An entry that only names its model takes the planner preset of that name (and its experts)."""
    from planner.registry import load_model

    e = _entry(data)
    e["model"] = {"name": name, "params": None, "layers": None, "hidden": None, "heads": None, "kv_heads": None,
                  "ffn_hidden": None, "vocab": None, "seq_len": 2048, "moe": moe, "glu": None}
    e["parallelism"].update({"tp": 8, "pp": 1, "dp": None, "ep": 2 if moe else None})
    loaded, skipped = load_runs(_write(tmp_path, [e]))
    assert not skipped, skipped
    # the preset's architecture; the count cross-checked is the entry's (none here), not the preset's rounded one
    assert loaded[0].model == load_model(preset).replace(published_params=None)
    assert any(f"planner preset {preset}" in a for a in loaded[0].assumptions)


def test_named_model_disagreeing_with_its_preset_is_skipped(tmp_path, data):
    e = _entry(data)
    e["model"] = {"name": "LLAMA3-70B", "layers": None, "hidden": 4096, "heads": None, "vocab": None,
                  "seq_len": 2048}
    loaded, skipped = load_runs(_write(tmp_path, [e]))
    assert not loaded and "disagrees with the planner preset" in skipped[0].reason


# ---- published configurations as published (issue 15 item 9) ----------------------------------------------------

def _titan(data, **parallelism):
    e = _entry(data, "torchtitan_a100_Llama_3_8B_selective_op_lbs1")
    e["id"] = "as_published"
    e["parallelism"].update(parallelism)
    return e


@pytest.mark.parametrize("sharding, zero, fsdp, words", [
    ("zero1", 1, "none", "distributed optimizer"),
    ("hybrid", 3, "hybrid", "HYBRID_SHARD"),
    ("zero2", 2, "none", "zero_stage=2"),
    ("zero3", 3, "full", None),
])
def test_sharding_stages_as_published(tmp_path, data, sharding, zero, fsdp, words):
    """ZeRO-1 / Megatron's distributed optimizer and FSDP hybrid sharding are stages of their own."""
    e = _titan(data, sharding=sharding, zero_fsdp_as_published=None)
    (r,), skipped = load_runs(_write(tmp_path, [e]))
    assert not skipped
    assert r.layout.zero_stage == zero and r.layout.fsdp == fsdp
    if words:
        assert any(words in a for a in r.assumptions)


def test_unknown_sharding_is_skipped_naming_the_field(tmp_path, data):
    loaded, (s,) = load_runs(_write(tmp_path, [_titan(data, sharding="zero4")]))
    assert not loaded and "parallelism.sharding" in s.reason and "zero1" in s.reason and "hybrid" in s.reason


def test_blank_recompute_and_sequence_parallel_are_the_frameworks_default(tmp_path, data):
    """Blank is not "off": torchtitan's default is selective (op) recomputation, and its TP plan always shards
    the norms with SequenceParallel; both are written down as assumptions."""
    e = _titan(data, recompute=None, recompute_as_published=None, sequence_parallel=None, tp=8, dp=8)
    (r,), _ = load_runs(_write(tmp_path, [e]))
    assert r.layout.recompute == "full" and r.layout.recompute_fraction == 0.5  # selective op, as represented
    assert r.layout.sequence_parallel is True
    assert any("recompute not given" in a and "selective_ac_option 'op'" in a for a in r.assumptions)
    assert any("sequence_parallel not given: true" in a and "torchtitan" in a for a in r.assumptions)
    # an entry that states them is taken as stated
    e = _titan(data, recompute="none", recompute_as_published=None, sequence_parallel=False, tp=8, dp=8)
    (r,), _ = load_runs(_write(tmp_path, [e]))
    assert r.layout.recompute == "none" and r.layout.sequence_parallel is False


def test_blank_defaults_of_other_sources_are_noted(tmp_path, data):
    e = _entry(data)  # Narayanan Table 1: sequence_parallel blank, predates it
    e["id"] = "ptdp_blank"
    e["parallelism"]["sequence_parallel"] = None
    (r,), _ = load_runs(_write(tmp_path, [e]))
    assert r.layout.sequence_parallel is False
    assert any("sequence parallelism came with Korthikanti" in a for a in r.assumptions)


def test_cluster_as_published(tmp_path, data):
    """hardware.cluster names the node and fabric; the plan puts the GPU profile inside it."""
    from planner.calibrate.measured import hardware_of
    from planner.calibrate.validate import plan_of
    from planner.registry import cluster_data, load_hardware

    e = _titan(data)
    e["hardware"]["cluster"] = "aws-p4d"
    e["hardware"]["gpu"] = "A100-SXM4-40GB"
    (r,), skipped = load_runs(_write(tmp_path, [e]))
    assert not skipped and r.cluster == "aws-p4d" and r.hardware == "a100-40gb"
    hw = hardware_of(r)
    fabric = cluster_data("aws-p4d")["network"]["inter_node_bandwidth_bytes_per_s"]["value"]
    assert hw.cluster == "aws-p4d" and hw.network.inter_node_bandwidth_bytes_per_s.value == fabric
    assert hw.accelerator == load_hardware("a100-40gb").accelerator
    assert plan_of(r).hardware == hw
    assert any("hardware.cluster aws-p4d" in a for a in r.assumptions)
    e["hardware"]["cluster"] = "my-garage"
    loaded, (s,) = load_runs(_write(tmp_path, [e]))
    assert not loaded and "hardware.cluster" in s.reason and "aws-p4d" in s.reason


def test_runs_without_a_cluster_keep_their_profile(result):
    from planner.calibrate.measured import hardware_of
    from planner.registry import load_hardware

    r = result[0][0]
    assert r.cluster is None and hardware_of(r) == load_hardware(r.hardware)


# ---- memory as measured: units and kinds (issue 15 item 6) --------------------------------------------------------

def _with_memory(data, **measured):
    e = _titan(data)
    e["measured"].update({"memory_gb": None, **measured})
    return e


@pytest.mark.parametrize("fields, nbytes, kind", [
    ({"memory_gb": 60.0}, 60e9, "device"),
    ({"memory": 60.0, "memory_unit": "GiB", "memory_kind": "reserved"}, 60 * 2.0 ** 30, "reserved"),
    ({"memory": 61440, "memory_unit": "MiB", "memory_kind": "device"}, 61440 * 2.0 ** 20, "device"),
    ({"memory": 60.0, "memory_unit": "GB", "memory_kind": "allocated"}, 60e9, "allocated"),
])
def test_memory_units_and_kinds(tmp_path, data, fields, nbytes, kind):
    """GB (1e9) and GiB (2^30) are carried in the data; what was read (allocated, reserved, device) too."""
    (r,), _ = load_runs(_write(tmp_path, [_with_memory(data, **fields)]))
    assert r.measured_memory_bytes == pytest.approx(nbytes, rel=1e-12) and r.measured_memory_kind == kind
    if "memory_kind" not in fields:
        assert any("memory_kind not given: device" in a for a in r.assumptions)


@pytest.mark.parametrize("fields, field", [
    ({"memory": 60.0}, "measured.memory_unit"),
    ({"memory": 60.0, "memory_unit": "gigs"}, "measured.memory_unit"),
    ({"memory": 60.0, "memory_gb": 60.0, "memory_unit": "GiB"}, "measured.memory_gb"),
    ({"memory_gb": 60.0, "memory_kind": "peak"}, "measured.memory_kind"),
])
def test_bad_memory_fields_are_skipped_naming_the_field(tmp_path, data, fields, field):
    e = _with_memory(data, **fields)
    loaded, (s,) = load_runs(_write(tmp_path, [e]))
    assert not loaded and field in s.reason


def test_memory_only_entries(result):
    """The public memory runs carry no throughput under measured (so the calibrated time model does not see them);
    torchtitan's carry their memory in GiB as torchtitan reports it, reserved, and the loss as torchtitan computed
    it; the others what their source printed."""
    from planner.calibrate.measured import MEMORY_ONLY_PATH

    extra, skipped = load_runs(MEMORY_ONLY_PATH)
    assert not skipped and len(extra) == 8
    titan = [r for r in extra if r.id.startswith("torchtitan_h")]
    assert len(titan) == 6 and all(r.model.total_layers == 126 and r.layout.pp == 8 for r in titan)
    # the ColossalAI-Pytorch-lightning GPT2-XL rows: torch.cuda.max_memory_allocated in MiB, eager attention as
    # Hugging Face GPT-2 computed it, DeepSpeed named for its ZeRO-3 row
    other = {r.id: r for r in extra if r.id.startswith("colossalai_")}
    assert len(other) == 2
    for r in other.values():
        assert r.measured_tokens_per_s_per_gpu is None and r.measured_memory_kind == "allocated"
        assert r.measured_memory_bytes == pytest.approx(r.raw["measured"]["memory"] * 2.0 ** 20, rel=1e-12)
        assert not r.layout.flash_attention and r.layout.recompute == "full"
    assert other["colossalai_lightning_a100_40gb_gpt2xl_deepspeed_zero3"].layout.framework == "deepspeed"
    assert other["colossalai_lightning_a100_40gb_gpt2xl_ddp_amp"].loss == "unfused"
    assert other["colossalai_lightning_a100_40gb_gpt2xl_ddp_amp"].layout.framework == "ddp"
    rows = [r for r in result[0] if r.id.startswith("torchtitan_h")] + titan
    assert len(rows) == 20
    for r in rows:
        assert r.measured_tokens_per_s_per_gpu is None and r.raw["extra"]["tps_per_gpu_as_published"] > 0
        assert r.raw["measured"]["memory_unit"] == "GiB" and r.measured_memory_kind == "reserved"
        assert r.measured_memory_bytes == pytest.approx(r.raw["measured"]["memory"] * 2.0 ** 30, rel=1e-12)
        assert r.loss == ("inplace" if r.hardware == "h200" else "unfused")
    by = {r.id: r for r in rows}
    assert by["torchtitan_h100_mem_70b_2d"].layout.sequence_parallel  # torchtitan's TP plan: SP by default
    assert by["torchtitan_h100_mem_405b_pp8_interleaved"].layout.vpp == 2
    assert by["torchtitan_h100_mem_405b_pp8_1f1b"].layout.fsdp == "full"
    assert by["torchtitan_h100_mem_8b_fsdp1_cp8_seq262144"].layout.cp == 8
