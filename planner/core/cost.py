"""Whole run: wall clock, GPU-hours, dollars, energy and CO2, with failures and checkpoints (docs/DESIGN.md §2).

Pure functions over numbers that broadcast: ``step_time_s``, ``gpus``, ``tokens_per_step`` and the checkpoint size
may be numpy arrays of layout candidates (the search), or scalars (one estimate). Inputs come from the step-time
model (``planner.core.time``) and a :class:`~planner.specs.schedule.ScheduleSpec` (defaults and their sources are
documented there).

The model, step by step (``T`` are seconds):

1. **Steps.** Without a ramp, ``ceil(D / B)`` steps of ``B`` tokens. With a batch ramp-up from ``b0`` growing
   linearly in consumed tokens over ``R`` tokens (Megatron ``--rampup-batch-size``, continuous approximation),
   the ramp takes ``R / (B - b0) * ln(B / b0)`` steps (the integral of dx / b(x)) and consumes ``R`` tokens.
2. **Ideal compute time** ``T_c``. A full step takes ``step_time_s``; a step at batch ``b`` takes
   ``F + (step_time_s - F) * b / B`` where ``F = step_fixed_s`` is the part that does not shrink with the batch
   (pipeline bubble, exposed data-parallel communication, optimizer step: ``TimeBreakdown`` parts). Summed over
   the ramp: ``F * ramp_steps + (step_time_s - F) * R / B`` (exact for any batch sequence with these step times).
3. **Checkpoints.** A write of ``C`` bytes at ``W`` bytes/s takes ``C / W``; training blocks for all of it, or
   for ``async_blocking_fraction`` of it with async checkpointing. The interval ``tau`` (training time between
   checkpoints) defaults to Young's optimum ``sqrt(2 * blocking * M)`` (Young 1974; Daly 2006, first order;
   Daly's higher-order estimate is shorter by about (2/3)·sqrt(blocking / (2M)) relative: ~1% for a 1T-parameter
   checkpoint at the default per-GPU bandwidth and failure rate, whatever the GPU count), no shorter than one
   full write when async. Checkpoint time = ``T_c / tau * blocking``. With no failures ``M`` is infinite,
   so is ``tau``, and no checkpoint is taken.
4. **Failures.** The job is interrupted at ``failures_per_gpu_hour * gpus`` per hour (mean time between failures
   ``M``). Each interruption costs the restart plus, on average, half an interval of lost work:
   ``L = restart_s + min(tau, T_c) / 2``. Interruptions also strike during restarts and recomputation, so the
   expected wall time solves ``T = T_u + (T / M) * L``: ``T = T_u / (1 - L / M)`` with ``T_u`` = compute +
   checkpoints + evaluation + data loading + run overhead (step 6); when ``L >= M`` the run never finishes (infinite wall time, goodput 0).
   Expected interruptions = ``T / M``.
5. **Evaluation and data loading**: fractions of ``T_c`` added on top.
6. **Run overhead** (``run_overhead_fraction``): what steps 3-5 leave out of a run as teams run it (stragglers,
   hangs, data stalls, loss-spike rollbacks, hardware churn, layouts below the best one), a fraction of ``T_c``
   added on top. Its default is derived from the public whole runs and cross-validated leave-one-out
   (:mod:`planner.calibrate.whole_runs`, ``benchmarks/whole_runs.py``); see
   :data:`~planner.specs.schedule.DEFAULT_RUN_OVERHEAD_FRACTION`.

Two rates, both reported. The **steady-state** rate is the chosen layout's step time (``step_time_s``, ``mfu``,
``tokens_per_s_per_gpu``): ``wall_clock_ideal_days`` and ``ideal_gpu_hours`` are the run at that rate, training
steps only (ramp included). The **end-to-end** rate is what the whole run achieves: ``wall_clock_days``,
``gpu_hours``, ``end_to_end_mfu`` and ``end_to_end_tokens_per_s_per_gpu``; ``goodput`` = steady / end-to-end.

Wall time = compute + checkpoint + failures + eval + data loading + run overhead (:data:`CostResult.TIME_PARTS`, a
test checks the sum). ``goodput`` = compute / wall time: 1 exactly when there are no failures, the interval is the
default and evaluation, data loading and the run overhead are 0; an explicit checkpoint interval keeps its overhead
even without failures.

Money: GPU-hours = GPUs x wall time (every allocated GPU is paid for while the job is down); compute dollars =
GPU-hours x price; plus the storage and network line items (:data:`CostResult.COST_PARTS` sum to ``cost_usd``).
Energy = GPU-hours x board power (TDP x utilisation, or measured) x node overhead x PUE; CO2 = energy x grid
intensity (Touvron et al. 2023 §6's formula, whose defaults reproduce LLaMA Table 15).

Left out of the mechanisms (steps 3-5), and so folded into the run overhead of step 6: slow nodes and stragglers,
rollbacks after loss spikes (OPT-175B and BLOOM restarted from earlier checkpoints by hand), spare nodes kept in
reserve (BLOOM held 4). Left out altogether: failures while a checkpoint is being written, the lower power drawn
while the job is down (energy counts it at full power), and queueing before the job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import SpecError
from ..specs.hardware import HardwareSpec
from ..specs.model import ModelSpec
from ..specs.run import RunSpec
from ..specs.schedule import ScheduleSpec
from ..units import GB, SECONDS_PER_DAY, SECONDS_PER_HOUR
from .layout import Num
from .memory import bytes_per_weight, optimizer_bytes_per_param
from .params import param_breakdown


#: Keys of ``Estimate.to_dict()`` (``time_`` + TimeBreakdown part) whose sum is the part of a step that does not
#: shrink with the global batch: pipeline fill/drain, exposed DP gradient reduce / ZeRO gathers, optimizer step.
STEP_FIXED_KEYS = ("time_bubble_s", "time_dp_comm_s", "time_optimizer_s")

#: Checkpoint bytes per parameter when only ``params_total`` and ``precision`` are known (Adam assumed): mixed
#: precision 2 (bf16/fp16 weights) + 12 (fp32 master, momentum, variance) = 14, which BLOOM's 2.3 TB for 176B
#: parameters confirms (tr11-176B-ml README); fp32 4 + 8 = 12.
FALLBACK_CHECKPOINT_BYTES_PER_PARAM = {"mixed": 14.0, "full": 12.0}


def _errstate():
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def checkpoint_bytes_of(model: ModelSpec, run: RunSpec) -> float:
    """Bytes of one full checkpoint: every parameter's stored weight plus its optimizer state (master copy
    included), as ``planner.core.memory`` sizes them for this run's precision and optimizer."""
    n = param_breakdown(model).total
    return float(n) * (bytes_per_weight(run) + optimizer_bytes_per_param(run))


