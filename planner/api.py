"""The Python API, for notebooks and scripts.

```python
import planner

r = planner.estimate(model="llama-3-8b", hardware="h100-sxm",
                     run={"seq_len": 8192, "global_batch_tokens": 4194304, "training_tokens": 1.5e13},
                     layout={"gpus": 64, "fsdp": "full", "recompute": "selective"})
r.fits, r.step_time_s, r.to_dict()["cost_usd"]
r.to_dataframe()                          # one row (needs pandas)

plan = planner.load_plan("examples/llama3-8b-64xh100.yaml")
planner.estimate(plan)                    # the same for a Plan, a plan mapping or a plan file path

results = planner.evaluate("plan.yaml")   # every scenario and sweep point of a plan file
results.to_dataframe()                    # one row per scenario; results["fsdp"] is one Result
results.write("plan.xlsx")                # or .csv / .json, as `planner plan --out`
```

Results are values: :class:`Result` wraps the core's :class:`~planner.core.estimate.Estimate` (its attributes are
reachable on the result: ``r.memory``, ``r.flops``, ``r.evaluation``) and adds ``to_dict`` (the flat row of
``planner plan``'s exports, unit-suffixed keys) and ``to_dataframe``. A plan whose layout degrees do not fit
together, or whose estimate fails for that combination, is a Result with ``fits`` False, a ``reason`` and no
estimate. Bad input raises :class:`planner.errors.SpecError` with the one-line message the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from .errors import SpecError
from .io.export import EXPORT_COLUMNS, flat_row, json_payload, write_export
from .io.plan import PlanFile, PlanPoint, resolve_hardware, resolve_model
from .plans import load_plan, load_plan_file, load_scenarios, plan_from_dict
from .specs.plan import Plan


def _require_pandas():
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    return pd


#: The rows of a result's notebook view: (section, keys).
_HTML_SECTIONS = (
    ("layout", ("model", "hardware", "gpus", "dp", "tp", "pp", "cp", "ep", "zero_stage", "fsdp", "recompute",
                "seq_len_tokens", "global_batch_seqs", "micro_batch_seqs")),
    ("size", ("params_total", "params_active", "model_flops_per_token", "model_flops_total")),
    ("time", ("step_time_s", "tokens_per_s_per_gpu", "mfu", "hfu", "wall_clock_days")),
    ("cost", ("gpu_hours", "price_usd_per_gpu_hour", "cost_usd", "energy_mwh")),
    ("memory per GPU", ("memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes",
                        "memory_activations_bytes", "memory_logits_bytes", "memory_overhead_bytes",
                        "memory_per_gpu_bytes", "memory_capacity_bytes", "fits", "reason")),
)


@dataclass(frozen=True, repr=False)
class Result:
    """One evaluated plan: ``name``, ``plan`` (None when its layout is infeasible), ``estimate`` (None likewise),
    ``row`` (the flat export row). Every key of the row is an attribute (``r.step_time_s``, ``r.cost_usd``; tab
    completion lists them), then the core Estimate's (``r.memory``, ``r.flops``).

    >>> r = planner.estimate("examples/llama3-8b-64xh100.yaml")   # doctest: +SKIP
    >>> r                                                         # doctest: +SKIP
    Result('llama3-8b-64xh100': fits, memory/GPU 24.82 GiB, step 7.665 s, MFU 44.5%, days 321, cost $1.47M)
    """

    name: str
    plan: Optional[Plan]
    estimate: Any  #: planner.core.estimate.Estimate, or None
    row: dict
    partial: dict = field(default_factory=dict, repr=False)
    sweep: tuple = ()  #: (dotted path, value) pairs of a sweep point

    @property
    def fits(self) -> bool:
        return bool(self.row.get("fits"))

    @property
    def reason(self) -> Optional[str]:
        return self.row.get("reason")

    def to_dict(self) -> dict:
        """The flat row: ``scenario`` and every export column (unit-suffixed keys; None where not computed)."""
        return dict(self.row)

    def to_dataframe(self):
        """A one-row pandas DataFrame of :meth:`to_dict` (needs pandas)."""
        pd = _require_pandas()
        return pd.DataFrame([self.row], columns=list(EXPORT_COLUMNS))

    def __repr__(self) -> str:
        from .report import summary_line

        return f"Result({self.name!r}: {summary_line(self.row)})"

    def _repr_html_(self) -> str:
        """A notebook's view: the headline numbers by section."""
        from .report import html_table

        rows = [{"section": sec, "quantity": k, "value": self.row.get(k), "_key": k}
                for sec, keys in _HTML_SECTIONS for k in keys if self.row.get(k) is not None]
        from .report import human

        for r in rows:
            r["value"] = human(r["value"], r.pop("_key"))
        return html_table(rows, ["section", "quantity", "value"], caption=self.name)

    def __dir__(self):
        extra = list(self.row)
        est = object.__getattribute__(self, "estimate")
        if est is not None:
            extra += [k for k in dir(est) if not k.startswith("_")]
        return sorted(set(super().__dir__()) | set(extra))

    def __getattr__(self, name: str):
        # Unknown attributes: first the row (r.step_time_s), then the core Estimate (r.memory, r.flops)
        if name.startswith("__"):
            raise AttributeError(name)
        row = object.__getattribute__(self, "row")
        if name in row:
            return row[name]
        est = object.__getattribute__(self, "estimate")
        if est is not None:
            return getattr(est, name)
        raise AttributeError(f"{name!r}: not in this result (its layout is infeasible: {row.get('reason')})")


