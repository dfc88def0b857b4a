"""The command line as users script against it (DESIGN.md §1 and §4).

Contract under test (DESIGN.md §1 "Three error kinds"; planner/cli.py module docstring; the typer docs and the
Hugging Face ``hf`` CLI named in DESIGN.md §4): data goes to stdout, messages to stderr; exit 0 on success, 1 for
a valid plan that does not fit (the result still printed, with ``fits: false`` and a reason), 2 for bad input with
ONE line on stderr naming the field and the values, and never a traceback for anything but a bug.

``planner.cli.main`` always ends in SystemExit carrying the exit code. Profiles come from a temporary folder on
PLANNER_PROFILES (conftest.profile_dir). Most tests run with a wide console (COLUMNS) so "one line" checks the
message, not the terminal width; test_long_error_stays_one_line_on_narrow_console checks the width separately.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from planner.cli import main
from helpers import run_cli  # noqa: E402

try:  # tests/ on sys.path (pytest's default rootdir-relative import of conftest)
    from conftest import TEST_PROFILE_NAME, profile_data
except ImportError:  # tests imported as a package
    from tests.conftest import TEST_PROFILE_NAME, profile_data

GPU = TEST_PROFILE_NAME

#: Output keys of `planner estimate` that scripts read (planner/core/estimate.py Estimate.to_dict).
DOCUMENTED_KEYS = (
    "params_total", "params_active", "model_flops_per_token", "hardware_flops_per_step", "memory_per_gpu_bytes",
    "memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes", "memory_activations_bytes",
    "memory_logits_bytes", "memory_overhead_bytes", "fits", "reason",
)
MEMORY_PARTS = ("memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes",
                "memory_activations_bytes", "memory_logits_bytes", "memory_overhead_bytes")

#: LLaMA 7B on 8 GPUs with ZeRO-3 and full recomputation: ~17 GB per GPU, fits the 80 GB test GPU.
FITS = ["--model", "llama-7b", "--gpu", GPU, "--gpus", "8", "--seq", "2048", "--global-batch", "64", "--zero", "3",
        "--recompute", "full"]
#: The same without ZeRO: 16 bytes/parameter x 6.74B = 108 GB of model states alone, does not fit in 80 GB.
DOES_NOT_FIT = ["--model", "llama-7b", "--gpu", GPU, "--gpus", "8", "--seq", "2048", "--global-batch", "64"]


@pytest.fixture(autouse=True)
def _test_profile(profile_dir):
    """Every CLI test here runs against the inline test GPU profile (conftest.profile_dir)."""




def assert_one_line_error(err: str, *needles: str):
    """Exactly one non-empty line on stderr, an error naming every needle, and no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert "error" in lines[0].lower()
    for n in needles:
        assert n in lines[0], (n, lines[0])


