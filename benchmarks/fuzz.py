"""Hostile-input fuzzing of the planner CLI and Python API (issue 14).

    python benchmarks/fuzz.py --cases 3000 --seed 0          # a few minutes on one core
    python benchmarks/fuzz.py --cases 50000 --seed 7 -v      # longer; -v prints every failing case

Generates careless and hostile inputs over every command: files that are folders, not UTF-8, hold NUL bytes, are
YAML alias bombs or nest thousands of levels deep; plan files with ``.inf``, ``nan``, negative, huge or mistyped
values; flags with ``inf``/``nan``/``1e400``/``-1``/``2**63``; Hugging Face configs with strings and floats where
integers belong; sweeps and searches too large to finish; writes over files planner did not write or into folders
that do not exist; and random valid plans whose results must keep the estimate's invariants. Commands run
in-process (``typer.testing.CliRunner`` isolation around ``planner.cli.main``, a per-case alarm for hangs), plus a
few through a real subprocess. Prints ONE summary line::

    fuzz: 3000 cases seed 0 in 212s: tracebacks 0, wrong exits 0, multi-line errors 0, hangs 0, clobbered 0,
    accepted invalid 0, invariant breaks 0

and exits 1 when any count is not 0. The contract (README "Exit codes", DESIGN.md §1): bad input exits 2 with one
line on stderr; a valid plan exits 0 (1 when it does not fit); a traceback only for a bug; nothing written over a
file planner did not write unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from planner.cli import main  # noqa: E402

BAD, OK, ANY = "bad", "ok", "any"  # expected: exit 2 / exit 0 or 1 / any of 0, 1, 2

VALID_PLAN = {
    "name": "fuzz", "model": "llama-3-8b", "hardware": "h100-sxm",
    "run": {"seq_len": 4096, "global_batch_seqs": 256, "micro_batch": 1, "training_tokens": 1e12,
            "precision": "bf16", "optimizer": "adamw"},
    "layout": {"gpus": 64, "tp": 2, "pp": 1, "fsdp": "full", "recompute": "selective"},
    "schedule": {"price_usd_per_gpu_hour": 2.5},
}
MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "logits", "overhead")
TIME_PARTS = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "bubble", "dp_comm", "optimizer")

#: Hostile scalars and whether each is invalid for a positive count (int) / a positive float field.
NONFINITE = ["inf", "-inf", "nan", "1e400", "-1e400", "Infinity", "NaN"]
HOSTILE_NUM = NONFINITE + ["-1", "0", "-0", "1e308", "1e30", str(2**63), str(2**64 + 1), str(10**30), "abc", "",
                           "1,5", "0x10", "1e", "12abc", "3.5"]
YAML_HOSTILE = [float("inf"), float("-inf"), float("nan"), -1, 0, 10**30, 2**63, 1e308, 1e30, "abc", "", None,
                [], {}, True, [1, 2], {"a": 1}, 3.5, -0.5]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


# ---------------------------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------------------------

class Outcome:
    __slots__ = ("code", "out", "err", "exc", "hang", "seconds")

    def __init__(self, code, out, err, exc=None, hang=False, seconds=0.0):
        self.code, self.out, self.err, self.exc, self.hang, self.seconds = code, out, err, exc, hang, seconds


RUNNER = CliRunner()


def run_inprocess(argv: list[str], timeout: float) -> Outcome:
    t0 = time.perf_counter()
    code, exc, hang = 0, None, False
    with RUNNER.isolation() as streams:
        out_b, err_b = streams[0], streams[1]
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except Hang:
            hang = True
        except BaseException:  # noqa: BLE001 - a traceback is what we count
            exc = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = out_b.getvalue().decode("utf-8", "replace"), err_b.getvalue().decode("utf-8", "replace")
    return Outcome(code, out, err, exc, hang, time.perf_counter() - t0)


def run_subprocess(argv: list[str], timeout: float) -> Outcome:
    t0 = time.perf_counter()
    try:
        # in the folder main() works in (a temporary one), as the in-process cases: an output name a case draws
        # ("{a: 1}.csv") must not land in the checkout
        p = subprocess.run([sys.executable, "-m", "planner.cli", *map(str, argv)], capture_output=True, text=True,
                           timeout=timeout, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return Outcome(None, "", "", hang=True, seconds=timeout)
    exc = p.stderr if "Traceback (most recent call last)" in p.stderr else None
    return Outcome(p.returncode, p.stdout, p.stderr, exc, False, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------

def error_lines(err: str) -> list[str]:
    """stderr lines that are not notes, warnings or progress."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("note:", "warning:"))
            and "does not fit:" not in ln]


