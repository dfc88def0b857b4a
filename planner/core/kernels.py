"""Time of one kernel on one GPU: GEMMs, the attention core and memory-bound (elementwise) traffic.

The one GEMM model of planner (the layer time of ``core/time.py`` and the benchmark calibration of
``calibrate/curves.py`` both call it). Sources, per kernel:

* **GEMM**: the measured *maximum achievable matmul FLOPs* (MAMF: ~87% of peak on A100, ~80% on H100;
  ``planner/data/microbench.yaml``) times x/(x + ``gemm_half_dim``) for each of its three dimensions (small and
  skinny GEMMs lose tile, wave-quantisation and pipeline-fill efficiency; ``gemm_half_dim`` fitted end-to-end,
  beside its prior from a measured GEMM table: ``planner/calibrate/priors.py``), or HBM speed
  when too skinny to be compute-bound (roofline on the bytes of its three operands). FP8 adds the casts of its
  inputs (Transformer Engine; Micikevicius et al. 2022 §4).
* **Attention core**: a fused kernel (FlashAttention-2, Dao 2023; FlashAttention-3/cuDNN on Hopper, Shah et al. 2024)
  at ``attention_fraction`` x the bf16 peak on its executed FLOPs, backward 2.5 x forward (Dao 2023 §4.1); unfused,
  QK^T and AV are batched GEMMs at MAMF and softmax/mask/dropout stream the s x s scores through HBM.
* **Elementwise**: bytes / (HBM bandwidth x ``hbm_fraction``).

Left out: kernel launch gaps beyond the per-GEMM shape efficiency, L2 reuse between kernels (fused epilogues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..specs.hardware import AttentionKernelCurve, HardwareSpec
from ..specs.run import RunSpec
from .efficiency import TimeParams, peak_flop_per_s, time_params
from .flops import FLASH_BWD_OVER_FWD
from .layout import Num

#: FP8 GEMMs (Transformer Engine; Micikevicius et al. 2022 §4) need fp8 copies of their inputs. Activations are
#: cast inside the kernel that produces them (TE's fused LayerNorm/activation + cast): one extra byte written per
#: element. Weights are cast (read 2 bytes, write 1) each time a micro-batch uses them.
FP8_CAST_BYTES_PER_ACTIVATION = 1.0
FP8_CAST_BYTES_PER_WEIGHT = 3.0


@dataclass(frozen=True)
class Recipe:
    """What a low-precision recipe adds around its GEMMs: HBM bytes its quantisation kernels move per input element
    of each GEMM (each GEMM of forward, dgrad and wgrad casts both operands, transposed ones included), the bytes
    its quantised copy of the weights keeps between micro-batches, and whether it needs Blackwell tensor cores."""

    dtype: str  #: the GEMMs' precision: fp8 or fp4
    act_cast_bytes: float  #: per activation-side element: bf16 read(s) + quantised write + scales
    weight_cast_bytes: float  #: per weight-side element, per use
    weight_copy_bytes: float  #: quantised weight copies kept per parameter (row- and column-wise where needed)
    blackwell: bool  #: block-scaled formats the Blackwell tensor cores scale in hardware (OCP MX, NVFP4)
    source: str


#: The recipes (``run.precision_recipe``). Cast bytes: q = bytes of the quantised element (fp8 1, fp4 0.5), a bf16
#: source read is 2, a scale is its bytes over its block's elements. Linear-layer GEMMs (QKV, output projection,
#: FFN, experts) run in the recipe; the attention core and the output layer stay in bf16 (Transformer Engine;
#: DeepSeek-V3 §3.3.1 also keeps the embedding, gating and norms in their original precision).
RECIPES = {
    "fp8_delayed": Recipe("fp8", 1.0, 3.0, 2.0, False,
                          "Transformer Engine DelayedScaling (Micikevicius et al. 2022 §4): the scale comes from the "
                          "amax history, so the producing kernel (fused norm/activation) writes the fp8 copy: +1 "
                          "byte per activation; weights read 2 + write 1; fp8 weight and its transpose kept (2)"),
    "fp8_current": Recipe("fp8", 5.0, 5.0, 2.0, False,
                          "Transformer Engine Float8CurrentScaling (NeMo 'FP8-CS'): the tensor's own amax first "
                          "(a 2-byte read), then the cast (read 2, write 1): 5 bytes per element, both operands"),
    "fp8_rowwise": Recipe("fp8", 3.0 + 4.0 / 128, 3.0 + 4.0 / 128, 2.0, False,
                          "torchao float8 rowwise (torchtitan): one fp32 scale per row computed in the cast kernel "
                          "(read 2, write 1, 4 bytes per row; 128-wide rows counted, wider rows cost less); row- "
                          "and column-wise copies for the backward"),
    "fp8_blockwise": Recipe("fp8", 3.0 + 4.0 / 128, 3.0 + 4.0 / (128 * 128), 1.0, False,
                            "DeepSeek-V3 §3.3.2: activations scaled online per 1x128 tile, weights per 128x128 "
                            "block (fp32 scales), one pass each (read 2, write 1); a 128x128-block weight serves "
                            "its transpose, so one copy"),
    "mxfp8": Recipe("fp8", 3.0 + 1.0 / 32, 3.0 + 1.0 / 32, 2.0 + 2.0 / 32, True,
                    "OCP Microscaling v1.0 MXFP8 (Transformer Engine MXFP8BlockScaling): E8M0 scale per 32 elements "
                    "(1/32 byte), row- and column-wise copies; scaled by Blackwell tensor cores"),
    "nvfp4": Recipe("fp4", 2.5 + 1.0 / 16, 2.5 + 1.0 / 16, 0.5 + 1.0 / 256, True,
                    "NVIDIA NVFP4 (Blackwell; NVIDIA 2025, 'Pretraining LLMs with NVFP4', arXiv:2509.25149): E2M1 "
                    "(0.5 byte) with an E4M3 scale per 16 elements plus a per-tensor fp32 scale; weights in 16x16 "
                    "blocks, one copy serving the transpose"),
    "mxfp4": Recipe("fp4", 2.5 + 1.0 / 32, 2.5 + 1.0 / 32, 1.0 + 2.0 / 32, True,
                    "OCP Microscaling v1.0 MXFP4: E2M1 with an E8M0 scale per 32 elements, row- and column-wise "
                    "copies; Blackwell"),
}


#: Generations whose tensor cores scale MX/NVFP4 blocks in hardware.
BLACKWELL_GENERATIONS = ("blackwell", "blackwell_ultra")


@dataclass(frozen=True)
class Rates:
    """The roofline inputs of every kernel of one run on one GPU: peaks, HBM bandwidth, efficiencies."""

    eff: TimeParams  #: efficiency parameters for the run's GEMM dtype
    eff16: TimeParams  #: the same for the bf16 parts of an fp8 run (attention core, logits); ``eff`` otherwise
    peak_flop_per_s: float  #: dense peak of the run's precision
    peak16_flop_per_s: float  #: dense bf16 peak (fp8 runs keep attention and the output layer in bf16)
    hbm_bytes_per_s: float  #: datasheet HBM bandwidth
    elem_bytes: float  #: bytes per activation element
    fp8: bool  #: linear-layer GEMMs run in a low precision (fp8 or fp4 recipe) with casts
    attention_kernels: dict  #: kernel name -> AttentionKernelCurve measured on this generation (may be empty)
    gpus_per_node: int = 8  #: GPUs of one NVLink domain (72 on GB200 NVL72): where an all-to-all leaves NVLink
    #: (activation-side, weight-side) cast bytes per GEMM input element of the run's recipe
    cast_bytes: tuple = (FP8_CAST_BYTES_PER_ACTIVATION, FP8_CAST_BYTES_PER_WEIGHT)

    def stream_s(self, nbytes: Num) -> Num:
        """Seconds to stream ``nbytes`` through HBM at the achievable bandwidth."""
        return nbytes / (self.eff.hbm_fraction * self.hbm_bytes_per_s)


def rates_of(hw: HardwareSpec, run: RunSpec, elem_bytes: float, eff: TimeParams | None = None) -> Rates:
    """:class:`Rates` of ``run`` on ``hw``; ``eff`` overrides the profile's calibrated parameters (fits do)."""
    eff = eff or time_params(hw, run.precision)
    fp8 = run.precision in ("fp8", "fp4")
    # fp8/fp4 recipes (Transformer Engine, NeMo, DeepSeek-V3) run the attention core and the output layer in bf16
    recipe = RECIPES.get(run.recipe) if fp8 else None
    if recipe is not None and recipe.blackwell and hw.generation not in BLACKWELL_GENERATIONS:
        from ..errors import SpecError

        named = (f"run.precision_recipe({run.recipe})" if run.precision_recipe else
                 f"run.precision({run.precision}) (recipe {run.recipe})")
        raise SpecError(f"{named} needs Blackwell tensor cores (block scales in hardware); hardware {hw.name} is "
                        f"{hw.generation or 'an unknown generation'}")
    peak = peak_flop_per_s(hw, run.precision)
    return Rates(eff=eff, eff16=eff.replace(matmul_fraction=eff.matmul_fraction_bf16) if fp8 else eff,
                 peak_flop_per_s=peak, peak16_flop_per_s=peak_flop_per_s(hw, "bf16") if fp8 else peak,
                 hbm_bytes_per_s=hw.accelerator.hbm_bandwidth_bytes_per_s.value, elem_bytes=elem_bytes, fp8=fp8,
                 attention_kernels=dict(hw.attention_kernels), gpus_per_node=hw.gpus_per_node,
                 cast_bytes=(recipe.act_cast_bytes, recipe.weight_cast_bytes) if recipe is not None else
                 (FP8_CAST_BYTES_PER_ACTIVATION, FP8_CAST_BYTES_PER_WEIGHT))


