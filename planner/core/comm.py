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

All-gather and reduce-scatter have no tree in NCCL: they run as rings (NCCL's tuner,
``src/graph/tuning.cc`` @b6475625, skips every other algorithm for them unless NVLS or CollNet is enabled), so
their fixed cost grows with the ring, not log2 of it: a base latency plus one step per rank, each step an NVLink
hop inside a node or a network hop between nodes (:func:`ring_latency_s`). NCCL picks the protocol (LL, LL128,
Simple) with the least latency + bytes / bandwidth for each message, and so does :func:`collective_time_s`. Over
512 GPUs (64 nodes) LL128's fixed cost is ~1.1 ms, not ~0.25 ms; over 16,384 GPUs ~35 ms (LL's ~20 ms).

Left out: NVLink SHARP (NVLS) in-switch reduction (up to +30% all-reduce busbw on H100/H200 nodes, see
microbench.yaml), congestion between concurrent collectives of different groups, and message-size dependence of
busbw beyond the latency term (busbw is near its peak above ~64 MiB per collective; smaller buckets are slower).
"""

from __future__ import annotations

import numpy as np

from .layout import Num

ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, ALL_TO_ALL, P2P = "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"

#: NCCL's own latency model of ring collectives (``src/graph/tuning.cc`` @b6475625: ``baseLat``, ``hwLat`` for NVLink
#: and NET rings, the LL bandwidth discount), per protocol: (base s, s per NVLink step, s per network step, bus
#: bandwidth factor across nodes, the same inside one node). These are the tuner's constants for NVLink nodes, not
#: a profile's: PCIe nodes step slower (NCCL: 1.0 / 2.5 / 5.7 us), left out, as are LL128's per-channel caps.
RING_PROTOCOLS = {
    "LL": (6.6e-6, 0.6e-6, 2.7e-6, 1.0 / 4.0, 1.0 / 3.0),
    "LL128": (14.0e-6, 1.9e-6, 4.0e-6, 0.92, 0.92),
    "Simple": (8.4e-6, 3.4e-6, 14.0e-6, 1.0, 1.0),
}
#: NCCL's per-step network post overhead on x86 hosts (``getNetOverhead``: 1 us Intel, 2 us AMD; x3 for Simple):
#: across nodes an NVLink step of the ring costs at least this. The Intel figure is used.
NET_OVERHEAD_S = 1.0e-6


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


def ring_latency_s(n: Num, nodes: Num, protocol: str) -> Num:
    """Fixed seconds of one ring all-gather or reduce-scatter over ``n`` ranks on ``nodes`` nodes (NCCL's model):
    base + (n-1 - (nodes-1)) NVLink steps + (nodes-1) network steps; across nodes an NVLink step costs at least
    the network post overhead (x3 for Simple)."""
    base, nvl, net, _, _ = RING_PROTOCOLS[protocol]
    n, nodes = np.asarray(n, dtype=float), np.asarray(nodes, dtype=float)
    overhead = NET_OVERHEAD_S * (3.0 if protocol == "Simple" else 1.0)
    intra = np.where(nodes > 1, max(nvl, overhead), nvl)
    return base + (n - 1 - (nodes - 1)) * intra + (nodes - 1) * net


def collective_time_s(
    kind: str, message_bytes: Num, n: Num, stride: Num, *, gpus_per_node: int,
    intra_busbw_bytes_per_s: float, inter_busbw_bytes_per_s: float, intra_latency_s: float, inter_latency_s: float,
) -> Num:
    """Seconds for one collective of ``message_bytes`` (the full logical message) over ``n`` ranks; 0 when n = 1.

    All-gather and reduce-scatter: a ring, at the protocol NCCL would pick (:data:`RING_PROTOCOLS`). Others: the
    profile's latency (a tree's: x log2 n) + bytes / bus bandwidth."""
    n = np.asarray(n, dtype=float)
    inter = crosses_nodes(n, stride, gpus_per_node)
    per_node = np.clip(gpus_per_node // np.maximum(1, np.asarray(stride)), 1, np.maximum(n, 1))  # members per node
    busbw = np.where(inter, np.minimum(per_node * inter_busbw_bytes_per_s, intra_busbw_bytes_per_s),
                     intra_busbw_bytes_per_s)
    moved = np.asarray(message_bytes, dtype=float) * algorithm_factor(kind, n)
    if kind in (ALL_GATHER, REDUCE_SCATTER):
        nodes = np.where(inter, np.ceil(n / per_node), 1.0)
        t = np.minimum.reduce([ring_latency_s(n, nodes, p) + moved / (busbw * np.where(inter, f_inter, f_intra))
                               for p, (_, _, _, f_inter, f_intra) in RING_PROTOCOLS.items()])
    else:
        latency = np.where(inter, inter_latency_s, intra_latency_s) * np.maximum(1.0, np.log2(np.maximum(n, 1.0)))
        t = latency + moved / busbw
    return np.where(n > 1, t, 0.0)