def check_estimate_row(d: dict) -> list[str]:
    """Invariants of one estimate's JSON: finite non-negative numbers, parts sum to totals, HFU >= MFU, fits
    consistent with memory vs capacity."""
    bad = []
    for k, v in d.items():
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, (int, float)) and (not math.isfinite(v) or v < 0):
            bad.append(f"{k}={v}")
    infeasible_row = d.get("fits") is False and d.get("reason") and d.get("step_time_s") is None
    for k in ("step_time_s", "memory_per_gpu_bytes", "mfu", "hfu", "params_total", "model_flops_per_token"):
        if d.get(k) is None and not infeasible_row:
            bad.append(f"{k} is null")
    never_finishes = (d.get("goodput") == 0 and d.get("mtbf_hours") is not None
                      and (d.get("lost_per_failure_hours") or 0) >= d["mtbf_hours"])  # documented: no wall clock
    if d.get("training_tokens") is not None and d.get("price_usd_per_gpu_hour") is not None and not never_finishes:
        for k in ("cost_usd", "gpu_hours", "wall_clock_days", "energy_mwh", "model_flops_total"):
            if d.get(k) is None:
                bad.append(f"{k} is null with training tokens and a price")
    if bad or infeasible_row:
        return bad
    mem = sum(d[f"memory_{p}_bytes"] for p in MEMORY_PARTS)
    if not math.isclose(mem, d["memory_per_gpu_bytes"], rel_tol=1e-9, abs_tol=1.0):
        bad.append(f"memory parts {mem} != {d['memory_per_gpu_bytes']}")
    tparts = sum(d.get(f"time_{p}_s") or 0.0 for p in TIME_PARTS)
    if not math.isclose(tparts, d["step_time_s"], rel_tol=1e-9, abs_tol=1e-12):
        bad.append(f"time parts {tparts} != {d['step_time_s']}")
    if d["hfu"] < d["mfu"] * (1 - 1e-12):
        bad.append(f"hfu {d['hfu']} < mfu {d['mfu']}")
    cap = d.get("memory_usable_bytes", d.get("memory_capacity_bytes"))  # capacity less the headroom
    if cap is not None and d.get("fits") is not None:
        if d["fits"] != (d["memory_per_gpu_bytes"] <= cap):
            bad.append(f"fits {d['fits']} but memory {d['memory_per_gpu_bytes']} vs usable {cap}")
        if not d["fits"] and not d.get("reason"):
            bad.append("does not fit but gives no reason")
    return bad


def nonfinite_in_json(text: str) -> bool:
    return any(tok in text for tok in ("NaN", "Infinity"))


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------

class Fixtures:
    def __init__(self, d: Path):
        self.d = d
        self.plan = self.write("plan.yaml", yaml.safe_dump(VALID_PLAN))
        self.budget = self.write("budget.yaml", yaml.safe_dump(
            {"hardware": "h100-sxm", "budget": {"usd": 1e6, "max_gpus": 256}}))
        self.hf = ROOT / "tests" / "data" / "hf" / "gemma-7b.json"
        self.hf_data = json.loads(self.hf.read_text())
        rows = ["params,tokens,loss"] + [f"{n:g},{t:g},{1.8 + 400 / n ** 0.34 + 400 / t ** 0.28:.5f}"
                                         for n in (1e8, 3e8, 1e9, 3e9) for t in (2e9, 2e10, 2e11)]
        self.points = self.write("points.csv", "\n".join(rows) + "\n")
        self.bench = d / "bench.yaml"
        code = run_inprocess(["bench", "--published", "H100_SXM", "-o", self.bench], 60).code
        if code != 0:
            raise SystemExit(f"fuzz: could not write the BENCH fixture (exit {code})")
        self.n = 0

    def write(self, name: str, text, binary: bool = False) -> Path:
        p = self.d / name
        if binary:
            p.write_bytes(text)
        else:
            p.write_text(text)
        return p

    def fresh(self, suffix: str) -> Path:
        self.n += 1
        return self.d / f"f{self.n}{suffix}"

    def hostile_file(self, rng: random.Random, suffix: str) -> tuple[Path, str]:
        """(path, kind) of a file no reader may accept."""
        kind = rng.choice(["folder", "missing", "not-utf8", "nul", "empty", "alias-bomb", "deep", "deep-flow",
                           "recursive", "not-mapping", "python-tag", "bad-syntax", "huge", "deep-json",
                           "binary", "bom-garbage"])
        p = self.fresh(suffix)
        if kind == "folder":
            p.mkdir()
        elif kind == "missing":
            pass
        elif kind == "not-utf8":
            p.write_bytes(b"name: caf\xe9\nmodel: llama-3-8b\n\xff\xfe")
        elif kind == "nul":
            p.write_bytes(b"name: x\x00\nmodel: llama-3-8b\n")
        elif kind == "empty":
            p.write_text("")
        elif kind == "alias-bomb":
            lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
            for i in range(1, 10):
                prev, cur = chr(96 + i), chr(97 + i)
                lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
            p.write_text("\n".join(lines) + "\n")
        elif kind == "deep":
            n = rng.choice([100, 1000, 5000])
            p.write_text("".join("  " * i + f"k{i}:\n" for i in range(n)) + "  " * n + "v\n")
        elif kind == "deep-flow":
            n = rng.choice([200, 3000, 50000])
            p.write_text("a: " + "[" * n + "]" * n + "\n")
        elif kind == "deep-json":
            n = rng.choice([200, 3000, 100000])
            p.write_text('{"model_type": "llama", "x": ' + "[" * n + "]" * n + "}")
        elif kind == "recursive":
            p.write_text("a: &a [1, *a]\n")
        elif kind == "not-mapping":
            p.write_text(rng.choice(["- 1\n- 2\n", "42\n", "just text\n", "null\n"]))
        elif kind == "python-tag":
            p.write_text("model: !!python/object/apply:os.system ['true']\n")
        elif kind == "bad-syntax":
            p.write_text(rng.choice(["a: b: c\n", "{unclosed\n", "a:\n\t- tab\n", "[1, 2\n", "'x\n"]))
        elif kind == "huge":
            with p.open("wb") as f:
                f.seek(17 * 2**20)
                f.write(b"\n")
        elif kind == "binary":
            p.write_bytes(bytes(rng.randrange(256) for _ in range(512)))
        elif kind == "bom-garbage":
            p.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf\x00\x01")
        return p, kind