def batch_schedule(training_tokens: Num, tokens_per_step: Num, start_batch_tokens: Optional[Num] = None,
                   ramp_tokens: Num = 0.0) -> tuple[Num, Num, Num]:
    """``(ramp_steps, ramp_tokens_used, full_steps)``: steps taken during a linear batch ramp (fractional, the
    continuous approximation), the tokens they consume, and the whole steps at the full batch after it."""
    d = np.asarray(training_tokens, dtype=float)
    b = np.asarray(tokens_per_step, dtype=float)
    if start_batch_tokens is None:
        return np.zeros_like(d * b), np.zeros_like(d * b), np.ceil(d / b)
    with _errstate():
        r = np.asarray(ramp_tokens, dtype=float)
        b0 = np.minimum(np.asarray(start_batch_tokens, dtype=float), b)
        used = np.minimum(r, d)
        frac = np.where(r > 0, used / np.where(r > 0, r, 1.0), 0.0)
        b_end = b0 + (b - b0) * frac
        span = b - b0
        ramp_steps = np.where(span > 1e-9 * b, r / np.where(span > 0, span, 1.0) * np.log(b_end / b0), used / b0)
    full_steps = np.ceil(np.maximum(d - used, 0.0) / b)
    return ramp_steps, used, full_steps


def ideal_compute_s(step_time_s: Num, full_steps: Num, ramp_steps: Num = 0.0, ramp_tokens_used: Num = 0.0,
                    tokens_per_step: Num = 1.0, step_fixed_s: Num = 0.0) -> Num:
    """Training-step time of the run without failures or overheads, s: ``full_steps * step_time_s`` plus the
    ramp, where a step at batch b takes ``F + (step_time_s - F) * b / B``."""
    variable = np.asarray(step_time_s, dtype=float) - step_fixed_s
    ramp = (step_fixed_s * np.asarray(ramp_steps, dtype=float)
            + variable * np.asarray(ramp_tokens_used, dtype=float) / tokens_per_step)
    return full_steps * np.asarray(step_time_s, dtype=float) + ramp


