"""Plan files with scenarios and sweeps (planner/io/plan.py, docs/plans.md) and `planner plan`.

Contract under test: a file without scenarios is one plan named ``base``; scenarios are named overrides of the base,
deep-merged; ``sweep`` expands grid (cartesian product) and zip (parallel lists) over dotted field paths, points
named ``NAME[field=value,...]``. Bad input is one line on stderr naming file:line and the field, exit 2; a layout
that does not divide or does not fit is a row with fits=false, not an error. Every shipped example runs with
`planner plan`. The JSON Schema in docs/ is the one `planner schema` generates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.cli import main
from planner.errors import SpecError
from planner.io.plan import plan_json_schema
from planner.plans import load_plan, load_plan_file, load_scenarios
from helpers import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "docs" / "examples").glob("*.yaml"))

BASE = """\
name: demo
model: llama-3-8b
hardware: h100-sxm
run:
  seq_len: 4096
  global_batch_seqs: 256
  micro_batch: 1
  training_tokens: 1.0e+10
layout:
  gpus: 16
  fsdp: full
  recompute: selective
"""




def write(tmp_path, text: str, name: str = "plan.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p




def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)


def one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---- expansion ----

def test_file_without_scenarios_is_one_plan_named_base(tmp_path):
    plans = load_scenarios(write(tmp_path, BASE))
    assert [p.name for p in plans] == ["base"]
    assert plans[0].layout.gpus == 16 and plans[0].model.name == "Llama 3 8B"
    assert load_plan_file(write(tmp_path, BASE)).title == "demo"


def test_scenarios_deep_merge_over_the_base(tmp_path):
    text = BASE + """\
scenarios:
  fsdp-32: {layout: {gpus: 32}}
  tp2:
    layout: {fsdp: none, tp: 2, zero_stage: 1}
    run.seq_len: 8192
  deeper: {model: {num_layers: 40}}
  mistral: {model: mistral-7b}
  empty:
"""
    plans = {p.name: p for p in load_scenarios(write(tmp_path, text))}
    assert list(plans) == ["fsdp-32", "tp2", "deeper", "mistral", "empty"]
    a = plans["fsdp-32"]
    assert (a.layout.gpus, a.layout.fsdp, a.layout.recompute) == (32, "full", "selective")  # merged, not replaced
    b = plans["tp2"]
    assert (b.layout.tp, b.layout.fsdp, b.layout.zero_stage, b.run.seq_len, b.run.micro_batch) == (
        2, "none", 1, 8192, 1)
    c = plans["deeper"]  # a preset by name is overridden field by field as {extends: NAME}
    assert c.model.num_layers == 40 and c.model.hidden_size == 4096 and c.model.num_kv_heads == 8
    assert plans["mistral"].model.name.startswith("Mistral")
    assert plans["empty"].layout == load_scenarios(write(tmp_path, BASE, "b.yaml"))[0].layout


def test_extends_in_a_scenario_replaces_the_model(tmp_path):
    text = BASE.replace("model: llama-3-8b", "model: {extends: llama-3-8b, num_layers: 40}") + """\
scenarios:
  other: {model: {extends: mistral-7b}}
  more: {model: {num_heads: 64}}
"""
    plans = {p.name: p for p in load_scenarios(write(tmp_path, text))}
    assert plans["other"].model.num_layers == 32 and plans["other"].model.name.startswith("Mistral")
    assert (plans["more"].model.num_layers, plans["more"].model.num_heads) == (40, 64)


def test_setting_dp_drops_the_bases_gpus(tmp_path):
    text = BASE + "scenarios:\n  by-dp: {layout.dp: 4, layout.tp: 2}\n  by-tokens: {run.global_batch_tokens: 2097152}\n"
    plans = {p.name: p for p in load_scenarios(write(tmp_path, text))}
    assert (plans["by-dp"].layout.num_gpus, plans["by-dp"].layout.dp) == (8, 4)
    assert plans["by-tokens"].run.batch_seqs == 512


def test_grid_sweep_is_the_cartesian_product_in_order(tmp_path):
    text = BASE + """\
sweep:
  grid:
    layout.gpus: [16, 32]
    run.seq_len: [2048, 4096, 8192]
