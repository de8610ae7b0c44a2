"""AD-SAC's ``server_search``: the discrete actor also fits the assignment that a local search
with the simulator's pure cost function (``search_servers``, the loop's server targets) reaches
from the stored servers."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.offpolicy import collect, server_target_table
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import GreedyPolicy, search_servers
from satedge.envs.encoding import observation_size
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import (
    check_stored_targets,
    feasible_servers,
    reset_state,
    small_adsac,
    target_batch,
)
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
A = K + 2 * M


def _reward(env: MllmOffloadVectorEnv, state: SlotState, server: np.ndarray,
            watts: np.ndarray) -> np.ndarray:
    return np.asarray(env_reward(SC, env.network.cost(state, server, watts)))


def _single_moves(env: MllmOffloadVectorEnv, state: SlotState, server: np.ndarray,
                  watts: np.ndarray, b: int) -> np.ndarray:
    """The rewards of every feasible one-task reassignment of row ``b`` (a loop of cost calls)."""
    one = state.take([b])
    values = []
    for k in np.flatnonzero(state.tasks.active[b] & state.mask[b].any(-1)):
        for j in np.flatnonzero(state.mask[b, k]):
            trial = server[b:b + 1].copy()
            trial[0, k] = j
            values.append(_reward(env, one, trial, watts[b:b + 1])[0])
    return np.asarray(values)


def test_search_reaches_a_local_optimum_and_never_costs_more() -> None:
    env, state = reset_state(SC, 3, 6)
    rng = np.random.default_rng(4)
    server = feasible_servers(state, rng)
    watts = np.full((state.batch_size, K), SC.iotd.power_max_w)
    before = _reward(env, state, server, watts)
    best, gain = search_servers(env.network, state, server, watts, rounds=50)
    after = _reward(env, state, best, watts)
    np.testing.assert_allclose(after - before, gain, atol=1e-9)
    assert (gain >= 0).all() and (gain > 0).any()
    assert state.mask[np.arange(state.batch_size)[:, None], np.arange(K), best][
        state.tasks.active].all()  # tasks stay on feasible servers
    idle = ~state.tasks.active
    np.testing.assert_array_equal(best[idle], server[idle])  # no task: left as given
    for b in range(state.batch_size):  # no single reassignment improves any more
        assert _single_moves(env, state, best, watts, b).max() <= after[b] + 1e-9


def test_one_round_takes_the_best_single_reassignment() -> None:
    env, state = reset_state(SC, 5, 6)
    rng = np.random.default_rng(1)
    server = feasible_servers(state, rng)
    watts = np.full((state.batch_size, K), SC.iotd.power_min_w)
    best, gain = search_servers(env.network, state, server, watts, rounds=1)
    before = _reward(env, state, server, watts)
    for b in range(state.batch_size):
        top = _single_moves(env, state, server, watts, b).max()
        np.testing.assert_allclose(gain[b], max(top - before[b], 0.0), atol=1e-9)
        assert (best[b] != server[b]).sum() == (1 if gain[b] > 0 else 0)
    same, none = search_servers(env.network, state, server, watts, rounds=0)
    np.testing.assert_array_equal(same, server)
    assert (none == 0).all()


def test_greedys_assignment_is_improved_or_kept() -> None:
    env, state = reset_state(SC, 6, 8)
    act = GreedyPolicy().act(env.network, state, np.random.default_rng(0))
    server, watts, _ = env.decode(act)
    best, gain = search_servers(env.network, state, server, watts)
    assert (gain >= 0).all()
    np.testing.assert_array_equal(best[gain == 0], server[gain == 0])


def test_loop_stores_the_server_targets_of_each_transition() -> None:
    env, state = reset_state(SC, 2, 4)
    rng = np.random.default_rng(2)
    mask = state.mask
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (4, A)).astype(np.float32))
    want = server_target_table(env, state, action, 3)
    assert want.shape == (4, K, 2) and want.dtype == np.float32
    server, watts, _ = env.decode(to_env_action(action, K, M))
    best, _ = search_servers(env.network, state, server, watts, 3)
    np.testing.assert_array_equal(want[..., 0], best)
    np.testing.assert_array_equal(want[..., 1], state.tasks.active & mask.any(-1))
    buf = ReplayBuffer(50, observation_size(SC), K, S, A, server_targets=True)
    assert buf.stores_server_targets and not buf.stores_power_targets
    plain = ReplayBuffer(50, observation_size(SC), K, S, A)
    assert buf.nbytes_per_transition == plain.nbytes_per_transition + 4 * 2 * K
    with pytest.raises(ValueError, match="server_search=0"):
        collect(env, env.observe(), mask, action, [buf], [rng], True)
    collect(env, env.observe(), mask, action, [buf], [rng], True, server_search=3)
    check_stored_targets(buf, "server_targets", want, lambda: ReplayBuffer(
        50, observation_size(SC), K, S, A, server_targets=True), rng)
    assert buf.sample(8, rng).power_targets is None

def test_a_second_start_keeps_the_better_local_optimum() -> None:
    env, state = reset_state(SC, 7, 6)
    rng = np.random.default_rng(3)
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (6, A)).astype(np.float32))
    start = GreedyPolicy().act(env.network, state, np.random.default_rng(0))["offload"]
    server, watts, _ = env.decode(to_env_action(action, K, M))
    own, _ = search_servers(env.network, state, server, watts, 2)
    other, _ = search_servers(env.network, state, start, watts, 2)
    got = server_target_table(env, state, action, 2, start)[..., 0].astype(np.int64)
    r_own, r_other, r_got = (_reward(env, state, x, watts) for x in (own, other, got))
    np.testing.assert_allclose(r_got, np.maximum(r_own, r_other), atol=1e-9)
    for b in range(6):  # row by row, one of the two searches' results
        assert (got[b] == own[b]).all() or (got[b] == other[b]).all()
    assert ((r_other > r_own + 1e-6) & (got != own).any(-1)).any()  # the start can win
    # starting from the action itself changes nothing
    np.testing.assert_array_equal(server_target_table(env, state, action, 2, server),
                                  server_target_table(env, state, action, 2))


def test_the_loop_searches_from_the_actors_mode(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``server_search_from_mode`` the loop hands ``collect`` the agent's mode at the
    observation acted on (and nothing without it); the mode draws nothing from the agent."""
    from satedge.agents.common import offpolicy
    from satedge.experiments.train import train
    from satedge.sim.scenario import resolve
    from tests.agents.train_resume import FAST

    seen: list[tuple[np.ndarray, np.ndarray | None]] = []
    real = offpolicy.collect

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        call = inspect.signature(real).bind(*args, **kwargs).arguments
        seen.append((call["obs"].copy(), call.get("search_start")))
        return real(*args, **kwargs)

    monkeypatch.setattr(offpolicy, "collect", spy)
    tiny = resolve("small", ["episode_slots=10"])
    over = {**FAST, "server_search": 2, "server_search_from_mode": True}
    train("adsac-exact-geo-ar", tiny, 5, 4, tmp_path / "mode", overrides=over, progress=False)
    agent, _ = offpolicy_agent(tmp_path / "mode")
    assert len(seen) == 10 and all(start is not None for _, start in seen)
    obs, start = seen[-1]
    assert start is not None and start.shape == (obs.shape[0], tiny.n_iotds)
    seen.clear()
    train("adsac-exact-geo-ar", tiny, 5, 4, tmp_path / "plain",
          overrides={**FAST, "server_search": 2}, progress=False)
    assert seen and all(start is None for _, start in seen)
    gen = agent.gen.get_state()
    obs = np.random.default_rng(0).standard_normal((3, agent.obs_dim)).astype(np.float32)
    mask = np.ones((3, agent.k, agent.s), bool)
    np.testing.assert_array_equal(agent.mode_servers(obs, mask),
                                  agent.act(obs, mask, deterministic=True).discrete)
    assert torch.equal(agent.gen.get_state(), gen)
    with pytest.raises(ValueError, match="server_search >= 1"):
        AdSacConfig(server_search_from_mode=True)


