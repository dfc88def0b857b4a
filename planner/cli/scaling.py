"""`planner scaling ...`: predicted loss, compute-optimal size, isoFLOP curves and fits of your own law.

Thin like the rest of the CLI: parse, call :mod:`planner.core.scaling`, render through ``planner.cli.common.emit``
(table for people, json/csv for programs). Warnings (a query far outside a law's fitted range) go to stderr and
into the JSON under ``warnings``. Plots (``--plot FILE.png|FILE.svg``) need matplotlib and use its Agg/SVG
canvases through ``matplotlib.figure.Figure`` (no pyplot, no display).

Counts accept SI suffixes: ``70B`` (1e9), ``1.4T`` (1e12), ``300M``, ``5k``, or plain numbers ``5.76e23``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from .. import report
from ..errors import SpecError
from .common import FORMAT_OPT, Fmt, emit

scaling_app = typer.Typer(
    no_args_is_help=True,
    help="Scaling laws: predicted loss, compute-optimal model size, isoFLOP curves, and fits to your own runs.",
)

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}

LAW_OPT = typer.Option("besiroglu2024", "--law", "-l",
                       help="Scaling law: besiroglu2024 (default), hoffmann2022, kaplan2020, muennighoff2023.")
PLOT_OPT = typer.Option(None, "--plot", help="Write a plot to FILE.png or FILE.svg (needs matplotlib).",
                        metavar="FILE")
FORCE_OPT = typer.Option(False, "--force", help="Let --plot overwrite a file planner did not write.")


#: Largest count a scaling query takes: parameters and tokens (1e30), FLOPs (1e40) — far beyond any run, small
#: enough that no power or product of them overflows a float.
MAX_COUNT = {"--flops": 1e40}
MAX_COUNT_DEFAULT = 1e30
#: Smallest count a scaling query takes (below it the laws' power terms give losses whose perplexity overflows):
#: 1e3 parameters or tokens, 1e7 FLOPs.
MIN_COUNT = {"--flops": 1e7}
MIN_COUNT_DEFAULT = 1e3
#: Bounds of the isoFLOP sweep and of the bootstrap (work-size guards).
MAX_ISOFLOP_POINTS = 10_000
MAX_CURVES = 100
MAX_BOOTSTRAP = 10_000


def _finite(name: str, v: Optional[float], lo: Optional[float] = None, hi: Optional[float] = None,
            lo_open: bool = False) -> None:
    """SpecError naming ``name`` unless ``v`` is None or a finite number within [lo, hi] ((lo, hi] if lo_open)."""
    if v is None:
        return
    if not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
        rng = f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else ""
        if hi is not None:
            rng = (rng + " and " if rng else "") + f"<= {hi:g}"
        raise SpecError(f"{name}: must be a finite number {rng} (got {v})")


def parse_count(text: Optional[str], what: str) -> Optional[float]:
    """'70B' -> 7e10, '1.4T' -> 1.4e12, '5.76e23' -> 5.76e23; SpecError naming ``what`` otherwise (not a number,
    not positive, not finite, or above :data:`MAX_COUNT`)."""
    if text is None:
        return None
    t = str(text).strip().replace("_", "").replace(",", "")
    mult = 1.0
    if t and t[-1].lower() in _SUFFIX:
        mult, t = _SUFFIX[t[-1].lower()], t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        raise SpecError(f"{what}: not a number (got {text!r}; use e.g. 7e10, 70B, 1.4T)") from None
    if not math.isfinite(v) or v <= 0:
        raise SpecError(f"{what}: must be positive (got {text!r})")
    hi = MAX_COUNT.get(what, MAX_COUNT_DEFAULT)
    if v > hi:
        raise SpecError(f"{what}: {v:.3g} is above {hi:.0e}, the largest planner takes")
    lo = MIN_COUNT.get(what, MIN_COUNT_DEFAULT)
    if v < lo:
        raise SpecError(f"{what}: {v:.3g} is below {lo:.0e}, the smallest planner takes")
    return v


def _law(name: str):
    from ..core.scaling import get_law

    return get_law(name)


class _Warnings:
    """Collect ExtrapolationWarnings raised inside the block; :meth:`flush` prints them to stderr."""

    def __enter__(self):
        from ..core.scaling import ExtrapolationWarning

        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always", ExtrapolationWarning)
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)

    def messages(self, extra=()) -> list[str]:
        out: list[str] = []
        for m in [str(w.message) for w in self.caught] + list(extra):
            if m not in out:
                out.append(m)
        return out


def _print_warnings(msgs) -> None:
    con = report.stderr_console()
    for m in msgs:
        con.print(f"[yellow]warning:[/yellow] {m}", highlight=False)


def _csv_row(d: dict) -> dict:
    """One flat CSV row: lists (warnings) joined with '; ', nested dicts left out."""
    return {k: ("; ".join(map(str, v)) if isinstance(v, list) else v) for k, v in d.items()
            if not isinstance(v, dict)}


def _fmt_loss(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def _table_view(d: dict) -> dict:
    """Values for the rich table: losses with 4 decimals (report.human keeps 3 significant digits)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (list, dict)):
            continue
        if isinstance(v, float) and ("loss" in k or k in ("E", "alpha", "beta") or k.endswith("_exponent")):
            out[k] = _fmt_loss(v)
        else:
            out[k] = v
    return out


