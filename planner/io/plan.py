"""Plan files: a model, a run, a layout and hardware, by name or inline.

```yaml
model: llama-3-8b            # a preset name, an inline ModelSpec, or {extends: llama-3-8b, num_layers: 40}
hardware: h100-sxm           # a profile name/alias/path, or an inline HardwareSpec
run: {seq_len: 8192, global_batch_tokens: 4194304, micro_batch: 1, training_tokens: 1.5e13}
layout: {gpus: 64, tp: 2, pp: 1, zero_stage: 1, recompute: selective}
```

Errors name the file, the line and the field: ``plan.yaml:14 run.seq_len: Input should be greater than 0 (got
-8192)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from ..errors import SpecError, format_validation_error
from ..registry import preset_data, profile_data, with_calibration
from ..specs.hardware import HardwareSpec
from ..specs.layout import LayoutSpec
from ..specs.model import ModelSpec
from ..specs.run import RunSpec
from ..specs.schedule import ScheduleSpec
from .yamlsrc import line_of, load_with_lines

PLAN_KEYS = ("name", "model", "run", "layout", "hardware", "schedule")


@dataclass(frozen=True)
class Plan:
    """A validated plan: the four specs the core reads."""

    model: ModelSpec
    run: RunSpec
    layout: LayoutSpec
    hardware: HardwareSpec
    name: str = ""
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)


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


def resolve_model(value: Any) -> dict:
    """The raw model mapping: a preset name, an inline mapping, or ``{extends: NAME, ...overrides}``."""
    if isinstance(value, str):
        return preset_data(value)
    if isinstance(value, dict):
        value = dict(value)
        base = value.pop("extends", None)
        if base is None:
            return value
        merged = copy.deepcopy(preset_data(base))
        merged.pop("published_params", None)  # an edited model no longer has the published count
        _deep_update(merged, value)
        return merged
    raise SpecError(f"model: expected a preset name or a mapping, got {type(value).__name__}")


def resolve_hardware(value: Any) -> dict:
    """The raw hardware mapping: a profile name, or an inline mapping (``extends:`` allowed)."""
    if isinstance(value, str):
        return with_calibration(profile_data(value))
    if isinstance(value, dict):
        value = dict(value)
        base = value.pop("extends", None)
        if base is None:
            return with_calibration(value)
        merged = copy.deepcopy(profile_data(base))
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


def plan_from_dict(data: dict, path: Optional[Path] = None, lines: Optional[dict] = None) -> Plan:
    """Validate a raw plan mapping into a :class:`Plan`."""
    lines = lines or {}
    unknown = [k for k in data if k not in PLAN_KEYS]
    if unknown:
        raise SpecError(
            _where(path, lines, (unknown[0],)) + f"{unknown[0]}: unknown plan key (expected one of {', '.join(PLAN_KEYS)})"
        )
    for key in ("model", "run", "hardware"):
        if key not in data:
            prefix = f"{path}: " if path else ""
            raise SpecError(prefix + f"{key}: missing (a plan needs model, run, layout and hardware)")
    model = _validate(ModelSpec, resolve_model(data["model"]), "model", path, lines)
    hardware = _validate(HardwareSpec, resolve_hardware(data["hardware"]), "hardware", path, lines)
    run = _validate(RunSpec, data.get("run") or {}, "run", path, lines)
    layout = _validate(LayoutSpec, data.get("layout") or {}, "layout", path, lines)
    schedule = _validate(ScheduleSpec, data.get("schedule") or {}, "schedule", path, lines)
    return Plan(model=model, run=run, layout=layout, hardware=hardware, name=str(data.get("name", "")),
                schedule=schedule)


def read_plan_data(path: Path) -> tuple[dict, dict]:
    """(raw mapping, key-path lines) of a plan file."""
    return load_with_lines(Path(path))


def load_plan(path, overrides: Optional[dict] = None) -> Plan:
    """Load and validate a plan file; ``overrides`` maps dotted field paths to values (CLI flags)."""
    data, lines = read_plan_data(Path(path))
    for k, v in (overrides or {}).items():
        set_path(data, k, v)
    return plan_from_dict(data, Path(path), lines)


__all__ = ["Plan", "load_plan", "plan_from_dict", "resolve_model", "resolve_hardware", "set_path"]
