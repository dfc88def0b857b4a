"""Leave-one-source-out cross-validation of the time model's calibration (run by hand: ~3 minutes).

For each source of the public measured runs, refit every GPU generation without it (`planner fit-time
--exclude-source SOURCE` does one of these) and predict its runs; print the in-sample and held-out median and
90th-percentile absolute errors of tokens/s per GPU. The calibration generalises to a source it never saw when
the held-out error stays near the in-sample error.

    python benchmarks/cross_validate.py
"""

from __future__ import annotations

import numpy as np

from planner.calibrate.fit import fit_generation, generation_of
from planner.core.efficiency import time_params
from planner.calibrate.measured import load_runs
from planner.registry import load_hardware
from planner.calibrate.validate import modelable, predict


def main() -> None:
    runs, _ = modelable(load_runs()[0])
    print(f"{'source':22s} {'n':>4s} {'in-sample median':>17s} {'held-out median':>16s} {'held-out p90':>13s}")
    for src in sorted({r.source_key for r in runs}):
        held = [r for r in runs if r.source_key == src]
        in_sample = np.median([abs(predict(r).error) for r in held]) * 100
        out = []
        for gen in sorted({generation_of(r) for r in held}):
            if not any(generation_of(r) == gen and r.source_key != src for r in runs):
                continue  # no other source on this generation: nothing to fit from
            params = fit_generation(runs, gen, exclude_sources=(src,)).params
            out += [abs(predict(r, time_params(load_hardware(r.hardware), r.run.precision).replace(**params)).error)
                    * 100 for r in held if generation_of(r) == gen]
        if out:
            print(f"{src:22s} {len(out):4d} {in_sample:16.1f}% {np.median(out):15.1f}% {np.percentile(out, 90):12.1f}%")
        else:
            print(f"{src:22s} {len(held):4d} {in_sample:16.1f}%   (only source on its GPUs: cannot be held out)")


if __name__ == "__main__":
    main()
