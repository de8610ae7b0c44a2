"""AD-SAC's ``move_values="simulated"``: UAV moves trained on a one-slot lookahead with the
simulator's pure cost function (``search_uav_moves``, the loop's move targets) instead of the
critic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig, SharedContinuousActor
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.offpolicy import collect, move_target_table
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import (
    MOVE_CANDIDATES,
    GreedyPolicy,
    MoveSearch,
    move_candidates,
    search_uav_moves,
)
from satedge.envs.encoding import observation_size
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim import channels
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import (
    fit_mode,
    last_linear_grad,
    reset_state,
    small_adsac,
    target_batch,
)
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
STEP = SC.uav.speed_max_m_s * SC.slot_s


def _state(seed: int = 1, n: int = 4) -> tuple[MllmOffloadVectorEnv, SlotState]:
    return reset_state(SC, seed, n)


def _large(sc: Scenario, horizontal: np.ndarray) -> np.ndarray:
    return channels.ground_uav_large_scale_gain(np.sqrt(horizontal**2 + sc.uav.altitude_m**2),
                                                sc.channel.beta0_db,
                                                sc.channel.path_loss_exponent)


def test_uav_positions_what_if_keeps_the_fading_and_follows_the_geometry() -> None:
    env, state = _state()
    net = env.network
    same = net.with_uav_positions(state, state.uav_xy_m)
    np.testing.assert_allclose(same.uav_gain, state.uav_gain, rtol=1e-12)
    np.testing.assert_array_equal(same.mask, state.mask)
    shift = np.array([[150.0, -90.0], [-40.0, 0.0], [0.0, 300.0]])
    xy = np.clip(state.uav_xy_m + shift, 0, SC.area_m)
    moved = net.with_uav_positions(state, xy)
    want = channels.horizontal_distance_m(state.iotd_xy_m, xy)
    np.testing.assert_allclose(moved.uav_horizontal_m, want)
    # small-scale fading is the same draw: gain / large-scale gain is unchanged
    np.testing.assert_allclose(moved.uav_gain / _large(SC, want),
                               state.uav_gain / _large(SC, state.uav_horizontal_m), rtol=1e-10)
    out = (want > SC.uav.coverage_radius_m) & state.tasks.active[..., None]
    assert out.any() and not moved.mask[..., :M][out].any()  # coverage follows the UAVs
    np.testing.assert_array_equal(moved.mask[..., M:], state.mask[..., M:])
    np.testing.assert_array_equal(moved.tasks.n_requests, state.tasks.n_requests)


def test_moved_positions_are_what_the_environment_applies() -> None:
    env, state = _state()
    move = np.random.default_rng(0).uniform(-90, 90, state.uav_xy_m.shape)
    nxt = env.network.advance(state, move, [np.random.default_rng(i) for i in range(4)])
    np.testing.assert_array_equal(env.network.moved_uav_xy(state.uav_xy_m, move), nxt.uav_xy_m)


def test_candidates() -> None:
    c = move_candidates(4, (0.5,))
    np.testing.assert_allclose(c, [[0, 0], [0.5, 0], [0, 0.5], [-0.5, 0], [0, -0.5]], atol=1e-12)
    assert MOVE_CANDIDATES.shape == (17, 2) and np.abs(MOVE_CANDIDATES).max() < 1.0


def _all_on_uav0(state: SlotState, net: EdgeNetwork) -> tuple[SlotState, np.ndarray, np.ndarray]:
    """Every task on UAV 0 at full power, UAV 0 put 200 m west of the active IoTDs' centroid."""
    server = np.zeros((state.batch_size, K), np.int64)
    power = np.full((state.batch_size, K), SC.iotd.power_max_w)
    act = state.tasks.active
    centroid = (state.iotd_xy_m * act[..., None]).sum(1) / act.sum(1, keepdims=True)
    xy = state.uav_xy_m.copy()
    xy[:, 0] = np.clip(centroid - [200.0, 0.0], 0.0, SC.area_m)
    return net.with_uav_positions(state, xy), server, power