def offpolicy_agent(run: Path) -> tuple[AdSac, Scenario]:
    from satedge.experiments.train import load_trained_agent

    agent, sc = load_trained_agent(run)
    assert isinstance(agent, AdSac)
    return agent, sc


OBS_DIM = 6


def _batch(n: int = 32, targets: np.ndarray | None = None) -> ReplayBatch:
    if targets is None:
        g = torch.Generator().manual_seed(4)
        t = torch.stack([torch.randint(0, S, (n, K), generator=g).float(),
                         (torch.rand(n, K, generator=g) < 0.7).float()], -1)
    else:
        t = torch.as_tensor(targets, dtype=torch.float32)
    return target_batch(n, OBS_DIM, K, S, A, server_targets=t)


def _agent(seed: int = 0, **cfg: object) -> AdSac:
    return small_adsac(OBS_DIM, K, S, A, seed, **{"server_search": 2, **cfg})


@pytest.mark.parametrize("masked", [False, True])
def test_server_loss_by_hand(masked: bool) -> None:
    agent = _agent(server_weight=0.5)
    assert agent.server_search_rounds == 2 and _agent(server_search=0).server_search_rounds == 0
    b = _batch(8)
    t = b.server_targets
    assert t is not None
    if masked:  # an IoTD without a task may hold a masked server: it is left out, not -inf
        mask = b.mask.clone()
        idle = t[..., 1] == 0
        assert idle.any()
        rows, cols = torch.nonzero(idle, as_tuple=True)
        mask[rows, cols, t[rows, cols, 0].long()] = False
        b = b._replace(mask=mask)
    loss, metrics = agent._server_loss(b)
    logp = torch.log_softmax(
        agent.actor_d(b.obs).view(-1, K, S).masked_fill(~b.mask, -torch.inf), -1)
    target = t[..., 0].long()
    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).detach().numpy()
    used = t[..., 1].numpy() > 0
    want = -0.5 * np.where(used, picked, 0.0).sum(-1).mean()
    assert np.isfinite(float(loss.detach()))
    assert np.isclose(float(loss.detach()), want, rtol=1e-5)
    moved = (used & (target != b.action_d).numpy()).sum() / used.sum()
    assert np.isclose(metrics["train/server_target_moved"], moved, rtol=1e-5)
    with pytest.raises(ValueError, match="server_targets"):
        agent.update(b._replace(server_targets=None))
    with pytest.raises(ValueError, match="server_search=-1"):
        AdSacConfig(server_search=-1)
    with pytest.raises(ValueError, match="server_weight=0"):
        AdSacConfig(server_weight=0.0)


