"""The off-policy training loop: any :class:`~satedge.agents.common.protocol.Agent` over the
native vector environment, with replay, unavailable-action and (optional) counterfactual samples,
evaluation on held-out seeds,
progress, and exact resumption from checkpoints.

Checkpoints are written at episode boundaries (every sub-environment ends on the same step) and
hold the agent (networks, optimisers, temperatures, dual variables, its RNG), the replay buffer,
the environment's state and generators, the buffer's sampling RNG and the loop's counters, so a
run killed at any point and started again with the same command continues exactly as if it had
never stopped (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.protocol import Agent, AgentAction, to_env_action
from satedge.agents.common.rundir import RunDir
from satedge.agents.common.seedbatch import stack_state
from satedge.agents.heuristics import (
    MOVE_CANDIDATES,
    GreedyPolicy,
    best_candidate,
    price_uav_moves,
    search_iotd_powers,
    search_servers,
    uniform_feasible_servers,
)
from satedge.agents.optimizer import OptimizerPolicy, optimise_powers
from satedge.envs.encoding import observation_size, power_units, reward_per_task
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv, spawn_seeds
from satedge.sim.state import SlotState

__all__ = [
    "OffPolicyConfig",
    "PendingMoves",
    "SeedBatchedAgent",
    "centroid_move_table",
    "collect",
    "counterfactual_samples",
    "explore_moves",
    "move_target_table",
    "next_slot_move_table",
    "power_target_table",
    "sample_seeds",
    "server_reward_table",
    "train_off_policy",
    "train_off_policy_seeds",
    "unavailable_action_samples",
    "uniform_actions",
]


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
    counterfactual_samples: int = 0
    # probability that an environment step's UAV moves are drawn uniformly from the box instead
    # of taken from the agent (after the warm-up; the transition stores the moves flown)
    move_exploration: float = 0.0
    eval_every_episodes: int = 20
    eval_episodes: int = 8

    def __post_init__(self) -> None:
        for name in ("n_envs", "batch_size", "buffer_size", "eval_every_episodes",
                     "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.counterfactual_samples < 0:
            raise ValueError(f"counterfactual_samples={self.counterfactual_samples} must be >= 0")
        if not 0 <= self.move_exploration <= 1:
            raise ValueError(f"move_exploration={self.move_exploration} must be in [0, 1]")
        if self.learning_starts < 0 or not self.updates_per_transition >= 0:
            raise ValueError(f"learning_starts={self.learning_starts} and updates_per_transition="
                             f"{self.updates_per_transition} must be >= 0")
        if self.episodes < self.n_envs or self.episodes % self.n_envs:
            raise ValueError(
                f"episodes={self.episodes} must be a positive multiple of n_envs={self.n_envs}"
            )


GeneratorOrPerSeed = np.random.Generator | Sequence[np.random.Generator]
CounterfactualBatch = tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.float64],
                            NDArray[np.float64]]
"""(which envs got a sample [B], their discrete actions [B, K], rewards [B], shares [B, K])."""


def unavailable_action_samples(
    env: MllmOffloadVectorEnv,
    state: SlotState,
    action: AgentAction,
    rng: GeneratorOrPerSeed,
) -> CounterfactualBatch:
    """Counterfactual transitions with one masked server choice (Algorithm 1, line 6).

    For every environment with an active task that has both feasible and masked servers, one such
    IoTD is picked at random and sent to a random masked server; the reward of that joint action
    comes from the simulator's pure cost function. Server choices do not change the next state,
    so the original next observation is exact for the copy. ``rng`` may be one generator per
    block of environments (the seeds of a seed-batched run, each drawing for its own rows).
    Returns (which envs got a sample [B], their discrete actions [B, K], rewards [B], each
    task's share of the reward [B, K]).
    """
    mask = state.mask
    active = state.tasks.active & mask.any(-1) & ~mask.all(-1)
    has = np.asarray(active.any(-1))
    a_d = action.discrete.copy()
    rows = np.flatnonzero(has)
    rngs = [rng] if isinstance(rng, np.random.Generator) else list(rng)
    per = len(has) // len(rngs)
    for b in rows:
        g = rngs[b // per]
        k = g.choice(np.flatnonzero(active[b]))
        a_d[b, k] = g.choice(np.flatnonzero(~mask[b, k]))
    return (has, a_d, *_rewards_of(env, state, a_d, action.continuous))


def counterfactual_samples(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                           rng: GeneratorOrPerSeed) -> CounterfactualBatch:
    """Counterfactual transitions with other feasible server choices (our extension of the
    unavailable-action samples, ``counterfactual_samples`` copies per step; off by default).

    For every environment with an active task, a number r of its active IoTDs, uniform in
    1..(active IoTDs), is chosen at random and each is sent to a server drawn uniformly from its
    feasible ones; the rest of the action is kept and the reward comes from the pure cost
    function. As for the unavailable-action samples the next observation is exact, since server
    choices do not change the next state. The copies show the critic joint assignments the
    policy does not yet make, with their exact rewards (docs/agents.md, "Where AD-SAC loses").
    Returns as :func:`unavailable_action_samples`.
    """
    mask = state.mask
    active = state.tasks.active & mask.any(-1)
    has = np.asarray(active.any(-1))
    a_d = action.discrete.copy()
    rngs = [rng] if isinstance(rng, np.random.Generator) else list(rng)
    per = len(has) // len(rngs)
    for b in np.flatnonzero(has):
        g = rngs[b // per]
        cand = np.flatnonzero(active[b])
        for k in g.choice(cand, size=int(g.integers(1, len(cand) + 1)), replace=False):
            a_d[b, k] = g.choice(np.flatnonzero(mask[b, k]))
    return (has, a_d, *_rewards_of(env, state, a_d, action.continuous))


def server_reward_table(env: MllmOffloadVectorEnv, state: SlotState, a_d: NDArray[np.int64],
                        continuous: NDArray[np.float32]) -> NDArray[np.float32]:
    """[B, K, S] the reward of the joint action ``(a_d, continuous)`` at ``state`` had IoTD k
    alone chosen server j (every other IoTD and the continuous part as given), from the
    simulator's pure cost function; entry ``[b, k, a_d[b, k]]`` is the action's own reward.

    Server choices do not change the next state, so ``table[b, k, j] - table[b, k, a_d[b, k]]``
    is exactly ``Q(s, a with k -> j) - Q(s, a)``: what AD-SAC's discrete agent is trained on with
    ``server_values="exact"``. Masked servers are priced too (with their penalties).
    """
    sc = env.scenario
    b, k, s = a_d.shape[0], sc.n_iotds, sc.n_servers
    server, power, _ = env.decode(to_env_action(AgentAction(a_d, continuous), k, sc.n_uavs))
    rows = np.repeat(np.arange(b), k * s)
    trial = server[rows]
    trial[np.arange(b * k * s), np.tile(np.repeat(np.arange(k), s), b)] = np.tile(
        np.arange(s), b * k)
    outcome = env.network.cost(state.take(rows), trial, power[rows])
    return np.asarray(env_reward(sc, outcome), np.float32).reshape(b, k, s)


def move_target_table(env: MllmOffloadVectorEnv, state: SlotState,
                      action: AgentAction, centroid: bool = False,
                      values: bool = False) -> NDArray[np.float32]:
    """[B, M, 3] per UAV the best move of :func:`~satedge.agents.heuristics.search_uav_moves`
    for ``action`` at ``state`` (x, y in [-1, 1]; the action's own move on ties) and the spread
    of the candidates' rewards (0 where the UAV's position does not matter to the action): what
    AD-SAC's continuous agent trains its UAV moves on with ``move_values="simulated"``. With
    ``centroid``, each UAV's greedy move for the action's servers (toward the centroid of the
    IoTDs it serves) is a candidate too. With ``values``, [B, M, 3 + C]: then the rewards of the
    C fixed candidates (``heuristics.MOVE_CANDIDATES``, in order) less their mean, what AD-SAC's
    ``move_value_net`` regresses on."""
    sc = env.scenario
    moves = action.continuous[:, sc.n_iotds:].reshape(-1, sc.n_uavs, 2)
    return _searched_moves(env, state, action, moves, centroid, values)


def centroid_move_table(env: MllmOffloadVectorEnv, state: SlotState,
                        action: AgentAction) -> NDArray[np.float32]:
    """[B, M, 3] per UAV greedy's move for ``action``'s servers at ``state``
    (:meth:`~satedge.agents.heuristics.GreedyPolicy.uav_moves`: toward the centroid of the IoTDs
    it serves, or if none of those nearest to it; x, y in [-1, 1]) and 1.0 (every UAV has a
    target): what AD-SAC's continuous agent trains its UAV moves on with
    ``move_values="centroid"``."""
    sc = env.scenario
    server, _, _ = env.decode(to_env_action(action, sc.n_iotds, sc.n_uavs))
    moves = GreedyPolicy.uav_moves(env.network, state, server)
    return np.concatenate([moves, np.ones((*moves.shape[:2], 1))], -1).astype(np.float32)


def next_slot_move_table(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                         start_xy_m: NDArray[np.float64], moves: NDArray[np.floating],
                         centroid: bool = False, values: bool = False) -> NDArray[np.float32]:
    """[B, M, 3] as :func:`move_target_table`, for the previous slot's ``moves`` [B, M, 2]
    (made from the UAV positions ``start_xy_m`` [B, M, 2]) priced on the slot they reach:
    ``state`` is that slot (its tasks, IoTD and satellite positions, fading) and ``action`` the
    one taken in it, whose servers and powers price every candidate. Each candidate move is
    made from ``start_xy_m``; the previous move itself puts the UAVs where ``state`` has them.
    What AD-SAC trains its moves on with ``move_target_slot="next"``."""
    start = env.network.with_uav_positions(state, np.asarray(start_xy_m, np.float64))
    return _searched_moves(env, start, action, np.asarray(moves, np.float64), centroid, values)


def _searched_moves(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                    moves: NDArray[np.floating], centroid: bool,
                    values: bool = False) -> NDArray[np.float32]:
    """(best move, spread) per UAV of the move search from ``state``'s UAV positions, ``moves``
    the given candidate, priced with ``action``'s servers and powers; with ``values``, then the
    rewards of the fixed candidates less their mean."""
    sc = env.scenario
    server, power, _ = env.decode(to_env_action(action, sc.n_iotds, sc.n_uavs))
    extra = GreedyPolicy.uav_moves(env.network, state, server) if centroid else None
    cands, value = price_uav_moves(env.network, state, server, power, moves, extra=extra)
    best, _, spread = best_candidate(cands, value)
    parts = [best, spread[..., None]]
    if values:
        fixed = value[..., 1:1 + len(MOVE_CANDIDATES)]
        parts.append(fixed - fixed.mean(-1, keepdims=True))
    return np.concatenate(parts, -1).astype(np.float32)


class PendingMoves:
    """The transitions of one step whose move targets wait for the next slot
    (``move_target_slot="next"``): they are stored with spread 0 (no move loss) and
    :func:`collect` writes their targets at the next step, once the slot their moves reach and
    the action taken in it are known. An episode's last moves reach no slot of the episode and
    keep spread 0. Empty after a step that ends every episode, so nothing of it needs to go
    into a checkpoint (the loop saves only there)."""

    def __init__(self) -> None:
        self.start_xy_m: NDArray[np.float64] | None = None  # [B, M, 2] before the moves
        self.moves: NDArray[np.float64] | None = None  # [B, M, 2] the moves, in [-1, 1]
        self.rows: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []  # per buffer

    def __bool__(self) -> bool:
        return bool(self.rows)

    def resolve(self, env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                buffers: Sequence[ReplayBuffer], centroid: bool) -> None:
        """Write the waiting targets (``state``, ``action``: the slot now acted on) and clear."""
        if self:
            assert self.start_xy_m is not None and self.moves is not None
            table = next_slot_move_table(env, state, action, self.start_xy_m, self.moves,
                                         centroid, buffers[0].move_value_columns > 0)
            for buffer, (idx, env_rows) in zip(buffers, self.rows, strict=True):
                buffer.set_move_targets(idx, table[env_rows])
        self.start_xy_m, self.moves, self.rows = None, None, []

    def wait(self, state: SlotState, action: AgentAction, live: NDArray[np.bool_],
             stored: Sequence[list[tuple[NDArray[np.int64], NDArray[np.int64]]]]) -> None:
        """Hold this step's stored rows (per buffer, (buffer rows, environment of each)) of the
        environments whose episode goes on (``live`` [B])."""
        k, m = len(action.discrete[0]), state.uav_xy_m.shape[1]
        self.start_xy_m = np.array(state.uav_xy_m, np.float64)
        self.moves = np.asarray(action.continuous[:, k:], np.float64).reshape(-1, m, 2)
        self.rows = []
        for parts in stored:  # at least the transitions themselves, then any copies
            idx = np.concatenate([i for i, _ in parts])
            env_rows = np.concatenate([e for _, e in parts])
            keep = live[env_rows]
            self.rows.append((idx[keep], env_rows[keep]))
        if not any(len(i) for i, _ in self.rows):
            self.rows = []


def power_target_table(env: MllmOffloadVectorEnv, state: SlotState,
                       action: AgentAction) -> NDArray[np.float32]:
    """[B, K, 2] per IoTD the best transmit power of
    :func:`~satedge.agents.heuristics.search_iotd_powers` for ``action`` at ``state`` (in
    [-1, 1]; the action's own power on ties) and the spread of the candidates' rewards (0 where
    the IoTD's power does not matter to the action): what AD-SAC's continuous agent trains its
    powers on with ``power_values="simulated"``."""
    sc = env.scenario
    k = sc.n_iotds
    server, _, _ = env.decode(to_env_action(action, k, sc.n_uavs))
    best, _, spread = search_iotd_powers(env.network, state, server, action.continuous[:, :k])
    return np.stack([best, spread], -1).astype(np.float32)


def server_target_table(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                        rounds: int, start: NDArray[np.int64] | None = None,
                        ) -> NDArray[np.float32]:
    """[B, K, 2] per IoTD its server after :func:`~satedge.agents.heuristics.search_servers`
    improves ``action``'s assignment at ``state`` (at most ``rounds`` one-task reassignments
    priced by the pure cost function, the action's powers kept) and whether it has a task (1.0)
    or not (0.0): what AD-SAC's discrete agent fits with ``server_search > 0``. With ``start``
    [B, K] (e.g. the actor's mode), the search also runs from it, with the same powers, and each
    row keeps the better of the two results (the action's on ties)."""
    sc = env.scenario
    server, power, _ = env.decode(to_env_action(action, sc.n_iotds, sc.n_uavs))
    best, _ = search_servers(env.network, state, server, power, rounds)
    if start is not None:
        other, _ = search_servers(env.network, state, np.asarray(start, np.int64), power, rounds)
        ours, theirs = (env_reward(sc, env.network.cost(state, x, power)) for x in (best, other))
        best = np.where((theirs > ours + 1e-9 * np.abs(ours))[:, None], other, best)
    has_task = state.tasks.active & state.mask.any(-1)
    return np.stack([best, has_task], -1).astype(np.float32)


def optimizer_target_tables(env: MllmOffloadVectorEnv, state: SlotState, action: AgentAction,
                            rngs: Sequence[np.random.Generator],
                            ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The per-slot optimiser's targets, for AD-SAC's ``target_search="optimizer"``: (servers
    [B, K, 2] per IoTD the optimiser's server for ``state`` and whether it has a task, as
    :func:`server_target_table`; powers [B, K, 2] per IoTD the optimiser's power search for
    ``action``'s own servers, started from its powers, in [-1, 1], and whether the IoTD's task
    is executed under that action (1.0) or not (0.0), as :func:`power_target_table`). The
    optimiser's random restart of seed s draws from ``rngs[s]`` on that seed's block of
    environments, so seeds batched together get what they would alone."""
    sc = env.scenario
    server, power_w, _ = env.decode(to_env_action(action, sc.n_iotds, sc.n_uavs))
    per = env.num_envs // len(rngs)
    best = np.zeros_like(server)
    for s, rng in enumerate(rngs):
        rows = np.arange(s * per, (s + 1) * per)
        best[rows] = OptimizerPolicy().solve(env.network, state.take(rows), rng).server
    has_task = state.tasks.active & state.mask.any(-1)
    servers = np.stack([best, has_task], -1).astype(np.float32)
    p_w, _ = optimise_powers(env.network, state, server, power_w)
    executed = env.network.cost(state, server, p_w).executed
    return servers, np.stack([power_units(sc, p_w), executed], -1).astype(np.float32)


def _rewards_of(env: MllmOffloadVectorEnv, state: SlotState, a_d: NDArray[np.int64],
                continuous: NDArray[np.float32]) -> tuple[NDArray[np.float64],
                                                          NDArray[np.float64]]:
    """(reward [B], each task's share [B, K]) of the joint action (a_d, continuous) at
    ``state``, from the simulator's pure cost function (nothing is stepped)."""
    sc = env.scenario
    server, power, _ = env.decode(to_env_action(AgentAction(a_d, continuous), sc.n_iotds,
                                                sc.n_uavs))
    outcome = env.network.cost(state, server, power)
    return env_reward(sc, outcome), reward_per_task(sc, outcome)


def _episode_stats(infos: dict[str, Any], acc: dict[str, float],
                   rows: slice = slice(None)) -> None:
    for key in ("cost", "energy_j", "n_executed", "n_active"):
        acc[key] = acc.get(key, 0.0) + float(np.sum(infos[key][rows]))
    acc["latency_sum"] = acc.get("latency_sum", 0.0) + float(
        np.sum(infos["latency_s"][rows] * infos["n_executed"][rows])
    )


class SeedBatchedAgent(Agent, Protocol):
    """An agent holding several seeds as stacked networks (``AdSac.seed_batched``)."""

    n_seeds: int

    def seed_state_dict(self, seed: int) -> dict[str, Any]: ...

    def seed_agent(self, seed: int) -> Agent: ...


class _StateOf:
    """Checkpoint view of one seed of a batched agent (what ``RunDir.save`` reads)."""

    def __init__(self, agent: Agent, seed: int, n_seeds: int) -> None:
        self.agent, self.seed, self.n_seeds = agent, seed, n_seeds
        self.loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        if self.n_seeds == 1:
            return self.agent.state_dict()
        return cast(SeedBatchedAgent, self.agent).seed_state_dict(self.seed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state


class _EnvRows:
    """Checkpoint view of one seed's block of environments (its state rows and generators)."""

    def __init__(self, env: MllmOffloadVectorEnv, rows: slice) -> None:
        assert env.state is not None
        self.state: SlotState | None = env.state.take(rows)
        self.rngs = env.rngs[rows]

    def observe(self) -> None:
        return None


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
    return train_off_policy_seeds(agent, env, cfg, [run], evaluate, progress)[0]


def train_off_policy_seeds(
    agent: Agent,
    env: MllmOffloadVectorEnv,
    cfg: OffPolicyConfig,
    runs: Sequence[RunDir],
    evaluate: Callable[[Agent], dict[str, float]] | Sequence[Callable[[Agent], dict[str, float]]],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train S = ``len(runs)`` seeds of one configuration together (one seed: the ordinary loop).

    With S > 1, ``agent`` is seed-batched (``n_seeds == S``, e.g. ``AdSac.seed_batched``) and
    ``env`` has ``S * cfg.n_envs`` environments, seed s owning the block ``s * n_envs ...``.
    Every seed keeps what its separate run has: its environments' seeds and generators, its replay
    buffer and buffer RNG (warm-up actions, unavailable-action samples, minibatches), its run
    directory with its metrics and checkpoints (ordinary single-seed checkpoints, so each seed can
    be evaluated or resumed on its own). Gradient updates start when every seed's buffer is
    ready. Resuming needs every seed's checkpoint at the same point (``train_seeds`` groups them).
    ``evaluate`` is one function, or one per seed, applied to a single-seed agent. Returns each
    seed's final evaluation.
    """
    from tqdm import tqdm

    n_seeds, n = len(runs), cfg.n_envs
    if env.num_envs != n_seeds * n:
        raise ValueError(f"env has {env.num_envs} environments; {n_seeds} seeds x n_envs={n} "
                         f"need {n_seeds * n}")
    if n_seeds > 1 and getattr(agent, "n_seeds", 1) != n_seeds:
        raise ValueError(f"{n_seeds} runs need a seed-batched agent with n_seeds={n_seeds}")
    evals = list(evaluate) if isinstance(evaluate, Sequence) else [evaluate] * n_seeds
    blocks = [slice(s * n, (s + 1) * n) for s in range(n_seeds)]
    sc = env.scenario
    obs_dim = observation_size(sc)
    cont = sc.n_iotds + 2 * sc.n_uavs
    tables = bool(getattr(agent, "needs_server_rewards", False))
    targets = bool(getattr(agent, "needs_move_targets", False))
    powers = bool(getattr(agent, "needs_power_targets", False))
    search = int(getattr(agent, "server_search_rounds", 0))
    from_mode = bool(getattr(agent, "server_search_from_mode", False))
    centroid = bool(getattr(agent, "move_centroid_candidate", False))
    move_rule = str(getattr(agent, "move_target_rule", "search"))
    expert = str(getattr(agent, "target_search", "local")) == "optimizer"
    pending = PendingMoves() if getattr(agent, "move_target_next_slot", False) else None
    values = len(MOVE_CANDIDATES) if getattr(agent, "move_value_net", False) else 0
    buffers = [ReplayBuffer(cfg.buffer_size, obs_dim, sc.n_iotds, sc.n_servers, cont, tables,
                            targets, powers, search > 0 or expert, values)
               for _ in runs]
    rngs = [run.seeds.buffer for run in runs]
    counters = {"episodes": 0, "env_steps": 0, "updates": 0}
    obs, info = env.reset(seed=[s for run in runs for s in spawn_seeds(run.seeds.env, n)])
    if any(run.has_checkpoint() for run in runs):
        obs, info = _restore(agent, env, runs, buffers, rngs, blocks, counters)
    loggers = [run.logger(truncate_after=counters["env_steps"]) for run in runs]
    name = runs[0].path.name + (f" +{n_seeds - 1} seeds" if n_seeds > 1 else "")
    bar = tqdm(total=cfg.episodes, initial=counters["episodes"], unit="ep",
               disable=not progress, desc=name)
    stats: list[dict[str, float]] = [{} for _ in runs]
    ep_return = np.zeros(env.num_envs)
    t0, steps0 = time.perf_counter(), counters["env_steps"]
    metrics: dict[str, Any] = {}
    while counters["episodes"] < cfg.episodes:
        mask = info["action_mask"]
        start = cast(Any, agent).mode_servers(obs, mask) if from_mode else None
        if counters["env_steps"] * n < cfg.learning_starts:
            action = uniform_actions(mask, cont, rngs, blocks)
        else:
            action = agent.act(obs, mask)
            if cfg.move_exploration > 0:
                action = explore_moves(action, sc.n_iotds, cfg.move_exploration, rngs, blocks)
        next_obs, reward, trunc, infos = collect(env, obs, mask, action, buffers, rngs,
                                                 cfg.unavailable_samples,
                                                 cfg.counterfactual_samples, search,
                                                 centroid, start, pending, move_rule, expert)
        done_info = infos.get("final_info", infos)
        for acc, rows in zip(stats, blocks, strict=True):
            _episode_stats(done_info, acc, rows)
        ep_return += reward
        counters["env_steps"] += 1
        if all(len(b) >= max(cfg.batch_size, cfg.learning_starts) for b in buffers):
            for _ in range(round(cfg.updates_per_transition * n)):
                metrics = agent.update(sample_seeds(buffers, cfg.batch_size, rngs))
                counters["updates"] += 1
        else:
            metrics = {}
        obs, info = next_obs, infos
        if np.all(trunc):
            counters["episodes"] += n
            slots = sc.episode_slots * n
            speed = (counters["env_steps"] - steps0) * n * n_seeds / (time.perf_counter() - t0)
            evaluate_now = (counters["episodes"] % cfg.eval_every_episodes == 0
                            or counters["episodes"] >= cfg.episodes)
            for s, (run, rows) in enumerate(zip(runs, blocks, strict=True)):
                acc = stats[s]
                row = {
                    **{k: v[s] if isinstance(v, list) else v for k, v in metrics.items()},
                    "train/episode_return": float(ep_return[rows].mean()),
                    "train/cost_per_slot": acc["cost"] / slots,
                    "train/energy_j_per_slot": acc["energy_j"] / slots,
                    "train/latency_s": acc["latency_sum"] / max(acc["n_executed"], 1.0),
                    "perf/steps_per_s": speed,
                }
                if evaluate_now:
                    row.update({f"eval/{k}": v
                                for k, v in evals[s](_single(agent, s, n_seeds)).items()})
                loggers[s].log(counters["env_steps"], row)
                run.save(_StateOf(agent, s, n_seeds), buffers[s], _env_rows(env, rows, n_seeds),
                         rngs[s], counters)
            stats, ep_return = [{} for _ in runs], np.zeros(env.num_envs)
            bar.update(n)
            bar.set_postfix(cost=f"{row['train/cost_per_slot']:.2f}")
    bar.close()
    finals = []
    for s, run in enumerate(runs):
        final = evals[s](_single(agent, s, n_seeds))
        run.finish({**final, "episodes": counters["episodes"],
                    "env_steps": counters["env_steps"], "updates": counters["updates"]})
        finals.append(final)
    return finals


def _single(agent: Agent, seed: int, n_seeds: int) -> Agent:
    return agent if n_seeds == 1 else cast(SeedBatchedAgent, agent).seed_agent(seed)


def _env_rows(env: MllmOffloadVectorEnv, rows: slice, n_seeds: int) -> Any:
    return env if n_seeds == 1 else _EnvRows(env, rows)


def collect(
    env: MllmOffloadVectorEnv,
    obs: NDArray[np.float32],
    mask: NDArray[np.bool_],
    action: AgentAction,
    buffers: Sequence[ReplayBuffer],
    rngs: Sequence[np.random.Generator],
    unavailable_samples: bool,
    counterfactual: int = 0,
    server_search: int = 0,
    move_centroid: bool = False,
    search_start: NDArray[np.int64] | None = None,
    pending: PendingMoves | None = None,
    move_rule: str = "search",
    optimizer_targets: bool = False,
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.bool_], dict[str, Any]]:
    """One environment step of the loop: step ``env`` with ``action`` (taken at ``obs``,
    ``mask``), store each seed's transitions (and unavailable-action samples and
    ``counterfactual`` counterfactual samples, drawn with its RNG) in its buffer (seed s owns
    the s-th block of ``len(buffers)`` equal blocks of environments), with each transition's
    :func:`server_reward_table` when the buffers store it. Returns (next observation, reward,
    truncated, infos) of ``env.step``. Copies share the transition's :func:`move_target_table`
    and :func:`power_target_table` (when stored), searched with the transition's own servers
    (their continuous part is the same), and its :func:`server_target_table` (``server_search``
    rounds from the transition's servers, and from ``search_start`` if given; when stored): an
    improved assignment for the same state.

    With ``pending`` (``move_target_slot="next"``), the move targets are priced on the slot the
    moves reach instead: this step's transitions are stored with spread 0 and held in
    ``pending``, and the previous step's held ones get their targets from this slot and
    ``action`` (:class:`PendingMoves`). With ``move_rule="centroid"`` the stored move targets
    are :func:`centroid_move_table` instead of the search's. With ``optimizer_targets`` the
    stored server and power targets are the per-slot optimiser's
    (:func:`optimizer_target_tables`) instead of the local searches'."""
    state = env.state
    assert state is not None
    sc = env.scenario
    per = env.num_envs // len(buffers)
    blocks = [slice(s * per, (s + 1) * per) for s in range(len(buffers))]
    with_tables = buffers[0].stores_server_rewards

    def table(a_d: NDArray[np.int64]) -> NDArray[np.float32] | None:
        return server_reward_table(env, state, a_d, action.continuous) if with_tables else None

    own = table(action.discrete)  # before the step: the state is the one acted on
    if pending is not None:
        if not buffers[0].stores_move_targets:
            raise ValueError("pending move targets need buffers built with move_targets=True")
        pending.resolve(env, state, action, buffers, move_centroid)
        moves: NDArray[np.float32] | None = np.zeros(
            (env.num_envs, sc.n_uavs, 3 + buffers[0].move_value_columns), np.float32)
    elif buffers[0].stores_move_targets and move_rule == "centroid":
        moves = centroid_move_table(env, state, action)
    else:
        moves = (move_target_table(env, state, action, move_centroid,
                                   buffers[0].move_value_columns > 0)
                 if buffers[0].stores_move_targets else None)
    if optimizer_targets:
        srv_t, pow_t = optimizer_target_tables(env, state, action, rngs)
        powers = pow_t if buffers[0].stores_power_targets else None
        servers = srv_t if buffers[0].stores_server_targets else None
    else:
        powers = (power_target_table(env, state, action) if buffers[0].stores_power_targets
                  else None)
        if buffers[0].stores_server_targets and server_search < 1:
            raise ValueError(f"server_search={server_search}: buffers that store server "
                             "targets need at least one round of the search")
        servers = (server_target_table(env, state, action, server_search, search_start)
                   if buffers[0].stores_server_targets else None)
    next_obs, reward, term, trunc, infos = env.step(to_env_action(action, sc.n_iotds, sc.n_uavs))
    done_info = infos.get("final_info", infos)
    real_next = infos["final_obs"] if "final_obs" in infos else next_obs
    next_mask = done_info["action_mask"]
    stored: list[list[tuple[NDArray[np.int64], NDArray[np.int64]]]] = [[] for _ in buffers]
    for buffer, rows, kept in zip(buffers, blocks, stored, strict=True):
        idx = buffer.add(obs[rows], action.discrete[rows], action.continuous[rows],
                         reward[rows], real_next[rows], term[rows], mask[rows], next_mask[rows],
                         done_info["reward_per_task"][rows], None if own is None else own[rows],
                         None if moves is None else moves[rows],
                         None if powers is None else powers[rows],
                         None if servers is None else servers[rows])
        env_rows = np.arange(rows.start, rows.stop)
        kept.append((idx, env_rows[len(env_rows) - len(idx):]))
    samplers = [unavailable_action_samples] if unavailable_samples else []
    for sampler in samplers + [counterfactual_samples] * counterfactual:
        has, a_d, r_u, r_uk = sampler(env, state, action, rngs)
        copies = table(a_d)
        for buffer, rows, kept in zip(buffers, blocks, stored, strict=True):
            h = np.flatnonzero(has[rows]) + rows.start
            if len(h):
                idx = buffer.add(obs[h], a_d[h], action.continuous[h], r_u[h], real_next[h],
                                 term[h], mask[h], next_mask[h], r_uk[h],
                                 None if copies is None else copies[h],
                                 None if moves is None else moves[h],
                                 None if powers is None else powers[h],
                                 None if servers is None else servers[h])
                kept.append((idx, h[len(h) - len(idx):]))
    if pending is not None:
        pending.wait(state, action, ~(np.asarray(term, bool) | np.asarray(trunc, bool)), stored)
    return next_obs, reward, trunc, infos


def sample_seeds(buffers: Sequence[ReplayBuffer], batch_size: int,
                 rngs: Sequence[np.random.Generator]) -> ReplayBatch:
    """One minibatch per seed, each from its own buffer and RNG, stacked seed after seed."""
    if len(buffers) == 1:
        return buffers[0].sample(batch_size, rngs[0], "cpu")
    parts = [b.sample(batch_size, g, "cpu") for b, g in zip(buffers, rngs, strict=True)]
    return ReplayBatch(**{name: torch.cat([cast(Tensor, getattr(p, name)) for p in parts])
                          for name in ReplayBatch._fields if getattr(parts[0], name) is not None})


def _restore(agent: Agent, env: MllmOffloadVectorEnv, runs: Sequence[RunDir],
             buffers: Sequence[ReplayBuffer], rngs: Sequence[np.random.Generator],
             blocks: Sequence[slice], counters: dict[str, int]) -> tuple[Any, dict[str, Any]]:
    """Load every seed's checkpoint; they must all be at the same point."""
    if len(runs) == 1:
        return runs[0].restore(agent, buffers[0], env, rngs[0], counters)
    missing = [run.path.name for run in runs if not run.has_checkpoint()]
    if missing:
        raise ValueError(f"cannot resume seeds together: {', '.join(missing)} have no "
                         "checkpoint (train_seeds groups seeds by progress)")
    states, env_states, points = [], [], []
    for run, buffer, rng, rows in zip(runs, buffers, rngs, blocks, strict=True):
        view, env_view, seen = _StateOf(agent, 0, 1), _EnvRows(env, rows), dict(counters)
        run.restore(view, buffer, env_view, rng, seen)  # type: ignore[arg-type]
        states.append(view.loaded)
        env_states.append(env_view.state)
        points.append(seen)
    if any(p != points[0] for p in points):
        raise ValueError("cannot resume seeds together: their checkpoints are at different "
                         f"points {points} (train_seeds groups seeds by progress)")
    counters.update(points[0])
    agent.load_state_dict(stack_state(states))
    env.state = SlotState.concat([st for st in env_states if st is not None])
    return env.observe(), {"action_mask": env.state.mask}


def uniform_actions(mask: NDArray[np.bool_], cont: int, rngs: Sequence[np.random.Generator],
                     blocks: Sequence[slice]) -> AgentAction:
    """Warm-up actions, each seed's block from its own RNG."""
    if len(rngs) == 1:
        return _uniform_action(mask, cont, rngs[0])
    parts = [_uniform_action(mask[rows], cont, g) for g, rows in zip(rngs, blocks, strict=True)]
    return AgentAction(np.concatenate([p.discrete for p in parts]),
                       np.concatenate([p.continuous for p in parts]))


def explore_moves(action: AgentAction, n_iotds: int, p: float,
                  rngs: Sequence[np.random.Generator], blocks: Sequence[slice]) -> AgentAction:
    """``action`` with each environment's UAV moves (the continuous entries after the
    ``n_iotds`` powers) replaced, with probability ``p``, by a uniform draw from [-1, 1]^2 per
    UAV; each seed's block draws from its own RNG, the same amount whatever it draws. Shows the
    critic long moves the policy rarely makes (``move_exploration``; docs/agents.md)."""
    cont = action.continuous.copy()
    for g, rows in zip(rngs, blocks, strict=True):
        part = cont[rows]
        hit = g.random(len(part)) < p
        moves = g.uniform(-1.0, 1.0, part[:, n_iotds:].shape).astype(cont.dtype)
        part[hit, n_iotds:] = moves[hit]
        cont[rows] = part
    return AgentAction(action.discrete, cont)


def _uniform_action(mask: NDArray[np.bool_], cont: int, rng: np.random.Generator) -> AgentAction:
    """Warm-up action: uniform over feasible servers and the continuous box."""
    return AgentAction(
        uniform_feasible_servers(mask, rng),
        rng.uniform(-1, 1, (mask.shape[0], cont)).astype(np.float32),
    )


def set_torch_threads(n: int = 1) -> None:
    """One thread per training process; parallelism comes from processes (measured later)."""
    torch.set_num_threads(n)
