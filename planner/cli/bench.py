"""`planner bench` and `planner calibrate`: measure the local accelerator, fit the time model's curves from it.

Registered by ``planner/cli/__init__.py`` as ``bench`` and ``calibrate``.
Files are written where ``--out`` says; messages and the progress bar go to stderr; the summary table (or JSON
with ``--format json``) to stdout. Exit codes: 0 done; 1 a fit that failed or found nothing to fit; 2 bad input,
including a missing PyTorch for ``bench`` (one line saying ``pip install 'planner[bench]'``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer

from .. import report
from ..errors import SpecError
from .common import FORMAT_OPT, Fmt, emit, note

SECTIONS = ("gemm", "attention", "memory", "collectives")


def _split(flag: str, text: Optional[str], allowed: tuple[str, ...]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise SpecError(f"{flag} {text!r}: expected a comma-separated list of {', '.join(allowed)}")
    return vals


def _summary(bench) -> list[dict]:
    rows = []
    for dt in sorted({g.dtype for g in bench.gemm}):
        best = max((g for g in bench.gemm if g.dtype == dt), key=lambda g: g.flop_per_s)
        rows.append({"measurement": f"gemm {dt} best", "value": f"{best.flop_per_s / 1e12:.4g} TFLOP/s",
                     "at": f"{best.m}x{best.n}x{best.k}" if best.m else "-",
                     "count": sum(g.dtype == dt for g in bench.gemm)})
    for be in sorted({a.backend for a in bench.attention}):
        best = max((a for a in bench.attention if a.backend == be), key=lambda a: a.flop_per_s)
        rows.append({"measurement": f"sdpa {be} best", "value": f"{best.flop_per_s / 1e12:.4g} TFLOP/s",
                     "at": f"s={best.seq} {'causal' if best.causal else 'full'} {best.direction}",
                     "count": sum(a.backend == be for a in bench.attention)})
    for op in ("copy", "add"):
        rs = [m for m in bench.memory if m.op == op]
        if rs:
            best = max(rs, key=lambda m: m.bytes_per_s)
            rows.append({"measurement": f"memory {op} best", "value": f"{best.bytes_per_s / 1e9:.4g} GB/s",
                         "at": f"{best.bytes / 2**20:.0f} MiB", "count": len(rs)})
    for op in sorted({c.op for c in bench.collectives}):
        rs = [c for c in bench.collectives if c.op == op]
        best = max(rs, key=lambda c: c.busbw_bytes_per_s)
        rows.append({"measurement": f"{op} busbw best", "value": f"{best.busbw_bytes_per_s / 1e9:.4g} GB/s",
                     "at": f"{best.world_size} ranks" + (f", {best.bytes / 2**20:.0f} MiB" if best.bytes else ""),
                     "count": len(rs)})
    for s in bench.skipped:
        rows.append({"measurement": f"skipped: {s.what}", "value": "-", "at": s.reason, "count": 0})
    return rows


def bench_command(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="BENCH YAML to write ('-' for stdout; default "
                                       "bench-<device>-<date>.yaml)."),
    quick: bool = typer.Option(False, "--quick", help="A small sweep with short repeats (about a minute)."),
    time_budget_s: float = typer.Option(300.0, "--time-budget-s", min=1.0,
                                        help="Stop measuring after this many seconds; what is left is listed as "
                                        "skipped."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Add this model preset's per-GPU GEMM shapes."),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel degree for the model's GEMM shapes."),
    seq: int = typer.Option(2048, "--seq", min=1, help="Sequence length for the model's GEMM shapes, tokens."),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, help="Micro-batch for the model's shapes, sequences."),
    device: str = typer.Option("auto", "--device", help="auto (cuda if available, else cpu), cuda or cpu."),
    dtypes: Optional[str] = typer.Option(None, "--dtypes", help="GEMM dtypes, e.g. bf16,fp8 (default: bf16,fp16,fp8 "
                                         "on CUDA, fp32,bf16 on CPU)."),
    only: Optional[str] = typer.Option(None, "--only", help="Sections to run: gemm,attention,memory,collectives."),
    published: Optional[str] = typer.Option(None, "--published", help="Instead of measuring, convert this "
                                            "accelerator's published microbenchmarks (e.g. H100_SXM; 'list' lists "
                                            "them) to a BENCH file. Needs no PyTorch."),
    cpu_ranks: int = typer.Option(0, "--cpu-ranks", hidden=True, help="Run the collectives on N gloo CPU ranks "
                                  "(tests the multi-process path without GPUs)."),
    force: bool = typer.Option(False, "--force", help="Let --out overwrite a file planner did not write."),
    fmt: Fmt = FORMAT_OPT,
):
    """Measure GEMM, attention, memory and collective throughput on the local accelerator and write a BENCH YAML
    with its provenance; then `planner calibrate BENCH.yaml --into PROFILE`. Needs PyTorch
    (pip install 'planner\\[bench]')."""
    from ..calibrate.bench import BenchOptions, default_out_name, dump_bench, run_bench
    from ..io.files import check_writable, write_text_file

    to_stdout = out is not None and str(out) == "-"
    if out is not None and not to_stdout:
        check_writable(out, force)  # before minutes of measuring, not after
    if not (1 <= tp <= 4096 and 1 <= seq <= 2**24 and 1 <= micro_batch <= 65536 and 0 <= cpu_ranks <= 64):
        raise SpecError(f"--tp {tp}, --seq {seq}, --micro-batch {micro_batch}: out of range (tp 1-4096, seq "
                        f"1-{2**24:,}, micro-batch 1-65,536)")
    if not math.isfinite(time_budget_s) or time_budget_s > 7 * 86400:
        raise SpecError(f"--time-budget-s: {time_budget_s} (a finite number of seconds, at most a week)")
    if published is not None:
        from ..calibrate.published import PROFILE_OF, published_bench, published_keys

        if published == "list":
            rows = [{"accelerator": k, "profile": PROFILE_OF.get(k, "")} for k in published_keys()]
            emit(fmt, rows, rows=rows, table=report.rows_table("published microbenchmarks", rows,
                                                                ["accelerator", "profile"]))
            return
        bench = published_bench(published)
    else:
        if device not in ("auto", "cuda", "cpu"):
            raise SpecError(f"--device {device!r}: expected auto, cuda or cpu")
        opts = BenchOptions(device=device, quick=quick, time_budget_s=time_budget_s, model=model, tp=tp, seq=seq,
                            micro_batch=micro_batch, dtypes=_split("--dtypes", dtypes, ("fp32", "bf16", "fp16", "fp8")),
                            sections=_split("--only", only, SECTIONS) or SECTIONS, cpu_ranks=cpu_ranks)
        if model:
            from ..registry import load_model

            load_model(model)  # an unknown preset is bad input before anything is measured
        bench = run_bench(opts, show_progress=sys.stderr.isatty())
    text = dump_bench(bench)
    if to_stdout:
        sys.stdout.write(text)
        return
    path = write_text_file(out or Path(default_out_name(bench)), text, force=force)
    rows = _summary(bench)
    payload = {"out": str(path), "device": bench.provenance.device_name, "elapsed_s": bench.provenance.elapsed_s,
               "summary": rows}
    emit(fmt, payload, rows=rows, table=report.rows_table(f"{bench.provenance.device_name} -> {path}", rows,
                                                           ["measurement", "value", "at", "count"]))
    note(f"wrote {path}; next: planner calibrate {path} --into PROFILE")


def calibrate_command(
    bench_file: Path = typer.Argument(..., help="BENCH YAML written by `planner bench`.", metavar="BENCH.yaml"),
    into: str = typer.Option(..., "--into", help="Hardware profile (name, alias or path) whose peaks the fractions "
                             "are taken against and whose data the calibrated profile copies."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Profile YAML to write (default "
                                       "<profile>-calibrated.yaml)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the new profile (default <profile>-calibrated)."),
    only: list[str] = typer.Option([], "--only", help="Write only these parameters (repeatable): matmul_fraction, "
                                   "gemm_half_dim, attention_fraction, attention_fraction_flash3, hbm_fraction, "
                                   "nvlink_busbw_fraction. The two attention fractions keep their SDPA backend's "
                                   "per-length attention curve (flash2, flash3)."),
    force: bool = typer.Option(False, "--force", help="Let --out overwrite a file planner did not write."),
    fmt: Fmt = FORMAT_OPT,
):
    """Fit the time model's efficiency curves from a BENCH file and write a profile that
    `planner estimate --gpu PROFILE.yaml` uses."""
    from ..calibrate.curves import calibrate, compare
    from ..registry import load_hardware

    from ..io.files import check_writable

    if out is not None:
        check_writable(out, force)
    path, fit, data = calibrate(bench_file, into, out=out, name=name, only=only or None, force=force)
    for w in fit.warnings:
        note(w)
    rows = compare(fit, load_hardware(into))
    payload = {"out": str(path), "profile": data["name"], "fitted": rows, "not_fitted": fit.not_fitted,
               "warnings": list(fit.warnings), "attention_kernels": fit.attention_curves}
    for kernel, c in fit.attention_curves.items():
        note(f"attention curve {kernel} ({c['kernel']}): {len(c['seq_tokens'])} lengths, {c['seq_tokens'][0]}-"
             f"{c['seq_tokens'][-1]} tokens, forward {min(c['fwd_tflop_per_s']):.0f}-{max(c['fwd_tflop_per_s']):.0f}"
             f" TFLOP/s, backward {min(c['bwd_tflop_per_s']):.0f}-{max(c['bwd_tflop_per_s']):.0f}: the time model "
             f"reads it for {kernel} on this profile")
    shown = [{"key": r["key"] + (" (AT BOUND)" if r["at_bound"] else ""), "fitted": f"{r['fitted']:.4g}",
              "profile": "-" if r["profile"] is None else f"{r['profile']:.4g}",
              "change": "-" if r["change_pct"] is None else f"{r['change_pct']:+.1f}%"} for r in rows]
    emit(fmt, payload, rows=rows, table=report.rows_table(f"{data['name']} -> {path}", shown,
                                                           ["key", "fitted", "profile", "change"]))
    note(f"wrote {path}; use it with: planner estimate --gpu {path} ...")
