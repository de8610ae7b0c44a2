"""Every learner solves the tiny hybrid task with a known answer within a stated step budget.

The task (:mod:`satedge.agents.common.toy`): K = 2 IoTDs, S = 3 servers, M = 1 UAV; the right
server is the most preferred feasible one (the best is masked half the time), the right powers are
+-0.5 as the observation says and the UAV should stay. A uniform random policy scores an accuracy
of 0.417 and a value error of 0.5625; "solved" is an accuracy of at least
:data:`MIN_ACCURACY` and a mean absolute continuous error of at most :data:`MAX_VALUE_ERROR` for
the greedy policy on 512 fresh states.

To add a learner, append a :class:`Case` to :data:`CASES` (registry name, budget, small
overrides). Off-policy learners go through :func:`~satedge.agents.common.toy.solve`; an on-policy
learner sets ``driver`` to a function that trains it on ``HybridToyEnv`` (see the toy module's
docstring) and returns ``greedy_score``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest
import torch

from satedge.agents.common.offpolicy import OffPolicyConfig
from satedge.agents.common.onpolicy import OnPolicyAgent, OnPolicyConfig, solve_toy
from satedge.agents.common.protocol import Agent, AgentAction
from satedge.agents.common.toy import ToyScore, ToyTask, greedy_score, solve
from satedge.agents.registry import algorithm_spec, build_agent

torch.set_num_threads(1)

MIN_ACCURACY = 0.95
MAX_VALUE_ERROR = 0.15
TASK = ToyTask()


def off_policy(agent: Agent, case: Case, seed: int) -> ToyScore:
    """Train through the replay driver with the algorithm's own unavailable-sample setting."""
    preset = algorithm_spec(case.algo).loop_preset
    unavailable = preset.get("unavailable_samples", OffPolicyConfig.unavailable_samples)
    return solve(agent, TASK, case.steps, seed, unavailable_samples=unavailable)


def on_policy(agent: Agent, case: Case, seed: int) -> ToyScore:
    """Train through the on-policy loop's rollout step and update (``case.steps`` rollouts of
    16 steps of 8 states, 10 epochs of minibatches of 32)."""
    cfg = OnPolicyConfig(episodes=8, n_envs=8, n_steps=16, epochs=10, minibatch_size=32,
                         eval_every_episodes=8)
    return solve_toy(cast(OnPolicyAgent, agent), TASK, cfg, case.steps, seed)


@dataclass(frozen=True)
class Case:
    """One learner: ``steps`` driver iterations (4 transitions and one update each)."""

    algo: str
    steps: int
    overrides: dict[str, Any] = field(default_factory=dict)
    driver: Callable[[Agent, Case, int], ToyScore] = off_policy
    slow: bool = True


SMALL = {"hidden": [64, 64]}
CASES = [
    Case("adsac-d", 500, {**SMALL, "actor_lr": 2e-3, "critic_lr": 2e-3}, slow=False),
    Case("adsac-d", 1000, SMALL),
    Case("adsac-c", 1500, SMALL),
    Case("adsac", 1500, {**SMALL, "mpo_samples": 4}),
    Case("adsac-nompo", 1500, SMALL),
    Case("adsac-paper", 1500, SMALL),
    Case("ppo", 15, {**SMALL, "lr": 1e-3}, driver=on_policy),
    Case("hybrid-ppo", 30, {**SMALL, "lr": 3e-3}, driver=on_policy),
    Case("d3qn", 600, SMALL, slow=False),
    Case("d3qn", 1500, SMALL),
    Case("ddpg", 2000, {**SMALL, "critic_lr": 3e-3}),  # a bandit: no bootstrap to destabilise
]


def _id(case: Case) -> str:
    return f"{case.algo}-{case.steps}" + ("-fast" if not case.slow else "")


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=_id(c), marks=[pytest.mark.slow] if c.slow else []) for c in CASES],
)
def test_learner_solves_known_answer_task(case: Case) -> None:
    seed = 0
    agent, _ = build_agent(case.algo, TASK.obs_dim, TASK.n_iotds, TASK.n_servers,
                           TASK.cont_dim, seed, case.overrides)
    score = case.driver(agent, case, seed)
    print(f"{case.algo}, {case.steps} steps: {score}")
    assert score.accuracy >= MIN_ACCURACY, score
    assert score.value_error <= MAX_VALUE_ERROR, score


def test_uniform_random_policy_is_far_from_the_criterion() -> None:
    """Accuracy 0.5 / 2 + 0.5 / 3 = 0.417 and error (2 * 0.625 + 2 * 0.5) / 4 = 0.5625 by hand."""
    rng = np.random.default_rng(0)

    class Uniform:
        def act(self, obs: Any, mask: Any, deterministic: bool = False) -> AgentAction:
            server = (rng.random(mask.shape) * mask).argmax(-1)
            return AgentAction(server, rng.uniform(-1, 1, (len(obs), TASK.cont_dim)))

    score = greedy_score(Uniform(), TASK, n=20_000)  # type: ignore[arg-type]
    assert score.accuracy == pytest.approx(5 / 12, abs=0.01)
    assert score.value_error == pytest.approx(0.5625, abs=0.01)
