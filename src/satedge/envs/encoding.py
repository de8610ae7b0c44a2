"""Observation encoding, action decoding, reward and info for a batch of environments.

Shared by the single environment (:mod:`satedge.envs.offload`) and the native vector environment
(:mod:`satedge.envs.vector`), so that both compute exactly the same numbers.

Observation layout (one flat float32 vector, every feature in [-1, 1]; ``sq(x, r) = 2 x / (x + r)
- 1`` squashes a non-negative quantity so that ``x = r`` maps to 0):

=====================  =========  =====================================  ====================
block                  size       feature                                 encoding
=====================  =========  =====================================  ====================
per IoTD k (K rows)    1          task present this slot                  {0, 1}
                       1          requests merged into the task (images)  sq(n, 2)
                       1          prompt text tokens                      sq(t, 256)
                       1          input size D (bit)                       sq(D, 4 Mbit)
                       1          output length L (token)                  sq(L, 128)
                       1          accuracy requirement A_min               2 A - 1
                       1          deadline T_max (s)                       sq(T, 3 s)
                       2          position x, y (m)                        2 x / area - 1
                       M          gain to each UAV (dB)                    (g - g_ref) / 20 dB
                       1          gain to the access satellite (dB)        (g - g_ref) / 10 dB
global                 1          remaining visibility window (s)          2 w / pass - 1
                       1          a satellite is visible                  {0, 1}
                       1          episode progress slot / T               [0, 1]
                       2 M        UAV positions x, y (m)                   2 x / area - 1
per server (S = M+N)   1          accuracy on the scenario's scale         2 A - 1
                       1          decode speed (token/s)                   sq(v, 50 token/s)
per candidate (N)      1          ISL hops from the access satellite       sq(h, 2)
                       1          ISL path length (m)                      sq(l, 2000 km)
=====================  =========  =====================================  ====================

``g_ref`` is the large-scale gain at a typical distance (UAV: half the area side at the UAV's
altitude; satellite: the slant range at 40 deg elevation). Values are clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from satedge.sim import channels, orbits
from satedge.sim.cost import task_penalty
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState, TaskStatus

__all__ = ["IOTD_FEATURE", "PER_IOTD", "ActionDecoder", "ObservationEncoder", "info_dict",
           "power_units", "power_watts", "reward", "reward_per_task"]

FloatArray = NDArray[np.float64]
PER_IOTD = 10
"""Features per IoTD besides its M UAV gains."""
IOTD_FEATURE = {"active": 0, "requests": 1, "text_tokens": 2, "input_bits": 3,
                "output_tokens": 4, "accuracy_min": 5, "deadline": 6, "x": 7, "y": 8}
"""Position of each named feature in an IoTD's block (the UAV gains follow, then the satellite
gain)."""


def observation_size(sc: Scenario) -> int:
    """Length of the flat observation vector."""
    k, m, n = sc.n_iotds, sc.n_uavs, sc.n_candidates
    return k * (PER_IOTD + m) + 3 + 2 * m + 2 * (m + n) + 2 * n


class ObservationEncoder:
    """Encodes a batched :class:`SlotState` as [B, obs_dim] float32 (layout in the module doc).

    Every feature is ``(p x - q) / (s x + r) - c`` of a raw value x, with per-feature constants:
    ``sq(x, r)`` is p = 2, s = 1, c = 1; the affine ``2 x / d - 1`` is p = 2, s = 0, r = d, c = 1;
    a gain in dB is x = log10(g) with p = 10, q = g_ref, s = 0, r = 20 (UAV) or 10 (satellite).
    Each choice reproduces the written formula operation for operation (a zero term is exact),
    so the whole observation is a few array operations on one [B, obs_dim] buffer of raw values.
    """

    def __init__(self, net: EdgeNetwork) -> None:
        sc = net.scenario
        self.sc, self.net = sc, net
        typical = np.hypot(sc.area_m / 2.0, sc.uav.altitude_m)
        self.uav_ref_db = float(channels.linear_to_db(channels.ground_uav_large_scale_gain(
            typical, sc.channel.beta0_db, sc.channel.path_loss_exponent)))
        slant = orbits.slant_range_m(np.radians(40.0), sc.constellation.altitude_m)
        self.sat_ref_db = float(channels.linear_to_db(channels.ground_satellite_gain(
            slant, sc.satellite.carrier_hz, sc.iotd.antenna_gain_dbi,
            sc.satellite.antenna_gain_dbi)))
        servers = net.servers
        self.server_raw = np.concatenate([servers.accuracy, 1.0 / servers.s_per_output_token])
        self.space = spaces.Box(-1.0, 1.0, (observation_size(sc),), np.float32)
        self._p, self._q, self._s, self._r, self._c = self._feature_constants()

    def _feature_constants(self) -> tuple[FloatArray, ...]:
        """[obs_dim] constants p, q, s, r, c of every feature, in the layout's order."""
        sc, m, n = self.sc, self.sc.n_uavs, self.sc.n_candidates

        def sq(ref: float) -> tuple[float, ...]:  # 2 x / (x + ref) - 1
            return 2.0, 0.0, 1.0, ref, 1.0

        def affine(d: float) -> tuple[float, ...]:  # 2 x / d - 1
            return 2.0, 0.0, 0.0, d, 1.0

        def scaled(d: float) -> tuple[float, ...]:  # x / d
            return 1.0, 0.0, 0.0, d, 0.0

        def db(ref_db: float, per: float) -> tuple[float, ...]:  # (10 log10 g - ref) / per
            return 10.0, ref_db, 0.0, per, 0.0

        per_iotd = [scaled(1.0), sq(2.0), sq(256.0), sq(4e6), sq(128.0), affine(1.0), sq(3.0),
                    affine(sc.area_m),
                    affine(sc.area_m), *[db(self.uav_ref_db, 20.0)] * m, db(self.sat_ref_db, 10.0)]
        rows = (per_iotd * sc.n_iotds
                + [affine(self.net.pass_duration_s), scaled(1.0), scaled(sc.episode_slots)]
                + [affine(sc.area_m)] * (2 * m) + [affine(1.0)] * (m + n) + [sq(50.0)] * (m + n)
                + [sq(2.0)] * n + [sq(2e6)] * n)
        return tuple(np.array(col) for col in zip(*rows, strict=True))

    def __call__(self, st: SlotState) -> NDArray[np.float32]:
        raw = self._raw(st)
        out = raw * self._p
        out -= self._q
        den = raw * self._s
        den += self._r
        out /= den
        out -= self._c
        obs = out.astype(np.float32)  # rounding is monotone and +-1 are exact in float32, so
        return obs.clip(-1.0, 1.0, out=obs)  # clipping after the cast gives the same values

    def _raw(self, st: SlotState) -> FloatArray:
        """[B, obs_dim] raw feature values in the layout's order."""
        sc, t = self.sc, st.tasks
        b, k, m, n = st.batch_size, sc.n_iotds, sc.n_uavs, sc.n_candidates
        raw = np.empty((b, self._p.size))
        per = raw[:, : k * (PER_IOTD + m)].reshape(b, k, PER_IOTD + m)
        per[..., 0] = t.active
        per[..., 1] = t.n_requests
        per[..., 2] = t.text_tokens
        per[..., 3] = t.upload_bits
        per[..., 4] = t.output_tokens
        per[..., 5] = t.accuracy_min
        per[..., 6] = t.deadline_s
        per[..., 7:9] = st.iotd_xy_m
        per[..., 9:9 + m] = np.log10(np.maximum(st.uav_gain, 1e-30))
        per[..., 9 + m] = np.log10(np.maximum(st.sat_gain, 1e-30))
        rest = raw[:, k * (PER_IOTD + m):]
        rest[:, 0] = st.visibility_s
        rest[:, 1] = st.access_sat >= 0
        rest[:, 2] = st.slot
        rest[:, 3:3 + 2 * m] = st.uav_xy_m.reshape(b, 2 * m)
        rest[:, 3 + 2 * m:3 + 4 * m + 2 * n] = self.server_raw
        rest[:, 3 + 4 * m + 2 * n:3 + 4 * m + 3 * n] = st.candidate_hops
        rest[:, 3 + 4 * m + 3 * n:] = st.candidate_path_m
        return raw


