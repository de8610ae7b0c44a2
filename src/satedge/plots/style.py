"""The look shared by every figure: one colour and marker per method, labelled axes with units,
TrueType fonts in PDF and PostScript, and one way to write a figure with its numbers.

Figures are drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``, so the global backend is not touched and nothing opens a window.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["RC", "Rendered", "method_label", "method_rank", "method_style", "metric_label",
           "new_figure", "save_figure", "x_label"]

RC: dict[str, Any] = {
    "pdf.fonttype": 42,  # TrueType, not Type 3: editable text, accepted by publishers
    "ps.fonttype": 42,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 150,
}
"""Matplotlib settings every figure is drawn and saved under."""

_METHODS: dict[str, tuple[str, str, str]] = {
    # name: (label, colour, marker), in the paper's legend order
    "adsac": ("AD-SAC", "tab:red", "o"),
    "hybrid-ppo": ("Hybrid-PPO", "tab:orange", "v"),
    "ddpg": ("DDPG", "tab:purple", "D"),
    "d3qn": ("D3QN", "tab:green", "^"),
    "ppo": ("PPO", "tab:blue", "s"),
    "random": ("Random", "tab:gray", "x"),
    "greedy": ("Greedy", "tab:brown", "P"),
    "optimizer": ("Per-slot optimiser", "black", "*"),
    "adsac-d": ("AD-SAC-D", "tab:pink", "<"),
    "adsac-c": ("AD-SAC-C", "tab:cyan", ">"),
    "adsac-nompo": ("AD-SAC w/o MPO", "tab:olive", "h"),
    "adsac-paper": ("AD-SAC (paper form)", "darkred", "p"),
    "adsac-exact": ("AD-SAC (exact server values)", "indigo", "D"),
    "adsac-exact-geo": ("AD-SAC (exact values, UAV geometry)", "darkgreen", "v"),
    "adsac-exact-geo-ar": ("AD-SAC (exact values, UAV geometry, autoregressive)", "olive", "<"),
    "adsac-exact-geo-ar-rel": ("AD-SAC (autoregressive, UAV-relative continuous actor)",
                               "darkcyan", ">"),
    "adsac-exact-geo-ar-shaped": ("AD-SAC (autoregressive, UAV-distance shaping)", "sienna", "^"),
    "adsac-exact-geo-ar-search": ("AD-SAC (autoregressive, simulated UAV moves)", "darkmagenta",
                                  "P"),
    "adsac-exact-geo-ar-search-rel": ("AD-SAC (simulated UAV moves, UAV-relative actor)",
                                      "crimson", "X"),
    "adsac-exact-geo-ar-search-rel-pow": ("AD-SAC (simulated UAV moves and powers)",
                                          "royalblue", "d"),
}
_SPARE = (("teal", "d"), ("navy", "8"), ("goldenrod", "H"), ("slategray", "1"))

_METRICS: dict[str, str] = {
    "latency_s": "Mean task latency (s)",
    "energy_j_per_slot": "Energy per slot (J)",
    "cost_per_slot": "System cost per slot",
    "episode_return": "Episode return",
    "reward_per_slot": "Reward per slot",
    "deadline_miss_rate": "Deadline-miss rate",
    "uav_share": "Tasks served by UAVs (%)",
    "satellite_share": "Tasks served by satellites (%)",
    "train/episode_return": "Average episode reward (training)",
    "eval/episode_return": "Episode return (evaluation)",
    "eval/cost_per_slot": "System cost per slot (evaluation)",
    "eval/latency_s": "Mean task latency (s, evaluation)",
    "eval/energy_j_per_slot": "Energy per slot (J, evaluation)",
}

_X_NAMES: tuple[tuple[str, str], ...] = (
    ("n_iotds", "Number of IoTDs K"),
    ("deadline", "Maximum latency T_max (s)"),
    ("accuracy", "Accuracy requirement A_min"),
    ("critic_lr", "Critic learning rate"),
)


def method_label(method: str) -> str:
    """Display name of a method (the paper's spelling), e.g. ``hybrid-ppo`` -> ``Hybrid-PPO``."""
    return _METHODS.get(method, (method, "", ""))[0]


def method_rank(method: str) -> int:
    """Position of a method in every legend (the paper's order; unknown names last)."""
    return list(_METHODS).index(method) if method in _METHODS else len(_METHODS)


def method_style(method: str) -> dict[str, str]:
    """``color`` and ``marker`` of a method, fixed across all figures."""
    if method in _METHODS:
        _, colour, marker = _METHODS[method]
    else:  # unknown names still get a stable style
        colour, marker = _SPARE[sum(map(ord, method)) % len(_SPARE)]
    return {"color": colour, "marker": marker}


def metric_label(metric: str) -> str:
    """Axis label with unit of a final or curve metric."""
    return _METRICS.get(metric, metric)


def x_label(x_name: str) -> str:
    """Axis label with unit of a swept scenario or agent value (the ``x_name`` column)."""
    for key, label in _X_NAMES:
        if key in x_name:
            return label
    return x_name


@dataclass(frozen=True)
class Rendered:
    """The files of one drawn figure and its caption (for the report)."""

    name: str
    png: Path
    pdf: Path
    csv: Path
    caption: str


@contextmanager
def new_figure(width_in: float, height_in: float) -> Iterator[Figure]:
    """A bare Agg figure drawn under :data:`RC` (use in a ``with`` block around drawing and
    :func:`save_figure`)."""
    with rc_context(cast(Any, RC)):
        fig = Figure(figsize=(width_in, height_in))
        FigureCanvasAgg(fig)
        yield fig


def save_figure(fig: Figure, table: pd.DataFrame, out_dir: str | Path, name: str,
                caption: str) -> Rendered:
    """Write ``name``.png, ``name``.pdf and the plotted numbers ``name``.csv into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{name}.{ext}" for ext in ("png", "pdf", "csv")}
    with rc_context(cast(Any, RC)):  # the font types are read when saving
        fig.savefig(paths["png"], bbox_inches="tight")
        fig.savefig(paths["pdf"], bbox_inches="tight")
    table.to_csv(paths["csv"], index=False, float_format="%.6g")
    return Rendered(name, paths["png"], paths["pdf"], paths["csv"], caption)
