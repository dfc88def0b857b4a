"""On what it runs: accelerator, node, network, price and power.

Hardware numbers live only in ``hardware_profiles/*.yaml``; every number there is a :class:`Sourced` value that
carries its citation. SI units throughout: bytes, bytes/s, FLOP/s, seconds, watts, US dollars.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from .base import Spec

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp4"]
USER_SOURCE = "user-supplied"


class Sourced(Spec):
    """A number with the citation it comes from. The unit is the one in the field name that holds it."""

    value: float = Field(..., ge=-1e30, le=1e30,
                         description="The number, in the unit named by the field that holds it.")
    source: str = Field(USER_SOURCE, description="Citation: datasheet, paper and table, or measurement.")
    note: Optional[str] = Field(None, description="What the number leaves out or assumes.")


class AcceleratorSpec(Spec):
    """One accelerator (GPU) as the time and memory models see it."""

    name: str = Field(..., description="Product name, e.g. 'NVIDIA H100 SXM5 80GB'.")
    peak_flop_per_s: dict[Dtype, Sourced] = Field(
        ..., description="Dense (not sparse) peak tensor throughput per dtype, FLOP/s."
    )
    hbm_bytes: Sourced = Field(..., description="Device memory capacity, bytes (vendor GB are 1e9 bytes).")
    hbm_bandwidth_bytes_per_s: Sourced = Field(..., description="Peak device-memory bandwidth, bytes/s.")
    tdp_w: Sourced = Field(..., description="Board power limit (TDP/TBP), watts.")
    memory_overhead_bytes: Sourced = Field(
        ..., description="Device memory not available to tensors: CUDA context, NCCL buffers, allocator "
        "fragmentation reserve, bytes."
    )

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; raises ValueError naming the dtypes the profile has."""
        if dtype not in self.peak_flop_per_s:
            from ..errors import SpecError

            raise SpecError(
                f"accelerator {self.name!r} has no peak for dtype {dtype!r} (has: {', '.join(self.peak_flop_per_s)})"
            )
        return self.peak_flop_per_s[dtype].value


class NodeSpec(Spec):
    """A server: GPUs and the link between them."""

    gpus_per_node: Sourced = Field(..., description="GPUs in one node, count.")
    intra_node_bandwidth_bytes_per_s: Sourced = Field(
        ..., description="Unidirectional GPU-to-GPU bandwidth inside a node per GPU (NVLink/xGMI), bytes/s."
    )
    intra_node_latency_s: Sourced = Field(..., description="Small-message collective latency inside a node, s.")


class NetworkSpec(Spec):
    """The fabric between nodes."""

    inter_node_bandwidth_bytes_per_s: Sourced = Field(
        ..., description="Unidirectional network bandwidth per GPU between nodes (IB/RoCE/EFA), bytes/s."
    )
    inter_node_latency_s: Sourced = Field(..., description="Small-message collective latency across nodes, s.")
    oversubscription_ratio: Optional[Sourced] = Field(
        None, description="Host-facing over spine bandwidth of the fabric (2.0 = 2:1 oversubscribed): traffic "
        "between nodes gets 1/ratio of the NIC bandwidth; 1 (or absent) = non-blocking, dimensionless.")

    @model_validator(mode="after")
    def _check(self):
        r = self.oversubscription_ratio
        if r is not None and not 1.0 <= r.value <= 64.0:
            raise ValueError(f"network.oversubscription_ratio must be between 1 and 64, got {r.value}")
        return self


