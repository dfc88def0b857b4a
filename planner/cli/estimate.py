"""`planner estimate`, `planner models` and `planner hardware`: one plan, the model presets, the hardware profiles.

Exit codes of ``planner estimate``: 0 the plan fits; 1 it does not (the estimate is still printed); 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .. import report
from ..errors import EXIT_INFEASIBLE
from .common import FLAGS, FORMAT_OPT, Fmt, build_plan, emit, note, param, with_params


@with_params(
    param("plan_file", Optional[Path], typer.Argument(None, help="Plan YAML (model, run, layout, hardware).",
                                                      metavar="[PLAN.yaml]")),
    *(f.param() for f in FLAGS.values()),
    param("plot", Optional[Path], typer.Option(None, "--plot", help="Also draw the memory and step-time breakdowns "
                                               "(PNG or SVG).")),
    param("force", bool, typer.Option(False, "--force", help="Let --plot overwrite a file planner did not write.")),
    param("fmt", Fmt, FORMAT_OPT),
)
def estimate(plan_file: Optional[Path], plot: Optional[Path], force: bool, fmt: Fmt, **flags):
    """Parameters, FLOPs, memory per GPU, step time, MFU and (with training tokens) days, GPU-hours, dollars and
    energy of one plan, with breakdowns. Exit 1 if it does not fit."""
    from ..core.estimate import estimate as run_estimate

    plan = build_plan(plan_file, flags)
    est = run_estimate(plan)
    d = est.to_dict()
    emit(fmt, d, table=estimate_table(d))
    if fmt == Fmt.table and d.get("extrapolation"):
        report.stdout_console().print(f"[yellow]outside the validated region:[/yellow] {escape(d['extrapolation'])}",
                                      highlight=False)
    if (d.get("goodput") == 0 and d.get("training_tokens") and d.get("wall_clock_days") is None
            and d.get("mtbf_hours") is not None and d.get("lost_per_failure_hours") is not None):
        report.stderr_console().print(
            f"[yellow]warning:[/yellow] the run never finishes: an interruption every {d.get('mtbf_hours'):.3g} h "
            f"(failures_per_gpu_hour x GPUs) but each loses {d.get('lost_per_failure_hours'):.3g} h (restart and "
            "work since the last checkpoint); wall-clock days, GPU-hours and costs are left empty", highlight=False)
    if plot is not None:
        from ..plots import plot_breakdowns

        note(f"wrote {plot_breakdowns({**d, 'scenario': d.get('plan') or d['model']}, plot, force=force)}")
    if not est.fits:
        report.stderr_console().print(f"[yellow]does not fit:[/yellow] {escape(est.reason)}", highlight=False)
        raise typer.Exit(EXIT_INFEASIBLE)


#: layout switches shown only when they differ from the default (framework: hidden when unset)
QUIET = {"pipeline_schedule": "1f1b", "eager_elementwise": False}


def estimate_table(d: dict):
    """The estimate as one key-value table in sections: layout, parameters, FLOPs, time, whole run, memory."""
    groups = [
        ("layout", ("model", "hardware", "gpus", "dp", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "fsdp",
                    "sequence_parallel", "recompute", "flash_attention", "framework", "costed_framework",
                    "pipeline_schedule",
                    "eager_elementwise", "seq_len_tokens", "micro_batch_seqs", "global_batch_seqs", "grad_accum_steps",
                    "precision")),
        ("parameters", [k for k in d if k.startswith("params_")]),
        ("FLOPs", ("model_flops_per_token", "hardware_flops_per_token", "model_flops_per_step",
                   "hardware_flops_per_step", "tokens_per_step", "training_tokens", "training_steps",
                   "model_flops_total")),
        ("time", [k for k in ("step_time_s", "tokens_per_s_per_gpu", "model_tflop_per_s_per_gpu", "mfu", "hfu")
                  if k in d] + [k for k in d if k.startswith("time_") and k.endswith("_s")]),
        ("whole run", [k for k in ("training_time_ideal_days", "wall_clock_days", "goodput", "gpu_hours",
                                   "cost_usd", "cost_per_billion_tokens_usd", "price_usd_per_gpu_hour", "energy_mwh",
                                   "co2_tonnes", "expected_failures", "checkpoint_interval_hours") if k in d]
         + [k for k in d if k.startswith("time_") and k.endswith("_days")]
         + [k for k in d if k.startswith("cost_") and k.endswith("_usd") and k != "cost_usd"
            and k != "cost_per_billion_tokens_usd"]),
        ("memory per GPU (most loaded)", [k for k in d if k.startswith("memory_") and k.endswith("_bytes")]
         + ["memory_stage", "fits", "reason"]),
    ]
    quiet = {**QUIET, "costed_framework": d.get("framework")}  # shown when no framework was named
    sections = [(name, {k: _banded(d, k) for k in keys if k in d and d[k] is not None and d[k] != quiet.get(k)})
                for name, keys in groups]
    return report.kv_table(d.get("plan") or d.get("model", ""), [s for s in sections if s[1]])


def _banded(d: dict, key: str):
    """The value of ``key``, with its cross-validated p10–p90 band when the estimate has one: ``31.9 s (28.4–35.1)``."""
    if d.get(f"{key}_p10") is None:
        return d[key]
    return report.with_band(d[key], d[f"{key}_p10"], d[f"{key}_p90"], key)


def models(
    name: Optional[str] = typer.Argument(None, help="Preset to show."),
    fmt: Fmt = FORMAT_OPT,
):
    """List model presets with their parameter counts, or show one preset."""
    from ..core.params import param_breakdown
    from ..errors import SpecError
    from ..registry import load_model, preset_names

    if name is not None and not name.strip():
        raise SpecError("models: an empty preset name (omit it to list every preset)")
    if name:
        m = load_model(name)
        d = {"preset": name, **m.model_dump(exclude_none=True), **param_breakdown(m).to_dict()}
        flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        for k, v in nested.items():
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        emit(fmt, d, rows=[flat], table=report.kv_table(m.name, [("", flat)]))
        return
    rows = []
    for n in preset_names():
        m = load_model(n)
        pb = param_breakdown(m)
        rows.append({"preset": n, "name": m.name, "arch": m.arch, "params_total": pb.total,
                     "params_active": pb.active, "layers": m.total_layers, "hidden_size": m.hidden_size,
                     "heads": m.num_heads, "kv_heads": m.kv_heads, "vocab_size": m.vocab_size})
    cols = list(rows[0]) if rows else []
    emit(fmt, rows, rows=rows, table=report.rows_table("model presets", rows, cols))


def hardware(
    name: Optional[str] = typer.Argument(None, help="Profile to show."),
    fmt: Fmt = FORMAT_OPT,
):
    """List hardware profiles, or show one with the source of every number."""
    from ..errors import SpecError
    from ..registry import load_hardware, profile_names

    if name is not None and not name.strip():
        raise SpecError("hardware: an empty profile name (omit it to list every profile)")
    if name:
        hw = load_hardware(name)
        data = hw.model_dump(exclude_none=True)
        rows = _sourced_rows(data)
        emit(fmt, data, rows=rows, table=report.rows_table(f"{hw.name}: {hw.description}", rows,
                                                            ["field", "value", "source"]))
        return
    rows = []
    for n in profile_names():
        hw = load_hardware(n)
        acc = hw.accelerator
        rows.append({
            "profile": n, "accelerator": acc.name,
            "bf16_peak_flop_per_s": acc.peak_flop_per_s["bf16"].value if "bf16" in acc.peak_flop_per_s else None,
            "hbm_bytes": acc.hbm_bytes.value, "hbm_bandwidth_bytes_per_s": acc.hbm_bandwidth_bytes_per_s.value,
            "gpus_per_node": hw.gpus_per_node,
            "price_usd_per_gpu_hour": hw.price_usd_per_gpu_hour.value if hw.price_usd_per_gpu_hour else None,
        })
    cols = list(rows[0]) if rows else []
    emit(fmt, rows, rows=rows, table=report.rows_table("hardware profiles", rows, cols))


def _sourced_rows(data: dict) -> list[dict]:
    """Every ``{value, source}`` leaf of a profile as a row: dotted field, value, source."""
    rows: list[dict] = []

    def walk(prefix, obj):
        if isinstance(obj, dict) and "value" in obj and "source" in obj:
            rows.append({"field": prefix, "value": obj["value"], "source": obj["source"]})
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)

    walk("", data)
    return rows
