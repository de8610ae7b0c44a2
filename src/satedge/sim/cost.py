"""The pure cost function: latency, energy and failures of any action at a given state.

Nothing here steps the simulator or draws random numbers, so the same state can be evaluated under
many actions (the per-slot optimiser, the greedy heuristic and AD-SAC's unavailable-action samples
all do). Equations follow SPEC section 6 (paper Eq. 12-30, reconstructed); every symbol and unit is
in docs/model.md.

UAV branch (IoTD k served by UAV m):
    ``T = D / R_up + T_inf + s L / R_dn``,
    ``E = p_k D / R_up + P_dev T_inf_alone + P_uav s L / R_dn``.
Satellite branch (IoTD k, access satellite n, compute satellite n' at h ISL hops, path length l):
    ``T = D / R_up + 2 d / c + h (D + s L) / R_isl + 2 l / c + T_inf + s L / R_dn``,
    ``E = p_k D / R_up + P_isl h (D + s L) / R_isl + P_dev T_inf_alone + P_sat s L / R_dn``.
Processor sharing [choice]: tasks on one server in the same slot share its speed; with stand-alone
times t_i and a common start, task i finishes after ``sum_j min(t_i, t_j)``. Energy counts the
stand-alone compute time (the server's busy time is shared, not multiplied).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from satedge.sim import channels
from satedge.sim.constants import C_M_S
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState, TaskStatus
from satedge.sim.tasks import TaskBatch

__all__ = ["ServerTable", "action_cost", "feasibility_mask", "processor_sharing_s", "task_penalty"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class ServerTable:
    """Per-server constants, servers ordered M UAVs then N candidate satellites (arrays [S]).

    Both inference-cost models are linear in tokens, so a server is described by its seconds per
    input token and per output token (computed from :mod:`satedge.sim.zoo` once).
    """

    n_uavs: int
    accuracy: FloatArray
    s_per_input_token: FloatArray
    s_per_output_token: FloatArray
    vision_tokens: FloatArray
    compute_power_w: FloatArray
    model_names: tuple[str, ...]
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def is_uav(self) -> BoolArray:
        """[S] True for UAV servers."""
        return np.arange(self.accuracy.shape[0]) < self.n_uavs

    def alone_time_s(self, tasks: TaskBatch) -> FloatArray:
        """[B, K, S] stand-alone inference time of every task on every server (s), read-only."""
        return self.alone_by_server_s(tasks).transpose(1, 2, 0)

    def alone_by_server_s(self, tasks: TaskBatch) -> FloatArray:
        """[S, B, K] stand-alone inference times, server-major (contiguous), read-only.

        ``(L_text + n_img V_s) t_in,s + L_out t_out,s``. Server-major so that the operations run
        over B K contiguous elements rather than S per task. The last result is kept for the same
        ``tasks`` object: a slot's mask and its cost both need it (a TaskBatch is never modified
        in place; a changed one is a new object).
        """
        last = self._memo.get("alone_by_server_s")
        if last is not None and last[0] is tasks:
            return last[1]
        per_server = (a[:, None, None] for a in (self.vision_tokens, self.s_per_input_token,
                                                  self.s_per_output_token))
        vision, s_in, s_out = per_server
        in_tokens = tasks.text_tokens + tasks.n_requests.astype(np.float64) * vision
        alone = np.asarray(in_tokens * s_in + tasks.output_tokens * s_out)
        alone.setflags(write=False)
        self._memo["alone_by_server_s"] = (tasks, alone)
        return alone


def processor_sharing_s(alone_s: FloatArray, server: IntArray, executed: BoolArray) -> FloatArray:
    """Finish times under processor sharing with a common start.

    ``T_i = sum_{j on the server of i} min(t_i, t_j)`` (SPEC section 6) [choice].

    Args:
        alone_s: [B, K] stand-alone time of each task on its chosen server (s).
        server: [B, K] chosen server index.
        executed: [B, K] tasks that run (others neither wait nor delay anyone).
    Returns:
        [B, K] finish time (s); 0 where not executed.
    """
    return _shared_finish_s(np.where(executed, alone_s, 0.0), _same_server(server, executed))


def _same_server(server: IntArray, executed: BoolArray) -> BoolArray:
    """[B, K, K] True where tasks i and j run on the same server, and on the diagonal.

    A task that does not run gets a group of its own (-1 - k), so it shares with nobody; its
    diagonal entry only ever meets a zero stand-alone time.
    """
    group = np.where(executed, server, _OWN_GROUP[: server.shape[-1]])
    return group[..., :, None] == group[..., None, :]


def _shared_finish_s(alone_s: FloatArray, same: BoolArray) -> FloatArray:
    """Processor-sharing finish times (see :func:`processor_sharing_s`) from ``same`` [B, K, K]
    and stand-alone times that are 0 for tasks that do not run."""
    pair = np.minimum(alone_s[..., :, None], alone_s[..., None, :])
    pair *= same  # min(t_i, t_j) >= 0 where shared, 0 elsewhere
    # einsum sums a short last axis several times faster than np.sum at large B (it adds in
    # another order: last-bit differences) and, unlike a BLAS product, never starts threads.
    return np.asarray(np.einsum("...j->...", pair))


_OWN_GROUP = -1 - np.arange(1000)  # K <= 1000 (scenario limit)
_OWN_GROUP.setflags(write=False)


@functools.lru_cache(maxsize=8)
def _noise_psd_w_hz(noise_psd_dbm_hz: float) -> float:
    """Noise power spectral density N_0 (W/Hz) from dBm/Hz."""
    return float(channels.db_to_linear(noise_psd_dbm_hz - 30.0))


@functools.lru_cache(maxsize=32)
def _index_grids(b: int, k: int) -> tuple[IntArray, IntArray]:
    """Gather indices for [B, K] choices: ``env`` [B, 1] and the flat task index ``row`` [B, K]
    (``env * K + k``), so ``x.reshape(-1, n)[row, choice]`` picks x[b, k, choice[b, k]]."""
    env, row = np.arange(b)[:, None], np.arange(b * k).reshape(b, k)
    env.setflags(write=False)
    row.setflags(write=False)
    return env, row


def _satellite_fixed_s(sc: Scenario, slant_m: FloatArray, bits: FloatArray, hops: FloatArray,
                       path_m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ISL transfer time and propagation delay of the satellite branch, shapes broadcast."""
    isl = hops * bits / sc.satellite.isl_rate_bps
    prop = 2.0 * (slant_m + path_m) / C_M_S
    return isl, prop


