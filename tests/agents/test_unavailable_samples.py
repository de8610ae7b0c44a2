"""Algorithm 1 line 6: counterfactual transitions with a masked server, priced by the simulator."""

from __future__ import annotations

import numpy as np

from satedge.agents.common.offpolicy import unavailable_action_samples
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
