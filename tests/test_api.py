"""The Python API (planner/api.py, re-exported lazily by planner/__init__.py).

``import planner`` does no work (DESIGN.md §1: no work at import time); ``planner.estimate`` takes a Plan, a plan
mapping, a plan-file path, or the parts; results have ``to_dict`` (the export row) and ``to_dataframe`` (pandas,
when installed; a clear ImportError otherwise).
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import planner
from planner.errors import SpecError
from planner.io.export import EXPORT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "llama3-8b-64xh100.yaml"
SCENARIOS = ROOT / "docs" / "examples" / "llama3-8b-scenarios.yaml"

PARTS = dict(model="llama-3-8b", hardware="h100-sxm",
             run={"seq_len": 8192, "global_batch_tokens": 4194304, "micro_batch": 1, "training_tokens": 1.5e13,
                  "precision": "bf16", "optimizer": "adamw"},
             layout={"gpus": 64, "tp": 1, "fsdp": "full", "recompute": "selective", "flash_attention": True})


def test_import_planner_does_no_work():
    code = ("import sys, planner; "
            "print(sorted(m for m in sys.modules if m.startswith('planner.') or m in "
            "('numpy', 'pydantic', 'yaml', 'typer', 'openpyxl', 'matplotlib', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "estimate" in dir(planner) and planner.__version__


def test_estimate_from_parts_equals_the_plan_file():
    a = planner.estimate(**PARTS)
    b = planner.estimate(planner.load_plan(EXAMPLE))
    c = planner.estimate(EXAMPLE)
    da, db, dc = a.to_dict(), b.to_dict(), c.to_dict()
    assert list(da) == list(EXPORT_COLUMNS)
    for k in EXPORT_COLUMNS[1:]:
        assert da[k] == db[k] == dc[k], k
    assert a.name == "base" and b.name == "llama3-8b-64xh100"


def test_result_attributes():
    r = planner.estimate(**PARTS)
    assert r.fits is True and r.reason is None
    assert r.step_time_s == r.to_dict()["step_time_s"] > 0  # row values as attributes
    assert r.memory.total_bytes == r.to_dict()["memory_per_gpu_bytes"]  # the core Estimate's attributes
    assert r.plan.layout.gpus == 64
    with pytest.raises(AttributeError):
        r.no_such_thing


def test_estimate_accepts_specs_and_mappings():
    from planner.specs.layout import LayoutSpec

    r = planner.estimate(model={"extends": "llama-3-8b", "num_layers": 16}, hardware="h100-sxm",
                         run={"seq_len": 2048, "global_batch_seqs": 64}, layout=LayoutSpec(gpus=8, fsdp="full"))
    assert r.params_total < 5e9 and r.gpus == 8
    plan_dict = {"model": "llama-3-8b", "hardware": "h100-sxm", "run": {"seq_len": 2048, "global_batch_seqs": 64},
                 "layout": {"gpus": 8, "fsdp": "full"}, "schedule": {"price_usd_per_gpu_hour": 1.0}}
    assert planner.estimate(plan_dict).fits


def test_infeasible_is_a_result_bad_input_raises():
    r = planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 8192, "global_batch_seqs": 64},
                         layout={"gpus": 8})
    assert r.fits is False and "GiB" in r.reason
    with pytest.raises(SpecError, match="run.seq_len"):
        planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": -1})
    with pytest.raises(SpecError, match="num_heads"):
        planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 2048, "global_batch_seqs": 64},
                         layout={"gpus": 6, "tp": 3})
    with pytest.raises(SpecError, match="give hardware"):
        planner.estimate(model="llama-3-8b", run={"seq_len": 2048})
    with pytest.raises(SpecError, match="not both"):
        planner.estimate(EXAMPLE, model="llama-3-8b")


def test_evaluate_a_plan_file():
    res = planner.evaluate(SCENARIOS)
    assert len(res) == 12 and res.title == "llama3-8b-scenarios"
    r = res["fsdp-spot[gpus=128,seq_len=8192]"]
    assert r.price_usd_per_gpu_hour == 2.10 and r.gpus == 128
    assert res[0].name == res.names[0]
    assert set(res.to_dict()) == set(res.names)
    assert res.to_records()[0]["scenario"] == res.names[0]
    assert [p.name for p in planner.load_scenarios(SCENARIOS)] == res.names
    with pytest.raises(KeyError):
        res["nope"]


def test_to_dataframe_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    r = planner.estimate(**PARTS)
    with pytest.raises(ImportError, match="pip install pandas"):
        r.to_dataframe()


def test_to_dataframe_builds_one_row_per_scenario(monkeypatch):
    calls = []
    fake = types.ModuleType("pandas")
    fake.DataFrame = lambda rows, columns: calls.append((rows, columns)) or ("df", len(rows), tuple(columns))
    monkeypatch.setitem(sys.modules, "pandas", fake)
    res = planner.evaluate(SCENARIOS)
    assert res.to_dataframe() == ("df", 12, EXPORT_COLUMNS)
    assert calls[-1][0][3] == res[3].to_dict()
    df = res.to_dataframe(long=True)
    assert df[2] == ("scenario", "quantity", "value", "unit") and df[1] > 12 * 50
    assert res[0].to_dataframe()[1] == 1


def test_to_dataframe_with_pandas():
    pd = pytest.importorskip("pandas")
    df = planner.evaluate(SCENARIOS).to_dataframe()
    assert isinstance(df, pd.DataFrame) and df.shape == (12, len(EXPORT_COLUMNS))


def test_results_write_and_plot(tmp_path):
    res = planner.evaluate(SCENARIOS)
    assert res.write(tmp_path / "r.csv").read_text().startswith("scenario,model,hardware,")
    assert res.plot(tmp_path / "m.svg", kind="memory").exists()