def mtbf_s(failures_per_gpu_hour: Num, gpus: Num) -> Num:
    """Mean time between interruptions of the whole job, s (infinite when the rate is 0)."""
    rate = np.asarray(failures_per_gpu_hour, dtype=float) * np.asarray(gpus, dtype=float) / SECONDS_PER_HOUR
    with _errstate():
        return np.where(rate > 0, 1.0 / np.where(rate > 0, rate, 1.0), np.inf)


def young_daly_interval_s(blocking_s: Num, mtbf: Num) -> Num:
    """Young 1974 / Daly 2006 (first order) optimum checkpoint interval ``sqrt(2 * blocking_s * mtbf)``, s;
    infinite when failures never happen."""
    blocking = np.asarray(blocking_s, dtype=float)
    m = np.asarray(mtbf, dtype=float)
    with _errstate():
        return np.where(np.isinf(m), np.inf, np.sqrt(2.0 * blocking * np.where(np.isinf(m), 0.0, m)))


def checkpoint_times_s(checkpoint_bytes: Num, write_bytes_per_s: Num, async_checkpoint: bool = False,
                       async_blocking_fraction: float = 1.0) -> tuple[Num, Num]:
    """``(write_s, blocking_s)``: time to write one checkpoint, and the part of it training waits for."""
    write = np.asarray(checkpoint_bytes, dtype=float) / np.asarray(write_bytes_per_s, dtype=float)
    return write, write * (async_blocking_fraction if async_checkpoint else 1.0)


def checkpoint_interval_s(blocking_s: Num, write_s: Num, mtbf: Num, async_checkpoint: bool = False,
                          interval_s: Optional[Num] = None) -> Num:
    """The interval the run uses: ``interval_s`` when given, else Young/Daly; an async write must finish before
    the next one starts, so async intervals are at least one write."""
    if interval_s is not None:
        return np.asarray(interval_s, dtype=float) + np.zeros_like(np.asarray(blocking_s, dtype=float))
    tau = young_daly_interval_s(blocking_s, mtbf)
    return np.maximum(tau, write_s) if async_checkpoint else tau


def checkpoint_overhead_s(compute_s: Num, interval: Num, blocking_s: Num) -> Num:
    """Time training is blocked by checkpoints, s: ``compute_s / interval * blocking_s`` (0 when no checkpoint is
    taken: infinite interval, or nothing blocks)."""
    c = np.asarray(compute_s, dtype=float)
    tau = np.asarray(interval, dtype=float)
    blk = np.asarray(blocking_s, dtype=float)
    with _errstate():
        n = np.where(np.isfinite(tau) & (tau > 0), c / np.where(tau > 0, tau, 1.0), 0.0)
        return np.where(blk > 0, n * blk, 0.0)


def lost_per_failure_s(restart_s: Num, interval: Num, compute_s: Num) -> Num:
    """Expected time one interruption costs, s: the restart plus half an interval of work recomputed (the work
    since the last checkpoint; never more than half the run)."""
    return restart_s + 0.5 * np.minimum(np.asarray(interval, dtype=float), np.asarray(compute_s, dtype=float))


