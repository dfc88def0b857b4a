"""A user's measured (parameters, tokens, loss) points from a CSV file, for fitting a scaling law.

``planner scaling fit POINTS.csv``: a header names the three columns (any of :data:`POINT_COLUMNS`, case-
insensitive), lines starting with '#' are comments; a bad value is a SpecError naming its line.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import SpecError
from .files import read_text


#: Column names accepted for each quantity in a points CSV (case-insensitive).
POINT_COLUMNS = {"params": ("params", "n", "parameters", "n_params"), "tokens": ("tokens", "d", "n_tokens", "data"),
                 "loss": ("loss", "l", "final_loss", "eval_loss")}

#: Largest value of each quantity a fit accepts (far beyond any trained model: 1e15 parameters, 1e17 tokens,
#: a loss of 100 nats), so the fit's powers cannot overflow.
POINT_MAX = {"params": 1e15, "tokens": 1e17, "loss": 100.0}
#: Most points one CSV may hold.
MAX_POINTS = 100_000


def read_points_csv(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params, tokens, loss) from a CSV with a header naming the three columns (see :data:`POINT_COLUMNS`);
    lines starting with '#' are comments. SpecError naming the line of a bad value."""
    path = Path(path)
    text = read_text(path)
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise SpecError(f"{path}: empty")
    if len(lines) > MAX_POINTS + 1:
        raise SpecError(f"{path}: {len(lines) - 1:,} points, more than the {MAX_POINTS:,} a fit takes")
    try:
        rows = list(csv.reader([ln for _, ln in lines]))
    except csv.Error as exc:
        raise SpecError(f"{path}: not a CSV file ({exc})") from None
    header = [h.strip().lower() for h in rows[0]]
    cols = {}
    for key, names in POINT_COLUMNS.items():
        hit = [i for i, h in enumerate(header) if h in names]
        if not hit:
            raise SpecError(f"{path}:{lines[0][0]}: no '{key}' column (accepted: {', '.join(names)}; "
                            f"got {', '.join(header)})")
        cols[key] = hit[0]
    out = {k: [] for k in cols}
    for (lineno, _), row in zip(lines[1:], rows[1:]):
        for key, i in cols.items():
            try:
                v = float(row[i])
            except (IndexError, ValueError):
                raise SpecError(f"{path}:{lineno}: {key} is not a number "
                                f"(got {row[i] if i < len(row) else 'nothing'!r})") from None
            if not math.isfinite(v) or v <= 0:
                raise SpecError(f"{path}:{lineno}: {key} must be positive (got {v})")
            if v > POINT_MAX[key]:
                raise SpecError(f"{path}:{lineno}: {key} {v:g} is above {POINT_MAX[key]:g} (the largest planner "
                                "fits)")
            out[key].append(v)
    return np.array(out["params"]), np.array(out["tokens"]), np.array(out["loss"])
