"""Plan files: a model, a run, a layout and hardware, by name or inline; named scenarios and sweeps over them.

```yaml
name: llama3-8b-budget        # a title for tables and exports
model: llama-3-8b             # a preset name, an inline ModelSpec, {extends: llama-3-8b, num_layers: 40},
                              # or {hf_config: path/to/config.json} (a local Hugging Face config, path relative
                              # to this file)
hardware: h100-sxm            # a profile name/alias/path, or an inline HardwareSpec ({extends: h100-sxm, ...})
run: {seq_len: 8192, global_batch_tokens: 4194304, micro_batch: 1, training_tokens: 1.5e13}
layout: {gpus: 64, tp: 2, pp: 1, zero_stage: 1, recompute: selective}
schedule: {price_usd_per_gpu_hour: 2.5}
scenarios:                    # named overrides of everything above (deep-merged); each one is a plan
  fsdp: {layout: {tp: 1, fsdp: full}}
  long-context: {run.seq_len: 32768, layout.cp: 4}       # dotted keys work too
sweep:                        # over any dotted field path, for every scenario (or the base)
  grid: {layout.gpus: [64, 128], run.seq_len: [4096, 8192]}   # cartesian product
  zip: {layout.tp: [1, 2], layout.pp: [1, 2]}                  # parallel lists (one point per position)
```

Rules (docs/plans.md has the full description):

- With ``scenarios``, each scenario is one plan (the base alone is not evaluated; add ``baseline: {}`` for it),
  named by its key. Without, the file is one plan named ``base``. Sweep points are named
  ``NAME[field=value,...]``.
- A mapping merges into what it overrides; a scalar or a list replaces it. A model or hardware given by name is
  overridden field by field as if it were ``{extends: NAME}``; a mapping with ``extends:`` or ``hf_config:``
  replaces the model (or hardware) outright.
- Setting one of ``layout.gpus`` / ``layout.dp`` drops the other from what it overrides, and likewise
  ``run.global_batch_seqs`` / ``run.global_batch_tokens`` (the two sides of a pair cannot disagree).
- A scenario may carry its own ``sweep:`` (replacing the top-level one for it; ``sweep: null`` for none).

Errors name the file, the line and the field: ``plan.yaml:14 run.seq_len: Input should be greater than 0 (got
-8192)``, with ``(in scenario NAME)`` when the field came from a scenario or sweep point. A layout whose degrees do
not divide (gpus by tp·pp·cp, sequence parallelism without tp, ...) is an :class:`InfeasibleLayout`: an error for
one plan, a row with ``fits: false`` in ``planner plan``.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from ..errors import SpecError, format_validation_error
from ..registry import preset_data, profile_data, with_calibration
from ..specs.hardware import HardwareSpec
from ..specs.layout import LayoutSpec
from ..specs.model import ModelSpec
from ..specs.plan import Plan, SearchRequest
from ..specs.run import RunSpec
from ..specs.schedule import ScheduleSpec
from .yamlsrc import line_of, load_with_lines

#: The sections of one plan: the four specs, the schedule (prices, failures, energy), an optional layout search
#: (constraints; the best layout found replaces ``layout``) and a name.
SPEC_SECTIONS = ("model", "run", "layout", "hardware", "schedule", "search")
PLAN_KEYS = ("name", "description") + SPEC_SECTIONS
#: Top-level keys of a plan file.
FILE_KEYS = PLAN_KEYS + ("scenarios", "sweep")
#: Keys a scenario may set (besides dotted field paths such as ``layout.gpus``).
SCENARIO_KEYS = ("description", "sweep") + SPEC_SECTIONS
SWEEP_KINDS = ("grid", "zip")
#: Name of the single plan of a file without scenarios.
BASE_NAME = "base"
#: Two ways of giving one quantity: setting one side drops the other from what it overrides.
PAIRS = {
    ("layout", "gpus"): ("layout", "dp"), ("layout", "dp"): ("layout", "gpus"),
    ("run", "global_batch_seqs"): ("run", "global_batch_tokens"),
    ("run", "global_batch_tokens"): ("run", "global_batch_seqs"),
}


class InfeasibleLayout(SpecError):
    """A layout whose degrees do not fit together (a cross-field rule of :class:`LayoutSpec`). Bad input for one
    plan (exit 2); in a plan file's comparison it becomes a row that does not fit. ``partial`` holds the specs that
    did validate (model, hardware, run, schedule) and the raw layout mapping."""

    def __init__(self, message: str, partial: Optional[dict] = None, reason: str = ""):
        super().__init__(message)
        self.partial = partial or {}
        self.reason = reason or message


def _where(path: Optional[Path], lines: dict, loc: tuple) -> str:
    if path is None:
        return ""
    line = line_of(lines, loc)
    return f"{path}:{line} " if line else f"{path}: "


def _validate(cls, data: Any, section: str, path: Optional[Path], lines: dict):
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        loc = (section,) + tuple(exc.errors()[0].get("loc", ()))
        raise SpecError(_where(path, lines, loc) + format_validation_error(exc, prefix=section)) from None


def resolve_model(value: Any, base_dir: Optional[Path] = None) -> dict:
    """The raw model mapping: a preset name, an inline mapping, ``{extends: NAME, ...overrides}`` or
    ``{hf_config: path/to/config.json, ...overrides}`` (a relative path is taken from ``base_dir``). A name
    ending in .yaml/.yml is a model file (e.g. written by ``planner models import --out``)."""
    if isinstance(value, str):
        if value.endswith((".yaml", ".yml")):
            from ..registry import read_yaml

            p = Path(value).expanduser()
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            return read_yaml(p)
        return preset_data(value)
    if isinstance(value, dict):
        value = dict(value)
        base = value.pop("extends", None)
        hf = value.pop("hf_config", None)
        if base is not None and hf is not None:
            raise SpecError("model: give extends or hf_config, not both")
        if hf is not None:
            from .hf_config import load_hf_config

            p = Path(str(hf)).expanduser()
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            merged = load_hf_config(p, name=value.get("name"))
        elif base is not None:
            merged = copy.deepcopy(resolve_model(str(base), base_dir))
            merged.pop("published_params", None)  # an edited model no longer has the published count
        else:
            return value
        _deep_update(merged, value)
        return merged
    raise SpecError(f"model: expected a preset name or a mapping, got {type(value).__name__}")


def resolve_hardware(value: Any) -> dict:
    """The raw hardware mapping: a profile name, or an inline mapping (``extends:`` a profile, ``cluster:`` a node
    and fabric from ``hardware_profiles/clusters/``)."""
    if isinstance(value, str):
        return with_calibration(profile_data(value))
    if isinstance(value, dict):
        value = dict(value)
        base = value.pop("extends", None)
        cluster = value.pop("cluster", None)
        merged = copy.deepcopy(profile_data(base)) if base is not None else {}
        if cluster is not None:  # the cluster's node and fabric, then the mapping's own overrides
            from ..registry import cluster_data

            fabric = cluster_data(cluster)
            _deep_update(merged, {k: fabric[k] for k in ("node", "network") if k in fabric})
            merged["cluster"] = str(cluster)
        _deep_update(merged, value)
        return with_calibration(merged)
    raise SpecError(f"hardware: expected a profile name or a mapping, got {type(value).__name__}")


def _deep_update(base: dict, changes: dict) -> None:
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating levels as needed."""
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        if not isinstance(cur.get(k), dict):
            cur[k] = {}
        cur = cur[k]
    cur[keys[-1]] = value


