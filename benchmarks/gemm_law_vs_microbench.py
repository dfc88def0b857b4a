"""The GEMM shape law of the time model against measured GEMM-by-shape tables (run by hand: a second or two).

    python benchmarks/gemm_law_vs_microbench.py

For each GPU generation with a measured table (``planner/calibrate/priors.py``), the law ``MAMF · Π x/(x+h)`` with
the HBM roofline (``core/kernels.py``) is scored at two half dimensions: the generation's committed end-to-end fit
(``hardware_profiles/calibration/``) and the microbenchmark prior (the time-weighted least squares on the GEMMs the
generation's runs execute). Tables: the prior's own (Hopper: the runs' 442 bf16 GEMMs measured on an H200,
``hardware_profiles/benches/h200-run-shapes.yaml``) and the cross-checks (OpenXLA's H100 table, the ``planner
bench`` sweep on the H200), each on its training shapes and on all its shapes. Error = predicted / measured
achieved rate - 1, so -0.5 means the law costs the GEMM at twice its measured time; "time ratio" is the law's total
time over the measured total (> 1: the law is slow). What it shows: how much of the fitted ``gemm_half_dim`` is
GEMM physics and how much is other time the layer model leaves out, which the end-to-end fit folds into it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate.priors import (CHECK_TABLES, GEMM_TABLES, gemm_half_dim_prior,  # noqa: E402
                                      load_gemm_table)
from planner.core.efficiency import time_params  # noqa: E402
from planner.registry import load_hardware  # noqa: E402


def rows() -> list[dict]:
    out = []
    for gen, (profile, rel) in GEMM_TABLES.items():
        prior = gemm_half_dim_prior(gen)
        if prior is None:
            continue
        fitted = time_params(load_hardware(profile), "bf16").gemm_half_dim
        for tprofile, trel in ((profile, rel),) + tuple(CHECK_TABLES.get(gen, ())):
            t = load_gemm_table(tprofile, trel)
            if t is None:
                continue
            masks = (("run shapes", t.training),) if t.run_shapes else (
                ("training shapes", t.training), ("all shapes", np.ones_like(t.training)))
            for label, mask in masks:
                for what, h in (("end-to-end fit", fitted), ("microbenchmark prior", prior.value)):
                    e = t.law_error(h, mask)
                    out.append({"generation": gen, "table": Path(trel).stem, "prior_table": trel == rel,
                                "shapes": f"{label} ({int(mask.sum())})", "h": what, "gemm_half_dim": h,
                                "median_error": float(np.median(e)), "median_abs_error": float(np.median(np.abs(e))),
                                "p90_abs_error": float(np.percentile(np.abs(e), 90)),
                                "time_ratio": t.time_ratio(h, mask)})
    return out


def main() -> None:
    print(f"{'generation':<10} {'table':<24} {'shapes':<22} {'h':<21} {'value':>6} {'median err':>10} "
          f"{'median |err|':>12} {'p90 |err|':>9} {'time ratio':>10}")
    for r in rows():
        print(f"{r['generation']:<10} {r['table']:<24} {r['shapes']:<22} {r['h']:<21} {r['gemm_half_dim']:>6.0f} "
              f"{100 * r['median_error']:>+9.1f}% {100 * r['median_abs_error']:>11.1f}% "
              f"{100 * r['p90_abs_error']:>8.1f}% {r['time_ratio']:>10.3f}")


if __name__ == "__main__":
    main()
