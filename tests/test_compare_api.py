"""`planner compare` and the Python API as notebooks use it (issue 13): short repr, HTML view, fields in dir(),
search/budget/compare/scaling laws from `import planner`."""

from __future__ import annotations

import importlib
import json

import pytest

import planner
from helpers import run_cli

A, B = "examples/llama3-8b-64xh100.yaml", "examples/gpt3-175b-megatron.yaml"
SCEN = "docs/examples/llama3-8b-scenarios.yaml"


def test_compare_json_deltas(capsys):
    code, out, _ = run_cli(capsys, "compare", A, B, "-f", "json")
    d = json.loads(out)
    assert code == 0 and d["baseline"] == d["plans"][0]["plan"]
    base, other = d["plans"]
    for k in ("memory_per_gpu_bytes", "step_time_s", "wall_clock_days", "gpu_hours", "cost_usd"):
        assert base[f"delta_{k}"] == 0
        assert other[f"delta_{k}"] == pytest.approx(other[k] - base[k])
        assert other[f"delta_{k}_pct"] == pytest.approx(100 * (other[k] - base[k]) / base[k])


def test_compare_table_and_csv(capsys):
    code, out, _ = run_cli(capsys, "compare", A, B)
    assert code == 0 and "llama3-8b-64xh100" in out and "gpt3-175b-1024xa100" in out and "%" in out
    code, out, _ = run_cli(capsys, "compare", A, B, "-f", "csv")
    assert out.splitlines()[0].startswith("plan,") and len(out.splitlines()) == 3


def test_compare_scenario(capsys):
    code, out, _ = run_cli(capsys, "compare", A, SCEN, "--scenario", "tp2-zero1", "-f", "json")
    names = [r["plan"] for r in json.loads(out)["plans"]]
    assert code == 0 and names[0] == "llama3-8b-64xh100" and len(names) == 5
    assert all("tp2-zero1" in n for n in names[1:])
    code, _, err = run_cli(capsys, "compare", A, SCEN, "--scenario", "nope")
    assert code == 2 and "no scenario 'nope'" in err
    code, _, err = run_cli(capsys, "compare", A)
    assert code == 2 and "two plans" in err


def test_result_repr_html_dir():
    r = planner.estimate(A)
    text = repr(r)
    assert len(text) < 200 and text.startswith("Result('llama3-8b-64xh100'") and "GiB" in text
    html = r._repr_html_()
    assert html.startswith("<table>") and "memory_per_gpu_bytes" in html
    assert {"step_time_s", "cost_usd", "memory"} <= set(dir(r))
    rs = planner.evaluate(SCEN)
    assert len(repr(rs)) < 400 and rs._repr_html_().count("<tr>") == len(rs) + 1


def test_top_level_api():
    for name in ("search", "budget", "compare", "compute_optimal", "predict_loss", "isoflop_curve",
                 "HOFFMANN_2022", "BESIROGLU_2024"):
        assert name in dir(planner)
        assert getattr(planner, name) is not None
    from planner import api

    for fn in (api.search, api.budget, api.compare, api.estimate, api.evaluate):
        assert fn.__doc__ and ">>>" in fn.__doc__, fn.__name__
    importlib.import_module("planner.search")  # the submodule binds itself as planner.search: it stays callable

    assert callable(planner.search) and callable(planner.budget) and planner.search.Constraints
    opt = planner.compute_optimal(5.76e23)
    assert 1e10 < opt.params < 1e12
    res = planner.search(A, gpus=(64, 128), tp=(1, 2))
    best = res.rows([res.best()])[0]
    assert best["gpus"] in (64, 128) and best["tp"] in (1, 2)
    c = planner.compare(A, B)
    assert "Comparison(" in repr(c) and c.rows[1]["plan"] == "gpt3-175b-1024xa100"
