"""Scaling laws: predicted loss, compute-optimal allocation, a parameter count turned into a model, and fits.

Everything here is a pure function over numbers that broadcast (docs/DESIGN.md §1), except the fit, which is an
optimisation, and :func:`architecture_for_params`, which returns one :class:`~planner.specs.model.ModelSpec`.

Laws are data (frozen dataclasses) carrying their constants, their source, the units of N and D and the range of
N and D they were fitted on. Units throughout: N in parameters, D in tokens (of that law's tokenizer), C in FLOPs,
loss in nats per token of that law's evaluation data. Losses of different laws are *not* comparable with each
other (different data, tokenizers, evaluation sets); tokens-per-parameter ratios and exponents are.

Presets (:data:`LAWS`):

* ``besiroglu2024`` (default) — Besiroglu, Erdil, Barnett & You 2024, "Chinchilla Scaling: A replication attempt"
  (arXiv:2404.10102): the Chinchilla form refitted on the data of Hoffmann et al.'s Figure 4 (Approach 3)
  read off the published plot. E 1.8172, A 482.01, B 2085.43, α 0.3478, β 0.3658. It implies
  ≈20 tokens per parameter at the optimum, as Chinchilla was trained (70B on 1.4T).
* ``hoffmann2022`` — Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (arXiv:2203.15556),
  Eq. 2 and §3.3 (Approach 3): E 1.69, A 406.4, B 410.7, α 0.34, β 0.28. Fitted on >400 runs of 70M–16B
  parameters on 5B–500B tokens of MassiveText. Taken literally these constants put far more tokens per parameter
  at the optimum than 20 (≈90 at Gopher's 5.76e23 FLOPs, and growing with C because α > β) — the inconsistency
  Besiroglu et al. 2024 report. The output says so rather than hiding it.
* ``kaplan2020`` — Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv:2001.08361), Eq. 1.5 /
  Eq. 4.1 with the L(N, D) fit of Table 2: L = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, α_N 0.076, α_D 0.103,
  N_c 6.4e13, D_c 1.8e13. N counts *non-embedding* parameters; loss on WebText2 with GPT-2's BPE; models of
  768 to 1.5e9 non-embedding parameters on 22M to 23B tokens. Fitted with early stopping, not at fixed compute.
* ``muennighoff2023`` — Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (arXiv:2305.16264),
  with the formula and constants of the authors' repository (huggingface/datablations, README "Parametric Fit"): the
  Chinchilla form fitted on C4 with GPT-2's tokenizer (E 1.869, A 520.6, B 1487.9, α = β 0.3527) where D is
  replaced by the *effective* data D' = U_D + U_D·R*_D·(1 − exp(−R_D/R*_D)), R_D = D/U_D − 1 repetitions of U_D
  unique tokens, R*_D = 15.387756 (a repeated token's value decays with e-folding ≈15.4 epochs), and N by the
  effective parameters N' = U_N + U_N·R*_N·(1 − exp(−R_N/R*_N)), U_N = min(N, N_opt(U_D)), R*_N = 5.309743.
  Runs up to 9B parameters and 900B tokens.

Compute-optimal under C = 6·N·D (Kaplan 2020 §2.1; Hoffmann 2022 Eq. 4, Appendix D.2) has a closed form for the
Chinchilla form: N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b, a = β/(α+β), b = α/(α+β), G = (αA/(βB))^(1/(α+β)).
Other laws are minimised numerically along the isoFLOP line.

Inference-aware sizing (Sardana & Frankle 2023, "Beyond Chinchilla-Optimal", arXiv:2401.00448): for a target
loss ℓ and an expected D_inf tokens of inference, minimise 6·N·D_tr + 2·N·D_inf subject to L(N, D_tr) = ℓ.

Perplexity = exp(loss in nats).

Left out: the compute-optimal *hyper-parameters* (batch size, learning rate) laws; the FLOP count beyond 6ND
(attention FLOPs, which Hoffmann include in their C) — 6ND is the convention these closed forms are written in;
MoE laws; downstream-task laws.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import SpecError
from ..specs.model import ModelSpec

ArrayLike = Union[float, np.ndarray, Sequence[float]]

#: FLOPs per parameter per training token (forward 2 + backward 4; Kaplan et al. 2020 §2.1).
TRAIN_FLOPS_PER_PARAM_TOKEN = 6.0
#: FLOPs per parameter per inference token (forward only; Sardana & Frankle 2023 §2).
INFER_FLOPS_PER_PARAM_TOKEN = 2.0
#: A query more than this factor outside a law's fitted range of N or D warns (one order of magnitude).
FAR_OUTSIDE_FACTOR = 10.0


class ExtrapolationWarning(UserWarning):
    """A query lies far outside the range of N or D a law was fitted on."""


def perplexity(loss: ArrayLike) -> np.ndarray:
    """Perplexity of a loss in nats per token: exp(loss)."""
    return np.exp(np.asarray(loss, dtype=float))


def as_float_array(x) -> np.ndarray:
    """``x`` as a float array (scalars as 0-d arrays)."""
    return np.asarray(x, dtype=float)


def _out(x):
    """A 0-d array as a Python float; arrays unchanged."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def check_positive(**values) -> None:
    """SpecError naming the first of ``values`` that is not positive and finite everywhere."""
    for name, v in values.items():
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise SpecError(f"{name} must be positive and finite (got {v!r})")


