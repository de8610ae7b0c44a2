"""AD-SAC's ``server_values="exact"``: the discrete agent trained on each IoTD's exact one-slot
alternatives (the loop's server-reward tables)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.offpolicy import _rewards_of, collect, server_reward_table
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.envs.encoding import observation_size
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve

TINY = resolve("small", ["episode_slots=10"])
FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}


def _env_and_action(n: int, seed: int) -> tuple[MllmOffloadVectorEnv, AgentAction]:
    env = MllmOffloadVectorEnv(n)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    a_d = np.argmax(info["action_mask"] * rng.random(info["action_mask"].shape), axis=-1)
    return env, AgentAction(a_d, rng.uniform(-1, 1, (n, 16)).astype(np.float32))


def test_table_prices_every_alternative_like_the_environment() -> None:
    env, action = _env_and_action(6, 2)
    state = env.state
    assert state is not None
    table = server_reward_table(env, state, action.discrete, action.continuous)
    assert table.shape == (6, 10, env.scenario.n_servers) and table.dtype == np.float32
    _, rewards, _, _, _ = env.step(to_env_action(action, 10, 3))
    own = np.take_along_axis(table, action.discrete[..., None], -1)[..., 0]  # [B, K]
    np.testing.assert_allclose(own, np.repeat(rewards[:, None], 10, 1), rtol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(10):  # single deviations, priced separately
        k, j = int(rng.integers(10)), int(rng.integers(env.scenario.n_servers))
        a_d = action.discrete.copy()
        a_d[:, k] = j
        expected, _ = _rewards_of(env, state, a_d, action.continuous)
        np.testing.assert_allclose(table[:, k, j], expected, rtol=1e-5)
    # an IoTD without a task changes nothing; one with a task has spread in its row
    idle = ~state.tasks.active
    assert np.ptp(table[idle], axis=-1).max() < 1e-4
    assert np.ptp(table[state.tasks.active], axis=-1).max() > 1.0


def test_buffer_stores_tables_only_when_built_with_them() -> None:
    env, action = _env_and_action(4, 0)
    sc = env.scenario
    obs, info = env.observe(), {"action_mask": env.state.mask}  # type: ignore[union-attr]
    plain = ReplayBuffer(50, observation_size(sc), 10, sc.n_servers, 16)
    tables = ReplayBuffer(50, observation_size(sc), 10, sc.n_servers, 16, server_rewards=True)
    assert tables.stores_server_rewards and not plain.stores_server_rewards
    assert tables.nbytes_per_transition == plain.nbytes_per_transition + 4 * 10 * sc.n_servers
    state = env.state
    assert state is not None
    expected = server_reward_table(env, state, action.discrete, action.continuous)
    collect(env, obs, info["action_mask"], action, [tables], [np.random.default_rng(0)], True)
    batch = tables.sample(8, np.random.default_rng(1))
    assert batch.server_rewards is not None and batch.server_rewards.shape == (8, 10, 8)
    np.testing.assert_allclose(tables.state_dict()["server_rewards"][:4], expected)
    # the unavailable-action copies carry their own tables (their own reward on the diagonal)
    copies = tables.state_dict()
    for row in range(4, len(tables)):
        own = copies["server_rewards"][row, np.arange(10), copies["action_d"][row]]
        np.testing.assert_allclose(own, copies["reward"][row], rtol=1e-5)
    with pytest.raises(ValueError, match="server_rewards"):
        tables.add(*(np.zeros((1, *shape)) for shape in
                     [(observation_size(sc),), (10,), (16,), ()]), np.zeros((1, observation_size(
                         sc))), np.zeros(1, bool), np.ones((1, 10, 8), bool),
                   np.ones((1, 10, 8), bool))
    restored = ReplayBuffer(50, observation_size(sc), 10, sc.n_servers, 16, server_rewards=True)
    restored.load_state_dict(tables.state_dict())
    np.testing.assert_array_equal(restored.state_dict()["server_rewards"],
                                  tables.state_dict()["server_rewards"])


def test_exact_discrete_agent_moves_to_the_best_server_the_table_shows() -> None:
    """Server 2 pays 1 more than every other server for every IoTD; the critic never sees it
    (rewards are zero), so only the table can teach the discrete agent."""
    k, s, obs_dim, a = 3, 4, 6, 5
    cfg = AdSacConfig(server_values="exact", hidden=(32, 32), mpo_samples=4, init_alpha=0.01)
    agent = AdSac(obs_dim, k, s, a, cfg, seed=0)
    assert agent.needs_server_rewards
    buf = ReplayBuffer(200, obs_dim, k, s, a, server_rewards=True)
    rng = np.random.default_rng(0)
    n = 200
    obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    table = np.zeros((n, k, s), np.float32)
    table[..., 2] = 1.0
    mask = np.ones((n, k, s), bool)
    buf.add(obs, rng.integers(0, s, (n, k)), rng.uniform(-1, 1, (n, a)).astype(np.float32),
            np.zeros(n), obs, np.zeros(n, bool), mask, mask, np.zeros((n, k)), table)
    before = agent.act(obs, mask, deterministic=True).discrete
    for _ in range(150):
        agent.update(buf.sample(64, rng))
    after = agent.act(obs, mask, deterministic=True).discrete
    assert (before == 2).mean() < 0.5 and (after == 2).mean() > 0.95
    critic_agent = AdSac(obs_dim, k, s, a, AdSacConfig(hidden=(32, 32)), seed=0)
    assert not critic_agent.needs_server_rewards
    with pytest.raises(ValueError, match="server_rewards"):
        agent.update(buf.sample(4, rng)._replace(server_rewards=None))
    with pytest.raises(ValueError, match="server_values"):
        AdSacConfig(server_values="oracle")


def test_exact_runs_train_resume_exactly_and_are_recorded(tmp_path: Path) -> None:
    over = {**FAST, "server_values": "exact"}
    train("adsac", TINY, 5, 8, tmp_path / "whole", overrides=over, progress=False)
    train("adsac", TINY, 5, 4, tmp_path / "parts", overrides=over, progress=False)
    train("adsac", TINY, 5, 8, tmp_path / "parts", overrides=over, progress=False)
    whole, _ = load_trained_agent(tmp_path / "whole")
    parts, _ = load_trained_agent(tmp_path / "parts")
    for name in ("actor_d", "actor_c", "critics"):
        for key, value in whole.state_dict()[name].items():
            torch.testing.assert_close(value, parts.state_dict()[name][key], rtol=0, atol=0)
    assert whole.cfg.server_values == "exact"
    train("adsac", TINY, 5, 4, tmp_path / "default", overrides=FAST, progress=False)
    ident = {p: json.loads((tmp_path / p / "run.json").read_text())["identity"]["agent"]
             for p in ("whole", "default")}
    # the default is left out of the identity, so run directories made before it still resume
    assert ident["whole"]["server_values"] == "exact" and "server_values" not in ident["default"]


def test_adsac_exact_is_adsac_with_exact_server_values() -> None:
    from satedge.agents.registry import ALGORITHMS, build_agent
    from satedge.experiments.train import supports_seed_batching

    assert "adsac-exact" in ALGORITHMS and supports_seed_batching("adsac-exact")
    agent, cfg = build_agent("adsac-exact", 6, 3, 4, 5, seed=0)
    assert cfg["server_values"] == "exact" and isinstance(agent, AdSac)
    assert agent.needs_server_rewards
