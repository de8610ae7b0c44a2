"""Evaluate a policy on a scenario over several seeded episodes and summarise the metrics.

All episodes run as one batch of the native vector environment. Seeds: the evaluation seed is
split by ``numpy.random.SeedSequence`` into one stream per episode (the environments) and one for
the policy's own randomness, so results depend on the seed alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from satedge.agents.common.protocol import Agent, to_env_action
from satedge.agents.heuristics import Action, HeuristicPolicy
from satedge.envs.encoding import ObservationEncoder
from satedge.envs.vector import MllmOffloadVectorEnv, spawn_seeds
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState

__all__ = ["METRICS", "AgentPolicy", "evaluate"]


class AgentPolicy:
    """An observation-based agent seen through the policy interface of :func:`evaluate`.

    It encodes the state exactly as the environment does and acts deterministically by default
    (the mode of each action distribution), so evaluation does not consume the agent's RNG.
    """

    def __init__(self, agent: Agent, deterministic: bool = True) -> None:
        self.agent, self.deterministic = agent, deterministic
        self._encoders: dict[int, ObservationEncoder] = {}

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        encoder = self._encoders.get(id(network))
        if encoder is None:
            encoder = self._encoders[id(network)] = ObservationEncoder(network)
        action = self.agent.act(encoder(state), state.mask, self.deterministic)
        sc = network.scenario
        return to_env_action(action, sc.n_iotds, sc.n_uavs)

METRICS: dict[str, str] = {
    "latency_s": "mean latency per executed task (s)",
    "energy_j_per_slot": "mean energy per slot (J)",
    "cost_per_slot": "mean system cost C per slot",
    "reward_per_slot": "mean reward per slot",
    "episode_return": "mean undiscounted return per episode",
    "deadline_miss_rate": "tasks over their deadline / tasks",
    "visibility_fail_rate": "tasks whose access satellite set before they finished / tasks",
    "infeasible_rate": "tasks sent to a masked server / tasks",
    "drop_rate": "tasks with no feasible server / tasks",
    "uav_share": "executed tasks served by UAVs / executed tasks",
    "satellite_share": "executed tasks served by satellites / executed tasks",
}
"""Metric names printed by ``satedge evaluate`` and their meaning."""

_SUMS = ("cost", "energy_j", "n_active", "n_executed", "n_uav", "n_satellite", "n_deadline",
         "n_visibility", "n_infeasible", "n_dropped")


def evaluate(policy: HeuristicPolicy, scenario: Scenario, episodes: int, seed: int, *,
             record_tasks: bool = False) -> dict[str, Any]:
    """Run ``episodes`` full episodes and return the metrics of :data:`METRICS` plus counts.

    With ``record_tasks``, ``result["task_records"]`` also holds every active task as equal-length
    arrays: ``episode``, ``slot``, ``iotd``, ``server``, ``status`` (:class:`TaskStatus` values),
    ``uav`` (server is a UAV), ``deadline_s`` and ``latency_s`` (nan where not executed).
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    env_seed, policy_seq = np.random.SeedSequence(seed).spawn(2)
    env = MllmOffloadVectorEnv(episodes, scenario)
    env.reset(seed=spawn_seeds(int(env_seed.generate_state(1)[0]), episodes))
    rng = np.random.default_rng(policy_seq)
    totals = dict.fromkeys(_SUMS, 0.0)
    latency_sum = reward_sum = 0.0
    slots = 0
    records: list[dict[str, NDArray[Any]]] = []
    for t in range(scenario.episode_slots):
        state = env.state
        assert state is not None
        action = policy.act(env.network, state, rng)
        if record_tasks:  # the pure cost function: what env.step computes for this slot
            server, power_w, _ = env.decode(action)
            outcome = env.network.cost(state, server, power_w)
            records.append(_task_records(state, outcome, t, scenario.n_uavs))
        _, rewards, _, _, info = env.step(action)
        info = info.get("final_info", info)
        for key in _SUMS:
            totals[key] += float(np.sum(info[key]))
        latency_sum += float(np.sum(info["latency_s"] * info["n_executed"]))
        reward_sum += float(np.sum(rewards))
        slots += episodes
    n_active, n_exec = max(totals["n_active"], 1.0), max(totals["n_executed"], 1.0)
    extra = ({"task_records": {k: np.concatenate([r[k] for r in records]) for k in records[0]}}
             if record_tasks else {})
    return {
        "latency_s": latency_sum / n_exec,
        "energy_j_per_slot": totals["energy_j"] / slots,
        "cost_per_slot": totals["cost"] / slots,
        "reward_per_slot": reward_sum / slots,
        "episode_return": reward_sum / episodes,
        "deadline_miss_rate": totals["n_deadline"] / n_active,
        "visibility_fail_rate": totals["n_visibility"] / n_active,
        "infeasible_rate": totals["n_infeasible"] / n_active,
        "drop_rate": totals["n_dropped"] / n_active,
        "uav_share": totals["n_uav"] / n_exec,
        "satellite_share": totals["n_satellite"] / n_exec,
        "tasks": int(totals["n_active"]),
        "slots": slots,
        "episodes": episodes,
        "seed": seed,
        **extra,
    }


def _task_records(state: SlotState, outcome: Outcome, slot: int, m: int) -> dict[str, NDArray[
        Any]]:
    """The active tasks of one slot (episode = environment index) as flat arrays."""
    active = state.tasks.active
    episode, iotd = np.nonzero(active)
    return {"episode": episode, "slot": np.full(episode.size, slot), "iotd": iotd,
            "server": outcome.server[active], "status": outcome.status[active],
            "uav": outcome.server[active] < m, "deadline_s": state.tasks.deadline_s[active],
            "latency_s": np.where(outcome.executed, outcome.latency_s, np.nan)[active]}
