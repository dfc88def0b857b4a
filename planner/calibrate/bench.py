"""`planner bench`: measure on the local accelerator what the time model consumes, and write it as a BENCH YAML.

What is measured (``planner/core/time.py`` reads each through a fitted curve, see :mod:`planner.calibrate.curves`):

* **GEMM throughput** (``torch.mm``; fp8 through ``torch._scaled_mm``) over a sweep of shapes and dtypes: square
  sizes, skinny rows, narrow outputs and short reductions (what ``gemm_half_dim`` needs), a small grid around the
  best shapes that stas00's ``mamf-finder.py`` found on A100/H100 (``planner/data/microbench.yaml``), and, with
  ``--model PRESET --tp N``, the per-GPU forward and backward GEMMs of that model's layers (the shapes
  ``time.py`` sums). FLOPs counted 2·m·n·k.
* **Attention** (``torch.nn.functional.scaled_dot_product_attention``) over sequence lengths, causal and not,
  forward and forward+backward, per kernel backend (FlashAttention-2 and cuDNN on CUDA; the default on CPU).
  FLOPs counted as the time model counts them: forward 4·h·d·pairs per sequence (QK^T and AV), pairs = s², or
  s(s+1)/2 when causal (the kernel skips masked blocks; ``core.flops.attention_pairs``); backward
  ``FLASH_BWD_OVER_FWD`` (2.5) times the forward (Dao 2023 §3.2).
* **Memory bandwidth**: ``copy_`` (bytes moved = 2 x buffer: read + write) and an elementwise ``add``
  (3 x buffer: two reads, one write), buffers far larger than the last-level cache.
* **Collectives** (all_reduce, all_gather, reduce_scatter, all_to_all) by message size through
  ``torch.distributed`` with one process per visible GPU (NCCL), when two or more GPUs are visible; otherwise
  recorded as skipped. Bus bandwidth as nccl-tests defines it (``doc/PERFORMANCE.md``): algbw x 2(n-1)/n for
  all-reduce, x (n-1)/n for the others, with the message size of nccl-tests (all_gather: the gathered output;
  reduce_scatter: the input).

Timing: a warm-up run of large GEMMs first (so clocks ramp up before anything is timed), then per measurement a
few warm-up calls, and a number of timed repeats sized to a target time; each repeat is a group of calls (enough to
last ~200 us) between a pair of CUDA events, queued behind a sleeping kernel so that the host's launch gaps are not
timed (:class:`Timer`; on CPU: one call, a synchronised ``perf_counter``); the reported time is the **median** per
call (min and max are kept). The H200 files of 2026-11-30 (``hardware_profiles/benches/``) were measured before the
grouping, except ``h200-planner-bench-grouped.yaml``: their shapes under ~100 us (none of the run shapes; 2048^3 and
smaller in the sweep) include launch gaps.
stas00's mamf-finder reports the mean of 100 iterations after 50 warm-up; the median is more robust to the odd slow
call. Clocks, power limit and temperature are read from ``nvidia-smi`` before and after, so throttling shows.

``--time-budget-s`` bounds the whole run: measurements are ordered so that the essentials (the best-shape GEMMs
per dtype, the model's shapes, copy bandwidth, one attention size, collectives) run first, taking turns between
kinds, and whatever the budget leaves out is listed under ``skipped`` with the reason. The budget is soft: a
measurement that has started finishes (with fewer repeats, at least 3, when its calls are slow). ``--quick`` uses
a small sweep and short repeats.

PyTorch is imported only when a measurement runs; without it :func:`require_torch` raises a one-line
:class:`~planner.errors.SpecError` telling how to install the extra (``pip install 'planner[bench]'``).
The BENCH schema (:class:`Bench`) is plain pydantic and needs no torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

import yaml
from pydantic import Field, ValidationError

from ..core.flops import FLASH_BWD_OVER_FWD
from ..errors import SpecError, format_validation_error
from ..specs.base import Spec

BENCH_FORMAT = "planner-bench/1"
INSTALL_HINT = "planner bench needs PyTorch, which is not installed: pip install 'planner[bench]'"
#: bytes per element of each dtype a GEMM can be measured in
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
COLLECTIVE_OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


# ---------------------------------------------------------------------------------------------------------------
# The BENCH schema (no torch needed): what `planner bench` writes and `planner calibrate` reads
# ---------------------------------------------------------------------------------------------------------------

class GemmResult(Spec):
    """One GEMM (m x k) @ (k x n) -> (m x n): m rows, n output columns, k the reduction."""

    dtype: str = Field(..., description="Input dtype: fp32, tf32, bf16, fp16, fp8.")
    m: Optional[int] = Field(None, description="Rows of the output, count (None: not given by a published source).")
    n: Optional[int] = Field(None, description="Columns of the output, count.")
    k: Optional[int] = Field(None, description="Reduction dimension, count.")
    flop_per_s: float = Field(..., gt=0, description="Achieved 2·m·n·k / median time, FLOP/s.")
    time_s: Optional[float] = Field(None, description="Median time of one GEMM, s.")
    time_min_s: Optional[float] = Field(None, description="Fastest repeat, s.")
    time_max_s: Optional[float] = Field(None, description="Slowest repeat, s.")
    repeats: Optional[int] = Field(None, description="Timed repeats, count.")
    origin: str = Field("sweep", description="Why this shape: sweep, mamf-grid, model:<preset> <gemm>, published.")
    source: Optional[str] = Field(None, description="Citation, for published measurements.")
    note: Optional[str] = Field(None, description="Anything the number assumes.")


class AttentionResult(Spec):
    """One scaled-dot-product attention call on (batch, heads, seq, head_dim) tensors."""

    dtype: str = Field(..., description="Dtype of Q, K, V.")
    batch: int = Field(..., description="Sequences, count.")
    heads: int = Field(..., description="Heads, count (K and V have as many).")
    seq: int = Field(..., description="Sequence length, tokens.")
    head_dim: int = Field(..., description="Features per head.")
    causal: bool = Field(..., description="Causal mask (flag).")
    direction: Literal["fwd", "fwd_bwd"] = Field(..., description="Forward only, or forward + backward.")
    backend: str = Field(..., description="SDPA backend: flash, cudnn, efficient, math or default.")
    flop: float = Field(..., description="FLOPs counted as the time model does (see module docstring), FLOP.")
    flop_per_s: float = Field(..., gt=0, description="flop / median time, FLOP/s.")
    time_s: Optional[float] = Field(None, description="Median time of one call, s.")
    time_min_s: Optional[float] = None
    time_max_s: Optional[float] = None
    repeats: Optional[int] = None


class MemoryResult(Spec):
    """A streaming kernel over buffers of ``bytes`` each."""

    op: Literal["copy", "add"] = Field(..., description="copy: dst = src; add: c = a + b.")
    bytes: int = Field(..., description="Size of one buffer, bytes.")
    bytes_moved: int = Field(..., description="Bytes read + written by one call, bytes.")
    bytes_per_s: float = Field(..., gt=0, description="bytes_moved / median time, bytes/s.")
    time_s: Optional[float] = None
    time_min_s: Optional[float] = None
    time_max_s: Optional[float] = None
    repeats: Optional[int] = None
    source: Optional[str] = None


class CollectiveResult(Spec):
    """One collective at one message size (nccl-tests conventions)."""

    op: str = Field(..., description="all_reduce, all_gather, reduce_scatter or all_to_all.")
    world_size: int = Field(..., description="Ranks (GPUs) in the group, count.")
    bytes: Optional[int] = Field(None, description="Message size as nccl-tests counts it, bytes.")
    busbw_bytes_per_s: float = Field(..., gt=0, description="Bus bandwidth, bytes/s.")
    algbw_bytes_per_s: Optional[float] = Field(None, description="bytes / time, bytes/s.")
    time_s: Optional[float] = None
    scope: Literal["intra_node", "inter_node"] = Field("intra_node", description="Inside one node or across nodes.")
    algo: Optional[str] = Field(None, description="ring, tree, nvls, ... when known (None: NCCL's choice, unknown).")
    backend: Optional[str] = Field(None, description="torch.distributed backend: nccl, gloo.")
    source: Optional[str] = None
    note: Optional[str] = None


class OtherResult(Spec):
    """A measured number the time model does not read (kept for the record)."""

    name: str
    value: float
    unit: str
    source: Optional[str] = None
    note: Optional[str] = None


class Skipped(Spec):
    what: str = Field(..., description="The measurement or section left out.")
    reason: str = Field(..., description="Why.")


class Provenance(Spec):
    """Where and how the numbers were measured (or which publication they come from)."""

    tool: str = Field(..., description="What produced the file.")
    date: str = Field(..., description="ISO date and time of the run (or of the conversion).")
    host: Optional[str] = None
    device_type: str = Field(..., description="cuda, cpu, or published.")
    device_name: str = Field(..., description="Accelerator name as the driver reports it.")
    device_count: int = Field(1, description="Accelerators visible, count.")
    driver: Optional[str] = None
    cuda: Optional[str] = None
    cudnn: Optional[str] = None
    nccl: Optional[str] = None
    torch: Optional[str] = None
    python: Optional[str] = None
    platform: Optional[str] = None
    capability: Optional[str] = None
    memory_bytes: Optional[float] = None
    clocks_before: Optional[dict] = Field(None, description="nvidia-smi clocks, power, temperature before the run.")
    clocks_after: Optional[dict] = Field(None, description="The same after the run (throttling shows here).")
    settings: dict = Field(default_factory=dict, description="Options of the run (quick, budget, repeats...).")
    environment: dict = Field(default_factory=dict, description="Relevant environment variables (NCCL_*, ...).")
    source: Optional[str] = Field(None, description="Citation, for published measurements.")
    note: Optional[str] = None
    elapsed_s: Optional[float] = Field(None, description="Wall time of the whole run, s.")


class Bench(Spec):
    """A BENCH file: provenance and raw measurements. ``planner calibrate`` fits the time model's curves on it."""

    bench_format: str = Field(BENCH_FORMAT, description="Schema version.")
    provenance: Provenance
    gemm: list[GemmResult] = Field(default_factory=list)
    attention: list[AttentionResult] = Field(default_factory=list)
    memory: list[MemoryResult] = Field(default_factory=list)
    collectives: list[CollectiveResult] = Field(default_factory=list)
    other: list[OtherResult] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)