class Results(Sequence):
    """The results of a plan file, in order; index by position or by scenario name."""

    def __init__(self, results: Sequence[Result], title: str = "", path: Optional[Path] = None):
        self._results = list(results)
        self.title = title
        self.path = path

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self._results:
                if r.name == key:
                    return r
            raise KeyError(f"no scenario {key!r} (has: {', '.join(r.name for r in self._results)})")
        return self._results[key]

    def __repr__(self) -> str:
        names = [r.name for r in self._results]
        shown = names if len(names) <= 6 else names[:5] + [f"... {len(names) - 5} more"]
        return f"Results({self.title!r}, {len(names)} plans: {', '.join(shown)})"

    def _repr_html_(self) -> str:
        """A notebook's view: one row per scenario, the columns of `planner plan`."""
        from .report import html_table

        cols = ["scenario", "gpus", "dp", "tp", "pp", "memory_per_gpu_bytes", "fits", "step_time_s", "mfu",
                "wall_clock_days", "gpu_hours", "cost_usd"]
        return html_table([r.row for r in self._results], cols, caption=self.title)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._results]

    def to_records(self) -> list[dict]:
        """One flat row per scenario."""
        return [r.to_dict() for r in self._results]

    def to_dict(self) -> dict:
        """``{scenario: flat row}``."""
        return {r.name: r.to_dict() for r in self._results}

    def to_json(self, long: bool = False) -> dict:
        """The JSON export as a mapping (``planner plan --format json``)."""
        return json_payload(self._results, long=long, title=self.title,
                            plan_file=str(self.path) if self.path else None)

    def to_dataframe(self, long: bool = False):
        """A pandas DataFrame: one row per scenario (or, with ``long``, one per scenario and quantity)."""
        pd = _require_pandas()
        if long:
            from .io.export import LONG_COLUMNS, long_rows

            return pd.DataFrame(long_rows(self.to_records()), columns=list(LONG_COLUMNS))
        return pd.DataFrame(self.to_records(), columns=list(EXPORT_COLUMNS))

    def write(self, path, long: bool = False, force: bool = False) -> Path:
        """Write a CSV, JSON or XLSX export (by extension); never clobbers a file that is not a planner export
        unless ``force``."""
        return write_export(path, self._results, long=long, force=force, title=self.title,
                            plan_file=str(self.path) if self.path else None)

    def plot(self, path, kind: str = "compare", force: bool = False) -> Path:
        """Write a plot (PNG or SVG by extension): memory, time, compare or pareto."""
        from .plots import plot

        return plot(self._results, path, kind=kind, title=self.title, force=force)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------