def _check_plot_path(plot: Optional[Path], force: bool = False) -> None:
    """Before any work: a .png/.svg name that planner may write (see :func:`planner.io.files.check_writable`)."""
    if plot is None:
        return
    if plot.suffix.lower() not in (".png", ".svg"):
        raise SpecError(f"--plot: FILE must end in .png or .svg (got {plot})")
    from ..io.files import check_writable

    check_writable(plot, force, what="--plot")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SpecError("--plot needs matplotlib (pip install matplotlib)") from None


def _new_figure(ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4 * ncols, 4.8), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, plot: Path, force: bool = False) -> None:
    """Through the output boundary: refuse a file planner did not write, write atomically with the plot marker."""
    from ..io.files import check_writable
    from ..plots import save

    check_writable(plot, force, what="--plot")
    save(fig, plot, "planner scaling")
    report.stderr_console().print(f"[dim]note:[/dim] plot written to {plot}", highlight=False)


# ---------------------------------------------------------------------------------------------------------------
@scaling_app.command("laws")
def laws_cmd(fmt: Fmt = FORMAT_OPT):
    """List the preset laws: constants, fitted ranges, sources, and the tokens/parameter each implies."""
    from dataclasses import asdict

    from ..core.scaling import LAWS, compute_optimal

    rows = []
    for name, law in LAWS.items():
        consts = {k: v for k, v in asdict(law).items()
                  if k not in ("name", "source", "n_range", "d_range", "data", "n_kind", "base")}
        base = getattr(law, "base", None)
        if base is not None:
            consts = {**{k: getattr(base, k) for k in ("E", "A", "B", "alpha", "beta")}, **consts}
        rows.append({
            "law": name, "default": name == "besiroglu2024", "n_kind": law.n_kind,
            "params_min": law.n_range[0], "params_max": law.n_range[1],
            "tokens_min": law.d_range[0], "tokens_max": law.d_range[1],
            "tokens_per_param_at_5.76e23": float(compute_optimal(5.76e23, law, warn=False).tokens_per_param),
            "constants": "; ".join(f"{k}={v:.6g}" for k, v in consts.items()),
            "data": law.data, "source": law.source,
        })
    cols = ["law", "default", "n_kind", "params_min", "params_max", "tokens_min", "tokens_max",
            "tokens_per_param_at_5.76e23", "constants"]
    emit(fmt, rows, rows=rows, table=report.rows_table("scaling laws (loss in nats/token of each law's data)",
                                                          rows, cols))