class AttentionKernelCurve(Spec):
    """Measured throughput of one fused attention kernel by sequence length (``hardware_profiles/kernels/``)."""

    kernel: str = Field("", description="The kernel and version measured.")
    head_dim: int = Field(128, ge=1, le=1024, description="Head dimension of the measurement.")
    peak_tflop_per_s: float = Field(..., gt=0, le=1e5, description="Dense bf16 peak of the GPU measured, TFLOP/s "
                                    "(a profile with another peak, e.g. power-capped, scales the curve by its own).")
    seq_tokens: list[int] = Field(..., min_length=2, description="Sequence lengths measured, ascending, tokens.")
    fwd_tflop_per_s: list[float] = Field(..., description="Forward without mask, TFLOP/s at each length.")
    fwd_causal_tflop_per_s: list[float] = Field(..., description="Forward with a causal mask, TFLOP/s (FLOPs "
                                                "halved for the mask, as the kernel executes them).")
    bwd_tflop_per_s: list[float] = Field(..., description="Backward without mask, TFLOP/s (2.5 x forward FLOPs).")
    source: str = Field(..., description="Paper, figure and setup the numbers were read from.")
    note: Optional[str] = Field(None, description="What the numbers leave out.")
    fwd_over_bwd_rate: Optional[list[float]] = Field(
        None, description="Where the curve's rates are combined forward + backward rates (a source that measured only "
        "the training step's attention): the forward rate over the backward rate at each length, without mask, "
        "from a measurement of the passes apart; the time model splits the combined rate with it, keeping the "
        "forward + backward time. None: fwd/bwd are per-pass rates.")
    fwd_over_bwd_rate_causal: Optional[list[float]] = Field(None, description="The same with a causal mask.")
    fwd_over_bwd_source: Optional[str] = Field(None, description="Where the forward/backward ratios were measured.")

    @model_validator(mode="after")
    def _check(self):
        n = len(self.seq_tokens)
        if any(b <= a for a, b in zip(self.seq_tokens, self.seq_tokens[1:])) or self.seq_tokens[0] < 1:
            raise ValueError(f"seq_tokens must be positive and ascending, got {self.seq_tokens}")
        for key in ("fwd_tflop_per_s", "fwd_causal_tflop_per_s", "bwd_tflop_per_s"):
            v = getattr(self, key)
            if len(v) != n or any(not (0 < x < 1e5) for x in v):
                raise ValueError(f"{key} must hold {n} positive TFLOP/s values (one per seq_tokens), got {v}")
        ratios = (self.fwd_over_bwd_rate, self.fwd_over_bwd_rate_causal, self.fwd_over_bwd_source)
        if any(r is not None for r in ratios):
            if any(r is None for r in ratios):
                raise ValueError("fwd_over_bwd_rate, fwd_over_bwd_rate_causal and fwd_over_bwd_source go together")
            if self.fwd_tflop_per_s != self.bwd_tflop_per_s:
                raise ValueError("fwd_over_bwd_rate splits a combined forward + backward rate: fwd_tflop_per_s must "
                                 "equal bwd_tflop_per_s (the combined rate), got different lists")
            for key in ("fwd_over_bwd_rate", "fwd_over_bwd_rate_causal"):
                v = getattr(self, key)
                if len(v) != n or any(not (0.25 <= x <= 4.0) for x in v):
                    raise ValueError(f"{key} must hold {n} ratios in 0.25..4 (one per seq_tokens), got {v}")
        return self


class AccuracySpec(Spec):
    """How well the time model predicts runs on this GPU generation, cross-validated (``planner/data/accuracy.yaml``,
    generated by ``benchmarks/cross_validate.py``), and the region the validation covers."""

    p10_signed_pct_error: float = Field(..., ge=-100, le=1000, description="10th percentile of held-out predicted/"
                                        "measured tokens/s - 1, percent.")
    p90_signed_pct_error: float = Field(..., ge=-100, le=1000, description="90th percentile of the same, percent.")
    n: int = Field(..., ge=0, description="Held-out runs behind the band, count.")
    basis: str = Field(..., description="Which cross-validation the band comes from.")
    borrowed: bool = Field(False, description="The generation has no measured runs: its calibration and band are "
                           "borrowed from another generation.")
    max_gpus: Optional[int] = Field(None, description="Largest GPU count of a validated run, count.")
    min_seq_len: Optional[int] = Field(None, description="Shortest sequence of a validated run, tokens.")
    max_seq_len: Optional[int] = Field(None, description="Longest sequence of a validated run, tokens.")
    record_mfu: Optional[float] = Field(None, description="Best MFU any validated run measured (planner's "
                                        "convention, against the peak of the run's precision), fraction.")
    record_mfu_1024_gpus: Optional[float] = Field(None, description="The same among runs on 1,024 or more GPUs.")
    max_full_shard_gpus: Optional[int] = Field(
        None, ge=0, description="Largest ZeRO-3/FSDP shard group of a run predicted within 30% held out, GPUs "
        "(0: none; None: not recorded).")


