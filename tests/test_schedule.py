"""Pipeline schedules as frameworks run them, and HFU ≥ MFU (issue 15).

Megatron-LM runs the interleaved 1F1B schedule only when the micro-batches per step are a multiple of pp; with
fewer micro-batches than stages nothing hides the bubble. A layout the model accepts is one the search may rank
first, so the rule is enforced in one place (core.checks) for estimates and searches alike.
"""

from __future__ import annotations

import numpy as np
import pytest

import planner
from planner.core.estimate import estimate
from planner.errors import SpecError
from planner.search import Constraints, search
from planner.specs.layout import SCHEDULE_CODE

try:
    from conftest import make_exec
except ImportError:  # pragma: no cover
    from tests.conftest import make_exec


def _plan(layout, model="llama-3.1-405b", seq=8192, batch=2048, **run):
    return planner.make_plan(model=model, hardware="h100-sxm",
                             run={"seq_len": seq, "global_batch_seqs": batch, **run}, layout=layout)


def test_interleaved_schedule_needs_micro_batches_in_multiples_of_pp():
    # 2048 GPUs = tp 4 · pp 2 · cp 2 · dp 128; micro-batch 16 -> one micro-batch per step: interleaving cannot run
    with pytest.raises(SpecError) as exc:
        estimate(_plan({"gpus": 2048, "tp": 4, "pp": 2, "cp": 2, "vpp": 9}, micro_batch=16))
    msg = str(exc.value)
    assert "interleaved" in msg and "pp(2)" in msg and "\n" not in msg
    # the same layout with 2 micro-batches (a multiple of pp) runs
    assert estimate(_plan({"gpus": 2048, "tp": 4, "pp": 2, "cp": 2, "vpp": 9}, micro_batch=8)).to_dict()["vpp"] == 9


