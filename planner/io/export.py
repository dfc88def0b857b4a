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
    "time_run_overhead_days", "wall_clock_ideal_days", "ideal_gpu_hours", "end_to_end_tokens_per_s_per_gpu",
    "end_to_end_mfu",
    # error bands (p10..p90 of the cross-validated error, planner/core/accuracy.py) and extrapolation flags
    "mfu_at_run_precision", "step_time_s_p10", "step_time_s_p90", "wall_clock_days_p10", "wall_clock_days_p90",
    "gpu_hours_p10", "gpu_hours_p90", "cost_usd_p10", "cost_usd_p90", "mfu_p10", "mfu_p90", "tokens_per_s_per_gpu_p10",
    "tokens_per_s_per_gpu_p90", "extrapolation",
    "memory_usable_bytes",  # capacity less the memory headroom (hardware.memory_headroom_fraction)
    "framework",  # layout.framework: the framework the plan names (empty: any; see costed_framework)
    "pipeline_schedule",  # layout.pipeline_schedule: 1f1b (interleaved with vpp > 1) or zb-h1
    "eager_elementwise",  # layout.eager_elementwise: elementwise ops eager (counted op by op) or fused
    "costed_framework",  # the framework the layout was costed as: the plan's, or with none named the first that runs it
)
LONG_COLUMNS = ("scenario", "quantity", "value", "unit")

_TEXT = ""
#: The unit of every wide column ("" for text, flags and indices).
UNITS: dict[str, str] = {
    "scenario": _TEXT, "model": _TEXT, "hardware": _TEXT, "fits": "flag", "reason": _TEXT,
    "gpus": "GPUs", "dp": "ranks", "tp": "ranks", "pp": "stages", "cp": "ranks", "ep": "ranks",
    "vpp": "stages per GPU", "zero_stage": "stage", "fsdp": _TEXT, "sequence_parallel": "flag",
    "recompute": _TEXT, "flash_attention": "flag", "recompute_fraction": "fraction", "attention_kernel": _TEXT,
    "tp_comm_overlap": "flag", "framework": _TEXT, "costed_framework": _TEXT, "pipeline_schedule": _TEXT,
    "eager_elementwise": "flag",
    "seq_len_tokens": "tokens", "decoder_seq_len_tokens": "tokens",
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
    "lost_per_failure_hours": "h", "board_power_w": "W", "ideal_gpu_hours": "GPU·h",
    "end_to_end_tokens_per_s_per_gpu": "tokens/(s·GPU)", "end_to_end_mfu": "fraction",
    **{k: "bytes" for k in EXPORT_COLUMNS if k.startswith("memory_") and k.endswith("_bytes")},
    "memory_stage": "pipeline stage", "memory_per_gpu_gib": "GiB",
    "mfu_at_run_precision": "fraction", "memory_usable_bytes": "bytes", "step_time_s_p10": "s",
    "step_time_s_p90": "s",
    "wall_clock_days_p10": "days", "wall_clock_days_p90": "days",
    "gpu_hours_p10": "GPU·h", "gpu_hours_p90": "GPU·h", "cost_usd_p10": "USD", "cost_usd_p90": "USD",
    "mfu_p10": "fraction", "mfu_p90": "fraction", "tokens_per_s_per_gpu_p10": "tokens/(s·GPU)",
    "tokens_per_s_per_gpu_p90": "tokens/(s·GPU)", "extrapolation": _TEXT,
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
FMT_GIB = '0.00" GiB"'
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
                  "time_data_loading_days", "time_run_overhead_days")

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
    (a Plan or None) and optionally ``.partial``.

    Written with XlsxWriter so that every formula carries its computed value: readers that do not recalculate
    (pandas, openpyxl ``data_only``, previews) see the numbers planner computed, and a spreadsheet application
    recomputes the same values from the price cells."""
    import xlsxwriter

    results = list(results)
    rows = [r.row for r in results]
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    wb.set_properties({
        "title": title or "planner export", "subject": "LLM training plan: memory, time and cost per scenario",
        "author": "planner", "keywords": XLSX_KEYWORD,
        "comments": f"Exported by planner from {plan_file}" if plan_file else "Exported by planner"})
    fm = _Formats(wb)
    sheets = {name: _Sheet(wb.add_worksheet(name), fm, title) for name in
              ("Summary", "Memory", "Time", "Cost", "Assumptions", "Inputs")}
    prices, price_of = _price_keys(results)
    price_cells = _write_assumptions(sheets["Assumptions"], prices, title, plan_file)
    price_ref = {name: price_cells[i] for name, i in price_of.items()}
    cost_cols = _write_cost(sheets["Cost"], rows, price_ref)
    _write_summary(sheets["Summary"], rows, price_ref, cost_cols)
    _write_memory(sheets["Memory"], rows)
    _write_time(sheets["Time"], rows)
    _write_inputs(sheets["Inputs"], results)
    for s in sheets.values():
        s.finish()
    wb.close()


#: Columns holding text (left-aligned, header too); every other column is a number, right-aligned under a
#: right-aligned header.
_TEXT_COLUMNS = ("scenario", "model", "hardware", "reason", "recompute", "precision", "fsdp", "attention_kernel",
                 "framework", "pipeline_schedule", "extrapolation",
                 "price_key", "applies_to", "source", "field", "fits")
_MAX_WIDTH = {"reason": 70, "applies_to": 60, "source": 70}


class _Formats:
    """XlsxWriter formats, made once per distinct look."""

    def __init__(self, wb):
        self.wb = wb
        self._cache: dict = {}

    def get(self, **props):
        key = tuple(sorted(props.items()))
        if key not in self._cache:
            self._cache[key] = self.wb.add_format(props)
        return self._cache[key]

    def header(self, numeric: bool):
        return self.get(bold=True, bg_color="#DDE4EE", align="right" if numeric else "left", valign="bottom",
                        bottom=1)


def _shown_len(value, fmt: Optional[str]) -> int:
    """About how many characters a cell shows (for column widths)."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, (int, float)):
        if fmt == FMT_SCI:
            return 9
        if fmt == FMT_PCT:
            return 6
        text = f"{value:,.3f}" if fmt in (FMT_S, FMT_GIB) else f"{value:,.2f}" if fmt == FMT_PRICE else \
            f"{value:,.0f}"
        return len(text) + (4 if fmt == FMT_GIB else 1 if fmt in (FMT_USD, FMT_PRICE) else 0)
    return len(str(value))


