"""No function of ``planner/`` longer than 80 lines (issue 11): a long function is split into short, named helpers.

Length is what ``ast`` measures: ``end_lineno - lineno + 1`` of the ``def`` (decorators not counted, docstring and
body counted). Nested functions and methods are checked too, each under its qualified name.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "planner"
MAX_LINES = 80

#: "path relative to the repository:qualified name" -> why it may be longer. Keep this list as short as possible.
#: Acceptable reasons: a data table (a function that is mostly one literal), or a split in progress, e.g.
#:     "planner/io/export.py:write_xlsx": "being split in issue 11 work (remove when done)",
#: (write_xlsx and search.enumerate_space were such entries; both splits are committed, so the list is empty.)
ALLOWED: dict[str, str] = {}


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, length in lines) of every function and method under ``tree``, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node.end_lineno - node.lineno + 1
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def _lengths() -> dict[str, int]:
    """"path:qualified name" -> length of every function in ``planner/**/*.py``."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for name, n in _functions(tree):
            out[f"{rel}:{name}"] = n
    return out


def test_no_function_longer_than_80_lines():
    lengths = _lengths()
    long = sorted(f"{key} ({n} lines)" for key, n in lengths.items() if n > MAX_LINES and key not in ALLOWED)
    assert not long, (f"{len(long)} function(s) longer than {MAX_LINES} lines; split each into short, named "
                      "helpers (or, for a data table, add it to ALLOWED with the reason):\n  " + "\n  ".join(long))
    stale = sorted(key for key in ALLOWED if lengths.get(key, 0) <= MAX_LINES)
    if stale:  # not a failure: the allowlist is shortened by whoever finishes the split
        warnings.warn(f"ALLOWED entries no longer needed (remove them): {', '.join(stale)}", stacklevel=1)


def test_the_walk_sees_nested_functions_and_methods():
    src = "def f():\n    def g():\n        pass\n\nclass C:\n    def m(self):\n        return 1\n"
    assert dict(_functions(ast.parse(src))) == {"f": 3, "f.g": 2, "C.m": 2}
