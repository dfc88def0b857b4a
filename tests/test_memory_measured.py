"""Memory against what public training runs measured (issue 15 item 6), and the memory terms that got it there.

The gate: ``planner validate``'s memory check over every run of ``planner/data/measured_runs.yaml`` and
``planner/data/measured_memory_runs.yaml`` that measured its peak memory, each compared with the prediction of the
same kind (``MemoryBreakdown.comparable_bytes``): torchtitan's H100 and H200 benchmark files (20 runs, the caching
allocator's reserved peak in GiB) and ColossalAI-Pytorch-lightning's GPT2-XL table (2 runs on 4 A100-40GB,
torch.cuda.max_memory_allocated in MiB). When the gate was first set (torchtitan only): median |error| 6.2% (the
issue's target is <= 10%), p90 18.8%. Since: each pipeline rank counted as its schedule holds it (uneven stages
short at the ends, so torchtitan's six 405B runs lost the layers the fullest stage had lent their first stage),
the two GPT2-XL runs added, and the loss's tensors no longer counted alive beside the working set of the layer
being recomputed (the head's backward frees them first), and PyTorch DDP as it runs (``framework: ddp``: autocast's
fp32 parameters, gradients and cached casts, its gradient buckets; the GPT2-XL DDP run -27% -> -3.6%): median 8.4%,
p90 15.8%, worst the 70B FSDP+TP run at -26.4%. The p90 gate is that value + 10% relative (17.4%),
the median gate the issue's 10%. Before the terms below (a flat 3 GiB overhead, bf16 + fp32 logits only, no FSDP
buffers, comparing the device total with a reserved figure): median 36.4%, p90 59.8%.

Every published run ran, so none may be predicted not to fit against raw capacity (the planning headroom does not
apply to the record); one (NeMo's Nemotron-340B, 3% over) was already flagged before and still is.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.calibrate.validate import validate
from planner.core.memory import (ALLOCATOR_FRAGMENTATION, LOSS_FP32_BYTES, NCCL_COMMUNICATOR_BYTES, communicators,
                                 fsdp_buffer_bytes, loss_bytes_per_logit, memory_breakdown, rank_params)
from planner.core.params import param_breakdown
from planner.specs.layout import FRAMEWORK_CODE
from planner.specs.run import RunSpec

try:
    from conftest import gpt_model, make_exec
except ImportError:
    from tests.conftest import gpt_model, make_exec

MEDIAN_GATE_PCT = 10.0  # the target
P90_GATE_PCT = 15.8 * 1.1  # measured + 10% relative
KNOWN_OOM = {"nemo2407_pretrain_Nemotron-340B_128gpu"}  # flagged before this change, 3% over 80 GiB


@pytest.fixture(scope="module")
def check():
    return validate()["memory_check"]


def test_memory_error_on_the_public_runs(check):
    assert check["measured_n"] >= 15
    assert check["measured_median_abs_pct_error"] <= MEDIAN_GATE_PCT
    assert check["measured_p90_abs_pct_error"] <= P90_GATE_PCT


def test_memory_rows_compare_like_with_like(check):
    for r in check["measured_runs"]:
        assert r["measured_memory_kind"] in ("allocated", "reserved", "device")
        assert r["memory_error_pct"] == pytest.approx(
            100 * (r["predicted_memory_bytes"] / r["measured_memory_bytes"] - 1), rel=1e-9)
    assert set(check["measured_by_source"]) == {"torchtitan (reserved)", "other (allocated)"}


def test_published_runs_are_predicted_to_fit(check):
    assert check["runs"] >= 256  # every modelled run and every memory-only run
    assert set(check["ran_but_predicted_oom"]) <= KNOWN_OOM


# ---- the terms ---------------------------------------------------------------------------------------------------

MODEL = gpt_model(layers=8, hidden=1024, heads=16, vocab=32000, seq=2048)
RUN = RunSpec(seq_len=2048, precision="bf16")


def _mem(hw, loss="fused", **ex):
    return memory_breakdown(MODEL, RUN, make_exec(**ex), hw, loss=loss)


def test_overhead_parts_sum_and_kinds_nest(hw):
    m = _mem(hw, tp=2, dp=4, micro_batch=2, global_batch=8)
    parts = m.overhead_parts
    assert set(parts) == {"runtime", "nccl", "fragmentation"}
    assert float(m.overhead_bytes) == pytest.approx(sum(float(v) for v in parts.values()), rel=1e-12)
    assert float(parts["runtime"]) == hw.accelerator.memory_overhead_bytes.value
    assert float(parts["nccl"]) == 2 * NCCL_COMMUNICATOR_BYTES  # dp and tp groups
    # reserved = allocated / (1 - fragmentation share) while there is room (GMLake: 15% of reserved)
    assert float(m.reserved_bytes) == pytest.approx(float(m.allocated_bytes) / (1 - ALLOCATOR_FRAGMENTATION))
    assert float(m.allocated_bytes) < float(m.reserved_bytes) < float(m.total_bytes)
    assert m.comparable_bytes("allocated") == m.allocated_bytes
    assert m.comparable_bytes("reserved") == m.reserved_bytes
    assert m.comparable_bytes("device") == m.total_bytes


def test_fragmentation_takes_only_the_room_left(hw):
    """Near capacity the allocator frees cached blocks and retries: against the raw capacity, whether a run fits is
    decided by its tensors, runtime and NCCL buffers (published runs ran); a plan fits when the total,
    fragmentation included, is within the capacity less the planning headroom."""
    mb = np.array([1, 8, 16, 24, 32, 48, 64])
    m = _mem(hw, micro_batch=mb, global_batch=mb)
    parts = m.overhead_parts
    without_frag = m.allocated_bytes + parts["runtime"] + parts["nccl"]
    cap = m.capacity_bytes
    assert np.array_equal(m.total_bytes <= cap * (1 + 1e-12), without_frag <= cap)
    assert np.array_equal(m.fits, m.total_bytes <= m.usable_bytes)
    assert np.all(parts["fragmentation"] >= 0)
    assert (without_frag <= cap).any() and (without_frag > cap).any() and (parts["fragmentation"] == 0).any()


def test_communicators_counted_per_group(hw):
    assert float(communicators(make_exec(), 8)) == 0
    assert float(communicators(make_exec(tp=8, pp=4, dp=16, cp=2, ep=4), 8)) == 5
    # hybrid sharding: the shard group inside a node and the replica group across nodes
    assert float(communicators(make_exec(dp=32, fsdp=2, zero_stage=3), 8)) == 2


def test_loss_kinds(hw):
    e = 2.0
    assert loss_bytes_per_logit(RUN) == e + LOSS_FP32_BYTES  # Korthikanti: bf16 logits + fp32 softmax
    assert loss_bytes_per_logit(RUN, "unfused") == e + 2 * LOSS_FP32_BYTES  # + the fp32 copy F.cross_entropy reads
    assert loss_bytes_per_logit(RUN, "inplace") == e
    assert loss_bytes_per_logit(RunSpec(seq_len=2048, precision="fp32"), "unfused") == 8.0  # no copy in fp32
    fused, unfused = _mem(hw, micro_batch=2, global_batch=2), _mem(hw, "unfused", micro_batch=2, global_batch=2)
    logits = 2048 * 2 * 32000
    assert float(unfused.logits_bytes - fused.logits_bytes) == pytest.approx(logits * LOSS_FP32_BYTES)
    with pytest.raises(ValueError):
        loss_bytes_per_logit(RUN, "magic")


def test_fsdp_buffers(hw):
    """Zhao et al. 2023: two units unsharded (current + prefetched) and the root for the step (ZeRO-3); one unit's
    gradient and the reduce-scatter in flight (ZeRO-2 and -3); none with a shard group of one or without sharding."""
    pb = param_breakdown(MODEL)
    unit = pb.layers_dense / MODEL.total_layers
    root = pb.embedding + pb.final_norms + pb.head
    fw, fg = fsdp_buffer_bytes(MODEL, RUN, make_exec(dp=8, zero_stage=3, fsdp=1), hw, pb)["first"]
    assert float(fw) == pytest.approx((2 * unit + root) * 2.0)
    assert float(fg) == pytest.approx(2 * unit * 2.0)
    fw2, fg2 = fsdp_buffer_bytes(MODEL, RUN, make_exec(dp=8, zero_stage=2), hw, pb)["first"]
    assert float(fw2) == 0 and float(fg2) == float(fg)
    for ex in (make_exec(dp=8, zero_stage=1), make_exec(dp=1, zero_stage=3, fsdp=1)):
        assert all(float(x) == 0 for wg in fsdp_buffer_bytes(MODEL, RUN, ex, hw, pb).values() for x in wg)
    plain = _mem(hw, dp=8, zero_stage=3, fsdp=1, global_batch=8)
    assert float(plain.fsdp_buffer_bytes) == pytest.approx(float(fw + fg))


def test_buffers_never_undo_what_sharding_saved(hw):
    """On two ranks the root and two blocks are more than half the model: the buffers are bounded by what sharding
    saved, so ZeRO-3 never holds more than ZeRO-2 (Rajbhandari et al. 2020; tests/test_invariants.py)."""
    model = gpt_model(layers=2, hidden=1024, heads=16, vocab=128000, seq=2048)
    pb = param_breakdown(model)
    ex = make_exec(dp=2, zero_stage=3, fsdp=1)
    fw, _ = fsdp_buffer_bytes(model, RUN, ex, hw, pb)["first"]
    stage = rank_params(model, pb, ex)["first"][0]
    assert float(fw) == pytest.approx(stage * 0.5 * 2.0)
    z2, z3 = (memory_breakdown(model, RUN, make_exec(dp=2, zero_stage=z, global_batch=2), hw) for z in (2, 3))
    assert float(z3.total_bytes) <= float(z2.total_bytes)


def test_fsdp_with_pipelining_as_torchtitan_runs_it(hw):
    """torchtitan (reshard_after_forward=False with PP) and torch.distributed.pipelining (no gradient reduction
    until the last micro-batch): the stage's weights unsharded, its gradients accumulated unsharded in fp32. A
    framework behaviour of torchtitan's alone (it holds more than ZeRO-2 would)."""
    pb = param_breakdown(MODEL)
    ex = make_exec(dp=4, pp=2, zero_stage=3, fsdp=1, global_batch=16)
    buffers = fsdp_buffer_bytes(MODEL, RUN, ex.replace(framework=FRAMEWORK_CODE["torchtitan"]), hw, pb)
    (fw, fg), (lw, lg) = buffers["first"], buffers["last"]
    first = pb.embedding + pb.layers_dense / 2
    assert float(fw) == pytest.approx(first * 2.0) and float(fg) == pytest.approx(first * 4.0)
    assert float(lw) > 0 and float(lg) == pytest.approx(float(lw) * 2)
    for other in ("megatron", "deepspeed", None):  # the others reshard: two units and a bucket
        default = fsdp_buffer_bytes(MODEL, RUN, ex.replace(framework=FRAMEWORK_CODE[other]), hw, pb)["first"]
        assert float(default[0]) < float(fw) and float(default[1]) < float(fg), other
    on = memory_breakdown(MODEL, RUN, ex.replace(framework=FRAMEWORK_CODE["torchtitan"]), hw, loss="fused")
    off = memory_breakdown(MODEL, RUN, ex.replace(framework=FRAMEWORK_CODE["fsdp"]), hw, loss="fused")
    assert float(on.allocated_bytes) > float(off.allocated_bytes)