# ---------------------------------------------------------------------------------------------------------------
# Case generators: each returns (argv, expected, meta); meta may carry "clobber" (path, content) and "check"
# ---------------------------------------------------------------------------------------------------------------

def case_hostile_file(rng, fx: Fixtures):
    cmd = rng.choice(["estimate", "plan", "budget", "import", "fit", "calibrate", "validate", "estimate-gpu",
                      "plot", "search"])
    suffix = {"import": ".json", "fit": ".csv"}.get(cmd, ".yaml")
    p, kind = fx.hostile_file(rng, suffix)
    argv = {"estimate": ["estimate", p], "plan": ["plan", p], "budget": ["budget", p],
            "import": ["models", "import", p], "fit": ["scaling", "fit", p, "--bootstrap", "0"],
            "calibrate": ["calibrate", p, "--into", "h100-sxm", "-o", fx.fresh(".yaml")],
            "validate": ["validate", "--runs", p], "estimate-gpu": ["estimate", fx.plan, "--gpu", p],
            "plot": ["plot", p, "--out", fx.fresh(".png")], "search": ["search", p, "--max-gpus", "64"]}[cmd]
    if cmd == "estimate-gpu" and kind in ("missing",):
        return argv, BAD, {"kind": f"{cmd}:{kind}"}
    return argv, BAD, {"kind": f"{cmd}:{kind}"}


NUM_FLAGS_INT = ["--gpus", "--dp", "--tp", "--pp", "--cp", "--ep", "--vpp", "--zero", "--seq", "--global-batch",
                 "--global-batch-tokens", "--micro-batch"]
NUM_FLAGS_FLOAT = ["--tokens", "--price", "--recompute-fraction"]


def _is_invalid_count(text: str) -> bool:
    try:
        v = int(text)
    except ValueError:
        return True
    return v <= 0 or v > 2**40


def _is_invalid_float(text: str, lo_open: float = 0.0) -> bool:
    try:
        v = float(text)
    except ValueError:
        return True
    return not math.isfinite(v) or v <= lo_open


def case_flags(rng, fx: Fixtures):
    """estimate with a valid base plan and one or two hostile numeric flags."""
    argv = ["estimate", fx.plan, "--format", "json"]
    final: dict[str, bool] = {}  # flag -> whether its value is invalid; a repeated flag's last value wins (click)
    for _ in range(rng.choice([1, 1, 2])):
        if rng.random() < 0.7:
            flag, val = rng.choice(NUM_FLAGS_INT), rng.choice(HOSTILE_NUM)
            invalid = _is_invalid_count(val) and not (flag == "--zero" and val in ("0", "-0"))
        else:
            flag, val = rng.choice(NUM_FLAGS_FLOAT), rng.choice(HOSTILE_NUM)
            invalid = _is_invalid_float(val) or (flag == "--recompute-fraction" and not _is_invalid_float(val)
                                                  and float(val) > 1)
            if flag == "--price" and val in ("0", "-0"):
                invalid = False
        argv += [flag, val]
        final[flag] = invalid and val not in ("3.5",)
    expected = BAD if any(final.values()) else ANY
    return argv, expected, {"kind": "flags", "check": "estimate-json"}


