"""Start-up time of the `planner` command, as ratios to `python -c "import numpy"` on the same machine.

    python benchmarks/bench_startup.py [--runs 9]

Measures the wall time of ``planner --help`` and of ``planner estimate`` on a shipped plan file, and of
``python -c "import numpy"`` as the yardstick (a ratio travels between machines; seconds do not). Each command
runs once to warm the bytecode cache (in a private ``PYTHONPYCACHEPREFIX``, as an installed package has its
``.pyc`` files), then ``--runs`` times interleaved; the minimum is reported (the least disturbed by other load).

Targets (issue 13, on a 2-core machine where ``import numpy`` takes about 0.1 s): ``planner --help`` under 0.2 s and
``planner estimate`` under 0.25 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "llama3-8b-64xh100.yaml"


def commands() -> dict[str, list[str]]:
    planner = [sys.executable, "-c", "import sys; from planner.cli import main; sys.argv[0] = 'planner'; main()"]
    return {
        "import numpy": [sys.executable, "-c", "import numpy"],
        "planner --help": planner + ["--help"],
        "planner estimate PLAN": planner + ["estimate", str(PLAN)],
    }


def measure(runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cache = tempfile.mkdtemp(prefix="planner-bench-pyc-")
    env["PYTHONPYCACHEPREFIX"] = cache
    env["COLUMNS"] = "120"
    best: dict[str, float] = {}
    try:
        cmds = commands()
        for argv in cmds.values():  # warm-up: compile to the private cache
            subprocess.run(argv, env=env, cwd=ROOT, capture_output=True)
        for _ in range(runs):
            for name, argv in cmds.items():
                t0 = time.perf_counter()
                subprocess.run(argv, env=env, cwd=ROOT, capture_output=True)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    best = measure(args.runs)
    base = best["import numpy"]
    print(f"{'command':<24} {'best wall s':>11} {'x import numpy':>15}")
    for name, t in best.items():
        print(f"{name:<24} {t:>11.3f} {t / base:>15.2f}")
    targets = {"planner --help": 0.2, "planner estimate PLAN": 0.25}
    for name, limit in targets.items():
        print(f"{name}: {best[name]:.3f} s (target {limit} s: {'met' if best[name] <= limit else 'not met'} here; "
              f"{best[name] / base:.2f}x import numpy)")


if __name__ == "__main__":
    main()
