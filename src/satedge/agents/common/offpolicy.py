"""The off-policy training loop: any :class:`~satedge.agents.common.protocol.Agent` over the
native vector environment, with replay, unavailable-action samples, evaluation on held-out seeds,
progress, and exact resumption from checkpoints.

Checkpoints are written at episode boundaries (every sub-environment ends on the same step) and
hold the agent (networks, optimisers, temperatures, dual variables, its RNG), the replay buffer,
the environment's state and generators, the buffer's sampling RNG and the loop's counters, so a
run killed at any point and started again with the same command continues exactly as if it had
never stopped (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.protocol import Agent, AgentAction, to_env_action
from satedge.agents.common.rundir import RunDir
from satedge.agents.heuristics import uniform_feasible_servers
from satedge.envs.encoding import observation_size, reward_per_task
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.state import SlotState

__all__ = ["OffPolicyConfig", "train_off_policy", "unavailable_action_samples"]


@dataclass(frozen=True)
class OffPolicyConfig:
    """Loop settings: ``episodes`` in total over ``n_envs`` parallel environments."""

    episodes: int
    n_envs: int = 4
    batch_size: int = 128
    buffer_size: int = 10_000
    learning_starts: int = 1_000
    updates_per_transition: float = 1.0
    unavailable_samples: bool = True
    eval_every_episodes: int = 20
    eval_episodes: int = 8

    def __post_init__(self) -> None:
        for name in ("n_envs", "batch_size", "buffer_size", "eval_every_episodes",
                     "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.learning_starts < 0 or not self.updates_per_transition >= 0:
            raise ValueError(f"learning_starts={self.learning_starts} and updates_per_transition="
                             f"{self.updates_per_transition} must be >= 0")
        if self.episodes < self.n_envs or self.episodes % self.n_envs:
            raise ValueError(
                f"episodes={self.episodes} must be a positive multiple of n_envs={self.n_envs}"
            )


def unavailable_action_samples(
    env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction, rng: np.random.Generator
) -> tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Counterfactual transitions with one masked server choice (Algorithm 1, line 6).

    For every environment with an active task that has both feasible and masked servers, one such
    IoTD is picked at random and sent to a random masked server; the reward of that joint action
    comes from the simulator's pure cost function. Server choices do not change the next state,
    so the original next observation is exact for the copy.
    Returns (which envs got a sample [B], their discrete actions [B, K], rewards [B], each
    task's share of the reward [B, K]).
    """
    mask = state.mask
    active = state.tasks.active & mask.any(-1) & ~mask.all(-1)
    has = np.asarray(active.any(-1))
    a_d = action.discrete.copy()
    rows = np.flatnonzero(has)
    for b in rows:
        k = rng.choice(np.flatnonzero(active[b]))
        a_d[b, k] = rng.choice(np.flatnonzero(~mask[b, k]))
    env_act = to_env_action(
        AgentAction(a_d, action.continuous), env.scenario.n_iotds, env.scenario.n_uavs
    )
    server, power, _ = env.decode(env_act)
    outcome = env.network.cost(state, server, power)
    return has, a_d, env_reward(env.scenario, outcome), reward_per_task(env.scenario, outcome)


def _episode_stats(infos: dict[str, Any], acc: dict[str, float]) -> None:
    for key in ("cost", "energy_j", "n_executed", "n_active"):
        acc[key] = acc.get(key, 0.0) + float(np.sum(infos[key]))
    acc["latency_sum"] = acc.get("latency_sum", 0.0) + float(
        np.sum(infos["latency_s"] * infos["n_executed"])
    )


