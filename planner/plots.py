"""Plots of a plan file's results (matplotlib, Agg backend; PNG or SVG by the file's extension).

- ``memory``: memory per GPU, stacked by part (weights, gradients, optimizer, activations, logits, overhead), one
  bar per scenario, with the GPU's capacity marked; a bar over its capacity is hatched.
- ``time``: step time stacked by part (compute, recompute, exposed TP/CP/EP/PP/DP communication, bubble,
  optimizer), one bar per scenario.
- ``compare``: four panels side by side: step time, memory per GPU, wall-clock days, cost; scenarios that do not
  fit are drawn in red.
- ``pareto``: wall-clock time against cost for every scenario that fits, with the Pareto front (no other scenario
  is both faster and cheaper) joined.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot, no global state, no display.
Each file carries "planner plot" in its metadata so ``--out`` may later replace it (``planner.io.export``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .errors import SpecError
from .units import GIB
from .io.export import TIME_STEP_PARTS
from .io.files import PLOT_MARKER, _atomic_write, check_writable

KINDS = ("memory", "time", "compare", "pareto")
PLOT_SUFFIXES = (".png", ".svg")

MEMORY_PARTS = (("memory_weights_bytes", "weights"), ("memory_gradients_bytes", "gradients"),
                ("memory_optimizer_bytes", "optimizer"), ("memory_activations_bytes", "activations"),
                ("memory_logits_bytes", "logits"), ("memory_overhead_bytes", "overhead"))
#: Colour-blind-safe palette (Okabe & Ito 2008), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#666666",
           "#333333")
FITS_COLOR, NOFIT_COLOR = "#0072B2", "#D55E00"


def _rows(results) -> list[dict]:
    return [dict(r.row) if hasattr(r, "row") else dict(r) for r in results]


def _num(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return x


def _figure(n: int, height: float = 4.8, panels: tuple[int, int] = (1, 1)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = min(28.0, max(6.4, 1.0 + 0.55 * n * panels[1]))
    fig = Figure(figsize=(width, height * panels[0]), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes, never over the bars or lines."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, fontsize=8, **kw)


def usd_text(v: float) -> str:
    """``$1.2M``, ``$850k``, ``$12``: dollars as an axis tick reads them."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"${v / div:,.3g}{suffix}"
    return f"${v:,.3g}"


def _usd_axis(ax, axis: str = "y") -> None:
    """Dollar ticks (``$1.5M``), no ``1e6`` offset, on a linear or log axis."""
    from matplotlib.ticker import FuncFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: usd_text(v)))
    target.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))


def _xlabels(ax, names: Sequence[str]) -> None:
    ax.set_xticks(range(len(names)))
    rot = 0 if len(names) <= 4 and max((len(n) for n in names), default=0) <= 14 else 35
    ax.set_xticklabels(names, rotation=rot, ha="right" if rot else "center", rotation_mode="anchor", fontsize=8)


