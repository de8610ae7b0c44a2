"""The pure cost function: hand-computed branches, sharing, failures and monotonicity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satedge.sim import channels
from satedge.sim.constants import C_M_S
from satedge.sim.cost import processor_sharing_s
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import resolve
from satedge.sim.state import SlotState, TaskStatus

NET = EdgeNetwork(resolve("default"))
SC = NET.scenario
M = SC.n_uavs


def _state(seed: int) -> SlotState:
    return NET.reset([np.random.default_rng(seed)])


def _only(state: SlotState, keep: list[int], open_mask: bool = True) -> SlotState:
    """The state with every task but ``keep`` idle (and, optionally, every server allowed)."""
    n = np.zeros_like(state.tasks.n_requests)
    n[:, keep] = np.maximum(state.tasks.n_requests[:, keep], 1)
    out = replace(state, tasks=replace(state.tasks, n_requests=n))
    return replace(out, mask=np.ones_like(state.mask)) if open_mask else out


def test_processor_sharing_hand_values() -> None:
    alone = np.array([[1.0, 2.0, 3.0, 5.0]])
    server = np.array([[0, 0, 0, 1]])
    # T_i = sum_j min(t_i, t_j): 1+1+1, 1+2+2, 1+2+3; the task alone on server 1 keeps 5.
    out = processor_sharing_s(alone, server, np.ones((1, 4), dtype=bool))
    np.testing.assert_allclose(out, [[3.0, 5.0, 6.0, 5.0]])
    out = processor_sharing_s(alone, server, np.array([[True, False, True, True]]))
    np.testing.assert_allclose(out, [[2.0, 0.0, 4.0, 5.0]])


def test_uav_branch_hand_computed() -> None:
    st = _only(_state(1), [0])
    p = 0.1
    out = NET.cost(st, np.zeros((1, SC.n_iotds), dtype=np.int64), np.full((1, SC.n_iotds), p))
    t = st.tasks
    n0 = 10 ** ((SC.channel.noise_psd_dbm_hz - 30) / 10)
    b, g = SC.uav.bandwidth_hz, st.uav_gain[0, 0, 0]
    rate_up = b * np.log2(1 + p * g / (n0 * b))  # alone on UAV 0: full band, no interference
    rate_dn = b * np.log2(1 + SC.uav.tx_power_w * g / (n0 * b))
    srv = NET.servers
    alone = ((t.text_tokens[0, 0] + t.n_requests[0, 0] * srv.vision_tokens[0])
             * srv.s_per_input_token[0] + t.output_tokens[0, 0] * srv.s_per_output_token[0])
    out_bits = t.output_tokens[0, 0] * SC.tasks.bits_per_output_token
    latency = t.upload_bits[0, 0] / rate_up + alone + out_bits / rate_dn
    energy = (p * t.upload_bits[0, 0] / rate_up + SC.uav.compute_power_w * alone
              + SC.uav.tx_power_w * out_bits / rate_dn)
    assert out.latency_s[0, 0] == pytest.approx(latency, rel=1e-12)
    assert out.energy_j[0, 0] == pytest.approx(energy, rel=1e-12)
    assert out.cost[0] == pytest.approx(SC.cost.latency_weight_per_s * latency
                                        + SC.cost.energy_weight_per_j * energy)
    assert out.status[0, 0] == TaskStatus.OK or latency > t.deadline_s[0, 0]


def test_satellite_branch_hand_computed() -> None:
    st = _only(_state(2), [3])
    cand = 2
    server = np.full((1, SC.n_iotds), M + cand)
    p = 0.2
    out = NET.cost(st, server, np.full((1, SC.n_iotds), p))
    t = st.tasks
    n0 = 10 ** ((SC.channel.noise_psd_dbm_hz - 30) / 10)
    g = st.sat_gain[0, 3]
    bu, bd = SC.satellite.uplink_bandwidth_hz, SC.satellite.downlink_bandwidth_hz
    rate_up = bu * np.log2(1 + p * g / (n0 * bu))
    rate_dn = bd * np.log2(1 + SC.satellite.tx_power_w * g / (n0 * bd))
    srv, s = NET.servers, M + cand
    alone = ((t.text_tokens[0, 3] + t.n_requests[0, 3] * srv.vision_tokens[s])
             * srv.s_per_input_token[s] + t.output_tokens[0, 3] * srv.s_per_output_token[s])
    d, s_l = t.upload_bits[0, 3], t.output_tokens[0, 3] * SC.tasks.bits_per_output_token
    hops, path = st.candidate_hops[0, cand], st.candidate_path_m[0, cand]
    assert hops >= 1 and path > 0
    isl = hops * (d + s_l) / SC.satellite.isl_rate_bps
    prop = 2 * (st.slant_range_m[0] + path) / C_M_S
    latency = d / rate_up + isl + prop + alone + s_l / rate_dn
    energy = (p * d / rate_up + SC.satellite.isl_power_w * isl
              + SC.satellite.compute_power_w * alone + SC.satellite.tx_power_w * s_l / rate_dn)
    assert out.latency_s[0, 3] == pytest.approx(latency, rel=1e-12)
    assert out.energy_j[0, 3] == pytest.approx(energy, rel=1e-12)
    assert out.propagation_s[0, 3] == pytest.approx(prop)
    assert 1.1e-3 < st.slant_range_m[0] / C_M_S < 6e-3  # 500 km overhead to ~1.7 Mm at 10 deg


def test_failures_by_cause() -> None:
    st = _only(_state(3), [0, 1, 2, 3], open_mask=False)
    mask = st.mask.copy()
    mask[0, 0] = False  # task 0: nothing feasible -> dropped
    mask[0, 1, :] = True
    mask[0, 1, 0] = False  # task 1: sent to the masked server 0 -> infeasible
    mask[0, 2:4] = True
    st = replace(st, mask=mask, tasks=replace(st.tasks, deadline_s=np.array(
        [[9e9, 9e9, 1e-6, 9e9] + [9e9] * (SC.n_iotds - 4)])))
    st = replace(st, set_time_s=st.time_s + 1e-3)  # the access satellite sets in 1 ms
    server = np.array([[0, 0, 0, M] + [0] * (SC.n_iotds - 4)])
    out = NET.cost(st, server, np.full((1, SC.n_iotds), 0.1))
    assert list(out.status[0, :4]) == [TaskStatus.DROPPED, TaskStatus.INFEASIBLE,
                                       TaskStatus.DEADLINE, TaskStatus.VISIBILITY]
    assert np.all(out.status[0, 4:] == TaskStatus.IDLE)
    assert out.latency_s[0, 0] == out.latency_s[0, 1] == 0.0 and out.energy_j[0, 1] == 0.0
    c = SC.cost
    assert out.penalty[0] == pytest.approx(c.drop_penalty + c.infeasible_penalty
                                           + c.deadline_penalty + c.visibility_penalty)


def test_cost_is_pure() -> None:
    st = _state(4)
    before = st.tasks.upload_bits.copy(), st.mask.copy()
    server = np.argmax(st.mask, axis=-1)
    a = NET.cost(st, server, np.full((1, SC.n_iotds), 0.05))
    b = NET.cost(st, server, np.full((1, SC.n_iotds), 0.05))
    np.testing.assert_array_equal(a.latency_s, b.latency_s)
    np.testing.assert_array_equal(before[0], st.tasks.upload_bits)
    np.testing.assert_array_equal(before[1], st.mask)


def test_mask_rules() -> None:
    for seed in range(20):
        st = _state(seed)
        t, acc = st.tasks, NET.servers.accuracy
        active = t.active[0]
        needs = t.accuracy_min[0][:, None]
        mask = st.mask[0]
        assert np.all(mask[~active])
        assert not np.any(mask[active] & (acc[None, :] < needs[active]))
        far = st.uav_horizontal_m[0] > SC.uav.coverage_radius_m
        assert not np.any(mask[:, :M][active[:, None] & far])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_extra_task_never_shortens_others(seed: int, data: st.DataObject) -> None:
    full = _state(seed)
    k = SC.n_iotds
    server = np.array([data.draw(st.lists(st.integers(0, SC.n_servers - 1), min_size=k,
                                          max_size=k))])
    power = np.array([data.draw(st.lists(st.floats(0.01, 0.2), min_size=k, max_size=k))])
    extra = data.draw(st.integers(0, k - 1))
    others = [i for i in range(k) if i != extra]
    without = NET.cost(_only(full, others), server, power)
    with_it = NET.cost(_only(full, [*others, extra]), server, power)
    assert np.all(with_it.latency_s[0, others] >= without.latency_s[0, others] - 1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(0, 9), srv=st.integers(0, 7),
       p=st.floats(0.01, 0.19), dp=st.floats(1e-4, 0.1))
def test_more_power_never_slows_own_upload(seed: int, k: int, srv: int, p: float,
                                           dp: float) -> None:
    st_ = _only(_state(seed), list(range(SC.n_iotds)))
    server = np.array([[srv] * SC.n_iotds])
    low = np.full((1, SC.n_iotds), p)
    high = low.copy()
    high[0, k] = min(p + dp, 0.2)
    a, b = NET.cost(st_, server, low), NET.cost(st_, server, high)
    assert b.upload_s[0, k] <= a.upload_s[0, k] * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(0, 9), p=st.floats(0.01, 0.15))
def test_louder_iotd_never_speeds_up_other_cells(seed: int, k: int, p: float) -> None:
    st_ = _only(_state(seed), list(range(SC.n_iotds)))
    server = np.array([[i % M for i in range(SC.n_iotds)]])  # spread over all UAVs
    low = np.full((1, SC.n_iotds), p)
    high = low.copy()
    high[0, k] = 0.2
    a, b = NET.cost(st_, server, low), NET.cost(st_, server, high)
    other_cells = server[0] != server[0, k]
    assert np.all(b.upload_s[0, other_cells] >= a.upload_s[0, other_cells] * (1 - 1e-12))
    assert b.upload_s[0, k] <= a.upload_s[0, k] * (1 + 1e-12)
    assert channels.shannon_rate_bps(1e6, 1.0) == pytest.approx(1e6)


def test_alone_times_formula_and_reuse() -> None:
    st = _state(6)
    t, srv = st.tasks, NET.servers
    alone = srv.alone_time_s(t)
    ref = ((t.text_tokens[..., None] + t.n_requests[..., None] * srv.vision_tokens)
           * srv.s_per_input_token + t.output_tokens[..., None] * srv.s_per_output_token)
    np.testing.assert_array_equal(alone, ref)  # same operations, so bit for bit
    assert srv.alone_by_server_s(t) is srv.alone_by_server_s(t)  # mask and cost share it
    changed = replace(t, n_requests=t.n_requests + 1)
    np.testing.assert_array_equal(srv.alone_time_s(changed)[..., 0] - alone[..., 0],
                                  srv.vision_tokens[0] * srv.s_per_input_token[0])


def test_status_counts_match_direct_counts() -> None:
    net = EdgeNetwork(resolve("default"))
    rngs = [np.random.default_rng(s) for s in range(8)]
    st = net.reset(rngs)
    rng = np.random.default_rng(1)
    server = rng.integers(0, SC.n_servers, (8, SC.n_iotds))
    out = net.cost(st, server, np.full((8, SC.n_iotds), 0.1))
    for status in TaskStatus:
        np.testing.assert_array_equal(out.count(status), np.sum(out.status == status, axis=-1))
    np.testing.assert_array_equal(out.n_active, np.sum(out.status != TaskStatus.IDLE, axis=-1))
    assert out.status_counts.sum() == out.status.size
