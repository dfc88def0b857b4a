"""Hostile input (issue 14): no traceback, no hang, no clobbered file, no silent nonsense.

One case per failure the issue found, each held to the README's contract: bad input exits 2 with ONE line on
stderr naming the file or the field; nothing is written over a file planner did not write unless ``--force``; the
Python API raises the same SpecError. ``benchmarks/fuzz.py`` generates thousands more of these.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

import planner
from helpers import run_cli
from planner.errors import SpecError
from planner.io.files import (CSV_LONG_HEADER, CSV_WIDE_PREFIX, MAX_INPUT_BYTES, check_writable, is_planner_file,
                              load_yaml_safely, read_text, write_text_file)

PLAN = {"name": "h", "model": "gpt3-125m", "hardware": "a100-80gb",
        "run": {"seq_len": 1024, "global_batch_seqs": 64, "training_tokens": 1e10},
        "layout": {"gpus": 8}, "schedule": {"price_usd_per_gpu_hour": 2.0}}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))


def one_line_error(code, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("note:", "warning:"))]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (code, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def plan_file(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text(yaml.safe_dump(PLAN))
    return p


# ---------------------------------------------------------------------------------------------------------------
# Files in
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["folder", "not-utf8", "nul", "bomb", "deep", "deep-flow", "recursive", "huge",
                                  "python-tag", "list"])
def test_a_hostile_plan_file_is_one_line(capsys, tmp_path, kind):
    p = tmp_path / "plan.yaml"
    if kind == "folder":
        p.mkdir()
    elif kind == "not-utf8":
        p.write_bytes(b"name: caf\xe9\n")
    elif kind == "nul":
        p.write_bytes(b"name: x\x00\nmodel: gpt3-125m\n")
    elif kind == "bomb":
        p.write_text(BOMB)
    elif kind == "deep":
        p.write_text("".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v\n")
    elif kind == "deep-flow":
        p.write_text("a: " + "[" * 50000 + "]" * 50000 + "\n")
    elif kind == "recursive":
        p.write_text("a: &a [1, *a]\n")
    elif kind == "huge":
        with p.open("wb") as f:
            f.seek(MAX_INPUT_BYTES + 1)
            f.write(b"\n")
    elif kind == "python-tag":
        p.write_text("model: !!python/object/apply:os.system ['true']\n")
    else:
        p.write_text("- 1\n- 2\n")
    for cmd in (["estimate", p], ["plan", p], ["budget", p], ["validate", "--runs", p]):
        code, out, err = run_cli(capsys, *cmd)
        one_line_error(code, err, str(p))


def test_yaml_limits_name_the_problem():
    with pytest.raises(SpecError, match="expands to more than"):
        load_yaml_safely(BOMB, "bomb.yaml")
    with pytest.raises(SpecError, match="nested deeper than"):
        load_yaml_safely("[" * 100 + "]" * 100, "deep.yaml")
    with pytest.raises(SpecError, match="recursive"):
        load_yaml_safely("a: &a [1, *a]", "r.yaml")
    assert load_yaml_safely("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}  # aliases still work


def test_read_text_refuses_what_is_not_a_text_file(tmp_path):
    for name, data, needle in (("a.yaml", b"x\x00", "NUL"), ("b.yaml", b"\xff\xfe", "UTF-8")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SpecError, match=needle):
            read_text(tmp_path / name)
    with pytest.raises(SpecError, match="folder"):
        read_text(tmp_path)
    with pytest.raises(SpecError, match="no such file"):
        read_text(tmp_path / "missing.yaml")


@pytest.mark.parametrize("field,value,needle", [
    ("hidden_size", "3072", "hidden_size: expected an integer"), ("num_hidden_layers", 28.5, "num_hidden_layers"),
    ("num_attention_heads", True, "num_attention_heads"), ("vocab_size", [1], "vocab_size"),
    ("tie_word_embeddings", "false", "tie_word_embeddings: expected true or false"),
    ("intermediate_size", 10**30, "out of range")])
def test_hf_config_types_are_checked(capsys, tmp_path, field, value, needle):
    from pathlib import Path

    cfg = json.loads((Path(__file__).parent / "data" / "hf" / "gemma-7b.json").read_text())
    cfg[field] = value
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    code, out, err = run_cli(capsys, "models", "import", p)
    one_line_error(code, err, needle)


def test_hf_config_deep_json_is_one_line(capsys, tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "llama", "x": ' + "[" * 100000 + "]" * 100000 + "}")
    code, out, err = run_cli(capsys, "models", "import", p)
    one_line_error(code, err, "nested deeper")
    code, out, err = run_cli(capsys, "models", "import", tmp_path)
    one_line_error(code, err, "folder")


@pytest.mark.parametrize("text,needle", [
    ("params,tokens,loss\n" + "1e9,2e10,2.5\n" * 20, "distinct"),
    ("params,tokens,loss\n" + "".join(f"1e{300 - i},1e{300 - i},{2 + i}\n" for i in range(10)), "above"),
    ("params,tokens,loss\n1e9,inf,2.5\n", "positive"),
])
def test_points_csv(capsys, tmp_path, text, needle):
    p = tmp_path / "points.csv"
    p.write_text(text)
    code, out, err = run_cli(capsys, "scaling", "fit", p, "--bootstrap", "0")
    one_line_error(code, err, needle)
    code, out, err = run_cli(capsys, "scaling", "fit", tmp_path)
    one_line_error(code, err, "folder")


# ---------------------------------------------------------------------------------------------------------------
# Files out
# ---------------------------------------------------------------------------------------------------------------

def _writers(tmp_path, plan_file, target):
    bench = tmp_path / "bench.yaml"
    if not bench.exists():
        assert planner_cli_ok("bench", "--published", "H100_SXM", "-o", bench)
    budget = tmp_path / "budget.yaml"
    budget.write_text(yaml.safe_dump({"hardware": "a100-80gb", "budget": {"usd": 1e5, "max_gpus": 64}}))
    from pathlib import Path

    hf = Path(__file__).parent / "data" / "hf" / "gemma-7b.json"
    return {
        "budget --save-plan": (["budget", budget, "--save-plan", target.with_suffix(".yaml")], ".yaml"),
        "models import --out": (["models", "import", hf, "--out", target.with_suffix(".yaml")], ".yaml"),
        "calibrate --out": (["calibrate", bench, "--into", "h100-sxm", "-o", target.with_suffix(".yaml")], ".yaml"),
        "bench --published --out": (["bench", "--published", "A100_SXM_80GB", "-o", target.with_suffix(".yaml")],
                                    ".yaml"),
        "scaling optimal --plot": (["scaling", "optimal", "--flops", "1e22", "--plot", target.with_suffix(".png")],
                                   ".png"),
        "scaling isoflop --plot": (["scaling", "isoflop", "-c", "1e21", "--plot", target.with_suffix(".png")],
                                   ".png"),
        "plan --out": (["plan", plan_file, "--out", target.with_suffix(".csv")], ".csv"),
        "estimate --plot": (["estimate", plan_file, "--plot", target.with_suffix(".svg")], ".svg"),
    }


def planner_cli_ok(*args) -> bool:
    from planner.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return (e.code or 0) == 0
    return True


WRITERS = ["budget --save-plan", "models import --out", "calibrate --out", "bench --published --out",
           "scaling optimal --plot", "scaling isoflop --plot", "plan --out", "estimate --plot"]


@pytest.mark.parametrize("which", WRITERS)
def test_no_writer_clobbers_a_foreign_file(capsys, tmp_path, plan_file, which):
    argv, suffix = _writers(tmp_path, plan_file, tmp_path / "mine")[which]
    target = argv[-1]
    target.write_bytes(b"precious\n")
    code, out, err = run_cli(capsys, *argv)
    one_line_error(code, err, str(target), "--force")
    assert target.read_bytes() == b"precious\n"
    code, out, err = run_cli(capsys, *argv, "--force")
    assert code == 0, err
    assert is_planner_file(target), which
    code, out, err = run_cli(capsys, *argv)  # planner's own file may be replaced without --force
    assert code == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


@pytest.mark.parametrize("which", WRITERS)
def test_no_writer_tracebacks_on_a_missing_folder(capsys, tmp_path, plan_file, which):
    argv, suffix = _writers(tmp_path, plan_file, tmp_path / "nodir" / "x")[which]
    code, out, err = run_cli(capsys, *argv)
    one_line_error(code, err, "does not exist")


def test_scaling_fit_plot_is_not_clobbered(capsys, tmp_path):
    rows = ["params,tokens,loss"] + [f"{n:g},{t:g},{1.8 + 400 / n ** 0.34 + 400 / t ** 0.28:.5f}"
                                     for n in (1e8, 3e8, 1e9, 3e9) for t in (2e9, 2e10, 2e11)]
    pts = tmp_path / "p.csv"
    pts.write_text("\n".join(rows) + "\n")
    target = tmp_path / "fit.png"
    target.write_bytes(b"precious")
    code, out, err = run_cli(capsys, "scaling", "fit", pts, "--bootstrap", "0", "--plot", target)
    one_line_error(code, err, "--force")
    assert target.read_bytes() == b"precious"


def test_output_boundary_unit(tmp_path):
    assert CSV_WIDE_PREFIX.split(",")[0] == "scenario" and CSV_LONG_HEADER == "scenario,quantity,value,unit"
    from planner.io.export import EXPORT_COLUMNS, LONG_COLUMNS

    assert ",".join(EXPORT_COLUMNS[:12]) == CSV_WIDE_PREFIX and ",".join(LONG_COLUMNS) == CSV_LONG_HEADER
    with pytest.raises(SpecError, match="is a folder"):
        check_writable(tmp_path)
    p = write_text_file(tmp_path / "a.yaml", "# written by planner test\nx: 1\n")
    assert is_planner_file(p) and write_text_file(p, "# written by planner test\nx: 2\n") == p
    (tmp_path / "b.yaml").write_text("x: 1\n")
    with pytest.raises(SpecError, match="not a planner export"):
        write_text_file(tmp_path / "b.yaml", "# written by planner\n")
    assert (tmp_path / "b.yaml").read_text() == "x: 1\n"


# ---------------------------------------------------------------------------------------------------------------
# Numbers: finite, in range, the same errors from the API
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,needle", [
    (["--price", "inf"], "price_usd_per_gpu_hour"), (["--price", "nan"], "price_usd_per_gpu_hour"),
    (["--tokens", "1e400"], "training_tokens"), (["--tokens", "1e300"], "training_tokens"),
    (["--gpus", str(2**40)], "gpus"), (["--seq", str(2**40)], "seq_len"),
    (["--recompute-fraction", "nan"], "recompute_fraction"),
])
def test_non_finite_and_huge_flags(capsys, plan_file, flags, needle):
    code, out, err = run_cli(capsys, "estimate", plan_file, *flags)
    one_line_error(code, err, needle)


@pytest.mark.parametrize("section,field,value,needle", [
    ("run", "training_tokens", float("inf"), "training_tokens"),
    ("run", "training_tokens", float("nan"), "training_tokens"),
    ("schedule", "price_usd_per_gpu_hour", float("inf"), "price_usd_per_gpu_hour"),
    ("schedule", "failures_per_gpu_hour", True, "failures_per_gpu_hour"),
    ("model", "hidden_size", 7, "not divisible by num_heads"),
    ("model", "num_layers", 10**9, "num_layers"),
    ("model", "moe", {"num_experts": 10**9, "top_k": 2}, "num_experts"),
    ("layout", "gpus", 2**40, "gpus"),
])
def test_plan_values_and_the_api_fail_alike(capsys, tmp_path, section, field, value, needle):
    data = json.loads(json.dumps(PLAN))
    if section == "model":  # llama-13b gives no head_dim: hidden_size / num_heads must divide
        data["model"] = {"extends": "llama-13b", field: value}
    else:
        data[section][field] = value
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    code, out, err = run_cli(capsys, "estimate", p)
    one_line_error(code, err, needle)
    with pytest.raises(SpecError, match=needle):
        planner.estimate(data)
    with pytest.raises(SpecError, match=needle):
        planner.estimate(**{k: data[k] for k in ("model", "hardware", "run", "layout", "schedule")})


def test_inf_in_a_plan_file_is_refused(capsys, tmp_path):
    p = tmp_path / "inf.yaml"
    p.write_text(yaml.safe_dump(PLAN).replace("training_tokens: 10000000000.0", "training_tokens: .inf"))
    code, out, err = run_cli(capsys, "estimate", p)
    one_line_error(code, err, "training_tokens")


# ---------------------------------------------------------------------------------------------------------------
# Work-size guards: errors before anything big is built
# ---------------------------------------------------------------------------------------------------------------

def test_a_huge_sweep_asks_for_max_points(capsys, tmp_path):
    data = dict(PLAN, sweep={"grid": {"layout.gpus": list(range(8, 8008, 8)),
                                      "run.seq_len": [1024 * (i + 1) for i in range(1000)]}})
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(data))
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, "plan", p)
    one_line_error(code, err, "1,000,000 plans", "--max-points")
    assert time.perf_counter() - t0 < 10
    small = dict(PLAN, sweep={"grid": {"layout.gpus": [8, 16]}})
    p.write_text(yaml.safe_dump(small))
    code, out, err = run_cli(capsys, "plan", p, "--max-points", "1")
    one_line_error(code, err, "2 plans")
    assert run_cli(capsys, "plan", p, "--max-points", "2")[0] == 0


@pytest.mark.parametrize("argv,needle", [
    (["scaling", "isoflop", "-c", "1e21", "--points", "1000000"], "--points"),
    (["scaling", "isoflop", "-c", "1e21", "--span", "inf"], "--span"),
    (["scaling", "optimal", "--flops", "1e400"], "--flops"),
    (["scaling", "loss", "--params", "3.5", "--tokens", "3.5"], "below"),
    (["search", "--model", "gpt3-125m", "--gpu", "a100-80gb", "--seq", "1024", "--global-batch", "64",
      "--max-gpus", "1000000000"], "--max-gpus"),
    (["search", "--model", "gpt3-125m", "--gpu", "a100-80gb", "--seq", "1024", "--global-batch", "64",
      "--gpus", str(2**63)], "--gpus"),
    (["budget", "--gpu", "h100-sxm", "--usd", "1e6", "--max-gpus", "1000000000"], "max_gpus"),
    (["budget", "--gpu", "h100-sxm", "--usd", "inf"], "usd"),
    (["budget", "--gpu", "h100-sxm", "--usd", "1e6", "--price", "0"], "price of 0"),
])
def test_work_size_and_range_guards(capsys, argv, needle):
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, *argv)
    one_line_error(code, err, needle)
    assert time.perf_counter() - t0 < 10
