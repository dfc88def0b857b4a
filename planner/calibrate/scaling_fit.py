"""Fitting a scaling law L(N, D) = E + A/N^α + B/D^β to measured (N, D, loss) points, the way Hoffmann et al. did.

Hoffmann et al. 2022 §3.3 and Appendix D.2: minimise the Huber loss (δ = 10^-3) of log-loss residuals over
θ = (log A, log B, log E, α, β) with L-BFGS-B from a grid of starts, the log-sum-exp form keeping the objective
smooth; Besiroglu et al. 2024 refit Chinchilla's data the same way and bootstrap the points for confidence
intervals. ``planner scaling fit`` runs it on a user's points CSV (``planner.io.points_csv``); the laws it returns
are the core's :class:`~planner.core.scaling.ChinchillaLaw`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.scaling import (TRAIN_FLOPS_PER_PARAM_TOKEN, ArrayLike, ChinchillaLaw, as_float_array, check_positive,
                            compute_optimal)
from ..errors import FitError, SpecError

#: Huber threshold on log-loss residuals (Hoffmann et al. 2022 §3.3 and Appendix D.2: δ = 10^-3).
HUBER_DELTA = 1e-3
#: Initialisation grid of Hoffmann et al. 2022 Appendix D.2 (α, β ∈ {0, 0.5, ..., 2}, e ∈ {-1, -0.5, ..., 1},
#: a, b ∈ {0, 5, ..., 25}); Besiroglu et al. 2024 use the same grid.
FIT_GRID = {
    "a": np.arange(0.0, 25.01, 5.0), "b": np.arange(0.0, 25.01, 5.0), "e": np.arange(-1.0, 1.01, 0.5),
    "alpha": np.arange(0.0, 2.01, 0.5), "beta": np.arange(0.0, 2.01, 0.5),
}
#: L-BFGS-B bounds of θ = (a, b, e, α, β) with A = e^a, B = e^b, E = e^e. Wide enough that a sound fit never
#: touches them; a fit that does has no finite optimum in the data (no floor, no curvature) and is reported.
FIT_BOUNDS = {"a": (-10.0, 60.0), "b": (-10.0, 60.0), "e": (-8.0, 3.0), "alpha": (1e-3, 4.0), "beta": (1e-3, 4.0)}
_NAMES = ("a", "b", "e", "alpha", "beta")


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _lse_terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray):
    """The three log-terms of LSE(a − α log N, b − β log D, e); theta (..., 5), data (n,)."""
    a, b, e, al, be = (theta[..., i, None] for i in range(5))
    return a - al * log_n, b - be * log_d, np.broadcast_to(e, (a - al * log_n).shape)


def _objective(theta: np.ndarray, log_n, log_d, log_l, delta: float, grad: bool = True):
    """Mean Huber loss of log-loss residuals over δ (so it is O(|r|/δ), well scaled for L-BFGS-B), and its
    gradient. Prediction in log space via log-sum-exp (Hoffmann et al. 2022 §3.3 and Appendix D.2)."""
    t1, t2, t3 = _lse_terms(theta, log_n, log_d)
    m = np.maximum(np.maximum(t1, t2), t3)
    w1, w2, w3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(t3 - m)
    s = w1 + w2 + w3
    r = m + np.log(s) - log_l
    n = log_l.shape[-1]
    f = _huber(r, delta).sum(-1) / (n * delta)
    if not grad:
        return f
    dr = np.clip(r, -delta, delta) / (n * delta)  # Huber'(r) / (n δ)
    p1, p2, p3 = w1 / s, w2 / s, w3 / s
    g = np.stack([(dr * p1).sum(-1), (dr * p2).sum(-1), (dr * p3).sum(-1), -(dr * p1 * log_n).sum(-1),
                  -(dr * p2 * log_d).sum(-1)], axis=-1)
    return f, g


@dataclass(frozen=True)
class FitResult:
    """A fitted Chinchilla-form law with bootstrap intervals."""

    law: ChinchillaLaw
    n_points: int
    objective: float  #: mean Huber(δ) of log residuals / δ at the optimum
    rms_log_residual: float  #: root-mean-square of log(predicted/measured)
    starts: int  #: L-BFGS-B runs from the grid
    converged_starts: int
    ci: dict[str, tuple[float, float]]  #: 95% percentile bootstrap intervals of E, A, B, alpha, beta, a, b
    bootstrap: int  #: resamples asked for
    bootstrap_failed: int  #: resamples whose fit did not converge or hit a bound (left out of the intervals)
    flops_ref: float  #: the largest 6ND among the points: where tokens_per_param is quoted
    tokens_per_param_ref: float
    tokens_per_param_ci: tuple[float, float]

    def to_dict(self) -> dict:
        lw = self.law
        out = {"n_points": self.n_points, "E": lw.E, "A": lw.A, "B": lw.B, "alpha": lw.alpha, "beta": lw.beta,
               "a_params_exponent": lw.a, "b_tokens_exponent": lw.b, "objective": self.objective,
               "rms_log_residual": self.rms_log_residual, "starts": self.starts,
               "converged_starts": self.converged_starts, "bootstrap": self.bootstrap,
               "bootstrap_failed": self.bootstrap_failed, "flops_ref": self.flops_ref,
               "tokens_per_param_ref": self.tokens_per_param_ref,
               "tokens_per_param_ref_ci_low": self.tokens_per_param_ci[0],
               "tokens_per_param_ref_ci_high": self.tokens_per_param_ci[1]}
        for k, (lo, hi) in self.ci.items():
            out[f"{k}_ci_low"], out[f"{k}_ci_high"] = lo, hi
        return out


def _one_blas_thread():
    """Limit BLAS to one thread while fitting, when threadpoolctl is installed. SciPy's L-BFGS-B (C, >= 1.15)
    calls BLAS on 5-vectors; with OpenBLAS threads on a busy machine each run took 5-15x longer (measured:
    0.10 s vs 0.016 s per run on 2 cores under load)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _lbfgsb(theta0, log_n, log_d, log_l, delta, maxiter=2000):
    from scipy.optimize import minimize

    bounds = [FIT_BOUNDS[k] for k in _NAMES]
    x0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    # L-BFGS-B as Hoffmann et al. (Appendix D.2); tolerances far below the Huber scale so the optimiser does not
    # stop early — Besiroglu et al. 2024 trace the original fit's odd constants partly to an early stop.
    return minimize(_objective, x0, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20})


