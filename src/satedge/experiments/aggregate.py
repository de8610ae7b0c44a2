"""Aggregation over seeds: interquartile mean with stratified-bootstrap confidence intervals.

The method is rliable's (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
NeurIPS 2021): the point estimate is the interquartile mean (IQM), the 25 % trimmed mean of all
scores (``scipy.stats.trim_mean(scores, 0.25)``: ``floor(n / 4)`` values cut at each end, so with
fewer than 4 seeds it is the plain mean); the 95 % interval is the percentile interval of the IQM
over bootstrap resamples in which the runs (seeds) of every stratum (task, here a swept value or
a figure's setting) are drawn with replacement within that stratum. This is a small own
implementation: rliable's own code pulls ``arch``, ``statsmodels`` and ``seaborn`` and draws from
numpy's global random state; ``tests/experiments/test_aggregate.py`` checks ours against
hand-computed values and, when it is installed, against rliable's numbers.

:func:`aggregate_finals` and :func:`aggregate_curves` return long tables (one row per group and
metric) with ``n`` (seeds), ``iqm``, ``ci_low``, ``ci_high`` and ``mean``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from satedge.experiments.results import FINAL_METRICS

__all__ = ["aggregate_curves", "aggregate_finals", "iqm", "stratified_bootstrap_ci"]

FINAL_GROUP = ("figure", "method", "x_name", "x")
CURVE_GROUP = ("figure", "method", "x_name", "x", "step")
_STAT_COLUMNS = ["metric", "n", "iqm", "ci_low", "ci_high", "mean"]


def _iqm_rows(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """IQM of each row of ``values`` [R, n] (sorted copy; ``floor(n / 4)`` cut at each end)."""
    n = values.shape[-1]
    cut = int(0.25 * n)
    ordered = np.sort(values, axis=-1)
    return np.asarray(ordered[..., cut:n - cut].mean(axis=-1))


def iqm(scores: ArrayLike) -> float:
    """Interquartile mean of all ``scores`` (any shape, flattened; nan is an error)."""
    flat = np.asarray(scores, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("iqm of no scores")
    if np.isnan(flat).any():
        raise ValueError("iqm: scores contain nan; drop missing runs first")
    return float(_iqm_rows(flat[None, :])[0])


def stratified_bootstrap_ci(strata: Sequence[ArrayLike], reps: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the IQM of all scores, resampling runs within each stratum.

    Args:
        strata: one 1-D array of scores per stratum (the runs of one task); sizes may differ.
            A single stratum is the plain bootstrap over seeds.
        reps: bootstrap resamples.
        confidence: interval size in (0, 1).
        seed: seed of the resampling generator (the interval depends on it alone).

    Returns:
        ``(low, high)``; a single score gives a zero-width interval at that score.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    if reps < 1:
        raise ValueError(f"reps={reps} must be at least 1")
    groups = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("every stratum needs at least one score")
    rng = np.random.default_rng(seed)
    samples = np.concatenate([g[rng.integers(0, g.size, size=(reps, g.size))] for g in groups],
                             axis=1)
    stats = _iqm_rows(samples)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def _summarise(values: NDArray[np.float64], reps: int, confidence: float,
               seed: int) -> dict[str, float]:
    low, high = stratified_bootstrap_ci([values], reps, confidence, seed)
    return {"n": int(values.size), "iqm": iqm(values), "ci_low": low, "ci_high": high,
            "mean": float(values.mean())}


def _aggregate(table: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], reps: int,
               confidence: float, seed: int, carry: Sequence[str] = ()) -> pd.DataFrame:
    """One row per group of ``by`` and metric; ``carry`` columns keep their group maximum."""
    missing = sorted(set(by) - set(table.columns))
    if missing:
        raise ValueError(f"group columns {missing} are not in the table; it has "
                         f"{sorted(table.columns)}")
    unknown = sorted(set(metrics) - set(table.columns))
    if unknown:
        raise ValueError(f"metrics {unknown} are not in the table; it has "
                         f"{sorted(table.columns)}")
    rows = []
    # dropna=False keeps the groups of figures without a swept value (x = nan)
    carry = [c for c in carry if c in table.columns and c not in by]
    for labels, group in table.groupby(list(by), dropna=False, sort=True):
        kept = {**dict(zip(by, labels, strict=True)), **{c: group[c].max() for c in carry}}
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            if values.size:
                rows.append({**kept, "metric": metric,
                             **_summarise(values, reps, confidence, seed)})
    return pd.DataFrame(rows, columns=[*by, *carry, *_STAT_COLUMNS])


def aggregate_finals(finals: pd.DataFrame, metrics: Sequence[str] | None = None,
                     by: Sequence[str] = FINAL_GROUP, reps: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """IQM and interval of final metrics over seeds, per (figure, method, x_name, x).

    Args:
        finals: :func:`satedge.experiments.results.load_finals` (or a filtered copy).
        metrics: metric columns (default: every final metric in the table).
        by: group columns; every other label (seed, key) is aggregated over.
    """
    if metrics is None:
        metrics = [m for m in FINAL_METRICS if m in finals.columns]
    return _aggregate(finals, by, metrics, reps, confidence, seed)


def aggregate_curves(curves: pd.DataFrame, metrics: Sequence[str] | None = None,
                     by: Sequence[str] = CURVE_GROUP, reps: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """IQM and interval over seeds of each curve metric at each step, per (figure, method,
    x_name, x). Missing values (a record without that metric) are skipped, so a step where only
    some seeds evaluated has a smaller ``n``. ``episodes`` is carried along when the table has it.

    Args:
        curves: :func:`satedge.experiments.results.load_curves` (or a filtered copy).
        metrics: metric columns (default: every ``eval/*`` column).
    """
    if metrics is None:
        metrics = sorted(c for c in curves.columns if c.startswith("eval/"))
    return _aggregate(curves, by, metrics, reps, confidence, seed, carry=("episodes",))
