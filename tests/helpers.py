"""Shared test helpers (importable from every test module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import pytest

from planner.cli import main


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of ``planner ARGS``; main() always ends in SystemExit."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (exc.value.code or 0), out, err
