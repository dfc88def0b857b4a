"""Activation memory of one transformer layer, measured: what autograd keeps from the forward for the backward (run
by hand on a GPU machine, under a minute; on a CPU it counts the saved tensors only).

    python benchmarks/activation_memory_bench.py --out act.yaml
    python benchmarks/activation_memory_bench.py --compare act.yaml      # against planner's layer_activation_bytes

The layer is ``benchmarks/layer_bench.py``'s (eager PyTorch, bf16, the presets' dimensions; cuDNN attention), run
forward with gradients on. Two readings per configuration:

* ``allocated_delta_bytes``: ``torch.cuda.memory_allocated()`` after the forward minus before it, less the layer's
  output (which the next layer would own): the bytes the caching allocator holds for the backward;
* ``saved_bytes``: the tensors autograd saved, counted through ``torch.autograd.graph.saved_tensors_hooks``, each
  storage once (views of one storage share it), parameters and the layer input excluded.

The time model's count (``planner.core.memory.layer_activation_bytes``: Korthikanti et al. 2022 §4.1, tensor by
tensor, as fused kernels keep them) is for a layer whose elementwise ops are fused; an eager layer keeps more (its
fp32 RMSNorm and RoPE copies, GQA's repeated K and V), a compiled one about what the count says. What it
leaves out: the input of the layer (kept by the previous layer's count), the allocator's rounding (blocks of 512
bytes and 2 MiB segments: a few per cent at these sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # layer_bench, when this file is imported by path (the tests)

import layer_bench as lb  # noqa: E402  (its layer, its configurations and its plan of a row)

def measure(args) -> int:
    from planner.calibrate.bench import device_provenance, require_torch

    torch = require_torch()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    dev = torch.device("cuda", 0) if cuda else torch.device("cpu")
    dt = torch.bfloat16 if cuda else torch.float32
    rows = []
    for compiled in ((False, True) if args.compile else (False,)):
        for config, preset, seq, mb, note in lb.CONFIGS:
            if compiled and config != lb.COMPILED_CONFIG:
                continue
            sh = lb.shape_of(config, preset, seq, mb, note, tiny=not cuda)
            layer, weights = lb.build_layer(torch, dev, dt, sh, "repeat", rope_impl="real" if compiled else "complex")
            fn = torch.compile(layer) if compiled else layer
            ctx = lb.sdpa_context(torch, "cudnn") if cuda else contextlib.nullcontext
            x = torch.randn(sh.micro_batch, sh.seq, sh.hidden, device=dev, dtype=dt, requires_grad=True)
            params = {w.data_ptr() for w in weights} | {x.data_ptr()}
            if compiled:  # compile outside the measurement
                with ctx():
                    torch.autograd.grad(fn(x), [x] + weights, torch.ones_like(x))
            storages: dict[int, int] = {}

            def pack(t):
                try:
                    st = t.untyped_storage()
                    if st.data_ptr() not in params:
                        storages[st.data_ptr()] = st.nbytes()
                except Exception:
                    pass
                return t

            if cuda:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                before = torch.cuda.memory_allocated()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx():
                out = fn(x)
            if cuda:
                torch.cuda.synchronize()
                delta = torch.cuda.memory_allocated() - before - out.numel() * out.element_size()
            storages.pop(out.untyped_storage().data_ptr(), None)
            row = {"config": config, "preset": preset, "seq": sh.seq, "micro_batch": sh.micro_batch,
                   "hidden": sh.hidden, "heads": sh.heads, "kv_heads": sh.kv_heads, "head_dim": sh.head_dim,
                   "ffn_hidden": sh.ffn_hidden, "compiled": compiled, "dtype": "bf16" if cuda else "fp32",
                   "saved_bytes": int(sum(storages.values())), "saved_tensors": len(storages)}
            if cuda:
                row["allocated_delta_bytes"] = int(delta)
            rows.append(row)
            print(f"{config}{' compiled' if compiled else ''}: saved {row['saved_bytes'] / 2**30:.3f} GiB"
                  + (f", allocated {row['allocated_delta_bytes'] / 2**30:.3f} GiB" if cuda else ""), file=sys.stderr)
            del out, x, layer, weights, fn
            if cuda:
                torch.cuda.empty_cache()
    prov = device_provenance(torch, dev, {"script": "benchmarks/activation_memory_bench.py"})
    prov["tool"] = "benchmarks/activation_memory_bench.py"
    doc = json.loads(json.dumps({"provenance": prov, "measurements": rows}, default=str))
    Path(args.out).write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
    return 0


def predicted_bytes(row: dict, gpu: str = "h200") -> float:
    """planner's activation bytes of the row's layer (``layer_bench.plan_of_row``: one micro-batch, tp 1, fused
    attention, no recomputation)."""
    from planner.core.layout import exec_from_spec
    from planner.core.memory import layer_activation_bytes

    plan = lb.plan_of_row(row, gpu)
    ex = exec_from_spec(plan.layout, plan.run)
    return float(layer_activation_bytes(plan.model, plan.run, ex, decoder_side=True, cross=False, is_moe=False,
                                        s_other=0))


def compare(args) -> int:
    doc = yaml.safe_load(Path(args.compare).read_text())
    print(f"{'config':<28} {'compiled':<8} {'measured GiB':>12} {'saved GiB':>10} {'planner GiB':>11} {'ratio':>6}")
    for r in doc["measurements"]:
        pred = predicted_bytes(r)
        meas = r.get("allocated_delta_bytes", r["saved_bytes"])
        print(f"{r['config']:<28} {str(r['compiled']):<8} {meas / 2**30:12.3f} {r['saved_bytes'] / 2**30:10.3f} "
              f"{pred / 2**30:11.3f} {meas / pred:6.2f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--compare")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="also the Llama 3.1 8B layer under torch.compile")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(args)
    if not args.out:
        ap.error("give --out FILE.yaml (measure) or --compare FILE.yaml")
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
