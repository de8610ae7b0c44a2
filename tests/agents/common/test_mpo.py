"""MPO E-step, dual and hybrid M-step: hand-computed values, gradient signs, and a hybrid bandit.

Hand values use q = [0, ln 2, ln 3], for which exp(q) = [1, 2, 3] and every quantity is a fraction.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from satedge.agents.common.mpo import (
    MIN_POSITIVE,
    dual_loss,
    e_step_kl,
    e_step_weights,
    eta_from_raw,
    gaussian_decoupled_kl,
    lagrange_from_raw,
    m_step_loss,
    raw_from_positive,
    solve_eta,
)

torch.set_num_threads(1)

Q123 = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
# KL of w = [1/6, 2/6, 3/6] from uniform: sum w log(3 w) = (1/6) ln(1/2) + (3/6) ln(3/2).
KL123 = math.log(0.5) / 6.0 + 0.5 * math.log(1.5)  # 0.0872...


# --- E-step and dual -------------------------------------------------------------------------


def test_e_step_weights_hand_values() -> None:
    # exp(q / 1) = [1, 2, 3] -> [1, 2, 3] / 6; exp(q / 0.5) = [1, 4, 9] -> [1, 4, 9] / 14.
    torch.testing.assert_close(e_step_weights(Q123, 1.0), torch.tensor([[1 / 6, 2 / 6, 3 / 6]]))
    torch.testing.assert_close(
        e_step_weights(Q123, torch.tensor(0.5)), torch.tensor([[1 / 14, 4 / 14, 9 / 14]])
    )
    q = Q123.clone().requires_grad_(True)
    assert not e_step_weights(q, 1.0).requires_grad  # fixed targets for the M-step


def test_e_step_kl_hand_values() -> None:
    w = torch.tensor([[1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(e_step_kl(w), torch.tensor([KL123, 0.0, math.log(3.0)]))


def test_dual_loss_hand_values() -> None:
    eps = 0.1
    # eta = 1: logsumexp(q) - ln 3 = ln 6 - ln 3 = ln 2, so g = 0.1 + ln 2.
    g1 = dual_loss(Q123, torch.tensor(1.0), eps)
    torch.testing.assert_close(g1, torch.tensor(eps + math.log(2.0)))
    # eta = 2: exp(q / 2) = [1, sqrt 2, sqrt 3], g = 2 (0.1) + 2 ln((1 + sqrt 2 + sqrt 3) / 3).
    g2 = dual_loss(Q123, torch.tensor(2.0), eps)
    expected = 2 * eps + 2 * math.log((1 + math.sqrt(2) + math.sqrt(3)) / 3)
    torch.testing.assert_close(g2, torch.tensor(expected))
    # A constant second row adds logsumexp - ln N = 0: the batch mean halves the ln 2 term.
    q2 = torch.cat([Q123, torch.full((1, 3), 5.0)])
    torch.testing.assert_close(
        dual_loss(q2, torch.tensor(1.0), eps), torch.tensor(eps + 5.0 / 2 + math.log(2.0) / 2)
    )


@pytest.mark.parametrize("eps", [0.01, 0.5])
def test_dual_gradient_is_epsilon_minus_achieved_kl(eps: float) -> None:
    # dg/deta = epsilon - KL(w(eta)); at eta = 1, KL = KL123 = 0.0872: a bound of 0.01 is violated
    # (gradient < 0, descent raises eta and flattens the weights), a bound of 0.5 is slack.
    raw = raw_from_positive(1.0).requires_grad_(True)
    eta = eta_from_raw(raw)
    eta.retain_grad()
    dual_loss(Q123, eta, eps).backward()
    assert eta.grad is not None and raw.grad is not None
    torch.testing.assert_close(eta.grad, torch.tensor(eps - KL123))
    torch.testing.assert_close(raw.grad, torch.sigmoid(raw.detach()) * (eps - KL123))
    assert (raw.grad < 0) == (eps < KL123)


def test_solve_eta_makes_the_kl_bound_active() -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(4, 16, generator=gen, dtype=torch.float64) * 3.0
    eps = 0.1
    eta = solve_eta(q, eps)
    kl = e_step_kl(e_step_weights(q, eta))
    assert abs(float(kl.mean()) - eps) < 1e-9  # the batch-mean KL is what the dual constrains
    # eta is the dual's minimiser: zero gradient, higher values either side.
    e = eta.clone().requires_grad_(True)
    dual_loss(q, e, eps).backward()
    assert e.grad is not None and abs(float(e.grad)) < 1e-9
    g = float(dual_loss(q, eta, eps))
    assert g < float(dual_loss(q, eta * 1.01, eps)) and g < float(dual_loss(q, eta * 0.99, eps))


def test_large_eta_gives_uniform_weights_and_zero_kl() -> None:
    w = e_step_weights(Q123, 1e6)
    torch.testing.assert_close(w, torch.full((1, 3), 1 / 3))
    assert float(e_step_kl(w)) < 1e-10


def test_solve_eta_edge_cases() -> None:
    # Constant q: weights are uniform for every eta; 1.0 is returned.
    assert float(solve_eta(torch.zeros(2, 5), 0.1)) == 1.0
    # epsilon >= ln N: the bound cannot bind, the weights go greedy and KL = ln 3 < epsilon.
    eta = solve_eta(Q123, 2.0)
    w = e_step_weights(Q123, eta)
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="epsilon"):
        solve_eta(Q123, 0.0)


@settings(max_examples=40, deadline=None)
@given(
    ints=st.lists(st.integers(-20, 20), min_size=2, max_size=12),
    frac=st.floats(0.05, 0.95),
)
def test_solve_eta_kl_equals_epsilon_when_active(ints: list[int], frac: float) -> None:
    # q on a 0.25 grid: ties are exact, so the largest reachable KL is ln(N / #argmax) and the
    # bound is active exactly when epsilon is below it.
    q = torch.tensor([ints], dtype=torch.float64) / 4
    n, m = len(ints), int((q == q.max()).sum())
    eps = frac * math.log(n)
    kl = float(e_step_kl(e_step_weights(q, solve_eta(q, eps))).mean())
    if eps < math.log(n / m) - 1e-6:
        assert abs(kl - eps) < 1e-8
    else:
        assert kl <= eps + 1e-8


def test_positive_parameterisation() -> None:
    for v in (1e-3, 0.5, 1.0, 50.0):
        torch.testing.assert_close(eta_from_raw(raw_from_positive(v)), torch.tensor(v))
        torch.testing.assert_close(lagrange_from_raw(raw_from_positive(v)), torch.tensor(v))
    eta = eta_from_raw(torch.tensor(-1e3))
    torch.testing.assert_close(eta, torch.tensor(MIN_POSITIVE))
    assert torch.isfinite(e_step_weights(Q123, eta)).all()
    with pytest.raises(ValueError):
        raw_from_positive(0.0)


# --- M-step --------------------------------------------------------------------------------


def test_m_step_uniform_weights_zero_kl_is_mean_negative_log_likelihood() -> None:
    gen = torch.Generator().manual_seed(1)
    lpd, lpc = -torch.rand(3, 5, generator=gen), -torch.rand(3, 5, generator=gen)
    out = m_step_loss(
        lpd,
        lpc,
        torch.full((3, 5), 0.2),
        torch.zeros(3),
        torch.zeros(3),
        torch.tensor(2.0),
        torch.tensor(3.0),
        0.01,
        0.02,
    )
    torch.testing.assert_close(out.policy, -(lpd + lpc).mean())
    torch.testing.assert_close(out.lagrange, torch.tensor(2.0 * 0.01 + 3.0 * 0.02))
    assert float(out.kl_d_mean) == 0.0 and float(out.kl_c_mean) == 0.0


def test_m_step_hand_values() -> None:
    # nll = 0.25 (1 + 0.5) + 0.75 (2 + 1.5) = 3.0; penalties 2 (0.1) + 0.5 (0.3) = 0.35.
    # lagrange = 2 (0.05 - 0.1) + 0.5 (0.2 - 0.3) = -0.15.
    out = m_step_loss(
        torch.tensor([[-1.0, -2.0]]),
        torch.tensor([[-0.5, -1.5]]),
        torch.tensor([[0.25, 0.75]]),
        torch.tensor([0.1]),
        torch.tensor([0.3]),
        torch.tensor(2.0),
        torch.tensor(0.5),
        0.05,
        0.2,
    )
    torch.testing.assert_close(out.policy, torch.tensor(3.35))
    torch.testing.assert_close(out.lagrange, torch.tensor(-0.15))
    torch.testing.assert_close(out.kl_d_mean, torch.tensor(0.1))
    torch.testing.assert_close(out.kl_c_mean, torch.tensor(0.3))


def test_m_step_gradients_are_routed_and_detached() -> None:
    kl_d = torch.tensor([0.1, 0.3], requires_grad=True)
    kl_c = torch.tensor([0.2, 0.2], requires_grad=True)
    raw = torch.zeros(2, requires_grad=True)
    lam = lagrange_from_raw(raw)
    w = torch.tensor([[0.5, 0.5], [0.9, 0.1]], requires_grad=True)
    lp = torch.zeros(2, 2, requires_grad=True)
    out = m_step_loss(lp, lp, w, kl_d, kl_c, lam[0], lam[1], 0.1, 0.1)
    grads = torch.autograd.grad(out.policy, [kl_d, raw, lp], allow_unused=True)
    torch.testing.assert_close(grads[0], lam.detach()[0] / 2 * torch.ones(2))  # mean over B = 2
    assert grads[1] is None  # multipliers are constants in the policy loss
    torch.testing.assert_close(grads[2], -2 * w.detach() / 2)  # -w / B, for both factors
    grads = torch.autograd.grad(out.lagrange, [kl_d, kl_c], allow_unused=True)
    assert grads == (None, None)  # KLs are constants in the multiplier loss
    assert w.grad is None


@pytest.mark.parametrize("kl_value, rises", [(0.3, True), (0.01, False)])
def test_multiplier_rises_only_while_kl_exceeds_bound(kl_value: float, rises: bool) -> None:
    raw = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([raw], lr=0.5)
    before = lagrange_from_raw(raw).detach().clone()
    kl = torch.tensor([kl_value])
    lam = lagrange_from_raw(raw)
    zero = torch.zeros(1, 1)
    out = m_step_loss(zero, zero, torch.ones(1, 1), kl, kl, lam[0], lam[1], 0.1, 0.1)
    opt.zero_grad()
    out.lagrange.backward()
    opt.step()
    after = lagrange_from_raw(raw).detach()
    assert bool(((after > before) == rises).all())


def test_decoupled_gaussian_bound() -> None:
    # KL(N(0,1) || N(1,1)) = 1/2; KL(N(0,1) || N(0,2)) = ln 2 + 1/8 - 1/2; summed over 2 dims.
    mean_old, std_old = torch.zeros(1, 2), torch.ones(1, 2)
    mean, std = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 1.0]])
    kl_mean, kl_std = gaussian_decoupled_kl(mean_old, std_old, mean, std)
    torch.testing.assert_close(kl_mean, torch.tensor([0.5]))
    torch.testing.assert_close(kl_std, torch.tensor([math.log(2.0) + 1 / 8 - 1 / 2]))
    # Each part is the full KL when the other parameter is unchanged.
    full = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean_old, std_old), torch.distributions.Normal(mean, std_old)
    ).sum(-1)
    torch.testing.assert_close(kl_mean, full)

    zero, one = torch.zeros(1, 1), torch.ones(1, 1)
    args = (zero, zero, one, torch.tensor([0.1]), kl_mean, torch.tensor(2.0), torch.tensor(3.0))
    out = m_step_loss(
        *args, 0.05, 0.2, kl_c_std=kl_std, lagrange_c_std=torch.tensor(4.0), eps_c_std=0.01
    )
    torch.testing.assert_close(out.policy, 2 * 0.1 + 3 * 0.5 + 4 * kl_std[0])
    torch.testing.assert_close(
        out.lagrange, 2 * (0.05 - 0.1) + 3 * (0.2 - 0.5) + 4 * (0.01 - kl_std[0])
    )
    torch.testing.assert_close(out.kl_c_mean, kl_mean[0] + kl_std[0])
    with pytest.raises(ValueError, match="all three"):
        m_step_loss(*args, 0.05, 0.2, kl_c_std=kl_std)


# --- Hybrid bandit ----------------------------------------------------------------------------
#
# One state; discrete d in {0, 1, 2}, continuous c in (-1, 1); Q(d, c) = r_d - 2 (c - 0.5)^2 with
# r = [0, 0.5, 1]: optimum d* = 2, c* = 0.5. Policy: categorical(logits) x tanh(N(mu, sigma)).
# Each iteration samples N actions from the current (old) policy, takes E-step weights with eta
# from the exact dual, then runs M-step Adam steps on the Lagrangian of m_step_loss against the
# old policy. The policy's parameters are held as old + displacement, the displacement in the old
# policy's own units (logits; mean in old std; log std) and re-zeroed each iteration: a fixed Adam
# step is then a fixed KL step whether sigma is 0.5 or 0.005, whereas with raw (mu, log sigma)
# Adam's fixed parameter step becomes an unbounded KL step once sigma has shrunk.

R_BANDIT = torch.tensor([0.0, 0.5, 1.0])
C_STAR = 0.5
N_SAMPLES, ITERS, M_STEPS = 128, 50, 60
EPS_E, EPS_D, EPS_C = 0.1, 0.02, 0.02
# Slack on the per-iteration M-step KL. The multipliers follow first-order descent-ascent: while a
# bound is slack its multiplier decays toward 0, and when a later iteration's target lies far
# outside the bound the multiplier needs a few steps to recover, so single iterations overshoot.
# Over seeds 0-9 the worst iteration reached 1.13-1.90x (discrete) and 1.16-1.32x (continuous);
# an unconstrained fit in the same runs reaches > 10x, so 2x still separates the two clearly.
KL_SLACK = 2.0


class BanditRun(NamedTuple):
    p_best: float
    action: float
    kl_d: list[float]
    kl_c: list[float]
    kl_d_unconstrained: list[float]
    kl_c_unconstrained: list[float]
    e_step_kl: list[float]


def _tanh_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log density of c = tanh(u), u ~ N(mean, std), at c = tanh(u): Gaussian minus log |dc/du|."""
    gauss = -0.5 * ((u - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return gauss - torch.log1p(-(torch.tanh(u) ** 2) + 1e-12)


def _categorical_kl(logits_old: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    log_old = torch.log_softmax(logits_old, -1)
    return (log_old.exp() * (log_old - torch.log_softmax(logits, -1))).sum(-1)


def _gaussian_kl(
    mean_old: torch.Tensor, std_old: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Full KL of the pre-tanh Gaussians = KL of the tanh-Gaussians (tanh is a bijection)."""
    return (
        torch.log(std / std_old) + (std_old**2 + (mean_old - mean) ** 2) / (2 * std**2) - 0.5
    ).sum(-1)


def _displaced(
    logits: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, delta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Policy = old + delta: logits + d[:3], mean + std d[3], std exp(d[4])."""
    return logits + delta[:3], mean + std * delta[3:4], std * delta[4:5].exp()


def _run_bandit(seed: int, iters: int = ITERS) -> BanditRun:
    gen = torch.Generator().manual_seed(seed)
    logits, mean, std = torch.zeros(3), torch.zeros(1), torch.full((1,), 0.5)
    raw_lagrange = torch.stack([raw_from_positive(1.0)] * 2).requires_grad_(True)
    delta = torch.zeros(5, requires_grad=True)  # displacement from the old policy
    # One Adam, two groups: the multipliers keep their state across iterations, the displacement
    # restarts from zero (and a fresh state) at every iteration.
    opt = torch.optim.Adam([{"params": [delta], "lr": 0.05}, {"params": [raw_lagrange], "lr": 0.1}])
    run = BanditRun(0.0, 0.0, [], [], [], [], [])
    for _ in range(iters):
        d = torch.multinomial(torch.softmax(logits, -1), N_SAMPLES, True, generator=gen)
        u = mean + std * torch.randn(N_SAMPLES, generator=gen)
        q = (R_BANDIT[d] - 2.0 * (torch.tanh(u) - C_STAR) ** 2)[None]
        w = e_step_weights(q, solve_eta(q, EPS_E))
        run.e_step_kl.append(float(e_step_kl(w)[0]))
        # Closed-form unconstrained weighted MLE, to show the M-step bounds are binding.
        p_fit = torch.zeros(3).index_add_(0, d, w[0])
        m_fit = (w[0] * u).sum()
        s_fit = (w[0] * (u - m_fit) ** 2).sum().sqrt()
        run.kl_d_unconstrained.append(float(_categorical_kl(logits, p_fit.log())))
        run.kl_c_unconstrained.append(float(_gaussian_kl(mean, std, m_fit[None], s_fit[None])))

        with torch.no_grad():
            delta.zero_()
        opt.state.pop(delta, None)
        for _ in range(M_STEPS):
            new_logits, new_mean, new_std = _displaced(logits, mean, std, delta)
            lam = lagrange_from_raw(raw_lagrange)
            out = m_step_loss(
                torch.log_softmax(new_logits, -1)[d][None],
                _tanh_gaussian_log_prob(u, new_mean, new_std)[None],
                w,
                _categorical_kl(logits, new_logits)[None],
                _gaussian_kl(mean, std, new_mean, new_std)[None],
                lam[0],
                lam[1],
                EPS_D,
                EPS_C,
            )
            opt.zero_grad()
            (out.policy + out.lagrange).backward()
            opt.step()
        with torch.no_grad():
            new_logits, new_mean, new_std = _displaced(logits, mean, std, delta)
            run.kl_d.append(float(_categorical_kl(logits, new_logits)))
            run.kl_c.append(float(_gaussian_kl(mean, std, new_mean, new_std)))
            logits, mean, std = new_logits, new_mean, new_std
    return run._replace(
        p_best=float(torch.softmax(logits, -1)[2]), action=math.tanh(float(mean[0]))
    )


def test_hybrid_bandit_reaches_the_optimum_within_the_kl_bounds() -> None:
    run = _run_bandit(seed=0)
    max_d, max_c = max(run.kl_d), max(run.kl_c)
    print(  # shown with pytest -s
        f"p(d*)={run.p_best:.4f} tanh(mean)={run.action:.4f} "
        f"max KL_d={max_d:.4f} ({max_d / EPS_D:.2f}x of {EPS_D}) "
        f"max KL_c={max_c:.4f} ({max_c / EPS_C:.2f}x of {EPS_C}) "
        f"max unconstrained KL_d={max(run.kl_d_unconstrained):.3g} "
        f"KL_c={max(run.kl_c_unconstrained):.3g} max E-step KL={max(run.e_step_kl):.4f}"
    )
    assert run.p_best > 0.9
    assert abs(run.action - C_STAR) < 0.1
    assert max_d <= KL_SLACK * EPS_D
    assert max_c <= KL_SLACK * EPS_C
    # The bounds bind: the unconstrained weighted-MLE fit would have moved much further.
    assert max(run.kl_d_unconstrained) > 5 * EPS_D
    assert max(run.kl_c_unconstrained) > 5 * EPS_C
    # Once d* dominates, the continuous bound is active every iteration and held on average.
    late = run.kl_c[ITERS // 2 :]
    assert 0.8 * EPS_C < sum(late) / len(late) < 1.2 * EPS_C
    # The exact dual puts the E-step KL on its bound (continuous samples never tie).
    assert max(abs(kl - EPS_E) for kl in run.e_step_kl) < 1e-4


def test_hybrid_bandit_is_deterministic() -> None:
    a, b = _run_bandit(seed=3, iters=3), _run_bandit(seed=3, iters=3)
    assert a == b and a != _run_bandit(seed=4, iters=3)