def _resolve_with_where(fn, value, section: str, path: Optional[Path], lines: dict, *args):
    try:
        return fn(value, *args)
    except SpecError as exc:
        msg = str(exc)
        if path is None or msg.startswith(str(path)):
            raise
        loc = (section, "hf_config") if isinstance(value, dict) and "hf_config" in value else (section,)
        if not msg.startswith(section):
            msg = f"{section}: {msg}"
        raise SpecError(_where(path, lines, loc) + msg) from None


def _cached(cache: Optional[dict], key: tuple, build):
    if cache is None:
        return build()
    try:
        k = key[:-1] + (json.dumps(key[-1], sort_keys=True, default=str),)
    except (TypeError, ValueError):
        return build()
    if k not in cache:
        cache[k] = build()
    return cache[k]


def parse_plan(data: dict, path: Optional[Path] = None, lines: Optional[dict] = None,
               base_dir: Optional[Path] = None, *, cache: Optional[dict] = None) -> Plan:
    """Validate a raw plan mapping into a :class:`Plan` (one plan: no ``scenarios`` or ``sweep``). A ``search:``
    section is recorded, not run (``Plan.search``; ``planner.plans`` resolves it).

    ``base_dir`` is where relative ``hf_config`` paths start (default: the plan file's folder). A layout whose
    degrees do not fit together raises :class:`InfeasibleLayout` (a SpecError). ``cache`` (a dict the caller
    keeps) reuses validated model and hardware specs across plans that name the same ones (sweeps)."""
    lines = lines or {}
    multi = [k for k in ("scenarios", "sweep") if k in data]
    if multi:
        raise SpecError(
            _where(path, lines, (multi[0],)) + f"{multi[0]}: this file describes several plans; evaluate them with "
            f"`planner plan {path or 'PLAN.yaml'}` (Python: planner.load_scenarios)"
        )
    unknown = [k for k in data if k not in PLAN_KEYS]
    if unknown:
        raise SpecError(
            _where(path, lines, (unknown[0],)) + f"{unknown[0]}: unknown plan key (expected one of {', '.join(PLAN_KEYS)})"
        )
    for key in ("model", "run", "hardware"):
        if key not in data:
            prefix = f"{path}: " if path else ""
            raise SpecError(prefix + f"{key}: missing (a plan needs model, run, layout and hardware)")
    if base_dir is None and path is not None:
        base_dir = Path(path).parent
    model = _cached(cache, ("model", str(base_dir), data["model"]), lambda: _validate(
        ModelSpec, _resolve_with_where(resolve_model, data["model"], "model", path, lines, base_dir), "model", path,
        lines))
    hardware = _cached(cache, ("hardware", data["hardware"]), lambda: _validate(
        HardwareSpec, _resolve_with_where(resolve_hardware, data["hardware"], "hardware", path, lines), "hardware",
        path, lines))
    run = _validate(RunSpec, data.get("run") or {}, "run", path, lines)
    schedule = _validate(ScheduleSpec, data.get("schedule") or {}, "schedule", path, lines)
    raw_layout = data.get("layout") or {}
    try:
        layout = LayoutSpec.model_validate(raw_layout)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ("layout",) + tuple(first.get("loc", ()))
        message = _where(path, lines, loc) + format_validation_error(exc, prefix="layout")
        if not first.get("loc") and first.get("type") == "value_error" and isinstance(raw_layout, dict):
            partial = {"model": model, "hardware": hardware, "run": run, "schedule": schedule, "layout": raw_layout}
            raise InfeasibleLayout(message, partial, format_validation_error(exc, prefix="layout")) from None
        raise SpecError(message) from None
    return Plan(model=model, run=run, layout=layout, hardware=hardware, name=str(data.get("name", "")),
                schedule=schedule, search=_search_request(data.get("search"), path, lines))


