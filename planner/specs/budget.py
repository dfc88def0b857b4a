"""A budget query as data (a `budget:` section of a budget file, or `planner budget` flags)."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .base import Spec
from .layout import MAX_SEARCH_GPUS
from .run import MAX_BATCH_TOKENS, MAX_SEQ_LEN


class BudgetSpec(Spec):
    """What the budget query is given. At least one of usd, days, gpus, target_loss."""

    usd: Optional[PositiveFloat] = Field(None, le=1e13, description="Money to spend, USD.")
    days: Optional[PositiveFloat] = Field(None, le=36500, description="Wall-clock limit, days.")
    gpus: Optional[PositiveInt] = Field(None, le=MAX_SEARCH_GPUS, description="Fixed GPU count, GPUs.")
    max_gpus: PositiveInt = Field(4096, le=MAX_SEARCH_GPUS, description="Largest GPU count to consider, GPUs.")
    target_loss: Optional[PositiveFloat] = Field(None, le=100, description="Loss to reach instead of a budget, nats/token.")
    tokens_available: Optional[PositiveFloat] = Field(
        None, le=1e18, description="Unique training tokens available, tokens (Muennighoff et al. 2023's repetition law).")
    seq_len: PositiveInt = Field(4096, le=MAX_SEQ_LEN, description="Sequence length, tokens.")
    batch_tokens: PositiveInt = Field(4 * 2**20, le=MAX_BATCH_TOKENS, description="Global batch, tokens (nearby sizes are tried too).")
    law: str = Field("besiroglu2024", description="Scaling law name (`planner scaling laws`).")
    vocab_size: PositiveInt = Field(128256, le=2**24, description="Vocabulary of the model to build, tokens.")

    @model_validator(mode="after")
    def _check(self):
        if all(v is None for v in (self.usd, self.days, self.gpus, self.target_loss)):
            raise ValueError("give at least one of usd, days, gpus, target_loss")
        return self
