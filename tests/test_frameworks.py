"""Layouts as a named framework can run them (issue 15: "the search never returns a layout that the framework named
in the plan could not run"). ``layout.framework`` adds that framework's limits (planner/core/checks.py) to the
divisibility rules, so an estimate refuses a layout it cannot run with a one-line reason and a search ranks only
layouts it can; DeepSpeed's pipeline sends are costed without Megatron's scatter/gather."""

from __future__ import annotations

import re

import numpy as np
import pytest

import planner
from helpers import run_cli
from planner.core.estimate import estimate
from planner.errors import SpecError
from planner.search import Constraints, search

SEARCH_LIMITS = {  # framework -> what no ranked (feasible) row may show
    "fsdp": lambda r: r["tp"] > 1 or r["pp"] > 1 or r["cp"] > 1 or r["ep"] > 1 or r["zero_stage"] == 1,
    "deepspeed": lambda r: (r["pp"] > 1 and r["zero_stage"] >= 2) or r["vpp"] > 1 or r["cp"] > 1,
    "torchtitan": lambda r: r["zero_stage"] == 1 or (r["tp"] > 1 and not r["sequence_parallel"]),
    "megatron": lambda r: r["zero_stage"] == 2,
    "ddp": lambda r: r["tp"] > 1 or r["pp"] > 1 or r["cp"] > 1 or r["ep"] > 1 or r["zero_stage"] >= 2,
}


def _plan(framework=None, model="llama-2-70b", seq=4096, batch=512, **layout):
    return planner.make_plan(model=model, hardware="a100-80gb", run={"seq_len": seq, "global_batch_seqs": batch},
                             layout={"gpus": 64, "framework": framework, **layout})


@pytest.mark.parametrize("framework,layout,words", [
    ("deepspeed", {"tp": 8, "pp": 2, "zero_stage": 3}, ("deepspeed", "ZeRO-3", "pp 2")),
    ("deepspeed", {"tp": 8, "pp": 2, "vpp": 2}, ("deepspeed", "vpp(2)")),
    ("deepspeed", {"tp": 8, "cp": 2}, ("deepspeed", "cp(2)")),
    ("fsdp", {"tp": 2}, ("fsdp", "tp(2)")),
    ("fsdp", {"zero_stage": 1}, ("fsdp", "ZeRO-1")),
    ("torchtitan", {"zero_stage": 1}, ("torchtitan", "ZeRO-1")),
    ("torchtitan", {"tp": 8}, ("torchtitan", "tp 8", "sequence_parallel")),
    ("megatron", {"tp": 8, "zero_stage": 2}, ("megatron", "ZeRO-2")),
    ("ddp", {"zero_stage": 1, "offload_optimizer": True}, ("ddp", "offload_optimizer")),
])
def test_estimate_refuses_what_the_framework_cannot_run_with_one_line(framework, layout, words):
    with pytest.raises(SpecError) as exc:
        estimate(_plan(framework, **layout))
    msg = str(exc.value)
    assert all(w in msg for w in words) and "\n" not in msg, msg
    estimate(_plan(None, **layout))  # without a framework the layout runs: another framework runs it


def test_without_a_framework_a_layout_no_framework_runs_is_refused():
    """ZeRO-2 with a pipeline and tensor parallelism without sequence parallelism: Megatron has no ZeRO-2,
    DeepSpeed's pipeline engine no ZeRO-2, torchtitan no TP without SP, plain FSDP no TP or PP. One line naming
    each framework's objection; with sequence parallelism torchtitan runs it, and so does the estimate."""
    layout = {"tp": 2, "pp": 2, "zero_stage": 2}
    with pytest.raises(SpecError) as exc:
        estimate(_plan(None, **layout))
    msg = str(exc.value)
    assert msg.startswith("layout: no framework runs this layout: ") and "\n" not in msg
    assert all(f"framework {f}" in msg for f in ("megatron", "deepspeed", "torchtitan", "fsdp")), msg
    estimate(_plan(None, sequence_parallel=True, **layout))
    estimate(_plan("torchtitan", sequence_parallel=True, **layout))


def test_megatron_moe_with_tensor_parallelism_needs_sequence_parallelism():
    plan = planner.make_plan(model="mixtral-8x7b", hardware="h100-sxm", run={"seq_len": 4096, "global_batch_seqs": 256},
                             layout={"gpus": 64, "tp": 2, "ep": 8, "framework": "megatron"})
    with pytest.raises(SpecError, match="MoE layers with tp"):
        estimate(plan)
    ok = planner.make_plan(model="mixtral-8x7b", hardware="h100-sxm", run={"seq_len": 4096, "global_batch_seqs": 256},
                           layout={"gpus": 64, "tp": 2, "ep": 8, "sequence_parallel": True, "framework": "megatron"})
    assert float(estimate(ok).evaluation.throughput.step_time_s) > 0