def _at_bound(theta: np.ndarray) -> list[str]:
    hits = []
    for k, v in zip(_NAMES, theta):
        lo, hi = FIT_BOUNDS[k]
        tol = 1e-6 * (hi - lo)
        if v <= lo + tol:
            hits.append(f"{k} at its lower bound {lo}")
        elif v >= hi - tol:
            hits.append(f"{k} at its upper bound {hi}")
    return hits


def _law_from_theta(theta, name: str, source: str, n: np.ndarray, d: np.ndarray) -> ChinchillaLaw:
    a, b, e, al, be = (float(v) for v in theta)
    return ChinchillaLaw(name=name, source=source, data="the fitted points", n_kind="total",
                         n_range=(float(n.min()), float(n.max())), d_range=(float(d.min()), float(d.max())),
                         E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=al, beta=be)


def fit_chinchilla(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike, bootstrap: int = 200, seed: int = 0,
                   starts: int = 16, delta: float = HUBER_DELTA, name: str = "fitted",
                   source: str = "fitted by planner.core.scaling.fit_chinchilla") -> FitResult:
    """Fit L = E + A/N^α + B/D^β to measured points as Hoffmann et al. 2022 (§3.3, Appendix D.2) did.

    * Residuals in log space, r = LSE(a − α log N, b − β log D, e) − log L, so every point weighs by its
      relative error and the parameters stay positive (A = e^a, B = e^b, E = e^e);
    * Huber loss with δ = 1e-3 on r: robust to the few runs that sit off the law (Hoffmann's choice);
    * L-BFGS-B (with the analytic gradient) from a grid of starts: the objective of all 4,500 points of
      Hoffmann's grid is evaluated at once and the ``starts`` best seed a local optimisation each — the same
      basin search at a fraction of the cost; the best converged result wins;
    * 95% intervals from ``bootstrap`` resamples of the points (with replacement), each refitted from the
      full-data optimum (and, if that fails, from the best grid start of the resample).

    Raises :class:`FitError` when fewer than 6 points are given, when no start converges, or when the best fit
    lies on a bound of :data:`FIT_BOUNDS` (no finite optimum in the data: e.g. no loss floor or no dependence on
    one of N, D). Bad values (non-positive, non-finite) are a SpecError."""
    with _one_blas_thread():
        return _fit_chinchilla(params, tokens, loss, bootstrap, seed, starts, delta, name, source)


