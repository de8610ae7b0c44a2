"""The on-policy training loop: any :class:`OnPolicyAgent` (PPO, Hybrid-PPO) over the native
vector environment, with rollouts, GAE, minibatch epochs, evaluation on held-out seeds, progress,
and exact resumption from checkpoints.

One iteration collects ``n_steps`` steps of ``n_envs`` environments with the current policy into a
:class:`~satedge.agents.common.buffers.RolloutBuffer`, computes GAE (Schulman et al. 2016) and
runs ``epochs`` passes of shuffled minibatches through ``agent.update``. Episodes end by time limit
(truncation), so at an episode end the advantage is bootstrapped from ``V`` of the final
observation (``infos["final_obs"]``), never from the next episode's first observation. Rollouts
need not line up with episodes: a rollout may span an episode end.

Rewards are optionally divided by a running standard deviation of the discounted return before
they are stored (SB3 ``VecNormalize(norm_reward=True)``, CleanRL's ``NormalizeReward``): with
per-slot costs of order 10 the returns are of order 100, which a clipped value loss (clip 0.2)
could not follow. Logged training metrics use the raw rewards.

Checkpoints are written at episode boundaries (every sub-environment ends on the same step) and
hold the agent (networks, optimiser, its torch generator), the partly filled rollout, the reward
normaliser, the environments' state and generators, the minibatch-shuffling generator and the
counters, so a run killed at any point and started again with the same command continues exactly
as if it had never stopped (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from satedge.agents.common.buffers import RolloutBatch, RolloutBuffer
from satedge.agents.common.offpolicy import _episode_stats
from satedge.agents.common.protocol import Agent, AgentAction, to_env_action
from satedge.agents.common.rundir import RunDir
from satedge.agents.common.toy import HybridToyEnv, ToyScore, ToyTask, greedy_score
from satedge.envs.vector import MllmOffloadVectorEnv

__all__ = ["OnPolicyAgent", "OnPolicyConfig", "ReturnNormaliser", "learn", "rollout_step",
           "solve_toy", "train_on_policy"]

_ROLLOUT_FIELDS = ("obs", "mask", "action_d", "action_c", "pre_tanh", "log_prob_d", "log_prob_c",
                   "values", "rewards", "terminated", "truncated", "final_values")
"""The per-step arrays of a RolloutBuffer that a checkpoint keeps (the rest is derived)."""


@dataclass(frozen=True)
class OnPolicyConfig:
    """Loop settings. Defaults: tuned for PPO / Hybrid-PPO on the default scenario (seeds 0-1,
    ``docs/baselines.md``); SB3 / CleanRL values in the comments.

    Attributes:
        episodes: episodes in total over ``n_envs`` parallel environments (a multiple of it).
        n_envs: parallel environments B.
        n_steps: steps per environment and rollout; one rollout has ``n_envs * n_steps`` samples.
        epochs: passes over a rollout.
        minibatch_size: samples per gradient step, in [1, n_envs * n_steps].
        gamma: discount factor in [0, 1].
        gae_lambda: GAE's lambda in [0, 1] (SB3 / CleanRL: 0.95).
        normalize_reward: divide rewards by the running std of the discounted return.
        eval_every_episodes: evaluate every this many episodes (a multiple of n_envs).
        eval_episodes: evaluation episodes on the held-out seeds.
    """

    episodes: int
    n_envs: int = 8  # ours (SB3: 1, CleanRL: 4)
    n_steps: int = 25  # tuned: 25 of {25, 50, 100} (SB3: 2048, CleanRL: 128)
    epochs: int = 4  # tuned: 4 of {4, 10} (SB3, CleanRL: 10)
    minibatch_size: int = 50  # 4 minibatches per rollout, as CleanRL (SB3: 64)
    gamma: float = 0.5  # tuned: 0.5 of {0.2, 0.5, 0.9} (SB3, CleanRL: 0.99)
    gae_lambda: float = 0.95  # SB3, CleanRL
    normalize_reward: bool = True
    eval_every_episodes: int = 40
    eval_episodes: int = 8

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "epochs", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("episodes", "eval_every_episodes"):
            value = getattr(self, name)
            if value < self.n_envs or value % self.n_envs:
                raise ValueError(
                    f"{name}={value} must be a positive multiple of n_envs={self.n_envs}")
        if not 1 <= self.minibatch_size <= self.n_envs * self.n_steps:
            raise ValueError(f"minibatch_size={self.minibatch_size} must lie in [1, "
                             f"n_envs * n_steps = {self.n_envs * self.n_steps}]")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must lie in [0, 1]")


class OnPolicyAgent(Protocol):
    """What :func:`train_on_policy` needs from an agent (a superset of
    :class:`~satedge.agents.common.protocol.Agent`)."""

    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        """Actions for a batch of observations [B, D] and server masks [B, K, S]."""
        ...

    def explore(self, obs: NDArray[np.float32],
                mask: NDArray[np.bool_]) -> tuple[AgentAction, dict[str, NDArray[Any]]]:
        """A sampled action and what the rollout stores about it: the keyword arguments ``obs,
        mask, action_d, action_c, pre_tanh, log_prob_d, log_prob_c, value`` of
        :meth:`RolloutBuffer.add`, in the agent's own layout (log-probs of the sampled action)."""
        ...

    def value(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """[B] state values ``V(obs)`` (in normalised-reward units if rewards are normalised)."""
        ...

    def rollout_buffer(self, n_steps: int, n_envs: int) -> RolloutBuffer:
        """An empty rollout buffer in the agent's layout."""
        ...

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """One gradient step on a minibatch; returns metrics by their fixed names."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, torch generator: everything to resume exactly."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


class ReturnNormaliser:
    """Scales rewards by ``1 / sqrt(Var[G] + eps)`` of a running variance of the discounted
    return ``G_t = gamma G_{t-1} + r_t`` per environment (reset at episode ends), clipped to
    ``[-clip, clip]``; the running moments use Chan et al.'s parallel update (as SB3's
    ``RunningMeanStd``). With ``enabled=False`` rewards pass through unchanged."""

    def __init__(self, n_envs: int, gamma: float, enabled: bool = True, clip: float = 10.0,
                 eps: float = 1e-8) -> None:
        self.gamma, self.enabled, self.clip, self.eps = gamma, enabled, clip, eps
        self.returns = np.zeros(n_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, reward: NDArray[np.floating], done: NDArray[np.bool_]) -> NDArray[Any]:
        """[B] the scaled rewards of one step; ``done`` [B] marks episode ends."""
        if not self.enabled:
            return np.asarray(reward, np.float64)
        self.returns = self.returns * self.gamma + reward
        self._update(self.returns)
        out = np.clip(reward / np.sqrt(self.var + self.eps), -self.clip, self.clip)
        self.returns[np.asarray(done)] = 0.0
        return np.asarray(out, np.float64)

    def _update(self, x: NDArray[np.float64]) -> None:
        n, mean, var = x.size, float(x.mean()), float(x.var())
        total = self.count + n
        delta = mean - self.mean
        m2 = self.var * self.count + var * n + delta * delta * self.count * n / total
        self.mean, self.var, self.count = self.mean + delta * n / total, m2 / total, total

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.copy(), "mean": self.mean, "var": self.var,
                "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns = np.array(state["returns"], np.float64)
        self.mean, self.var = float(state["mean"]), float(state["var"])
        self.count = float(state["count"])


class _LoopState:
    """The partly filled rollout and the reward normaliser, checkpointed together in the
    checkpoint's ``buffer`` slot."""

    def __init__(self, buffer: RolloutBuffer, normaliser: ReturnNormaliser) -> None:
        self.buffer, self.normaliser = buffer, normaliser

    def state_dict(self) -> dict[str, Any]:
        pos = self.buffer.pos
        rows = {name: getattr(self.buffer, name)[:pos].copy() for name in _ROLLOUT_FIELDS}
        return {"pos": pos, "rows": rows, "normaliser": self.normaliser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.reset()
        pos = int(state["pos"])
        if not 0 <= pos < self.buffer.n_steps:
            raise ValueError(f"rollout position {pos} outside [0, {self.buffer.n_steps})")
        for name in _ROLLOUT_FIELDS:
            store = getattr(self.buffer, name)
            rows = np.asarray(state["rows"][name])
            if rows.shape != (pos, *store.shape[1:]):
                raise ValueError(f"rollout {name} has shape {rows.shape}; expected "
                                 f"{(pos, *store.shape[1:])}")
            store[:pos] = rows
        self.buffer.pos = pos
        self.normaliser.load_state_dict(state["normaliser"])


class _StepEnv(Protocol):
    """The vector-env interface one rollout step uses (the offloading env or the toy task)."""

    def step(self, actions: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, Any]]: ...


