"""`planner plan`, `planner plot`, `planner schema` and `planner models import`.

Registered by ``planner/cli/__init__.py``; ``models import`` rides on ``planner models`` through
:class:`ModelsCommand`. Data on stdout (a rich table,
or JSON/CSV), messages on stderr; ``--out`` and ``--plot`` write files and never overwrite a file that is not a
previous planner export unless ``--force``.

Exit codes of ``planner plan`` / ``planner plot``: 0 when at least one scenario fits; 1 when none does (the table
is still printed: a point that does not fit is a row with ``fits`` false and its reason, never an error); 2 for bad
input (a plan-file error names the file, line and field).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from typer.core import TyperCommand

from .. import report
from ..errors import EXIT_INFEASIBLE, SpecError
from .common import FORMAT_OPT, Fmt, note


class PlotKind(str, Enum):
    memory = "memory"
    time = "time"
    compare = "compare"
    pareto = "pareto"


#: Columns of the `planner plan` table and their headers (the exports carry every column, unit-suffixed).
TABLE_COLUMNS = (
    ("scenario", "scenario"), ("model", "model"), ("hardware", "hardware"), ("gpus", "GPUs"), ("dp", "dp"),
    ("tp", "tp"), ("pp", "pp"), ("cp", "cp"), ("ep", "ep"), ("seq_len_tokens", "seq"),
    ("memory_per_gpu_bytes", "memory/GPU"), ("fits", "fits"), ("step_time_s", "step"), ("mfu", "MFU"),
    ("tokens_per_s_per_gpu", "tokens/s/GPU"), ("wall_clock_days", "days"), ("gpu_hours", "GPU-hours"),
    ("cost_usd", "cost"),
)


def _results(plan_file: Path, max_points: int = 0):
    from ..api import evaluate

    if max_points:
        _check_points(plan_file, max_points)
    with report.Progress("evaluating plans") as bar:  # on stderr, when that takes a while
        return evaluate(plan_file, progress=bar)


#: Default work-size guard of `planner plan` / `planner plot`: plans (scenarios x sweep points) one file may hold.
MAX_POINTS = 2000
MAX_POINTS_OPT = typer.Option(MAX_POINTS, "--max-points", min=1, help="Refuse a plan file with more plans than "
                              "this (scenarios x sweep points) before evaluating any.")


def plan_points(data: dict) -> int:
    """How many plans a raw plan-file mapping expands to (scenarios x their sweep points), counted without
    expanding anything."""
    def points(sweep) -> int:
        if not isinstance(sweep, dict):
            return 1
        n = 1
        for v in (sweep.get("grid") or {}).values() if isinstance(sweep.get("grid"), dict) else ():
            n *= max(1, len(v)) if isinstance(v, list) else 1
        zipped = sweep.get("zip")
        if isinstance(zipped, dict) and zipped:
            n *= max((len(v) if isinstance(v, list) else 1) for v in zipped.values())
        return n

    top = data.get("sweep")
    scenarios = data.get("scenarios")
    if isinstance(scenarios, dict) and scenarios:
        return sum(points(body.get("sweep", top)) if isinstance(body, dict) else points(top)
                   for body in scenarios.values())
    return points(top)


def _check_points(plan_file: Path, max_points: int) -> None:
    """SpecError before any plan is evaluated when the file expands to more than ``max_points`` plans."""
    from ..io.plan import read_plan_data

    data, _ = read_plan_data(plan_file)
    n = plan_points(data)
    if n > max_points:
        raise SpecError(f"{plan_file}: {n:,} plans (scenarios x sweep points), more than --max-points "
                        f"{max_points:,}; raise --max-points to evaluate them all")


def _plan_table(results):
    """The comparison table; the scenario column is never cut (narrow terminals stack the rows instead)."""
    rows = [r.row for r in results]
    cols = [(k, h) for k, h in TABLE_COLUMNS if any(r.get(k) is not None for r in rows)]
    for k in ("cp", "ep"):
        if all(r.get(k) in (1, None) for r in rows):
            cols = [c for c in cols if c[0] != k]
    for k in ("model", "hardware"):  # a column that says the same on every row goes into the title
        if len({r.get(k) for r in rows}) == 1 and len(rows) > 1:
            cols = [c for c in cols if c[0] != k]
    same = [str(rows[0].get(k)) for k in ("model", "hardware") if rows and len({r.get(k) for r in rows}) == 1
            and len(rows) > 1]
    title = results.title + (f" ({len(rows)} plans" + (": " + " on ".join(same) if same else "") + ")"
                             if len(rows) > 1 else "")
    t = report.FitTable(title)
    for k, h in cols:
        t.add_column(h, justify="left" if k in ("scenario", "model", "hardware") else "right",
                     ident=k == "scenario")
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            text = escape(report.human(v, k))
            if k == "fits":
                text = "[green]yes[/green]" if v else "[red]no[/red]"
            cells.append(text)
        t.add_row(*cells)
    return t


def _exit_code(results) -> int:
    return 0 if any(r.fits for r in results) else EXIT_INFEASIBLE


def plan_command(
    plan_file: Path = typer.Argument(..., help="Plan YAML: model, run, layout, hardware; scenarios and sweep.",
                                     metavar="PLAN.yaml"),
    fmt: Fmt = FORMAT_OPT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write FILE: .csv, .json or .xlsx (by "
                                       "extension)."),
    long: bool = typer.Option(False, "--long", help="CSV/JSON in long (tidy) form: scenario, quantity, value, "
                              "unit."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a plot: FILE.png or FILE.svg."),
    plot_kind: Optional[PlotKind] = typer.Option(None, "--plot-kind", help="Plot for --plot: memory, time, "
                                                 "compare, pareto (default: the one the file name says, "
                                                 "memory.png -> memory; else compare)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out/--plot files that planner did not write."),
    max_points: int = MAX_POINTS_OPT,
):
    """Evaluate every scenario and sweep point of a plan file into one comparison table. Points that do not fit
    are rows with fits=no and the reason. Exit 1 when none fits."""
    from ..io.export import EXPORT_SUFFIXES, check_writable, csv_text, json_text, write_export

    if out is not None:
        if out.suffix.lower() not in EXPORT_SUFFIXES:
            raise SpecError(f"--out {out}: unknown extension {out.suffix or '(none)'!r} (expected .csv, .json or "
                            ".xlsx)")
        check_writable(out, force)
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".svg"):
            raise SpecError(f"--plot {plot}: unknown extension {plot.suffix or '(none)'!r} (expected .png or .svg)")
        check_writable(plot, force, what="--plot")
    results = _results(plan_file, max_points)
    if long and fmt == Fmt.table and out is None:
        note("--long applies to --format csv/json and to --out .csv/.json")
    if fmt == Fmt.json:
        sys.stdout.write(json_text(results, long, results.title, str(plan_file)) + "\n")
    elif fmt == Fmt.csv:
        sys.stdout.write(csv_text(results, long))
    else:
        report.stdout_console().print(_plan_table(results))
        bad = [r for r in results if not r.fits and r.reason]
        for r in bad:
            report.stdout_console().print(f"[yellow]{escape(r.name)}[/yellow] does not fit: {escape(r.reason)}",
                                          highlight=False, soft_wrap=True)
    if out is not None:
        if long and out.suffix.lower() == ".xlsx":
            note("--long applies to CSV and JSON; the spreadsheet is written wide")
        write_export(out, results, long=long, force=force, title=results.title, plan_file=str(plan_file))
        note(f"wrote {out}")
    if plot is not None:
        from ..plots import plot as write_plot

        from ..plots import kind_of

        kind = plot_kind.value if plot_kind is not None else kind_of(plot)
        write_plot(results, plot, kind=kind, title=results.title, force=force)
        note(f"wrote {plot}")
    code = _exit_code(results)
    if code:
        report.stderr_console().print("[yellow]no scenario fits[/yellow]", highlight=False)
        raise typer.Exit(code)


def plot_command(
    plan_file: Path = typer.Argument(..., help="Plan YAML.", metavar="PLAN.yaml"),
    kind: PlotKind = typer.Option(PlotKind.compare, "--kind", "-k", help="memory, time, compare or pareto."),
    out: Path = typer.Option(..., "--out", "-o", help="FILE.png or FILE.svg."),
    force: bool = typer.Option(False, "--force", help="Overwrite a file that planner did not write."),
    max_points: int = MAX_POINTS_OPT,
):
    """Plot a plan file's scenarios: memory per GPU (stacked by part), step-time breakdown, a side-by-side
    comparison, or the time-vs-cost Pareto front."""
    from ..plots import plot as write_plot

    if out.suffix.lower() not in (".png", ".svg"):
        raise SpecError(f"--out {out}: unknown extension {out.suffix or '(none)'!r} (expected .png or .svg)")
    from ..io.export import check_writable

    check_writable(out, force)
    results = _results(plan_file, max_points)
    write_plot(results, out, kind=kind.value, title=results.title, force=force)
    note(f"wrote {out}")


def schema_command():
    """Print the JSON Schema of plan files (for editor completion: `planner schema > plan.schema.json`)."""
    from ..io.plan import plan_json_schema

    sys.stdout.write(report.to_json(plan_json_schema()) + "\n")


MODEL_IMPORT_MARKER = "# generated by planner models import"


def models_import_command(
    config: Path = typer.Argument(..., help="A local Hugging Face config.json.", metavar="CONFIG.json"),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: the file or folder name)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the preset YAML to FILE instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Overwrite a file that planner did not write."),
):
    """Turn a Hugging Face config.json (Llama, Mistral, Mixtral, Qwen2, Gemma, GPT-2, BERT, T5) into a model spec
    (YAML). Use it in a plan as `model: {hf_config: config.json}` or save it with --out."""
    import yaml

    from ..core.params import param_breakdown
    from ..io.hf_config import load_hf_config, model_from_hf_config

    model = model_from_hf_config(config, name)  # validates; the YAML keeps the importer's explicit fields
    data = load_hf_config(config, name)
    pb = param_breakdown(model)
    head = (f"{MODEL_IMPORT_MARKER} from {config}\n# parameters: {pb.total:,} total, {pb.active:,} active per "
            "token\n")
    text = head + yaml.safe_dump(data, sort_keys=False, width=110)
    if out is None:
        sys.stdout.write(text)
        return
    from ..io.files import write_text_file  # the output boundary: no clobbering unless --force, atomic

    write_text_file(out, text, force=force)
    note(f"wrote {out} ({pb.total:,} parameters)")


#: A typer app with the one command `import`, reached through `planner models import ...` (see ModelsCommand).
models_import_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
models_import_app.command("import")(models_import_command)

MODELS_EPILOG = ("Import a Hugging Face config: planner models import CONFIG.json [--name NAME] [--out FILE.yaml] "
                 "[--force] (options: planner models import --help)")


class ModelsCommand(TyperCommand):
    """The click class of `planner models`: a leading ``import`` routes the rest of the arguments to
    :func:`models_import_command`, so `planner models import CONFIG.json` works while `planner models [NAME]` keeps
    working. Register with ``app.command("models", cls=ModelsCommand, epilog=MODELS_EPILOG)``."""

    def parse_args(self, ctx, args):
        if args and args[0] == "import":
            ctx.meta["planner.models_import"] = list(args[1:])
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        rest = ctx.meta.get("planner.models_import")
        if rest is None:
            return super().invoke(ctx)
        from typer.main import get_command

        cmd = get_command(models_import_app)
        return cmd.main(args=rest, prog_name="planner models import", standalone_mode=False)


__all__ = ["MODELS_EPILOG", "ModelsCommand", "models_import_command", "plan_command", "plot_command",
           "schema_command"]