@pytest.mark.parametrize("framework", sorted(SEARCH_LIMITS))
def test_search_ranks_only_layouts_the_framework_runs(framework):
    model = "phi-3-mini" if framework == "ddp" else "llama-2-70b"  # replicated, a 70B (or 7B) fits no GPU
    res = search(_plan(framework, model=model), Constraints(max_gpus=64))
    rows = res.rows(res.ranked(200, fold=False), with_reason_text=False)
    assert rows and all(r["framework"] == framework for r in rows)
    assert not [r for r in rows if SEARCH_LIMITS[framework](r)]
    # the rules reject something the unrestricted search would have taken, and say so by code
    free = search(_plan(None, model=model), Constraints(max_gpus=64))
    assert free.feasible.sum() > res.feasible.sum()
    assert any(code.startswith(framework + ":") for code in res.reasons)


def test_deepspeed_pipeline_sends_the_whole_tensor_from_every_rank():
    """Same layout (tp 8, pp 2, no sequence parallelism): Megatron sends 1/8 per rank and all-gathers over
    NVLink; DeepSpeed's pipeline engine sends all of it from each rank, so its p2p time is larger."""
    mega = estimate(_plan("megatron", tp=8, pp=2)).evaluation.time
    ds = estimate(_plan("deepspeed", tp=8, pp=2)).evaluation.time
    assert float(ds.pp_comm_s) > 2 * float(mega.pp_comm_s) > 0
    assert float(ds.compute_s) == pytest.approx(float(mega.compute_s))


def test_cli_flag_and_plan_column(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "64", "--tp",
                             "2", "--framework", "fsdp", "--seq", "4096", "--global-batch", "64")
    assert code == 2 and "framework fsdp is data parallel only" in err and out == ""
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "64",
                             "--framework", "fsdp", "--zero", "3", "--seq", "4096", "--global-batch", "64", "-f", "csv")
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert row.split(",")[header.split(",").index("framework")] == "fsdp"
    assert np.isfinite(float(row.split(",")[header.split(",").index("step_time_s")]))


def test_every_published_run_obeys_the_rules_of_the_framework_that_ran_it():
    """The rules must not refuse what frameworks ran: all 259 public runs (throughput and memory-only), each with
    the framework of its source (planner/calibrate/measured.py SOURCE_FRAMEWORK; DeepSpeed for Narayanan et al.'s
    ZeRO-3 rows), pass every rule."""
    from collections import Counter

    from planner.calibrate.measured import MEMORY_ONLY_PATH, load_runs
    from planner.calibrate.validate import plan_of
    from planner.core.checks import check_layout
    from planner.core.layout import exec_from_spec

    runs = load_runs()[0] + load_runs(MEMORY_ONLY_PATH)[0]
    for r in runs:
        p = plan_of(r)
        check_layout(p.model, p.run, exec_from_spec(p.layout, p.run))
    counts = Counter(r.layout.framework for r in runs)
    assert len(runs) == 259 and set(counts) == {"fsdp", "megatron", "torchtitan", "deepspeed", "ddp"}, counts


def test_framework_sets_the_loss_and_torchtitans_unsharded_pipeline_stage():
    """Memory as each framework computes it: an fp32 F.cross_entropy (torchtitan, DeepSpeed, plain FSDP) holds 4 more
    bytes per logit element than Megatron's fused vocab-parallel loss (module docstring of core/memory.py); with
    pp > 1 torchtitan keeps its FSDP stage unsharded (memory.torchtitan_fsdp), Megatron's FSDP does not."""

    def mem(framework, **layout):
        p = _plan(framework, model="llama-2-7b", batch=64, **layout)
        return estimate(p).evaluation.memory, p

    fused, p = mem("megatron", zero_stage=3)
    unfused, _ = mem("torchtitan", zero_stage=3)
    tokens_times_vocab = 4096 * 1 * p.model.vocab_size  # micro-batch 1, tp 1
    assert float(unfused.logits_bytes - fused.logits_bytes) == pytest.approx(4.0 * tokens_times_vocab)
    piped, p = mem("torchtitan", pp=2, zero_stage=3)
    flat, _ = mem("megatron", pp=2, zero_stage=3)
    assert float(piped.weights_bytes) > float(flat.weights_bytes)


