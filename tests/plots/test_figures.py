"""Every figure renders from tables alone, writes PNG, PDF (TrueType fonts) and CSV, and the CSV
holds the IQMs and CIs of the plotted points (hand-computed for tiny cases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from satedge.plots import (
    fig3,
    fig4,
    fig5,
    fig6,
    fig7,
    fig8,
    latency_cdf,
    optimality_gap,
    server_share,
)
from satedge.plots.style import Rendered
from satedge.plots.summary import normalise_figure, summarise_curves, summarise_finals
from tests.plots import synthetic


def _check_files(r: Rendered | None) -> pd.DataFrame:
    assert r is not None
    for path in (r.png, r.pdf, r.csv):
        assert path.is_file() and path.stat().st_size > 0, path
    with Image.open(r.png) as im:
        assert im.size[0] > 300 and im.size[1] > 200
    pdf = r.pdf.read_bytes()
    assert b"/Type3" not in pdf, "PDF has Type 3 fonts"
    assert b"/TrueType" in pdf or b"/CIDFontType2" in pdf, "PDF has no TrueType font"
    assert "IQM" in r.caption and "seed" in r.caption
    return pd.read_csv(r.csv)


def _finals(figure: str, x_name: str, values: dict[tuple[str, float], list[float]],
            metric: str = "latency_s") -> pd.DataFrame:
    """Final rows with ``metric`` (and energy = 100 x metric) given per (method, x) by seed."""
    rows = []
    for (method, x), per_seed in values.items():
        for seed, v in enumerate(per_seed):
            rows.append({"figure": figure, "method": method, "x_name": x_name, "x": x,
                         "seed": seed, "key": f"{method}{x}{seed}", metric: v,
                         "energy_j_per_slot": 100.0 * v})
    return pd.DataFrame(rows)


def test_sweep_figure_csv_holds_hand_computed_iqms(tmp_path: Path) -> None:
    # IQM cuts floor(n / 4) values at each end: [1, 2, 3, 10] -> mean(2, 3) = 2.5;
    # [1, 2, 3, 4, 100] -> mean(2, 3, 4) = 3; [5, 5, 5, 5] -> 5 with a zero-width CI.
    finals = _finals("5", "n_iotds", {("adsac", 5.0): [1, 2, 3, 10],
                                      ("adsac", 10.0): [1, 2, 3, 4, 100],
                                      ("ppo", 5.0): [5, 5, 5, 5], ("ppo", 10.0): [6, 6, 6, 6]})
    table = _check_files(fig5(finals, tmp_path))
    lat = table[table["metric"] == "latency_s"].set_index(["method", "x"])
    assert lat.loc[("adsac", 5.0), "iqm"] == pytest.approx(2.5)
    assert lat.loc[("adsac", 10.0), "iqm"] == pytest.approx(3.0)
    assert lat.loc[("adsac", 10.0), "n_seeds"] == 5
    assert lat.loc[("ppo", 5.0), ["ci_low", "ci_high"]].tolist() == pytest.approx([5.0, 5.0])
    assert (lat["ci_low"] <= lat["iqm"]).all() and (lat["iqm"] <= lat["ci_high"]).all()
    # the bootstrap interval of [1, 2, 3, 10] lies inside the data's range and is not a point
    low, high = lat.loc[("adsac", 5.0), ["ci_low", "ci_high"]]
    assert 1.0 <= low < 2.5 < high <= 10.0
    energy = table[table["metric"] == "energy_j_per_slot"].set_index(["method", "x"])
    assert energy.loc[("adsac", 5.0), "iqm"] == pytest.approx(250.0)
    assert set(table["x_name"]) == {"n_iotds"}


@pytest.mark.parametrize(("draw", "figure"), [(fig5, "5"), (fig6, "6"), (fig7, "7")])
def test_sweep_figures_render_every_method_and_value(draw: object, figure: str,
                                                     tmp_path: Path) -> None:
    finals = synthetic.finals(seeds=3)
    table = _check_files(draw(finals, tmp_path))  # type: ignore[operator]
    rows = finals[finals["figure"] == figure]
    assert set(table["method"]) == set(rows["method"])
    assert sorted(table["x"].unique()) == sorted(rows["x"].unique())
    assert set(table["n_seeds"]) == {3}


def test_fig8_bars_from_single_scenario(tmp_path: Path) -> None:
    finals = _finals("8", "none", {("adsac", np.nan): [1.0, 1.0, 1.0, 1.0],
                                   ("adsac-d", np.nan): [1.0, 1.2, 1.4, 9.0],
                                   ("adsac-c", np.nan): [2.0, 2.0, 2.0, 2.0]})
    table = _check_files(fig8(finals, tmp_path))
    lat = table[table["metric"] == "latency_s"].set_index("method")
    assert lat.loc["adsac-d", "iqm"] == pytest.approx(1.3)
    assert lat["x"].isna().all()


def test_fig3_curves_iqm_per_logged_point_and_policies_as_lines(tmp_path: Path) -> None:
    rows = []
    for seed, (a, b) in enumerate([(0, 10), (1, 20), (2, 30), (9, 100)]):
        for ep, v in ((0, a), (10, b)):
            rows.append({"figure": "3", "method": "adsac", "x": np.nan, "seed": seed,
                         "step": ep, "episodes": ep, "eval/episode_return": float(v)})
        rows.append({"figure": "3", "method": "random", "x": np.nan, "seed": seed, "step": 0,
                     "episodes": 0, "eval/episode_return": float(-seed)})
    table = _check_files(fig3(pd.DataFrame(rows), tmp_path))
    curve = table[table["method"] == "adsac"].set_index("episodes")
    assert curve.loc[0, "iqm"] == pytest.approx(1.5)   # mean(1, 2)
    assert curve.loc[10, "iqm"] == pytest.approx(25.0)  # mean(20, 30)
    ref = table[table["method"] == "random"]
    assert len(ref) == 1 and np.isnan(ref["episodes"].iloc[0])
    assert ref["iqm"].iloc[0] == pytest.approx(-1.5)  # mean(-1, -2)


def test_fig3_and_fig4_from_synthetic_curves(tmp_path: Path) -> None:
    curves = synthetic.curves(seeds=3)
    t3 = _check_files(fig3(curves, tmp_path))
    assert set(t3["method"]) == {*synthetic.LEARNERS, "random", "greedy"}
    t4 = _check_files(fig4(curves, tmp_path))
    assert sorted(t4["x"].unique()) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert t4["episodes"].max() == 200


def test_curves_are_smoothed_and_aligned_across_seeds() -> None:
    # seed 0 logs at 0, 10, 20; seed 1 at 0, 20: seed 1 is interpolated at 10 (value 5)
    curves = pd.DataFrame({"figure": "3", "method": "adsac", "x": np.nan,
                           "seed": [0, 0, 0, 1, 1], "episodes": [0, 10, 20, 0, 20],
                           "eval/episode_return": [0.0, 10.0, 20.0, 0.0, 10.0]})
    table = summarise_curves(curves, "eval/episode_return", by=("method",))
    assert table["iqm"].tolist() == pytest.approx([0.0, 7.5, 15.0])
    smooth = summarise_curves(curves[curves["seed"] == 0], "eval/episode_return",
                              by=("method",), smooth=2)
    assert smooth["iqm"].tolist() == pytest.approx([0.0, 5.0, 15.0])
    with pytest.raises(ValueError, match="smooth=0"):
        summarise_curves(curves, "eval/episode_return", smooth=0)


def test_optimality_gap_is_relative_to_the_optimiser_iqm(tmp_path: Path) -> None:
    # optimiser IQM 10; AD-SAC costs 11, 12, 13, 20 -> gaps 10, 20, 30, 100 % -> IQM 25 %
    finals = _finals("5", "n_iotds", {("optimizer", 5.0): [10, 10, 10, 10],
                                      ("adsac", 5.0): [11, 12, 13, 20],
                                      ("optimizer", 10.0): [20, 20, 20, 20],
                                      ("adsac", 10.0): [20, 22, 22, 30]},
                     metric="cost_per_slot")
    table = _check_files(optimality_gap(finals, tmp_path))
    gap = table.set_index("x")
    assert gap.loc[5.0, "iqm"] == pytest.approx(25.0)
    assert gap.loc[10.0, "iqm"] == pytest.approx(10.0)  # gaps 0, 10, 10, 50 -> mean(10, 10)
    assert set(table["method"]) == {"adsac"}
    no_opt = finals[finals["method"] != "optimizer"]
    assert optimality_gap(no_opt, tmp_path / "none") is None


def test_latency_cdf_quantiles_and_deadline_misses(tmp_path: Path) -> None:
    tasks = pd.DataFrame({"figure": "3", "method": "adsac", "x": np.nan,
                          "seed": np.repeat([0, 1, 2, 3], 5),
                          "latency_s": np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 4),
                          "deadline_s": 3.5, "server_kind": "uav"})
    table = _check_files(latency_cdf(tasks, tmp_path))
    q = table[table["quantity"] == "latency_quantile_s"].set_index("p")
    assert q.loc[0.5, "iqm"] == pytest.approx(3.0)
    assert q.loc[0.25, "iqm"] == pytest.approx(2.0)
    miss = table[table["quantity"] == "deadline_miss_fraction"]
    assert miss["iqm"].iloc[0] == pytest.approx(0.4)  # 4.0 and 5.0 exceed 3.5 s
    assert (q["n_seeds"] == 4).all()


def test_latency_cdf_defaults_to_the_case_with_most_methods(tmp_path: Path) -> None:
    tasks = synthetic.tasks(seeds=2, per_seed=50)
    other = tasks[tasks["method"] == "adsac"].assign(figure="5", x=5.0)
    table = _check_files(latency_cdf(pd.concat([tasks, other]), tmp_path))
    assert set(table["figure"].astype(str)) == {"3"}
    assert set(table["method"]) == {*synthetic.LEARNERS, "random", "greedy"}


def test_server_share_in_percent_per_swept_figure(tmp_path: Path) -> None:
    finals = synthetic.finals(seeds=3)
    table = _check_files(server_share(finals, tmp_path))
    assert set(table["figure"].astype(str)) == {"5", "6", "7"}  # not 3, 8 (one scenario), 4 (lr)
    uav = table[table["metric"] == "uav_share"]
    sat = table[table["metric"] == "satellite_share"]
    assert uav["iqm"].between(0, 100).all()
    expected = summarise_finals(finals[finals["figure"] == "7"], "uav_share", scale=100.0)
    got = uav[uav["figure"].astype(str) == "7"]
    assert got["iqm"].to_numpy() == pytest.approx(expected["iqm"].to_numpy())
    assert (uav["iqm"].to_numpy() + sat["iqm"].to_numpy()) == pytest.approx(100.0, abs=3.0)


def test_figures_without_rows_return_none_and_bad_tables_name_the_column(
        tmp_path: Path) -> None:
    finals = synthetic.finals(seeds=2)
    only8 = finals[finals["figure"] == "8"]
    assert fig5(only8, tmp_path) is None and fig7(only8, tmp_path) is None
    assert fig3(synthetic.curves(seeds=1).iloc[0:0], tmp_path) is None
    with pytest.raises(ValueError, match="'energy_j_per_slot'"):
        fig8(only8.drop(columns=["energy_j_per_slot"]), tmp_path)
    assert not list(tmp_path.iterdir())


def test_figure_ids_are_normalised() -> None:
    assert {normalise_figure(f) for f in (3, "3", "fig3", "fig03", "Fig 3")} == {"3"}
    assert normalise_figure("gap") == "gap"
