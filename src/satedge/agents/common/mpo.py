"""MPO policy improvement for a hybrid (categorical x Gaussian) policy, as pure torch functions.

One MPO step (Abdolmaleki et al. 2018, "Maximum a Posteriori Policy Optimisation") with the hybrid
M-step of Neunert et al. 2019 ("Continuous-Discrete Reinforcement Learning for Hybrid Control
in Robotics"), used by AD-SAC (SPEC section 9) to fuse the discrete and continuous agents:

1. Sample N joint actions ``a_j = (d_j, c_j) ~ pi_old(. | s)`` for each of B states and evaluate the
   joint critic ``q[b, j] = Q(s_b, a_j)``.
2. **E-step.** The non-parametric improved policy ``q_np(a | s) ∝ pi_old(a | s) exp(Q(s, a) / eta)``
   is represented on the samples by ``w = softmax(q / eta)`` over j (:func:`e_step_weights`); the
   temperature eta minimises the convex dual (:func:`dual_loss`), which enforces
   ``mean_b KL(q_np || pi_old) <= epsilon``. Measure the achieved KL with :func:`e_step_kl`.
3. **M-step.** Fit the parametric policy by weighted maximum likelihood on the samples, the
   categorical and the Gaussian factors each under its own trust region
   ``KL(pi_old_d || pi_d) <= eps_d`` and ``KL(pi_old_c || pi_c) <= eps_c``, enforced by Lagrange
   multipliers (:func:`m_step_loss`). The Gaussian bound may be split into mean and std parts
   (Abdolmaleki et al. 2018b, "Relative Entropy Regularized Policy Iteration"): see
   :func:`gaussian_decoupled_kl`.

Positivity. eta and the multipliers are learned through unconstrained raw parameters mapped by
``softplus(raw) + 1e-8`` (:func:`eta_from_raw`, :func:`lagrange_from_raw`; inverse
:func:`raw_from_positive`). Softplus rather than exp: it is linear for large values, so an Adam step
on the raw parameter is a bounded additive step instead of a multiplicative one that can overshoot
by orders of magnitude when a KL bound is badly violated; the floor keeps ``q / eta`` finite.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MIN_POSITIVE",
    "MStepLosses",
    "dual_loss",
    "e_step_kl",
    "e_step_weights",
    "eta_from_raw",
    "gaussian_decoupled_kl",
    "lagrange_from_raw",
    "m_step_loss",
    "raw_from_positive",
    "solve_eta",
]

MIN_POSITIVE = 1e-8
"""Floor added to ``softplus(raw)`` for eta and the multipliers (acme uses the same order)."""


def eta_from_raw(raw: Tensor) -> Tensor:
    """E-step temperature ``eta = softplus(raw) + 1e-8 > 0``; same shape as ``raw`` (usually [])."""
    return F.softplus(raw) + MIN_POSITIVE


def lagrange_from_raw(raw: Tensor) -> Tensor:
    """M-step multiplier ``lambda = softplus(raw) + 1e-8 > 0``; same shape as ``raw``."""
    return F.softplus(raw) + MIN_POSITIVE


def raw_from_positive(value: float | Tensor) -> Tensor:
    """Inverse of :func:`eta_from_raw` and :func:`lagrange_from_raw`, to initialise a raw parameter.

    ``raw = log(expm1(value - 1e-8))``; ``value`` must exceed 1e-8.
    """
    v = torch.as_tensor(value, dtype=torch.get_default_dtype()) - MIN_POSITIVE
    if torch.any(v <= 0):
        raise ValueError(f"value must be > {MIN_POSITIVE}, got {value}")
    # log(expm1(v)) = v + log(1 - exp(-v)), stable for large v.
    return v + torch.log(-torch.expm1(-v))


def _centred(q: Tensor) -> Tensor:
    """``q - max_j q`` per row: softmax-invariant, and keeps ``q / eta`` precise in float32 when
    the spread of q is tiny next to its magnitude (eta is then tiny and ``q / eta`` huge)."""
    return q - q.max(dim=-1, keepdim=True).values


def e_step_weights(q: Tensor, eta: float | Tensor) -> Tensor:
    """Non-parametric E-step weights over the sampled actions (Abdolmaleki et al. 2018, E-step).

    ``w[b, j] = exp(q[b, j] / eta) / sum_i exp(q[b, i] / eta)``

    Args:
        q: [B, N] critic values of N actions sampled from pi_old per state.
        eta: temperature > 0, scalar, or [B] (one per state).

    Returns:
        [B, N] weights, each row summing to 1, detached: they are fixed regression targets for the
        M-step, and eta is learned only through :func:`dual_loss`.
    """
    eta_t = torch.as_tensor(eta, dtype=q.dtype).detach()
    if eta_t.dim() == 1:  # one temperature per state (a seed-batched agent)
        eta_t = eta_t.unsqueeze(-1)
    return torch.softmax(_centred(q.detach()) / eta_t, dim=-1)


def dual_loss(q: Tensor, eta: Tensor, epsilon: float) -> Tensor:
    """Convex dual of the KL-constrained E-step, minimised over eta (Abdolmaleki et al. 2018).

    ``g(eta) = eta * epsilon + eta * mean_b log( (1/N) sum_j exp(q[b, j] / eta) )``,
    computed with ``logsumexp - log N`` on ``q - max_j q`` for stability. Its derivative is
    ``dg/deta = epsilon - mean_b KL_b(eta)`` with ``KL_b`` from :func:`e_step_kl`: gradient descent
    raises eta while the achieved E-step KL exceeds epsilon, and at the minimum the mean KL equals
    epsilon (constraint active) or eta -> 0 (constraint slack).

    Args:
        q: [B, N] critic values of the sampled actions; detached here (the dual trains eta only).
        eta: [] positive temperature carrying the gradient, e.g. ``eta_from_raw(raw_eta)``;
            or [B], one per state (a seed-batched agent: each seed's eta on its rows).
        epsilon: E-step KL bound, nats.

    Returns:
        [] the dual value; with a [B] eta, the [B] per-state terms whose mean over a seed's
        states is that seed's dual.
    """
    q = q.detach()
    q_max = q.max(dim=-1, keepdim=True).values
    per_state = eta.dim() == 1
    lse = torch.logsumexp((q - q_max) / (eta.unsqueeze(-1) if per_state else eta), dim=-1) \
        - math.log(q.shape[-1])
    # eta * logsumexp(q / eta) = max_j q + eta * logsumexp((q - max_j q) / eta).
    if per_state:
        return eta * epsilon + q_max.squeeze(-1) + eta * lse
    return eta * epsilon + q_max.squeeze(-1).mean() + eta * lse.mean()


def e_step_kl(weights: Tensor) -> Tensor:
    """Achieved E-step KL of the sample-based improved policy from pi_old, per state.

    ``KL_b = sum_j w[b, j] log(N w[b, j])``: the KL of the weights from uniform, which is what the
    samples of pi_old represent. In [0, log N]; ``0 log 0 = 0``.

    Args:
        weights: [B, N] rows summing to 1 (from :func:`e_step_weights`).

    Returns:
        [B] nats.
    """
    n = weights.shape[-1]
    return torch.xlogy(weights, weights * n).sum(dim=-1)


@torch.no_grad()
def solve_eta(q: Tensor, epsilon: float, iters: int = 50) -> Tensor:
    """Minimise :func:`dual_loss` over eta exactly, by bisection on log eta.

    ``dg/deta = epsilon - mean_b KL_b(eta)`` is increasing in eta (g is convex), so bisection on its
    sign over the bracket ``[1e-6, 1e6] * s`` (``s`` = the largest spread ``max_j q - min_j q`` of a
    row) converges to the root: 50 halvings of the 27.6-nat bracket leave a relative error of
    about 2.5e-14 in eta. Used in tests, to initialise the learned eta, or as an exact E-step.

    Edge cases: if every row of ``q`` is constant the weights are uniform for any eta and 1.0 is
    returned; if the constraint is slack even at the bracket's low end (``epsilon >= log N`` or ties
    at the maximum) the low end is returned, i.e. nearly greedy weights, which is the constrained
    optimum.

    Args:
        q: [B, N] critic values.
        epsilon: E-step KL bound, nats, > 0.
        iters: bisection steps.

    Returns:
        [] eta in ``q``'s dtype, detached, with ``mean_b KL_b(eta) <= epsilon`` (up to rounding).
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    q64 = q.detach().to(torch.float64)
    spread = float((q64.max(dim=-1).values - q64.min(dim=-1).values).max())
    if spread <= 0.0:
        return torch.ones((), dtype=q.dtype)

    def mean_kl(log_eta: float) -> float:
        return float(e_step_kl(e_step_weights(q64, math.exp(log_eta))).mean())

    lo, hi = math.log(spread * 1e-6), math.log(spread * 1e6)
    if mean_kl(lo) <= epsilon:
        return torch.tensor(math.exp(lo), dtype=q.dtype)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if mean_kl(mid) > epsilon:
            lo = mid
        else:
            hi = mid
    return torch.tensor(math.exp(hi), dtype=q.dtype)


