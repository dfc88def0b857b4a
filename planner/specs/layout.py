"""How the run is split across GPUs: parallel degrees, sharding, recomputation, kernels."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from .base import Spec

Recompute = Literal["none", "selective", "full"]
FSDPMode = Literal["none", "full", "hybrid"]
#: Training frameworks whose layout rules a plan can ask for (planner/core/checks.py, framework_rules)
Framework = Literal["megatron", "deepspeed", "torchtitan", "fsdp", "ddp"]
#: Pipeline schedules: 1f1b (interleaved when vpp > 1) and zb-h1 (Qi et al. 2024, Zero Bubble Pipeline Parallelism)
PipelineSchedule = Literal["1f1b", "zb-h1"]

#: Bounds of the layout's counts: far beyond any job (the largest published runs use ~10^5 GPUs), small enough that
#: products of them stay exact in int64 and no search allocates without bound.
MAX_GPUS = 2**24
MAX_DEGREE = 2**16
MAX_VPP = 1024
#: Largest GPU count a search over GPU counts (``planner search --max-gpus``, ``planner budget``) enumerates.
MAX_SEARCH_GPUS = 2**17

#: Integer codes the vectorised core uses for the string choices (searches hold them in numpy arrays).
RECOMPUTE_CODE = {"none": 0, "selective": 1, "full": 2}
FSDP_CODE = {"none": 0, "full": 1, "hybrid": 2}
FRAMEWORK_CODE = {None: 0, "megatron": 1, "deepspeed": 2, "torchtitan": 3, "fsdp": 4, "ddp": 5}
SCHEDULE_CODE = {"1f1b": 0, "zb-h1": 1}


def model_parallel_size(tp, pp, cp):
    """GPUs one model replica spans: tp·pp·cp (ints or numpy arrays)."""
    return tp * pp * cp


def data_parallel_of(gpus, tp, pp, cp):
    """Data-parallel replicas of ``gpus`` GPUs: gpus / (tp·pp·cp), whole when it divides (ints or numpy arrays;
    the one pairing rule of gpus and dp, used by LayoutSpec, the layout search and the measured-runs loader)."""
    return gpus // model_parallel_size(tp, pp, cp)


class LayoutSpec(Spec):
    """A parallel layout as Megatron-LM, DeepSpeed and PyTorch FSDP run it.

    Give ``gpus`` (then ``dp`` is what is left after tp·pp·cp) or ``dp`` (then ``gpus`` = dp·tp·pp·cp), or both
    when they agree. Rank order, innermost first: tp, cp, ep (within dp), dp, pp (Megatron's default).
    """

    gpus: Optional[PositiveInt] = Field(None, le=MAX_GPUS, description="GPUs in the job, count.")
    dp: Optional[PositiveInt] = Field(None, le=MAX_GPUS, description="Data-parallel degree (model replicas), count.")
    tp: PositiveInt = Field(1, le=MAX_DEGREE, description="Tensor-parallel degree (Megatron column/row sharding), count.")
    pp: PositiveInt = Field(1, le=MAX_DEGREE, description="Pipeline-parallel degree (stages), count.")
    cp: PositiveInt = Field(1, le=MAX_DEGREE, description="Context-parallel degree (sequence split for attention), count.")
    ep: PositiveInt = Field(1, le=MAX_DEGREE, description="Expert-parallel degree (experts split across dp ranks), count.")
    vpp: PositiveInt = Field(1, le=MAX_VPP, description="Virtual pipeline stages per GPU (interleaved 1F1B), count.")
    zero_stage: int = Field(0, ge=0, le=3, description="ZeRO stage: 1 shards optimizer state, 2 +gradients, 3 +weights.")
    fsdp: FSDPMode = Field(
        "none", description="PyTorch FSDP: full (= ZeRO-3 over dp) or hybrid (ZeRO-3 inside a node, replicated "
        "across nodes). Overrides zero_stage."
    )
    sequence_parallel: bool = Field(False, description="Megatron sequence parallelism with TP (flag).")
    recompute: Recompute = Field("none", description="Activation recomputation: none, selective, full.")
    recompute_fraction: float = Field(
        1.0, gt=0.0, le=1.0,
        description="With full recomputation, the share of layers recomputed (dimensionless): Megatron-LM's "
        "--recompute-method block --recompute-num-layers N (N / layers per stage), torchtitan's selective "
        "per-layer checkpointing of every k-th layer (1/k). The other layers keep all their activations."
    )
    flash_attention: bool = Field(True, description="Fused attention kernel that keeps no s×s scores (flag).")
    attention_kernel: Literal["flash2", "flash3", "triton"] = Field(
        "flash2", description="Which fused attention kernel (when flash_attention): flash2 (FlashAttention-2, Dao 2023; "
        "any GPU), flash3 (Hopper-native FlashAttention-3 / cuDNN fused attention, Shah et al. 2024, as Transformer "
        "Engine and NeMo use on H100) or triton (a Triton fused kernel, as llm-foundry's attn_impl triton). Each is "
        "costed at its measured rate by sequence length where hardware_profiles/kernels/ has its curve."
    )
    offload_optimizer: bool = Field(False, description="Optimizer state lives in CPU memory (ZeRO-Offload) (flag).")
    eager_elementwise: bool = Field(
        False, description="Elementwise ops run eagerly, one PyTorch kernel each, with the fp32 upcasts of "
        "torchtitan's Llama (RMSNorm and RoPE in fp32, unfused SwiGLU, materialised GQA repeat), as without "
        "torch.compile (flag). Off: fused kernels (Megatron, Transformer Engine, torch.compile), each op reading "
        "its inputs and writing its outputs once.")
    pipeline_schedule: PipelineSchedule = Field(
        "1f1b", description="Pipeline schedule with pp > 1: 1f1b (Megatron-LM's; interleaved when vpp > 1) or zb-h1 "
        "(Qi et al. 2024 Table 2: the backward split into input and weight gradients, the weight-gradient GEMMs "
        "deferred into the bubble, a third of 1F1B's bubble at 1F1B's peak memory; non-interleaved, vpp 1).")
    framework: Optional[Framework] = Field(
        None, description="The framework that will run the plan: megatron (Megatron-LM/-Core, NeMo), deepspeed, "
        "torchtitan, fsdp (PyTorch FSDP as llm-foundry/Composer and Accelerate run it, data parallel only) or ddp "
        "(PyTorch DistributedDataParallel with torch.autocast, as Lightning and the Hugging Face Trainer run it "
        "without FSDP or DeepSpeed: data parallel, no sharding; named only, never assumed). Its "
        "layout rules apply to estimates and searches (a search returns only layouts it can run) and its pipeline "
        "sends are costed as it makes them. Unset: the layout must be one some framework runs (the union of their rules).")
    tp_comm_overlap: bool = Field(
        False, description="TP collectives overlapped with GEMMs (Transformer Engine userbuffers, NeMo's "
        "tp_comm_overlap) (flag)."
    )

    @model_validator(mode="after")
    def _check(self):
        model_par = model_parallel_size(self.tp, self.pp, self.cp)
        if self.dp is not None and model_par * self.dp > MAX_GPUS:
            raise ValueError(f"tp({self.tp})·pp({self.pp})·cp({self.cp})·dp({self.dp})={model_par * self.dp} GPUs is "
                             f"more than {MAX_GPUS:,}")
        if self.gpus is not None and self.dp is not None and model_par * self.dp != self.gpus:
            raise ValueError(
                f"tp({self.tp})·pp({self.pp})·cp({self.cp})·dp({self.dp})={model_par * self.dp} ≠ gpus({self.gpus})"
            )
        if self.gpus is not None and self.gpus % model_par:
            raise ValueError(
                f"gpus({self.gpus}) not divisible by tp({self.tp})·pp({self.pp})·cp({self.cp})={model_par}"
            )
        if self.vpp > 1 and self.pp == 1:
            raise ValueError(f"vpp({self.vpp}) > 1 needs pp > 1 (got pp=1)")
        if self.pipeline_schedule == "zb-h1" and self.vpp > 1:
            raise ValueError(f"pipeline_schedule zb-h1 is not interleaved: vpp({self.vpp}) must be 1")
        if self.attention_kernel != "flash2" and not self.flash_attention:
            raise ValueError(f"attention_kernel {self.attention_kernel} needs flash_attention true")
        if self.recompute_fraction < 1.0 and self.recompute != "full":
            raise ValueError(f"recompute_fraction({self.recompute_fraction}) < 1 needs recompute full "
                             f"(got {self.recompute})")
        if self.sequence_parallel and self.tp == 1:
            raise ValueError("sequence_parallel needs tp > 1 (got tp=1)")
        return self

    @property
    def data_parallel(self) -> int:
        """dp, derived from gpus when not given (1 when neither is given)."""
        if self.dp is not None:
            return self.dp
        if self.gpus is not None:
            return data_parallel_of(self.gpus, self.tp, self.pp, self.cp)
        return 1

    @property
    def num_gpus(self) -> int:
        """GPUs in the job."""
        return self.gpus if self.gpus is not None else self.data_parallel * model_parallel_size(self.tp, self.pp, self.cp)

    @property
    def effective_zero_stage(self) -> int:
        """ZeRO stage after FSDP is taken into account (FSDP full/hybrid shard weights: stage 3)."""
        return 3 if self.fsdp != "none" else self.zero_stage
