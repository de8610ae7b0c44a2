"""Multi-layer perceptrons and target-network updates.

``mlp`` builds the plain fully connected trunks every agent uses; ``soft_update`` is the Polyak
average of target networks (Lillicrap et al. 2016, "Continuous control with deep reinforcement
learning", Sec. 3; Haarnoja et al. 2018, Algorithm 1) and ``hard_update`` the periodic copy of DQN
(Mnih et al. 2015).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["hard_update", "mlp", "soft_update"]


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256),
        activation: type[nn.Module] = nn.ReLU, *, layer_norm: bool = False,
        out_init_scale: float | None = None) -> nn.Sequential:
    """A fully connected network ``Linear -> [LayerNorm] -> activation`` per hidden layer, then a
    linear output layer (no output activation).

    Args:
        in_dim: input features (last dimension of the input).
        out_dim: output features.
        hidden: widths of the hidden layers; ``()`` gives a single linear layer.
        activation: module class instantiated after every hidden layer.
        layer_norm: insert ``nn.LayerNorm`` before every hidden activation (Ball et al. 2023,
            "Efficient online RL with offline data", Sec. 4.1: stabilises critics).
        out_init_scale: if given, the output layer's default (Kaiming-uniform) weights are
            multiplied by this factor and its bias zeroed, e.g. 0.01 for policy heads so that the
            initial policy is near uniform / zero-mean (Andrychowicz et al. 2021, "What matters
            in on-policy RL", Sec. 3.2).

    Returns:
        ``nn.Sequential`` mapping ``[..., in_dim] -> [..., out_dim]``.
    """
    if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden):
        raise ValueError(f"layer sizes must be positive; got in_dim={in_dim}, "
                         f"hidden={tuple(hidden)}, out_dim={out_dim}")
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers.append(nn.Linear(prev, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(activation())
        prev = width
    out = nn.Linear(prev, out_dim)
    if out_init_scale is not None:
        with torch.no_grad():
            out.weight.mul_(out_init_scale)
            out.bias.zero_()
    layers.append(out)
    return nn.Sequential(*layers)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging in place: ``theta_target <- (1 - tau) theta_target + tau theta_source``.

    Applied to every parameter; floating-point buffers (e.g. normalisation statistics) are averaged
    the same way and integer buffers copied. No autograd graph is recorded. ``tau = 1`` copies.

    Raises:
        ValueError: ``tau`` outside [0, 1] or the two modules' parameters do not line up.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau={tau} must lie in [0, 1]")
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = [
        *zip(target.parameters(), source.parameters(), strict=True),
        *zip(target.buffers(), source.buffers(), strict=True)]
    for t, s in pairs:
        if t.shape != s.shape:
            raise ValueError(f"shape mismatch in soft_update: {tuple(t.shape)} vs {tuple(s.shape)}")
        if t.is_floating_point():
            t.lerp_(s, tau)  # t + tau (s - t)
        else:
            t.copy_(s)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copy every parameter and buffer of ``source`` into ``target`` (same architecture)."""
    target.load_state_dict(source.state_dict())
