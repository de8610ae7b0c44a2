"""AD-SAC's ``target_search="optimizer"``: the server and power targets come from the per-slot
optimiser (its assignment for the stored state, its power search for the stored servers)
instead of the local searches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.offpolicy import collect, optimizer_target_tables
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.optimizer import OptimizerPolicy, optimise_powers
from satedge.envs.encoding import observation_size, power_watts
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import (
    assert_copies_share,
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
OBS_DIM = observation_size(SC)


def _objective(env: MllmOffloadVectorEnv, state: SlotState, server: np.ndarray,
               watts: np.ndarray) -> np.ndarray:
    """zeta C + P of the slot, the optimiser's objective."""
    out = env.network.cost(state, server, watts)
    return np.asarray(SC.cost.reward_scale * out.cost + out.penalty)


def test_the_power_search_never_loses_and_reports_its_objective() -> None:
    env, state = reset_state(SC, 5, 6)
    rng = np.random.default_rng(5)
    server = feasible_servers(state, rng)
    start = power_watts(SC, rng.uniform(-1, 1, (6, K)))
    best, objective = optimise_powers(env.network, state, server, start)
    assert best.shape == (6, K)
    assert np.all((best >= SC.iotd.power_min_w) & (best <= SC.iotd.power_max_w))
    np.testing.assert_allclose(objective, _objective(env, state, server, best), rtol=1e-9)
    before = _objective(env, state, server, start)
    assert np.all(objective <= before + 1e-9 * np.abs(before))
    assert np.any(objective < before - 1e-6)  # random powers are not already optimal
    executed = env.network.cost(state, server, best).executed
    np.testing.assert_array_equal(best[~executed], start[~executed])  # nothing to set there


def test_the_tables_are_the_optimisers_servers_and_its_powers_for_the_actions_servers() -> None:
    env, state = reset_state(SC, 3, 8)
    rng = np.random.default_rng(3)
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (8, A)).astype(np.float32))
    rngs = [np.random.default_rng(10), np.random.default_rng(11)]
    servers, powers = optimizer_target_tables(env, state, action, rngs)
    assert servers.shape == powers.shape == (8, K, 2)
    assert servers.dtype == powers.dtype == np.float32
    # seed s's block of 4 environments gets the optimiser's answer drawn from its own RNG
    for s, seed in enumerate((10, 11)):
        rows = np.arange(4 * s, 4 * s + 4)
        sol = OptimizerPolicy().solve(env.network, state.take(rows), np.random.default_rng(seed))
        np.testing.assert_array_equal(servers[rows, :, 0], sol.server)
    np.testing.assert_array_equal(servers[..., 1], state.tasks.active & state.mask.any(-1))
    server, watts, _ = env.decode(to_env_action(action, K, M))
    best, _ = optimise_powers(env.network, state, server, watts)
    np.testing.assert_allclose(power_watts(SC, powers[..., 0]), best, rtol=1e-5)
    np.testing.assert_array_equal(powers[..., 1], env.network.cost(state, server, best).executed)
    # the optimiser's assignment is never worse than the action's, each at its best powers
    _, own = optimise_powers(env.network, state, server, watts)
    mine = servers[..., 0].astype(np.int64)
    _, theirs = optimise_powers(env.network, state, mine, np.full((8, K), SC.iotd.power_max_w))
    assert np.all(theirs <= own + 1e-6 * np.abs(own))


def test_the_loop_stores_the_optimisers_targets() -> None:
    env, state = reset_state(SC, 2, 4)
    rng = np.random.default_rng(2)
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (4, A)).astype(np.float32))
    want_s, want_p = optimizer_target_tables(env, state, action, [np.random.default_rng(7)])

    def fresh() -> ReplayBuffer:
        return ReplayBuffer(50, OBS_DIM, K, S, A, power_targets=True, server_targets=True)

    buf = fresh()
    collect(env, env.observe(), state.mask, action, [buf], [np.random.default_rng(7)], True,
            optimizer_targets=True)
    check_stored_targets(buf, "power_targets", want_p, fresh, rng)
    assert_copies_share(buf.state_dict(), "server_targets", want_s)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="target_search='planner' must be"):
        AdSacConfig(target_search="planner")
    with pytest.raises(ValueError, match="server_search=8"):
        AdSacConfig(target_search="optimizer", server_search=8)


def test_the_discrete_agent_fits_the_stored_targets_without_a_local_search() -> None:
    g = torch.Generator().manual_seed(4)
    t = torch.stack([torch.randint(0, S, (16, K), generator=g).float(),
                     torch.ones(16, K)], -1)
    batch = target_batch(16, OBS_DIM, K, S, A, server_targets=t)
    agent: AdSac = small_adsac(OBS_DIM, K, S, A, target_search="optimizer")
    assert agent.target_search == "optimizer" and agent.server_search_rounds == 0
    metrics = agent.update(batch)
    assert "loss/actor_servers" in metrics
    plain = small_adsac(OBS_DIM, K, S, A)
    assert "loss/actor_servers" not in plain.update(batch)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search-cond-pow",
                                      "adsac-exact-geo-ar-search-cond-pow", "target_search",
                                      ("actor_c", "actor_d", "critics"),
                                      {"target_search": "optimizer"})
    assert whole.target_search == "optimizer"


def test_the_registered_combination_is_greedy_moves_with_the_optimisers_targets(
        tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves",
                                "adsac-exact-geo-ar-search-cond-pow-srv-cap-greedy-moves",
                                {"server_search": 0, "target_search": "optimizer"})
    assert isinstance(agent, AdSac) and agent.target_search == "optimizer"
    assert agent.move_target_rule == "centroid" and agent.needs_power_targets