def _mutate(data: dict, rng) -> tuple[dict, bool]:
    """One field of a valid plan set to a hostile value; (plan, surely_invalid)."""
    import copy

    d = copy.deepcopy(data)
    section = rng.choice(["run", "layout", "schedule", "model", "hardware"])
    if section == "hardware":
        part, field = rng.choice([("accelerator", "hbm_bytes"), ("accelerator", "hbm_bandwidth_bytes_per_s"),
                                  ("accelerator", "tdp_w"), ("accelerator", "memory_overhead_bytes"),
                                  ("node", "gpus_per_node"), ("node", "intra_node_bandwidth_bytes_per_s"),
                                  ("network", "inter_node_latency_s"), ("network", "inter_node_bandwidth_bytes_per_s"),
                                  ("accelerator", "peak_flop_per_s")])
        value = rng.choice(YAML_HOSTILE + [1e-30, 1e-300, 5e-324, 1e29, 1e-9])
        if field == "peak_flop_per_s":
            d["hardware"] = {"extends": "h100-sxm", part: {field: {"bf16": {"value": value}}}}
        else:
            d["hardware"] = {"extends": "h100-sxm", part: {field: {"value": value}}}
        invalid = not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or (
            abs(value) > 1e30) or (value < 0) or (value == 0 and field not in (
                "memory_overhead_bytes", "inter_node_latency_s")) or (field == "gpus_per_node" and (
                    value != int(value) or value > 4096 or value < 1))
        return d, invalid
    if section == "model":
        d["model"] = {"extends": "llama-3-8b"}
        field = rng.choice(["num_layers", "hidden_size", "num_heads", "num_kv_heads", "ffn_hidden", "vocab_size",
                            "head_dim", "moe"])
        target = d["model"]
    else:
        target = d[section]
        field = rng.choice({"run": ["seq_len", "global_batch_seqs", "micro_batch", "training_tokens",
                                    "grad_bytes_per_param"],
                            "layout": ["gpus", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "recompute_fraction"],
                            "schedule": ["price_usd_per_gpu_hour", "pue", "failures_per_gpu_hour", "restart_s",
                                         "storage_usd", "grid_kgco2_per_kwh", "checkpoint_bytes"]}[section])
    value = rng.choice(YAML_HOSTILE)
    if field == "moe":
        value = {"num_experts": rng.choice([0, 1, 8, 10**6, 10**12, float("inf")]),
                 "top_k": rng.choice([1, 2, 0, 10**9])}
        target["moe"] = value
        invalid = (not isinstance(value["num_experts"], int) or not 1 <= value["num_experts"] <= 2**16
                   or not 1 <= value["top_k"] <= value.get("num_experts", 1))
        return d, invalid
    target[field] = value
    invalid = isinstance(value, float) and not math.isfinite(value)
    invalid |= isinstance(value, (str, list, dict)) or (value is None and section != "model" and field in (
        "seq_len",))
    invalid |= (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0)
    invalid |= isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1e30
    if field in ("hidden_size", "num_heads", "num_kv_heads", "num_layers", "ffn_hidden", "vocab_size", "head_dim",
                 "seq_len", "global_batch_seqs", "micro_batch", "gpus", "tp", "pp", "cp", "ep", "vpp") and (
            value == 0 or value == 3.5 or value == -0.5):
        invalid = True
    return d, invalid


def case_plan_mutation(rng, fx: Fixtures):
    d, invalid = _mutate(VALID_PLAN, rng)
    p = fx.fresh(".yaml")
    text = yaml.safe_dump(d, allow_unicode=True)
    p.write_text(text)
    cmd = rng.choice(["estimate", "estimate", "plan"])
    argv = [cmd, p, "--format", "json"]
    return argv, BAD if invalid else ANY, {"kind": "plan-mutation", "check": f"{cmd}-json", "input": text}


def case_sweep_size(rng, fx: Fixtures):
    n = rng.choice([1000, 3000, 100000])
    d = dict(VALID_PLAN, sweep={"grid": {"layout.gpus": list(range(8, 8 + 8 * n, 8)),
                                         "run.seq_len": [1024 * (i + 1) for i in range(n)]}})
    p = fx.fresh(".yaml")
    p.write_text(yaml.safe_dump(d))
    return ["plan", p, "--format", "json"], BAD, {"kind": "sweep-size"}