def test_activations_keep_korthikanti(hw):
    """The new terms sit outside activations_bytes: Table 2's activation formula is unchanged (its own test holds
    it exactly); with FSDP or an unfused loss only weights, gradients, logits and overhead move."""
    base = _mem(hw, dp=8, global_batch=8)
    other = memory_breakdown(MODEL, RUN, make_exec(dp=8, zero_stage=3, fsdp=1, global_batch=8), hw, loss="unfused")
    assert float(base.activations_bytes) == float(other.activations_bytes)


def test_rank_params_hold_the_whole_model_once(hw):
    """First + middle stages + last hold every parameter once when the stages are even (the tied embedding's copy on
    the last stage aside), and each rank's root is what lies outside its layers."""
    model = gpt_model(layers=24, hidden=1024, heads=16, vocab=32000, seq=2048)
    pb = param_breakdown(model)
    ex = make_exec(pp=4, tp=2, dp=1, global_batch=8)
    ranks = rank_params(model, pb, ex)
    total = (ranks["first"][0] + 2 * ranks["middle"][0] + ranks["last"][0]) * 2  # 2 middle stages; tp 2
    tied = model.vocab_size * model.hidden_size if model.tie_embeddings else 0
    assert float(total) == pytest.approx(pb.total + tied, rel=1e-12)
    assert float(ranks["middle"][2]) == 0.0 and float(ranks["first"][2]) * 2 == pytest.approx(pb.embedding)
