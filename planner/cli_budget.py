"""`planner budget`: the best model, data, cluster and layout for dollars, days, GPUs or a target loss."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from . import report
from .cli import FORMAT_OPT, Fmt, _emit, _note


def budget_command(
    gpu: str = typer.Option(..., "--gpu", "-g", help="Hardware profile."),
    usd: Optional[float] = typer.Option(None, help="Budget, USD."),
    days: Optional[float] = typer.Option(None, help="Wall-clock budget, days."),
    gpus: Optional[int] = typer.Option(None, help="Fix the GPU count."),
    max_gpus: int = typer.Option(4096, help="Largest GPU count to consider."),
    target_loss: Optional[float] = typer.Option(None, help="Reach this loss (nats) instead of spending a budget."),
    tokens_available: Optional[float] = typer.Option(None, help="Unique training tokens available (repetition law)."),
    seq: int = typer.Option(4096, help="Sequence length, tokens."),
    batch_tokens: int = typer.Option(4 * 2**20, help="Global batch, tokens (nearby sizes are tried too)."),
    law: str = typer.Option("besiroglu2024", help="Scaling law (see `planner scaling laws`)."),
    vocab: int = typer.Option(128256, help="Vocabulary of the model to build."),
    price: Optional[float] = typer.Option(None, help="USD per GPU-hour (overrides the profile)."),
    save_plan: Optional[Path] = typer.Option(None, "--save-plan", help="Write the chosen plan as a plan YAML."),
    fmt: Fmt = FORMAT_OPT,
):
    """From a budget (--usd, --days, --gpus) or a --target-loss to the best model size, tokens, predicted loss,
    GPU count, layout, wall-clock days and dollars; the MFU comes from the time model (iterated to agree)."""
    from .budget import budget
    from .core.scaling import LAWS
    from .errors import SpecError
    from .registry import load_hardware
    from .specs.schedule import ScheduleSpec

    if law not in LAWS:
        raise SpecError(f"budget: unknown law {law!r} (known: {', '.join(LAWS)})")
    hw = load_hardware(gpu)
    schedule = ScheduleSpec(price_usd_per_gpu_hour=price) if price is not None else ScheduleSpec()
    with report.progress("budget: sizing the model, searching layouts"):
        ans = budget(hw, usd=usd, days=days, gpus=gpus, max_gpus=max_gpus, target_loss=target_loss,
                     tokens_available=tokens_available, seq_len=seq, batch_tokens=batch_tokens, law=LAWS[law],
                     vocab_size=vocab, schedule=schedule)
    d = ans.to_dict()
    for n in d["notes"]:
        _note(n)
    if save_plan is not None:
        p = ans.plan
        doc = {"name": p.name, "model": p.model.model_dump(exclude_none=True), "hardware": gpu,
               "run": p.run.model_dump(exclude_none=True), "layout": p.layout.model_dump(exclude_none=True)}
        if price is not None:
            doc["schedule"] = {"price_usd_per_gpu_hour": price}
        save_plan.write_text(yaml.safe_dump(doc, sort_keys=False))
        _note(f"wrote {save_plan}; re-check with `planner estimate {save_plan}`")
    flat = {k: v for k, v in d.items() if k not in ("model", "iterations", "notes")}
    m = d["model"]
    flat.update({f"model_{k}": m[k] for k in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "ffn_hidden")
                 if k in m})
    _emit(fmt, d, rows=[flat], table=report.kv_table("budget", [("", flat)]))


__all__ = ["budget_command"]
