"""The budget query (issue 5 item 4): budget, MFU and model size agree, and the answer re-checks with estimate."""

from __future__ import annotations

import json

import pytest

from planner.budget import budget, gpu_count_candidates
from planner.cli import main
from planner.core.estimate import estimate
from planner.errors import SpecError
from planner.registry import load_hardware


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm")


@pytest.fixture(scope="module")
def usd_days(h100):
    return budget(h100, usd=2e6, days=30)


def test_budget_and_days_respected(usd_days):
    d = usd_days.to_dict()
    assert d["cost_usd"] <= 2e6 * 1.01
    assert d["wall_clock_days"] <= 30 * 1.01
    # the budget is mostly spent (GPU counts come in whole nodes with batch-friendly data-parallel degrees)
    assert d["cost_usd"] >= 0.6 * 2e6


def test_mfu_iteration_converged(usd_days):
    """The MFU loop settles to half a point; rounds that then shrink the model to keep the days and dollars are
    in the trace too (``shrink``), and the trace's last row is the answer."""
    loop = [i for i in usd_days.iterations if not i["shrink"]]
    converged = abs(loop[-1]["mfu_predicted"] - loop[-1]["mfu_assumed"]) < 0.005
    # or it alternated between two shapes and was sized with the lower MFU, which the plan then meets or beats
    alternated = any("alternates" in n for n in usd_days.notes)
    assert converged or (alternated and loop[-1]["mfu_predicted"] >= loop[-1]["mfu_assumed"])
    assert not any("did not settle" in n for n in usd_days.notes)
    assert usd_days.to_dict()["mfu"] == pytest.approx(usd_days.iterations[-1]["mfu_predicted"])
    assert usd_days.to_dict()["params_total"] == usd_days.iterations[-1]["params_total"]
    assert [i["iteration"] for i in usd_days.iterations] == list(range(len(usd_days.iterations)))


def test_answer_rechecks_with_estimate(usd_days):
    again = estimate(usd_days.plan).to_dict()
    assert again["step_time_s"] == usd_days.estimate["step_time_s"]
    assert again["cost_usd"] == usd_days.estimate["cost_usd"]
    assert again["fits"]


def test_compute_optimal_tokens_per_param(usd_days):
    # Besiroglu et al. 2024's refit: ~20 tokens per parameter at the optimum (DESIGN.md §2)
    assert 15 <= usd_days.to_dict()["tokens_per_param"] <= 25


def test_target_loss_is_reached(h100):
    ans = budget(h100, target_loss=2.3, max_gpus=256)
    assert ans.to_dict()["predicted_loss"] == pytest.approx(2.3, abs=0.01)
    assert ans.gpus <= 256


def test_more_money_buys_lower_loss(h100):
    small = budget(h100, usd=2e5, days=30).to_dict()
    big = budget(h100, usd=2e6, days=30).to_dict()
    assert big["predicted_loss"] < small["predicted_loss"]
    assert big["params_total"] > small["params_total"]


def test_gpu_count_candidates_are_whole_nodes_with_small_factors():
    c = gpu_count_candidates(928, 8)
    assert c[0] == 768 and all(g % 8 == 0 for g in c) and c == sorted(c, reverse=True)


def test_needs_a_budget(h100):
    with pytest.raises(SpecError, match="at least one"):
        budget(h100)
    with pytest.raises(SpecError, match="usd must be > 0"):
        budget(h100, usd=-5)


def test_cli_budget_json(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["budget", "--gpu", "h100-sxm", "--usd", "5e5", "--days", "14", "--format", "json"])
    assert exc.value.code == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("params_total", "training_tokens", "predicted_loss", "gpus", "tp", "pp", "dp", "mfu",
                "wall_clock_days", "cost_usd"):
        assert key in d


def test_cli_budget_bad_input_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["budget", "--gpu", "h100-sxm"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "budget" in err


def test_budget_file_and_flag_override(tmp_path, capsys):
    """The same query from a file (`hardware:`, `budget:`, `schedule:`), flags overriding it."""
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "budgets" / "2m-usd-30-days.yaml"
    with pytest.raises(SystemExit) as exc:
        main(["budget", str(example), "--format", "json"])
    assert exc.value.code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cost_usd"] <= 2e6 * 1.01 and d["wall_clock_days"] <= 30 * 1.01
    assert d["law"].endswith("+repetition")  # tokens_available switches on the repeated-data law
    with pytest.raises(SystemExit):
        main(["budget", str(example), "--usd", "2e5", "--format", "json"])
    small = json.loads(capsys.readouterr().out)
    assert small["cost_usd"] <= 2e5 * 1.01 and small["params_total"] < d["params_total"]


def test_budget_file_errors_name_file_line_and_field(tmp_path, capsys):
    p = tmp_path / "b.yaml"
    p.write_text("hardware: h100-sxm\nbudget:\n  usd: 1.0e+6\n  dayz: 30\n")
    with pytest.raises(SystemExit) as exc:
        main(["budget", str(p)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "b.yaml:4" in err and "budget.dayz" in err
