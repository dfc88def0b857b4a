"""Layout search: every way to split one model over a cluster, evaluated in one vectorised pass of the core.

The search enumerates candidate layouts by divisibility, evaluates all of them with the very same core as
``planner estimate`` (:func:`planner.core.estimate.evaluate` over an :class:`~planner.core.layout.Exec` whose
fields are numpy arrays, docs/DESIGN.md §1), masks those that do not divide (:func:`planner.core.checks.valid_mask`) or do
not fit (``MemoryBreakdown.fits``), keeps a reason per row, and ranks the rest.

**The candidate space.** For each GPU count G (one, a list, or every whole node from 1 to N plus 1..gpus_per_node
below a node):

* tp: divisors of the GPUs per node that divide the heads, the KV heads and the FFN width (Megatron's rules);
* pp: divisors of the layers; vpp: divisors of layers/pp (interleaved 1F1B, pp > 1 only);
* cp: powers of two that split the sequence into 2·cp chunks (causal load balancing), while each rank keeps at
  least :data:`MIN_CP_CHUNK_TOKENS` tokens (a pruning choice; ``max_cp`` widens it);
* ep: divisors of the experts that divide dp (MoE only); dp = G / (tp·pp·cp), what is left;
* micro-batch: divisors of the per-replica batch (global batch / dp); a split whose dp does not divide the global
  batch has no micro-batch and is not a candidate (counted in :attr:`Space.notes`);
* recomputation none/selective/full; ZeRO 0-3 and FSDP hybrid shard (FSDP full shard is ZeRO-3 in the core: the
  same numbers, so it is enumerated once, as ZeRO-3, unless asked for by name); sequence parallel on/off (tp > 1);
* the global batch of the run, or a list of them.

A user constraint *fixes* a dimension (its values are taken as given: one that breaks a divisibility rule yields
rejected rows whose reason names the rule) or *bounds* it (``max_pp``). Exact duplicates are not enumerated:
sequence parallelism with tp = 1, and ZeRO/FSDP variants on a single replica (dp·cp = 1), where every stage gives
the same numbers.

**How it is evaluated.** The candidates form a broadcast grid: the *structural* part (gpus, tp, pp, vpp, cp, ep,
dp, micro-batch, global batch) is one flat list of S combinations along axis 0, and the three switches (sequence
parallel, recomputation, ZeRO/FSDP) are axes 1-3. Every quantity of the core is then computed at the shape of the
inputs it depends on: GEMM times, which depend on tp·cp·micro-batch only, over S rows; the memory of the model
states over S x sharding; only the final sums over the whole grid. The formulas are untouched, the results are the
same numbers elementwise as a flat array or a scalar estimate (a test checks it exactly), and the work per
candidate drops several-fold. Large spaces are evaluated in chunks of the structural axis (each chunk one call of
the core over ~10^5-10^6 candidates, which amortises the core's per-call cost) so that memory stays bounded and a
progress bar can advance.

**Ranking.** ``step-time`` (seconds per step; per token when the global batch varies), ``cost`` (dollars for the
whole run when ``run.training_tokens`` is known, else step time x GPUs x price per step) or ``time-to-train``
(wall-clock days for ``run.training_tokens``). Wall clock, GPU-hours and dollars of the whole run come from the
core's whole-run model (:func:`planner.core.cost.run_costs`: failures, restarts, checkpoints, evaluation, with the
plan's ``schedule``), evaluated over the arrays of candidates exactly as ``planner estimate`` evaluates one.

**Pareto front.** Across GPU counts, the layouts no other layout beats on both wall-clock time to train
``run.training_tokens`` and dollars. For one GPU count the fastest layout is also the cheapest (cost = wall clock x
GPUs x price + fixed line items), so the front is built from the fastest feasible layout of each count.
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .core.accuracy import AGAINST_STEP, WITH_STEP, band_columns, band_multipliers, full_shard_gpus, outside_region
from .core.efficiency import run_peak_flop_per_s
from .core.checks import FRAMEWORK_NAMES, layout_rules, valid_mask
from .core.cost import STEP_FIXED_KEYS, CostResult, checkpoint_bytes_of, run_costs
from .core.estimate import GIB, evaluate
from .core.layout import Exec, exec_from_spec
from .errors import SpecError
from .specs.layout import FSDP_CODE, RECOMPUTE_CODE, LayoutSpec, data_parallel_of, model_parallel_size
from .specs.plan import Plan
from .units import SECONDS_PER_HOUR

#: Context parallelism is enumerated only while every rank keeps at least this many tokens of a sequence
#: (cp is for long sequences; shorter chunks leave the attention kernel too little work). ``max_cp`` overrides it.
MIN_CP_CHUNK_TOKENS = 1024

#: Rankings; a ``-p90`` one ranks by the pessimistic end of the cross-validated band (core.accuracy), which also
#: penalises layouts outside the validated region (their band is wider).
RANKS = ("step-time", "cost", "time-to-train", "step-time-p90", "cost-p90", "time-to-train-p90")
RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODE.items()}
FSDP_NAMES = {v: k for k, v in FSDP_CODE.items()}

#: reason code of a row that divides but does not fit in memory
OOM = "oom"

STRUCTURAL = ("gpus", "tp", "pp", "vpp", "cp", "ep", "dp", "micro_batch", "global_batch")


@dataclass(frozen=True)
class Constraints:
    """What the user fixes or bounds. A tuple *fixes* the allowed values of a dimension (taken as given: values that
    break a divisibility rule give rejected rows with the reason); ``max_*`` bound the enumerated values."""

    gpus: Optional[tuple[int, ...]] = None  #: GPU counts to search, explicit
    min_gpus: int = 1  #: smallest GPU count of a range
    max_gpus: Optional[int] = None  #: largest GPU count of a range (every whole node up to it, and 1..node below)
    tp: Optional[tuple[int, ...]] = None
    max_tp: Optional[int] = None
    pp: Optional[tuple[int, ...]] = None
    max_pp: Optional[int] = None
    vpp: Optional[tuple[int, ...]] = None
    max_vpp: Optional[int] = None
    cp: Optional[tuple[int, ...]] = None
    max_cp: Optional[int] = None
    ep: Optional[tuple[int, ...]] = None
    max_ep: Optional[int] = None
    dp: Optional[tuple[int, ...]] = None
    micro_batch: Optional[tuple[int, ...]] = None
    max_micro_batch: Optional[int] = None
    global_batch: Optional[tuple[int, ...]] = None  #: global batch sizes, sequences (default: the run's)
    recompute: Optional[tuple[str, ...]] = None  #: none/selective/full
    zero: Optional[tuple[int, ...]] = None  #: ZeRO stages 0-3
    fsdp: Optional[tuple[str, ...]] = None  #: none/full/hybrid
    sp: Optional[tuple[bool, ...]] = None  #: sequence parallel


# ---------------------------------------------------------------------------------------------------------------
# Enumeration
# ---------------------------------------------------------------------------------------------------------------

def divisors(n: int) -> np.ndarray:
    """Divisors of ``n`` in ascending order (``n`` at most 2^40: a SpecError above, before anything is allocated)."""
    if not 1 <= n <= 2**40:
        raise SpecError(f"divisors of {n}: out of range (1 to 2^40)")
    r = np.arange(1, int(math.isqrt(n)) + 1)
    small = r[n % r == 0]
    return np.unique(np.concatenate([small, n // small]))


def gpu_counts(max_gpus: int, gpus_per_node: int, min_gpus: int = 1) -> np.ndarray:
    """1..gpus_per_node below a node, then every whole number of nodes up to ``max_gpus``, from ``min_gpus``
    (``max_gpus`` at most :data:`~planner.specs.layout.MAX_SEARCH_GPUS`: a SpecError above)."""
    from .specs.layout import MAX_SEARCH_GPUS

    if not 1 <= max_gpus <= MAX_SEARCH_GPUS or not 1 <= gpus_per_node:
        raise SpecError(f"max_gpus {max_gpus}: out of range (1 to {MAX_SEARCH_GPUS:,} GPUs)")
    below = np.arange(1, min(gpus_per_node, max_gpus + 1))
    nodes = np.arange(gpus_per_node, max_gpus + 1, gpus_per_node)
    c = np.concatenate([below, nodes])
    return c[c >= min_gpus]


def _cross(rows: dict[str, np.ndarray], name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """Every row with every value (row-major: the order of ``rows`` is kept)."""
    n, k = len(next(iter(rows.values()))), len(values)
    out = {key: np.repeat(a, k) for key, a in rows.items()}
    out[name] = np.tile(np.asarray(values, dtype=np.int64), n)
    return out


def _keep(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: a[mask] for k, a in rows.items()}


def _bounded(values: np.ndarray, cap: Optional[int]) -> np.ndarray:
    return values if cap is None else values[values <= cap]


@dataclass
class Space:
    """The candidates: S structural combinations (flat arrays) x the switch options (broadcast axes 1-3).

    Grid index of a candidate = ((s·n_sp + i_sp)·n_recompute + i_recompute)·n_shard + i_shard.
    """

    plan: Plan
    cols: dict[str, np.ndarray]  #: structural arrays of length S (keys: :data:`STRUCTURAL`)
    sp: np.ndarray  #: sequence-parallel options (0/1)
    recompute: np.ndarray  #: recomputation codes
    zero_stage: np.ndarray  #: effective ZeRO stage per sharding option
    fsdp: np.ndarray  #: FSDP code per sharding option
    fixed: frozenset  #: dimensions the user fixed
    gpu_counts: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))  #: counts searched
    notes: list[str] = field(default_factory=list)  #: what was left out of the space, and why

    @property
    def n_structural(self) -> int:
        return len(self.cols["gpus"])

    @property
    def switch_shape(self) -> tuple[int, int, int]:
        return len(self.sp), len(self.recompute), len(self.zero_stage)

    @property
    def width(self) -> int:
        a, b, c = self.switch_shape
        return a * b * c

    @property
    def grid_size(self) -> int:
        return self.n_structural * self.width

    def _base(self) -> Exec:
        """The plan's own Exec: the fields the search does not vary (flash attention and its kernel, optimizer
        offload, TP overlap, and any the core adds later) come from it."""
        return exec_from_spec(self.plan.layout, self.plan.run)

    def exec_grid(self, lo: int, hi: int) -> Exec:
        """The broadcast Exec of structural rows lo..hi with every switch: shape (hi-lo, n_sp, n_rec, n_shard).

        A structural column with one value over the whole space is passed as a Python int (cheaper, same numbers).
        """
        cols = {}
        for k, a in self.cols.items():
            if k == "gpus":
                continue
            cols[k] = int(a[0]) if self._constant[k] else a[lo:hi, None, None, None]
        return self._base().replace(
            tp=cols["tp"], pp=cols["pp"], dp=cols["dp"], cp=cols["cp"], ep=cols["ep"], vpp=cols["vpp"],
            micro_batch=cols["micro_batch"], global_batch=cols["global_batch"],
            zero_stage=self.zero_stage[None, None, None, :], fsdp=self.fsdp[None, None, None, :],
            sp=self.sp[None, :, None, None], recompute=self.recompute[None, None, :, None])

    def exists_grid(self, lo: int, hi: int) -> np.ndarray:
        """Which grid points of rows lo..hi are candidates (exact duplicates are not)."""
        shape = (hi - lo,) + self.switch_shape
        ok = np.ones(shape, dtype=bool)
        tp = self.cols["tp"][lo:hi, None, None, None]
        ok &= ~((tp == 1) & (self.sp[None, :, None, None] == 1))  # sequence parallel needs tp > 1
        if "zero" not in self.fixed and "fsdp" not in self.fixed and len(self.zero_stage) > 1:
            single = (self.cols["dp"][lo:hi] * self.cols["cp"][lo:hi] == 1)[:, None, None, None]
            ok &= ~(single & (np.arange(len(self.zero_stage)) != 0)[None, None, None, :])
        return ok

    def unravel(self, grid_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(structural row, sp option, recompute option, sharding option) of grid indices."""
        return np.unravel_index(np.asarray(grid_index, dtype=np.int64), (self.n_structural,) + self.switch_shape)

    def exec_rows(self, grid_index: np.ndarray) -> Exec:
        """A flat (1-D) Exec of the given candidates."""
        s, i_sp, i_rec, i_sh = self.unravel(grid_index)
        c = {k: a[s] for k, a in self.cols.items()}
        return self._base().replace(
            tp=c["tp"], pp=c["pp"], dp=c["dp"], cp=c["cp"], ep=c["ep"], vpp=c["vpp"], micro_batch=c["micro_batch"],
            global_batch=c["global_batch"], zero_stage=self.zero_stage[i_sh], fsdp=self.fsdp[i_sh], sp=self.sp[i_sp],
            recompute=self.recompute[i_rec])

    def __post_init__(self):
        self._constant = {k: bool(len(a) and (a == a[0]).all()) for k, a in self.cols.items()}