def gemm_efficiency(a, b, c, eff: TimeParams) -> Num:
    """Achieved / peak FLOP/s of an (a x c) @ (c x b) GEMM: the measured best (MAMF) times x/(x + x_half) for each
    dimension, so large GEMMs approach MAMF and small or skinny ones (few rows, narrow TP shards, short K) lose
    tile, wave-quantisation and pipeline-fill efficiency. x_half is fitted per GPU generation; faster tensor
    cores need larger tiles to stay busy, so it grows from Ampere to Hopper.

    **Grouped GEMMs of fine-grained MoE** (Megatron-Core's GroupedGEMM, DeepSeek's DeepGEMM): each local expert is
    its own (rows x d) @ (d x f_e) problem, so the factor applies *per expert*, at rows = tokens·top_k·ep/E (times
    the busiest rank's load), not to the stacked tokens. Worked example (``tests/test_moe_timing.py``):
    DeepSeek-V3 (E = 256, top-8, d = 7168, f_e = 2048) at 4,096 tokens per GPU and ep = 64 gives
    4096·8·64/256 = 8,192 rows per expert, n = 2·2048 (gate + up), k = 7168; with x_half = 256 the shape factor
    is 8192/8448 · 4096/4352 · 7168/7424 = 0.881. Without EP (ep = 1) each expert gets 128 rows and the factor
    drops to 128/384 · ... = 0.303: small experts starve the tensor cores unless EP gathers their tokens."""
    h = eff.gemm_half_dim
    return eff.matmul_fraction * (a / (a + h)) * (b / (b + h)) * (c / (c + h))