def test_search_prices_every_candidate_like_the_cost_function() -> None:
    env, state = _state(3)
    net = env.network
    state, server, power = _all_on_uav0(state, net)
    given = np.random.default_rng(1).uniform(-1, 1, (state.batch_size, M, 2))
    best, gain, spread = search_uav_moves(net, state, server, power, given)
    assert best.shape == (4, M, 2) and gain.shape == spread.shape == (4, M)
    for b in range(state.batch_size):
        for m in range(M):
            values = []
            for cand in np.concatenate([given[b, m][None], MOVE_CANDIDATES]):
                moves = given[b].copy()
                moves[m] = cand
                xy = net.moved_uav_xy(state.uav_xy_m[b:b + 1], moves[None] * STEP)
                st = net.with_uav_positions(state.take([b]), xy)
                values.append(env_reward(SC, net.cost(st, server[b:b + 1], power[b:b + 1]))[0])
            v = np.array(values)
            np.testing.assert_allclose(best[b, m], np.concatenate([given[b, m][None],
                                                                   MOVE_CANDIDATES])[v.argmax()])
            np.testing.assert_allclose(gain[b, m], v.max() - v[0], atol=1e-12)
            np.testing.assert_allclose(spread[b, m], np.ptp(v), atol=1e-12)
    # only UAV 0 serves: its position matters, the others' does not (their given move kept)
    assert (spread[:, 0] > 0).all() and (spread[:, 1:] == 0).all() and (gain >= 0).all()
    np.testing.assert_array_equal(best[:, 1:], given[:, 1:])
    # UAV 0 is west of its IoTDs: the best move heads east
    assert (best[:, 0, 0] > 0.3).all()


def test_an_extra_candidate_per_uav_is_priced_after_the_fixed_ones() -> None:
    """``extra`` (here greedy's centroid moves) is one more candidate per UAV, priced like the
    fixed ones; without it the result is the plain search's."""
    env, state = _state(3)
    net = env.network
    state, server, power = _all_on_uav0(state, net)
    given = np.zeros((state.batch_size, M, 2))
    hover = np.zeros((1, 2))
    centroid = GreedyPolicy.uav_moves(net, state, server)
    best, gain, _ = search_uav_moves(net, state, server, power, given, hover, extra=centroid)
    plain, plain_gain, _ = search_uav_moves(net, state, server, power, given, hover)
    np.testing.assert_array_equal(plain, given)  # hover only: nothing to gain
    assert (plain_gain == 0).all()
    # UAV 0 serves everything: its centroid move is priced like any other move
    for b in range(state.batch_size):
        values = []
        for cand in (given[b, 0], centroid[b, 0]):
            moves = given[b].copy()
            moves[0] = cand
            xy = net.moved_uav_xy(state.uav_xy_m[b:b + 1], moves[None] * STEP)
            st = net.with_uav_positions(state.take([b]), xy)
            values.append(env_reward(SC, net.cost(st, server[b:b + 1], power[b:b + 1]))[0])
        np.testing.assert_allclose(gain[b, 0], max(values[1] - values[0], 0.0), atol=1e-12)
        np.testing.assert_allclose(best[b, 0], centroid[b, 0] if values[1] > values[0]
                                   else given[b, 0])
    assert (gain[:, 0] > 0).sum() >= 2  # it wins where UAV 0 is far from its IoTDs


def test_the_loop_adds_the_centroid_candidate_only_when_asked() -> None:
    env, state = _state(4)
    rng = np.random.default_rng(3)
    action = AgentAction(np.argmax(state.mask * rng.random(state.mask.shape), axis=-1),
                         rng.uniform(-1, 1, (4, K + 2 * M)).astype(np.float32))
    server, power, _ = env.decode(to_env_action(action, K, M))
    moves = action.continuous[:, K:].reshape(-1, M, 2)
    with_c = move_target_table(env, state, action, centroid=True)
    best, _, _ = search_uav_moves(env.network, state, server, power, moves,
                                  extra=GreedyPolicy.uav_moves(env.network, state, server))
    np.testing.assert_allclose(with_c[..., :2], best, rtol=1e-6)
    plain = move_target_table(env, state, action)
    ref, _, _ = search_uav_moves(env.network, state, server, power, moves)
    np.testing.assert_allclose(plain[..., :2], ref, rtol=1e-6)
    with pytest.raises(ValueError, match="move_centroid"):
        AdSacConfig(move_centroid=True)


