"""Error bands and extrapolation flags on every answer, from the cross-validated accuracy of the hardware's
generation (``HardwareSpec.accuracy``: ``planner/data/accuracy.yaml``, ``planner/calibrate/bands.py``).

With e the held-out error of predicted/measured tokens/s per GPU, a measured step time is the predicted one times
(1 + e); the band of a step time is therefore step x (1 + e_p10) .. step x (1 + e_p90), and of MFU (and tokens/s)
the inverse. Days, GPU-hours and dollars scale with the step time (their fixed parts, checkpoints and restarts,
are a few percent and scaled alike). Outside the validated region (more GPUs than any validated run, a sequence
length outside the runs' span, a borrowed calibration) the band's deviations are widened by
:data:`OUTSIDE_WIDENING`, and the reason is given in ``extrapolation``; a predicted MFU more than
:data:`RECORD_MARGIN` above the best published on the generation is flagged too.

Left out: the correlation of the band with the plan's parallelism kind (the bands are per generation only, as the
data holds too few runs of each kind to split further).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..specs.hardware import HardwareSpec
from .efficiency import time_params
from .layout import Num, shard_group

#: Factor on the band's deviations from 1 outside the validated region (no data says how much worse it is there:
#: a stated widening, not a measurement).
OUTSIDE_WIDENING = 1.5
#: Relative margin above the best published MFU of a generation before a prediction is flagged.
RECORD_MARGIN = 0.10
#: Columns that scale with the step time, and those that scale with its inverse.
WITH_STEP = ("step_time_s", "wall_clock_days", "gpu_hours", "cost_usd")
AGAINST_STEP = ("mfu", "tokens_per_s_per_gpu")
BAND_COLUMNS = tuple(f"{k}_{q}" for k in WITH_STEP + AGAINST_STEP for q in ("p10", "p90")) + ("extrapolation",)


def full_shard_gpus(zero_stage: Num, fsdp_hybrid: Num, dp: Num, cp: Num, tp: Num, gpus_per_node: int) -> Num:
    """GPUs one ZeRO-3/FSDP shard of the parameters spans (:func:`~planner.core.layout.shard_group`), 0 where the
    parameters are not sharded (ZeRO stage below 3)."""
    return np.where(np.asarray(zero_stage) >= 3, shard_group(dp, cp, tp, fsdp_hybrid, gpus_per_node), 0)


def row_full_shard_gpus(row: dict, gpus_per_node: int) -> Num:
    """:func:`full_shard_gpus` of an estimate or search row (0 where the row lacks the layout columns)."""
    if "zero_stage" not in row or "dp" not in row:
        return 0
    fsdp = np.asarray(row.get("fsdp", "none"), dtype=object)
    return full_shard_gpus(np.asarray(row["zero_stage"]), fsdp == "hybrid", np.asarray(row["dp"]),
                           np.asarray(row.get("cp", 1)), np.asarray(row.get("tp", 1)), gpus_per_node)


def _region_checks(hw: HardwareSpec, gpus: Num, seq_len: int, mfu: Num, zero_bubble: Num = False,
                   shard_gpus: Num = 0) -> list[tuple[Num, str]]:
    """(mask, reason) of every way a plan can lie outside what the calibration covers; ``mfu`` is against the peak
    of the precision the run uses, as the records are; ``zero_bubble``: a ZB-H1 pipeline (no public run used one);
    ``shard_gpus``: GPUs a ZeRO-3/FSDP shard spans (0 unsharded), checked against the largest shard group the
    held-out runs validate (the published DeepSpeed ZeRO-3 runs on 384-2,240 A100 ran 1.6-4.5x slower than
    predicted in sample: a regime the model is known to miss; README, "Where it is weak")."""
    acc = hw.accuracy
    gpus, mfu = np.asarray(gpus), np.asarray(mfu, dtype=float)
    gen = hw.generation or hw.name
    if acc is None:
        return [(True, "no cross-validated accuracy for this hardware")]
    if acc.borrowed:
        return [(True, f"borrowed calibration: no measured runs on {gen} GPUs")]
    checks: list[tuple[Num, str]] = [(zero_bubble, "zb-h1 pipeline schedule: no validated run used it")]
    if acc.max_gpus:
        checks.append((gpus > acc.max_gpus, f"GPU count beyond the largest validated {gen} run ({acc.max_gpus})"))
    if acc.max_seq_len and seq_len > acc.max_seq_len:
        checks.append((True, f"sequence {seq_len} longer than any validated {gen} run ({acc.max_seq_len})"))
    if acc.min_seq_len and seq_len < acc.min_seq_len:
        checks.append((True, f"sequence {seq_len} shorter than any validated {gen} run ({acc.min_seq_len})"))
    if acc.max_full_shard_gpus is not None:
        checks.append((np.asarray(shard_gpus) > acc.max_full_shard_gpus,
                       f"ZeRO-3/FSDP shard group larger than any validated on {gen} ({acc.max_full_shard_gpus} GPUs): "
                       "the larger published ZeRO-3 runs ran far slower than predicted"))
    rec = np.where(gpus >= 1024, acc.record_mfu_1024_gpus or acc.record_mfu or np.inf, acc.record_mfu or np.inf)
    checks.append((mfu > rec * (1 + RECORD_MARGIN), f"MFU above the best published on {gen} at that scale (+10%, "
                   "against the peak of the run's precision)"))
    return checks


def outside_region(hw: HardwareSpec, gpus: Num, seq_len: int, mfu: Num, zero_bubble: Num = False,
                   shard_gpus: Num = 0) -> np.ndarray:
    """Whether each candidate lies outside the validated region (any of :func:`extrapolation_flags`' reasons)."""
    shape = np.broadcast(np.asarray(gpus), np.asarray(mfu)).shape
    out = np.zeros(shape, dtype=bool)
    for mask, _ in _region_checks(hw, gpus, seq_len, mfu, zero_bubble, shard_gpus):
        out |= np.broadcast_to(np.asarray(mask, dtype=bool), shape)
    return out


def extrapolation_flags(hw: HardwareSpec, gpus: Num, seq_len: int, mfu: Num, zero_bubble: Num = False,
                        shard_gpus: Num = 0) -> np.ndarray:
    """Reasons (one string per candidate, "" when none; an object array of the broadcast shape) the plan lies
    outside what the calibration covers."""
    shape = np.broadcast(np.asarray(gpus), np.asarray(mfu)).shape
    out = np.full(shape, "", dtype=object)
    for mask, text in _region_checks(hw, gpus, seq_len, mfu, zero_bubble, shard_gpus):
        p = np.where(np.broadcast_to(np.asarray(mask, dtype=bool), shape), text, "")
        out = np.where((out != "") & (p != ""), out + "; " + p, np.where(out != "", out, p))
    return out


def band_multipliers(hw: HardwareSpec, outside: Num) -> Optional[tuple[Num, Num]]:
    """(1 + e_p10, 1 + e_p90): what a predicted step time is multiplied by at the band's ends, the deviations
    widened by :data:`OUTSIDE_WIDENING` outside the validated region; None without an accuracy entry."""
    acc = hw.accuracy
    if acc is None:
        return None
    widen = np.where(outside, OUTSIDE_WIDENING, 1.0)
    lo = np.maximum(1.0 + widen * acc.p10_signed_pct_error / 100.0, 0.05)
    return lo, 1.0 + widen * acc.p90_signed_pct_error / 100.0


def band_columns(row: dict, hw: HardwareSpec, flags: Optional[object] = None, precision: str = "bf16") -> dict:
    """``*_p10``/``*_p90`` of the step-time-like and throughput-like columns of ``row`` (scalars or arrays) and
    the ``extrapolation`` text; None where the row lacks the column or the hardware has no accuracy entry.

    The fast end never implies an MFU above the measured matmul ceiling (MAMF) of the run's precision: no
    training step outruns its GEMMs at their best shape."""
    out: dict = {}
    if flags is None:
        zero_bubble = (row.get("pipeline_schedule") == "zb-h1") & (np.asarray(row.get("pp", 1)) > 1)
        flags = extrapolation_flags(hw, row["gpus"], row["seq_len_tokens"], row["mfu_at_run_precision"], zero_bubble,
                                    row_full_shard_gpus(row, hw.gpus_per_node))
    flags_arr = np.asarray(flags, dtype=object)
    lo, hi = band_multipliers(hw, flags_arr != "") or (None, None)
    if lo is not None:
        ceiling = time_params(hw, precision).matmul_fraction
        lo = np.maximum(lo, np.asarray(row["mfu_at_run_precision"], dtype=float) / ceiling)
        hi = np.maximum(hi, lo)
    for k in WITH_STEP + AGAINST_STEP:
        v = row.get(k)
        if v is None or lo is None:
            out[f"{k}_p10"] = out[f"{k}_p90"] = None
            continue
        v = np.asarray(v, dtype=float)
        p10, p90 = (v * lo, v * hi) if k in WITH_STEP else (v / hi, v / lo)
        out[f"{k}_p10"], out[f"{k}_p90"] = _plain(p10), _plain(p90)
    out["extrapolation"] = flags_arr.item() if flags_arr.ndim == 0 else flags_arr
    return out


def _plain(a):
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a
