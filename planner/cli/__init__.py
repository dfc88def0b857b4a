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
=================  ===========================================
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from pydantic import ValidationError

from ..errors import EXIT_BAD_INPUT, PlannerError, format_validation_error
from .bench import bench_command, calibrate_command
from .budget import budget_command
from .common import USAGE_ERRORS, error
from .estimate import estimate, hardware, models
from .plan import MODELS_EPILOG, ModelsCommand, plan_command, plot_command, schema_command
from .scaling import scaling_app
from .search import search_command
from .validate import fit_time, validate

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Plan language-model training: parameters, FLOPs, memory per GPU, and whether it fits.",
    pretty_exceptions_enable=False,
)

app.command("estimate")(estimate)
app.command("models", cls=ModelsCommand, epilog=MODELS_EPILOG)(models)
app.command("hardware")(hardware)
app.add_typer(scaling_app, name="scaling")
app.command("search")(search_command)
app.command("validate")(validate)
app.command("fit-time")(fit_time)
app.command("bench")(bench_command)
app.command("calibrate")(calibrate_command)
app.command("plan")(plan_command)
app.command("plot")(plot_command)
app.command("schema")(schema_command)
app.command("budget")(budget_command)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: known errors become one line on stderr with their exit code (always via SystemExit)."""
    try:
        rc = app(args=argv, prog_name="planner", standalone_mode=False)
    except PlannerError as exc:
        error(str(exc))
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        error(format_validation_error(exc))
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except USAGE_ERRORS as exc:  # usage errors (unknown option, bad value)
        cmd = (argv if argv is not None else sys.argv[1:])[:1]
        hint = f" (see `planner {cmd[0]} --help`)" if cmd and not cmd[0].startswith("-") else ""
        error(exc.format_message() + hint)
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["app", "main"]
