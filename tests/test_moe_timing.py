"""Fine-grained MoE in the time model (issue 12, item 2): grouped-GEMM efficiency per expert at small
tokens-per-expert, load imbalance on the busiest EP rank, dropless vs capacity-factor routing, and the EP
all-to-all placed on NVLink or the network with node-limited routing (DeepSeek-V3 §2.1.2, §3.2.2). Worked
examples by hand; dense models and balanced MoE inside a node keep their old times."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from planner.core.efficiency import TimeParams
from planner.core.kernels import gemm_efficiency, rates_of
from planner.core.time import (collective_of, ep_all_to_all_s, layer_comm_s, layer_gemms, routed_load)
from planner.core.comm import ALL_TO_ALL, P2P
from planner.registry import load_hardware, load_model
from planner.specs.model import DEFAULT_LOAD_IMBALANCE, MoESpec
from planner.specs.run import RunSpec
from helpers import plan_file_error  # noqa: E402

try:
    from conftest import make_exec
except ImportError:  # pragma: no cover
    from tests.conftest import make_exec


def _v3(**moe):
    m = load_model("deepseek-v3")
    return m.model_copy(update={"moe": m.moe.model_copy(update=moe)}) if moe else m


def _experts(gemms):
    return {g[0]: g for g in gemms if g[0].startswith("expert_")}


# ---------------------------------------------------------------- grouped GEMM per expert
def test_deepseek_v3_rows_per_expert_and_shape_efficiency():
    """256 experts, top-8, ep 64, 4,096 tokens per GPU: 4096·8·64/256 = 8,192 rows per expert (balanced), 4 local
    experts; the shape factor x/(x + 256) per dimension is 8192/8448 · 4096/4352 · 7168/7424 = 0.881 for the
    gate+up GEMM. Without EP each of the 256 local experts gets 128 rows: 0.303."""
    m = _v3(load_imbalance=1.0)
    g = _experts(layer_gemms(m, make_exec(ep=64, dp=64), False, True, 4096, 0)[0])
    label, rows, n, k, count = g["expert_up"]
    assert (rows, n, k, count) == (8192, 4096, 7168, 4)
    eff = TimeParams(matmul_fraction=1.0, gemm_half_dim=256.0)
    assert float(gemm_efficiency(rows, n, k, eff)) == pytest.approx(8192 / 8448 * 4096 / 4352 * 7168 / 7424)
    assert float(gemm_efficiency(rows, n, k, eff)) == pytest.approx(0.8812, abs=1e-4)
    g1 = _experts(layer_gemms(m, make_exec(), False, True, 4096, 0)[0])
    assert g1["expert_up"][1] == 128 and g1["expert_up"][4] == 256
    assert float(gemm_efficiency(*g1["expert_up"][1:4], eff)) == pytest.approx(0.3029, abs=1e-4)


def test_small_experts_cost_more_time_than_their_flops_say():
    """Same routed FLOPs, per-expert GEMMs: at ep 1 DeepSeek-V3's experts (128 rows each) take longer than at ep 64
    (8,192 rows each) on one GPU's share of the work, because the shape efficiency applies per expert."""
    from planner.core.kernels import gemm_pass_s
    m = _v3(load_imbalance=1.0)
    hw = load_hardware("h800")
    r = rates_of(hw, RunSpec(seq_len=4096, global_batch_seqs=1), 2.0)

    def expert_s(ex):
        g = _experts(layer_gemms(m, ex, False, True, 4096, 0)[0])
        return sum(c * gemm_pass_s(gm, gn, gk, r)[1] for _, gm, gn, gk, c in g.values())
    # same total rows x experts (4096·8 routed rows per GPU): ep 64 does 4 experts x 8192 rows
    assert float(expert_s(make_exec())) > 1.5 * float(expert_s(make_exec(ep=64, dp=64)))


# ---------------------------------------------------------------- load imbalance, dropless vs capacity
def test_default_load_imbalance_is_the_sourced_prior():
    assert DEFAULT_LOAD_IMBALANCE == 1.1
    assert MoESpec(num_experts=8, top_k=2).load_imbalance == 1.1