# ---------------------------------------------------------------------------------------------------------------
# Laws as data
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _LawBase:
    """Fields every law carries: where it comes from and where it holds. All fields are keyword-only."""

    name: str = "custom"
    source: str = "user-supplied"
    n_range: tuple[float, float] = (0.0, math.inf)  #: parameters (of ``n_kind``) of the fitted runs, min..max
    d_range: tuple[float, float] = (0.0, math.inf)  #: training tokens of the fitted runs, min..max
    data: str = "unspecified"  #: evaluation data and tokenizer the loss is measured on
    n_kind: str = "total"  #: "total" or "non_embedding" parameters

    def range_factors(self, n: ArrayLike, d: ArrayLike) -> dict[str, float]:
        """How far (a factor >= 1; 1 = inside) the most extreme query lies outside the fitted N and D ranges."""
        out = {}
        for key, x, (lo, hi) in (("params", n, self.n_range), ("tokens", d, self.d_range)):
            a = as_float_array(x)
            f = max(float(np.max(lo / a)), float(np.max(a / hi)), 1.0) if a.size else 1.0
            out[key] = f
        return out

    def range_warnings(self, n: ArrayLike, d: ArrayLike, factor: float = FAR_OUTSIDE_FACTOR) -> list[str]:
        """One message per axis where a query lies more than ``factor`` times outside the fitted range."""
        msgs = []
        for key, x, (lo, hi) in (("params", n, self.n_range), ("tokens", d, self.d_range)):
            a = as_float_array(x)
            if not a.size:
                continue
            big, small = float(np.max(a)), float(np.min(a))
            what = "non-embedding parameters" if key == "params" and self.n_kind == "non_embedding" else key
            if big > hi * factor:
                msgs.append(f"{self.name}: {what} {big:.3g} is {big / hi:.0f}x above the largest fitted "
                            f"({hi:.3g}); the prediction is an extrapolation")
            if small < lo / factor:
                msgs.append(f"{self.name}: {what} {small:.3g} is {lo / small:.0f}x below the smallest fitted "
                            f"({lo:.3g}); the prediction is an extrapolation")
        return msgs

    def warn_range(self, n: ArrayLike, d: ArrayLike, factor: float = FAR_OUTSIDE_FACTOR) -> None:
        for msg in self.range_warnings(n, d, factor):
            warnings.warn(msg, ExtrapolationWarning, stacklevel=3)

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class ChinchillaLaw(_LawBase):
    """L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022 Eq. 2). N total parameters, D tokens, L nats/token."""

    E: float  #: irreducible loss, nats/token
    A: float  #: parameter-term coefficient, nats/token · parameters^α
    B: float  #: data-term coefficient, nats/token · tokens^β
    alpha: float  #: parameter exponent (dimensionless)
    beta: float  #: data exponent (dimensionless)

    def __post_init__(self):
        check_positive(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    # closed-form pieces of Hoffmann Eq. 4
    @property
    def a(self) -> float:
        """Exponent of N_opt in C: β/(α+β)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: α/(α+β)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """G = (αA/(βB))^(1/(α+β)), so N_opt = G·(C/6)^a and D_opt = (C/6)^b / G."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def loss(self, n: ArrayLike, d: ArrayLike, unique_tokens: Optional[ArrayLike] = None) -> np.ndarray:
        """Predicted loss, nats/token. ``unique_tokens`` is not part of this law (see :class:`DataConstrainedLaw`)."""
        if unique_tokens is not None:
            return with_repetition(self).loss(n, d, unique_tokens)
        return self.E + self.A / as_float_array(n) ** self.alpha + self.B / as_float_array(d) ** self.beta

    def optimal_params(self, flops: ArrayLike) -> np.ndarray:
        """N_opt(C) under C = 6ND (Hoffmann Eq. 4), parameters."""
        return self.G * (as_float_array(flops) / TRAIN_FLOPS_PER_PARAM_TOKEN) ** self.a

    def optimal_tokens(self, flops: ArrayLike) -> np.ndarray:
        """D_opt(C) under C = 6ND, tokens."""
        return (as_float_array(flops) / TRAIN_FLOPS_PER_PARAM_TOKEN) ** self.b / self.G

    def _k(self) -> float:
        # At the optimum A/N^α + B/D^β = K·(C/6)^(-αβ/(α+β)), since α·a = β·b = αβ/(α+β).
        return self.A * self.G ** (-self.alpha) + self.B * self.G ** self.beta

    def optimal_loss(self, flops: ArrayLike) -> np.ndarray:
        """Loss at the compute-optimal point for C FLOPs, nats/token."""
        g = self.alpha * self.beta / (self.alpha + self.beta)
        return self.E + self._k() * (as_float_array(flops) / TRAIN_FLOPS_PER_PARAM_TOKEN) ** (-g)

    def flops_for_loss(self, loss: ArrayLike) -> np.ndarray:
        """The least C (FLOPs, at the optimal split) that reaches ``loss``; inf where loss <= E."""
        g = self.alpha * self.beta / (self.alpha + self.beta)
        excess = as_float_array(loss) - self.E
        with np.errstate(divide="ignore", invalid="ignore"):
            c = TRAIN_FLOPS_PER_PARAM_TOKEN * (excess / self._k()) ** (-1.0 / g)
        return np.where(excess > 0, c, np.inf)


@dataclass(frozen=True, kw_only=True)
class KaplanLaw(_LawBase):
    """L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020 Eq. 1.5). N non-embedding parameters."""

    N_c: float  #: non-embedding parameters
    D_c: float  #: tokens
    alpha_N: float  #: dimensionless
    alpha_D: float  #: dimensionless
    n_kind: str = "non_embedding"

    def __post_init__(self):
        check_positive(N_c=self.N_c, D_c=self.D_c, alpha_N=self.alpha_N, alpha_D=self.alpha_D)

    def loss(self, n: ArrayLike, d: ArrayLike, unique_tokens: Optional[ArrayLike] = None) -> np.ndarray:
        if unique_tokens is not None:
            raise SpecError(f"{self.name} has no repeated-data term; use a Chinchilla-form law with unique tokens")
        return ((self.N_c / as_float_array(n)) ** (self.alpha_N / self.alpha_D) + self.D_c / as_float_array(d)) ** self.alpha_D


@dataclass(frozen=True, kw_only=True)
class DataConstrainedLaw(_LawBase):
    """Muennighoff et al. 2023: a Chinchilla-form ``base`` evaluated at effective parameters and data."""

    base: Optional[ChinchillaLaw] = None
    r_n_star: float = 5.309743  #: e-folding of the value of excess parameters, in multiples of U_N
    r_d_star: float = 15.387756  #: e-folding of the value of repeated tokens, in epochs

    def __post_init__(self):
        if self.base is None:
            raise SpecError("DataConstrainedLaw needs a base ChinchillaLaw")
        check_positive(r_n_star=self.r_n_star, r_d_star=self.r_d_star)

    def effective(self, n: ArrayLike, d: ArrayLike, unique_tokens: Optional[ArrayLike] = None):
        """(N', D', epochs): effective parameters and tokens, and D/U_D. U_D = min(unique, D)."""
        n, d = as_float_array(n), as_float_array(d)
        u = d if unique_tokens is None else np.minimum(as_float_array(unique_tokens), d)
        r_d = np.maximum(d / u - 1.0, 0.0)
        d_eff = u + u * self.r_d_star * (1.0 - np.exp(-r_d / self.r_d_star))
        # U_N: the compute-optimal size for U_D unique tokens (the README's D_to_N): D_opt(C) = U_D solved for C.
        bl = self.base
        u_n = np.minimum(n, bl.G * (u * bl.G) ** (bl.beta / bl.alpha))
        r_n = np.maximum(n / u_n - 1.0, 0.0)
        n_eff = u_n + u_n * self.r_n_star * (1.0 - np.exp(-r_n / self.r_n_star))
        return n_eff, d_eff, d / u

    def loss(self, n: ArrayLike, d: ArrayLike, unique_tokens: Optional[ArrayLike] = None) -> np.ndarray:
        n_eff, d_eff, _ = self.effective(n, d, unique_tokens)
        return self.base.loss(n_eff, d_eff)


Law = Union[ChinchillaLaw, KaplanLaw, DataConstrainedLaw]

_HOFFMANN_RANGE = dict(n_range=(7.0e7, 1.6e10), d_range=(5.0e9, 5.0e11))

BESIROGLU_2024 = ChinchillaLaw(
    name="besiroglu2024",
    source="Besiroglu, Erdil, Barnett & You 2024, 'Chinchilla Scaling: A replication attempt' (arXiv:2404.10102): "
           "the Chinchilla form refitted (Huber loss, L-BFGS) on Hoffmann et al. 2022's Approach-3 data "
           "read off their Figure 4; implies ~20 tokens/parameter at the optimum, consistent with Chinchilla",
    data="MassiveText (Hoffmann et al. 2022), SentencePiece 32k tokens; N total parameters",
    n_kind="total", E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, **_HOFFMANN_RANGE,
)
HOFFMANN_2022 = ChinchillaLaw(
    name="hoffmann2022",
    source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models' (arXiv:2203.15556) Eq. 2 and "
           "§3.3 (Approach 3), fitted on >400 runs of 70M-16B parameters on 5B-500B tokens. Taken literally these "
           "rounded constants imply far more than 20 tokens/parameter at the optimum (Besiroglu et al. 2024)",
    data="MassiveText, SentencePiece 32k tokens; N total parameters",
    n_kind="total", E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, **_HOFFMANN_RANGE,
)
KAPLAN_2020 = KaplanLaw(
    name="kaplan2020",
    source="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models' (arXiv:2001.08361) Eq. 1.5/4.1 with "
           "Table 2's L(N,D) fit; early-stopped runs of 768 to 1.5e9 non-embedding parameters on 22M-23B tokens",
    data="WebText2, GPT-2 BPE (50257) tokens, 1024-token context; N NON-EMBEDDING parameters",
    n_kind="non_embedding", n_range=(7.68e2, 1.5e9), d_range=(2.2e7, 2.3e10),
    N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103,
)
_MUENNIGHOFF_BASE = ChinchillaLaw(
    name="muennighoff2023-base",
    source="Muennighoff et al. 2023 (arXiv:2305.16264): Chinchilla form fitted on C4 (huggingface/datablations "
           "README 'Parametric Fit': a=6.255414, b=7.3049974, e=0.6254804, alpha=beta=0.3526596, as logs of A, B, E)",
    data="C4, GPT-2 BPE tokens; N total parameters",
    n_kind="total", n_range=(1.0e7, 9.0e9), d_range=(1.0e8, 9.0e11),
    E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974), alpha=0.3526596, beta=0.3526596,
)
MUENNIGHOFF_2023 = DataConstrainedLaw(
    name="muennighoff2023",
    source="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models' (arXiv:2305.16264): "
           "effective data and parameters with R*_D = 15.387756, R*_N = 5.309743 (datablations README); runs up "
           "to 9B parameters and 900B tokens on C4 (the lower ends of the ranges here are approximate)",
    data="C4, GPT-2 BPE tokens; N total parameters; takes unique tokens U_D",
    n_kind="total", n_range=_MUENNIGHOFF_BASE.n_range, d_range=_MUENNIGHOFF_BASE.d_range,
    base=_MUENNIGHOFF_BASE, r_n_star=5.309743, r_d_star=15.387756,
)