class ActionDecoder:
    """Validates a batched Dict action and maps it to physical units.

    ``power`` in [-1, 1] maps linearly to [p_min, p_max] (values outside are clipped: constraint
    31d); ``uav`` in [-1, 1]^2 maps to a displacement ``a * v_max * tau`` whose length is capped at
    ``v_max * tau``. Wrong shapes, non-integer or out-of-range server indices, NaN and infinity
    raise ``ValueError`` naming the field; nothing is repaired silently.
    """

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        k, m, s = sc.n_iotds, sc.n_uavs, sc.n_servers
        self.space = spaces.Dict({
            "offload": spaces.MultiDiscrete(np.full(k, s, dtype=np.int64)),
            "power": spaces.Box(-1.0, 1.0, (k,), np.float32),
            "uav": spaces.Box(-1.0, 1.0, (m, 2), np.float32),
        })

    def __call__(self, action: Mapping[str, Any], batch: int) -> tuple[
            NDArray[np.int64], FloatArray, FloatArray]:
        sc = self.sc
        if not isinstance(action, Mapping) or action.keys() != {"offload", "power", "uav"}:
            keys = sorted(action) if isinstance(action, Mapping) else type(action).__name__
            raise ValueError(f"action must be a dict with keys offload, power, uav; got {keys}")
        server = _checked(action, "offload", (batch, sc.n_iotds))
        if (server.dtype.kind == "f" and not np.all(server == np.round(server))) or \
                server.min() < 0 or server.max() >= sc.n_servers:
            raise ValueError(f"action['offload'] must hold integers in [0, {sc.n_servers - 1}]; "
                             f"got {server.ravel()[:8].tolist()}")
        power = power_watts(sc, _checked(action, "power", (batch, sc.n_iotds)))
        move = _checked(action, "uav", (batch, sc.n_uavs, 2)).astype(np.float64)
        move = move.clip(-1.0, 1.0) * (sc.uav.speed_max_m_s * sc.slot_s)
        return server.astype(np.int64), power, move


