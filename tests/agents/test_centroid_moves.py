"""AD-SAC's ``move_values="centroid"``: the UAV moves fit greedy's rule for the stored servers
(toward the centroid of the IoTDs each UAV serves) instead of the simulated move search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.offpolicy import centroid_move_table, collect
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import GreedyPolicy
from satedge.envs.encoding import observation_size
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from tests.agents.target_batches import assert_copies_share, feasible_servers
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
A = K + 2 * M


def test_the_targets_are_greedys_moves_for_the_actions_servers() -> None:
    env = MllmOffloadVectorEnv(4, SC)
    obs, info = env.reset(seed=3)
    state = env.state
    assert state is not None
    rng = np.random.default_rng(3)
    action = AgentAction(feasible_servers(state, rng),
                         rng.uniform(-1, 1, (4, A)).astype(np.float32))
    table = centroid_move_table(env, state, action)
    assert table.shape == (4, M, 3) and table.dtype == np.float32
    server, _, _ = env.decode(to_env_action(action, K, M))
    want = GreedyPolicy.uav_moves(env.network, state, server)
    np.testing.assert_allclose(table[..., :2], want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(table[..., 2], 1.0)  # every UAV has a target
    assert np.abs(table[..., :2]).max() <= 1.0
    # other servers, other targets: the rule follows the IoTDs each UAV serves
    other = AgentAction(np.where(server == 0, 1, 0) * state.mask[..., 1].astype(int),
                        action.continuous)
    assert not np.allclose(centroid_move_table(env, state, other), table)

    buf = ReplayBuffer(100, observation_size(SC), K, S, A, move_targets=True)
    collect(env, obs, info["action_mask"], action, [buf], [rng], True, move_rule="centroid")
    # unavailable-action copies share their transition's targets
    assert_copies_share(buf.state_dict(), "move_targets", table)


def test_a_bad_rule_is_named() -> None:
    with pytest.raises(ValueError, match="'critic', 'simulated' or 'centroid'"):
        AdSacConfig(move_values="greedy")
    with pytest.raises(ValueError, match="needs move_values='simulated'"):
        AdSacConfig(move_values="centroid", move_target_slot="next")


def test_runs_resume_exactly_and_name_the_rule(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo-ar",
                                      "move_values", ("actor_c", "critics"),
                                      {"move_values": "centroid"})
    assert whole.needs_move_targets and whole.move_target_rule == "centroid"


def test_the_registered_combination_is_srv_cap_with_greedys_moves(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv-cap-greedy-moves",
                                "adsac-exact-geo-ar-search-cond-pow-srv-cap",
                                {"move_values": "centroid"})
    assert isinstance(agent, AdSac) and agent.move_target_rule == "centroid"
