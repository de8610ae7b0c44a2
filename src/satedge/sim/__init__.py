"""The physics and costs of the network: numpy, scipy and sgp4 only (never gymnasium or torch)."""

from __future__ import annotations

from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import PRESETS, Scenario, ScenarioError, resolve
from satedge.sim.state import Outcome, SlotState, TaskStatus

__all__ = ["PRESETS", "EdgeNetwork", "Outcome", "Scenario", "ScenarioError", "SlotState",
           "TaskStatus", "resolve"]
