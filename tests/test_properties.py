"""Properties of whole estimates over random valid plans, through the public API (issue 14), with hypothesis.

Each property runs a bounded number of examples so the file stays well under a minute in CI; the ``slow`` variants
at the end run the same properties many more times (``pytest -m slow tests/test_properties.py``).

Sources of the properties:
* DESIGN.md §1: breakdowns sum to their totals (memory = weights + gradients + optimizer + activations + logits +
  overhead; step time = compute + recompute + exposed communication + bubble + optimizer); a search and a single
  estimate run the very same formulas, so a searched row re-estimated alone gives the same numbers.
* PaLM Appendix B: model FLOPs count no recomputation, hardware FLOPs do, so HFU >= MFU.
* ``fits`` means the most loaded GPU's memory is within the capacity less the headroom (``memory_usable_bytes``).
* Parameters are a property of the model alone: the layout shards them, it never changes the count.
* Pipeline schedules (Narayanan et al. 2021 §2.2): 1F1B keeps at most min(pp, m) micro-batches in flight on the
  first stage (m micro-batches per step), so a larger micro-batch never lowers the activations held; Megatron's
  interleaved schedule needs m to be a multiple of pp (planner refuses the rest), which is why "doubling the
  micro-batch lowers activation memory on interleaved pipelines with few micro-batches" cannot happen.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import planner
from planner.errors import SpecError

MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "logits", "overhead")
TIME_PARTS = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "bubble", "dp_comm", "optimizer")
MODELS = ("gpt3-125m", "gpt3-1.3b", "llama-2-7b", "llama-3-8b", "mixtral-8x7b", "bert-large", "t5-11b",
          "deepseek-v2-lite", "gemma-2-9b")
GPUS = ("a100-80gb", "h100-sxm", "a100-40gb")

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
SLOW = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                        HealthCheck.too_slow])


@st.composite
def plans(draw, vpp: bool = True):
    """A plan mapping whose layout divides (the draw builds gpus from the degrees); the model may still refuse
    it (heads not divisible by tp, ...), which the properties skip with ``assume``."""
    tp = draw(st.sampled_from([1, 1, 2, 4, 8]))
    pp = draw(st.sampled_from([1, 1, 2, 4]))
    cp = draw(st.sampled_from([1, 1, 2]))
    dp = draw(st.sampled_from([1, 2, 4, 8, 16]))
    mb = draw(st.sampled_from([1, 2, 4]))
    accum = draw(st.sampled_from([1, 2, 4, 8, 16]))
    layout = {"gpus": tp * pp * cp * dp, "tp": tp, "pp": pp, "cp": cp,
              "recompute": draw(st.sampled_from(["none", "selective", "full"])),
              "zero_stage": draw(st.sampled_from([0, 1, 2, 3])),
              "flash_attention": draw(st.booleans())}
    if tp > 1:
        layout["sequence_parallel"] = draw(st.booleans())
    if vpp and pp > 1 and draw(st.booleans()):
        layout["vpp"] = draw(st.sampled_from([2, 4]))
    run = {"seq_len": draw(st.sampled_from([512, 1024, 2048, 4096])), "micro_batch": mb,
           "global_batch_seqs": dp * mb * accum,
           "training_tokens": draw(st.sampled_from([1e9, 3e11, 1e13])),
           "precision": draw(st.sampled_from(["bf16", "fp16", "fp32"]))}
    return {"model": draw(st.sampled_from(MODELS)), "hardware": draw(st.sampled_from(GPUS)), "run": run,
            "layout": layout, "schedule": {"price_usd_per_gpu_hour": draw(st.sampled_from([0.0, 1.5, 9.9]))}}


def _estimate(p: dict):
    try:
        return planner.estimate(model=p["model"], hardware=p["hardware"], run=p["run"], layout=p["layout"],
                                schedule=p["schedule"])
    except SpecError:
        assume(False)


def check_estimate(d: dict) -> None:
    """Every invariant of one estimate's dictionary."""
    for k, v in d.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert math.isfinite(v) and v >= 0, (k, v)
    for k in ("step_time_s", "memory_per_gpu_bytes", "mfu", "hfu", "params_total", "model_flops_per_token",
              "cost_usd", "gpu_hours", "wall_clock_days", "energy_mwh", "model_flops_total"):
        assert d.get(k) is not None, k
    mem = sum(d[f"memory_{p}_bytes"] for p in MEMORY_PARTS)
    assert mem == pytest.approx(d["memory_per_gpu_bytes"], rel=1e-12)
    step = sum(d.get(f"time_{p}_s") or 0.0 for p in TIME_PARTS)
    assert step == pytest.approx(d["step_time_s"], rel=1e-12)
    assert d["hfu"] >= d["mfu"] * (1 - 1e-12)
    if not d["flash_attention"]:  # FlashAttention skips masked blocks: fewer executed than model FLOPs, by design
        assert d["hardware_flops_per_token"] >= d["model_flops_per_token"] * (1 - 1e-12)
    usable = d.get("memory_usable_bytes", d["memory_capacity_bytes"])  # capacity less the headroom
    assert usable <= d["memory_capacity_bytes"]
    assert d["fits"] == (d["memory_per_gpu_bytes"] <= usable)
    assert (d["reason"] is None) == d["fits"]
    assert d["params_active"] <= d["params_total"]


