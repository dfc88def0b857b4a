"""Output sinks: rich tables for people, JSON and CSV for programs. Data goes to stdout, messages to stderr."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Iterable, Sequence

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .console import stderr_console  # noqa: F401  (the CLI renders through report)
from .units import GIB


def _plain(v):
    """JSON-safe scalar: numpy types unwrapped, NaN/inf as None."""
    np = sys.modules.get("numpy")  # not imported here: without numpy loaded no value can be a numpy one
    if np is not None and isinstance(v, np.generic):
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
        np = sys.modules.get("numpy")
        if np is not None and isinstance(o, np.ndarray):
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
    if isinstance(v, bool):  # spreadsheets and pandas read true/false as booleans, True/False as text
        return "true" if v else "false"
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


#: One-line legend printed under a table that shows both MFU and HFU.
MFU_HFU_LEGEND = ("MFU counts model FLOPs (PaLM: 6N + 12·L·H·Q·T per token, no recomputation); "
                  "HFU adds the FLOPs recomputation repeats, so HFU >= MFU. Bands: p10–p90 of the cross-validated error.")

#: When set (``planner --wide``), tables print at their natural width however narrow the terminal.
WIDE = False


def human(v, key: str = "") -> str:
    """A readable rendering of one value, by the unit its key names: ``32.50 GiB``, ``8.03B`` parameters,
    ``5.76e23`` FLOPs, ``$1.23M``, ``33.2%``."""
    v = _plain(v)
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if key.endswith("_bytes"):
        return f"{v / GIB:,.2f} GiB"
    if key.endswith("_usd") or key.startswith("price_usd") or key == "usd":
        return usd(v)
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{v:,.3f} s" if v < 100 else f"{v:,.0f} s"
    if key in ("mfu", "hfu", "goodput") or key.endswith("_fraction"):
        return f"{100 * v:.1f}%"
    if "flops" in key and abs(v) >= 1e6:
        return sci(v)
    if abs(v) >= 1e6 and (key.startswith("params") or "tokens" in key or key.endswith("_steps")):
        return count(v)
    if abs(v) >= 1e12:  # rates and sizes no unit names (FLOP/s, bytes/s): 9.89e14, not 989,500,000,000,000
        return sci(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}"
    if abs(v) >= 1e9 or (abs(v) < 1e-3 and v != 0):
        return sci(v)
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def sci(v: float, digits: int = 3) -> str:
    """``5.76e23``: scientific notation as papers write FLOPs (no ``+``, no leading zeros)."""
    if v == 0:
        return "0"
    mant, exp = f"{v:.{digits - 1}e}".split("e")
    return f"{mant}e{int(exp)}"


def count(v: float) -> str:
    """A count the way the field writes parameters and tokens: ``8.03B``, ``15T``, ``11.8M``, ``340k``."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:,.3g}{suffix}"
    return f"{v:,.3g}"


def usd(v) -> str:
    """Dollars: ``$1.23M``, ``$950k``, ``$2.50``."""
    v = _plain(v)
    if v is None:
        return "—"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"${v / div:,.3g}{suffix}"
    return f"${v:,.2f}" if abs(v) >= 1 else f"${v:.3g}"


def _si(v: float) -> str:  # kept for callers that want SI prefixes
    return count(v)


def with_band(value, low, high, key: str) -> str:
    """``31.9 s (28.4–35.1)``: a value and its p10–p90 band in the value's own unit (the band without it)."""
    text = human(value, key)
    if low is None or high is None:
        return text
    lo, hi = human(low, key), human(high, key)
    for suffix in (" s", "%", " GiB"):
        if lo.endswith(suffix) and hi.endswith(suffix):
            lo, hi = lo[: -len(suffix)], hi[: -len(suffix)]
    return f"{text} ({lo}–{hi})"


def kv_table(title: str, sections: Sequence[tuple[str, dict]]):
    """A two-column table of key/value sections (a legend under it when it shows both MFU and HFU)."""
    t = Table(title=title, show_header=True, header_style="bold")
    # names never cut: the quantity column is as wide as its longest key; a long value (a "does not fit" reason)
    # wraps inside the value column instead of pushing the names off the terminal
    width = max([len(name) for name, _ in sections] + [2 + len(k) for _, d in sections for k in d] + [8])
    t.add_column("quantity", no_wrap=True, min_width=width)
    t.add_column("value", justify="right", overflow="fold")
    keys = set()
    for name, d in sections:
        if name:
            t.add_row(f"[bold]{name}[/bold]", "")
        for k, v in d.items():
            keys.add(k)
            text = human(v, k)
            # numbers right-aligned; prose (a reason) reads from the left when it wraps
            t.add_row(f"  {k}", Text(text, justify="left") if len(text) > 40 else escape(text))
    if {"mfu", "hfu"} <= keys:
        from rich.console import Group

        return Group(t, Text(MFU_HFU_LEGEND, style="dim"))
    return t