def wall_with_failures_s(useful_s: Num, lost_s: Num, mtbf: Num) -> Num:
    """Expected wall time ``T = T_u / (1 - L / M)`` (interruptions also strike during restarts and recomputation);
    infinite when ``L >= M`` (the run never finishes)."""
    u = np.asarray(useful_s, dtype=float)
    with _errstate():
        ratio = np.where(np.isinf(mtbf), 0.0, np.asarray(lost_s, dtype=float) / np.where(np.isinf(mtbf), 1.0, mtbf))
        return np.where(ratio < 1.0, u / np.where(ratio < 1.0, 1.0 - ratio, 1.0), np.inf)


def energy_mwh(gpu_hours: Num, board_power_w: Num, node_overhead_factor: float = 1.0, pue: float = 1.0) -> Num:
    """Facility energy, MWh: GPU-hours x board power (W) x node overhead x PUE / 1e6."""
    return np.asarray(gpu_hours, dtype=float) * board_power_w * node_overhead_factor * pue / 1e6


def co2_tonnes(energy: Num, grid_kgco2_per_kwh: float) -> Num:
    """tCO2eq from MWh and kgCO2eq/kWh (1 MWh x 1 kg/kWh = 1 t)."""
    return np.asarray(energy, dtype=float) * grid_kgco2_per_kwh


def _out(v):
    """A to_dict value: a Python float for a 0-d finite number, None for a non-finite scalar, arrays unchanged."""
    a = np.asarray(v)
    if a.ndim == 0:
        x = float(a)
        return x if np.isfinite(x) else None
    return v