def test_one_f_one_b_bubble_does_not_shrink_below_pp_minus_one_stages():
    """With vpp 1 and m micro-batches on p stages the bubble is (p-1) stage-micro-batch times whatever m is."""
    one = estimate(_plan({"gpus": 2048, "tp": 8, "pp": 16}, batch=256, micro_batch=16)).to_dict()
    many = estimate(_plan({"gpus": 2048, "tp": 8, "pp": 16}, batch=256, micro_batch=1)).to_dict()
    assert one["grad_accum_steps"] == 1 and many["grad_accum_steps"] == 16
    # one micro-batch: the step is the bubble plus one pass, so the bubble is (p-1)/p of the pipelined work
    work = sum(one[f"time_{k}_s"] for k in ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm"))
    assert one["time_bubble_s"] == pytest.approx(15 * work, rel=1e-9)
    # sixteen micro-batches of a sixteenth the size: the bubble is (p-1) of the (sixteen times smaller) stage time
    work_many = sum(many[f"time_{k}_s"] for k in ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm"))
    assert many["time_bubble_s"] == pytest.approx(15 * work_many / 16, rel=1e-9)


def test_search_never_ranks_a_schedule_megatron_refuses():
    """The issue's case: 405B on up to 16,384 H100 at 8K with a 2,048-sequence batch."""
    res = search(_plan({"gpus": 8}), Constraints(max_gpus=16384))
    rows = res.rows([int(i) for i in res.ranked(50)])
    assert rows, "no feasible layout"
    for r in rows:
        assert r["vpp"] == 1 or r["grad_accum_steps"] % r["pp"] == 0, r
    cols = res.space.cols  # every candidate, not only the ranked ones
    grad_accum = cols["global_batch"] // (cols["dp"] * cols["micro_batch"])
    assert not ((cols["vpp"] > 1) & (grad_accum % cols["pp"] != 0)).any()


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_hfu_is_never_below_mfu(recompute):
    """Long causal sequences with a fused kernel execute fewer attention FLOPs than the model count; HFU still
    counts model FLOPs plus what recomputation repeats, so it never drops below MFU."""
    d = estimate(_plan({"gpus": 64, "tp": 8}, model="llama-3-8b", seq=32768, batch=64) if recompute == "none"
                 else _plan({"gpus": 64, "tp": 8, "recompute": recompute}, model="llama-3-8b", seq=32768,
                            batch=64)).to_dict()
    assert d["hfu"] >= d["mfu"]
    if recompute == "full":
        assert d["hfu"] > d["mfu"] * 1.2


def test_pipeline_boundary_is_split_over_tensor_parallel_ranks_with_or_without_sequence_parallelism():
    """Narayanan et al. 2021 §4.1 (scatter/gather): each of the t ranks sends 1/t of the boundary activations to
    the next stage; without sequence parallelism the receiving stage all-gathers them over NVLink. By hand, for
    one micro-batch of 8192 tokens x 16384 hidden x 2 bytes = 256 MiB at tp 8: one hop = P2P(32 MiB) [+ the
    all-gather of 256 MiB over 8 GPUs], two hops (activations forward, gradients back) per virtual stage."""
    from planner.core.comm import ALL_GATHER, P2P
    from planner.core.time import pipeline_s

    model, run, r, coll = _pipeline_parts()
    full = 8192 * model.hidden_size * 2.0
    for sp in (0, 1):
        ex = make_exec(tp=8, pp=16, dp=8, vpp=2, sp=sp, global_batch=64)
        hop = coll(P2P, full / 8, 2, 8 * 8) + (0.0 if sp else coll(ALL_GATHER, full, 8, 1))
        per_mb, bubble = pipeline_s(model, run, ex, r, coll, 1.0)
        assert float(per_mb) == pytest.approx(2 * 2 * float(hop))
        assert float(bubble) == pytest.approx(15 / 2 * (1.0 + float(per_mb)))
    # without tensor parallelism nothing is split or gathered
    ex = make_exec(pp=16, dp=8, global_batch=64)
    assert float(pipeline_s(model, run, ex, r, coll, 1.0)[0]) == pytest.approx(2 * float(coll(P2P, full, 2, 8)))


def test_zero_bubble_h1_defers_the_weight_gradients_into_the_bubble():
    """Qi et al. 2024 Table 2: 1F1B idles (p-1)(T_F+T_B+T_W), ZB-H1 (p-1)(T_F+T_B-T_W); with T_F = T_B = T_W = 1 s
    and no sends the ZB-H1 bubble is a third of 1F1B's. Peak memory stays 1F1B's."""
    from planner.core.time import pipeline_s

    model, run, r, coll = _pipeline_parts()
    ex = make_exec(tp=8, pp=16, dp=8, sp=1, global_batch=64)
    per_mb, b_1f1b = pipeline_s(model, run, ex, r, coll, 3.0, 1.0)
    _, b_zb = pipeline_s(model, run, ex.replace(schedule=SCHEDULE_CODE["zb-h1"]), r, coll, 3.0, 1.0)
    assert float(b_1f1b) == pytest.approx(15 * (3.0 + float(per_mb)))
    assert float(b_zb) == pytest.approx(15 * (3.0 - 2.0 + float(per_mb)))
    assert float(b_1f1b - b_zb) == pytest.approx(2 * 15 * 1.0)  # a third of 1F1B's 45 s of compute bubble remains

    layout = {"gpus": 8192, "tp": 8, "pp": 16, "sequence_parallel": True, "zero_stage": 1, "recompute": "selective"}
    one = estimate(_plan(layout))
    zb = estimate(_plan({**layout, "pipeline_schedule": "zb-h1"}))
    assert float(zb.evaluation.time.bubble_s) < 0.7 * float(one.evaluation.time.bubble_s)
    assert float(zb.evaluation.time.compute_s) == pytest.approx(float(one.evaluation.time.compute_s))
    assert float(zb.evaluation.memory.total_bytes) == pytest.approx(float(one.evaluation.memory.total_bytes))
    # no public run used ZB-H1: the answer says it is an extrapolation (and widens its band)
    assert "zb-h1" in zb.to_dict()["extrapolation"] and "zb-h1" not in one.to_dict()["extrapolation"]


def test_zero_bubble_h1_is_not_interleaved_and_not_a_deepspeed_schedule():
    with pytest.raises(SpecError, match="zb-h1 is not interleaved"):
        estimate(_plan({"gpus": 2048, "tp": 8, "pp": 16, "vpp": 2, "pipeline_schedule": "zb-h1"}))
    with pytest.raises(SpecError, match="deepspeed.*zb-h1"):
        estimate(_plan({"gpus": 2048, "tp": 8, "pp": 16, "pipeline_schedule": "zb-h1", "framework": "deepspeed"}))
    res = search(_plan({"gpus": 2048, "pipeline_schedule": "zb-h1"}), Constraints(gpus=(2048,), pp=(16,), tp=(8,)))
    rows = res.rows(res.ranked(50, fold=False), with_reason_text=False)
    assert rows and all(r["vpp"] == 1 and r["pipeline_schedule"] == "zb-h1" for r in rows)
    assert "zb-h1:vpp" in res.reasons


def _pipeline_parts():
    """(model, run, rates, collective timer) of Llama 3.1 405B at 8192 tokens on H100, for pipeline_s by hand."""
    from planner.core.kernels import rates_of
    from planner.core.time import collective_of
    from planner.registry import load_hardware, load_model
    from planner.specs.run import RunSpec

    hw, model = load_hardware("h100-sxm"), load_model("llama-3.1-405b")
    run = RunSpec(seq_len=8192, global_batch_seqs=64, precision="bf16")
    r = rates_of(hw, run, 2.0)
    return model, run, r, collective_of(hw, r.eff)


# ---- activations in flight per pipeline rank, uneven stages -------------------------------------------------------

def _megatron_in_flight(pp: int, v: int, m: int, rank: int) -> float:
    """What Megatron-LM's schedules keep on ``rank``, written from the schedule loop itself, in micro-batches through
    all the rank's layers: non-interleaved, pp - rank - 1 warm-up forwards plus one; interleaved, (pp - rank - 1)·2 +
    (v - 1)·pp warm-up chunk forwards plus one, or every chunk when that covers them all."""
    if v == 1:
        return min(pp - rank - 1, m) + (1 if pp - rank - 1 < m else 0)
    warm = (pp - rank - 1) * 2 + (v - 1) * pp
    return (m * v if warm >= m * v else warm + 1) / v


@pytest.mark.parametrize("pp,v,m", [(4, 1, 8), (4, 1, 2), (16, 1, 16), (4, 2, 4), (4, 2, 8), (16, 4, 16),
                                    (16, 4, 32), (16, 8, 48), (2, 3, 4)])
def test_in_flight_micro_batches_follow_the_schedule_loop(pp, v, m):
    from planner.core.memory import in_flight_microbatches

    ex = make_exec(pp=pp, vpp=v, dp=1, global_batch=m)
    for rank in range(pp):
        assert float(in_flight_microbatches(ex, rank)) == pytest.approx(_megatron_in_flight(pp, v, m, rank)), rank


def _torchtitan_rank_layers(layers: int, pp: int, v: int) -> list[int]:
    """Layers per pipeline rank under torchtitan's default split (generate_split_points), re-derived here: S = pp·v
    virtual stages; the first gets floor(L/S), each middle one a layer more while the L mod S extras last, the last
    the remainder; rank r holds virtual stages r, r + pp, ..."""
    S = pp * v
    base, extra = divmod(layers, S)
    sizes = [base]
    for _ in range(1, S - 1):
        sizes.append(base + (1 if extra > 0 else 0))
        extra -= 1 if extra > 0 else 0
    sizes.append(layers - sum(sizes))
    return [sum(sizes[r + k * pp] for k in range(v)) for r in range(pp)]


@pytest.mark.parametrize("layers,pp,v", [(126, 16, 1), (126, 16, 4), (126, 8, 1), (126, 8, 2), (7, 2, 1), (20, 8, 1),
                                         (17, 4, 2), (80, 8, 5), (61, 4, 3), (95, 6, 2)])
def test_edge_stages_split_as_torchtitan_does(layers, pp, v):
    ranks = _torchtitan_rank_layers(layers, pp, v)
    ex = make_exec(pp=pp, vpp=v, dp=1)
    first, last = ex.edge_stage_layers(layers)
    assert (float(first), float(last)) == (ranks[0], ranks[-1])
    assert float(ex.stage_fraction(layers)) * layers >= max(ranks)  # the fullest rank: an upper bound


def test_uneven_stages_are_short_at_the_ends_as_llama3_ran():
    """126 layers on 16 stages: 7 on the first and last, 8 on each middle one (Dubey et al. 2024 §3.3.2); the
    middle stage sets the pace, and its second rank, with 15 micro-batches of 8 layers in flight (1F1B), holds more
    than the first with 16 of 7."""
    ex = make_exec(pp=16, dp=1, global_batch=64)
    first, last = ex.edge_stage_layers(126)
    assert (float(first), float(last)) == (7, 7) and float(ex.stage_fraction(126)) * 126 == 8
    assert [float(x) for x in make_exec(pp=2, dp=1).edge_stage_layers(7)] == [3, 4]
    assert [float(x) for x in make_exec(pp=4, dp=1).edge_stage_layers(32)] == [8, 8]  # even: unchanged
    layout = {"gpus": 2048, "tp": 8, "pp": 16, "recompute": "none", "sequence_parallel": True}
    d = estimate(_plan(layout, batch=256, micro_batch=1)).to_dict()
    # (16-way data parallelism without ZeRO does not fit: the reason names the stage that overflows)
    assert d["memory_stage"] == 1 and "on the second pipeline stage's GPUs" in d["reason"]
    from planner.core.memory import stage_activation_bytes

    p = _plan(layout, batch=256, micro_batch=1)
    from planner.core.layout import exec_from_spec

    acts = stage_activation_bytes(p.model, p.run, exec_from_spec(p.layout, p.run))
    assert float(acts["middle"]) / float(acts["first"]) == pytest.approx(15 * 8 / (16 * 7), rel=1e-3)
    assert d["memory_activations_bytes"] == pytest.approx(float(acts["middle"]))


def test_the_reason_names_the_stage_only_when_there_is_a_pipeline():
    """Without a pipeline the reason says per GPU; with one, which stage overflows (first, second or last)."""
    flat = estimate(_plan({"gpus": 64, "tp": 8}, batch=64)).to_dict()
    assert not flat["fits"] and "GiB per GPU but the GPU has" in flat["reason"] and "stage" not in flat["reason"]
    piped = estimate(_plan({"gpus": 64, "tp": 8, "pp": 2}, batch=64)).to_dict()
    assert not piped["fits"] and "pipeline stage's GPUs" in piped["reason"]


def test_a_plan_that_only_fragmentation_keeps_out_says_so():
    """Llama 3 405B as Meta laid it out on 16,384 GPUs (§3.3.2: FSDP sharding optimizer state and gradients, no
    activation checkpointing): its tensors, runtime and NCCL buffers fit; the usual allocator fragmentation does
    not. The reason says both, so the user sees what the verdict rests on."""
    layout = {"gpus": 16384, "tp": 8, "pp": 16, "vpp": 4, "zero_stage": 2, "recompute": "none",
              "sequence_parallel": True}
    d = estimate(_plan(layout, micro_batch=1)).to_dict()
    assert not d["fits"] and "before allocator fragmentation (15% of reserved" in d["reason"]
    flat = estimate(_plan({"gpus": 64, "tp": 8}, batch=64)).to_dict()  # far over: no such clause
    assert "fragmentation" not in flat["reason"]