def feasibility_mask(sc: Scenario, servers: ServerTable, st: SlotState) -> BoolArray:
    """[B, K, S] servers that can serve each task (SPEC section 7).

    UAV m: horizontal distance within the coverage radius and accuracy >= A_min. Candidate
    satellite n: a satellite is visible, accuracy >= A_min, and the task's lowest possible latency
    (alone on every link at p_max, alone on the server) ends before the access satellite sets.
    The visibility test uses that lower bound because the real latency depends on the other
    tasks' choices; a task that then outlives the window fails with ``VISIBILITY``.
    Rows of idle IoTDs are all True (the action is ignored); rows with no feasible server are all
    False and the task is dropped.
    """
    tasks, m = st.tasks, servers.n_uavs
    b, k = tasks.accuracy_min.shape
    ok = np.empty((servers.accuracy.shape[0], b, k), dtype=bool)  # server-major, as alone times
    np.less_equal(st.uav_horizontal_m.transpose(2, 0, 1), sc.uav.coverage_radius_m, out=ok[:m])
    window = np.where(st.access_sat >= 0, st.visibility_s, -np.inf)  # no satellite: nothing fits
    np.less_equal(_satellite_lower_bound_s(sc, servers, st), np.repeat(window, k).reshape(b, k),
                  out=ok[m:])
    ok &= servers.accuracy[:, None, None] >= tasks.accuracy_min
    ok |= ~tasks.active
    return np.ascontiguousarray(ok.transpose(1, 2, 0))


