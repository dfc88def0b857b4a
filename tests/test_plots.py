"""Plots people would put in a slide (issue 13): legends out of the data, dollar axes, labelled Pareto points, no
legend entry for a one-point front, `plan --plot memory.png` draws memory."""

from __future__ import annotations

from planner import plots

ROWS = [{"scenario": f"{g} GPUs", "fits": True, "wall_clock_days": 100.0 / g, "cost_usd": 1e6 * (1 + g / 1000),
         "gpus": g} for g in (8, 16, 32)]


def test_kind_from_file_name():
    assert plots.kind_of("memory.png") == "memory"
    assert plots.kind_of("out/plan-pareto.svg") == "pareto"
    assert plots.kind_of("plan.png") == "compare"


def test_usd_ticks():
    assert plots.usd_text(1.5e6) == "$1.5M" and plots.usd_text(850e3) == "$850k" and plots.usd_text(12) == "$12"


def test_pareto_labels_and_dollar_axis():
    fig = plots.figure(ROWS, "pareto")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert all(any(r["scenario"] in t for t in labels) for r in ROWS)
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.startswith("$") for t in ticks)
    assert ax.yaxis.get_offset_text().get_text() == ""


def test_one_point_front_has_no_legend_entry():
    fig = plots.figure(ROWS[:1], "pareto")
    _, labels = fig.axes[0].get_legend_handles_labels()
    assert not any("Pareto" in lab for lab in labels)


def test_memory_legend_outside_the_axes():
    rows = [{"scenario": "a", "fits": True, "memory_weights_bytes": 2**33, "memory_per_gpu_bytes": 2**33,
             "memory_capacity_bytes": 80 * 2**30}]
    fig = plots.figure(rows, "memory")
    fig.canvas.draw()
    ax = fig.axes[0]
    leg, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert leg.x0 >= box.x1  # to the right of the data