class HardwareSpec(Spec):
    """A hardware profile: accelerator + node + network, plus price and efficiency parameters."""

    name: str = Field(..., description="Profile key, e.g. 'h100-sxm'.")
    description: str = Field("", description="One line for listings.")
    accelerator: AcceleratorSpec
    node: NodeSpec
    network: NetworkSpec
    price_usd_per_gpu_hour: Optional[Sourced] = Field(
        None, description="Default price of one GPU for one hour, USD (dated in its source)."
    )
    efficiency: dict[str, Sourced] = Field(
        default_factory=dict,
        description="Fitted or measured efficiency parameters the time model reads (dimensionless or as named).",
    )
    attention_kernels: dict[str, AttentionKernelCurve] = Field(
        default_factory=dict, description="Measured fused-attention throughput by sequence length, per kernel "
        "(flash2, flash3, triton), from ``hardware_profiles/kernels/<generation>.yaml``; without one the time model "
        "uses the attention fraction (prior or fitted).")
    cluster: Optional[str] = Field(
        None, description="The cluster profile (hardware_profiles/clusters/<name>.yaml) whose node and network "
        "replaced the GPU profile's: a DGX SuperPOD, a cloud instance type, a RoCE fabric.")
    memory_headroom_fraction: float = Field(
        0.03, ge=0.0, le=0.5, description="Share of device memory a plan keeps free (allocator spikes, a larger "
        "batch of a variable-length step): a layout fits when its memory is at most capacity x (1 - headroom), "
        "fraction. 0 reproduces runs that filled the GPU to the last byte.")
    accuracy: Optional[AccuracySpec] = Field(
        None, description="Cross-validated error band and validated region of the generation (merged by the registry "
        "from planner/data/accuracy.yaml).")
    aliases: list[str] = Field(default_factory=list, description="Other names this profile answers to.")
    generation: Optional[str] = Field(
        None, description="Architecture generation (volta, ampere, hopper, blackwell, cdna3). The fitted time-model "
        "parameters of ``hardware_profiles/calibration/<generation>.yaml`` apply to every profile of it."
    )

    @model_validator(mode="after")
    def _check(self):
        g = self.node.gpus_per_node.value
        if g < 1 or g != int(g) or g > 4096:
            raise ValueError(f"node.gpus_per_node must be a positive integer of at most 4096, got {g}")
        for key, v in (("node.intra_node_bandwidth_bytes_per_s", self.node.intra_node_bandwidth_bytes_per_s.value),
                       ("network.inter_node_bandwidth_bytes_per_s",
                        self.network.inter_node_bandwidth_bytes_per_s.value)):
            if v <= 0:
                raise ValueError(f"{key} must be > 0, got {v}")
        for key, v in (("node.intra_node_latency_s", self.node.intra_node_latency_s.value),
                       ("network.inter_node_latency_s", self.network.inter_node_latency_s.value),
                       ("accelerator.memory_overhead_bytes", self.accelerator.memory_overhead_bytes.value)):
            if v < 0:
                raise ValueError(f"{key} must be >= 0, got {v}")
        if self.price_usd_per_gpu_hour is not None and not 0 <= self.price_usd_per_gpu_hour.value <= 1e6:
            raise ValueError(f"price_usd_per_gpu_hour must be between 0 and 1e6, got "
                             f"{self.price_usd_per_gpu_hour.value}")
        for key in ("hbm_bytes", "hbm_bandwidth_bytes_per_s", "tdp_w"):
            v = getattr(self.accelerator, key).value
            if v <= 0:
                raise ValueError(f"accelerator.{key} must be > 0, got {v}")
        for dt, q in self.accelerator.peak_flop_per_s.items():
            if q.value <= 0:
                raise ValueError(f"accelerator.peak_flop_per_s.{dt} must be > 0, got {q.value}")
        # physical floors (far below any accelerator): times divide by these, so a denormal would make them inf
        for key, v, lo in [(f"accelerator.peak_flop_per_s.{dt}", q.value, 1e9)
                           for dt, q in self.accelerator.peak_flop_per_s.items()] + [
                ("accelerator.hbm_bytes", self.accelerator.hbm_bytes.value, 2.0**20),
                ("accelerator.hbm_bandwidth_bytes_per_s", self.accelerator.hbm_bandwidth_bytes_per_s.value, 1e6),
                ("accelerator.tdp_w", self.accelerator.tdp_w.value, 1.0),
                ("node.intra_node_bandwidth_bytes_per_s", self.node.intra_node_bandwidth_bytes_per_s.value, 1e3),
                ("network.inter_node_bandwidth_bytes_per_s",
                 self.network.inter_node_bandwidth_bytes_per_s.value, 1e3)]:
            if v < lo:
                raise ValueError(f"{key} must be >= {lo:g}, got {v}")
        if self.accelerator.memory_overhead_bytes.value >= self.accelerator.hbm_bytes.value:
            raise ValueError(f"accelerator.memory_overhead_bytes({self.accelerator.memory_overhead_bytes.value:g}) "
                             f"must be below hbm_bytes({self.accelerator.hbm_bytes.value:g})")
        for k, q in self.efficiency.items():  # fractions and rates the time model divides by
            lo = 1e-6 if ("fraction" in k or k.endswith("_per_s") or k == "gemm_half_dim") else 0.0
            if not lo <= q.value <= (10.0 if "fraction" in k else 1e30):
                raise ValueError(f"efficiency.{k} must be between {lo:g} and {10.0 if 'fraction' in k else 1e30:g}, "
                                 f"got {q.value}")
        return self

    @property
    def gpus_per_node(self) -> int:
        """GPUs in one node, count."""
        return int(self.node.gpus_per_node.value)