def _parts_and_invariants(p):
    check_estimate(_estimate(p).to_dict())


def _params_independent_of_layout(p, q_layout):
    a = _estimate(p).to_dict()
    b = _estimate({**p, "layout": q_layout}).to_dict()
    for k in [k for k in a if k.startswith("params_") and k != "params_per_gpu"]:
        assert a[k] == b[k], k


def _micro_batch_monotone(p):
    """Doubling the micro-batch (everything else fixed) never lowers the activations held on the same stage."""
    a = _estimate(p).to_dict()
    run2 = {**p["run"], "micro_batch": p["run"]["micro_batch"] * 2}
    run2["global_batch_seqs"] = max(run2["global_batch_seqs"], run2["micro_batch"] * (
        p["layout"]["gpus"] // (p["layout"]["tp"] * p["layout"]["pp"] * p["layout"]["cp"])))
    try:
        b = planner.estimate(model=p["model"], hardware=p["hardware"], run=run2, layout=p["layout"],
                             schedule=p["schedule"]).to_dict()
    except SpecError:
        assume(False)
    assume(run2["global_batch_seqs"] == p["run"]["global_batch_seqs"])
    assume(a["memory_stage"] == b["memory_stage"])
    assert b["memory_activations_bytes"] >= a["memory_activations_bytes"] * (1 - 1e-12)


# ---------------------------------------------------------------------------------------------------------------
# CI-sized
# ---------------------------------------------------------------------------------------------------------------

@FAST
@given(plans())
def test_parts_sum_and_every_output_is_finite(p):
    _parts_and_invariants(p)


@FAST
@given(plans(), plans())
def test_params_do_not_depend_on_the_layout(p, q):
    _params_independent_of_layout(p, q["layout"])


@FAST
@given(plans(vpp=False))
def test_larger_micro_batch_never_holds_fewer_activations(p):
    _micro_batch_monotone(p)


def test_interleaving_with_few_micro_batches_is_the_schedule_not_a_bug():
    """1F1B holds min(pp, m) micro-batches on the first stage: below pp micro-batches, doubling the micro-batch
    halves m and the activations held stay the same; Megatron's interleaved schedule needs m to be a multiple of
    pp, so the configuration where doubling would lower them (m < pp with vpp > 1) is refused, not estimated."""
    base = dict(model="gpt3-1.3b", hardware="h100-sxm")
    run = {"seq_len": 2048, "global_batch_seqs": 8}

    def act(mb, **layout):
        r = planner.estimate(**base, run={**run, "micro_batch": mb}, layout={"gpus": 8, "pp": 4, **layout})
        return r.to_dict()

    one, two = act(1), act(2)  # m = 4 = pp, then m = 2 < pp: in flight 4 x mb 1, then 2 x mb 2
    assert (one["grad_accum_steps"], two["grad_accum_steps"]) == (4, 2)
    assert one["memory_stage"] == two["memory_stage"] == 0
    assert two["memory_activations_bytes"] == pytest.approx(one["memory_activations_bytes"], rel=1e-12)
    # interleaved with m = pp: Megatron warms up every chunk on the first half of the ranks (all forwards, then
    # all backwards), so they hold the m micro-batches 1F1B holds, no more; with m = 2pp, interleaving's extra
    assert act(1, vpp=2)["memory_activations_bytes"] == pytest.approx(one["memory_activations_bytes"], rel=1e-12)
    # m = 2pp: Korthikanti et al. 2022 §4.2.3's factor exactly, on a model without dropout (GPT-3's embedding
    # dropout masks are held per micro-batch, not per chunk, so they do not scale with it)
    no_dropout = {"model": "llama-3-8b", "hardware": "h100-sxm",
                  "run": {"seq_len": 2048, "global_batch_seqs": 16, "micro_batch": 1}}
    plain, inter = (planner.estimate(**no_dropout, layout={"gpus": 8, "pp": 4, "vpp": v}).to_dict()[
        "memory_activations_bytes"] for v in (1, 2))
    assert inter == pytest.approx(plain * (1 + (4 - 1) / (4 * 2)), rel=1e-12)
    with pytest.raises(SpecError, match="multiple of pp"):
        act(2, vpp=2)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["gpt3-125m", "gpt3-1.3b", "llama-2-7b"]), st.sampled_from([8, 16, 32]),
       st.sampled_from([1024, 2048]), st.integers(0, 10**6))
