"""A tiny hybrid-action task with a known answer, and a compact off-policy driver for it.

:class:`HybridToyEnv` is a contextual bandit with the batch interface of the offloading vector
environment (``reset(seed) -> (obs [B, D], {"action_mask": [B, K, S]})``, ``step(Dict action)``
with ``offload`` [B, K], ``power`` [B, K] and ``uav`` [B, M, 2] in [-1, 1]), so every learner can
be checked on it through the same :class:`~satedge.agents.common.protocol.Agent` calls it makes on
the real environment. Each of the K "IoTDs" sees a preference over the S servers (1 for the best,
0.5 for the second best, 0 for the rest), which servers are feasible, and a target power ``v_k``;
with probability ``mask_prob`` its best server is masked. The known answer in every state:

- server ``k``: the most preferred *feasible* server (the best, or the second best where the best
  is masked, so a learner must rank and respect the mask);
- power ``k``: ``v_k`` (drawn from ``power_targets``, on the 5-level grid of AD-SAC-D);
- UAV moves: stay (0, 0).

Reward: ``r = -mean_k [server_k wrong] - mean_j |a_c,j - target_j|`` over the K + 2M continuous
components; 0 is optimal, a masked server counts as wrong. Every step ends the episode
(``terminated``), so the optimum does not depend on the discount.

:func:`solve` trains any off-policy agent on it (replay, uniform warm-up, optional
unavailable-action samples as in the training loop) and returns :func:`greedy_score`. On-policy
learners drive :class:`HybridToyEnv` with their rollout loop (it steps like the vector env:
``infos["action_mask"]`` and ``infos["final_obs"]``; see ``onpolicy.solve_toy``), then call
:func:`greedy_score`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.protocol import Agent, AgentAction, to_env_action

__all__ = ["HybridToyEnv", "ToyScore", "ToyTask", "greedy_score", "solve"]


@dataclass(frozen=True)
class ToyTask:
    """Sizes and answer distribution of the toy task (``K`` IoTDs, ``S`` servers, ``M`` UAVs)."""

    n_iotds: int = 2
    n_servers: int = 3
    n_uavs: int = 1
    power_targets: tuple[float, ...] = (-0.5, 0.5)
    mask_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.n_iotds < 1 or self.n_uavs < 1:
            raise ValueError(f"n_iotds={self.n_iotds} and n_uavs={self.n_uavs} must be >= 1")
        if self.n_servers < 2:
            raise ValueError(f"n_servers={self.n_servers} must be >= 2 (a best and a fallback)")
        if not self.power_targets or any(abs(v) > 1 for v in self.power_targets):
            raise ValueError(f"power_targets={self.power_targets} must be values in [-1, 1]")
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob={self.mask_prob} must lie in [0, 1]")

    @property
    def obs_dim(self) -> int:
        """K S preferences, K S feasibility flags (as the real observation, the mask is a
        function of the state), then K target powers."""
        return self.n_iotds * (2 * self.n_servers + 1)

    @property
    def cont_dim(self) -> int:
        """K powers then 2 M UAV move components."""
        return self.n_iotds + 2 * self.n_uavs


class ToyContexts(NamedTuple):
    """A batch of states with their answers."""

    obs: NDArray[np.float32]     # [B, 2 K S + K]
    mask: NDArray[np.bool_]      # [B, K, S] feasible servers
    server: NDArray[np.int64]    # [B, K] the right server
    target: NDArray[np.float64]  # [B, K + 2M] the right continuous action


def sample_contexts(task: ToyTask, n: int, rng: np.random.Generator) -> ToyContexts:
    """``n`` independent states of ``task``."""
    k, s = task.n_iotds, task.n_servers
    best = rng.integers(0, s, size=(n, k))
    second = (best + rng.integers(1, s, size=(n, k))) % s
    pref = np.zeros((n, k, s))
    np.put_along_axis(pref, best[..., None], 1.0, axis=-1)
    np.put_along_axis(pref, second[..., None], 0.5, axis=-1)
    masked = rng.random((n, k)) < task.mask_prob
    mask = np.ones((n, k, s), dtype=bool)
    np.put_along_axis(mask, best[..., None], ~masked[..., None], axis=-1)
    power = rng.choice(np.asarray(task.power_targets), size=(n, k))
    target = np.concatenate([power, np.zeros((n, 2 * task.n_uavs))], axis=-1)
    obs = np.concatenate([pref.reshape(n, k * s), mask.reshape(n, k * s), power], axis=-1)
    obs = obs.astype(np.float32)
    return ToyContexts(obs, mask, np.where(masked, second, best), target)


def toy_reward(ctx: ToyContexts, server: NDArray[Any], continuous: NDArray[Any]
               ) -> NDArray[np.float64]:
    """[B] reward of servers [B, K] and continuous actions [B, K + 2M] in the states ``ctx``."""
    wrong = (np.asarray(server) != ctx.server).mean(axis=-1)
    error = np.abs(np.asarray(continuous, np.float64) - ctx.target).mean(axis=-1)
    return -wrong - error


class HybridToyEnv:
    """``n_envs`` copies of the toy task in the vector environment's step interface."""

    def __init__(self, n_envs: int, task: ToyTask | None = None) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs={n_envs} must be >= 1")
        self.num_envs, self.task = n_envs, task or ToyTask()
        self.rng = np.random.default_rng(0)
        self.ctx = sample_contexts(self.task, n_envs, self.rng)

    def reset(self, *, seed: int | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Fresh states (``seed`` re-seeds the task's generator)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.ctx = sample_contexts(self.task, self.num_envs, self.rng)
        return self.ctx.obs, {"action_mask": self.ctx.mask}

    def step(self, actions: dict[str, Any]) -> tuple[
            NDArray[np.float32], NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_],
            dict[str, Any]]:
        """Score the Dict action, end every episode and start new ones (autoreset):
        ``infos["final_obs"]`` holds the ended states' observations."""
        b = self.num_envs
        cont = np.concatenate([np.asarray(actions["power"]).reshape(b, -1),
                               np.asarray(actions["uav"]).reshape(b, -1)], axis=-1)
        reward = toy_reward(self.ctx, actions["offload"], cont)
        final_obs = self.ctx.obs
        obs, info = self.reset()
        infos = {**info, "final_obs": final_obs, "_final_obs": np.ones(b, dtype=bool)}
        return obs, reward, np.ones(b, dtype=bool), np.zeros(b, dtype=bool), infos


@dataclass(frozen=True)
class ToyScore:
    """Greedy (deterministic) performance on fresh states."""

    accuracy: float     # fraction of IoTDs sent to the right server
    value_error: float  # mean |a_c - target| over all continuous components
    mean_reward: float  # mean reward (0 is optimal)


def greedy_score(agent: Agent, task: ToyTask, n: int = 512, seed: int = 12345) -> ToyScore:
    """Score ``agent.act(..., deterministic=True)`` on ``n`` states drawn with ``seed``."""
    ctx = sample_contexts(task, n, np.random.default_rng(seed))
    action = agent.act(ctx.obs, ctx.mask, deterministic=True)
    return ToyScore(
        accuracy=float((action.discrete == ctx.server).mean()),
        value_error=float(np.abs(action.continuous - ctx.target).mean()),
        mean_reward=float(toy_reward(ctx, action.discrete, action.continuous).mean()),
    )


def _uniform(mask: NDArray[np.bool_], cont_dim: int, rng: np.random.Generator) -> AgentAction:
    """Uniform over the feasible servers and the continuous box (the loop's warm-up)."""
    u = rng.random(mask.shape) * mask
    return AgentAction(u.argmax(-1).astype(np.int64),
                       rng.uniform(-1, 1, (mask.shape[0], cont_dim)).astype(np.float32))


def _unavailable_copy(ctx: ToyContexts, action: AgentAction, rng: np.random.Generator
                      ) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Rows with a masked server and their actions with one IoTD sent to one (as in
    :func:`~satedge.agents.common.offpolicy.unavailable_action_samples`)."""
    a_d = action.discrete.copy()
    has: NDArray[np.bool_] = np.asarray((~ctx.mask).any(axis=(-1, -2)))
    for b in np.flatnonzero(has):
        k = rng.choice(np.flatnonzero((~ctx.mask[b]).any(-1)))
        a_d[b, k] = rng.choice(np.flatnonzero(~ctx.mask[b, k]))
    return has, a_d


def solve(agent: Agent, task: ToyTask, steps: int, seed: int, *, n_envs: int = 4,
          batch_size: int = 64, learning_starts: int = 256, updates_per_step: int = 1,
          unavailable_samples: bool = False) -> ToyScore:
    """Train an off-policy ``agent`` on ``task`` and return its :func:`greedy_score`.

    Each of ``steps`` iterations acts in ``n_envs`` states (uniformly at random until the buffer
    holds ``learning_starts`` transitions), stores the transitions (and, if
    ``unavailable_samples``, a copy with one masked server choice per state that has one) and
    then makes ``updates_per_step`` gradient updates on minibatches of ``batch_size``.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    env = HybridToyEnv(n_envs, task)
    buffer = ReplayBuffer(steps * n_envs * 2, task.obs_dim, task.n_iotds, task.n_servers,
                          task.cont_dim)
    obs, info = env.reset(seed=int(rng.integers(2**62)))
    for _ in range(steps):
        mask, ctx = info["action_mask"], env.ctx
        if len(buffer) < learning_starts:
            action = _uniform(mask, task.cont_dim, rng)
        else:
            action = agent.act(obs, mask)
        next_obs, reward, term, _, info = env.step(
            to_env_action(action, task.n_iotds, task.n_uavs))
        buffer.add(obs, action.discrete, action.continuous, reward, info["final_obs"], term,
                   mask, mask)
        if unavailable_samples:
            has, a_d = _unavailable_copy(ctx, action, rng)
            r_u = toy_reward(ctx, a_d, action.continuous)
            buffer.add(obs[has], a_d[has], action.continuous[has], r_u[has],
                       info["final_obs"][has], term[has], mask[has], mask[has])
        if len(buffer) >= max(batch_size, learning_starts):
            for _ in range(updates_per_step):
                agent.update(buffer.sample(batch_size, rng))
        obs = next_obs
    return greedy_score(agent, task, seed=int(rng.integers(2**62)))