def gemm_time_s(a, b, c, peak: float, bw: float, e: float, eff: TimeParams, fp8: bool = False,
                cast_bytes: tuple = (FP8_CAST_BYTES_PER_ACTIVATION, FP8_CAST_BYTES_PER_WEIGHT)) -> Num:
    """One (a x c) @ (c x b) GEMM: roofline on FLOPs (at its shape's efficiency) and on operand bytes; a
    low-precision GEMM (``fp8``, any recipe) adds its recipe's casts of both operands (``cast_bytes``)."""
    t_c = 2.0 * a * b * c / (gemm_efficiency(a, b, c, eff) * peak)
    t_m = e * (a * c + c * b + a * b) / (eff.hbm_fraction * bw)
    t = np.maximum(t_c, t_m)
    if fp8:  # operand (a x c) is the activation side, (c x b) the weight side for the forward GEMM
        t = t + (cast_bytes[0] * a * c + cast_bytes[1] * c * b) / (eff.hbm_fraction * bw)
    return t


def gemm_achieved_fraction(m, n, k, peak: float, bw: float, e: float, eff: TimeParams) -> Num:
    """Achieved / peak FLOP/s of one (m x k)·(k x n) GEMM as :func:`gemm_time_s` times it (what a GEMM benchmark
    measures; ``calibrate/curves.py`` fits ``gemm_half_dim`` to it)."""
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    return 2.0 * m * n * k / (gemm_time_s(m, n, k, peak, bw, e, eff) * peak)