def test_search_row_reestimated_alone_gives_the_same_numbers(model, gpus, seq, k):
    from planner.search import Constraints, search

    plan = planner.make_plan(model=model, hardware="a100-80gb",
                             run={"seq_len": seq, "global_batch_seqs": 64, "training_tokens": 1e11},
                             schedule={"price_usd_per_gpu_hour": 2.0})
    res = search(plan, Constraints(gpus=(gpus,)))
    rows = res.rows(list(range(res.n)))
    ok = [r for r in rows if r.get("reason_code") in (None, "", "oom")]
    assume(ok)
    row = ok[k % len(ok)]
    layout = {key: row[key] for key in ("gpus", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "fsdp",
                                        "sequence_parallel", "recompute")}
    d = planner.estimate(model=model, hardware="a100-80gb",
                         run={"seq_len": seq, "global_batch_seqs": row["global_batch_seqs"],
                              "micro_batch": row["micro_batch_seqs"], "training_tokens": 1e11},
                         layout=layout, schedule={"price_usd_per_gpu_hour": 2.0}).to_dict()
    for key in ("step_time_s", "memory_per_gpu_bytes", "mfu", "hfu", "tokens_per_s_per_gpu", "cost_usd",
                "wall_clock_days", "memory_activations_bytes", "time_bubble_s", "fits"):
        assert row[key] == d[key], (key, row[key], d[key], layout)


# ---------------------------------------------------------------------------------------------------------------
# Long runs: pytest -m slow tests/test_properties.py
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@SLOW
@given(plans())
def test_slow_parts_sum_and_every_output_is_finite(p):
    _parts_and_invariants(p)


@pytest.mark.slow
@SLOW
@given(plans(), plans())
def test_slow_params_do_not_depend_on_the_layout(p, q):
    _params_independent_of_layout(p, q["layout"])


@pytest.mark.slow
@SLOW
@given(plans(vpp=False))
def test_slow_larger_micro_batch_never_holds_fewer_activations(p):
    _micro_batch_monotone(p)