def test_the_registered_centroid_combination(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv-ctr",
                                "adsac-exact-geo-ar-search-cond-pow-srv", {"move_centroid": True})
    assert isinstance(agent, AdSac) and agent.move_centroid_candidate
    assert not check_registered_as(tmp_path / "plain", "adsac-exact-geo-ar-search-cond-pow-srv",
                                   "adsac-exact-geo-ar-search-cond-pow",
                                   {"server_search": 8}).move_centroid_candidate


def test_move_search_policy_keeps_the_base_action_but_the_moves() -> None:
    env, state = _state(5)
    base = GreedyPolicy().act(env.network, state, np.random.default_rng(0))
    got = MoveSearch(GreedyPolicy()).act(env.network, state, np.random.default_rng(0))
    np.testing.assert_array_equal(got["offload"], base["offload"])
    np.testing.assert_array_equal(got["power"], base["power"])
    server, power, _ = env.decode(base)
    best, _, _ = search_uav_moves(env.network, state, server, power, np.asarray(base["uav"]))
    np.testing.assert_allclose(got["uav"], best)


def test_loop_stores_the_move_targets_of_each_transition() -> None:
    env, state = _state(2)
    rng = np.random.default_rng(2)
    mask = state.mask
    a_d = np.argmax(mask * rng.random(mask.shape), axis=-1)
    action = AgentAction(a_d, rng.uniform(-1, 1, (4, K + 2 * M)).astype(np.float32))
    want = move_target_table(env, state, action)
    assert want.shape == (4, M, 3) and want.dtype == np.float32
    server, power, _ = env.decode(to_env_action(action, K, M))
    best, _, spread = search_uav_moves(env.network, state, server, power,
                                       action.continuous[:, K:].reshape(4, M, 2))
    np.testing.assert_allclose(want[..., :2], best, rtol=1e-6)
    np.testing.assert_allclose(want[..., 2], spread, rtol=1e-6)
    buf = ReplayBuffer(50, observation_size(SC), K, S, K + 2 * M, move_targets=True)
    assert buf.stores_move_targets
    plain = ReplayBuffer(50, observation_size(SC), K, S, K + 2 * M)
    assert buf.nbytes_per_transition == plain.nbytes_per_transition + 4 * 3 * M
    collect(env, env.observe(), mask, action, [buf], [rng], True)
    data = buf.state_dict()
    np.testing.assert_array_equal(data["move_targets"][:4], want)
    # the unavailable-action copies keep their transition's continuous action and targets
    for row in range(4, len(buf)):
        src = int(np.flatnonzero((data["action_c"][:4] == data["action_c"][row]).all(-1))[0])
        np.testing.assert_array_equal(data["move_targets"][row], want[src])
    assert buf.sample(8, rng).move_targets is not None
    with pytest.raises(ValueError, match="move_targets"):
        plain.add(data["obs"][:1], data["action_d"][:1], data["action_c"][:1],
                  data["reward"][:1], data["next_obs"][:1], data["terminated"][:1],
                  data["mask"][:1], data["next_mask"][:1], move_targets=data["move_targets"][:1])


OBS_DIM, A = 6, K + 2 * M


def _batch(n: int = 32, targets: np.ndarray | None = None) -> ReplayBatch:
    t = (torch.rand(n, M, 3, generator=torch.Generator().manual_seed(4)) * 1.6 - 0.8).abs() \
        if targets is None else torch.as_tensor(targets, dtype=torch.float32)
    return target_batch(n, OBS_DIM, K, S, A, move_targets=t)


def _agent(seed: int = 0, **cfg: object) -> AdSac:
    return small_adsac(OBS_DIM, K, S, A, seed, **{"move_values": "simulated", **cfg})


