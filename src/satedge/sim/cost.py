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

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from satedge.sim import channels
from satedge.sim.constants import C_M_S
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState, TaskStatus
from satedge.sim.tasks import TaskBatch

__all__ = ["ServerTable", "action_cost", "feasibility_mask", "processor_sharing_s"]

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

    @property
    def is_uav(self) -> BoolArray:
        """[S] True for UAV servers."""
        return np.arange(self.accuracy.shape[0]) < self.n_uavs

    def alone_time_s(self, tasks: TaskBatch) -> FloatArray:
        """[B, K, S] stand-alone inference time of every task on every server (s)."""
        in_tokens = (tasks.text_tokens[..., None]
                     + tasks.n_requests[..., None] * self.vision_tokens)
        return np.asarray(in_tokens * self.s_per_input_token
                          + tasks.output_tokens[..., None] * self.s_per_output_token)


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
    same = ((server[..., :, None] == server[..., None, :])
            & executed[..., :, None] & executed[..., None, :])
    pair = np.minimum(alone_s[..., :, None], alone_s[..., None, :])
    return np.asarray(np.sum(np.where(same, pair, 0.0), axis=-1))


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
    accurate = servers.accuracy >= tasks.accuracy_min[..., None]  # [B, K, S]
    covered = st.uav_horizontal_m <= sc.uav.coverage_radius_m  # [B, K, M]
    noise = channels.db_to_linear(sc.channel.noise_psd_dbm_hz - 30.0)
    up = channels.shannon_rate_bps(sc.satellite.uplink_bandwidth_hz, sc.iotd.power_max_w
                                   * st.sat_gain / (noise * sc.satellite.uplink_bandwidth_hz))
    dn = channels.shannon_rate_bps(sc.satellite.downlink_bandwidth_hz, sc.satellite.tx_power_w
                                   * st.sat_gain / (noise * sc.satellite.downlink_bandwidth_hz))
    out_bits = tasks.output_tokens * sc.tasks.bits_per_output_token
    links = tasks.upload_bits / np.maximum(up, 1e-300) + out_bits / np.maximum(dn, 1e-300)
    isl, prop = _satellite_fixed_s(sc, st.slant_range_m[:, None, None],
                                   (tasks.upload_bits + out_bits)[..., None],
                                   st.candidate_hops[:, None, :].astype(np.float64),
                                   st.candidate_path_m[:, None, :])
    alone = servers.alone_time_s(tasks)[..., m:]
    lower_bound = links[..., None] + isl + prop + alone  # [B, K, N]
    in_window = (lower_bound <= st.visibility_s[:, None, None]) & (st.access_sat >= 0)[:, None,
                                                                                       None]
    mask = accurate & np.concatenate([covered, in_window], axis=-1)
    return np.where(tasks.active[..., None], mask, True)


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
    tasks, m = st.tasks, servers.n_uavs
    server = np.asarray(server, dtype=np.int64)
    active = tasks.active
    any_ok = np.any(st.mask, axis=-1)
    chosen_ok = np.take_along_axis(st.mask, server[..., None], axis=-1)[..., 0]
    executed = active & any_ok & chosen_ok
    on_uav = executed & (server < m)
    on_sat = executed & (server >= m)
    n_servers = servers.accuracy.shape[0]

    noise_psd = channels.db_to_linear(sc.channel.noise_psd_dbm_hz - 30.0)
    uav_idx = np.where(on_uav, server, -1)
    bw_uav = channels.equal_share_bandwidth_hz(sc.uav.bandwidth_hz, uav_idx, m)
    sinr_uav = channels.uav_uplink_sinr(power_w, st.uav_gain, uav_idx, bw_uav, noise_psd)
    g_own = np.take_along_axis(st.uav_gain, np.clip(server, 0, m - 1)[..., None], axis=-1)[..., 0]
    bw_uav_safe = np.where(bw_uav > 0, bw_uav, 1.0)  # unused where the IoTD is not UAV-served
    snr_uav_dn = sc.uav.tx_power_w * g_own / (noise_psd * bw_uav_safe)
    sat_grp = np.where(on_sat, 0, -1)
    bw_up = channels.equal_share_bandwidth_hz(sc.satellite.uplink_bandwidth_hz, sat_grp, 1)
    bw_dn = channels.equal_share_bandwidth_hz(sc.satellite.downlink_bandwidth_hz, sat_grp, 1)
    safe_up, safe_dn = np.where(bw_up > 0, bw_up, 1.0), np.where(bw_dn > 0, bw_dn, 1.0)
    snr_sat_up = power_w * st.sat_gain / (noise_psd * safe_up)
    snr_sat_dn = sc.satellite.tx_power_w * st.sat_gain / (noise_psd * safe_dn)

    rate_up = np.where(on_uav, channels.shannon_rate_bps(bw_uav, sinr_uav),
                       channels.shannon_rate_bps(bw_up, snr_sat_up))
    rate_dn = np.where(on_uav, channels.shannon_rate_bps(bw_uav, snr_uav_dn),
                       channels.shannon_rate_bps(bw_dn, snr_sat_dn))
    out_bits = tasks.output_tokens * sc.tasks.bits_per_output_token
    upload = np.where(executed, tasks.upload_bits / np.where(executed, rate_up, 1.0), 0.0)
    download = np.where(executed, out_bits / np.where(executed, rate_dn, 1.0), 0.0)

    alone_all = servers.alone_time_s(tasks)
    alone = np.take_along_axis(alone_all, np.clip(server, 0, n_servers - 1)[..., None],
                               axis=-1)[..., 0]
    alone = np.where(executed, alone, 0.0)
    inference = processor_sharing_s(alone, server, executed)

    cand = np.clip(server - m, 0, st.candidate_hops.shape[-1] - 1)
    hops = np.take_along_axis(st.candidate_hops, cand, axis=-1).astype(np.float64)
    path = np.take_along_axis(st.candidate_path_m, cand, axis=-1)
    isl, prop = _satellite_fixed_s(sc, st.slant_range_m[:, None], tasks.upload_bits + out_bits,
                                   hops, path)
    isl = np.where(on_sat, isl, 0.0)
    prop = np.where(on_sat, prop, 0.0)
    latency = upload + inference + download + isl + prop

    up_e = power_w * upload
    inf_e = servers.compute_power_w[np.clip(server, 0, n_servers - 1)] * alone
    dn_e = np.where(on_uav, sc.uav.tx_power_w, sc.satellite.tx_power_w) * download
    isl_e = sc.satellite.isl_power_w * isl
    energy = up_e + inf_e + dn_e + isl_e

    status = _status(active, any_ok, chosen_ok, on_sat, latency, tasks.deadline_s,
                     st.visibility_s[:, None])
    cost = np.sum(np.where(executed, sc.cost.latency_weight_per_s * latency
                           + sc.cost.energy_weight_per_j * energy, 0.0), axis=-1)
    return Outcome(server=server, status=status, latency_s=latency, energy_j=energy,
                   upload_s=upload, inference_s=inference, download_s=download, isl_s=isl,
                   propagation_s=prop, upload_energy_j=up_e, inference_energy_j=inf_e,
                   download_energy_j=dn_e, isl_energy_j=isl_e, cost=np.asarray(cost),
                   penalty=_penalty(sc, status))


def _status(active: BoolArray, any_ok: BoolArray, chosen_ok: BoolArray, on_sat: BoolArray,
            latency: FloatArray, deadline: FloatArray, window: FloatArray) -> IntArray:
    status = np.full(active.shape, TaskStatus.OK, dtype=np.int64)
    status[latency > deadline] = TaskStatus.DEADLINE
    status[on_sat & (latency > window)] = TaskStatus.VISIBILITY
    status[~chosen_ok] = TaskStatus.INFEASIBLE
    status[~any_ok] = TaskStatus.DROPPED
    status[~active] = TaskStatus.IDLE
    return status


def _penalty(sc: Scenario, status: IntArray) -> FloatArray:
    per_status = np.array([0.0, 0.0, sc.cost.deadline_penalty, sc.cost.visibility_penalty,
                           sc.cost.infeasible_penalty, sc.cost.drop_penalty])
    return np.asarray(np.sum(per_status[status], axis=-1))