def rollout_step(agent: OnPolicyAgent, env: _StepEnv, obs: NDArray[np.float32],
                 mask: NDArray[np.bool_], buffer: RolloutBuffer, normaliser: ReturnNormaliser,
                 n_iotds: int, n_uavs: int) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """Act with ``agent.explore``, step ``env``, store the step (reward normalised; bootstrap
    value ``V(final obs)`` where an episode was truncated) and return what ``env.step`` did."""
    action, stored = agent.explore(obs, mask)
    out = env.step(to_env_action(action, n_iotds, n_uavs))
    _, reward, term, trunc, infos = out
    final_value = None
    if np.any(trunc):  # bootstrap from the ended episode's last observation
        final_value = np.where(trunc, agent.value(infos["final_obs"]), 0.0)
    buffer.add(**stored, reward=normaliser(reward, term | trunc), terminated=term,
               truncated=trunc, final_value=final_value)
    return out


def learn(agent: OnPolicyAgent, buffer: RolloutBuffer, cfg: OnPolicyConfig,
          last_obs: NDArray[np.float32], rng: np.random.Generator,
          sums: dict[str, float], counters: dict[str, int]) -> None:
    """GAE on the full rollout (``last_obs``: the observation after its last step), then
    ``epochs`` passes of minibatches shuffled by ``rng``; adds the update metrics to ``sums``
    (their count under ``"_n"``) and counts ``counters["updates"]``; empties the buffer."""
    buffer.compute(cfg.gamma, cfg.gae_lambda, agent.value(last_obs))
    for _ in range(cfg.epochs):
        for batch in buffer.minibatches(cfg.minibatch_size, rng):
            for key, value in agent.update(batch).items():
                sums[key] = sums.get(key, 0.0) + value
            counters["updates"] += 1
            sums["_n"] = sums.get("_n", 0.0) + 1.0
    buffer.reset()


