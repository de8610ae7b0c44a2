"""Soft actor-critic targets and temperature losses, continuous and discrete: pure torch functions.

Continuous: Haarnoja et al. 2018b, "Soft Actor-Critic Algorithms and Applications", Eq. 3 (soft
Bellman target) and Eq. 18 (temperature). Discrete: Christodoulou 2019, "Soft Actor-Critic for
Discrete Action Settings", Sec. 4, which replaces sampled estimates by exact expectations over the
categorical. The discrete agent of AD-SAC has K categoricals (one per IoTD) over S = M + N servers,
so discrete tensors are [B, K, S] and entropies are summed over K per state.

Masked actions have probability exactly 0 and a log-probability of -inf (or a large negative
number); every ``p log p`` here is computed as 0 where ``p == 0``, so masks never produce NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "DISCRETE_TARGET_ENTROPY_SCALE",
    "continuous_temperature_loss",
    "default_target_entropy_continuous",
    "default_target_entropy_discrete",
    "discrete_temperature_loss",
    "soft_q_target",
    "soft_value_discrete",
    "target_entropy_discrete_masked",
]

DISCRETE_TARGET_ENTROPY_SCALE = 0.98
"""Christodoulou 2019 (experiments): target entropy 0.98 of the maximum, ``0.98 * log |A|``.

