"""Every command in README.md runs (issue 13): each line of its ``bash`` code blocks, and its ``python`` block, in
a temporary copy of the repository, with that copy's package first on the path (so nothing the commands write
lands in the checkout).

Skipped, each with its reason: ``pip install`` (the command after ``&&`` runs; installing would re-point the
editable install), the test suite itself, lines that need PyTorch when it is absent, and ``fit-time --write``
(two minutes of fitting) and ``validate --cross-validate`` (tests/test_accuracy.py runs it) unless
``PLANNER_README_SLOW=1``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".pytest_cache", "build", "dist")


def blocks(lang: str) -> list[str]:
    """The bodies of the README's fenced code blocks in ``lang``."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def shell_lines() -> list[str]:
    return [ln.strip() for b in blocks("bash") for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]


def _command(line: str) -> tuple[str | None, str]:
    """(command to run or None, why it is skipped)."""
    if "pip install" in line:
        rest = line.split("&&", 1)[1].strip() if "&&" in line else ""
        if not rest:
            return None, "installs a package"
        if "pytest" in rest:
            return None, "runs this test suite itself"
        line = rest
    if re.search(r"planner (bench|calibrate)\b", line) and importlib.util.find_spec("torch") is None:
        return None, "needs PyTorch (pip install -e '.[bench]')"
    if "fit-time --write" in line and not os.environ.get("PLANNER_README_SLOW"):
        return None, "two minutes of fitting; set PLANNER_README_SLOW=1 to run it"
    if "--cross-validate" in line and not os.environ.get("PLANNER_README_SLOW"):
        return None, "seven refits (minutes); tests/test_accuracy.py runs the same cross-validation"
    return line, ""


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("readme") / "repo"
    shutil.copytree(ROOT, dst, ignore=IGNORE)
    return dst