def case_clobber(rng, fx: Fixtures):
    """A writing command aimed at a file planner did not write (or into a folder that does not exist)."""
    mode = rng.choice(["foreign", "foreign", "nodir", "folder"])
    which = rng.choice(["plan-out-csv", "plan-out-json", "plan-out-xlsx", "plan-plot", "plot", "estimate-plot",
                        "search-plot", "budget-save", "import-out", "calibrate-out", "bench-out", "optimal-plot",
                        "isoflop-plot", "fit-plot"])
    suffix = {"plan-out-csv": ".csv", "plan-out-json": ".json", "plan-out-xlsx": ".xlsx", "budget-save": ".yaml",
              "import-out": ".yaml", "calibrate-out": ".yaml", "bench-out": ".yaml"}.get(which, ".png")
    if mode == "nodir":
        target = fx.d / f"nodir{rng.randrange(10**6)}" / f"x{suffix}"
    elif mode == "folder":
        target = fx.fresh(suffix)
        target.mkdir()
    else:
        target = fx.fresh(suffix)
        target.write_bytes(b"precious user data\n" if rng.random() < 0.5 else b"\x89PNG\r\n\x1a\nnot ours")
    argv = {"plan-out-csv": ["plan", fx.plan, "--out", target], "plan-out-json": ["plan", fx.plan, "--out", target],
            "plan-out-xlsx": ["plan", fx.plan, "--out", target], "plan-plot": ["plan", fx.plan, "--plot", target],
            "plot": ["plot", fx.plan, "--out", target], "estimate-plot": ["estimate", fx.plan, "--plot", target],
            "search-plot": ["search", "--model", "gpt3-125m", "--gpu", "a100-80gb", "--max-gpus", "16", "--seq",
                            "1024", "--global-batch", "64", "--plot", target],
            "budget-save": ["budget", fx.budget, "--save-plan", target],
            "import-out": ["models", "import", fx.hf, "--out", target],
            "calibrate-out": ["calibrate", fx.bench, "--into", "h100-sxm", "-o", target],
            "bench-out": ["bench", "--published", "A100_SXM_80GB", "-o", target],
            "optimal-plot": ["scaling", "optimal", "--flops", "1e22", "--plot", target],
            "isoflop-plot": ["scaling", "isoflop", "-c", "1e21", "--plot", target],
            "fit-plot": ["scaling", "fit", fx.points, "--bootstrap", "0", "--plot", target]}[which]
    before = target.read_bytes() if target.is_file() else None
    return argv, BAD, {"kind": f"clobber:{which}:{mode}", "clobber": (target, before)}


def case_scaling(rng, fx: Fixtures):
    sub = rng.choice(["loss", "optimal", "isoflop", "isoflop-points", "optimal-loss"])
    v = rng.choice(HOSTILE_NUM + ["1e22", "70B", "1.4T", "1e39", "1e45"])
    if sub == "loss":
        argv = ["scaling", "loss", "--params", v, "--tokens", rng.choice(["1.4T", v])]
        bad = _is_invalid_float(v.rstrip("BT")) if v not in ("70B", "1.4T") else False
    elif sub == "optimal":
        argv = ["scaling", "optimal", "--flops", v]
        bad = v not in ("70B", "1.4T") and _is_invalid_float(v)
    elif sub == "optimal-loss":
        argv = ["scaling", "optimal", "--target-loss", v]
        bad = _is_invalid_float(v) or float(v) > 100 if v not in ("70B", "1.4T", "abc", "", "1,5", "0x10", "1e",
                                                                  "--", "12abc") else True
        return argv, BAD if bad else ANY, {"kind": f"scaling:{sub}"}
    elif sub == "isoflop":
        argv = ["scaling", "isoflop", "-c", "1e21", "--span", v]
        bad = _is_invalid_float(v, 1.0) or (not _is_invalid_float(v) and float(v) > 1e6)
    else:
        argv = ["scaling", "isoflop", "-c", "1e21", "--points", v]
        bad = _is_invalid_count(v) or int(v) < 2 or int(v) > 10000 if not _is_invalid_count(v) else True
    if v in ("1e39", "1e45") and sub != "optimal":
        bad = True
    if sub in ("loss", "optimal") and v in ("1,5", "3.5", "0x10"):
        bad = True  # 15, 3.5 and 16 are below the smallest count a scaling query takes (1e3; FLOPs 1e7)
    if v == "1e45":
        bad = True
    return argv + ["--format", "json"], BAD if bad else ANY, {"kind": f"scaling:{sub}", "check": "json-finite"}