# ---------------------------------------------------------------------------------------------------------------
@scaling_app.command("loss")
def loss_cmd(
    params: Optional[str] = typer.Option(None, "--params", "-n", help="Parameters N (e.g. 70B, 7e10)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model preset (its parameter count is N)."),
    tokens: str = typer.Option(..., "--tokens", "-d", help="Training tokens D (e.g. 1.4T)."),
    unique_tokens: Optional[str] = typer.Option(None, "--unique-tokens", "-u",
                                                help="Unique tokens; D/U epochs (Muennighoff et al. 2023)."),
    law: str = LAW_OPT,
    fmt: Fmt = FORMAT_OPT,
):
    """Predicted loss and perplexity of N parameters trained on D tokens, and how far that is from the optimum
    of the same budget C = 6ND."""
    from ..core.scaling import ChinchillaLaw, compute_efficiency, predict_loss, with_repetition

    lw = _law(law)
    if (params is None) == (model is None):
        raise SpecError("give exactly one of --params N or --model PRESET")
    d = parse_count(tokens, "--tokens")
    u = parse_count(unique_tokens, "--unique-tokens")
    if u is not None and isinstance(lw, ChinchillaLaw):
        lw = with_repetition(lw)  # Muennighoff et al. 2023's repeated-data terms on this base (named in source)
    if model is not None:
        from ..core.params import param_breakdown
        from ..registry import load_model

        pb = param_breakdown(load_model(model))
        n = float(pb.non_embedding if lw.n_kind == "non_embedding" else pb.total)
    else:
        n = parse_count(params, "--params")
    with _Warnings() as w:
        loss = float(predict_loss(n, d, lw, unique_tokens=u))
    out = {"law": lw.name, "params": n, "params_kind": lw.n_kind, "tokens": d, "tokens_per_param": d / n,
           "flops": 6.0 * n * d, "loss": loss, "perplexity": math.exp(loss)}
    if u is not None:
        out.update(unique_tokens=min(u, d), epochs=d / min(u, d))
    if isinstance(lw, ChinchillaLaw) and u is None:
        eff = compute_efficiency(n, d, lw)
        out.update({k: eff[k] for k in ("params_opt_same_flops", "tokens_opt_same_flops", "loss_opt_same_flops",
                                        "loss_excess", "compute_efficiency")})
    f = lw.range_factors(n, d)
    out.update(outside_range_factor_params=f["params"], outside_range_factor_tokens=f["tokens"])
    msgs = w.messages()
    out["warnings"] = msgs
    out["source"] = lw.source
    _print_warnings(msgs)
    emit(fmt, out, rows=[_csv_row(out)],
          table=report.kv_table(f"predicted loss — {lw.name}", [("", _table_view(out))]))


