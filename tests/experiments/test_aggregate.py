"""IQM and stratified-bootstrap intervals: hand-computed values, scipy's bootstrap as an
independent reference, a per-stratum reference on scipy's trimmed mean, coverage, and the table
aggregations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

from satedge.experiments.aggregate import (
    aggregate_curves,
    aggregate_finals,
    iqm,
    stratified_bootstrap_ci,
)

SCORES = np.array([3.1, 2.4, 5.9, 4.4, 3.8, 2.2, 9.5, 4.1, 3.3, 4.9])


@pytest.mark.parametrize(("scores", "expected"), [
    ([1, 2, 3, 4, 100, 5, 6, 7], 4.5),  # n=8: drop 2 per end, mean(3, 4, 5, 6)
    ([10, 1, 3, 2, 1000], 5.0),  # n=5: drop 1 per end, mean(2, 3, 10)
    ([2.0, 4.0, 9.0], 5.0),  # n=3 < 4: nothing dropped, the plain mean
    ([[1, 7], [3, 5]], 4.0),  # 2-D (runs x tasks) is flattened: mean(3, 5)
    ([7.5], 7.5),
])
def test_iqm_hand_computed(scores: list[float], expected: float) -> None:
    assert iqm(scores) == pytest.approx(expected, abs=1e-12)


def test_iqm_matches_scipy_trim_mean() -> None:
    assert iqm(SCORES) == pytest.approx(st.trim_mean(SCORES, 0.25), abs=1e-12)
    # sorted: 2.2 2.4 | 3.1 3.3 3.8 4.1 4.4 4.9 | 5.9 9.5 (n = 10: two dropped per end)
    assert iqm(SCORES) == pytest.approx((3.1 + 3.3 + 3.8 + 4.1 + 4.4 + 4.9) / 6, abs=1e-12)


def test_iqm_rejects_nan_and_empty() -> None:
    with pytest.raises(ValueError, match="nan"):
        iqm([1.0, math.nan])
    with pytest.raises(ValueError, match="no scores"):
        iqm([])


def test_single_score_gives_a_zero_width_interval() -> None:
    assert stratified_bootstrap_ci([[2.5]]) == (2.5, 2.5)


def test_interval_matches_scipy_percentile_bootstrap() -> None:
    """One stratum is the plain bootstrap over seeds: scipy's percentile bootstrap of the 25 %
    trimmed mean is an independent implementation; both are Monte Carlo, hence the tolerance
    (about 1.5 % of the data's range at 20,000 resamples)."""
    ref = st.bootstrap((SCORES,), lambda a, axis: st.trim_mean(a, 0.25, axis=axis),
                       n_resamples=20000, method="percentile", random_state=1, vectorized=True)
    low, high = stratified_bootstrap_ci([SCORES], reps=20000, seed=2)
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.1)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.1)
    assert low < iqm(SCORES) < high


def test_resampling_stays_within_each_stratum() -> None:
    """Two strata of constant scores: every stratified resample has the same multiset, so the
    interval collapses to the IQM (a pooled bootstrap would not)."""
    low, high = stratified_bootstrap_ci([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]], reps=500)
    assert low == high == pytest.approx(2.0)  # IQM of (1, 1, 1, 3, 3, 3): mean(1, 1, 3, 3)


def test_stratified_interval_matches_an_independent_reference() -> None:
    rng = np.random.default_rng(7)
    strata = [rng.normal(0.0, 1.0, 5), rng.normal(4.0, 2.0, 8)]  # ragged strata
    reps = 20000
    # per stratum: draw its own runs with replacement, then pool and take scipy's trimmed mean
    pooled = np.concatenate([s[rng.integers(0, s.size, (reps, s.size))] for s in strata], axis=1)
    ref = np.percentile(st.trim_mean(pooled, 0.25, axis=1), [2.5, 97.5])
    low, high = stratified_bootstrap_ci(strata, reps=reps, seed=3)
    assert (low, high) == pytest.approx(tuple(ref), abs=0.08)


