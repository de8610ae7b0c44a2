"""The small protocol every learning agent implements, and the action conversion to the env.

Agents act on batches: ``act(obs [B, D], mask [B, K, S]) -> AgentAction`` with the discrete part
(server per IoTD) and the continuous part (powers then UAV moves, in [-1, 1]) kept apart; the
training loops turn that into the environment's Dict action with :func:`to_env_action`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["Agent", "AgentAction", "to_env_action"]


class AgentAction(NamedTuple):
    """A batch of hybrid actions: ``discrete`` int64 [B, K], ``continuous`` float32 [B, K + 2M]
    laid out as K powers then M (x, y) UAV moves, all in [-1, 1]."""

    discrete: NDArray[np.int64]
    continuous: NDArray[np.float32]


class Agent(Protocol):
    """What the training loops and ``satedge evaluate --policy DIR`` need from an agent."""

    def act(
        self, obs: NDArray[np.float32], mask: NDArray[np.bool_], deterministic: bool = False
    ) -> AgentAction:
        """Actions for a batch of observations and action masks."""
        ...

    def update(self, batch: Any) -> dict[str, float]:
        """One gradient update from a batch; returns metrics by their fixed names."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, optimisers, temperatures, duals, RNG."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        ...


def to_env_action(action: AgentAction, n_iotds: int, n_uavs: int) -> dict[str, NDArray[Any]]:
    """The environment's Dict action from an :class:`AgentAction`."""
    cont = np.asarray(action.continuous, dtype=np.float64)
    b = cont.shape[0]
    return {
        "offload": np.asarray(action.discrete, dtype=np.int64),
        "power": cont[:, :n_iotds],
        "uav": cont[:, n_iotds : n_iotds + 2 * n_uavs].reshape(b, n_uavs, 2),
    }
