"""Exports of a plan file's results: CSV, JSON (wide: one flat row per scenario; long: one row per quantity) and
XLSX (Summary, Memory, Time, Cost, Assumptions and Inputs sheets, with live cost formulas).

The wide columns are :data:`EXPORT_COLUMNS`, frozen by ``tests/data/export_columns.txt``: users script against
them, so a change is deliberate (add at the end of a group, never rename). Units are in the names; :data:`UNITS`
spells each one out for the long format.

Every file written here carries a marker so that a later export may replace it and nothing else is clobbered:
JSON has a top-level ``planner_export`` key, CSV starts with the planner header row, XLSX has the document keyword
``planner-export``; plots (``planner.plots``) carry ``planner`` in their metadata. :func:`check_writable` (in
:mod:`planner.io.files`, the one output boundary) refuses to overwrite any other existing file unless forced.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from ..errors import SpecError
from ..units import GIB
from .files import PLOT_MARKER, XLSX_KEYWORD, _atomic_write, check_writable, is_planner_file  # noqa: F401

EXPORT_VERSION = 1

#: Wide export columns, in order. ``scenario`` is the plan's name; the rest are ``Estimate.to_dict()`` keys.
EXPORT_COLUMNS = (
    "scenario", "model", "hardware", "fits", "reason",
    "gpus", "dp", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "fsdp", "sequence_parallel", "recompute",
    "flash_attention", "seq_len_tokens", "decoder_seq_len_tokens", "micro_batch_seqs", "global_batch_seqs",
    "grad_accum_steps", "precision",
    "params_embedding", "params_layers_dense", "params_layers_expert", "params_final_norms", "params_head",
    "params_active", "params_total", "params_non_embedding", "params_per_gpu",
    "model_flops_per_token", "hardware_flops_per_token", "model_flops_per_step", "hardware_flops_per_step",
    "tokens_per_step", "training_tokens", "training_steps", "model_flops_total",
    "step_time_s", "tokens_per_s_per_gpu", "model_tflop_per_s_per_gpu", "mfu", "hfu",
    "time_compute_s", "time_recompute_s", "time_tp_comm_s", "time_cp_comm_s", "time_ep_comm_s", "time_pp_comm_s",
    "time_bubble_s", "time_dp_comm_s", "time_optimizer_s",
    "training_time_ideal_days", "wall_clock_days", "gpu_hours", "cost_usd", "energy_mwh", "co2_tonnes", "goodput",
    "time_compute_days", "time_checkpoint_days", "time_failures_days", "time_eval_days", "time_data_loading_days",
    "cost_compute_usd", "cost_storage_usd", "cost_network_usd", "cost_per_billion_tokens_usd",
    "price_usd_per_gpu_hour", "run_steps", "expected_failures", "mtbf_hours", "checkpoint_bytes",
    "checkpoint_write_s", "checkpoint_blocking_s", "checkpoint_interval_hours", "lost_per_failure_hours",
    "board_power_w",
    "memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes", "memory_activations_bytes",
    "memory_logits_bytes", "memory_overhead_bytes", "memory_per_gpu_bytes", "memory_capacity_bytes",
    "memory_optimizer_offloaded_bytes", "memory_stage", "memory_per_gpu_gib",
    "recompute_fraction", "attention_kernel", "tp_comm_overlap",
)
LONG_COLUMNS = ("scenario", "quantity", "value", "unit")

_TEXT = ""
#: The unit of every wide column ("" for text, flags and indices).
UNITS: dict[str, str] = {
    "scenario": _TEXT, "model": _TEXT, "hardware": _TEXT, "fits": "flag", "reason": _TEXT,
    "gpus": "GPUs", "dp": "ranks", "tp": "ranks", "pp": "stages", "cp": "ranks", "ep": "ranks",
    "vpp": "stages per GPU", "zero_stage": "stage", "fsdp": _TEXT, "sequence_parallel": "flag",
    "recompute": _TEXT, "flash_attention": "flag", "recompute_fraction": "fraction", "attention_kernel": _TEXT,
    "tp_comm_overlap": "flag", "seq_len_tokens": "tokens", "decoder_seq_len_tokens": "tokens",
    "micro_batch_seqs": "sequences", "global_batch_seqs": "sequences", "grad_accum_steps": "micro-batches",
    "precision": _TEXT,
    **{k: "parameters" for k in EXPORT_COLUMNS if k.startswith("params_")},
    "model_flops_per_token": "FLOP/token", "hardware_flops_per_token": "FLOP/token",
    "model_flops_per_step": "FLOP/step", "hardware_flops_per_step": "FLOP/step", "tokens_per_step": "tokens",
    "training_tokens": "tokens", "training_steps": "steps", "model_flops_total": "FLOP",
    "step_time_s": "s", "tokens_per_s_per_gpu": "tokens/(s·GPU)", "model_tflop_per_s_per_gpu": "TFLOP/(s·GPU)",
    "mfu": "fraction", "hfu": "fraction",
    **{k: "s" for k in EXPORT_COLUMNS if k.startswith("time_") and k.endswith("_s")},
    **{k: "days" for k in EXPORT_COLUMNS if k.endswith("_days")},
    "gpu_hours": "GPU·h", "energy_mwh": "MWh", "co2_tonnes": "tCO2eq", "goodput": "fraction",
    **{k: "USD" for k in EXPORT_COLUMNS if k.startswith("cost_") and k.endswith("_usd")},
    "cost_per_billion_tokens_usd": "USD/1e9 tokens", "price_usd_per_gpu_hour": "USD/(GPU·h)",
    "run_steps": "steps", "expected_failures": "interruptions", "mtbf_hours": "h", "checkpoint_bytes": "bytes",
    "checkpoint_write_s": "s", "checkpoint_blocking_s": "s", "checkpoint_interval_hours": "h",
    "lost_per_failure_hours": "h", "board_power_w": "W",
    **{k: "bytes" for k in EXPORT_COLUMNS if k.startswith("memory_") and k.endswith("_bytes")},
    "memory_stage": "pipeline stage", "memory_per_gpu_gib": "GiB",
}



def _plain(v: Any) -> Any:
    try:
        import numpy as np

        if isinstance(v, np.generic):
            v = v.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def flat_row(name: str, values: dict) -> dict:
    """One wide row: ``scenario`` = ``name``, then every :data:`EXPORT_COLUMNS` key of ``values`` (None when
    absent)."""
    row = {"scenario": name}
    for c in EXPORT_COLUMNS[1:]:
        row[c] = _plain(values.get(c))
    return row


def long_rows(rows: Iterable[dict]) -> list[dict]:
    """Tidy rows (scenario, quantity, value, unit): one per non-empty column of each wide row."""
    out = []
    for r in rows:
        for c in EXPORT_COLUMNS[1:]:
            v = _plain(r.get(c))
            if v is None:
                continue
            out.append({"scenario": r["scenario"], "quantity": c, "value": v, "unit": UNITS[c]})
    return out


def _rows_of(results) -> list[dict]:
    return [dict(r.row) if hasattr(r, "row") else dict(r) for r in results]


def csv_text(results, long: bool = False) -> str:
    """CSV of the results (wide, or long with ``long``)."""
    from ..report import to_csv

    rows = _rows_of(results)
    if long:
        return to_csv(long_rows(rows), LONG_COLUMNS)
    return to_csv(rows, EXPORT_COLUMNS)


def json_payload(results, long: bool = False, title: str = "", plan_file: Optional[str] = None) -> dict:
    rows = _rows_of(results)
    return {
        "planner_export": {"version": EXPORT_VERSION, "format": "long" if long else "wide", "plan": title,
                           "plan_file": plan_file},
        "columns": list(LONG_COLUMNS if long else EXPORT_COLUMNS),
        "units": {} if long else {c: UNITS[c] for c in EXPORT_COLUMNS},
        "rows": long_rows(rows) if long else rows,
    }


def json_text(results, long: bool = False, title: str = "", plan_file: Optional[str] = None) -> str:
    from ..report import to_json

    return to_json(json_payload(results, long, title, plan_file))


# ---------------------------------------------------------------------------------------------------------------
# Not clobbering what is not ours
# ---------------------------------------------------------------------------------------------------------------

def is_planner_export(path) -> bool:
    """True when ``path`` is a file a planner export or plot wrote (by its marker; see :mod:`planner.io.files`)."""
    return is_planner_file(path)


EXPORT_SUFFIXES = (".csv", ".json", ".xlsx")


def write_export(path, results, *, long: bool = False, force: bool = False, title: str = "",
                 plan_file: Optional[str] = None) -> Path:
    """Write ``results`` to ``path`` by its extension (.csv, .json, .xlsx). Refuses to overwrite a file that is
    not a previous planner export unless ``force``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise SpecError(f"--out {p}: unknown extension {suffix or '(none)'!r} (expected .csv, .json or .xlsx)")
    check_writable(p, force)
    if suffix == ".csv":
        text = csv_text(results, long)
        _atomic_write(p, lambda t: t.write_text(text))
    elif suffix == ".json":
        text = json_text(results, long, title, plan_file) + "\n"
        _atomic_write(p, lambda t: t.write_text(text))
    else:
        _atomic_write(p, lambda t: write_xlsx(t, results, title=title, plan_file=plan_file))
    return p


