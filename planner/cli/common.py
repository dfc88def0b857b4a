"""What every `planner` command shares: the output format, the one output sink (data on stdout, messages on
stderr), the enums of choice flags, and the one table of the flags that set plan fields.

This module imports nothing from the other ``planner.cli`` modules; they import from it (and from nothing else in
``planner.cli``), and ``planner/cli/__init__.py`` assembles them into the ``planner`` app.

The flag table
--------------
:data:`FLAGS` lists each flag that sets a plan field (``--tp`` -> ``layout.tp``): its plan field, the type typer
parses, its help and its names. From it come

- the options of ``planner estimate`` (every flag of the table, in its order), of ``planner search`` (the run and
  hardware flags) and of ``planner budget`` (``--gpu``, ``--gpus``, ``--seq``, ``--price``), through
  :meth:`Flag.param` and :func:`with_params`;
- :func:`build_plan`, which writes the given flags into the plan data at their fields;
- :func:`flag_args`, which writes flag values back as a command line (``planner search`` prints the
  ``planner estimate`` command of its best layout).

A command that gives a flag another type or help (``planner search --gpus 64,128``) derives it with
:meth:`Flag.but`; the flag's name, and so the field it sets, stays the table's.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, TypeVar

import typer
from rich.markup import escape

from .. import report
from ..errors import SpecError

# Usage errors (unknown option, bad value) are click exceptions. Recent typer vendors click (typer._click) and no
# longer installs click itself; older typer uses click. Catch whichever is there, both when both are.
USAGE_ERRORS: tuple = ()
try:
    from typer._click.exceptions import ClickException as _VendoredClickException

    USAGE_ERRORS += (_VendoredClickException,)
except ImportError:  # pragma: no cover - typer without a vendored click
    pass
try:
    from click import ClickException as _ClickException

    USAGE_ERRORS += (_ClickException,)
except ImportError:  # pragma: no cover - typer that vendors click
    pass


# ---------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------

class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FORMAT_OPT = typer.Option(Fmt.table, "--format", "-f", help="Output: table (people), json or csv (programs).",
                          rich_help_panel="Output")

#: ``--help`` panel of each plan section a flag sets (typer's ``rich_help_panel``).
PANELS = {"model": "Model", "hardware": "Hardware", "layout": "Layout", "run": "Run", "schedule": "Hardware"}


def error(msg: str) -> None:
    """One line on stderr; the message is escaped so text like [x] is printed as it is."""
    report.stderr_console().print(f"[red]error:[/red] {escape(str(msg))}", highlight=False)


def note(msg: str) -> None:
    """A dim note on stderr (none with ``--quiet``)."""
    if report.QUIET:
        return
    report.stderr_console().print(f"[dim]note:[/dim] {escape(msg)}", highlight=False)


def emit(fmt: Fmt, payload, rows=None, table=None) -> None:
    """Write ``payload`` as JSON, ``rows`` as CSV, or ``table`` (rich) to stdout."""
    if fmt == Fmt.json:
        sys.stdout.write(report.to_json(payload) + "\n")
    elif fmt == Fmt.csv:
        sys.stdout.write(report.to_csv(rows if rows is not None else [payload]))
    else:
        report.stdout_console().print(table)


# ---------------------------------------------------------------------------------------------------------------
# Choices
# ---------------------------------------------------------------------------------------------------------------

class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class FSDP(str, Enum):
    none = "none"
    full = "full"
    hybrid = "hybrid"


class AttnKernel(str, Enum):
    flash2 = "flash2"
    flash3 = "flash3"
    triton = "triton"


class Framework(str, Enum):
    megatron = "megatron"
    deepspeed = "deepspeed"
    torchtitan = "torchtitan"
    fsdp = "fsdp"
    ddp = "ddp"


class Schedule(str, Enum):
    one_f_one_b = "1f1b"
    zb_h1 = "zb-h1"


class Precision(str, Enum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    fp4 = "fp4"


#: run.precision_recipe as a choice (planner/specs/run.py PrecisionRecipe)
Recipe = Enum("Recipe", {r: r for r in ("bf16", "fp8_delayed", "fp8_current", "fp8_rowwise", "fp8_blockwise", "mxfp8",
                                        "nvfp4", "mxfp4")}, type=str)


class Optim(str, Enum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"
    adafactor = "adafactor"
    adam8bit = "adam8bit"


# ---------------------------------------------------------------------------------------------------------------
# Signatures typer reads
# ---------------------------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One parameter of a generated command signature: ``name: annotation = default`` (default: a typer
    ``Option``/``Argument``)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_params(*params: inspect.Parameter) -> Callable[[F], F]:
    """Give a command the typer signature ``params`` (in this order: the order of ``--help``).

    typer reads a callback's parameters with :func:`inspect.signature`, which returns ``__signature__`` when a
    function has one; typer then calls the function with every parameter as a keyword. So the function takes its
    own parameters by name and the table flags as ``**flags``."""

    def wrap(fn: F) -> F:
        fn.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
        return fn

    return wrap


# ---------------------------------------------------------------------------------------------------------------
# The flag table
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one plan field."""

    name: str
    """Python parameter name; the flag is ``--`` + name with dashes (``global_batch`` -> ``--global-batch``)."""
    field: str
    """Dotted path of the plan field it sets (``layout.tp``)."""
    type: Any
    """What typer parses (``Optional[...]``: a flag not given leaves the plan file's value)."""
    help: str
    decls: tuple[str, ...] = ()
    """Names when not just ``--name``: short forms (``-m``), on/off pairs (``--sp/--no-sp``) and the plan field's
    own spelling (``--sequence-parallel``); the first is the one :func:`flag_args` writes."""

    def but(self, **changes) -> "Flag":
        """The same flag with another type or help (for one command)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_switch(self) -> bool:
        return any("/" in d for d in self.decls)

    @property
    def option_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def panel(self) -> str:
        """The ``--help`` panel: the plan section the flag sets (Model, Run, Layout, Hardware)."""
        return PANELS.get(self.field.split(".")[0], "Options")

    def param(self) -> inspect.Parameter:
        """The typer option, as a parameter of a generated signature (see :func:`with_params`)."""
        return param(self.name, self.type, typer.Option(None, *self.decls, help=self.help,
                                                        rich_help_panel=self.panel))


def _table(*flags: Flag) -> dict[str, Flag]:
    return {f.name: f for f in flags}


#: Flags that set plan fields, in the order of `planner estimate --help`. One table, so flags and plan files
#: cannot drift: `planner estimate` takes all of them, `planner search` and `planner budget` some.
FLAGS: dict[str, Flag] = _table(
    Flag("model", "model", Optional[str], "Model preset name.", ("--model", "-m")),
    Flag("gpu", "hardware", Optional[str], "Hardware profile name.", ("--gpu", "-g")),
    Flag("gpus", "layout.gpus", Optional[int], "GPUs in the job."),
    Flag("dp", "layout.dp", Optional[int], "Data-parallel degree."),
    Flag("tp", "layout.tp", Optional[int], "Tensor-parallel degree."),
    Flag("pp", "layout.pp", Optional[int], "Pipeline-parallel degree."),
    Flag("cp", "layout.cp", Optional[int], "Context-parallel degree."),
    Flag("ep", "layout.ep", Optional[int], "Expert-parallel degree."),
    Flag("vpp", "layout.vpp", Optional[int], "Virtual pipeline stages per GPU."),
    Flag("zero", "layout.zero_stage", Optional[int], "ZeRO stage 0-3."),
    Flag("fsdp", "layout.fsdp", Optional[FSDP], "FSDP sharding: none, full, hybrid."),
    Flag("sp", "layout.sequence_parallel", Optional[bool], "Sequence parallelism (with TP).",
         ("--sp/--no-sp", "--sequence-parallel/--no-sequence-parallel")),
    Flag("recompute", "layout.recompute", Optional[Recompute], "Activation recomputation."),
    Flag("flash", "layout.flash_attention", Optional[bool], "FlashAttention.", ("--flash/--no-flash",)),
    Flag("recompute_fraction", "layout.recompute_fraction", Optional[float],
         "With --recompute full: share of layers recomputed (Megatron block method)."),
    Flag("attention_kernel", "layout.attention_kernel", Optional[AttnKernel],
         "Fused attention kernel: flash2, flash3 or triton."),
    Flag("tp_overlap", "layout.tp_comm_overlap", Optional[bool], "Overlap TP collectives with GEMMs.",
         ("--tp-overlap/--no-tp-overlap",)),
    Flag("offload", "layout.offload_optimizer", Optional[bool], "Optimizer state in CPU memory.",
         ("--offload/--no-offload",)),
    Flag("eager", "layout.eager_elementwise", Optional[bool], "Elementwise ops eager (no torch.compile): unfused, "
         "fp32 norms and RoPE.", ("--eager/--no-eager",)),
    Flag("schedule", "layout.pipeline_schedule", Optional[Schedule],
         "Pipeline schedule: 1f1b (interleaved with --vpp > 1) or zb-h1 (zero-bubble H1; vpp 1)."),
    Flag("framework", "layout.framework", Optional[Framework],
         "Framework that will run it (megatron, deepspeed, torchtitan, fsdp, ddp): its layout rules and pipeline "
         "sends."),
    Flag("seq", "run.seq_len", Optional[int], "Sequence length, tokens."),
    Flag("global_batch", "run.global_batch_seqs", Optional[int], "Global batch, sequences."),
    Flag("global_batch_tokens", "run.global_batch_tokens", Optional[int], "Global batch, tokens."),
    Flag("micro_batch", "run.micro_batch", Optional[int], "Micro-batch, sequences."),
    Flag("tokens", "run.training_tokens", Optional[float], "Training tokens in total."),
    Flag("precision", "run.precision", Optional[Precision], "Training precision."),
    Flag("precision_recipe", "run.precision_recipe", Optional[Recipe],
         "Low-precision recipe: which GEMMs, scaling and casts (fp8_blockwise = DeepSeek-V3's; MX/NVFP4 on Blackwell)."),
    Flag("optimizer", "run.optimizer", Optional[Optim], "Optimizer."),
    Flag("cluster", "hardware.cluster", Optional[str],
         "Node and fabric around the GPU: a profile of hardware_profiles/clusters/ (dgx-h100-superpod, aws-p4d, "
         "aws-p5, azure-nd-h100-v5, ...)."),
    Flag("memory_headroom", "hardware.memory_headroom_fraction", Optional[float],
         "Share of GPU memory to keep free; a layout fits within capacity x (1 - headroom) (default 0.03)."),
    Flag("price", "schedule.price_usd_per_gpu_hour", Optional[float],
         "Price per GPU-hour, USD (overrides the profile)."),
    Flag("price_source", "schedule.price_usd_per_gpu_hour", Optional[str],
         "Price per GPU-hour from the dated table (`planner prices`): PROVIDER[:TIER] or cheapest[:TIER]."),
)


def given(flags: dict) -> dict:
    """The flags that were given (typer passes None for the others)."""
    return {k: v for k, v in flags.items() if v is not None}


def flag_value(v) -> Any:
    return v.value if isinstance(v, Enum) else v


def flag_args(values: dict) -> list[str]:
    """``values`` (flag name -> value, in order) as command-line arguments of the table's flags: ``--tp 8``,
    ``--sp`` / ``--no-sp`` for switches, floats in ``%g``."""
    out: list[str] = []
    for name, v in values.items():
        if v is None:
            continue
        f = FLAGS[name]
        if f.is_switch:
            out.append(f.option_name if v else "--no-" + f.option_name[2:])
        else:
            v = flag_value(v)
            out += [f.option_name, f"{v:g}" if isinstance(v, float) else str(v)]
    return out


def build_plan(plan_file: Optional[Path], flags: dict):
    """A validated Plan from an optional plan file and flag overrides (flags win); ``flags`` maps names of
    :data:`FLAGS` to values, None for a flag not given."""
    from ..io.plan import read_plan_data, set_path
    from ..plans import plan_from_dict

    values = given(flags)
    if plan_file is not None:
        data, lines = read_plan_data(plan_file)
    else:
        data, lines = {}, {}
        _require_without_file(values)
    _drop_pairs(data, values)
    source = values.pop("price_source", None)
    on_hardware = {k: values.pop(k) for k in ("cluster", "memory_headroom") if k in values}
    for k, v in values.items():
        set_path(data, FLAGS[k].field, flag_value(v))
    if on_hardware:  # fields of the hardware: a profile given by name is extended, not replaced
        if isinstance(data.get("hardware"), str):
            data["hardware"] = {"extends": data["hardware"]}
        for k, v in on_hardware.items():
            set_path(data, FLAGS[k].field, v)
    if source is not None:
        _price_from_table(data, source, "price" in values)
    data.setdefault("layout", {})
    data.setdefault("run", {})
    return plan_from_dict(data, plan_file, lines)


def _price_from_table(data: dict, source: str, explicit: bool) -> None:
    """``--price-source``: the plan's price per GPU-hour from the dated price table (``planner prices``)."""
    from ..io.plan import set_path
    from ..pricing import choose_price

    if explicit:
        raise SpecError("give --price or --price-source, not both")
    hw = data.get("hardware")
    name = hw if isinstance(hw, str) else (hw or {}).get("name") or (hw or {}).get("extends")
    if not isinstance(name, str):
        raise SpecError("--price-source needs a named hardware profile (--gpu NAME)")
    row = choose_price(name, source)
    set_path(data, "schedule.price_usd_per_gpu_hour", float(row["usd_per_gpu_hour"]))
    note(f"price ${row['usd_per_gpu_hour']:g}/GPU-hour: {row['provider']}, {row['tier']}, {row['date']}"
         + ("" if row.get("verified") else " (not re-read from a dated copy)"))


def _require_without_file(values: dict) -> None:
    """Without a plan file the flags must name a model and a GPU; the sequence length defaults to 2048."""
    if "model" not in values:
        raise SpecError("give a PLAN file or --model NAME (see `planner models`)")
    if "gpu" not in values:
        raise SpecError("give a PLAN file or --gpu PROFILE (see `planner hardware`)")
    if "seq" not in values:
        note("--seq not given; using seq_len 2048")
        values["seq"] = 2048


def _drop_pairs(data: dict, values: Iterable[str]) -> None:
    """A flag that sets one side of a pair drops the other side from the file, so they cannot disagree."""
    if "gpus" in values and isinstance(data.get("layout"), dict):
        data["layout"].pop("dp", None)
    if "dp" in values and isinstance(data.get("layout"), dict):
        data["layout"].pop("gpus", None)
    if ("global_batch" in values or "global_batch_tokens" in values) and isinstance(data.get("run"), dict):
        data["run"].pop("global_batch_seqs", None)
        data["run"].pop("global_batch_tokens", None)
