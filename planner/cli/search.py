"""`planner search`: the best way to split a model across a cluster (see :mod:`planner.search`).

Data on stdout (a ranked table, or JSON/CSV rows), messages and the progress bar on stderr. Exit 0 when a layout
fits, 1 when none does, 2 for bad input.

The run and hardware flags (``--model``, ``--gpu``, ``--seq``, ``--tokens``, ...) are those of the flag table in
:mod:`planner.cli.common` and set the plan as in ``planner estimate``; the layout flags take lists
(``--tp 4,8``) and constrain the search instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import time
from enum import Enum
from pathlib import Path
from typing import Optional, Sequence

import typer
from rich.markup import escape

from .. import report
from ..errors import EXIT_INFEASIBLE, SpecError
from .common import FLAGS, FORMAT_OPT, Fmt, build_plan, emit, flag_args, note, param, with_params
from ..units import GIB



class Rank(str, Enum):
    step_time = "step-time"
    cost = "cost"
    time_to_train = "time-to-train"
    step_time_p90 = "step-time-p90"
    cost_p90 = "cost-p90"
    time_to_train_p90 = "time-to-train-p90"


# ---------------------------------------------------------------------------------------------------------------
# Parsing of list/range flags
# ---------------------------------------------------------------------------------------------------------------

#: Work-size guards of the search's flags: the largest value of a degree, count or batch (the layout spec's GPU
#: bound) and the most values one list flag takes.
MAX_GPUS = 2**24
MAX_LIST = 256


def _bounded_opts(opts: dict) -> None:
    """SpecError naming the first integer option outside its range (``--max-gpus`` at most the search's bound)."""
    from ..specs.layout import MAX_SEARCH_GPUS

    for key, hi in (("max_gpus", MAX_SEARCH_GPUS), ("min_gpus", MAX_SEARCH_GPUS), ("max_tp", MAX_GPUS),
                    ("max_pp", MAX_GPUS), ("max_cp", MAX_GPUS), ("max_ep", MAX_GPUS), ("max_vpp", MAX_GPUS),
                    ("max_micro_batch", MAX_GPUS)):
        v = opts.get(key)
        if v is not None and not 1 <= v <= hi:
            raise SpecError(f"--{key.replace('_', '-')}: {v} (between 1 and {hi:,})")


def _int_list(flag: str, text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``8`` or ``4,8`` -> (4, 8)."""
    if text is None:
        return None
    try:
        vals = tuple(int(x) for x in str(text).replace(" ", "").split(",") if x)
    except ValueError:
        raise SpecError(f"--{flag}: expected an integer or a comma-separated list of integers (got {text!r})") from None
    if not vals or min(vals) < 1:
        raise SpecError(f"--{flag}: values must be positive integers (got {text!r})")
    if max(vals) > MAX_GPUS or len(vals) > MAX_LIST:
        raise SpecError(f"--{flag}: at most {MAX_LIST} values of at most {MAX_GPUS:,} (got {text!r:.60})")
    return vals


def _batch_list(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``1024``, ``512,1024,2048`` or a range ``512:4096`` (powers-of-two multiples of the lower end)."""
    if text is None:
        return None
    t = str(text).replace(" ", "")
    if ":" in t:
        try:
            lo, hi = (int(x) for x in t.split(":"))
        except ValueError:
            raise SpecError(f"--global-batch: expected LO:HI with integers (got {text!r})") from None
        if lo < 1 or hi < lo or hi > MAX_GPUS:
            raise SpecError(f"--global-batch: need 1 <= LO <= HI <= {MAX_GPUS:,} (got {text!r})")
        vals, b = [], lo
        while b <= hi:
            vals.append(b)
            b *= 2
        return tuple(vals)
    return _int_list("global-batch", t)


def _choice_list(flag: str, text: Optional[str], allowed: tuple[str, ...]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    vals = tuple(x for x in str(text).replace(" ", "").split(",") if x)
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise SpecError(f"--{flag}: expected one or more of {', '.join(allowed)} (got {text!r})")
    return vals


# ---------------------------------------------------------------------------------------------------------------
# Progress bar (stderr), started only when the work takes more than a moment
# ---------------------------------------------------------------------------------------------------------------

class _Progress:
    DELAY_S = 0.3

    def __init__(self):
        self.t0 = time.perf_counter()
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and not report.show_progress():  # piped or --quiet: no bar
            return
        if self.bar is None:
            if done >= total or time.perf_counter() - self.t0 < self.DELAY_S:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("evaluating layouts"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=report.stderr_console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("search", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

def _days(v) -> str:
    if v is None:
        return "—"
    return f"{v:,.1f} d" if v >= 1 else f"{v * 24:,.1f} h"


def _shard(r: dict) -> str:
    return f"fsdp-{r['fsdp']}" if r["fsdp"] != "none" else f"zero{r['zero_stage']}"


def layout_text(r: dict) -> str:
    """Compact parallel layout: ``tp8 pp9/v7 cp2 dp128`` (vpp, cp and ep shown when > 1)."""
    out = f"tp{r['tp']} pp{r['pp']}" + (f"/v{r['vpp']}" if r["vpp"] > 1 else "")
    out += (f" cp{r['cp']}" if r["cp"] > 1 else "") + (f" ep{r['ep']}" if r["ep"] > 1 else "")
    return out + f" dp{r['dp']}"


def _table(title: str):
    """A table that stacks its rows on a narrow terminal instead of cutting the layouts (``report.FitTable``)."""
    from rich import box

    return report.FitTable(title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _layout_columns(t, batch_varies: bool) -> None:
    for c, just in (("gpus", "right"), ("layout", "left"), ("mb×acc", "right")):
        t.add_column(c, justify=just, ident=c != "mb×acc")
    if batch_varies:
        t.add_column("batch", justify="right")
    for c in ("shard", "sp", "recomp"):
        t.add_column(c, justify="left")


def _layout_cells(r: dict, batch_varies: bool) -> list[str]:
    cells = [f"{r['gpus']:,}", layout_text(r), f"{r['micro_batch_seqs']}×{r['grad_accum_steps']:g}"]
    if batch_varies:
        cells.append(f"{r['global_batch_seqs']:,}")
    return cells + [_shard(r), "sp" if r["sequence_parallel"] else "", r["recompute"]]


def costed_as_line(rows: list[dict]) -> Optional[str]:
    """With no framework named, the framework each ranked row was costed as (``costed_framework``), by rank:
    ``costed as (no framework named): megatron #1, #2; torchtitan #3``; None when the plan names one."""
    if not rows or rows[0].get("framework") is not None:
        return None
    by = _ranks_by(rows, lambda r: [r.get("costed_framework") or "none"])
    return "costed as (no framework named): " + "; ".join(f"{name} {_ranks(ranks)}" for name, ranks in by.items())


def _ranks_by(rows: list[dict], keys_of) -> dict[str, list[int]]:
    """Key -> the ranks of the rows ``keys_of(row)`` lists it for, keys in order of first appearance."""
    by: dict[str, list[int]] = {}
    for r in rows:
        for key in keys_of(r):
            by.setdefault(key, []).append(r["rank"])
    return by


def _ranks(ranks: list[int]) -> str:
    return "#" + ", #".join(map(str, ranks))


def _ranked_table(title: str, rows: list[dict], batch_varies: bool, with_reason: bool = False):
    t = _table(title)
    t.add_column("#", justify="right", ident=True)
    _layout_columns(t, batch_varies)
    per_step = bool(rows) and rows[0]["cost_usd"] is None
    for c in ("step", "tok/s/GPU", "MFU", "mem/GPU", "train", "cost/step" if per_step else "cost"):
        t.add_column(c, justify="right")
    if with_reason:
        t.add_column("why rejected", justify="left", overflow="fold")
    for r in rows:
        cells = [str(r["rank"])] + _layout_cells(r, batch_varies) + [
            f"{r['step_time_s']:,.2f} s", f"{r['tokens_per_s_per_gpu']:,.0f}",
            f"{100 * r['mfu']:.1f}%" + (OUTSIDE_MARK if r.get("extrapolation") else ""),
            f"{r['memory_per_gpu_bytes'] / GIB:,.1f} G", _days(r["wall_clock_days"]),
            report.usd(r["cost_usd"] if r["cost_usd"] is not None else r["cost_per_step_usd"])]
        if with_reason:
            cells.append(r["reason"] or "")
        t.add_row(*cells)
    return t


#: marks a row outside the validated region (its reasons are listed under the table: ``extrapolation_lines``)
OUTSIDE_MARK = "*"


def extrapolation_lines(rows: list[dict]) -> list[str]:
    """One line per distinct reason the rows of a table lie outside the validated region, naming the rows (by
    rank) it applies to: what ``estimate`` prints for one plan, for a ranked table."""
    by_reason = _ranks_by(rows, lambda r: filter(None, (x.strip() for x in (r.get("extrapolation") or "").split(";"))))
    return [f"{OUTSIDE_MARK} outside the validated region ({_ranks(ranks)}): {reason}"
            for reason, ranks in by_reason.items()]


TIME_PARTS = ("compute_s", "recompute_s", "tp_comm_s", "cp_comm_s", "ep_comm_s", "pp_comm_s", "bubble_s", "dp_comm_s",
              "optimizer_s")
MEM_PARTS = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "logits_bytes",
             "overhead_bytes")


def _breakdown_table(rows: list[dict]):
    """Time parts (s) and memory parts (GiB) of each row; parts that are zero in every row are left out."""
    tparts = [p for p in TIME_PARTS if any(r["time_" + p] for r in rows)]
    mparts = [p for p in MEM_PARTS if any(r["memory_" + p] for r in rows)]
    t = _table("breakdowns: step time (s) | memory on the most loaded GPU (GiB)")
    t.add_column("#", justify="right", ident=True)
    for p in tparts:
        t.add_column(p.removesuffix("_s").replace("_comm", "-comm"), justify="right")
    t.add_column("|", justify="center")
    for p in mparts:
        t.add_column(p.removesuffix("_bytes").replace("activations", "activ").replace("gradients", "grads")
                     .replace("optimizer", "optim").replace("overhead", "ovh"), justify="right")
    for r in rows:
        t.add_row(str(r["rank"]), *[f"{r['time_' + p]:.3f}" for p in tparts], "|",
                  *[f"{r['memory_' + p] / GIB:.1f}" for p in mparts])
    return t


def _pareto_table(rows: list[dict], batch_varies: bool):
    cheapest = min(r["cost_usd"] for r in rows)
    t = _table("Pareto front across GPU counts: wall-clock time to train vs dollars")
    _layout_columns(t, batch_varies)
    for c in ("step", "MFU", "train", "GPU-hours", "cost", "vs cheapest"):
        t.add_column(c, justify="right")
    for r in rows:
        gh = r["wall_clock_days"] * 24 * r["gpus"]
        t.add_row(*_layout_cells(r, batch_varies), f"{r['step_time_s']:,.2f} s", f"{100 * r['mfu']:.1f}%",
                  _days(r["wall_clock_days"]), report.count(gh), report.usd(r["cost_usd"]),
                  f"{100 * (r['cost_usd'] / cheapest - 1):+.1f}%")
    return t


def pareto_sentences(rows: list[dict]) -> list[str]:
    """Plain-language reading of a Pareto front: the cheapest point, then faster ones at their extra cost."""
    if not rows:
        return []
    by_cost = min(rows, key=lambda r: r["cost_usd"])
    c0 = by_cost["cost_usd"]

    def say(r):
        return f"{r['gpus']:,} GPUs for {_days(r['wall_clock_days']).replace(' d', ' days').replace(' h', ' hours')}"

    if len(rows) == 1:
        return [f"fastest and cheapest: {say(by_cost)} ({report.usd(c0)}); no other GPU count is faster or cheaper"]
    out = [f"cheapest: {say(by_cost)} ({report.usd(c0)})"]
    picked = {id(by_cost)}
    for limit in (0.10, 0.50, float("inf")):
        within = [r for r in rows if r["cost_usd"] <= c0 * (1 + limit)]
        fastest = min(within, key=lambda r: r["wall_clock_days"])
        if id(fastest) in picked:
            continue
        picked.add(id(fastest))
        extra = 100 * (fastest["cost_usd"] / c0 - 1)
        label = "fastest" if limit == float("inf") else f"fastest within +{100 * limit:.0f}% cost"
        out.append(f"{label}: {say(fastest)} at {extra:.{1 if extra < 10 else 0}f}% more cost "
                   f"({report.usd(fastest['cost_usd'])})")
    return out


def thin(rows: list[dict], most: int = 16) -> list[dict]:
    """At most ``most`` rows, spread evenly in log(GPUs), ends kept."""
    if len(rows) <= most:
        return rows
    import numpy as np

    g = np.log([r["gpus"] for r in rows])
    targets = np.linspace(g.min(), g.max(), most)
    keep = sorted({int(np.argmin(np.abs(g - x))) for x in targets})
    return [rows[i] for i in keep]


def estimate_command_line(plan_file: Optional[Path], model: Optional[str], gpu: Optional[str], row: dict,
                          seq_len: int, extra: Sequence[str] = ()) -> str:
    """The `planner estimate` command for one layout (reproduces the row exactly); ``extra``: the run flags the
    search was given (precision, optimizer, tokens, price, kernels)."""
    parts = ["planner", "estimate"]
    if plan_file is not None:
        parts.append(str(plan_file))
    layout = {"model": model or None, "gpu": gpu or None, "seq": seq_len}
    layout.update({k: row[k] for k in ("gpus", "tp", "pp", "cp", "ep", "vpp")})
    layout.update(micro_batch=row["micro_batch_seqs"], global_batch=row["global_batch_seqs"],
                  recompute=row["recompute"], sp=bool(row["sequence_parallel"]))
    if row["fsdp"] != "none":
        layout["fsdp"] = row["fsdp"]
    else:
        layout.update(zero=row["zero_stage"], fsdp="none")
    parts += flag_args(layout) + list(extra)
    return " ".join(shlex.quote(p) for p in parts)


#: Table flags that set the plan a search starts from, and (after the first three) that its best layout's
#: `planner estimate` command repeats.
RUN_FLAGS = ("model", "gpu", "seq", "global_batch_tokens", "tokens", "precision", "optimizer", "flash", "offload",
             "framework", "schedule", "eager", "price", "price_source", "cluster", "memory_headroom")
_REPEATED = ("tokens", "precision", "optimizer", "price", "price_source", "flash", "offload", "framework", "schedule",
             "eager", "cluster", "memory_headroom")


def _run_flags(flags: dict) -> list[str]:
    """The run/hardware flags of a search, as `planner estimate` takes them."""
    return flag_args({k: flags.get(k) for k in _REPEATED})


# ---------------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------------

LIST_HELP = "One value, or a comma-separated list (e.g. 4,8)."


def _opt(name: str, annotation, default, *decls: str, help: str, panel: str = "Layout search") -> inspect.Parameter:
    return param(name, annotation, typer.Option(default, *decls, help=help, rich_help_panel=panel))


def _fix(name: str, what: str) -> inspect.Parameter:
    """A layout flag of the search: one value or a list, fixing a degree (``--tp 4,8``)."""
    return _opt(name, Optional[str], None, help=f"Fix the {what}. " + LIST_HELP)


@with_params(
    param("plan_file", Optional[Path], typer.Argument(None, help="Plan YAML (model, run, hardware; its layout is "
                                                      "ignored except for kernels and offload).",
                                                      metavar="[PLAN.yaml]")),
    FLAGS["model"].param(),
    FLAGS["gpu"].param(),
    _opt("gpus", Optional[str], None, help="GPU count(s) to search. " + LIST_HELP),
    _opt("max_gpus", Optional[int], None, help="Search every whole node up to this many GPUs (and 1..node below "
         "one node)."),
    _opt("min_gpus", int, 1, help="Smallest GPU count of a --max-gpus range."),
    _fix("tp", "tensor-parallel degree"),
    _fix("pp", "pipeline-parallel degree"),
    _fix("cp", "context-parallel degree"),
    _fix("ep", "expert-parallel degree"),
    _fix("vpp", "virtual pipeline stages per GPU"),
    _fix("dp", "data-parallel degree"),
    _opt("max_tp", Optional[int], None, help="Largest tensor-parallel degree."),
    _opt("max_pp", Optional[int], None, help="Largest pipeline-parallel degree."),
    _opt("max_cp", Optional[int], None, help="Largest context-parallel degree (default: keep >= 1024 tokens per "
         "rank)."),
    _opt("max_ep", Optional[int], None, help="Largest expert-parallel degree."),
    _opt("max_vpp", Optional[int], None, help="Most virtual pipeline stages per GPU."),
    _fix("micro_batch", "micro-batch, sequences"),
    _opt("max_micro_batch", Optional[int], None, help="Largest micro-batch, sequences."),
    _opt("global_batch", Optional[str], None, help="Global batch, sequences: N, a list N,M, or a range LO:HI (LO, "
         "2·LO, 4·LO, ... up to HI)."),
    FLAGS["global_batch_tokens"].param(),
    _opt("recompute", Optional[str], None, help="Recomputation options: none, selective, full; one or a "
         "comma-separated list (e.g. selective,full)."),
    _opt("zero", Optional[str], None, help="ZeRO stages 0-3; one or a comma-separated list (e.g. 1,3)."),
    _opt("fsdp", Optional[str], None, help="FSDP options: none, full, hybrid; one or a comma-separated list (e.g. "
         "none,full)."),
    _opt("sp", Optional[bool], None, "--sp/--no-sp", help="Sequence parallelism on (tp > 1 only) or off (default: "
         "both)."),
    FLAGS["flash"].param(),
    FLAGS["offload"].param(),
    FLAGS["framework"].but(help="Framework that will run it (megatron, deepspeed, torchtitan, fsdp, ddp): only "
                           "layouts it can run are ranked.").param(),
    FLAGS["eager"].param(),
    FLAGS["schedule"].but(help="Pipeline schedule of every candidate with pp > 1: 1f1b (interleaved when vpp > 1) or "
                          "zb-h1 (vpp 1 only).").param(),
    FLAGS["seq"].param(),
    FLAGS["tokens"].but(help="Training tokens in total (for time-to-train, cost, Pareto).").param(),
    FLAGS["precision"].param(),
    FLAGS["optimizer"].param(),
    _opt("rank", Rank, Rank.step_time, "--rank", help="Rank by step time, cost (of the whole run with --tokens, else "
         "per step: step time x GPUs x price) or wall-clock time to train; a -p90 ranking uses the pessimistic end of "
         "each layout's cross-validated band (wider outside the validated region).", panel="Ranking"),
    FLAGS["price"].param(),
    FLAGS["price_source"].param(),
    FLAGS["cluster"].param(),
    FLAGS["memory_headroom"].param(),
    _opt("top", int, 10, help="Rows of the ranked table (0 = every candidate).", panel="Ranking"),
    _opt("rejected", int, 5, help="Rejected layouts ranked ahead of the winner to show, with the reason.",
         panel="Ranking"),
    _opt("include_rejected", bool, False, "--include-rejected", help="Rank rejected layouts too (JSON/CSV; their "
         "'reason' says why).", panel="Ranking"),
    _opt("pareto", bool, True, "--pareto/--no-pareto", help="Pareto front of time to train vs dollars across GPU "
         "counts.", panel="Ranking"),
    _opt("plot", Optional[Path], None, "--plot", help="Write the time-to-train vs cost plot of the best layout per "
         "GPU count, Pareto front marked (PNG or SVG; needs --tokens).", panel="Output"),
    _opt("force", bool, False, "--force", help="Let --plot overwrite a file planner did not write.", panel="Output"),
    param("fmt", Fmt, FORMAT_OPT),
)
def search_command(plan_file: Optional[Path], rank: Rank, top: int, rejected: int, include_rejected: bool,
                   pareto: bool, plot: Optional[Path], force: bool, fmt: Fmt, **opts):
    """Search every layout (tp/pp/vpp/cp/ep/dp, micro-batch, recomputation, ZeRO/FSDP, sequence parallel) for the
    fastest, cheapest or quickest-to-train one that fits. Exit 1 if none fits."""
    from ..search import search

    if top < 0 or rejected < 0:
        raise SpecError(f"--top {top}, --rejected {rejected}: must be >= 0")
    flags = {k: opts.pop(k) for k in RUN_FLAGS}
    batches = _batch_list(opts.pop("global_batch"))
    if batches is not None and len(batches) == 1:
        flags["global_batch"], batches = batches[0], None
    plan = build_plan(plan_file, flags)
    c = _constraints(opts, batches)
    bar = _Progress()
    t0 = time.perf_counter()
    try:
        res = search(plan, c, rank_by=rank.value, progress=bar)
        res.metric  # raises a SpecError if the ranking needs what the run lacks
    finally:
        bar.close()
    out = _Outcome.of(res, top, rejected, include_rejected, pareto, wall_s=time.perf_counter() - t0)
    if plot is not None:
        _plot(res, plot, plan.model.name, force)
    if fmt == Fmt.json:
        emit(fmt, out.payload())
    elif fmt == Fmt.csv:
        emit(fmt, None, rows=out.ranked)
    else:
        _print_tables(out, estimate_command_line(plan_file, flags["model"], flags["gpu"], out.ranked[0],
                                                 plan.run.seq_len, _run_flags(flags))
                      if out.ranked and out.ranked[0]["feasible"] else None)
    _exit_unless_one_fits(out)


def _constraints(opts: dict, batches: Optional[tuple[int, ...]]):
    """The search constraints from the layout flags (lists parsed, each checked)."""
    from ..search import Constraints

    zero = opts["zero"]
    _bounded_opts(opts)
    return Constraints(
        gpus=_int_list("gpus", opts["gpus"]), min_gpus=opts["min_gpus"], max_gpus=opts["max_gpus"],
        tp=_int_list("tp", opts["tp"]), pp=_int_list("pp", opts["pp"]), cp=_int_list("cp", opts["cp"]),
        ep=_int_list("ep", opts["ep"]), vpp=_int_list("vpp", opts["vpp"]), dp=_int_list("dp", opts["dp"]),
        max_tp=opts["max_tp"], max_pp=opts["max_pp"], max_cp=opts["max_cp"], max_ep=opts["max_ep"],
        max_vpp=opts["max_vpp"],
        micro_batch=_int_list("micro-batch", opts["micro_batch"]), max_micro_batch=opts["max_micro_batch"],
        global_batch=batches,
        recompute=_choice_list("recompute", opts["recompute"], ("none", "selective", "full")),
        zero=tuple(int(z) for z in _choice_list("zero", zero, ("0", "1", "2", "3"))) if zero is not None else None,
        fsdp=_choice_list("fsdp", opts["fsdp"], ("none", "full", "hybrid")),
        sp=None if opts["sp"] is None else (opts["sp"],),
    )


@dataclasses.dataclass
class _Outcome:
    """What a search shows: the ranked rows, the rejected layouts ranked ahead of the best, the Pareto front."""

    res: object
    summary: dict
    ranked: list[dict]
    rej_rows: list[dict]
    by_reason: dict
    pareto_rows: list[dict]
    sentences: list[str]

    @classmethod
    def of(cls, res, top: int, rejected: int, include_rejected: bool, pareto: bool, wall_s: float) -> "_Outcome":
        ranked_idx = res.ranked(top if top > 0 else None, include_rejected=include_rejected)
        ranked = [{"rank": n, **r} for n, r in enumerate(res.rows(ranked_idx), start=1)]
        rej_idx, by_reason = res.rejected_better(rejected)
        # place in the ranking of every candidate, rejected ones included
        rej_rows = [{"rank": res.position(int(i)), **r} for i, r in zip(rej_idx, res.rows(rej_idx))]
        pareto_rows = res.rows(res.pareto()) if pareto and len(res.space.gpu_counts) > 1 else []
        summary = res.summary()
        summary["wall_s"] = wall_s
        return cls(res, summary, ranked, rej_rows, by_reason, pareto_rows, pareto_sentences(pareto_rows))

    def payload(self) -> dict:
        return {"summary": self.summary, "rows": self.ranked,
                "rejected_ahead_of_best": {"count_by_reason": self.by_reason, "rows": self.rej_rows},
                "pareto": self.pareto_rows, "pareto_summary": self.sentences}


def _plot(res, plot: Path, title: str, force: bool) -> None:
    """The time-to-train vs cost plot of the best layout per GPU count."""
    from ..plots import plot as write_plot

    per_count = res.rows(res.best_per_gpu_count())
    points = [{**r, "scenario": f"{r['gpus']:,} GPUs"} for r in per_count]
    note(f"wrote {write_plot(points, plot, kind='pareto', title=title, force=force)}")


def _exit_unless_one_fits(out: _Outcome) -> None:
    """Exit 1, saying why on stderr, when no candidate layout fits (or the constraints leave none)."""
    if out.res.best() is not None:
        return
    if out.res.n == 0:
        report.stderr_console().print("[yellow]no candidate layout:[/yellow] the constraints leave none (sequence "
                                      "parallelism needs tp > 1; a fixed dp must be what the GPU count leaves)",
                                      highlight=False)
        raise typer.Exit(EXIT_INFEASIBLE)
    why = ", ".join(f"{k} {v:,}" for k, v in sorted(out.by_reason.items(), key=lambda kv: -kv[1])) or "no candidates"
    report.stderr_console().print(f"[yellow]no layout fits:[/yellow] {out.summary['candidates']:,} candidates "
                                  f"rejected ({why})", highlight=False)
    raise typer.Exit(EXIT_INFEASIBLE)


def _print_tables(out: _Outcome, best_command: Optional[str]) -> None:
    """The search for people: a header line, the ranked and breakdown tables, the rejected layouts ranked ahead of
    the best, the Pareto front, and the best layout as a `planner estimate` command."""
    con = report.stdout_console()
    bv = len(out.summary["global_batch_seqs"]) > 1
    _print_header(con, out.res, out.summary, bv)
    if out.ranked:
        con.print(_ranked_table(f"top {len(out.ranked)} layouts", out.ranked, bv,
                                with_reason=any(r["reason"] for r in out.ranked)))
        for line in extrapolation_lines(out.ranked):
            con.print(f"[yellow]{escape(line)}[/yellow]", highlight=False)
        costed = costed_as_line(out.ranked)
        if costed:
            con.print(f"[dim]{escape(costed)}[/dim]", highlight=False)
        con.print(_breakdown_table(out.ranked))
    if out.rej_rows:
        con.print(_rejected_table(out, bv))
        for line in extrapolation_lines(out.rej_rows):
            con.print(f"[yellow]{escape(line)}[/yellow]", highlight=False)
    _print_pareto(con, out, bv)
    if best_command is not None:
        con.print("[dim]the best layout, as an estimate:[/dim] " + best_command, highlight=False, soft_wrap=True)


def _print_header(con, res, summary: dict, bv: bool) -> None:
    counts = summary["gpu_counts"]
    with_cand = len(set(res.column("gpus").tolist())) if res.n else 0
    span = (f"{counts[0]:,} GPUs" if len(counts) == 1 else f"{len(counts):,} GPU counts from {counts[0]:,} to "
            f"{counts[-1]:,} ({with_cand:,} with candidates)") if counts else "no GPU count"
    con.print(f"[bold]{summary['model']}[/bold] on [bold]{summary['hardware']}[/bold], "
              f"seq {summary['seq_len_tokens']:,}, "
              f"{span}: {summary['candidates']:,} candidate layouts, {summary['feasible']:,} fit "
              f"(evaluated in {summary['timings_s']['evaluate_s']:.2f} s, "
              f"{(summary['candidates_per_s'] or 0) / 1e6:.1f}M/s). Ranked by {res.rank_by}"
              + (" per token (the global batch varies)." if bv and res.rank_by == "step-time" else "."),
              highlight=False)
    for n in summary["notes"]:
        con.print(f"[dim]note: {n}[/dim]", highlight=False)


def _rejected_table(out: _Outcome, bv: bool):
    total = sum(out.by_reason.values())
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(out.by_reason.items(), key=lambda kv: -kv[1]))
    title = (f"rejected layouts ranked ahead of the best ({total:,}: {reasons}); the {len(out.rej_rows)} nearest"
             if out.res.best() is not None else f"no layout fits ({total:,} rejected: {reasons}); the best rejected")
    return _ranked_table(title, out.rej_rows, bv, with_reason=True)


def _print_pareto(con, out: _Outcome, bv: bool) -> None:
    """The Pareto front and its reading, or a note on what it needs."""
    res, several = out.res, len(out.summary["gpu_counts"]) > 1
    if out.pareto_rows:
        con.print(_pareto_table(thin(out.pareto_rows), bv))
        for s in out.sentences:
            con.print(f"  {s}", highlight=False)
    elif res.plan.run.training_tokens is None and several:
        note("no Pareto front: it needs the training tokens (--tokens)")
    elif res.price_usd_per_gpu_hour is None and several:
        note("no Pareto front: it needs a price (--price)")
