"""`planner budget`: the best model, data, cluster and layout for dollars, days, GPUs or a target loss."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from . import report
from .cli import FORMAT_OPT, Fmt, _emit, _note


def budget_command(
    budget_file: Optional[Path] = typer.Argument(
        None, metavar="[BUDGET.yaml]", help="A file with `hardware:`, a `budget:` section and optional `schedule:`."),
    gpu: Optional[str] = typer.Option(None, "--gpu", "-g", help="Hardware profile."),
    usd: Optional[float] = typer.Option(None, help="Budget, USD."),
    days: Optional[float] = typer.Option(None, help="Wall-clock budget, days."),
    gpus: Optional[int] = typer.Option(None, help="Fix the GPU count."),
    max_gpus: Optional[int] = typer.Option(None, help="Largest GPU count to consider (default 4096)."),
    target_loss: Optional[float] = typer.Option(None, help="Reach this loss (nats) instead of spending a budget."),
    tokens_available: Optional[float] = typer.Option(None, help="Unique training tokens available (repetition law)."),
    seq: Optional[int] = typer.Option(None, help="Sequence length, tokens (default 4096)."),
    batch_tokens: Optional[int] = typer.Option(None, help="Global batch, tokens (default 4Mi; nearby sizes too)."),
    law: Optional[str] = typer.Option(None, help="Scaling law (default besiroglu2024; see `planner scaling laws`)."),
    vocab: Optional[int] = typer.Option(None, help="Vocabulary of the model to build (default 128256)."),
    price: Optional[float] = typer.Option(None, help="USD per GPU-hour (overrides the profile)."),
    save_plan: Optional[Path] = typer.Option(None, "--save-plan", help="Write the chosen plan as a plan YAML."),
    fmt: Fmt = FORMAT_OPT,
):
    """From a budget (--usd, --days, --gpus) or a --target-loss to the best model size, tokens, predicted loss,
    GPU count, layout, wall-clock days and dollars; the MFU comes from the time model (iterated to agree)."""
    from .budget import budget
    from .core.scaling import LAWS
    from .errors import SpecError
    from .io.plan import _validate, read_plan_data, resolve_hardware
    from .specs.budget import BudgetSpec
    from .specs.hardware import HardwareSpec
    from .specs.schedule import ScheduleSpec

    data, lines = read_plan_data(budget_file) if budget_file is not None else ({}, {})
    unknown = [k for k in data if k not in ("name", "description", "hardware", "budget", "schedule")]
    if unknown:
        raise SpecError(f"{budget_file}: {unknown[0]}: unknown key (a budget file has hardware, budget, schedule)")
    flags = {"usd": usd, "days": days, "gpus": gpus, "max_gpus": max_gpus, "target_loss": target_loss,
             "tokens_available": tokens_available, "seq_len": seq, "batch_tokens": batch_tokens, "law": law,
             "vocab_size": vocab}
    spec = _validate(BudgetSpec, {**(data.get("budget") or {}), **{k: v for k, v in flags.items() if v is not None}},
                     "budget", budget_file, lines)
    if spec.law not in LAWS:
        raise SpecError(f"budget.law: unknown law {spec.law!r} (known: {', '.join(LAWS)})")
    hw_value = gpu if gpu is not None else data.get("hardware")
    if hw_value is None:
        raise SpecError("budget: give --gpu PROFILE or `hardware:` in the budget file (see `planner hardware`)")
    hw = _validate(HardwareSpec, resolve_hardware(hw_value), "hardware", budget_file, lines)
    sched = dict(data.get("schedule") or {})
    if price is not None:
        sched["price_usd_per_gpu_hour"] = price
    schedule = _validate(ScheduleSpec, sched, "schedule", budget_file, lines)
    with report.progress("budget: sizing the model, searching layouts"):
        ans = budget(hw, usd=spec.usd, days=spec.days, gpus=spec.gpus, max_gpus=spec.max_gpus,
                     target_loss=spec.target_loss, tokens_available=spec.tokens_available, seq_len=spec.seq_len,
                     batch_tokens=spec.batch_tokens, law=LAWS[spec.law], vocab_size=spec.vocab_size,
                     schedule=schedule)
    d = ans.to_dict()
    for n in d["notes"]:
        _note(n)
    if save_plan is not None:
        p = ans.plan
        doc = {"name": p.name, "model": p.model.model_dump(exclude_none=True),
               "hardware": hw_value if isinstance(hw_value, str) else hw.model_dump(exclude_none=True),
               "run": p.run.model_dump(exclude_none=True), "layout": p.layout.model_dump(exclude_none=True)}
        if sched:
            doc["schedule"] = sched
        save_plan.write_text(yaml.safe_dump(doc, sort_keys=False))
        _note(f"wrote {save_plan}; re-check with `planner estimate {save_plan}`")
    flat = {k: v for k, v in d.items() if k not in ("model", "iterations", "notes")}
    m = d["model"]
    flat.update({f"model_{k}": m[k] for k in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "ffn_hidden")
                 if k in m})
    _emit(fmt, d, rows=[flat], table=report.kv_table("budget", [("", flat)]))


__all__ = ["budget_command"]
