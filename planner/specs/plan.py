"""A plan: the four specs the core reads (model, run, layout, hardware), the schedule and a name.

The parser (``planner.io.plan``) builds it from files, the API from mappings; the core reads only its specs. A
plan file may ask for its layout to be searched (a ``search:`` section): the parser records the request as
written (:class:`SearchRequest`) and the API layer (``planner.plans``) resolves it, so that reading a file never
runs a search and the core never sees an unresolved plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .hardware import HardwareSpec
from .layout import LayoutSpec
from .model import ModelSpec
from .run import RunSpec
from .schedule import ScheduleSpec


@dataclass(frozen=True)
class SearchRequest:
    """A ``search:`` section as written: constraint name -> value (lists as tuples), and where each came from."""

    constraints: tuple[tuple[str, Any], ...]  #: (name, value) pairs in file order, ``rank`` included
    where: tuple[tuple[str, str], ...] = ()  #: (name, "file:line ") for errors; name "" is the section itself

    def location(self, key: str = "") -> str:
        """The "file:line " prefix of ``key`` (or of the section); "" when the plan came from no file."""
        d = dict(self.where)
        return d.get(key) or d.get("", "")


@dataclass(frozen=True)
class Plan:
    """A validated plan: the four specs the core reads."""

    model: ModelSpec
    run: RunSpec
    layout: LayoutSpec
    hardware: HardwareSpec
    name: str = ""
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    #: a ``search:`` section not yet resolved (``planner.plans.resolve`` replaces the layout and clears it)
    search: Optional[SearchRequest] = None