def _search_request(spec: Any, path: Optional[Path], lines: dict) -> Optional[SearchRequest]:
    """A ``search:`` section as written, with the file and line of each key; ``planner.plans`` resolves it."""
    if spec is None:
        return None
    where = _where(path, lines, ("search",))
    if not isinstance(spec, dict):
        raise SpecError(where + f"search: expected a mapping of constraints, got {type(spec).__name__}")
    items = tuple((str(k), tuple(v) if isinstance(v, list) else v) for k, v in spec.items())
    return SearchRequest(constraints=items,
                         where=(("", where),) + tuple((k, _where(path, lines, ("search", k))) for k, _ in items))


def read_plan_data(path: Path) -> tuple[dict, dict]:
    """(raw mapping, key-path lines) of a plan file."""
    return load_with_lines(Path(path))


def read_plan(path, overrides: Optional[dict] = None, scenario: Optional[str] = None) -> Plan:
    """Read and validate a plan file; ``overrides`` maps dotted field paths to values (CLI flags). A ``search:``
    section is left unresolved (``planner.plans.load_plan`` reads and resolves).

    A file with ``scenarios`` or ``sweep`` holds several plans: pick one with ``scenario`` (its name as
    :func:`read_plan_file` gives it) or read them all with :func:`read_plan_file`."""
    data, lines = read_plan_data(Path(path))
    if scenario is None and not any(k in data for k in ("scenarios", "sweep")):
        for k, v in (overrides or {}).items():
            set_path(data, k, v)
        return parse_plan(data, Path(path), lines)
    pf = plan_file_from_data(data, lines, Path(path), overrides=overrides)
    names = [p.name for p in pf.points]
    if scenario is None:
        raise SpecError(f"{path}: holds {len(names)} plans ({_short_list(names)}); pass scenario=NAME or use "
                        "load_scenarios")
    for p in pf.points:
        if p.name == scenario:
            return p.require()
    raise SpecError(f"{path}: no scenario {scenario!r} (has: {_short_list(names)})")


