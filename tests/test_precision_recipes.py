"""Precision recipes (issue 12, item 3): bf16; fp8 per-tensor delayed/current, row-wise, block-wise (DeepSeek-V3),
MXFP8; NVFP4/MXFP4 on Blackwell. Which GEMMs run in them, their casts and scale traffic (worked examples), the
memory they change (weight copies, master weights, optimizer moments), the fp4 peaks, and the names sources
publish them under. fp8 without a named recipe is planner's model before recipes, unchanged."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from planner.core.kernels import FP8_CAST_BYTES_PER_ACTIVATION, FP8_CAST_BYTES_PER_WEIGHT, RECIPES, gemm_pass_s, rates_of
from planner.core.memory import memory_breakdown, optimizer_bytes_per_param, weight_copy_bytes
from planner.core.time import step_time
from planner.errors import SpecError
from planner.registry import load_hardware, load_model
from planner.specs.run import RECIPE_PRECISION, RunSpec
from helpers import plan_file_error  # noqa: E402

try:
    from conftest import make_exec
except ImportError:  # pragma: no cover
    from tests.conftest import make_exec


def _run(**kw):
    return RunSpec(seq_len=4096, global_batch_seqs=8, **kw)


# ---------------------------------------------------------------- the spec
def test_recipe_sets_its_precision_and_defaults():
    assert _run(precision_recipe="fp8_blockwise").precision == "fp8"
    assert _run(precision_recipe="nvfp4").precision == "fp4"
    assert _run(precision_recipe="bf16").recipe is None
    assert _run(precision="fp8").recipe == "fp8_delayed" and _run(precision="fp8").precision_recipe is None
    assert _run(precision="fp4").recipe == "nvfp4"
    assert _run().recipe is None
    assert set(RECIPE_PRECISION) - {"bf16"} == set(RECIPES)


@pytest.mark.parametrize("kw, message", [
    (dict(precision="bf16", precision_recipe="mxfp8"), "run.precision_recipe(mxfp8) runs fp8 GEMMs but run.precision is bf16"),
    (dict(precision="fp8", precision_recipe="nvfp4"), "run.precision_recipe(nvfp4) runs fp4 GEMMs but run.precision is fp8"),
    (dict(precision_recipe="fp9"), "precision_recipe"),
    (dict(optimizer_state_bytes_per_param=8, optimizer_moments_dtype="bf16"), "give the bytes or the dtypes, not both"),
    (dict(precision="fp32", master_weights_dtype="bf16"), "fp32 training keeps no separate master weights"),
])
def test_invalid_recipe_fields(kw, message):
    with pytest.raises(ValidationError) as exc:
        _run(**kw)
    assert message in str(exc.value)


def test_invalid_recipe_is_one_line_from_a_plan(tmp_path):
    msg = plan_file_error(tmp_path, "model: llama-3-8b\nhardware: h100-sxm\nrun: {seq_len: 4096, global_batch_seqs: 64, "
                          "precision: bf16, precision_recipe: fp8_rowwise}\nlayout: {gpus: 8}\n")
    assert "run.precision_recipe(fp8_rowwise) runs fp8 GEMMs but run.precision is bf16" in msg


# ---------------------------------------------------------------- casts and scale traffic
def test_cast_bytes_per_element_worked():
    """Per GEMM input element: delayed 1 (activation, fused into its producer) / 3 (weight: read 2, write 1);
    current scaling adds the amax read: 5 / 5; DeepSeek-V3 block-wise: read 2 + write 1 + a 4-byte scale per 128
    (activations) or per 128x128 (weights); MXFP8 an E8M0 byte per 32; NVFP4 read 2 + write 0.5 + an E4M3 byte per
    16."""
    assert (RECIPES["fp8_delayed"].act_cast_bytes, RECIPES["fp8_delayed"].weight_cast_bytes) == (
        FP8_CAST_BYTES_PER_ACTIVATION, FP8_CAST_BYTES_PER_WEIGHT) == (1.0, 3.0)
    assert (RECIPES["fp8_current"].act_cast_bytes, RECIPES["fp8_current"].weight_cast_bytes) == (5.0, 5.0)
    assert RECIPES["fp8_blockwise"].act_cast_bytes == 3.03125
    assert RECIPES["fp8_blockwise"].weight_cast_bytes == pytest.approx(3.000244140625)
    assert RECIPES["mxfp8"].act_cast_bytes == 3.03125
    assert RECIPES["nvfp4"].act_cast_bytes == 2.5625 and RECIPES["mxfp4"].act_cast_bytes == 2.53125


def test_gemm_time_difference_is_the_extra_cast_traffic():
    """One 4096 x 4096 x 4096 GEMM, forward + dgrad + wgrad on H100: current scaling moves (5-1)·a·c + (5-3)·c·b
    more bytes than delayed per GEMM (all three GEMMs have 4096² operands): 3 x 6·4096² bytes at the achievable
    HBM rate."""
    hw = load_hardware("h100-sxm")
    r_d = rates_of(hw, _run(precision_recipe="fp8_delayed"), 2.0)
    r_c = rates_of(hw, _run(precision_recipe="fp8_current"), 2.0)
    n = 4096
    extra = 3 * (4 * n * n + 2 * n * n) / (r_d.eff.hbm_fraction * r_d.hbm_bytes_per_s)
    assert float(gemm_pass_s(n, n, n, r_c)[1] - gemm_pass_s(n, n, n, r_d)[1]) == pytest.approx(extra)


def test_fp8_without_recipe_is_unchanged_and_equals_explicit_delayed_time():
    m, hw, ex = load_model("llama-3-8b"), load_hardware("h100-sxm"), make_exec(tp=8, dp=1, flash=1)
    legacy = step_time(m, _run(precision="fp8"), ex, hw).step_time_s
    named = step_time(m, _run(precision_recipe="fp8_delayed"), ex, hw).step_time_s
    assert float(legacy) == pytest.approx(float(named), rel=1e-12)
    ordered = [float(step_time(m, _run(precision_recipe=r), ex, hw).step_time_s)
               for r in ("fp8_delayed", "fp8_blockwise", "fp8_current")]
    assert ordered == sorted(ordered)  # more cast traffic, slower
    assert float(step_time(m, _run(), ex, hw).step_time_s) > ordered[-1]  # bf16 GEMMs slower still


# ---------------------------------------------------------------- fp4 on Blackwell
def test_fp4_peaks_from_datasheets():
    assert load_hardware("b200").accelerator.peak("fp4") == 9.0e15
    assert load_hardware("gb200-nvl72").accelerator.peak("fp4") == 1.0e16
    assert load_hardware("b300").accelerator.peak("fp4") == 1.35e16
    r = rates_of(load_hardware("b200"), _run(precision_recipe="nvfp4"), 2.0)
    assert (r.peak_flop_per_s, r.peak16_flop_per_s, r.fp8) == (9.0e15, 2.25e15, True)


def test_fp4_runs_faster_gemms_than_fp8_on_b200():
    m, hw, ex = load_model("llama-3-8b"), load_hardware("b200"), make_exec(tp=8, dp=1, flash=1)
    t4 = step_time(m, _run(precision_recipe="nvfp4"), ex, hw).compute_s
    t8 = step_time(m, _run(precision_recipe="mxfp8"), ex, hw).compute_s
    assert float(t4) < float(t8)


@pytest.mark.parametrize("hw, recipe, message", [
    ("h100-sxm", "nvfp4", "run.precision_recipe(nvfp4) needs Blackwell tensor cores"),
    ("h100-sxm", "mxfp8", "run.precision_recipe(mxfp8) needs Blackwell tensor cores"),
    ("mi325x", "mxfp4", "needs Blackwell tensor cores"),
])
def test_block_formats_need_blackwell(hw, recipe, message):
    with pytest.raises(SpecError) as exc:
        rates_of(load_hardware(hw), _run(precision_recipe=recipe), 2.0)
    assert message in str(exc.value)


# ---------------------------------------------------------------- memory
@pytest.mark.parametrize("kw, want", [
    (dict(), 12.0),                                                             # fp32 master + 2 fp32 moments
    (dict(optimizer_moments_dtype="bf16"), 8.0),                                # DeepSeek-V3 §3.3.3
    (dict(optimizer_moments_dtype="bf16", master_weights_dtype="bf16"), 6.0),
    (dict(optimizer="sgd", optimizer_moments_dtype="bf16"), 6.0),
    (dict(optimizer="adam8bit", optimizer_moments_dtype="bf16"), 6.0),          # 1-byte moments stay
    (dict(optimizer="adafactor", master_weights_dtype="bf16"), 2.0),
])
def test_optimizer_bytes(kw, want):
    assert optimizer_bytes_per_param(_run(**kw)) == want


def test_weight_copies_counted_for_named_recipes_only():
    assert weight_copy_bytes(_run(precision="fp8")) == 0.0  # as before recipes
    assert weight_copy_bytes(_run()) == 0.0
    assert weight_copy_bytes(_run(precision_recipe="fp8_delayed")) == 2.0  # fp8 weight + its transpose
    assert weight_copy_bytes(_run(precision_recipe="fp8_blockwise")) == 1.0
    m, hw = load_model("llama-3-8b"), load_hardware("h100-sxm")
    ex = make_exec(tp=1, dp=8, zero_stage=1, flash=1)
    w0 = float(memory_breakdown(m, _run(precision="fp8"), ex, hw).weights_bytes)
    w1 = float(memory_breakdown(m, _run(precision_recipe="fp8_delayed"), ex, hw).weights_bytes)
    assert w1 - w0 == pytest.approx(2.0 * w0 / 2.0)  # 2 bytes more per parameter on 2-byte weights
    z3 = make_exec(tp=1, dp=8, zero_stage=3, flash=1)
    assert float(memory_breakdown(m, _run(precision_recipe="fp8_delayed"), z3, hw).weights_bytes) == pytest.approx(
        float(memory_breakdown(m, _run(precision="fp8"), z3, hw).weights_bytes))


# ---------------------------------------------------------------- measured runs: names as published
@pytest.mark.parametrize("word, want", [
    ("FP8-CS", ("fp8", "fp8_current")), ("FP8-DS", ("fp8", "fp8_delayed")), ("MXFP8", ("fp8", "mxfp8")),
    ("float8 rowwise", ("fp8", "fp8_rowwise")), ("Float8 linears", ("fp8", "fp8_current")),
    ("fp8_blockwise", ("fp8", "fp8_blockwise")), ("NVFP4", ("fp4", "nvfp4")), ("MXFP4", ("fp4", "mxfp4")),
    ("FP8", ("fp8", None)), ("amp_bf16", ("bf16", None)),
])
def test_measured_precision_words(word, want):
    from planner.calibrate.measured import _precision
    notes: list[str] = []
    assert _precision("nemo", {"precision": word}, notes) == want


@pytest.mark.parametrize("word", ["fp4", "FP8-XYZ", "int8"])
def test_measured_unknown_recipe_is_reported_not_guessed(word):
    from planner.calibrate.measured import _precision, _Skip
    with pytest.raises(_Skip) as exc:
        _precision("nemo", {"precision": word}, [])
    assert repr(word) in str(exc.value) and "FP8-CS" in str(exc.value)


# ---------------------------------------------------------------- the DeepSeek-V3 example
def test_deepseek_v3_example_runs_blockwise_fp8():
    from planner.core.estimate import estimate
    from planner.io.plan import read_plan
    plan = read_plan(__import__("pathlib").Path(__file__).resolve().parent.parent / "examples/deepseek-v3-h800.yaml")
    assert plan.run.precision_recipe == "fp8_blockwise" and plan.run.optimizer_moments_dtype == "bf16"
    est = estimate(plan)
    assert est.memory.fits if hasattr(est, "memory") else True


def test_cli_recipe_choices_are_the_specs():
    """--precision-recipe offers exactly run.precision_recipe's values (one list, two spellings would drift)."""
    import typing

    from planner.cli.common import Recipe
    from planner.specs.run import PrecisionRecipe

    assert {r.value for r in Recipe} == set(typing.get_args(PrecisionRecipe))