def _env(copy: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PLANNER_PROFILES", "COLUMNS")}
    env["PYTHONPATH"] = os.pathsep.join([str(copy), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HOME"] = str(copy.parent)
    env["MPLBACKEND"] = "Agg"
    return env


def test_readme_has_commands():
    lines = shell_lines()
    assert len(lines) >= 12 and any(ln.startswith("planner estimate") for ln in lines)
    assert not any("planner[bench]" in ln for ln in README.read_text().splitlines()), \
        "the package named planner on PyPI is another project: install the bench extra from the clone"


@pytest.mark.parametrize("line", shell_lines(), ids=lambda s: s.split("#")[0].strip()[:70])
def test_readme_command_runs(line, copy):
    cmd, why = _command(line)
    if cmd is None:
        pytest.skip(why)
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=copy, env=_env(copy),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd}\nexit {proc.returncode}\nstderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip() or "wrote" in proc.stderr


@pytest.mark.parametrize("code", blocks("python"))
def test_readme_python_runs(code, copy):
    proc = subprocess.run([sys.executable, "-c", code], cwd=copy, env=_env(copy), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---- the README's example outputs (```text blocks that start with `$ planner ...`) ----

NUMBER = re.compile(r"[-+]?\$?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")
#: Relative difference allowed between a number in the README and the command's output (a refit moves the last
#: digit; a stale excerpt moves more).
README_RTOL = 0.01


def excerpts() -> list[tuple[str, list[str]]]:
    """(command, table rows) of each example output in the README."""
    out = []
    for b in blocks("text"):
        lines = b.splitlines()
        if lines and lines[0].startswith("$ planner "):
            cmd = re.split(r"\s{2,}", lines[0][2:])[0]
            out.append((cmd, [ln for ln in lines[1:] if ln.startswith("│")]))
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("│")[1:-1]]


def _number(text: str):
    m = NUMBER.fullmatch(text.replace("$", "").split(" ")[0].rstrip("%MBTk")) if text else None
    return float(m.group(0).replace(",", "")) if m else None


def _same(want: str, got: str) -> bool:
    if want == got:
        return True
    a, b = _number(want), _number(got)
    return a is not None and b is not None and want.split(" ")[-1] == got.split(" ")[-1] and \
        abs(a - b) <= README_RTOL * max(abs(a), abs(b))


@pytest.mark.parametrize("cmd,rows", excerpts(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_excerpt_matches_the_command(cmd, rows, copy):
    """Each row of an example output is a row of the command's output, numbers within README_RTOL."""
    proc = subprocess.run(["bash", "-c", cmd + " --wide"], cwd=copy, env=_env(copy), capture_output=True,
                          text=True, timeout=300)
    got = {}
    for line in proc.stdout.splitlines():
        cells = _cells(line.replace("┃", "│"))
        if cells:
            got[cells[0]] = cells
    stale = []
    for line in rows:
        want = _cells(line)
        have = got.get(want[0])
        if have is None or len(have) != len(want) or not all(_same(w, h) for w, h in zip(want, have)):
            stale.append(f"README: {' | '.join(want)}\n   now: {' | '.join(have or ['(no such row)'])}")
    assert not stale, (f"README.md's output of `{cmd}` is stale (regenerate it: python tests/test_readme.py "
                       "--regenerate):\n" + "\n".join(stale))


def regenerate(readme: Path = README) -> int:
    """Rewrite each example-output row of the README from the command's output now (text after a row, such as
    a remark beside it, is kept). Returns how many rows changed."""
    text, changed = readme.read_text(), 0
    for cmd, rows in excerpts():
        proc = subprocess.run(["bash", "-c", cmd + " --wide"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "COLUMNS": "200"})
        got = {}
        for line in proc.stdout.splitlines():
            cells = _cells(line.replace("┃", "│"))
            if cells:
                got[cells[0]] = line.replace("┃", "│").rstrip()
        for row in rows:
            key = _cells(row)[0]
            if key in got:
                table_part = row[:row.rindex("│") + 1]
                new = got[key] + row[row.rindex("│") + 1:]
                if table_part != got[key]:
                    text = text.replace(row, new, 1)
                    changed += 1
    readme.write_text(text)
    return changed


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        print(f"{regenerate()} README rows rewritten from the commands' output")


def test_llama_405b_sentence_is_what_the_model_predicts():
    """The README's out-of-sample Llama 3.1 405B figures (TFLOP/s per GPU, flash2 to flash3 kernels, 8,192 and
    16,384 H100) are the estimates of that layout, not numbers typed once and left to drift."""
    import re

    import planner
    from planner.core.estimate import estimate

    text = " ".join(README.read_text().split())
    m = re.search(r"planner predicts (\d+) \(flash2\) to (\d+) \(flash3\) with 4 virtual stages, and (\d+)-(\d+) "
                  r"against 400 on 16,384 GPUs", text)
    assert m, "README's Llama 3.1 405B sentence changed shape"
    said = [int(x) for x in m.groups()]
    got, mem = [], []
    for gpus in (8192, 16384):
        for kernel in ("flash2", "flash3"):
            plan = planner.make_plan(model="llama-3.1-405b", hardware="h100-sxm",
                                     run={"seq_len": 8192, "global_batch_seqs": 2048, "micro_batch": 1},
                                     layout={"gpus": gpus, "tp": 8, "pp": 16, "vpp": 4, "sequence_parallel": True,
                                             "zero_stage": 1, "recompute": "selective", "attention_kernel": kernel})
            ev = estimate(plan).evaluation
            got.append(round(float(ev.throughput.model_tflop_per_s_per_gpu)))
            mem.append((float(ev.memory.total_bytes) / 2**30, float(ev.memory.allocated_bytes) / 2**30))
    assert said == got
    assert f"that layout needs ~{mem[0][0]:.0f} GiB per GPU on 8,192 GPUs" in text
    assert f"where interleaving holds no more than 1F1B) {mem[2][1]:.0f} GiB of tensors" in text


def _readme_text() -> str:
    return " ".join(README.read_text().split())


def test_deepspeed_zero3_floor_figures_are_the_measured_runs():
    """The README's analysis of Narayanan et al. 2021 Table 2's ZeRO-3 rows: each run's step time (global batch
    tokens / GPUs / measured tokens/s per GPU), the floor at the two largest counts, its ratio against the
    parameter ratio, parameters per second, and the per-GPU traffic of three fp16 gathers and one fp16
    reduce-scatter (8 bytes per parameter) at that rate; and their in-sample misses."""
    from planner.calibrate.measured import load_runs
    from planner.calibrate.validate import validate

    runs = {r.id: r for r in load_runs()[0] if r.id.startswith("ptdp_t2_ZeRO-3")}
    params = {"174.6B": 174.6e9, "529.6B": 529.6e9}

    def step_s(r):
        return r.run.global_batch_seqs * r.run.seq_len / r.gpus / r.measured_tokens_per_s_per_gpu

    floors = {}
    for size, counts in (("174.6B", (768, 1536)), ("529.6B", (1120, 2240))):
        floors[size] = sum(step_s(runs[f"ptdp_t2_ZeRO-3_{size}_{g}gpu"]) for g in counts) / 2
    rate = [params[s] / floors[s] for s in params]
    text = _readme_text()
    assert f"levels off at ~{floors['174.6B']:.0f} s (175B, 768 and 1,536 GPUs) and ~{floors['529.6B']:.0f} s" in text
    assert (f"({floors['529.6B'] / floors['174.6B']:.1f}x for {params['529.6B'] / params['174.6B']:.1f}x), at "
            f"~{sum(rate) / 2 / 1e9:.1f}e9 parameters per second") in text
    assert f"that is ~{8 * sum(rate) / 2 / 1e9:.0f} GB/s per GPU" in text
    errs = sorted(1 + r["error_pct"] / 100 for r in validate()["runs"] if r["id"] in runs)
    assert f"are predicted {errs[0]:.1f}-{errs[-1]:.1f}x too fast (in sample)" in text


def test_fsdp_shard_group_figures_are_the_in_sample_errors():
    from planner.calibrate.validate import validate

    err = {r["id"]: r["error_pct"] for r in validate()["runs"]}
    e = [err[f"foundry_h100_80gb_amp_bf16_7b_seq2048_{g}gpu_largescale"] for g in (256, 512)]
    assert f"H100 7B: +{e[0]:.0f}% at 256 GPUs, +{e[1]:.0f}% at 512, with the slowdown" in _readme_text()


def test_ring_latency_figures_are_ncclss_model():
    from planner.core.comm import ring_latency_s

    text = _readme_text()
    assert (f"~{ring_latency_s(512, 64, 'LL128') * 1e3:.1f} ms per collective over 512 GPUs and "
            f"~{ring_latency_s(16384, 2048, 'LL128') * 1e3:.0f} ms over 16,384; small messages take LL, "
            f"~{ring_latency_s(16384, 2048, 'LL') * 1e3:.0f} ms at 16,384") in text


def test_h200_microbenchmark_figures_are_the_committed_measurements():
    """The README's paragraphs on our H200 measurements: the sustained ratios and clocks, the table against the
    sustained loop, the layer errors at the prior and at the fit, and the not-adopted measured-only Hopper model
    (its median error, and with the sustained fraction on top), each recomputed from the committed files."""
    import dataclasses

    import numpy as np
    import yaml

    from helpers import load_benchmark
    from planner.calibrate.fit import generation_of, tokens_per_s_per_gpu
    from planner.calibrate.measured import load_runs
    from planner.calibrate.priors import gemm_half_dim_prior
    from planner.calibrate.validate import modelable, plan_of
    from planner.core.efficiency import time_params
    from planner.core.layout import exec_from_spec

    text = _readme_text()
    bench = ROOT / "hardware_profiles" / "benches"
    runs = yaml.safe_load((bench / "h200-sustained.yaml").read_text())["runs"]
    gemm = sorted(r["sustained_over_burst"] for r in runs if r["workload"] == "gemm")
    layer = sorted(r["sustained_over_burst"] for r in runs if r["workload"] == "layer")
    assert f"keeps {gemm[0]:.2f}-{gemm[-1]:.2f} of its first pass's throughput" in text
    assert f"forward and backward, {layer[0]:.2f}-{layer[-1]:.2f}" in text
    late = [s for r in runs for s in r["series"] if s["t_s"] > 10]
    lo, hi = min(s["sm_clock_mhz"] for s in late), max(s["sm_clock_mhz"] for s in late)
    assert f"1,980 MHz falls to {lo:,.0f}-{hi:,.0f} MHz" in text
    loop = next(r for r in runs if r["label"].startswith("gemm mpt-7b"))
    from planner.calibrate.bench import load_bench

    table = {(r.m, r.n, r.k): r.time_s for r in load_bench(bench / "h200-run-shapes.yaml").gemm if r.dtype == "bf16"}
    both = [g for g in loop["gemms"] if (g["m"], g["n"], g["k"]) in table]
    rate = sum(2.0 * g["m"] * g["n"] * g["k"] for g in both) / sum(table[(g["m"], g["n"], g["k"])] for g in both)
    assert (f"({rate / 1e12:.0f} vs {loop['sustained']['median_flop_per_s'] / 1e12:.0f} TFLOP/s; the first pass after "
            f"an idle wait ran at {loop['burst']['first_pass_flop_per_s'] / 1e12:.0f})") in text

    doc = yaml.safe_load((bench / "h200-layers.yaml").read_text())
    lb = load_benchmark("layer_bench")
    prior = gemm_half_dim_prior("hopper").value
    at_prior = np.array([r["error"] for r in lb.compare_rows(doc, "h200", prior)])
    at_fit = np.array([r["error"] for r in lb.compare_rows(doc, "h200")])
    assert f"is {-at_prior.max() * 100:.0f}-{-at_prior.min() * 100:.0f}% fast on every one" in text
    assert f"(median {np.median(np.abs(at_prior)) * 100:.1f}%)" in text
    assert f"within {np.ceil(np.abs(at_fit).max() * 10) * 10:.0f}% of each (median {np.median(np.abs(at_fit)) * 100:.1f}%" in text

    hopper = [r for r in modelable(load_runs()[0])[0]
              if r.measured_tokens_per_s_per_gpu and generation_of(r) == "hopper"]
    errs = {}
    for label, kw in (("fit", {}), ("prior", {"gemm_half_dim": prior}),
                      ("prior+sustained", {"gemm_half_dim": prior, "sustained": 0.90})):
        e = []
        for r in hopper:
            p = plan_of(r)
            eff = time_params(p.hardware, p.run.precision)
            if kw:
                eff = eff.replace(gemm_half_dim=kw["gemm_half_dim"])
            if "sustained" in kw:  # the experiment: every GEMM and attention rate times the sustained fraction
                s = kw["sustained"]
                eff = eff.replace(matmul_fraction=eff.matmul_fraction * s,
                                  matmul_fraction_bf16=eff.matmul_fraction_bf16 * s)
                hw = p.hardware.model_copy(update={"attention_kernels": {
                    k: c.model_copy(update={"peak_tflop_per_s": c.peak_tflop_per_s / s})
                    for k, c in p.hardware.attention_kernels.items()}})
                p = dataclasses.replace(p, hardware=hw)
            e.append(tokens_per_s_per_gpu(p, exec_from_spec(p.layout, p.run), eff) / r.measured_tokens_per_s_per_gpu - 1)
        errs[label] = np.array(e)
    med = {k: np.median(np.abs(v)) * 100 for k, v in errs.items()}
    assert (f"(in sample: {med['fit']:.1f}% with the half dimension fitted on them) rises to {med['prior']:.1f}% "
            f"with nothing fitted") in text
    assert f"predicted {np.median(errs['prior']) * 100:.0f}% fast on the median" in text
    assert f"gives {med['prior+sustained']:.1f}%, but that counts the power cap twice" in text


def test_fsdp2_copy_out_share_is_the_torchtitan_runs():
    """The README's share of the torchtitan A100 steps FSDP2 spends copying gathered weights (time.fsdp2_copy_out_s)."""
    from planner.calibrate.measured import load_runs
    from planner.calibrate.validate import modelable, plan_of
    from planner.core.kernels import rates_of
    from planner.core.layout import exec_from_spec
    from planner.core.memory import activation_bytes_per_element
    from planner.core.time import fsdp2_copy_out_s, step_time

    shares = []
    for run in modelable(load_runs()[0])[0]:
        if run.source_key == "torchtitan":
            p = plan_of(run)
            ex = exec_from_spec(p.layout, p.run)
            r = rates_of(p.hardware, p.run, activation_bytes_per_element(p.run))
            shares.append(float(fsdp2_copy_out_s(p.model, p.run, ex, r))
                          / float(step_time(p.model, p.run, ex, p.hardware).step_time_s))
    assert len(shares) == 8
    assert f"{min(shares) * 100:.1f}-{max(shares) * 100:.1f}% of these steps" in _readme_text()


def test_overlap_slowdown_figures_are_the_model_constants():
    """The README's hidden-communication paragraph quotes the constants time.overlap_s and tp_exposed_s use."""
    from planner.core.efficiency import TimeParams
    from planner.core.time import NCCL_OVERLAP_SMS, TE_USERBUFFER_SMS

    text = _readme_text()
    assert f"runs {TimeParams().overlap_compute_slowdown * 100:.1f}% slower for that time" in text
    assert f"({NCCL_OVERLAP_SMS:.0f} of an H100's 132 in an FSDP prefetch trace)" in text
    assert (f"hold {TE_USERBUFFER_SMS:g} SMs on average by their defaults (1 for copy-engine ring exchanges, 16 for "
            f"the others), so the TP traffic they hide costs {TE_USERBUFFER_SMS:g}/{NCCL_OVERLAP_SMS:.0f}") in text


def test_layer_microbench_figures_are_the_model_against_table_4():
    """The README's Korthikanti Table 4 sentence: the baseline's backward and sum errors as the layer model gives
    them (tests/test_layer_microbench.py holds the bounds)."""
    from test_layer_microbench import SETTINGS, _rows, layer_ms

    row = next(r for r in _rows() if r["experiment"] == "baseline no recompute")
    fwd, bwd = layer_ms(*SETTINGS[row["experiment"]])
    said = (f"its backward is {100 * (bwd / row['backward_ms'] - 1):.1f}% slow and its sum "
            f"{100 * ((fwd + bwd) / row['combined_ms'] - 1):.1f}%")
    assert said in _readme_text(), said


def test_memory_figures_are_the_validation_output():
    """The README's memory paragraph: run count, median and p90 as `planner validate` prints them, and the two
    GPT2-XL rows and the worst miss as it predicts them."""
    from planner.calibrate.validate import validate

    check = validate()["memory_check"]
    by = {r["id"]: r["memory_error_pct"] for r in check["measured_runs"]}
    text = _readme_text()
    assert f"Memory: {check['measured_n']} public runs measured it" in text
    assert (f"median |error| {check['measured_median_abs_pct_error']:.1f}%, "
            f"p90 {check['measured_p90_abs_pct_error']:.1f}%") in text
    assert f"torch AMP reads {by['colossalai_lightning_a100_40gb_gpt2xl_ddp_amp']:.0f}%" in text
    assert f"read +23% (now {by['colossalai_lightning_a100_40gb_gpt2xl_deepspeed_zero3']:.0f}%)" in text
    piped = [abs(v) for k, v in by.items() if k.startswith("torchtitan_h100_mem_405b")]
    assert all(v < 0 for k, v in by.items() if k.startswith("torchtitan_h100_mem_405b"))
    assert f"pipelined ones are predicted {min(piped):.0f}-{max(piped):.0f}% low" in text
    worst = min(by, key=lambda k: by[k])
    assert worst == "torchtitan_h100_mem_70b_2d" and f"FSDP + TP run, {by[worst]:.0f}%" in text
    assert f"1 of {check['runs']} is predicted not to fit" in text


def test_attention_split_ratios_are_the_kernel_files():
    """The README's forward/backward ratios (FlashAttention-2 from 512 tokens to 16k, Triton) are those the Ampere
    kernel curves carry, not numbers typed once."""
    from planner.registry import load_hardware

    curves = load_hardware("a100-80gb").attention_kernels
    fa2, triton = curves["flash2"].fwd_over_bwd_rate, curves["triton"].fwd_over_bwd_rate
    assert len(set(triton)) == 1
    assert (f"FlashAttention-2: our H200 bench, {fa2[0]:.1f} at 512 tokens to {fa2[-1]:.1f} at 16k; Triton: its A100 "
            f"regression test, {triton[0]:.2f})") in _readme_text()
