"""Task arrivals and sizes: statistical checks of the inverse-CDF sampling and hand values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from satedge.sim.tasks import (
    CAPTION_TOKENS,
    SUMMARY_TOKENS,
    VQA_TOKENS,
    poisson_cdf_table,
    request_counts,
    sample_tasks,
    uniforms_per_slot,
)


@pytest.mark.parametrize("rate", [1.0, 1.25, 1.5])
def test_request_counts_are_poisson(rate: float) -> None:
    rng = np.random.default_rng(1)
    cdf = poisson_cdf_table(np.array([rate]), 12)
    n = request_counts(rng.random(200_000), np.broadcast_to(cdf, (200_000, 12)))
    # Mean and variance of Poisson(rate): both equal rate; 5-sigma tolerance on the mean.
    assert abs(n.mean() - rate) < 5 * np.sqrt(rate / n.size)
    observed = np.bincount(n, minlength=8)[:6]
    expected = stats.poisson.pmf(np.arange(6), rate) * n.size
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert chi2 < stats.chi2.ppf(0.999, df=5)


def test_truncation_puts_tail_on_the_cap() -> None:
    cdf = poisson_cdf_table(np.array([3.0]), 2)
    assert request_counts(np.array([0.999999]), cdf[None, :].repeat(1, 0))[0] == 2
    assert request_counts(np.array([0.0]), cdf)[0] == 0


def _sample(u: np.ndarray, cdf: np.ndarray, mix=(0.25, 0.25, 0.25, 0.25)):
    return sample_tasks(u, cdf, image_bits=(1e6, 2e6), text_tokens=(10, 20),
                        bits_per_text_token=32.0, service_mix=mix, deadline_s=(2.0, 4.0),
                        accuracy_min=(0.3, 0.7))


def test_sizes_add_up_over_requests_and_follow_service_types() -> None:
    b, k, r = 4000, 3, 4
    rng = np.random.default_rng(2)
    cdf = np.broadcast_to(poisson_cdf_table(np.array(1.5), r), (b, k, r))
    u = rng.random((b, uniforms_per_slot(k, r)))
    for svc, expected in ((0, VQA_TOKENS), (2, SUMMARY_TOKENS)):
        mix = tuple(1.0 if i == svc else 0.0 for i in range(4))
        t = _sample(u, cdf, mix)
        assert np.all(t.output_tokens == expected * t.n_requests)
    t = _sample(u, cdf, (0, 1.0, 0, 0))
    per_request = t.output_tokens[t.n_requests == 1]
    assert set(np.unique(per_request)) == set(CAPTION_TOKENS)
    t = _sample(u, cdf, (0, 0, 0, 1.0))
    assert np.all(t.output_tokens == t.text_tokens)  # translation: output = prompt tokens
    t = _sample(u, cdf)
    one = t.n_requests == 1
    assert np.all((t.upload_bits[one] >= 1e6 + 10 * 32) & (t.upload_bits[one] <= 2e6 + 20 * 32))
    assert np.all((t.text_tokens[one] >= 10) & (t.text_tokens[one] <= 20))
    assert np.all(t.upload_bits[t.n_requests == 0] == 0)
    assert np.all((t.deadline_s >= 2.0) & (t.deadline_s <= 4.0))
    assert np.all((t.accuracy_min >= 0.3) & (t.accuracy_min <= 0.7))
    # Mean upload per request: E[image] + E[text] * 32 = 1.5e6 + 15 * 32 bit.
    mean = t.upload_bits[one].mean()
    assert abs(mean - (1.5e6 + 15 * 32)) < 5 * 2.9e5 / np.sqrt(one.sum())


def _dense_reference(u: np.ndarray, cdf: np.ndarray, mix: tuple[float, ...]) -> dict:
    """Sizes computed for all R request slots and masked (the algorithm before the speed-up)."""
    b, k, r = cdf.shape
    per = u[:, : uniforms_per_slot(k, r)].reshape(b, k, -1)
    n = np.sum(per[..., 0, None] >= cdf, axis=-1)
    u_img, u_txt, u_svc, u_lvl = np.split(per[..., 3:], 4, axis=-1)
    used = np.arange(r) < n[..., None]
    img = 1e6 + 1e6 * u_img
    txt = np.minimum(np.floor(10 + 11 * u_txt), 20)
    service = np.sum(u_svc[..., None] >= np.cumsum(mix)[:-1], axis=-1)
    caption = np.where(u_lvl < 0.5, CAPTION_TOKENS[0], CAPTION_TOKENS[1])
    out = np.choose(service, (np.full_like(txt, VQA_TOKENS), caption,
                              np.full_like(txt, SUMMARY_TOKENS), np.maximum(txt, 1.0)))
    return {"n_requests": n, "upload_bits": np.sum(np.where(used, img + txt * 32.0, 0), -1),
            "text_tokens": np.sum(np.where(used, txt, 0), -1),
            "output_tokens": np.sum(np.where(used, out, 0), -1)}


@pytest.mark.parametrize("mix", [(0.25, 0.25, 0.25, 0.25), (0.1, 0.0, 0.6, 0.3)])
def test_sparse_sampling_matches_dense_reference(mix: tuple[float, ...]) -> None:
    """Only existing requests are computed; the result equals computing all R slots (counts and
    token sums exactly; upload bits to the last bit or two, as the sum order differs)."""
    b, k, r = 300, 7, 8
    rng = np.random.default_rng(5)
    cdf = poisson_cdf_table(rng.uniform(0.5, 4.0, (b, k)), r)  # rates up to 4: many requests
    u = rng.random((b, uniforms_per_slot(k, r) + 13))  # extra columns are ignored
    t = _sample(u, cdf, mix)
    ref = _dense_reference(u, cdf, mix)
    np.testing.assert_array_equal(t.n_requests, ref["n_requests"])
    np.testing.assert_array_equal(t.text_tokens, ref["text_tokens"])
    np.testing.assert_array_equal(t.output_tokens, ref["output_tokens"])
    np.testing.assert_allclose(t.upload_bits, ref["upload_bits"], rtol=1e-15, atol=0)
    exact = _sample(np.ascontiguousarray(u[:, : uniforms_per_slot(k, r)]), cdf, mix)
    np.testing.assert_array_equal(exact.upload_bits, t.upload_bits)
    assert t.n_requests.max() == r  # the cap is exercised