def _infeasible_row(point: PlanPoint, reason: str) -> dict:
    """What is known of a point whose layout is infeasible: names, the layout as given, parameter counts."""
    from .core.params import param_breakdown

    part = point.partial
    vals: dict = {"fits": False, "reason": reason}
    model, hw, run = part.get("model"), part.get("hardware"), part.get("run")
    if model is not None:
        vals["model"] = model.name
        vals.update(param_breakdown(model).to_dict())
    if hw is not None:
        vals["hardware"] = hw.name
        vals["memory_capacity_bytes"] = hw.accelerator.hbm_bytes.value
    if run is not None:
        vals.update({"seq_len_tokens": run.seq_len, "micro_batch_seqs": run.micro_batch,
                     "global_batch_seqs": run.batch_seqs, "precision": run.precision,
                     "training_tokens": run.training_tokens})
    lay = part.get("layout") or {}
    for k in ("gpus", "dp", "tp", "pp", "cp", "ep", "vpp", "zero_stage", "fsdp", "sequence_parallel", "recompute",
              "flash_attention"):
        if k in lay:
            vals[k] = lay[k]
    return vals


def _evaluate_plan(plan: Plan, name: Optional[str] = None, sweep: tuple = ()) -> Result:
    from .core.estimate import estimate as core_estimate

    label = name if name is not None else plan.name
    try:
        est = core_estimate(plan)
    except SpecError as exc:  # a combination the layout rules reject: a row that does not fit
        from .core.params import param_breakdown

        vals = {"model": plan.model.name, "hardware": plan.hardware.name, "fits": False, "reason": str(exc),
                "gpus": plan.layout.num_gpus, "dp": plan.layout.data_parallel, "tp": plan.layout.tp,
                "pp": plan.layout.pp, "cp": plan.layout.cp, "ep": plan.layout.ep, "vpp": plan.layout.vpp,
                "zero_stage": plan.layout.effective_zero_stage, "fsdp": plan.layout.fsdp,
                "sequence_parallel": plan.layout.sequence_parallel, "recompute": plan.layout.recompute,
                "flash_attention": plan.layout.flash_attention, "seq_len_tokens": plan.run.seq_len,
                "micro_batch_seqs": plan.run.micro_batch, "global_batch_seqs": plan.run.batch_seqs,
                "precision": plan.run.precision, "training_tokens": plan.run.training_tokens,
                "memory_capacity_bytes": plan.hardware.accelerator.hbm_bytes.value,
                **param_breakdown(plan.model).to_dict()}
        return Result(name=label, plan=plan, estimate=None, row=flat_row(label, vals), sweep=sweep)
    return Result(name=label, plan=plan, estimate=est, row=flat_row(label, est.to_dict()), sweep=sweep)


def evaluate_plan_file(pf: PlanFile, progress=None) -> Results:
    """Evaluate every point of a :class:`PlanFile`: infeasible points are results that do not fit.
    ``progress(done, total)`` is called after each point (the CLI's progress bar)."""
    out = []
    for i, p in enumerate(pf.points):
        if progress is not None:
            progress(i, len(pf.points))
        if p.plan is None:
            out.append(Result(name=p.name, plan=None, estimate=None, row=flat_row(p.name, _infeasible_row(p, p.error)),
                              partial=p.partial, sweep=p.values))
        else:
            out.append(_evaluate_plan(p.plan, p.name, p.values))
    return Results(out, title=pf.title, path=pf.path)


def evaluate(plan_file, progress=None) -> Results:
    """Every scenario and sweep point of a plan file (a path), evaluated.

    >>> results = planner.evaluate("docs/examples/llama3-8b-scenarios.yaml")   # doctest: +SKIP
    >>> results.names[:2], results[0].step_time_s                              # doctest: +SKIP
    """
    return evaluate_plan_file(load_plan_file(plan_file), progress=progress)


PlanLike = Union[Plan, dict, str, Path]


