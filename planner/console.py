"""The two rich consoles of planner: data on stdout, messages and progress on stderr.

The lowest layer, so that anything that reports progress (the benchmark harness, the layout search) can reach
stderr without depending on the rendering layer above it.
"""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    """Data: tables people read (never soft-wrapped, so columns stay aligned)."""
    return Console(soft_wrap=False)


def stderr_console() -> Console:
    """Messages: never hard-wrapped, so an error stays one line in logs and pipes."""
    return Console(stderr=True, soft_wrap=True)
