"""AD-SAC's ``move_value_net``: a learned value of each fixed candidate UAV move, regressed on the
candidates' rewards that the loop's move search stores, whose best candidate the moves fit
instead of the one slot's best."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.offpolicy import (
    PendingMoves,
    collect,
    move_target_table,
    next_slot_move_table,
)
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import MOVE_CANDIDATES
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState
from tests.agents.target_batches import feasible_servers, fit_mode, reset_state, target_batch
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
A = K + 2 * M
C = len(MOVE_CANDIDATES)
OBS = observation_size(SC)
STEP = SC.uav.speed_max_m_s * SC.slot_s
UAV_STEP = 2.0 * STEP / SC.area_m  # the observation's units, as `satedge train` sets it


def _random_action(state: SlotState, rng: np.random.Generator) -> AgentAction:
    """Random feasible servers, a UAV (servers 0..M-1) wherever one is feasible, so that the
    UAVs' positions matter; random powers and moves."""
    b = state.batch_size
    servers = feasible_servers(state, rng)
    on_uav = state.mask[..., :M] * rng.random((b, K, M))
    servers = np.where(on_uav.any(-1), on_uav.argmax(-1), servers)
    return AgentAction(servers, rng.uniform(-1, 1, (b, A)).astype(np.float32))


def _candidate_rewards(env: MllmOffloadVectorEnv, state: SlotState,
                       action: AgentAction) -> np.ndarray:
    """[B, M, C] by a loop: UAV m alone takes each fixed candidate (the others make their given
    moves), priced with ``action`` at ``state``."""
    server, watts, _ = env.decode(to_env_action(action, K, M))
    given = action.continuous[:, K:].reshape(-1, M, 2).astype(np.float64)
    out = np.zeros((state.batch_size, M, C))
    for b in range(state.batch_size):
        one = state.take([b])
        base = env.network.moved_uav_xy(one.uav_xy_m[0], given[b] * STEP)
        for m in range(M):
            for c, move in enumerate(MOVE_CANDIDATES):
                xy = base.copy()
                xy[m] = env.network.moved_uav_xy(one.uav_xy_m[0, m], move * STEP)
                moved = env.network.with_uav_positions(one, xy[None])
                out[b, m, c] = env_reward(SC, env.network.cost(moved, server[b:b + 1],
                                                               watts[b:b + 1]))[0]
    return out


def test_the_value_columns_are_each_candidates_reward_less_their_mean() -> None:
    env, state = reset_state(SC, 7, 3)
    action = _random_action(state, np.random.default_rng(7))
    table = move_target_table(env, state, action, values=True)
    assert table.shape == (3, M, 3 + C) and table.dtype == np.float32
    np.testing.assert_array_equal(table[..., :3], move_target_table(env, state, action))
    want = _candidate_rewards(env, state, action)
    np.testing.assert_allclose(table[..., 3:], want - want.mean(-1, keepdims=True),
                               rtol=0, atol=2e-4)
    assert np.ptp(table[..., 3:], -1).max() > 0.01  # the candidates do differ somewhere


def test_the_loop_stores_the_next_slots_candidate_values_one_step_later() -> None:
    env = MllmOffloadVectorEnv(3, SC)
    obs, info = env.reset(seed=2)
    rng = np.random.default_rng(2)
    buf = ReplayBuffer(200, OBS, K, S, A, move_targets=True, move_values=C)
    assert buf.move_value_columns == C
    pending = PendingMoves()
    states, actions = [], []
    for _ in range(2):
        assert env.state is not None
        states.append(env.state)
        actions.append(_random_action(env.state, rng))
        obs, _, _, info = collect(env, obs, info["action_mask"], actions[-1], [buf], [rng],
                                  False, pending=pending)
    moves = actions[0].continuous[:, K:].reshape(-1, M, 2)
    want = next_slot_move_table(env, states[1], actions[1], states[0].uav_xy_m, moves,
                                values=True)
    stored = buf.state_dict()["move_targets"]
    np.testing.assert_array_equal(stored[:3], want)
    np.testing.assert_array_equal(want[..., :3], next_slot_move_table(
        env, states[1], actions[1], states[0].uav_xy_m, moves))
    assert not stored[3:].any()  # the second step's rows still wait


def test_bad_buffer_and_agent_settings_are_named() -> None:
    with pytest.raises(ValueError, match="move_values=4"):
        ReplayBuffer(10, OBS, K, S, A, move_values=4)
    with pytest.raises(ValueError, match="move_values=-1"):
        ReplayBuffer(10, OBS, K, S, A, move_targets=True, move_values=-1)
    assert ReplayBuffer(10, OBS, K, S, A, move_targets=True).move_value_columns == 0
    with pytest.raises(ValueError, match="move_values='critic'"):
        AdSacConfig(move_value_net=True)
    with pytest.raises(ValueError, match="continuous_actor='flat'"):
        AdSacConfig(move_value_net=True, move_values="simulated")
    agent = _agent()
    batch = target_batch(4, OBS, K, S, A, move_targets=torch.zeros(4, M, 3))
    with pytest.raises(ValueError, match="move_values=17"):
        agent.update(batch)


def _agent(seed: int = 0, **cfg: object) -> AdSac:
    base: dict[str, object] = {
        "hidden": (32, 32), "iotd_hidden": (32, 32), "mpo_samples": 4,
        "iotd_block": PER_IOTD + M, "uav_step": UAV_STEP, "continuous_actor": "conditioned",
        "move_values": "simulated", "move_value_net": True}
    return AdSac(OBS, K, S, A, AdSacConfig(**{**base, **cfg}), seed=seed)


