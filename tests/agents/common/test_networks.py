"""mlp layout and forward values by hand; Polyak and hard target updates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from satedge.agents.common.networks import hard_update, mlp, soft_update

torch.set_num_threads(1)


def _set(layer: nn.Module, weight: list[list[float]], bias: list[float]) -> None:
    assert isinstance(layer, nn.Linear)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def test_mlp_layout_and_forward_by_hand() -> None:
    net = mlp(2, 1, hidden=(2,))
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear]
    _set(net[0], [[1.0, -1.0], [2.0, 0.0]], [0.0, -1.0])
    _set(net[2], [[1.0, 1.0]], [0.5])
    # x = (3, 1): hidden relu(3 - 1, 6 - 1) = (2, 5) -> 2 + 5 + 0.5; x = (0, 1): relu(-1, -1) = 0
    out = net(torch.tensor([[3.0, 1.0], [0.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[7.5], [0.5]]))


def test_mlp_layer_norm_normalises_before_activation() -> None:
    net = mlp(2, 1, hidden=(2,), activation=nn.Tanh, layer_norm=True)
    assert [type(m) for m in net] == [nn.Linear, nn.LayerNorm, nn.Tanh, nn.Linear]
    _set(net[0], [[1.0, -1.0], [2.0, 0.0]], [0.0, -1.0])
    _set(net[3], [[1.0, 2.0]], [0.0])
    # pre-activations (2, 5): mean 3.5, std 1.5 -> (-1, 1) -> tanh -> -tanh(1) + 2 tanh(1)
    out = net(torch.tensor([[3.0, 1.0]]))
    expected = torch.tanh(torch.tensor(1.0))
    torch.testing.assert_close(out, expected.reshape(1, 1), atol=1e-5, rtol=0)


def test_mlp_output_init_scale_scales_default_init() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        plain = mlp(4, 3, hidden=(8, 8))
        torch.manual_seed(0)
        small = mlp(4, 3, hidden=(8, 8), out_init_scale=0.01)
    first, first_plain, out, out_plain = small[0], plain[0], small[-1], plain[-1]
    assert isinstance(out, nn.Linear) and isinstance(out_plain, nn.Linear)
    assert isinstance(first, nn.Linear) and isinstance(first_plain, nn.Linear)
    torch.testing.assert_close(first.weight, first_plain.weight)
    torch.testing.assert_close(out.weight, 0.01 * out_plain.weight)
    assert torch.count_nonzero(out.bias) == 0
    assert len(mlp(4, 3, hidden=())) == 1
    with pytest.raises(ValueError, match="positive"):
        mlp(4, 3, hidden=(0,))


def test_soft_update_is_polyak_in_place_without_graph() -> None:
    target, source = nn.Linear(2, 2), nn.Linear(2, 2)
    for p in target.parameters():
        nn.init.zeros_(p)
    for p in source.parameters():
        nn.init.ones_(p)
    weight = target.weight
    soft_update(target, source, tau=0.1)
    soft_update(target, source, tau=0.1)
    # 0 -> 0.1 -> 0.9 * 0.1 + 0.1 = 0.19
    torch.testing.assert_close(target.weight, torch.full((2, 2), 0.19))
    torch.testing.assert_close(target.bias, torch.full((2,), 0.19))
    assert target.weight is weight and target.weight.grad_fn is None
    assert target.weight.requires_grad
    soft_update(target, source, tau=1.0)
    torch.testing.assert_close(target.weight, source.weight)
    with pytest.raises(ValueError, match="tau"):
        soft_update(target, source, tau=1.5)
    with pytest.raises(ValueError):
        soft_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0.5)


def test_soft_update_averages_float_buffers() -> None:
    target, source = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    mean, count = source.get_buffer("running_mean"), source.get_buffer("num_batches_tracked")
    mean.fill_(2.0)
    count.fill_(7)
    soft_update(target, source, tau=0.25)
    torch.testing.assert_close(target.get_buffer("running_mean"), torch.full((2,), 0.5))
    assert int(target.get_buffer("num_batches_tracked")) == 7


def test_hard_update_copies_everything() -> None:
    target, source = mlp(3, 2, hidden=(4,)), mlp(3, 2, hidden=(4,))
    hard_update(target, source)
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        assert torch.equal(t, s) and t is not s