"""
    plans = load_scenarios(write(tmp_path, text))
    assert [p.name for p in plans] == [
        "base[gpus=16,seq_len=2048]", "base[gpus=16,seq_len=4096]", "base[gpus=16,seq_len=8192]",
        "base[gpus=32,seq_len=2048]", "base[gpus=32,seq_len=4096]", "base[gpus=32,seq_len=8192]"]
    assert [(p.layout.gpus, p.run.seq_len) for p in plans] == [(g, s) for g in (16, 32) for s in (2048, 4096, 8192)]


def test_zip_sweep_pairs_lists_and_combines_with_grid_and_scenarios(tmp_path):
    text = BASE + """\
scenarios:
  a: {}
  b: {run.precision: fp8}
sweep:
  grid: {layout.gpus: [16, 32]}
  zip: {layout.tp: [1, 2], layout.fsdp: [full, none]}
"""
    pf = load_plan_file(write(tmp_path, text))
    names = [p.name for p in pf.points]
    assert len(names) == 2 * 2 * 2
    assert names[:4] == ["a[gpus=16,tp=1,fsdp=full]", "a[gpus=16,tp=2,fsdp=none]", "a[gpus=32,tp=1,fsdp=full]",
                         "a[gpus=32,tp=2,fsdp=none]"]
    assert all(n.startswith("b[") for n in names[4:])
    assert pf.sweep_paths == ("layout.gpus", "layout.tp", "layout.fsdp")
    b = pf.points[5].plan
    assert (b.run.precision, b.layout.gpus, b.layout.tp, b.layout.fsdp) == ("fp8", 16, 2, "none")
    assert pf.points[5].values == (("layout.gpus", 16), ("layout.tp", 2), ("layout.fsdp", "none"))


def test_scenario_sweep_replaces_the_top_level_one(tmp_path):
    text = BASE + """\
scenarios:
  swept: {}
  own: {sweep: {grid: {run.seq_len: [1024, 2048]}}}
  single: {sweep: null}
sweep:
  grid: {layout.gpus: [16, 32]}