# ---------------------------------------------------------------------------------------------------------------
@scaling_app.command("optimal")
def optimal_cmd(
    flops: Optional[str] = typer.Option(None, "--flops", "-c", help="Training budget C in FLOPs (6ND convention)."),
    target_loss: Optional[float] = typer.Option(None, "--target-loss",
                                                help="Instead of --flops: the least compute reaching this loss."),
    inference_tokens: Optional[str] = typer.Option(
        None, "--inference-tokens", help="Tokens to be served over the model's life: also size for training + "
        "inference compute (Sardana & Frankle 2023)."),
    unique_tokens: Optional[str] = typer.Option(None, "--unique-tokens", "-u",
                                                help="Unique tokens available (repeated-data law)."),
    vocab: int = typer.Option(32000, "--vocab", help="Vocabulary of the concrete model, tokens."),
    tied: bool = typer.Option(False, "--tied/--untied", help="Tie input and output embeddings."),
    law: str = LAW_OPT,
    plot: Optional[Path] = PLOT_OPT,
    force: bool = FORCE_OPT,
    fmt: Fmt = FORMAT_OPT,
):
    """Compute-optimal N and D for a FLOP budget (Hoffmann et al. 2022 Eq. 4), the loss there, a concrete model
    from the shape rule, and the tokens/parameter every preset law implies at that budget. --plot draws the
    frontier (N_opt, D_opt and loss against C)."""
    from ..core.scaling import (ChinchillaLaw, flops_for_loss, inference_optimal, plan_for_compute,
                               tokens_per_param_by_law)

    lw = _law(law)
    _check_plot_path(plot, force)
    if (flops is None) == (target_loss is None):
        raise SpecError("give exactly one of --flops C or --target-loss L")
    u = parse_count(unique_tokens, "--unique-tokens")
    if inference_tokens is not None and (not isinstance(lw, ChinchillaLaw) or u is not None):
        raise SpecError("--inference-tokens needs a Chinchilla-form law and no --unique-tokens")
    if not 0 < vocab <= 2**24:
        raise SpecError(f"--vocab must be between 1 and {2**24:,} (got {vocab})")
    _finite("--target-loss", target_loss, 0.0, 100.0, lo_open=True)
    with _Warnings() as w:
        if flops is not None:
            c = parse_count(flops, "--flops")
        else:
            if not isinstance(lw, ChinchillaLaw):
                raise SpecError(f"--target-loss needs a Chinchilla-form law (got {lw.name})")
            c = float(flops_for_loss(target_loss, lw).flops)
        plan = plan_for_compute(c, lw, vocab_size=vocab, tie_embeddings=tied, unique_tokens=u)
        out = plan.to_dict()
        out.pop("warnings")
        tpp = tokens_per_param_by_law(c)
        for name, v in tpp.items():
            out[f"tokens_per_param_{name}"] = v
        out["note"] = (f"the preset laws disagree on tokens/parameter at {c:.3g} FLOPs: "
                       + ", ".join(f"{k} {v:.1f}" for k, v in tpp.items())
                       + " (hoffmann2022's published constants imply far more than Chinchilla's 20; kaplan2020 "
                         "counts non-embedding parameters and was fitted with early stopping)")
        if u is not None:
            out["unique_tokens"] = u
            out["epochs"] = plan.tokens / u
        inf = None
        if inference_tokens is not None:
            target = target_loss if target_loss is not None else plan.loss_opt
            inf = inference_optimal(target, parse_count(inference_tokens, "--inference-tokens"), lw).to_dict()
            for k, v in inf.items():
                if k != "law":
                    out[f"inference_{k}"] = v
    msgs = w.messages(plan.warnings)
    out["warnings"] = msgs
    out["source"] = lw.source
    _print_warnings(msgs)
    emit(fmt, out, rows=[_csv_row(out)], table=report.kv_table(f"compute-optimal — {lw.name}",
                                          [(n, _table_view(s)) for n, s in _optimal_sections(out, inf)]))
    if plot is not None:
        _frontier_plot(lw, c, plot, u, force)


def _optimal_sections(out: dict, inf) -> list[tuple[str, dict]]:
    """The sections of the `scaling optimal` table: the law's optimum, the concrete model, tokens/parameter by law
    and (with --inference-tokens) the inference-aware size."""
    sections = [("compute-optimal (law)", {k: out[k] for k in ("flops", "params_opt", "tokens_opt", "loss_opt")}),
                ("concrete model (shape rule)", {k: out[k] for k in (
                    "params_model", "layers", "hidden_size", "heads", "kv_heads", "head_dim", "ffn_hidden",
                    "vocab_size", "tokens", "tokens_per_param", "loss", "perplexity")}),
                ("tokens/parameter by law", {k: v for k, v in out.items() if k.startswith("tokens_per_param_")})]
    if inf is not None:
        sections.append(("inference-aware (Sardana & Frankle 2023)",
                         {k: v for k, v in out.items() if k.startswith("inference_")}))
    return sections


