"""`planner compare A.yaml B.yaml [...]`: plans side by side, with the deltas of memory, step time, days,
GPU-hours and dollars against the first. Exit 0 when every plan compared fits, 1 when one does not, 2 for bad
input."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import report
from ..errors import EXIT_INFEASIBLE
from .common import FORMAT_OPT, Fmt, emit

#: Rows of the comparison table: (key, label).
ROWS = (("model", "model"), ("hardware", "hardware"), ("gpus", "GPUs"), ("fits", "fits"),
        ("memory_per_gpu_bytes", "memory/GPU"), ("step_time_s", "step time"), ("mfu", "MFU"),
        ("tokens_per_s_per_gpu", "tokens/s/GPU"), ("wall_clock_days", "days"), ("gpu_hours", "GPU-hours"),
        ("cost_usd", "cost"))


def _delta(row: dict, key: str) -> str:
    pct = row.get(f"delta_{key}_pct")
    return "" if pct is None else f"{pct:+.1f}%"


def comparison_table(cmp) -> report.FitTable:
    """Up to three plans: quantities down, plans across, each plan but the first followed by its change from the
    first. More: one row per plan, each delta beside its quantity."""
    from ..api import COMPARE_DELTAS

    rows = cmp.rows
    if len(rows) > 3:
        return _plans_down(rows, COMPARE_DELTAS)
    t = report.FitTable(f"compare: {len(rows)} plans (deltas against {rows[0]['plan']})")
    t.add_column("quantity", ident=True)
    for i, r in enumerate(rows):
        t.add_column(r["plan"], justify="right")
        if i:
            t.add_column(f"Δ {i + 1}", justify="right")
    for key, label in ROWS:
        cells = [label]
        for i, r in enumerate(rows):
            cells.append(report.escape(report.human(r.get(key), key)))
            if i:
                cells.append(_delta(r, key) if key in COMPARE_DELTAS else "")
        t.add_row(*cells)
    return t


def compare_command(
    plans: List[Path] = typer.Argument(..., help="Plan files; the first is the baseline.", metavar="PLAN.yaml..."),
    scenario: Optional[str] = typer.Option(None, "--scenario", "-s", help="Compare this scenario of each file "
                                           "(default: every scenario of every file)."),
    fmt: Fmt = FORMAT_OPT,
):
    """Compare plans side by side: memory per GPU, step time, MFU, days, GPU-hours and dollars, with each plan's
    change from the first. Exit 1 when one of them does not fit."""
    from ..api import compare

    cmp = compare(*plans, scenario=scenario)
    rows = cmp.to_records()
    emit(fmt, {"baseline": rows[0]["plan"], "plans": rows}, rows=rows, table=comparison_table(cmp))
    if not all(r["fits"] for r in rows):
        raise typer.Exit(EXIT_INFEASIBLE)


def _plans_down(rows, deltas) -> report.FitTable:
    t = report.FitTable(f"compare: {len(rows)} plans (Δ against {rows[0]['plan']})")
    t.add_column("plan", ident=True)
    for key, label in ROWS:
        t.add_column(label, justify="left" if key in ("model", "hardware") else "right")
        if key in deltas:
            t.add_column("Δ", justify="right")
    for r in rows:
        cells = [report.escape(r["plan"])]
        for key, _ in ROWS:
            cells.append(report.escape(report.human(r.get(key), key)))
            if key in deltas:
                cells.append(_delta(r, key))
        t.add_row(*cells)
    return t