def _short_list(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


# ---------------------------------------------------------------------------------------------------------------
# Scenarios and sweeps
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanPoint:
    """One plan of a plan file: a scenario, or a sweep point of one.

    ``plan`` is None when the point's layout degrees do not fit together (``error`` says why; ``partial`` holds the
    specs that validated); such a point is a row with ``fits: false``, not an error, in ``planner plan``."""

    name: str  #: "base", the scenario name, or "NAME[field=value,...]"
    scenario: str  #: "base" or the scenario name
    values: tuple[tuple[str, Any], ...]  #: the sweep's (dotted path, value) pairs of this point
    plan: Optional[Plan]
    error: Optional[str] = None  #: why the layout is infeasible (plan is None)
    message: Optional[str] = None  #: the same with file, line and scenario (for strict loading)
    partial: dict = field(default_factory=dict)

    def require(self) -> Plan:
        """The plan, or the point's error as a SpecError."""
        if self.plan is None:
            raise SpecError(self.message or self.error or f"{self.name}: no plan")
        return self.plan


@dataclass(frozen=True)
class PlanFile:
    """Every plan of a plan file, in order: scenarios in file order, sweep points in grid order (first path
    outermost, zip innermost)."""

    path: Optional[Path]
    title: str  #: the file's ``name`` (or its file name)
    description: str
    points: tuple[PlanPoint, ...]
    sweep_paths: tuple[str, ...]  #: every dotted path any sweep varies

    @property
    def plans(self) -> list[Plan]:
        """The validated plans; raises the first infeasible layout as a SpecError."""
        return [p.require() for p in self.points]


def _split_key(key: Any) -> tuple:
    return tuple(key.split(".")) if isinstance(key, str) and "." in key else (key,)


def _flatten(value: Any, keys: tuple, orig: tuple, out: list) -> None:
    """Leaf assignments (keys, value, orig key path) of an override mapping. A model/hardware mapping with
    ``extends``/``hf_config`` is one leaf (it replaces); other mappings are merged leaf by leaf."""
    replaces = (len(keys) == 1 and keys[0] in ("model", "hardware") and isinstance(value, dict)
                and ("extends" in value or "hf_config" in value))
    if isinstance(value, dict) and value and not replaces:
        for k, v in value.items():
            _flatten(v, keys + _split_key(k), orig + (k,), out)
    elif isinstance(value, dict) and not value:
        return
    else:
        out.append((keys, value, orig))


def _apply(data: dict, lines: dict, keys: tuple, value: Any, line: Optional[int], src_lines: dict,
           orig: tuple) -> None:
    """Set ``keys`` to ``value`` in ``data`` (a model/hardware name on the way becomes ``{extends: NAME}``) and
    point the lines of ``keys`` (and below) at the override."""
    cur = data
    for i, k in enumerate(keys[:-1]):
        nxt = cur.get(k)
        if i == 0 and k in ("model", "hardware") and isinstance(nxt, str):
            nxt = {"extends": nxt}
            cur[k] = nxt
        elif not isinstance(nxt, dict):
            nxt = {}
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = copy.deepcopy(value)
    n = len(keys)
    for k in [k for k in lines if k[:n] == keys]:
        del lines[k]
    if line is not None:
        lines[keys] = line
        if len(keys) > 1:  # a cross-field error of the section points at the override that changed it
            lines[keys[:1]] = line
    if isinstance(value, (dict, list)):  # lines inside a replacing mapping or list
        m = len(orig)
        for k, ln in src_lines.items():
            if k[:m] == orig and len(k) > m:
                lines[keys + k[m:]] = ln


def _drop_pairs(data: dict, lines: dict, assigned: set) -> None:
    for keys in assigned:
        other = PAIRS.get(keys[:2]) if len(keys) == 2 else None
        if other is None or other in assigned:
            continue
        section = data.get(other[0])
        if isinstance(section, dict):
            section.pop(other[1], None)
            lines.pop(other, None)


def _override(data: dict, lines: dict, overrides: list, src_lines: dict) -> None:
    """Apply leaf overrides [(keys, value, orig path)] as one change set."""
    for keys, value, orig in overrides:
        _apply(data, lines, keys, value, src_lines.get(orig), src_lines, orig)
    _drop_pairs(data, lines, {keys for keys, _, _ in overrides})


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_fmt_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_fmt_value(x) for x in v) + "]"
    return str(v)