def _as_dict(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


def make_plan(model: Any = None, hardware: Any = None, run: Any = None, layout: Any = None, schedule: Any = None,
              name: str = "") -> Plan:
    """A validated Plan from its parts: each a spec object, a mapping, or (model, hardware) a preset/profile
    name. Mappings may use ``extends:`` / ``hf_config:`` as in plan files."""
    if model is None or hardware is None or run is None:
        missing = [k for k, v in (("model", model), ("hardware", hardware), ("run", run)) if v is None]
        raise SpecError(f"estimate: give {', '.join(missing)} (or a plan)")
    data = {"name": name, "model": _as_dict(model), "hardware": _as_dict(hardware), "run": _as_dict(run),
            "layout": _as_dict(layout) or {}, "schedule": _as_dict(schedule) or {}}
    return plan_from_dict(data, base_dir=Path.cwd())


def estimate(plan: Optional[PlanLike] = None, *, model: Any = None, hardware: Any = None, run: Any = None,
             layout: Any = None, schedule: Any = None, name: str = "") -> Result:
    """Estimate one plan: ``estimate(plan)`` with a Plan, a plan mapping or a plan-file path, or
    ``estimate(model=..., hardware=..., run={...}, layout={...}, schedule={...})``.

    A plan that does not fit is a result (``fits`` False, ``reason``), not an error; bad input raises SpecError.

    >>> r = planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 8192,
    ...                      "global_batch_seqs": 512}, layout={"gpus": 64, "fsdp": "full"})   # doctest: +SKIP
    >>> r.fits, r.step_time_s, r.memory_per_gpu_bytes / 2**30                                 # doctest: +SKIP
    """
    if plan is not None:
        if any(v is not None for v in (model, hardware, run, layout, schedule)):
            raise SpecError("estimate: give a plan or its parts (model=, hardware=, run=, layout=), not both")
        if isinstance(plan, (str, Path)):
            plan = load_plan(plan)
        elif isinstance(plan, dict):
            plan = plan_from_dict(dict(plan), base_dir=Path.cwd())
        elif not isinstance(plan, Plan):
            raise SpecError(f"estimate: expected a Plan, a mapping or a path, got {type(plan).__name__}")
    else:
        plan = make_plan(model, hardware, run, layout, schedule, name)
    from .core.estimate import estimate as core_estimate

    est = core_estimate(plan)  # a layout that does not divide is bad input for one plan (SpecError)
    label = plan.name or "base"
    return Result(name=label, plan=plan, estimate=est, row=flat_row(label, est.to_dict()))


# ---------------------------------------------------------------------------------------------------------------
# Search and budget
# ---------------------------------------------------------------------------------------------------------------

def _plan_of(plan: PlanLike) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, Path)):
        return load_plan(plan)
    if isinstance(plan, dict):
        return plan_from_dict(dict(plan), base_dir=Path.cwd())
    raise SpecError(f"expected a Plan, a mapping or a path, got {type(plan).__name__}")