def _tp_options(plan: Plan, c: Constraints) -> np.ndarray:
    if c.tp is not None:
        return np.asarray(sorted(set(c.tp)), dtype=np.int64)
    m = plan.model
    d = divisors(plan.hardware.gpus_per_node)
    d = d[(m.num_heads % d == 0) & (m.kv_heads % d == 0) & (m.ffn_hidden % d == 0)]
    return _bounded(d, c.max_tp)


def _cp_options(plan: Plan, c: Constraints) -> np.ndarray:
    if c.cp is not None:
        return np.asarray(sorted(set(c.cp)), dtype=np.int64)
    seq = plan.run.seq_len
    chunks = 2 if plan.model.arch != "encoder" else 1  # causal ring attention balances 2·cp chunks (checks.py)
    p = 2 ** np.arange(0, int(math.log2(seq)) + 1)
    p = p[seq % (chunks * p) == 0]
    cap = c.max_cp if c.max_cp is not None else max(1, seq // MIN_CP_CHUNK_TOKENS)
    return p[p <= cap]


def _shard_options(c: Constraints) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(effective ZeRO stage, FSDP code) per sharding option. Default: ZeRO 0-3 and FSDP hybrid shard (FSDP full
    shard is ZeRO-3 in the core); a fixed ZeRO stage alone means no FSDP."""
    fsdp = c.fsdp if c.fsdp is not None else (("none",) if c.zero is not None else ("none", "hybrid"))
    zeros = c.zero if c.zero is not None else (0, 1, 2, 3)
    opts: list[tuple[int, int]] = []
    if "none" in fsdp:
        opts += [(int(z), 0) for z in sorted(set(zeros))]
    for f in ("full", "hybrid"):
        if f in fsdp:
            opts.append((3, FSDP_CODE[f]))
    if not opts:
        raise SpecError(f"search: no sharding option left (zero {zeros}, fsdp {fsdp})")
    z = np.array([o[0] for o in opts], dtype=np.int64)
    f = np.array([o[1] for o in opts], dtype=np.int64)
    return z, f, [f"zero{a}" if b == 0 else f"fsdp-{FSDP_NAMES[b]}" for a, b in opts]


def _gpu_counts_of(plan: Plan, c: Constraints) -> np.ndarray:
    """The GPU counts to search: the given ones, every whole node up to ``max_gpus``, or the plan's own."""
    if c.gpus is not None:
        counts = np.asarray(sorted(set(int(g) for g in c.gpus)), dtype=np.int64)
    else:
        top = c.max_gpus if c.max_gpus is not None else (plan.layout.num_gpus if (plan.layout.gpus or plan.layout.dp)
                                                          else None)
        if top is None:
            raise SpecError("search: give the GPU count (--gpus N, or --max-gpus N for every whole node up to N)")
        counts = (gpu_counts(top, plan.hardware.gpus_per_node, c.min_gpus) if c.max_gpus is not None
                  else np.array([top], dtype=np.int64))
    if counts.size == 0 or counts.min() < 1:
        raise SpecError(f"search: no GPU count to search (min_gpus {c.min_gpus}, max_gpus {c.max_gpus})")
    return counts


def _model_split(plan: Plan, c: Constraints, counts: np.ndarray) -> dict:
    """Rows of (gpus, tp, pp, cp, dp, ep) whose model-parallel degrees divide the GPU count and ep divides dp."""
    model, layers = plan.model, plan.model.total_layers
    rows = {"gpus": counts}
    rows = _cross(rows, "tp", _tp_options(plan, c))
    pps = np.asarray(sorted(set(c.pp)), dtype=np.int64) if c.pp is not None else _bounded(divisors(layers), c.max_pp)
    rows = _cross(rows, "pp", pps)
    rows = _cross(rows, "cp", _cp_options(plan, c))
    rows = _keep(rows, rows["gpus"] % model_parallel_size(rows["tp"], rows["pp"], rows["cp"]) == 0)
    rows["dp"] = data_parallel_of(rows["gpus"], rows["tp"], rows["pp"], rows["cp"])
    if c.dp is not None:
        rows = _keep(rows, np.isin(rows["dp"], np.asarray(c.dp)))
    # expert parallelism: divisors of the experts that divide dp (fixed values are taken as given)
    if c.ep is not None:
        eps = np.asarray(sorted(set(c.ep)), dtype=np.int64)
    elif model.moe is not None:
        eps = _bounded(divisors(model.moe.num_experts), c.max_ep)
    else:
        eps = np.array([1], dtype=np.int64)
    rows = _cross(rows, "ep", eps)
    if c.ep is None:
        rows = _keep(rows, rows["dp"] % rows["ep"] == 0)
    return rows


def _batch_and_schedule(plan: Plan, c: Constraints, rows: dict, notes: list[str]) -> dict:
    """Cross ``rows`` with global batch, virtual stages and micro-batch, keeping what divides and what the pipeline
    schedule can run (a fixed constraint is kept, so the rule it breaks is reported, as in :func:`core.checks`)."""
    run, layers = plan.run, plan.model.total_layers
    batch = c.global_batch if c.global_batch is not None else ((run.batch_seqs,) if run.batch_seqs else None)
    if batch is not None:
        rows = _cross(rows, "global_batch", np.asarray(sorted(set(batch)), dtype=np.int64))
        divides = rows["global_batch"] % rows["dp"] == 0
        if c.micro_batch is None and (~divides).any():
            notes.append(f"{int((~divides).sum()):,} splits leave a data-parallel degree that does not divide the "
                         f"global batch ({', '.join(str(b) for b in sorted(set(batch)))} sequences): no micro-batch "
                         f"fits them, so they are not candidates")
            rows = _keep(rows, divides)
    # virtual pipeline stages
    vpps = (np.asarray(sorted(set(c.vpp)), dtype=np.int64) if c.vpp is not None
            else _bounded(divisors(layers), c.max_vpp))
    rows = _cross(rows, "vpp", vpps)
    v, p = rows["vpp"], rows["pp"]
    rows = _keep(rows, (v == 1) | ((p > 1) & ((c.vpp is not None) | (layers % (p * v) == 0))))

    if batch is not None:
        mbs = (np.asarray(sorted(set(c.micro_batch)), dtype=np.int64) if c.micro_batch is not None
               else _bounded(divisors(int(max(batch))), c.max_micro_batch))
        rows = _cross(rows, "micro_batch", mbs)
        if c.micro_batch is None:
            rows = _keep(rows, rows["global_batch"] % (rows["dp"] * rows["micro_batch"]) == 0)
    else:
        # no global batch in the run: one micro-batch per replica per step (the core's convention, exec_from_spec)
        if c.micro_batch is not None:
            mbs = np.asarray(sorted(set(c.micro_batch)), dtype=np.int64)
        else:
            cap = c.max_micro_batch if c.max_micro_batch is not None else 8
            mbs = 2 ** np.arange(0, int(math.log2(cap)) + 1)
        rows = _cross(rows, "micro_batch", mbs)
        rows["global_batch"] = rows["micro_batch"] * rows["dp"]
        notes.append("the run gives no global batch: each candidate takes one micro-batch per replica per step "
                     "(global batch = micro-batch x dp); give --global-batch to fix it")
    # the interleaved schedule runs whole groups of pp micro-batches (core.checks rule "interleaved:m%pp")
    if c.vpp is None:
        m = rows["global_batch"] // (rows["dp"] * rows["micro_batch"])
        rows = _keep(rows, (rows["vpp"] == 1) | (m % rows["pp"] == 0))
    return rows


def enumerate_space(plan: Plan, c: Constraints = Constraints()) -> Space:
    """Every candidate layout for ``plan``'s model, run and hardware under ``c`` (vectorised: no loop per row)."""
    notes: list[str] = []
    fixed = frozenset(k for k in ("tp", "pp", "vpp", "cp", "ep", "dp", "micro_batch", "global_batch", "recompute",
                                  "zero", "fsdp", "sp") if getattr(c, k) is not None)
    counts = _gpu_counts_of(plan, c)
    rows = _batch_and_schedule(plan, c, _model_split(plan, c, counts), notes)

    # switches
    sp = (np.array(sorted(set(int(bool(x)) for x in c.sp)), dtype=np.int64) if c.sp is not None
          else np.array([0, 1] if (rows["tp"] > 1).any() else [0], dtype=np.int64))
    if c.sp is not None and 1 in sp and 0 not in sp:
        rows = _keep(rows, rows["tp"] > 1)
    rec = np.array([RECOMPUTE_CODE[r] for r in (c.recompute or ("none", "selective", "full"))], dtype=np.int64)
    zs, fs, _ = _shard_options(c)

    cols = {k: np.ascontiguousarray(rows[k], dtype=np.int64) for k in STRUCTURAL}
    return Space(plan=plan, cols=cols, sp=sp, recompute=np.unique(rec), zero_stage=zs, fsdp=fs, fixed=fixed,
                 gpu_counts=counts, notes=notes)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and ranking
# ---------------------------------------------------------------------------------------------------------------

def _rule_codes(plan: Plan) -> list[str]:
    return [r.code for r in layout_rules(plan.model, plan.run, exec_from_spec(plan.layout, plan.run))]


@dataclass
class SearchResult:
    """Every candidate (compressed to those that exist) with its predicted step time, memory and reason.

    Arrays have one entry per candidate, in enumeration order (GPU count ascending). ``reason_code`` 0 is feasible;
    ``reasons[code]`` names the rule (the codes of :func:`planner.core.checks.layout_rules`, then ``oom``).
    """

    plan: Plan
    constraints: Constraints
    space: Space
    rank_by: str
    grid_index: np.ndarray  #: position of each candidate in the space's grid
    step_time_s: np.ndarray  #: s per step
    step_fixed_s: np.ndarray  #: the part of a step that does not shrink with the batch (bubble, DP comm, optimizer), s
    memory_per_gpu_bytes: np.ndarray  #: bytes on the most loaded GPU
    reason_code: np.ndarray  #: 0 feasible, else index into ``reasons``
    reasons: list[str]
    timings: dict[str, float]
    _metric: Optional[np.ndarray] = None
    _run: Optional[tuple[np.ndarray, np.ndarray]] = None

    @property
    def price_usd_per_gpu_hour(self) -> Optional[float]:
        """The price in use: the plan's schedule, else the hardware profile's; None when neither has one."""
        if self.plan.schedule.price_usd_per_gpu_hour is not None:
            return self.plan.schedule.price_usd_per_gpu_hour
        hp = self.plan.hardware.price_usd_per_gpu_hour
        return None if hp is None else hp.value

    # -- per-candidate derived arrays (cheap gathers and arithmetic) --
    @property
    def n(self) -> int:
        return len(self.grid_index)

    @property
    def feasible(self) -> np.ndarray:
        return self.reason_code == 0

    @property
    def structural_row(self) -> np.ndarray:
        return self.grid_index // self.space.width

    def column(self, name: str, idx=None) -> np.ndarray:
        """A structural column (gpus, tp, ..., global_batch) per candidate (or for the candidates ``idx``)."""
        s = self.structural_row if idx is None else np.asarray(self.grid_index[idx]) // self.space.width
        return self.space.cols[name][s]

    def tokens_per_step(self, idx=None) -> np.ndarray:
        return self.column("global_batch", idx) * self.plan.run.seq_len

    def training_steps(self, idx=None) -> Optional[np.ndarray]:
        t = self.plan.run.training_tokens
        return None if t is None else np.ceil(t / self.tokens_per_step(idx))

    def whole_run(self, idx) -> Optional[CostResult]:
        """The core's whole-run result (wall clock, GPU-hours, dollars, energy) for candidates ``idx``; None without
        ``run.training_tokens``."""
        if self.plan.run.training_tokens is None:
            return None
        idx = np.asarray(idx, dtype=np.int64)
        values = {"training_tokens": self.plan.run.training_tokens, "tokens_per_step": self.tokens_per_step(idx),
                  "step_time_s": self.step_time_s[idx], "gpus": self.column("gpus", idx),
                  STEP_FIXED_KEYS[0]: self.step_fixed_s[idx]}  # the fixed part, summed (see _step_fixed)
        return run_costs(values, self.plan.schedule, self.plan.hardware,
                         checkpoint_bytes=checkpoint_bytes_of(self.plan.model, self.plan.run))

    def _whole_run_all(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(wall-clock days, cost USD) of every candidate, computed in chunks; None without training tokens."""
        if self.plan.run.training_tokens is None:
            return None
        if self._run is None:
            days = np.empty(self.n)
            cost = np.empty(self.n)
            step = 1 << 18
            for lo in range(0, self.n, step):
                r = self.whole_run(np.arange(lo, min(self.n, lo + step)))
                days[lo:lo + step] = r.wall_clock_days
                cost[lo:lo + step] = r.cost_usd
            self._run = (days, cost)
        return self._run

    def wall_clock_days(self, idx=None) -> Optional[np.ndarray]:
        """Wall-clock days to train ``run.training_tokens`` (failures, restarts, checkpoints included)."""
        r = self._whole_run_all()
        return None if r is None else (r[0] if idx is None else r[0][idx])

    def cost_usd(self, idx=None) -> Optional[np.ndarray]:
        """Dollars of the whole run; None without training tokens or a price."""
        r = self._whole_run_all()
        if r is None or self.price_usd_per_gpu_hour is None:
            return None
        return r[1] if idx is None else r[1][idx]

    def cost_per_step_usd(self, idx=None) -> Optional[np.ndarray]:
        """Step time x GPUs x price, USD; None without a price."""
        if self.price_usd_per_gpu_hour is None:
            return None
        st = self.step_time_s if idx is None else self.step_time_s[idx]
        return st * self.column("gpus", idx) * self.price_usd_per_gpu_hour / SECONDS_PER_HOUR

    @property
    def metric(self) -> np.ndarray:
        """What the ranking sorts by (smaller is better), per candidate, rejected ones included."""
        if self._metric is None:
            self._metric = self._compute_metric()
        return self._metric

    def _compute_metric(self) -> np.ndarray:
        if self.rank_by.endswith("-p90"):
            return self._base_metric(self.rank_by.removesuffix("-p90")) * self.pessimistic_factor()
        return self._base_metric(self.rank_by)

    def pessimistic_factor(self) -> np.ndarray:
        """Per candidate, the step-time multiplier at the p90 end of its cross-validated band (1 without one)."""
        from .core.flops import step_flops

        fpt = float(step_flops(self.plan.model, self.plan.run, exec_from_spec(self.plan.layout,
                                                                              self.plan.run)).model_flops_per_token)
        hw = self.plan.hardware
        gpus = self.column("gpus")
        peak = run_peak_flop_per_s(hw, self.plan.run.precision)
        mfu = fpt * self.tokens_per_step() / (self.step_time_s * gpus * peak)
        zero_bubble = (self.plan.layout.pipeline_schedule == "zb-h1") & (self.column("pp") > 1)
        _, _, _, i_sh = self.space.unravel(self.grid_index)
        shard = full_shard_gpus(self.space.zero_stage[i_sh], self.space.fsdp[i_sh] == FSDP_CODE["hybrid"],
                                self.column("dp"), self.column("cp"), self.column("tp"), hw.gpus_per_node)
        bands = band_multipliers(hw, outside_region(hw, gpus, self.plan.run.seq_len, mfu, zero_bubble, shard))
        return np.ones(self.n) if bands is None else np.broadcast_to(bands[1], (self.n,))

    def _base_metric(self, rank_by: str) -> np.ndarray:
        varying_batch = len(np.unique(self.space.cols["global_batch"])) > 1
        if rank_by == "step-time":
            return self.step_time_s / self.tokens_per_step() if varying_batch else self.step_time_s
        if rank_by == "time-to-train":
            days = self.wall_clock_days()
            if days is None:
                raise SpecError("search: ranking by time-to-train needs run.training_tokens (--tokens)")
            return days
        if rank_by == "cost":
            if self.price_usd_per_gpu_hour is None:
                raise SpecError(f"search: ranking by cost needs a price: the profile {self.plan.hardware.name!r} has "
                                f"none; give --price USD_PER_GPU_HOUR (or schedule.price_usd_per_gpu_hour)")
            total = self.cost_usd()
            if total is not None:
                return total
            per = self.cost_per_step_usd()
            return per / self.tokens_per_step() if varying_batch else per
        raise SpecError(f"search: unknown ranking {self.rank_by!r} (expected one of {', '.join(RANKS)})")

    # -- selections --
    def ranked(self, k: Optional[int] = 10, *, include_rejected: bool = False, fold: bool = True) -> np.ndarray:
        """Indices of the best ``k`` candidates (all when k is None or 0), best first; ties broken by memory, then
        enumeration order. Feasible ones only unless ``include_rejected``.

        ``fold``: of candidates that differ only in the recomputation option and predict the very same step time
        and memory (with FlashAttention, selective recomputation repeats nothing the kernel does not already
        recompute, so it equals none), keep the first (none before selective before full).
        """
        m = self.metric
        pool = np.arange(self.n) if include_rejected else np.flatnonzero(self.feasible)
        want = k * (len(self.space.recompute) if fold else 1) if k else None
        if want and len(pool) > want:
            part = np.argpartition(m[pool], want - 1)[:want]
            cut = m[pool][part].max()
            pool = pool[m[pool] <= cut]  # keep every tie at the cut so the order below is deterministic
        order = np.lexsort((pool, self.memory_per_gpu_bytes[pool], m[pool]))
        out = pool[order]
        if fold:
            out = self._fold(out)
        return out[:k] if k else out

    def _fold(self, out: np.ndarray) -> np.ndarray:
        """Drop candidates that repeat an earlier one of ``out`` but for the recomputation option, with the same
        step time, memory and reason (order kept)."""
        if len(out) < 2:
            return out
        s, i_sp, _, i_sh = self.space.unravel(self.grid_index[out])
        key = np.stack([s, i_sp, i_sh, self.step_time_s[out].view(np.int64),
                        self.memory_per_gpu_bytes[out].view(np.int64), self.reason_code[out].astype(np.int64)], 1)
        _, first = np.unique(key, axis=0, return_index=True)
        return out[np.sort(first)]

    def position(self, i: int) -> int:
        """1-based place of candidate ``i`` in the ranking of every candidate, rejected ones included (same
        tie-breaks as :meth:`ranked`, no folding)."""
        m, mem = self.metric, self.memory_per_gpu_bytes
        ahead = (m < m[i]) | ((m == m[i]) & ((mem < mem[i]) | ((mem == mem[i]) & (np.arange(self.n) < i))))
        return int(ahead.sum()) + 1

    def best(self) -> Optional[int]:
        r = self.ranked(1)
        return int(r[0]) if len(r) else None

    def rejected_better(self, k: int = 5) -> tuple[np.ndarray, dict[str, int]]:
        """(the ``k`` rejected candidates ranked just ahead of the winner, best first; count per reason of all
        rejected candidates ranked ahead of it). With no feasible candidate: the best ``k`` rejected ones and
        the count over every candidate."""
        b = self.best()
        m = self.metric
        better = ~self.feasible if b is None else (~self.feasible) & (m < m[b])
        idx = np.flatnonzero(better)
        counts = np.bincount(self.reason_code[idx], minlength=len(self.reasons))
        by_reason = {self.reasons[i]: int(c) for i, c in enumerate(counts) if c}
        if len(idx) == 0:
            return idx, by_reason
        mem = self.memory_per_gpu_bytes
        order = (idx[np.lexsort((idx, mem[idx], m[idx]))] if b is None  # the best rejected ones
                 else idx[np.lexsort((-idx, -mem[idx], -m[idx]))])  # the next-better ones: closest to the winner
        window = 3 * k
        while True:  # fold recompute twins; widen the window until k distinct ones remain or none are left
            sel = self._fold(order[:window])[:k]
            if len(sel) == k or window >= len(order):
                break
            window *= 4
        return (sel if b is None else sel[::-1]), by_reason

    def pareto(self) -> np.ndarray:
        """Indices of the wall-clock vs dollars Pareto front, GPU count ascending (cheapest first, fastest last);
        empty without training tokens or a price. One point per GPU count at most: the fastest feasible layout of
        that count is also its cheapest."""
        f = np.flatnonzero(self.feasible)
        if self.plan.run.training_tokens is None or self.price_usd_per_gpu_hour is None or len(f) == 0:
            return np.array([], dtype=np.int64)
        if self._run is not None:
            days_f = self._run[0][f]
        else:  # the whole run of the feasible candidates only
            days_f = np.concatenate([self.whole_run(f[lo:lo + (1 << 18)]).wall_clock_days
                                     for lo in range(0, len(f), 1 << 18)])
        g = self.column("gpus", f)
        # fastest feasible layout per GPU count: for one count it is also the cheapest (cost = wall x GPUs x price
        # + fixed line items)
        order = np.lexsort((f, days_f, g))
        fo, go = f[order], g[order]
        first = np.concatenate([[True], go[1:] != go[:-1]])
        per_g = fo[first]
        wr = self.whole_run(per_g)
        d, c = np.asarray(wr.wall_clock_days, dtype=float), np.asarray(wr.cost_usd, dtype=float)
        o = np.lexsort((c, d))
        d, c, per_g = d[o], c[o], per_g[o]
        prev_min = np.minimum.accumulate(np.concatenate([[np.inf], c[:-1]]))
        front = per_g[c < prev_min]
        return front[np.argsort(self.column("gpus", front), kind="stable")]

    def best_per_gpu_count(self) -> np.ndarray:
        """Index of the fastest feasible layout of each GPU count, GPU count ascending (the points a time-vs-cost
        plot shows; :meth:`pareto` keeps those no other count beats on both)."""
        f = np.flatnonzero(self.feasible)
        if len(f) == 0:
            return np.array([], dtype=np.int64)
        g = self.column("gpus", f)
        order = np.lexsort((f, self.step_time_s[f], g))
        fo, go = f[order], g[order]
        return fo[np.concatenate([[True], go[1:] != go[:-1]])]

    def find(self, layout: LayoutSpec, micro_batch: int, global_batch: int) -> Optional[int]:
        """Index of the candidate with this layout, micro-batch and global batch (sequences), or None."""
        sp = self.space
        s = np.flatnonzero(
            (sp.cols["gpus"] == layout.num_gpus) & (sp.cols["tp"] == layout.tp) & (sp.cols["pp"] == layout.pp)
            & (sp.cols["vpp"] == layout.vpp) & (sp.cols["cp"] == layout.cp) & (sp.cols["ep"] == layout.ep)
            & (sp.cols["micro_batch"] == micro_batch) & (sp.cols["global_batch"] == global_batch))
        i_sp = np.flatnonzero(sp.sp == int(layout.sequence_parallel))
        i_rec = np.flatnonzero(sp.recompute == RECOMPUTE_CODE[layout.recompute])
        i_sh = np.flatnonzero((sp.zero_stage == layout.effective_zero_stage) & (sp.fsdp == FSDP_CODE[layout.fsdp]))
        if layout.fsdp == "full" and not len(i_sh):  # FSDP full shard is enumerated as ZeRO-3 (same numbers)
            i_sh = np.flatnonzero((sp.zero_stage == 3) & (sp.fsdp == 0))
        if not (len(s) and len(i_sp) and len(i_rec) and len(i_sh)):
            return None
        g = np.ravel_multi_index((s[0], i_sp[0], i_rec[0], i_sh[0]), (sp.n_structural,) + sp.switch_shape)
        j = np.searchsorted(self.grid_index, g)  # grid indices are stored in ascending order
        return int(j) if j < self.n and self.grid_index[j] == g else None

    # -- full rows (the core's breakdowns for a handful of candidates) --
    def layout_spec(self, i: int) -> LayoutSpec:
        """The LayoutSpec of candidate ``i``; the fields the search does not vary come from the plan's layout."""
        s, i_sp, i_rec, i_sh = (int(x) for x in self.space.unravel(self.grid_index[i]))
        c = {k: int(a[s]) for k, a in self.space.cols.items()}
        data = self.plan.layout.model_dump()  # keeps what the search does not vary (kernels, offload, overlap)
        data.update(
            gpus=c["gpus"], dp=None, tp=c["tp"], pp=c["pp"], cp=c["cp"], ep=c["ep"], vpp=c["vpp"],
            zero_stage=int(self.space.zero_stage[i_sh]), fsdp=FSDP_NAMES[int(self.space.fsdp[i_sh])],
            sequence_parallel=bool(self.space.sp[i_sp]), recompute=RECOMPUTE_NAMES[int(self.space.recompute[i_rec])],
        )
        return LayoutSpec.model_validate(data)

    def plan_of(self, i: int) -> Plan:
        """The plan ``planner estimate`` would take for candidate ``i``."""
        run = self.plan.run.model_copy(update={
            "micro_batch": int(self.column("micro_batch", [i])[0]),
            "global_batch_seqs": int(self.column("global_batch", [i])[0]),
            "global_batch_tokens": None,
        })
        return dataclasses.replace(self.plan, run=run, layout=self.layout_spec(i))

    def reason_text(self, i: int) -> Optional[str]:
        """One line: why candidate ``i`` was rejected (the rule with every factor, or the memory), None if feasible."""
        code = self.reasons[int(self.reason_code[i])]
        if code == "":
            return None
        ex = self.space.exec_rows(self.grid_index[[i]])
        scalar = Exec(**{k: (v.item() if isinstance(v, np.ndarray) else v) for k, v in vars(ex).items()})
        if code == OOM:
            mem = evaluate(self.plan, scalar).memory
            parts = sorted(((float(v), k) for k, v in mem.parts().items()), reverse=True)[:3]
            top = ", ".join(f"{k.removesuffix('_bytes')} {v / GIB:.1f}" for v, k in parts)
            return f"oom: {float(mem.total_bytes) / GIB:.1f} GiB > {mem.usable_bytes / GIB:.1f} GiB usable ({top})"
        for r in layout_rules(self.plan.model, self.plan.run, scalar):
            if r.code == code:
                return f"{code}: {r.message(scalar)}"
        return code

    def rows(self, idx: Sequence[int], *, with_reason_text: bool = True) -> list[dict]:
        """Full rows (layout, predicted numbers, time/memory/whole-run breakdowns) of candidates ``idx``, in that
        order: one call of the core per 2^18 rows, built column by column. ``reason`` is the one-line explanation
        (``reason_code`` the rule's code) for rejected rows, None for feasible ones."""
        idx = np.asarray(idx, dtype=np.int64)
        out: list[dict] = []
        for lo in range(0, len(idx), 1 << 18):
            out += self._rows_chunk(idx[lo:lo + (1 << 18)], with_reason_text)
        return out

    def _rows_chunk(self, idx: np.ndarray, with_reason_text: bool) -> list[dict]:
        n = len(idx)
        if n == 0:
            return []
        sp = self.space
        ev = evaluate(self.plan, sp.exec_rows(self.grid_index[idx]))
        th, tb, mem, fl = ev.throughput, ev.time, ev.memory, ev.flops
        s, i_sp, i_rec, i_sh = sp.unravel(self.grid_index[idx])
        c = {k: a[s] for k, a in sp.cols.items()}

        def f(v):
            return np.broadcast_to(np.asarray(v, dtype=float), (n,)).tolist()

        def maybe(v):  # None for a missing quantity or a non-finite value (a run that never finishes)
            return [None] * n if v is None else [x if math.isfinite(x) else None for x in f(v)]

        wr = self.whole_run(idx)
        price = self.price_usd_per_gpu_hour
        codes = [self.reasons[k] for k in self.reason_code[idx].tolist()]
        total = f(mem.total_bytes)
        parts_m = {f"memory_{k}": f(v) for k, v in mem.parts().items()}
        cols: dict[str, list] = {
            "gpus": c["gpus"].tolist(), "nodes": (-(-c["gpus"] // self.plan.hardware.gpus_per_node)).tolist(),
            "dp": c["dp"].tolist(), "tp": c["tp"].tolist(), "pp": c["pp"].tolist(), "vpp": c["vpp"].tolist(),
            "cp": c["cp"].tolist(), "ep": c["ep"].tolist(), "micro_batch_seqs": c["micro_batch"].tolist(),
            "global_batch_seqs": c["global_batch"].tolist(),
            "grad_accum_steps": (c["global_batch"] / (c["micro_batch"] * c["dp"])).tolist(),
            "zero_stage": sp.zero_stage[i_sh].tolist(),
            "fsdp": [FSDP_NAMES[k] for k in sp.fsdp[i_sh].tolist()],
            "sequence_parallel": (sp.sp[i_sp] == 1).tolist(),
            "recompute": [RECOMPUTE_NAMES[k] for k in sp.recompute[i_rec].tolist()],
            "flash_attention": [self.plan.layout.flash_attention] * n,
            "framework": [self.plan.layout.framework] * n,
            "costed_framework": [FRAMEWORK_NAMES[k] for k in np.broadcast_to(
                np.asarray(ev.framework), (n,)).astype(np.int64).tolist()],
            "pipeline_schedule": [self.plan.layout.pipeline_schedule] * n,
            "eager_elementwise": [self.plan.layout.eager_elementwise] * n,
            "step_time_s": f(th.step_time_s), "tokens_per_s_per_gpu": f(th.tokens_per_s_per_gpu),
            "model_tflop_per_s_per_gpu": f(th.model_tflop_per_s_per_gpu), "mfu": f(th.mfu), "hfu": f(th.hfu),
            "mfu_at_run_precision": f(th.mfu_at_run_precision),
            "tokens_per_step": np.broadcast_to(np.asarray(fl.tokens_per_step), (n,)).astype(np.int64).tolist(),
            "memory_per_gpu_bytes": total, "memory_capacity_bytes": [float(mem.capacity_bytes)] * n,
            "fits": np.broadcast_to(np.asarray(mem.fits), (n,)).tolist(),
            "feasible": [k == "" for k in codes],
            "reason": [None] * n,
            "reason_code": [k or None for k in codes],
            "cost_per_step_usd": maybe(self.cost_per_step_usd(idx)),
            "training_steps": maybe(self.training_steps(idx)),
            "wall_clock_days": maybe(None if wr is None else wr.wall_clock_days),
            "gpu_hours": maybe(None if wr is None else wr.gpu_hours),
            "goodput": maybe(None if wr is None else wr.goodput),
            "expected_failures": maybe(None if wr is None else wr.expected_failures),
            "cost_usd": maybe(None if (wr is None or price is None) else wr.cost_usd),
            "energy_mwh": maybe(None if wr is None else wr.energy_mwh),
            "rank_metric": f(self.metric[idx]),
        }
        cols.update({f"time_{k}": f(v) for k, v in tb.parts().items()})
        cols.update(self._band_cols(cols, c["gpus"], maybe))
        cols.update(parts_m)
        cols["memory_stage"] = np.broadcast_to(np.asarray(mem.stage), (n,)).astype(np.int64).tolist()
        cap = mem.usable_bytes
        rule_text: dict = {}
        for j, code in enumerate(codes):
            if not code:
                continue
            if not with_reason_text:
                cols["reason"][j] = code
            elif code == OOM:  # from this row's own breakdown: no second evaluation
                top = sorted(((parts_m[k][j], k) for k in parts_m), reverse=True)[:3]
                cols["reason"][j] = (f"oom: {total[j] / GIB:.1f} GiB > {cap / GIB:.1f} GiB usable ("
                                     + ", ".join(f"{k[7:-6]} {v / GIB:.1f}" for v, k in top) + ")")
            else:  # a divisibility rule: its message depends on the structural values only
                key = (code, int(s[j]))
                if key not in rule_text:
                    rule_text[key] = self.reason_text(int(idx[j]))
                cols["reason"][j] = rule_text[key]
        keys = list(cols)
        return [dict(zip(keys, vals)) for vals in zip(*(cols[k] for k in keys))]

    def _band_cols(self, cols: dict, gpus: np.ndarray, maybe) -> dict:
        """The error-band and extrapolation columns of rows (``core.accuracy``, as ``estimate`` gives them)."""
        def arr(k):
            return np.array([np.nan if v is None else v for v in cols[k]], dtype=float)

        src = {"gpus": gpus, "seq_len_tokens": self.plan.run.seq_len, "pp": np.asarray(cols["pp"]),
               **{k: np.asarray(cols[k], dtype=object if k == "fsdp" else None)
                  for k in ("zero_stage", "fsdp", "dp", "cp", "tp")},
               "pipeline_schedule": self.plan.layout.pipeline_schedule,
               "mfu_at_run_precision": arr("mfu_at_run_precision")}
        src.update({k: arr(k) for k in WITH_STEP + AGAINST_STEP})
        bands = band_columns(src, self.plan.hardware, precision=self.plan.run.precision)
        out = {k: ([None] * len(gpus) if v is None else maybe(v)) for k, v in bands.items() if k != "extrapolation"}
        out["extrapolation"] = [str(x) for x in np.broadcast_to(np.asarray(bands["extrapolation"], dtype=object),
                                                                 (len(gpus),))]
        return out

    def summary(self) -> dict:
        f = self.feasible
        reasons = np.bincount(self.reason_code, minlength=len(self.reasons))
        return {
            "model": self.plan.model.name, "hardware": self.plan.hardware.name,
            "seq_len_tokens": self.plan.run.seq_len,
            "gpu_counts": [int(x) for x in self.space.gpu_counts],
            "global_batch_seqs": [int(x) for x in np.unique(self.space.cols["global_batch"])] if self.n else [],
            "rank_by": self.rank_by,
            "price_usd_per_gpu_hour": self.price_usd_per_gpu_hour,
            "training_tokens": self.plan.run.training_tokens,
            "candidates": int(self.n),
            "feasible": int(f.sum()),
            "rejected_by_reason": {self.reasons[i]: int(c) for i, c in enumerate(reasons) if c and i},
            "grid_points_evaluated": int(self.space.grid_size),
            "timings_s": dict(self.timings),
            "candidates_per_s": (self.n / self.timings["evaluate_s"]) if self.timings.get("evaluate_s") else None,
            "notes": list(self.space.notes),
        }


def _step_fixed(tb) -> np.ndarray:
    """Bubble + exposed DP comm + optimizer (:data:`planner.core.cost.STEP_FIXED_KEYS`), summed as ``run_costs``
    sums them (from 0, in that order), so the whole-run numbers match ``planner estimate`` bit for bit."""
    return sum(np.asarray(getattr(tb, k.removeprefix("time_"))) for k in STEP_FIXED_KEYS)


def _finite(v) -> Optional[float]:
    x = float(v)
    return x if math.isfinite(x) else None


#: Structural rows per call of the core: about this many grid points per chunk.
DEFAULT_CHUNK_POINTS = 1 << 18


def search(
    plan: Plan,
    constraints: Constraints = Constraints(),
    *,
    rank_by: str = "step-time",
    price_usd_per_gpu_hour: Optional[float] = None,
    chunk_points: int = DEFAULT_CHUNK_POINTS,
    progress: Optional[Callable[[int, int], None]] = None,
) -> SearchResult:
    """Enumerate, evaluate (vectorised), mask and keep a reason for every candidate layout of ``plan``.

    ``price_usd_per_gpu_hour`` overrides the price (it becomes the plan's ``schedule.price_usd_per_gpu_hour``, as
    ``--price`` does for ``planner estimate``). ``progress(done, total)`` is called after each chunk with grid
    points done and in total.
    """
    if rank_by not in RANKS:
        raise SpecError(f"search: unknown ranking {rank_by!r} (expected one of {', '.join(RANKS)})")
    if price_usd_per_gpu_hour is not None:
        if not price_usd_per_gpu_hour > 0:
            raise SpecError(f"search: price must be > 0 USD per GPU-hour, got {price_usd_per_gpu_hour}")
        plan = dataclasses.replace(plan, schedule=plan.schedule.model_copy(
            update={"price_usd_per_gpu_hour": float(price_usd_per_gpu_hour)}))
    t0 = _time.perf_counter()
    space = enumerate_space(plan, constraints)
    t1 = _time.perf_counter()

    rule_codes = _rule_codes(plan)
    reasons = [""] + rule_codes + [OOM]
    oom_code = len(reasons) - 1
    S, W = space.n_structural, space.width
    step = max(1, chunk_points // max(W, 1))
    parts_idx, parts_st, parts_fixed, parts_mem, parts_rc = [], [], [], [], []
    total = S * W
    for lo in range(0, S, step):  # a handful of chunks, each one vectorised call of the core
        hi = min(S, lo + step)
        shape = (hi - lo,) + space.switch_shape
        ex = space.exec_grid(lo, hi)
        ok, why = valid_mask(plan.model, plan.run, ex)
        ev = evaluate(plan, ex)
        st = np.broadcast_to(ev.time.step_time_s, shape)
        fixed = np.broadcast_to(_step_fixed(ev.time), shape)
        mem = np.broadcast_to(ev.memory.total_bytes, shape)
        fits = np.broadcast_to(ev.memory.fits, shape)
        rc = np.zeros(np.shape(why), dtype=np.int8)
        for code_i, code in enumerate(rule_codes, start=1):
            rc[why == code] = code_i
        rc = np.broadcast_to(rc, shape)
        rc = np.where(rc > 0, rc, np.where(fits, 0, oom_code)).astype(np.int8)
        exists = space.exists_grid(lo, hi).ravel()
        sel = np.flatnonzero(exists)
        parts_idx.append(sel + lo * W)
        parts_st.append(st.ravel()[sel])
        parts_fixed.append(fixed.ravel()[sel])
        parts_mem.append(mem.ravel()[sel])
        parts_rc.append(rc.ravel()[sel])
        if progress is not None:
            progress(hi * W, total)
    t2 = _time.perf_counter()

    def cat(parts, dtype):
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    res = SearchResult(
        plan=plan, constraints=constraints, space=space, rank_by=rank_by, grid_index=cat(parts_idx, np.int64),
        step_time_s=cat(parts_st, float), step_fixed_s=cat(parts_fixed, float),
        memory_per_gpu_bytes=cat(parts_mem, float), reason_code=cat(parts_rc, np.int8), reasons=reasons,
        timings={"enumerate_s": t1 - t0, "evaluate_s": t2 - t1},
    )
    return res


__all__ = ["Constraints", "Space", "SearchResult", "enumerate_space", "search", "gpu_counts", "divisors", "RANKS"]
