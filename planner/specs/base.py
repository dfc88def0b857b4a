"""Shared pydantic base for every spec: frozen, no unknown keys, validated once at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base for all input specs.

    Frozen so a validated spec cannot drift; ``extra="forbid"`` so a typo in a YAML key is an error rather than a
    silently ignored setting.
    """

    # allow_inf_nan=False: no inf or nan reaches the core through any float field (a plan's ``.inf``, a flag's
    # ``inf``); each field's physical range is its own ge/le.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    def replace(self, **changes):
        """A copy with ``changes`` applied and validated again (``model_copy`` skips validation)."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)