def power_watts(sc: Scenario, power: NDArray[Any]) -> FloatArray:
    """Transmit powers in the action's [-1, 1] units as watts: linear onto [p_min, p_max],
    values outside [-1, 1] clipped (constraint 31d)."""
    lo, hi = sc.iotd.power_min_w, sc.iotd.power_max_w
    return lo + (np.asarray(power, dtype=np.float64).clip(-1.0, 1.0) + 1.0) / 2.0 * (hi - lo)


def power_units(sc: Scenario, watts: NDArray[Any]) -> FloatArray:
    """Transmit powers in watts as the action's [-1, 1] units, the inverse of
    :func:`power_watts` (values outside [p_min, p_max] clipped)."""
    lo, hi = sc.iotd.power_min_w, sc.iotd.power_max_w
    span = max(hi - lo, 1e-300)
    return np.asarray(np.clip(2.0 * (np.asarray(watts, dtype=np.float64) - lo) / span - 1.0,
                              -1.0, 1.0))


def _checked(action: Mapping[str, Any], key: str, shape: tuple[int, ...]) -> NDArray[Any]:
    """``action[key]`` as an array of ``shape`` (a batch of one may omit the batch axis); another
    shape (even of the same size, e.g. transposed), non-numbers or NaN/inf raise."""
    arr = np.asarray(action[key])
    if arr.shape != shape and not (shape[0] == 1 and arr.shape == shape[1:]):
        raise ValueError(f"action[{key!r}] has shape {arr.shape}; expected "
                         f"{shape[1:] if shape[0] == 1 else shape}")
    arr = arr.reshape(shape)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
        raise ValueError(f"action[{key!r}] must be finite numbers; got "
                         f"{arr.ravel()[:8].tolist()}")
    return arr


