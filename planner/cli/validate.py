"""`planner validate` and `planner fit-time`: predictions against the published measured runs, and the fit of the
time model's efficiency parameters on them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import report
from .common import FORMAT_OPT, Fmt, emit, note


def validate(
    runs: Optional[Path] = typer.Option(None, "--runs", help="Measured-runs YAML (default: the project's public set)."),
    cross_validate: bool = typer.Option(
        False, "--cross-validate", help="Refit the calibration without each source (and each GPU generation) and "
        "predict what was held out: the accuracy figures to quote (about a minute)."),
    fmt: Fmt = FORMAT_OPT,
):
    """Predict published measured runs and compare throughput (tokens/s per GPU) like with like. Without
    --cross-validate the errors are in-sample (the calibration was fitted on these runs): a fit quality."""
    from ..calibrate.validate import validate as run_validate

    if cross_validate:
        return _cross_validate(runs, fmt)
    with report.progress("predicting the published measured runs"):
        rep = run_validate(runs)
    if fmt == Fmt.table:
        _print_validation(rep)
    else:
        emit(fmt, rep, rows=rep["runs"])


def _cross_validate(runs: Optional[Path], fmt: Fmt) -> None:
    """Leave-one-source-out and leave-one-generation-out accuracy, per source and per generation."""
    from ..calibrate.crossval import cross_validate
    from ..calibrate.measured import load_runs
    from ..calibrate.validate import modelable

    usable, _ = modelable(load_runs(runs)[0])
    with report.Progress("cross-validating", total=None, delay_s=0.0) as bar:
        cv = cross_validate(usable, progress=lambda m: bar.update(0, description=f"fitting {m}"))
    cols = ["group", "n", "median_abs_pct_error", "p90_abs_pct_error", "p10_signed_pct_error", "p90_signed_pct_error"]
    tables = [("held out by source: per source", cv["leave_one_source_out"]["by_source"]),
              ("held out by source: per generation", cv["leave_one_source_out"]["by_generation"]),
              ("held out by generation (borrowed calibration)", cv["leave_one_generation_out"]["by_generation"])]
    rows = [{"holdout": t, "group": g, **s} for t, d in tables for g, s in d.items()]
    if fmt != Fmt.table:
        emit(fmt, {k: v for k, v in cv.items() if k != "runs"}, rows=rows)
        return
    con = report.stdout_console()
    for title, d in tables:
        con.print(report.rows_table(f"{title}: % error of tokens/s per GPU", [{"group": g, **s} for g, s in d.items()],
                                    cols))


def _print_validation(rep: dict) -> None:
    """The validation report for people: runs, error summaries by source and hardware, skipped runs, memory."""
    cols = ["id", "source", "hardware", "gpus", "measured_tokens_per_s_per_gpu", "predicted_tokens_per_s_per_gpu",
            "error_pct", "predicted_mfu"]
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


def fit_time(
    runs: Optional[Path] = typer.Option(None, "--runs", help="Measured-runs YAML (default: the public set)."),
    write: bool = typer.Option(False, "--write", help="Store the fit in hardware_profiles/calibration/ (only the "
                               "generations whose fitted values changed)."),
    exclude_source: list[str] = typer.Option([], "--exclude-source", help="Leave a source out (hold-out checks)."),
    fmt: Fmt = FORMAT_OPT,
):
    """Fit the time model's efficiency parameters per GPU generation on measured runs (prints residuals; about
    a minute or two). With --write, a generation's calibration file is rewritten only when its values change."""
    from ..calibrate.fit import BORROWED, fit_all, generations, write_borrowed, write_calibration
    from ..calibrate.priors import parameter_notes
    from ..calibrate.measured import load_runs
    from ..calibrate.validate import modelable

    loaded, _ = load_runs(runs)
    usable, _ = modelable(loaded)
    out = {}
    gens = list(generations(usable))
    with report.Progress("fitting", total=1, delay_s=0.0) as bar:
        bar.update(0, description=f"fitting {', '.join(gens)} together ({len(usable)} runs)")
        fits = list(fit_all(usable, exclude_sources=exclude_source, strict=write).items())
        bar.update(1)
    for gen, res in fits:
        errs = [abs(v) * 100 for v in res.residuals.values()]
        out[gen] = {"params": res.params, "at_bound": list(res.at_bound), "n_runs": res.n_runs,
                    "sources": res.sources, "median_abs_pct_error": float(sorted(errs)[len(errs) // 2]),
                    "residuals_pct": {k: 100 * v for k, v in res.residuals.items()}}
        if write and _unchanged(res):
            note(f"{gen}: fitted values unchanged; calibration file left as it is")
        elif write:
            path = write_calibration(res, str(runs or "planner/data/measured_runs.yaml"), parameter_notes(res))
            note(f"wrote {path}")
            for other, (src_gen, _) in BORROWED.items():
                if src_gen == gen and other not in out:
                    note(f"wrote {write_borrowed(other, path)} (borrowed from {gen})")
    rows = [{"generation": g, "parameter": k, "value": v, "at_bound": k in d["at_bound"]}
            for g, d in out.items() for k, v in d["params"].items()]
    emit(fmt, out, rows=rows, table=report.rows_table("fitted time-model parameters", rows,
                                                       ["generation", "parameter", "value", "at_bound"]))


def _unchanged(res) -> bool:
    """True when ``res`` has the values (as they would be written: rounded) and notes already stored for its
    generation."""
    from ..registry import calibration_path, read_yaml

    path = calibration_path(res.generation)
    if path is None:
        return False
    from ..calibrate.priors import parameter_notes

    stored = {k: ((v or {}).get("value"), (v or {}).get("note"))
              for k, v in (read_yaml(path).get("parameters") or {}).items()}
    notes = parameter_notes(res)
    new = {k: (round(v, 6 if v > 1e-3 else 9), notes[k]) for k, v in res.params.items()}
    return stored == new and sorted(read_yaml(path).get("at_bound") or []) == sorted(res.at_bound)
