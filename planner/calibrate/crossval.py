"""Cross-validated accuracy of the time model: the only accuracy figures planner reports as accuracy.

Two hold-outs, each refitting the calibration (:func:`planner.calibrate.fit.fit_all`) without what it predicts:

* **leave one source out**: fit on every other source, predict the held-out source's runs. A source alone on its
  GPU generation still gets the shared (software) terms from the others; its generation's hardware terms fall
  back to their priors, as for a GPU no run has calibrated.
* **leave one GPU generation out**: fit on the other generations and predict this one with the parameters of the
  nearest fitted generation (what planner does for a generation without runs: a *borrowed* calibration).

Every fitted parameter is reset to its prior (:class:`~planner.core.efficiency.TimeParams` defaults) before a
held-out fit's values are put in, so nothing fitted on the held-out runs leaks into their prediction.

Summaries are median and 90th percentile of |predicted/measured - 1| of tokens/s per GPU, per source and per
generation; the signed quantiles of the same residuals give the error bands of ``planner/data/accuracy.yaml``
(:mod:`planner.calibrate.bands`). ``planner validate --cross-validate`` prints them; ``benchmarks/cross_validate.py``
writes the README table and the bands file from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import numpy as np

from ..core.efficiency import TimeParams, time_params
from ..registry import load_hardware
from .fit import BORROWED, SHARED, fit_all, generation_of
from .measured import MeasuredRun
from .validate import predict


@dataclass(frozen=True)
class HeldOut:
    """One run predicted by a calibration fitted without it."""

    run_id: str
    source: str
    generation: str
    hardware: str
    gpus: int
    seq_len: int
    error: float  #: predicted / measured tokens/s per GPU - 1 (+0.1 = predicted 10% fast)
    held_out: str  #: "source" or "generation"


def _prior_params(run: MeasuredRun) -> TimeParams:
    """The run's hardware parameters with every fitted one back at its prior."""
    prior = TimeParams()
    base = time_params(load_hardware(run.hardware), run.run.precision)
    return base.replace(**{n: getattr(prior, n) for n in TimeParams.FITTED})


def _predict_with(run: MeasuredRun, params: dict[str, float], how: str) -> HeldOut:
    err = predict(run, _prior_params(run).replace(**params)).error
    return HeldOut(run.id, run.source_key, generation_of(run), run.hardware, run.gpus, run.run.seq_len, float(err),
                   how)


def leave_one_source_out(runs: list[MeasuredRun], progress: Optional[Callable[[str], None]] = None) -> list[HeldOut]:
    """Every run predicted by a fit without its source."""
    out = []
    for src in sorted({r.source_key for r in runs}):
        if progress:
            progress(f"without {src}")
        fits = fit_all(runs, exclude_sources=(src,))
        shared = next(iter(fits.values())).params if fits else {}
        for r in (r for r in runs if r.source_key == src):
            gen = generation_of(r)
            params = fits[gen].params if gen in fits else {k: v for k, v in shared.items() if k in SHARED}
            out.append(_predict_with(r, params, "source"))
    return out


def nearest_generation(gen: str, fitted: Iterable[str]) -> Optional[str]:
    """The fitted generation a generation without runs borrows from (:data:`~planner.calibrate.fit.BORROWED`,
    else the ampere/hopper neighbour)."""
    fitted = list(fitted)
    neighbours = {"ampere": ("hopper",), "hopper": ("ampere",)}
    order = ((BORROWED[gen][0],) if gen in BORROWED else ()) + neighbours.get(gen, ()) + tuple(sorted(fitted))
    return next((g for g in order if g in fitted and g != gen), None)


def leave_one_generation_out(runs: list[MeasuredRun],
                             progress: Optional[Callable[[str], None]] = None) -> list[HeldOut]:
    """Every run predicted with the calibration of the nearest other generation, fitted without its own."""
    out = []
    gens = sorted({generation_of(r) for r in runs})
    for gen in gens:
        others = [g for g in gens if g != gen]
        if not others:
            continue
        if progress:
            progress(f"without {gen}")
        fits = fit_all(runs, only_generations=others)
        donor = nearest_generation(gen, fits)
        for r in (r for r in runs if generation_of(r) == gen):
            out.append(_predict_with(r, fits[donor].params, "generation"))
    return out


def summarize(rows: Iterable[HeldOut], key: Callable[[HeldOut], str]) -> dict[str, dict]:
    """{group: {n, median_abs_pct_error, p90_abs_pct_error, p10_signed_pct_error, p90_signed_pct_error}}."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r.error)
    return {k: error_stats(v) for k, v in sorted(groups.items())}


def error_stats(errors: Iterable[float]) -> dict:
    """Median and 90th percentile of |error| and the 10th/90th percentiles of the signed error, in percent."""
    e = np.asarray(list(errors), dtype=float) * 100.0
    if e.size == 0:
        return {"n": 0}
    return {"n": int(e.size), "median_abs_pct_error": float(np.median(np.abs(e))),
            "p90_abs_pct_error": float(np.percentile(np.abs(e), 90)),
            "p10_signed_pct_error": float(np.percentile(e, 10)), "p90_signed_pct_error": float(np.percentile(e, 90))}


def cross_validate(runs: list[MeasuredRun], progress: Optional[Callable[[str], None]] = None) -> dict:
    """Both hold-outs, summarised per source, per generation and overall."""
    by_source = leave_one_source_out(runs, progress)
    by_gen = leave_one_generation_out(runs, progress)
    return {
        "leave_one_source_out": {
            "overall": error_stats(r.error for r in by_source),
            "by_source": summarize(by_source, lambda r: r.source),
            "by_generation": summarize(by_source, lambda r: r.generation),
        },
        "leave_one_generation_out": {
            "overall": error_stats(r.error for r in by_gen),
            "by_generation": summarize(by_gen, lambda r: r.generation),
        },
        "runs": [r.__dict__ for r in by_source + by_gen],
    }