def _noisy_values(n: int, best: int, gap: float, noise: float) -> torch.Tensor:
    """[n, M, 3 + C] stored move targets: each slot's best candidate, spread 1, and candidate
    rewards whose mean favours candidate ``best`` by ``gap``, with per-slot noise."""
    g = torch.Generator().manual_seed(11)
    values = noise * torch.randn(n, M, C, generator=g)
    values[..., best] += gap
    values = values - values.mean(-1, keepdim=True)
    slot_best = torch.as_tensor(MOVE_CANDIDATES, dtype=torch.float32)[values.argmax(-1)]
    return torch.cat([slot_best, torch.ones(n, M, 1), values], -1)


def test_the_moves_fit_the_learned_best_candidate_not_each_slots_best() -> None:
    """The stored rewards favour candidate 12 on average, but each slot's best is another one
    in most rows. Fitting the slots' best averages scattered targets; fitting the learned
    values' best goes to candidate 12."""
    best = 12
    t = _noisy_values(512, best, gap=0.3, noise=0.3)
    share = float((t[..., 3:].argmax(-1) == best).float().mean())
    assert share < 0.5  # the slot's best is mostly another candidate
    batch = target_batch(512, OBS, K, S, A, move_targets=t)
    want = MOVE_CANDIDATES[best]
    agent = _agent()
    learned = fit_mode(agent, batch, 400)[:, K:].reshape(-1, M, 2)
    with torch.no_grad():
        pick = agent.move_value[0](batch.obs, batch.action_d).argmax(-1)
    assert float((pick == best).float().mean()) > 0.9
    slot = fit_mode(_agent(move_value_net=False), batch, 400)[:, K:].reshape(-1, M, 2)
    learned_gap = np.linalg.norm(learned - want, axis=-1).mean()
    slot_gap = np.linalg.norm(slot - want, axis=-1).mean()
    # the maximum-likelihood fit is still on its way (about 0.35 from it after 400 updates)
    assert learned_gap < 0.6 * slot_gap, (learned_gap, slot_gap)


def test_the_target_and_regret_follow_the_learned_values() -> None:
    """With the value network's output layer set to prefer candidate 5 everywhere, the moves'
    target is candidate 5 and the regret is what 5 gives up on the stored rewards."""
    agent = _agent()
    last = [mod for mod in agent.move_value.modules() if isinstance(mod, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(10.0 * nn.functional.one_hot(torch.tensor(5), C))
    t = _noisy_values(64, 0, gap=0.0, noise=1.0)
    t[:8, :, 2] = 0.0  # these UAVs' positions did not matter: no target, no regret
    seen: list[torch.Tensor] = []
    nll = agent._target_nll

    def spy(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor,
            used: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(target)
        return nll(mean, log_std, target, used, weight)

    agent._target_nll = spy  # type: ignore[method-assign]
    metrics = agent.update(target_batch(64, OBS, K, S, A, move_targets=t))
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0].numpy(), np.broadcast_to(MOVE_CANDIDATES[5], (64, M, 2)),
                               rtol=0, atol=1e-7)
    v = t[8:, :, 3:]
    regret = (v.max(-1).values - v[..., 5]).mean()
    assert metrics["train/move_value_regret"] == pytest.approx(float(regret), rel=1e-5)
    assert metrics["train/move_value_rmse"] > 0 and metrics["loss/move_value"] > 0


def test_the_regression_learns_a_value_that_depends_on_the_state() -> None:
    """Each candidate's stored reward is its alignment with the offset from UAV m to the first
    IoTD (a function of the observation): the learned values' best candidate comes to agree with
    it, and the regression error falls (a larger step than the default 1e-3, to be quick)."""
    agent = _agent(critic_lr=3e-3)
    g = torch.Generator().manual_seed(5)
    n = 512
    obs = torch.rand(n, OBS, generator=g) * 2 - 1
    block = PER_IOTD + M
    iotd = obs[:, :2]  # IoTD 0's (x, y): the first features of its block
    assert block > 2
    uav = obs[:, K * block + 3:K * block + 3 + 2 * M].reshape(n, M, 2)
    direction = iotd[:, None] - uav
    cands = torch.as_tensor(MOVE_CANDIDATES, dtype=torch.float32)
    values = direction @ cands.T  # [n, M, C]
    values = values - values.mean(-1, keepdim=True)
    t = torch.cat([cands[values.argmax(-1)], torch.ones(n, M, 1), values], -1)
    batch = target_batch(n, OBS, K, S, A, move_targets=t)._replace(obs=obs)
    first = agent.update(batch)["train/move_value_rmse"]
    for _ in range(150):
        final = agent.update(batch)["train/move_value_rmse"]
    assert final < 0.3 * first, (first, final)
    with torch.no_grad():
        pick = agent.move_value[0](obs, batch.action_d).argmax(-1)
    assert (pick == values.argmax(-1)).float().mean() > 0.6


def test_checkpoints_from_before_the_value_network_still_load() -> None:
    plain = _agent(move_value_net=False)
    state = plain.state_dict()
    del state["move_value"]
    again = _agent(seed=1, move_value_net=False)
    again.load_state_dict(state)
    for name, value in plain.state_dict()["actor_c"].items():
        torch.testing.assert_close(value, again.state_dict()["actor_c"][name], rtol=0, atol=0)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search-cond-pow",
                                      "adsac-exact-geo-ar-search-cond-pow", "move_value_net",
                                      ("actor_c", "critics", "move_value"),
                                      {"move_value_net": True, "move_target_slot": "next"})
    assert whole.move_value_net


def test_the_registered_combination_is_srv_cap_next_with_learned_values(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv-cap-next-val",
                                "adsac-exact-geo-ar-search-cond-pow-srv-cap-next",
                                {"move_value_net": True})
    assert isinstance(agent, AdSac) and agent.move_value_net
