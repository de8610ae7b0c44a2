"""SAC targets and temperature losses against hand-computed values, gradient signs and masks."""

from __future__ import annotations

import math

import pytest
import torch

from satedge.agents.common.sac_losses import (
    DISCRETE_TARGET_ENTROPY_SCALE,
    continuous_temperature_loss,
    default_target_entropy_continuous,
    default_target_entropy_discrete,
    discrete_temperature_loss,
    soft_q_target,
    soft_value_discrete,
    target_entropy_discrete_masked,
)

torch.set_num_threads(1)

# Entropy of [0.9, 0.1]: -(0.9 ln 0.9 + 0.1 ln 0.1) = 0.0948245 + 0.2302585.
H_91 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))


def _sgd_step(log_alpha: torch.Tensor, loss: torch.Tensor) -> float:
    """log alpha after one descent step of size 0.1."""
    (grad,) = torch.autograd.grad(loss, log_alpha, retain_graph=True)
    return float(log_alpha.detach() - 0.1 * grad)


def test_continuous_temperature_hand_value_and_gradient() -> None:
    # log_prob + target = [-2, -3], mean -2.5: loss = -0.5 (-2.5) = 1.25, d/dlog_alpha = 2.5
    # (entropy estimate 1.5 is above the target -1, so alpha falls).
    log_alpha = torch.tensor(0.5, requires_grad=True)
    loss = continuous_temperature_loss(log_alpha, torch.tensor([-1.0, -2.0]), -1.0)
    torch.testing.assert_close(loss, torch.tensor(1.25))
    assert _sgd_step(log_alpha, loss) == pytest.approx(0.5 - 0.25)


def test_continuous_temperature_rises_when_entropy_is_below_target() -> None:
    # log_prob = [1, 2]: entropy estimate -1.5 < target -1; gradient -mean([0, 1]) = -0.5.
    log_alpha = torch.tensor(0.0, requires_grad=True)
    log_prob = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = continuous_temperature_loss(log_alpha, log_prob, -1.0)
    assert _sgd_step(log_alpha, loss) == pytest.approx(0.05)
    (g,) = torch.autograd.grad(
        continuous_temperature_loss(log_alpha, log_prob, -1.0), log_prob, allow_unused=True
    )
    assert g is None  # the policy is not trained through the temperature loss


