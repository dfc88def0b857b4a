"""Clusters, not only GPUs (issue 15 item 8): the node and fabric as a profile of their own, beside the GPU."""

from __future__ import annotations

import pytest

import planner
from planner.core.efficiency import time_params
from planner.core.estimate import estimate, evaluate
from planner.core.layout import exec_from_spec
from planner.errors import SpecError
from planner.registry import cluster_names
from helpers import run_cli  # noqa: E402


def _zero3_50b(cluster=None, gpu="a100-40gb", slowdown=None):
    """A ~50B dense model with ZeRO-3 (FSDP full shard) on 512 GPUs, as the issue's cloud-fabric case; ``slowdown``
    overrides the compute slowdown hidden communication causes (time.overlap_s)."""
    hw = {"extends": gpu} if cluster is None else {"extends": gpu, "cluster": cluster}
    model = {"extends": "llama-2-70b", "name": "dense-50b", "num_layers": 64, "hidden_size": 8192,
             "num_heads": 64, "num_kv_heads": 8, "ffn_hidden": 22016}
    p = planner.make_plan(model=model, hardware=hw, run={"seq_len": 2048, "global_batch_seqs": 1024},
                          layout={"gpus": 512, "fsdp": "full", "recompute": "full"})
    if slowdown is None:
        return estimate(p).to_dict()
    eff = time_params(p.hardware, p.run.precision).replace(overlap_compute_slowdown=slowdown)
    return {"time_dp_comm_s": float(evaluate(p, exec_from_spec(p.layout, p.run), eff).time.dp_comm_s)}


def test_every_cluster_profile_loads_and_cites_its_numbers():
    names = cluster_names()
    assert {"dgx-a100-superpod", "dgx-h100-superpod", "aws-p4d", "aws-p5", "azure-nd-h100-v5"} <= set(names)
    for name in names:
        gpu = "h100-sxm" if ("h100" in name or "p5" in name) else "a100-80gb"
        p = planner.make_plan(model="llama-3-8b", hardware={"extends": gpu, "cluster": name},
                              run={"seq_len": 4096, "global_batch_seqs": 64}, layout={"gpus": 16})
        net = p.hardware.network
        assert p.hardware.cluster == name and "source" in net.inter_node_bandwidth_bytes_per_s.model_dump()
        assert net.inter_node_bandwidth_bytes_per_s.source and net.oversubscription_ratio.source


def test_a_cloud_fabric_halves_what_a_superpod_predicts_for_zero3():
    """400 Gb/s per 8 GPUs (AWS p4d) against 200 Gb/s per GPU (DGX A100 SuperPOD): a quarter of the bandwidth, and
    ZeRO-3 gathers every layer's weights per micro-batch, so throughput drops well below the SuperPOD's. What
    sticks out of the compute (without the slowdown hidden gathers cause, which both fabrics pay) is more than ten
    times the SuperPOD's."""
    pod, cloud = _zero3_50b("dgx-a100-superpod"), _zero3_50b("aws-p4d")
    assert pod["params_total"] == pytest.approx(50e9, rel=0.15)
    assert cloud["tokens_per_s_per_gpu"] < 0.7 * pod["tokens_per_s_per_gpu"]
    shown = [_zero3_50b(c, slowdown=0.0)["time_dp_comm_s"] for c in ("dgx-a100-superpod", "aws-p4d")]
    assert shown[1] > 10 * shown[0]


def test_oversubscription_divides_the_bandwidth_between_nodes():
    fat, thin = _zero3_50b("dgx-a100-superpod"), _zero3_50b("roce-2to1")
    assert thin["time_dp_comm_s"] > fat["time_dp_comm_s"]


def test_unknown_cluster_is_one_line_naming_the_known_ones():
    with pytest.raises(SpecError) as exc:
        planner.make_plan(model="llama-3-8b", hardware={"extends": "h100-sxm", "cluster": "nope"},
                          run={"seq_len": 4096}, layout={"gpus": 8})
    assert "nope" in str(exc.value) and "aws-p5" in str(exc.value) and "\n" not in str(exc.value)


def test_cluster_flag_on_estimate(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-3-8b", "--gpu", "a100-40gb", "--cluster",
                             "aws-p4d", "--gpus", "64", "--fsdp", "full", "--seq", "2048", "--global-batch", "512",
                             "--format", "json")
    assert code == 0, err
    code2, out2, _ = run_cli(capsys, "estimate", "--model", "llama-3-8b", "--gpu", "a100-40gb", "--gpus", "64",
                             "--fsdp", "full", "--seq", "2048", "--global-batch", "512", "--format", "json")
    import json

    assert json.loads(out)["step_time_s"] > json.loads(out2)["step_time_s"]
