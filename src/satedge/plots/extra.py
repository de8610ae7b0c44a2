"""Figures beyond the paper, drawn from saved results only.

- :func:`optimality_gap`: how far each method's system cost is above the per-slot optimiser's
  (method ``optimizer``), in %, per figure that ran the optimiser.
- :func:`latency_cdf`: the distribution of per-task latency of each method, deadline marked.
- :func:`server_share`: the share of executed tasks served by UAVs against each swept value
  (the rest went to satellites).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from satedge.plots.panels import bar_panel, line_panel, order_methods, seeds_note, sweep_x_name
from satedge.plots.style import (
    Rendered,
    method_label,
    method_style,
    metric_label,
    new_figure,
    save_figure,
    x_label,
)
from satedge.plots.summary import (
    CI_NOTE,
    STAT_COLUMNS,
    figure_rows,
    normalise_figure,
    require_columns,
    summarise_finals,
)

__all__ = ["OPTIMIZER", "QUANTILES", "cdf_table", "gap_table", "latency_cdf", "optimality_gap",
           "server_share"]

OPTIMIZER = "optimizer"
"""Method name of the per-slot optimiser, the reference of the optimality gap."""

_LOG_TAIL = 4.0
"""The CDF's latency axis is logarithmic when a quantile exceeds this many deadlines."""

QUANTILES = np.round(np.linspace(0.01, 0.99, 99), 2)
"""Probability levels at which the latency CDF is computed and written."""


def _figures(df: pd.DataFrame) -> list[str]:
    return sorted(df["figure"].map(normalise_figure).unique(), key=lambda f: (len(f), f))


