"""Shared pydantic base for every spec: frozen, no unknown keys, validated once at the edge."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, model_validator


def _admits_bool(annotation) -> bool:
    """True when a field's annotation accepts a bool (bool itself, Optional[bool], Any, a union with bool)."""
    if annotation is bool or annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _admits_bool(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_admits_bool(a) for a in typing.get_args(annotation))
    return False


class Spec(BaseModel):
    """Base for all input specs.

    Frozen so a validated spec cannot drift; ``extra="forbid"`` so a typo in a YAML key is an error rather than a
    silently ignored setting.
    """

    # allow_inf_nan=False: no inf or nan reaches the core through any float field (a plan's ``.inf``, a flag's
    # ``inf``); each field's physical range is its own ge/le.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data):
        """``true``/``false`` where a number belongs is an error, not 1 or 0 (pydantic's lax mode would take it)."""
        if isinstance(data, dict):
            for name, f in cls.model_fields.items():
                v = data.get(name, data.get(f.alias) if f.alias else None)
                if isinstance(v, bool) and not _admits_bool(f.annotation):
                    raise ValueError(f"{name}: expected a number or a name, got {str(v).lower()}")
        return data

    def replace(self, **changes):
        """A copy with ``changes`` applied and validated again (``model_copy`` skips validation)."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)
