"""The discretised action used by the all-discrete learners (AD-SAC-D, PPO, D3QN).

The hybrid action (a server per IoTD, a transmit power per IoTD, a horizontal move per UAV) becomes
``2K + M`` categorical heads: K server heads over the S = M + N servers, K power heads over
``power_levels`` evenly spaced levels of the [-1, 1] power range, and M UAV heads over
``uav_directions`` moves: stay, or a full-speed step in one of ``uav_directions - 1`` compass
directions (0 = east, counter-clockwise). A move is the largest step inside the unit box in that
direction, so diagonal moves reach the corner (speed is limited per axis in the environment).

Torch-free so that the Gymnasium wrappers can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DiscreteActionSpec"]


@dataclass(frozen=True)
class DiscreteActionSpec:
    """Heads, in order: K server heads (S each), K power heads (``power_levels`` each), M UAV
    heads (``uav_directions`` each)."""

    n_iotds: int
    n_uavs: int
    n_servers: int
    power_levels: int = 5
    uav_directions: int = 9

    def __post_init__(self) -> None:
        if self.power_levels < 2:
            raise ValueError(f"power_levels={self.power_levels} must be >= 2")
        if self.uav_directions < 1:
            raise ValueError(f"uav_directions={self.uav_directions} must be >= 1 (1 = stay only)")

    @property
    def n_heads(self) -> int:
        return 2 * self.n_iotds + self.n_uavs

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Number of choices of each head, in head order."""
        k, m = self.n_iotds, self.n_uavs
        return (self.n_servers,) * k + (self.power_levels,) * k + (self.uav_directions,) * m

    @property
    def max_head_size(self) -> int:
        return max(self.head_sizes)

    @property
    def continuous_dim(self) -> int:
        return self.n_iotds + 2 * self.n_uavs

    def power_values(self) -> NDArray[np.float64]:
        """[P] the power levels in the action's [-1, 1] units."""
        return np.linspace(-1.0, 1.0, self.power_levels)

    def uav_moves(self) -> NDArray[np.float64]:
        """[D, 2] the UAV moves in [-1, 1] units: row 0 stays, the rest are compass steps."""
        n = self.uav_directions - 1
        moves = np.zeros((self.uav_directions, 2))
        if n:
            ang = 2.0 * np.pi * np.arange(n) / n
            d = np.stack([np.cos(ang), np.sin(ang)], axis=-1)
            d[np.abs(d) < 1e-12] = 0.0
            moves[1:] = d / np.abs(d).max(axis=-1, keepdims=True)
        return moves

    def head_mask(self, server_mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """[B, 2K + M, max_head_size] availability of every choice of every head, from the
        environment's server mask [B, K, S] (power and UAV choices are always available; the
        padding beyond a head's size is not)."""
        b = server_mask.shape[0]
        out = np.zeros((b, self.n_heads, self.max_head_size), dtype=bool)
        k = self.n_iotds
        out[:, :k, : self.n_servers] = server_mask
        out[:, k : 2 * k, : self.power_levels] = True
        out[:, 2 * k :, : self.uav_directions] = True
        return out

    def split(
        self, heads: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """(server [B, K], power index [B, K], UAV move index [B, M]) from head choices."""
        k = self.n_iotds
        return heads[:, :k], heads[:, k : 2 * k], heads[:, 2 * k :]

    def to_continuous(
        self, power_idx: NDArray[np.int64], uav_idx: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """[B, K + 2M] the continuous action part (powers then UAV (x, y) moves) in [-1, 1]."""
        b = power_idx.shape[0]
        power = self.power_values()[power_idx]
        uav = self.uav_moves()[uav_idx].reshape(b, 2 * self.n_uavs)
        return np.concatenate([power, uav], axis=-1).astype(np.float32)

    def from_continuous(self, continuous: NDArray[np.floating]) -> NDArray[np.int64]:
        """[B, K + M] nearest power level and UAV move indices (powers then moves) for a
        continuous action part [B, K + 2M]."""
        k, m = self.n_iotds, self.n_uavs
        c = np.asarray(continuous, dtype=np.float64)
        p = np.abs(c[:, :k, None] - self.power_values()).argmin(-1)
        moves = c[:, k : k + 2 * m].reshape(-1, m, 1, 2)
        u = ((moves - self.uav_moves()) ** 2).sum(-1).argmin(-1)
        return np.concatenate([p, u], axis=-1).astype(np.int64)