#: Preset laws by name. The first is the default.
LAWS: dict[str, Law] = {
    "besiroglu2024": BESIROGLU_2024,
    "hoffmann2022": HOFFMANN_2022,
    "kaplan2020": KAPLAN_2020,
    "muennighoff2023": MUENNIGHOFF_2023,
}
DEFAULT_LAW: ChinchillaLaw = BESIROGLU_2024


def get_law(name: Optional[str] = None) -> Law:
    """A preset law by name (None or 'default' = :data:`DEFAULT_LAW`); SpecError listing the names otherwise."""
    if name is None or name == "default":
        return DEFAULT_LAW
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    for k, law in LAWS.items():
        if k.replace("-", "") == key:
            return law
    raise SpecError(f"law: unknown scaling law {name!r}; known: {', '.join(LAWS)}")


def with_repetition(law: ChinchillaLaw, r_n_star: float = MUENNIGHOFF_2023.r_n_star,
                    r_d_star: float = MUENNIGHOFF_2023.r_d_star) -> DataConstrainedLaw:
    """``law`` with Muennighoff et al. 2023's repeated-data terms (their R* fitted on C4 with their own base —
    carrying them to another base is an approximation, said in the source)."""
    if isinstance(law, DataConstrainedLaw):
        return law
    if not isinstance(law, ChinchillaLaw):
        raise SpecError(f"{law.name} has no repeated-data form; use a Chinchilla-form law")
    return DataConstrainedLaw(
        name=f"{law.name}+repetition", n_range=law.n_range, d_range=law.d_range, data=law.data, n_kind=law.n_kind,
        source=f"{law.name} with Muennighoff et al. 2023's R*_N={r_n_star}, R*_D={r_d_star} (fitted with another "
               f"base law on C4; an approximation)", base=law, r_n_star=r_n_star, r_d_star=r_d_star,
    )


