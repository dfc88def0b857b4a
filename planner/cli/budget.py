"""`planner budget`: the best model, data, cluster and layout for dollars, days, GPUs or a target loss.

``--gpu``, ``--gpus``, ``--seq`` and ``--price`` are flags of the table in :mod:`planner.cli.common` (with the
help of this command); the others set fields of the ``budget:`` section of a budget file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from .. import report
from .common import FLAGS, FORMAT_OPT, Fmt, Flag, emit, given, note, param, with_params


def _budget_flag(name: str, type_, help: str, field: Optional[str] = None) -> Flag:
    """A flag that sets ``budget.<field>`` of a budget file (``field`` defaults to the flag's name)."""
    return Flag(name, "budget." + (field or name), type_, help)


#: The budget flags, in the order of `planner budget --help`. ``--gpu`` and ``--price`` keep the plan fields of the
#: table (``hardware``, ``schedule.price_usd_per_gpu_hour``: a budget file has the same sections).
BUDGET_FLAGS: tuple[Flag, ...] = (
    FLAGS["gpu"].but(help="Hardware profile."),
    _budget_flag("usd", Optional[float], "Budget, USD."),
    _budget_flag("days", Optional[float], "Wall-clock budget, days."),
    FLAGS["gpus"].but(field="budget.gpus", help="Fix the GPU count."),
    _budget_flag("max_gpus", Optional[int], "Largest GPU count to consider (default 4096)."),
    _budget_flag("target_loss", Optional[float], "Reach this loss (nats) instead of spending a budget."),
    _budget_flag("tokens_available", Optional[float], "Unique training tokens available (repetition law)."),
    FLAGS["seq"].but(field="budget.seq_len", help="Sequence length, tokens (default 4096)."),
    _budget_flag("batch_tokens", Optional[int], "Global batch, tokens (default 4Mi; nearby sizes too)."),
    _budget_flag("law", Optional[str], "Scaling law (default besiroglu2024; see `planner scaling laws`)."),
    _budget_flag("vocab", Optional[int], "Vocabulary of the model to build (default 128256).", field="vocab_size"),
    FLAGS["price"].but(help="USD per GPU-hour (overrides the profile)."),
    FLAGS["cluster"],
    FLAGS["memory_headroom"],
)


def _budget_fields(flags: dict) -> dict:
    """The given flags that set ``budget.*``, keyed by their field in the budget section."""
    fields = {f.name: f.field for f in BUDGET_FLAGS}
    return {fields[k].removeprefix("budget."): v for k, v in given(flags).items()
            if fields[k].startswith("budget.")}


@with_params(
    param("budget_file", Optional[Path], typer.Argument(
        None, metavar="[BUDGET.yaml]", help="A file with `hardware:`, a `budget:` section and optional `schedule:`.")),
    *(f.param() for f in BUDGET_FLAGS),
    param("save_plan", Optional[Path], typer.Option(None, "--save-plan", help="Write the chosen plan as a plan "
                                                    "YAML.")),
    param("force", bool, typer.Option(False, "--force", help="Let --save-plan overwrite a file planner did not "
                                      "write.")),
    param("fmt", Fmt, FORMAT_OPT),
)
def budget_command(budget_file: Optional[Path], save_plan: Optional[Path], force: bool, fmt: Fmt, **flags):
    """From a budget (--usd, --days, --gpus) or a --target-loss to the best model size, tokens, predicted loss,
    GPU count, layout, wall-clock days and dollars; the MFU comes from the time model (iterated to agree)."""
    from ..budget import budget
    from ..core.scaling import LAWS

    spec, hw_value, hw, sched, schedule = _read_budget(budget_file, flags)
    if save_plan is not None:  # refuse a path planner may not write before the search, not after it
        from ..io.files import check_writable

        check_writable(save_plan, force, what="--save-plan")
    with report.progress("budget: sizing the model, searching layouts"):
        ans = budget(hw, usd=spec.usd, days=spec.days, gpus=spec.gpus, max_gpus=spec.max_gpus,
                     target_loss=spec.target_loss, tokens_available=spec.tokens_available, seq_len=spec.seq_len,
                     batch_tokens=spec.batch_tokens, law=LAWS[spec.law], vocab_size=spec.vocab_size,
                     schedule=schedule)
    d = ans.to_dict()
    for n in d["notes"]:
        note(n)
    if save_plan is not None:
        _save_plan(save_plan, ans.plan, hw_value, hw, sched, force)
    flat = {k: v for k, v in d.items() if k not in ("model", "iterations", "notes")}
    m = d["model"]
    flat.update({f"model_{k}": m[k] for k in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "ffn_hidden")
                 if k in m})
    emit(fmt, d, rows=[flat], table=report.kv_table("budget", [("", flat)]))