def test_servers_fit_the_targets() -> None:
    """The critic sees zero rewards; only the targets (IoTD 0 on server 2, IoTD 1 on server 4,
    IoTD 2 never has a task) can move the mode."""
    n = 256
    t = np.zeros((n, K, 2), np.float32)
    t[:, :, 0] = np.arange(K) % S
    t[:, 0] = (2, 1)
    t[:, 1] = (4, 1)
    t[:, 2] = (1, 0)
    b = _batch(n, t)
    b = b._replace(reward=torch.zeros(n), reward_k=torch.zeros(n, K))
    agent = _agent(init_alpha=0.01, actor_lr=2e-3, use_mpo=False)
    before = agent.act(b.obs.numpy(), b.mask.numpy(), deterministic=True).discrete
    rng = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, n, (64,), generator=rng)
        agent.update(ReplayBatch(*(None if x is None else x[idx] for x in b)))
    mode = agent.act(b.obs.numpy(), b.mask.numpy(), deterministic=True).discrete
    assert (mode[:, 0] == 2).mean() > 0.95 and (mode[:, 1] == 4).mean() > 0.95
    assert (before[:, 0] == 2).mean() < 0.8  # it was not there from the start
    assert (mode[:, 2] == 1).mean() < 0.8  # untrained toward it


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo-ar",
                                      "server_search", ("actor_c", "actor_d", "critics"),
                                      {"server_search": 2})
    assert whole.cfg.server_search == 2


def test_the_registered_combination_is_cond_pow_with_the_search(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv",
                                "adsac-exact-geo-ar-search-cond-pow", {"server_search": 8})
    assert isinstance(agent, AdSac) and agent.server_search_rounds == 8
    assert not agent.server_search_from_mode
    mode = check_registered_as(tmp_path / "mode", "adsac-exact-geo-ar-search-cond-pow-srv-mode",
                               "adsac-exact-geo-ar-search-cond-pow-srv",
                               {"server_search_from_mode": True})
    assert isinstance(mode, AdSac) and mode.server_search_from_mode


def test_searching_from_the_mode_resumes_exactly(tmp_path: Path) -> None:
    check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo-ar",
                              "server_search_from_mode", ("actor_d", "critics"),
                              {"server_search": 2, "server_search_from_mode": True})
