"""AD-SAC's ``power_values="simulated"``: transmit powers trained on a one-slot lookahead with the
simulator's pure cost function (``search_iotd_powers``, the loop's power targets) instead of the
critic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.offpolicy import collect, power_target_table
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import POWER_CANDIDATES, GreedyPolicy, search_iotd_powers
from satedge.envs.encoding import ActionDecoder, observation_size, power_watts
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import (
    check_stored_targets,
    feasible_servers,
    fit_mode,
    last_linear_grad,
    reset_state,
    small_adsac,
    target_batch,
)
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
A = K + 2 * M


def _state(seed: int = 1, n: int = 4) -> tuple[MllmOffloadVectorEnv, SlotState]:
    return reset_state(SC, seed, n)


def test_power_watts_is_the_decoders_mapping() -> None:
    p = np.array([[-3.0, -1.0, 0.0, 0.5, 1.0, 7.0, -0.25, 0.25, 0.75, -0.5]])
    lo, hi = SC.iotd.power_min_w, SC.iotd.power_max_w
    np.testing.assert_allclose(power_watts(SC, p)[0, [0, 1, 2, 4, 5]],
                               [lo, lo, (lo + hi) / 2, hi, hi])
    action = {"offload": np.zeros((1, K), np.int64), "power": p, "uav": np.zeros((1, M, 2))}
    np.testing.assert_array_equal(ActionDecoder(SC)(action, 1)[1], power_watts(SC, p))
    assert POWER_CANDIDATES.shape == (9,) and POWER_CANDIDATES[[0, -1]].tolist() == [-1.0, 1.0]


def test_search_prices_every_candidate_like_the_cost_function() -> None:
    env, state = _state(3)
    net = env.network
    rng = np.random.default_rng(4)
    server = feasible_servers(state, rng)
    given = rng.uniform(-1, 1, (state.batch_size, K))
    best, gain, spread = search_iotd_powers(net, state, server, given)
    assert best.shape == gain.shape == spread.shape == (4, K)
    for b in range(state.batch_size):
        for k in range(K):
            cands = np.concatenate([[given[b, k]], POWER_CANDIDATES])
            values = []
            for cand in cands:
                p = given[b].copy()
                p[k] = cand
                out = net.cost(state.take([b]), server[b:b + 1], power_watts(SC, p[None]))
                values.append(env_reward(SC, out)[0])
            v = np.array(values)
            np.testing.assert_allclose(best[b, k], cands[v.argmax()])
            np.testing.assert_allclose(gain[b, k], v.max() - v[0], atol=1e-12)
            np.testing.assert_allclose(spread[b, k], np.ptp(v), atol=1e-12)
    # an IoTD with no task: its power does not matter, the given one is kept
    idle = ~state.tasks.active
    assert idle.any() and (spread[idle] == 0).all() and (gain >= 0).all()
    np.testing.assert_array_equal(best[idle], given[idle])
    assert (spread[state.tasks.active] > 0).mean() > 0.5


def test_searched_powers_do_not_cost_more_than_greedys() -> None:
    """Started from greedy's action, every IoTD's searched power is at least as good alone."""
    env, state = _state(6, 8)
    act = GreedyPolicy().act(env.network, state, np.random.default_rng(0))
    server, _, _ = env.decode(act)
    best, gain, _ = search_iotd_powers(env.network, state, server, np.asarray(act["power"]))
    assert (gain >= 0).all()
    np.testing.assert_array_equal(best[gain == 0], np.asarray(act["power"])[gain == 0])


def test_loop_stores_the_power_targets_of_each_transition() -> None:
    env, state = _state(2)
    rng = np.random.default_rng(2)
    mask = state.mask
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (4, A)).astype(np.float32))
    want = power_target_table(env, state, action)
    assert want.shape == (4, K, 2) and want.dtype == np.float32
    server, _, _ = env.decode(to_env_action(action, K, M))
    best, _, spread = search_iotd_powers(env.network, state, server, action.continuous[:, :K])
    np.testing.assert_allclose(want[..., 0], best, rtol=1e-6)
    np.testing.assert_allclose(want[..., 1], spread, rtol=1e-6)
    buf = ReplayBuffer(50, observation_size(SC), K, S, A, power_targets=True)
    assert buf.stores_power_targets and not buf.stores_move_targets
    plain = ReplayBuffer(50, observation_size(SC), K, S, A)
    assert buf.nbytes_per_transition == plain.nbytes_per_transition + 4 * 2 * K
    collect(env, env.observe(), mask, action, [buf], [rng], True)
    check_stored_targets(buf, "power_targets", want, lambda: ReplayBuffer(
        50, observation_size(SC), K, S, A, power_targets=True), rng)
    assert buf.sample(8, rng).move_targets is None
    data = buf.state_dict()
    with pytest.raises(ValueError, match="power_targets"):
        plain.add(data["obs"][:1], data["action_d"][:1], data["action_c"][:1],
                  data["reward"][:1], data["next_obs"][:1], data["terminated"][:1],
                  data["mask"][:1], data["next_mask"][:1],
                  power_targets=data["power_targets"][:1])

OBS_DIM = 6


def _batch(n: int = 32, targets: np.ndarray | None = None) -> ReplayBatch:
    if targets is None:
        t = torch.rand(n, K, 2, generator=torch.Generator().manual_seed(4)) * 1.6 - 0.8
        t[..., 1] = t[..., 1].abs()
    else:
        t = torch.as_tensor(targets, dtype=torch.float32)
    return target_batch(n, OBS_DIM, K, S, A, power_targets=t)


def _agent(seed: int = 0, **cfg: object) -> AdSac:
    return small_adsac(OBS_DIM, K, S, A, seed, **{"power_values": "simulated", **cfg})


def test_power_loss_by_hand() -> None:
    agent = _agent(power_weight=0.5)
    assert agent.needs_power_targets and not agent.needs_move_targets
    assert not _agent(power_values="critic").needs_power_targets
    b = _batch(8)
    t = b.power_targets
    assert t is not None
    t[:3, 4, 1] = 0.0  # these IoTDs' powers did not matter: left out
    t[5, 2, 0] = 1.0  # p_max: clipped to 0.999 before atanh
    dc = agent._dist_c(agent.actor_c, b.obs)
    loss, metrics = agent._power_loss(dc, b)
    mean = dc.mean[:, :K].detach().numpy().astype(np.float64)
    std = dc.std[:, :K].detach().numpy().astype(np.float64)
    target = t[..., 0].numpy().astype(np.float64)
    u = np.arctanh(np.clip(target, -0.999, 0.999))
    nll = 0.5 * ((u - mean) / std) ** 2 + np.log(std) + 0.5 * np.log(2 * np.pi)
    used = (t[..., 1] > 0).numpy()
    assert np.isclose(float(loss.detach()), 0.5 * (nll * used).sum(-1).mean(), rtol=1e-5)
    gap = np.abs(np.tanh(mean) - target)
    assert np.isclose(metrics["train/power_target_gap"], gap[used].mean(), rtol=1e-5)
    assert np.isclose(metrics["loss/actor_powers"], float(loss.detach()))
    with pytest.raises(ValueError, match="power_targets"):
        agent.update(b._replace(power_targets=None))
    with pytest.raises(ValueError, match="power_values='exact'"):
        AdSacConfig(power_values="exact")
    with pytest.raises(ValueError, match="power_weight=-1"):
        AdSacConfig(power_weight=-1.0)


@pytest.mark.parametrize(("values", "moves"), [("simulated", "critic"), ("critic", "critic"),
                                               ("simulated", "simulated")])
def test_the_critic_trains_the_powers_only_with_critic_values(values: str, moves: str) -> None:
    """Two agents with the same actor and different critics: with simulated power values their
    actor gradients agree on the power outputs (mean and log-std); the moves' agree exactly when
    the moves are simulated too."""
    extra = {"move_values": moves, "use_mpo": False}
    agents = [_agent(power_values=values, **extra) for _ in range(2)]  # type: ignore[arg-type]
    agents[1].critics.load_state_dict(_agent(seed=7).critics.state_dict())
    g = torch.Generator().manual_seed(5)
    b = _batch()._replace(move_targets=torch.rand(32, M, 3, generator=g) * 0.8 + 0.1)
    grads = []
    for agent in agents:
        agent._update_actors(b)
        grads.append(last_linear_grad(agent.actor_c))
    powers = [*range(K), *range(A, A + K)]  # output rows: means, then log-stds
    uav = [*range(K, A), *range(A + K, 2 * A)]

    def same(rows: list[int]) -> bool:
        return torch.allclose(grads[0][rows], grads[1][rows], rtol=1e-5, atol=1e-7)

    assert same(powers) == (values == "simulated")
    assert same(uav) == (moves == "simulated")


def test_powers_fit_the_targets() -> None:
    """The critic sees zero rewards; only the targets (IoTD 0 at p_max, IoTD 1 at -0.5; IoTD 2's
    power never mattered) can move the mode."""
    n = 256
    t = np.zeros((n, K, 2), np.float32)
    t[:, 0] = (1.0, 0.3)
    t[:, 1] = (-0.5, 0.2)
    t[:, 2] = (0.9, 0.0)
    agent = _agent(init_alpha=0.01, actor_lr=2e-3, use_mpo=False)  # MPO's trust region slows it
    mode = fit_mode(agent, _batch(n, t))
    assert (mode[:, 0] > 0.95).mean() > 0.95
    assert np.abs(mode[:, 1] + 0.5).mean() < 0.05
    assert np.abs(mode[:, 2] - 0.9).mean() > 0.3  # untrained toward it


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search-rel",
                                      "adsac-exact-geo-ar-search-rel", "power_values",
                                      ("actor_c", "actor_d", "critics"),
                                      {"power_values": "simulated"})
    assert whole.cfg.power_values == "simulated" and whole.needs_power_targets


def test_the_registered_combination_is_search_rel_with_simulated_powers(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-rel-pow",
                                "adsac-exact-geo-ar-search-rel", {"power_values": "simulated"})
    assert isinstance(agent, AdSac) and agent.needs_power_targets and agent.needs_move_targets