# ---------------------------------------------------------------------------------------------------------------
# XLSX
# ---------------------------------------------------------------------------------------------------------------

FMT_INT = "#,##0"
FMT_SMALL_INT = "0"
FMT_SCI = "0.00E+00"
FMT_S = "0.000"
FMT_DAYS = "#,##0.0"
FMT_GIB = "0.00"
FMT_PCT = "0.0%"
FMT_USD = '"$"#,##0'
FMT_PRICE = '"$"#,##0.00'
FMT_1 = "#,##0.0"


def number_format(key: str) -> Optional[str]:
    """Spreadsheet number format of a column, by its unit."""
    if key in ("gpus", "dp", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "memory_stage", "grad_accum_steps",
               "micro_batch_seqs"):
        return FMT_SMALL_INT
    if key in ("mfu", "hfu", "goodput"):
        return FMT_PCT
    if key == "price_usd_per_gpu_hour":
        return FMT_PRICE
    if key == "gpu_hours":
        return FMT_INT
    if key.endswith("_usd"):
        return FMT_USD
    if key.endswith("_gib"):
        return FMT_GIB
    if key.endswith("_days") or key.endswith("_hours") or key in ("energy_mwh", "co2_tonnes", "expected_failures"):
        return FMT_DAYS if key.endswith("_days") else FMT_1
    if key.endswith("_s") and "per_s" not in key:
        return FMT_S
    if "flops" in key or key in ("training_tokens", "checkpoint_bytes"):
        return FMT_SCI
    if key.startswith("params_") or key.endswith("_tokens") or key.endswith("_seqs") or key.endswith("_steps") \
            or key in ("tokens_per_step", "tokens_per_s_per_gpu", "board_power_w"):
        return FMT_INT
    if key in ("model_tflop_per_s_per_gpu",):
        return FMT_1
    if key.endswith("_bytes"):
        return FMT_INT
    return None


