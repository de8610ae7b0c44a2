"""Observation encoding, action decoding, reward and info for a batch of environments.

Shared by the single environment (:mod:`satedge.envs.offload`) and the native vector environment
(:mod:`satedge.envs.vector`), so that both compute exactly the same numbers.

Observation layout (one flat float32 vector, every feature in [-1, 1]; ``sq(x, r) = 2 x / (x + r)
- 1`` squashes a non-negative quantity so that ``x = r`` maps to 0):

=====================  =========  =====================================  ====================
block                  size       feature                                 encoding
=====================  =========  =====================================  ====================
per IoTD k (K rows)    1          task present this slot                  {0, 1}
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
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState, TaskStatus

__all__ = ["ActionDecoder", "ObservationEncoder", "info_dict", "reward"]

FloatArray = NDArray[np.float64]


def _sq(x: FloatArray, ref: float) -> FloatArray:
    return np.asarray(2.0 * x / (x + ref) - 1.0)


def observation_size(sc: Scenario) -> int:
    """Length of the flat observation vector."""
    k, m, n = sc.n_iotds, sc.n_uavs, sc.n_candidates
    return k * (8 + m) + 3 + 2 * m + 2 * (m + n) + 2 * n


class ObservationEncoder:
    """Encodes a batched :class:`SlotState` as [B, obs_dim] float32 (layout in the module doc)."""

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
        self.server_block = np.concatenate([
            2.0 * servers.accuracy - 1.0, _sq(1.0 / servers.s_per_output_token, 50.0)])
        self.space = spaces.Box(-1.0, 1.0, (observation_size(sc),), np.float32)

    def __call__(self, st: SlotState) -> NDArray[np.float32]:
        sc, t = self.sc, st.tasks
        b = st.batch_size
        area = sc.area_m
        per_iotd = np.concatenate([
            t.active[..., None].astype(np.float64),
            _sq(t.upload_bits, 4e6)[..., None],
            _sq(t.output_tokens, 128.0)[..., None],
            (2.0 * t.accuracy_min - 1.0)[..., None],
            _sq(t.deadline_s, 3.0)[..., None],
            2.0 * st.iotd_xy_m / area - 1.0,
            (channels.linear_to_db(np.maximum(st.uav_gain, 1e-30)) - self.uav_ref_db) / 20.0,
            ((channels.linear_to_db(np.maximum(st.sat_gain, 1e-30)) - self.sat_ref_db)
             / 10.0)[..., None],
        ], axis=-1).reshape(b, -1)
        glob = np.stack([2.0 * st.visibility_s / self.net.pass_duration_s - 1.0,
                         (st.access_sat >= 0).astype(np.float64),
                         st.slot / sc.episode_slots], axis=-1)
        cand = np.concatenate([_sq(st.candidate_hops.astype(np.float64), 2.0),
                               _sq(st.candidate_path_m, 2e6)], axis=-1)
        obs = np.concatenate([per_iotd, glob, (2.0 * st.uav_xy_m / area - 1.0).reshape(b, -1),
                              np.broadcast_to(self.server_block, (b, self.server_block.size)),
                              cand], axis=-1)
        return np.clip(obs, -1.0, 1.0).astype(np.float32)


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
        if not isinstance(action, Mapping) or set(action) != {"offload", "power", "uav"}:
            keys = sorted(action) if isinstance(action, Mapping) else type(action).__name__
            raise ValueError(f"action must be a dict with keys offload, power, uav; got {keys}")
        shapes = {"offload": (batch, sc.n_iotds), "power": (batch, sc.n_iotds),
                  "uav": (batch, sc.n_uavs, 2)}
        arrays = {}
        for key, shape in shapes.items():
            arr = np.asarray(action[key])
            if arr.size != int(np.prod(shape)):
                raise ValueError(f"action[{key!r}] has shape {arr.shape}; expected "
                                 f"{shape[1:] if batch == 1 else shape}")
            arr = arr.reshape(shape)
            if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
                raise ValueError(f"action[{key!r}] must be finite numbers; got {arr.ravel()[:8]}")
            arrays[key] = arr
        server = arrays["offload"]
        if not np.all(server == np.round(server)) or server.min() < 0 or \
                server.max() >= sc.n_servers:
            raise ValueError(f"action['offload'] must hold integers in [0, {sc.n_servers - 1}]; "
                             f"got {server.ravel()[:8]}")
        lo, hi = sc.iotd.power_min_w, sc.iotd.power_max_w
        power = lo + (np.clip(arrays["power"].astype(np.float64), -1.0, 1.0) + 1.0) / 2.0 * (
            hi - lo)
        move = np.clip(arrays["uav"].astype(np.float64), -1.0, 1.0) * (
            sc.uav.speed_max_m_s * sc.slot_s)
        return server.astype(np.int64), power, move


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


def info_dict(outcome: Outcome, next_state: SlotState, m: int) -> dict[str, NDArray[Any]]:
    """Every cost and failure component by name, as [B] arrays, plus the next action mask."""
    ex = outcome.executed
    n_ex = np.sum(ex, axis=-1)
    safe = np.maximum(n_ex, 1)
    on_uav = ex & (outcome.server < m)
    info: dict[str, NDArray[Any]] = {
        "action_mask": next_state.mask,
        "cost": outcome.cost,
        "penalty": outcome.penalty,
        "latency_s": np.sum(outcome.latency_s, axis=-1) / safe,
        "energy_j": np.sum(outcome.energy_j, axis=-1),
        "n_active": outcome.n_active,
        "n_executed": n_ex,
        "n_uav": np.sum(on_uav, axis=-1),
        "n_satellite": np.sum(ex & ~on_uav, axis=-1),
    }
    for status in TaskStatus:
        if status not in (TaskStatus.IDLE,):
            info[f"n_{status.name.lower()}"] = outcome.count(status)
    for part in ("upload_s", "inference_s", "download_s", "isl_s", "propagation_s"):
        info[f"latency_{part}"] = np.sum(getattr(outcome, part), axis=-1) / safe
    for part in ("upload", "inference", "download", "isl"):
        info[f"energy_{part}_j"] = np.sum(getattr(outcome, f"{part}_energy_j"), axis=-1)
    info["handover"] = next_state.handover
    info["visibility_s"] = next_state.visibility_s
    return info