def gemm_pass_s(m, n, k, r: Rates, bf16: bool = False) -> tuple[Num, Num]:
    """(forward, forward + backward) seconds of an (m x k) @ (k x n) product: Y = XW forward, dX = dY W^T and
    dW = X^T dY backward. ``bf16``: a GEMM an fp8 recipe keeps in bf16 (the output layer)."""
    peak, eff, fp8 = (r.peak16_flop_per_s, r.eff16, False) if bf16 else (r.peak_flop_per_s, r.eff, r.fp8)
    bw, e = r.hbm_bytes_per_s, r.elem_bytes
    cb = r.cast_bytes
    fwd = gemm_time_s(m, n, k, peak, bw, e, eff, fp8, cb)
    return fwd, fwd + gemm_time_s(m, k, n, peak, bw, e, eff, fp8, cb) + gemm_time_s(k, n, m, peak, bw, e, eff, fp8, cb)


def attention_kernel_rates(curve: AttentionKernelCurve, s_kernel: Num, causal: bool, peak16: float
                           ) -> tuple[Num, Num]:
    """(forward, backward) FLOP/s of a fused attention kernel at ``s_kernel`` tokens per sequence, read from its
    measured curve (log-linear between the measured lengths, flat outside), scaled by the profile's bf16 peak over
    the measured GPU's. A causal backward is the non-causal one times the forward's causal/non-causal ratio at the
    same length (the source measures no causal backward).

    A curve of combined forward + backward rates R (``curve.fwd_over_bwd_rate`` given) is split with the measured
    forward/backward rate ratio rho: backward = R·(1/rho + 2.5)/3.5 and forward = rho·backward, so that F/forward +
    2.5·F/backward = 3.5·F/R (the forward + backward time the source measured) while the forward alone, what full
    recomputation repeats, runs at the forward's own rate."""
    x = np.log(np.maximum(np.asarray(s_kernel, dtype=float), 1.0))
    xs = np.log(np.asarray(curve.seq_tokens, dtype=float))
    scale = 1e12 * peak16 / (curve.peak_tflop_per_s * 1e12)
    fwd = np.interp(x, xs, curve.fwd_tflop_per_s) * scale
    bwd = np.interp(x, xs, curve.bwd_tflop_per_s) * scale
    fwd_c = np.interp(x, xs, curve.fwd_causal_tflop_per_s) * scale if causal else fwd
    if curve.fwd_over_bwd_rate is not None:
        rho = np.interp(x, xs, curve.fwd_over_bwd_rate_causal if causal else curve.fwd_over_bwd_rate)
        split_bwd = fwd_c * (1.0 / rho + FLASH_BWD_OVER_FWD) / (1.0 + FLASH_BWD_OVER_FWD)
        return rho * split_bwd, split_bwd
    if not causal:
        return fwd, bwd
    return fwd_c, bwd * fwd_c / fwd
