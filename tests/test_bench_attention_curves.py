"""`planner bench` feeds the attention curves the time model reads (issue 15 item 1): `planner calibrate` turns the
BENCH file's SDPA rows into per-length kernel curves under the profile's ``attention_kernels:``, which win over the
generation's published curves, so a calibrated profile is costed at its own measured attention rates."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.calibrate.bench import Bench, attention_flop, load_bench
from planner.calibrate.curves import attention_curves, calibrate, fit_curves
from planner.core.kernels import attention_kernel_rates, rates_of
from planner.core.time import fused_attention_s
from planner.registry import load_hardware, load_model
from planner.specs.model import AttentionSpec
from planner.specs.run import RunSpec

try:
    from conftest import make_exec
except ImportError:  # pragma: no cover
    from tests.conftest import make_exec

ROOT = Path(__file__).resolve().parent.parent
H200_BENCH = ROOT / "hardware_profiles" / "benches" / "h200-planner-bench.yaml"


def _measured(bench: Bench, backend: str, seq: int, causal: bool, direction: str):
    return next(a for a in bench.attention
                if (a.backend, a.seq, a.causal, a.direction, a.dtype) == (backend, seq, causal, direction, "bf16"))


def test_a_calibrated_profile_is_costed_at_its_benchs_attention_rates(tmp_path):
    bench = load_bench(H200_BENCH)
    out, fit, _ = calibrate(H200_BENCH, "h200", out=tmp_path / "h200-cal.yaml", name="h200-cal")
    hw = load_hardware(str(out))
    assert set(hw.attention_kernels) == {"flash2", "flash3", "triton"}  # triton: still the generation's curve
    published = load_hardware("h200").attention_kernels["flash2"]
    for kernel, backend in (("flash2", "flash"), ("flash3", "cudnn")):
        curve = hw.attention_kernels[kernel]
        assert "planner bench" in curve.source and curve.fwd_over_bwd_rate is None  # per-pass rates
        fwd = _measured(bench, backend, 4096, False, "fwd")
        both = _measured(bench, backend, 4096, False, "fwd_bwd")
        f_rate, b_rate = attention_kernel_rates(curve, 4096, False, hw.accelerator.peak("bf16"))
        assert float(f_rate) == pytest.approx(fwd.flop_per_s, rel=1e-3)
        assert float(b_rate) == pytest.approx((both.flop - fwd.flop) / (both.time_s - fwd.time_s), rel=1e-3)
    # the measured FlashAttention-2 forward (331 TFLOP/s at 4k) replaces the published H100 one (368)
    assert hw.attention_kernels["flash2"].fwd_tflop_per_s != published.fwd_tflop_per_s
    # and the time model charges it: forward + backward of a causal 4k layer at the measured passes
    model, run = load_model("llama-3-8b"), RunSpec(seq_len=4096, global_batch_tokens=4096, precision="bf16")
    flops = 1e12
    fwd_s, total_s = fused_attention_s(model, make_exec(flash=1, fa3=0), rates_of(hw, run, 2.0),
                                       AttentionSpec(pattern="causal"), 4096, True, flops, (128, 128))
    causal_fwd = _measured(bench, "flash", 4096, True, "fwd").flop_per_s
    assert float(fwd_s) == pytest.approx(flops / causal_fwd, rel=1e-3)
    assert float(total_s) > float(fwd_s) * 3.5  # the backward is the slower pass


def _bench(rows: list[dict]) -> Bench:
    return Bench.model_validate({"provenance": {"tool": "test", "date": "2026-01-01", "device_type": "cuda",
                                                "device_name": "NVIDIA H100 80GB HBM3"}, "attention": rows})


def _row(seq: int, causal: bool, direction: str, tflop_per_s: float, backend: str = "flash") -> dict:
    flop = attention_flop(4, 16, seq, 128, causal, direction)
    return {"dtype": "bf16", "batch": 4, "heads": 16, "seq": seq, "head_dim": 128, "causal": causal,
            "direction": direction, "backend": backend, "flop": flop, "flop_per_s": tflop_per_s * 1e12,
            "time_s": flop / (tflop_per_s * 1e12)}


def test_forward_and_backward_rows_only_give_a_combined_curve():
    rows = [_row(s, c, "fwd_bwd", r) for s, r in ((1024, 300.0), (4096, 400.0)) for c in (False, True)]
    curves, why = attention_curves(_bench(rows), load_hardware("h100-sxm"))
    assert not why and set(curves) == {"flash2"}
    c = curves["flash2"]
    assert c["seq_tokens"] == [1024, 4096] and c["fwd_tflop_per_s"] == c["bwd_tflop_per_s"] == [300.0, 400.0]
    assert "combined" in c["source"]


def test_per_pass_rows_split_the_backward_out():
    rows = []
    for s in (2048, 8192):
        rows += [_row(s, False, "fwd", 400.0), _row(s, True, "fwd", 300.0)]
        # forward + backward timed at 3.5 F / (F/400 + 2.5 F/320): a backward of exactly 320 TFLOP/s
        rows.append(_row(s, False, "fwd_bwd", 3.5 / (1 / 400.0 + 2.5 / 320.0)))
    c = attention_curves(_bench(rows), load_hardware("h100-sxm"))[0]["flash2"]
    assert c["bwd_tflop_per_s"] == pytest.approx([320.0, 320.0], abs=0.1)
    assert c["fwd_causal_tflop_per_s"] == [300.0, 300.0]


def test_one_length_is_no_curve_and_says_why():
    rows = [_row(4096, c, d, 300.0) for c in (False, True) for d in ("fwd", "fwd_bwd")]
    fit = fit_curves(_bench(rows), load_hardware("h100-sxm"))
    assert fit.attention_curves == {}
    assert "two or more lengths" in fit.not_fitted["attention curve flash2"]


def test_only_keeps_the_curves_of_the_kept_parameters():
    fit = fit_curves(load_bench(H200_BENCH), load_hardware("h200"))
    assert set(fit.attention_curves) == {"flash2", "flash3"}
    assert set(fit.only(["attention_fraction"]).attention_curves) == {"flash2"}
    assert fit.only(["matmul_fraction"]).attention_curves == {}