Kept as the default because it is the cited method's value. It asks for a nearly uniform policy,
and later work found it too high on some tasks (the temperature keeps rising; Xu et al. 2021,
"Target Entropy Annealing for Discrete Soft Actor-Critic"), so it is a hyperparameter to tune.
"""


def _where_possible(probs: Tensor, values: Tensor) -> Tensor:
    """``values`` where ``probs > 0``, else 0: masking the factor before the product keeps both the
    value and the gradient finite (``torch.where`` after ``0 * -inf`` would back-propagate NaN)."""
    return torch.where(probs > 0, values, torch.zeros_like(values))


def _plogp(probs: Tensor, log_probs: Tensor) -> Tensor:
    """Elementwise ``p log p`` with ``0 log 0 = 0`` (masked actions)."""
    return probs * _where_possible(probs, log_probs)


def continuous_temperature_loss(
    log_alpha: Tensor, log_prob: Tensor, target_entropy: float, *, per_state: bool = False
) -> Tensor:
    """SAC temperature loss for a continuous policy (Haarnoja et al. 2018b, Eq. 18, in log alpha).

    ``J(log_alpha) = -mean_b log_alpha * sg(log pi(a_b | s_b) + H_target)``, with ``a_b ~ pi``.
    Its gradient is ``H_hat - H_target`` with ``H_hat = -mean_b log pi``: descending it raises
    alpha while the policy's entropy is below the target. Parameterising by log alpha (as the
    reference implementations do) keeps alpha > 0.

    Args:
        log_alpha: [] learnable log temperature.
        log_prob: [B] log-probability of the sampled actions (tanh-corrected), summed over dims.
        target_entropy: nats, e.g. :func:`default_target_entropy_continuous`.
        per_state: return the [B] terms instead of their mean (a seed-batched agent passes a
            [B] ``log_alpha``, each seed's on its rows, and averages per seed).

    Returns:
        [] loss ([B] with ``per_state``).
    """
    terms = -(log_alpha * (log_prob + target_entropy).detach())
    return terms if per_state else terms.mean()


def discrete_temperature_loss(
    log_alpha: Tensor, probs: Tensor, log_probs: Tensor, target_entropy: float | Tensor, *,
    per_state: bool = False
) -> Tensor:
    """SAC temperature loss with the exact expectation over K categoricals (Christodoulou 2019).

    ``J(log_alpha) = mean_b log_alpha * sg(H_b - H_target_b)``,
    ``H_b = -sum_k sum_s p[b, k, s] log p[b, k, s]`` (entropy of the factorised policy).
    Gradient ``mean_b (H_b - H_target_b)``: alpha rises while the entropy is below the target.

    Args:
        log_alpha: [] learnable log temperature.
        probs: [B, K, S] action probabilities (masked actions exactly 0).
        log_probs: [B, K, S] their logs (masked entries may be -inf).
        target_entropy: per-state total over K, nats: a float or [B] (from
            :func:`target_entropy_discrete_masked`); a [B] target acts as its batch mean.
        per_state: return the [B] terms instead of their mean (see
            :func:`continuous_temperature_loss`).

    Returns:
        [] loss ([B] with ``per_state``).
    """
    entropy = -_plogp(probs, log_probs).sum(dim=(-2, -1))
    terms = log_alpha * (entropy - target_entropy).detach()
    return terms if per_state else terms.mean()


def soft_q_target(
    reward: Tensor,
    done: Tensor,
    gamma: float,
    next_q: Tensor,
    next_log_prob: Tensor,
    alpha: float | Tensor,
) -> Tensor:
    """Soft Bellman target (Haarnoja et al. 2018b, Eqs. 2-3), one sampled next action.

    ``y = r + gamma (1 - done) (Q'(s', a') - alpha log pi(a' | s'))``, ``a' ~ pi(. | s')``.

    Args:
        reward: [B] reward of the transition.
        done: [B] 1 (or True) where s' is terminal. Pass *termination* only: a time-limit
            truncation must still bootstrap (SPEC section 8 episodes end by truncation).
        gamma: discount in [0, 1].
        next_q: [B] target critic at (s', a'), e.g. the minimum of twin target critics.
        next_log_prob: [B] ``log pi(a' | s')``.
        alpha: temperature > 0 (a float or [] tensor).

    Returns:
        [B] target, detached (a regression target: no gradient to critic, policy or alpha).
    """
    not_done = 1.0 - done.to(reward.dtype)
    return (reward + gamma * not_done * (next_q - alpha * next_log_prob)).detach()


def soft_value_discrete(
    probs: Tensor, log_probs: Tensor, q_per_action: Tensor, alpha: float | Tensor
) -> Tensor:
    """Soft state value of a categorical policy, exact over its actions (Christodoulou 2019).

    ``V(s) = sum_s' p(s') (Q(s, s') - alpha log p(s'))`` over the last dimension.

    With a critic decomposed per IoTD (SPEC section 9), pass [B, K, S] and sum the [B, K] result
    over K; for the policy loss use ``sum_s p (alpha log p - Q)`` = ``-soft_value_discrete(...)``.

    Args:
        probs: [..., S] action probabilities (masked actions exactly 0).
        log_probs: [..., S] their logs (masked entries may be -inf).
        q_per_action: [..., S] critic value of every action (masked entries ignored).
        alpha: temperature > 0.

    Returns:
        [...] soft value (gradients flow to every input; detach for a target).
    """
    expected_q = probs * _where_possible(probs, q_per_action)
    return (expected_q - alpha * _plogp(probs, log_probs)).sum(dim=-1)


def default_target_entropy_continuous(action_dim: int) -> float:
    """``-dim(A)`` nats, the SAC heuristic (Haarnoja et al. 2018b, Sec. 5)."""
    if action_dim < 1:
        raise ValueError(f"action_dim must be >= 1, got {action_dim}")
    return -float(action_dim)


def default_target_entropy_discrete(
    n_actions: int, scale: float = DISCRETE_TARGET_ENTROPY_SCALE, n_categoricals: int = 1
) -> float:
    """``n_categoricals * scale * log(n_actions)`` nats (Christodoulou 2019 uses scale 0.98).

    ``scale * log(n_actions)`` is the target per categorical, a fraction of its maximum entropy;
    the result is the per-state total that :func:`discrete_temperature_loss` expects.
    Use :func:`target_entropy_discrete_masked` when masks remove actions.
    """
    if n_actions < 1 or n_categoricals < 1 or not 0.0 <= scale <= 1.0:
        raise ValueError(
            f"need n_actions >= 1, n_categoricals >= 1, scale in [0, 1]; "
            f"got {n_actions}, {n_categoricals}, {scale}"
        )
    return n_categoricals * scale * math.log(n_actions)


def target_entropy_discrete_masked(
    mask: Tensor, scale: float = DISCRETE_TARGET_ENTROPY_SCALE
) -> Tensor:
    """Per-state target ``sum_k scale * log(n_feasible[b, k])`` for masked categoricals.

    A mask lowers the reachable entropy of categorical k to ``log n_feasible`` (the uniform over
    its feasible actions), so a target from ``log S`` could never be met and alpha would grow
    without bound. A categorical with one feasible action (or none: the task is dropped, SPEC
    section 7, and the choice is moot) contributes 0. :func:`discrete_temperature_loss` averages
    the [B] target over the batch, i.e. this is ``scale * log n_feasible`` averaged over states.

    Args:
        mask: [B, K, S] bool, True where the action is feasible.
        scale: fraction of the reachable maximum, in [0, 1].

    Returns:
        [B] nats, float32 (the default dtype).
    """
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"scale must be in [0, 1], got {scale}")
    n_feasible = mask.sum(dim=-1).clamp(min=1).to(torch.get_default_dtype())
    return scale * torch.log(n_feasible).sum(dim=-1)
