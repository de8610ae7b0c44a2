"""The known-answer toy task: hand-computed rewards, observable answers, the env interface and
the replay driver."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.common.toy import (
    HybridToyEnv,
    ToyContexts,
    ToyTask,
    _unavailable_copy,
    greedy_score,
    sample_contexts,
    solve,
    toy_reward,
)

TASK = ToyTask()


class Oracle:
    """Reads the answer off the observation; counts the updates it is given."""

    def __init__(self, task: ToyTask) -> None:
        self.task, self.updates, self.batch_sizes = task, 0, set()

    def act(self, obs: np.ndarray, mask: np.ndarray, deterministic: bool = False) -> AgentAction:
        k, s = self.task.n_iotds, self.task.n_servers
        pref = obs[:, : k * s].reshape(-1, k, s)
        feasible = obs[:, k * s : 2 * k * s].reshape(-1, k, s) > 0.5
        np.testing.assert_array_equal(feasible, mask)
        server = np.where(feasible, pref, -1.0).argmax(-1)
        cont = np.concatenate([obs[:, 2 * k * s :], np.zeros((len(obs), 2 * self.task.n_uavs))],
                              axis=-1)
        return AgentAction(server.astype(np.int64), cont.astype(np.float32))

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        self.updates += 1
        self.batch_sizes.add(batch.obs.shape[0])
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_reward_by_hand() -> None:
    ctx = ToyContexts(obs=np.zeros((1, TASK.obs_dim), np.float32),
                      mask=np.ones((1, 2, 3), bool), server=np.array([[0, 2]]),
                      target=np.array([[0.5, -0.5, 0.0, 0.0]]))
    # one of two servers wrong: -0.5; errors |0|, |0.5|, |0.1|, |-0.1| -> mean 0.175
    r = toy_reward(ctx, np.array([[0, 1]]), np.array([[0.5, 0.0, 0.1, -0.1]]))
    np.testing.assert_allclose(r, [-0.675])


def test_answers_are_feasible_observable_and_masked_at_the_stated_rate() -> None:
    ctx = sample_contexts(TASK, 20_000, np.random.default_rng(0))
    assert np.take_along_axis(ctx.mask, ctx.server[..., None], -1).all()
    masked = ~ctx.mask.all(-1)
    assert masked.mean() == pytest.approx(TASK.mask_prob, abs=0.01)  # 4 sigma ~ 0.007
    assert set(np.unique(ctx.target[:, :2])) == {-0.5, 0.5} and not ctx.target[:, 2:].any()
    oracle = Oracle(TASK)
    act = oracle.act(ctx.obs, ctx.mask)
    np.testing.assert_array_equal(act.discrete, ctx.server)
    np.testing.assert_allclose(toy_reward(ctx, act.discrete, act.continuous), 0.0)


def test_env_steps_like_the_vector_env() -> None:
    env = HybridToyEnv(5)
    obs, info = env.reset(seed=3)
    obs2, _ = HybridToyEnv(5).reset(seed=3)
    np.testing.assert_array_equal(obs, obs2)
    answer = Oracle(TASK).act(obs, info["action_mask"])
    nxt, reward, term, trunc, infos = env.step(to_env_action(answer, 2, 1))
    np.testing.assert_allclose(reward, 0.0)
    assert term.all() and not trunc.any()
    np.testing.assert_array_equal(infos["final_obs"], obs)
    assert not np.array_equal(nxt, obs)
    assert infos["action_mask"].shape == (5, 2, 3)


def test_unavailable_copy_sends_one_iotd_to_a_masked_server() -> None:
    rng = np.random.default_rng(1)
    ctx = sample_contexts(TASK, 200, rng)
    action = AgentAction(ctx.server.copy(), np.zeros((200, 4), np.float32))
    has, a_d = _unavailable_copy(ctx, action, rng)
    np.testing.assert_array_equal(has, (~ctx.mask).any((-1, -2)))
    changed = a_d != ctx.server
    assert (changed.sum(-1) == has).all()
    assert not np.take_along_axis(ctx.mask, a_d[..., None], -1)[changed].any()


def test_driver_counts_and_greedy_score() -> None:
    oracle = Oracle(TASK)
    score = solve(oracle, TASK, steps=50, seed=0, n_envs=4, batch_size=16,
                  learning_starts=64, updates_per_step=2)
    # updates start once 64 transitions are stored, i.e. after step 16 of 50
    assert oracle.updates == 2 * (50 - 15) and oracle.batch_sizes == {16}
    assert score.accuracy == 1.0 and score.value_error == pytest.approx(0.0, abs=1e-7)
    assert score.mean_reward == pytest.approx(0.0, abs=1e-7)


def test_task_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_servers=1"):
        ToyTask(n_servers=1)
    with pytest.raises(ValueError, match="mask_prob=2"):
        ToyTask(mask_prob=2)
    score = greedy_score(Oracle(TASK), TASK, n=64)
    assert score.accuracy == 1.0