def load_bench(path) -> Bench:
    """A BENCH file, validated; SpecError naming the file and the field otherwise."""
    from ..registry import read_yaml

    data = read_yaml(Path(path))
    if data.get("bench_format") not in (None, BENCH_FORMAT):
        raise SpecError(f"{path}: bench_format {data.get('bench_format')!r} is not {BENCH_FORMAT!r}")
    try:
        return Bench.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, prefix=str(path))) from None


def dump_bench(bench: Bench) -> str:
    head = ("# planner BENCH file: raw microbenchmark measurements with their provenance.\n"
            "# Fit the time model's curves from it: planner calibrate THIS.yaml --into PROFILE\n")
    return head + yaml.safe_dump(bench.model_dump(exclude_none=True), sort_keys=False, width=120, allow_unicode=True)


# ---------------------------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------------------------

def model_gemm_shapes(model, tp: int = 1, seq: int = 2048, micro_batch: int = 1,
                      backward: bool = True) -> list[tuple[str, int, int, int]]:
    """(label, m, n, k) of the per-GPU GEMMs of one layer and the output layer: the time model's own list
    (``core.time.layer_gemms`` and ``output_gemm``: QKV, attention out, FFN up(+gate) and down or one expert's, rows
    = tokens·top_k/experts, the router and shared experts, logits); with ``backward`` also dX = dY·W^T (m, k, n) and
    dW = X^T·dY (k, n, m). Dimensions rounded up to integers."""
    from ..core.layout import Exec
    from ..core.time import layer_gemms, output_gemm
    from ..specs.run import RunSpec

    ex = Exec(tp=tp, pp=1, dp=1, cp=1, ep=1, vpp=1, micro_batch=micro_batch, global_batch=micro_batch, zero_stage=0,
              fsdp=0, sp=0, recompute=0, flash=1, offload=0)
    gemms, _ = layer_gemms(model, ex, False, model.moe is not None, seq, 0)
    gemms.append(output_gemm(model, RunSpec(seq_len=seq, micro_batch=micro_batch), ex))
    c = lambda x: max(1, int(math.ceil(x)))  # noqa: E731
    out = []
    for label, m, n, k, _ in gemms:
        m, n, k = c(m), c(n), c(k)
        out.append((f"{label} fwd", m, n, k))
        if backward:
            out.append((f"{label} dgrad", m, k, n))
            out.append((f"{label} wgrad", k, n, m))
    return out