def train_on_policy(
    agent: OnPolicyAgent,
    env: MllmOffloadVectorEnv,
    cfg: OnPolicyConfig,
    run: RunDir,
    evaluate: Callable[[Agent], dict[str, float]],
    progress: bool = True,
) -> dict[str, Any]:
    """Train until ``cfg.episodes`` episodes are done, resuming from ``run`` if it has a
    checkpoint. Returns the final evaluation metrics (also written to ``summary.json``).

    Each metrics record (one per batch of ``n_envs`` episodes) holds the training episodes'
    statistics, the mean of the update metrics since the previous record (absent if no update
    happened in between) and, every ``eval_every_episodes``, the evaluation.
    """
    from tqdm import tqdm

    sc = env.scenario
    if env.num_envs != cfg.n_envs:
        raise ValueError(f"env has {env.num_envs} sub-environments; cfg.n_envs={cfg.n_envs}")
    buffer = agent.rollout_buffer(cfg.n_steps, cfg.n_envs)
    normaliser = ReturnNormaliser(cfg.n_envs, cfg.gamma, cfg.normalize_reward)
    loop_state = _LoopState(buffer, normaliser)
    rng = run.seeds.buffer
    counters = {"episodes": 0, "env_steps": 0, "updates": 0}
    obs, info = env.reset(seed=run.seeds.env)
    if run.has_checkpoint():
        obs, info = run.restore(agent, loop_state, env, rng, counters)
    logger = run.logger(truncate_after=counters["env_steps"])
    bar = tqdm(total=cfg.episodes, initial=counters["episodes"], unit="ep",
               disable=not progress, desc=run.path.name)
    stats: dict[str, float] = {}
    sums: dict[str, float] = {}
    ep_return = np.zeros(cfg.n_envs)
    t0, steps0 = time.perf_counter(), counters["env_steps"]
    while counters["episodes"] < cfg.episodes:
        obs, reward, _, trunc, infos = rollout_step(agent, env, obs, info["action_mask"], buffer,
                                                    normaliser, sc.n_iotds, sc.n_uavs)
        done_info = infos.get("final_info", infos)
        _episode_stats(done_info, stats)
        ep_return += reward
        counters["env_steps"] += 1
        info = infos
        if buffer.full:
            learn(agent, buffer, cfg, obs, rng, sums, counters)
        if np.all(trunc):
            counters["episodes"] += cfg.n_envs
            slots = sc.episode_slots * cfg.n_envs
            n = sums.pop("_n", 0.0)
            row = {
                **{key: value / n for key, value in sums.items()},
                "train/episode_return": float(ep_return.mean()),
                "train/cost_per_slot": stats["cost"] / slots,
                "train/energy_j_per_slot": stats["energy_j"] / slots,
                "train/latency_s": stats["latency_sum"] / max(stats["n_executed"], 1.0),
                "perf/steps_per_s": (counters["env_steps"] - steps0) * cfg.n_envs
                / (time.perf_counter() - t0),
            }
            if (counters["episodes"] % cfg.eval_every_episodes == 0
                    or counters["episodes"] >= cfg.episodes):
                row.update({f"eval/{k}": v for k, v in evaluate(agent).items()})
            logger.log(counters["env_steps"], row)
            stats, sums, ep_return = {}, {}, np.zeros(cfg.n_envs)
            run.save(agent, loop_state, env, rng, counters)
            bar.update(cfg.n_envs)
            bar.set_postfix(cost=f"{row['train/cost_per_slot']:.2f}")
    bar.close()
    logger.close()
    final = evaluate(agent)
    run.finish({**final, "episodes": counters["episodes"], "env_steps": counters["env_steps"],
                "updates": counters["updates"]})
    return final


