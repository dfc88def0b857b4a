"""Exports of `planner plan` (planner/io/export.py, planner/plots.py): CSV/JSON columns users script against, the
long (tidy) format, not clobbering foreign files, plots, and the XLSX round trip through a real spreadsheet
application.

The XLSX test opens the file in LibreOffice headless (``soffice --convert-to xlsx``), which recalculates every
formula on load (a private LibreOffice profile sets "recalculate on load: always"), then reads the recalculated
values back with openpyxl and compares them with planner's own numbers; then it changes a price cell with openpyxl,
recalculates again, and checks the costs follow. LibreOffice is installed by ``.ci/run`` when absent: under CI
(``CI`` set) a missing LibreOffice fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from planner.api import evaluate
from planner.cli import main
from planner.io.export import EXPORT_COLUMNS, LONG_COLUMNS, UNITS, is_planner_export
from helpers import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLUMNS_FILE = Path(__file__).parent / "data" / "export_columns.txt"

PLAN = """\
name: export-demo
model: llama-3-8b
hardware: h100-sxm
run: {seq_len: 4096, global_batch_seqs: 256, micro_batch: 1, training_tokens: 2.0e+10}
layout: {gpus: 16, fsdp: full, recompute: selective}
scenarios:
  profile-price: {}
  own-price: {schedule: {price_usd_per_gpu_hour: 1.75, storage_usd: 1000, network_usd: 250}}
  tp2: {layout: {fsdp: none, tp: 2, zero_stage: 1, gpus: 32}}
  no-fit: {layout: {fsdp: none, gpus: 8}}
  bad-tp: {layout: {tp: 3, gpus: 12}}
  a100: {hardware: a100-80gb}
  no-price: {hardware: {extends: h100-sxm, price_usd_per_gpu_hour: null}}
