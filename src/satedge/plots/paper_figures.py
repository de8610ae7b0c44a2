"""The paper's Figs. 3-8, drawn from saved results only (DataFrames of
:mod:`satedge.experiments.results`).

Each function takes the curves or finals table of a whole sweep, keeps the rows of its figure,
and writes ``figN.png``, ``figN.pdf`` and ``figN.csv`` (the plotted IQMs and CIs) into
``out_dir``. It returns the :class:`~satedge.plots.style.Rendered` files, or None when the sweep
has no rows for the figure.

- Fig. 3: episode return during training, AD-SAC against the learning baselines; methods that do
  not learn (Random, greedy) as horizontal lines at their final return.
- Fig. 4: AD-SAC's return curves for three critic learning rates.
- Figs. 5, 6, 7: latency (a) and energy per slot (b) against K, T_max and A_min, per method.
- Fig. 8: latency and energy of AD-SAC and its ablations, as bars.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from satedge.plots.panels import (
    bar_panel,
    line_panel,
    order_methods,
    seeds_note,
    shared_legend,
    sweep_x_name,
)
from satedge.plots.style import (
    Rendered,
    method_label,
    method_style,
    metric_label,
    new_figure,
    save_figure,
    x_label,
)
from satedge.plots.summary import CI_NOTE, figure_rows, summarise_curves, summarise_finals

__all__ = ["CURVE_METRIC", "FINAL_PANELS", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8"]

CURVE_METRIC = "eval/episode_return"
"""Curve of Figs. 3 and 4: the deterministic policy's return on the held-out evaluation seeds
(the figure specs' ``plot`` entry); ``train/episode_return`` is the noisier alternative."""
FINAL_PANELS = ("latency_s", "energy_j_per_slot")
"""The two panels, (a) and (b), of Figs. 5-8."""


# -- learning curves (Figs. 3 and 4) ------------------------------------------------------
def _curves(ax: Axes, table: pd.DataFrame, series: str, labels: dict[object, str],
            colours: dict[object, str]) -> None:
    for key, label in labels.items():
        rows = table[table[series] == key].sort_values("episodes")
        ax.plot(rows["episodes"], rows["iqm"], color=colours[key], label=label,
                linewidth=2.0 if key == "adsac" else 1.3)
        ax.fill_between(rows["episodes"], rows["ci_low"], rows["ci_high"], color=colours[key],
                        alpha=0.18, linewidth=0)
    ax.set_xlabel("Training episodes")


def _references(ax: Axes, rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Horizontal lines for Fig. 3's methods that do not learn (one logged point each: Random,
    greedy): IQM over seeds of that point, CI as a band."""
    table = summarise_finals(rows.dropna(subset=[metric]), metric, by=("method",))
    for _, row in table.iterrows():
        colour = method_style(str(row["method"]))["color"]
        ax.axhline(row["iqm"], color=colour, linestyle="--", linewidth=1.2,
                   label=f"{method_label(str(row['method']))} (no training)")
        ax.axhspan(row["ci_low"], row["ci_high"], color=colour, alpha=0.1, linewidth=0)
    table.insert(1, "episodes", float("nan"))
    return table


def fig3(curves: pd.DataFrame, out_dir: str | Path, metric: str = CURVE_METRIC,
         smooth: int = 1) -> Rendered | None:
    """Fig. 3: learning curves of AD-SAC and the baselines.

    Methods with a single logged point (built-in policies: Random, greedy) are drawn as
    horizontal reference lines (``episodes`` is NaN in their CSV rows); ``smooth`` is the number
    of logged points per trailing moving average of each seed's curve.
    """
    rows = figure_rows(curves, 3)
    if rows.empty:
        return None
    spans = rows.groupby("method")["episodes"].nunique()
    learners = [m for m in order_methods(list(spans.index)) if spans[m] > 1]
    table = summarise_curves(rows[rows["method"].isin(learners)], metric, by=("method",),
                             smooth=smooth)
    with new_figure(6.0, 3.8) as fig:
        ax = fig.add_subplot(1, 1, 1)
        _curves(ax, table, "method", {m: method_label(m) for m in learners},
                {m: method_style(m)["color"] for m in learners})
        refs = _references(ax, rows[~rows["method"].isin(learners)], metric)
        ax.set_ylabel(metric_label(metric))
        ax.legend(loc="lower right", fontsize=7, ncol=2)
        out = pd.concat([table, refs], ignore_index=True) if len(refs) else table
        out.insert(0, "metric", metric)
        return save_figure(fig, out, out_dir, "fig3",
                           f"Fig. 3: {metric_label(metric).lower()} against training episodes "
                           f"(dashed: methods without training); {CI_NOTE}; {seeds_note(out)}")


def fig4(curves: pd.DataFrame, out_dir: str | Path, metric: str = CURVE_METRIC,
         smooth: int = 1) -> Rendered | None:
    """Fig. 4: AD-SAC learning curves, one per critic learning rate (the ``x`` column)."""
    rows = figure_rows(curves, 4)
    if rows.empty:
        return None
    table = summarise_curves(rows, metric, by=("method", "x"), smooth=smooth)
    table.insert(0, "metric", metric)
    values = sorted(table["x"].unique())
    palette = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:gray")
    with new_figure(6.0, 3.8) as fig:
        ax = fig.add_subplot(1, 1, 1)
        _curves(ax, table, "x", {x: f"critic lr = {_sci(x)}" for x in values},
                {x: palette[i % len(palette)] for i, x in enumerate(values)})
        ax.set_ylabel(metric_label(metric))
        ax.legend(loc="lower right")
        return save_figure(fig, table, out_dir, "fig4",
                           f"Fig. 4: AD-SAC's {metric_label(metric).lower()} for three critic "
                           f"learning rates; {CI_NOTE}; {seeds_note(table)}")


def _sci(x: float) -> str:
    """1e-4 rather than 0.0001."""
    return str(np.format_float_scientific(x, trim="-", exp_digits=1))


# -- final values (Figs. 5-8) -------------------------------------------------------------
def final_table(finals: pd.DataFrame, figure: int) -> pd.DataFrame:
    """IQM and CI of latency and energy per method and x of one figure (empty if not run)."""
    rows = figure_rows(finals, figure)
    if rows.empty:
        return pd.DataFrame()
    tables = []
    for metric in FINAL_PANELS:
        t = summarise_finals(rows, metric)
        t.insert(0, "metric", metric)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "x_name", sweep_x_name(rows))
    return table


def _sweep(finals: pd.DataFrame, out_dir: str | Path, figure: int, what: str) -> Rendered | None:
    table = final_table(finals, figure)
    if table.empty:
        return None
    methods = order_methods(list(table["method"].unique()))
    with new_figure(7.6, 3.2) as fig:
        axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
        for i, (ax, metric) in enumerate(zip(axes, FINAL_PANELS, strict=True)):
            line_panel(ax, table[table["metric"] == metric], methods)
            ax.set_xlabel(x_label(str(table["x_name"].iloc[0])))
            ax.set_ylabel(metric_label(metric))
            ax.set_title(f"({'ab'[i]})")
            ax.set_xticks(sorted(table["x"].unique()))
        fig.tight_layout()
        shared_legend(fig, axes[0], len(methods))
        return save_figure(fig, table, out_dir, f"fig{figure}",
                           f"Fig. {figure}: latency (a) and energy per slot (b) against {what}; "
                           f"{CI_NOTE}; {seeds_note(table)}")


def fig5(finals: pd.DataFrame, out_dir: str | Path) -> Rendered | None:
    """Fig. 5: latency and energy against the number of IoTDs K."""
    return _sweep(finals, out_dir, 5, "the number of IoTDs K")


def fig6(finals: pd.DataFrame, out_dir: str | Path) -> Rendered | None:
    """Fig. 6: latency and energy against the maximum latency T_max."""
    return _sweep(finals, out_dir, 6, "the maximum latency T_max")


def fig7(finals: pd.DataFrame, out_dir: str | Path) -> Rendered | None:
    """Fig. 7: latency and energy against the accuracy requirement A_min."""
    return _sweep(finals, out_dir, 7, "the accuracy requirement A_min")


def fig8(finals: pd.DataFrame, out_dir: str | Path) -> Rendered | None:
    """Fig. 8: latency and energy of AD-SAC, AD-SAC-D and AD-SAC-C as bars (any other method of
    the figure, e.g. AD-SAC without MPO, too). The figure has one scenario (x = NaN)."""
    table = final_table(finals, 8)
    if table.empty:
        return None
    methods = order_methods(list(table["method"].unique()))
    with new_figure(6.6, 3.2) as fig:
        axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
        for i, (ax, metric) in enumerate(zip(axes, FINAL_PANELS, strict=True)):
            bar_panel(ax, table[table["metric"] == metric], methods)
            ax.set_ylabel(metric_label(metric))
            ax.set_title(f"({'ab'[i]})")
        fig.tight_layout()
        return save_figure(fig, table, out_dir, "fig8",
                           "Fig. 8: latency (a) and energy per slot (b) of AD-SAC and its "
                           f"ablations; {CI_NOTE}; {seeds_note(table)}")
