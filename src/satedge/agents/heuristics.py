"""Non-learning policies: uniform random and a greedy heuristic (numpy only, no torch), and
one-slot lookaheads over UAV moves (:func:`search_uav_moves`, which AD-SAC's
``move_values="simulated"`` trains on; :class:`MoveSearch` plays it on top of another policy) and
over transmit powers (:func:`search_iotd_powers`, for ``power_values="simulated"``).

The policies act on a batch: ``act(network, state, rng)`` returns a Dict action for B
environments in the environment's normalised units (``offload`` server indices, ``power`` and
``uav`` in [-1, 1]). They read the simulator state directly (greedy and the search evaluate the
pure cost function), so they are references with privileged information, not observation-based
agents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from satedge.envs.encoding import ActionDecoder, power_watts
from satedge.envs.encoding import reward as env_reward
from satedge.sim.network import EdgeNetwork
from satedge.sim.state import SlotState

__all__ = ["MOVE_CANDIDATES", "POLICIES", "POWER_CANDIDATES", "GreedyPolicy", "HeuristicPolicy",
           "MoveSearch", "RandomPolicy", "best_candidate", "make_policy", "move_candidates",
           "price_uav_moves", "search_iotd_powers", "search_servers", "search_uav_moves",
           "uniform_feasible_servers"]

Action = dict[str, NDArray[np.float64] | NDArray[np.int64]]


class HeuristicPolicy(Protocol):
    """A policy that sees the simulator state."""

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        """Batched action for ``state`` (B environments)."""
        ...


def uniform_feasible_servers(mask: NDArray[np.bool_],
                             rng: np.random.Generator) -> NDArray[np.int64]:
    """[B, K] a uniformly random True column per row (any column where a row is all False)."""
    weights = np.where(mask.any(axis=-1, keepdims=True), mask, True).astype(np.float64)
    cum = np.cumsum(weights, axis=-1)
    u = rng.random(mask.shape[:-1])[..., None] * cum[..., -1:]
    return np.asarray(np.sum(cum <= u, axis=-1), dtype=np.int64)


class RandomPolicy:
    """Uniform over feasible servers (or over all servers with ``masked=False``, as the paper's
    Random baseline may have been) and uniform over the continuous ranges."""

    def __init__(self, masked: bool = True) -> None:
        self.masked = masked

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        sc, b = network.scenario, state.batch_size
        mask = state.mask if self.masked else np.ones_like(state.mask)
        return {"offload": uniform_feasible_servers(mask, rng),
                "power": rng.uniform(-1.0, 1.0, (b, sc.n_iotds)),
                "uav": rng.uniform(-1.0, 1.0, (b, sc.n_uavs, 2))}


class GreedyPolicy:
    """Assign tasks one at a time, largest output first, each to the feasible (server, power)
    pair that adds the least cost plus penalty given the tasks already placed (the pure cost
    function with processor and bandwidth sharing); then move every UAV toward the centroid of
    the IoTDs it serves (or, if none, of those nearest to it).

    Args:
        power_levels: candidate powers in the action's [-1, 1] units.
    """

    def __init__(self, power_levels: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)) -> None:
        self.power_levels = np.asarray(power_levels, dtype=np.float64)

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        sc = network.scenario
        b, k, s = state.batch_size, sc.n_iotds, sc.n_servers
        levels = self.power_levels
        a = s * levels.size
        server = np.zeros((b, k), dtype=np.int64)
        power = np.ones((b, k))
        placed = np.zeros((b, k), dtype=bool)
        tiled = state.take(np.repeat(np.arange(b), a))
        alt_server = np.tile(np.repeat(np.arange(s), levels.size), b)
        alt_power = np.tile(np.tile(levels, s), b)
        order = np.argsort(-state.tasks.output_tokens, axis=-1, kind="stable")
        rows = np.arange(b)
        for step in range(k):
            col = order[:, step]
            active = placed.copy()
            active[rows, col] = True
            trial_srv = np.repeat(server, a, axis=0)
            trial_pow = np.repeat(power, a, axis=0)
            col_t = np.repeat(col, a)
            trial_srv[np.arange(b * a), col_t] = alt_server
            trial_pow[np.arange(b * a), col_t] = alt_power
            n_req = np.where(np.repeat(active, a, axis=0), tiled.tasks.n_requests, 0)
            trial = replace(tiled, tasks=replace(tiled.tasks, n_requests=n_req))
            out = network.cost(trial, trial_srv, power_watts(sc, trial_pow))
            score = (out.cost + out.penalty).reshape(b, a)
            ok = state.mask[rows, col][:, alt_server[:a]]
            score = np.where(ok | ~ok.any(axis=-1, keepdims=True), score, np.inf)
            best = np.argmin(score, axis=-1)
            server[rows, col] = alt_server[best]
            power[rows, col] = alt_power[best]
            placed[rows, col] = True
        return {"offload": server, "power": power, "uav": self.uav_moves(network, state, server)}

    @staticmethod
    def uav_moves(network: EdgeNetwork, state: SlotState,
                  server: NDArray[np.int64]) -> NDArray[np.float64]:
        sc = network.scenario
        m = sc.n_uavs
        served = (server[..., None] == np.arange(m)) & state.tasks.active[..., None]  # [B,K,M]
        nearest = np.argmin(state.uav_horizontal_m, axis=-1)[..., None] == np.arange(m)
        weight = np.where(served.any(axis=1, keepdims=True), served, nearest).astype(float)
        count = weight.sum(axis=1)  # [B, M]
        centroid = np.einsum("bkm,bkd->bmd", weight, state.iotd_xy_m) / np.maximum(
            count, 1.0)[..., None]
        target = np.where(count[..., None] > 0, centroid, state.uav_xy_m)
        step = sc.uav.speed_max_m_s * sc.slot_s
        return np.asarray(np.clip((target - state.uav_xy_m) / step, -1.0, 1.0))


def move_candidates(directions: int = 8,
                    lengths: tuple[float, ...] = (0.45, 0.9)) -> NDArray[np.float64]:
    """[C, 2] UAV moves in the action's [-1, 1]^2 units: hovering, and ``directions`` evenly
    spaced headings at each of ``lengths`` (fractions of the longest move ``v_max tau``; below 1,
    so every candidate has a finite pre-tanh value for a tanh-Gaussian policy)."""
    angle = 2.0 * np.pi * np.arange(directions) / directions
    ring = np.stack([np.cos(angle), np.sin(angle)], -1)
    return np.concatenate([np.zeros((1, 2)), *(length * ring for length in lengths)])


MOVE_CANDIDATES = move_candidates()
"""The default candidate moves of :func:`search_uav_moves` (hover and 16 others)."""


def search_uav_moves(network: EdgeNetwork, state: SlotState, server: NDArray[np.int64],
                     power_w: NDArray[np.float64], moves: NDArray[np.floating],
                     candidates: NDArray[np.float64] = MOVE_CANDIDATES,
                     extra: NDArray[np.floating] | None = None,
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A one-slot lookahead over each UAV's move with the simulator's pure cost function.

    For every UAV m (one at a time, the others at their given ``moves``), the given move and
    each of the ``candidates`` is priced by the reward the slot's action (``server``,
    ``power_w``) would earn with the UAVs where the moves put them
    (:meth:`~satedge.sim.network.EdgeNetwork.with_uav_positions`: the same tasks and fading, the
    channel gains and coverage of the new positions). A move takes effect in the next slot, so
    this prices it on the present slot's tasks and server choices, a proxy for the next ones'.

    Args:
        moves: [B, M, 2] the moves in the action's [-1, 1]^2 units.
        extra: [B, M, 2] one more candidate per UAV (e.g. :meth:`GreedyPolicy.uav_moves`, the
            centroid of the IoTDs it serves), priced after the fixed ``candidates``.
    Returns:
        (best [B, M, 2] the best move per UAV, the given one on ties; gain [B, M] its reward
        above the given move's, >= 0; spread [B, M] best minus worst reward, 0 where the
        UAV's position does not matter to this action).
    """
    return best_candidate(*price_uav_moves(network, state, server, power_w, moves, candidates,
                                            extra))