def test_move_loss_by_hand() -> None:
    agent = _agent(move_weight=0.5)
    assert agent.needs_move_targets and not _agent(move_values="critic").needs_move_targets
    b = _batch(8)
    t = b.move_targets
    assert t is not None
    t[:3, 1, 2] = 0.0  # these UAVs' positions did not matter: left out
    dc = agent._dist_c(agent.actor_c, b.obs)
    loss, metrics = agent._move_loss(dc, b)
    mean = dc.mean[:, K:].reshape(8, M, 2).detach().numpy()
    std = dc.std[:, K:].reshape(8, M, 2).detach().numpy()
    u = np.arctanh(t[..., :2].numpy().astype(np.float64))
    nll = (0.5 * ((u - mean) / std) ** 2 + np.log(std) + 0.5 * np.log(2 * np.pi)).sum(-1)
    used = (t[..., 2] > 0).numpy()
    assert np.isclose(float(loss.detach()), 0.5 * (nll * used).sum(-1).mean(), rtol=1e-5)
    gap = np.sqrt(((np.tanh(mean) - t[..., :2].numpy()) ** 2).sum(-1))
    assert np.isclose(metrics["train/move_target_gap"], gap[used].mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="move_targets"):
        agent.update(b._replace(move_targets=None))
    with pytest.raises(ValueError, match="move_values='lookahead'"):
        AdSacConfig(move_values="lookahead")
    with pytest.raises(ValueError, match="move_weight=0"):
        AdSacConfig(move_weight=0.0)


@pytest.mark.parametrize("values", ["simulated", "critic"])
def test_the_critic_trains_the_moves_only_with_critic_values(values: str) -> None:
    """Two agents with the same actor and different critics: with simulated move values their
    actor gradients agree on the move outputs (mean and log-std) and differ on the powers'."""
    agents = [_agent(move_values=values, use_mpo=False) for _ in range(2)]
    agents[1].critics.load_state_dict(_agent(seed=7).critics.state_dict())
    b = _batch()
    grads = []
    for agent in agents:
        agent._update_actors(b)
        grads.append(last_linear_grad(agent.actor_c))
    moves = [*range(K, A), *range(A + K, 2 * A)]  # output rows: means, then log-stds
    powers = [*range(K), *range(A, A + K)]
    assert not torch.allclose(grads[0][powers], grads[1][powers])
    same = torch.allclose(grads[0][moves], grads[1][moves], rtol=1e-5, atol=1e-7)
    assert same == (values == "simulated")


def test_moves_fit_the_targets() -> None:
    """The critic sees zero rewards; only the targets (UAV 0 east, UAV 1 south-west; UAV 2's
    position never mattered) can move the mode."""
    n = 256
    t = np.zeros((n, M, 3), np.float32)
    t[:, 0] = (0.9, 0.0, 1.0)
    t[:, 1] = (-0.6, -0.6, 0.4)
    t[:, 2] = (0.9, 0.9, 0.0)
    agent = _agent(init_alpha=0.01, actor_lr=2e-3, use_mpo=False)  # MPO's trust region slows it
    mode = fit_mode(agent, _batch(n, t))
    moves = mode[:, K:].reshape(n, M, 2)
    assert np.abs(moves[:, 0] - (0.9, 0.0)).max(-1).mean() < 0.05
    assert np.abs(moves[:, 1] - (-0.6, -0.6)).max(-1).mean() < 0.05
    assert np.abs(moves[:, 2] - (0.9, 0.9)).max(-1).mean() > 0.3  # untrained toward it


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search", "adsac-exact-geo-ar",
                                      "move_values", ("actor_c", "actor_d", "critics"))
    assert whole.cfg.move_values == "simulated"


def test_the_registered_combination_is_search_with_the_uav_relative_actor(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-rel",
                                "adsac-exact-geo-ar-search", {"continuous_actor": "shared"})
    assert isinstance(agent, AdSac) and agent.needs_move_targets
    assert isinstance(agent.actor_c, SharedContinuousActor)