@dataclass(frozen=True)
class CostResult:
    """The whole run. Times in seconds (``to_dict`` reports days), scalars or arrays that broadcast together.

    ``compute_s + checkpoint_s + failures_s + eval_s + data_loading_s`` is the wall time and
    ``cost_compute_usd + cost_storage_usd + cost_network_usd`` the cost (tests check both).
    """

    training_tokens: Num  #: tokens trained on
    run_steps: Num  #: optimizer steps, ramp included (ramp steps fractional)
    gpus: Num  #: GPUs held for the whole wall time
    compute_s: Num  #: training steps run once (ideal compute time, batch ramp included), s
    checkpoint_s: Num  #: training blocked writing checkpoints, s
    failures_s: Num  #: restarts + recomputation of work lost since the last checkpoint, s
    eval_s: Num  #: evaluation, s
    data_loading_s: Num  #: exposed data loading, s
    run_overhead_s: Num  #: end-to-end losses the mechanisms above leave out (run_overhead_fraction x compute), s
    expected_failures: Num  #: interruptions expected over the wall time
    mtbf_s: Num  #: mean time between interruptions of the job, s (inf without failures)
    checkpoint_bytes: Num  #: bytes of one checkpoint
    checkpoint_write_s: Num  #: time to write one checkpoint, s
    checkpoint_blocking_s: Num  #: time training waits per checkpoint, s
    checkpoint_interval_s: Num  #: training time between checkpoints, s (inf: none taken)
    lost_per_failure_s: Num  #: restart + expected recomputation per interruption, s
    gpu_hours: Num  #: GPUs x wall time, GPU·h
    price_usd_per_gpu_hour: Num  #: price used, USD/(GPU·h) (nan when unknown)
    cost_compute_usd: Num  #: GPU-hours x price, USD
    cost_storage_usd: Num  #: storage line item, USD
    cost_network_usd: Num  #: network line item, USD
    board_power_w: Num  #: average board power per GPU used, W
    energy_mwh: Num  #: facility energy, MWh
    co2_tonnes: Num  #: tCO2eq
    steady_mfu: Num = np.nan  #: MFU of the layout at its steady-state step time (nan when not given)
    steady_step_time_s: Num = np.nan  #: steady-state step time at the full batch, s (nan when not given)
    tokens_per_step: Num = np.nan  #: full global batch, tokens (nan when not given)

    TIME_PARTS = ("compute_s", "checkpoint_s", "failures_s", "eval_s", "data_loading_s", "run_overhead_s")
    COST_PARTS = ("cost_compute_usd", "cost_storage_usd", "cost_network_usd")

    @property
    def wall_s(self) -> Num:
        """Wall-clock time of the run, s (sum of TIME_PARTS)."""
        return sum(getattr(self, p) for p in self.TIME_PARTS)

    @property
    def wall_clock_days(self) -> Num:
        return self.wall_s / SECONDS_PER_DAY

    @property
    def cost_usd(self) -> Num:
        """Total cost, USD (sum of COST_PARTS)."""
        return sum(getattr(self, p) for p in self.COST_PARTS)

    @property
    def goodput(self) -> Num:
        """Training-step time / wall time (0 when the run never finishes)."""
        w = self.wall_s
        with _errstate():
            return np.where(np.isfinite(w) & (w > 0), self.compute_s / np.where(w > 0, w, 1.0), 0.0)

    @property
    def ideal_gpu_hours(self) -> Num:
        """GPU-hours at the steady-state rate: GPUs x training-step time (ramp included), nothing else."""
        return np.asarray(self.gpus, dtype=float) * self.compute_s / SECONDS_PER_HOUR

    @property
    def end_to_end_tokens_per_s_per_gpu(self) -> Num:
        """Tokens / (GPUs x wall time): the rate the whole run achieves (0 when it never finishes)."""
        w = self.wall_s
        with _errstate():
            return np.where(np.isfinite(w) & (w > 0), np.asarray(self.training_tokens, dtype=float)
                            / (np.asarray(self.gpus, dtype=float) * np.where(w > 0, w, 1.0)), 0.0)

    @property
    def end_to_end_mfu(self) -> Num:
        """Model FLOPs of the run / (GPUs x wall time x peak) = steady MFU x (D / B) x step time / wall time (the
        steps at the full batch the MFU counts; nan when the steady MFU was not given, 0 when the run never ends)."""
        w = self.wall_s
        with _errstate():
            steady = np.asarray(self.training_tokens, dtype=float) / self.tokens_per_step * self.steady_step_time_s
            return np.where(np.isfinite(w) & (w > 0), self.steady_mfu * steady / np.where(w > 0, w, 1.0),
                            np.where(np.isnan(self.steady_mfu), np.nan, 0.0))

    @property
    def cost_per_billion_tokens_usd(self) -> Num:
        return self.cost_usd / (np.asarray(self.training_tokens, dtype=float) / GB)

    def time_parts(self) -> dict[str, Num]:
        return {p: getattr(self, p) for p in self.TIME_PARTS}

    def cost_parts(self) -> dict[str, Num]:
        return {p: getattr(self, p) for p in self.COST_PARTS}

    def to_dict(self) -> dict:
        """Flat mapping with stable unit-suffixed keys (JSON/CSV). Non-finite scalars (an unknown price, no
        failures' infinite MTBF, a run that never finishes) become None."""
        out = {
            "wall_clock_days": self.wall_clock_days,
            "gpu_hours": self.gpu_hours,
            "cost_usd": self.cost_usd,
            "energy_mwh": self.energy_mwh,
            "co2_tonnes": self.co2_tonnes,
            "goodput": self.goodput,
        }
        out.update({f"time_{p.removesuffix('_s')}_days": v / SECONDS_PER_DAY for p, v in self.time_parts().items()})
        out.update(self.cost_parts())
        out.update({
            "cost_per_billion_tokens_usd": self.cost_per_billion_tokens_usd,
            "price_usd_per_gpu_hour": self.price_usd_per_gpu_hour,
            "run_steps": self.run_steps,
            "expected_failures": self.expected_failures,
            "mtbf_hours": self.mtbf_s / SECONDS_PER_HOUR,
            "checkpoint_bytes": self.checkpoint_bytes,
            "checkpoint_write_s": self.checkpoint_write_s,
            "checkpoint_blocking_s": self.checkpoint_blocking_s,
            "checkpoint_interval_hours": self.checkpoint_interval_s / SECONDS_PER_HOUR,
            "lost_per_failure_hours": self.lost_per_failure_s / SECONDS_PER_HOUR,
            "board_power_w": self.board_power_w,
            "wall_clock_ideal_days": self.compute_s / SECONDS_PER_DAY,
            "ideal_gpu_hours": self.ideal_gpu_hours,
            "end_to_end_tokens_per_s_per_gpu": self.end_to_end_tokens_per_s_per_gpu,
            "end_to_end_mfu": self.end_to_end_mfu,
        })
        return {k: _out(v) for k, v in out.items()}


