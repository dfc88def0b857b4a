"""Cross-validated accuracy (issues 15 and 16): what the README quotes, regenerated and gated here.

The calibration is refitted without each source (and each GPU generation) and the held-out runs are predicted
(planner/calibrate/crossval.py). The gates are the measured held-out errors with a 10% relative margin: a change
that makes any source or generation worse fails. They are regression gates, not targets: the issue's targets
(median <= 10%, p90 <= 30% for every source with 8+ runs and every generation) are not all met yet, and the
``TARGET_MISSES`` list says which, so that meeting one shows up as a test to tighten.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from planner.calibrate.bands import BANDS_PATH, accuracy_markdown, bands_document
from planner.calibrate.crossval import cross_validate, error_stats
from planner.calibrate.measured import load_runs
from planner.calibrate.validate import modelable, validate

# measured held-out median / p90 |error| in percent (benchmarks/cross_validate.py), gated at +10% relative
MEASURED_SOURCE = {"llm-foundry": (5.3, 11.1), "megatron-korthikanti": (6.7, 8.6), "megatron-ptdp": (3.4, 135.7),
                   "nemo": (4.8, 13.6), "torchtitan": (6.0, 8.1)}
MEASURED_GENERATION = {"ampere": (5.0, 11.8), "hopper": (5.7, 14.1)}
#: (group, statistic) that miss the issue's target today
TARGET_MISSES = {("megatron-ptdp", "p90")}


@pytest.fixture(scope="module")
def runs():
    return modelable(load_runs()[0])[0]


@pytest.fixture(scope="module")
def cv(runs):
    return cross_validate(runs)


def _gate(stats, measured):
    med, p90 = measured
    assert stats["median_abs_pct_error"] <= 1.1 * med, (stats, measured)
    assert stats["p90_abs_pct_error"] <= 1.1 * p90, (stats, measured)


@pytest.mark.parametrize("source", sorted(MEASURED_SOURCE))
def test_held_out_source_gate(cv, source):
    _gate(cv["leave_one_source_out"]["by_source"][source], MEASURED_SOURCE[source])


@pytest.mark.parametrize("generation", sorted(MEASURED_GENERATION))
def test_held_out_generation_gate(cv, generation):
    _gate(cv["leave_one_source_out"]["by_generation"][generation], MEASURED_GENERATION[generation])


def test_target_misses_are_the_listed_ones(cv):
    """Median <= 10% and p90 <= 30% is the target; a group that reaches it must leave TARGET_MISSES."""
    loso = cv["leave_one_source_out"]
    groups = {**{k: v for k, v in loso["by_source"].items() if v["n"] >= 8}, **loso["by_generation"]}
    misses = {(g, "median") for g, s in groups.items() if s["median_abs_pct_error"] > 10} | {
        (g, "p90") for g, s in groups.items() if s["p90_abs_pct_error"] > 30}
    assert misses == TARGET_MISSES


def test_no_held_out_fit_leaks_the_held_out_source(runs):
    """Holding a source out fits on the others only: without llm-foundry, Hopper's GEMM shape efficiency is what a
    fit on NeMo's runs alone gives, and llm-foundry's held-out predictions differ from the in-sample ones."""
    from planner.calibrate.crossval import leave_one_source_out
    from planner.calibrate.fit import fit_all

    pair = [r for r in runs if r.source_key in ("llm-foundry", "nemo")]
    without = fit_all(pair, exclude_sources=("llm-foundry",))["hopper"].params
    nemo_only = fit_all([r for r in pair if r.source_key == "nemo"])["hopper"].params
    assert without == pytest.approx(nemo_only)
    assert without != pytest.approx(fit_all(pair)["hopper"].params, rel=1e-3)
    held = [r for r in leave_one_source_out(pair) if r.source == "llm-foundry" and r.generation == "hopper"]
    in_sample = {r["id"]: r["error_pct"] for r in validate()["runs"]}
    # measured: 0.94 points median; the exact check above is the leak test, this one that it reaches predictions
    assert held and np.median([abs(h.error * 100 - in_sample[h.run_id]) for h in held]) > 0.5


def test_bands_cover_held_out_runs_about_80_percent(cv, runs):
    """Nested, as a user meets it: the band computed without a source (its 10th-90th percentile, pooled over
    generations as planner/calibrate/bands.py pools it) covers that source's held-out runs. Measured: 75% of the
    236 runs (per-generation bands would cover 52%)."""
    rows = [r for r in cv["runs"] if r["held_out"] == "source"]
    inside = []
    for src in sorted({r["source"] for r in rows}):
        others = [r["error"] for r in rows if r["source"] != src]
        lo, hi = np.percentile(others, 10), np.percentile(others, 90)
        inside += [lo <= r["error"] <= hi for r in rows if r["source"] == src]
    coverage = float(np.mean(inside))
    assert 0.70 <= coverage <= 0.90, coverage


def test_committed_bands_and_readme_are_the_scripts_output(cv, runs):
    """`python benchmarks/cross_validate.py --write` produced the committed bands file and README table."""
    from pathlib import Path

    committed = yaml.safe_load(BANDS_PATH.read_text())
    assert committed == yaml.safe_load(yaml.safe_dump(bands_document(cv, runs), sort_keys=False))
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- accuracy:begin -->\n", 1)[1].split("<!-- accuracy:end -->", 1)[0]
    assert block == accuracy_markdown(cv, validate())


def test_error_stats_of_known_errors():
    s = error_stats([-0.2, -0.1, 0.0, 0.1, 0.3])
    assert s["n"] == 5 and s["median_abs_pct_error"] == pytest.approx(10.0)
    assert s["p10_signed_pct_error"] == pytest.approx(-16.0) and s["p90_signed_pct_error"] == pytest.approx(22.0)


def test_committed_calibration_is_what_one_command_refits(runs):
    """`planner fit-time --write` reproduces hardware_profiles/calibration/ from the public runs (same values to
    1e-3 relative: the optimiser's tolerance), and no fitted parameter sits on a bound."""
    from planner.calibrate.fit import fit_all
    from planner.registry import calibration_path, read_yaml

    fits = fit_all(runs, strict=True)
    for gen, res in fits.items():
        stored = read_yaml(calibration_path(gen))
        assert stored.get("at_bound") == []
        values = {k: v["value"] for k, v in stored["parameters"].items()}
        assert set(values) == set(res.params), gen
        for k, v in res.params.items():
            assert v == pytest.approx(values[k], rel=1e-3), (gen, k)