@dataclass(frozen=True)
class _Sweep:
    grid: tuple[tuple[str, tuple], ...]  #: (path, values)
    zip: tuple[tuple[str, tuple], ...]
    prefix: tuple  #: key path of the sweep mapping in the file (for lines)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.grid) + tuple(p for p, _ in self.zip)

    def points(self) -> list[list[tuple[str, Any, tuple]]]:
        """Each point as [(path, value, orig key path of the value)]."""
        grid_axes = [[(p, v, self.prefix + ("grid", p, i)) for i, v in enumerate(vals)] for p, vals in self.grid]
        n_zip = len(self.zip[0][1]) if self.zip else 1
        zip_rows = [[(p, vals[i], self.prefix + ("zip", p, i)) for p, vals in self.zip] for i in range(n_zip)]
        out = []
        for combo in itertools.product(*grid_axes):
            for zrow in zip_rows:
                out.append(list(combo) + zrow)
        return out


def _parse_sweep(value: Any, prefix: tuple, path: Optional[Path], lines: dict) -> Optional[_Sweep]:
    def err(loc: tuple, msg: str) -> SpecError:
        return SpecError(_where(path, lines, loc) + msg)

    where = ".".join(str(p) for p in prefix)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise err(prefix, f"{where}: expected a mapping with grid and/or zip (got {_fmt_value(value)})")
    bad = [k for k in value if k not in SWEEP_KINDS]
    if bad:
        raise err(prefix + (bad[0],), f"{where}.{bad[0]}: unknown sweep kind (expected grid and/or zip, each "
                  "mapping dotted field paths to lists of values)")
    parts: dict[str, list] = {"grid": [], "zip": []}
    for kind in SWEEP_KINDS:
        spec = value.get(kind)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise err(prefix + (kind,), f"{where}.{kind}: expected a mapping of field paths to lists of values")
        for p, vals in spec.items():
            loc = prefix + (kind, p)
            name = f"{where}.{kind}.{p}"
            head = str(p).split(".")[0]
            if head not in SPEC_SECTIONS:
                raise err(loc, f"{name}: a sweep path starts with one of {', '.join(SPEC_SECTIONS)} (e.g. "
                          "layout.gpus)")
            if not isinstance(vals, list) or not vals:
                raise err(loc, f"{name}: expected a non-empty list of values (got {_fmt_value(vals)})")
            seen = []
            for i, v in enumerate(vals):
                if v in seen:
                    raise SpecError(_where(path, lines, loc + (i,)) + f"{name}: value {_fmt_value(v)} appears twice")
                seen.append(v)
            parts[kind].append((str(p), tuple(vals)))
    if not parts["grid"] and not parts["zip"]:
        raise err(prefix, f"{where}: empty sweep (give grid and/or zip)")
    every = [p for p, _ in parts["grid"] + parts["zip"]]
    dup = [p for p in every if every.count(p) > 1]
    if dup:
        raise err(prefix + ("zip", dup[0]), f"{where}: {dup[0]} is both in grid and in zip")
    if parts["zip"]:
        lengths = {p: len(v) for p, v in parts["zip"]}
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{p}({n})" for p, n in lengths.items())
            raise err(prefix + ("zip",), f"{where}.zip: lists must have the same length (got {desc})")
    return _Sweep(grid=tuple(parts["grid"]), zip=tuple(parts["zip"]), prefix=prefix)


def _labels(paths: tuple[str, ...]) -> dict[str, str]:
    """Short names of swept paths for point names: the last component (the one before a Sourced ``value``)
    unless two paths share it."""
    def short(p: str) -> str:
        parts = p.split(".")
        return parts[-2] if parts[-1] == "value" and len(parts) > 2 else parts[-1]

    last = [short(p) for p in paths]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(paths, last)}