def _gib(v):
    v = _plain(v)
    return None if v is None else v / GIB


#: Columns of the breakdown sheets: (header, source key or function of the row, number format).
SUMMARY_COLUMNS = [
    "scenario", "model", "hardware", "fits", "gpus", "dp", "tp", "pp", "cp", "ep", "zero_stage", "recompute",
    "precision", "seq_len_tokens", "global_batch_seqs", "micro_batch_seqs", "params_total", "params_active",
    "memory_per_gpu_gib", "memory_capacity_gib", "step_time_s", "tokens_per_s_per_gpu", "mfu", "training_tokens",
    "wall_clock_days", "gpu_hours", "price_usd_per_gpu_hour", "cost_usd", "cost_per_billion_tokens_usd",
    "energy_mwh", "co2_tonnes", "reason",
]
MEMORY_PARTS = ("memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes",
                "memory_activations_bytes", "memory_logits_bytes", "memory_overhead_bytes")
TIME_STEP_PARTS = ("time_compute_s", "time_recompute_s", "time_tp_comm_s", "time_cp_comm_s", "time_ep_comm_s",
                   "time_pp_comm_s", "time_bubble_s", "time_dp_comm_s", "time_optimizer_s")
TIME_RUN_PARTS = ("time_compute_days", "time_checkpoint_days", "time_failures_days", "time_eval_days",
                  "time_data_loading_days")

