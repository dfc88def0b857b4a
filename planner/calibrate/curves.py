"""Fit the time model's efficiency curves from a BENCH file and write a calibrated hardware profile.

Exactly the curves the time model reads (:class:`~planner.core.efficiency.TimeParams`), each against the
*profile's* datasheet peak, so the fractions mean what the time model multiplies them by:

* ``matmul_fraction``: for each dtype, the best achieved GEMM FLOP/s / the dtype's dense peak (the *maximum
  achievable matmul FLOPS* of stas00's mamf-finder). Written as ``matmul_max_achievable_flop_per_s_<dtype>`` and
  ``matmul_max_achievable_fraction_<dtype>``, the keys ``time_params`` reads.
* ``gemm_half_dim`` h: least squares, in log space (errors are relative), of achieved/peak over the measured
  shapes of one dtype against what ``kernels.gemm_efficiency`` and the roofline of ``kernels.gemm_time_s`` predict::

      eff(m, n, k) = min( f · m/(m+h) · n/(n+h) · k/(k+h),  2mnk / (e(mk + kn + mn)) · hbm_fraction · BW / peak )

  with f the dtype's matmul fraction above, e its bytes per element, BW the profile's HBM bandwidth. One
  parameter, so a coarse log grid over the bounds of ``planner.calibrate.fit.BOUNDS`` then a bounded scalar
  minimisation (``scipy.optimize.minimize_scalar``) in the best cell: no starting point to get wrong. Needs three
  or more shapes with dimensions; a value on a bound is flagged (``AT BOUND``), not hidden.
* ``attention_fraction``: the best SDPA forward+backward FLOP/s (FLOPs counted as the time model does:
  4·h·d·pairs forward, pairs halved for causal, backward 2.5 x forward; see :mod:`planner.calibrate.bench`) / the
  peak of its dtype; forward-only results count when no backward was measured. FlashAttention-2 (and CPU default)
  kernels give ``attention_fraction``, cuDNN's Hopper kernels ``attention_fraction_flash3``.
* **Attention curves** (``attention_kernels:`` of the profile, the per-length curves the time model reads before
  either fraction): for each SDPA backend (flash -> ``flash2``, cuDNN -> ``flash3``) measured at two or more
  lengths with and without a causal mask, the forward rate by length and mask and the backward rate by length,
  the backward timed as fwd_bwd minus fwd on 2.5 x the forward's FLOPs (:func:`attention_curves`). With no
  forward-only rows the curve holds the combined forward + backward rate for both passes.
* ``hbm_fraction``: the best measured copy bandwidth (read + write bytes / time) / the profile's peak HBM bandwidth.
* ``nvlink_busbw_fraction``: the intra-node all-reduce bus bandwidth / the profile's unidirectional NVLink
  bandwidth, at the largest measured group that fits in one node, best message size. Ring results are preferred
  over NVLS (NVLink SHARP): the time model leaves NVLS out (see ``hardware_profiles/h100-sxm.yaml``).

Parameters a bench cannot measure (``network_busbw_fraction`` needs several nodes) stay with the generation's fit
on published runs
(``hardware_profiles/calibration/``), which the registry merges under the profile's own values.

Measured fractions are rounded to 4 decimals (4 significant digits below 0.01), rates to 6 significant digits:
finer than any of these measurements repeat (run-to-run spread of a GEMM benchmark is about 1%).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import yaml
from pydantic import ValidationError
from scipy.optimize import minimize_scalar

from ..core.efficiency import TimeParams, peak_flop_per_s, time_params
from ..core.kernels import gemm_achieved_fraction
from ..errors import FitError, SpecError, format_validation_error
from ..specs.hardware import HardwareSpec
from .bench import DTYPE_BYTES, Bench
from .fit import BOUNDS

#: the TimeParams a bench can measure, in the order they are reported; `--only` takes these names
MEASURABLE = ("matmul_fraction", "gemm_half_dim", "attention_fraction", "attention_fraction_flash3", "hbm_fraction",
              "nvlink_busbw_fraction")
#: dtype whose shapes fit gemm_half_dim, in order of preference (the dtype LLM training runs its GEMMs in first)
HALF_DIM_DTYPES = ("bf16", "fp16", "fp32", "fp8")
MIN_SHAPES_FOR_HALF_DIM = 3
#: SDPA backend -> the time model's kernel name (``layout.attention_kernel``): torch's flash backend is
#: FlashAttention-2; cuDNN's Hopper kernels are FlashAttention-3's class (the same split as attention_fraction_flash3)
CURVE_KERNEL = {"flash": "flash2", "cudnn": "flash3"}
#: kernel -> the measurable parameter whose --only keeps its curve
CURVE_PARAM = {"flash2": "attention_fraction", "flash3": "attention_fraction_flash3"}


@dataclass(frozen=True)
class Fitted:
    """One efficiency entry for the profile."""

    param: str  #: the TimeParams name it feeds (one of MEASURABLE)
    key: str  #: the key under the profile's ``efficiency:``
    value: float
    how: str  #: what was measured and how it was reduced (the Sourced note)
    at_bound: bool = False


@dataclass(frozen=True)
class CurveFit:
    fitted: tuple[Fitted, ...]
    not_fitted: dict[str, str]  #: TimeParams name -> why it was not fitted
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: kernel name -> an AttentionKernelCurve mapping measured by the bench (the profile's ``attention_kernels:``)
    attention_curves: dict = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        return {f.key: f.value for f in self.fitted}

    def only(self, params: Iterable[str]) -> "CurveFit":
        keep = set(params)
        curves = {k: c for k, c in self.attention_curves.items() if CURVE_PARAM[k] in keep}
        return CurveFit(tuple(f for f in self.fitted if f.param in keep), self.not_fitted, self.warnings, curves)


def _sig(x: float, digits: int = 5) -> float:
    return float(f"{x:.{digits}g}")


def _frac(x: float) -> float:
    """4 decimals (4 significant digits below 0.01, so a CPU's tiny fractions do not round to 0)."""
    return round(float(x), 4) if abs(x) >= 0.01 else _sig(x, 4)


def _tf(x: float) -> str:
    return f"{x / 1e12:.4g} TFLOP/s"


def _gb(x: float) -> str:
    return f"{x / 1e9:.4g} GB/s"


def _peak(hw: HardwareSpec, dtype: str) -> Optional[float]:
    try:
        return peak_flop_per_s(hw, dtype)
    except SpecError:
        return None


def gemm_model_efficiency(m, n, k, h: float, f: float, e: float, bw_eff: float, peak: float):
    """The time model's achieved/peak of an (m x k)·(k x n) GEMM, for arrays of shapes: the core's one GEMM model
    (``kernels.gemm_achieved_fraction``) with matmul fraction ``f``, half dimension ``h`` and achievable HBM
    bandwidth ``bw_eff``."""
    eff = TimeParams(matmul_fraction=f, matmul_fraction_bf16=f, gemm_half_dim=h, hbm_fraction=1.0)
    return gemm_achieved_fraction(m, n, k, peak, bw_eff, e, eff)


def fit_half_dim(m, n, k, observed, f: float, e: float, bw_eff: float, peak: float,
                 bounds: tuple[float, float] = BOUNDS["gemm_half_dim"], weights=None) -> tuple[float, float]:
    """(h, rms of log residuals) minimising sum w·(log model - log observed)^2 over ``bounds``; ``weights`` (any
    positive scale, normalised here) default to equal, and the rms is weighted the same way."""
    obs = np.log(np.asarray(observed, dtype=float))
    w = np.ones_like(obs) if weights is None else np.asarray(weights, dtype=float)
    w = w * (len(obs) / w.sum())

    def sse(h):
        return float(np.sum(w * (np.log(gemm_model_efficiency(m, n, k, h, f, e, bw_eff, peak)) - obs) ** 2))

    lo, hi = bounds
    grid = np.concatenate([[lo], np.geomspace(max(lo, 1.0), hi, 64)])
    vals = [sse(h) for h in grid]
    i = int(np.argmin(vals))
    a, b = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
    if b > a:
        res = minimize_scalar(sse, bounds=(a, b), method="bounded", options={"xatol": 1e-3})
        h = float(res.x) if res.fun <= vals[i] else float(grid[i])
    else:
        h = float(grid[i])
    if not math.isfinite(sse(h)):
        raise FitError("gemm_half_dim: the fit did not converge (non-finite residuals)")
    return h, math.sqrt(sse(h) / len(obs))


def _names(text: str) -> set[str]:
    """Product tokens of an accelerator name: 'NVIDIA H100 80GB HBM3' -> {'h100'}."""
    return {t.lower() for t in re.findall(r"\b([A-Za-z]{1,3}\d{2,4}[A-Za-z]?)\b", text) if not t.lower().endswith("gb")}


def _device_warnings(bench: Bench, hw: HardwareSpec, warnings: list[str]) -> None:
    """Warn when the BENCH file was measured on a CPU or on a device unlike the profile's accelerator."""
    prov = bench.provenance
    acc = hw.accelerator
    if prov.device_type == "cpu":
        warnings.append(f"the BENCH file was measured on a CPU ({prov.device_name}): the fractions against "
                        f"{acc.name}'s peaks test the pipeline, they are not a GPU profile to plan with")
    else:
        theirs = _names(prov.device_name)
        ours = _names(" ".join([acc.name, hw.name] + list(hw.aliases)))
        if theirs and ours and not theirs & ours:
            warnings.append(f"the BENCH device {prov.device_name!r} does not look like the profile's "
                            f"{acc.name!r}: the fractions use the profile's peaks")


def _fit_hbm(bench: Bench, hw: HardwareSpec, fitted: list[Fitted], not_fitted: dict[str, str],
             warnings: list[str]) -> float:
    """Fit hbm_fraction from the best copy bandwidth; return it (the profile's value when nothing was measured)."""
    acc = hw.accelerator
    copies = [r for r in bench.memory if r.op == "copy"]
    hbm_frac = time_params(hw, "bf16").hbm_fraction
    if copies:
        best = max(copies, key=lambda r: r.bytes_per_s)
        bw = acc.hbm_bandwidth_bytes_per_s.value
        hbm_frac = _frac(best.bytes_per_s / bw)
        fitted.append(Fitted("hbm_fraction", "hbm_bandwidth_measured_bytes_per_s", _sig(best.bytes_per_s, 6),
                             f"best of {len(copies)} copy measurements (read + write bytes / median time), "
                             f"buffer {best.bytes / 2**20:.0f} MiB"))
        fitted.append(Fitted("hbm_fraction", "hbm_fraction", hbm_frac,
                             f"= {_gb(best.bytes_per_s)} measured copy bandwidth / {_gb(bw)} profile peak"))
        adds = [r for r in bench.memory if r.op == "add"]
        if adds:
            fitted.append(Fitted("hbm_fraction", "hbm_bandwidth_measured_add_bytes_per_s",
                                 _sig(max(r.bytes_per_s for r in adds), 6),
                                 "best elementwise add c = a + b (3 buffers moved); for the record, not read by the "
                                 "time model"))
        if hbm_frac > 1.0:
            warnings.append(f"hbm_fraction {hbm_frac} > 1: the measured copy is faster than the profile's peak")
    else:
        not_fitted["hbm_fraction"] = "no memory bandwidth measured"
    return hbm_frac


def _fit_matmul(bench: Bench, hw: HardwareSpec, fitted: list[Fitted], not_fitted: dict[str, str],
                warnings: list[str]) -> tuple[dict[str, list], dict[str, float]]:
    """Fit the matmul fraction per dtype from the best GEMM; return (GEMM rows by dtype, fraction by dtype)."""
    acc = hw.accelerator
    by_dtype: dict[str, list] = {}
    for r in bench.gemm:
        by_dtype.setdefault(r.dtype, []).append(r)
    frac_of: dict[str, float] = {}
    for dt in sorted(by_dtype):
        rows = by_dtype[dt]
        peak = _peak(hw, dt)
        if peak is None:
            warnings.append(f"{dt} GEMMs measured but {acc.name!r} has no {dt} peak: left out")
            continue
        best = max(rows, key=lambda r: r.flop_per_s)
        frac_of[dt] = _frac(best.flop_per_s / peak)
        shape = f"{best.m}x{best.n}x{best.k}" if best.m else "shape not given"
        how = (f"best of {len(rows)} {dt} GEMM{'s' if len(rows) > 1 else ''} (MxNxK {shape}, {best.origin}"
               + (f"; {best.note}" if best.note else "") + ")")
        fitted.append(Fitted("matmul_fraction", f"matmul_max_achievable_flop_per_s_{dt}", _sig(best.flop_per_s, 6),
                             how))
        fitted.append(Fitted("matmul_fraction", f"matmul_max_achievable_fraction_{dt}", frac_of[dt],
                             f"= {_tf(best.flop_per_s)} / {_tf(peak)} dense {dt} peak of the profile"))
        if frac_of[dt] > 1.0:
            warnings.append(f"matmul fraction {dt} {frac_of[dt]} > 1: faster than the profile's peak")
    if not frac_of:
        not_fitted["matmul_fraction"] = "no GEMM measured in a dtype the profile has a peak for"
    return by_dtype, frac_of


def _fit_gemm_half_dim(hw: HardwareSpec, by_dtype: dict[str, list], frac_of: dict[str, float], hbm_frac: float,
                       fitted: list[Fitted], not_fitted: dict[str, str], warnings: list[str]) -> None:
    """Fit gemm_half_dim on the GEMM shapes of the first dtype that has enough of them."""
    acc = hw.accelerator
    dt = next((d for d in HALF_DIM_DTYPES if d in frac_of
               and len({(r.m, r.n, r.k) for r in by_dtype[d] if r.m}) >= MIN_SHAPES_FOR_HALF_DIM), None)
    if dt is None:
        have = max((len({(r.m, r.n, r.k) for r in v if r.m}) for v in by_dtype.values()), default=0)
        not_fitted["gemm_half_dim"] = (f"needs {MIN_SHAPES_FOR_HALF_DIM}+ GEMM shapes with dimensions in one dtype, "
                                       f"the BENCH file has {have}")
        return
    rows = [r for r in by_dtype[dt] if r.m]
    peak = _peak(hw, dt)
    bw_eff = hbm_frac * acc.hbm_bandwidth_bytes_per_s.value
    h, rms = fit_half_dim([r.m for r in rows], [r.n for r in rows], [r.k for r in rows],
                          [r.flop_per_s / peak for r in rows], frac_of[dt], DTYPE_BYTES.get(dt, 2), bw_eff, peak)
    lo, hi = BOUNDS["gemm_half_dim"]
    at_bound = h <= lo + 1e-3 * (hi - lo) or h >= hi - 1e-3 * (hi - lo)
    fitted.append(Fitted("gemm_half_dim", "gemm_half_dim", round(h, 1),
                         f"least squares of log(achieved/peak) over {len(rows)} {dt} GEMM shapes against "
                         f"f·Π x/(x+h) (f = {frac_of[dt]}) with the HBM roofline; rms log residual {rms:.3f}; "
                         f"bounds {lo}..{hi}" + (" (AT BOUND)" if at_bound else ""), at_bound))
    if at_bound:
        warnings.append(f"gemm_half_dim {h:.1f} ended on a bound ({lo}..{hi}): the shapes do not pin it down")


def _fit_attention(bench: Bench, hw: HardwareSpec, fitted: list[Fitted], not_fitted: dict[str, str]) -> None:
    """Fit attention_fraction (flash and kin) and attention_fraction_flash3 (cuDNN) from the best SDPA result."""
    for param, backends in (("attention_fraction", ("flash", "default", "efficient", "math")),
                            ("attention_fraction_flash3", ("cudnn",))):
        rows = [r for r in bench.attention if r.backend in backends]
        use = [r for r in rows if r.direction == "fwd_bwd"] or rows
        if not use:
            not_fitted[param] = f"no SDPA result with backend {'/'.join(backends)}"
            continue
        best = max(use, key=lambda r: r.flop_per_s / (_peak(hw, r.dtype) or math.inf))
        peak = _peak(hw, best.dtype)
        if peak is None:
            not_fitted[param] = f"profile has no {best.dtype} peak"
            continue
        frac = _frac(best.flop_per_s / peak)
        fitted.append(Fitted(param, param, frac,
                             f"best of {len(use)} SDPA {best.backend} {best.direction} results: {_tf(best.flop_per_s)} "
                             f"at batch {best.batch} x {best.heads} heads x seq {best.seq} x d {best.head_dim}"
                             f"{' causal' if best.causal else ''} {best.dtype}, / {_tf(peak)} peak "
                             f"(FLOPs as planner/core/time.py counts them)"))


def _rate_table(rows) -> dict:
    """(seq, causal, direction) -> (FLOPs, median seconds) of one backend's SDPA rows (the median rate where a
    point was measured more than once)."""
    table: dict = {}
    for r in rows:
        table.setdefault((r.seq, r.causal, r.direction), []).append(r)
    out = {}
    for key, same in table.items():
        rate = float(np.median([r.flop_per_s for r in same]))
        out[key] = (same[0].flop, same[0].flop / rate)
    return out


def _one_curve(rows, what: str) -> tuple[Optional[dict], str]:
    """An AttentionKernelCurve mapping from one backend's rows of one dtype and head dim, or (None, why)."""
    t = _rate_table(rows)
    per_pass = [s for s in sorted({k[0] for k in t}) if all(
        (s, c, d) in t for c, d in ((False, "fwd"), (True, "fwd"), (False, "fwd_bwd")))]
    combined = [s for s in sorted({k[0] for k in t}) if (s, False, "fwd_bwd") in t and (s, True, "fwd_bwd") in t]
    tf = lambda flop, sec: round(flop / sec / 1e12, 1)  # noqa: E731  (TFLOP/s, as the curves hold them)
    if len(per_pass) >= 2:
        bwd = []
        for s in per_pass:
            (fwd_flop, fwd_s), (both_flop, both_s) = t[(s, False, "fwd")], t[(s, False, "fwd_bwd")]
            if both_s <= fwd_s:
                return None, f"at {s} tokens forward + backward timed no slower than forward alone"
            bwd.append(tf(both_flop - fwd_flop, both_s - fwd_s))
        return {"seq_tokens": per_pass, "fwd_tflop_per_s": [tf(*t[(s, False, "fwd")]) for s in per_pass],
                "fwd_causal_tflop_per_s": [tf(*t[(s, True, "fwd")]) for s in per_pass],
                "bwd_tflop_per_s": bwd,
                "source": f"{what}: forward rows by length and mask; backward = fwd_bwd minus fwd time on 2.5 x the "
                          f"forward's FLOPs, without mask"}, ""
    if len(combined) >= 2:
        both = [tf(*t[(s, False, "fwd_bwd")]) for s in combined]
        return {"seq_tokens": combined, "fwd_tflop_per_s": both, "bwd_tflop_per_s": both,
                "fwd_causal_tflop_per_s": [tf(*t[(s, True, "fwd_bwd")]) for s in combined],
                "source": f"{what}: forward + backward rows only, so both passes hold the combined rate"}, ""
    return None, ("needs two or more lengths measured forward with and without a causal mask and forward + "
                  "backward without (or forward + backward both ways)")


def attention_curves(bench: Bench, hw: HardwareSpec) -> tuple[dict, dict[str, str]]:
    """({kernel: AttentionKernelCurve mapping}, {kernel: why not}) from the bench's SDPA rows: per backend the
    half-precision dtype measured (bf16 first) at its most measured head dim, rates in TFLOP/s against the
    profile's peak of that dtype (which the time model rescales by a profile's own peak)."""
    curves, why = {}, {}
    for backend, kernel in CURVE_KERNEL.items():
        rows = [r for r in bench.attention if r.backend == backend and r.dtype in ("bf16", "fp16")]
        if not rows:
            continue
        dtype = "bf16" if any(r.dtype == "bf16" for r in rows) else "fp16"
        rows = [r for r in rows if r.dtype == dtype]
        dims = [r.head_dim for r in rows]
        head_dim = max(set(dims), key=dims.count)
        rows = [r for r in rows if r.head_dim == head_dim]
        peak = _peak(hw, dtype)
        if peak is None:
            why[kernel] = f"profile has no {dtype} peak"
            continue
        curve, reason = _one_curve(rows, f"SDPA {backend} backend, {dtype}, head dim {head_dim}")
        if curve is None:
            why[kernel] = f"SDPA {backend}: {reason}"
            continue
        curves[kernel] = {"kernel": f"torch SDPA {backend} backend as `planner bench` measured it",
                          "head_dim": head_dim, "peak_tflop_per_s": round(peak / 1e12, 1), **curve}
    return curves, why


def _fit_nvlink(bench: Bench, hw: HardwareSpec, fitted: list[Fitted], not_fitted: dict[str, str],
                warnings: list[str]) -> None:
    """Fit nvlink_busbw_fraction from the intra-node all-reduce bus bandwidth (ring preferred over NVLS)."""
    gpn = hw.gpus_per_node
    ar = [c for c in bench.collectives if c.op == "all_reduce" and c.scope == "intra_node" and c.world_size <= gpn]
    if not ar:
        not_fitted["nvlink_busbw_fraction"] = "no intra-node all-reduce measured" + (
            f" ({next((s.reason for s in bench.skipped if s.what == 'collectives'), '')})"
            if any(s.what == "collectives" for s in bench.skipped) else "")
        return
    ring = [c for c in ar if c.algo == "ring"]
    not_nvls = [c for c in ar if c.algo != "nvls"]
    pool = ring or not_nvls or ar
    world = max(c.world_size for c in pool)
    pool = [c for c in pool if c.world_size == world]
    best = max(pool, key=lambda c: c.busbw_bytes_per_s)
    link = hw.node.intra_node_bandwidth_bytes_per_s.value
    kind = "ring" if ring else ("NVLS" if pool[0].algo == "nvls" else "default-algorithm")
    if not ring and not not_nvls:
        warnings.append("only NVLS all-reduce results: nvlink_busbw_fraction includes NVLink SHARP, which the "
                        "time model otherwise leaves out")
    at_world = max(c.world_size for c in ar)
    every = [c for c in ar if c.world_size == at_world]
    top = max(every, key=lambda c: c.busbw_bytes_per_s)
    fitted.append(Fitted("nvlink_busbw_fraction", "allreduce_busbw_intra_node_bytes_per_s",
                         _sig(top.busbw_bytes_per_s, 6),
                         f"best {at_world}-GPU all-reduce bus bandwidth, any algorithm"
                         + (f" ({top.algo})" if top.algo else "") + (f"; {top.note}" if top.note else "")))
    if ring:
        fitted.append(Fitted("nvlink_busbw_fraction", "allreduce_busbw_intra_node_ring_bytes_per_s",
                             _sig(best.busbw_bytes_per_s, 6), f"best {world}-GPU ring all-reduce bus bandwidth"))
    fitted.append(Fitted("nvlink_busbw_fraction", "nvlink_busbw_fraction", _frac(best.busbw_bytes_per_s / link),
                         f"= {_gb(best.busbw_bytes_per_s)} {kind} all-reduce busbw ({world} GPUs) / {_gb(link)} "
                         f"unidirectional intra-node link of the profile"))


def fit_curves(bench: Bench, hw: HardwareSpec) -> CurveFit:
    """The measurable TimeParams of ``bench`` against the peaks of ``hw``."""
    fitted: list[Fitted] = []
    not_fitted: dict[str, str] = {}
    warnings: list[str] = []
    _device_warnings(bench, hw, warnings)
    # hbm_fraction first: the GEMM roofline in the half-dim fit uses it
    hbm_frac = _fit_hbm(bench, hw, fitted, not_fitted, warnings)
    by_dtype, frac_of = _fit_matmul(bench, hw, fitted, not_fitted, warnings)
    _fit_gemm_half_dim(hw, by_dtype, frac_of, hbm_frac, fitted, not_fitted, warnings)
    _fit_attention(bench, hw, fitted, not_fitted)
    curves, no_curve = attention_curves(bench, hw)
    for kernel, why in no_curve.items():
        not_fitted[f"attention curve {kernel}"] = why
    _fit_nvlink(bench, hw, fitted, not_fitted, warnings)
    not_fitted["network_busbw_fraction"] = ("not measurable by a microbenchmark on one node: stays fitted on "
                                            "published runs")
    return CurveFit(tuple(fitted), not_fitted, tuple(warnings), curves)


def bench_citation(bench: Bench, bench_ref: str) -> str:
    """The ``source`` of every fitted entry: the BENCH file and its provenance."""
    p = bench.provenance
    if p.device_type == "published":
        return (f"BENCH {bench_ref} ({p.tool}, converted {p.date}), fitted by `planner calibrate`; "
                f"measurements from the sources cited in it")
    bits = [p.device_name, f"{p.device_count} visible" if p.device_count > 1 else None, p.host, p.date,
            f"torch {p.torch}" if p.torch else None, f"CUDA {p.cuda}" if p.cuda else None,
            f"driver {p.driver}" if p.driver else None]
    return (f"measured by `planner bench` on {', '.join(b for b in bits if b)}; BENCH {bench_ref}; "
            f"fitted by `planner calibrate`")


def calibrated_profile(profile: dict, bench: Bench, fit: CurveFit, bench_ref: str,
                       name: Optional[str] = None) -> dict:
    """A copy of the raw ``profile`` mapping with the fitted values under ``efficiency:`` as Sourced entries.

    Aliases are dropped (the copy must not capture the original's names when both are on the profile path); the
    generation stays, so what a bench cannot measure keeps the generation's fit."""
    data = copy.deepcopy(profile)
    data["name"] = name or f"{data.get('name', 'profile')}-calibrated"
    data.pop("aliases", None)
    p = bench.provenance
    data["description"] = (f"{data.get('description') or data['name']}; efficiencies calibrated from "
                           f"{'published microbenchmarks' if p.device_type == 'published' else 'planner bench'} "
                           f"({p.device_name}, {p.date[:10]})")
    eff = dict(data.get("efficiency") or {})
    src = bench_citation(bench, bench_ref)
    for f in fit.fitted:
        eff[f.key] = {"value": f.value, "source": src, "note": f.how}
    data["efficiency"] = eff
    if fit.attention_curves:  # the profile's own curves win over its generation's (registry.with_calibration)
        curves = {k: {**c, "source": f"{src}; {c['source']}"} for k, c in fit.attention_curves.items()}
        data["attention_kernels"] = {**(data.get("attention_kernels") or {}), **curves}
    return data


def check_profile(data: dict, where: str) -> HardwareSpec:
    """The profile as the registry would load it (calibration merged); SpecError otherwise."""
    from ..registry import with_calibration

    try:
        return HardwareSpec.model_validate(with_calibration(data))
    except ValidationError as exc:  # pragma: no cover - the input profile was valid
        raise SpecError(format_validation_error(exc, prefix=where)) from None


def dump_profile(data: dict, bench: Bench, bench_ref: str, fit: CurveFit) -> str:
    p = bench.provenance
    lines = [f"# Hardware profile calibrated by `planner calibrate` from {bench_ref}",
             f"# device: {p.device_name} ({p.device_type}); bench date {p.date}; tool {p.tool}"]
    if p.torch or p.cuda or p.driver:
        lines.append(f"# torch {p.torch or '-'}, CUDA {p.cuda or '-'}, driver {p.driver or '-'}, host {p.host or '-'}")
    for k, why in fit.not_fitted.items():
        lines.append(f"# not fitted: {k}: {why}")
    lines.append("# Use it with: planner estimate --gpu THIS_FILE.yaml ...")
    return "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True)


def calibrate(bench_path, profile: str, out: Optional[Path] = None, name: Optional[str] = None,
              only: Optional[Iterable[str]] = None, raw_profile: Optional[dict] = None,
              force: bool = False) -> tuple[Path, CurveFit, dict]:
    """Fit ``bench_path`` against ``profile`` (name, alias or path) and write the calibrated profile to ``out``
    (default ``<profile>-calibrated.yaml`` in the working directory). ``raw_profile`` replaces the profile's
    mapping (tests strip its efficiency entries to show the values come from the BENCH file)."""
    from ..registry import load_hardware, profile_data
    from .bench import load_bench

    bench = load_bench(bench_path)
    raw = raw_profile if raw_profile is not None else profile_data(profile)
    hw = check_profile(raw, f"profile {profile}") if raw_profile is not None else load_hardware(profile)
    fit = fit_curves(bench, hw)
    if only:
        bad = [o for o in only if o not in MEASURABLE]
        if bad:
            raise SpecError(f"--only {', '.join(bad)}: not a measurable parameter (one of {', '.join(MEASURABLE)})")
        fit = fit.only(only)
    if not fit.fitted:
        raise FitError(f"{bench_path}: nothing to calibrate ("
                       + "; ".join(f"{k}: {v}" for k, v in fit.not_fitted.items() if k in MEASURABLE) + ")")
    data = calibrated_profile(raw, bench, fit, str(bench_path), name)
    check_profile(data, f"calibrated {data['name']}")
    out = Path(out) if out else Path(f"{data['name']}.yaml")
    from ..io.files import write_text_file  # the output boundary: no clobbering unless force, atomic

    write_text_file(out, dump_profile(data, bench, str(bench_path), fit), force=force)
    return out, fit, data


def compare(fit: CurveFit, hw: HardwareSpec) -> list[dict]:
    """Rows of fitted value vs the profile's current one (with the generation's calibration) for the report."""
    eff = {k: q.value for k, q in hw.efficiency.items()}
    defaults = TimeParams()
    rows = []
    for f in fit.fitted:
        before = eff.get(f.key, getattr(defaults, f.key, None))
        rows.append({"parameter": f.param, "key": f.key, "fitted": f.value, "profile": before,
                     "change_pct": round(100.0 * (f.value / before - 1.0), 2) if before else None,
                     "at_bound": f.at_bound})
    return rows