def write_plan(tmp_path, text: str, name="plan.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


PLAN = f"""\
name: demo
model: llama-7b
hardware: {GPU}
run:
  seq_len: 2048
  global_batch_seqs: 64
  micro_batch: 1
layout:
  gpus: 8
  zero_stage: 3
  recompute: full
"""


# ---- estimate: output ----

def test_estimate_json_has_documented_keys(capsys):
    code, out, err = run_cli(capsys, "estimate", *FITS, "--format", "json")
    assert code == 0
    assert "Traceback" not in err and "error" not in err.lower()
    d = json.loads(out)  # stdout is exactly one JSON document, nothing else
    for k in DOCUMENTED_KEYS:
        assert k in d, k
    assert d["params_total"] == 6_738_415_616  # LLaMA 7B released checkpoint (Touvron et al. 2023)
    assert d["params_active"] == d["params_total"]
    assert d["memory_per_gpu_bytes"] == pytest.approx(sum(d[k] for k in MEMORY_PARTS), rel=1e-12)
    assert d["fits"] is True and d["reason"] is None
    assert (d["gpus"], d["dp"], d["tp"], d["zero_stage"], d["recompute"]) == (8, 8, 1, 3, "full")
    assert d["hardware_flops_per_step"] > d["model_flops_per_token"] * 64 * 2048  # full recompute adds FLOPs


def test_estimate_csv_is_header_plus_one_row(capsys):
    code, out, err = run_cli(capsys, "estimate", *FITS, "--format", "csv")
    assert code == 0 and "error" not in err.lower()
    rows = list(csv.reader(io.StringIO(out)))
    assert len(rows) == 2
    header, row = rows
    assert len(header) == len(row)
    for k in DOCUMENTED_KEYS:
        assert k in header, k
    values = dict(zip(header, row))
    assert int(values["params_total"]) == 6_738_415_616
    assert values["fits"] == "true"


def test_estimate_table_goes_to_stdout(capsys):
    code, out, err = run_cli(capsys, "estimate", *FITS)
    assert code == 0 and "error" not in err.lower()
    assert "memory" in out and "params_total" in out


def test_messages_go_to_stderr_data_to_stdout(capsys):
    # without --seq the CLI notes its default on stderr; stdout stays a clean JSON document
    args = [a for a in FITS]
    i = args.index("--seq")
    del args[i:i + 2]
    code, out, err = run_cli(capsys, "estimate", *args, "--format", "json")
    assert code == 0
    assert json.loads(out)["seq_len_tokens"] == 2048
    assert "seq" in err and "note" in err.lower()
    assert "note" not in out.lower()


# ---- estimate: plan files ----

def test_plan_file(capsys, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    code, out, err = run_cli(capsys, "estimate", plan, "--format", "json")
    assert code == 0 and "error" not in err.lower()
    d = json.loads(out)
    assert d["plan"] == "demo"
    assert (d["gpus"], d["tp"], d["zero_stage"], d["recompute"], d["seq_len_tokens"]) == (8, 1, 3, "full", 2048)


def test_flags_override_plan_file(capsys, tmp_path):
    plan = write_plan(tmp_path, PLAN)
    code, out, err = run_cli(capsys, "estimate", plan, "--tp", "2", "--zero", "1", "--seq", "4096",
                             "--recompute", "selective", "--sp", "--format", "json")
    d = json.loads(out)
    assert (d["gpus"], d["dp"], d["tp"], d["zero_stage"], d["recompute"], d["seq_len_tokens"],
            d["sequence_parallel"]) == (8, 4, 2, 1, "selective", 4096, True)
    # --dp replaces the file's gpus instead of contradicting it
    code, out, err = run_cli(capsys, "estimate", plan, "--dp", "2", "--format", "json")
    d = json.loads(out)
    assert (d["gpus"], d["dp"]) == (2, 2)


# ---- estimate: infeasible plan (a result, exit 1) ----

def test_does_not_fit_exits_1_with_reason(capsys):
    code, out, err = run_cli(capsys, "estimate", *DOES_NOT_FIT, "--format", "json")
    assert code == 1
    d = json.loads(out)  # the result is still printed
    assert d["fits"] is False
    assert isinstance(d["reason"], str) and "GiB" in d["reason"]
    assert d["memory_per_gpu_bytes"] > d["memory_capacity_bytes"]
    assert "Traceback" not in err and "fit" in err


# ---- estimate: bad input (exit 2, one line naming field and values) ----

def test_unknown_preset_lists_close_names(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7bb", "--gpu", GPU, "--seq", "2048")
    assert code == 2 and out == ""
    assert_one_line_error(err, "llama-7bb", "llama-7b")


def test_unknown_hardware_profile(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", "unit-test-gpv", "--seq", "2048")
    assert code == 2 and out == ""
    assert_one_line_error(err, "unit-test-gpv", GPU)


def test_plan_typo_names_file_line_and_key(capsys, tmp_path):
    text = PLAN.replace("  zero_stage: 3", "  zero_stag: 3")
    line = text.splitlines().index("  zero_stag: 3") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{plan}:{line}", "zero_stag")


def test_plan_nested_typo_in_extended_model(capsys, tmp_path):
    # `extends:` overrides are validated as strictly as any other key (DESIGN.md §1: extra="forbid")
    text = PLAN.replace("model: llama-7b", "model:\n  extends: llama-7b\n  num_layer: 40")
    line = text.splitlines().index("  num_layer: 40") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{plan}:{line}", "model.num_layer", "40")


def test_plan_tp_not_dividing_gpus(capsys, tmp_path):
    text = PLAN.replace("  zero_stage: 3", "  tp: 3")
    line = text.splitlines().index("layout:") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{plan}:{line}", "tp(3)", "gpus(8)")


def test_plan_unknown_top_level_key(capsys, tmp_path):
    text = PLAN.replace("run:", "runn:")
    line = text.splitlines().index("runn:") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2
    assert_one_line_error(err, f"{plan}:{line}", "runn")


def test_plan_wrong_type(capsys, tmp_path):
    text = PLAN.replace("seq_len: 2048", "seq_len: long")
    line = text.splitlines().index("  seq_len: long") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{plan}:{line}", "run.seq_len", "'long'")


def test_plan_negative_seq_len(capsys, tmp_path):
    text = PLAN.replace("seq_len: 2048", "seq_len: -2048")
    line = text.splitlines().index("  seq_len: -2048") + 1
    plan = write_plan(tmp_path, text)
    code, out, err = run_cli(capsys, "estimate", plan)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{plan}:{line}", "run.seq_len", "-2048")


def test_flag_negative_seq_len(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", GPU, "--seq", "-5")
    assert code == 2 and out == ""
    assert_one_line_error(err, "seq_len", "-5")


def test_tp_not_dividing_gpus(capsys):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", GPU, "--seq", "2048",
                             "--gpus", "8", "--tp", "3")
    assert code == 2 and out == ""
    assert_one_line_error(err, "tp(3)", "gpus(8)")


def test_heads_not_divisible_by_tp(capsys):
    # Megatron-LM's check: attention heads split evenly over tensor-parallel ranks (planner/core/checks.py)
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", GPU, "--seq", "2048",
                             "--gpus", "24", "--tp", "3")
    assert code == 2 and out == ""
    assert_one_line_error(err, "num_heads(32)", "tp(3)")


def test_missing_model(capsys):
    code, out, err = run_cli(capsys, "estimate", "--gpu", GPU, "--seq", "2048")
    assert code == 2
    assert_one_line_error(err, "--model")


# ---- usage errors from the flag parser ----

@pytest.mark.parametrize("args,needle", [
    (["--seq", "abc"], "--seq"),                # wrong type for an int flag (named by its flag)
    (["--recompute", "sometimes"], "sometimes"),  # not one of the choices
    (["--bogus", "1"], "--bogus"),              # unknown option
])
def test_bad_flag_is_one_line_exit_2(capsys, args, needle):
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", GPU, *args)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert needle in err


def test_long_error_stays_one_line_on_narrow_console(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b-with-a-rather-long-misspelt-name",
                             "--gpu", GPU, "--seq", "2048")
    assert code == 2
    assert_one_line_error(err, "llama-7b-with-a-rather-long-misspelt-name")


def test_profile_without_peak_for_precision(capsys, profile_dir):
    data = profile_data()
    data["name"] = "no-fp8-gpu"
    del data["accelerator"]["peak_flop_per_s"]["fp8"]
    data["aliases"] = []
    (profile_dir / "no-fp8-gpu.yaml").write_text(yaml.safe_dump(data))
    from planner import registry
    registry._profile_files.cache_clear()
    code, out, err = run_cli(capsys, "estimate", "--model", "llama-7b", "--gpu", "no-fp8-gpu", "--seq", "2048",
                             "--gpus", "8", "--zero", "3", "--precision", "fp8")
    assert code == 2
    assert_one_line_error(err, "fp8")


# ---- models ----

def test_models_lists_llama_7b(capsys):
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and "error" not in err.lower()
    assert "llama-7b" in out


def test_models_json_list(capsys):
    code, out, err = run_cli(capsys, "models", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    by_name = {r["preset"]: r for r in rows}
    assert by_name["llama-7b"]["params_total"] == 6_738_415_616


def test_models_show_one_json_option_first(capsys):
    code, out, err = run_cli(capsys, "models", "--format", "json", "llama-7b")
    assert code == 0
    d = json.loads(out)
    assert d["preset"] == "llama-7b"
    assert (d["num_layers"], d["hidden_size"], d["num_heads"], d["ffn_hidden"]) == (32, 4096, 32, 11008)
    assert d["params_total"] == 6_738_415_616


def test_models_show_one_json(capsys):
    code, out, err = run_cli(capsys, "models", "llama-7b", "--format", "json")
    assert code == 0
    assert json.loads(out)["preset"] == "llama-7b"


def test_models_unknown_preset(capsys):
    code, out, err = run_cli(capsys, "models", "lama-7b")
    assert code == 2 and out == ""
    assert_one_line_error(err, "lama-7b", "llama-7b")


def test_version_completion_and_help_panels(capsys):
    import planner

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"planner {planner.__version__}"
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "--install-completion" in out and "--wide" in out and "--quiet" in out
    for panel in ("One plan", "Find a plan", "Data"):
        assert panel in out
    code, out, _ = run_cli(capsys, "estimate", "--help")
    for panel in ("Model", "Hardware", "Layout", "Run", "Output"):
        assert f"─ {panel} " in out, panel


def test_quiet_silences_notes(capsys, tmp_path):
    code, _, err = run_cli(capsys, "estimate", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--gpus", "8",
                           "--fsdp", "full", "--quiet")
    assert "note:" not in err
