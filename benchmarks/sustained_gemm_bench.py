"""Burst against sustained GEMM throughput on the local GPU: how much of a short microbenchmark's rate a training
step keeps once the GPU has been busy long enough to reach its power and thermal limits (run by hand on a GPU
machine, about a minute).

    python benchmarks/sustained_gemm_bench.py --out sustained.yaml [--seconds 40] [--model llama-3.1-8b --seq 8192]
    python benchmarks/sustained_gemm_bench.py --workload layer --backend cudnn --out layer.yaml ...

A GEMM microbenchmark (``planner bench``, ``benchmarks/run_shapes_bench.py``, stas00's mamf-finder) times each
shape for a fraction of a second, often right after the GPU was idle, when it runs at its boost clock. A training
step keeps the GPU busy for hours; a 700 W H100/H200 then settles at the clock its power limit allows, and every
GEMM slows by about the ratio of the clocks. This script measures that ratio directly instead of leaving it to a
fitted term: the per-GPU GEMMs of one layer of a model, forward, data-gradient and weight-gradient
(``planner.calibrate.bench.model_gemm_shapes``, the list the time model sums), are run back to back, in a loop, for
``--seconds``; each pass over the list is timed by CUDA events, and every second the SM clock, power draw and
temperature are read (NVML through ``pynvml`` when it is importable, else ``nvidia-smi``). The first pass, after
``--idle-s`` seconds idle, is the burst rate; the median of the passes in the last half of the run is the sustained
rate. Inputs are random bf16 (zeros run faster and draw less power); each shape has its own buffers, so every pass
reads the same bytes a layer would. ``--workload layer`` loops the whole eager layer of ``benchmarks/layer_bench.py``
(forward + backward: GEMMs, attention, norms, RoPE, activations) instead, ``--calls-per-pass`` calls per pass.
Measured on an H200 at 700 W (``hardware_profiles/benches/h200-sustained.yaml``): GEMM-only loops keep 0.85-0.86 of
their burst rate, whole layers 0.89-0.91.

What it leaves out: a real step interleaves attention, elementwise kernels and communication with the GEMMs (each
draws power differently: a GEMM-only loop is close to the worst case for power), and a training cluster's cooling
and power delivery differ from this machine's; the ratio is a property of the GPU's power management under a GEMM
load, read on one machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate.bench import device_provenance, model_gemm_shapes, nvidia_smi, require_torch  # noqa: E402
from planner.registry import load_model  # noqa: E402


def _sensor():
    """A function returning (sm_clock_mhz, power_w, temperature_c, throttle_reasons) now."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)

        def read():
            reasons = None
            try:
                reasons = int(pynvml.nvmlDeviceGetCurrentClocksEventReasons(h))
            except Exception:
                try:
                    reasons = int(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h))
                except Exception:
                    pass
            return (float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)),
                    pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                    float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)), reasons)
        read()
        return read, "pynvml"
    except Exception:
        def read():
            try:
                out = subprocess.run(["nvidia-smi", "--id=0", "--query-gpu=clocks.sm,power.draw,temperature.gpu",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
                c, p, t = (float(x) for x in out.stdout.strip().split(","))
                return c, p, t, None
            except Exception:
                return None, None, None, None
        return read, "nvidia-smi"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--idle-s", type=float, default=5.0, help="idle time before the burst pass")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workload", choices=("gemm", "layer"), default="gemm",
                    help="gemm: the layer's GEMMs back to back; layer: the whole eager layer forward + backward "
                         "(benchmarks/layer_bench.py's layer: GEMMs, attention, norms, RoPE, activations)")
    ap.add_argument("--backend", default="cudnn", help="SDPA backend of --workload layer: cudnn or flash")
    ap.add_argument("--calls-per-pass", type=int, default=4, help="layer calls per timed pass (--workload layer)")
    args = ap.parse_args(argv)

    torch = require_torch()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    dev = torch.device("cuda", 0) if cuda else torch.device("cpu")
    dt = torch.bfloat16 if cuda else torch.float32
    shapes = model_gemm_shapes(load_model(args.model), args.tp, args.seq, args.micro_batch)
    if not cuda:  # a smoke test of the script: tiny stand-ins
        shapes = [(lab, min(m, 128), min(n, 128), min(k, 128)) for lab, m, n, k in shapes]
    if args.workload == "gemm":
        bufs = [(torch.randn(m, k, device=dev, dtype=dt), torch.randn(k, n, device=dev, dtype=dt),
                 torch.empty(m, n, device=dev, dtype=dt)) for _, m, n, k in shapes]
        flop = sum(2.0 * m * n * k for _, m, n, k in shapes)

        def work():
            for a, b, c in bufs:
                torch.mm(a, b, out=c)
    else:  # the eager layer of benchmarks/layer_bench.py, forward + backward
        import layer_bench as lb  # benchmarks/, first on the path when this script runs

        sh = lb.shape_of(args.model, args.model, args.seq, args.micro_batch, "", tiny=not cuda)
        layer, weights = lb.build_layer(torch, dev, dt, sh, "repeat")
        ctx = lb.sdpa_context(torch, args.backend) if cuda else None
        x = torch.randn(sh.micro_batch, sh.seq, sh.hidden, device=dev, dtype=dt, requires_grad=True)
        dout = torch.randn_like(x)
        gf, af = sh.flops("fwd_bwd")
        flop = (gf + af) * args.calls_per_pass
        shapes = [(f"layer {args.backend} fwd_bwd x{args.calls_per_pass}", sh.tokens, sh.hidden, sh.hidden)]

        def work():
            for _ in range(args.calls_per_pass):
                if ctx is None:
                    torch.autograd.grad(layer(x), [x] + weights, dout)
                else:
                    with ctx():
                        torch.autograd.grad(layer(x), [x] + weights, dout)
    read, sensor = _sensor() if cuda else ((lambda: (None, None, None, None)), "none")
    backend = args.backend if args.workload == "layer" else None
    prov = device_provenance(torch, dev, {"workload": args.workload, "model": args.model, "tp": args.tp,
                                          "seq": args.seq, "backend": backend,
                                          "micro_batch": args.micro_batch, "seconds": args.seconds,
                                          "idle_s": args.idle_s, "sensor": sensor})
    prov["tool"] = "benchmarks/sustained_gemm_bench.py"

    def one_pass() -> float:
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            work()
            e.record()
            e.synchronize()
            return s.elapsed_time(e) / 1e3
        t0 = time.perf_counter()
        work()
        return time.perf_counter() - t0

    one_pass()  # kernel selection and handles, not timed
    if cuda:
        torch.cuda.synchronize()
    time.sleep(args.idle_s)
    idle = read()
    burst = [one_pass() for _ in range(3)]  # the first passes after idle: the boost clock
    series, passes = [], []
    start = time.perf_counter()
    next_read = start
    while time.perf_counter() - start < args.seconds:
        t = one_pass()
        now = time.perf_counter() - start
        passes.append((now, t))
        if time.perf_counter() >= next_read:
            c, p, temp, why = read()
            series.append({"t_s": round(now, 2), "pass_flop_per_s": flop / t, "sm_clock_mhz": c, "power_w": p,
                           "temperature_c": temp, "clock_event_reasons": why})
            next_read += 1.0
    late = [t for now, t in passes if now >= args.seconds / 2]
    sustained_t = statistics.median(late)
    burst_t = burst[0]
    prov["clocks_after"] = nvidia_smi(0) if cuda else None
    doc = {
        "provenance": {k: v for k, v in prov.items() if v is not None},
        "workload": args.workload,
        "gemms": [{"label": lab, "m": m, "n": n, "k": k} for lab, m, n, k in shapes],
        "pass_flop": flop,
        "idle_before": {"sm_clock_mhz": idle[0], "power_w": idle[1], "temperature_c": idle[2]},
        "burst": {"first_pass_s": burst_t, "first_pass_flop_per_s": flop / burst_t,
                  "passes_s": burst, "note": "the first three passes after the idle wait"},
        "sustained": {"median_pass_s": sustained_t, "median_flop_per_s": flop / sustained_t,
                      "passes": len(late), "window": f"{args.seconds / 2:g}..{args.seconds:g} s"},
        "sustained_over_burst": burst_t / sustained_t,
        "series": series,
    }
    doc = json.loads(json.dumps(doc, default=str))  # torch's version string is a str subclass yaml cannot write
    Path(args.out).write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
    print(f"{args.workload} {args.model} tp {args.tp} seq {args.seq} mb {args.micro_batch}: {len(shapes)} items, "
          f"{flop / 1e12:.2f} TFLOP per pass; burst {flop / burst_t / 1e12:.1f} TFLOP/s, sustained "
          f"{flop / sustained_t / 1e12:.1f} TFLOP/s ({burst_t / sustained_t:.3f} of burst) over {len(late)} passes; "
          f"last reading {series[-1] if series else None}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