def whole_run(*, training_tokens: Num, tokens_per_step: Num, step_time_s: Num, gpus: Num, checkpoint_bytes: Num,
              tdp_w: float, schedule: Optional[ScheduleSpec] = None, price_usd_per_gpu_hour: Optional[float] = None,
              step_fixed_s: Num = 0.0, mfu: Num = np.nan) -> CostResult:
    """The whole run from a step time (scalars or broadcastable arrays). ``price_usd_per_gpu_hour`` is used when
    the schedule has no price of its own (None: cost unknown, nan). ``mfu`` is the steady-state MFU of the layout
    (for ``end_to_end_mfu``; nan when unknown)."""
    s = schedule or ScheduleSpec()
    d = np.asarray(training_tokens, dtype=float)
    b = np.asarray(tokens_per_step, dtype=float)
    n = np.asarray(gpus, dtype=float)
    ramp = s.batch_rampup
    ramp_steps, ramp_used, full_steps = batch_schedule(
        d, b, None if ramp is None else ramp.start_batch_tokens, 0.0 if ramp is None else ramp.ramp_tokens)
    compute = ideal_compute_s(step_time_s, full_steps, ramp_steps, ramp_used, b, step_fixed_s)

    mtbf = mtbf_s(s.failures_per_gpu_hour, n)
    ckpt_bytes = s.checkpoint_bytes if s.checkpoint_bytes is not None else checkpoint_bytes
    bw = s.checkpoint_write_bytes_per_s if s.checkpoint_write_bytes_per_s is not None else (
        s.checkpoint_write_bytes_per_s_per_gpu * n)
    write, blocking = checkpoint_times_s(ckpt_bytes, bw, s.async_checkpoint, s.async_blocking_fraction)
    tau = checkpoint_interval_s(blocking, write, mtbf, s.async_checkpoint, s.checkpoint_interval_s)
    ckpt = checkpoint_overhead_s(compute, tau, blocking)
    evals = s.eval_overhead_fraction * compute
    data = s.data_loading_overhead_fraction * compute
    overhead = s.run_overhead_fraction * compute
    useful = compute + ckpt + evals + data + overhead
    lost = lost_per_failure_s(s.restart_s, tau, compute)
    wall = wall_with_failures_s(useful, lost, mtbf)
    with _errstate():
        failures = wall - useful
        n_fail = np.where(np.isinf(mtbf), 0.0, wall / np.where(np.isinf(mtbf), 1.0, mtbf))
    gpu_hours = n * wall / SECONDS_PER_HOUR

    price = s.price_usd_per_gpu_hour if s.price_usd_per_gpu_hour is not None else price_usd_per_gpu_hour
    price = np.nan if price is None else float(price)
    power = s.board_power_w if s.board_power_w is not None else tdp_w * s.board_power_utilisation
    e = energy_mwh(gpu_hours, power, s.node_overhead_factor, s.pue)
    shape = np.zeros_like(gpu_hours)
    return CostResult(
        training_tokens=d + shape, run_steps=ramp_steps + full_steps + shape, gpus=n + shape,
        compute_s=compute + shape, checkpoint_s=ckpt + shape, failures_s=failures + shape, eval_s=evals + shape,
        data_loading_s=data + shape, run_overhead_s=overhead + shape, expected_failures=n_fail + shape, mtbf_s=mtbf + shape,
        checkpoint_bytes=np.asarray(ckpt_bytes, dtype=float) + shape, checkpoint_write_s=write + shape,
        checkpoint_blocking_s=blocking + shape, checkpoint_interval_s=tau + shape, lost_per_failure_s=lost + shape,
        gpu_hours=gpu_hours, price_usd_per_gpu_hour=price + shape, cost_compute_usd=gpu_hours * price,
        cost_storage_usd=s.storage_usd + shape, cost_network_usd=s.network_usd + shape,
        board_power_w=power + shape, energy_mwh=e, co2_tonnes=co2_tonnes(e, s.grid_kgco2_per_kwh),
        steady_mfu=np.asarray(mfu, dtype=float) + shape, steady_step_time_s=np.asarray(step_time_s, dtype=float) + shape,
        tokens_per_step=b + shape,
    )


