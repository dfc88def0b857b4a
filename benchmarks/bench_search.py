"""How fast the layout search is, and how that grows with the size of the space.

Case: Llama 3.1 405B (preset ``llama-3.1-405b``) on H100 SXM (``h100-sxm``), sequence 8,192, global batch 2,048
sequences (16M tokens, as Llama 3 405B was trained), 15.6T training tokens, every whole node from 8 GPUs up to
16,384 (DESIGN.md; issue 4 targets: >= 1,000,000 candidates/s on one core, the full search in < 5 s).

Measured, on one core (the process is pinned to one CPU where the OS allows it):

1. ``core``: the core's own rate on a *flat* array of N candidates (every field a 1-D array of N; one call of
   ``evaluate`` plus ``valid_mask``), for N = 1 .. 10^6, and one scalar ``estimate`` per layout (what a Python loop
   over candidates would cost). This shows the per-call overhead and how a large array amortises it.
2. ``search``: ``planner.search.search`` end to end (enumerate, evaluate on the broadcast grid, mask, keep reasons)
   plus ranking, the rejected-ahead list and the Pareto front with their full rows, over 8..N GPUs for growing N,
   and with more global batch sizes (a bigger space at the same GPU count). Cold = first search in a fresh
   process (page faults on first use of large arrays); warm = best of the repeats.

Run: ``python benchmarks/bench_search.py`` (full), ``--small`` (the quick case the slow test runs), ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.cli.common import build_plan  # noqa: E402
from planner.core.checks import valid_mask  # noqa: E402
from planner.core.estimate import estimate, evaluate  # noqa: E402
from planner.search import Constraints, search  # noqa: E402

MODEL, GPU, SEQ, BATCH, TOKENS = "llama-3.1-405b", "h100-sxm", 8192, 2048, 15.6e12
TARGET_RATE = 1_000_000  # candidates per second, one core
TARGET_WALL_S = 5.0  # full 405B search over 8..16,384 GPUs


def pin_one_core() -> str:
    """Pin this process to one CPU (Linux); numpy's elementwise kernels are single-threaded anyway."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if hasattr(os, "sched_setaffinity"):
        try:
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})
            return f"pinned to CPU {cpu}"
        except OSError:
            pass
    return "not pinned"


def the_plan(batch: int = BATCH):
    return build_plan(None, dict(model=MODEL, gpu=GPU, seq=SEQ, global_batch=batch, tokens=TOKENS))


def _best(fn, repeats: int) -> tuple[float, float, object]:
    """(first, best) wall time of ``fn()`` over ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times[0], min(times), out


def bench_core(sizes, repeats: int) -> dict:
    """The core's rate on flat arrays of real candidates (drawn from the 405B space), and one scalar estimate."""
    plan = the_plan()
    res = search(plan, Constraints(max_gpus=16384, min_gpus=8))
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        pick = res.grid_index[rng.integers(0, res.n, n)]
        ex = res.space.exec_rows(pick)

        def run():
            valid_mask(plan.model, plan.run, ex)
            return evaluate(plan, ex)

        _, best, _ = _best(run, repeats)
        rows.append({"candidates": n, "seconds": best, "candidates_per_s": n / best})
    one = res.plan_of(res.best())
    _, best_scalar, _ = _best(lambda: estimate(one), max(repeats, 20))
    return {"flat": rows, "scalar_estimate_s": best_scalar, "scalar_estimates_per_s": 1.0 / best_scalar}


def full_search(max_gpus: int, batch=None, repeats: int = 3) -> dict:
    """End to end: search + ranking + rejected-ahead + Pareto, with full rows for what a user is shown."""
    plan = the_plan()
    c = Constraints(max_gpus=max_gpus, min_gpus=8, global_batch=batch)

    def run():
        r = search(plan, c)
        top = r.rows(r.ranked(10))
        rej, _ = r.rejected_better(5)
        r.rows(rej)
        r.rows(r.pareto())
        return r, top

    cold, warm, (r, top) = _best(run, repeats)
    return {
        "max_gpus": max_gpus,
        "global_batches": list(batch) if batch else [BATCH],
        "gpu_counts": len(r.space.gpu_counts),
        "grid_points": r.space.grid_size,
        "candidates": r.n,
        "feasible": int(r.feasible.sum()),
        "enumerate_s": r.timings["enumerate_s"],
        "evaluate_s": r.timings["evaluate_s"],
        "wall_cold_s": cold,
        "wall_warm_s": warm,
        "candidates_per_s_warm": r.n / warm,
        "candidates_per_s_evaluate": r.n / r.timings["evaluate_s"],
        "best": ({k: top[0][k] for k in ("gpus", "tp", "pp", "vpp", "cp", "dp", "micro_batch_seqs", "zero_stage",
                                         "fsdp", "sequence_parallel", "recompute", "step_time_s", "mfu")}
                 if top else None),
    }