def test_discrete_temperature_hand_value_and_gradient() -> None:
    # Two categoricals per state: [0.5, 0.5] and [0.9, 0.1]; H = ln 2 + H_91 = 1.01823 < 1.2.
    probs = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    log_alpha = torch.tensor(0.3, requires_grad=True)
    loss = discrete_temperature_loss(log_alpha, probs, probs.log(), 1.2)
    h = math.log(2.0) + H_91
    torch.testing.assert_close(loss, torch.tensor(0.3 * (h - 1.2)))
    assert _sgd_step(log_alpha, loss) == pytest.approx(0.3 - 0.1 * (h - 1.2))
    assert _sgd_step(log_alpha, loss) > 0.3  # entropy below target: alpha rises
    # A [B] target acts through its batch mean.
    probs2 = torch.cat([probs, torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])])
    loss2 = discrete_temperature_loss(log_alpha, probs2, probs2.log(), torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(loss2, torch.tensor(0.3 * ((h - 1.0) + (math.log(2.0) - 0.5)) / 2))


def test_discrete_losses_are_finite_with_masked_actions() -> None:
    logits = torch.tensor([[[0.2, -0.4, 0.0]]], requires_grad=True)
    mask = torch.tensor([[[True, True, False]]])
    log_probs = torch.log_softmax(logits.masked_fill(~mask, -math.inf), -1)
    probs = log_probs.exp()
    q = torch.tensor([[[1.0, 2.0, -math.inf]]], requires_grad=True)
    value = soft_value_discrete(probs, log_probs, q, 0.5)
    value.sum().backward()
    assert torch.isfinite(value).all()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert q.grad is not None and torch.isfinite(q.grad).all() and float(q.grad[0, 0, 2]) == 0.0
    loss = discrete_temperature_loss(torch.tensor(0.0), probs, log_probs, 0.5)
    assert torch.isfinite(loss)


def test_uniform_over_feasible_meets_the_masked_target_exactly() -> None:
    mask = torch.tensor(
        [[[True, True, False, False], [True, True, True, True], [True, False, False, False]]]
    )
    probs = mask / mask.sum(-1, keepdim=True)
    log_probs = torch.log(probs)
    target = target_entropy_discrete_masked(mask, scale=1.0)
    torch.testing.assert_close(target, torch.tensor([math.log(2.0) + math.log(4.0)]))
    log_alpha = torch.tensor(0.0, requires_grad=True)
    (g,) = torch.autograd.grad(
        discrete_temperature_loss(log_alpha, probs, log_probs, target), log_alpha
    )
    assert abs(float(g)) < 1e-6  # at the reachable maximum, scale 1 leaves alpha still


def test_soft_q_target_hand_values_with_done_masking() -> None:
    # y0 = 1 + 0.9 (3 - 0.2 (-1)) = 3.88; y1 = 2 (terminal: no bootstrap).
    alpha = torch.tensor(0.2, requires_grad=True)
    for done in (torch.tensor([0.0, 1.0]), torch.tensor([False, True])):
        y = soft_q_target(
            torch.tensor([1.0, 2.0]),
            done,
            0.9,
            torch.tensor([3.0, 5.0]),
            torch.tensor([-1.0, -1.0]),
            alpha,
        )
        torch.testing.assert_close(y, torch.tensor([3.88, 2.0]))
        assert not y.requires_grad


def test_soft_value_discrete_hand_value() -> None:
    # 0.25 (1 - 0.5 ln 0.25) + 0.75 (2 - 0.5 ln 0.75).
    p = torch.tensor([0.25, 0.75])
    v = soft_value_discrete(p, p.log(), torch.tensor([1.0, 2.0]), 0.5)
    expected = 0.25 * (1 - 0.5 * math.log(0.25)) + 0.75 * (2 - 0.5 * math.log(0.75))
    torch.testing.assert_close(v, torch.tensor(expected))  # 2.031168
    # [B, K, S] -> [B, K]; a deterministic row is its Q-value.
    probs = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    q = torch.tensor([[[4.0, 9.0], [1.0, 3.0]]])
    out = soft_value_discrete(probs, probs.log(), q, 1.0)
    torch.testing.assert_close(out, torch.tensor([[4.0, 2.0 + math.log(2.0)]]))


def test_default_target_entropies() -> None:
    assert default_target_entropy_continuous(3) == -3.0
    assert DISCRETE_TARGET_ENTROPY_SCALE == 0.98
    assert default_target_entropy_discrete(4) == pytest.approx(0.98 * math.log(4.0))
    assert default_target_entropy_discrete(4, 0.5, n_categoricals=5) == pytest.approx(
        5 * 0.5 * math.log(4.0)
    )
    assert default_target_entropy_discrete(1) == 0.0
    for bad in ((0,), (4, 1.5), (4, 0.98, 0)):
        with pytest.raises(ValueError):
            default_target_entropy_discrete(*bad)
    with pytest.raises(ValueError):
        default_target_entropy_continuous(0)


def test_masked_target_entropy_hand_values() -> None:
    mask = torch.tensor(
        [
            [[True, True, False, False], [True, False, False, False], [False, False, False, False]],
            [[True, True, True, True], [True, True, False, False], [True, True, True, False]],
        ]
    )
    # State 0: 2, 1 and 0 (dropped task) feasible -> 0.98 ln 2; state 1: 0.98 (ln 4 + ln 2 + ln 3).
    expected = torch.tensor([0.98 * math.log(2.0), 0.98 * math.log(24.0)])
    torch.testing.assert_close(target_entropy_discrete_masked(mask), expected)
    with pytest.raises(ValueError):
        target_entropy_discrete_masked(mask, scale=-0.1)
