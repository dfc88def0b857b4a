"""YAML with line numbers, so an error can say ``plan.yaml:14 run.seq_len: ...``."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import SpecError
from .files import compose_and_load, read_text


def load_with_lines(path: Path, what: str = "") -> tuple[dict, dict[tuple, int]]:
    """(data, lines): the mapping in ``path`` and the 1-based line of every key path in it. The file comes in
    through :func:`planner.io.files.read_text` and :func:`~planner.io.files.compose_and_load` (size, UTF-8, safe
    YAML with alias and depth limits): any problem is a one-line SpecError naming the path."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    node, data = compose_and_load(read_text(path, what), label)
    if not isinstance(data, dict):
        raise SpecError(f"{label}: expected a mapping at the top level, got {type(data).__name__}")
    lines: dict[tuple, int] = {}

    def walk(n, prefix: tuple):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = prefix + (k.value if isinstance(k, yaml.ScalarNode) else repr(k.value),)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[prefix + (i,)] = v.start_mark.line + 1
                walk(v, prefix + (i,))

    walk(node, ())
    return data, lines


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of the longest prefix of ``loc`` that has one."""
    loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None