def price_uav_moves(network: EdgeNetwork, state: SlotState, server: NDArray[np.int64],
                    power_w: NDArray[np.float64], moves: NDArray[np.floating],
                    candidates: NDArray[np.float64] = MOVE_CANDIDATES,
                    extra: NDArray[np.floating] | None = None,
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The prices behind :func:`search_uav_moves` (same arguments): (candidates [B, M, N, 2],
    rewards [B, M, N]), per UAV the given move first, then ``candidates`` in order, then
    ``extra`` if given."""
    sc = network.scenario
    b, m = moves.shape[:2]
    given = np.asarray(moves, dtype=np.float64)
    cands = np.concatenate([given[:, :, None], np.broadcast_to(
        candidates, (b, m, *candidates.shape))], axis=2)  # [B, M, N, 2], the given move first
    if extra is not None:
        cands = np.concatenate([cands, np.asarray(extra, np.float64)[:, :, None]], axis=2)
    n = cands.shape[2]
    step = sc.uav.speed_max_m_s * sc.slot_s
    base = network.moved_uav_xy(state.uav_xy_m, np.clip(given, -1.0, 1.0) * step)  # [B, M, 2]
    alt = network.moved_uav_xy(state.uav_xy_m[:, :, None], np.clip(cands, -1.0, 1.0) * step)
    trial = np.repeat(base[:, None, None], m, axis=1).repeat(n, axis=2)  # [B, M, N, M, 2]
    uav = np.arange(m)
    trial[:, uav, :, uav] = alt.transpose(1, 0, 2, 3)  # UAV j of block j takes candidate c
    rows = np.repeat(np.arange(b), m * n)
    moved = network.with_uav_positions(state.take(rows), trial.reshape(-1, m, 2))
    value = env_reward(sc, network.cost(moved, server[rows], power_w[rows])).reshape(b, m, n)
    return cands, np.asarray(value, np.float64)


def best_candidate(cands: NDArray[np.float64], value: NDArray[np.float64],
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(best, gain, spread) of a coordinate search: ``cands`` [B, J, N, ...] the candidates of
    each coordinate j with the given value first, ``value`` [B, J, N] their rewards. The first
    maximum wins, so the given value is kept on ties."""
    pick = np.argmax(value, axis=-1)
    index = pick.reshape(*pick.shape, 1, *(1,) * (cands.ndim - 3))
    best = np.take_along_axis(cands, index, axis=2)[:, :, 0]
    top = value.max(-1)
    return best, top - value[..., 0], top - value.min(-1)


POWER_CANDIDATES = np.linspace(-1.0, 1.0, 9)
"""The default candidate powers of :func:`search_iotd_powers`, in the action's [-1, 1] units
(-1: p_min, +1: p_max)."""


def search_iotd_powers(network: EdgeNetwork, state: SlotState, server: NDArray[np.int64],
                       powers: NDArray[np.floating],
                       candidates: NDArray[np.float64] = POWER_CANDIDATES,
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A one-slot lookahead over each IoTD's transmit power with the simulator's pure cost
    function.

    For every IoTD k (one at a time, the others at their given ``powers``), the given power and
    each of the ``candidates`` is priced by the reward of the slot's action (``server`` and the
    powers) at ``state``. A power acts within its slot only (the upload rate and energy of this
    slot's task, and the interference it causes at other UAVs' cells), so this is the exact
    one-step value of the change, not a proxy.

    Args:
        powers: [B, K] the powers in the action's [-1, 1] units.
    Returns:
        (best [B, K] the best power per IoTD, the given one on ties; gain [B, K] its reward
        above the given power's, >= 0; spread [B, K] best minus worst reward, 0 where the
        IoTD's power does not matter to this action, e.g. it has no task).
    """
    sc = network.scenario
    b, k = powers.shape
    given = np.clip(np.asarray(powers, dtype=np.float64), -1.0, 1.0)
    cands = np.concatenate([given[:, :, None], np.broadcast_to(
        candidates, (b, k, candidates.size))], axis=2)  # [B, K, N], the given power first
    n = cands.shape[2]
    trial = np.repeat(given[:, None, None], k, axis=1).repeat(n, axis=2)  # [B, K, N, K]
    iotd = np.arange(k)
    trial[:, iotd, :, iotd] = cands.transpose(1, 0, 2)  # IoTD j of block j takes candidate c
    rows = np.repeat(np.arange(b), k * n)
    outcome = network.cost(state.take(rows), server[rows], power_watts(sc, trial.reshape(-1, k)))
    return best_candidate(cands, env_reward(sc, outcome).reshape(b, k, n))


def search_servers(network: EdgeNetwork, state: SlotState, server: NDArray[np.int64],
                   power_w: NDArray[np.float64], rounds: int = 3,
                   ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """A local search over the server assignment with the simulator's pure cost function.

    Each round prices every single-task reassignment of the current assignment (task k to
    feasible server j, every other task and the powers ``power_w`` as given) and takes the best
    one where it raises the slot's reward; ``rounds`` rounds at most, so the result is a local
    optimum under one-task moves when it stops early. Server choices act within their slot only,
    so the gain is exactly the change of Q.

    Returns:
        (best [B, K] the improved servers, the given ones where nothing improves; gain [B] its
        reward above the given assignment's, >= 0).
    """
    sc = network.scenario
    b, k = server.shape
    s = sc.n_servers
    best = np.array(server, dtype=np.int64, copy=True)
    rows = np.repeat(np.arange(b), k * s)
    tiled = state.take(rows)
    ok = (state.mask & state.tasks.active[..., None]).reshape(b, k * s)
    who = np.tile(np.repeat(np.arange(k), s), b)
    to = np.tile(np.arange(s), b * k)
    here = env_reward(sc, network.cost(state, best, power_w))
    start = here.copy()
    for _ in range(rounds):
        trial = best[rows]
        trial[np.arange(b * k * s), who] = to
        value = env_reward(sc, network.cost(tiled, trial, power_w[rows])).reshape(b, k * s)
        value = np.where(ok, value, -np.inf)
        pick = np.argmax(value, axis=-1)
        top = value[np.arange(b), pick]
        better = top > here + 1e-9 * np.abs(here)
        if not better.any():
            break
        idx = np.flatnonzero(better)
        best[idx, pick[idx] // s] = pick[idx] % s
        here = np.where(better, top, here)
    return best, here - start


class MoveSearch:
    """``base``'s servers and powers with each UAV's move chosen by :func:`search_uav_moves`
    among ``base``'s own move and the candidates (a probe of the search's targets)."""

    def __init__(self, base: HeuristicPolicy,
                 candidates: NDArray[np.float64] = MOVE_CANDIDATES) -> None:
        self.base, self.candidates = base, candidates

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        action = dict(self.base.act(network, state, rng))
        server, power_w, _ = ActionDecoder(network.scenario)(action, state.batch_size)
        best, _, _ = search_uav_moves(network, state, server, power_w,
                                      np.asarray(action["uav"]), self.candidates)
        return {**action, "uav": best}


def _optimizer(allow_reject: bool) -> HeuristicPolicy:
    from satedge.agents.optimizer import OptimizerConfig, OptimizerPolicy  # imports this module

    return OptimizerPolicy(OptimizerConfig(allow_reject=allow_reject))


POLICIES: dict[str, Callable[[], HeuristicPolicy]] = {
    "random": lambda: RandomPolicy(True),
    "random-unmasked": lambda: RandomPolicy(False),
    "greedy": GreedyPolicy,
    "optimizer": lambda: _optimizer(False),
    "optimizer-unmasked": lambda: _optimizer(True),
}


def make_policy(name: str) -> HeuristicPolicy:
    """A built-in heuristic policy by name (``random``, ``random-unmasked``, ``greedy``,
    ``optimizer``, ``optimizer-unmasked``; see :mod:`satedge.agents.optimizer`)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}")
    return POLICIES[name]()
