"""The `planner` command line. Thin: parse flags, call the core, render. Data on stdout, messages on stderr.

Exit codes: 0 success; 1 a valid plan that does not fit (or a fit that failed); 2 bad input (one line on stderr
naming the field and values, no traceback).

One module per command group; this one only assembles them into :data:`app` and defines :func:`main` (the
console script ``planner = "planner.cli:main"``). Imports go one way: ``common`` <- command modules <- here.

=================  ===========================================
module             commands
=================  ===========================================
``estimate``       estimate, models, hardware
``validate``       validate, fit-time
``plan``           plan, plot, schema, models import
``search``         search
``budget``         budget
``bench``          bench, calibrate
``scaling``        scaling laws|loss|optimal|isoflop|fit
``prices``         prices
``compare``        compare
=================  ===========================================
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from .. import __version__, report
from ..errors import EXIT_BAD_INPUT, PlannerError, format_validation_error
from .bench import bench_command, calibrate_command
from .budget import budget_command
from .common import USAGE_ERRORS, error
from .compare import compare_command
from .estimate import estimate, hardware, models
from .plan import MODELS_EPILOG, ModelsCommand, plan_command, plot_command, schema_command
from .prices import prices_command
from .scaling import scaling_app
from .search import search_command
from .validate import fit_time, validate

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help="Plan language-model training: parameters, FLOPs, memory per GPU, and whether it fits.",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"planner {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    wide: bool = typer.Option(False, "--wide", help="Print tables at full width, however narrow the terminal "
                              "(also after the command: planner plan P.yaml --wide)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notes on stderr (errors still "
                               "print; also after the command)."),
):
    """Plan language-model training: parameters, FLOPs, memory per GPU, and whether it fits."""
    report.WIDE = report.WIDE or wide
    report.QUIET = report.QUIET or quiet


app.command("estimate", rich_help_panel="One plan")(estimate)
app.command("plan", rich_help_panel="One plan")(plan_command)
app.command("compare", rich_help_panel="One plan")(compare_command)
app.command("search", rich_help_panel="Find a plan")(search_command)
app.command("budget", rich_help_panel="Find a plan")(budget_command)
app.add_typer(scaling_app, name="scaling", rich_help_panel="Find a plan")
app.command("models", cls=ModelsCommand, epilog=MODELS_EPILOG, rich_help_panel="Data")(models)
app.command("hardware", rich_help_panel="Data")(hardware)
app.command("prices", rich_help_panel="Data")(prices_command)
app.command("schema", rich_help_panel="Data")(schema_command)
app.command("plot", rich_help_panel="Output")(plot_command)
app.command("validate", rich_help_panel="Accuracy and calibration")(validate)
app.command("fit-time", rich_help_panel="Accuracy and calibration")(fit_time)
app.command("bench", rich_help_panel="Accuracy and calibration")(bench_command)
app.command("calibrate", rich_help_panel="Accuracy and calibration")(calibrate_command)

#: Options of the whole app that may also follow the command (`planner plan P.yaml --wide`).
_GLOBAL = {"--wide": "WIDE", "--quiet": "QUIET", "-q": "QUIET"}


def _lift_global_options(args: list[str]) -> list[str]:
    """``args`` without the app-wide switches given after the command name (they are set here instead)."""
    if not args or args[0].startswith("-"):
        return args
    out = [args[0]]
    for i, a in enumerate(args[1:], start=1):
        if a == "--":
            return out + args[i:]
        if a in _GLOBAL:
            setattr(report, _GLOBAL[a], True)
        else:
            out.append(a)
    return out


def _light_help_renderer() -> None:
    """Import ``typer.rich_utils`` (which renders ``--help``) without what planner never uses from it.

    It imports ``rich.markdown`` (markdown-it), ``rich.syntax`` (pygments) and ``rich.traceback`` at the top, for
    Markdown help text and pretty tracebacks; planner uses neither (plain rich markup, pretty exceptions off), and
    those imports are most of the time of ``planner --help``. Placeholders stand in for the two modules while
    ``typer.rich_utils`` is imported and are removed at once, so any later import gets the real modules."""
    if "typer.rich_utils" in sys.modules:
        return
    import types

    stubs = {}
    for name, cls in (("rich.markdown", "Markdown"), ("rich.traceback", "Traceback")):
        if name not in sys.modules:
            stubs[name] = types.ModuleType(name)
            setattr(stubs[name], cls, type(cls, (), {}))
    sys.modules.update(stubs)
    try:
        import typer.rich_utils  # noqa: F401
    except Exception:  # pragma: no cover - another typer: it imports what it needs when it needs it
        pass
    finally:
        for name, mod in stubs.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: known errors become one line on stderr with their exit code (always via SystemExit)."""
    args = list(argv if argv is not None else sys.argv[1:])
    report.WIDE = report.QUIET = False
    if not args or "--help" in args:
        _light_help_renderer()
    try:
        rc = app(args=_lift_global_options(args), prog_name="planner", standalone_mode=False)
    except PlannerError as exc:
        error(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except USAGE_ERRORS as exc:  # usage errors (unknown option, bad value)
        cmd = args[:1]
        hint = f" (see `planner {cmd[0]} --help`)" if cmd and not cmd[0].startswith("-") else ""
        error(exc.format_message() + hint)
        sys.exit(exc.exit_code)
    except Exception as exc:
        from pydantic import ValidationError  # imported only here: pydantic is slow to import

        if not isinstance(exc, ValidationError):
            raise
        error(format_validation_error(exc))
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["app", "main"]
