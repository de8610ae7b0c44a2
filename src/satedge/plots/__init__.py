"""Figures drawn from saved results only: the paper's Figs. 3-8 and three of our own.

:func:`plot_all` reads a sweep directory through :mod:`satedge.experiments.results` and draws
every figure it has data for into ``DIR/figures`` (PNG, PDF with TrueType fonts, and the plotted
numbers as CSV). Each figure function also works on its own, on the DataFrames of
:mod:`satedge.experiments.results` (see :mod:`satedge.plots.paper_figures` and
:mod:`satedge.plots.extra`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from satedge.plots.extra import latency_cdf, optimality_gap, server_share
from satedge.plots.paper_figures import fig3, fig4, fig5, fig6, fig7, fig8
from satedge.plots.style import Rendered

__all__ = ["FIGURE_NAMES", "Rendered", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8",
           "latency_cdf", "optimality_gap", "plot_all", "plot_tables", "server_share"]

FIGURE_NAMES = ("fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "optimality_gap", "latency_cdf",
                "server_share")
"""Every figure :func:`plot_all` may draw, in the report's order."""


def plot_tables(finals: pd.DataFrame, curves: pd.DataFrame, tasks: pd.DataFrame,
                out_dir: str | Path) -> dict[str, Rendered]:
    """Draw every figure the tables have rows for; returns the drawn ones by name."""
    drawn = {
        "fig3": fig3(curves, out_dir),
        "fig4": fig4(curves, out_dir),
        "fig5": fig5(finals, out_dir),
        "fig6": fig6(finals, out_dir),
        "fig7": fig7(finals, out_dir),
        "fig8": fig8(finals, out_dir),
        "optimality_gap": optimality_gap(finals, out_dir),
        "latency_cdf": latency_cdf(tasks, out_dir),
        "server_share": server_share(finals, out_dir),
    }
    return {name: r for name, r in drawn.items() if r is not None}


def plot_all(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Rendered]:
    """Read the sweep's results and draw every figure into ``out_dir`` (default
    ``sweep_dir/figures``); no training, no simulation."""
    from satedge.experiments import results

    out = Path(sweep_dir) / "figures" if out_dir is None else Path(out_dir)
    return plot_tables(results.load_finals(sweep_dir), results.load_curves(sweep_dir),
                       results.load_tasks(sweep_dir), out)
