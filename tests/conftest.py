"""Shared fixtures for the foundation tests.

Hardware profiles are written by another part of the project and may not exist yet, so the tests build their own
``HardwareSpec`` inline (``hw``) and, for the CLI, write the same profile as YAML into a temporary folder that
``PLANNER_PROFILES`` points at (``profile_dir``; see ``planner/registry.py``). The numbers of this test profile are
round placeholders of an 80 GB GPU, not a real product's datasheet: no test compares them with a published figure.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from planner import registry
from planner.core.layout import Exec
from planner.specs.hardware import HardwareSpec
from planner.specs.model import ModelSpec

TEST_PROFILE_NAME = "unit-test-gpu"

#: A complete hardware profile: every field HardwareSpec requires. Round numbers (test-only, no source needed).
TEST_PROFILE = {
    "name": TEST_PROFILE_NAME,
    "description": "80 GB placeholder GPU for the unit tests",
    "aliases": ["unit-test-alias"],
    "accelerator": {
        "name": "Unit-test GPU 80GB",
        "peak_flop_per_s": {
            "fp32": {"value": 6.0e13}, "tf32": {"value": 5.0e14}, "bf16": {"value": 1.0e15},
            "fp16": {"value": 1.0e15}, "fp8": {"value": 2.0e15},
        },
        "hbm_bytes": {"value": 8.0e10},
        "hbm_bandwidth_bytes_per_s": {"value": 3.0e12},
        "tdp_w": {"value": 700.0},
        "memory_overhead_bytes": {"value": 2.0e9},
    },
    "node": {
        "gpus_per_node": {"value": 8},
        "intra_node_bandwidth_bytes_per_s": {"value": 4.5e11},
        "intra_node_latency_s": {"value": 1.0e-5},
    },
    "network": {
        "inter_node_bandwidth_bytes_per_s": {"value": 5.0e10},
        "inter_node_latency_s": {"value": 2.0e-5},
    },
}


def profile_data(**accelerator_changes) -> dict:
    """A deep copy of :data:`TEST_PROFILE`, with accelerator fields replaced (e.g. a huge hbm_bytes)."""
    data = copy.deepcopy(TEST_PROFILE)
    data["accelerator"].update(accelerator_changes)
    return data


@pytest.fixture(scope="session")
def hw() -> HardwareSpec:
    """The test profile as a validated HardwareSpec."""
    return HardwareSpec.model_validate(profile_data())


@pytest.fixture(scope="session")
def big_hw() -> HardwareSpec:
    """The test profile with 1 PB of device memory, for checks that must not depend on fitting."""
    return HardwareSpec.model_validate(profile_data(hbm_bytes={"value": 1.0e15}))


@pytest.fixture
def profile_dir(tmp_path, monkeypatch):
    """A folder holding the test profile as YAML, on PLANNER_PROFILES; the registry's file cache is reset around
    the test so the profile is found and does not leak into other tests."""
    d = tmp_path / "profiles"
    d.mkdir()
    (d / f"{TEST_PROFILE_NAME}.yaml").write_text(yaml.safe_dump(TEST_PROFILE, sort_keys=False))
    monkeypatch.setenv("PLANNER_PROFILES", str(d))
    registry._profile_files.cache_clear()
    yield d
    registry._profile_files.cache_clear()


def gpt_model(layers: int, hidden: int, heads: int, vocab: int = 51200, seq: int = 2048, **changes) -> ModelSpec:
    """A GPT-style model in the setting of Korthikanti et al. 2022 §4 and Narayanan et al. 2021 §3: multi-head
    attention, a 4h GELU FFN, no biases (they add no matmul FLOPs), dropout on, learned positions, tied
    embeddings."""
    data = dict(
        name=f"gpt-{layers}x{hidden}", arch="decoder", num_layers=layers, hidden_size=hidden, num_heads=heads,
        ffn_hidden=4 * hidden, ffn_kind="gelu", vocab_size=vocab, tie_embeddings=True, position="learned",
        max_positions=seq, norm="layernorm", bias=False, dropout=0.1, attention={"pattern": "causal"},
    )
    data.update(changes)
    return ModelSpec.model_validate(data)


@pytest.fixture(scope="session")
def gpt():
    """Factory for :func:`gpt_model`."""
    return gpt_model


def make_exec(**changes) -> Exec:
    """A scalar Exec: one GPU, no parallelism, micro-batch 1, no recomputation, no FlashAttention; ``changes``
    override any field (scalars or numpy arrays)."""
    base = dict(tp=1, pp=1, dp=1, cp=1, ep=1, vpp=1, micro_batch=1, global_batch=1, zero_stage=0, fsdp=0, sp=0,
                recompute=0, flash=0, offload=0)
    base.update(changes)
    return Exec(**base)


@pytest.fixture(scope="session")
def exec_of():
    """Factory for :func:`make_exec`."""
    return make_exec


@pytest.fixture(autouse=True)
def _plain_wide_console(monkeypatch):
    """Rich output as a script sees it: no colour, wide enough that tables and messages do not wrap."""
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
