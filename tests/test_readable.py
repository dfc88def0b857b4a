"""Tables people read: identifiers never cut at any width, ML units, the MFU/HFU legend (issue 13)."""

from __future__ import annotations

import json
import re

import pytest

from helpers import run_cli
from planner import report

PLAN = "docs/examples/llama3-8b-scenarios.yaml"


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(report, "WIDE", False)


def test_units():
    assert report.human(8_030_261_248, "params_total") == "8.03B"
    assert report.human(175e9, "params_total") == "175B"
    assert report.human(5.76e23, "model_flops_total") == "5.76e23"
    assert report.human(1.08e12, "model_flops_per_token") == "1.08e12"
    assert report.human(1_234_567.0, "cost_usd") == "$1.23M"
    assert report.human(2.5, "price_usd_per_gpu_hour") == "$2.50"
    assert report.human(32.5 * 2**30, "memory_per_gpu_bytes") == "32.50 GiB"
    assert report.human(1.5e13, "training_tokens") == "15T"
    assert report.human(0.332, "mfu") == "33.2%"


def test_models_show_every_preset_name_in_full_at_80_columns(capsys, narrow):
    from planner.registry import preset_names

    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    for name in preset_names():
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name


def test_plan_shows_every_scenario_in_full_at_80_columns(capsys, narrow):
    code, out, _ = run_cli(capsys, "plan", PLAN, "-f", "json")
    names = [r["scenario"] for r in json.loads(out)["rows"]]
    code, out, _ = run_cli(capsys, "plan", PLAN)
    assert code == 0 and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for n in names:
        assert n in out


def test_search_shows_every_layout_in_full_at_80_columns(capsys, narrow):
    from planner.cli.search import layout_text

    args = ("search", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--gpus", "64,128", "--seq", "8192",
            "--global-batch", "512", "--tokens", "1e12")
    code, out, _ = run_cli(capsys, *args, "-f", "json")
    rows = json.loads(out)["rows"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "…" not in out
    for r in rows:
        assert layout_text(r) in out


def test_wide_prints_the_table(capsys, narrow):
    code, out, _ = run_cli(capsys, "--wide", "plan", PLAN)
    assert code == 0 and "┃ scenario" in out and max(len(line) for line in out.splitlines()) > 80


def test_mfu_hfu_legend(capsys):
    code, out, _ = run_cli(capsys, "estimate", "examples/gpt3-175b-megatron.yaml")
    assert "MFU counts model FLOPs" in out and "HFU adds" in out
    assert "175B" in out and re.search(r"cost_usd +│ +\$\d[\d.]*M", out)  # (its p10–p90 band may follow)


def test_estimate_keeps_every_quantity_name_whole_when_a_reason_is_long(capsys, narrow):
    """A plan that does not fit carries a long reason; it wraps in the value column, and no quantity name is cut."""
    args = ("estimate", "--model", "llama-3.1-405b", "--gpu", "h100-sxm", "--gpus", "16384", "--tp", "8", "--pp",
            "16", "--seq", "8192", "--global-batch", "2048", "--micro-batch", "1", "--recompute", "none",
            "--sequence-parallel")
    code, out, _ = run_cli(capsys, *args, "-f", "json")
    keys = [k for k, v in json.loads(out).items() if v is not None and k.startswith(("memory_", "time_")) and k.endswith(("_bytes", "_s"))]
    code, out, _ = run_cli(capsys, *args)
    assert code == 1 and "…" not in out  # exit 1: does not fit
    assert max(len(line) for line in out.splitlines()) <= 80
    for k in keys:
        assert re.search(rf"│ +{k} +│", out), k
    assert "reason" in out and "GiB after the memory headroom" in out.replace("│", " ").replace("\n", " ")