#: the best shapes stas00's mamf-finder found (MxNxK; planner/data/microbench.yaml): A100, H100 bf16/fp8, H200 fp8
MAMF_SHAPES = ((1024, 10240, 5120), (2048, 2048, 13312), (1024, 9216, 14336), (1280, 4096, 12032))


def gpu_gemm_sweep(quick: bool) -> list[tuple[str, int, int, int, int]]:
    """(origin, m, n, k, priority) for a CUDA device. Priority 0 runs first (the essentials), 1 when time allows."""
    out = [("mamf-grid", m, n, k, 0) for m, n, k in MAMF_SHAPES]
    out.append(("sweep", 8192, 8192, 8192, 0))
    squares = (1024, 4096) if quick else (256, 512, 1024, 2048, 4096, 16384)
    out += [("sweep", s, s, s, 1) for s in squares]
    rows = (16, 128, 1024) if quick else (16, 64, 256, 1024, 4096)
    out += [("sweep", m, 8192, 8192, 1) for m in rows]  # skinny: few tokens
    narrow = (256,) if quick else (128, 512, 2048)
    out += [("sweep", 8192, n, 8192, 1) for n in narrow]  # narrow TP shards
    short = (256,) if quick else (128, 512, 2048)
    out += [("sweep", 8192, 8192, k, 1) for k in short]  # short reductions
    if not quick:
        out += [("mamf-grid", m, n, k, 1) for m in (1024, 2048, 4096) for n in (4096, 9216, 14336)
                for k in (4096, 8192, 13312) if (m, n, k) not in MAMF_SHAPES]
    return out


def cpu_gemm_sweep(quick: bool) -> list[tuple[str, int, int, int, int]]:
    """Tiny shapes for a CPU: enough to exercise the fits, seconds in all."""
    out = [("sweep", 512, 512, 512, 0)]
    squares = (64, 128, 256) if quick else (64, 128, 256, 1024)
    out += [("sweep", s, s, s, 1) for s in squares]
    out += [("sweep", m, 512, 512, 1) for m in ((8, 32) if quick else (8, 32, 128))]
    out += [("sweep", 512, 512, k, 1) for k in ((32,) if quick else (32, 128))]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Torch, the device and its provenance
# ---------------------------------------------------------------------------------------------------------------

