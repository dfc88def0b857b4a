"""A measured GEMM-by-shape table as microbenchmark data (issue 15 item 1) and the prior it gives the GEMM law.

hardware_profiles/benches/h100-sxm-openxla-gemm.yaml is OpenXLA's H100 (sm_90) matmul table as a BENCH file; the
same fit `planner calibrate` runs on a `planner bench` file reads it (planner/calibrate/priors.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from helpers import load_benchmark
from planner.calibrate.bench import load_bench
from planner.calibrate.curves import fit_curves
from planner.calibrate.fit import BOUNDS
from planner.calibrate.priors import gemm_half_dim_note, gemm_half_dim_prior, gemm_table
from planner.core.efficiency import time_params
from planner.core.kernels import gemm_achieved_fraction
from planner.registry import calibration_path, load_hardware, profile_names, read_yaml

BENCH = "hardware_profiles/benches/h100-sxm-openxla-gemm.yaml"
DIMS = (256, 512, 1024, 2048, 4096)


def test_the_table_is_the_whole_grid_and_agrees_with_the_profiles_mamf():
    """125 bf16 shapes, every (m, n, k) in 256..4096; its best shape (4096^3, 783.3 TFLOP/s) and the MAMF of the
    h100-sxm profile (stas00's mamf-finder, 794.5) are independent measurements and agree within 2%."""
    from pathlib import Path

    bench = load_bench(Path(__file__).resolve().parent.parent / BENCH)
    shapes = {(r.m, r.n, r.k) for r in bench.gemm}
    assert len(bench.gemm) == 125 and shapes == set(itertools.product(DIMS, DIMS, DIMS))
    assert {r.dtype for r in bench.gemm} == {"bf16"} and bench.provenance.device_type == "published"
    best = max(bench.gemm, key=lambda r: r.flop_per_s)
    assert (best.m, best.n, best.k) == (4096, 4096, 4096)
    mamf = load_hardware("h100-sxm").efficiency["matmul_max_achievable_flop_per_s_bf16"].value
    assert best.flop_per_s == pytest.approx(mamf, rel=0.02)


def test_planner_calibrate_reads_it_like_a_bench_run():
    """The BENCH path fits the table like any `planner bench` output: a matmul fraction and a half dimension off
    its bounds (over all 125 shapes, tiny ones included, so not the prior)."""
    from pathlib import Path

    fit = fit_curves(load_bench(Path(__file__).resolve().parent.parent / BENCH), load_hardware("h100-sxm"))
    got = {f.key: f for f in fit.fitted}
    assert got["matmul_max_achievable_fraction_bf16"].value == pytest.approx(783.3 / 989.5, abs=2e-4)
    h = got["gemm_half_dim"]
    assert not h.at_bound and BOUNDS["gemm_half_dim"][0] < h.value < BOUNDS["gemm_half_dim"][1]


def test_the_prior_fits_the_training_shapes_and_is_written_beside_the_fitted_value():
    """Fitted on the 18 training-step shapes, the law is within 12% of them (median |error|; measured 10.4%), and
    the calibration file carries exactly the note the prior gives (generated, not typed)."""
    prior = gemm_half_dim_prior("hopper")
    assert prior.shapes == 18 and BOUNDS["gemm_half_dim"][0] < prior.value < BOUNDS["gemm_half_dim"][1]
    assert np.median(np.abs(gemm_table("hopper").law_error(prior.value))) < 0.12
    stored = read_yaml(calibration_path("hopper"))["parameters"]["gemm_half_dim"]
    assert stored["note"].endswith(gemm_half_dim_note("hopper", stored["value"]))
    assert f"microbenchmark prior {prior.value:.0f}" in stored["note"]
    ampere = read_yaml(calibration_path("ampere"))["parameters"]["gemm_half_dim"]["note"]
    assert "no measured prior" in ampere  # no A100 table: said, not hidden


@pytest.mark.parametrize("profile", [p for p in profile_names() if load_hardware(p).generation == "hopper"])
def test_no_predicted_gemm_is_faster_than_the_measured_mamf(profile):
    """Issue 15 item 4: at the committed calibration no GEMM of the table (nor any larger one) is predicted above
    the profile's measured maximum achievable matmul rate."""
    hw = load_hardware(profile)
    eff = time_params(hw, "bf16")
    peak, bw = hw.accelerator.peak("bf16"), hw.accelerator.hbm_bandwidth_bytes_per_s.value
    dims = np.array(DIMS + (8192, 16384, 65536), dtype=float)
    m, n, k = np.meshgrid(dims, dims, dims, indexing="ij")
    got = gemm_achieved_fraction(m, n, k, peak, bw, 2, eff)
    assert np.all(got <= eff.matmul_fraction + 1e-12)


def test_the_benchmark_scores_the_law_at_the_fit_and_at_the_prior():
    bench = load_benchmark("gemm_law_vs_microbench")
    rows = bench.rows()
    assert {(r["shapes"].split(" (")[0], r["h"]) for r in rows} == {
        (s, h) for s in ("training shapes", "all shapes") for h in ("end-to-end fit", "microbenchmark prior")}
    fitted = time_params(load_hardware("h100-sxm"), "bf16").gemm_half_dim
    at_fit = next(r for r in rows if r["shapes"].startswith("training") and r["h"] == "end-to-end fit")
    assert at_fit["gemm_half_dim"] == fitted
    assert at_fit["median_error"] == pytest.approx(float(np.median(gemm_table("hopper").law_error(fitted))))


def test_the_readme_quotes_the_prior_and_the_fit_as_committed():
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    prior = gemm_half_dim_prior("hopper").value
    fitted = time_params(load_hardware("h100-sxm"), "bf16").gemm_half_dim
    half = 1 + float(np.median(gemm_table("hopper").law_error(fitted)))
    assert f"half dimension at {prior:.0f} on the shapes a training step runs" in text
    assert f"The end-to-end fit is {fitted:.0f}, and at that value the law costs those isolated GEMMs at half" in text
    assert 0.45 < half < 0.55  # "half their measured rate"