def plot_memory(results, title: str = ""):
    rows = _rows(results)
    names = [r["scenario"] for r in rows]
    fig = _figure(len(rows))
    ax = fig.add_subplot()
    bottom = [0.0] * len(rows)
    for i, (key, label) in enumerate(MEMORY_PARTS):
        vals = [_num(r.get(key)) / GIB for r in rows]
        vals = [0.0 if v != v else v for v in vals]
        ax.bar(range(len(rows)), vals, bottom=bottom, label=label, color=PALETTE[i], edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for j, r in enumerate(rows):
        cap = _num(r.get("memory_capacity_bytes")) / GIB
        if cap == cap:
            ax.hlines(cap, j - 0.45, j + 0.45, colors="black", linestyles="--", linewidth=1.2,
                      label="GPU capacity" if j == 0 else None)
        if r.get("memory_per_gpu_bytes") is None:
            ax.text(j, 0, "n/a", ha="center", va="bottom", fontsize=8, color=NOFIT_COLOR)
        elif not r.get("fits"):
            ax.bar([j], [bottom[j]], fill=False, hatch="//", edgecolor=NOFIT_COLOR, linewidth=0)
    ax.set_ylabel("memory per GPU (GiB)")
    ax.set_title(f"{title}: memory per GPU (most loaded stage)" if title else "memory per GPU (most loaded stage)")
    _xlabels(ax, names)
    _legend_outside(ax, reverse=True)  # top to bottom, as the parts are stacked
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_time(results, title: str = ""):
    rows = _rows(results)
    names = [r["scenario"] for r in rows]
    fig = _figure(len(rows))
    ax = fig.add_subplot()
    parts = [k for k in TIME_STEP_PARTS if any(_num(r.get(k)) > 0 for r in rows)]
    bottom = [0.0] * len(rows)
    for i, key in enumerate(parts):
        vals = [_num(r.get(key)) for r in rows]
        vals = [0.0 if v != v else v for v in vals]
        label = key.removeprefix("time_").removesuffix("_s").replace("_", " ")
        ax.bar(range(len(rows)), vals, bottom=bottom, label=label, color=PALETTE[i % len(PALETTE)],
               edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for j, r in enumerate(rows):
        if r.get("step_time_s") is None:
            ax.text(j, 0, "n/a", ha="center", va="bottom", fontsize=8, color=NOFIT_COLOR)
    ax.set_ylabel("step time (s)")
    ax.set_title(f"{title}: step-time breakdown" if title else "step-time breakdown")
    _xlabels(ax, names)
    if parts:
        _legend_outside(ax, reverse=True)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_compare(results, title: str = ""):
    rows = _rows(results)
    names = [r["scenario"] for r in rows]
    fig = _figure(len(rows), height=3.6, panels=(2, 2))
    panels = (("step_time_s", "step time (s)", 1.0), ("memory_per_gpu_bytes", "memory per GPU (GiB)", 1 / GIB),
              ("wall_clock_days", "wall clock (days)", 1.0), ("cost_usd", "cost", 1.0))
    axes = fig.subplots(2, 2)
    for ax, (key, label, scale) in zip(axes.flat, panels):
        vals = [_num(r.get(key)) * scale for r in rows]
        colors = [FITS_COLOR if r.get("fits") else NOFIT_COLOR for r in rows]
        ax.bar(range(len(rows)), [0.0 if v != v else v for v in vals], color=colors)
        if key == "memory_per_gpu_bytes":
            for j, r in enumerate(rows):
                cap = _num(r.get("memory_capacity_bytes")) / GIB
                if cap == cap:
                    ax.hlines(cap, j - 0.45, j + 0.45, colors="black", linestyles="--", linewidth=1)
        for j, v in enumerate(vals):
            if v != v:
                ax.text(j, 0, "n/a", ha="center", va="bottom", fontsize=7, color=NOFIT_COLOR)
        ax.set_ylabel(label)
        if key == "cost_usd":
            _usd_axis(ax)
        ax.grid(axis="y", alpha=0.3)
        _xlabels(ax, names)
    fig.suptitle(f"{title}: scenarios (red: does not fit)" if title else "scenarios (red: does not fit)")
    return fig


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better), by the first one."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(results, title: str = ""):
    rows = _rows(results)
    fig = _figure(14)
    ax = fig.add_subplot()
    ok = [r for r in rows if r.get("fits") and r.get("wall_clock_days") is not None and r.get("cost_usd") is not None]
    bad = [r for r in rows if not r.get("fits") and r.get("wall_clock_days") is not None
           and r.get("cost_usd") is not None]
    if bad:
        ax.scatter([_num(r["wall_clock_days"]) for r in bad], [_num(r["cost_usd"]) for r in bad], marker="x",
                   color="#999999", label="does not fit")
    if ok:
        pts = [(_num(r["wall_clock_days"]), _num(r["cost_usd"])) for r in ok]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=FITS_COLOR, label="fits")
        front = pareto_front(pts)
        if len(front) > 1:  # a one-point "front" is just the point: no line, no legend entry
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], color=NOFIT_COLOR,
                    drawstyle="steps-post", label="Pareto front (faster or cheaper than every other)")
        dense = len(front) > 4
        for n, i in enumerate(front):  # each point of the front named; a dense front alternates above/below
            text = ok[i]["scenario"] if dense else (f"{ok[i]['scenario']}\n{_days_text(pts[i][0])}, "
                                                    f"{usd_text(pts[i][1])}")
            ax.annotate(text, pts[i], textcoords="offset points", xytext=(0, 8 if n % 2 == 0 or not dense else -14),
                        ha="center", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no scenario that fits has a cost (training_tokens and a price are needed)",
                transform=ax.transAxes, ha="center")
    days = [_num(r["wall_clock_days"]) for r in ok + bad]
    if days and min(days) > 0 and max(days) / min(days) > 20:  # GPU-count sweeps span decades of days
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.4g}"))
    ax.set_xlabel("wall clock (days)")
    ax.set_ylabel("cost")
    _usd_axis(ax)
    ax.set_title(f"{title}: time vs cost" if title else "time vs cost")
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.12)  # room for the labels of the front's end points
    if ax.get_legend_handles_labels()[0]:  # below the axes, out of the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3, frameon=False, fontsize=8)
    return fig