def solve_toy(agent: OnPolicyAgent, task: ToyTask, cfg: OnPolicyConfig, iterations: int,
              seed: int) -> ToyScore:
    """Train ``agent`` on the known-answer toy task (:mod:`satedge.agents.common.toy`) with the
    same rollout step and update as :func:`train_on_policy`: ``iterations`` rollouts of
    ``cfg.n_steps`` steps of ``cfg.n_envs`` states; returns the greedy score."""
    if iterations < 1:
        raise ValueError(f"iterations={iterations} must be >= 1")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    env = HybridToyEnv(cfg.n_envs, task)
    buffer = agent.rollout_buffer(cfg.n_steps, cfg.n_envs)
    normaliser = ReturnNormaliser(cfg.n_envs, cfg.gamma, cfg.normalize_reward)
    obs, info = env.reset(seed=int(rng.integers(2**62)))
    sums: dict[str, float] = {}
    counters = {"updates": 0}
    for _ in range(iterations * cfg.n_steps):
        obs, _, _, _, info = rollout_step(agent, env, obs, info["action_mask"], buffer,
                                          normaliser, task.n_iotds, task.n_uavs)
        if buffer.full:
            learn(agent, buffer, cfg, obs, rng, sums, counters)
    return greedy_score(agent, task, seed=int(rng.integers(2**62)))
