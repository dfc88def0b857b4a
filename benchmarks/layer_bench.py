"""One transformer decoder layer in plain eager PyTorch, timed on the local GPU, and the time model's prediction of it.

    python benchmarks/layer_bench.py --out layer-h200.yaml [--budget-s 150] [--device auto|cuda|cpu] [--tiny]
                                     [--no-compile] [--compile-backend cudnn|flash] [--gqa repeat|native]
                                     [--backends cudnn,flash]
    python benchmarks/layer_bench.py --compare layer-h200.yaml [--gpu h200]

**Measuring mode.** One pre-norm decoder block as ``planner/core/time.py`` costs it, written the way torchtitan's
Llama and HF's models run it without ``torch.compile``: norm -> one fused QKV projection (GQA: q heads, kv heads,
head_dim) -> rotary embedding on Q and K through ``view_as_complex`` in fp32 (Llama presets; none for MPT, whose
ALiBi is left out) -> GQA by ``repeat_kv`` (K and V materialised for every query head, as eager torchtitan does;
``--gqa native`` passes ``enable_gqa=True`` instead) -> ``scaled_dot_product_attention(is_causal=True)`` -> output
projection -> residual add -> norm -> MLP (SwiGLU: one fused gate+up projection, ``silu(gate) * up``, down; or a GELU
MLP) -> residual add. RMSNorm eager (fp32 upcast, ``rsqrt(mean(x^2) + eps)``, downcast, times the weight, as
torchtitan/HF), LayerNorm through ``F.layer_norm``. No biases (the presets measured have none). Weights bf16 with
``requires_grad`` (plain bf16 training, no autocast); fp32 on CPU.

Configurations (dimensions from ``planner.registry.load_model``): Llama 3.1 8B at seq 8192 x micro-batch 1,
Llama 2 7B at 4096 x 1, Llama 3 70B (one full-width layer, tp 1) at 8192 x 1, MPT-7B (LayerNorm without bias, GELU
4h MLP, MHA; the GPT-style layer) at 2048 x 6. Each with SDPA pinned to cuDNN and to FlashAttention-2
(``sdpa_kernel``); a backend that refuses the layer is recorded under ``skipped`` with its error's first line and
tried once more with Q, K and V copied contiguous (``sdpa_inputs`` in the row says which ran).
Directions: ``fwd`` (under ``torch.no_grad``) and ``fwd_bwd`` (forward, then ``torch.autograd.grad(out, [x] +
weights, dout)`` with a random ``dout``: the input gradient and every weight gradient, returned fresh each call, so
no ``.grad`` accumulation kernel runs). Last, unless ``--no-compile``: the Llama 3.1 8B layer under
``torch.compile`` (default mode), fwd_bwd with cuDNN attention (``--compile-backend``; flash on CPU), RoPE in real
arithmetic (inductor generates no code for complex operators and would run torchtitan's complex multiply eagerly),
in a child process killed when the budget runs out (compilation cannot be interrupted otherwise); its compile time
is recorded. On an H200 (hardware_profiles/benches/h200-layers.yaml) the 17 measurements took 37 s, the compile
9.4 s of it.

Timing is ``planner bench``'s (``planner.calibrate.bench.Timer``): CUDA events around groups of calls queued
behind a sleeping kernel (one call per group at these lengths), the median of repeats after warm-up, min and max
kept; a GEMM warm-up first ramps the clocks; nvidia-smi clocks before and after.
``--budget-s`` bounds the whole run from the script's start (torch import included): no measurement starts after it,
a slow one gets fewer repeats, and the output file is rewritten after every configuration, so a run cut short keeps
what it measured. ``--tiny`` shrinks every configuration (hidden 256, 4 heads, 2 KV heads where the preset has GQA,
else 4, head_dim 64, FFN 512, seq 128; micro-batch kept) for smoke tests, same code path.

**FLOPs** per measurement (``gemm_flop``, ``attention_flop``, ``tflop_per_s`` = their sum / median time): GEMMs
2·m·n·k summed over QKV, attention out, FFN up (+gate) and down with m = micro_batch·seq tokens, backward 2x the
forward (input and weight gradients); attention forward 4·b·heads·head_dim·s(s+1)/2 (causal pairs, the blocks a
fused kernel executes), backward 2.5x the forward (``core.flops.FLASH_BWD_OVER_FWD``). Norms, RoPE, activations and
residual adds are memory-bound and not counted.

**Compare mode** (CPU only, no torch): for each measured row, planner's time of that one layer on ``--gpu`` (default
h200), built from the preset with the measured dimensions written over it (so ``--tiny`` files compare too), run
(seq, micro-batch, the row's dtype), layout tp = pp = dp = 1, fused attention with ``attention_kernel`` flash3 for
cuDNN rows and flash2 for FlashAttention rows, ``eager_elementwise`` on for eager rows and off for compiled ones, no
recomputation; ``core.time.layers_s`` divided by the layer count, and its split into GEMMs
(``layer_gemms``/``gemm_pass_s``), attention core (``attention_core_s``) and elementwise traffic (``elementwise_s``).
Error = predicted / measured - 1.

**Left out**: the embedding, the output layer and the loss; the optimizer; dropout (off in these presets);
MPT's ALiBi bias (SDPA's fused kernels take no bias with ``is_causal``; the time model costs none either); any
communication (one GPU). Known differences the comparison shows rather than hides: torchtitan runs separate
wq/wk/wv and w1/w3 GEMMs where this layer fuses them (the time model's shapes); the time model's eager elementwise
count assumes RMSNorm's fp32 chain for every norm, while MPT's ``F.layer_norm`` is one kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from planner.calibrate.bench import attention_flop  # noqa: E402
from planner.core.flops import FLASH_BWD_OVER_FWD  # noqa: E402

FORMAT = "planner-layer-bench/1"
SCRIPT = "benchmarks/layer_bench.py"

#: (config name, model preset, seq, micro-batch, note)
CONFIGS = (
    ("llama-3.1-8b s8192 mb1", "llama-3.1-8b", 8192, 1, ""),
    ("llama-2-7b s4096 mb1", "llama-2-7b", 4096, 1, ""),
    ("llama-3-70b s8192 mb1 tp1", "llama-3-70b", 8192, 1, "one full-width layer (tp=1)"),
    ("mpt-7b s2048 mb6", "mpt-7b", 2048, 6,
     "the GPT-style layer (LayerNorm without bias, GELU 4h MLP, MHA); the preset's ALiBi bias is not applied "
     "(SDPA's fused kernels take no bias with is_causal) and the time model costs none"),
)
#: the configuration the compiled variant runs
COMPILED_CONFIG = "llama-3.1-8b s8192 mb1"
#: --tiny: every configuration shrunk to these (kv heads 2 only where the preset has GQA)
TINY = {"hidden": 256, "heads": 4, "gqa_kv_heads": 2, "head_dim": 64, "ffn_hidden": 512, "seq": 128}
#: SDPA backend label -> time model's attention_kernel (cuDNN fused attention is costed as FlashAttention-3)
BACKEND_KERNEL = {"cudnn": "flash3", "flash": "flash2"}
BACKEND_ENUM = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION"}
#: seconds kept back at the end of the budget for writing the file and the child's teardown
END_MARGIN_S = 3.0


# ---------------------------------------------------------------------------------------------------------------
# Shapes and FLOPs (no torch)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerShape:
    config: str
    preset: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_hidden: int
    glu: bool  #: SwiGLU (gate and up) rather than one activation
    activation: str  #: silu (SwiGLU) or gelu
    norm: str  #: rmsnorm or layernorm
    norm_bias: bool  #: LayerNorm with a bias
    rope: bool
    seq: int
    micro_batch: int
    note: str = ""

    @property
    def tokens(self) -> int:
        return self.micro_batch * self.seq

    def gemms(self) -> list[tuple[str, int, int, int]]:
        """(label, m, n, k) of the forward GEMMs, as ``core.time.layer_gemms`` lists them at tp 1."""
        q_w, kv_w, d, f, m = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.hidden, \
            self.ffn_hidden, self.tokens
        return [("qkv", m, q_w + 2 * kv_w, d), ("attn_out", m, d, q_w),
                ("ffn_up", m, (2 if self.glu else 1) * f, d), ("ffn_down", m, d, f)]

    def gemm_flop_fwd(self) -> float:
        return float(sum(2 * m * n * k for _, m, n, k in self.gemms()))

    def attention_flop_fwd(self) -> float:
        return attention_flop(self.micro_batch, self.heads, self.seq, self.head_dim, True, "fwd")

    def flops(self, direction: str) -> tuple[float, float]:
        """(GEMM, attention) FLOPs of one call in ``direction`` (``planner bench``'s attention count)."""
        g = self.gemm_flop_fwd()
        return (g if direction == "fwd" else 3.0 * g,
                attention_flop(self.micro_batch, self.heads, self.seq, self.head_dim, True, direction))

    def record(self) -> dict:
        out = asdict(self)
        out["gemms_fwd"] = [{"label": lb, "m": m, "n": n, "k": k} for lb, m, n, k in self.gemms()]
        out["gemm_flop_fwd"] = self.gemm_flop_fwd()
        out["attention_flop_fwd"] = self.attention_flop_fwd()
        return out


def shape_of(config: str, preset: str, seq: int, micro_batch: int, note: str, tiny: bool) -> LayerShape:
    """The layer of ``preset`` (checked to be one this script builds), shrunk with ``tiny``."""
    from planner.registry import load_model

    m = load_model(preset)
    problems = [why for bad, why in ((m.arch != "decoder", f"arch {m.arch}"), (m.moe is not None, "MoE"),
                                     (m.mla is not None, "MLA"), (m.parallel_block, "parallel block"),
                                     (m.bias or m.qkv_bias, "linear biases"), (m.qk_norm != "none", "qk_norm"),
                                     (m.norm_placement != "pre", f"norm_placement {m.norm_placement}"),
                                     (m.ffn_kind not in ("swiglu", "gelu"), f"ffn_kind {m.ffn_kind}"),
                                     (m.attention.pattern != "causal", f"attention {m.attention.pattern}"))
                if bad]
    if problems:
        raise SystemExit(f"preset {preset}: this script builds plain pre-norm dense decoders; not "
                         f"{', '.join(problems)}")
    sh = LayerShape(config=config, preset=preset, hidden=m.hidden_size, heads=m.num_heads, kv_heads=m.kv_heads,
                    head_dim=m.head_size, ffn_hidden=m.ffn_hidden, glu=m.ffn_kind == "swiglu",
                    activation="silu" if m.ffn_kind == "swiglu" else "gelu",
                    norm="rmsnorm" if m.norm == "rmsnorm" else "layernorm", norm_bias=m.norm == "layernorm",
                    rope=m.position == "rotary", seq=seq, micro_batch=micro_batch, note=note)
    if tiny:
        t = TINY
        sh = replace(sh, hidden=t["hidden"], heads=t["heads"],
                     kv_heads=t["gqa_kv_heads"] if sh.kv_heads < sh.heads else t["heads"], head_dim=t["head_dim"],
                     ffn_hidden=t["ffn_hidden"], seq=t["seq"],
                     note=(note + "; " if note else "") + "--tiny: shrunk smoke-test shape")
    return sh


# ---------------------------------------------------------------------------------------------------------------
# The layer (torch)
# ---------------------------------------------------------------------------------------------------------------

def build_layer(torch, dev, dtype, sh: LayerShape, gqa: str, rope_impl: str = "complex",
                contiguous_qkv: bool = False):
    """(layer(x) -> y, [weights]) of one decoder block; weights ~N(0, 0.02), norm weights 1. ``rope_impl``:
    complex (torchtitan's view_as_complex, eager) or real (the same rotation of interleaved pairs in real
    arithmetic, which inductor fuses; it generates no code for complex operators and falls back to eager ones).
    ``contiguous_qkv``: copy Q, K, V to contiguous (batch, seq, heads, head_dim) before SDPA (the retry when a
    backend refuses the strided views of the fused QKV output; one extra copy of V, Q and K are already fresh)."""
    F = torch.nn.functional
    d, H, KV, hd, f = sh.hidden, sh.heads, sh.kv_heads, sh.head_dim, sh.ffn_hidden
    q_w, kv_w = H * hd, KV * hd
    b, s = sh.micro_batch, sh.seq

    def weight(*shape):
        return (torch.randn(*shape, device=dev, dtype=dtype) * 0.02).requires_grad_()

    def ones(n):
        return torch.ones(n, device=dev, dtype=dtype, requires_grad=True)

    w = {"norm1": ones(d), "wqkv": weight(q_w + 2 * kv_w, d), "wo": weight(d, q_w), "norm2": ones(d),
         "wup": weight((2 if sh.glu else 1) * f, d), "wdown": weight(d, f)}
    if sh.norm_bias:
        w["norm1_b"] = torch.zeros(d, device=dev, dtype=dtype, requires_grad=True)
        w["norm2_b"] = torch.zeros(d, device=dev, dtype=dtype, requires_grad=True)
    eps = 1e-5

    if sh.norm == "rmsnorm":
        def norm(x, i):  # torchtitan / HF LlamaRMSNorm, eager
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * w[f"norm{i}"]
    else:
        def norm(x, i):
            return F.layer_norm(x, (d,), w[f"norm{i}"], w.get(f"norm{i}_b"), eps)

    # rotary frequencies as torchtitan precomputes them (a buffer, not timed): complex64 (s, hd/2)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, device=dev, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(s, device=dev, dtype=torch.float32), inv)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs).view(1, s, 1, hd // 2)
    cos, sin = freqs.cos().view(1, s, 1, hd // 2), freqs.sin().view(1, s, 1, hd // 2)

    def rope_complex(t):  # torchtitan apply_rotary_emb: fp32 complex multiply, back to the input dtype
        tc = torch.view_as_complex(t.float().reshape(*t.shape[:-1], -1, 2))
        return torch.view_as_real(tc * freqs_cis).flatten(3).type_as(t)

    def rope_real(t):  # the same rotation, real arithmetic
        tf = t.float().unflatten(-1, (-1, 2))
        x0, x1 = tf[..., 0], tf[..., 1]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(3).type_as(t)

    rope = rope_real if rope_impl == "real" else rope_complex

    def repeat_kv(t, n):  # torchtitan repeat_kv: materialises K/V per query head
        return t[:, :, :, None, :].expand(b, s, KV, n, hd).reshape(b, s, KV * n, hd)

    sdpa_kw = {"enable_gqa": True} if (gqa == "native" and KV < H) else {}

    def layer(x):
        h = norm(x, 1)
        q, k, v = F.linear(h, w["wqkv"]).split([q_w, kv_w, kv_w], dim=-1)
        q, k, v = q.view(b, s, H, hd), k.view(b, s, KV, hd), v.view(b, s, KV, hd)
        if sh.rope:
            q, k = rope(q), rope(k)
        if KV < H and gqa == "repeat":
            k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        if contiguous_qkv:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                                           **sdpa_kw)
        x = x + F.linear(o.transpose(1, 2).reshape(b, s, q_w), w["wo"])
        u = F.linear(norm(x, 2), w["wup"])
        if sh.glu:
            gate, up = u.chunk(2, dim=-1)
            a = F.silu(gate) * up
        else:
            a = F.gelu(u)
        return x + F.linear(a, w["wdown"])

    return layer, list(w.values())


def sdpa_context(torch, backend: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    be = getattr(SDPBackend, BACKEND_ENUM[backend])
    return lambda: sdpa_kernel([be])


def first_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"


def measure(torch, dev, dtype, timer, sh: LayerShape, layer, weights, backend: str, direction: str,
            compiled: bool, gqa: str, rope_impl: str = "complex") -> dict:
    """Time one direction of ``layer`` under one SDPA backend; the row."""
    ctx = sdpa_context(torch, backend)
    x = torch.randn(sh.micro_batch, sh.seq, sh.hidden, device=dev, dtype=dtype, requires_grad=True)
    inputs = [x] + list(weights)
    if direction == "fwd":
        def fn():
            with ctx(), torch.no_grad():
                return layer(x)
    else:
        dout = torch.randn(sh.micro_batch, sh.seq, sh.hidden, device=dev, dtype=dtype)

        def fn():
            with ctx():
                out = layer(x)
                return torch.autograd.grad(out, inputs, dout)
    compile_s = None
    if compiled:  # the first call compiles: timed on its own, outside the repeats
        t0 = time.perf_counter()
        fn()
        timer.sync()
        compile_s = time.perf_counter() - t0
    t = timer(fn)
    gf, af = sh.flops(direction)
    row = {"config": sh.config, "preset": sh.preset, "hidden": sh.hidden, "heads": sh.heads,
           "kv_heads": sh.kv_heads, "head_dim": sh.head_dim, "ffn_hidden": sh.ffn_hidden, "glu": sh.glu,
           "norm": sh.norm, "rope": sh.rope, "rope_impl": rope_impl if sh.rope else "none", "seq": sh.seq,
           "micro_batch": sh.micro_batch,
           "dtype": "bf16" if dtype == torch.bfloat16 else "fp32", "backend": backend, "gqa": gqa,
           "compiled": compiled, "direction": direction, **t.record(), "gemm_flop": gf, "attention_flop": af,
           "tflop_per_s": (gf + af) / t.median_s / 1e12}
    if compile_s is not None:
        row["compile_s"] = round(compile_s, 2)
    return row


# ---------------------------------------------------------------------------------------------------------------
# Measuring mode
# ---------------------------------------------------------------------------------------------------------------

def pick_device(torch, want: str):
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: torch {torch.__version__} sees no CUDA device")
    return torch.device("cuda", 0)


def make_timer(torch, dev, deadline: float):
    from planner.calibrate.bench import Timer

    cuda = dev.type == "cuda"
    return Timer(torch, dev, target_s=0.25 if cuda else 0.05, warmup=3, min_repeats=5 if cuda else 3,
                 max_repeats=30 if cuda else 10, deadline=deadline - END_MARGIN_S)


def child_compiled(args) -> int:
    """The compiled variant, in its own process (the parent kills it when the budget runs out); rows as JSON."""
    from planner.calibrate.bench import _gpu_warmup, require_torch

    torch = require_torch()
    dev = pick_device(torch, args.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    deadline = args.child_deadline_epoch - time.time() + time.perf_counter()
    name, preset, seq, mb, note = next(c for c in CONFIGS if c[0] == COMPILED_CONFIG)
    sh = shape_of(name, preset, seq, mb, note, args.tiny)
    out = {"rows": [], "skipped": []}
    if dev.type == "cuda":
        _gpu_warmup(torch, dev, 0.5)
    try:
        layer, weights = build_layer(torch, dev, dtype, sh, args.gqa, rope_impl="real")
        compiled = torch.compile(layer)
        row = measure(torch, dev, dtype, make_timer(torch, dev, deadline), sh, compiled, weights,
                      args.compile_backend, "fwd_bwd", True, args.gqa, rope_impl="real")
        row["sdpa_inputs"] = "views of the QKV output"
        out["rows"].append(row)
    except Exception as exc:
        out["skipped"].append({"what": f"{sh.config} {args.compile_backend} fwd_bwd compiled",
                               "reason": first_line(exc)})
    part = Path(args.child_out + ".part")
    part.write_text(json.dumps(out))
    part.replace(args.child_out)  # whole or absent: the parent may kill this process at any moment
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown (inductor's worker pool shuts down slowly); the parent kills the group


def run_compiled_child(args, deadline: float, skipped: list) -> list[dict]:
    """Run the compiled variant in a child process bounded by the budget; its rows (skipped rows appended)."""
    remaining = deadline - time.perf_counter() - END_MARGIN_S
    what = f"{COMPILED_CONFIG} {args.compile_backend} fwd_bwd compiled"
    if remaining < 20:
        skipped.append({"what": what, "reason": f"time budget ({args.budget_s:g} s): {remaining:.0f} s left"})
        return []
    with tempfile.TemporaryDirectory(prefix="layer-bench-") as tmp:
        return _run_child(args, remaining, what, Path(tmp) / "compiled.json", skipped)


def _run_child(args, remaining: float, what: str, child_out: Path, skipped: list) -> list[dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child-out", str(child_out), "--_child-deadline",
           repr(time.time() + remaining), "--device", args.device, "--gqa", args.gqa,
           "--compile-backend", args.compile_backend] + \
        (["--tiny"] if args.tiny else [])
    proc = subprocess.Popen(cmd, start_new_session=True)  # own process group: inductor's workers die with it
    timed_out = False
    try:
        proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:  # the child if still running, and inductor's compile workers it leaves behind
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    if timed_out and not child_out.exists():
        skipped.append({"what": what, "reason": f"time budget ({args.budget_s:g} s): compiling and measuring took "
                        f"more than the {remaining:.0f} s left; killed"})
        return []
    if not child_out.exists():
        skipped.append({"what": what, "reason": f"child process exited {proc.returncode} without results"})
        return []
    got = json.loads(child_out.read_text())
    skipped.extend(got["skipped"])
    return got["rows"]


def measure_main(args) -> int:
    start = time.perf_counter()
    deadline = start + args.budget_s
    from planner.calibrate.bench import _gpu_warmup, device_provenance, nvidia_smi, require_torch

    torch = require_torch()
    dev = pick_device(torch, args.device)
    cuda = dev.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.compile_backend = args.compile_backend or ("cudnn" if cuda else "flash")
    for b in backends:
        if b not in BACKEND_ENUM:
            raise SystemExit(f"--backends: {b!r} is not one of {', '.join(BACKEND_ENUM)}")
    shapes = [shape_of(*c, tiny=args.tiny) for c in CONFIGS]
    settings = {"script": SCRIPT, "budget_s": args.budget_s, "tiny": args.tiny, "dtype": "bf16" if cuda else "fp32",
                "backends": backends, "gqa": args.gqa, "compile": not args.no_compile,
                "compile_backend": args.compile_backend,
                "statistic": "median of repeats after warm-up (planner.calibrate.bench.Timer)",
                "fwd": "torch.no_grad forward",
                "fwd_bwd": "forward + torch.autograd.grad(out, [x] + weights, dout): dX and every weight gradient, "
                           "returned fresh each call (no .grad accumulation)",
                "flops": "GEMM 2mnk (backward 2x forward); attention 4·b·heads·head_dim·s(s+1)/2 forward, backward "
                         f"{FLASH_BWD_OVER_FWD}x forward"}
    prov = device_provenance(torch, dev, settings)
    prov["tool"] = f"{SCRIPT} (planner.calibrate.bench timing)"
    if cuda:
        prov["sdpa_enabled"] = {"flash": torch.backends.cuda.flash_sdp_enabled(),
                                "cudnn": torch.backends.cuda.cudnn_sdp_enabled()}
    rows: list[dict] = []
    skipped: list[dict] = []
    out_path = Path(args.out)

    def write():
        prov["elapsed_s"] = round(time.perf_counter() - start, 2)
        doc = {"layer_bench_format": FORMAT, "provenance": prov, "configs": [s.record() for s in shapes],
               "measurements": rows, "skipped": skipped}
        doc = json.loads(json.dumps(doc, default=str))  # plain types only (torch.__version__ is a str subclass)
        text = ("# planner layer bench: one eager decoder layer timed on one device (benchmarks/layer_bench.py).\n"
                f"# Compare with the time model: python {SCRIPT} --compare THIS.yaml --gpu h200\n")
        text += yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True)
        tmp = out_path.with_suffix(out_path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(out_path)

    if cuda:
        _gpu_warmup(torch, dev, 2.0)
    timer = make_timer(torch, dev, deadline)
    for sh in shapes:
        built = {}  # contiguous_qkv -> (layer, weights)
        for backend in backends:
            for direction in ("fwd_bwd", "fwd"):
                what = f"{sh.config} {backend} {direction}"
                if time.perf_counter() > deadline - END_MARGIN_S:
                    skipped.append({"what": what, "reason": f"time budget ({args.budget_s:g} s) spent"})
                    continue
                # the layer as written first; if the backend refuses it, once more with contiguous Q/K/V
                for contiguous in (False, True):
                    tag = what + (" (contiguous q/k/v)" if contiguous else "")
                    try:
                        if contiguous not in built:
                            built[contiguous] = build_layer(torch, dev, dtype, sh, args.gqa,
                                                            contiguous_qkv=contiguous)
                        layer, weights = built[contiguous]
                        row = measure(torch, dev, dtype, timer, sh, layer, weights, backend, direction, False,
                                      args.gqa)
                        row["sdpa_inputs"] = "contiguous copies" if contiguous else "views of the QKV output"
                        rows.append(row)
                        print(f"{tag}: {1e3 * row['time_s']:.2f} ms, {row['tflop_per_s']:.0f} TFLOP/s "
                              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
                        break
                    except Exception as exc:  # a backend refusing the shape, out of memory: recorded, run goes on
                        skipped.append({"what": tag, "reason": first_line(exc)})
                        print(f"{tag}: skipped ({first_line(exc)})", file=sys.stderr, flush=True)
                        oom = "out of memory" in str(exc).lower()
                        if cuda:
                            try:
                                torch.cuda.synchronize(dev)
                            except Exception:  # noqa: BLE001 - a broken context fails the next measurement
                                pass
                        if oom:
                            break
        layer = weights = built = None  # this configuration's tensors freed before the next
        if cuda:
            torch.cuda.empty_cache()
        write()
    if args.no_compile:
        skipped.append({"what": f"{COMPILED_CONFIG} {args.compile_backend} fwd_bwd compiled",
                        "reason": "--no-compile"})
    else:
        got = run_compiled_child(args, deadline, skipped)
        rows.extend(got)
        for row in got:
            print(f"{row['config']} {row['backend']} {row['direction']} compiled: {1e3 * row['time_s']:.2f} ms, "
                  f"{row['tflop_per_s']:.0f} TFLOP/s, compile {row.get('compile_s')} s", file=sys.stderr)
    if cuda:
        prov["clocks_after"] = nvidia_smi(dev.index or 0)
    write()
    print(f"wrote {out_path}: {len(rows)} measurements, {len(skipped)} skipped, "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Compare mode (no torch)
# ---------------------------------------------------------------------------------------------------------------

def model_of(row: dict):
    """The row's preset with the measured dimensions written over it (validated again)."""
    from planner.registry import load_model
    from planner.specs.model import ModelSpec

    base = load_model(row["preset"])
    data = base.model_dump(exclude_none=True)
    data.update(hidden_size=row["hidden"], num_heads=row["heads"], num_kv_heads=row["kv_heads"],
                head_dim=row["head_dim"], ffn_hidden=row["ffn_hidden"])
    return ModelSpec.model_validate(data)


def plan_of_row(row: dict, gpu: str):
    """The plan of a measured row's layer: its preset with the measured dimensions, the row's sequence,
    micro-batch and dtype, tp = pp = dp = 1, fused attention with the kernel of its backend, eager unless it was
    compiled, no recomputation."""
    from planner.api import make_plan

    return make_plan(model=model_of(row), hardware=gpu,
                     run={"seq_len": row["seq"], "micro_batch": row["micro_batch"], "precision": row["dtype"]},
                     layout={"tp": 1, "pp": 1, "dp": 1, "flash_attention": True,
                             "attention_kernel": BACKEND_KERNEL.get(row.get("backend"), "flash2"),
                             "eager_elementwise": not row["compiled"], "recompute": "none"})


def predict_row(row: dict, gpu: str, half_dim: Optional[float] = None) -> dict:
    """The time model's forward and forward+backward seconds of the row's layer, and their split; ``half_dim``
    replaces the calibration's ``gemm_half_dim`` (e.g. the microbenchmark prior)."""
    from planner.core.efficiency import time_params
    from planner.core.kernels import gemm_pass_s, rates_of
    from planner.core.layout import exec_from_spec
    from planner.core.memory import activation_bytes_per_element
    from planner.core.time import attention_core_s, collective_of, elementwise_s, layer_gemms, layers_s

    plan = plan_of_row(row, gpu)
    kernel = plan.layout.attention_kernel
    m, run = plan.model, plan.run
    ex = exec_from_spec(plan.layout, run)
    eff = time_params(plan.hardware, run.precision)
    if half_dim is not None:
        eff = eff.replace(gemm_half_dim=half_dim)
    r = rates_of(plan.hardware, run, activation_bytes_per_element(run), eff)
    work = layers_s(m, run, ex, r, collective_of(plan.hardware, r.eff))
    L = m.total_layers
    s, b = row["seq"], row["micro_batch"]
    gemms, ffn_width = layer_gemms(m, ex, False, False, s, 0)
    passes = [(cnt, gemm_pass_s(gm, gn, gk, r)) for _, gm, gn, gk, cnt in gemms]
    gemm_f = sum(c * float(f) for c, (f, _) in passes)
    gemm_t = sum(c * float(t) for c, (_, t) in passes)
    att_f, att_t = (float(v) for v in attention_core_s(m, ex, r, False, s, 0))
    el_f, el_t = (float(v) for v in elementwise_s(m, ex, r, False, b * s, ffn_width))
    fwd, total = float(work.fwd_s) / L, float(work.total_s) / L
    if not (math.isclose(fwd, gemm_f + att_f + el_f, rel_tol=1e-6)
            and math.isclose(total, gemm_t + att_t + el_t, rel_tol=1e-6)):
        print(f"warning: {row['config']}: the split does not sum to layers_s "
              f"({gemm_t + att_t + el_t:.6g} vs {total:.6g} s); the time model has a part this script misses",
              file=sys.stderr)
    dims_model = (m.hidden_size, m.num_heads, m.kv_heads, m.head_size, m.ffn_hidden, m.ffn_matrices == 3)
    dims_row = (row["hidden"], row["heads"], row["kv_heads"], row["head_dim"], row["ffn_hidden"], row["glu"])
    both = row["direction"] == "fwd_bwd"
    return {"pred_s": total if both else fwd, "gemm_s": gemm_t if both else gemm_f,
            "attention_s": att_t if both else att_f, "elementwise_s": el_t if both else el_f,
            "kernel": kernel, "eager": not row["compiled"], "dims_match": dims_model == dims_row,
            "dims_model": dims_model, "position": m.position, "norm": m.norm}


def compare_rows(doc: dict, gpu: str, half_dim: Optional[float] = None) -> list[dict]:
    """Each measured row of a layer_bench file with the time model's prediction: measured_s, the prediction's
    fields (:func:`predict_row`) and error = predicted / measured - 1."""
    out = []
    for row in doc.get("measurements", []):
        p = predict_row(row, gpu, half_dim)
        out.append({**row, **p, "measured_s": row["time_s"], "error": p["pred_s"] / row["time_s"] - 1.0})
    return out


def compare_main(args) -> int:
    doc = yaml.safe_load(Path(args.compare).read_text())
    if doc.get("layer_bench_format") != FORMAT:
        raise SystemExit(f"{args.compare}: layer_bench_format {doc.get('layer_bench_format')!r} is not {FORMAT!r}")
    prov = doc.get("provenance", {})
    print(f"{args.compare}: {prov.get('device_name')} ({prov.get('device_type')}), torch {prov.get('torch')}, "
          f"{prov.get('date')}; predicted on {args.gpu}"
          + (f" with gemm_half_dim {args.gemm_half_dim:g}" if args.gemm_half_dim is not None else ""))
    print("layer time per call, ms; error = predicted / measured - 1; predicted split: GEMM / attention core / "
          "elementwise (eager rows costed with eager_elementwise, compiled rows fused)")
    head = (f"{'config':<26} {'backend':<6} {'comp':<4} {'dir':<7} {'meas':>9} {'pred':>9} {'error':>7}  "
            f"{'gemm':>8} {'attn':>8} {'elem':>8}  {'kernel':<6} {'TF/s':>5}")
    print(head)
    print("-" * len(head))
    mismatched = []
    rows = compare_rows(doc, args.gpu, args.gemm_half_dim)
    for p in rows:
        meas = 1e3 * p["measured_s"]
        pred = 1e3 * p["pred_s"]
        print(f"{p['config'][:26]:<26} {p['backend']:<6} {'yes' if p['compiled'] else 'no':<4} "
              f"{p['direction']:<7} {meas:9.3f} {pred:9.3f} {p['error']:+7.1%}  {1e3 * p['gemm_s']:8.3f} "
              f"{1e3 * p['attention_s']:8.3f} {1e3 * p['elementwise_s']:8.3f}  {p['kernel']:<6} "
              f"{p['tflop_per_s']:5.3g}")
        if not p["dims_match"]:
            mismatched.append((p["config"], p["dims_model"]))
    errs = [abs(p["error"]) for p in rows]
    if errs:
        print(f"median |error| {100 * statistics.median(errs):.1f}%, worst {100 * max(errs):.1f}% over {len(errs)}")
    print()
    for c in doc.get("configs", []):
        print(f"{c['config']}: d {c['hidden']}, heads {c['heads']}, kv {c['kv_heads']}, head_dim {c['head_dim']}, "
              f"ffn {c['ffn_hidden']} ({'SwiGLU' if c['glu'] else 'GELU'}), {c['norm']}, "
              f"{'RoPE' if c['rope'] else 'no RoPE'}, seq {c['seq']} x mb {c['micro_batch']}; "
              f"forward GEMM {c['gemm_flop_fwd'] / 1e12:.4g} TFLOP, attention {c['attention_flop_fwd'] / 1e12:.4g} "
              f"TFLOP" + (f" ({c['note']})" if c.get("note") else ""))
    for sk in doc.get("skipped", []):
        print(f"skipped: {sk['what']}: {sk['reason']}")
    for config, dims in mismatched:
        print(f"warning: {config}: the time model's layer has (d, heads, kv, head_dim, ffn, glu) = {dims}, "
              f"not the measured one", file=sys.stderr)
    return 1 if mismatched else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="measuring mode: the YAML to write")
    ap.add_argument("--compare", help="compare mode: a YAML this script wrote")
    ap.add_argument("--gpu", default="h200", help="compare mode: the hardware profile to predict on")
    ap.add_argument("--gemm-half-dim", type=float, help="compare mode: replace the calibration's gemm_half_dim")
    ap.add_argument("--budget-s", type=float, default=150.0, help="wall-clock bound of the whole run, s")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true", help="shrunk shapes for smoke tests")
    ap.add_argument("--backends", default="cudnn,flash", help="SDPA backends, comma-separated: cudnn, flash")
    ap.add_argument("--gqa", default="repeat", choices=("repeat", "native"),
                    help="repeat: repeat_kv as eager torchtitan; native: SDPA enable_gqa=True")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--compile-backend", choices=tuple(BACKEND_ENUM),
                    help="SDPA backend of the compiled variant (default: cudnn on CUDA, flash on CPU)")
    ap.add_argument("--_child-out", dest="child_out", help=argparse.SUPPRESS)
    ap.add_argument("--_child-deadline", dest="child_deadline_epoch", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_out:
        return child_compiled(args)
    if args.compare:
        return compare_main(args)
    if not args.out:
        ap.error("give --out FILE.yaml (measure) or --compare FILE.yaml")
    return measure_main(args)


if __name__ == "__main__":
    sys.exit(main())