def _days_text(d: float) -> str:
    return f"{d:,.1f} days" if d >= 1 else f"{d * 24:,.1f} h"


def kind_of(path, default: str = "compare") -> str:
    """The plot a file name asks for (``memory.png`` -> memory, ``plan-pareto.svg`` -> pareto), else ``default``."""
    stem = Path(path).stem.lower()
    named = [k for k in KINDS if k in stem]
    return named[0] if len(named) == 1 else default


PLOTTERS = {"memory": plot_memory, "time": plot_time, "compare": plot_compare, "pareto": plot_pareto}


def figure(results, kind: str = "compare", title: str = ""):
    """The matplotlib Figure of ``kind`` for ``results`` (rows or Results)."""
    if kind not in PLOTTERS:
        raise SpecError(f"--kind: {kind!r} unknown (expected one of {', '.join(KINDS)})")
    return PLOTTERS[kind](results, title)


def save(fig, path, title: str = "") -> Path:
    """Save ``fig`` as PNG or SVG by the extension, with the planner marker in its metadata."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise SpecError(f"plot {p}: unknown extension {suffix or '(none)'!r} (expected .png or .svg)")
    if suffix == ".png":
        meta = {"Software": PLOT_MARKER, "Title": title or "planner"}
    else:
        meta = {"Description": PLOT_MARKER, "Title": title or "planner", "Date": None}
    _atomic_write(p, lambda t: fig.savefig(str(t), format=suffix[1:], metadata=meta, dpi=120))
    return p


def plot_breakdowns(row: dict, path, force: bool = False) -> Path:
    """One plan's memory and step-time breakdowns side by side (``planner estimate --plot``)."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise SpecError(f"plot {p}: unknown extension {p.suffix or '(none)'!r} (expected .png or .svg)")
    check_writable(p, force, what="plot")
    fig = _figure(8, panels=(1, 2))
    fig.suptitle(str(row.get("scenario", "")), fontsize=10)
    for i, (maker, what) in enumerate(((plot_memory, "memory per GPU (most loaded stage)"),
                                       (plot_time, "step time"))):
        part = maker([row], row.get("scenario", ""))
        src = part.axes[0]
        ax = fig.add_subplot(1, 2, i + 1)
        for c in src.containers:  # redraw the stacked bars on the shared figure
            for rect in c:
                ax.add_patch(type(rect)(rect.get_xy(), rect.get_width(), rect.get_height(),
                                        facecolor=rect.get_facecolor(), edgecolor=rect.get_edgecolor(),
                                        label=c.get_label() if rect is c[0] else None))
        for coll in src.collections:  # capacity line
            for seg in coll.get_segments():
                ax.plot(seg[:, 0], seg[:, 1], "k--", linewidth=1.2, label="GPU capacity")
        ax.autoscale_view()
        ax.set_xticks([])
        ax.set_ylabel(src.get_ylabel())
        ax.set_title(what, fontsize=9)
        _legend_outside(ax)
        ax.grid(axis="y", alpha=0.3)
    return save(fig, p, row.get("scenario", ""))


def plot(results, path, kind: str = "compare", title: str = "", force: bool = False) -> Path:
    """Write the ``kind`` plot of ``results`` to ``path`` (PNG/SVG); never clobbers a file planner did not
    write unless ``force``."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise SpecError(f"plot {p}: unknown extension {p.suffix or '(none)'!r} (expected .png or .svg)")
    check_writable(p, force, what="plot")
    return save(figure(results, kind, title), p, title)


__all__ = ["KINDS", "figure", "kind_of", "usd_text", "pareto_front", "plot", "plot_breakdowns", "plot_compare", "plot_memory", "plot_pareto", "plot_time",
           "save"]