class _Sheet:
    """One worksheet: a header row, typed cells (never a text read as a formula), widths that fit the longest
    entry, frozen header and first column, and a landscape, fit-to-width print setup."""

    def __init__(self, ws, fm: _Formats, title: str):
        self.ws, self.fm, self.title = ws, fm, title
        self.widths: dict[int, int] = {}
        self.col: dict[str, int] = {}
        self.header_row = 0
        self.last_row = 0
        self.filter = False

    def fit(self, c: int, n: int, key: str = "") -> None:
        self.widths[c] = min(max(self.widths.get(c, 0), n), _MAX_WIDTH.get(key, 60))

    def header(self, cols: Sequence[str], row: int = 0, numeric=None) -> dict[str, int]:
        self.header_row = row
        for j, c in enumerate(cols):
            num = c not in _TEXT_COLUMNS if numeric is None else numeric(c)
            self.ws.write_string(row, j, c, self.fm.header(num))
            self.fit(j, len(c) + 1, c)
            self.col[c] = j
        return dict(self.col)

    def put(self, r: int, key: str, value, fmt: Optional[str] = None, col: Optional[int] = None, **style) -> None:
        """``value`` into row ``r`` of column ``key``: a number, bool or text by its type (None stays empty)."""
        c = self.col[key] if col is None else col
        value = _plain(value)
        self.last_row = max(self.last_row, r)
        f = fmt or number_format(key)
        if value is None:
            return
        if isinstance(value, bool):
            self.ws.write_boolean(r, c, value, self.fm.get(font_color="#007A33" if value else "#C00000",
                                                           bold=not value, align="left"))
        elif isinstance(value, (int, float)):
            props = {**({"num_format": f} if f else {}), **style}
            self.ws.write_number(r, c, value, self.fm.get(**props) if props else None)
        else:
            wrap = key in _MAX_WIDTH
            self.ws.write_string(r, c, str(value), self.fm.get(text_wrap=True, valign="top", **style)
                                 if wrap or style else None)
        self.fit(c, _shown_len(value, f) + 1, key)

    def formula(self, r: int, key: str, formula: str, cached, fmt: Optional[str] = None) -> None:
        """A live formula with the value planner computed stored beside it."""
        cached = _plain(cached)
        f = fmt or number_format(key)
        self.ws.write_formula(r, self.col[key], formula, self.fm.get(num_format=f) if f else None,
                              "" if cached is None else cached)
        self.last_row = max(self.last_row, r)
        self.fit(self.col[key], _shown_len(cached if cached is not None else "", f) + 1, key)

    def ref(self, r: int, key: str, absolute: bool = False, sheet: str = "") -> str:
        from xlsxwriter.utility import xl_rowcol_to_cell

        cell = xl_rowcol_to_cell(r, self.col[key], row_abs=absolute, col_abs=absolute)
        return f"{sheet}!{cell}" if sheet else cell

    def finish(self, freeze: bool = True) -> None:
        ws = self.ws
        for c, w in self.widths.items():
            ws.set_column(c, c, w + 1)
        if freeze and self.col:
            ws.freeze_panes(self.header_row + 1, 1)
        if self.filter and self.col:
            ws.autofilter(self.header_row, 0, max(self.last_row, self.header_row), len(self.col) - 1)
        ws.set_landscape()
        ws.set_paper(9)  # A4; fit to one page wide, as many tall as it takes
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(self.header_row)
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.set_footer(f"&L{(self.title or 'planner export').replace('&', '&&')} — &A&Rpage &P of &N")