"""
    names = [p.name for p in load_scenarios(write(tmp_path, text))]
    assert names == ["swept[gpus=16]", "swept[gpus=32]", "own[seq_len=1024]", "own[seq_len=2048]", "single"]


def test_same_last_component_uses_the_full_path(tmp_path):
    text = BASE + "sweep:\n  zip: {layout.gpus: [16, 32], schedule.price_usd_per_gpu_hour: [2.0, 3.5]}\n"
    names = [p.name for p in load_scenarios(write(tmp_path, text))]
    assert names == ["base[gpus=16,price_usd_per_gpu_hour=2]", "base[gpus=32,price_usd_per_gpu_hour=3.5]"]
    text = BASE + "sweep:\n  grid: {layout.recompute: [none, full], run.objective.kind: [clm]}\n"
    text += "scenarios:\n  a: {sweep: {grid: {layout.tp: [1], model.num_layers: [32]}}}\n"
    assert [p.name for p in load_scenarios(write(tmp_path, text))] == ["a[tp=1,num_layers=32]"]
    text = BASE + "sweep:\n  zip: {layout.zero_stage: [1, 2], schedule.zero_stage: [1, 2]}\n"
    with pytest.raises(SpecError, match="schedule.zero_stage"):  # labels stay distinct; the field is unknown
        load_scenarios(write(tmp_path, text))


def test_load_plan_picks_one_scenario(tmp_path):
    p = write(tmp_path, BASE + "scenarios:\n  a: {}\n  b: {layout.gpus: 32}\n")
    assert load_plan(p, scenario="b").layout.gpus == 32
    with pytest.raises(SpecError, match="holds 2 plans"):
        load_plan(p)
    with pytest.raises(SpecError, match="no scenario 'c'"):
        load_plan(p, scenario="c")


def test_hf_config_in_a_plan_is_relative_to_the_plan_file(tmp_path):
    cfg = (ROOT / "tests" / "data" / "hf" / "mistral-7b.json").read_text()
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(cfg)
    text = BASE.replace("model: llama-3-8b", "model: {hf_config: ckpt/config.json, num_layers: 16}")
    plan = load_scenarios(write(tmp_path, text))[0]
    assert plan.model.num_layers == 16 and plan.model.attention.window_tokens == 4096
    assert plan.model.name == "ckpt"


# ---- bad input: one line, file:line and field, exit 2 ----

@pytest.mark.parametrize("extra, needle, field, got", [
    ("scenarios:\n  a: {}\n  long:\n    run:\n      seq_len: -8192\n", "seq_len: -8192", "run.seq_len", "-8192"),
    ("sweep:\n  grid:\n    run.seq_len:\n      - 4096\n      - -8192\n", "- -8192", "run.seq_len", "-8192"),
    ("scenarios:\n  a:\n    layout.gpuz: 8\n", "layout.gpuz", "layout.gpuz", "Extra inputs"),
    ("scenarios:\n  a:\n    model:\n      num_layerz: 40\n", "num_layerz", "model.num_layerz", "Extra inputs"),
    ("scenarios:\n  a:\n    run.precision: bf17\n", "bf17", "run.precision", "'bf17'"),
    ("scenarios:\n  a:\n    modle: {}\n", "modle", "scenarios.a.modle", "unknown key"),
    ("sweep:\n  gird: {layout.gpus: [8]}\n", "gird", "sweep.gird", "grid and/or zip"),
    ("sweep:\n  grid: {gpus: [8]}\n", "gpus: [8]", "sweep.grid.gpus", "layout.gpus"),
    ("sweep:\n  grid: {layout.gpus: 8}\n", "layout.gpus: 8", "sweep.grid.layout.gpus", "list"),
    ("sweep:\n  grid: {layout.gpus: []}\n", "layout.gpus: []", "sweep.grid.layout.gpus", "list"),
    ("sweep:\n  grid:\n    layout.gpus:\n      - 8\n      - 8\n", "      - 8", "sweep.grid.layout.gpus", "twice"),
    ("sweep:\n  zip:\n    layout.gpus: [8, 16]\n    layout.tp: [1, 2, 4]\n", "zip:", "sweep.zip",
     "layout.tp(3)"),
    ("sweeps: {}\n", "sweeps", "sweeps", "unknown plan key"),
])
def test_bad_plan_files_name_file_line_and_field(capsys, tmp_path, extra, needle, field, got):
    text = BASE + extra
    p = write(tmp_path, text)
    # the line of the offending entry (the last one containing the needle: the base has none of them)
    line = max(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)
    code, out, err = run_cli(capsys, "plan", p)
    assert code == 2 and out == ""
    one_line_error(err, f"{p}:{line} {field}", got)
    with pytest.raises(SpecError):
        load_scenarios(p)


def test_error_names_the_scenario(capsys, tmp_path):
    text = BASE + "scenarios:\n  short: {}\n  long: {run.seq_len: -1}\n"
    p = write(tmp_path, text)
    code, out, err = run_cli(capsys, "plan", p)
    one_line_error(err, f"{p}:{line_of(text, 'long:')} run.seq_len", "(got -1)", "(scenario long)")
    assert code == 2


def test_unknown_preset_in_a_plan_points_at_the_model_line(capsys, tmp_path):
    text = BASE.replace("model: llama-3-8b", "model: llama-3-8bb")
    p = write(tmp_path, text)
    code, out, err = run_cli(capsys, "plan", p)
    assert code == 2
    one_line_error(err, f"{p}:2 model", "llama-3-8b")


def test_estimate_refuses_a_multi_plan_file(capsys, tmp_path):
    p = write(tmp_path, BASE + "scenarios:\n  a: {}\n")
    code, out, err = run_cli(capsys, "estimate", p)
    assert code == 2
    one_line_error(err, f"{p}:{line_of(BASE + 'scenarios:', 'scenarios:')}", "planner plan")


# ---- `planner plan`: infeasible points are rows ----

def test_infeasible_points_are_rows_not_errors(capsys, tmp_path):
    text = BASE + """\
scenarios:
  ok: {}
  no-fsdp: {layout: {fsdp: none, gpus: 8}}
  heads: {layout: {tp: 3, gpus: 12}}
  gpus: {layout: {tp: 8, gpus: 12}}
  sp: {layout: {sequence_parallel: true}}
