"""How it is trained: sequence length, batch, token budget, objective, precision, optimizer."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from .base import Spec

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp4"]
#: How low-precision GEMMs are scaled (``planner.core.kernels.RECIPES`` gives each one's casts, scales and sources).
PrecisionRecipe = Literal["bf16", "fp8_delayed", "fp8_current", "fp8_rowwise", "fp8_blockwise", "mxfp8", "nvfp4",
                          "mxfp4"]
StateDtype = Literal["fp32", "bf16"]
#: The precision each recipe runs its GEMMs in.
RECIPE_PRECISION = {"bf16": "bf16", "fp8_delayed": "fp8", "fp8_current": "fp8", "fp8_rowwise": "fp8",
                    "fp8_blockwise": "fp8", "mxfp8": "fp8", "nvfp4": "fp4", "mxfp4": "fp4"}
#: The recipe a precision runs when the run names none: Transformer Engine's default for fp8 (per-tensor delayed
#: scaling, what planner modelled before recipes existed) and NVIDIA's NVFP4 training recipe for fp4.
DEFAULT_RECIPE = {"fp8": "fp8_delayed", "fp4": "nvfp4"}
OptimizerKind = Literal["adamw", "adam", "sgd", "adafactor", "adam8bit"]
ObjectiveKind = Literal["clm", "mlm", "span_corruption"]


#: Bounds of a run (far beyond any published run; they keep products such as tokens x FLOPs per token finite).
MAX_SEQ_LEN = 2**25
MAX_BATCH_SEQS = 2**30
MAX_BATCH_TOKENS = 2**40
MAX_MICRO_BATCH = 2**20
MAX_TRAINING_TOKENS = 1e18


class ObjectiveSpec(Spec):
    """The training objective. Sets how many tokens carry a loss and, for span corruption, the decoder length."""

    kind: ObjectiveKind = Field("clm", description="clm (next token), mlm (BERT), span_corruption (T5).")
    mask_ratio: float = Field(0.15, gt=0, lt=1, description="MLM: fraction of tokens masked (dimensionless).")
    noise_density: float = Field(
        0.15, gt=0, lt=1, description="Span corruption: fraction of input tokens corrupted (dimensionless)."
    )
    mean_span_tokens: float = Field(3.0, ge=1, le=1e6, description="Span corruption: mean corrupted span length, tokens.")


class RunSpec(Spec):
    """One training run."""

    seq_len: PositiveInt = Field(..., le=MAX_SEQ_LEN, description="Sequence length (encoder input length for T5), tokens.")
    decoder_seq_len: Optional[PositiveInt] = Field(
        None, le=MAX_SEQ_LEN, description="Decoder (target) length for encoder_decoder models, tokens. Default: derived from the "
        "span-corruption settings (T5: 512 inputs -> 114 targets), or seq_len."
    )
    global_batch_seqs: Optional[PositiveInt] = Field(None, le=MAX_BATCH_SEQS, description="Global batch, sequences per step.")
    global_batch_tokens: Optional[PositiveInt] = Field(
        None, le=MAX_BATCH_TOKENS, description="Global batch, tokens per step (must be a multiple of seq_len)."
    )
    micro_batch: PositiveInt = Field(1, le=MAX_MICRO_BATCH, description="Micro-batch per GPU (per model replica), sequences.")
    training_tokens: Optional[float] = Field(None, gt=0, le=MAX_TRAINING_TOKENS, description="Tokens to train on in total, tokens.")
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec, description="Training objective.")
    precision: Precision = Field(
        "bf16", description="Compute precision: fp32, tf32, bf16/fp16 (mixed, fp32 master weights), fp8 or fp4 "
        "(mixed: linear-layer GEMMs in it, attention and the output layer in bf16). Default: the recipe's, or bf16."
    )
    precision_recipe: Optional[PrecisionRecipe] = Field(
        None, description="Scaling recipe of the low-precision GEMMs: bf16; fp8_delayed (per-tensor, delayed "
        "scaling: Transformer Engine's default), fp8_current (per-tensor current scaling, NeMo 'FP8-CS'), "
        "fp8_rowwise (per-row scales, torchao 'float8 rowwise'), fp8_blockwise (DeepSeek-V3: 1x128 activation "
        "tiles, 128x128 weight blocks), mxfp8 (OCP MX, 1x32 blocks, Blackwell); nvfp4 (16-element blocks, "
        "Blackwell) or mxfp4 (32-element blocks, Blackwell). None: fp8 runs fp8_delayed without counting its "
        "weight copies (planner's model before recipes), fp4 runs nvfp4."
    )
    master_weights_dtype: StateDtype = Field(
        "fp32", description="Master weights the optimizer updates under mixed precision: fp32 (4 bytes/parameter; "
        "Micikevicius et al. 2018) or bf16 (2)."
    )
    optimizer_moments_dtype: StateDtype = Field(
        "fp32", description="Adam moments / SGD momentum: fp32 (4 bytes each) or bf16 (2 each; DeepSeek-V3 §3.3.3 "
        "tracks both AdamW moments in bf16). adam8bit keeps its 1-byte moments."
    )
    optimizer: OptimizerKind = Field("adamw", description="adam/adamw, sgd (momentum), adafactor, adam8bit.")
    grad_bytes_per_param: Optional[float] = Field(
        None, gt=0, le=64, description="Bytes per gradient element; default 4 for fp32/tf32 and 2 for mixed precision "
        "(Megatron's fp32 main-grad accumulation uses 4)."
    )
    optimizer_state_bytes_per_param: Optional[float] = Field(
        None, ge=0, le=1024, description="Override of optimizer-state bytes per parameter (master copy included)."
    )

    @model_validator(mode="before")
    @classmethod
    def _precision_of_recipe(cls, data):
        """A recipe without a precision sets it (``precision_recipe: mxfp8`` runs fp8)."""
        if isinstance(data, dict) and data.get("precision") is None and data.get("precision_recipe") in RECIPE_PRECISION:
            data = {**data, "precision": RECIPE_PRECISION[data["precision_recipe"]]}
        return data

    @model_validator(mode="after")
    def _check(self):
        r = self.precision_recipe
        if r is not None and RECIPE_PRECISION[r] != self.precision and not (r == "bf16" and self.precision == "fp16"):
            raise ValueError(f"run.precision_recipe({r}) runs {RECIPE_PRECISION[r]} GEMMs but run.precision is "
                             f"{self.precision}")
        if self.optimizer_state_bytes_per_param is not None and (
                self.master_weights_dtype != "fp32" or self.optimizer_moments_dtype != "fp32"):
            raise ValueError(f"run.optimizer_state_bytes_per_param({self.optimizer_state_bytes_per_param:g}) with "
                             f"run.master_weights_dtype({self.master_weights_dtype}) / run.optimizer_moments_dtype"
                             f"({self.optimizer_moments_dtype}): give the bytes or the dtypes, not both")
        if not self.mixed_precision and self.master_weights_dtype != "fp32":
            raise ValueError(f"run.master_weights_dtype({self.master_weights_dtype}) with run.precision "
                             f"{self.precision}: {self.precision} training keeps no separate master weights")
        if self.global_batch_seqs is not None and self.global_batch_tokens is not None:
            if self.global_batch_seqs * self.seq_len != self.global_batch_tokens:
                raise ValueError(
                    f"global_batch_seqs({self.global_batch_seqs})·seq_len({self.seq_len})="
                    f"{self.global_batch_seqs * self.seq_len} ≠ global_batch_tokens({self.global_batch_tokens})"
                )
        if self.global_batch_seqs is not None and self.global_batch_seqs * self.seq_len > MAX_BATCH_TOKENS:
            raise ValueError(f"global_batch_seqs({self.global_batch_seqs})·seq_len({self.seq_len}) is more than "
                             f"{MAX_BATCH_TOKENS:,} tokens per step")
        if self.global_batch_tokens is not None and self.global_batch_tokens % self.seq_len:
            raise ValueError(
                f"global_batch_tokens({self.global_batch_tokens}) is not a multiple of seq_len({self.seq_len})"
            )
        return self

    @property
    def batch_seqs(self) -> Optional[int]:
        """Global batch in sequences, or None when the run does not give one."""
        if self.global_batch_seqs is not None:
            return self.global_batch_seqs
        if self.global_batch_tokens is not None:
            return self.global_batch_tokens // self.seq_len
        return None

    @property
    def mixed_precision(self) -> bool:
        """Low-precision compute with fp32 master weights."""
        return self.precision in ("bf16", "fp16", "fp8", "fp4")

    @property
    def recipe(self) -> Optional[str]:
        """The scaling recipe the low-precision GEMMs run (named, or the precision's default); None for
        fp32/tf32/bf16/fp16 runs."""
        if self.precision_recipe is not None and self.precision_recipe != "bf16":
            return self.precision_recipe
        return DEFAULT_RECIPE.get(self.precision)
