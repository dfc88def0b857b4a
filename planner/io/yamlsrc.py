"""YAML with line numbers, so an error can say ``plan.yaml:14 run.seq_len: ...``."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import SpecError


def load_with_lines(path: Path) -> tuple[dict, dict[tuple, int]]:
    """(data, lines): the mapping in ``path`` and the 1-based line of every key path in it."""
    text = Path(path).read_text() if Path(path).exists() else None
    if text is None:
        raise SpecError(f"{path}: no such file")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    lines: dict[tuple, int] = {}

    def walk(n, prefix: tuple):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = prefix + (k.value,)
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
