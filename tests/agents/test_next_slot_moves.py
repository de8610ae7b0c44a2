"""AD-SAC's ``move_target_slot="next"``: each UAV move's target is searched on the slot the move
reaches, with the servers and powers taken there, and the loop writes it one step after the
transition was stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.offpolicy import PendingMoves, collect, next_slot_move_table
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import MOVE_CANDIDATES
from satedge.envs.encoding import observation_size
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import feasible_servers, reset_state
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
A = K + 2 * M
STEP = SC.uav.speed_max_m_s * SC.slot_s


def _random_action(state: SlotState, rng: np.random.Generator) -> AgentAction:
    b = state.batch_size
    return AgentAction(feasible_servers(state, rng), rng.uniform(-1, 1, (b, A)).astype(np.float32))


def _oracle(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
            start_xy: np.ndarray, moves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best move [B, M, 2], spread [B, M]) by a loop: every UAV alone, each candidate made from
    ``start_xy``, the other UAVs where ``state`` has them, priced with ``action`` at ``state``."""
    server, watts, _ = env.decode(to_env_action(action, K, M))
    best = np.zeros((state.batch_size, M, 2))
    spread = np.zeros((state.batch_size, M))
    for b in range(state.batch_size):
        one = state.take([b])
        for m in range(M):
            values, cands = [], [moves[b, m], *MOVE_CANDIDATES]
            for c in cands:
                xy = one.uav_xy_m.copy()
                xy[0, m] = env.network.moved_uav_xy(start_xy[b, m], np.clip(c, -1, 1) * STEP)
                moved = env.network.with_uav_positions(one, xy)
                values.append(env_reward(SC, env.network.cost(moved, server[b:b + 1],
                                                              watts[b:b + 1]))[0])
            best[b, m] = cands[int(np.argmax(values))]
            spread[b, m] = max(values) - min(values)
    return best, spread


def _two_slots(seed: int) -> tuple[MllmOffloadVectorEnv, SlotState, AgentAction, SlotState,
                                   AgentAction]:
    """Environments stepped once with a random action: (env, first state, its action, the state
    the action's moves reach, an action there)."""
    env, first = reset_state(SC, seed, 3)
    rng = np.random.default_rng(seed)
    action = _random_action(first, rng)
    env.step(to_env_action(action, K, M))
    assert env.state is not None
    return env, first, action, env.state, _random_action(env.state, rng)


def test_the_previous_move_is_where_the_next_slot_has_the_uavs() -> None:
    env, first, action, second, _ = _two_slots(3)
    moves = action.continuous[:, K:].reshape(-1, M, 2).astype(np.float64)
    np.testing.assert_allclose(env.network.moved_uav_xy(first.uav_xy_m, moves * STEP),
                               second.uav_xy_m, rtol=0, atol=1e-9)


def test_next_slot_targets_price_each_candidate_on_the_slot_reached() -> None:
    env, first, action, second, then = _two_slots(5)
    moves = action.continuous[:, K:].reshape(-1, M, 2)
    table = next_slot_move_table(env, second, then, first.uav_xy_m, moves)
    assert table.shape == (3, M, 3) and table.dtype == np.float32
    best, spread = _oracle(env, second, then, first.uav_xy_m, moves.astype(np.float64))
    np.testing.assert_allclose(table[..., :2], best, rtol=0, atol=1e-6)
    np.testing.assert_allclose(table[..., 2], spread, rtol=1e-5, atol=1e-5)
    assert (table[..., 2] > 0).any()


def test_the_loop_writes_each_target_one_step_later_and_none_for_an_episodes_last_moves(
        ) -> None:
    sc = Scenario.from_dict({**SC.to_dict(), "episode_slots": 2})
    env = MllmOffloadVectorEnv(3, sc)
    obs, info = env.reset(seed=4)
    rng = np.random.default_rng(4)
    buf = ReplayBuffer(200, observation_size(sc), K, S, A, move_targets=True)
    pending = PendingMoves()
    states, actions, sizes = [], [], []
    for _ in range(3):  # slots 0 and 1 of the first episode, slot 0 of the second
        assert env.state is not None
        states.append(env.state)
        actions.append(_random_action(env.state, rng))
        obs, _, trunc, info = collect(env, obs, info["action_mask"], actions[-1], [buf], [rng],
                                      True, pending=pending)
        sizes.append(len(buf))
        data = buf.state_dict()
        # the rows of this step wait, with spread 0 (no move loss yet)
        assert not data["move_targets"][sizes[-2] if len(sizes) > 1 else 0:].any()
        assert bool(pending) == (not trunc.all())
    data = buf.state_dict()
    moves = actions[0].continuous[:, K:].reshape(-1, M, 2)
    want = next_slot_move_table(env, states[1], actions[1], states[0].uav_xy_m, moves)
    np.testing.assert_array_equal(data["move_targets"][:3], want)
    for row in range(3, sizes[0]):  # the unavailable-action copies share their transition's
        src = int(np.flatnonzero((data["action_c"][:3] == data["action_c"][row]).all(-1))[0])
        np.testing.assert_array_equal(data["move_targets"][row], want[src])
    # the episode's last moves reach no slot of it: still no target after the next step
    assert not data["move_targets"][sizes[0]:sizes[1]].any()


def test_set_move_targets_checks_its_rows() -> None:
    buf = ReplayBuffer(10, 4, K, S, A, move_targets=True)
    with pytest.raises(ValueError, match="filled rows"):
        buf.set_move_targets(np.array([0]), np.zeros((1, M, 3)))
    with pytest.raises(ValueError, match="move_targets=True"):
        ReplayBuffer(10, 4, K, S, A).set_move_targets(np.array([0]), np.zeros((1, M, 3)))


@pytest.mark.parametrize(("settings", "match"), [
    ({"move_values": "simulated", "move_target_slot": "later"}, "move_target_slot='later'"),
    ({"move_target_slot": "next"}, "needs move_values='simulated'"),
])
def test_bad_settings_are_named(settings: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdSacConfig(**settings)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search",
                                      "adsac-exact-geo-ar-search", "move_target_slot",
                                      ("actor_c", "actor_d", "critics"),
                                      {"move_target_slot": "next"})
    assert whole.move_target_next_slot


def test_the_registered_combination_is_srv_cap_with_next_slot_targets(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv-cap-next",
                                "adsac-exact-geo-ar-search-cond-pow-srv-cap",
                                {"move_target_slot": "next"})
    assert isinstance(agent, AdSac) and agent.move_target_next_slot