def _write_assumptions(s: _Sheet, prices: list[dict], title: str, plan_file: Optional[str]) -> dict[int, str]:
    """The price cells (inputs, yellow) every cost formula reads, and notes that say how the costs are
    computed; returns the absolute reference of each price row's cell."""
    ws, fm = s.ws, s.fm
    ws.write_string(0, 0, f"planner export: {title}" if title else "planner export", fm.get(bold=True, font_size=13))
    ws.write_string(1, 0, "Prices per GPU-hour (yellow cells) are inputs: gpu_hours, price and every dollar column "
                          "on the Summary and Cost sheets are formulas that read them. Edit a price and the costs "
                          "recompute.")
    header_row = 3
    s.header(["price_key", "price_usd_per_gpu_hour", "applies_to", "source"], row=header_row,
             numeric=lambda c: c == "price_usd_per_gpu_hour")
    cells = {}
    for i, p in enumerate(prices):
        r = header_row + 1 + i
        s.put(r, "price_key", p["price_key"])
        if p["price_usd_per_gpu_hour"] is None:
            s.ws.write_blank(r, s.col["price_usd_per_gpu_hour"], None, fm.get(bg_color="#FFF2A8"))
        else:
            s.put(r, "price_usd_per_gpu_hour", p["price_usd_per_gpu_hour"], FMT_PRICE, bg_color="#FFF2A8")
        s.put(r, "applies_to", ", ".join(p["applies_to"]))
        s.put(r, "source", p["source"])
        cells[i] = s.ref(r, "price_usd_per_gpu_hour", absolute=True, sheet="Assumptions")
    r = header_row + len(prices) + 2
    notes = [
        ("plan", title),
        ("plan file", plan_file or ""),
        ("exported by", "planner"),
        ("memory", "per GPU of the most loaded pipeline stage; GiB = 2^30 bytes"),
        ("gpu_hours", "gpus x wall_clock_days x 24 (every allocated GPU is paid while the job is down)"),
        ("cost_usd", "gpu_hours x price + storage + network line items"),
        ("fits", "FALSE rows do not fit (reason column); their time and cost are what they would be if they did"),
    ]
    for k, v in notes:  # text, never formulas (a note that starts with "=" would be an error cell)
        ws.write_string(r, 0, k, fm.get(bold=True))
        ws.write_string(r, 1, v)
        r += 1
    s.last_row = r
    return cells


_COST_COLUMNS = ["scenario", "hardware", "fits", "gpus", "training_tokens", "wall_clock_days", "gpu_hours",
                 "price_usd_per_gpu_hour", "cost_compute_usd", "cost_storage_usd", "cost_network_usd", "cost_usd",
                 "cost_per_billion_tokens_usd", "energy_mwh", "co2_tonnes", "board_power_w"]


def _write_values(s: _Sheet, rows: list[dict], cols: Sequence[str], skip: Sequence[str] = ()) -> None:
    """Every plain value of ``rows`` (one sheet row each, under the header) except the columns in ``skip``."""
    s.header(cols)
    s.filter = True
    for i, row in enumerate(rows):
        for c in cols:
            if c not in skip:
                s.put(i + 1, c, _value(row, c))


def _write_cost(s: _Sheet, rows: list[dict], price_ref: dict[str, str]) -> dict[str, int]:
    """The Cost sheet: GPU-hours and every dollar column as formulas of the Assumptions price."""
    _write_values(s, rows, _COST_COLUMNS, skip=FORMULA_COLUMNS)
    for i, row in enumerate(rows):
        r, pref = i + 1, price_ref.get(row["scenario"])
        if row.get("gpu_hours") is None or pref is None:
            continue
        g, w, n, p, cc, st, nw, tot, tok = (s.ref(r, k) for k in (
            "gpu_hours", "wall_clock_days", "gpus", "price_usd_per_gpu_hour", "cost_compute_usd",
            "cost_storage_usd", "cost_network_usd", "cost_usd", "training_tokens"))
        price = _plain(row.get("price_usd_per_gpu_hour"))
        s.formula(r, "gpu_hours", f"={n}*{w}*24", row.get("gpu_hours"))
        s.formula(r, "price_usd_per_gpu_hour", f'=IF(ISNUMBER({pref}),{pref},"")', price)
        s.formula(r, "cost_compute_usd", f'=IF(ISNUMBER({p}),{g}*{p},"")', row.get("cost_compute_usd"))
        s.formula(r, "cost_usd", f'=IF(ISNUMBER({p}),{cc}+{st}+{nw},"")', row.get("cost_usd"))
        s.formula(r, "cost_per_billion_tokens_usd", f'=IF(ISNUMBER({p}),{tot}/({tok}/1000000000),"")',
                  row.get("cost_per_billion_tokens_usd"))
    return dict(s.col)


