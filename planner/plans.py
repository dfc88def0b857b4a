"""Plans as users load them: the parser's plans with their ``search:`` sections resolved.

``planner.io.plan`` reads and validates plan files and mappings; a ``search:`` section there is only recorded
(:class:`~planner.specs.plan.SearchRequest`). This module, above both the parser and the layout search, runs the
search a plan asks for and puts the best layout in place, so that reading a file never runs a search and the
core never sees an unresolved plan. The CLI and the Python API load plans through here.

``search: {max_pp: 16, tp: [4, 8], rank: cost}``: every field of :class:`planner.search.Constraints` (a list or a
single value fixes a dimension, ``max_*`` bounds it) plus ``rank`` (step-time, cost, time-to-train). Without
``gpus``/``max_gpus`` the layout's GPU count is kept. The layout's kernel switches (flash attention, its kernel,
offload) are kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from .errors import SpecError
from .io.plan import (BASE_NAME, InfeasibleLayout, PlanFile, PlanPoint, parse_plan, read_plan, read_plan_file)
from .specs.plan import Plan


def resolve(plan: Plan) -> Plan:
    """``plan`` with the best layout its ``search:`` section finds (itself when it asks for none).

    Raises SpecError for an unknown constraint or rank (naming file, line and key) and InfeasibleLayout when no
    layout under the constraints fits."""
    req = plan.search
    if req is None:
        return plan
    from .search import RANKS, Constraints, search

    spec = dict(req.constraints)
    rank = spec.pop("rank", "step-time")
    if rank not in RANKS:
        raise SpecError(req.location("rank") + f"search.rank: expected one of {', '.join(RANKS)}, got {rank!r}")
    known = {f.name: f for f in dataclasses.fields(Constraints)}
    kw: dict = {}
    for k, v in spec.items():
        if k not in known:
            raise SpecError(req.location(k) + f"search.{k}: unknown constraint (expected one of "
                            f"{', '.join(sorted(known))}, rank)")
        tuple_field = "tuple" in str(known[k].type)
        kw[k] = tuple(v) if isinstance(v, (list, tuple)) else ((v,) if tuple_field else v)
    if "gpus" not in kw and "max_gpus" not in kw:
        kw["gpus"] = (plan.layout.num_gpus,)
    unresolved = dataclasses.replace(plan, search=None)
    try:
        res = search(unresolved, Constraints(**kw), rank_by=rank)
    except TypeError as exc:
        raise SpecError(req.location() + f"search: {exc}") from None
    best = res.best()
    if best is None:
        reason = f"search: no layout fits under {dict(req.constraints) or 'no constraints'} ({res.n} candidates)"
        partial = {"model": plan.model, "hardware": plan.hardware, "run": plan.run, "schedule": plan.schedule,
                   "layout": plan.layout.model_dump()}
        raise InfeasibleLayout(req.location() + reason, partial, reason)
    found = res.plan_of(int(best))
    return dataclasses.replace(unresolved, run=found.run, layout=found.layout)


def resolve_point(point: PlanPoint) -> PlanPoint:
    """A plan file's point with its search resolved; no fitting layout makes it a point without a plan."""
    if point.plan is None or point.plan.search is None:
        return point
    context = "" if (point.name == BASE_NAME and not point.values) else f" (scenario {point.name})"
    try:
        return dataclasses.replace(point, plan=resolve(point.plan))
    except InfeasibleLayout as exc:
        return dataclasses.replace(point, plan=None, error=exc.reason, message=str(exc) + context,
                                   partial=exc.partial)
    except SpecError as exc:
        raise SpecError(str(exc) + context) from None


def resolve_file(pf: PlanFile) -> PlanFile:
    """Every point of a plan file with its search resolved."""
    return dataclasses.replace(pf, points=tuple(resolve_point(p) for p in pf.points))


def plan_from_dict(data: dict, path: Optional[Path] = None, lines: Optional[dict] = None,
                   base_dir: Optional[Path] = None, *, cache: Optional[dict] = None) -> Plan:
    """Validate a raw plan mapping (see :func:`planner.io.plan.parse_plan`) and resolve its search."""
    return resolve(parse_plan(data, path, lines, base_dir, cache=cache))


def load_plan(path, overrides: Optional[dict] = None, scenario: Optional[str] = None) -> Plan:
    """Load one plan from a file (``scenario`` picks one of several); ``overrides`` maps dotted paths to values."""
    return resolve(read_plan(path, overrides, scenario))


def load_plan_file(path, overrides: Optional[dict] = None) -> PlanFile:
    """Every plan of a plan file (scenarios x sweep points), infeasible layouts kept as points without a plan."""
    return resolve_file(read_plan_file(path, overrides))


def load_scenarios(path) -> list[Plan]:
    """Every plan of a plan file, validated: one named ``base`` without scenarios, one per scenario, one per sweep
    point (``NAME[field=value,...]``). A layout whose degrees do not fit together is a SpecError here; use
    :func:`load_plan_file` to keep such points."""
    return load_plan_file(path).plans


__all__ = ["load_plan", "load_plan_file", "load_scenarios", "plan_from_dict", "resolve", "resolve_file",
           "resolve_point"]