def test_interval_is_deterministic_in_its_seed() -> None:
    assert stratified_bootstrap_ci([SCORES], seed=5) == stratified_bootstrap_ci([SCORES], seed=5)
    assert stratified_bootstrap_ci([SCORES], seed=5) != stratified_bootstrap_ci([SCORES], seed=6)


def test_interval_covers_the_true_centre_about_95_percent() -> None:
    """Seeded coverage check: normal data (IQM of the population = its mean 0), 10 seeds. The
    percentile bootstrap under-covers a little at n = 10; 300 trials give a binomial standard
    error of about 1.5 %."""
    rng = np.random.default_rng(11)
    hits = sum(low <= 0.0 <= high for low, high in (
        stratified_bootstrap_ci([rng.normal(0.0, 1.0, 10)], reps=1000, seed=t)
        for t in range(300)))
    assert 0.85 <= hits / 300 <= 0.99


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"confidence=1.5 must lie in \(0, 1\)"):
        stratified_bootstrap_ci([SCORES], confidence=1.5)
    with pytest.raises(ValueError, match="every stratum"):
        stratified_bootstrap_ci([SCORES, []])


def _finals() -> pd.DataFrame:
    rows = []
    for seed, (lat, energy) in enumerate([(1.0, 10.0), (2.0, 20.0), (3.0, math.nan),
                                          (4.0, 40.0), (50.0, 50.0)]):
        rows.append({"figure": "7", "method": "adsac", "x_name": "accuracy_min", "x": 0.3,
                     "seed": seed, "key": f"k{seed}", "latency_s": lat,
                     "energy_j_per_slot": energy})
        rows.append({"figure": "8", "method": "adsac", "x_name": "none", "x": math.nan,
                     "seed": seed, "key": f"n{seed}", "latency_s": 2.0 * lat,
                     "energy_j_per_slot": 1.0})
    return pd.DataFrame(rows)


def test_aggregate_finals_groups_and_skips_missing_values() -> None:
    out = aggregate_finals(_finals(), ["latency_s", "energy_j_per_slot"])
    assert list(out.columns[:5]) == ["figure", "method", "x_name", "x", "metric"]
    assert len(out) == 4  # 2 groups (the nan-x group kept) x 2 metrics
    lat7 = out[(out.figure == "7") & (out.metric == "latency_s")].iloc[0]
    assert lat7.n == 5 and lat7.iqm == pytest.approx(3.0)  # mean(2, 3, 4)
    assert lat7["mean"] == pytest.approx(12.0)
    assert lat7.ci_low <= lat7.iqm <= lat7.ci_high
    en7 = out[(out.figure == "7") & (out.metric == "energy_j_per_slot")].iloc[0]
    assert en7.n == 4 and en7.iqm == pytest.approx(30.0)  # n=4: mean(20, 40)
    lat8 = out[(out.figure == "8") & (out.metric == "latency_s")].iloc[0]
    assert math.isnan(lat8.x) and lat8.iqm == pytest.approx(6.0)
    with pytest.raises(ValueError, match=r"metrics \['latency'\] are not in the table"):
        aggregate_finals(_finals(), ["latency"])


def test_aggregate_curves_per_step_with_missing_evaluations() -> None:
    rows = []
    for seed in range(3):
        for step, episodes in ((20, 4), (40, 8)):
            evaluated = step == 40 or seed == 0  # step 20 only evaluated by seed 0
            rows.append({"figure": "3", "method": "ppo", "x_name": "none", "x": math.nan,
                         "seed": seed, "key": f"k{seed}", "step": step, "episodes": episodes,
                         "eval/episode_return": float(seed + step) if evaluated else math.nan,
                         "train/episode_return": float(seed)})
    out = aggregate_curves(pd.DataFrame(rows))
    assert set(out.metric) == {"eval/episode_return"}
    assert list(out.step) == [20, 40] and list(out.episodes) == [4, 8]
    assert list(out.n) == [1, 3]
    assert out.iqm.tolist() == pytest.approx([20.0, 41.0])