def require_torch():
    """``torch``, or a one-line SpecError (exit 2) saying how to install the extra."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SpecError(INSTALL_HINT) from None
    return torch


NVSMI_FIELDS = ("name", "driver_version", "clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem",
                "power.draw", "power.limit", "temperature.gpu", "pstate")
#: asked for separately: renamed across driver versions, and one unknown field fails the whole query
NVSMI_OPTIONAL = ("clocks_event_reasons.active", "clocks_throttle_reasons.active", "persistence_mode")


def _smi_query(index: int, fields) -> Optional[list[str]]:
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=" + ",".join(fields),
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    vals = [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]
    return vals if len(vals) == len(fields) else None


def nvidia_smi(index: int = 0) -> Optional[dict]:
    """Clocks, power, temperature and driver of GPU ``index`` from ``nvidia-smi``; None where it is missing."""
    vals = _smi_query(index, NVSMI_FIELDS)
    if vals is None:
        return None
    got = dict(zip(NVSMI_FIELDS, vals))
    for f in NVSMI_OPTIONAL:
        v = _smi_query(index, (f,))
        if v is not None:
            got[f] = v[0]
    return got


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _environment() -> dict:
    keys = ("CUDA_VISIBLE_DEVICES", "PYTORCH_TUNABLEOP_ENABLED", "OMP_NUM_THREADS", "TORCH_CUDNN_V8_API_ENABLED")
    return {k: v for k, v in sorted(os.environ.items()) if k in keys or k.startswith("NCCL_")}


def device_provenance(torch, dev, settings: dict) -> dict:
    """Device name, driver, CUDA/cuDNN/NCCL/torch versions, host, date, clocks."""
    prov = {
        "tool": f"planner bench ({__name__})",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "device_type": dev.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "settings": settings,
        "environment": _environment(),
    }
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        smi = nvidia_smi(dev.index or 0)
        prov.update(device_name=p.name, device_count=torch.cuda.device_count(), cuda=torch.version.cuda,
                    capability=f"{p.major}.{p.minor}", memory_bytes=float(p.total_memory),
                    driver=(smi or {}).get("driver_version"), clocks_before=smi)
        try:
            prov["cudnn"] = str(torch.backends.cudnn.version())
        except Exception:  # pragma: no cover - depends on the build
            pass
        try:
            prov["nccl"] = ".".join(str(x) for x in torch.cuda.nccl.version())
        except Exception:  # pragma: no cover
            pass
    else:
        prov.update(device_name=_cpu_name(), device_count=1,
                    note=f"CPU run, {torch.get_num_threads()} torch threads; numbers exercise the pipeline only, "
                         f"they are not a GPU profile")
    return prov


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    median_s: float
    min_s: float
    max_s: float
    repeats: int

    def record(self) -> dict:
        return {"time_s": self.median_s, "time_min_s": self.min_s, "time_max_s": self.max_s, "repeats": self.repeats}


class Timer:
    """Warm-up, then ``repeats`` timed groups of calls; the median time of one call.

    On a GPU each group is bracketed by a pair of CUDA events, and the GPU is kept busy (``torch.cuda._sleep``)
    while the host enqueues every group, so the events time the kernels back to back: without it a kernel shorter
    than its launch (about 20 us from Python) is timed with the host's launch gap added, and a 2048^3 bf16 GEMM
    (~25 us) read 436 TFLOP/s instead of ~630 on an H200. A group holds enough calls to last ~200 us, so the
    events' own cost (a few us) stays under a few per cent. On a CPU each call is timed by a synchronised wall clock.
    """

    #: a group of calls lasts at least this long on a GPU, s
    GROUP_S = 2e-4
    #: host time to enqueue one call (generous: the GPU must not drain its queue before the host is done), s
    ENQUEUE_S = 5e-5
    #: cycles per second ``torch.cuda._sleep`` is sized with: at least any SM clock (H100/H200 boost 1.98 GHz), so
    #: the sleep lasts at least as long as asked; a slower clock only makes it longer
    SLEEP_CLOCK_HZ = 2e9
    #: the longest the GPU is held, s
    HOLD_MAX_S = 0.5

    def __init__(self, torch, dev, target_s: float, warmup: int, min_repeats: int = 5, max_repeats: int = 200,
                 deadline: Optional[float] = None):
        self.torch, self.dev, self.deadline = torch, dev, deadline
        self.target_s, self.warmup = target_s, warmup
        self.min_repeats, self.max_repeats = min_repeats, max_repeats

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)

    def _hold_gpu(self, seconds: float) -> None:
        """Keep the GPU busy for about ``seconds`` (at most HOLD_MAX_S) so the host can queue work behind it."""
        sleep = getattr(self.torch.cuda, "_sleep", None)
        if sleep is not None:
            sleep(int(self.SLEEP_CLOCK_HZ * min(seconds, self.HOLD_MAX_S)))

    def _gpu_groups(self, fn: Callable[[], object], n: int, group: int) -> list[float]:
        """Seconds per call of ``n`` groups of ``group`` calls, queued behind a sleeping kernel."""
        ev = self.torch.cuda.Event
        starts = [ev(enable_timing=True) for _ in range(n)]
        ends = [ev(enable_timing=True) for _ in range(n)]
        self._hold_gpu(n * group * self.ENQUEUE_S)
        for s, e in zip(starts, ends):
            s.record()
            for _ in range(group):
                fn()
            e.record()
        self.sync()
        return [s.elapsed_time(e) / 1e3 / group for s, e in zip(starts, ends)]

    def __call__(self, fn: Callable[[], object]) -> Timing:
        """Median time of ``fn``. With a ``deadline`` (perf_counter), slow calls get fewer warm-ups and repeats
        (never fewer than 3) rather than overrunning the budget."""
        t0 = time.perf_counter()
        fn()  # the first call: the kernel choice, allocations, and a measure of how long a call takes
        self.sync()
        first = max(time.perf_counter() - t0, 1e-7)
        warm = 1 if first > self.target_s else self.warmup - 1  # one call longer than the target: warm enough
        for _ in range(warm):
            fn()
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        one = max(time.perf_counter() - t0, 1e-7)
        group = 1
        if self.dev.type == "cuda" and one < 10 * self.GROUP_S:  # short: measure the kernel alone, then group
            kernel = max(statistics.median(self._gpu_groups(fn, 5, 1)), 1e-7)
            group = int(min(100, max(1, math.ceil(self.GROUP_S / kernel))))
            one = kernel * group
        n = int(min(self.max_repeats, max(self.min_repeats, self.target_s / one)))
        if self.deadline is not None:
            n = max(3, min(n, int((self.deadline - time.perf_counter()) / one)))
        if self.dev.type == "cuda":
            times = self._gpu_groups(fn, n, group)
        else:
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return Timing(statistics.median(times), min(times), max(times), n)


# ---------------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------------

def torch_dtype(torch, name: str):
    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def fp8_supported(torch, dev) -> tuple[bool, str]:
    if dev.type != "cuda":
        return False, "fp8 GEMMs need an NVIDIA GPU of compute capability 8.9+ (Ada/Hopper/Blackwell)"
    if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
        return False, f"torch {torch.__version__} has no torch._scaled_mm/float8_e4m3fn"
    cap = torch.cuda.get_device_capability(dev)
    if cap < (8, 9):
        return False, f"compute capability {cap[0]}.{cap[1]} < 8.9 has no fp8 tensor cores"
    return True, ""


def measure_gemm(torch, dev, timer: Timer, dtype: str, m: int, n: int, k: int, origin: str) -> dict:
    """Time (m x k) @ (k x n) in ``dtype``; fp8 as torch._scaled_mm (e4m3 inputs, bf16 output, unit scales)."""
    if dtype == "fp8":
        # _scaled_mm wants row-major A and column-major B, dimensions multiples of 16
        m16, n16, k16 = (max(16, 16 * math.ceil(x / 16)) for x in (m, n, k))
        a = torch.randn(m16, k16, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n16, k16, device=dev).to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device=dev)

        def fn():
            return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        m, n, k = m16, n16, k16
        note = "torch._scaled_mm, float8_e4m3fn inputs, bf16 output, per-tensor unit scales, use_fast_accum off"
    else:
        dt = torch_dtype(torch, dtype)
        a = torch.randn(m, k, device=dev, dtype=dt)
        b = torch.randn(k, n, device=dev, dtype=dt)
        c = torch.empty(m, n, device=dev, dtype=dt)

        def fn():
            return torch.mm(a, b, out=c)
        note = None
    t = timer(fn)
    del a, b
    rec = {"dtype": dtype, "m": m, "n": n, "k": k, "flop_per_s": 2.0 * m * n * k / t.median_s, **t.record(),
           "origin": origin}
    if note:
        rec["note"] = note
    return rec


def attention_flop(batch: int, heads: int, seq: int, head_dim: int, causal: bool, direction: str) -> float:
    """FLOPs of one SDPA call as the time model counts them (module docstring)."""
    pairs = seq * (seq + 1) / 2.0 if causal else float(seq) * seq  # as core.flops.attention_pairs, fused kernel
    fwd = 4.0 * batch * heads * head_dim * pairs
    return fwd * (1.0 + FLASH_BWD_OVER_FWD) if direction == "fwd_bwd" else fwd


def sdpa_backends(torch, dev, quick: bool) -> list[tuple[str, object]]:
    """(label, SDPBackend or None for the default) to measure on this device."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:  # torch < 2.3
        return [("default", None)]
    if dev.type != "cuda":
        return [("default", None)]
    out = [("flash", SDPBackend.FLASH_ATTENTION)]
    if not quick and hasattr(SDPBackend, "CUDNN_ATTENTION"):
        out.append(("cudnn", SDPBackend.CUDNN_ATTENTION))
    return out