def _file_base(data, lines: dict, path: Optional[Path], overrides: Optional[dict]) -> tuple[dict, dict]:
    """(base spec sections, their source lines) of a plan-file mapping, ``overrides`` applied; checks the keys."""
    if not isinstance(data, dict):
        raise SpecError(f"{path or 'plan'}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = [k for k in data if k not in FILE_KEYS]
    if unknown:
        raise SpecError(_where(path, lines, (unknown[0],)) + f"{unknown[0]}: unknown plan key (expected one of "
                        f"{', '.join(FILE_KEYS)})")
    base = {k: copy.deepcopy(v) for k, v in data.items() if k in PLAN_KEYS}
    base_lines = {k: v for k, v in lines.items() if k and k[0] in PLAN_KEYS}
    if overrides:
        flat = [(tuple(k.split(".")), v, ("<override>", k)) for k, v in overrides.items()]
        _override(base, base_lines, flat, {})
    return base, base_lines


def _scenario_entry(sname, body, top_sweep: Optional[_Sweep], path: Optional[Path], lines: dict
                    ) -> tuple[str, list, Optional[_Sweep]]:
    """(name, override leaves, sweep) of one scenario; its own sweep replaces the top-level one."""
    pre = ("scenarios", sname)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise SpecError(_where(path, lines, pre) + f"scenarios.{sname}: expected a mapping of overrides "
                        f"(got {_fmt_value(body)})")
    sweep = top_sweep
    leaves: list = []
    for k, v in body.items():
        keys = _split_key(k)
        if keys[0] not in SCENARIO_KEYS or (len(keys) > 1 and keys[0] not in SPEC_SECTIONS):
            raise SpecError(_where(path, lines, pre + (k,)) + f"scenarios.{sname}.{k}: unknown key (expected "
                            f"{', '.join(SPEC_SECTIONS)}, a dotted field path such as layout.gpus, sweep or "
                            "description)")
        if k == "sweep":
            sweep = _parse_sweep(v, pre + ("sweep",), path, lines)
        elif k == "description":
            continue
        else:
            _flatten(v, keys, pre + (k,), leaves)
    return str(sname), leaves, sweep


def _scenario_entries(data: dict, top_sweep: Optional[_Sweep], path: Optional[Path], lines: dict
                      ) -> list[tuple[str, list, Optional[_Sweep]]]:
    """(name, override leaves, sweep) per scenario; the base alone when the file has no scenarios."""
    scenarios = data.get("scenarios")
    if scenarios is None:
        if "scenarios" in data:
            raise SpecError(_where(path, lines, ("scenarios",)) + "scenarios: empty (give named overrides, or "
                            "remove the key)")
        return [(BASE_NAME, [], top_sweep)]
    if not isinstance(scenarios, dict) or not scenarios:
        raise SpecError(_where(path, lines, ("scenarios",)) + "scenarios: expected a mapping of names to "
                        f"overrides (got {_fmt_value(scenarios)})")
    return [_scenario_entry(sname, body, top_sweep, path, lines) for sname, body in scenarios.items()]


def _sweep_paths(entries: list[tuple[str, list, Optional[_Sweep]]]) -> list[str]:
    """Every swept path of the entries, first appearance first."""
    all_paths: list[str] = []
    for _, _, sw in entries:
        for p in (sw.paths if sw else ()):
            if p not in all_paths:
                all_paths.append(p)
    return all_paths


def _plan_point(sname: str, sdata: dict, slines: dict, combo: list, labels: dict, lines: dict,
                path: Optional[Path], names: set, cache: dict, bare: bool) -> PlanPoint:
    """The PlanPoint of one sweep combination of a scenario (``bare``: a file without scenarios)."""
    pdata, plines = copy.deepcopy(sdata), dict(slines)
    leaves_of_point: list = []
    for p, v, orig in combo:  # a mapping value merges, as in scenarios
        _flatten(v, tuple(p.split(".")), orig, leaves_of_point)
    _override(pdata, plines, leaves_of_point, lines)
    pname = sname
    if combo:
        pname += "[" + ",".join(f"{labels[p]}={_fmt_value(v)}" for p, v, _ in combo) + "]"
    if pname in names:
        raise SpecError(f"{path or 'plan'}: two plans are named {pname!r}")
    names.add(pname)
    pdata["name"] = pname
    pdata.pop("description", None)
    context = "" if (sname == BASE_NAME and not combo and bare) else f" (scenario {pname})"
    values = tuple((p, v) for p, v, _ in combo)
    try:
        plan = parse_plan(pdata, path, plines, cache=cache)
    except InfeasibleLayout as exc:
        return PlanPoint(name=pname, scenario=sname, values=values, plan=None, error=exc.reason,
                         message=str(exc) + context, partial=exc.partial)
    except SpecError as exc:
        raise SpecError(str(exc) + context) from None
    return PlanPoint(name=pname, scenario=sname, values=values, plan=plan)


def _plan_points(entries: list[tuple[str, list, Optional[_Sweep]]], base: dict, base_lines: dict, lines: dict,
                 path: Optional[Path], bare: bool) -> list[PlanPoint]:
    """Every plan point: each scenario's overrides on the base, then each of its sweep combinations."""
    points: list[PlanPoint] = []
    names: set = set()
    cache: dict = {}
    for sname, leaves, sweep in entries:
        sdata, slines = copy.deepcopy(base), dict(base_lines)
        _override(sdata, slines, leaves, lines)
        combos = sweep.points() if sweep else [[]]
        labels = _labels(sweep.paths) if sweep else {}
        for combo in combos:
            points.append(_plan_point(sname, sdata, slines, combo, labels, lines, path, names, cache, bare))
    return points


def plan_file_from_data(data: dict, lines: Optional[dict] = None, path: Optional[Path] = None,
                        overrides: Optional[dict] = None) -> PlanFile:
    """Every plan of a plan-file mapping (see the module docstring for the rules). ``overrides`` (dotted path ->
    value) apply to the base before the scenarios."""
    lines = dict(lines or {})
    base, base_lines = _file_base(data, lines, path, overrides)
    title = str(data.get("name") or (Path(path).stem if path else BASE_NAME))
    description = str(data.get("description") or "")
    top_sweep = _parse_sweep(data.get("sweep"), ("sweep",), path, lines) if "sweep" in data else None
    entries = _scenario_entries(data, top_sweep, path, lines)
    all_paths = _sweep_paths(entries)
    points = _plan_points(entries, base, base_lines, lines, path, bare=data.get("scenarios") is None)
    return PlanFile(path=path, title=title, description=description, points=tuple(points),
                    sweep_paths=tuple(all_paths))


def read_plan_file(path, overrides: Optional[dict] = None) -> PlanFile:
    """Every plan of a plan file (scenarios x sweep points), infeasible layouts kept as points without a plan;
    ``search:`` sections unresolved (``planner.plans.load_plan_file`` resolves them)."""
    data, lines = read_plan_data(Path(path))
    return plan_file_from_data(data, lines, Path(path), overrides=overrides)


# ---------------------------------------------------------------------------------------------------------------
# JSON Schema (editor completion and checking of plan files)
# ---------------------------------------------------------------------------------------------------------------

def _patch_refs(obj):
    """A copy of a JSON Schema fragment with ``required`` dropped and every ``$defs`` reference to its Patch."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "required":
                continue
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = v + "Patch"
            else:
                out[k] = _patch_refs(v)
        return out
    if isinstance(obj, list):
        return [_patch_refs(x) for x in obj]
    return obj


def _add_patch_defs(defs: dict) -> None:
    """Add a ``<Spec>Patch`` (every field optional) for each definition; model and hardware patches take extends."""
    for name in list(defs):
        p = _patch_refs(defs[name])
        p["title"] = f"{defs[name].get('title', name)} (patch: every field optional)"
        defs[name + "Patch"] = p
    model_patch = defs["ModelSpecPatch"]
    model_patch["properties"] = {
        "extends": {"type": "string", "description": "Start from this model preset (`planner models`) and override "
                    "the fields given here."},
        "hf_config": {"type": "string", "description": "Start from a local Hugging Face config.json (path relative "
                      "to the plan file) and override the fields given here."},
        **model_patch["properties"],
    }
    hw_patch = defs["HardwareSpecPatch"]
    hw_patch["properties"] = {
        "extends": {"type": "string", "description": "Start from this hardware profile (`planner hardware`) and "
                    "override the fields given here."},
        **hw_patch["properties"],
    }


def _section_props() -> dict:
    """The schema properties of the spec sections (and search) a plan file and a scenario may give."""
    return {
        "model": {"anyOf": [{"type": "string", "description": "A model preset name (`planner models`)."},
                            {"$ref": "#/$defs/ModelSpecPatch"}],
                  "description": "What is trained: a preset name, an inline spec, {extends: NAME, ...} or "
                  "{hf_config: config.json, ...}."},
        "hardware": {"anyOf": [{"type": "string", "description": "A hardware profile name, alias or YAML path "
                                "(`planner hardware`)."},
                               {"$ref": "#/$defs/HardwareSpecPatch"}],
                     "description": "On what it runs: a profile name, an inline profile or {extends: NAME, ...}."},
        "run": {"$ref": "#/$defs/RunSpecPatch", "description": "How it is trained: sequence, batch, tokens, "
                "precision, optimizer."},
        "layout": {"$ref": "#/$defs/LayoutSpecPatch", "description": "How it is split across GPUs."},
        "schedule": {"$ref": "#/$defs/ScheduleSpecPatch", "description": "Whole run: prices, failures, "
                     "checkpoints, energy."},
        "search": {"type": "object", "description": "Search the layout instead of giving it: constraints of "
                   "`planner search` (gpus, max_gpus, tp, max_tp, pp, max_pp, vpp, cp, ep, dp, micro_batch, "
                   "global_batch, recompute, zero, fsdp, sp; a list or value fixes, max_* bounds) and rank "
                   "(step-time, cost, time-to-train). The best layout found replaces `layout`."},
    }


def _add_sweep_defs(defs: dict, section_props: dict) -> None:
    """Add the ``Sweep`` and ``Scenario`` definitions."""
    sections = "|".join(SPEC_SECTIONS)
    axis = {"type": "object", "description": "Dotted field path (e.g. layout.gpus) -> list of values.",
            "propertyNames": {"pattern": f"^({sections})(\\..+)?$"},
            "additionalProperties": {"type": "array", "minItems": 1}}
    defs["Sweep"] = {
        "type": "object", "additionalProperties": False,
        "description": "grid: cartesian product of the lists; zip: the lists side by side (same length). Both: "
        "every grid point with every zip position.",
        "properties": {"grid": axis, "zip": {**axis, "description": "Dotted field path -> list of values; all "
                                             "lists the same length."}},
    }
    defs["Scenario"] = {
        "anyOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False,
            "description": "Overrides of the shared base (deep-merged). Dotted keys (layout.gpus: 128) work too.",
            "properties": {"description": {"type": "string"}, **section_props,
                           "sweep": {"anyOf": [{"$ref": "#/$defs/Sweep"}, {"type": "null"}],
                                     "description": "This scenario's own sweep (replaces the top-level one; "
                                     "null for none)."}},
            "patternProperties": {f"^({sections})\\..+$": {"description": "A dotted field path and its value."}},
        }],
    }


def plan_json_schema() -> dict:
    """A JSON Schema (draft 2020-12) of plan files, generated from the pydantic specs.

    Every spec appears twice: as itself (``ModelSpec``: what a complete inline spec needs) and as a patch
    (``ModelSpecPatch``: the same fields, none required, for ``extends:`` overrides, scenarios and partial bases);
    unknown keys are errors in both (``extra="forbid"``). ``docs/plan.schema.json`` is this function's output
    (``planner schema``); a test keeps the two equal."""
    from pydantic.json_schema import models_json_schema

    specs = (ModelSpec, RunSpec, LayoutSpec, HardwareSpec, ScheduleSpec)
    _, top = models_json_schema([(m, "validation") for m in specs], ref_template="#/$defs/{model}")
    defs = top["$defs"]
    _add_patch_defs(defs)
    section_props = _section_props()
    _add_sweep_defs(defs, section_props)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "planner plan file",
        "description": "A training plan for `planner plan` / `planner estimate`: model, run, layout, hardware and "
        "schedule, with optional named scenarios and sweeps (docs/plans.md).",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "description": "Title of the plan (tables, exports)."},
            "description": {"type": "string", "description": "Free text."},
            **section_props,
            "scenarios": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Scenario"},
                          "description": "Named overrides of the base; each one is a plan (the base alone is not "
                          "evaluated when there are scenarios)."},
            "sweep": {"$ref": "#/$defs/Sweep"},
        },
        "$defs": dict(sorted(defs.items())),
    }


__all__ = [
    "BASE_NAME", "InfeasibleLayout", "Plan", "PlanFile", "PlanPoint", "read_plan", "read_plan_file",
    "plan_file_from_data", "parse_plan", "plan_json_schema", "read_plan_data", "resolve_hardware",
    "resolve_model", "set_path",
]