def _need(values: Mapping[str, Any], key: str, what: str):
    v = values.get(key)
    if v is None:
        raise SpecError(f"{what}: needed for the whole-run time, cost and energy (no {key!r} in the estimate)")
    return v


def run_costs(values: Mapping[str, Any], schedule: Optional[ScheduleSpec], hardware: HardwareSpec, *,
              checkpoint_bytes: Optional[Num] = None) -> CostResult:
    """The whole run of one estimate (or of arrays of candidates) from ``Estimate.to_dict()``-style values.

    Reads ``training_tokens``, ``tokens_per_step``, ``step_time_s`` and ``gpus`` (required), the fixed part of a
    step from :data:`STEP_FIXED_KEYS` (for the batch ramp; 0 when absent), ``mfu`` (the steady-state MFU, for
    ``end_to_end_mfu``; nan when absent), the TDP and default price from
    ``hardware``. Checkpoint size, first found: ``schedule.checkpoint_bytes``, ``checkpoint_bytes`` (pass
    :func:`checkpoint_bytes_of` (model, run)), ``values['checkpoint_bytes']``, else ``params_total`` x 14 bytes
    (12 for fp32/tf32 ``precision``), Adam's weights + optimizer state. Raises SpecError when
    ``training_tokens`` is missing.
    """
    d = _need(values, "training_tokens", "run.training_tokens")
    b = _need(values, "tokens_per_step", "run.global_batch")
    st = _need(values, "step_time_s", "step time")
    g = _need(values, "gpus", "layout.gpus")
    fixed = sum(np.asarray(0.0 if values.get(k) is None else values[k], dtype=float) for k in STEP_FIXED_KEYS)
    ckpt = checkpoint_bytes if checkpoint_bytes is not None else values.get("checkpoint_bytes")
    if ckpt is None and (schedule is None or schedule.checkpoint_bytes is None):
        n_params = _need(values, "params_total", "model parameters (for the checkpoint size)")
        kind = "full" if values.get("precision") in ("fp32", "tf32") else "mixed"
        ckpt = np.asarray(n_params, dtype=float) * FALLBACK_CHECKPOINT_BYTES_PER_PARAM[kind]
    price = hardware.price_usd_per_gpu_hour.value if hardware.price_usd_per_gpu_hour is not None else None
    mfu = values.get("mfu")
    return whole_run(training_tokens=d, tokens_per_step=b, step_time_s=st, gpus=g,
                     checkpoint_bytes=ckpt if ckpt is not None else 0.0, tdp_w=hardware.accelerator.tdp_w.value,
                     schedule=schedule, price_usd_per_gpu_hour=price, step_fixed_s=fixed,
                     mfu=np.nan if mfu is None else mfu)


__all__ = [
    "CostResult", "STEP_FIXED_KEYS", "batch_schedule", "checkpoint_bytes_of", "checkpoint_interval_s",
    "checkpoint_overhead_s", "checkpoint_times_s", "co2_tonnes", "energy_mwh", "ideal_compute_s",
    "lost_per_failure_s", "mtbf_s", "run_costs", "wall_with_failures_s", "whole_run", "young_daly_interval_s",
]