# ---------------------------------------------------------------------------------------------------------------
# Loss and compute-optimal allocation
# ---------------------------------------------------------------------------------------------------------------
def predict_loss(n: ArrayLike, d: ArrayLike, law: Law = DEFAULT_LAW, unique_tokens: Optional[ArrayLike] = None,
                 warn: bool = True):
    """Loss (nats/token) of N parameters trained on D tokens (of which ``unique_tokens`` unique), broadcast.

    Warns (:class:`ExtrapolationWarning`) when N or D lies more than 10x outside the law's fitted range."""
    check_positive(params=n, tokens=d)
    if unique_tokens is not None:
        check_positive(unique_tokens=unique_tokens)
    if warn:
        law.warn_range(n, d)
    return _out(law.loss(n, d, unique_tokens))


@dataclass(frozen=True)
class ComputeOptimal:
    """The compute-optimal split of a FLOP budget under C = 6·N·D (arrays broadcast like ``flops``)."""

    law: str
    flops: object  #: training FLOPs, C
    params: object  #: N_opt, parameters (the law's kind: total or non-embedding)
    tokens: object  #: D_opt, training tokens
    loss: object  #: loss at the optimum, nats/token
    closed_form: bool  #: True for the Chinchilla form (Hoffmann Eq. 4); False: minimised numerically

    @property
    def tokens_per_param(self):
        return _out(as_float_array(self.tokens) / as_float_array(self.params))

    @property
    def perplexity(self):
        return _out(perplexity(self.loss))

    def to_dict(self) -> dict:
        return {"law": self.law, "flops": self.flops, "params_opt": self.params, "tokens_opt": self.tokens,
                "tokens_per_param": self.tokens_per_param, "loss": self.loss, "perplexity": self.perplexity,
                "closed_form": self.closed_form}