def search(plan: PlanLike, *, rank_by: str = "step-time", progress=None, **constraints):
    """Every layout of ``plan`` (tp/pp/vpp/cp/ep/dp, micro-batch, recomputation, ZeRO/FSDP, sequence parallel),
    evaluated in one vectorised pass and ranked by ``rank_by`` (``step-time``, ``cost``, ``time-to-train``).

    ``constraints`` are the fields of :class:`planner.search.Constraints`: ``gpus=(64, 128)``, ``max_gpus=1024``,
    ``tp=4`` or ``tp=(2, 4)``, ``max_pp=8``, ``global_batch=(512, 1024)``, ``recompute=("selective",)`` ...; the
    plan's layout is ignored except for kernels and offload. Returns a :class:`planner.search.SearchResult`:
    ``.best()``, ``.ranked(10)``, ``.rows(idx)``, ``.pareto()``.

    >>> res = planner.search("examples/llama3-8b-64xh100.yaml", gpus=(64, 128))   # doctest: +SKIP
    >>> res.rows(res.ranked(3))[0]["step_time_s"]                                 # doctest: +SKIP
    """
    from .search import Constraints, search as run_search

    fields = {f for f in Constraints.__dataclass_fields__}
    unknown = sorted(set(constraints) - fields)
    if unknown:
        raise SpecError(f"search: unknown constraint(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    fixed = {}
    for k, v in constraints.items():
        if isinstance(v, (list, tuple)):
            v = tuple(v)
        elif not k.startswith(("max_", "min_")) and v is not None:
            v = (v,)
        fixed[k] = v
    return run_search(_plan_of(plan), Constraints(**fixed), rank_by=rank_by, progress=progress)


def budget(hardware: Any, **query):
    """What to train for a budget: GPU-hours from ``usd``/``days``/``gpus``, the scaling law's compute-optimal
    model and tokens, a concrete architecture, the best layout from the search, iterated until the MFU agrees.

    ``hardware``: a profile name, path or HardwareSpec; ``query``: the keywords of :func:`planner.budget.budget`
    (``usd``, ``days``, ``gpus``, ``target_loss``, ``tokens_available``, ``seq_len``, ``law``, ...). Returns a
    :class:`planner.budget.BudgetAnswer`.

    >>> planner.budget("h100-sxm", usd=2e6, days=30)    # doctest: +SKIP
    """
    from .budget import budget as run_budget

    hw = resolve_hardware(hardware, Path.cwd()) if not hasattr(hardware, "accelerator") else hardware
    return run_budget(hw, **query)


# ---------------------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------------------

#: What a comparison shows per plan, and (the first five) the deltas it computes against the first plan.
COMPARE_DELTAS = ("memory_per_gpu_bytes", "step_time_s", "wall_clock_days", "gpu_hours", "cost_usd")
COMPARE_KEYS = ("model", "hardware", "gpus", "fits") + COMPARE_DELTAS + ("mfu", "tokens_per_s_per_gpu")


def _matches(name: str, scenario: str) -> bool:
    return name == scenario or name.split("[", 1)[0] == scenario


def _compare_items(plans, scenario: Optional[str]) -> list[Result]:
    out: list[Result] = []
    for p in plans:
        if isinstance(p, Result):
            out.append(p)
            continue
        if isinstance(p, (Plan, dict)):
            out.append(estimate(p))
            continue
        res = evaluate(p)
        label = res.title or Path(p).stem
        picked = [r for r in res if scenario is None or len(res) == 1 or _matches(r.name, scenario)]
        if not picked:
            raise SpecError(f"{p}: no scenario {scenario!r} (has: {', '.join(res.names)})")
        for r in picked:
            name = label if len(res) == 1 else f"{label}/{r.name}"
            out.append(Result(name=name, plan=r.plan, estimate=r.estimate, row={**r.row, "scenario": name},
                              partial=r.partial, sweep=r.sweep))
    return out


@dataclass(frozen=True)
class Comparison:
    """Plans side by side: ``results`` (the first is the baseline) and ``rows``, one per plan with the values of
    :data:`COMPARE_KEYS` and, for each of :data:`COMPARE_DELTAS`, ``delta_<key>`` (difference from the baseline)
    and ``delta_<key>_pct``."""

    results: tuple
    rows: tuple

    @property
    def baseline(self) -> Result:
        return self.results[0]

    def to_records(self) -> list[dict]:
        return [dict(r) for r in self.rows]

    def to_dataframe(self):
        """One row per plan (needs pandas)."""
        return _require_pandas().DataFrame(self.to_records())

    def __repr__(self) -> str:
        return f"Comparison({[r.name for r in self.results]}, baseline={self.baseline.name!r})"

    def _repr_html_(self) -> str:
        from .report import html_table

        return html_table(self.to_records(), ["plan", *COMPARE_KEYS[2:], *(f"delta_{k}_pct" for k in COMPARE_DELTAS)])


def compare(*plans, scenario: Optional[str] = None) -> Comparison:
    """Plans side by side with the deltas of memory, step time, days, GPU-hours and dollars against the first.

    Each of ``plans`` is a plan-file path (every scenario of it, or those named ``scenario``; a file of one plan is
    taken whole), a Plan, a plan mapping or a :class:`Result`.

    >>> c = planner.compare("examples/llama3-8b-64xh100.yaml", "examples/gpt3-175b-megatron.yaml")  # doctest: +SKIP
    >>> c.rows[1]["delta_cost_usd_pct"]                                                            # doctest: +SKIP
    """
    results = _compare_items(plans, scenario)
    if len(results) < 2:
        raise SpecError(f"compare: needs two plans or more (got {len(results)})")
    base = results[0].row
    rows = []
    for r in results:
        row = {"plan": r.name, **{k: r.row.get(k) for k in COMPARE_KEYS}}
        for k in COMPARE_DELTAS:
            a, b = base.get(k), r.row.get(k)
            ok = a is not None and b is not None
            row[f"delta_{k}"] = b - a if ok else None
            row[f"delta_{k}_pct"] = 100.0 * (b - a) / a if ok and a else None
        rows.append(row)
    return Comparison(tuple(results), tuple(rows))


__all__ = ["Comparison", "Result", "Results", "budget", "compare", "estimate", "search", "evaluate", "evaluate_plan_file", "load_plan", "load_plan_file",
           "load_scenarios", "make_plan", "resolve_hardware", "resolve_model"]