"""




@pytest.fixture(scope="module")
def plan_path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("plan") / "plan.yaml"
    p.write_text(PLAN)
    return p


@pytest.fixture(scope="module")
def results(plan_path):
    return evaluate(plan_path)




# ---- the frozen columns ----

def test_export_columns_are_frozen():
    frozen = [ln.strip() for ln in COLUMNS_FILE.read_text().splitlines() if ln.strip()]
    assert list(EXPORT_COLUMNS) == frozen, (
        "the export columns changed: users script against them. Add new columns deliberately and update "
        "tests/data/export_columns.txt; never rename or drop one.")
    assert len(set(EXPORT_COLUMNS)) == len(EXPORT_COLUMNS)
    assert set(UNITS) == set(EXPORT_COLUMNS)


def test_every_estimate_key_is_exported():
    # a new key of Estimate.to_dict() must be added to the export (deliberately), not silently dropped
    from planner.core.estimate import estimate
    from planner.plans import load_plan

    for name in ("t5-11b-span-corruption", "mixtral-8x7b", "llama3-8b-64xh100"):
        d = estimate(load_plan(ROOT / "examples" / f"{name}.yaml")).to_dict()
        missing = [k for k in d if k != "plan" and k not in EXPORT_COLUMNS]
        assert not missing, missing


def test_quantity_columns_carry_their_unit_in_the_name():
    suffixes = ("_bytes", "_s", "_days", "_hours", "_usd", "_gib", "_mwh", "_w", "_tonnes", "_tokens", "_seqs",
                "_gpu", "_hour", "_steps", "_token", "_step", "_total")
    for c in EXPORT_COLUMNS:
        if UNITS[c] in ("s", "days", "h", "bytes", "GiB", "USD", "MWh", "W", "tCO2eq"):
            # an error-band column is its quantity's name plus _p10/_p90
            assert c.removesuffix("_p10").removesuffix("_p90").endswith(suffixes), c


# ---- CSV and JSON ----

def test_csv_wide_one_row_per_scenario(capsys, plan_path, results):
    code, out, err = run_cli(capsys, "plan", plan_path, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert [r["scenario"] for r in rows] == results.names
    by = {r["scenario"]: r for r in rows}
    ref = results["profile-price"].to_dict()
    assert float(by["profile-price"]["step_time_s"]) == ref["step_time_s"]  # full precision
    assert float(by["profile-price"]["cost_usd"]) == pytest.approx(ref["cost_usd"], rel=1e-15)
    assert by["no-fit"]["fits"] == "false" and "GiB" in by["no-fit"]["reason"]
    assert by["bad-tp"]["fits"] == "false" and by["bad-tp"]["step_time_s"] == ""


def test_long_format_is_tidy(capsys, plan_path, results):
    code, out, err = run_cli(capsys, "plan", plan_path, "--format", "csv", "--long")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(LONG_COLUMNS)
    pivot = {(r["scenario"], r["quantity"]): r for r in rows}
    r = pivot[("tp2", "memory_per_gpu_bytes")]
    assert float(r["value"]) == results["tp2"].to_dict()["memory_per_gpu_bytes"] and r["unit"] == "bytes"
    assert pivot[("tp2", "gpu_hours")]["unit"] == "GPU·h"
    assert ("bad-tp", "step_time_s") not in pivot  # empty cells are left out
    code, out, err = run_cli(capsys, "plan", plan_path, "--format", "json", "--long")
    payload = json.loads(out)
    assert payload["planner_export"]["format"] == "long" and payload["columns"] == list(LONG_COLUMNS)
    assert {"scenario": "tp2", "quantity": "gpus", "value": 32, "unit": "GPUs"} in payload["rows"]


def test_json_wide(capsys, plan_path, results):
    code, out, err = run_cli(capsys, "plan", plan_path, "--format", "json")
    payload = json.loads(out)
    assert payload["planner_export"]["version"] == 1 and payload["planner_export"]["plan"] == "export-demo"
    assert payload["columns"] == list(EXPORT_COLUMNS)
    assert [list(r) for r in payload["rows"]] == [list(EXPORT_COLUMNS)] * len(results)
    assert payload["rows"][1]["price_usd_per_gpu_hour"] == 1.75
    assert payload["units"]["step_time_s"] == "s"


@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_out_never_clobbers_a_foreign_file(capsys, tmp_path, plan_path, suffix):
    target = tmp_path / f"budget{suffix}"
    target.write_text("precious\n")
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", target)
    assert code == 2 and "not a planner export" in err and "--force" in err
    assert target.read_text() == "precious\n"
    # --force overrides; then the file is an export and may be replaced without --force
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", target, "--force")
    assert code == 0 and is_planner_export(target)
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", target, "--long")
    assert code == 0 and is_planner_export(target)
    assert oct(target.stat().st_mode & 0o777) != "0o600"  # not left with the temporary file's mode


def test_out_by_extension(capsys, tmp_path, plan_path, results):
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", tmp_path / "r.csv", "--format", "json")
    assert code == 0 and json.loads(out)["rows"]  # stdout keeps its own format
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", tmp_path / "r.json", "--long")
    assert json.loads((tmp_path / "r.json").read_text())["planner_export"]["format"] == "long"
    code, out, err = run_cli(capsys, "plan", plan_path, "--out", tmp_path / "r.txt")
    assert code == 2 and ".csv, .json or .xlsx" in err


# ---- plots ----

@pytest.mark.parametrize("kind, suffix", [("memory", ".png"), ("time", ".svg"), ("compare", ".png"),
                                          ("pareto", ".svg")])
def test_plot_kinds(capsys, tmp_path, plan_path, kind, suffix):
    out_file = tmp_path / f"p{suffix}"
    code, out, err = run_cli(capsys, "plot", plan_path, "--kind", kind, "--out", out_file)
    assert code == 0, err
    data = out_file.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]
    assert is_planner_export(out_file)


def test_plot_option_on_plan_and_no_clobber(capsys, tmp_path, plan_path):
    target = tmp_path / "chart.png"
    target.write_bytes(b"not ours")
    code, out, err = run_cli(capsys, "plan", plan_path, "--plot", target)
    assert code == 2 and target.read_bytes() == b"not ours"
    code, out, err = run_cli(capsys, "plan", plan_path, "--plot", target, "--plot-kind", "memory", "--force")
    assert code == 0 and target.read_bytes().startswith(b"\x89PNG")


# ---- XLSX ----

def _sheet(ws) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def test_xlsx_structure(tmp_path, results):
    from openpyxl import load_workbook

    path = results.write(tmp_path / "plan.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Summary", "Memory", "Time", "Cost", "Assumptions", "Inputs"]
    assert wb.properties.keywords == "planner-export"
    ws = wb["Summary"]
    header = [c.value for c in ws[1]]
    col = {h: i for i, h in enumerate(header)}
    for h in ("memory_per_gpu_gib", "step_time_s", "wall_clock_days", "gpu_hours", "cost_usd",
              "price_usd_per_gpu_hour"):
        assert h in col
    first = ws[2]
    assert first[col["scenario"]].value == "profile-price"
    assert first[col["step_time_s"]].data_type == "n" and first[col["step_time_s"]].number_format == "0.000"
    assert first[col["mfu"]].number_format == "0.0%"
    gh, cost, price = (first[col[k]].value for k in ("gpu_hours", "cost_usd", "price_usd_per_gpu_hour"))
    assert isinstance(gh, str) and gh.startswith("=")  # live formulas
    assert price.startswith("=IF(ISNUMBER(Assumptions!$")
    assert "Assumptions" not in cost and price  # cost reads the price column, which reads the Assumptions cell
    assert "ISNUMBER" in cost
    # the infeasible-layout row has no numbers and no formulas
    bad = ws[2 + results.names.index("bad-tp")]
    assert bad[col["gpu_hours"]].value is None and bad[col["fits"]].value is False
    # memory parts sum to the total (GiB)
    mem = _sheet(wb["Memory"])[0]
    parts = sum(v for k, v in mem.items() if k.endswith("_gib") and k.removesuffix("_gib") in (
        "memory_weights", "memory_gradients", "memory_optimizer", "memory_activations", "memory_logits",
        "memory_overhead"))
    assert parts == pytest.approx(mem["memory_per_gpu_gib"], rel=1e-12)
    inputs = {r[0]: r[1:] for r in wb["Inputs"].iter_rows(values_only=True)}
    assert inputs["field"][0] == "profile-price" and inputs["layout.gpus"][2] == 32
    assert inputs["run.seq_len"][results.names.index("bad-tp")] == 4096


def _soffice() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        ci = os.environ.get("CI")
        if ci is not None and ci.strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("LibreOffice (soffice) is not installed: .ci/run installs libreoffice-calc-nogui when absent; "
                        "the XLSX recalculation round trip cannot be skipped under CI")
        pytest.skip("LibreOffice (soffice) is not installed: the XLSX round trip recalculates the spreadsheet in it "
                    "(apt-get install libreoffice-calc-nogui); CI installs it and fails without it")
    return exe


RECALC_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def _recalc(exe: str, src: Path, workdir: Path) -> Path:
    """``src`` opened, recalculated and saved again by LibreOffice; the path of the recalculated copy."""
    profile = workdir / "lo-profile"
    (profile / "user").mkdir(parents=True, exist_ok=True)
    (profile / "user" / "registrymodifications.xcu").write_text(RECALC_PROFILE)  # recalculate on load: always
    outdir = workdir / f"recalc-{src.stem}"
    outdir.mkdir(exist_ok=True)
    proc = subprocess.run(
        [exe, "--headless", "--norestore", "--nolockcheck", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(outdir), str(src)],
        capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(workdir)})
    out = outdir / src.name
    assert proc.returncode == 0 and out.exists(), (proc.returncode, proc.stdout, proc.stderr)
    return out


def test_xlsx_recalculates_in_libreoffice_and_follows_a_price_edit(tmp_path, results):
    from openpyxl import load_workbook

    exe = _soffice()
    path = results.write(tmp_path / "plan.xlsx")
    ref = {r.name: r.to_dict() for r in results}

    def check(recalc_path: Path, prices: dict) -> dict:
        wb = load_workbook(recalc_path, data_only=True)
        summary = {r["scenario"]: r for r in _sheet(wb["Summary"])}
        cost = {r["scenario"]: r for r in _sheet(wb["Cost"])}
        assert list(summary) == results.names
        checked = 0
        for name, want in ref.items():
            got, got_cost = summary[name], cost[name]
            if want["gpu_hours"] is None:
                assert got["gpu_hours"] in (None, "") and got["cost_usd"] in (None, "")
                continue
            price = prices.get(name, want["price_usd_per_gpu_hour"])
            assert got["wall_clock_days"] == pytest.approx(want["wall_clock_days"], rel=1e-12), name
            if price is None:  # no price anywhere: the cost cells stay empty (not a misleading $0)
                assert want["cost_usd"] is None and got["cost_usd"] in (None, "") and got["gpu_hours"] > 0
                continue
            extra = want["cost_storage_usd"] + want["cost_network_usd"]
            assert got["gpu_hours"] == pytest.approx(want["gpu_hours"], rel=1e-9), name
            assert got["price_usd_per_gpu_hour"] == pytest.approx(price, rel=1e-12), name
            assert got["cost_usd"] == pytest.approx(want["gpu_hours"] * price + extra, rel=1e-9), name
            assert got_cost["cost_usd"] == pytest.approx(got["cost_usd"], rel=1e-12), name
            assert got_cost["cost_compute_usd"] == pytest.approx(want["gpu_hours"] * price, rel=1e-9), name
            assert got["cost_per_billion_tokens_usd"] == pytest.approx(
                got["cost_usd"] / (want["training_tokens"] / 1e9), rel=1e-9), name
            # the numbers that are values survive the round trip
            for k in ("step_time_s", "wall_clock_days", "energy_mwh"):
                assert got[k] == pytest.approx(want[k], rel=1e-12), (name, k)
            if name not in prices:
                assert got["cost_usd"] == pytest.approx(want["cost_usd"], rel=1e-9), name
            checked += 1
        assert checked >= 4
        mem = {r["scenario"]: r for r in _sheet(wb["Memory"])}
        assert mem["tp2"]["memory_headroom_gib"] == pytest.approx(
            (ref["tp2"]["memory_capacity_bytes"] - ref["tp2"]["memory_per_gpu_bytes"]) / 2**30, rel=1e-9)
        return summary

    # 1. as written: LibreOffice's recalculation equals planner's numbers
    check(_recalc(exe, path, tmp_path), {})

    # 2. a price edit (the H100 profile price) recomputes the costs of every scenario that uses it
    wb = load_workbook(path)
    ws = wb["Assumptions"]
    header_row = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "price_key")
    edited = None
    for r in range(header_row + 1, header_row + 10):
        if ws.cell(row=r, column=1).value == "h100-sxm: hardware profile price":
            ws.cell(row=r, column=2).value = 9.5
            edited = ws.cell(row=r, column=3).value.split(", ")
    assert edited and "profile-price" in edited and not {"own-price", "a100", "no-price"} & set(edited)
    edited_path = tmp_path / "edited.xlsx"
    wb.save(edited_path)
    prices = {name: 9.5 for name in edited}
    s = check(_recalc(exe, edited_path, tmp_path), prices)
    assert s["profile-price"]["cost_usd"] == pytest.approx(ref["profile-price"]["gpu_hours"] * 9.5, rel=1e-9)
    assert s["own-price"]["cost_usd"] == pytest.approx(ref["own-price"]["cost_usd"], rel=1e-9)
    assert not math.isclose(s["profile-price"]["cost_usd"], ref["profile-price"]["cost_usd"], rel_tol=1e-3)


def test_xlsx_formulas_carry_their_values_for_readers_that_do_not_recalculate(tmp_path, results):
    """pandas.read_excel / openpyxl(data_only) read the cached values: GPU-hours and dollars are numbers."""
    from openpyxl import load_workbook

    wb = load_workbook(results.write(tmp_path / "plan.xlsx"), data_only=True)
    summary = {r["scenario"]: r for r in _sheet(wb["Summary"])}
    ref = {r.name: r.to_dict() for r in results}
    for name in ("profile-price", "own-price", "tp2", "a100"):
        for k in ("gpu_hours", "price_usd_per_gpu_hour", "cost_usd", "cost_per_billion_tokens_usd"):
            assert summary[name][k] == pytest.approx(ref[name][k], rel=1e-12), (name, k)
    mem = {r["scenario"]: r for r in _sheet(wb["Memory"])}
    assert isinstance(mem["tp2"]["memory_headroom_gib"], float)
    notes = {r[0]: r[1] for r in wb["Assumptions"].iter_rows(values_only=True) if r and r[0]}
    assert not str(notes["gpu_hours"]).startswith("=") and not str(notes["cost_usd"]).startswith("=")


def test_xlsx_layout_widths_alignment_print_setup(tmp_path, results):
    from openpyxl import load_workbook

    wb = load_workbook(results.write(tmp_path / "plan.xlsx"))
    ws = wb["Summary"]
    header = [c.value for c in ws[1]]
    longest = max(len(n) for n in results.names)
    assert ws.column_dimensions["A"].width >= longest  # scenario names are not cut
    assert ws.cell(row=1, column=header.index("step_time_s") + 1).alignment.horizontal == "right"
    assert ws.cell(row=1, column=1).alignment.horizontal == "left"
    assert "GiB" in ws.cell(row=2, column=header.index("memory_per_gpu_gib") + 1).number_format
    assert "$" in ws.cell(row=2, column=header.index("cost_usd") + 1).number_format
    for sheet in wb.worksheets:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title  # one page wide (1 is the default width)
        assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0, sheet.title


def test_xlsx_opens_clean_in_libreoffice_pdf(tmp_path, results):
    """LibreOffice opens and recalculates the file with no error cell, and prints it in a few landscape pages."""
    import re

    from openpyxl import load_workbook

    exe = _soffice()
    path = results.write(tmp_path / "plan.xlsx")
    recalc = _recalc(exe, path, tmp_path)
    wb = load_workbook(recalc, data_only=True)
    errors = [(ws.title, c.coordinate, c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
              if c.data_type == "e" or (isinstance(c.value, str) and re.match(r"^(#[A-Z/0!?]+|Err:\d+)", c.value))]
    assert errors == []
    profile = tmp_path / "lo-profile"
    outdir = tmp_path / "pdf"
    proc = subprocess.run(
        [exe, "--headless", "--norestore", "--nolockcheck", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", "pdf", "--outdir", str(outdir), str(path)],
        capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)})
    pdf = outdir / "plan.pdf"
    assert proc.returncode == 0 and pdf.exists(), (proc.stdout, proc.stderr)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert 1 <= pages <= 10, pages  # six sheets, each one page wide (was 44 portrait pages)