#: Formula columns (live in the spreadsheet): gpu_hours, price, and every dollar column.
FORMULA_COLUMNS = ("gpu_hours", "price_usd_per_gpu_hour", "cost_compute_usd", "cost_usd",
                   "cost_per_billion_tokens_usd")


def _value(row: dict, key: str):
    if key.endswith("_gib") and key != "memory_per_gpu_gib":
        return _gib(row.get(key[:-4] + "_bytes"))
    return _plain(row.get(key))


def _price_keys(results) -> tuple[list[dict], dict[str, int]]:
    """Distinct price inputs: one per hardware profile price and per distinct plan (schedule) price. Returns the
    table rows and, per scenario, the index of its price row."""
    table: list[dict] = []
    index: dict[tuple, int] = {}
    of: dict[str, int] = {}
    for r in results:
        row = r.row
        if row.get("gpu_hours") is None:
            continue
        plan = getattr(r, "plan", None)
        hw = row.get("hardware") or "?"
        explicit = plan is not None and plan.schedule.price_usd_per_gpu_hour is not None
        price = _plain(row.get("price_usd_per_gpu_hour"))
        key = ("schedule" if explicit else "profile", hw, price)
        if key not in index:
            if explicit:
                label = f"{hw}: plan price (schedule.price_usd_per_gpu_hour)"
                source = "plan file"
            elif price is None:
                label = f"{hw}: no price known (enter one)"
                source = "no price in the profile or the plan: enter one"
            else:
                label = f"{hw}: hardware profile price"
                src = getattr(getattr(plan, "hardware", None), "price_usd_per_gpu_hour", None) if plan else None
                source = getattr(src, "source", "")
            same = [t for t in table if t["price_key"] == label]
            if same:
                label += f" #{len(same) + 1}"
            index[key] = len(table)
            table.append({"price_key": label, "price_usd_per_gpu_hour": price, "applies_to": [], "source": source})
        of[row["scenario"]] = index[key]
        table[index[key]]["applies_to"].append(row["scenario"])
    return table, of


def _flatten_spec(prefix: str, obj: Any, out: dict) -> None:
    if isinstance(obj, dict):
        if set(obj) >= {"value"} and set(obj) <= {"value", "source", "note"}:
            out[prefix] = obj["value"]
            return
        for k, v in obj.items():
            if k in ("source", "description", "aliases", "efficiency", "published_params"):
                continue
            _flatten_spec(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (list, tuple)):
        out[prefix] = ", ".join(str(x) for x in obj)
    elif obj is not None:
        out[prefix] = obj