def case_search(rng, fx: Fixtures):
    flag = rng.choice(["--max-gpus", "--gpus", "--seq", "--global-batch", "--tokens", "--price", "--top"])
    v = rng.choice(HOSTILE_NUM + ["10000000", "1000000000"])
    argv = ["search", "--model", "gpt3-125m", "--gpu", "a100-80gb", "--seq", "1024", "--global-batch", "64",
            "--format", "json"]
    if flag != "--gpus":
        argv += ["--max-gpus", "16"]
    argv += [flag, v]
    if flag in ("--tokens", "--price"):
        bad = _is_invalid_float(v) and not (flag == "--price" and v in ("0", "-0"))
    elif flag in ("--gpus", "--global-batch") and v == "1,5":
        bad = False  # a list of two values
    elif flag == "--top":
        bad = not v.lstrip("-").isdigit() or int(v) < 0
    else:
        bad = _is_invalid_count(v)
    return argv, BAD if bad else ANY, {"kind": f"search:{flag}", "check": "json-finite"}


def case_budget(rng, fx: Fixtures):
    flag = rng.choice(["--usd", "--days", "--max-gpus", "--gpus", "--price", "--seq", "--target-loss",
                       "--tokens-available", "--vocab", "--batch-tokens"])
    v = rng.choice(NONFINITE + ["-1", "0", "1e308", str(2**63), "abc", "1e30", "10000000"])
    argv = ["budget", "--gpu", "h100-sxm", "--format", "json"]
    if flag not in ("--usd",):
        argv += ["--usd", "1e6"]
    if flag not in ("--max-gpus", "--gpus"):
        argv += ["--max-gpus", "64"]
    argv += [flag, v]
    # each flag's range (specs.budget.BudgetSpec, the schedule's price)
    hi = {"--usd": 1e13, "--days": 36500, "--max-gpus": 2**17, "--gpus": 2**17, "--price": 1e6, "--seq": 2**25,
          "--target-loss": 100, "--tokens-available": 1e18, "--vocab": 2**24, "--batch-tokens": 2**40}[flag]
    ints = flag in ("--max-gpus", "--gpus", "--seq", "--vocab", "--batch-tokens")
    try:
        x = int(v) if ints else float(v)
        bad = not (math.isfinite(x) and (0 <= x if flag == "--price" else 0 < x) and x <= hi)
    except ValueError:
        bad = True
    return argv, BAD if bad else ANY, {"kind": f"budget:{flag}", "check": "json-finite"}


def case_hf(rng, fx: Fixtures):
    import copy

    d = copy.deepcopy(fx.hf_data)
    key = rng.choice(["hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
                      "num_key_value_heads", "head_dim", "tie_word_embeddings", "model_type", "hidden_act"])
    d[key] = rng.choice(["4096", 4096.5, -1, True, [1], {"a": 1}, 10**30, float("nan"), "", None, 0])
    p = fx.fresh(".json")
    p.write_text(json.dumps(d))
    bad = d[key] is not None or key in ("model_type", "hidden_size", "num_attention_heads", "num_hidden_layers",
                                        "intermediate_size", "vocab_size")
    if d[key] is None and key not in ("model_type", "hidden_size", "num_attention_heads", "num_hidden_layers",
                                      "intermediate_size", "vocab_size"):
        bad = False
    if key in ("hidden_act",) and d[key] in ("",):
        bad = True
    if key == "tie_word_embeddings" and d[key] is True:
        bad = False  # a boolean field given a boolean
    return ["models", "import", p], BAD if bad else ANY, {"kind": f"hf:{key}"}


def case_points(rng, fx: Fixtures):
    kind = rng.choice(["identical", "huge", "nonfinite", "few", "text"])
    if kind == "identical":
        text = "params,tokens,loss\n" + "1e9,2e10,2.5\n" * 20
    elif kind == "huge":
        text = "params,tokens,loss\n" + "".join(f"1e{300 - i},1e{300 - i},{2 + i}\n" for i in range(10))
    elif kind == "nonfinite":
        text = "params,tokens,loss\n" + "".join(f"1e9,{v},2.5\n" for v in ("inf", "nan", "1e400", "-1"))
    elif kind == "few":
        text = "params,tokens,loss\n1e9,2e10,2.5\n"
    else:
        text = "params,tokens,loss\n" + "a,b,c\n"
    p = fx.fresh(".csv")
    p.write_text(text)
    return ["scaling", "fit", p, "--bootstrap", "5"], BAD, {"kind": f"points:{kind}"}


