"""Measured attention-kernel curves (hardware_profiles/kernels/): every file loads and names its source, the
derived Hopper Triton curve is what its stated derivation gives, and the time model charges a fused attention
kernel at the measured rate of its length and mask instead of a fitted fraction (issue 15, item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.core.kernels import attention_kernel_rates, rates_of
from planner.core.flops import FLASH_BWD_OVER_FWD
from planner.core.time import fused_attention_s
from planner.registry import load_hardware, load_model, read_data
from planner.specs.hardware import AttentionKernelCurve
from planner.specs.model import AttentionSpec
from planner.specs.run import RunSpec

try:
    from conftest import make_exec
except ImportError:  # pragma: no cover
    from tests.conftest import make_exec

KERNELS = Path(__file__).resolve().parent.parent / "hardware_profiles" / "kernels"
#: the profile of the GPU each generation's curves were measured on (A100 SXM4, H100 SXM5)
MEASURED_ON = {"ampere": "a100-80gb", "hopper": "h100-sxm"}
#: Dao 2023 (arXiv:2307.08691) Fig. 7b/7d: FlashAttention-2 v2.0 forward + backward on H100 80GB SXM5, head dim
#: 128, without / with causal mask, 512..16k tokens (TFLOP/s): the Ampere-path kernel "using no special instructions"
FA2_H100_FIG7 = {"fwd": [248, 320, 326, 315, 318, 318], "causal": [163, 221, 265, 294, 308, 328]}


def _curves(generation: str) -> dict[str, AttentionKernelCurve]:
    data = read_data(KERNELS / f"{generation}.yaml")
    assert data["generation"] == generation
    return {k: AttentionKernelCurve(**v) for k, v in data["attention_kernels"].items()}


@pytest.mark.parametrize("generation", sorted(MEASURED_ON))
def test_every_curve_loads_with_its_source_and_the_measured_gpu_peak(generation):
    peak_tflop_per_s = load_hardware(MEASURED_ON[generation]).accelerator.peak("bf16") / 1e12
    curves = _curves(generation)
    assert {"flash2", "triton"} <= set(curves)
    for name, c in curves.items():
        assert c.source.strip() and c.peak_tflop_per_s == pytest.approx(peak_tflop_per_s, rel=1e-3), name
        assert c.seq_tokens == [512, 1024, 2048, 4096, 8192, 16384], name
        # no kernel beats the dense peak of the GPU it ran on
        assert max(c.fwd_tflop_per_s + c.fwd_causal_tflop_per_s + c.bwd_tflop_per_s) < c.peak_tflop_per_s, name


def test_the_registry_merges_each_generations_kernels_into_its_profiles():
    assert set(load_hardware("a100-80gb").attention_kernels) == {"flash2", "triton"}
    assert set(load_hardware("h100-sxm").attention_kernels) == {"flash2", "flash3", "triton"}


def test_hopper_triton_is_the_ampere_triton_curve_times_fa2s_measured_a100_to_h100_speedup():
    """The derivation written in hardware_profiles/kernels/hopper.yaml, length by length: Triton on A100 (Dao 2023
    Fig. 4) x FlashAttention-2 v2.0 on H100 (Fig. 7) / on A100 (Fig. 4), rounded to whole TFLOP/s."""
    a, h = _curves("ampere"), _curves("hopper")["triton"]
    for key, fig7 in (("fwd_tflop_per_s", FA2_H100_FIG7["fwd"]), ("fwd_causal_tflop_per_s", FA2_H100_FIG7["causal"])):
        expect = [round(t * h100 / a100) for t, h100, a100 in
                  zip(getattr(a["triton"], key), fig7, getattr(a["flash2"], key))]
        assert getattr(h, key) == expect, key
    assert h.bwd_tflop_per_s == h.fwd_tflop_per_s  # the combined rate, split by its ratio as in the Ampere file


def _split(combined: float, rho: float) -> tuple[float, float]:
    """(forward, backward) rates of a combined forward + backward rate split by forward/backward ratio ``rho``."""
    bwd = combined * (1 / rho + FLASH_BWD_OVER_FWD) / (1 + FLASH_BWD_OVER_FWD)
    return rho * bwd, bwd


def test_kernel_rate_is_the_curve_at_the_length_log_interpolated_and_flat_outside():
    c = _curves("ampere")["flash2"]
    fwd, bwd = attention_kernel_rates(c, 4096, True, 312e12)  # combined 182, causal ratio 1.15 at 4k
    assert (float(fwd), float(bwd)) == pytest.approx(_split(182e12, 1.15))
    fwd, _ = attention_kernel_rates(c, 4096 * np.sqrt(2), False, 312e12)  # half way between 4k and 8k in log
    assert float(fwd) == pytest.approx(_split(202e12, 1.115)[0])
    assert float(attention_kernel_rates(c, 1 << 20, True, 312e12)[0]) == pytest.approx(_split(189e12, 1.06)[0])
    # a profile with another peak (a power-capped part) scales the curve by its own peak
    assert float(attention_kernel_rates(c, 4096, True, 156e12)[0]) == pytest.approx(_split(91e12, 1.15)[0])
    # a curve of per-pass rates (Hopper, Shah et al. 2024) is read as it is
    h = _curves("hopper")["flash3"]
    assert h.fwd_over_bwd_rate is None
    assert [float(x) for x in attention_kernel_rates(h, 4096, False, 989e12)] == pytest.approx([638e12, 542e12])


@pytest.mark.parametrize("kernel,code,rate,rho", [("flash2", 0, 182e12, 1.15), ("triton", 2, 80e12, 1.48)])
def test_time_model_charges_the_measured_rate_not_a_fitted_fraction(kernel, code, rate, rho):
    """A100, causal, 4,096 tokens: forward + backward of the attention core = 3.5·F/rate seconds at the kernel's
    measured combined rate (182 TFLOP/s FlashAttention-2, 80 TFLOP/s Triton), whatever ``attention_fraction``
    says; the forward alone at the forward's rate, rho times the backward's."""
    hw, model = load_hardware("a100-80gb"), load_model("llama-2-7b")
    run = RunSpec(seq_len=4096, global_batch_tokens=4096, precision="bf16")
    r = rates_of(hw, run, 2.0)
    flops = 1e12
    fwd, total = fused_attention_s(model, make_exec(flash=1, fa3=code), r, AttentionSpec(pattern="causal"), 4096,
                                   True, flops, (128, 128))
    assert float(total) == pytest.approx(flops / rate * (1 + FLASH_BWD_OVER_FWD))
    assert float(fwd) == pytest.approx(flops / _split(rate, rho)[0])
    assert float(fwd) < flops / rate  # the forward is the faster pass
    # a head dim the kernel is not compiled for runs as the next one it is: MPT-30B's 112 as 128
    fwd112, _ = fused_attention_s(model, make_exec(flash=1, fa3=code), r, AttentionSpec(pattern="causal"), 4096,
                                  True, flops, (112, 112))
    assert float(fwd112) == pytest.approx(float(fwd) * 128 / 112)


def test_fa2_forward_backward_ratios_are_the_h200_measurement():
    """hardware_profiles/kernels/ampere.yaml's FlashAttention-2 ratios, recomputed from the H200 bench file: the
    forward's rate over the backward's (fwd_bwd time minus fwd time, on 2.5 x the forward's FLOPs)."""
    bench = read_data(KERNELS.parent / "benches" / "h200-planner-bench.yaml")["attention"]
    timed = {(a["seq"], a["causal"], a["direction"]): a for a in bench if a["backend"] == "flash"}
    c = _curves("ampere")["flash2"]
    for causal, listed in ((False, c.fwd_over_bwd_rate), (True, c.fwd_over_bwd_rate_causal)):
        ratios = []
        for s in c.seq_tokens:
            f, fb = timed[(s, causal, "fwd")], timed[(s, causal, "fwd_bwd")]
            assert fb["flop"] == pytest.approx(f["flop"] * (1 + FLASH_BWD_OVER_FWD))
            ratios.append(round((f["flop"] / f["time_s"]) / ((fb["flop"] - f["flop"]) / (fb["time_s"] - f["time_s"])),
                                2))
        assert listed == ratios, causal


def test_triton_ratio_is_tritons_regression_expectation():
    for generation in ("ampere", "hopper"):
        c = _curves(generation)["triton"]
        assert c.fwd_over_bwd_rate == c.fwd_over_bwd_rate_causal == [round(0.37 / 0.25, 2)] * len(c.seq_tokens)


def test_a_split_needs_a_combined_curve_and_all_three_fields():
    base = _curves("ampere")["flash2"].model_dump()
    with pytest.raises(ValueError, match="go together"):
        AttentionKernelCurve(**{**base, "fwd_over_bwd_source": None})
    with pytest.raises(ValueError, match="combined rate"):
        AttentionKernelCurve(**{**base, "bwd_tflop_per_s": [x / 2 for x in base["bwd_tflop_per_s"]]})
    with pytest.raises(ValueError, match="ratios in 0.25..4"):
        AttentionKernelCurve(**{**base, "fwd_over_bwd_rate": [9.0] * 6})


@pytest.mark.parametrize("kernel,d,runs", [("flash2", 64, 64), ("flash2", 80, 96), ("flash2", 112, 128),
                                           ("flash2", 160, 160), ("flash3", 80, 96), ("flash3", 160, 192),
                                           ("flash3", 128, 128), ("triton", 80, 128), ("triton", 96, 128),
                                           ("triton", 64, 64), ("triton", 8, 16)])
def test_kernels_run_the_next_head_dim_they_are_compiled_for(kernel, d, runs):
    from planner.core.time import kernel_head_dim, kernel_head_dim_factor

    assert kernel_head_dim(kernel, d) == runs
    assert kernel_head_dim_factor(kernel, (d, d)) == pytest.approx(runs / d)
    # MLA (DeepSeek-V3): query/key 192, value 128, both compiled sizes
    assert kernel_head_dim_factor("flash3", (192, 128)) == 1.0


def test_the_fa2_ratio_cross_check_quotes_the_hopper_curves():
    """The Ampere FlashAttention-2 ratios' cross-check (its fwd_over_bwd_source) quotes the Hopper file's per-pass
    FlashAttention-2 curves (Shah et al. 2024): the numbers it names are those curves' forward/backward."""
    h = _curves("hopper")["flash2"]
    text = _curves("ampere")["flash2"].fwd_over_bwd_source
    for s in (512, 2048, 16384):
        i = h.seq_tokens.index(s)
        f, b = h.fwd_tflop_per_s[i], h.bwd_tflop_per_s[i]
        assert f"{f:.0f}/{b:.0f} = {f / b:.2f}" in " ".join(text.split()), s