class FitTable:
    """A table that never cuts its identifier columns: it prints as a rich table when that fits the console with
    its text columns wrapped (or with ``--wide``), and otherwise stacks each row as its identifier in bold over
    ``header value`` pairs.

    The API is the part of :class:`rich.table.Table` the CLI uses: ``add_column(header, justify=..., ident=...)``
    and ``add_row(*cells)`` (cells may hold rich markup)."""

    def __init__(self, title: str = "", caption: str = "", **table_kw):
        self.title, self.caption, self.table_kw = title, caption, table_kw
        self.columns: list[dict] = []
        self.rows: list[tuple[str, ...]] = []

    def add_column(self, header: str, justify: str = "left", ident: bool = False, **kw) -> None:
        self.columns.append({"header": header, "justify": justify, "ident": ident, **kw})

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def _ident_cols(self) -> list[int]:
        idx = [i for i, c in enumerate(self.columns) if c["ident"]]
        return idx or [0]

    def table(self) -> Table:
        kw = {"show_header": True, "header_style": "bold", **self.table_kw}
        t = Table(title=self.title or None, caption=self.caption or None, caption_justify="left", **kw)
        ident = set(self._ident_cols())
        for i, c in enumerate(self.columns):
            extra = {k: v for k, v in c.items() if k not in ("header", "justify", "ident")}
            if i in ident or c["justify"] == "right":  # names and numbers never wrap; text columns may
                extra.setdefault("no_wrap", True)
            t.add_column(c["header"], justify=c["justify"], **extra)
        for r in self.rows:
            t.add_row(*r)
        return t

    def __rich_console__(self, console, options):
        from rich.measure import Measurement

        t = self.table()
        need = Measurement.get(console, options.update_width(10**4), t)
        # the table when it fits with its text columns wrapped at word boundaries (names and numbers whole)
        if WIDE or need.minimum <= options.max_width or not self.columns:
            yield t
            return
        yield from self._stacked(options.max_width)

    def _stacked(self, width: int):

        if self.title:
            yield Text(self.title, style="bold")
        yield Text("(one block per row: the table is wider than the terminal; --wide prints it)", style="dim")
        ident = self._ident_cols()
        for r in self.rows:
            line = Text(" ").join(Text.from_markup(r[i]) for i in ident if i < len(r))
            line.stylize("bold")
            used, first = line.cell_len, True
            for i in range(min(len(r), len(self.columns))):
                header = self.columns[i]["header"]
                if i in ident or not r[i].strip() or header.strip() in ("", "|"):
                    continue
                pair = Text.assemble((header + " ", "dim"), Text.from_markup(r[i]))
                sep = "  " if first else " · "
                if used + len(sep) + pair.cell_len > width and used > 2:
                    yield line
                    line, used, sep = Text("  "), 2, ""
                line.append(sep, style="dim")
                line.append_text(pair)
                used += len(sep) + pair.cell_len
                first = False
            yield line
        if self.caption:
            yield Text(self.caption, style="dim")


def rows_table(title: str, rows: Sequence[dict], columns: Sequence[str], caption: str = "") -> FitTable:
    """Rows as a table; the first column names each row and is never cut (see :class:`FitTable`)."""
    if not caption and {"mfu", "hfu"} <= set(columns):
        caption = MFU_HFU_LEGEND
    t = FitTable(title, caption=caption)
    for i, c in enumerate(columns):
        first = next((_plain(r.get(c)) for r in rows if r.get(c) is not None), None)
        t.add_column(c, justify="left" if first is None or isinstance(first, str) else "right", ident=i == 0)
    for r in rows:
        t.add_row(*[escape(human(r.get(c), c)) for c in columns])
    return t


def html_table(rows: Sequence[dict], columns: Sequence[str], caption: str = "") -> str:
    """Rows as a small HTML table (notebooks' ``_repr_html_``), values rendered as in the CLI tables."""
    import html

    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(human(r.get(c), c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_line(row: dict) -> str:
    """The headline numbers of one result: memory per GPU, fits, step time, MFU, days, dollars."""
    parts = [f"{k} {human(row.get(key), key)}" for k, key in (
        ("memory/GPU", "memory_per_gpu_bytes"), ("step", "step_time_s"), ("MFU", "mfu"),
        ("days", "wall_clock_days"), ("cost", "cost_usd")) if row.get(key) is not None]
    return ("fits" if row.get("fits") else "does not fit") + (", " + ", ".join(parts) if parts else "")


def stdout_console():
    """The data console; with ``--wide``, wide enough for any table."""
    from .console import stdout_console as _console

    import os

    con = _console()
    if WIDE:
        con.width = max(con.width, 1000)
    elif not con.is_terminal and not os.environ.get("COLUMNS"):  # a file or a pipe: room for a wide table
        con.width = max(con.width, 160)
    return con


#: When set (``planner --quiet``), no progress bars.
QUIET = False


def show_progress() -> bool:
    """Progress bars only for a person: stderr is a terminal and ``--quiet`` was not given."""
    return not QUIET and stderr_console().is_terminal


class Progress:
    """A progress bar on stderr for work that may take more than a second: ``with Progress("validating", n) as
    p: ... p.advance()``. Silent when piped or with ``--quiet``; shown only after ``delay_s``."""

    def __init__(self, description: str, total: int | None = None, delay_s: float = 0.3):
        self.description, self.total, self.delay_s = description, total, delay_s
        self.bar = self.task = None
        self.done = 0
        self.t0 = 0.0
        self.enabled = show_progress()

    def __enter__(self) -> "Progress":
        import time

        self.t0 = time.perf_counter()
        return self

    def update(self, done: int | None = None, total: int | None = None, description: str | None = None) -> None:
        import time

        if total is not None:
            self.total = total
        self.done = self.done + 1 if done is None else done
        if description is not None:
            self.description = description
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.t0 < self.delay_s:
                return
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as _P, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)

            cols = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total:
                cols += [BarColumn(), MofNCompleteColumn()]
            self.bar = _P(*cols, TimeElapsedColumn(), console=stderr_console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=self.total)
        self.bar.update(self.task, completed=self.done, total=self.total, description=self.description)

    def advance(self) -> None:
        self.update()

    def __call__(self, done: int, total: int) -> None:
        """The ``progress(done, total)`` callback the search and the fits take."""
        self.update(done, total)

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.stop()
        return False


def progress(description: str):
    """A transient spinner on stderr for work that takes more than a moment (silent when piped or quiet)."""
    p = Progress(description, delay_s=0.0)
    p.update(0)
    return p