def case_api(rng, fx: Fixtures):
    """The Python API: hostile values raise SpecError (a PlannerError), never another exception or a result."""
    d, invalid = _mutate(VALID_PLAN, rng)
    return ("API", d), BAD if invalid else ANY, {"kind": "api"}


def case_valid_plan(rng, fx: Fixtures):
    """A random valid plan through the CLI: its JSON must keep the invariants (exit 0 or 1, or 2 for a layout the
    random draw made indivisible)."""
    model = rng.choice(["gpt3-125m", "gpt3-1.3b", "llama-3-8b", "llama-2-7b", "mixtral-8x7b", "bert-large",
                        "t5-11b", "deepseek-v2-lite", "gemma-2-9b", "qwen2-7b"])
    gpu = rng.choice(["a100-80gb", "h100-sxm", "a100-40gb"])
    tp, pp, cp = rng.choice([1, 1, 2, 4, 8]), rng.choice([1, 1, 2, 4]), rng.choice([1, 1, 2])
    dp = rng.choice([1, 2, 4, 8, 16])
    mb = rng.choice([1, 2, 4])
    gb = dp * mb * rng.choice([1, 2, 4, 8, 16])
    argv = ["estimate", "--model", model, "--gpu", gpu, "--gpus", str(tp * pp * cp * dp), "--tp", str(tp),
            "--pp", str(pp), "--cp", str(cp), "--seq", str(rng.choice([512, 1024, 2048, 4096])),
            "--micro-batch", str(mb), "--global-batch", str(gb), "--tokens", f"{rng.choice([1e9, 1e11, 1e13]):g}",
            "--price", f"{rng.choice([0.5, 2.0, 9.9]):g}", "--recompute", rng.choice(["none", "selective", "full"]),
            "--zero", str(rng.choice([0, 1, 2, 3])), "--format", "json"]
    if pp > 1 and rng.random() < 0.3:
        argv += ["--vpp", str(rng.choice([2, 4]))]
    if tp > 1 and rng.random() < 0.5:
        argv += ["--sp"]
    if rng.random() < 0.4:  # a framework's limits (exit 2 with one line when the draw breaks them)
        argv += ["--framework", rng.choice(["megatron", "deepspeed", "torchtitan", "fsdp"])]
    if pp > 1 and rng.random() < 0.3:
        argv += ["--schedule", rng.choice(["1f1b", "zb-h1"])]
    return argv, ANY, {"kind": "valid-plan", "check": "estimate-json"}


HOSTILE_NAMES = ["", " ", "a\x00b", "../../etc/passwd", "/dev/null", "/proc/self/status", "x" * 5000, "lama-7b",
                 "LLAMA-3-8B", "llama_3_8b", "\u202eevil", "h100-sxm\n", "-", "--", "nul.yaml\x00", "/",
                 "hardware_profiles/h100-sxm.yaml", "/nonexistent/p.yaml", "[x]", "{a: 1}"]


def case_names(rng, fx: Fixtures):
    """Preset, profile, scenario and path names a careless user types: errors are one line, valid names work."""
    name = rng.choice(HOSTILE_NAMES)
    which = rng.choice(["model", "gpu", "models", "hardware", "plan-path", "out-path"])
    argv = {"model": ["estimate", "--model", name, "--gpu", "h100-sxm", "--gpus", "8", "--seq", "1024",
                      "--global-batch", "8"],
            "gpu": ["estimate", "--model", "gpt3-125m", "--gpu", name, "--gpus", "8", "--seq", "1024",
                    "--global-batch", "8"],
            "models": ["models", name], "hardware": ["hardware", name], "plan-path": ["estimate", name],
            "out-path": ["plan", fx.plan, "--out", name + ".csv"]}[which]
    valid = {"model": ("LLAMA-3-8B", "llama_3_8b"), "gpu": ("hardware_profiles/h100-sxm.yaml", "h100-sxm\n"),
             "hardware": ("hardware_profiles/h100-sxm.yaml", "h100-sxm\n", "--"),
             "models": ("LLAMA-3-8B", "llama_3_8b", "--")}  # names are normalised; "--" ends the options
    if which == "out-path" or name in valid.get(which, ()):
        return argv, ANY, {"kind": f"names:{which}"}
    return argv, BAD, {"kind": f"names:{which}"}


GENERATORS = [(case_names, 6), (case_hostile_file, 14), (case_flags, 16), (case_plan_mutation, 16), (case_clobber, 8),
              (case_scaling, 10), (case_search, 6), (case_budget, 3), (case_hf, 6), (case_points, 3),
              (case_api, 8), (case_valid_plan, 10), (case_sweep_size, 0.3)]


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------

