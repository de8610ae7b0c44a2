"""The simulator's state of one slot and the outcome of an action, for a batch of B scenarios.

Both are frozen containers of numpy arrays with a leading batch dimension; the functions in
:mod:`satedge.sim.network` and :mod:`satedge.sim.cost` take them and return new ones (no mutation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from satedge.sim.tasks import TaskBatch

__all__ = ["Outcome", "SlotState", "TaskStatus"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class TaskStatus(IntEnum):
    """What happened to an IoTD's task in a slot (SPEC section 7)."""

    IDLE = 0
    """No request this slot; the IoTD's action is ignored."""
    OK = 1
    """Served within its deadline."""
    DEADLINE = 2
    """Served, but its latency exceeded T_max (constraint 31c)."""
    VISIBILITY = 3
    """Sent to a satellite whose access satellite set before the result came back."""
    INFEASIBLE = 4
    """Sent to a server the mask rules out (accuracy, coverage or visibility); not executed."""
    DROPPED = 5
    """No server was feasible at all; not executed."""


@dataclass(frozen=True)
class SlotState:
    """Everything the simulator knows at the start of a slot. Shapes: B envs, K IoTDs, M UAVs,
    N candidate satellites, S = M + N servers, R the request cap.

    Attributes:
        slot: [B] slot index within the episode.
        time_s: [B] seconds since the constellation epoch.
        iotd_xy_m: [B, K, 2] IoTD positions in the area (m, origin at a corner).
        iotd_target_xy_m: [B, K, 2] waypoints (random-waypoint mobility only).
        uav_xy_m: [B, M, 2] UAV positions (m).
        poisson_cdf: [B, K, R] per-IoTD arrival CDF (rates drawn at reset).
        tasks: this slot's tasks.
        uav_gain: [B, K, M] linear power gain IoTD -> UAV, large-scale times Rician fading.
        uav_horizontal_m: [B, K, M] horizontal IoTD-UAV distance (m).
        sat_gain: [B, K] linear power gain IoTD <-> access satellite: antennas, FSPL, fading.
        access_sat: [B] index of the access satellite in the constellation (-1: none visible).
        handover: [B] True if the access satellite changed at the start of this slot.
        set_time_s: [B] time at which the access satellite drops below the minimum elevation.
        slant_range_m: [B] distance area centre -> access satellite (m).
        candidate_sats: [B, N] constellation indices of the candidate compute satellites.
        candidate_hops: [B, N] ISL hops from the access satellite.
        candidate_path_m: [B, N] ISL path length (m).
        mask: [B, K, S] feasible servers (rows of idle IoTDs are all True; rows of dropped
            tasks all False).
    """

    slot: IntArray
    time_s: FloatArray
    iotd_xy_m: FloatArray
    iotd_target_xy_m: FloatArray
    uav_xy_m: FloatArray
    poisson_cdf: FloatArray
    tasks: TaskBatch
    uav_gain: FloatArray
    uav_horizontal_m: FloatArray
    sat_gain: FloatArray
    access_sat: IntArray
    handover: BoolArray
    set_time_s: FloatArray
    slant_range_m: FloatArray
    candidate_sats: IntArray
    candidate_hops: IntArray
    candidate_path_m: FloatArray
    mask: BoolArray

    @property
    def batch_size(self) -> int:
        """Number of scenarios B in the batch."""
        return int(self.slot.shape[0])

    @cached_property
    def visibility_s(self) -> FloatArray:
        """[B] remaining visibility window of the access satellite (s); 0 when none.

        Computed once per state and read-only: the mask, the cost, the observation and the info
        all read it.
        """
        remaining = np.maximum(self.set_time_s - self.time_s, 0.0)
        return _readonly(np.where(self.access_sat >= 0, remaining, 0.0))

    def take(self, index: IntArray | slice) -> SlotState:
        """The sub-batch at ``index`` (used to compare batched with single environments)."""
        fields = {name: getattr(self, name)[index] for name in self.__dataclass_fields__
                  if name != "tasks"}
        tasks = TaskBatch(**{name: getattr(self.tasks, name)[index]
                             for name in TaskBatch.__dataclass_fields__})
        return SlotState(tasks=tasks, **fields)

    @staticmethod
    def concat(states: Sequence[SlotState]) -> SlotState:
        """The states' batches one after another (the inverse of :meth:`take` on blocks)."""
        fields = {name: np.concatenate([getattr(s, name) for s in states])
                  for name in SlotState.__dataclass_fields__ if name != "tasks"}
        tasks = TaskBatch(**{name: np.concatenate([getattr(s.tasks, name) for s in states])
                             for name in TaskBatch.__dataclass_fields__})
        return SlotState(tasks=tasks, **fields)


@dataclass(frozen=True)
class Outcome:
    """Latency, energy and failures of an action in one slot (all per task arrays [B, K]).

    Latency and energy are zero for tasks that were not executed (idle, infeasible, dropped).
    Components add up: ``latency_s = upload_s + inference_s + download_s + isl_s +
    propagation_s`` and ``energy_j = upload_energy_j + inference_energy_j +
    download_energy_j + isl_energy_j``.
    """

    server: IntArray
    status: IntArray
    latency_s: FloatArray
    energy_j: FloatArray
    upload_s: FloatArray
    inference_s: FloatArray
    download_s: FloatArray
    isl_s: FloatArray
    propagation_s: FloatArray
    upload_energy_j: FloatArray
    inference_energy_j: FloatArray
    download_energy_j: FloatArray
    isl_energy_j: FloatArray
    cost: FloatArray
    """[B] system cost C = sum_k (w_T T_k + w_E E_k) over executed tasks."""
    penalty: FloatArray
    """[B] sum of the per-task failure penalties."""

    def count(self, status: TaskStatus) -> IntArray:
        """[B] number of tasks with the given status."""
        return self.status_counts[:, int(status)]

    @cached_property
    def status_counts(self) -> IntArray:
        """[B, len(TaskStatus)] number of tasks with each status (one pass over ``status``;
        computed once, read-only)."""
        n_status = len(TaskStatus)
        b = self.status.shape[0]
        key = self.status + n_status * np.arange(b)[:, None]
        counts = np.bincount(key.reshape(-1), minlength=b * n_status).reshape(b, n_status)
        return _readonly(counts)

    @cached_property
    def n_active(self) -> IntArray:
        """[B] tasks this slot (all statuses but IDLE); computed once, read-only."""
        return _readonly(self.status.shape[-1] - self.status_counts[:, TaskStatus.IDLE.value])

    @property
    def executed(self) -> BoolArray:
        """[B, K] tasks that ran on a server (OK, DEADLINE or VISIBILITY)."""
        return (self.status >= TaskStatus.OK.value) & (self.status <= TaskStatus.VISIBILITY.value)


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a
