"""Masked categorical, tanh-Gaussian and hybrid distributions against hand-computed values,
torch.distributions, numerical integration and seeded sampling statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch.distributions import Categorical, Normal, kl_divergence

from satedge.agents.common.distributions import (
    HybridDistribution,
    MaskedCategorical,
    TanhGaussian,
)

torch.set_num_threads(1)

LN2, LN3 = math.log(2.0), math.log(3.0)
H_UNMASKED = 1.0114042647073518  # -(1/6 ln 1/6 + 1/3 ln 1/3 + 1/2 ln 1/2)
H_MASKED = 0.5623351446188083    # -(1/4 ln 1/4 + 3/4 ln 3/4)
F64 = torch.float64


def _logits() -> torch.Tensor:
    return torch.tensor([[0.0, LN2, LN3]], dtype=F64)  # [K=1, S=3] -> probs 1/6, 2/6, 3/6


# ---------------------------------------------------------------------------------- categorical
def test_categorical_unmasked_by_hand() -> None:
    d = MaskedCategorical(_logits())
    torch.testing.assert_close(d.probs, torch.tensor([[1 / 6, 2 / 6, 3 / 6]], dtype=F64))
    torch.testing.assert_close(d.log_prob(torch.tensor([2])), torch.tensor([math.log(0.5)],
                                                                          dtype=F64))
    torch.testing.assert_close(d.entropy(), torch.tensor([H_UNMASKED], dtype=F64))
    assert d.mode().tolist() == [2]


def test_categorical_masked_by_hand() -> None:
    d = MaskedCategorical(_logits(), torch.tensor([[True, False, True]]))
    assert d.probs[0, 1].item() == 0.0  # exactly zero
    torch.testing.assert_close(d.probs, torch.tensor([[0.25, 0.0, 0.75]], dtype=F64))
    torch.testing.assert_close(d.log_prob(torch.tensor([0])), torch.tensor([math.log(0.25)],
                                                                          dtype=F64))
    assert d.log_prob(torch.tensor([1])).item() < -1e8  # finite but hugely improbable
    torch.testing.assert_close(d.entropy(), torch.tensor([H_MASKED], dtype=F64))
    assert torch.isfinite(d.log_probs).all()
    # KL([1/4, 0, 3/4] || [1/6, 2/6, 3/6]) = 1/4 ln(3/2) + 3/4 ln(3/2) = ln 1.5
    torch.testing.assert_close(d.kl(MaskedCategorical(_logits())),
                               torch.tensor([math.log(1.5)], dtype=F64))
    assert d.kl(d).item() == 0.0


def test_all_false_row_is_unmasked_and_rows_are_independent() -> None:
    logits = _logits().expand(2, 3)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    d = MaskedCategorical(logits, mask)
    torch.testing.assert_close(d.probs[1], MaskedCategorical(_logits()).probs[0])
    torch.testing.assert_close(d.entropy(), torch.tensor([H_MASKED, H_UNMASKED], dtype=F64))
    torch.testing.assert_close(d.log_prob(torch.tensor([2, 1])),
                               torch.tensor([math.log(0.75), math.log(1 / 3)], dtype=F64))


def test_categorical_matches_torch_without_mask_and_log_prob_broadcasts() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 5, generator=gen, dtype=F64)
    other = torch.randn(4, 3, 5, generator=gen, dtype=F64)
    d, ref = MaskedCategorical(logits), Categorical(logits=logits)
    torch.testing.assert_close(d.entropy(), ref.entropy())
    torch.testing.assert_close(d.kl(MaskedCategorical(other)),
                               kl_divergence(ref, Categorical(logits=other)))
    actions = torch.randint(0, 5, (7, 4, 3), generator=gen)  # 7 samples per state
    torch.testing.assert_close(d.log_prob(actions), ref.log_prob(actions))


def test_masked_gradients_are_finite_and_never_reach_masked_logits() -> None:
    logits = torch.tensor([[0.0, 1.0, -float("inf"), 2.0], [0.5, 0.1, 0.2, 0.3]],
                          requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    d = MaskedCategorical(logits, mask)
    other = MaskedCategorical(torch.zeros(2, 4), mask)
    loss = (d.entropy().sum() + d.log_prob(torch.tensor([0, 1])).sum() + d.kl(other).sum()
            + other.kl(d).sum())
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 1] == 0.0 and logits.grad[0, 2] == 0.0  # masked / -inf logit
    assert torch.isfinite(loss)


@pytest.mark.parametrize("masked", [False, True])
def test_sampled_frequencies_match_probs_chi_square(masked: bool) -> None:
    n = 60_000
    mask = torch.tensor([[True, not masked, True]])
    d = MaskedCategorical(_logits().expand(n, 1, 3), mask)
    draws = d.sample(torch.Generator().manual_seed(1))
    assert draws.dtype == torch.int64 and draws.shape == (n, 1)
    counts = np.bincount(draws.numpy().ravel(), minlength=3)
    p = d.probs[0, 0].numpy()
    if masked:
        assert counts[1] == 0
    keep = p > 0
    chi2 = float(np.sum((counts[keep] - n * p[keep]) ** 2 / (n * p[keep])))
    assert stats.chi2.sf(chi2, df=int(keep.sum()) - 1) > 1e-3
    again = d.sample(torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6))
def test_categorical_properties(seed: int, s: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = 5 * torch.randn(3, 4, s, generator=gen)
    mask = torch.rand(3, 4, s, generator=gen) < 0.5
    d = MaskedCategorical(logits, mask)
    eff = mask | ~mask.any(-1, keepdim=True)
    torch.testing.assert_close(d.probs.sum(-1), torch.ones(3, 4))
    assert torch.all(d.probs[~eff] == 0)
    h = d.entropy()
    assert torch.all(h >= -1e-6)
    assert torch.all(h <= torch.log(eff.sum(-1).float()) + 1e-5)
    assert torch.all(torch.take_along_dim(eff, d.sample(gen)[..., None], -1))
    assert torch.all(torch.take_along_dim(eff, d.mode()[..., None], -1))


# -------------------------------------------------------------------------------- tanh-Gaussian
def test_tanh_gaussian_log_prob_is_change_of_variables_by_hand() -> None:
    mu, sigma, u = 0.3, 0.5, 0.7
    by_hand = (-0.5 * ((u - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
               - math.log(1.0 - math.tanh(u) ** 2))
    d = TanhGaussian(torch.tensor([mu], dtype=F64), torch.tensor([math.log(sigma)], dtype=F64))
    assert d.log_prob(pre_tanh=torch.tensor([u], dtype=F64)).item() == pytest.approx(by_hand,
                                                                                     rel=1e-12)
    assert d.log_prob(torch.tensor([math.tanh(u)], dtype=F64)).item() == pytest.approx(
        by_hand, rel=1e-9)
    # two dimensions: the sum of the per-dimension terms
    d2 = TanhGaussian(torch.tensor([mu, 0.0], dtype=F64), torch.tensor([math.log(sigma), 0.0],
                                                                         dtype=F64))
    lp = d2.log_prob(pre_tanh=torch.tensor([u, 0.0], dtype=F64)).item()
    assert lp == pytest.approx(by_hand - 0.5 * math.log(2 * math.pi), rel=1e-12)
    with pytest.raises(ValueError):
        d.log_prob()


def test_tanh_jacobian_is_stable_where_tanh_saturates() -> None:
    u = torch.tensor([20.0, -20.0])
    d = TanhGaussian(torch.tensor([19.0, -19.0]), torch.zeros(2))
    lp = d.log_prob(pre_tanh=u)  # float32: 1 - tanh(20)^2 rounds to 0, the naive form is -inf
    # log(1 - tanh^2 u) = log(4) - 2|u| - 2 log(1 + e^{-2|u|}) ~= log 4 - 40 per dimension
    expected = 2 * (-0.5 - 0.5 * math.log(2 * math.pi) - (math.log(4.0) - 40.0))
    assert torch.isfinite(lp) and lp.item() == pytest.approx(expected, rel=1e-6)


def test_tanh_gaussian_density_integrates_to_one() -> None:
    d = TanhGaussian(torch.tensor([0.5], dtype=F64), torch.tensor([math.log(0.8)], dtype=F64))
    a = torch.linspace(-1.0, 1.0, 400_001, dtype=F64)[1:-1]
    density = d.log_prob(a[:, None]).exp()
    assert torch.trapezoid(density, a).item() == pytest.approx(1.0, abs=1e-6)


def test_rsample_is_seeded_reparameterised_and_squashed() -> None:
    mean = torch.tensor([[0.2, -1.0, 3.0]], requires_grad=True)
    d = TanhGaussian(mean, torch.full((1, 3), -0.5))
    a1, u1 = d.rsample(torch.Generator().manual_seed(3))
    a2, u2 = d.rsample(torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(u1, u2)
    torch.testing.assert_close(a1, torch.tanh(u1))
    assert torch.all(a1.abs() < 1)
    a1.sum().backward()
    assert mean.grad is not None
    torch.testing.assert_close(mean.grad, 1 - torch.tanh(u1.detach()) ** 2)  # da/dmu
    torch.testing.assert_close(d.mode(), torch.tanh(mean.detach()))


def test_gaussian_entropy_and_kl_match_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    m1, m2, l1, l2 = (torch.randn(5, 3, generator=gen, dtype=F64) for _ in range(4))
    p, q = TanhGaussian(m1, l1), TanhGaussian(m2, l2)
    np_, nq = Normal(m1, l1.exp()), Normal(m2, l2.exp())
    torch.testing.assert_close(p.gaussian_entropy(), np_.entropy().sum(-1))
    torch.testing.assert_close(p.kl(q), kl_divergence(np_, nq).sum(-1))
    torch.testing.assert_close(p.kl(p), torch.zeros(5, dtype=F64))


def test_decoupled_kls_by_hand_and_their_sum() -> None:
    def g(m: float, s: float) -> TanhGaussian:
        return TanhGaussian(torch.tensor([m], dtype=F64), torch.tensor([math.log(s)], dtype=F64))

    old, new = g(0.0, 1.0), g(1.0, 2.0)
    # KL(N(0,1)||N(1,4)) = ln 2 + (1 + 1)/8 - 1/2; mean part (1-0)^2 / (2 * 1); std part with
    # the old mean: ln 2 + 1/8 - 1/2. In general the parts do not add up to the full KL.
    assert old.kl(new).item() == pytest.approx(LN2 + 0.25 - 0.5, rel=1e-12)
    assert old.kl_mean(new).item() == pytest.approx(0.5, rel=1e-12)
    assert old.kl_std(new).item() == pytest.approx(LN2 + 0.125 - 0.5, rel=1e-12)
    mean_only, std_only = g(1.0, 1.0), g(0.0, 2.0)
    for other in (mean_only, std_only):  # only one of mean / std differs: parts sum to the KL
        total = old.kl_mean(other) + old.kl_std(other)
        torch.testing.assert_close(total, old.kl(other))
    assert old.kl_std(mean_only).item() == 0.0 and old.kl_mean(std_only).item() == 0.0


def test_decoupled_kl_gradients_reach_only_the_intended_parameter() -> None:
    old = TanhGaussian(torch.zeros(2), torch.zeros(2))
    mean, log_std = torch.ones(2, requires_grad=True), torch.full((2,), 0.3, requires_grad=True)
    online = TanhGaussian(mean, log_std)
    old.kl_mean(online).backward()
    assert mean.grad is not None and log_std.grad is None
    mean.grad = None
    old.kl_std(online).backward()
    assert mean.grad is None and log_std.grad is not None


def test_entropy_estimate_matches_squashed_entropy_by_quadrature() -> None:
    mu, sigma = 0.4, 1.2
    d = TanhGaussian(torch.tensor([mu], dtype=F64), torch.tensor([math.log(sigma)], dtype=F64))
    # H[tanh u] = H[u] + E[log(1 - tanh(u)^2)], the expectation by quadrature over u
    u = torch.linspace(mu - 12 * sigma, mu + 12 * sigma, 200_001, dtype=F64)
    w = Normal(mu, sigma).log_prob(u).exp()
    log_det = torch.log1p(-torch.tanh(u) ** 2)
    exact = d.gaussian_entropy().item() + torch.trapezoid(w * log_det, u).item()
    hybrid = HybridDistribution(MaskedCategorical(torch.zeros(200_000, 1, 2, dtype=F64)),
                                TanhGaussian(d.mean.expand(200_000, 1), d.log_std.expand(200_000,
                                                                                         1)))
    _, _, samples = hybrid.sample(torch.Generator().manual_seed(5))
    est = hybrid.entropy_estimate(samples)
    # Monte Carlo error: std of log p over 2e5 samples is ~1e-3
    assert est.continuous.mean().item() == pytest.approx(exact, abs=6e-3)
    assert exact < d.gaussian_entropy().item()
    torch.testing.assert_close(est.discrete, torch.full((200_000,), LN2, dtype=F64))


# ------------------------------------------------------------------------------------- hybrid
def _hybrid() -> HybridDistribution:
    cat = MaskedCategorical(_logits().expand(2, 3), torch.tensor([[True, False, True],
                                                                  [False, False, False]]))
    gauss = TanhGaussian(torch.tensor([0.3], dtype=F64), torch.tensor([math.log(0.5)],
                                                                        dtype=F64))
    return HybridDistribution(cat, gauss)


def test_hybrid_log_prob_and_entropy_by_hand() -> None:
    h = _hybrid()
    lp = h.log_prob(torch.tensor([2, 0]), pre_tanh=torch.tensor([0.7], dtype=F64))
    cont = (-0.5 * 0.8**2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
            - math.log(1 - math.tanh(0.7) ** 2))
    assert lp.discrete.item() == pytest.approx(math.log(0.75) + math.log(1 / 6), rel=1e-12)
    assert lp.continuous.item() == pytest.approx(cont, rel=1e-12)
    assert lp.joint.item() == pytest.approx(lp.discrete.item() + cont, rel=1e-12)
    ent = h.entropy()
    gauss_h = 0.5 + 0.5 * math.log(2 * math.pi) + math.log(0.5)
    assert ent.discrete.item() == pytest.approx(H_MASKED + H_UNMASKED, rel=1e-12)
    assert ent.continuous.item() == pytest.approx(gauss_h, rel=1e-12)
    assert ent.joint.item() == pytest.approx(H_MASKED + H_UNMASKED + gauss_h, rel=1e-12)


def test_hybrid_sample_is_seeded_and_respects_mask() -> None:
    h = _hybrid()
    a_d, a_c, u = h.sample(torch.Generator().manual_seed(0))
    b_d, b_c, v = h.sample(torch.Generator().manual_seed(0))
    assert torch.equal(a_d, b_d) and torch.equal(a_c, b_c) and torch.equal(u, v)
    assert a_d.shape == (2,) and a_c.shape == (1,) and a_d[0].item() != 1
    torch.testing.assert_close(h.log_prob(a_d, a_c).joint, h.log_prob(a_d, pre_tanh=u).joint)
    mode_d, mode_c = h.mode()
    assert mode_d.tolist() == [2, 2] and mode_c.item() == pytest.approx(math.tanh(0.3))
    with pytest.raises(ValueError, match="batch shapes"):
        HybridDistribution(MaskedCategorical(torch.zeros(4, 2, 3)), TanhGaussian(torch.zeros(
            3, 1), torch.zeros(3, 1)))
