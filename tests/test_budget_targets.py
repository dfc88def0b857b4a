"""Budget answers keep their stated targets, and memory headroom is a setting (issue 16 item 7)."""

from __future__ import annotations

import pytest

import planner
from planner.budget import budget
from planner.core.estimate import estimate
from planner.registry import load_hardware
from planner.search import Constraints, search


def test_a_dollar_budget_alone_runs_in_the_promised_days_and_dollars():
    """`planner budget --usd 5000 --gpu a100-80gb` promised about 90 days or fewer and answered 1 GPU, 148 days."""
    ans = budget(load_hardware("a100-80gb"), usd=5000)
    d = ans.to_dict()
    assert d["wall_clock_days"] <= 90.0 and d["cost_usd"] <= 5000.0, d
    assert not any("misses" in n for n in d["notes"])


@pytest.mark.parametrize("gpus,days", [(1024, 30.0), (256, 7.0)])
def test_fixed_gpus_and_days_are_kept(gpus, days):
    """`--gpus 1024 --days 30` answered 30.2 days."""
    d = budget(load_hardware("h100-sxm"), gpus=gpus, days=days).to_dict()
    assert d["gpus"] <= gpus and d["wall_clock_days"] <= days, d


def test_dollars_and_days_both_kept():
    d = budget(load_hardware("h100-sxm"), usd=2e6, days=20.0).to_dict()
    assert d["wall_clock_days"] <= 20.0 and d["cost_usd"] <= 2e6, d


def test_a_target_loss_that_cannot_meet_the_days_says_by_how_much():
    """The loss fixes model and tokens: when the days cannot hold, the answer says so and by how much."""
    d = budget(load_hardware("h100-sxm"), target_loss=2.2, days=1.0, gpus=64).to_dict()
    misses = [n for n in d["notes"] if n.startswith("misses the days target by")]
    assert misses and "target loss fixes" in misses[0]
    over = d["wall_clock_days"] / 1.0 - 1
    assert f"{100 * over:.1f}%" in misses[0]


def _plan(headroom=None):
    hw = {"extends": "h100-sxm"} if headroom is None else {"extends": "h100-sxm", "memory_headroom_fraction": headroom}
    return planner.make_plan(model="llama-3-8b", hardware=hw, run={"seq_len": 8192, "global_batch_seqs": 64},
                             layout={"gpus": 8, "fsdp": "full"})


def test_memory_headroom_is_kept_free():
    base = estimate(_plan()).to_dict()
    assert base["memory_usable_bytes"] == pytest.approx(base["memory_capacity_bytes"] * 0.97)  # default 3%
    need = base["memory_per_gpu_bytes"] / base["memory_capacity_bytes"]
    tight = estimate(_plan(headroom=1.0 - need + 0.01)).to_dict()  # the same plan, headroom one point too big
    assert base["fits"] and not tight["fits"] and "after the memory headroom" in tight["reason"]


def test_search_calls_nothing_fits_that_eats_the_headroom():
    res = search(_plan(headroom=0.1), Constraints(gpus=(8,)))
    cap = _plan().hardware.accelerator.hbm_bytes.value
    fits = res.memory_per_gpu_bytes[res.feasible]
    assert fits.size and (fits <= 0.9 * cap).all()
