"""Action wrappers that give off-the-shelf learners the hybrid action in a form they accept.

The environment's action is ``Dict(offload=MultiDiscrete([S] * K), power=Box(-1, 1, (K,)),
uav=Box(-1, 1, (M, 2)))`` with S = M + N servers. Generic learners such as Stable-Baselines3
(SB3) take one flat space, so these wrappers re-express it; they are what the SB3 comparison
(``benchmarks/sb3_compare.py``) trains on, and anyone can use them for their own learners.

- ``DiscretisedAction``: ``MultiDiscrete`` over the ``2K + M`` heads of
  :class:`~satedge.agents.common.discretise.DiscreteActionSpec` (K servers, K power levels in
  [-1, 1], M UAV moves: stay or a full-speed compass step).
- ``FlatDiscrete``: ``Discrete(prod(head sizes))``, one index per joint choice of all heads of a
  coarse DiscreteActionSpec, in mixed radix.
- ``ContinuousRelaxation``: ``Box(-1, 1, (K S + K + 2M,))``: K x S server scores (row k = IoTD
  k; the server is the argmax over the feasible ones), then K powers and M (x, y) moves, passed
  through.

Infeasible server choices [our choice]. The environment fails a task sent to a masked server and
penalises it; it never repairs an action (SPEC section 7). ``DiscretisedAction`` and
``FlatDiscrete`` keep that contract: the chosen server is passed on unchanged, infeasible or not.
A server index has no meaningful "nearest" feasible neighbour (UAVs first, then satellites in
candidate order), so any repair would be an arbitrary rule that a learner could not see. This is
a handicap for learners without action masking (SB3's PPO and DQN): our PPO and D3QN mask their
server heads with ``info["action_mask"]``, whereas a mask-blind learner must learn feasibility
from the observation (which carries each task's accuracy requirement, the servers' accuracies,
the channel gains and the remaining visibility window, but not the mask itself) and pays the
penalty while it learns. Comparisons must say so. ``DiscretisedAction.action_masks`` returns the
mask in the flat per-head layout of sb3-contrib's ``MaskablePPO``, for a masked comparison.

``ContinuousRelaxation`` is the relaxation of the DDPG baseline (SPEC section 9, "argmax over
feasible servers"): the mask is part of the mapping, so a learner on it never picks an infeasible
server, exactly as our DDPG. Where no server is feasible (the task is dropped whatever is chosen)
the argmax runs over all servers.

``FlatDiscrete`` is for DQN, which needs one ``Discrete`` action. The joint action set is the
product of all head sizes, ``S^K P^K D^M``, exponential in K: it is exact for the discretised
action but only usable on small scenarios with a coarse discretisation (e.g. K = 3, S = 5,
P = 2 power levels, D = 1 (UAVs hover): 1,000 actions); larger sets are refused. Factorising a
slot into K + M sequential sub-steps instead would change the MDP (discounting and the number of
decisions per slot), so it would not be the same task as the other learners'. Torch-free.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from satedge.agents.common.discretise import DiscreteActionSpec
from satedge.sim.scenario import Scenario

__all__ = [
    "ContinuousRelaxation",
    "DiscretisedAction",
    "FlatDiscrete",
    "feasible_argmax",
    "heads_to_action",
    "relaxed_to_action",
]

EnvAction = dict[str, NDArray[Any]]
"""The environment's Dict action (batched: a leading B dimension on every entry)."""


def _scenario(env: gym.Env[Any, Any]) -> Scenario:
    scenario = getattr(env.unwrapped, "scenario", None)
    if not isinstance(scenario, Scenario):
        raise TypeError(f"{type(env.unwrapped).__name__} is not a satedge environment "
                        "(it has no .scenario); wrap MllmOffloadEnv")
    return scenario


def _unbatch(action: EnvAction) -> EnvAction:
    """The single environment's action from a batch of one."""
    return {key: value[0] for key, value in action.items()}


