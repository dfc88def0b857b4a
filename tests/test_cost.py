"""planner.core.cost and planner.specs.schedule: the whole run (wall clock, GPU-hours, dollars, energy, CO2).

Two kinds of check:

(a) the failure/checkpoint model itself: Young/Daly closed form, zero failure rate -> goodput 1, breakdowns that sum
    to their totals, numpy broadcasting, the batch ramp against a step-by-step simulation, the energy convention of
    LLaMA Table 15 and of Luccioni et al. 2022 reproduced from the published GPU-hours;
(b) predictions against the finished runs of ``planner/data/whole_runs.yaml`` under the committed default schedule
    (run overhead included): GPU-hours and energy predicted from the model preset, the hardware profile, the token
    count and a published layout (each cited in ``planner.calibrate.whole_runs.CASES``), through
    ``planner.core.estimate`` (step time) and ``planner.core.cost`` (the whole run). The cross-validated version
    (the overhead derived without the run it predicts) is ``tests/test_whole_runs.py``.

Print the table of (b) with ``python tests/test_cost.py``.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pytest
from pydantic import ValidationError

from planner.core.cost import (
    CostResult,
    batch_schedule,
    checkpoint_bytes_of,
    ideal_compute_s,
    mtbf_s,
    run_costs,
    whole_run,
    young_daly_interval_s,
)
from planner.calibrate import whole_runs as wr
from planner.core.estimate import estimate
from planner.errors import SpecError
from planner.plans import plan_from_dict
from planner.registry import load_hardware
from planner.specs.schedule import (DEFAULT_FAILURES_PER_GPU_HOUR, DEFAULT_RUN_OVERHEAD_FRACTION, BatchRampSpec,
                                    ScheduleSpec)

#: A schedule with nothing but the steps: no failures, no evaluation, no data-loading or run overhead.
BARE = ScheduleSpec(failures_per_gpu_hour=0.0, eval_overhead_fraction=0.0, data_loading_overhead_fraction=0.0,
                    run_overhead_fraction=0.0)


def _run(schedule: Optional[ScheduleSpec] = None, **kw) -> CostResult:
    args = dict(training_tokens=1.0e12, tokens_per_step=4 * 2**20, step_time_s=5.0, gpus=1024,
                checkpoint_bytes=7e9 * 14, tdp_w=700.0, price_usd_per_gpu_hour=2.0)
    args.update(kw)
    return whole_run(schedule=schedule, **args)


# =================================================================================================================
# (a) the model
# =================================================================================================================

def test_default_failure_rate_is_llama3_interruptions_per_gpu_hour():
    # Dubey et al. 2024 §3.3.4: 466 interruptions in 54 days on 16,384 GPUs
    assert DEFAULT_FAILURES_PER_GPU_HOUR == pytest.approx(466 / (54 * 24 * 16384), rel=1e-12)
    assert ScheduleSpec().failures_per_gpu_hour == DEFAULT_FAILURES_PER_GPU_HOUR
    # the whole 16K-GPU job: one interruption every 54*24/466 = 2.78 h
    assert float(mtbf_s(DEFAULT_FAILURES_PER_GPU_HOUR, 16384)) / 3600 == pytest.approx(54 * 24 / 466, rel=1e-12)


def test_young_daly_closed_form():
    assert float(young_daly_interval_s(60.0, 36000.0)) == pytest.approx(math.sqrt(2 * 60.0 * 36000.0), rel=1e-15)
    # it minimises the first-order lost-time fraction delta/tau + tau/(2M) (Young 1974)
    delta, m = 45.0, 20 * 3600.0
    taus = np.linspace(100, 20000, 200001)
    frac = delta / taus + taus / (2 * m)
    assert taus[np.argmin(frac)] == pytest.approx(float(young_daly_interval_s(delta, m)), rel=1e-3)
    # no failures: no checkpoint needed
    assert np.isinf(young_daly_interval_s(45.0, np.inf))


def test_whole_run_uses_young_daly_interval():
    s = ScheduleSpec()
    r = _run(s)
    gpus = 1024
    m = 3600.0 / (s.failures_per_gpu_hour * gpus)
    delta = 7e9 * 14 / (s.checkpoint_write_bytes_per_s_per_gpu * gpus)
    assert float(r.mtbf_s) == pytest.approx(m, rel=1e-12)
    assert float(r.checkpoint_write_s) == pytest.approx(delta, rel=1e-12)
    assert float(r.checkpoint_interval_s) == pytest.approx(math.sqrt(2 * delta * m), rel=1e-12)
    assert float(r.lost_per_failure_s) == pytest.approx(s.restart_s + math.sqrt(2 * delta * m) / 2, rel=1e-12)


def test_async_checkpoint_blocks_less_and_interval_covers_one_write():
    sync = _run(ScheduleSpec())
    asy = _run(ScheduleSpec(async_checkpoint=True))
    assert float(asy.checkpoint_blocking_s) == pytest.approx(
        float(sync.checkpoint_write_s) * ScheduleSpec().async_blocking_fraction)
    assert float(asy.checkpoint_interval_s) >= float(asy.checkpoint_write_s)
    assert float(asy.checkpoint_s) < float(sync.checkpoint_s)
    assert float(asy.goodput) > float(sync.goodput)


def test_zero_failure_rate_gives_goodput_one():
    r = _run(BARE)
    assert float(r.goodput) == 1.0
    assert float(r.failures_s) == 0.0 and float(r.checkpoint_s) == 0.0 and float(r.expected_failures) == 0.0
    assert np.isinf(r.mtbf_s) and np.isinf(r.checkpoint_interval_s)
    assert float(r.wall_s) == pytest.approx(math.ceil(1e12 / (4 * 2**20)) * 5.0)
    d = r.to_dict()
    assert d["goodput"] == 1.0 and d["mtbf_hours"] is None and d["checkpoint_interval_hours"] is None


def test_zero_failures_with_overheads_documented_semantics():
    # evaluation and data loading are fractions of compute added on top: goodput = 1 / (1 + f_eval + f_data)
    s = BARE.replace(eval_overhead_fraction=0.01, data_loading_overhead_fraction=0.02)
    assert float(_run(s).goodput) == pytest.approx(1 / 1.03, rel=1e-12)
    # an explicit checkpoint interval costs its writes even without failures
    s = BARE.replace(checkpoint_interval_s=1800.0)
    r = _run(s)
    assert float(r.goodput) == pytest.approx(1 / (1 + float(r.checkpoint_blocking_s) / 1800.0), rel=1e-12)


def test_failure_accounting_is_self_consistent():
    r = _run(ScheduleSpec(), gpus=16384)
    useful = r.compute_s + r.checkpoint_s + r.eval_s + r.data_loading_s + r.run_overhead_s
    # failures strike during the whole wall time, restarts and recomputation included
    assert float(r.expected_failures) == pytest.approx(float(r.wall_s / r.mtbf_s), rel=1e-12)
    assert float(r.failures_s) == pytest.approx(float(r.expected_failures * r.lost_per_failure_s), rel=1e-9)
    assert float(r.wall_s) == pytest.approx(float(useful + r.failures_s), rel=1e-12)


def test_run_that_cannot_finish():
    # lost work per failure longer than the mean time between failures: infinite wall time, goodput 0
    r = _run(ScheduleSpec(failures_per_gpu_hour=1e-2, restart_s=7200.0), gpus=1024)
    assert np.isinf(r.wall_s) and float(r.goodput) == 0.0
    assert r.to_dict()["wall_clock_days"] is None and r.to_dict()["goodput"] == 0.0


def test_llama3_405b_scale_is_consistent_with_over_90_percent_effective_time():
    # Dubey et al. 2024 §3.3.4: >90% effective training time at 466 interruptions / 54 days on 16,384 GPUs. The
    # default schedule (same failure rate, 10-minute restart, Tectonic bandwidth, 14 bytes/parameter checkpoints of
    # 405B parameters) should land there; not an independent check of the rate, which comes from the same source.
    r = _run(ScheduleSpec(eval_overhead_fraction=0.0, run_overhead_fraction=0.0), gpus=16384,
             checkpoint_bytes=405e9 * 14, step_time_s=10.0,
             training_tokens=15.6e12, tokens_per_step=16 * 2**20)
    assert 0.88 < float(r.goodput) < 0.95


@pytest.mark.parametrize("schedule", [
    ScheduleSpec(),
    BARE,
    ScheduleSpec(async_checkpoint=True, storage_usd=1e5, network_usd=2.5e4, eval_overhead_fraction=0.02,
                 data_loading_overhead_fraction=0.01),
    ScheduleSpec(batch_rampup=BatchRampSpec(start_batch_tokens=393216, ramp_tokens=20e9), checkpoint_interval_s=600),
])
def test_parts_sum_to_totals(schedule):
    r = _run(schedule, step_time_s=np.array([2.0, 5.0, 9.0]), gpus=np.array([[256], [4096]]), step_fixed_s=0.3)
    assert np.allclose(r.wall_s, sum(r.time_parts().values()), rtol=1e-12)
    assert np.allclose(r.cost_usd, r.cost_compute_usd + r.cost_storage_usd + r.cost_network_usd, rtol=1e-12)
    assert np.allclose(r.cost_compute_usd, r.gpu_hours * 2.0, rtol=1e-12)
    d = r.to_dict()
    days = sum(v for k, v in d.items() if k.startswith("time_") and k.endswith("_days"))
    assert np.allclose(days, d["wall_clock_days"], rtol=1e-12)
    costs = sum(v for k, v in d.items() if k.startswith("cost_") and k.endswith("_usd") and k != "cost_usd"
                and k != "cost_per_billion_tokens_usd")
    assert np.allclose(costs, d["cost_usd"], rtol=1e-12)
    assert np.allclose(d["gpu_hours"], r.gpus * r.wall_s / 3600, rtol=1e-12)
    assert np.allclose(d["cost_per_billion_tokens_usd"], d["cost_usd"] / 1e3, rtol=1e-12)


def test_arrays_broadcast_like_scalars():
    steps = np.array([2.0, 5.0, 9.0])
    gpus = np.array([[256], [1024], [4096]])
    s = ScheduleSpec(async_checkpoint=True)
    r = _run(s, step_time_s=steps, gpus=gpus)
    assert r.wall_s.shape == (3, 3) and r.energy_mwh.shape == (3, 3) and r.goodput.shape == (3, 3)
    for i, g in enumerate(gpus[:, 0]):
        for j, st in enumerate(steps):
            one = _run(s, step_time_s=float(st), gpus=int(g))
            for k, v in one.to_dict().items():
                arr = r.to_dict()[k]
                if v is None:  # a non-finite scalar (no MFU given: end_to_end_mfu unknown) is non-finite here too
                    assert not np.isfinite(np.asarray(arr)[i, j]), k
                    continue
                assert np.asarray(arr)[i, j] == pytest.approx(v, rel=1e-12, abs=0), k


def test_batch_ramp_matches_step_by_step_simulation():
    # BLOOM's ramp (tr11-176B-ml.slurm --rampup-batch-size 192 16 9_765_625, seq 2048, full batch 2048 seqs):
    # Megatron steps at batch b until b's share of the ramp samples is consumed, then adds 16 sequences.
    seq, start, inc, ramp_samples, full = 2048, 192, 16, 9_765_625, 2048
    n_incr = (full - start) // inc
    per_incr = ramp_samples / n_incr
    sim_steps, sim_tokens, sim_time = 0.0, 0.0, 0.0
    fixed, var = 7.0, 85.0  # s: a step at batch b takes fixed + var * b / full
    for k in range(n_incr):
        b = start + k * inc
        n = per_incr / b
        sim_steps += n
        sim_tokens += per_incr * seq
        sim_time += n * (fixed + var * b / full)
    tokens = 366e9
    ramp_steps, used, full_steps = batch_schedule(tokens, full * seq, start * seq, ramp_samples * seq)
    assert float(used) == pytest.approx(sim_tokens, rel=1e-12)
    assert float(ramp_steps) == pytest.approx(sim_steps, rel=0.02)  # continuous vs 116 discrete increments
    t = ideal_compute_s(fixed + var, full_steps, ramp_steps, used, full * seq, fixed)
    sim_total = sim_time + math.ceil((tokens - sim_tokens) / (full * seq)) * (fixed + var)
    assert float(t) == pytest.approx(sim_total, rel=2e-3)
    # a ramp that starts at the full batch is no ramp
    r0, u0, f0 = batch_schedule(tokens, full * seq, full * seq, ramp_samples * seq)
    assert float(r0 + f0) == pytest.approx(tokens / (full * seq), abs=1.0)  # up to one step of ceil()


def test_ramp_costs_time_when_steps_have_a_fixed_part():
    ramp = ScheduleSpec(batch_rampup=BatchRampSpec(start_batch_tokens=393216, ramp_tokens=20e9))
    flat = _run(BARE, step_fixed_s=1.0)
    ramped = _run(BARE.replace(batch_rampup=ramp.batch_rampup), step_fixed_s=1.0)
    no_fixed = _run(BARE.replace(batch_rampup=ramp.batch_rampup), step_fixed_s=0.0)
    assert float(ramped.compute_s) > float(flat.compute_s)
    assert float(ramped.run_steps) > float(flat.run_steps)
    # without a fixed part, time per token is the same at any batch: the ramp costs nothing
    assert float(no_fixed.compute_s) == pytest.approx(float(flat.compute_s), abs=5.0)  # one 5 s step of ceil()


def test_energy_and_co2_formula():
    r = _run(ScheduleSpec(board_power_utilisation=0.8, node_overhead_factor=1.3, pue=1.2, grid_kgco2_per_kwh=0.4))
    assert float(r.energy_mwh) == pytest.approx(float(r.gpu_hours) * 700 * 0.8 * 1.3 * 1.2 / 1e6, rel=1e-12)
    assert float(r.co2_tonnes) == pytest.approx(float(r.energy_mwh) * 0.4, rel=1e-12)
    measured = _run(ScheduleSpec(board_power_w=550.0, board_power_utilisation=0.1))
    assert float(measured.board_power_w) == 550.0


def test_price_override_and_line_items():
    r = _run(ScheduleSpec(price_usd_per_gpu_hour=3.0, storage_usd=1000.0, network_usd=500.0))
    assert float(r.cost_usd) == pytest.approx(float(r.gpu_hours) * 3.0 + 1500.0, rel=1e-12)
    unknown = _run(ScheduleSpec(), price_usd_per_gpu_hour=None)
    assert unknown.to_dict()["cost_usd"] is None and unknown.to_dict()["gpu_hours"] is not None


# ---- the two rates: steady state and end to end ------------------------------------------------------------------

def test_run_overhead_is_a_fraction_of_compute_and_a_time_part():
    base = _run(BARE.replace(failures_per_gpu_hour=DEFAULT_FAILURES_PER_GPU_HOUR))
    over = _run(BARE.replace(failures_per_gpu_hour=DEFAULT_FAILURES_PER_GPU_HOUR, run_overhead_fraction=0.2))
    assert float(over.run_overhead_s) == pytest.approx(0.2 * float(over.compute_s), rel=1e-12)
    assert float(base.run_overhead_s) == 0.0
    assert "run_overhead_s" in CostResult.TIME_PARTS
    # failures strike during the overhead time too: the wall time grows by the overhead / (1 - L/M)
    ratio = float(base.lost_per_failure_s / base.mtbf_s)
    assert float(over.wall_s - base.wall_s) == pytest.approx(0.2 * float(base.compute_s) / (1 - ratio), rel=1e-9)
    # without failures the overhead alone sets the goodput
    assert float(_run(BARE.replace(run_overhead_fraction=0.25)).goodput) == pytest.approx(1 / 1.25, rel=1e-12)


def test_default_run_overhead_is_the_schedule_default():
    assert ScheduleSpec().run_overhead_fraction == DEFAULT_RUN_OVERHEAD_FRACTION
    with pytest.raises(ValidationError):
        ScheduleSpec(run_overhead_fraction=-0.1)


def test_steady_and_end_to_end_rates_are_both_reported():
    r = run_costs({"training_tokens": 1e12, "tokens_per_step": 4 * 2**20, "step_time_s": 5.0, "gpus": 1024,
                   "params_total": 7e9, "mfu": 0.45}, ScheduleSpec(), load_hardware("h100-sxm"))
    d = r.to_dict()
    steps = 1e12 / (4 * 2**20)
    assert d["wall_clock_ideal_days"] == pytest.approx(math.ceil(steps) * 5.0 / 86400, rel=1e-12)
    assert d["wall_clock_ideal_days"] == pytest.approx(d["time_compute_days"], rel=1e-12)
    assert d["ideal_gpu_hours"] == pytest.approx(1024 * math.ceil(steps) * 5.0 / 3600, rel=1e-12)
    assert d["ideal_gpu_hours"] / d["gpu_hours"] == pytest.approx(d["goodput"], rel=1e-12)
    # end to end: model FLOPs over (GPUs x wall x peak) = steady MFU x steady time / wall
    assert d["end_to_end_mfu"] == pytest.approx(0.45 * steps * 5.0 / (d["wall_clock_days"] * 86400), rel=1e-12)
    assert d["end_to_end_tokens_per_s_per_gpu"] == pytest.approx(1e12 / (1024 * d["wall_clock_days"] * 86400))
    assert d["end_to_end_mfu"] < 0.45 and d["wall_clock_days"] > d["wall_clock_ideal_days"]
    # the whole_run entry point without an MFU: the end-to-end MFU is unknown, not 0
    assert _run(ScheduleSpec()).to_dict()["end_to_end_mfu"] is None
    # a run that never finishes achieves nothing end to end
    never = run_costs({"training_tokens": 1e12, "tokens_per_step": 4 * 2**20, "step_time_s": 5.0, "gpus": 1024,
                       "params_total": 7e9, "mfu": 0.45},
                      ScheduleSpec(failures_per_gpu_hour=1e-2, restart_s=7200.0), load_hardware("h100-sxm"))
    assert never.to_dict()["end_to_end_mfu"] == 0.0 and never.to_dict()["end_to_end_tokens_per_s_per_gpu"] == 0.0


# ---- published energy conventions, from the published GPU-hours ------------------------------------------------

whole_runs = wr.whole_runs


LLAMA_TABLE15 = ["llama1_7b", "llama1_13b", "llama1_33b", "llama1_65b", "opt_175b_llama_table15",
                 "bloom_176b_llama_table15"]


@pytest.mark.parametrize("run_id", LLAMA_TABLE15)
def test_default_schedule_reproduces_llama_table15_energy_and_co2(run_id):
    # Touvron et al. 2023 §6: MWh = GPU-h x 400 W x PUE 1.1; tCO2eq = MWh x 0.385. The defaults are that convention.
    e = whole_runs()[run_id]
    s = ScheduleSpec()
    mwh = float(e["gpu_hours"]) * 400.0 * s.board_power_utilisation * s.node_overhead_factor * s.pue / 1e6
    assert mwh == pytest.approx(e["energy_mwh"], abs=1.5)  # the table rounds to whole MWh (BLOOM: 476.5 vs 475)
    assert mwh * s.grid_kgco2_per_kwh == pytest.approx(e["tco2eq"], abs=1.0)


def test_luccioni_bloom_energy_is_tdp_times_gpu_hours():
    # Luccioni et al. 2022: 433,196 kWh = 1,082,990 GPU-h x 400 W (TDP, no PUE): reproduce with pue=1
    e = whole_runs()["bloom_176b"]
    hw = load_hardware("a100-80gb")
    s = ScheduleSpec(pue=1.0)
    watts = hw.accelerator.tdp_w.value * s.board_power_utilisation * s.node_overhead_factor * s.pue
    kwh = float(e["gpu_hours"]) * watts / 1e3
    assert kwh == pytest.approx(float(e["energy_kwh"]), rel=1e-6)


# ---- specs and the estimate-facing entry point ------------------------------------------------------------------

def test_schedule_spec_validation():
    with pytest.raises(ValidationError):
        ScheduleSpec(failure_rate=1e-5)  # typo: extra="forbid"
    with pytest.raises(ValidationError):
        ScheduleSpec(eval_overhead_fraction=0.6, data_loading_overhead_fraction=0.5)
    with pytest.raises(ValidationError):
        ScheduleSpec(pue=0.9)
    with pytest.raises(ValidationError):
        ScheduleSpec(failures_per_gpu_hour=-1)
    with pytest.raises(Exception):
        ScheduleSpec().pue = 1.5  # frozen
    for name, f in ScheduleSpec.model_fields.items():
        assert f.description and len(f.description) > 20, name


def test_checkpoint_bytes_of_bloom_matches_its_2_3_tb_checkpoint():
    # tr11-176B-ml README: `du -sh` of a full checkpoint is 2.3T (TiB): 14 bytes/parameter
    plan = plan_from_dict({"model": "bloom-176b", "hardware": "a100-80gb",
                           "run": {"seq_len": 2048, "global_batch_seqs": 2048, "precision": "bf16"}})
    assert checkpoint_bytes_of(plan.model, plan.run) == pytest.approx(2.3 * 2**40, rel=0.05)


def test_run_costs_from_estimate_dict():
    plan = plan_from_dict({"model": "llama-7b", "hardware": "a100-80gb",
                           "run": {"seq_len": 2048, "global_batch_tokens": 4194304, "training_tokens": 1e12},
                           "layout": {"gpus": 256, "zero_stage": 1, "recompute": "selective"}})
    values = estimate(plan).to_dict()
    r = run_costs(values, None, plan.hardware, checkpoint_bytes=checkpoint_bytes_of(plan.model, plan.run))
    d = r.to_dict()
    for key in ("wall_clock_days", "gpu_hours", "cost_usd", "energy_mwh", "co2_tonnes", "goodput",
                "time_compute_days", "time_checkpoint_days", "time_failures_days", "time_eval_days",
                "time_data_loading_days", "cost_compute_usd", "cost_storage_usd", "cost_network_usd"):
        assert isinstance(d[key], float), key
    assert d["price_usd_per_gpu_hour"] == plan.hardware.price_usd_per_gpu_hour.value
    assert d["time_compute_days"] == pytest.approx(values["training_steps"] * values["step_time_s"] / 86400)
    # the fallback checkpoint size (params_total x 14) agrees with the model-derived one for mixed-precision Adam
    fallback = run_costs(values, ScheduleSpec(), plan.hardware)
    assert float(fallback.checkpoint_bytes) == pytest.approx(float(r.checkpoint_bytes), rel=1e-12)
    with pytest.raises(SpecError, match="training_tokens"):
        run_costs({**values, "training_tokens": None}, None, plan.hardware)


# =================================================================================================================
# (b) finished runs of whole_runs.yaml: predicted vs published, under the committed default
# =================================================================================================================

# The cases (plans with their sources, bounds and what drives the misses) live in planner.calibrate.whole_runs,
# shared with the leave-one-out (tests/test_whole_runs.py, benchmarks/whole_runs.py).

def table() -> str:
    return wr.cases_table(DEFAULT_RUN_OVERHEAD_FRACTION)


@pytest.mark.parametrize("case", wr.CASES, ids=[c.label for c in wr.CASES])
def test_whole_run_prediction_within_bound(case):
    p = wr.predict(case)
    assert p.fits, f"{case.run_id}: the published layout does not fit in the memory model"
    err = p.error(DEFAULT_RUN_OVERHEAD_FRACTION)
    assert abs(err) <= case.bound, (
        f"{case.run_id} {case.quantity}: predicted {p.predicted(DEFAULT_RUN_OVERHEAD_FRACTION):.4g} vs published "
        f"{p.published:.4g} ({err:+.1%}, bound {case.bound:.0%})\n{table()}")


def test_shared_plans_match_the_api_plans():
    # planner.calibrate builds plans below the API layer; they must be the plans users get from the same mapping
    for case in wr.CASES:
        if case.plan is None:
            continue
        ours, api = wr.plan_of(case.plan), plan_from_dict(case.plan)
        assert (ours.model, ours.run, ours.layout, ours.hardware) == (api.model, api.run, api.layout, api.hardware)
        assert estimate(ours).to_dict()["step_time_s"] == estimate(api).to_dict()["step_time_s"]


if __name__ == "__main__":
    print(table())