def _legend_of_all(fig: Figure) -> None:
    """One legend above the figure with every method of any panel."""
    entries: dict[str, Artist] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    n = len(entries)
    fig.legend(list(entries.values()), list(entries), loc="lower center",
               bbox_to_anchor=(0.5, 1.0), ncol=n if n <= 6 else (n + 1) // 2, frameon=False)


def _panels(n: int) -> tuple[float, float]:
    return 3.6 * n + 0.4, 3.2


def gap_table(finals: pd.DataFrame, metric: str = "cost_per_slot") -> pd.DataFrame:
    """Per figure, x and method: IQM and CI over seeds of ``100 (c / c_opt - 1)`` (%), with
    ``c`` a seed's final ``metric`` and ``c_opt`` the optimiser's IQM at the same figure and x
    (the optimiser's own spread is not propagated)."""
    require_columns(finals, ["figure", "method", "x", "seed", metric], "finals table")
    parts = []
    for figure in _figures(finals):
        rows = figure_rows(finals, figure)
        opt = summarise_finals(rows[rows["method"] == OPTIMIZER], metric, by=("x",))
        if opt.empty:
            continue
        reference = dict(zip(opt["x"].fillna(-np.inf), opt["iqm"], strict=True))
        others = rows[rows["method"] != OPTIMIZER].copy()
        ref = others["x"].fillna(-np.inf).map(reference)
        others["gap_pct"] = 100.0 * (others[metric] / ref - 1.0)
        table = summarise_finals(others.dropna(subset=["gap_pct"]), "gap_pct")
        table.insert(0, "x_name", sweep_x_name(rows))
        table.insert(0, "figure", figure)
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["figure", "x_name", "method", "x", *STAT_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def optimality_gap(finals: pd.DataFrame, out_dir: str | Path,
                   metric: str = "cost_per_slot") -> Rendered | None:
    """Optimality gap (%) of every method to the per-slot optimiser: one panel per figure with
    an ``optimizer`` run; lines against the swept value, or bars for a single scenario."""
    table = gap_table(finals, metric)
    if table.empty:
        return None
    figures = list(table["figure"].unique())
    with new_figure(*_panels(len(figures))) as fig:
        for i, figure in enumerate(figures):
            ax = fig.add_subplot(1, len(figures), i + 1)
            part = table[table["figure"] == figure]
            methods = order_methods(list(part["method"].unique()))
            if part["x"].nunique() > 1:
                line_panel(ax, part, methods)
                ax.set_xlabel(x_label(str(part["x_name"].iloc[0])))
            else:
                bar_panel(ax, part, methods)
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_ylabel(f"{metric_label(metric)} above optimiser (%)")
            ax.set_title(f"Fig. {figure} scenarios")
        fig.tight_layout()
        _legend_of_all(fig)
        return save_figure(fig, table, out_dir, "optimality_gap",
                           "Optimality gap: system cost above the per-slot optimiser's (%); "
                           f"{CI_NOTE}; {seeds_note(table)}")


def _default_case(tasks: pd.DataFrame) -> tuple[str, float]:
    """The (figure, x) with the most methods (ties: the lowest figure, then the lowest x)."""
    counts = (tasks.assign(fig=tasks["figure"].map(normalise_figure))
              .groupby(["fig", "x"], dropna=False)["method"].nunique().reset_index())
    counts["fig_len"] = counts["fig"].str.len()  # "10" after "9"
    best = counts.sort_values(["method", "fig_len", "fig", "x"],
                              ascending=[False, True, True, True]).iloc[0]
    return str(best["fig"]), float(best["x"])


def cdf_table(tasks: pd.DataFrame, figure: object | None = None,
              x: float | None = None) -> pd.DataFrame:
    """Per method and probability level p: IQM and CI over seeds of each seed's latency
    quantile at p, for the tasks of one figure and scenario value (see :func:`latency_cdf`).
    Adds ``miss`` rows: IQM and CI of each seed's fraction of tasks over their deadline."""
    require_columns(tasks, ["figure", "method", "x", "seed", "latency_s", "deadline_s"],
                    "tasks table")
    if figure is None:
        figure, x = _default_case(tasks)
    rows = figure_rows(tasks, figure)
    if x is not None and not np.isnan(x):
        rows = rows[np.isclose(rows["x"].astype(np.float64), x)]
    rows = rows[np.isfinite(rows["latency_s"].astype(np.float64))]
    parts = []
    for (method, seed), group in rows.groupby(["method", "seed"]):
        lat = group["latency_s"].to_numpy(np.float64)
        part = pd.DataFrame({"method": method, "seed": seed, "p": QUANTILES,
                             "latency_s": np.quantile(lat, QUANTILES)})
        miss = float(np.mean(lat > group["deadline_s"].to_numpy(np.float64)))
        parts.append(pd.concat([part, pd.DataFrame({"method": [method], "seed": [seed],
                                                    "p": [np.nan], "latency_s": [miss]})]))
    if not parts:
        return pd.DataFrame()
    table = summarise_finals(pd.concat(parts, ignore_index=True), "latency_s", by=("method", "p"))
    table.insert(0, "quantity", np.where(table["p"].isna(), "deadline_miss_fraction",
                                         "latency_quantile_s"))
    table.insert(0, "x", np.nan if x is None else x)
    table.insert(0, "figure", normalise_figure(figure))
    return table


def latency_cdf(tasks: pd.DataFrame, out_dir: str | Path, figure: object | None = None,
                x: float | None = None) -> Rendered | None:
    """CDF of per-task latency per method, the deadline(s) as vertical lines.

    The curve of a method is its latency quantiles at each p (IQM over seeds of each seed's
    empirical quantile), the band their 95 % CI. Default case: the figure and scenario value
    with the most methods. Tasks that were not executed carry a NaN latency and are left out.
    """
    if tasks.empty:
        return None
    if figure is None:
        figure, x = _default_case(tasks)
    table = cdf_table(tasks, figure, x)
    if table.empty:
        return None
    curve = table[table["quantity"] == "latency_quantile_s"]
    missed = table[table["quantity"] == "deadline_miss_fraction"]
    late = dict(zip(missed["method"], 100.0 * missed["iqm"].to_numpy(np.float64), strict=True))
    deadlines = np.unique(figure_rows(tasks, figure)["deadline_s"].dropna().round(3))
    with new_figure(5.6, 3.6) as fig:
        ax = fig.add_subplot(1, 1, 1)
        for method in order_methods(list(curve["method"].unique())):
            rows, colour = curve[curve["method"] == method], method_style(method)["color"]
            label = f"{method_label(method)} ({late.get(method, np.nan):.0f} % late)"
            ax.plot(rows["iqm"], rows["p"], color=colour, label=label,
                    linewidth=2.0 if method == "adsac" else 1.3)
            ax.fill_betweenx(rows["p"], rows["ci_low"], rows["ci_high"], color=colour, alpha=0.15,
                             linewidth=0)
        for i, d in enumerate(deadlines[:3]):
            ax.axvline(d, color="black", linestyle="--", linewidth=1.0,
                       label="deadline T_max" if i == 0 else None)
        if curve["iqm"].max() > _LOG_TAIL * max(float(np.max(deadlines, initial=0.0)), 1e-9):
            ax.set_xscale("log")  # a long tail would squash the body of the distribution
        ax.set_xlabel("Task latency (s)")
        ax.set_ylabel("Fraction of tasks (CDF)")
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right", fontsize=7)
        xname = sweep_x_name(figure_rows(tasks, figure))
        where = f"Fig. {figure} scenario" + ("" if x is None or np.isnan(x) else
                                             f", {xname} = {x:g}")
        ax.set_title(where)
        return save_figure(fig, table, out_dir, "latency_cdf",
                           f"Per-task latency CDF ({where}), deadline dashed; curve: IQM over "
                           "seeds of each seed's latency quantiles, band: 95 % "
                           f"stratified-bootstrap CI; {seeds_note(table)}")


def server_share(finals: pd.DataFrame, out_dir: str | Path) -> Rendered | None:
    """Share of executed tasks served by UAVs (%) against each swept value, one panel per figure
    whose scenarios vary (the satellites served the rest; both shares are in the CSV)."""
    require_columns(finals, ["figure", "method", "x", "seed", "uav_share", "satellite_share"],
                    "finals table")
    parts = []
    for figure in _figures(finals):
        rows = figure_rows(finals, figure)
        if rows["x"].nunique() < 2 or sweep_x_name(rows).endswith("lr"):
            continue  # one scenario, or an agent setting (critic_lr) rather than a scenario
        for metric in ("uav_share", "satellite_share"):
            t = summarise_finals(rows, metric, scale=100.0)
            t.insert(0, "metric", metric)
            t.insert(0, "x_name", sweep_x_name(rows))
            t.insert(0, "figure", figure)
            parts.append(t)
    if not parts:
        return None
    table = pd.concat(parts, ignore_index=True)
    figures = list(table["figure"].unique())
    with new_figure(*_panels(len(figures))) as fig:
        for i, figure in enumerate(figures):
            ax = fig.add_subplot(1, len(figures), i + 1)
            part = table[(table["figure"] == figure) & (table["metric"] == "uav_share")]
            line_panel(ax, part, order_methods(list(part["method"].unique())))
            ax.set_xlabel(x_label(str(part["x_name"].iloc[0])))
            ax.set_ylabel(metric_label("uav_share"))
            ax.set_ylim(-2, 102)
            ax.set_title(f"Fig. {figure} scenarios")
        fig.tight_layout()
        _legend_of_all(fig)
        return save_figure(fig, table, out_dir, "server_share",
                           "Share of executed tasks served by UAVs (%, satellites: the rest); "
                           f"{CI_NOTE}; {seeds_note(table)}")
