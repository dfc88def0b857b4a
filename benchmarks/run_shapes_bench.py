"""Measure, on the local GPU, the GEMMs and attention calls that the published runs of one GPU generation execute,
and write them as a BENCH file (the schema of ``planner bench``; run by hand on a GPU machine, a few minutes).

    python benchmarks/run_shapes_bench.py --generation hopper --out bench-h200-run-shapes.yaml [--budget-s 200]

What ``planner bench`` sweeps is generic (squares, skinny and narrow shapes, a MAMF grid). This script measures
instead the exact per-GPU GEMMs of every measured run of ``planner/data/measured_runs.yaml`` on that generation's
GPUs (``planner.calibrate.bench.model_gemm_shapes``: each layer's forward, data-gradient and weight-gradient GEMMs
and the output layer, at the run's tensor-parallel degree and its per-GPU tokens, sequence / context-parallel degree
x micro-batch), in bf16 and, for the runs that trained in fp8, also in fp8 (``torch._scaled_mm``, unit per-tensor
scales). Each GEMM's origin names one run that executes it. Then attention (``scaled_dot_product_attention``) per
backend (FlashAttention-2, cuDNN) beyond the 16k tokens ``planner bench`` stops at: 512 to 131,072 tokens, 16 heads
of 128, a causal and a full mask, forward and forward + backward, 16k tokens per call below 16k (the setup of the
FlashAttention papers), one sequence above; and head dim 64 at two lengths.

With these the time model's GEMM law and attention curves can be checked on the shapes that matter rather than on
a generic sweep (``benchmarks/gemm_law_vs_microbench.py`` reads the result once it is committed under
``hardware_profiles/benches/``). Timing is ``planner bench``'s own (CUDA events, median of repeats after warm-up,
clocks ramped by a GEMM warm-up first); the file is rewritten after every 20 measurements so a run cut short keeps
what it measured.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate.bench import (BENCH_FORMAT, Bench, Timer, _gpu_warmup, device_provenance,  # noqa: E402
                                     dump_bench, fp8_supported, measure_attention, measure_gemm, model_gemm_shapes,
                                     nvidia_smi, require_torch, sdpa_backends)
from planner.calibrate.measured import load_runs  # noqa: E402
from planner.registry import load_hardware  # noqa: E402

#: attention lengths beyond planner bench's sweep, and the lengths head dim 64 is measured at
ATTENTION_SEQS = (512, 2048, 8192, 16384, 32768, 65536, 131072)
HEAD_DIM_64_SEQS = (4096, 16384)
ATTENTION_HEADS = 16
ATTENTION_TOKENS = 16384


def run_gemm_shapes(generation: str) -> list[tuple[str, str, int, int, int]]:
    """(dtype, origin, m, n, k) of every distinct per-GPU GEMM of the generation's measured runs, bf16 first."""
    runs, _ = load_runs()
    bf16, fp8 = {}, {}
    for r in runs:
        if load_hardware(r.hardware).generation != generation:
            continue
        tokens_seq = max(1, r.run.seq_len // max(1, r.layout.cp))
        where = (f"run:{r.source_key} {r.model.name} tp={r.layout.tp} seq={r.run.seq_len} cp={r.layout.cp} "
                 f"mb={r.run.micro_batch}")
        for label, m, n, k in model_gemm_shapes(r.model, r.layout.tp, tokens_seq, r.run.micro_batch):
            bf16.setdefault((m, n, k), f"{where} {label}")
            if r.run.precision == "fp8":
                fp8.setdefault((m, n, k), f"{where} {label}")
    out = [("bf16", o, m, n, k) for (m, n, k), o in bf16.items()]
    return out + [("fp8", o, m, n, k) for (m, n, k), o in fp8.items()]


def attention_cases(quick: bool) -> list[tuple[int, int, int, int, bool, str]]:
    """(batch, heads, seq, head_dim, causal, direction)."""
    seqs = (512, 2048) if quick else ATTENTION_SEQS
    out = []
    for s in seqs:
        b = max(1, ATTENTION_TOKENS // s)
        for causal in (True, False):
            for direction in ("fwd_bwd", "fwd"):
                out.append((b, ATTENTION_HEADS, s, 128, causal, direction))
    for s in (() if quick else HEAD_DIM_64_SEQS):
        out.append((max(1, ATTENTION_TOKENS // s), 2 * ATTENTION_HEADS, s, 64, True, "fwd_bwd"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generation", default="hopper")
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop measuring after this many seconds")
    ap.add_argument("--device", default="auto", help="auto, cuda or cpu (cpu: a smoke test of the script only)")
    ap.add_argument("--limit", type=int, default=0, help="measure only the first N GEMMs (smoke tests)")
    ap.add_argument("--no-attention", action="store_true")
    ap.add_argument("--bf16-only", action="store_true", help="leave out the fp8 GEMMs (a repeat of the bf16 table)")
    args = ap.parse_args(argv)

    torch = require_torch()
    start = time.perf_counter()
    deadline = start + args.budget_s
    cuda = torch.cuda.is_available() and args.device != "cpu"
    dev = torch.device("cuda", 0) if cuda else torch.device("cpu")
    shapes = run_gemm_shapes(args.generation)
    if not cuda:  # a smoke test: tiny stand-ins, same code path
        shapes = [(("bf16" if d == "fp8" else d), o, min(m, 256), min(n, 256), min(k, 256)) for d, o, m, n, k in shapes]
    if args.bf16_only:
        shapes = [x for x in shapes if x[0] == "bf16"]
    if args.limit:
        shapes = shapes[:args.limit]
    settings = {"script": "benchmarks/run_shapes_bench.py", "generation": args.generation, "budget_s": args.budget_s,
                "gemms": len(shapes), "statistic": "median of repeats after warm-up (planner.calibrate.bench.Timer)"}
    prov = device_provenance(torch, dev, settings)
    prov["tool"] = "benchmarks/run_shapes_bench.py (planner.calibrate.bench timing)"
    prov["note"] = (f"the per-GPU GEMMs of the {args.generation} runs of planner/data/measured_runs.yaml, and SDPA "
                    f"attention to 131,072 tokens")
    timer = Timer(torch, dev, target_s=0.05 if cuda else 0.01, warmup=5, min_repeats=5, max_repeats=50,
                  deadline=deadline)
    gemm, attention, skipped = [], [], []
    ok8, why8 = fp8_supported(torch, dev)
    out_path = Path(args.out)

    def write():
        prov["elapsed_s"] = round(time.perf_counter() - start, 2)
        doc = Bench.model_validate({"bench_format": BENCH_FORMAT, "provenance": prov, "gemm": gemm,
                                    "attention": attention, "skipped": skipped})
        out_path.write_text(dump_bench(doc))

    if cuda:
        _gpu_warmup(torch, dev, 2.0)
    work = [("gemm", s) for s in shapes]
    if not args.no_attention:
        cases = attention_cases(quick=not cuda)
        for be in sdpa_backends(torch, dev, quick=False):
            work += [("attention", (be,) + c) for c in cases]
    # interleave: long attention calls should not all be cut by the budget, nor the GEMMs
    gem = [w for w in work if w[0] == "gemm"]
    att = [w for w in work if w[0] == "attention"]
    step = max(1, math.ceil(len(gem) / max(1, len(att))))
    order = []
    for i in range(max(len(att), math.ceil(len(gem) / step))):
        order += gem[i * step:(i + 1) * step] + att[i:i + 1]
    for i, (kind, item) in enumerate(order):
        label = (f"gemm {item[0]} {item[2]}x{item[3]}x{item[4]}" if kind == "gemm" else
                 f"sdpa {item[0][0]} b={item[1]} h={item[2]} s={item[3]} d={item[4]} "
                 f"{'causal' if item[5] else 'full'} {item[6]}")
        if time.perf_counter() > deadline:
            skipped.append({"what": label, "reason": f"time budget ({args.budget_s:g} s) spent"})
            continue
        try:
            if kind == "gemm":
                dt, origin, m, n, k = item
                if dt == "fp8" and not ok8:
                    skipped.append({"what": label, "reason": why8})
                    continue
                gemm.append(measure_gemm(torch, dev, timer, dt, m, n, k, origin))
            else:
                be, b, h, s, d, causal, direction = item
                attention.append(measure_attention(torch, dev, timer, "bf16" if cuda else "fp32", b, h, s, d, causal,
                                                   direction, be))
        except Exception as exc:  # out of memory, an unsupported kernel: recorded, the run goes on
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            skipped.append({"what": label, "reason": f"{type(exc).__name__}: {first}"})
            if cuda:
                torch.cuda.empty_cache()
        if i % 20 == 19:
            write()
            print(f"{i + 1}/{len(order)} measured, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if cuda:
        prov["clocks_after"] = nvidia_smi(0)
    write()
    print(f"wrote {out_path}: {len(gemm)} GEMMs, {len(attention)} attention calls, {len(skipped)} skipped, "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
