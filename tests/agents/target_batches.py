"""Shared helpers for the tests of AD-SAC's simulated move, power and server targets: a reset
batch of environments, random feasible servers, a random replay batch carrying search targets, a
small agent, the gradient of an actor's output layer and the mode an agent fits to targets
alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState


def reset_state(sc: Scenario, seed: int = 1, n: int = 4) -> tuple[MllmOffloadVectorEnv, SlotState]:
    """``n`` environments of ``sc`` reset with ``seed``, and their state."""
    env = MllmOffloadVectorEnv(n, sc)
    env.reset(seed=seed)
    assert env.state is not None
    return env, env.state


def feasible_servers(state: SlotState, rng: np.random.Generator) -> np.ndarray:
    """[B, K] a random feasible server per IoTD."""
    return np.argmax(state.mask * rng.random(state.mask.shape), axis=-1)


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


def assert_copies_share(data: dict[str, np.ndarray], key: str, want: np.ndarray) -> None:
    """A buffer's state dict ``data`` after one ``collect`` of 4 transitions: the first 4 rows
    hold ``want`` under ``key``, and every copy after them (unavailable-action or counterfactual)
    holds its transition's, matched by the continuous action."""
    np.testing.assert_array_equal(data[key][:4], want)
    assert len(data[key]) > 4
    for row in range(4, len(data[key])):
        src = int(np.flatnonzero((data["action_c"][:4] == data["action_c"][row]).all(-1))[0])
        np.testing.assert_array_equal(data[key][row], want[src])


def check_stored_targets(buf: ReplayBuffer, key: str, want: np.ndarray,
                         fresh: Callable[[], ReplayBuffer], rng: np.random.Generator) -> None:
    """After one ``collect`` of 4 transitions (with unavailable-action copies) into ``buf``: the
    first 4 rows hold ``want`` under ``key``, every copy holds its transition's targets (matched
    by the continuous action), a sample carries them, ``fresh()`` restores them from the state
    dict, and adding a row without them raises."""
    data = buf.state_dict()
    assert_copies_share(data, key, want)
    assert getattr(buf.sample(8, rng), key) is not None
    restored = fresh()
    restored.load_state_dict(data)
    np.testing.assert_array_equal(restored.state_dict()[key], data[key])
    with pytest.raises(ValueError, match=key):
        buf.add(data["obs"][:1], data["action_d"][:1], data["action_c"][:1],
                data["reward"][:1], data["next_obs"][:1], data["terminated"][:1],
                data["mask"][:1], data["next_mask"][:1])