def inputs_of(result) -> dict:
    """The inputs of one result as flat ``section.field`` -> value (for the Inputs sheet)."""
    out: dict = {}
    plan = getattr(result, "plan", None)
    partial = getattr(result, "partial", None) or {}
    specs = {}
    if plan is not None:
        specs = {"model": plan.model, "run": plan.run, "layout": plan.layout, "schedule": plan.schedule,
                 "hardware": plan.hardware}
    elif partial:
        specs = dict(partial)
    for section in ("model", "hardware", "run", "layout", "schedule"):
        spec = specs.get(section)
        if spec is None:
            continue
        data = spec.model_dump(mode="json", exclude_none=True) if hasattr(spec, "model_dump") else spec
        _flatten_spec(section, data, out)
    return out


def write_xlsx(path, results, title: str = "", plan_file: Optional[str] = None) -> None:
    """The spreadsheet (see the module docstring). ``results``: objects with ``.row`` (a wide row), ``.plan``
    (a Plan or None) and optionally ``.partial``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    results = list(results)
    rows = [r.row for r in results]
    wb = Workbook()
    wb.properties.creator = "planner"
    wb.properties.keywords = XLSX_KEYWORD
    wb.properties.title = title or "planner export"
    wb.properties.subject = "LLM training plan: memory, time and cost per scenario"
    wb.properties.description = (f"Exported by planner from {plan_file}" if plan_file else "Exported by planner")

    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDE4EE")
    input_fill = PatternFill("solid", fgColor="FFF2A8")
    bad_font = Font(color="C00000", bold=True)
    good_font = Font(color="007A33")

    def header(ws, cols: Sequence[str], row: int = 1) -> dict[str, str]:
        letters = {}
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(row=row, column=j, value=c)
            cell.font = bold
            cell.fill = header_fill
            cell.alignment = Alignment(wrap_text=False)
            letters[c] = get_column_letter(j)
            ws.column_dimensions[letters[c]].width = max(10, min(48, len(c) + 2))
        ws.freeze_panes = ws.cell(row=row + 1, column=2)
        return letters

    def put(ws, r: int, col: str, letters: dict, value, fmt: Optional[str] = None):
        cell = ws[f"{letters[col]}{r}"]
        cell.value = value
        f = fmt or number_format(col)
        if f and value is not None:
            cell.number_format = f
        return cell

    def fits_cell(ws, r, letters, row):
        v = row.get("fits")
        c = put(ws, r, "fits", letters, v)
        c.font = good_font if v else bad_font

    # ---- Assumptions: the price cells every cost formula reads ----
    prices, price_of = _price_keys(results)
    wa = wb.active
    wa.title = "Summary"
    ws_sum = wa
    ws_mem = wb.create_sheet("Memory")
    ws_time = wb.create_sheet("Time")
    ws_cost = wb.create_sheet("Cost")
    ws_as = wb.create_sheet("Assumptions")
    ws_in = wb.create_sheet("Inputs")

    ws_as["A1"] = f"planner export: {title}" if title else "planner export"
    ws_as["A1"].font = Font(bold=True, size=13)
    ws_as["A2"] = ("Prices per GPU-hour (yellow cells) are inputs: gpu_hours, price and every dollar column on the "
                   "Summary and Cost sheets are formulas that read them. Edit a price and the costs recompute.")
    price_header_row = 4
    pl = header(ws_as, ["price_key", "price_usd_per_gpu_hour", "applies_to", "source"], row=price_header_row)
    ws_as.freeze_panes = None
    ws_as.column_dimensions[pl["price_key"]].width = 48
    ws_as.column_dimensions[pl["applies_to"]].width = 60
    ws_as.column_dimensions[pl["source"]].width = 80
    price_cell: dict[int, str] = {}
    for i, p in enumerate(prices):
        r = price_header_row + 1 + i
        ws_as[f"{pl['price_key']}{r}"] = p["price_key"]
        c = ws_as[f"{pl['price_usd_per_gpu_hour']}{r}"]
        c.value = p["price_usd_per_gpu_hour"]
        c.number_format = FMT_PRICE
        c.fill = input_fill
        ws_as[f"{pl['applies_to']}{r}"] = ", ".join(p["applies_to"])
        ws_as[f"{pl['source']}{r}"] = p["source"]
        price_cell[i] = f"Assumptions!${pl['price_usd_per_gpu_hour']}${r}"
    r = price_header_row + len(prices) + 2
    notes = [
        ("plan", title),
        ("plan file", plan_file or ""),
        ("exported by", "planner"),
        ("memory", "per GPU of the most loaded pipeline stage; GiB = 2^30 bytes"),
        ("gpu_hours", "= gpus x wall_clock_days x 24 (every allocated GPU is paid while the job is down)"),
        ("cost_usd", "= gpu_hours x price + storage + network line items"),
        ("fits", "FALSE rows do not fit (reason column); their time and cost are what they would be if they did"),
    ]
    for k, v in notes:
        ws_as.cell(row=r, column=1, value=k).font = bold
        ws_as.cell(row=r, column=2, value=v)
        r += 1

    def price_ref(row) -> Optional[str]:
        i = price_of.get(row["scenario"])
        return price_cell.get(i) if i is not None else None

    # ---- Cost (first, so Summary can reference its storage and network cells) ----
    cost_cols = ["scenario", "hardware", "fits", "gpus", "training_tokens", "wall_clock_days", "gpu_hours",
                 "price_usd_per_gpu_hour", "cost_compute_usd", "cost_storage_usd", "cost_network_usd", "cost_usd",
                 "cost_per_billion_tokens_usd", "energy_mwh", "co2_tonnes", "board_power_w"]
    cl = header(ws_cost, cost_cols)
    for i, row in enumerate(rows):
        r = i + 2
        for c in cost_cols:
            if c in FORMULA_COLUMNS:
                continue
            if c == "fits":
                fits_cell(ws_cost, r, cl, row)
            else:
                put(ws_cost, r, c, cl, _value(row, c))
        pref = price_ref(row)
        if row.get("gpu_hours") is None or pref is None:
            continue
        g, w, n = (f"{cl[k]}{r}" for k in ("gpu_hours", "wall_clock_days", "gpus"))
        p, cc, st, nw, tot, tok = (f"{cl[k]}{r}" for k in ("price_usd_per_gpu_hour", "cost_compute_usd",
                                                           "cost_storage_usd", "cost_network_usd", "cost_usd",
                                                           "training_tokens"))
        put(ws_cost, r, "gpu_hours", cl, f"={n}*{w}*24")
        put(ws_cost, r, "price_usd_per_gpu_hour", cl, f'=IF(ISNUMBER({pref}),{pref},"")')
        put(ws_cost, r, "cost_compute_usd", cl, f'=IF(ISNUMBER({p}),{g}*{p},"")')
        put(ws_cost, r, "cost_usd", cl, f'=IF(ISNUMBER({p}),{cc}+{st}+{nw},"")')
        put(ws_cost, r, "cost_per_billion_tokens_usd", cl, f'=IF(ISNUMBER({p}),{tot}/({tok}/1000000000),"")')
    ws_cost.auto_filter.ref = f"A1:{get_column_letter(len(cost_cols))}{len(rows) + 1}"

    # ---- Summary ----
    sl = header(ws_sum, SUMMARY_COLUMNS)
    ws_sum.column_dimensions[sl["scenario"]].width = 36
    ws_sum.column_dimensions[sl["reason"]].width = 80
    for i, row in enumerate(rows):
        r = i + 2
        for c in SUMMARY_COLUMNS:
            if c in FORMULA_COLUMNS:
                continue
            if c == "fits":
                fits_cell(ws_sum, r, sl, row)
            else:
                put(ws_sum, r, c, sl, _value(row, c))
        pref = price_ref(row)
        if row.get("gpu_hours") is None or pref is None:
            continue
        n, w, g, p, tot, tok = (f"{sl[k]}{r}" for k in ("gpus", "wall_clock_days", "gpu_hours",
                                                        "price_usd_per_gpu_hour", "cost_usd", "training_tokens"))
        extra = f"Cost!{cl['cost_storage_usd']}{r}+Cost!{cl['cost_network_usd']}{r}"
        put(ws_sum, r, "gpu_hours", sl, f"={n}*{w}*24")
        put(ws_sum, r, "price_usd_per_gpu_hour", sl, f'=IF(ISNUMBER({pref}),{pref},"")')
        put(ws_sum, r, "cost_usd", sl, f'=IF(ISNUMBER({p}),{g}*{p}+{extra},"")')
        put(ws_sum, r, "cost_per_billion_tokens_usd", sl, f'=IF(ISNUMBER({p}),{tot}/({tok}/1000000000),"")')
    ws_sum.auto_filter.ref = f"A1:{get_column_letter(len(SUMMARY_COLUMNS))}{len(rows) + 1}"

    # ---- Memory ----
    mem_cols = (["scenario", "fits"] + [k[:-6] + "_gib" for k in MEMORY_PARTS]
                + ["memory_per_gpu_gib", "memory_capacity_gib", "memory_headroom_gib",
                   "memory_optimizer_offloaded_gib", "memory_stage", "params_per_gpu", "zero_stage", "recompute"])
    ml = header(ws_mem, mem_cols)
    for i, row in enumerate(rows):
        r = i + 2
        for c in mem_cols:
            if c == "fits":
                fits_cell(ws_mem, r, ml, row)
            elif c == "memory_headroom_gib":
                tot, cap = row.get("memory_per_gpu_bytes"), row.get("memory_capacity_bytes")
                if tot is not None and cap is not None:
                    put(ws_mem, r, c, ml, f"={ml['memory_capacity_gib']}{r}-{ml['memory_per_gpu_gib']}{r}",
                        FMT_GIB)
            else:
                put(ws_mem, r, c, ml, _value(row, c))

    # ---- Time ----
    time_cols = (["scenario", "fits", "step_time_s"] + list(TIME_STEP_PARTS)
                 + ["tokens_per_s_per_gpu", "mfu", "hfu", "training_steps", "wall_clock_days"]
                 + list(TIME_RUN_PARTS) + ["goodput", "expected_failures", "checkpoint_interval_hours"])
    tl = header(ws_time, time_cols)
    for i, row in enumerate(rows):
        r = i + 2
        for c in time_cols:
            if c == "fits":
                fits_cell(ws_time, r, tl, row)
            else:
                put(ws_time, r, c, tl, _value(row, c))

    # ---- Inputs (transposed: one column per scenario) ----
    inputs = [inputs_of(res) for res in results]
    fields: list[str] = []
    for d in inputs:
        for k in d:
            if k not in fields:
                fields.append(k)
    ws_in.cell(row=1, column=1, value="field").font = bold
    ws_in.cell(row=1, column=1).fill = header_fill
    ws_in.column_dimensions["A"].width = 48
    for j, row in enumerate(rows, start=2):
        c = ws_in.cell(row=1, column=j, value=row["scenario"])
        c.font = bold
        c.fill = header_fill
        ws_in.column_dimensions[get_column_letter(j)].width = max(14, min(40, len(row["scenario"]) + 2))
    for i, f in enumerate(fields, start=2):
        ws_in.cell(row=i, column=1, value=f)
        for j, d in enumerate(inputs, start=2):
            v = d.get(f)
            if v is not None:
                ws_in.cell(row=i, column=j, value=v)
    ws_in.freeze_panes = "B2"

    wb.save(str(path))


__all__ = ["EXPORT_COLUMNS", "LONG_COLUMNS", "UNITS", "check_writable", "csv_text", "flat_row", "is_planner_export",
           "json_payload", "json_text", "long_rows", "write_export", "write_xlsx"]
