"""Profiles of the accelerators DeepSeek-V3 and 2025-26 runs use: H800, GB200 NVL72, B300, MI325X.

Spot checks against the datasheet figures each profile cites (so a silent edit shows up), the generation each
borrows its time-model calibration from, the GB200 NVL72's 72-GPU NVLink domain as the profile schema expresses it
(``gpus_per_node``: collectives of up to 72 GPUs stay on NVLink), and an estimate on each. The generic checks
(every number sourced and numeric, aliases unique, prices dated and in the table) in test_hardware_profiles.py run
over these files too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import planner
from planner.core.comm import crosses_nodes
from planner.registry import calibration_path, load_hardware

NEW = ("h800", "gb200-nvl72", "b300", "mi325x")
PRICES = Path(__file__).resolve().parent.parent / "hardware_profiles" / "pricing" / "gpu_prices.yaml"


@pytest.mark.parametrize("name", NEW)
def test_loads_with_generation_calibration_and_dense_peaks(name):
    hw = load_hardware(name)
    acc = hw.accelerator
    # fp4 (NVFP4/MXFP4) only on Blackwell, at 2x fp8 dense (B300: Blackwell Ultra raises fp4 alone)
    assert set(acc.peak_flop_per_s) - {"fp4"} == {"fp32", "tf32", "bf16", "fp16", "fp8"}
    assert ("fp4" in acc.peak_flop_per_s) == (hw.generation in ("blackwell", "blackwell_ultra"))
    assert acc.peak("fp8") == pytest.approx(2 * acc.peak("bf16"), rel=1e-3)  # dense, not the sparse figures
    assert acc.peak("tf32") == pytest.approx(acc.peak("bf16") / 2, rel=1e-3)
    assert hw.network.inter_node_bandwidth_bytes_per_s.value < hw.node.intra_node_bandwidth_bytes_per_s.value
    assert calibration_path(hw.generation) is not None, f"{name}: no calibration for {hw.generation}"
    assert "gemm_half_dim" in hw.efficiency  # the generation's calibration is merged in


def test_datasheet_numbers():
    h800, gb, b300, mi = (load_hardware(n) for n in NEW)
    h100 = load_hardware("h100-sxm")
    # H800: the H100 SXM5 die with NVLink cut to 400 GB/s bidirectional; IB 50 GB/s per GPU (DeepSeek-V3 §3.2.2)
    assert h800.accelerator.peak_flop_per_s == h100.accelerator.peak_flop_per_s or all(
        h800.accelerator.peak(d) == h100.accelerator.peak(d) for d in h100.accelerator.peak_flop_per_s)
    assert h800.node.intra_node_bandwidth_bytes_per_s.value == 400e9 / 2
    assert h800.network.inter_node_bandwidth_bytes_per_s.value == 50e9
    assert h800.efficiency["nvlink_busbw_fraction"].value == pytest.approx(160e9 / 200e9)
    assert h800.generation == h100.generation == "hopper"
    # GB200 NVL72: rack totals / 72 GPUs, dense = sparse / 2
    assert gb.gpus_per_node == 72
    assert gb.accelerator.peak("bf16") == pytest.approx(360e15 / 72 / 2)
    assert gb.accelerator.hbm_bandwidth_bytes_per_s.value == pytest.approx(576e12 / 72)
    assert gb.node.intra_node_bandwidth_bytes_per_s.value == 1.8e12 / 2
    # B300: HGX B300 per-8-GPU figures; 800 Gb/s ConnectX-8 per GPU
    assert b300.accelerator.peak("bf16") == pytest.approx(36e15 / 8 / 2)
    assert b300.accelerator.hbm_bytes.value == 288e9
    assert b300.network.inter_node_bandwidth_bytes_per_s.value == 800e9 / 8
    # MI325X: the MI300X's compute, 256 GB HBM3E at 6 TB/s
    mi300 = load_hardware("mi300x")
    assert mi.accelerator.peak("bf16") == mi300.accelerator.peak("bf16")
    assert mi.accelerator.hbm_bytes.value == 256 * 2**30
    assert mi.accelerator.hbm_bandwidth_bytes_per_s.value == 6e12


def test_b300_calibration_says_it_is_borrowed():
    hw = load_hardware("b300")
    path = calibration_path(hw.generation)
    doc = yaml.safe_load(path.read_text())
    assert (doc["generation"], doc["borrowed_from"]) == ("blackwell_ultra", "hopper")
    assert doc["parameters"]  # the values are the hopper fit's as of writing; a refit rewrites both
    for name, q in doc["parameters"].items():
        assert isinstance(q["value"], (int, float)), name
        assert q["source"].startswith("borrowed from the hopper fit"), name
        assert "Unvalidated on this generation" in q["note"], name
    for other in ("gb200-nvl72", "mi325x"):  # their generations' files are borrowed too (blackwell, cdna3)
        assert "borrowed_from" in yaml.safe_load(calibration_path(load_hardware(other).generation).read_text())


def test_nvl72_keeps_ep_and_tp_groups_on_nvlink():
    """An EP group of 64 (stride tp 1) crosses nodes on an 8-GPU B200 node but not inside the 72-GPU domain."""
    gb, b200 = load_hardware("gb200-nvl72"), load_hardware("b200")
    assert not crosses_nodes(64, 1, gb.gpus_per_node)
    assert crosses_nodes(64, 1, b200.gpus_per_node)
    assert crosses_nodes(64, 2, gb.gpus_per_node)  # 128 ranks' span leaves the rack


def test_ep_all_to_all_is_cheaper_inside_the_nvlink_domain():
    kw = dict(model="mixtral-8x7b", run={"seq_len": 4096, "global_batch_seqs": 288, "precision": "bf16"},
              layout={"gpus": 144, "ep": 8, "tp": 1, "pp": 1, "fsdp": "full"})
    nvl = planner.estimate(hardware="gb200-nvl72", **kw).to_dict()
    hgx = planner.estimate(hardware="b200", **kw).to_dict()
    assert nvl["params_total"] == hgx["params_total"]
    assert nvl["time_ep_comm_s"] <= hgx["time_ep_comm_s"]


@pytest.mark.parametrize("name", NEW)
def test_a_plan_estimates_on_each(name):
    gpus = 72 if name == "gb200-nvl72" else 64
    r = planner.estimate(model="qwen3-30b-a3b", hardware=name,
                         run={"seq_len": 4096, "global_batch_seqs": 4 * gpus, "precision": "bf16",
                              "training_tokens": 1e11},
                         layout={"gpus": gpus, "ep": 8, "fsdp": "full"}).to_dict()
    assert r["step_time_s"] > 0 and r["mfu"] > 0 and r["cost_usd"] > 0


def test_prices_listed_with_dates():
    rows = yaml.safe_load(PRICES.read_text())["prices"]
    for name in NEW:
        mine = [r for r in rows if r["gpu"] == name]
        assert mine and all(r["date"] and r["source"] for r in mine), name
        assert load_hardware(name).price_usd_per_gpu_hour.value in {r["usd_per_gpu_hour"] for r in mine}