def heads_to_action(spec: DiscreteActionSpec, heads: NDArray[np.integer]) -> EnvAction:
    """The environment's batched Dict action from head choices [B, 2K + M] (servers, power
    levels, UAV moves, as :class:`DiscreteActionSpec` orders them). Servers pass unchanged."""
    h = np.asarray(heads, dtype=np.int64)
    if h.ndim != 2 or h.shape[1] != spec.n_heads:
        raise ValueError(f"heads has shape {h.shape}; expected (B, {spec.n_heads})")
    sizes = np.asarray(spec.head_sizes)
    if h.size and (h.min() < 0 or np.any(h >= sizes)):
        raise ValueError(f"head choices must lie in [0, size) with sizes {spec.head_sizes}; "
                         f"got {h[0].tolist()}")
    server, power_idx, uav_idx = spec.split(h)
    cont = spec.to_continuous(power_idx, uav_idx)
    k, m = spec.n_iotds, spec.n_uavs
    return {"offload": server.copy(), "power": cont[:, :k],
            "uav": cont[:, k:].reshape(-1, m, 2)}


def feasible_argmax(scores: NDArray[np.floating], mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """[B, K] the highest-scoring feasible server per IoTD from scores and mask [B, K, S]
    (over all servers where none is feasible; ties go to the lowest index)."""
    m = np.asarray(mask, dtype=bool)
    feasible = m | ~m.any(-1, keepdims=True)
    return np.where(feasible, scores, -np.inf).argmax(-1).astype(np.int64)


def relaxed_to_action(n_iotds: int, n_servers: int, n_uavs: int, action: NDArray[np.floating],
                      mask: NDArray[np.bool_]) -> EnvAction:
    """The environment's batched Dict action from a relaxed action [B, K S + K + 2M] (scores row
    by row, powers, UAV (x, y) moves) and the server mask [B, K, S]."""
    k, s, m = n_iotds, n_servers, n_uavs
    a = np.asarray(action, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != k * s + k + 2 * m:
        raise ValueError(f"action has shape {a.shape}; expected (B, {k * s + k + 2 * m})")
    if mask.shape != (a.shape[0], k, s):
        raise ValueError(f"mask has shape {mask.shape}; expected {(a.shape[0], k, s)}")
    scores = a[:, : k * s].reshape(-1, k, s)
    return {"offload": feasible_argmax(scores, mask), "power": a[:, k * s : k * s + k],
            "uav": a[:, k * s + k :].reshape(-1, m, 2)}


class DiscretisedAction(gym.ActionWrapper[Any, NDArray[np.int64], EnvAction]):
    """``MultiDiscrete`` over the ``2K + M`` heads of a :class:`DiscreteActionSpec`.

    Head k < K picks IoTD k's server (passed on unchanged, feasible or not: see the module
    docstring), head K + k one of ``power_levels`` evenly spaced powers in [-1, 1] (p_min to
    p_max), head 2K + m UAV m's move (0 = stay, else a full-speed compass step).

    Args:
        env: a :class:`~satedge.envs.offload.MllmOffloadEnv` (possibly wrapped).
        power_levels: power choices per IoTD (>= 2).
        uav_directions: move choices per UAV (>= 1; 1 = the UAVs hover).
    """

    def __init__(self, env: gym.Env[Any, EnvAction], power_levels: int = 5,
                 uav_directions: int = 9) -> None:
        super().__init__(env)
        sc = _scenario(env)
        self.action_spec = DiscreteActionSpec(sc.n_iotds, sc.n_uavs, sc.n_servers, power_levels,
                                       uav_directions)
        self.action_space = spaces.MultiDiscrete(np.asarray(self.action_spec.head_sizes, np.int64))
        self._mask: NDArray[np.bool_] = np.ones((sc.n_iotds, sc.n_servers), dtype=bool)

    def action(self, action: NDArray[np.int64]) -> EnvAction:
        return _unbatch(heads_to_action(self.action_spec, np.asarray(action)[None]))

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        self._mask = info["action_mask"]
        return obs, info

    def step(self, action: NDArray[np.int64]) -> tuple[Any, SupportsFloat, bool, bool,
                                                       dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._mask = info["action_mask"]
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> NDArray[np.bool_]:
        """[sum(head sizes)] availability of every choice of every head, concatenated head by
        head (the layout sb3-contrib's ``MaskablePPO`` reads from a method of this name)."""
        full = self.action_spec.head_mask(self._mask[None])[0]
        return np.concatenate([full[i, :n] for i, n in enumerate(self.action_spec.head_sizes)])


class FlatDiscrete(gym.ActionWrapper[Any, np.int64, EnvAction]):
    """``Discrete(n)`` over every joint choice of the heads of a coarse
    :class:`DiscreteActionSpec` (``n = S^K P^K D^M``), for learners that need one discrete
    action (DQN). Index ``i`` is the mixed-radix number of the head choices in head order, the
    last head varying fastest (``numpy.unravel_index``). Servers pass on unchanged.

    Args:
        env: a :class:`~satedge.envs.offload.MllmOffloadEnv` (possibly wrapped).
        power_levels: power choices per IoTD (>= 2; default 2: p_min or p_max).
        uav_directions: move choices per UAV (>= 1; default 1: the UAVs hover).
        max_actions: refuse joint sets larger than this (the Q-network's output width).

    Raises:
        ValueError: the joint action set has more than ``max_actions`` actions.
    """

    def __init__(self, env: gym.Env[Any, EnvAction], power_levels: int = 2,
                 uav_directions: int = 1, max_actions: int = 10_000) -> None:
        super().__init__(env)
        sc = _scenario(env)
        self.action_spec = DiscreteActionSpec(sc.n_iotds, sc.n_uavs, sc.n_servers, power_levels,
                                       uav_directions)
        n = math.prod(self.action_spec.head_sizes)
        if n > max_actions:
            raise ValueError(
                f"the joint action set has {n:,} actions ({sc.n_servers}^{sc.n_iotds} servers x "
                f"{power_levels}^{sc.n_iotds} powers x {uav_directions}^{sc.n_uavs} moves), more "
                f"than max_actions={max_actions:,}; use fewer IoTDs, servers, power levels or "
                "UAV directions")
        self.n_actions = n
        self.action_space = spaces.Discrete(n)

    def heads(self, index: int | NDArray[np.integer]) -> NDArray[np.int64]:
        """[..., 2K + M] head choices of joint action indices [...]."""
        idx = np.asarray(index, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_actions):
            raise ValueError(f"action index must lie in [0, {self.n_actions - 1}]; got {idx}")
        heads = np.unravel_index(idx, self.action_spec.head_sizes)
        return np.stack(heads, axis=-1).astype(np.int64)

    def index(self, heads: NDArray[np.integer]) -> NDArray[np.int64]:
        """[...] joint action indices of head choices [..., 2K + M] (inverse of ``heads``)."""
        h = np.asarray(heads, dtype=np.int64)
        return np.asarray(np.ravel_multi_index(tuple(np.moveaxis(h, -1, 0)),
                                               self.action_spec.head_sizes), dtype=np.int64)

    def action(self, action: np.int64) -> EnvAction:
        return _unbatch(heads_to_action(self.action_spec, self.heads(int(action))[None]))


class ContinuousRelaxation(gym.ActionWrapper[Any, NDArray[np.float32], EnvAction]):
    """``Box(-1, 1, (K S + K + 2M,))``: K x S server scores, then K powers and M (x, y) UAV
    moves. IoTD k's server is the argmax of its S scores over the servers that the current
    ``info["action_mask"]`` marks feasible (all, if none is); powers and moves pass through (the
    environment clips them to [-1, 1]).

    Args:
        env: a :class:`~satedge.envs.offload.MllmOffloadEnv` (possibly wrapped).
    """

    def __init__(self, env: gym.Env[Any, EnvAction]) -> None:
        super().__init__(env)
        sc = _scenario(env)
        self.k, self.s, self.m = sc.n_iotds, sc.n_servers, sc.n_uavs
        dim = self.k * self.s + self.k + 2 * self.m
        self.action_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self._mask: NDArray[np.bool_] | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        self._mask = info["action_mask"]
        return obs, info

    def step(self, action: NDArray[np.float32]) -> tuple[Any, SupportsFloat, bool, bool,
                                                         dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._mask = info["action_mask"]
        return obs, reward, terminated, truncated, info

    def action(self, action: NDArray[np.float32]) -> EnvAction:
        if self._mask is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float32).reshape(1, -1)
        return _unbatch(relaxed_to_action(self.k, self.s, self.m, a, self._mask[None]))