def _satellite_lower_bound_s(sc: Scenario, servers: ServerTable, st: SlotState) -> FloatArray:
    """[N, B, K] latency of each task alone on every link at p_max and alone on each candidate."""
    tasks = st.tasks
    noise = _noise_psd_w_hz(sc.channel.noise_psd_dbm_hz)
    b_up, b_dn = sc.satellite.uplink_bandwidth_hz, sc.satellite.downlink_bandwidth_hz
    up = channels.shannon_rate_bps(b_up, sc.iotd.power_max_w * st.sat_gain / (noise * b_up))
    dn = channels.shannon_rate_bps(b_dn, sc.satellite.tx_power_w * st.sat_gain / (noise * b_dn))
    out_bits = tasks.output_tokens * sc.tasks.bits_per_output_token
    links = tasks.upload_bits / np.maximum(up, 1e-300) + out_bits / np.maximum(dn, 1e-300)
    isl, prop = _satellite_fixed_s(sc, st.slant_range_m[:, None],
                                   tasks.upload_bits + out_bits,
                                   st.candidate_hops.T[:, :, None].astype(np.float64),
                                   st.candidate_path_m.T[:, :, None])
    isl += links  # in place, in the order (links + isl) + prop + alone
    isl += prop
    isl += servers.alone_by_server_s(tasks)[servers.n_uavs:]
    return isl


def action_cost(sc: Scenario, servers: ServerTable, st: SlotState, server: IntArray,
                power_w: FloatArray) -> Outcome:
    """Latency, energy, failures and the system cost of an action at a state (pure).

    Args:
        sc: the scenario.
        servers: the server table of the scenario.
        st: the state at the start of the slot (tasks, channels, geometry, mask).
        server: [B, K] chosen server per IoTD, 0..M-1 UAVs, M..M+N-1 candidate satellites.
        power_w: [B, K] IoTD transmit power (W), already inside [p_min, p_max].
    Returns:
        The :class:`~satedge.sim.state.Outcome` of the slot.
    """
    tasks = st.tasks
    server = np.asarray(server, dtype=np.int64)
    any_ok: BoolArray = np.asarray(st.mask.any(axis=-1))
    chosen_ok = st.mask.reshape(-1, st.mask.shape[-1])[_index_grids(*server.shape)[1], server]
    executed = tasks.active & any_ok & chosen_ok
    on_uav = executed & (server < servers.n_uavs)
    on_sat = executed & ~on_uav
    upload, inference, download, isl, prop, alone = _times_s(
        sc, servers, st, server, power_w, executed, on_uav, on_sat)
    latency = upload + inference  # in place below, same order as upload + ... + prop
    latency += download
    latency += isl
    latency += prop

    up_e = power_w * upload
    inf_e = servers.compute_power_w[server] * alone
    dn_e = np.where(on_uav, sc.uav.tx_power_w, sc.satellite.tx_power_w) * download
    isl_e = sc.satellite.isl_power_w * isl
    energy = up_e + inf_e
    energy += dn_e
    energy += isl_e

    status = _status(tasks.active, any_ok, executed, on_sat, latency, tasks.deadline_s,
                     st.visibility_s[:, None])
    # latency and energy are 0 for tasks that do not run, so they add nothing here
    cost = np.add.reduce(sc.cost.latency_weight_per_s * latency
                         + sc.cost.energy_weight_per_j * energy, axis=-1)
    return Outcome(server=server, status=status, latency_s=latency, energy_j=energy,
                   upload_s=upload, inference_s=inference, download_s=download, isl_s=isl,
                   propagation_s=prop, upload_energy_j=up_e, inference_energy_j=inf_e,
                   download_energy_j=dn_e, isl_energy_j=isl_e, cost=np.asarray(cost),
                   penalty=_penalty(sc, status))


def _times_s(sc: Scenario, servers: ServerTable, st: SlotState, server: IntArray,
             power_w: FloatArray, executed: BoolArray, on_uav: BoolArray,
             on_sat: BoolArray) -> tuple[FloatArray, ...]:
    """[B, K] upload, inference, download, ISL and propagation times and the stand-alone
    inference time of every task (s); all 0 for tasks that do not run."""
    tasks, m = st.tasks, servers.n_uavs
    env, row = _index_grids(*server.shape)
    same = _same_server(server, executed)
    rate_up, rate_dn = _link_rates_bps(sc, st, server, power_w, on_uav, on_sat, same, row)
    out_bits = tasks.output_tokens * sc.tasks.bits_per_output_token
    upload = np.divide(tasks.upload_bits, rate_up, out=np.zeros(server.shape), where=executed)
    download = np.divide(out_bits, rate_dn, out=np.zeros(server.shape), where=executed)
    alone_all = servers.alone_by_server_s(tasks)
    alone = np.where(executed, alone_all.reshape(alone_all.shape[0], -1)[server, row], 0.0)
    cand = np.maximum(server - m, 0)  # the candidate of satellite-bound tasks
    isl, prop = _satellite_fixed_s(sc, st.slant_range_m[:, None], tasks.upload_bits + out_bits,
                                   st.candidate_hops[env, cand].astype(np.float64),
                                   st.candidate_path_m[env, cand])
    return (upload, _shared_finish_s(alone, same), download, np.where(on_sat, isl, 0.0),
            np.where(on_sat, prop, 0.0), alone)


