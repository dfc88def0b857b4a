"""Fit the time model's few run-level parameters on published measured runs: hardware terms per GPU generation,
software terms (:data:`SHARED`) once for all generations.

Method: for every run of a generation (A100-40GB and A100-80GB are *ampere*; H100/H200 *hopper*), predict tokens/s
per GPU from the model, run, layout and hardware alone, and minimise the residuals r = log(predicted/measured)
over the parameters in ``TimeParams.FITTED`` with ``scipy.optimize.least_squares``:

* log residuals, because errors are relative and a 2x miss is as bad either way;
* a soft-L1 (pseudo-Huber) loss with scale 0.1 (10%), so a handful of runs the model cannot represent (odd
  kernels, a different software stack) do not drag the fit — the same reason Hoffmann et al. 2022 use a Huber loss;
* each run weighted by 1/sqrt(runs of its source in the generation), so one large source (llm-foundry's 186 rows)
  does not outvote the others; no parameter is per source or per run;
* bounds keep every parameter physical; a parameter that ends on a bound is reported (``at_bound``), and
  ``planner fit-time --write`` refuses to store such a fit (it would be absorbing what the model lacks);
* three starts (the priors, and a quarter and three quarters of every bound's range), the lowest cost kept.

Measured numbers (MAMF matmul fraction, NVLink bus-bandwidth fraction) stay as measured; only the rest are fitted.
One command reproduces the fit, its data and its residuals: ``planner fit-time`` (``--write`` stores the result in
``hardware_profiles/calibration/<generation>.yaml`` with its provenance).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import yaml
from scipy.optimize import least_squares

from ..core.efficiency import TimeParams, time_params
from ..core.estimate import evaluate
from ..core.layout import exec_from_spec
from ..errors import FitError
from ..registry import PROFILE_DIRS, load_hardware
from .measured import MeasuredRun
from .validate import plan_of

#: (lower, upper) bound of each fitted parameter.
BOUNDS = {
    "gemm_half_dim": (0.0, 2048.0),
    "attention_fraction": (0.1, 0.85),
    "attention_fraction_flash3": (0.1, 0.85),
    "elementwise_traffic_fraction": (0.2, 1.2),
}
LOSS_SCALE = 0.1


@dataclass(frozen=True)
class FitResult:
    generation: str
    params: dict[str, float]
    n_runs: int
    sources: dict[str, int]
    residuals: dict[str, float]  #: run id -> predicted/measured - 1 after the fit
    at_bound: tuple[str, ...]
    cost: float


def tokens_per_s_per_gpu(plan, ex, params: TimeParams) -> float:
    """Predicted tokens/s per GPU under ``params``: the core's one evaluation, as ``validate`` and estimates run it."""
    return float(evaluate(plan, ex, params).throughput.tokens_per_s_per_gpu)


def generation_of(run: MeasuredRun) -> str:
    return load_hardware(run.hardware).generation or run.hardware


#: Parameters of the software stack rather than the GPU: fitted once on every generation's runs together.
SHARED = ("elementwise_traffic_fraction",)  # when a caller fits it (TimeParams.FITTED leaves it at 1.0)


