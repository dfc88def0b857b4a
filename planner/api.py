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


@dataclass(frozen=True)
class Result:
    """One evaluated plan: ``name``, ``plan`` (None when its layout is infeasible), ``estimate`` (None likewise),
    ``row`` (the flat export row)."""

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
        return f"Results({self.title!r}, {[r.name for r in self._results]})"

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


def evaluate_plan_file(pf: PlanFile) -> Results:
    """Evaluate every point of a :class:`PlanFile`: infeasible points are results that do not fit."""
    out = []
    for p in pf.points:
        if p.plan is None:
            out.append(Result(name=p.name, plan=None, estimate=None, row=flat_row(p.name, _infeasible_row(p, p.error)),
                              partial=p.partial, sweep=p.values))
        else:
            out.append(_evaluate_plan(p.plan, p.name, p.values))
    return Results(out, title=pf.title, path=pf.path)


def evaluate(plan_file) -> Results:
    """Every scenario and sweep point of a plan file (a path), evaluated."""
    return evaluate_plan_file(load_plan_file(plan_file))


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


__all__ = ["Result", "Results", "estimate", "evaluate", "evaluate_plan_file", "load_plan", "load_plan_file",
           "load_scenarios", "make_plan", "resolve_hardware", "resolve_model"]
