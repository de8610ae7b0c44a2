"""The simulated network: reset, the pure cost of an action, and the slot-to-slot dynamics.

:class:`EdgeNetwork` holds what never changes within a scenario (the constellation, the ISL
candidate table, the server table) and advances a :class:`~satedge.sim.state.SlotState` for a
batch of B scenarios in one array program. Randomness: every environment of the batch owns a
``numpy.random.Generator``; each slot consumes a fixed-size block of uniforms, standard normals and
standard-gamma variates from it, in a fixed order, so that B environments stepped together equal
the same B environments stepped one by one.

Order of events in a slot [choice]: the action's server choices and powers are evaluated at the
state observed at the start of the slot (positions, channels, geometry); the UAV moves it commands
take effect at the end of the slot, together with IoTD mobility, orbital motion, new tasks and new
fading. The mask the agent sees is therefore exact for the slot it acts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from satedge.sim import channels, isl, orbits, tle, visibility, zoo
from satedge.sim.cost import ServerTable, action_cost, feasibility_mask
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState
from satedge.sim.tasks import poisson_cdf_table, sample_tasks, uniforms_per_slot

__all__ = ["EdgeNetwork", "build_server_table"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Rngs = Sequence[np.random.Generator]
DAY_S = 86_400.0


def build_server_table(sc: Scenario) -> ServerTable:
    """Server constants for a scenario: M UAVs, then the N candidate slots (slot 0 = access)."""
    models = zoo.load_zoo(extra=sc.compute.extra_zoo_csv)  # shipped rows + the scenario's file
    hardware = zoo.load_hardware(extra=sc.compute.extra_hardware_csv)
    names = [sc.uav.model] * sc.n_uavs + [sc.satellite.access_model] + [
        sc.satellite.other_models[i % len(sc.satellite.other_models)]
        for i in range(sc.n_candidates - 1)]
    hw_names = [sc.uav.hardware] * sc.n_uavs + [sc.satellite.hardware] * sc.n_candidates
    s_in, s_out, acc = [], [], []
    for name, hw_name in zip(names, hw_names, strict=True):
        model, hw = models[name], hardware[hw_name]
        per = [float(zoo.inference_time_s(cast(Any, sc.compute.cost_model), model, hw, i, o))
               for i, o in ((1.0, 0.0), (0.0, 1.0))]
        s_in.append(per[0])
        s_out.append(per[1])
        acc.append(zoo.accuracy(model, cast(Any, sc.compute.accuracy_scale),
                                cast(Any, sc.compute.precision)))
    power = [sc.uav.compute_power_w] * sc.n_uavs + [sc.satellite.compute_power_w] * sc.n_candidates
    return ServerTable(
        n_uavs=sc.n_uavs, accuracy=np.array(acc), s_per_input_token=np.array(s_in),
        s_per_output_token=np.array(s_out),
        vision_tokens=np.array([float(models[n].vision_tokens) for n in names]),
        compute_power_w=np.array(power, dtype=np.float64), model_names=tuple(names))


class EdgeNetwork:
    """The network of one scenario, stepping a batch of environments.

    Args:
        scenario: a validated :class:`~satedge.sim.scenario.Scenario`.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = sc = scenario
        self.servers = build_server_table(sc)
        self.constellation = _constellation(sc)
        adjacency = isl.plus_grid_adjacency(self.constellation.planes,
                                            self.constellation.sats_per_plane,
                                            self.constellation.phasing)
        self.candidates = isl.candidate_table(adjacency, sc.n_candidates)
        lat, lon = np.radians(sc.area_lat_deg), np.radians(sc.area_lon_deg)
        self.ground_ecef_m = orbits.ground_ecef_m(lat, lon)
        self.elevation_min_rad = float(np.radians(sc.constellation.elevation_min_deg))
        self.shadowing = channels.SHADOWING[sc.satellite.shadowing]
        k, m, r = sc.n_iotds, sc.n_uavs, sc.tasks.max_requests
        t = sc.tasks
        self._task_params: dict[str, Any] = dict(
            image_bits=(t.image_bits_min, t.image_bits_max),
            text_tokens=(t.text_tokens_min, t.text_tokens_max),
            bits_per_text_token=t.bits_per_text_token, service_mix=t.service_mix,
            deadline_s=(t.deadline_min_s, t.deadline_max_s),
            accuracy_min=(t.accuracy_min, t.accuracy_max))
        self._rician_k = channels.db_to_linear(sc.channel.rician_k_db)
        self._n_task_u = uniforms_per_slot(k, r)
        self.slot_sizes = (self._n_task_u + 3 * k, 2 * k * m + 2 * k, k)
        self.reset_sizes = (1 + 5 * k + 2 * m,)

    # -- randomness ----------------------------------------------------------------------
    def _draw_slot(self, rngs: Rngs) -> tuple[FloatArray, FloatArray, FloatArray]:
        n_u, n_z, n_g = self.slot_sizes
        u, z, g = (np.empty((len(rngs), n)) for n in (n_u, n_z, n_g))
        shape = self.shadowing.m
        for rng, u_i, z_i, g_i in zip(rngs, u, z, g, strict=True):
            rng.random(out=u_i)
            rng.standard_normal(out=z_i)
            rng.standard_gamma(shape, out=g_i)
        return u, z, g

    # -- reset ---------------------------------------------------------------------------
    def reset(self, rngs: Rngs) -> SlotState:
        """Initial states: random time of day, positions and per-IoTD arrival rates."""
        sc, b = self.scenario, len(rngs)
        k, m = sc.n_iotds, sc.n_uavs
        u = np.empty((b, self.reset_sizes[0]))
        for i, rng in enumerate(rngs):
            rng.random(out=u[i])
        t0, rate_u, iotd_u, target_u, uav_u = np.split(u, np.cumsum([1, k, 2 * k, 2 * k]),
                                                       axis=1)
        lo, hi = sc.tasks.arrival_rate_min, sc.tasks.arrival_rate_max
        cdf = poisson_cdf_table(lo + (hi - lo) * rate_u, sc.tasks.max_requests)
        no_sat = np.full(b, -1, dtype=np.int64)
        return self._new_slot(
            rngs, slot=np.zeros(b, dtype=np.int64), time_s=t0[:, 0] * DAY_S,
            iotd_xy=iotd_u.reshape(b, k, 2) * sc.area_m,
            target_xy=target_u.reshape(b, k, 2) * sc.area_m,
            uav_xy=uav_u.reshape(b, m, 2) * sc.area_m, cdf=cdf, prev_access=no_sat,
            prev_set_time=np.zeros(b))

    # -- the pure cost function ----------------------------------------------------------
    def cost(self, state: SlotState, server: IntArray, power_w: FloatArray) -> Outcome:
        """Latency, energy and failures of an action at ``state`` without stepping (pure).

        Args:
            state: the slot's state.
            server: [B, K] server index per IoTD (0..M-1 UAVs, M.. candidate satellites).
            power_w: [B, K] transmit powers (W); clipped to [p_min, p_max] (constraint 31d).
        """
        lo, hi = self.scenario.iotd.power_min_w, self.scenario.iotd.power_max_w
        return action_cost(self.scenario, self.servers, state, server,
                           np.clip(power_w, lo, hi))

    # -- dynamics ------------------------------------------------------------------------
    def step(self, state: SlotState, server: IntArray, power_w: FloatArray,
             uav_move_m: FloatArray, rngs: Rngs) -> tuple[Outcome, SlotState]:
        """Evaluate the action at ``state``, then advance every environment by one slot.

        Args:
            uav_move_m: [B, M, 2] commanded UAV displacement (m); its length is capped at
                ``v_max * tau`` and the UAVs stay inside the area.
        """
        outcome = self.cost(state, server, power_w)
        return outcome, self.advance(state, uav_move_m, rngs)

    def advance(self, state: SlotState, uav_move_m: FloatArray, rngs: Rngs) -> SlotState:
        """The next slot's state after UAV moves, mobility, orbital motion and new draws."""
        sc = self.scenario
        return self._new_slot(
            rngs, slot=state.slot + 1, time_s=state.time_s + sc.slot_s, iotd_xy=state.iotd_xy_m,
            target_xy=state.iotd_target_xy_m, uav_xy=self.moved_uav_xy(state.uav_xy_m, uav_move_m),
            cdf=state.poisson_cdf,
            prev_access=state.access_sat, prev_set_time=state.set_time_s, moving=True)

    def moved_uav_xy(self, uav_xy_m: FloatArray, uav_move_m: FloatArray) -> FloatArray:
        """[..., M, 2] UAV positions after commanded moves (m): each move's length is capped at
        ``v_max * tau`` and the UAVs stay inside the area (what :meth:`advance` applies)."""
        sc = self.scenario
        step_max = sc.uav.speed_max_m_s * sc.slot_s
        move = np.asarray(uav_move_m, dtype=np.float64)
        norm = np.sqrt(np.add.reduce(move * move, axis=-1, keepdims=True))  # as np.linalg.norm
        move = move * np.minimum(1.0, step_max / np.maximum(norm, 1e-12))
        return _clip(uav_xy_m + move, 0.0, sc.area_m)

    def with_uav_positions(self, state: SlotState, uav_xy_m: FloatArray) -> SlotState:
        """``state`` with the UAVs at ``uav_xy_m`` [B, M, 2] (pure; a "what if" for the same
        slot): the IoTD-UAV distances, the large-scale part of the UAV channel gains and the
        feasibility mask follow the new positions, the small-scale fading and everything else is
        kept, so two positions are compared under the same random draws."""
        sc = self.scenario
        horizontal = channels.horizontal_distance_m(state.iotd_xy_m, uav_xy_m)
        gain = state.uav_gain * (self._uav_large_scale(horizontal)
                                 / self._uav_large_scale(state.uav_horizontal_m))
        moved = replace(state, uav_xy_m=np.asarray(uav_xy_m, dtype=np.float64),
                        uav_gain=gain, uav_horizontal_m=horizontal, mask=_NO_MASK)
        object.__setattr__(moved, "mask", feasibility_mask(sc, self.servers, moved))
        return moved

    def _new_slot(self, rngs: Rngs, *, slot: IntArray, time_s: FloatArray, iotd_xy: FloatArray,
                  target_xy: FloatArray, uav_xy: FloatArray, cdf: FloatArray,
                  prev_access: IntArray, prev_set_time: FloatArray,
                  moving: bool = False) -> SlotState:
        n_task_u, k = self._n_task_u, self.scenario.n_iotds
        u, z, g = self._draw_slot(rngs)
        if moving:
            iotd_xy, target_xy = self._mobility(iotd_xy, target_xy,
                                                u[:, n_task_u:n_task_u + 2 * k])
        tasks = sample_tasks(u, cdf, **self._task_params)  # the leading columns of u
        access, handover, set_time, slant, cand, hops, path = self._geometry(
            time_s, prev_access, prev_set_time)
        uav_gain, horizontal = self._uav_channel(iotd_xy, uav_xy, z)
        sat_gain = self._sat_channel(slant, g, u[:, n_task_u + 2 * k:], z)
        state = SlotState(
            slot=slot, time_s=time_s, iotd_xy_m=iotd_xy, iotd_target_xy_m=target_xy,
            uav_xy_m=uav_xy, poisson_cdf=cdf, tasks=tasks, uav_gain=uav_gain,
            uav_horizontal_m=horizontal, sat_gain=sat_gain, access_sat=access, handover=handover,
            set_time_s=set_time, slant_range_m=slant, candidate_sats=cand, candidate_hops=hops,
            candidate_path_m=path, mask=_NO_MASK)
        # The mask is a function of the rest of the state: fill it in before the state is handed
        # out (cheaper than constructing the frozen dataclass a second time).
        object.__setattr__(state, "mask", feasibility_mask(self.scenario, self.servers, state))
        return state

    def _mobility(self, xy: FloatArray, target: FloatArray,
                  u: FloatArray) -> tuple[FloatArray, FloatArray]:
        sc = self.scenario
        step = sc.iotd.speed_m_s * sc.slot_s
        u = u.reshape(xy.shape)
        if sc.iotd.mobility == "static":
            return xy, target
        if sc.iotd.mobility == "random_walk":
            angle = 2.0 * np.pi * u[..., 0]
            delta = np.empty_like(xy)
            np.cos(angle, out=delta[..., 0])
            np.sin(angle, out=delta[..., 1])
            delta *= step
            return _clip(xy + delta, 0.0, sc.area_m), target
        to_target = target - xy  # random waypoint
        dist = np.linalg.norm(to_target, axis=-1, keepdims=True)
        arrived = dist <= step
        moved = xy + to_target * (step / np.maximum(dist, 1e-12))
        new_xy = np.where(arrived, target, moved)
        return new_xy, np.where(arrived, u * sc.area_m, target)

    def _uav_channel(self, iotd_xy: FloatArray, uav_xy: FloatArray,
                     z: FloatArray) -> tuple[FloatArray, FloatArray]:
        sc = self.scenario
        b, k, m = iotd_xy.shape[0], sc.n_iotds, sc.n_uavs
        horizontal = channels.horizontal_distance_m(iotd_xy, uav_xy)
        large = self._uav_large_scale(horizontal)
        zr = z[:, : 2 * k * m].reshape(b, k, m, 2)
        small = channels.rician_power_gain(zr[..., 0], zr[..., 1], self._rician_k)
        return large * small, horizontal

    def _uav_large_scale(self, horizontal_m: FloatArray) -> FloatArray:
        """Large-scale IoTD-UAV power gain at a horizontal distance (the UAVs fly at a fixed
        altitude)."""
        sc = self.scenario
        dist = np.sqrt(horizontal_m**2 + sc.uav.altitude_m**2)
        return channels.ground_uav_large_scale_gain(dist, sc.channel.beta0_db,
                                                    sc.channel.path_loss_exponent)

    def _sat_channel(self, slant_m: FloatArray, g: FloatArray, u_phase: FloatArray,
                     z: FloatArray) -> FloatArray:
        sc = self.scenario
        k, m = sc.n_iotds, sc.n_uavs
        zs = z[:, 2 * k * m:].reshape(-1, k, 2)
        small = channels.shadowed_rician_power_gain(g, u_phase, zs[..., 0], zs[..., 1],
                                                    self.shadowing,
                                                    normalise=sc.satellite.normalise_fading)
        large = channels.ground_satellite_gain(np.maximum(slant_m, 1.0), sc.satellite.carrier_hz,
                                               sc.iotd.antenna_gain_dbi,
                                               sc.satellite.antenna_gain_dbi)
        return np.asarray(large[:, None] * small)

    def _geometry(self, t: FloatArray, prev: IntArray, prev_set: FloatArray) -> tuple[
            IntArray, NDArray[np.bool_], FloatArray, FloatArray, IntArray, IntArray, FloatArray]:
        """Access satellite (sticky until it sets), its set time, and the candidate paths.

        Positions are computed for the N candidates of the access satellite only: column 0 is
        the access satellite itself, and every path node is a candidate (``CandidateTable``).
        """
        table, had = self.candidates, prev >= 0
        nodes = self.constellation.position_of(table.sats[np.maximum(prev, 0)], t[:, None])
        keep = had.copy()
        if had.any():
            keep &= self._elevation_rad(nodes[:, :1])[:, 0] >= self.elevation_min_rad
        access, set_time = prev.copy(), prev_set.copy()
        if not keep.all():
            self._reacquire(np.flatnonzero(~keep), t, access, set_time, nodes)
        has = access >= 0
        stale = has & ~(set_time > t)  # new access satellites, or horizon reached
        if stale.any():
            idx = np.flatnonzero(stale)
            set_time[idx] = t[idx] + np.asarray(visibility.remaining_visibility_s(
                self.constellation, access[idx], self.ground_ecef_m, t[idx],
                self.elevation_min_rad))
        set_time = np.where(has, set_time, t)
        safe = np.maximum(access, 0)
        n = nodes.shape[1]
        path_nodes = nodes.reshape(-1, 3)[(n * np.arange(t.size))[:, None, None]
                                          + table.path_columns[safe]]  # [B, N, H+1, 3]
        hop_m = _norm(path_nodes[..., 1:, :] - path_nodes[..., :-1, :])  # [B, N, H]
        slant = _norm(nodes[:, 0] - self.ground_ecef_m)
        return (access, had & has & (access != prev), set_time, slant, table.sats[safe],
                self._hops[safe], np.add.reduce(hop_m, axis=-1))

    def _reacquire(self, need: IntArray, t: FloatArray, access: IntArray, set_time: FloatArray,
                   nodes: FloatArray) -> None:
        """Pick the highest visible satellite for the environments ``need`` (in place)."""
        el_all = self._elevation_rad(self.constellation.positions_ecef_m(t[need]))
        chosen, _, _ = visibility.access_satellite(el_all, np.full(need.size, -1),
                                                   self.elevation_min_rad)
        access[need], set_time[need] = chosen, np.nan
        nodes[need] = self.constellation.position_of(self.candidates.sats[np.maximum(chosen, 0)],
                                                     t[need, None])

    def _elevation_rad(self, sat_ecef_m: FloatArray) -> FloatArray:
        """Elevation [B, S] of satellites [B, S, 3] seen from the area centre (rad)."""
        return orbits.elevation_rad(sat_ecef_m, self.ground_ecef_m)

    @cached_property
    def _hops(self) -> IntArray:
        return self.candidates.hops.astype(np.int64)

    @cached_property
    def pass_duration_s(self) -> float:
        """Longest possible pass (overhead) at the shell's altitude; scales the window feature."""
        return float(orbits.pass_duration_s(self.elevation_min_rad,
                                            self.scenario.constellation.altitude_m))


_NO_MASK = np.zeros((0,), dtype=bool)


def _clip(x: FloatArray, lo: float, hi: float) -> FloatArray:
    """``np.clip`` of finite x in place, as two ufunc calls (no Python-level wrapper)."""
    return np.minimum(np.maximum(x, lo, out=x), hi, out=x)


def _norm(x: FloatArray) -> FloatArray:
    """Euclidean norm over the last axis, exactly as ``np.linalg.norm(x, axis=-1)`` computes it
    for real input, without its call overhead."""
    return np.sqrt(np.add.reduce(x * x, axis=-1))


def _constellation(sc: Scenario) -> orbits.WalkerDelta | tle.TleConstellation:
    cfg = sc.constellation
    if cfg.tle_file:
        path = Path(cfg.tle_file)
        if not path.is_file():
            raise ValueError(f"constellation.tle_file={cfg.tle_file!r} does not exist")
        return tle.TleConstellation.from_tle_lines(path.read_text().splitlines())
    return orbits.WalkerDelta(inclination_deg=cfg.inclination_deg, total=cfg.total,
                              planes=cfg.planes, phasing=cfg.phasing, altitude_m=cfg.altitude_m)
