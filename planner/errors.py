"""The three kinds of failure the user sees (docs/DESIGN.md §1), each mapped to an exit code by the CLI.

- :class:`SpecError`: bad input (unknown preset, typo, wrong type, a layout that does not divide): exit 2.
- Infeasible plans are *results* (``fits: false`` with a reason), not exceptions: exit 1 where one plan was asked.
- :class:`FitError`: a calibration or scaling-law fit that did not converge or hit a bound: exit 1.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INFEASIBLE = 1
EXIT_FIT_FAILED = 1
EXIT_BAD_INPUT = 2


class PlannerError(Exception):
    """Base of the errors the CLI turns into one-line messages."""

    exit_code = EXIT_BAD_INPUT


class SpecError(PlannerError, ValueError):
    """Bad input: the message names the field and the values."""

    exit_code = EXIT_BAD_INPUT


class FitError(PlannerError, RuntimeError):
    """A fit failed to converge or landed on a bound."""

    exit_code = EXIT_FIT_FAILED


def format_validation_error(exc, prefix: str = "") -> str:
    """One line from a pydantic ValidationError: ``field.path: message (got value)`` for the first error,
    with a count of the others."""
    errs = exc.errors()
    first = errs[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = first.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = first.get("input")
    where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    line = f"{where}: {msg}" if where else msg
    if first.get("type") not in ("value_error", "missing") and not isinstance(got, (dict, list)):
        line += f" (got {got!r})"
    if len(errs) > 1:
        line += f" [+{len(errs) - 1} more]"
    return line