def _numeric_optimal_params(law: Law, c: float, unique_tokens: Optional[float]) -> float:
    """argmin over N of L(N, C/(6N)): a log-spaced scan, then bounded Brent in the bracket around the minimum."""
    from scipy.optimize import minimize_scalar

    six = TRAIN_FLOPS_PER_PARAM_TOKEN
    lo, hi = math.log(1e2), math.log(c / six / 1e2)
    if hi <= lo:
        raise SpecError(f"flops {c:.3g} too small for an isoFLOP search")

    def f(x):
        n = np.exp(x)
        return law.loss(n, c / six / n, unique_tokens)

    xs = np.linspace(lo, hi, 400)
    ys = f(xs)
    i = int(np.nanargmin(ys))
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
    res = minimize_scalar(lambda x: float(f(x)), bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(res.x))


def compute_optimal(flops: ArrayLike, law: Law = DEFAULT_LAW, unique_tokens: Optional[float] = None,
                    warn: bool = True) -> ComputeOptimal:
    """N_opt, D_opt and the loss there for a training budget of ``flops`` under C = 6ND.

    Closed form (Hoffmann Eq. 4) for a :class:`ChinchillaLaw` without a unique-token limit; otherwise a numerical
    minimisation of the loss along the isoFLOP line, one budget at a time."""
    check_positive(flops=flops)
    c = as_float_array(flops)
    if isinstance(law, ChinchillaLaw) and unique_tokens is None:
        n, d, loss, closed = law.optimal_params(c), law.optimal_tokens(c), law.optimal_loss(c), True
    else:
        if unique_tokens is not None and isinstance(law, ChinchillaLaw):
            law = with_repetition(law)
        flat = c.reshape(-1)
        n = np.array([_numeric_optimal_params(law, float(ci), unique_tokens) for ci in flat]).reshape(c.shape)
        d = c / TRAIN_FLOPS_PER_PARAM_TOKEN / n
        loss, closed = law.loss(n, d, unique_tokens), False
    if warn:
        law.warn_range(n, d)
    return ComputeOptimal(law=law.name, flops=_out(c), params=_out(n), tokens=_out(d), loss=_out(loss),
                          closed_form=closed)


def flops_for_loss(target_loss: ArrayLike, law: ChinchillaLaw = DEFAULT_LAW) -> ComputeOptimal:
    """The least training FLOPs (at the optimal split) that reach ``target_loss``; SpecError at or below E."""
    if not isinstance(law, ChinchillaLaw):
        raise SpecError(f"flops_for_loss needs a Chinchilla-form law (got {law.name})")
    t = as_float_array(target_loss)
    if np.any(t <= law.E):
        raise SpecError(f"target loss {target_loss} is at or below {law.name}'s irreducible loss E={law.E}: "
                        f"no finite compute reaches it")
    return compute_optimal(law.flops_for_loss(t), law, warn=False)


def isoflop(flops: ArrayLike, params: ArrayLike, law: Law = DEFAULT_LAW,
            unique_tokens: Optional[float] = None) -> tuple:
    """Along the isoFLOP line C = 6ND: (tokens, loss) for each N (broadcast with C)."""
    check_positive(flops=flops, params=params)
    d = as_float_array(flops) / TRAIN_FLOPS_PER_PARAM_TOKEN / as_float_array(params)
    return _out(d), _out(law.loss(params, d, unique_tokens))


def isoflop_curve(flops: float, law: Law = DEFAULT_LAW, points: int = 41, span: float = 10.0,
                  unique_tokens: Optional[float] = None) -> list[dict]:
    """Rows (flops, params, tokens, tokens_per_param, loss, optimum) for N from N_opt/span to N_opt·span,
    log-spaced; ``optimum`` marks the row nearest N_opt (the exact optimum is added as its own row)."""
    if points < 3 or span <= 1:
        raise SpecError(f"isoflop: points >= 3 and span > 1 needed (got points={points}, span={span})")
    opt = compute_optimal(flops, law, unique_tokens, warn=False)
    ns = np.unique(np.concatenate([opt.params * np.logspace(-math.log10(span), math.log10(span), points),
                                   [opt.params]]))
    d, loss = isoflop(flops, ns, law, unique_tokens)
    return [{"flops": float(flops), "params": float(n), "tokens": float(t), "tokens_per_param": float(t / n),
             "loss": float(l), "optimum": bool(n == opt.params)} for n, t, l in zip(ns, d, loss)]