def _link_rates_bps(sc: Scenario, st: SlotState, server: IntArray, power_w: FloatArray,
                    on_uav: BoolArray, on_sat: BoolArray, same: BoolArray,
                    row: IntArray) -> tuple[FloatArray, FloatArray]:
    """[B, K] uplink and downlink rates of the executed tasks (others: any positive value).

    Bands are shared equally (:func:`~satedge.sim.channels.equal_share_bandwidth_hz`): a UAV's
    among the tasks it serves, the satellite up- and downlink among all satellite-bound tasks.
    The UAV uplink has inter-cell interference (:func:`~satedge.sim.channels.uav_uplink_sinr`).
    """
    noise = _noise_psd_w_hz(sc.channel.noise_psd_dbm_hz)
    m = st.uav_gain.shape[-1]
    n_same = np.einsum("...j->...", same, dtype=np.int64)  # tasks on the task's server
    bw_uav = sc.uav.bandwidth_hz / np.maximum(n_same, 1)  # UAV rows: B / n_m
    n_sat = np.maximum(on_sat.sum(axis=-1, keepdims=True), 1)
    bw_up_sat = sc.satellite.uplink_bandwidth_hz / n_sat  # [B, 1]
    bw_dn_sat = sc.satellite.downlink_bandwidth_hz / n_sat
    if on_uav.any():
        sinr_uav = channels.uav_uplink_sinr(power_w, st.uav_gain, np.where(on_uav, server, -1),
                                            bw_uav, noise)
    else:
        sinr_uav = np.zeros(server.shape)
    g_own = st.uav_gain.reshape(-1, m)[row, np.minimum(server, m - 1)]
    snr_uav_dn = sc.uav.tx_power_w * g_own / (noise * bw_uav)
    snr_sat_up = power_w * st.sat_gain / (noise * bw_up_sat)
    snr_sat_dn = sc.satellite.tx_power_w * st.sat_gain / (noise * bw_dn_sat)
    rate_up = channels.shannon_rate_bps(np.where(on_uav, bw_uav, bw_up_sat),
                                        np.where(on_uav, sinr_uav, snr_sat_up))
    rate_dn = channels.shannon_rate_bps(np.where(on_uav, bw_uav, bw_dn_sat),
                                        np.where(on_uav, snr_uav_dn, snr_sat_dn))
    return rate_up, rate_dn


def _status(active: BoolArray, any_ok: BoolArray, executed: BoolArray, on_sat: BoolArray,
            latency: FloatArray, deadline: FloatArray, window: FloatArray) -> IntArray:
    """[B, K] TaskStatus: why a task did not run (idle, dropped, infeasible) or how it ended."""
    ran = np.where(on_sat & (latency > window), _VISIBILITY,
                   np.where(latency > deadline, _DEADLINE, _OK))
    not_run = np.where(active, np.where(any_ok, _INFEASIBLE, _DROPPED), _IDLE)
    return np.where(executed, ran, not_run)


_OK, _DEADLINE, _VISIBILITY, _INFEASIBLE, _DROPPED, _IDLE = (
    int(s) for s in (TaskStatus.OK, TaskStatus.DEADLINE, TaskStatus.VISIBILITY,
                     TaskStatus.INFEASIBLE, TaskStatus.DROPPED, TaskStatus.IDLE))


def task_penalty(sc: Scenario, status: IntArray) -> FloatArray:
    """[B, K] each task's failure penalty from its status (0 for idle and on-time tasks)."""
    per_status = np.array([0.0, 0.0, sc.cost.deadline_penalty, sc.cost.visibility_penalty,
                           sc.cost.infeasible_penalty, sc.cost.drop_penalty])
    return np.asarray(per_status[status])


def _penalty(sc: Scenario, status: IntArray) -> FloatArray:
    return np.asarray(np.add.reduce(task_penalty(sc, status), axis=-1))