def run_api(d: dict, timeout: float) -> Outcome:
    import planner
    from planner.errors import PlannerError

    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        r = planner.estimate(dict(d))
        out = json.dumps(r.to_dict() if hasattr(r, "to_dict") else r.row, default=str)
        return Outcome(0, out, "", seconds=time.perf_counter() - t0)
    except PlannerError as e:
        return Outcome(2, "", f"error: {e}", seconds=time.perf_counter() - t0)
    except Hang:
        return Outcome(None, "", "", hang=True, seconds=timeout)
    except BaseException:  # noqa: BLE001
        return Outcome(None, "", "", exc=traceback.format_exc(), seconds=time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def judge(argv, expected, meta, o: Outcome, counts: Counter, failures: list, verbose: bool) -> None:
    problems = []
    if o.hang:
        problems.append("hang")
    elif o.exc is not None or o.code not in (0, 1, 2):
        problems.append("traceback")
    else:
        if expected == BAD and o.code != 2:
            problems.append("accepted invalid")
        if expected == OK and o.code not in (0, 1):
            problems.append("wrong exit")
        if o.code == 2 and len(error_lines(o.err)) != 1:
            problems.append("multi-line error")
        if o.code in (0, 1) and meta.get("check"):
            chk = meta["check"]
            if nonfinite_in_json(o.out):
                problems.append("invariant break")
            elif chk in ("estimate-json", "plan-json"):
                try:
                    payload = json.loads(o.out)
                    rows = payload["rows"] if chk == "plan-json" else [payload]
                    bad = [b for r in rows for b in check_estimate_row(r)]
                except (ValueError, KeyError, TypeError) as exc:
                    bad = [f"unreadable JSON ({exc})"]
                if bad:
                    problems.append("invariant break")
                    meta["why"] = bad[:3] + ([meta["input"]] if meta.get("input") else [])
    clob = meta.get("clobber")
    if clob is not None:
        target, before = clob
        after = target.read_bytes() if target.is_file() else None
        if before is not None and after != before:
            problems.append("clobbered")
    for p in problems:
        counts[p] += 1
    if problems:
        failures.append((problems, meta.get("kind"), argv, (o.exc or o.err or "")[-600:], meta.get("why")))
        if verbose:
            print(f"[{', '.join(problems)}] {meta.get('kind')}: {argv}\n    {(o.exc or o.err or '').strip()[-400:]}"
                  + (f"\n    {meta['why']}" if meta.get("why") else ""), file=sys.stderr)


def main_fuzz(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="Per-case limit, seconds (a case over it is a hang).")
    ap.add_argument("--subprocess", type=int, default=6, help="Cases also run through a real subprocess.")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    counts: Counter = Counter()
    failures: list = []
    gens = [g for g, _ in GENERATORS]
    weights = [w for _, w in GENERATORS]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="planner-fuzz-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # default output names (bench-*.yaml, *-calibrated.yaml) land here
        try:
            fx = Fixtures(Path(tmp))
            sub_every = max(1, args.cases // max(1, args.subprocess)) if args.subprocess else 0
            for i in range(args.cases):
                gen = rng.choices(gens, weights)[0]
                case_argv, expected, meta = gen(rng, fx)
                if isinstance(case_argv, tuple) and case_argv[0] == "API":
                    o = run_api(case_argv[1], args.timeout)
                elif sub_every and i % sub_every == sub_every - 1 and not any("\x00" in str(a) for a in case_argv):
                    # (a real command line cannot carry a NUL byte; such cases stay in-process)
                    o = run_subprocess(case_argv, args.timeout + 10)
                else:
                    o = run_inprocess(case_argv, args.timeout)
                judge(case_argv, expected, meta, o, counts, failures, args.verbose)
                counts["cases"] += 1
        finally:
            os.chdir(cwd)
    keys = ["traceback", "wrong exit", "multi-line error", "hang", "clobbered", "accepted invalid",
            "invariant break"]
    names = ["tracebacks", "wrong exits", "multi-line errors", "hangs", "clobbered", "accepted invalid",
             "invariant breaks"]
    if failures and not args.verbose:
        for problems, kind, a, tail, why in failures[:15]:
            print(f"[{', '.join(problems)}] {kind}: {a}\n    {tail.strip()[-300:]}" + (f"\n    {why}" if why else ""),
                  file=sys.stderr)
    print(f"fuzz: {counts['cases']} cases seed {args.seed} in {time.perf_counter() - t0:.0f}s: "
          + ", ".join(f"{n} {counts[k]}" for k, n in zip(keys, names)))
    return 1 if any(counts[k] for k in keys) else 0


if __name__ == "__main__":
    sys.exit(main_fuzz())
