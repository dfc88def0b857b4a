"""Microbenchmark priors of the fitted time-model terms: what a measured kernel table says a fitted term should be,
written beside the fitted value (``planner fit-time --write``) so a reader sees how far the end-to-end fit moved it.

``gemm_half_dim`` (the x/(x+h) GEMM shape law of :func:`planner.core.kernels.gemm_efficiency`): fitted by
:func:`planner.calibrate.curves.fit_half_dim`, the same least squares ``planner calibrate`` runs on a ``planner
bench`` file, on the shapes of a published GEMM-by-shape table (a BENCH file under ``hardware_profiles/benches/``)
that a training step runs: output rows (micro-batch x sequence) >= 2,048 and both other dimensions >= 1,024 (a
TP shard of a >= 8k hidden size at tp 8). Smaller shapes are left out of the prior: there the law is a poor fit
(rms log residual 0.52 over all 125 H100 shapes against 0.13 on these), and no training GEMM is that small.

Generations without such a table have no measured prior (the :class:`~planner.core.efficiency.TimeParams` default
is a guess, and is said to be one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from ..core.efficiency import time_params
from ..registry import PROFILE_DIRS, load_hardware
from .bench import DTYPE_BYTES, load_bench
from .curves import fit_half_dim, gemm_model_efficiency
from .fit import BOUNDS, FitResult

#: generation -> (the profile whose peak and HBM bandwidth the table is read against, its BENCH file)
GEMM_TABLES = {"hopper": ("h100-sxm", "benches/h100-sxm-openxla-gemm.yaml")}
#: what counts as a training-step GEMM shape: output rows, and each of the other two dimensions, at least
TRAINING_ROWS_MIN = 2048
TRAINING_DIM_MIN = 1024


@dataclass(frozen=True)
class GemmTable:
    """The bf16 shapes of a published GEMM table, read against a profile: achieved/peak and the law's inputs."""

    generation: str
    profile: str
    path: str
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    achieved_fraction: np.ndarray  #: measured FLOP/s / the profile's dense bf16 peak
    matmul_fraction: float  #: the table's best shape / peak (its own MAMF)
    hbm_bytes_per_s: float  #: achievable HBM bandwidth the roofline uses (profile bandwidth x its hbm_fraction)
    peak_flop_per_s: float

    @property
    def training(self) -> np.ndarray:
        """Mask of the training-step shapes."""
        return (self.m >= TRAINING_ROWS_MIN) & (self.n >= TRAINING_DIM_MIN) & (self.k >= TRAINING_DIM_MIN)

    def law(self, h: float) -> np.ndarray:
        """The time model's achieved/peak of every shape at half dimension ``h`` and the table's own MAMF."""
        return gemm_model_efficiency(self.m, self.n, self.k, h, self.matmul_fraction, DTYPE_BYTES["bf16"],
                                     self.hbm_bytes_per_s, self.peak_flop_per_s)

    def law_error(self, h: float, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """predicted/measured - 1 of the shapes in ``mask`` (the training shapes by default) at ``h``."""
        mask = self.training if mask is None else mask
        return self.law(h)[mask] / self.achieved_fraction[mask] - 1.0


@dataclass(frozen=True)
class Prior:
    value: float
    rms_log_residual: float
    shapes: int
    text: str  #: one line for the calibration file's note


@lru_cache(maxsize=None)
def gemm_table(generation: str) -> Optional[GemmTable]:
    """The generation's published GEMM table, or None when none is shipped."""
    if generation not in GEMM_TABLES:
        return None
    profile, rel = GEMM_TABLES[generation]
    path = next((d / rel for d in PROFILE_DIRS if (d / rel).exists()), None)
    if path is None:
        return None
    rows = [r for r in load_bench(path).gemm if r.dtype == "bf16" and r.m]
    hw = load_hardware(profile)
    peak = hw.accelerator.peak("bf16")
    m, n, k = (np.array([getattr(r, x) for r in rows], dtype=float) for x in "mnk")
    achieved = np.array([r.flop_per_s for r in rows]) / peak
    bw = time_params(hw, "bf16").hbm_fraction * hw.accelerator.hbm_bandwidth_bytes_per_s.value
    return GemmTable(generation, profile, f"hardware_profiles/{rel}", m, n, k, achieved, float(achieved.max()), bw,
                     peak)


def gemm_half_dim_prior(generation: str) -> Optional[Prior]:
    """``gemm_half_dim`` fitted on the training shapes of the generation's GEMM table; None without a table."""
    t = gemm_table(generation)
    if t is None:
        return None
    sel = t.training
    h, rms = fit_half_dim(t.m[sel], t.n[sel], t.k[sel], t.achieved_fraction[sel], t.matmul_fraction,
                          DTYPE_BYTES["bf16"], t.hbm_bytes_per_s, t.peak_flop_per_s)
    text = (f"microbenchmark prior {h:.0f}: fitted on the {int(sel.sum())} training-step shapes (rows >= "
            f"{TRAINING_ROWS_MIN}, n and k >= {TRAINING_DIM_MIN}) of {t.path} (rms log residual {rms:.2f}; "
            f"planner/calibrate/priors.py)")
    return Prior(h, rms, int(sel.sum()), text)


def gemm_half_dim_note(generation: str, fitted: Optional[float]) -> str:
    """What the calibration file says beside a fitted ``gemm_half_dim``: its measured prior and, when the fit
    moved far from it, what that means; or that the generation has no measured prior."""
    prior = gemm_half_dim_prior(generation)
    if prior is None:
        return ("no GEMM-by-shape table of this generation is shipped: no measured prior (the default, 256, is a "
                "guess)")
    if fitted is None:
        return prior.text
    err = float(np.median(gemm_table(generation).law_error(fitted)))
    return (f"{prior.text}. The fit is {fitted / prior.value:.1f}x the prior: at it the law predicts those isolated "
            f"GEMMs at {1 + err:.2f}x their measured rate (median), so the fitted value also absorbs time the layer "
            f"model does not count (benchmarks/gemm_law_vs_microbench.py)")


def parameter_notes(res: FitResult) -> dict[str, str]:
    """The ``note`` written beside each fitted value (``fit.write_calibration``): its bounds, whether it ended on
    one, and beside ``gemm_half_dim`` its microbenchmark prior."""
    return {n: f"bounds {BOUNDS[n][0]}..{BOUNDS[n][1]}" + (" (AT BOUND)" if n in res.at_bound else "")
            + (f"; {gemm_half_dim_note(res.generation, v)}" if n == "gemm_half_dim" else "")
            for n, v in res.params.items()}