def compute_efficiency(n: float, d: float, law: ChinchillaLaw = DEFAULT_LAW) -> dict:
    """How a chosen (N, D) compares with the optimum of its own budget C = 6ND under ``law``.

    ``compute_efficiency`` = (FLOPs the optimal split needs to reach the same loss) / (6ND): 1 at the optimum,
    below 1 off it. The isoFLOP curve is flat near its minimum, so a size 1.5x off the optimum loses only a few
    percent of compute."""
    c = TRAIN_FLOPS_PER_PARAM_TOKEN * n * d
    loss = float(law.loss(n, d))
    opt = compute_optimal(c, law, warn=False)
    return {"flops": c, "loss": loss, "params_opt_same_flops": opt.params, "tokens_opt_same_flops": opt.tokens,
            "loss_opt_same_flops": opt.loss, "loss_excess": loss - opt.loss,
            "compute_efficiency": float(law.flops_for_loss(loss) / c)}


@dataclass(frozen=True)
class InferenceOptimal:
    """Sardana & Frankle 2023: the size that reaches a loss at the least training + inference compute."""

    law: str
    target_loss: float  #: nats/token
    inference_tokens: float  #: tokens served over the model's life
    params: float  #: parameters
    tokens: float  #: training tokens
    train_flops: float  #: 6·N·D_tr
    inference_flops: float  #: 2·N·D_inf
    chinchilla_params: float  #: the compute-optimal size for the same loss (training cost only), parameters
    chinchilla_tokens: float  #: its training tokens
    chinchilla_total_flops: float  #: its training + inference FLOPs with the same inference demand

    @property
    def total_flops(self) -> float:
        return self.train_flops + self.inference_flops

    @property
    def savings_fraction(self) -> float:
        """Share of the Chinchilla-optimal model's total compute saved by the inference-aware size."""
        return 1.0 - self.total_flops / self.chinchilla_total_flops

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(total_flops=self.total_flops, tokens_per_param=self.tokens / self.params,
                 savings_fraction=self.savings_fraction)
        return d


