"""Output sinks: rich tables for people, JSON and CSV for programs. Data goes to stdout, messages to stderr."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Iterable, Sequence

import numpy as np
from rich.table import Table

from .units import GIB
from .console import stderr_console, stdout_console  # noqa: F401  (the CLI renders through report)

def _plain(v):
    """JSON-safe scalar: numpy types unwrapped, NaN/inf as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def to_json(obj) -> str:
    def conv(o):
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, np.ndarray):
            return [conv(v) for v in o.tolist()]
        return _plain(o)

    return json.dumps(conv(obj), indent=2)


def to_csv(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or _columns(rows))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt_csv(_plain(r.get(k))) for k in columns})
    return buf.getvalue()


def _fmt_csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


def _columns(rows: Iterable[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def human(v, key: str = "") -> str:
    """A readable rendering of one value, by the unit its key names."""
    v = _plain(v)
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if key.endswith("_bytes"):
        return f"{v / GIB:,.2f} GiB"
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{v:,.3f} s" if v < 100 else f"{v:,.0f} s"
    if key in ("mfu", "hfu", "goodput") or key.endswith("_fraction"):
        return f"{100 * v:.1f}%"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        iv = int(v)
        if abs(iv) >= 1e6 and (key.startswith("params") or key.endswith("_flops") or "flops_per" in key
                                or "tokens" in key):
            return _si(iv)
        return f"{iv:,}"
    if abs(v) >= 1e6 or (abs(v) < 1e-3 and v != 0):
        return _si(v)
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _si(v: float) -> str:
    for exp, suffix in ((24, "Y"), (21, "Z"), (18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(v) >= 10**exp:
            return f"{v / 10**exp:,.3g}{suffix}"
    return f"{v:.3g}"


def kv_table(title: str, sections: Sequence[tuple[str, dict]]) -> Table:
    """A two-column table of key/value sections."""
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for name, d in sections:
        if name:
            t.add_row(f"[bold]{name}[/bold]", "")
        for k, v in d.items():
            t.add_row(f"  {k}", human(v, k))
    return t


def rows_table(title: str, rows: Sequence[dict], columns: Sequence[str]) -> Table:
    t = Table(title=title, show_header=True, header_style="bold")
    for c in columns:
        t.add_column(c, justify="right" if rows and not isinstance(_plain(rows[0].get(c)), str) else "left")
    for r in rows:
        t.add_row(*[human(r.get(c), c) for c in columns])
    return t


def progress(description: str):
    """A transient spinner on stderr for work that takes more than a moment."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=stderr_console(), transient=True)

    class _Ctx:
        def __enter__(self):
            prog.start()
            prog.add_task(description, total=None)
            return prog

        def __exit__(self, *exc):
            prog.stop()
            return False

    return _Ctx()
