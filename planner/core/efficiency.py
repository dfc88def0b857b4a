"""The efficiency parameters of the time model (``eff``): what fraction of a datasheet peak each kind of work gets.

Measured numbers (the maximum achievable matmul rate, MAMF, and the NVLink all-reduce bus bandwidth) come from the
hardware profile; the others are fitted once per GPU generation on published runs
(``hardware_profiles/calibration/*.yaml``, ``planner fit-time``) and merged into the profile by the registry. The
defaults below are priors used only when a profile has neither. See docs/DESIGN.md, "The time model".
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..specs.hardware import HardwareSpec


@dataclass(frozen=True)
class TimeParams:
    """Efficiency parameters of the time model (dimensionless unless the name says otherwise)."""

    matmul_fraction: float = 0.80  #: achievable / peak for large GEMMs in the run's dtype (MAMF, measured)
    matmul_fraction_bf16: float = 0.80  #: the same for bf16 (fp8 runs keep attention and logits in bf16)
    #: GEMM dimension at which that dimension alone halves efficiency. Fitted end-to-end per generation; its
    #: microbenchmark prior (a measured GEMM-by-shape table, planner/calibrate/priors.py) and how far the fit is
    #: from it are written beside the fit (hardware_profiles/calibration/), so the fitted value's share of non-GEMM
    #: time is stated, not hidden. The default is a guess
    gemm_half_dim: float = 256.0
    #: FlashAttention-2 (and Triton) achieved / peak, forward and backward, on generations without a measured kernel
    #: curve (hardware_profiles/kernels/ replaces it on Ampere and Hopper). Prior 0.45: FlashAttention-2 on H100
    #: reaches 0.34 of peak forward + backward and on A100 0.61-0.65 (Dao 2023 Fig. 4, 7); fitted only where runs
    #: use a kernel no curve covers
    attention_fraction: float = 0.45
    attention_fraction_flash3: float = 0.60  #: FlashAttention-3/cuDNN where no curve is measured (prior: Shah et
    #: al. 2024 report 75% of peak forward in bf16 and a slower backward)
    #: achievable / peak HBM bandwidth of streaming kernels (measured by `planner bench` where a profile has a
    #: bench; prior 0.90: STREAM-class copies on HBM2e/HBM3 GPUs reach about 90% of the datasheet figure; unverified
    #: in the shipped data, which lists measured HBM bandwidth as not collected)
    hbm_fraction: float = 0.90
    #: share of the per-op elementwise byte count (norms, activations, residuals, rotary, dropout: each op reading
    #: its inputs and writing its outputs once, as Megatron's fused LayerNorm, bias-GeLU, bias-dropout-add and RoPE
    #: kernels do) a framework moves; below 1 only with cross-op fusion. Not fitted: end-to-end runs cannot separate
    #: it from the GEMM shape efficiency (fitted jointly it ran to its lower bound, 0.2, once the eager torchtitan
    #: runs were costed from their own op count). Eager frameworks: time.eager_elementwise_bytes, counted per op
    elementwise_traffic_fraction: float = 1.0
    nvlink_busbw_fraction: float = 0.78  #: all-reduce busbw / unidirectional NVLink bandwidth (measured)
    #: busbw / NIC bandwidth of the node's GPUs across nodes: 0.95, measured by the 4-node all-reduce of
    #: planner/data/microbench.yaml (8 x B200, 8 x 50 GB/s EFA per node: 381.8 GB/s busbw at 16 GiB)
    network_busbw_fraction: float = 0.95
    #: how much slower compute kernels run while a collective runs beside them (the price of hidden communication;
    #: time.overlap_s). Measured, not fitted: 0.189, the mean compute slowdown Lee et al. 2025 (arXiv:2507.03114,
    #: abstract) measured overlapping GPT and Llama layers' compute with their collectives on 4 x A100, H100, MI250
    #: and MI210 (40.0% at most). Profiles of other GPUs borrow it
    overlap_compute_slowdown: float = 0.189

    #: which fields a calibration fits (the others are measured or datasheet numbers)
    FITTED = ("gemm_half_dim", "attention_fraction", "attention_fraction_flash3")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def replace(self, **kw) -> "TimeParams":
        return TimeParams(**{**{n: getattr(self, n) for n in self.names()}, **kw})


def time_params(hw: HardwareSpec, precision: str) -> TimeParams:
    """The profile's efficiency parameters (calibration merged in by the registry), defaults for missing ones."""
    eff = {k: q.value for k, q in hw.efficiency.items()}
    kw = {n: eff[n] for n in TimeParams.names() if n in eff}
    dtype = "fp8" if precision == "fp8" else ("bf16" if precision in ("bf16", "fp16") else precision)
    mm_key = f"matmul_max_achievable_fraction_{dtype}"
    bf16_key = "matmul_max_achievable_fraction_bf16"
    if bf16_key in eff:
        kw["matmul_fraction_bf16"] = eff[bf16_key]
    if mm_key in eff:
        kw["matmul_fraction"] = eff[mm_key]
    elif bf16_key in eff:
        kw["matmul_fraction"] = eff[bf16_key]
    return TimeParams(**kw)


def peak_flop_per_s(hw: HardwareSpec, dtype: str) -> float:
    """Dense peak for ``dtype``; bf16 falls back to fp16 on chips without bf16 (V100), which run such jobs in fp16."""
    table = hw.accelerator.peak_flop_per_s
    if dtype not in table and dtype == "bf16" and "fp16" in table:
        dtype = "fp16"
    return hw.accelerator.peak(dtype)


def run_peak_flop_per_s(hw: HardwareSpec, precision: str) -> float:
    """The dense peak of the precision the GEMMs run in: fp8/fp4 runs against their own peak, mixed precision
    against bf16 (what ``mfu_at_run_precision`` and the published-record comparison divide by)."""
    return peak_flop_per_s(hw, precision if precision in ("fp8", "fp4") else mfu_dtype(precision))


def mfu_dtype(precision: str) -> str:
    """The peak MFU is quoted against: bf16 for mixed precision, fp8 runs included (NeMo, Megatron convention)."""
    return {"fp32": "fp32", "tf32": "tf32"}.get(precision, "bf16")