@pytest.mark.parametrize("imb, cf, ep, want", [
    (1.3, None, 64, 1.3),    # dropless: the busiest rank carries the imbalance
    (1.3, 1.25, 64, 1.25),   # capacity factor caps it
    (1.1, 2.0, 64, 1.1),     # a loose cap does nothing
    (1.3, None, 1, 1.0),     # one GPU holds every expert: all routed work, whatever the split
    (1.3, 0.8, 1, 0.8),      # c < 1 drops tokens even balanced
])
def test_routed_load(imb, cf, ep, want):
    moe = MoESpec(num_experts=256, top_k=8, load_imbalance=imb, capacity_factor=cf)
    assert float(routed_load(moe, ep)) == pytest.approx(want)


def test_imbalance_scales_expert_rows_not_shared_or_router():
    """Worked: ep 64, imbalance 1.25 -> 8192 x 1.25 = 10,240 rows per expert on the busiest rank; the shared
    expert and router keep 4,096 rows."""
    g = {x[0]: x for x in layer_gemms(_v3(load_imbalance=1.25), make_exec(ep=64, dp=64), False, True, 4096, 0)[0]}
    assert g["expert_up"][1] == pytest.approx(10240) and g["expert_down"][1] == pytest.approx(10240)
    assert g["shared_up"][1] == 4096 and g["router"][1] == 4096
    capped = {x[0]: x for x in layer_gemms(_v3(load_imbalance=1.25, capacity_factor=1.0), make_exec(ep=64, dp=64),
                                           False, True, 4096, 0)[0]}
    assert capped["expert_up"][1] == pytest.approx(8192)


def test_default_imbalance_capped_where_every_token_goes_everywhere():
    """top_k = E (every token to every expert): the default 1.1 is capped at E/top_k = 1; a given value above that
    bound is an error."""
    moe = MoESpec(num_experts=8, top_k=8)
    assert float(routed_load(moe, 8)) == 1.0
    assert MoESpec(num_experts=8, top_k=8, load_imbalance=1.1).load_imbalance == 1.1  # a dumped plan repeats it
    with pytest.raises(ValidationError, match=r"moe.load_imbalance\(1.5\) > moe.num_experts\(8\)/moe.top_k\(8\) = 1"):
        MoESpec(num_experts=8, top_k=8, load_imbalance=1.5)


def test_vectorised_over_ep():
    m = _v3(load_imbalance=1.2)
    ep = np.array([1, 8, 64])
    g = _experts(layer_gemms(m, make_exec(ep=ep, dp=64), False, True, 4096, 0)[0])
    np.testing.assert_allclose(g["expert_up"][1], [128, 128 * 8 * 1.2, 128 * 64 * 1.2])


# ---------------------------------------------------------------- EP all-to-all placement
def _comm(model, hw_name, **ex):
    hw = load_hardware(hw_name)
    run = RunSpec(seq_len=4096, global_batch_seqs=1)
    r = rates_of(hw, run, 2.0)
    coll = collective_of(hw, r.eff)
    return model, make_exec(**ex), r, coll


def test_inside_a_node_balanced_is_the_plain_all_to_all():
    """ep·tp·cp <= 8 on an HGX node: the NVLink all-to-all of m_tok·top_k·d·e bytes, as before (load 1)."""
    m, ex, r, coll = _comm(_v3(load_imbalance=1.0), "h800", ep=8, dp=8)
    want = coll(ALL_TO_ALL, 4096 * 8 * 7168 * 2.0, 8, 1)
    assert float(ep_all_to_all_s(m, ex, r, coll, 4096)) == pytest.approx(float(want))
    m2, *_ = _comm(_v3(load_imbalance=1.5), "h800")
    assert float(ep_all_to_all_s(m2, ex, r, coll, 4096)) == pytest.approx(
        float(coll(ALL_TO_ALL, 1.5 * 4096 * 8 * 7168 * 2.0, 8, 1)))


