"""Collective communication time: latency + bytes x algorithm factor / bus bandwidth.

Sources: NCCL's performance notes (nccl-tests ``doc/PERFORMANCE.md``) define *bus bandwidth* so that it folds in
the algorithm factor: a ring all-reduce moves 2(n-1)/n of the message per rank, all-gather, reduce-scatter and
all-to-all (n-1)/n. So time = bytes·factor/busbw + latency, and busbw is what nccl-tests measures
(``../shared/data/microbench.yaml``: A100 8-GPU all-reduce 235 GB/s of 300 GB/s NVLink; H100 370 GB/s ring of 450).

Placement (Megatron-LM's default rank order, innermost first): tp, cp, dp (ep inside dp), pp. A group of n ranks
whose members are ``stride`` apart stays inside one node when stride·n <= GPUs per node; then it runs at the NVLink
bus bandwidth. A group that spans nodes runs its rings over the NICs of its members: DGX/HGX nodes have one NIC per
GPU (rail-optimised), and NCCL spreads its channels over all of them, so a group with k members per node reaches
k x the per-GPU NIC bandwidth (capped by NVLink). This is what nccl-tests show: a 4-node B200 all-reduce reaches
~380 GB/s busbw with 8 x 50 GB/s NICs per node (microbench.yaml, ``allreduce_busbw_1node_vs_4node_gb_s``), while a
data-parallel group with one member per node (tp = 8) has one rail, ~1 x NIC. Latency: NCCL picks tree algorithms
for small messages, so the fixed cost grows with log2(n), not n.

Left out: NVLink SHARP (NVLS) in-switch reduction (up to +30% all-reduce busbw on H100/H200 nodes, see
microbench.yaml), congestion between concurrent collectives of different groups, and message-size dependence of
busbw beyond the latency term (busbw is near its peak above ~64 MiB per collective; smaller buckets are slower).
"""

from __future__ import annotations

import numpy as np

from .layout import Num

ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, ALL_TO_ALL, P2P = "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"


def algorithm_factor(kind: str, n: Num) -> Num:
    """Bytes each rank moves per byte of message (NCCL's busbw convention)."""
    n = np.asarray(n, dtype=float)
    if kind == ALL_REDUCE:
        return 2.0 * (n - 1) / n
    if kind in (ALL_GATHER, REDUCE_SCATTER, ALL_TO_ALL):
        return (n - 1) / n
    if kind == P2P:
        return np.ones_like(n)
    raise ValueError(f"unknown collective {kind!r}")


def crosses_nodes(n: Num, stride: Num, gpus_per_node: int) -> Num:
    """Whether a group of ``n`` ranks ``stride`` apart spans more than one node."""
    return np.asarray(n) * np.asarray(stride) > gpus_per_node


def collective_time_s(
    kind: str, message_bytes: Num, n: Num, stride: Num, *, gpus_per_node: int,
    intra_busbw_bytes_per_s: float, inter_busbw_bytes_per_s: float, intra_latency_s: float, inter_latency_s: float,
) -> Num:
    """Seconds for one collective of ``message_bytes`` (the full logical message) over ``n`` ranks; 0 when n = 1."""
    n = np.asarray(n, dtype=float)
    inter = crosses_nodes(n, stride, gpus_per_node)
    per_node = np.clip(gpus_per_node // np.maximum(1, np.asarray(stride)), 1, np.maximum(n, 1))  # members per node
    busbw = np.where(inter, np.minimum(per_node * inter_busbw_bytes_per_s, intra_busbw_bytes_per_s),
                     intra_busbw_bytes_per_s)
    latency = np.where(inter, inter_latency_s, intra_latency_s) * np.maximum(1.0, np.log2(np.maximum(n, 1.0)))
    t = latency + np.asarray(message_bytes, dtype=float) * algorithm_factor(kind, n) / busbw
    return np.where(n > 1, t, 0.0)
