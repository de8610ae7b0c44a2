"""The loss terms and network initialisation shared by PPO and Hybrid-PPO.

Clipped surrogate (Schulman et al. 2017, "Proximal policy optimization algorithms", Eq. 7),
clipped value loss (the ``clip_vloss`` of the OpenAI baselines ppo2 and CleanRL), the
``(r - 1) - log r`` KL estimator (Schulman 2020, "Approximating KL divergence", k3), per-minibatch
advantage normalisation and orthogonal initialisation (Andrychowicz et al. 2021, "What matters in
on-policy RL", Sec. 3.2; Engstrom et al. 2020, "Implementation matters in deep policy gradients").

Shapes: ``B`` samples of a minibatch; every loss is a scalar mean over B.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["approx_kl", "clipped_surrogate", "clipped_value_loss", "normalise_advantages",
           "orthogonal_mlp"]


def orthogonal_mlp(in_dim: int, out_dim: int, hidden: Sequence[int], out_gain: float,
                   generator: torch.Generator) -> nn.Sequential:
    """``Linear -> tanh`` per hidden layer, then a linear output; orthogonal weights (gain
    ``sqrt(2)`` in hidden layers, ``out_gain`` at the output: 0.01 for policy heads, so that the
    first policy is near uniform / zero-mean, 1.0 for the value head) and zero biases, as in
    SB3's ``ActorCriticPolicy(ortho_init=True)`` and CleanRL's ``layer_init``.

    All weights come from ``generator`` (the global torch RNG is not used for the result).
    """
    if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden):
        raise ValueError(f"layer sizes must be positive; got in_dim={in_dim}, "
                         f"hidden={tuple(hidden)}, out_dim={out_dim}")
    layers: list[nn.Module] = []
    sizes = [in_dim, *hidden]
    for a, b in itertools.pairwise(sizes):
        layers += [_ortho_linear(a, b, math.sqrt(2.0), generator), nn.Tanh()]
    layers.append(_ortho_linear(sizes[-1], out_dim, out_gain, generator))
    return nn.Sequential(*layers)


def _ortho_linear(a: int, b: int, gain: float, generator: torch.Generator) -> nn.Linear:
    layer = nn.Linear(a, b)
    with torch.no_grad():
        nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
        layer.bias.zero_()
    return layer


def normalise_advantages(adv: Tensor, eps: float = 1e-8) -> Tensor:
    """``(A - mean A) / (std A + eps)`` over the minibatch (SB3 ``normalize_advantage``); a
    minibatch of one sample is only centred (its std is undefined)."""
    if adv.numel() < 2:
        return adv - adv.mean()
    return (adv - adv.mean()) / (adv.std() + eps)


def clipped_surrogate(log_ratio: Tensor, adv: Tensor, clip: float) -> tuple[Tensor, Tensor]:
    """PPO's clipped policy loss ``-mean(min(r A, clip(r, 1 - eps, 1 + eps) A))`` with
    ``r = exp(log_ratio)`` (Schulman et al. 2017, Eq. 7).

    Args:
        log_ratio: [B] ``log pi(a|s) - log pi_old(a|s)`` of the sampled actions.
        adv: [B] advantages (already normalised if wanted).
        clip: ``eps`` in (0, 1).

    Returns:
        ``(loss, clip_fraction)``: the scalar loss and the fraction of samples with
        ``|r - 1| > eps`` (no gradient).
    """
    if not 0.0 < clip < 1.0:
        raise ValueError(f"clip={clip} must lie in (0, 1)")
    ratio = log_ratio.exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * adv
    loss = -torch.min(unclipped, clipped).mean()
    frac = ((ratio - 1.0).abs() > clip).float().mean().detach()
    return loss, frac


def clipped_value_loss(value: Tensor, old_value: Tensor, returns: Tensor,
                       clip: float | None) -> Tensor:
    """``0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2))``, or the plain
    ``0.5 mean((V - R)^2)`` with ``clip=None``.

    The value may move at most ``c`` from its value at collection time before its gradient
    stops (OpenAI baselines ppo2; Andrychowicz et al. 2021 found it does not help, so it is
    optional). Shapes: all [B].
    """
    err = (value - returns) ** 2
    if clip is None:
        return 0.5 * err.mean()
    if not clip > 0.0:
        raise ValueError(f"value clip={clip} must be > 0 (or None to disable)")
    v_clipped = old_value + (value - old_value).clamp(-clip, clip)
    return 0.5 * torch.max(err, (v_clipped - returns) ** 2).mean()


def approx_kl(log_ratio: Tensor) -> Tensor:
    """``mean((r - 1) - log r)``, an unbiased, non-negative estimate of ``KL(pi_old || pi)`` from
    samples of ``pi_old`` (Schulman 2020, estimator k3). No gradient."""
    with torch.no_grad():
        return ((log_ratio.exp() - 1.0) - log_ratio).mean()
