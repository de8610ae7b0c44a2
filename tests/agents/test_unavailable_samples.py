"""Algorithm 1 line 6: counterfactual transitions with a masked server, priced by the simulator."""

from __future__ import annotations

import numpy as np

from satedge.agents.common.offpolicy import counterfactual_samples, unavailable_action_samples
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.state import TaskStatus


def test_samples_send_one_task_to_a_masked_server_and_match_the_env_reward() -> None:
    env = MllmOffloadVectorEnv(16)
    _, info = env.reset(seed=3)
    state = env.state
    assert state is not None
    rng = np.random.default_rng(0)
    mask = info["action_mask"]
    a_d = np.argmax(mask, axis=-1)
    action = AgentAction(a_d, np.zeros((16, 16), dtype=np.float32))
    has, cf, rewards, shares = unavailable_action_samples(env, state, action, rng)
    np.testing.assert_allclose(shares.sum(-1), rewards, rtol=1e-9, atol=1e-9)
    assert has.sum() > 8
    changed = cf != a_d
    assert np.all(changed.sum(-1)[has] == 1) and not changed[~has].any()
    b, k = np.nonzero(changed)
    assert not mask[b, k, cf[b, k]].any()  # every replaced choice is masked
    # the reward equals what the environment pays for that same joint action
    _, env_rewards, _, _, step_info = env.step(to_env_action(AgentAction(cf, action.continuous),
                                                             10, 3))
    np.testing.assert_allclose(rewards, env_rewards, rtol=1e-12)
    assert np.all(step_info["n_infeasible"][has] == 1)
    assert TaskStatus.INFEASIBLE == 4


def test_counterfactual_samples_reassign_feasible_servers_and_match_the_env_reward() -> None:
    env = MllmOffloadVectorEnv(16)
    _, info = env.reset(seed=5)
    state = env.state
    assert state is not None
    mask = info["action_mask"]
    a_d = np.argmax(mask, axis=-1)
    action = AgentAction(a_d, np.zeros((16, 16), dtype=np.float32))
    has, cf, rewards, shares = counterfactual_samples(env, state, action,
                                                      np.random.default_rng(1))
    again = counterfactual_samples(env, state, action, np.random.default_rng(1))
    np.testing.assert_array_equal(again[1], cf)  # seeded
    np.testing.assert_allclose(shares.sum(-1), rewards, rtol=1e-9, atol=1e-9)
    active = state.tasks.active & mask.any(-1)
    np.testing.assert_array_equal(has, active.any(-1))
    assert np.all(mask[np.arange(16)[:, None], np.arange(10), cf] | ~active)  # all feasible
    assert not (cf != a_d)[~active].any()  # only active IoTDs move
    changed = (cf != a_d).sum(-1)
    assert changed.max() >= 2  # several IoTDs at once in some environments
    _, env_rewards, _, _, step_info = env.step(to_env_action(AgentAction(cf, action.continuous),
                                                             10, 3))
    np.testing.assert_allclose(rewards, env_rewards, rtol=1e-12)
    assert np.all(step_info["n_infeasible"] == 0)


def test_counterfactual_samples_fill_the_buffer_only_when_asked() -> None:
    from satedge.agents.common.buffers import ReplayBuffer
    from satedge.agents.common.offpolicy import collect
    from satedge.envs.encoding import observation_size

    sizes = []
    for n in (0, 2):
        env = MllmOffloadVectorEnv(4)
        obs, info = env.reset(seed=0)
        buf = ReplayBuffer(100, observation_size(env.scenario), 10, env.scenario.n_servers, 16)
        mask = info["action_mask"]
        action = AgentAction(np.argmax(mask, axis=-1), np.zeros((4, 16), dtype=np.float32))
        collect(env, obs, mask, action, [buf], [np.random.default_rng(0)], False, n)
        sizes.append(len(buf))
    assert sizes[0] == 4 and sizes[1] > 4
