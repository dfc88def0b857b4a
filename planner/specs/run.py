"""How it is trained: sequence length, batch, token budget, objective, precision, optimizer."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from .base import Spec

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8"]
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
        "bf16", description="Compute precision: fp32, tf32, bf16/fp16 (mixed, fp32 master weights), fp8 (mixed)."
    )
    optimizer: OptimizerKind = Field("adamw", description="adam/adamw, sgd (momentum), adafactor, adam8bit.")
    grad_bytes_per_param: Optional[float] = Field(
        None, gt=0, le=64, description="Bytes per gradient element; default 4 for fp32/tf32 and 2 for mixed precision "
        "(Megatron's fp32 main-grad accumulation uses 4)."
    )
    optimizer_state_bytes_per_param: Optional[float] = Field(
        None, ge=0, le=1024, description="Override of optimizer-state bytes per parameter (master copy included)."
    )

    @model_validator(mode="after")
    def _check(self):
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
        return self.precision in ("bf16", "fp16", "fp8")
