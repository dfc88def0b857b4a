"""Microbenchmark priors of the fitted time-model terms: what a measured kernel table says a fitted term should be,
written beside the fitted value (``planner fit-time --write``) so a reader sees how far the end-to-end fit moved it.

``gemm_half_dim`` (the x/(x+h) GEMM shape law of :func:`planner.core.kernels.gemm_efficiency`): fitted by
:func:`planner.calibrate.curves.fit_half_dim`, the same least squares ``planner calibrate`` runs on a ``planner
bench`` file, on the GEMMs the generation's published runs execute, measured on one of its GPUs
(``benchmarks/run_shapes_bench.py``: every distinct forward, data-gradient and weight-gradient GEMM of each run's
layers and output layer at its tensor-parallel degree and per-GPU tokens; a BENCH file under
``hardware_profiles/benches/``). Each shape is weighted by its measured time, so the prior is the value that gets
the GEMM time of those steps right, not the one that fits the most shapes: a training step's time is dominated by
its largest GEMMs, and an unweighted fit is pulled by the small ones (the output layer's data gradient of a 1B
model weighs as much as a 70B FFN). Read against the profile's datasheet peak, its MAMF and its HBM roofline, as the
time model reads them.

Other measured tables of a generation (:data:`CHECK_TABLES`: OpenXLA's H100 table, the ``planner bench`` sweep) are
cross-checks scored by ``benchmarks/gemm_law_vs_microbench.py``, not priors: their shapes are not the runs' (OpenXLA
stops at 4,096 per dimension, where the law fits poorly: rms log residual 0.52 over its 125 shapes). For those,
"training shapes" means output rows (micro-batch x sequence) >= 2,048 and both other dimensions >= 1,024.

**At the clock a training step runs at.** A GPU busy for long enough settles at the SM clock its power limit allows
(an H200 at 700 W: 1980 -> 1380-1620 MHz within a second; ``hardware_profiles/benches/h200-sustained.yaml``,
``benchmarks/sustained_gemm_bench.py``). The run-shape table was measured in one continuous stream after a GEMM
warm-up, so its rates are the power-capped ones a step gets: on the MPT-7B layer's GEMMs it reads 683 TFLOP/s, the
sustained loop 670 and the same loop's first pass after an idle wait 788 (``tests/test_gemm_microbench.py``). An
idle-start microbenchmark would read 10-15% fast.

Generations without such a table have no measured prior (the :class:`~planner.core.efficiency.TimeParams` default
is a guess, and is said to be one), and their ``gemm_half_dim`` is fitted.
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

#: generation -> (the profile whose peak, MAMF and HBM bandwidth the table is read against, its BENCH file): the GEMMs
#: the generation's published runs execute, measured (benchmarks/run_shapes_bench.py). The prior comes from it.
GEMM_TABLES = {"hopper": ("h200", "benches/h200-run-shapes.yaml")}
#: generation -> other measured GEMM tables, scored as cross-checks (benchmarks/gemm_law_vs_microbench.py)
CHECK_TABLES = {"hopper": (("h100-sxm", "benches/h100-sxm-openxla-gemm.yaml"),
                           ("h200", "benches/h200-planner-bench.yaml"))}
#: in a generic table, what counts as a training-step GEMM shape: output rows, and each other dimension, at least
TRAINING_ROWS_MIN = 2048
TRAINING_DIM_MIN = 1024


@dataclass(frozen=True)
class GemmTable:
    """The bf16 shapes of a measured GEMM table, read against a profile: achieved/peak and the law's inputs."""

    profile: str
    path: str
    device: str  #: the accelerator it was measured on, as its provenance names it
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    achieved_fraction: np.ndarray  #: measured FLOP/s / the profile's dense bf16 peak
    run_shapes: bool  #: every shape is one a published run executes (origin ``run:...``)
    matmul_fraction: float  #: the profile's MAMF (what the time model caps a GEMM at)
    hbm_bytes_per_s: float  #: achievable HBM bandwidth the roofline uses (profile bandwidth x its hbm_fraction)
    peak_flop_per_s: float

    @property
    def time_s(self) -> np.ndarray:
        """Measured time of each GEMM, s."""
        return 2.0 * self.m * self.n * self.k / (self.achieved_fraction * self.peak_flop_per_s)

    @property
    def training(self) -> np.ndarray:
        """Mask of the training-step shapes: all of a run-shapes table; the large ones of a generic table."""
        if self.run_shapes:
            return np.ones(self.m.shape, dtype=bool)
        return (self.m >= TRAINING_ROWS_MIN) & (self.n >= TRAINING_DIM_MIN) & (self.k >= TRAINING_DIM_MIN)

    def law(self, h: float) -> np.ndarray:
        """The time model's achieved/peak of every shape at half dimension ``h`` and the profile's MAMF."""
        return gemm_model_efficiency(self.m, self.n, self.k, h, self.matmul_fraction, DTYPE_BYTES["bf16"],
                                     self.hbm_bytes_per_s, self.peak_flop_per_s)

    def law_error(self, h: float, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """predicted/measured rate - 1 of the shapes in ``mask`` (the training shapes by default) at ``h``."""
        mask = self.training if mask is None else mask
        return self.law(h)[mask] / self.achieved_fraction[mask] - 1.0

    def time_ratio(self, h: float, mask: Optional[np.ndarray] = None) -> float:
        """The law's total time of the shapes in ``mask`` (training shapes by default) / their measured total."""
        mask = self.training if mask is None else mask
        law_s = 2.0 * self.m * self.n * self.k / (self.law(h) * self.peak_flop_per_s)
        return float(law_s[mask].sum() / self.time_s[mask].sum())


@dataclass(frozen=True)
class Prior:
    value: float
    rms_log_residual: float  #: time-weighted
    shapes: int
    text: str  #: one line for the calibration file's note


@lru_cache(maxsize=None)
def load_gemm_table(profile: str, rel: str) -> Optional[GemmTable]:
    """A BENCH file's bf16 GEMMs under ``hardware_profiles/`` read against ``profile``; None when it is missing."""
    path = PROFILE_DIRS[0] / rel  # shipped with the package, beside the profiles
    if not path.exists():
        return None
    bench = load_bench(path)
    rows = [r for r in bench.gemm if r.dtype == "bf16" and r.m]
    hw = load_hardware(profile)
    peak = hw.accelerator.peak("bf16")
    eff = time_params(hw, "bf16")
    m, n, k = (np.array([getattr(r, x) for r in rows], dtype=float) for x in "mnk")
    achieved = np.array([r.flop_per_s for r in rows]) / peak
    runs = all(r.origin.startswith("run:") for r in rows)
    return GemmTable(profile, f"hardware_profiles/{rel}", bench.provenance.device_name, m, n, k, achieved, runs,
                     eff.matmul_fraction, eff.hbm_fraction * hw.accelerator.hbm_bandwidth_bytes_per_s.value, peak)


def gemm_table(generation: str) -> Optional[GemmTable]:
    """The generation's table of its runs' GEMMs (the prior's), or None when none is shipped."""
    return load_gemm_table(*GEMM_TABLES[generation]) if generation in GEMM_TABLES else None


@lru_cache(maxsize=None)
def gemm_half_dim_prior(generation: str) -> Optional[Prior]:
    """``gemm_half_dim`` fitted, time-weighted, on the generation's run-shape table; None without a table."""
    t = gemm_table(generation)
    if t is None:
        return None
    sel = t.training
    h, rms = fit_half_dim(t.m[sel], t.n[sel], t.k[sel], t.achieved_fraction[sel], t.matmul_fraction,
                          DTYPE_BYTES["bf16"], t.hbm_bytes_per_s, t.peak_flop_per_s, weights=t.time_s[sel])
    text = (f"microbenchmark prior {h:.0f}: fitted on the {int(sel.sum())} bf16 GEMMs this generation's published "
            f"runs execute, measured on an {t.device} ({t.path}), each weighted by its measured time (weighted rms "
            f"log residual {rms:.2f}; planner/calibrate/priors.py)")
    return Prior(h, rms, int(sel.sum()), text)


def gemm_half_dim_note(generation: str, fitted: Optional[float]) -> str:
    """What the calibration file says beside a fitted ``gemm_half_dim``: its measured prior and, when the fit
    moved from it, what that means; or that the generation has no measured prior."""
    prior = gemm_half_dim_prior(generation)
    if prior is None:
        return ("no table of this generation's GEMMs is measured: no measured prior (the default, 256, is a "
                "guess)")
    if fitted is None:
        return prior.text
    t = gemm_table(generation)
    ratio = t.time_ratio(fitted)
    err = float(np.median(t.law_error(fitted)))
    what = (f"so the fitted value also absorbs about {100 * (ratio - 1):.0f}% of those steps' GEMM time that the "
            f"layer model does not count elsewhere" if ratio >= 1 else
            f"so the fit leaves about {100 * (1 - ratio):.0f}% of those steps' GEMM time to other terms")
    return (f"{prior.text}. The fit is {fitted / prior.value:.2f}x the prior: at it the law costs those GEMMs "
            f"{ratio:.3f}x their measured time in total (median shape: {1 + err:.2f}x its measured rate), {what} "
            f"(benchmarks/gemm_law_vs_microbench.py)")


def parameter_notes(res: FitResult) -> dict[str, str]:
    """The ``note`` written beside each fitted value (``fit.write_calibration``): its bounds, whether it ended on
    one, and beside ``gemm_half_dim`` its microbenchmark prior."""
    return {n: f"bounds {BOUNDS[n][0]}..{BOUNDS[n][1]}" + (" (AT BOUND)" if n in res.at_bound else "")
            + (f"; {gemm_half_dim_note(res.generation, v)}" if n == "gemm_half_dim" else "")
            for n, v in res.params.items()}