def measure_attention(torch, dev, timer: Timer, dtype: str, batch: int, heads: int, seq: int, head_dim: int,
                      causal: bool, direction: str, backend: tuple[str, object]) -> dict:
    import contextlib

    import torch.nn.functional as F

    dt = torch_dtype(torch, dtype)
    grad = direction == "fwd_bwd"
    q, k, v = (torch.randn(batch, heads, seq, head_dim, device=dev, dtype=dt, requires_grad=grad) for _ in range(3))
    label, be = backend
    if be is None:
        ctx = contextlib.nullcontext
    else:
        from torch.nn.attention import sdpa_kernel

        def ctx():
            return sdpa_kernel([be])

    if grad:
        dout = torch.randn(batch, heads, seq, head_dim, device=dev, dtype=dt)

        def fn():
            with ctx():
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                return torch.autograd.grad(out, (q, k, v), dout)
    else:
        def fn():
            with ctx(), torch.no_grad():
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    t = timer(fn)
    flop = attention_flop(batch, heads, seq, head_dim, causal, direction)
    return {"dtype": dtype, "batch": batch, "heads": heads, "seq": seq, "head_dim": head_dim, "causal": causal,
            "direction": direction, "backend": label, "flop": flop, "flop_per_s": flop / t.median_s, **t.record()}


def measure_memory(torch, dev, timer: Timer, op: str, nbytes: int) -> dict:
    n = nbytes // 4
    a = torch.empty(n, device=dev, dtype=torch.float32).uniform_()
    b = torch.empty_like(a)
    if op == "copy":
        def fn():
            return b.copy_(a)
        moved = 2 * n * 4
    else:
        c = torch.empty_like(a)

        def fn():
            return torch.add(a, b, out=c)
        moved = 3 * n * 4
    t = timer(fn)
    return {"op": op, "bytes": n * 4, "bytes_moved": moved, "bytes_per_s": moved / t.median_s, **t.record()}


# ---------------------------------------------------------------------------------------------------------------
# Collectives: one process per rank
# ---------------------------------------------------------------------------------------------------------------

BUSBW_FACTOR = {  # nccl-tests doc/PERFORMANCE.md
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
}