def train_off_policy(
    agent: Agent,
    env: MllmOffloadVectorEnv,
    cfg: OffPolicyConfig,
    run: RunDir,
    evaluate: Callable[[Agent], dict[str, float]],
    progress: bool = True,
) -> dict[str, Any]:
    """Train until ``cfg.episodes`` episodes are done, resuming from ``run`` if it has a
    checkpoint. Returns the final evaluation metrics."""
    from tqdm import tqdm

    sc = env.scenario
    obs_dim = observation_size(sc)
    cont = sc.n_iotds + 2 * sc.n_uavs
    buffer = ReplayBuffer(cfg.buffer_size, obs_dim, sc.n_iotds, sc.n_servers, cont)
    seeds = run.seeds
    rng = seeds.buffer
    counters = {"episodes": 0, "env_steps": 0, "updates": 0}
    obs, info = env.reset(seed=seeds.env)
    if run.has_checkpoint():
        obs, info = run.restore(agent, buffer, env, rng, counters)
    logger = run.logger(truncate_after=counters["env_steps"])
    bar = tqdm(
        total=cfg.episodes,
        initial=counters["episodes"],
        unit="ep",
        disable=not progress,
        desc=run.path.name,
    )
    stats: dict[str, float] = {}
    ep_return = np.zeros(cfg.n_envs)
    t0, steps0 = time.perf_counter(), counters["env_steps"]
    while counters["episodes"] < cfg.episodes:
        state = env.state
        assert state is not None
        mask = info["action_mask"]
        if counters["env_steps"] * cfg.n_envs < cfg.learning_starts:
            action = _uniform_action(mask, cont, rng)
        else:
            action = agent.act(obs, mask)
        next_obs, reward, term, trunc, infos = env.step(
            to_env_action(action, sc.n_iotds, sc.n_uavs)
        )
        done_info = infos.get("final_info", infos)
        real_next = infos["final_obs"] if "final_obs" in infos else next_obs
        next_mask = done_info["action_mask"]
        buffer.add(
            obs,
            action.discrete,
            action.continuous,
            reward,
            real_next,
            term,
            mask,
            next_mask,
            done_info["reward_per_task"],
        )
        if cfg.unavailable_samples:
            has, a_d, r_u, r_uk = unavailable_action_samples(env, state, action, rng)
            if has.any():
                buffer.add(
                    obs[has],
                    a_d[has],
                    action.continuous[has],
                    r_u[has],
                    real_next[has],
                    term[has],
                    mask[has],
                    next_mask[has],
                    r_uk[has],
                )
        _episode_stats(done_info, stats)
        ep_return += reward
        counters["env_steps"] += 1
        if len(buffer) >= max(cfg.batch_size, cfg.learning_starts):
            n_updates = round(cfg.updates_per_transition * cfg.n_envs)
            for _ in range(n_updates):
                metrics = agent.update(buffer.sample(cfg.batch_size, rng, "cpu"))
                counters["updates"] += 1
        else:
            metrics = {}
        obs, info = next_obs, infos
        if np.all(trunc):
            counters["episodes"] += cfg.n_envs
            slots = sc.episode_slots * cfg.n_envs
            row = {
                **metrics,
                "train/episode_return": float(ep_return.mean()),
                "train/cost_per_slot": stats["cost"] / slots,
                "train/energy_j_per_slot": stats["energy_j"] / slots,
                "train/latency_s": stats["latency_sum"] / max(stats["n_executed"], 1.0),
                "perf/steps_per_s": (counters["env_steps"] - steps0)
                * cfg.n_envs
                / (time.perf_counter() - t0),
            }
            if (
                counters["episodes"] % cfg.eval_every_episodes == 0
                or counters["episodes"] >= cfg.episodes
            ):
                row.update({f"eval/{k}": v for k, v in evaluate(agent).items()})
            logger.log(counters["env_steps"], row)
            stats, ep_return = {}, np.zeros(cfg.n_envs)
            run.save(agent, buffer, env, rng, counters)
            bar.update(cfg.n_envs)
            bar.set_postfix(cost=f"{row['train/cost_per_slot']:.2f}")
    bar.close()
    final = evaluate(agent)
    run.finish(
        {
            **final,
            "episodes": counters["episodes"],
            "env_steps": counters["env_steps"],
            "updates": counters["updates"],
        }
    )
    return final


def _uniform_action(mask: NDArray[np.bool_], cont: int, rng: np.random.Generator) -> AgentAction:
    """Warm-up action: uniform over feasible servers and the continuous box."""
    return AgentAction(
        uniform_feasible_servers(mask, rng),
        rng.uniform(-1, 1, (mask.shape[0], cont)).astype(np.float32),
    )


def set_torch_threads(n: int = 1) -> None:
    """One thread per training process; parallelism comes from processes (measured later)."""
    torch.set_num_threads(n)
