"""Shared helpers for the tests of AD-SAC's simulated move and power values: a random replay
batch carrying search targets, a small agent, the gradient of an actor's output layer and the
mode an agent fits to targets alone."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBatch


def target_batch(n: int, obs_dim: int, k: int, s: int, a: int,
                 **targets: torch.Tensor) -> ReplayBatch:
    """``n`` random transitions (every server feasible, a fixed generator) with the given target
    fields (``move_targets=...``, ``power_targets=...``)."""
    g = torch.Generator().manual_seed(3)
    return ReplayBatch(
        obs=torch.randn(n, obs_dim, generator=g), action_d=torch.randint(0, s, (n, k), generator=g),
        action_c=torch.rand(n, a, generator=g) * 2 - 1, reward=-torch.rand(n, generator=g),
        next_obs=torch.randn(n, obs_dim, generator=g), done=torch.zeros(n),
        mask=torch.ones(n, k, s, dtype=torch.bool), next_mask=torch.ones(n, k, s, dtype=torch.bool),
        reward_k=-torch.rand(n, k, generator=g) / k, **targets)


def last_linear_grad(actor: nn.Module) -> torch.Tensor:
    """A copy of the gradient of ``actor``'s last linear layer's weight (rows: its outputs)."""
    layers = [mod for mod in actor.modules() if isinstance(mod, nn.Linear)]
    grad = layers[-1].weight.grad
    assert grad is not None
    return grad.clone()


def small_adsac(obs_dim: int, k: int, s: int, a: int, seed: int = 0, **cfg: object) -> AdSac:
    """A small AD-SAC (32 x 32 flat networks, 4 MPO samples) with ``cfg`` on top."""
    base: dict[str, object] = {"hidden": (32, 32), "mpo_samples": 4}
    return AdSac(obs_dim, k, s, a, AdSacConfig(**{**base, **cfg}), seed=seed)


def fit_mode(agent: AdSac, batch: ReplayBatch, updates: int = 300) -> np.ndarray:
    """The agent's deterministic continuous action on ``batch`` after ``updates`` updates on
    minibatches of 64 of its rows, with zero rewards (so only the targets can move the mode)."""
    n = batch.obs.shape[0]
    b = batch._replace(reward=torch.zeros(n), reward_k=torch.zeros(n, batch.action_d.shape[1]))
    rng = torch.Generator().manual_seed(0)
    for _ in range(updates):
        idx = torch.randint(0, n, (64,), generator=rng)
        agent.update(ReplayBatch(*(None if x is None else x[idx] for x in b)))
    return agent.act(b.obs.numpy(), b.mask.numpy(), deterministic=True).continuous
