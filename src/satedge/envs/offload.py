"""The single-environment Gymnasium interface: ``gymnasium.make("satedge/MllmOffload-v0")``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from satedge.envs.encoding import (
    ActionDecoder,
    ObservationEncoder,
    info_dict,
    reward,
    reward_per_task,
)
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario, parse_override, resolve
from satedge.sim.state import Outcome, SlotState

__all__ = ["MllmOffloadEnv", "make_scenario"]


def make_scenario(scenario: Scenario | None, preset: str,
                  overrides: Sequence[str] | Mapping[str, Any]) -> Scenario:
    """The scenario object from either an explicit Scenario or a preset, plus overrides."""
    if scenario is not None:
        items = (dict(overrides) if isinstance(overrides, Mapping)
                 else dict(map(parse_override, overrides)))
        return scenario.replace(items) if items else scenario
    return resolve(preset, overrides)


class MllmOffloadEnv(gym.Env[NDArray[np.float32], dict[str, Any]]):
    """Accuracy-aware MLLM task offloading in a UAV-assisted LEO-satellite edge network.

    ## Description
    K IoT devices in a square area produce multimodal-LLM requests every slot (tau = 3 s). Each
    task is offloaded to one of M UAVs (small MLLM, Jetson Orin NX) or to one of N candidate LEO
    satellites reached through the access satellite and inter-satellite links (larger MLLMs,
    Jetson AGX Orin). The agent also sets every IoTD's transmit power and moves the UAVs. The
    system cost is the weighted sum of latency and energy (SPEC sections 1-8; docs/model.md).

    ## Action Space
    ``Dict(offload=MultiDiscrete([M + N] * K), power=Box(-1, 1, (K,)), uav=Box(-1, 1, (M, 2)))``

    ==========  ===========  ==========================================================  ====
    key         shape        meaning                                                     unit
    ==========  ===========  ==========================================================  ====
    offload     (K,)         server per IoTD: 0..M-1 UAV m, M..M+N-1 candidate satellite  -
                             (M = the access satellite, the rest its ISL neighbours)
    power       (K,)         transmit power, -1 -> p_min, +1 -> p_max (linear)            W
    uav         (M, 2)       UAV move, a * v_max * tau per axis, length capped at          m
                             v_max * tau, applied at the end of the slot
    ==========  ===========  ==========================================================  ====

    ``info["action_mask"]`` ([K, M + N] bool) marks the servers that can serve each task
    (accuracy, UAV coverage, satellite visibility). Choosing a masked server fails the task with
    a penalty; the environment never repairs an action.

    ## Observation Space
    ``Box(-1, 1, (K (10 + M) + 3 + 2 M + 2 (M + N) + 2 N,), float32)``; the layout and scaling of
    every feature, with units, is the table in :mod:`satedge.envs.encoding`.

    ## Rewards
    ``-(zeta C + P) / K_active`` with ``C = sum_k w_T T_k + w_E E_k`` over executed tasks and P
    the failure penalties (``cost.reward_form=reciprocal``: ``zeta K_active / C - P /
    K_active``). ``info`` carries every component by name: ``cost``, ``penalty``, ``latency_s``
    (mean over executed tasks), ``energy_j`` (slot total), ``latency_*`` / ``energy_*``
    breakdowns, ``reward_per_task`` ([K]: each task's share of the reward), ``n_ok``,
    ``n_deadline``, ``n_visibility``, ``n_infeasible``, ``n_dropped``, ``n_uav``,
    ``n_satellite``.

    ## Starting State
    A random time of day (so a random point of the constellation's motion), IoTDs and UAVs
    uniform over the area, per-IoTD arrival rates uniform in [lambda_min, lambda_max].

    ## Episode End
    No termination; truncation after ``episode_slots`` slots (default 100).

    ## Arguments
    ``scenario`` (a :class:`~satedge.sim.scenario.Scenario`) or ``preset`` (name) plus
    ``overrides`` (``["key=value", ...]`` or a dict of dotted keys), and ``render_mode``
    (``"rgb_array"`` or None).

    ## Version History
    * v0: initial version (before the first release, the per-IoTD request count and prompt
      text tokens were added to the observation: the inference time depends on both).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, scenario: Scenario | None = None, *, preset: str = "default",
                 overrides: Sequence[str] | Mapping[str, Any] = (),
                 render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use 'rgb_array'")
        self.scenario = make_scenario(scenario, preset, overrides)
        self.network = EdgeNetwork(self.scenario)
        self._encode = ObservationEncoder(self.network)
        self._decode = ActionDecoder(self.scenario)
        self.observation_space = self._encode.space
        self.action_space = self._decode.space
        self.render_mode = render_mode
        self.state: SlotState | None = None
        self.last_outcome: Outcome | None = None
        self._last_state: SlotState | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.state = self.network.reset([self.np_random])
        self.last_outcome = self._last_state = None
        return self._encode(self.state)[0], {"action_mask": self.state.mask[0]}

    def step(self, action: dict[str, Any]) -> tuple[NDArray[np.float32], float, bool, bool,
                                                     dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        server, power, move = self._decode(action, 1)
        prev = self.state
        outcome, self.state = self.network.step(prev, server, power, move, [self.np_random])
        self.last_outcome, self._last_state = outcome, prev
        r = float(reward(self.scenario, outcome)[0])
        info = {key: value[0] if key == "action_mask" else value.item()
                for key, value in info_dict(outcome, self.state, self.scenario.n_uavs).items()}
        info["reward_per_task"] = reward_per_task(self.scenario, outcome)[0]
        truncated = bool(self.state.slot[0] >= self.scenario.episode_slots)
        return self._encode(self.state)[0], r, False, truncated, info

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode is None:
            return None
        from satedge.envs.render import render_frame

        if self.state is None:
            raise RuntimeError("call reset() before render()")
        if self.last_outcome is not None and self._last_state is not None:
            return render_frame(self.network, self._last_state, self.last_outcome)
        return render_frame(self.network, self.state, None)