def run(small: bool = False, repeats: int = 3) -> dict:
    pinned = pin_one_core()
    out = {"case": f"{MODEL} on {GPU}, seq {SEQ}, global batch {BATCH}", "small": small, "cpu": pinned,
           "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    # the full search first, in a fresh process, so its cold time is what a CLI user sees
    if small:
        out["search"] = [full_search(512, repeats=repeats)]
    else:
        out["search"] = [full_search(16384, repeats=repeats)]
        out["search"] += [full_search(n, repeats=repeats) for n in (64, 512, 4096)]
        out["search"].append(full_search(16384, batch=(512, 1024, 2048, 4096, 8192), repeats=repeats))
    sizes = (1, 1000, 10_000) if small else (1, 1000, 10_000, 100_000, 1_000_000)
    out["core"] = bench_core(sizes, repeats)
    full = [s for s in out["search"] if s["max_gpus"] == 16384 and s["global_batches"] == [BATCH]]
    if full:
        f = full[0]
        out["targets"] = {
            "rate_target": TARGET_RATE, "rate_measured_search": f["candidates_per_s_warm"],
            "rate_measured_flat_1e6": out["core"]["flat"][-1]["candidates_per_s"],
            "wall_target_s": TARGET_WALL_S, "wall_cold_s": f["wall_cold_s"], "wall_warm_s": f["wall_warm_s"],
            "met": f["candidates_per_s_warm"] >= TARGET_RATE and f["wall_cold_s"] < TARGET_WALL_S,
        }
    return out


def print_report(r: dict) -> None:
    print(f"{r['case']} ({r['cpu']}; Python {r['python']}, numpy {r['numpy']}, {r['machine']})")
    print("\nsearch, end to end (enumerate + evaluate + mask + rank + rejected + Pareto + rows):")
    print(f"  {'GPUs':>11} {'batches':>8} {'counts':>6} {'grid':>10} {'candidates':>11} {'feasible':>9} "
          f"{'evaluate':>9} {'cold':>7} {'warm':>7} {'cand/s warm':>12}")
    for s in r["search"]:
        print(f"  {'8..' + format(s['max_gpus'], ','):>11} {len(s['global_batches']):>8} {s['gpu_counts']:>6} "
              f"{s['grid_points']:>10,} {s['candidates']:>11,} {s['feasible']:>9,} {s['evaluate_s']:>8.3f}s "
              f"{s['wall_cold_s']:>6.2f}s {s['wall_warm_s']:>6.2f}s {s['candidates_per_s_warm']:>12,.0f}")
    print("\ncore on flat arrays (valid_mask + evaluate, every field a 1-D array):")
    for c in r["core"]["flat"]:
        print(f"  {c['candidates']:>9,} candidates: {c['seconds'] * 1e3:9.2f} ms  {c['candidates_per_s']:>12,.0f}/s")
    print(f"  one scalar estimate(): {r['core']['scalar_estimate_s'] * 1e3:.2f} ms "
          f"({r['core']['scalar_estimates_per_s']:,.0f}/s: a Python loop over candidates)")
    t = r.get("targets")
    if t:
        print(f"\ntargets: >= {t['rate_target']:,} candidates/s -> {t['rate_measured_search']:,.0f}/s in the search "
              f"({t['rate_measured_flat_1e6']:,.0f}/s on flat arrays); full search < {t['wall_target_s']:.0f} s -> "
              f"{t['wall_cold_s']:.2f} s cold, {t['wall_warm_s']:.2f} s warm: {'met' if t['met'] else 'MISSED'}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the quick case (8..512 GPUs, flat arrays up to 10^4)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    a = ap.parse_args(argv)
    r = run(small=a.small, repeats=a.repeats)
    print_report(r)
    if a.json:
        a.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