def _fit_chinchilla(params, tokens, loss, bootstrap, seed, starts, delta, name, source) -> FitResult:
    n, d, l = as_float_array(params).ravel(), as_float_array(tokens).ravel(), as_float_array(loss).ravel()
    if not (n.size == d.size == l.size):
        raise SpecError(f"fit: params, tokens and loss differ in length ({n.size}, {d.size}, {l.size})")
    check_positive(params=n, tokens=d, loss=l)
    if n.size < 6:
        raise FitError(f"fit: {n.size} points for 5 parameters (E, A, B, alpha, beta); give at least 6")
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(l)

    grid = np.stack(np.meshgrid(*(FIT_GRID[k] for k in _NAMES), indexing="ij"), axis=-1).reshape(-1, 5)
    lo = np.array([FIT_BOUNDS[k][0] for k in _NAMES])
    hi = np.array([FIT_BOUNDS[k][1] for k in _NAMES])
    grid = np.clip(grid, lo, hi)
    gval = _objective(grid, log_n, log_d, log_l, delta, grad=False)
    seeds = grid[np.argsort(gval, kind="stable")[:starts]]

    results = [_lbfgsb(s, log_n, log_d, log_l, delta) for s in seeds]
    good = [r for r in results if r.success]
    if not good:
        msgs = sorted({str(r.message) for r in results})
        raise FitError(f"fit: L-BFGS-B did not converge from any of {len(results)} starts ({'; '.join(msgs)})")
    best = min(good, key=lambda r: r.fun)
    hits = _at_bound(best.x)
    if hits:
        raise FitError("fit: the best fit lies on a bound (" + ", ".join(hits) + "): the points do not pin the "
                       "Chinchilla form down (no loss floor, or no dependence on N or D); add points over a wider "
                       "range of N and D")
    law = _law_from_theta(best.x, name, source, n, d)
    r = np.log(law.loss(n, d)) - log_l
    c_ref = float(np.max(TRAIN_FLOPS_PER_PARAM_TOKEN * n * d))
    tpp_ref = float(compute_optimal(c_ref, law, warn=False).tokens_per_param)

    rng = np.random.default_rng(seed)
    boot, failed = [], 0
    for _ in range(int(bootstrap)):
        idx = rng.integers(0, n.size, n.size)
        ln, ld, ll = log_n[idx], log_d[idx], log_l[idx]
        # From the full-data optimum; a resample that fails there gets one more try from the best grid start.
        cands = [_lbfgsb(best.x, ln, ld, ll, delta)]
        if not (cands[0].success and not _at_bound(cands[0].x)):
            gv = _objective(seeds, ln, ld, ll, delta, grad=False)
            cands.append(_lbfgsb(seeds[int(np.argmin(gv))], ln, ld, ll, delta))
        ok = [c for c in cands if c.success and not _at_bound(c.x)]
        if not ok:
            failed += 1
            continue
        boot.append(min(ok, key=lambda c: c.fun).x)
    ci: dict[str, tuple[float, float]] = {}
    tpp_ci = (math.nan, math.nan)
    if boot:
        th = np.array(boot)
        vals = {"E": np.exp(th[:, 2]), "A": np.exp(th[:, 0]), "B": np.exp(th[:, 1]), "alpha": th[:, 3],
                "beta": th[:, 4]}
        vals["a_params_exponent"] = th[:, 4] / (th[:, 3] + th[:, 4])
        vals["b_tokens_exponent"] = th[:, 3] / (th[:, 3] + th[:, 4])
        for k, v in vals.items():
            ci[k] = (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
        G = (th[:, 3] * np.exp(th[:, 0]) / (th[:, 4] * np.exp(th[:, 1]))) ** (1 / (th[:, 3] + th[:, 4]))
        cc = c_ref / TRAIN_FLOPS_PER_PARAM_TOKEN
        tpp = cc ** (vals["b_tokens_exponent"] - vals["a_params_exponent"]) / G ** 2
        tpp_ci = (float(np.percentile(tpp, 2.5)), float(np.percentile(tpp, 97.5)))
    return FitResult(law=law, n_points=int(n.size), objective=float(best.fun),
                     rms_log_residual=float(np.sqrt(np.mean(r * r))), starts=len(results),
                     converged_starts=len(good), ci=ci, bootstrap=int(bootstrap), bootstrap_failed=failed,
                     flops_ref=c_ref, tokens_per_param_ref=tpp_ref, tokens_per_param_ci=tpp_ci)