def _write_summary(s: _Sheet, rows: list[dict], price_ref: dict[str, str], cost_col: dict[str, int]) -> None:
    """The Summary sheet: one row per scenario, costs as formulas (storage and network from the Cost sheet)."""
    from xlsxwriter.utility import xl_rowcol_to_cell

    _write_values(s, rows, SUMMARY_COLUMNS, skip=FORMULA_COLUMNS)
    for i, row in enumerate(rows):
        r, pref = i + 1, price_ref.get(row["scenario"])
        if row.get("gpu_hours") is None or pref is None:
            continue
        n, w, g, p, tot, tok = (s.ref(r, k) for k in ("gpus", "wall_clock_days", "gpu_hours",
                                                        "price_usd_per_gpu_hour", "cost_usd", "training_tokens"))
        extra = "+".join(f"Cost!{xl_rowcol_to_cell(r, cost_col[k])}" for k in ("cost_storage_usd",
                                                                              "cost_network_usd"))
        s.formula(r, "gpu_hours", f"={n}*{w}*24", row.get("gpu_hours"))
        s.formula(r, "price_usd_per_gpu_hour", f'=IF(ISNUMBER({pref}),{pref},"")', row.get("price_usd_per_gpu_hour"))
        s.formula(r, "cost_usd", f'=IF(ISNUMBER({p}),{g}*{p}+{extra},"")', row.get("cost_usd"))
        s.formula(r, "cost_per_billion_tokens_usd", f'=IF(ISNUMBER({p}),{tot}/({tok}/1000000000),"")',
                  row.get("cost_per_billion_tokens_usd"))


def _write_memory(s: _Sheet, rows: list[dict]) -> None:
    """The Memory sheet: the parts of the most loaded GPU's memory (GiB), the total, capacity and headroom."""
    cols = (["scenario", "fits"] + [k[:-6] + "_gib" for k in MEMORY_PARTS]
            + ["memory_per_gpu_gib", "memory_capacity_gib", "memory_headroom_gib",
               "memory_optimizer_offloaded_gib", "memory_stage", "params_per_gpu", "zero_stage", "recompute"])
    _write_values(s, rows, cols, skip=("memory_headroom_gib",))
    for i, row in enumerate(rows):
        cap, tot = _value(row, "memory_capacity_gib"), _value(row, "memory_per_gpu_gib")
        if cap is not None and tot is not None:
            s.formula(i + 1, "memory_headroom_gib",
                      f"={s.ref(i + 1, 'memory_capacity_gib')}-{s.ref(i + 1, 'memory_per_gpu_gib')}", cap - tot,
                      FMT_GIB)


def _write_time(s: _Sheet, rows: list[dict]) -> None:
    """The Time sheet: the step-time breakdown, throughput, MFU/HFU and the whole-run days."""
    cols = (["scenario", "fits", "step_time_s"] + list(TIME_STEP_PARTS)
            + ["tokens_per_s_per_gpu", "mfu", "hfu", "training_steps", "wall_clock_days"]
            + list(TIME_RUN_PARTS) + ["goodput", "expected_failures", "checkpoint_interval_hours"])
    _write_values(s, rows, cols)


def _write_inputs(s: _Sheet, results: list) -> None:
    """The Inputs sheet, transposed: one row per input field, one column per scenario."""
    inputs = [inputs_of(res) for res in results]
    fields: list[str] = []
    for d in inputs:
        fields += [k for k in d if k not in fields]
    names = [r.row["scenario"] for r in results]
    s.header(["field"] + names, numeric=lambda c: False)
    for i, f in enumerate(fields, start=1):
        s.put(i, "field", f)
        for j, d in enumerate(inputs, start=1):
            v = d.get(f)
            if v is not None:
                s.put(i, "", v if isinstance(v, (bool, int, float)) else str(v), col=j)


__all__ = ["EXPORT_COLUMNS", "LONG_COLUMNS", "UNITS", "check_writable", "csv_text", "flat_row", "is_planner_export",
           "json_payload", "json_text", "long_rows", "write_export", "write_xlsx"]
