"""The GEMM shape law of the time model against a measured GEMM-by-shape table (run by hand: a second or two).

    python benchmarks/gemm_law_vs_microbench.py

For each GPU generation with a published table (``planner/calibrate/priors.py``: H100, OpenXLA's matmul table in
``hardware_profiles/benches/``), the law ``MAMF · Π x/(x+h)`` with the HBM roofline (``core/kernels.py``) is
scored on the table's shapes at two half dimensions: the generation's committed end-to-end fit
(``hardware_profiles/calibration/``) and the microbenchmark prior (the same least squares on the training-step
shapes alone). Error = predicted / measured achieved rate - 1, so -0.5 means the law costs the GEMM at twice its
measured time. What it shows: how much of the fitted ``gemm_half_dim`` is GEMM physics and how much is other time
the layer model leaves out, which the end-to-end fit folds into it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate.priors import GEMM_TABLES, gemm_half_dim_prior, gemm_table  # noqa: E402
from planner.core.efficiency import time_params  # noqa: E402
from planner.registry import load_hardware  # noqa: E402


def rows() -> list[dict]:
    out = []
    for gen in GEMM_TABLES:
        t = gemm_table(gen)
        if t is None:
            continue
        fitted = time_params(load_hardware(t.profile), "bf16").gemm_half_dim
        prior = gemm_half_dim_prior(gen).value
        for label, mask in (("training shapes", t.training), ("all shapes", np.ones_like(t.training))):
            for what, h in (("end-to-end fit", fitted), ("microbenchmark prior", prior)):
                e = t.law_error(h, mask)
                out.append({"generation": gen, "shapes": f"{label} ({int(mask.sum())})", "h": what,
                            "gemm_half_dim": h, "median_error": float(np.median(e)),
                            "median_abs_error": float(np.median(np.abs(e))),
                            "p90_abs_error": float(np.percentile(np.abs(e), 90))})
    return out


def main() -> None:
    print(f"{'generation':<10} {'shapes':<22} {'h':<21} {'value':>6} {'median err':>10} {'median |err|':>12} "
          f"{'p90 |err|':>9}")
    for r in rows():
        print(f"{r['generation']:<10} {r['shapes']:<22} {r['h']:<21} {r['gemm_half_dim']:>6.0f} "
              f"{100 * r['median_error']:>+9.1f}% {100 * r['median_abs_error']:>11.1f}% "
              f"{100 * r['p90_abs_error']:>8.1f}%")


if __name__ == "__main__":
    main()