def inference_optimal(target_loss: float, inference_tokens: float,
                      law: ChinchillaLaw = DEFAULT_LAW) -> InferenceOptimal:
    """Minimise 6·N·D_tr + 2·N·D_inf subject to L(N, D_tr) = target_loss (Sardana & Frankle 2023).

    D_tr(N) = (B / (ℓ − E − A/N^α))^(1/β) is finite for N > N_min = (A/(ℓ − E))^(1/α); the total is minimised
    over ln N in (N_min, N_chinchilla] by bounded Brent (with no inference the optimum is Chinchilla's)."""
    from scipy.optimize import minimize_scalar

    if not isinstance(law, ChinchillaLaw):
        raise SpecError(f"inference-aware sizing needs a Chinchilla-form law (got {law.name})")
    if inference_tokens < 0:
        raise SpecError(f"inference_tokens must be >= 0 (got {inference_tokens})")
    chin = flops_for_loss(target_loss, law)
    n_min = (law.A / (target_loss - law.E)) ** (1.0 / law.alpha)

    def d_train(n):
        room = target_loss - law.E - law.A / n ** law.alpha
        return (law.B / room) ** (1.0 / law.beta) if room > 0 else math.inf

    def total(x):
        n = math.exp(x)
        return math.log(TRAIN_FLOPS_PER_PARAM_TOKEN * n * d_train(n) + INFER_FLOPS_PER_PARAM_TOKEN * n
                        * inference_tokens)

    lo, hi = math.log(n_min) + 1e-9, math.log(chin.params) + 1e-6
    res = minimize_scalar(total, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    n = math.exp(res.x)
    if total(hi) <= res.fun:  # Brent's bounded search never evaluates the end points
        n = chin.params
    d = d_train(n)
    return InferenceOptimal(
        law=law.name, target_loss=float(target_loss), inference_tokens=float(inference_tokens), params=n, tokens=d,
        train_flops=TRAIN_FLOPS_PER_PARAM_TOKEN * n * d,
        inference_flops=INFER_FLOPS_PER_PARAM_TOKEN * n * inference_tokens,
        chinchilla_params=chin.params, chinchilla_tokens=chin.tokens,
        chinchilla_total_flops=chin.flops + INFER_FLOPS_PER_PARAM_TOKEN * chin.params * inference_tokens,
    )


def tokens_per_param_by_law(flops: float) -> dict[str, float]:
    """D_opt/N_opt each preset law implies at ``flops`` (they disagree; Kaplan's N is non-embedding)."""
    return {name: float(compute_optimal(flops, law, warn=False).tokens_per_param) for name, law in LAWS.items()}


# ---------------------------------------------------------------------------------------------------------------
# A parameter count turned into an architecture
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchitectureRule:
    """The shape rule of :func:`architecture_for_params`, from published dense decoder families.

    * width/depth ``aspect_ratio`` d_model / n_layers = 128: LLaMA 7B (4096/32), 13B (5120/40) (Touvron et al.
      2023 Table 2), Llama 3 405B (16384/126, Dubey et al. 2024); Chinchilla 70B and LLaMA 65B sit at 102
      (8192/80). Kaplan et al. 2020 §3.1 (Fig. 5) find the loss changes by only a few percent over a wide range
      of aspect ratios, so the exact value matters little;
    * ``head_dim`` 128 (LLaMA, Llama 3, Chinchilla's "key/value size 128"), 64 below ``small_width`` (GPT-2/3
      small models), so a narrow model keeps >= 8 heads;
    * grouped-query attention with ``kv_heads`` 8 once a model has at least ``gqa_min_heads`` query heads
      (Llama 2 70B, Llama 3 8B/70B/405B, Mistral 7B: 8 KV heads; Ainslie et al. 2023); the query heads must
      divide into the groups, so widths whose head count is a multiple of 4 but not of 8 get 4 KV heads
      (d_model a multiple of 512 with 128-wide heads). ``kv_heads=None`` keeps multi-head attention everywhere
      (LLaMA 1);
    * SwiGLU FFN of width ``ffn_multiplier``·d = 8/3·d rounded up to a multiple of ``ffn_multiple_of`` = 256
      (LLaMA's ``multiple_of``: 11008 for d 4096, 13824 for 5120; Shazeer 2020 keeps the parameters of a 4d
      GELU FFN);
    * RMSNorm, rotary positions, no biases, untied embeddings by default, vocabulary given.

    Integer rounding: among all (d_model, layers) on this grid whose total parameter count
    (:func:`planner.core.params.param_breakdown`) is within ``tolerance`` of N, the one with the aspect ratio
    nearest the target; if none is, the nearest count.
    """

    aspect_ratio: float = 128.0
    head_dim: int = 128
    small_head_dim: int = 64
    small_width: int = 1024
    kv_heads: Optional[int] = 8
    gqa_min_heads: int = 16
    ffn_multiplier: float = 8.0 / 3.0
    ffn_multiple_of: int = 256
    tolerance: float = 0.02
    max_layers: int = 512


def _round_up(x, m):
    return (np.ceil(np.asarray(x) / m) * m).astype(np.int64)


def _candidate_shapes(rule: ArchitectureRule):
    """(d, head_dim, heads, kv) arrays over the width grid of ``rule``."""
    ds, hds, hs, kvs = [], [], [], []
    for d in range(4 * rule.small_head_dim, 131072 + 1, rule.small_head_dim):
        hd = rule.small_head_dim if d < rule.small_width else rule.head_dim
        if d % hd:
            continue
        h = d // hd
        kv = h
        if rule.kv_heads is not None and h >= rule.gqa_min_heads:
            half = max(rule.kv_heads // 2, 1)
            if h % rule.kv_heads == 0:
                kv = rule.kv_heads
            elif h % half == 0:
                kv = half
            else:
                continue
        ds.append(d), hds.append(hd), hs.append(h), kvs.append(kv)
    return (np.array(x, dtype=np.int64) for x in (ds, hds, hs, kvs))


def _dense_decoder_params(d, hd, h, kv, f, layers, vocab, tied):
    """Total parameters of the rule's decoder (RMSNorm, no bias, SwiGLU, rotary): the same sum as
    planner.core.params.param_breakdown for these models (a test checks they agree)."""
    attn = d * (h * hd) * 2 + 2 * d * (kv * hd)
    per_layer = attn + 3 * d * f + 2 * d
    return layers * per_layer + vocab * d * (1 if tied else 2) + d


def architecture_for_params(n_params: float, vocab_size: int = 32000, tie_embeddings: bool = False,
                            rule: ArchitectureRule = ArchitectureRule(), name: Optional[str] = None,
                            count: str = "total") -> ModelSpec:
    """A concrete dense decoder (layers, width, heads, KV heads, FFN) with about ``n_params`` parameters:
    ``count`` "total" (Chinchilla's N) or "non_embedding" (Kaplan's N: total minus the input embedding table,
    ParamBreakdown.non_embedding).

    See :class:`ArchitectureRule` for the rule and its sources. SpecError when no shape on the grid comes within
    10% (N too small for the vocabulary's embedding tables)."""
    check_positive(params=n_params, vocab_size=vocab_size)
    if count not in ("total", "non_embedding"):
        raise SpecError(f"count must be 'total' or 'non_embedding' (got {count!r})")
    d, hd, h, kv = _candidate_shapes(rule)
    f = _round_up(rule.ffn_multiplier * d, rule.ffn_multiple_of)
    layers = np.arange(1, rule.max_layers + 1, dtype=np.int64)
    D, L = np.meshgrid(np.arange(d.size), layers, indexing="ij")
    total = _dense_decoder_params(d[D].astype(float), hd[D], h[D], kv[D], f[D].astype(float), L.astype(float),
                                  float(vocab_size), tie_embeddings)
    if count == "non_embedding":
        total = total - float(vocab_size) * d[D]
    err = np.abs(total / n_params - 1.0)
    aspect_err = np.abs(np.log(d[D] / L / rule.aspect_ratio))
    ok = err <= rule.tolerance
    if ok.any():
        score = np.where(ok, aspect_err + 1e-3 * err, np.inf)
    else:
        score = err
    i, j = np.unravel_index(int(np.argmin(score)), score.shape)
    if err[i, j] > 0.10:
        raise SpecError(f"params {n_params:.3g}: no decoder shape within 10% with vocab_size {vocab_size} "
                        f"(closest {total[i, j]:.3g}); the embedding tables alone take {vocab_size * d[0]:.3g}")
    di, li = int(d[i]), int(L[i, j])
    return ModelSpec(
        name=name or f"rule-{n_params:.3g}",
        arch="decoder", num_layers=li, hidden_size=di, num_heads=int(h[i]), num_kv_heads=int(kv[i]),
        head_dim=int(hd[i]), ffn_hidden=int(f[i]), ffn_kind="swiglu", vocab_size=int(vocab_size),
        tie_embeddings=tie_embeddings, position="rotary", norm="rmsnorm", final_norm=True, bias=False,
        attention={"pattern": "causal"}, dropout=0.0,
        source=f"planner.core.scaling.architecture_for_params({n_params:.4g}): LLaMA/Llama-3-shaped rule, aspect "
               f"ratio {rule.aspect_ratio:g}, head dim {rule.head_dim}, GQA {rule.kv_heads} KV heads from "
               f"{rule.gqa_min_heads} heads, SwiGLU 8/3·d rounded to {rule.ffn_multiple_of}",
    )


# ---------------------------------------------------------------------------------------------------------------
# The budget API the `planner budget` query builds on
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComputePlan:
    """What to train for a FLOP budget: the optimum of the law and a concrete model near it.

    ``model`` has ``params_model`` parameters (within the rule's tolerance of ``params_opt``); ``tokens`` is
    re-derived so 6·params_model·tokens = flops (or capped at the available unique tokens · epochs)."""

    law: str
    flops: float
    params_opt: float
    tokens_opt: float
    loss_opt: float
    model: ModelSpec
    params_model: int
    tokens: float
    loss: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params_model

    def to_dict(self) -> dict:
        m = self.model
        return {"law": self.law, "flops": self.flops, "params_opt": self.params_opt, "tokens_opt": self.tokens_opt,
                "loss_opt": self.loss_opt, "params_model": self.params_model, "tokens": self.tokens,
                "tokens_per_param": self.tokens_per_param, "loss": self.loss, "perplexity": math.exp(self.loss),
                "layers": m.num_layers, "hidden_size": m.hidden_size, "heads": m.num_heads, "kv_heads": m.kv_heads,
                "head_dim": m.head_size, "ffn_hidden": m.ffn_hidden, "vocab_size": m.vocab_size,
                "tie_embeddings": m.tie_embeddings, "warnings": list(self.warnings)}


def plan_for_compute(flops: float, law: Law = DEFAULT_LAW, vocab_size: int = 32000, tie_embeddings: bool = False,
                     unique_tokens: Optional[float] = None, rule: ArchitectureRule = ArchitectureRule()) -> ComputePlan:
    """For one training budget (FLOPs, 6ND convention): N_opt, D_opt, loss, and a ModelSpec from the shape rule.

    The entry point of the budget query: dollars -> GPU-hours -> FLOPs (through the time model's MFU) -> this ->
    a layout search over ``model`` -> a new MFU; iterate until consistent."""
    from .params import param_breakdown

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        opt = compute_optimal(flops, law, unique_tokens)
    model = architecture_for_params(float(opt.params), vocab_size, tie_embeddings, rule, count=law.n_kind)
    pb = param_breakdown(model)
    n_model = pb.non_embedding if law.n_kind == "non_embedding" else pb.total
    tokens = float(flops) / TRAIN_FLOPS_PER_PARAM_TOKEN / n_model
    loss = float(law.loss(n_model, tokens, unique_tokens))
    return ComputePlan(law=opt.law, flops=float(flops), params_opt=float(opt.params), tokens_opt=float(opt.tokens),
                       loss_opt=float(opt.loss), model=model, params_model=int(n_model), tokens=tokens, loss=loss,
                       warnings=tuple(str(w.message) for w in caught))


def plan_for_loss(target_loss: float, law: ChinchillaLaw = DEFAULT_LAW, vocab_size: int = 32000,
                  tie_embeddings: bool = False, rule: ArchitectureRule = ArchitectureRule()) -> ComputePlan:
    """The cheapest compute-optimal plan that reaches ``target_loss`` ("what does loss 2.1 cost?")."""
    c = float(flops_for_loss(target_loss, law).flops)
    return plan_for_compute(c, law, vocab_size, tie_embeddings, rule=rule)


__all__ = [
    "ChinchillaLaw", "KaplanLaw", "DataConstrainedLaw", "Law", "LAWS", "DEFAULT_LAW", "BESIROGLU_2024",
    "HOFFMANN_2022", "KAPLAN_2020", "MUENNIGHOFF_2023", "ExtrapolationWarning", "get_law", "with_repetition",
    "perplexity", "predict_loss", "ComputeOptimal", "compute_optimal", "flops_for_loss", "isoflop", "isoflop_curve",
    "compute_efficiency", "InferenceOptimal", "inference_optimal", "tokens_per_param_by_law", "ArchitectureRule",
    "architecture_for_params", "ComputePlan", "plan_for_compute", "plan_for_loss",
]
