"""Panels shared by several figures: lines with error bars against a swept value, bars per
method, and the small helpers that order methods and describe seed counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from satedge.plots.style import method_label, method_rank, method_style

__all__ = ["bar_panel", "line_panel", "order_methods", "seeds_note", "shared_legend",
           "sweep_x_name"]


def order_methods(methods: list[str]) -> list[str]:
    """The paper's legend order (AD-SAC, Hybrid-PPO, DDPG, D3QN, PPO, Random, ...), unknown
    methods last, alphabetically."""
    return sorted(methods, key=lambda m: (method_rank(m), m))


def seeds_note(table: pd.DataFrame) -> str:
    """``n = 5 seeds`` (or a range when points have different counts) from ``n_seeds``."""
    n = table["n_seeds"]
    if len(n) == 0:
        return "no seeds"
    low, high = int(n.min()), int(n.max())
    return f"n = {low} seed{'s' * (low != 1)}" if low == high else f"n = {low}-{high} seeds"


def sweep_x_name(rows: pd.DataFrame) -> str:
    """The swept value's name of a figure's rows (``x_name`` column), ``"x"`` if unknown."""
    if "x_name" not in rows.columns:
        return "x"
    names = list(rows["x_name"].dropna().unique())
    return str(names[0]) if names else "x"


def _errors(rows: pd.DataFrame) -> np.ndarray:
    """[2, n] distances from the IQM down to the CI's low end and up to its high end."""
    return np.vstack([rows["iqm"] - rows["ci_low"], rows["ci_high"] - rows["iqm"]])


def line_panel(ax: Axes, table: pd.DataFrame, methods: list[str]) -> None:
    """One line with markers and CI error bars per method against ``x``."""
    for method in methods:
        rows = table[table["method"] == method].sort_values("x")
        style = method_style(method)
        ax.errorbar(rows["x"], rows["iqm"], yerr=_errors(rows), color=style["color"],
                    marker=style["marker"], markersize=5, capsize=2.5,
                    linewidth=2.0 if method == "adsac" else 1.2, label=method_label(method))


def bar_panel(ax: Axes, table: pd.DataFrame, methods: list[str]) -> None:
    """One bar with a CI error bar per method (the table's first row of each method)."""
    for j, method in enumerate(methods):
        row = table[table["method"] == method].iloc[:1]
        ax.bar([j], row["iqm"], yerr=_errors(row), capsize=3, alpha=0.85, edgecolor="black",
               linewidth=0.5, color=method_style(method)["color"], label=method_label(method))
    ax.set_xticks(range(len(methods)), [method_label(m) for m in methods],
                  rotation=25 if len(methods) > 3 else 0, ha="right" if len(methods) > 3 else
                  "center")
    ax.grid(axis="x", visible=False)


def shared_legend(fig: Figure, ax: Axes, n: int) -> None:
    """The legend of ``ax`` above the whole figure: one row of up to six entries, else two."""
    handles, labels = ax.get_legend_handles_labels()
    ncol = n if n <= 6 else (n + 1) // 2
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol,
               frameon=False)