def _collective_call(torch, dist, op: str, world: int, numel: int, dev):
    """Allocate the buffers of one collective ``op`` on ``numel`` fp32 elements; return a call that runs it once."""
    # torch >= 2.10 renames the tensor forms (all_gather_single, reduce_scatter_single); same arguments
    all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    if op == "all_reduce":
        buf = torch.ones(numel, device=dev)

        def fn():
            dist.all_reduce(buf)
    elif op == "all_gather":
        out = torch.empty(numel, device=dev)
        inp = torch.ones(numel // world, device=dev)

        def fn():
            all_gather(out, inp)
    elif op == "reduce_scatter":
        inp = torch.ones(numel, device=dev)
        out = torch.empty(numel // world, device=dev)

        def fn():
            reduce_scatter(out, inp)
    else:
        inp = torch.ones(numel, device=dev)
        out = torch.empty(numel, device=dev)

        def fn():
            dist.all_to_all_single(out, inp)
    return fn


def _time_collective(torch, dist, fn, sync, dev, iters: int, repeats: int) -> float:
    """Median over ``repeats`` of ``iters`` back-to-back calls between barriers, the slowest rank's time."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / iters)
    # every rank's time, the slowest counts (a collective ends when its last rank does)
    tt = torch.tensor([statistics.median(times)], device=dev, dtype=torch.float64)
    dist.all_reduce(tt, op=dist.ReduceOp.MAX)
    return float(tt.item())


def _collective_row(results: list, torch, dist, dev, sync, backend: str, world: int, op: str, size: int,
                    iters: int, repeats: int, deadline: float) -> None:
    """Measure one op at one size; append its row, or a skipped row (time budget spent, op unsupported)."""
    if time.time() > deadline:
        results.append({"skipped": f"{op} {size} B", "reason": "time budget"})
        return
    numel = max(world, size // 4 // world * world)  # divisible by world, fp32 elements
    try:
        fn = _collective_call(torch, dist, op, world, numel, dev)
        t = _time_collective(torch, dist, fn, sync, dev, iters, repeats)
        nbytes = numel * 4
        alg = nbytes / t
        results.append({"op": op, "world_size": world, "bytes": nbytes, "time_s": t,
                        "algbw_bytes_per_s": alg, "busbw_bytes_per_s": alg * BUSBW_FACTOR[op](world),
                        "backend": backend})
    except Exception as exc:  # an op the backend lacks (gloo has no reduce_scatter in some versions)
        results.append({"skipped": f"{op} {size} B", "reason": f"{type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''}"})
        dist.barrier()
    finally:
        sync()


def _collective_worker(rank: int, world: int, backend: str, init_file: str, out_file: str, sizes: list[int],
                       ops: list[str], iters: int, repeats: int, deadline: float) -> None:
    """One rank: time each op at each size (``iters`` back-to-back calls between barriers, median of
    ``repeats``); rank 0 writes the results as JSON lines to ``out_file``."""
    import torch
    import torch.distributed as dist

    cuda = backend == "nccl"
    if cuda:
        torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank) if cuda else torch.device("cpu")
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    results = []
    try:
        for op in ops:
            for size in sizes:
                _collective_row(results, torch, dist, dev, sync, backend, world, op, size, iters, repeats, deadline)
    finally:
        if rank == 0:
            Path(out_file).write_text("\n".join(json.dumps(r) for r in results))
        dist.destroy_process_group()


def run_collectives(world: int, backend: str, sizes: list[int], ops: list[str], iters: int, repeats: int,
                    budget_s: float) -> tuple[list[dict], list[dict]]:
    """Spawn ``world`` ranks, run the collectives, return (results, skipped)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as tmp:
        init_file, out_file = str(Path(tmp) / "init"), str(Path(tmp) / "out.jsonl")
        deadline = time.time() + budget_s
        procs = [ctx.Process(target=_collective_worker, args=(r, world, backend, init_file, out_file, sizes, ops,
                                                               iters, repeats, deadline)) for r in range(world)]
        for p in procs:
            p.start()
        end = time.time() + max(30.0, budget_s + 60.0)  # init and teardown on top of the measuring budget
        for p in procs:
            p.join(timeout=max(1.0, end - time.time()))
        stuck = [p for p in procs if p.is_alive()]
        for p in stuck:
            p.kill()
            p.join()
        if not Path(out_file).exists():
            codes = [p.exitcode for p in procs]
            return [], [{"what": f"collectives ({backend}, {world} ranks)",
                         "reason": f"ranks failed or hung (exit codes {codes})"}]
        rows = [json.loads(line) for line in Path(out_file).read_text().splitlines() if line.strip()]
    res = [r for r in rows if "skipped" not in r]
    skipped = [{"what": f"collective {r['skipped']}", "reason": r["reason"]} for r in rows if "skipped" in r]
    return res, skipped


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class BenchOptions:
    device: str = "auto"  #: auto (cuda if available, else cpu), cuda, cpu
    quick: bool = False
    time_budget_s: float = 300.0
    model: Optional[str] = None  #: a model preset whose per-GPU GEMM shapes join the sweep
    tp: int = 1
    seq: int = 2048
    micro_batch: int = 1
    dtypes: Optional[tuple[str, ...]] = None  #: GEMM dtypes (default: bf16, fp16, fp8 on CUDA; fp32, bf16 on CPU)
    sections: tuple[str, ...] = ("gemm", "attention", "memory", "collectives")
    cpu_ranks: int = 0  #: run the collectives on this many CPU (gloo) ranks: tests the path without GPUs


@dataclass
class _Item:
    section: str
    label: str
    priority: int
    run: Callable[[], object]


@dataclass
class _Collected:
    gemm: list = field(default_factory=list)
    attention: list = field(default_factory=list)
    memory: list = field(default_factory=list)
    collectives: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def _plan_gemm(torch, dev, opts: BenchOptions, out: _Collected, timer, add) -> None:
    """Queue the GEMM sweep (and the model's shapes) for each dtype; a dtype the device lacks is skipped."""
    cuda = dev.type == "cuda"
    quick = opts.quick
    if opts.dtypes:
        dtypes = list(opts.dtypes)
    else:
        dtypes = ["bf16", "fp16", "fp8"] if cuda else ["fp32", "bf16"]
    ok8, why8 = fp8_supported(torch, dev)
    if "fp8" in dtypes and not ok8:
        dtypes.remove("fp8")
        out.skipped.append({"what": "gemm fp8", "reason": why8})
    sweep = gpu_gemm_sweep(quick) if cuda else cpu_gemm_sweep(quick)
    shapes = []
    if opts.model:
        from ..registry import load_model

        mdl = load_model(opts.model)
        for label, m, n, k in model_gemm_shapes(mdl, opts.tp, opts.seq, opts.micro_batch, backward=not quick):
            shapes.append((f"model:{opts.model} tp={opts.tp} seq={opts.seq} mb={opts.micro_batch} {label}",
                           m, n, k, 0))
    seen = set()
    for dt in dtypes:
        main = dt == dtypes[0] or dt == "fp8"
        for origin, m, n, k, pri in sweep + (shapes if main else []):
            if dt == "fp16" and not main and not (origin == "sweep" and m == n == k):  # bf16 tensor cores: squares
                continue
            if (dt, m, n, k) in seen:  # a model's backward GEMMs repeat other shapes
                continue
            seen.add((dt, m, n, k))
            add("gemm", f"gemm {dt} {m}x{n}x{k}", pri if main else 1,
                lambda dt=dt, m=m, n=n, k=k, o=origin: out.gemm.append(
                    measure_gemm(torch, dev, timer, dt, m, n, k, o)))


def _plan_memory(torch, dev, opts: BenchOptions, out: _Collected, timer, add) -> None:
    """Queue copy and add bandwidth runs on buffers far beyond the last-level cache."""
    cuda = dev.type == "cuda"
    quick = opts.quick
    # memory bandwidth: buffers far beyond the last-level cache (H100 L2 50 MB; CPUs tens of MB)
    sizes = ([2**30] if quick else [2**26, 2**28, 2**30, 2**31]) if cuda else ([2**26] if quick else [2**26, 2**28])
    for i, nbytes in enumerate(reversed(sizes)):
        for op in ("copy", "add"):
            add("memory", f"{op} {nbytes / 2**20:.0f} MiB", 0 if i == 0 else 1,
                lambda op=op, nb=nbytes: out.memory.append(measure_memory(torch, dev, timer, op, nb)))


def _plan_attention(torch, dev, opts: BenchOptions, out: _Collected, timer, add) -> None:
    """Queue SDPA runs per backend, sequence length, causal/full mask and fwd/fwd_bwd direction."""
    cuda = dev.type == "cuda"
    quick = opts.quick
    # attention: b·s tokens kept roughly constant so each call has work; head_dim 128 (Llama), 64 on CPU
    if cuda:
        seqs = (1024, 4096) if quick else (512, 1024, 2048, 4096, 8192, 16384)
        heads, hd, tokens, adt = 32, 128, 16384, "bf16"
    else:
        seqs = (128, 512) if quick else (128, 256, 512, 1024)
        heads, hd, tokens, adt = 4, 64, 1024, "fp32"
    first = seqs[-1] if not cuda else (4096 if 4096 in seqs else seqs[-1])
    for be in sdpa_backends(torch, dev, quick):
        for s in seqs:
            for causal in (True, False):
                for direction in ("fwd_bwd", "fwd"):
                    b = max(1, tokens // s)
                    pri = 0 if (s == first and causal and direction == "fwd_bwd") else 1
                    add("attention", f"sdpa {be[0]} s={s} {'causal' if causal else 'full'} {direction}", pri,
                        lambda be=be, s=s, b=b, c=causal, d=direction: out.attention.append(
                            measure_attention(torch, dev, timer, adt, b, heads, s, hd, c, d, be)))


def _plan_collectives(torch, dev, opts: BenchOptions, out: _Collected, add) -> None:
    """Queue one collectives run over gloo CPU ranks or all visible GPUs, or record why it is skipped."""
    import torch.distributed as dist

    cuda = dev.type == "cuda"
    quick = opts.quick
    world, backend = 0, None
    if opts.cpu_ranks >= 2:
        world, backend = opts.cpu_ranks, "gloo"
    elif cuda and torch.cuda.device_count() >= 2 and dist.is_available() and dist.is_nccl_available():
        world, backend = torch.cuda.device_count(), "nccl"
    if world:
        if backend == "gloo":
            sizes, iters, reps = [2**12, 2**16, 2**20], 3, 3
        elif quick:
            sizes, iters, reps = [2**20, 2**24, 2**28, 2**30], 5, 3
        else:
            sizes, iters, reps = [2**p for p in range(20, 33, 2)], 10, 5

        def coll():
            if cuda:  # the ranks need the memory this process's caching allocator holds on GPU 0
                torch.cuda.empty_cache()
            budget = max(20.0, 0.3 * opts.time_budget_s)
            res, sk = run_collectives(world, backend, sizes, list(COLLECTIVE_OPS), iters, reps, budget)
            out.collectives.extend(res)
            out.skipped.extend(sk)
        add("collectives", f"collectives {backend} x{world}", 0, coll)
    else:
        why = ("one GPU visible" if cuda else "no GPUs (CPU run)") if dist.is_available() \
            else "torch.distributed is not available"
        out.skipped.append({"what": "collectives", "reason": f"{why}: bus bandwidth needs two or more GPUs"})


def _order_items(items: list[_Item]) -> list[_Item]:
    """Essentials first, taking turns between sections (so a tight budget still gets one of each), then the rest."""
    rank: dict[tuple[str, int], int] = {}
    keyed = []
    for it in items:
        i = rank.get((it.section, it.priority), 0)
        rank[(it.section, it.priority)] = i + 1
        keyed.append(((it.priority, i if it.priority == 0 else 0), it))
    return [it for _, it in sorted(keyed, key=lambda kv: kv[0])]


def _plan(torch, dev, opts: BenchOptions, out: _Collected, deadline: Optional[float] = None) -> list[_Item]:
    """The measurements of the selected sections, in run order (see ``_order_items``)."""
    cuda = dev.type == "cuda"
    quick = opts.quick
    items: list[_Item] = []
    timer = Timer(torch, dev, target_s=(0.05 if quick else 0.25) if cuda else (0.03 if quick else 0.1),
                  warmup=3 if quick else 10, min_repeats=5 if quick else 10, max_repeats=100 if quick else 200,
                  deadline=deadline)

    def add(section, label, priority, fn):
        items.append(_Item(section, label, priority, fn))

    if "gemm" in opts.sections:
        _plan_gemm(torch, dev, opts, out, timer, add)
    if "memory" in opts.sections:
        _plan_memory(torch, dev, opts, out, timer, add)
    if "attention" in opts.sections:
        _plan_attention(torch, dev, opts, out, timer, add)
    if "collectives" in opts.sections:
        _plan_collectives(torch, dev, opts, out, add)
    return _order_items(items)


def _gpu_warmup(torch, dev, seconds: float) -> None:
    """Run large bf16 GEMMs for ``seconds`` so the clocks reach their sustained level before timing."""
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            a @ a
        torch.cuda.synchronize(dev)
    del a


def run_bench(opts: BenchOptions, show_progress: bool = True) -> Bench:
    """Measure, and return the BENCH document (validated)."""
    torch = require_torch()
    start = time.perf_counter()
    if opts.device == "auto":
        dev = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    elif opts.device == "cuda":
        if not torch.cuda.is_available():
            raise SpecError(f"--device cuda: torch {torch.__version__} sees no CUDA device")
        dev = torch.device("cuda", 0)
    else:
        dev = torch.device("cpu")
    settings = {"quick": opts.quick, "time_budget_s": opts.time_budget_s, "model": opts.model, "tp": opts.tp,
                "seq": opts.seq, "micro_batch": opts.micro_batch, "sections": list(opts.sections),
                "statistic": "median of repeats; on a GPU a repeat is a group of calls timed by CUDA events, "
                             "queued behind a sleeping kernel (Timer); on a CPU one call timed by perf_counter"}
    prov = device_provenance(torch, dev, {k: v for k, v in settings.items() if v is not None})
    out = _Collected()
    deadline = start + opts.time_budget_s
    if dev.type == "cuda":
        _gpu_warmup(torch, dev, 0.5 if opts.quick else 2.0)
    items = _plan(torch, dev, opts, out, deadline)

    from ..console import stderr_console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("[bold]bench[/bold] {task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=stderr_console(), transient=True, disable=not show_progress)
    with prog:
        task = prog.add_task("", total=len(items))
        for it in items:
            prog.update(task, description=it.label)
            if time.perf_counter() > deadline:
                out.skipped.append({"what": it.label, "reason": f"time budget ({opts.time_budget_s:g} s) spent"})
            else:
                try:
                    it.run()
                except Exception as exc:  # out of memory, an unsupported kernel: record and go on
                    msg = str(exc).splitlines()[0][:200] if str(exc) else ""
                    out.skipped.append({"what": it.label, "reason": f"{type(exc).__name__}: {msg}"})
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
            prog.advance(task)
    if dev.type == "cuda":
        prov["clocks_after"] = nvidia_smi(dev.index or 0)
    prov["elapsed_s"] = round(time.perf_counter() - start, 2)
    try:
        return Bench.model_validate({"bench_format": BENCH_FORMAT, "provenance": prov, "gemm": out.gemm,
                                     "attention": out.attention, "memory": out.memory,
                                     "collectives": out.collectives, "skipped": out.skipped})
    except ValidationError as exc:  # pragma: no cover - a bug in this module
        raise RuntimeError(format_validation_error(exc, prefix="bench")) from exc


def default_out_name(bench: Bench) -> str:
    p = bench.provenance
    dev = "".join(ch if ch.isalnum() else "-" for ch in p.device_name.lower()).strip("-")
    while "--" in dev:
        dev = dev.replace("--", "-")
    return f"bench-{dev[:40]}-{p.date[:10]}.yaml"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(dump_bench(run_bench(BenchOptions(quick=True))))
