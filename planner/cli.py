"""The `planner` command line. Thin: parse flags, call the core, render. Data on stdout, messages on stderr.

Exit codes: 0 success; 1 a valid plan that does not fit (or a fit that failed); 2 bad input (one line on stderr
naming the field and values, no traceback).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

# Usage errors (unknown option, bad value) are click exceptions. Recent typer vendors click (typer._click) and no
# longer installs click itself; older typer uses click. Catch whichever is there, both when both are.
_USAGE_ERRORS: tuple = ()
try:
    from typer._click.exceptions import ClickException as _VendoredClickException

    _USAGE_ERRORS += (_VendoredClickException,)
except ImportError:  # pragma: no cover - typer without a vendored click
    pass
try:
    from click import ClickException as _ClickException

    _USAGE_ERRORS += (_ClickException,)
except ImportError:  # pragma: no cover - typer that vendors click
    pass
from pydantic import ValidationError
from rich.markup import escape

from . import report
from .errors import EXIT_BAD_INPUT, EXIT_INFEASIBLE, PlannerError, SpecError, format_validation_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Plan language-model training: parameters, FLOPs, memory per GPU, and whether it fits.",
    pretty_exceptions_enable=False,
)


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FORMAT_OPT = typer.Option(Fmt.table, "--format", "-f", help="Output: table (people), json or csv (programs).")


def _error(msg: str) -> None:
    """One line on stderr; the message is escaped so text like [x] is printed as it is."""
    report.stderr_console().print(f"[red]error:[/red] {escape(str(msg))}", highlight=False)


def _note(msg: str) -> None:
    report.stderr_console().print(f"[dim]note:[/dim] {escape(msg)}", highlight=False)


def _emit(fmt: Fmt, payload, rows=None, table=None) -> None:
    """Write ``payload`` as JSON, ``rows`` as CSV, or ``table`` (rich) to stdout."""
    if fmt == Fmt.json:
        sys.stdout.write(report.to_json(payload) + "\n")
    elif fmt == Fmt.csv:
        sys.stdout.write(report.to_csv(rows if rows is not None else [payload]))
    else:
        report.stdout_console().print(table)


# Flags of `estimate` and the plan field each one sets. One table, so flags and plan files cannot drift.
FLAG_FIELDS = {
    "model": "model", "gpu": "hardware",
    "gpus": "layout.gpus", "dp": "layout.dp", "tp": "layout.tp", "pp": "layout.pp", "cp": "layout.cp",
    "ep": "layout.ep", "vpp": "layout.vpp", "zero": "layout.zero_stage", "fsdp": "layout.fsdp",
    "sp": "layout.sequence_parallel", "recompute": "layout.recompute", "flash": "layout.flash_attention",
    "recompute_fraction": "layout.recompute_fraction", "attention_kernel": "layout.attention_kernel",
    "tp_overlap": "layout.tp_comm_overlap",
    "offload": "layout.offload_optimizer",
    "seq": "run.seq_len", "global_batch": "run.global_batch_seqs", "global_batch_tokens": "run.global_batch_tokens",
    "micro_batch": "run.micro_batch", "tokens": "run.training_tokens", "precision": "run.precision",
    "optimizer": "run.optimizer", "price": "schedule.price_usd_per_gpu_hour",
}


def build_plan(plan_file: Optional[Path], flags: dict):
    """A validated Plan from an optional plan file and flag overrides (flags win)."""
    from .io.plan import read_plan_data, set_path
    from .plans import plan_from_dict

    given = {k: v for k, v in flags.items() if v is not None}
    if plan_file is not None:
        data, lines = read_plan_data(plan_file)
    else:
        data, lines = {}, {}
        if "model" not in given:
            raise SpecError("give a PLAN file or --model NAME (see `planner models`)")
        if "gpu" not in given:
            raise SpecError("give a PLAN file or --gpu PROFILE (see `planner hardware`)")
        if "seq" not in given:
            _note("--seq not given; using seq_len 2048")
            given["seq"] = 2048
    # A flag that sets one side of a pair drops the other side from the file, so they cannot disagree.
    if "gpus" in given and isinstance(data.get("layout"), dict):
        data["layout"].pop("dp", None)
    if "dp" in given and isinstance(data.get("layout"), dict):
        data["layout"].pop("gpus", None)
    if ("global_batch" in given or "global_batch_tokens" in given) and isinstance(data.get("run"), dict):
        data["run"].pop("global_batch_seqs", None)
        data["run"].pop("global_batch_tokens", None)
    for k, v in given.items():
        set_path(data, FLAG_FIELDS[k], v.value if isinstance(v, Enum) else v)
    data.setdefault("layout", {})
    data.setdefault("run", {})
    return plan_from_dict(data, plan_file, lines)


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class FSDP(str, Enum):
    none = "none"
    full = "full"
    hybrid = "hybrid"


class AttnKernel(str, Enum):
    flash2 = "flash2"
    flash3 = "flash3"


class Precision(str, Enum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"


class Optim(str, Enum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"
    adafactor = "adafactor"
    adam8bit = "adam8bit"


@app.command()
def estimate(
    plan_file: Optional[Path] = typer.Argument(None, help="Plan YAML (model, run, layout, hardware).",
                                               metavar="[PLAN.yaml]"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model preset name."),
    gpu: Optional[str] = typer.Option(None, "--gpu", "-g", help="Hardware profile name."),
    gpus: Optional[int] = typer.Option(None, help="GPUs in the job."),
    dp: Optional[int] = typer.Option(None, help="Data-parallel degree."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel degree."),
    pp: Optional[int] = typer.Option(None, help="Pipeline-parallel degree."),
    cp: Optional[int] = typer.Option(None, help="Context-parallel degree."),
    ep: Optional[int] = typer.Option(None, help="Expert-parallel degree."),
    vpp: Optional[int] = typer.Option(None, help="Virtual pipeline stages per GPU."),
    zero: Optional[int] = typer.Option(None, help="ZeRO stage 0-3."),
    fsdp: Optional[FSDP] = typer.Option(None, help="FSDP sharding: none, full, hybrid."),
    sp: Optional[bool] = typer.Option(None, "--sp/--no-sp", help="Sequence parallelism (with TP)."),
    recompute: Optional[Recompute] = typer.Option(None, help="Activation recomputation."),
    flash: Optional[bool] = typer.Option(None, "--flash/--no-flash", help="FlashAttention."),
    recompute_fraction: Optional[float] = typer.Option(
        None, help="With --recompute full: share of layers recomputed (Megatron block method)."),
    attention_kernel: Optional[AttnKernel] = typer.Option(None, help="Fused attention kernel: flash2 or flash3."),
    tp_overlap: Optional[bool] = typer.Option(None, "--tp-overlap/--no-tp-overlap",
                                              help="Overlap TP collectives with GEMMs."),
    offload: Optional[bool] = typer.Option(None, "--offload/--no-offload", help="Optimizer state in CPU memory."),
    seq: Optional[int] = typer.Option(None, help="Sequence length, tokens."),
    global_batch: Optional[int] = typer.Option(None, help="Global batch, sequences."),
    global_batch_tokens: Optional[int] = typer.Option(None, help="Global batch, tokens."),
    micro_batch: Optional[int] = typer.Option(None, help="Micro-batch, sequences."),
    tokens: Optional[float] = typer.Option(None, help="Training tokens in total."),
    precision: Optional[Precision] = typer.Option(None, help="Training precision."),
    optimizer: Optional[Optim] = typer.Option(None, help="Optimizer."),
    price: Optional[float] = typer.Option(None, help="Price per GPU-hour, USD (overrides the profile)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the memory and step-time breakdowns "
                                        "(PNG or SVG)."),
    force: bool = typer.Option(False, "--force", help="Let --plot overwrite a file planner did not write."),
    fmt: Fmt = FORMAT_OPT,
):
    """Parameters, FLOPs, memory per GPU, step time, MFU and (with training tokens) days, GPU-hours, dollars and
    energy of one plan, with breakdowns. Exit 1 if it does not fit."""
    from .core.estimate import estimate as run_estimate

    flags = dict(model=model, gpu=gpu, gpus=gpus, dp=dp, tp=tp, pp=pp, cp=cp, ep=ep, vpp=vpp, zero=zero, fsdp=fsdp,
                 sp=sp, recompute=recompute, flash=flash, recompute_fraction=recompute_fraction,
                 attention_kernel=attention_kernel, tp_overlap=tp_overlap, offload=offload, seq=seq, global_batch=global_batch,
                 global_batch_tokens=global_batch_tokens, micro_batch=micro_batch, tokens=tokens,
                 precision=precision, optimizer=optimizer, price=price)
    plan = build_plan(plan_file, flags)
    est = run_estimate(plan)
    d = est.to_dict()
    _emit(fmt, d, table=_estimate_table(d))
    if plot is not None:
        from .plots import plot_breakdowns

        _note(f"wrote {plot_breakdowns({**d, 'scenario': d.get('plan') or d['model']}, plot, force=force)}")
    if not est.fits:
        report.stderr_console().print(f"[yellow]does not fit:[/yellow] {escape(est.reason)}", highlight=False)
        raise typer.Exit(EXIT_INFEASIBLE)


def _estimate_table(d: dict):
    groups = [
        ("layout", ("model", "hardware", "gpus", "dp", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "fsdp",
                    "sequence_parallel", "recompute", "flash_attention", "seq_len_tokens", "micro_batch_seqs",
                    "global_batch_seqs", "grad_accum_steps", "precision")),
        ("parameters", [k for k in d if k.startswith("params_")]),
        ("FLOPs", ("model_flops_per_token", "hardware_flops_per_token", "model_flops_per_step",
                   "hardware_flops_per_step", "tokens_per_step", "training_tokens", "training_steps",
                   "model_flops_total")),
        ("time", [k for k in ("step_time_s", "tokens_per_s_per_gpu", "model_tflop_per_s_per_gpu", "mfu", "hfu")
                  if k in d] + [k for k in d if k.startswith("time_") and k.endswith("_s")]),
        ("whole run", [k for k in ("training_time_ideal_days", "wall_clock_days", "goodput", "gpu_hours",
                                   "cost_usd", "cost_per_billion_tokens_usd", "price_usd_per_gpu_hour", "energy_mwh",
                                   "co2_tonnes", "expected_failures", "checkpoint_interval_hours") if k in d]
         + [k for k in d if k.startswith("time_") and k.endswith("_days")]
         + [k for k in d if k.startswith("cost_") and k.endswith("_usd") and k != "cost_usd"
            and k != "cost_per_billion_tokens_usd"]),
        ("memory per GPU (most loaded)", [k for k in d if k.startswith("memory_") and k.endswith("_bytes")]
         + ["memory_stage", "fits", "reason"]),
    ]
    sections = [(name, {k: d[k] for k in keys if k in d and d[k] is not None}) for name, keys in groups]
    return report.kv_table(d.get("plan") or d.get("model", ""), [s for s in sections if s[1]])


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, help="Preset to show."),
    fmt: Fmt = FORMAT_OPT,
):
    """List model presets with their parameter counts, or show one preset."""
    from .core.params import param_breakdown
    from .registry import load_model, preset_names

    if name:
        m = load_model(name)
        d = {"preset": name, **m.model_dump(exclude_none=True), **param_breakdown(m).to_dict()}
        flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        for k, v in nested.items():
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        _emit(fmt, d, rows=[flat], table=report.kv_table(m.name, [("", flat)]))
        return
    rows = []
    for n in preset_names():
        m = load_model(n)
        pb = param_breakdown(m)
        rows.append({"preset": n, "name": m.name, "arch": m.arch, "params_total": pb.total,
                     "params_active": pb.active, "layers": m.total_layers, "hidden_size": m.hidden_size,
                     "heads": m.num_heads, "kv_heads": m.kv_heads, "vocab_size": m.vocab_size})
    cols = list(rows[0]) if rows else []
    _emit(fmt, rows, rows=rows, table=report.rows_table("model presets", rows, cols))


@app.command()
def hardware(
    name: Optional[str] = typer.Argument(None, help="Profile to show."),
    fmt: Fmt = FORMAT_OPT,
):
    """List hardware profiles, or show one with the source of every number."""
    from .registry import load_hardware, profile_names

    if name:
        hw = load_hardware(name)
        data = hw.model_dump(exclude_none=True)
        rows = []

        def walk(prefix, obj):
            if isinstance(obj, dict) and "value" in obj and "source" in obj:
                rows.append({"field": prefix, "value": obj["value"], "source": obj["source"]})
            elif isinstance(obj, dict):
                for k, v in obj.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)

        walk("", data)
        _emit(fmt, data, rows=rows, table=report.rows_table(f"{hw.name}: {hw.description}", rows,
                                                             ["field", "value", "source"]))
        return
    rows = []
    for n in profile_names():
        hw = load_hardware(n)
        acc = hw.accelerator
        rows.append({
            "profile": n, "accelerator": acc.name,
            "bf16_peak_flop_per_s": acc.peak_flop_per_s["bf16"].value if "bf16" in acc.peak_flop_per_s else None,
            "hbm_bytes": acc.hbm_bytes.value, "hbm_bandwidth_bytes_per_s": acc.hbm_bandwidth_bytes_per_s.value,
            "gpus_per_node": hw.gpus_per_node,
            "price_usd_per_gpu_hour": hw.price_usd_per_gpu_hour.value if hw.price_usd_per_gpu_hour else None,
        })
    cols = list(rows[0]) if rows else []
    _emit(fmt, rows, rows=rows, table=report.rows_table("hardware profiles", rows, cols))


from .cli_scaling import scaling_app  # noqa: E402  (at the bottom: cli_scaling imports _emit/Fmt from here)
app.add_typer(scaling_app, name="scaling")


from .cli_search import search_command  # noqa: E402  (imports build_plan, _emit, Fmt from this module)
app.command("search")(search_command)


@app.command()
def validate(
    runs: Optional[Path] = typer.Option(None, "--runs", help="Measured-runs YAML (default: the project's public set)."),
    fmt: Fmt = FORMAT_OPT,
):
    """Predict published measured runs and compare throughput (tokens/s per GPU) like with like."""
    from .validate import validate as run_validate

    rep = run_validate(runs)
    cols = ["id", "source", "hardware", "gpus", "measured_tokens_per_s_per_gpu", "predicted_tokens_per_s_per_gpu",
            "error_pct", "predicted_mfu"]
    if fmt == Fmt.table:
        con = report.stdout_console()
        con.print(report.rows_table("measured vs predicted", rep["runs"], cols))
        srows = [{"group": "all", **rep["summary"]}] + [{"group": k, **v} for k, v in rep["by_source"].items()] + [
            {"group": k, **v} for k, v in rep["by_hardware"].items()]
        con.print(report.rows_table("absolute % error of tokens/s per GPU", srows,
                                    ["group", "n", "median_abs_pct_error", "p90_abs_pct_error", "max_abs_pct_error"]))
        if rep["skipped"]:
            con.print(report.rows_table("not modelled", rep["skipped"], ["id", "source", "reason"]))
        mc = rep["memory_check"]
        if mc.get("measured_n"):
            con.print(f"memory: {mc['measured_n']} runs measured it; median abs. error "
                      f"{mc['measured_median_abs_pct_error']:.1f}%, p90 {mc['measured_p90_abs_pct_error']:.1f}%",
                      highlight=False)
        oom = mc["ran_but_predicted_oom"]
        con.print(f"memory: {len(oom)} of {rep['memory_check']['runs']} published runs are predicted not to fit "
                  f"although they ran" + (f": {', '.join(oom)}" if oom else ""), highlight=False)
    else:
        _emit(fmt, rep, rows=rep["runs"])


@app.command("fit-time")
def fit_time(
    runs: Optional[Path] = typer.Option(None, "--runs", help="Measured-runs YAML (default: the public set)."),
    write: bool = typer.Option(False, "--write", help="Store the fit in hardware_profiles/calibration/."),
    exclude_source: list[str] = typer.Option([], "--exclude-source", help="Leave a source out (hold-out checks)."),
    fmt: Fmt = FORMAT_OPT,
):
    """Fit the time model's efficiency parameters per GPU generation on measured runs (prints residuals)."""
    from .calibrate.fit import BORROWED, fit_generation, generations, write_borrowed, write_calibration
    from .measured import load_runs
    from .validate import modelable

    loaded, _ = load_runs(runs)
    usable, _ = modelable(loaded)
    out = {}
    for gen in generations(usable):
        with report.progress(f"fitting {gen}") as _:
            res = fit_generation(usable, gen, exclude_sources=exclude_source)
        errs = [abs(v) * 100 for v in res.residuals.values()]
        out[gen] = {"params": res.params, "at_bound": list(res.at_bound), "n_runs": res.n_runs,
                    "sources": res.sources, "median_abs_pct_error": float(sorted(errs)[len(errs) // 2]),
                    "residuals_pct": {k: 100 * v for k, v in res.residuals.items()}}
        if write:
            path = write_calibration(res, str(runs or "planner/data/measured_runs.yaml"))
            _note(f"wrote {path}")
            for other, (src_gen, _) in BORROWED.items():
                if src_gen == gen and other not in out:
                    _note(f"wrote {write_borrowed(other, path)} (borrowed from {gen})")
    rows = [{"generation": g, "parameter": k, "value": v, "at_bound": k in d["at_bound"]}
            for g, d in out.items() for k, v in d["params"].items()]
    _emit(fmt, out, rows=rows, table=report.rows_table("fitted time-model parameters", rows,
                                                        ["generation", "parameter", "value", "at_bound"]))


from .cli_bench import bench_command, calibrate_command  # noqa: E402  (imports _emit, Fmt from this module)
app.command("bench")(bench_command)
app.command("calibrate")(calibrate_command)


from .cli_plan import register as _register_plan_commands  # noqa: E402  (plan, plot, schema, models import)
_register_plan_commands(app)


from .cli_budget import budget_command  # noqa: E402  (imports _emit, Fmt from this module)
app.command("budget")(budget_command)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: known errors become one line on stderr with their exit code (always via SystemExit)."""
    try:
        rc = app(args=argv, prog_name="planner", standalone_mode=False)
    except PlannerError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        _error(format_validation_error(exc))
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except _USAGE_ERRORS as exc:  # usage errors (unknown option, bad value)
        cmd = (argv if argv is not None else sys.argv[1:])[:1]
        hint = f" (see `planner {cmd[0]} --help`)" if cmd and not cmd[0].startswith("-") else ""
        _error(exc.format_message() + hint)
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