def test_deepseek_v3_ep64_across_8_nodes_network_copies():
    """DeepSeek-V3 §3.2: ep 64 spans 8 nodes of 8 H800. Plain routing: each token's 8 copies go to uniformly
    spread experts, 7/8 of them off-node: 8·7/8 = 7 network copies per token through the GPU's own NIC.
    Node-limited (M = 4): 4·7/8 = 3.5 copies, half the network time."""
    hw = load_hardware("h800")
    m, ex, r, coll = _comm(_v3(load_imbalance=1.0, max_nodes_per_token=None), "h800", ep=64, dp=64)
    tok = 4096 * 7168 * 2.0
    plain = float(ep_all_to_all_s(m, ex, r, coll, 4096))
    assert plain == pytest.approx(max(float(coll(P2P, tok * 7, 2, 8)), float(coll(P2P, tok * 8 * 7 / 64, 2, 1))))
    nic = hw.network.inter_node_bandwidth_bytes_per_s.value * r.eff.network_busbw_fraction
    assert plain == pytest.approx(tok * 7 / nic, rel=0.01)  # network-bound, latency negligible
    limited = float(ep_all_to_all_s(_v3(load_imbalance=1.0, max_nodes_per_token=4), ex, r, coll, 4096))
    assert limited == pytest.approx(tok * 3.5 / nic, rel=0.01)
    assert limited < 0.55 * plain


def test_gb200_nvl72_keeps_ep64_on_nvlink():
    """GB200 NVL72: one NVLink domain of 72 GPUs, so ep 64 (tp 1) stays on NVLink: far faster than on 8-GPU
    nodes of the same NIC bandwidth class."""
    m = _v3(load_imbalance=1.0, max_nodes_per_token=None)
    _, ex, r72, c72 = _comm(m, "gb200-nvl72", ep=64, dp=64)
    _, _, r8, c8 = _comm(m, "b200", ep=64, dp=64)
    assert r72.gpus_per_node == 72
    t72 = float(ep_all_to_all_s(m, ex, r72, c72, 4096))
    assert t72 == pytest.approx(float(c72(ALL_TO_ALL, 4096 * 8 * 7168 * 2.0, 64, 1)))
    assert t72 < 0.5 * float(ep_all_to_all_s(m, ex, r8, c8, 4096))
    # tp 2 x ep 64 = 128 GPUs: crosses the rack
    _, ex2, _, _ = _comm(m, "gb200-nvl72", ep=64, dp=64, tp=2)
    assert float(ep_all_to_all_s(m, ex2, r72, c72, 4096)) > t72


def test_layer_comm_uses_four_all_to_alls_and_dense_has_none():
    m, ex, r, coll = _comm(_v3(max_nodes_per_token=4), "h800", ep=64, dp=64)
    _, _, ep_c, _ = layer_comm_s(m, ex, r, coll, False, True, 4096, 0.0)
    assert float(ep_c) == pytest.approx(4 * float(ep_all_to_all_s(m, ex, r, coll, 4096)))
    assert layer_comm_s(m, ex, r, coll, False, False, 4096, 0.0)[2] == 0.0


def test_vectorised_placement():
    m, _, r, coll = _comm(_v3(load_imbalance=1.0, max_nodes_per_token=4), "h800")
    ex = make_exec(ep=np.array([1, 8, 64]), dp=64, tp=np.array([1, 1, 1]))
    t = ep_all_to_all_s(m, ex, r, coll, 4096)
    assert t.shape == (3,) and t[0] == 0.0 and 0 < t[1] < t[2]


# ---------------------------------------------------------------- validation: one line naming field and numbers
@pytest.mark.parametrize("kw, message", [
    (dict(load_imbalance=0.9), "load_imbalance"),
    (dict(load_imbalance=40.0), "moe.load_imbalance(40) > moe.num_experts(8)/moe.top_k(2) = 4"),
    (dict(max_nodes_per_token=3), "moe.max_nodes_per_token(3) > moe.top_k(2)"),
    (dict(max_nodes_per_token=0), "max_nodes_per_token"),
    (dict(capacity_factor=0.0), "capacity_factor"),
])
def test_invalid_moe_fields(kw, message):
    with pytest.raises(ValidationError) as exc:
        MoESpec(num_experts=8, top_k=2, **kw)
    assert message in str(exc.value)


def test_invalid_field_is_one_line_from_a_plan(tmp_path):
    msg = plan_file_error(tmp_path, "model: {extends: mixtral-8x7b, moe: {num_experts: 8, top_k: 2, "
                          "max_nodes_per_token: 5}}\nhardware: h100-sxm\nrun: {seq_len: 4096, global_batch_seqs: 64}\n"
                          "layout: {gpus: 64}\n")
    assert "moe.max_nodes_per_token(5) > moe.top_k(2)" in msg


def test_deepseek_v3_preset_routes_node_limited():
    assert load_model("deepseek-v3").moe.max_nodes_per_token == 4