def _fitted_names(runs: list[MeasuredRun], names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` less those no run of ``runs`` exercises: an attention fraction of a kernel no run uses, or one a
    measured kernel curve of the generation replaces (``hardware_profiles/kernels/``)."""
    measured = set(load_hardware(runs[0].hardware).attention_kernels) if runs else set()
    kernels = {r.layout.attention_kernel for r in runs if r.layout.flash_attention} - measured
    drop = {n for n, ks in (("attention_fraction", {"flash2", "triton"}), ("attention_fraction_flash3", {"flash3"}))
            if not kernels & ks}
    return tuple(n for n in names if n not in drop)


def fit_all(runs: Iterable[MeasuredRun], names: tuple[str, ...] = TimeParams.FITTED,
            start: Optional[dict[str, float]] = None, exclude_sources: Iterable[str] = (),
            only_generations: Optional[Iterable[str]] = None, strict: bool = False) -> dict[str, FitResult]:
    """Fit every generation at once: the hardware terms of ``names`` per generation, the software terms of
    :data:`SHARED` once for all (leaving out the runs of ``exclude_sources``). One FitResult per generation.

    ``strict``: a parameter that ends on a bound raises FitError (it would be absorbing what the model lacks)."""
    excluded = set(exclude_sources)
    runs = [r for r in runs if r.measured_tokens_per_s_per_gpu and r.source_key not in excluded]
    gens = sorted({generation_of(r) for r in runs} & set(only_generations or {generation_of(r) for r in runs}))
    runs = [r for r in runs if generation_of(r) in gens]
    by_gen = {g: [r for r in runs if generation_of(r) == g] for g in gens}
    shared = tuple(n for n in names if n in SHARED)
    slots = [("*", n) for n in shared] + [(g, n) for g in gens for n in _fitted_names(by_gen[g], names)
                                          if n not in SHARED]
    if len(runs) < len(slots):
        raise FitError(f"fit {', '.join(gens)}: {len(runs)} runs for {len(slots)} parameters")
    plans = [plan_of(r) for r in runs]
    base = [time_params(p.hardware, p.run.precision) for p in plans]
    execs = [exec_from_spec(p.layout, p.run) for p in plans]
    counts: dict[tuple, int] = {}
    for r in runs:
        counts[(r.source_key, generation_of(r))] = counts.get((r.source_key, generation_of(r)), 0) + 1
    weights = np.array([1.0 / np.sqrt(counts[(r.source_key, generation_of(r))]) for r in runs])
    measured = np.array([r.measured_tokens_per_s_per_gpu for r in runs])
    lo = np.array([BOUNDS[n][0] for _, n in slots])
    hi = np.array([BOUNDS[n][1] for _, n in slots])

    def unpack(z):  # every parameter normalised to [0, 1] so the solver's steps are comparable across units
        return lo + np.clip(z, 0.0, 1.0) * (hi - lo)

    def values_of(z, gen):
        return {n: v for (g, n), v in zip(slots, unpack(z)) if g in ("*", gen)}

    run_gens = [generation_of(r) for r in runs]

    def residuals(z):
        vals = {g: values_of(z, g) for g in gens}
        pred = np.array([tokens_per_s_per_gpu(p, ex, b.replace(**vals[g]))
                         for g, b, p, ex in zip(run_gens, base, plans, execs)])
        return weights * np.log(pred / measured)

    default = TimeParams()
    x0 = np.array([(start or {}).get(n, getattr(default, n)) for _, n in slots], dtype=float)
    # multi-start: the priors, and a quarter and three quarters of the way through every bound; the lowest cost wins
    starts = [np.clip((x0 - lo) / (hi - lo), 0.01, 0.99), np.full(len(slots), 0.25), np.full(len(slots), 0.75)]
    sols = [least_squares(residuals, z0, bounds=(0.0, 1.0), loss="soft_l1", f_scale=LOSS_SCALE * weights.max(),
                          diff_step=1e-3, max_nfev=400) for z0 in starts]
    good = [s for s in sols if s.success]
    if not good:
        raise FitError(f"fit {', '.join(gens)}: least_squares did not converge from {len(starts)} starts "
                       f"({sols[0].message})")
    sol = min(good, key=lambda s: s.cost)
    final = np.exp(residuals(sol.x) / weights) - 1.0
    hit = [(g, n) for (g, n), z in zip(slots, sol.x) if z <= 1e-3 or z >= 1 - 1e-3]
    if strict and hit:
        raise FitError("fit: " + ", ".join(f"{n} ({'all generations' if g == '*' else g})" for g, n in hit)
                       + " ended on a bound: the parameter is absorbing something the model lacks")
    out = {}
    for g in gens:
        idx = [i for i, rg in enumerate(run_gens) if rg == g]
        src = {k[0]: v for k, v in counts.items() if k[1] == g}
        out[g] = FitResult(generation=g, params={n: float(v) for n, v in values_of(sol.x, g).items()},
                           n_runs=len(idx), sources=src, residuals={runs[i].id: float(final[i]) for i in idx},
                           at_bound=tuple(n for gg, n in hit if gg in ("*", g)), cost=float(sol.cost))
    return out


def generations(runs: Iterable[MeasuredRun]) -> list[str]:
    """The GPU generations present in ``runs``, sorted."""
    return sorted({generation_of(r) for r in runs})


#: Generations with hardware profiles but no public measured runs borrow the fitted parameters of the nearest
#: generation that has runs, so they are not left on the model's bare priors. Each borrowed file says so.
BORROWED = {
    "volta": ("ampere", "V100 predates Ampere; its measured matmul and link figures still come from its profile"),
    "blackwell_ultra": ("hopper", "B300 (Blackwell Ultra), the B200's refresh, has no public measured runs; its "
                        "datasheet peaks and links come from its profile"),
    "blackwell": ("hopper", "B200 is Hopper's successor; its measured MAMF and NVLink figures come from its profile"),
    "cdna3": ("hopper", "MI300X is Hopper's contemporary; its measured MAMF (51% of peak) comes from its profile"),
}


def write_borrowed(generation: str, fitted_path: Path) -> Path:
    """Copy a fitted generation's calibration for ``generation`` (see :data:`BORROWED`), saying it is borrowed."""
    src_gen, why = BORROWED[generation]
    doc = yaml.safe_load(fitted_path.read_text())
    params = {}
    for name, q in (doc.get("parameters") or {}).items():
        params[name] = {"value": q["value"],
                        "source": f"borrowed from the {src_gen} fit (no public measured runs on {generation} GPUs): "
                                  + q["source"],
                        "note": f"{why}. Unvalidated on this generation: treat its step times as rough."}
    out = calibration_dir() / f"{generation}.yaml"
    out.write_text("# Borrowed time-model parameters. Regenerate with `planner fit-time --write`; do not edit by hand.\n"
                   + yaml.safe_dump({"generation": generation, "borrowed_from": src_gen, "fitted_on": doc.get("fitted_on"),
                                     "parameters": params}, sort_keys=False, width=120))
    return out


def calibration_dir() -> Path:
    return PROFILE_DIRS[0] / "calibration"


def write_calibration(res: FitResult, data_file: str, notes: dict[str, str]) -> Path:
    """Store a fit as ``hardware_profiles/calibration/<generation>.yaml`` with its provenance and, per parameter,
    ``notes`` (:func:`planner.calibrate.priors.parameter_notes`: bounds and microbenchmark priors)."""
    errs = np.abs(np.array(list(res.residuals.values()))) * 100
    when = _dt.date.today().isoformat()
    src = (f"fitted by `planner fit-time` on {res.n_runs} measured runs of {data_file} "
           f"({', '.join(f'{k} {v}' for k, v in sorted(res.sources.items()))}) on {when}; "
           f"in-sample median |error| {np.median(errs):.1f}%, p90 {np.percentile(errs, 90):.1f}%")
    doc = {
        "generation": res.generation,
        "fitted_on": when,
        "method": "scipy.optimize.least_squares, soft-L1 on log(pred/measured), runs weighted 1/sqrt(n per source); "
                  "see planner/calibrate/fit.py",
        "at_bound": list(res.at_bound),
        "parameters": {n: {"value": round(v, 6 if v > 1e-3 else 9), "source": src, "note": notes[n]}
                       for n, v in res.params.items()},
    }
    out = calibration_dir() / f"{res.generation}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Fitted time-model parameters. Regenerate with `planner fit-time --write`; do not edit by hand.\n"
                   + yaml.safe_dump(doc, sort_keys=False, width=120))
    return out
