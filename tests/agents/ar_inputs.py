"""Random inputs for the autoregressive discrete actor's tests: a small layout of K IoTDs and S
servers, observations in [-1, 1] and masks that always allow server 0."""

from __future__ import annotations

import torch

K, S, BLOCK, GLOBAL = 4, 3, 13, 9
OBS = K * BLOCK + GLOBAL


def random_inputs(rows: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(observations [rows, OBS], masks [rows, K, S]) from a generator seeded ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.rand(rows, OBS, generator=gen) * 2 - 1
    mask = torch.rand(rows, K, S, generator=gen) < 0.7
    mask[..., 0] = True
    return obs, mask
