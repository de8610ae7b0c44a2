"""From saved per-seed results to the numbers a figure plots: IQM and 95 % CI per point.

Every plotted point is the interquartile mean (IQM) over seeds with a 95 % stratified-bootstrap
confidence interval, computed by :func:`satedge.experiments.aggregate.aggregate_finals`; the
tables returned here (group columns, then ``iqm, ci_low, ci_high, n_seeds``) are exactly what the
figures draw and what their CSV files hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["CI_NOTE", "STAT_COLUMNS", "figure_rows", "normalise_figure", "require_columns",
           "summarise_curves", "summarise_finals"]

CI_NOTE = "IQM over seeds, shaded / bars: 95 % stratified-bootstrap CI"
STAT_COLUMNS = ("iqm", "ci_low", "ci_high", "n_seeds")
"""Columns every summary table ends with."""


def normalise_figure(figure: object) -> str:
    """A figure id as a plain string: ``3``, ``"3"``, ``"fig3"`` and ``"fig03"`` all give "3"."""
    text = str(figure).strip().lower().removeprefix("fig").removeprefix("ure").strip("_ -")
    return text.lstrip("0") or text


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the first of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column {missing[0]!r}; it has {sorted(df.columns)}")


def figure_rows(df: pd.DataFrame, figure: object) -> pd.DataFrame:
    """The rows of one figure (ids compared through :func:`normalise_figure`)."""
    require_columns(df, ["figure"], "results table")
    keep = df["figure"].map(normalise_figure) == normalise_figure(figure)
    return df.loc[keep]


def _summarise(table: pd.DataFrame, metric: str, by: Sequence[str]) -> pd.DataFrame:
    from satedge.experiments.aggregate import aggregate_finals

    out = aggregate_finals(table, [metric], by=list(by))
    out = out.rename(columns={"n": "n_seeds"})
    return out[[*by, *STAT_COLUMNS]].reset_index(drop=True)


def summarise_finals(finals: pd.DataFrame, metric: str, by: Sequence[str] = ("method", "x"),
                     scale: float = 1.0) -> pd.DataFrame:
    """One row per group of ``by`` with the IQM and CI over seeds of ``metric`` times ``scale``
    (:func:`satedge.experiments.aggregate.aggregate_finals`).

    Groups keep a NaN ``x`` (figures with one scenario). Seeds whose value is NaN are left out
    of the group and of ``n_seeds``; a group with no value at all has no row.
    """
    require_columns(finals, [*by, "seed", metric], "finals table")
    table = finals[[*by, "seed"]].assign(**{metric: finals[metric].astype(np.float64) * scale})
    return _summarise(table, metric, by)


def _on_grid(group: pd.DataFrame, metric: str, smooth: int) -> pd.DataFrame:
    """One seed's curve, moving-averaged over ``smooth`` logged points (trailing window)."""
    curve = group[["episodes", metric]].dropna().sort_values("episodes")
    curve = curve.groupby("episodes")[metric].mean().reset_index()
    if smooth > 1:
        curve[metric] = curve[metric].rolling(smooth, min_periods=1).mean()
    return curve


def summarise_curves(curves: pd.DataFrame, metric: str, by: Sequence[str] = ("method", "x"),
                     smooth: int = 1) -> pd.DataFrame:
    """Learning curves: per group of ``by`` and per ``episodes`` value, IQM and CI over seeds.

    Each seed's curve is first smoothed by a trailing moving average of ``smooth`` logged points
    (1: none). Seeds that logged at different episode counts are put on the union of the logged
    counts by linear interpolation inside each seed's own range (never extrapolated).
    """
    if smooth < 1:
        raise ValueError(f"smooth={smooth} must be at least 1 (logged points per average)")
    require_columns(curves, [*by, "seed", "episodes", metric], "curves table")
    parts = []
    for keys, group in curves.groupby(list(by), dropna=False, sort=True):
        per_seed = {seed: _on_grid(g, metric, smooth) for seed, g in group.groupby("seed")}
        per_seed = {s: c for s, c in per_seed.items() if len(c)}
        if not per_seed:
            continue
        grid = np.unique(np.concatenate([c["episodes"].to_numpy() for c in per_seed.values()]))
        for seed, c in per_seed.items():
            ep, val = c["episodes"].to_numpy(np.float64), c[metric].to_numpy(np.float64)
            inside = grid[(grid >= ep[0]) & (grid <= ep[-1])]
            parts.append(pd.DataFrame({**dict(zip(by, keys, strict=True)), "seed": seed,
                                       "episodes": inside,
                                       metric: np.interp(inside, ep, val)}))
    if not parts:
        return pd.DataFrame(columns=[*by, "episodes", *STAT_COLUMNS])
    return _summarise(pd.concat(parts, ignore_index=True), metric, [*by, "episodes"])