def _frontier_plot(lw, c: float, plot: Path, unique_tokens, force: bool = False) -> None:
    import numpy as np

    from ..core.scaling import LAWS, ChinchillaLaw, compute_optimal

    lo, hi = min(1e18, c / 100), max(1e27, c * 100)
    cs = np.logspace(math.log10(lo), math.log10(hi), 60)
    fig, (ax1, ax2) = _new_figure(2)
    for name, other in LAWS.items():
        if other is lw or not isinstance(other, ChinchillaLaw):
            continue
        o = compute_optimal(cs, other, warn=False)
        ax1.loglog(cs, o.params, ls=":", lw=1, color="grey", label=f"N_opt under {name}")
    ax1.axhspan(*lw.n_range, color="C0", alpha=0.08, label=f"N range {lw.name} was fitted on")
    o = compute_optimal(cs, lw, unique_tokens, warn=False)
    ax1.loglog(cs, o.params, label="N_opt (parameters)")
    ax1.loglog(cs, o.tokens, label="D_opt (tokens)")
    p = compute_optimal(c, lw, unique_tokens, warn=False)
    ax1.scatter([c, c], [p.params, p.tokens], color="k", zorder=3)
    ax1.set_xlabel("training compute C (FLOPs, 6ND)")
    ax1.set_ylabel("parameters / tokens")
    ax1.set_title(f"compute-optimal frontier — {lw.name}")
    ax1.legend(fontsize=8)
    ax2.semilogx(cs, o.loss)
    ax2.scatter([c], [p.loss], color="k", zorder=3)
    ax2.set_xlabel("training compute C (FLOPs, 6ND)")
    ax2.set_ylabel("loss at the optimum (nats/token)")
    x0, x1 = lw.n_range
    ax2.set_title(f"fitted on N {x0:.2g}-{x1:.2g}; beyond is extrapolation", fontsize=9)
    _save(fig, plot, force)


# ---------------------------------------------------------------------------------------------------------------
@scaling_app.command("isoflop")
def isoflop_cmd(
    flops: List[str] = typer.Option(..., "--flops", "-c", help="Budget(s) C in FLOPs; repeat for several curves."),
    points: int = typer.Option(21, "--points", help="Model sizes per curve (log-spaced)."),
    span: float = typer.Option(10.0, "--span", help="Sizes from N_opt/span to N_opt*span."),
    unique_tokens: Optional[str] = typer.Option(None, "--unique-tokens", "-u",
                                                help="Unique tokens available (repeated-data law)."),
    law: str = LAW_OPT,
    plot: Optional[Path] = PLOT_OPT,
    force: bool = FORCE_OPT,
    fmt: Fmt = FORMAT_OPT,
):
    """Loss against model size at fixed compute (isoFLOP curves, Hoffmann et al. 2022 Approach 2), with the
    optimum of each curve marked."""
    from ..core.scaling import compute_optimal, isoflop_curve

    lw = _law(law)
    _check_plot_path(plot, force)
    if not 2 <= points <= MAX_ISOFLOP_POINTS:
        raise SpecError(f"--points: {points} (between 2 and {MAX_ISOFLOP_POINTS:,})")
    _finite("--span", span, 1.0, 1e6, lo_open=True)
    if len(flops) > MAX_CURVES:
        raise SpecError(f"--flops: {len(flops)} budgets (at most {MAX_CURVES})")
    cs = [parse_count(f, "--flops") for f in flops]
    u = parse_count(unique_tokens, "--unique-tokens")
    with _Warnings() as w:
        rows = [r for c in cs for r in isoflop_curve(c, lw, points=points, span=span, unique_tokens=u)]
        optima = [compute_optimal(c, lw, u).to_dict() for c in cs]
    msgs = w.messages()
    _print_warnings(msgs)
    payload = {"law": lw.name, "optima": optima, "rows": rows, "warnings": msgs, "source": lw.source}
    table_rows = [{**r, "loss": _fmt_loss(r["loss"])} for r in rows]
    emit(fmt, payload, rows=rows,
          table=report.rows_table(f"isoFLOP curves — {lw.name}", table_rows,
                                  ["flops", "params", "tokens", "tokens_per_param", "loss", "optimum"]))
    if plot is not None:
        fig, (ax,) = _new_figure(1)
        for c, opt in zip(cs, optima):
            rs = [r for r in rows if r["flops"] == c]
            ax.semilogx([r["params"] for r in rs], [r["loss"] for r in rs], label=f"C = {c:.2g} FLOPs")
            ax.scatter([opt["params_opt"]], [opt["loss"]], color="k", zorder=3)
        ax.set_xlabel("parameters N")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(f"isoFLOP curves — {lw.name} (dots: optimum)")
        ax.legend(fontsize=8)
        _save(fig, plot, force)