def test_zero_bubble_h1_only_where_a_framework_runs_it():
    """ZB-H1 (non-interleaved) is in Sea AI Lab's Megatron-LM fork, not in torch.distributed.pipelining (torchtitan)
    or DeepSpeed's pipeline engine: a search for torchtitan with zb-h1 finds no pipelined layout."""
    with pytest.raises(SpecError, match="torchtitan.*zb-h1"):
        estimate(_plan("torchtitan", tp=8, pp=2, sequence_parallel=True, pipeline_schedule="zb-h1"))
    estimate(_plan("megatron", tp=8, pp=2, pipeline_schedule="zb-h1"))
    res = search(_plan("torchtitan", pipeline_schedule="zb-h1"), Constraints(max_gpus=64))
    rows = res.rows(res.ranked(200, fold=False), with_reason_text=False)
    assert rows and all(r["pp"] == 1 for r in rows)


def test_a_search_without_a_framework_says_which_one_each_row_was_costed_as(capsys):
    """Unnamed, each layout is costed as the first framework that runs it (checks.costed_framework); the rows say
    which (column costed_framework; a line under the search table), and naming that framework re-estimates the
    same numbers."""
    res = search(_plan(None), Constraints(max_gpus=64))
    rows = res.rows(res.ranked(300, fold=False), with_reason_text=False)
    assert {r["framework"] for r in rows} == {None}
    named = {r["costed_framework"] for r in rows}
    assert named <= {"megatron", "deepspeed", "torchtitan", "fsdp"} and len(named) >= 2, named
    for fw in named:
        r = next(r for r in rows if r["costed_framework"] == fw)
        layout = {k: r[k] for k in ("gpus", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "sequence_parallel",
                                    "recompute")}
        plan = planner.make_plan(model="llama-2-70b", hardware="a100-80gb",
                                 run={"seq_len": 4096, "global_batch_seqs": 512, "micro_batch": r["micro_batch_seqs"]},
                                 layout={**layout, "framework": fw})
        alone = estimate(plan).to_dict()
        assert alone["costed_framework"] == fw
        assert alone["step_time_s"] == pytest.approx(r["step_time_s"], rel=1e-9), fw
        # memory too: the loss that framework computes, torchtitan's unsharded pipelined stage
        assert alone["memory_per_gpu_bytes"] == pytest.approx(r["memory_per_gpu_bytes"], rel=1e-9), fw
    code, out, _ = run_cli(capsys, "search", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "64",
                           "--seq", "4096", "--global-batch", "64")
    assert code == 0 and re.search(r"costed as \(no framework named\): (megatron|deepspeed|torchtitan|fsdp) #1", out)
    code, out, _ = run_cli(capsys, "search", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "64",
                           "--seq", "4096", "--global-batch", "64", "--framework", "megatron", "-f", "csv")
    header, row = out.splitlines()[:2]
    assert row.split(",")[header.split(",").index("costed_framework")] == "megatron"


def test_ddp_holds_its_gradient_buckets_beside_the_gradients():
    """PyTorch DDP runs mixed precision as torch.autocast does: fp32 parameters (4 bytes) plus cached bf16 casts (2),
    fp32 gradients (4) twice (its all-reduce buckets beside param.grad, gradient_as_bucket_view off by default),
    Adam's moments without a master copy (8), and all-reduces fp32 gradients. Plain FSDP's NO_SHARD on the same
    layout keeps bf16 weights (2), bf16 gradients (2) and master + moments (12). Activations and logits alike."""
    ddp = estimate(_plan("ddp", model="llama-2-7b", zero_stage=0)).to_dict()
    fsdp = estimate(_plan("fsdp", model="llama-2-7b", zero_stage=0)).to_dict()
    with_zero1 = estimate(_plan("ddp", model="llama-2-7b", zero_stage=1)).to_dict()  # ZeroRedundancyOptimizer
    for part, ratio in (("weights", 6 / 2), ("gradients", 8 / 2), ("optimizer", 8 / 12)):
        assert ddp[f"memory_{part}_bytes"] == pytest.approx(ratio * fsdp[f"memory_{part}_bytes"], rel=1e-9), part
    assert with_zero1["memory_gradients_bytes"] == pytest.approx(ddp["memory_gradients_bytes"], rel=1e-12)
    assert with_zero1["memory_optimizer_bytes"] < ddp["memory_optimizer_bytes"]
    for part in ("activations", "logits"):
        assert ddp[f"memory_{part}_bytes"] == pytest.approx(fsdp[f"memory_{part}_bytes"], rel=1e-12), part
    assert ddp["time_dp_comm_s"] > 1.5 * fsdp["time_dp_comm_s"]  # fp32 gradients all-reduced, not bf16
    with pytest.raises(SpecError, match="framework ddp replicates the model"):
        estimate(_plan("ddp", model="llama-2-7b", zero_stage=3))