class MStepLosses(NamedTuple):
    """Terms of one M-step; minimise ``policy + lagrange`` jointly over policy and raw multipliers.

    ``kl_d_mean`` and ``kl_c_mean`` are batch means (detached, for logging) of the discrete and the
    continuous KL; with the decoupled Gaussian bound ``kl_c_mean`` is of ``kl_c + kl_c_std``.
    """

    policy: Tensor
    lagrange: Tensor
    kl_d_mean: Tensor
    kl_c_mean: Tensor


def _kl_terms(kl: Tensor, lagrange: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """(penalty for the policy, loss for the multiplier) of one KL bound; per state ([B]) when
    the multiplier is given per state."""
    if lagrange.dim() == 1:
        return lagrange.detach() * kl, lagrange * (epsilon - kl.detach())
    return (lagrange.detach() * kl).mean(), lagrange * (epsilon - kl.detach().mean())


def m_step_loss(
    log_prob_d: Tensor,
    log_prob_c: Tensor,
    weights: Tensor,
    kl_d: Tensor,
    kl_c: Tensor,
    lagrange_d: Tensor,
    lagrange_c: Tensor,
    eps_d: float,
    eps_c: float,
    *,
    kl_c_std: Tensor | None = None,
    lagrange_c_std: Tensor | None = None,
    eps_c_std: float | None = None,
) -> MStepLosses:
    """Hybrid M-step: weighted maximum likelihood per factor under separate KL trust regions.

    The MPO M-step (Abdolmaleki et al. 2018) for the factorised policy ``pi = pi_d x pi_c`` of
    Neunert et al. 2019:

    ``L_policy = -mean_b sum_j w[b, j] (log pi_d(d_j|s_b) + log pi_c(c_j|s_b))
                 + sg(lambda_d) mean_b KL_d[b] + sg(lambda_c) mean_b KL_c[b]``

    ``L_lagrange = lambda_d (eps_d - sg(mean_b KL_d)) + lambda_c (eps_c - sg(mean_b KL_c))``

    where ``sg`` stops gradients and ``KL_x[b] = KL(pi_old_x(.|s_b) || pi_x(.|s_b))``. Descending
    ``L_lagrange`` raises a multiplier while its KL exceeds its bound and lowers it otherwise; the
    policy sees the multipliers as constants. Because the two factors have disjoint parameters,
    the weighted likelihood splits into one fit per factor, each with its own bound.

    Decoupled Gaussian bound (Abdolmaleki et al. 2018b): pass the mean part as ``kl_c``
    with ``eps_c`` = the mean bound, and the std part as ``kl_c_std`` with its own multiplier
    ``lagrange_c_std`` and bound ``eps_c_std`` (all three or none); take both parts from
    :func:`gaussian_decoupled_kl`, and let the caller form ``log_prob_c`` as
    ``log N(u; mu_theta, sigma_old) + log N(u; mu_old, sigma_theta)``. Otherwise ``kl_c`` is the
    full Gaussian KL (or any sum the caller chooses) under the single bound ``eps_c``.

    Enforcement is approximate: with first-order steps on policy and multipliers together, a
    multiplier decays toward 0 while its bound is slack and takes a few steps to recover, so
    single updates can overshoot (up to ~2x the bound in the tests' hybrid bandit). Log the
    returned KLs.

    Args:
        log_prob_d: [B, N] ``log pi_d(d_j | s_b)`` under the current (trained) policy, summed over
            the K categoricals of an action.
        log_prob_c: [B, N] ``log pi_c(c_j | s_b)`` under the current policy, summed over dims. For a
            tanh-Gaussian the tanh Jacobian does not depend on the parameters and may be omitted.
        weights: [B, N] E-step weights (rows sum to 1); treated as constants.
        kl_d: [B] categorical KL(old || current), carrying gradient to the policy.
        kl_c: [B] Gaussian KL(old || current) (or its mean part when decoupled).
        lagrange_d, lagrange_c: [] positive multipliers, e.g. ``lagrange_from_raw(raw)``; or
            [B], one per state (a seed-batched agent), and then ``policy`` and ``lagrange`` are
            the [B] per-state terms whose mean over a seed's states is that seed's loss.
        eps_d, eps_c: KL bounds, nats.
        kl_c_std, lagrange_c_std, eps_c_std: optional std part of a decoupled Gaussian bound.

    Returns:
        :class:`MStepLosses`.
    """
    w = weights.detach()
    nll = -(w * (log_prob_d + log_prob_c)).sum(dim=-1)
    if lagrange_d.dim() == 0:
        nll = nll.mean()
    pen_d, lag_d = _kl_terms(kl_d, lagrange_d, eps_d)
    pen_c, lag_c = _kl_terms(kl_c, lagrange_c, eps_c)
    policy, lagrange, kl_c_total = nll + pen_d + pen_c, lag_d + lag_c, kl_c
    std_args = (kl_c_std, lagrange_c_std, eps_c_std)
    if any(a is not None for a in std_args):
        if kl_c_std is None or lagrange_c_std is None or eps_c_std is None:
            raise ValueError("kl_c_std, lagrange_c_std and eps_c_std go together: pass all three")
        pen_s, lag_s = _kl_terms(kl_c_std, lagrange_c_std, eps_c_std)
        policy, lagrange, kl_c_total = policy + pen_s, lagrange + lag_s, kl_c + kl_c_std
    return MStepLosses(policy, lagrange, kl_d.detach().mean(), kl_c_total.detach().mean())


def gaussian_decoupled_kl(
    mean_old: Tensor, std_old: Tensor, mean: Tensor, std: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and std parts of KL(old || new) for diagonal Gaussians (Abdolmaleki et al. 2018b).

    ``KL_mean = sum_i (mu_i - mu_old_i)^2 / (2 sigma_old_i^2)``   (KL with sigma held at sigma_old)

    ``KL_std = sum_i log(sigma_i / sigma_old_i) + sigma_old_i^2 / (2 sigma_i^2) - 1/2``
    (KL with mu held at mu_old). At ``sigma = sigma_old`` their sum is the full KL. For a
    tanh-Gaussian these are also the KLs of the squashed distributions: KL is invariant under the
    bijection tanh, so compute them on the pre-tanh parameters.

    Args:
        mean_old, std_old: [B, D] parameters of pi_old (detached by the caller or here).
        mean, std: [B, D] parameters of the policy being fitted.

    Returns:
        (kl_mean [B], kl_std [B]) nats, summed over the D action dimensions.
    """
    mean_old, std_old = mean_old.detach(), std_old.detach()
    kl_mean = ((mean - mean_old) ** 2 / (2.0 * std_old**2)).sum(dim=-1)
    ratio_sq = (std_old / std) ** 2
    kl_std = (0.5 * (ratio_sq - 1.0) - 0.5 * torch.log(ratio_sq)).sum(dim=-1)
    return kl_mean, kl_std