"""
    p = write(tmp_path, text)
    code, out, err = run_cli(capsys, "plan", p, "--format", "json")
    assert code == 0, err
    rows = {r["scenario"]: r for r in json.loads(out)["rows"]}
    assert rows["ok"]["fits"] is True and rows["ok"]["reason"] is None
    assert rows["no-fsdp"]["fits"] is False and "GiB" in rows["no-fsdp"]["reason"]
    assert rows["no-fsdp"]["step_time_s"] > 0  # a plan that does not fit still has its numbers
    assert rows["heads"]["fits"] is False and "num_heads(32) not divisible by tp(3)" in rows["heads"]["reason"]
    assert rows["gpus"]["fits"] is False and "gpus(12)" in rows["gpus"]["reason"] and "tp(8)" in rows["gpus"]["reason"]
    assert rows["gpus"]["params_total"] == rows["ok"]["params_total"]  # what is known is still reported
    assert rows["gpus"]["step_time_s"] is None
    assert rows["sp"]["fits"] is False and "sequence_parallel" in rows["sp"]["reason"]
    # the table names each reason under it
    code, out, err = run_cli(capsys, "plan", p)
    assert code == 0
    assert "heads does not fit: layout: num_heads(32) not divisible by tp(3)" in out
    # strict loading raises the infeasible layout with file and line
    with pytest.raises(SpecError, match=r"plan.yaml:\d+ layout"):
        load_scenarios(p)


def test_exit_1_when_no_scenario_fits(capsys, tmp_path):
    p = write(tmp_path, BASE.replace("  fsdp: full\n", "") + "scenarios:\n  a: {layout.gpus: 2}\n  b: {}\n")
    code, out, err = run_cli(capsys, "plan", p, "--format", "csv")
    assert code == 1
    assert out.count("\n") == 3 and "false" in out
    assert "no scenario fits" in err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_with_planner_plan(capsys, path):
    code, out, err = run_cli(capsys, "plan", path, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rows"] and all(r["fits"] for r in payload["rows"]), [r["reason"] for r in payload["rows"]]
    code, out, err = run_cli(capsys, "plan", path)
    assert code == 0 and payload["rows"][0]["scenario"] in out


def test_there_is_a_scenario_example():
    pf = load_plan_file(ROOT / "docs" / "examples" / "llama3-8b-scenarios.yaml")
    assert len({p.scenario for p in pf.points}) >= 3 and pf.sweep_paths


# ---- JSON Schema ----

def test_shipped_schema_is_the_generated_one(capsys):
    shipped = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
    assert shipped == json.loads(json.dumps(plan_json_schema())), (
        "docs/plan.schema.json is stale: run `planner schema > docs/plan.schema.json`")
    code, out, err = run_cli(capsys, "schema")
    assert code == 0 and json.loads(out) == shipped


def test_schema_accepts_examples_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        errors = [e.message for e in v.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path.name, errors)
    bad = yaml.safe_load(BASE + "scenarios:\n  a: {layout: {gpuz: 8}}\n")
    assert any("gpuz" in e.message for e in v.iter_errors(bad))
    bad = yaml.safe_load(BASE + "sweep: {grid: {gpus: [8]}}\n")
    assert list(v.iter_errors(bad))


def test_sweep_values_that_are_mappings_merge(tmp_path):
    text = BASE + """\
sweep:
  grid:
    layout: [{tp: 1}, {tp: 2, fsdp: none, zero_stage: 1}]
    model: [llama-3-8b, {extends: mistral-7b, num_layers: 8}]
"""
    plans = load_scenarios(write(tmp_path, text))
    assert [(p.layout.tp, p.layout.fsdp, p.layout.recompute, p.model.num_layers) for p in plans] == [
        (1, "full", "selective", 32), (1, "full", "selective", 8), (2, "none", "selective", 32),
        (2, "none", "selective", 8)]
    assert plans[1].name == "base[layout={tp:1},model={extends:mistral-7b,num_layers:8}]"


def test_cli_options_are_frozen():
    # users script against these: add options deliberately, never rename or drop one
    from typer.main import get_command

    from planner.cli import app

    cmd = get_command(app)
    opts = {n: sorted(o for p in cmd.commands[n].params for o in p.opts) for n in ("plan", "plot", "schema")}
    assert opts == {
        "plan": ["--force", "--format", "--long", "--max-points", "--out", "--plot", "--plot-kind", "-f", "-o",
                 "plan_file"],
        "plot": ["--force", "--kind", "--max-points", "--out", "-k", "-o", "plan_file"],
        "schema": [],
    }
