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


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py``, imported by path (the folder is not a package); registered in
    sys.modules first, where dataclasses look their module up."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def plan_file_error(tmp_path, text: str) -> str:
    """The SpecError message reading the plan file ``text`` raises; asserts it is one line."""
    from planner.errors import SpecError
    from planner.io.plan import read_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    with pytest.raises(SpecError) as exc:
        read_plan(plan)
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg
