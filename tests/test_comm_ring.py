"""All-gather and reduce-scatter are rings in NCCL, so their fixed cost grows with the ring (issue 15 item 3).

NCCL's tuner (src/graph/tuning.cc @b6475625) gives them no tree: latency = base + one step per rank, NVLink steps
inside a node and network steps between nodes, per protocol (LL, LL128, Simple), and picks the protocol with the
least latency + bytes / bandwidth. planner/core/comm.py follows it; all-reduce keeps its tree-like log2 cost."""

from __future__ import annotations

import numpy as np
import pytest

from planner.core.comm import ALL_GATHER, ALL_REDUCE, REDUCE_SCATTER, collective_time_s, ring_latency_s

LINKS = dict(gpus_per_node=8, intra_busbw_bytes_per_s=200e9, inter_busbw_bytes_per_s=25e9,
             intra_latency_s=15e-6, inter_latency_s=25e-6)


def test_a_16k_rank_all_gather_by_hand():
    """1 MB over 16,384 ranks, 8 per node (2,048 nodes): LL wins, 6.6 us + 14,336 NVLink steps at the 1 us network
    post overhead + 2,047 network steps of 2.7 us, plus the bytes at a quarter of the 200 GB/s bus bandwidth
    (8 NICs x 25 GB/s, NVLink-capped)."""
    n, nbytes = 16384, 1e6
    lat = 6.6e-6 + 14336 * 1.0e-6 + 2047 * 2.7e-6
    want = lat + nbytes * (n - 1) / n / (200e9 / 4)
    assert collective_time_s(ALL_GATHER, nbytes, n, 1, **LINKS) == pytest.approx(want, rel=1e-9)
    assert want == pytest.approx(19.9e-3, rel=0.01)


def test_each_protocol_and_the_pick():
    """LL128 at 512 ranks on 64 nodes: 14 + 448 x 1.9 + 63 x 4.0 us = 1.117 ms; the collective takes the least of
    the three protocols' latency + bytes / bandwidth, as NCCL's tuner does."""
    assert ring_latency_s(512, 64, "LL128") == pytest.approx(1117.2e-6)
    assert ring_latency_s(8, 1, "Simple") == pytest.approx(8.4e-6 + 7 * 3.4e-6)
    for nbytes in (1e4, 1e6, 1e8, 1e10):
        got = collective_time_s(REDUCE_SCATTER, nbytes, 512, 1, **LINKS)
        moved = nbytes * 511 / 512
        options = [ring_latency_s(512, 64, "LL") + moved / (200e9 / 4),
                   ring_latency_s(512, 64, "LL128") + moved / (200e9 * 0.92),
                   ring_latency_s(512, 64, "Simple") + moved / 200e9]
        assert got == pytest.approx(min(options)) and got >= moved / 200e9


def test_ring_cost_grows_with_the_ring_and_all_reduce_keeps_its_tree():
    small = 1e5  # latency-bound
    ag = [float(collective_time_s(ALL_GATHER, small, n, 1, **LINKS)) for n in (1024, 2048, 4096)]
    assert ag[1] / ag[0] == pytest.approx(2.0, rel=0.05) and ag[2] / ag[1] == pytest.approx(2.0, rel=0.05)
    ar = [float(collective_time_s(ALL_REDUCE, small, n, 1, **LINKS)) for n in (1024, 4096)]
    assert ar[1] / ar[0] < 1.3  # 25 us x log2(n): 250 -> 300 us, plus the same bytes
    # vectorised like every core function: one call over many group sizes equals the calls one by one
    ns = np.array([2, 8, 64, 4096])
    assert np.allclose(collective_time_s(ALL_GATHER, 1e6, ns, 1, **LINKS),
                       [collective_time_s(ALL_GATHER, 1e6, int(x), 1, **LINKS) for x in ns])