def _read_budget(budget_file: Optional[Path], flags: dict):
    """The budget, hardware and schedule of a budget file with the flags over it (flags win); each validated, an
    error naming the file and line."""
    from ..core.scaling import LAWS
    from ..errors import SpecError
    from ..io.plan import _validate, read_plan_data, resolve_hardware
    from ..specs.budget import BudgetSpec
    from ..specs.hardware import HardwareSpec
    from ..specs.schedule import ScheduleSpec

    data, lines = read_plan_data(budget_file) if budget_file is not None else ({}, {})
    unknown = [k for k in data if k not in ("name", "description", "hardware", "budget", "schedule")]
    if unknown:
        raise SpecError(f"{budget_file}: {unknown[0]}: unknown key (a budget file has hardware, budget, schedule)")
    spec = _validate(BudgetSpec, {**(data.get("budget") or {}), **_budget_fields(flags)}, "budget", budget_file,
                     lines)
    if spec.law not in LAWS:
        raise SpecError(f"budget.law: unknown law {spec.law!r} (known: {', '.join(LAWS)})")
    gpu, price = flags["gpu"], flags["price"]
    hw_value = gpu if gpu is not None else data.get("hardware")
    if hw_value is None:
        raise SpecError("budget: give --gpu PROFILE or `hardware:` in the budget file (see `planner hardware`)")
    if flags.get("cluster") is not None:
        hw_value = ({"extends": hw_value} if isinstance(hw_value, str) else dict(hw_value)) | {"cluster": flags["cluster"]}
    raw_hw = resolve_hardware(hw_value)
    if flags.get("memory_headroom") is not None:
        raw_hw = {**raw_hw, "memory_headroom_fraction": flags["memory_headroom"]}
    hw = _validate(HardwareSpec, raw_hw, "hardware", budget_file, lines)
    sched = dict(data.get("schedule") or {})
    if price is not None:
        sched["price_usd_per_gpu_hour"] = price
    schedule = _validate(ScheduleSpec, sched, "schedule", budget_file, lines)
    price_used = schedule.price_usd_per_gpu_hour if schedule.price_usd_per_gpu_hour is not None else (
        hw.price_usd_per_gpu_hour.value if hw.price_usd_per_gpu_hour is not None else None)
    if spec.usd is not None and price_used == 0:
        raise SpecError(f"budget.usd({spec.usd:g}) with a price of 0 USD per GPU-hour: a dollar budget buys any "
                        "number of GPUs; give a positive --price, or --days/--gpus instead of --usd")
    return spec, hw_value, hw, sched, schedule


#: First line of a plan written by --save-plan (a planner marker: a later --save-plan may replace the file).
SAVED_PLAN_MARKER = "# written by planner budget --save-plan"


def _save_plan(path: Path, p, hw_value, hw, sched: dict, force: bool = False) -> None:
    """The chosen plan as a plan YAML (the hardware by name when it was given by name), through the output
    boundary (no overwrite of a file planner did not write unless ``force``; atomic)."""
    from ..io.files import write_text_file

    doc = {"name": p.name, "model": p.model.model_dump(exclude_none=True),
           "hardware": hw_value if isinstance(hw_value, str) else hw.model_dump(exclude_none=True),
           "run": p.run.model_dump(exclude_none=True), "layout": p.layout.model_dump(exclude_none=True)}
    if sched:
        doc["schedule"] = sched
    write_text_file(path, f"{SAVED_PLAN_MARKER}; re-check with `planner estimate {path.name}`\n"
                    + yaml.safe_dump(doc, sort_keys=False), force=force, what="--save-plan")
    note(f"wrote {path}; re-check with `planner estimate {path}`")


__all__ = ["BUDGET_FLAGS", "budget_command"]
