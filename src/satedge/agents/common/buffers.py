"""Experience storage: a replay ring buffer (off-policy), a rollout buffer with GAE (on-policy),
and the typed batches they hand to the learners (after SB3's ``common/type_aliases.py``).

Shapes: ``B`` environments or batch rows, ``T`` rollout steps, ``K`` IoTDs, ``S`` servers,
``A`` continuous action dimensions (K powers + 2 M UAV moves, flattened by the agent).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

__all__ = ["ReplayBatch", "ReplayBuffer", "RolloutBatch", "RolloutBuffer", "compute_gae"]


def _np(x: ArrayLike | Tensor) -> NDArray[Any]:
    """numpy view of an array or a (CPU or device) tensor, detached."""
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _check(name: str, arr: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape}")
    return arr


class ReplayBatch(NamedTuple):
    """A uniformly sampled minibatch of transitions (torch tensors on the requested device)."""

    obs: Tensor          # float32 [B, obs_dim]
    action_d: Tensor     # int64 [B, K] server per IoTD
    action_c: Tensor     # float32 [B, A] squashed continuous action in [-1, 1]
    reward: Tensor       # float32 [B]
    next_obs: Tensor     # float32 [B, obs_dim] (the final observation if the episode ended)
    done: Tensor         # float32 [B]: 1.0 only on true termination, never on truncation
    mask: Tensor         # bool [B, K, S] action mask at obs
    next_mask: Tensor    # bool [B, K, S] action mask at next_obs
    reward_k: Tensor | None = None  # float32 [B, K] each task's share of the reward
    # float32 [B, K, S]: the reward had IoTD k alone chosen server j (buffers built with
    # ``server_rewards=True``; see ``offpolicy.server_reward_table``)
    server_rewards: Tensor | None = None
    # float32 [B, M, 3 + C]: per UAV the best move of a one-slot lookahead (x, y in [-1, 1]), the
    # spread of the candidates' rewards and, with ``move_values=C``, the rewards of the C fixed
    # candidates less their mean (buffers built with ``move_targets=True``; see
    # ``heuristics.search_uav_moves`` and ``offpolicy.move_target_table``)
    move_targets: Tensor | None = None
    # float32 [B, K, 2]: per IoTD the best transmit power of a one-slot lookahead (in [-1, 1])
    # and the spread of the candidates' rewards (buffers built with ``power_targets=True``; see
    # ``heuristics.search_iotd_powers``)
    power_targets: Tensor | None = None
    # float32 [B, K, 2]: per IoTD its server in a local search's improved assignment and whether
    # it has a task (buffers built with ``server_targets=True``; see
    # ``heuristics.search_servers``)
    server_targets: Tensor | None = None


_EXTRAS = ("server_rewards", "move_targets", "power_targets", "server_targets")
"""The optional per-transition fields, stored only by buffers built to store them."""


class ReplayBuffer:
    """A ring buffer of transitions in numpy; uniform sampling with replacement (Mnih et al. 2015).

    Storage per transition: float32 observations (twice), int16 server indices, float32
    continuous actions, reward and per-task rewards, bool ``terminated`` and masks. When full,
    the oldest rows are overwritten.

    Args:
        capacity: maximum number of transitions (paper: 10,000).
        obs_dim, n_iotds (K), n_servers (S), cont_dim (A): the layout.
        server_rewards: also store a [K, S] table per transition (``add(server_rewards=...)``),
            for agents that train their server choice on it (AD-SAC ``server_values="exact"``).
        move_targets: also store an [M, 3] move target per transition (``add(move_targets=...)``;
            M = (A - K) / 2 UAVs), for agents that train their UAV moves on it (AD-SAC
            ``move_values="simulated"``).
        move_values: with ``move_targets``, C > 0 more columns per UAV after the three of the
            target: the rewards of the search's C fixed candidates (AD-SAC ``move_value_net``).
        power_targets: also store a [K, 2] power target per transition
            (``add(power_targets=...)``), for AD-SAC ``power_values="simulated"``.
        server_targets: also store a [K, 2] server target per transition
            (``add(server_targets=...)``), for AD-SAC ``server_search > 0``.
    """

    def __init__(self, capacity: int, obs_dim: int, n_iotds: int, n_servers: int,
                 cont_dim: int, server_rewards: bool = False, move_targets: bool = False,
                 power_targets: bool = False, server_targets: bool = False,
                 move_values: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be at least 1")
        if not 1 <= n_servers <= np.iinfo(np.int16).max:
            raise ValueError(f"n_servers={n_servers} must lie in [1, 32767] (int16 storage)")
        if move_values < 0 or (move_values and not move_targets):
            raise ValueError(f"move_values={move_values} must be >= 0, and 0 unless "
                             "move_targets=True (they are columns of the move targets)")
        self.capacity, self.obs_dim = capacity, obs_dim
        self.n_iotds, self.n_servers, self.cont_dim = n_iotds, n_servers, cont_dim
        c, k, s = capacity, n_iotds, n_servers
        self._data: dict[str, NDArray[Any]] = {
            "obs": np.zeros((c, obs_dim), np.float32),
            "action_d": np.zeros((c, k), np.int16),
            "action_c": np.zeros((c, cont_dim), np.float32),
            "reward": np.zeros(c, np.float32),
            "next_obs": np.zeros((c, obs_dim), np.float32),
            "terminated": np.zeros(c, np.bool_),
            "mask": np.zeros((c, k, s), np.bool_),
            "next_mask": np.zeros((c, k, s), np.bool_),
            "reward_k": np.zeros((c, k), np.float32),
        }
        if server_rewards:
            self._data["server_rewards"] = np.zeros((c, k, s), np.float32)
        if move_targets:
            self._data["move_targets"] = np.zeros((c, (cont_dim - k) // 2, 3 + move_values),
                                                  np.float32)
        if power_targets:
            self._data["power_targets"] = np.zeros((c, k, 2), np.float32)
        if server_targets:
            self._data["server_targets"] = np.zeros((c, k, 2), np.float32)
        self.pos = 0   # next row to write
        self.size = 0  # filled rows

    def __len__(self) -> int:
        return self.size

    @property
    def stores_server_rewards(self) -> bool:
        """Whether transitions carry the [K, S] server-reward table."""
        return "server_rewards" in self._data

    @property
    def stores_move_targets(self) -> bool:
        """Whether transitions carry the [M, 3 (+ C)] UAV move targets."""
        return "move_targets" in self._data

    @property
    def move_value_columns(self) -> int:
        """C, the candidate rewards stored after each UAV's move target (0: none)."""
        return self._data["move_targets"].shape[-1] - 3 if self.stores_move_targets else 0

    @property
    def stores_power_targets(self) -> bool:
        """Whether transitions carry the [K, 2] transmit-power targets."""
        return "power_targets" in self._data

    @property
    def stores_server_targets(self) -> bool:
        """Whether transitions carry the [K, 2] server targets."""
        return "server_targets" in self._data

    @property
    def nbytes_per_transition(self) -> int:
        """Bytes one transition occupies (the buffer holds ``capacity`` times this)."""
        return sum(a.nbytes for a in self._data.values()) // self.capacity

    def _row_shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: a.shape[1:] for key, a in self._data.items()}

    def add(self, obs: ArrayLike, action_d: ArrayLike, action_c: ArrayLike, reward: ArrayLike,
            next_obs: ArrayLike, terminated: ArrayLike, mask: ArrayLike,
            next_mask: ArrayLike, reward_k: ArrayLike | None = None,
            server_rewards: ArrayLike | None = None,
            move_targets: ArrayLike | None = None,
            power_targets: ArrayLike | None = None,
            server_targets: ArrayLike | None = None) -> NDArray[np.int64]:
        """Store B transitions at once (a leading batch dimension on every argument) and
        return the rows they went to (of the last ``capacity`` of them where B is larger).

        ``reward_k`` [B, K] is each task's share of the reward (the environment's
        ``info["reward_per_task"]``); without it the reward is split equally over the K IoTDs.

        ``next_obs`` / ``next_mask`` must be the final observation and mask of an ended episode
        (``infos["final_obs"]`` of the vector env), not the reset observation. Pass
        ``terminated`` only; truncation must not zero the bootstrap.

        ``server_rewards`` [B, K, S] is required by, and only accepted by, a buffer built with
        ``server_rewards=True``; likewise ``move_targets`` [B, M, 3 + C] with ``move_targets=True``
        ``power_targets`` [B, K, 2] with ``power_targets=True`` and ``server_targets`` [B, K, 2]
        with ``server_targets=True``.
        """
        if reward_k is None:
            reward_k = np.repeat(_np(reward)[..., None] / self.n_iotds, self.n_iotds, axis=-1)
        rows = {"obs": obs, "action_d": action_d, "action_c": action_c, "reward": reward,
                "next_obs": next_obs, "terminated": terminated, "mask": mask,
                "next_mask": next_mask, "reward_k": reward_k}
        extras = {"server_rewards": server_rewards, "move_targets": move_targets,
                  "power_targets": power_targets, "server_targets": server_targets}
        for key in _EXTRAS:
            value, stored = extras[key], key in self._data
            if (value is not None) != stored:
                raise ValueError(f"{key} must be given exactly when the buffer was built with "
                                 f"{key}={stored}")
            if value is not None:
                rows[key] = value
        arrays = {key: _np(v) for key, v in rows.items()}
        b = arrays["reward"].shape[0] if arrays["reward"].ndim else 0
        for key, shape in self._row_shapes().items():
            _check(key, arrays[key], (b, *shape))
        a_d = arrays["action_d"]
        if b and (a_d.min() < 0 or a_d.max() >= self.n_servers):
            raise ValueError(f"action_d must lie in [0, {self.n_servers - 1}]; got "
                             f"[{a_d.min()}, {a_d.max()}]")
        if b > self.capacity:  # only the newest `capacity` rows survive
            arrays = {key: a[b - self.capacity:] for key, a in arrays.items()}
        n = min(b, self.capacity)
        idx = (self.pos + np.arange(n)) % self.capacity
        for key, a in arrays.items():
            self._data[key][idx] = a
        self.pos = int((self.pos + b) % self.capacity)
        self.size = min(self.size + b, self.capacity)
        return idx

    def set_move_targets(self, rows: NDArray[np.int64], move_targets: ArrayLike) -> None:
        """Overwrite the [M, 3 + C] move targets of stored ``rows`` (as returned by :meth:`add`):
        for a target known only a step after its transition was stored."""
        if not self.stores_move_targets:
            raise ValueError("set_move_targets needs a buffer built with move_targets=True")
        rows = np.asarray(rows, np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.size):
            raise ValueError(f"rows must lie in [0, {self.size - 1}] (the filled rows); got "
                             f"[{rows.min()}, {rows.max()}]")
        value = _check("move_targets", _np(move_targets),
                       (len(rows), *self._data["move_targets"].shape[1:]))
        self._data["move_targets"][rows] = value

    def sample(self, batch_size: int, rng: np.random.Generator,
               device: torch.device | str = "cpu") -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly with replacement from the filled rows."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        d = self._data

        def t(a: NDArray[Any], dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(a[idx]).to(device=device, dtype=dtype)

        return ReplayBatch(
            obs=t(d["obs"], torch.float32), action_d=t(d["action_d"], torch.int64),
            action_c=t(d["action_c"], torch.float32), reward=t(d["reward"], torch.float32),
            next_obs=t(d["next_obs"], torch.float32), done=t(d["terminated"], torch.float32),
            mask=t(d["mask"], torch.bool), next_mask=t(d["next_mask"], torch.bool),
            reward_k=t(d["reward_k"], torch.float32),
            **{key: t(d[key], torch.float32) if key in d else None for key in _EXTRAS})

    def state_dict(self) -> dict[str, Any]:
        """The exact contents as numpy arrays (filled rows only) and ints; no pickled objects."""
        state: dict[str, Any] = {"capacity": self.capacity, "pos": self.pos, "size": self.size}
        state.update({key: a[:self.size].copy() for key, a in self._data.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a buffer built with the same layout."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"capacity {state['capacity']} in state != {self.capacity}")
        size, pos = int(state["size"]), int(state["pos"])
        if not (0 <= size <= self.capacity and 0 <= pos < self.capacity):
            raise ValueError(f"invalid size={size} / pos={pos} for capacity {self.capacity}")
        for key, shape in self._row_shapes().items():
            arr = _check(key, np.asarray(state[key]), (size, *shape))
            self._data[key][:size] = arr
            self._data[key][size:] = 0
        self.size, self.pos = size, pos


def compute_gae(rewards: NDArray[Any], values: NDArray[Any], next_values: NDArray[Any],
                terminated: NDArray[Any], truncated: NDArray[Any], gamma: float,
                lam: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Generalised advantage estimation (Schulman et al. 2016, Eq. 16) over [T, B] arrays.

    ``delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)``,
    ``A_t = delta_t + gamma lam (1 - term_t) (1 - trunc_t) A_{t+1}``, ``A_T = 0``, and the
    returns (value targets) are ``A_t + V(s_t)``.

    ``next_values[t]`` is ``V(s_{t+1})`` of the same episode: the value of the final observation
    where the episode was truncated (time limit: bootstrap), ignored where it terminated. The
    recursion is cut at both, so nothing bleeds across episodes.

    Returns:
        ``(advantages, returns)``, float64 [T, B].
    """
    r = np.asarray(rewards, np.float64)
    for name, a in (("values", values), ("next_values", next_values),
                    ("terminated", terminated), ("truncated", truncated)):
        _check(name, np.asarray(a), r.shape)
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma={gamma} and lam={lam} must lie in [0, 1]")
    v = np.asarray(values, np.float64)
    nonterm = 1.0 - np.asarray(terminated, np.float64)
    cont = nonterm * (1.0 - np.asarray(truncated, np.float64))
    delta = r + gamma * nonterm * np.asarray(next_values, np.float64) - v
    adv = np.zeros_like(r)
    running = np.zeros(r.shape[1:])
    for t in range(r.shape[0] - 1, -1, -1):
        running = delta[t] + gamma * lam * cont[t] * running
        adv[t] = running
    return adv, adv + v


class RolloutBatch(NamedTuple):
    """A minibatch of on-policy samples (torch tensors on the requested device)."""

    obs: Tensor          # float32 [B, obs_dim]
    mask: Tensor         # bool [B, K, S]
    action_d: Tensor     # int64 [B, K]
    action_c: Tensor     # float32 [B, A] squashed action
    pre_tanh: Tensor     # float32 [B, A] u with action_c = tanh(u) (exact log-probs)
    log_prob_d: Tensor   # float32 [B] behaviour log-prob of action_d, summed over K
    log_prob_c: Tensor   # float32 [B] behaviour log-prob of action_c
    value: Tensor        # float32 [B] V(obs) at collection time
    advantage: Tensor    # float32 [B] GAE
    returns: Tensor      # float32 [B] value target A + V


class RolloutBuffer:
    """``n_steps`` x ``n_envs`` on-policy samples, GAE, and shuffled minibatches.

    Usage per step: ``add(...)`` with ``final_value`` = V(``infos["final_obs"]``) for truncated
    envs; after the last step ``compute(gamma, lam, last_values=V(obs))``; then
    ``minibatches(...)`` per epoch; ``reset()`` before the next rollout.
    """

    def __init__(self, n_steps: int, n_envs: int, obs_dim: int, n_iotds: int, n_servers: int,
                 cont_dim: int) -> None:
        self.n_steps, self.n_envs = n_steps, n_envs
        t, b, k = n_steps, n_envs, n_iotds
        f32 = np.float32
        self.obs = np.zeros((t, b, obs_dim), f32)
        self.mask = np.zeros((t, b, k, n_servers), np.bool_)
        self.action_d = np.zeros((t, b, k), np.int64)
        self.action_c = np.zeros((t, b, cont_dim), f32)
        self.pre_tanh = np.zeros((t, b, cont_dim), f32)
        self.log_prob_d, self.log_prob_c = np.zeros((t, b), f32), np.zeros((t, b), f32)
        self.values, self.rewards = np.zeros((t, b), f32), np.zeros((t, b), f32)
        self.terminated = np.zeros((t, b), np.bool_)
        self.truncated = np.zeros((t, b), np.bool_)
        self.final_values = np.zeros((t, b), f32)  # V(final obs) where truncated
        self.next_values = np.zeros((t, b), f32)
        self.advantages = np.zeros((t, b), f32)
        self.returns = np.zeros((t, b), f32)
        self.pos = 0
        self.computed = False

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def reset(self) -> None:
        self.pos, self.computed = 0, False

    def add(self, *, obs: ArrayLike, mask: ArrayLike, action_d: ArrayLike, action_c: ArrayLike,
            pre_tanh: ArrayLike, log_prob_d: ArrayLike, log_prob_c: ArrayLike, value: ArrayLike,
            reward: ArrayLike, terminated: ArrayLike, truncated: ArrayLike,
            final_value: ArrayLike | None = None) -> None:
        """Store one step of all envs (each argument has leading dimension ``n_envs``).

        Raises:
            ValueError: the buffer is full, a shape is wrong, or an env was truncated without
                ``final_value`` (bootstrapping from the reset observation would be wrong).
        """
        if self.full:
            raise ValueError(f"rollout buffer is full ({self.n_steps} steps); call reset()")
        t = self.pos
        trunc = _np(truncated)
        if final_value is None:
            if np.any(trunc):
                raise ValueError("truncated envs need final_value = V(final_obs)")
            final_value = np.zeros(self.n_envs)
        for name, val in (("obs", obs), ("mask", mask), ("action_d", action_d),
                          ("action_c", action_c), ("pre_tanh", pre_tanh),
                          ("log_prob_d", log_prob_d), ("log_prob_c", log_prob_c),
                          ("values", value), ("rewards", reward), ("terminated", terminated),
                          ("truncated", trunc), ("final_values", final_value)):
            store = getattr(self, name)
            store[t] = _check(name, _np(val), store.shape[1:])
        self.pos += 1
        self.computed = False

    def compute(self, gamma: float, lam: float, last_values: ArrayLike) -> None:
        """Fill ``next_values``, ``advantages`` and ``returns`` (see :func:`compute_gae`).

        ``next_values[t] = values[t + 1]``, ``last_values`` (= V of the observation after the
        last step) at ``t = T - 1``, and ``final_values[t]`` wherever ``truncated[t]``.
        """
        if not self.full:
            raise ValueError(f"rollout has {self.pos} of {self.n_steps} steps")
        last = _check("last_values", _np(last_values), (self.n_envs,))
        nxt = np.concatenate([self.values[1:], last[None].astype(np.float32)])
        self.next_values[:] = np.where(self.truncated, self.final_values, nxt)
        adv, ret = compute_gae(self.rewards, self.values, self.next_values, self.terminated,
                               self.truncated, gamma, lam)
        self.advantages[:], self.returns[:] = adv, ret
        self.computed = True

    def minibatches(self, batch_size: int, rng: np.random.Generator,
                    device: torch.device | str = "cpu") -> Iterator[RolloutBatch]:
        """One epoch: the T * B samples shuffled by ``rng`` and cut into minibatches of
        ``batch_size`` (the last one smaller if it does not divide)."""
        if not self.computed:
            raise ValueError("call compute() before minibatches()")
        n = self.n_steps * self.n_envs
        flat = {name: getattr(self, name).reshape(n, *getattr(self, name).shape[2:])
                for name in ("obs", "mask", "action_d", "action_c", "pre_tanh", "log_prob_d",
                             "log_prob_c", "values", "advantages", "returns")}
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            f = {key: torch.as_tensor(a[idx]).to(device) for key, a in flat.items()}
            yield RolloutBatch(
                obs=f["obs"], mask=f["mask"], action_d=f["action_d"], action_c=f["action_c"],
                pre_tanh=f["pre_tanh"], log_prob_d=f["log_prob_d"], log_prob_c=f["log_prob_c"],
                value=f["values"], advantage=f["advantages"], returns=f["returns"])
