"""A native batched vector environment: B scenarios stepped in one array program.

``MllmOffloadVectorEnv`` follows Gymnasium's :class:`~gymnasium.vector.VectorEnv` API
(``gymnasium.make_vec("satedge/MllmOffload-v0", num_envs=B,
vectorization_mode="vector_entry_point")`` or direct construction).

Autoreset mode: ``SAME_STEP``. All sub-environments start together and are truncated after the
same number of slots, so they end on the same step; that step returns the first observation of
the next episode, with the last observation of the ended one in ``infos["final_obs"]`` (marked by
``infos["_final_obs"]``) and its info in ``infos["final_info"]``. Rewards and infos of that step
belong to the ended episode.

Seeding: ``reset(seed=[s_0, ..., s_{B-1}])`` seeds sub-environment i exactly like
``MllmOffloadEnv.reset(seed=s_i)``, so the batch reproduces B single environments. An integer
seed ``s`` is expanded to B independent seeds with :func:`spawn_seeds` (``numpy``'s
``SeedSequence``; never ``s + i``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from satedge.envs.encoding import (
    ActionDecoder,
    ObservationEncoder,
    info_dict,
    reward,
    reward_per_task,
)
from satedge.envs.offload import make_scenario
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import Outcome, SlotState

__all__ = ["MllmOffloadVectorEnv", "spawn_seeds"]


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds derived from ``seed`` through ``numpy.random.SeedSequence``.

    The i-th single environment seeded with ``spawn_seeds(seed, n)[i]`` equals sub-environment i
    of a vector environment reset with ``seed``.
    """
    state = np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64)
    return [int(s) for s in state]


class MllmOffloadVectorEnv(VectorEnv[NDArray[np.float32], dict[str, Any], NDArray[Any]]):
    """B copies of :class:`~satedge.envs.offload.MllmOffloadEnv` stepped as one batch.

    Args:
        num_envs: the batch size B.
        scenario, preset, overrides: as for the single environment.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int, scenario: Scenario | None = None, *,
                 preset: str = "default", overrides: Sequence[str] | Mapping[str, Any] = (),
                 render_mode: str | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be at least 1")
        if render_mode is not None:
            raise ValueError("the vector environment does not render; render a single env")
        self.num_envs = num_envs
        self.scenario = make_scenario(scenario, preset, overrides)
        self.network = EdgeNetwork(self.scenario)
        self._encode = ObservationEncoder(self.network)
        self._decode = ActionDecoder(self.scenario)
        self.single_observation_space = self._encode.space
        self.single_action_space = self._decode.space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        self.rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(num_envs)]
        self.state: SlotState | None = None
        self.last_outcome: Outcome | None = None

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[NDArray[np.float32],
                                                              dict[str, Any]]:
        if seed is not None:
            seeds = spawn_seeds(seed, self.num_envs) if isinstance(seed, (int, np.integer)) \
                else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
            self.rngs = [seeding.np_random(int(s))[0] for s in seeds]
        self.state = self.network.reset(self.rngs)
        self.last_outcome = None
        return self._encode(self.state), {"action_mask": self.state.mask}

    def decode(self, actions: dict[str, Any]) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                                       NDArray[np.float64]]:
        """Validate a batched Dict action and return (server, power_w, uav_move_m)."""
        return self._decode(actions, self.num_envs)

    def observe(self) -> NDArray[np.float32]:
        """The observation of the current state (e.g. after restoring ``state``)."""
        if self.state is None:
            raise RuntimeError("call reset() before observe()")
        return self._encode(self.state)

    def step(self, actions: dict[str, Any]) -> tuple[NDArray[np.float32], NDArray[np.float64],
                                                     NDArray[np.bool_], NDArray[np.bool_],
                                                     dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        server, power, move = self._decode(actions, self.num_envs)
        outcome, self.state = self.network.step(self.state, server, power, move, self.rngs)
        self.last_outcome = outcome
        rewards = reward(self.scenario, outcome)
        infos: dict[str, Any] = info_dict(outcome, self.state, self.scenario.n_uavs)
        infos["reward_per_task"] = reward_per_task(self.scenario, outcome)
        obs = self._encode(self.state)
        truncated = self.state.slot >= self.scenario.episode_slots
        terminated = np.zeros(self.num_envs, dtype=bool)
        if np.any(truncated):
            infos = {**infos, "final_obs": obs, "_final_obs": truncated.copy(),
                     "final_info": dict(infos)}
            obs, reset_info = self.reset()
            infos["action_mask"] = reset_info["action_mask"]
        return obs, rewards, terminated, truncated, infos