def reward(sc: Scenario, outcome: Outcome) -> FloatArray:
    """[B] reward of a slot (SPEC section 8, paper Eq. 34).

    ``negative`` (default): ``-(zeta C + P) / K_active``; ``reciprocal``: ``zeta K_active / C -
    P / K_active``, i.e. the inverse of the mean cost per task. ``P`` sums the failure penalties.
    Both are per active task [choice] so that the scale does not grow with K; a slot without
    tasks gives 0.
    """
    n = outcome.n_active.astype(np.float64)
    safe_n = np.maximum(n, 1.0)
    zeta = sc.cost.reward_scale
    if sc.cost.reward_form == "negative":
        r = -(zeta * outcome.cost + outcome.penalty) / safe_n
    else:
        inv = np.where(outcome.cost > 0, zeta * n / np.maximum(outcome.cost, 1e-12), 0.0)
        r = inv - outcome.penalty / safe_n
    return np.where(n > 0, r, 0.0)


def reward_per_task(sc: Scenario, outcome: Outcome) -> FloatArray:
    """[B, K] each task's share of :func:`reward`; the shares sum to the reward exactly (up to
    rounding).

    ``negative``: ``-(zeta (w_T T_k + w_E E_k) + P_k) / K_active``, an exact decomposition since
    C and P are sums over tasks. ``reciprocal``: the inverse-cost term is not a sum over tasks, so
    it is split equally among the active tasks (plus each task's own ``-P_k / K_active``). Idle
    IoTDs get 0. Learners may use the shares to train per-task value heads (AD-SAC does).
    """
    n = outcome.n_active.astype(np.float64)[:, None]
    safe_n = np.maximum(n, 1.0)
    pen = task_penalty(sc, outcome.status)
    active = outcome.status != TaskStatus.IDLE.value
    zeta = sc.cost.reward_scale
    if sc.cost.reward_form == "negative":
        c = sc.cost.latency_weight_per_s * outcome.latency_s + \
            sc.cost.energy_weight_per_j * outcome.energy_j
        r = -(zeta * c + pen) / safe_n
    else:
        total = reward(sc, outcome)[:, None] + outcome.penalty[:, None] / safe_n[:, 0, None]
        r = np.where(active, total / safe_n, 0.0) - pen / safe_n
    return np.asarray(np.where(active, r, 0.0))


def info_dict(outcome: Outcome, next_state: SlotState, m: int) -> dict[str, NDArray[Any]]:
    """Every cost and failure component by name, as [B] arrays, plus the next action mask."""
    counts = outcome.status_counts.copy()  # [B, len(TaskStatus)]
    n_ex = counts[:, _EXECUTED].sum(axis=-1)
    n_uav = (outcome.executed & (outcome.server < m)).sum(axis=-1)
    # all eleven latency and energy sums over K in one einsum (see cost._shared_finish_s)
    sums = np.einsum("...j->...", np.stack([getattr(outcome, name) for name, _ in _SUMS]))
    sums[:_N_LATENCY] /= np.maximum(n_ex, 1)  # latencies are means over executed tasks
    info: dict[str, NDArray[Any]] = {
        "action_mask": next_state.mask,
        "cost": outcome.cost,
        "penalty": outcome.penalty,
        "latency_s": sums[0],
        "energy_j": sums[_N_LATENCY],
        "n_active": outcome.status.shape[-1] - counts[:, TaskStatus.IDLE.value],
        "n_executed": n_ex,
        "n_uav": n_uav,
        "n_satellite": n_ex - n_uav,
    }
    for key, column in _COUNTS:
        info[key] = counts[:, column]
    for i, (_, key) in enumerate(_SUMS):
        if i not in (0, _N_LATENCY):
            info[key] = sums[i]
    info["handover"] = next_state.handover
    info["visibility_s"] = next_state.visibility_s.copy()
    return info


_EXECUTED = slice(TaskStatus.OK.value, TaskStatus.VISIBILITY.value + 1)
_COUNTS = tuple((f"n_{s.name.lower()}", s.value) for s in TaskStatus if s != TaskStatus.IDLE)
_LATENCY_PARTS = ("upload_s", "inference_s", "download_s", "isl_s", "propagation_s")
_ENERGY_PARTS = ("upload", "inference", "download", "isl")
_N_LATENCY = 1 + len(_LATENCY_PARTS)
_SUMS = (("latency_s", "latency_s"), *((p, f"latency_{p}") for p in _LATENCY_PARTS),
         ("energy_j", "energy_j"), *((f"{p}_energy_j", f"energy_{p}_j") for p in _ENERGY_PARTS))
"""(Outcome field, info key) of every summed component: latencies first, then energies."""