# ---------------------------------------------------------------------------------------------------------------
@scaling_app.command("fit")
def fit_cmd(
    points_csv: Path = typer.Argument(..., help="CSV with columns params, tokens, loss (N, D, L also accepted).",
                                      metavar="POINTS.csv"),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the 95% intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    plot: Optional[Path] = PLOT_OPT,
    force: bool = FORCE_OPT,
    fmt: Fmt = FORMAT_OPT,
):
    """Fit L = E + A/N^alpha + B/D^beta to your own runs as Hoffmann et al. 2022 did (Huber loss on log loss,
    L-BFGS-B from a grid of starts), with bootstrap intervals. Exit 1 when the fit fails or lands on a bound."""
    from ..calibrate.scaling_fit import fit_chinchilla
    from ..io.points_csv import read_points_csv

    _check_plot_path(plot, force)
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise SpecError(f"--bootstrap must be between 0 and {MAX_BOOTSTRAP:,} (got {bootstrap})")
    n, d, l = read_points_csv(points_csv)
    distinct = len(set(zip(n.tolist(), d.tolist())))
    if distinct < 6 or len(set(n.tolist())) < 2 or len(set(d.tolist())) < 2:
        raise SpecError(f"{points_csv}: {distinct} distinct (params, tokens) points with {len(set(n.tolist()))} "
                        f"model sizes and {len(set(d.tolist()))} token counts; a fit of 5 constants needs at least "
                        "6 distinct points over at least 2 sizes and 2 token counts")
    res = fit_chinchilla(n, d, l, bootstrap=bootstrap, seed=seed, name=f"fit:{points_csv.name}",
                         source=f"fitted to {len(n)} points of {points_csv}")
    out = res.to_dict()
    keys = ("E", "A", "B", "alpha", "beta", "a_params_exponent", "b_tokens_exponent")
    consts = {}
    for k in keys:
        lo, hi = res.ci.get(k, (None, None))
        v = out[k]
        fmtv = (lambda x: f"{x:.4g}")
        consts[k] = fmtv(v) + (f"  [{fmtv(lo)} .. {fmtv(hi)}]" if lo is not None else "")
    tpp = res.tokens_per_param_ci
    other = {"n_points": res.n_points, "rms_log_residual": res.rms_log_residual, "starts": res.starts,
             "converged_starts": res.converged_starts, "bootstrap": res.bootstrap,
             "bootstrap_failed": res.bootstrap_failed, "flops_ref": res.flops_ref,
             "tokens_per_param_ref": f"{res.tokens_per_param_ref:.3g}"
             + (f"  [{tpp[0]:.3g} .. {tpp[1]:.3g}]" if res.ci else "")}
    emit(fmt, out, table=report.kv_table(f"fit of {points_csv.name} (95% bootstrap intervals)",
                                          [("constants", consts), ("fit", other)]))
    if plot is not None:
        import numpy as np

        fig, (ax,) = _new_figure(1)
        pred = res.law.loss(n, d)
        sc = ax.scatter(l, pred, c=np.log10(d), s=14)
        lim = [min(l.min(), pred.min()), max(l.max(), pred.max())]
        ax.plot(lim, lim, color="grey", lw=1)
        ax.set_xlabel("measured loss")
        ax.set_ylabel("fitted loss")
        ax.set_title(f"fit of {points_csv.name}: rms log residual {res.rms_log_residual:.2e}")
        fig.colorbar(sc, ax=ax, label="log10 tokens")
        _save(fig, plot, force)
