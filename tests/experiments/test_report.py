"""REPORT.md: the paper's numbers beside ours with hand-computed relative differences, the
trends checked, and `satedge plot` / `write_report` working from saved files alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from satedge.cli import main
from satedge.experiments.paper_numbers import PAPER_CLAIMS, PAPER_NUMBERS
from satedge.experiments.report import check_claim, claims_table, numbers_table, write_report
from satedge.experiments.results import load_finals
from tests.plots import synthetic

_METRICS = ("latency_s", "energy_j_per_slot", "episode_return")


def _rows(figure: str, x_name: str, points: dict[tuple[str, float], tuple[float, float, float]],
          seeds: int = 4) -> list[dict[str, object]]:
    """Rows with (latency, energy, return) per (method, x), equal over seeds (IQM = value)."""
    return [{"figure": figure, "method": m, "x_name": x_name, "x": x, "seed": s,
             "key": f"{figure}{m}{x}{s}", **dict(zip(_METRICS, values, strict=True))}
            for (m, x), values in points.items() for s in range(seeds)]


@pytest.fixture
def finals() -> pd.DataFrame:
    nan = float("nan")
    rows = _rows("7", "accuracy_min", {("adsac", 0.3): (1.55, 300.0, -1.0),
                                       ("adsac", 0.7): (2.19, 782.0, -1.0),
                                       ("ppo", 0.3): (1.50, 400.0, -1.0),
                                       ("ppo", 0.7): (2.50, 900.0, -1.0)})
    rows += _rows("8", "none", {("adsac", nan): (2.0, 100.0, -1.0),
                                ("adsac-d", nan): (2.2, 124.3, -1.0),
                                ("adsac-c", nan): (2.234, 113.5, -1.0)})
    rows += _rows("3", "none", {("adsac", nan): (1.0, 1.0, -100.0),
                                ("hybrid-ppo", nan): (1.0, 1.0, -106.0),
                                ("ppo", nan): (1.0, 1.0, -113.4)})
    return pd.DataFrame(rows)


def test_numbers_table_hand_computed(finals: pd.DataFrame) -> None:
    table = numbers_table(finals).set_index("key")
    assert set(table.index) == {n.key for n in PAPER_NUMBERS}
    assert table.loc["fig7_latency_03", "ours"] == pytest.approx(1.55)
    assert table.loc["fig7_latency_03", "rel_diff_pct"] == pytest.approx(100 * 0.14 / 1.41)
    assert table.loc["fig7_latency_07", "rel_diff_pct"] == pytest.approx(0.0)
    rise = 100 * (2.19 / 1.55 - 1)
    assert table.loc["fig7_latency_rise", "ours"] == pytest.approx(rise)
    assert table.loc["fig7_latency_rise", "rel_diff_pct"] == pytest.approx(
        100 * (rise - 55.3) / 55.3)
    assert table.loc["fig7_energy_03", "rel_diff_pct"] == pytest.approx(100 * (300 - 377) / 377)
    assert table.loc["fig8_d_latency", "ours"] == pytest.approx(10.0)
    assert table.loc["fig8_d_latency", "rel_diff_pct"] == pytest.approx(100 * 2.6 / 7.4)
    assert table.loc["fig8_d_energy", "ours"] == pytest.approx(24.3)
    assert table.loc["fig8_c_latency", "ours"] == pytest.approx(11.7)
    # Fig. 3: Hybrid-PPO 6 % and PPO 13.4 % below AD-SAC's return of -100 (DDPG, D3QN absent)
    assert table.loc["fig3_gap_min", "ours"] == pytest.approx(6.0)
    assert table.loc["fig3_gap_max", "ours"] == pytest.approx(13.4)
    assert table.loc["fig3_gap_max", "rel_diff_pct"] == pytest.approx(0.0)


def test_numbers_missing_from_the_sweep_are_none(finals: pd.DataFrame) -> None:
    table = numbers_table(finals[finals["figure"] != "7"]).set_index("key")
    assert table.loc["fig7_latency_03", "ours"] is None or np.isnan(
        table.loc["fig7_latency_03", "ours"])
    assert table.loc["fig8_d_latency", "ours"] == pytest.approx(10.0)


def test_claims_hold_fail_or_are_not_testable(finals: pd.DataFrame) -> None:
    table = claims_table(finals).set_index("key")
    assert set(table.index) == {c.key for c in PAPER_CLAIMS}
    assert table.loc["fig3_adsac_best", "holds"] is True
    assert table.loc["fig3_hybrid_next", "holds"] is True
    # Fig. 7 at A_min = 0.3: PPO's 1.50 s beats AD-SAC's 1.55 s
    assert table.loc["fig7_lowest", "holds"] is False
    assert "accuracy_min = 0.3: PPO 1.5 vs AD-SAC 1.55" in table.loc["fig7_lowest", "detail"]
    # 0.5 and 0.6 were not swept: the steepest step cannot be tested
    assert table.loc["fig7_steepest", "holds"] is None
    assert table.loc["fig5_latency", "holds"] is None  # no Fig. 5 in this sweep
    assert table.loc["fig8_best", "holds"] is True


def test_steepest_and_trend_checks_on_a_full_sweep() -> None:
    xs = (0.3, 0.4, 0.5, 0.6, 0.7)
    latency = (1.41, 1.5, 1.6, 2.0, 2.19)
    finals = pd.DataFrame(_rows("7", "accuracy_min", {("adsac", x): (v, 1.0, -1.0)
                                                      for x, v in zip(xs, latency,
                                                                      strict=True)}))
    claim = next(c for c in PAPER_CLAIMS if c.key == "fig7_steepest")
    holds, detail = check_claim(claim, finals)
    assert holds is True and "0.5 -> 0.6" in detail
    moved = finals.assign(latency_s=np.where(finals["x"] == 0.4, 1.45, finals["latency_s"]))
    moved.loc[moved["x"] == 0.7, "latency_s"] = 3.0  # now 0.6 -> 0.7 is the largest rise
    assert check_claim(claim, moved)[0] is False


def _small_sweep(tmp_path: Path, figures: tuple[str, ...]) -> Path:
    """A sweep directory of synthetic results (2 seeds; Fig. 7 with three methods only)."""
    finals = synthetic.finals(seeds=2)
    finals = finals[finals["figure"].isin(figures) & (
        (finals["figure"] != "7") | finals["method"].isin(["adsac", "ppo", "optimizer"]))]
    synthetic.write_sweep(tmp_path / "sweep", finals, synthetic.curves(seeds=2),
                          synthetic.tasks(seeds=2, per_seed=40))
    return tmp_path / "sweep"


def test_write_report_from_saved_results(tmp_path: Path) -> None:
    sweep = _small_sweep(tmp_path, ("7", "8"))
    path = write_report(sweep)
    text = path.read_text()
    assert path == sweep / "REPORT.md"
    for heading in ("## Budget", "## The paper's numbers beside ours",
                    "## The paper's trends on our results", "## Where ours differ", "## Figures"):
        assert heading in text
    assert "preset **quick**" in text and "numpy" in text
    assert "| 7 | AD-SAC latency at A_min = 0.3 (s) | 1.41 |" in text
    assert "Not compared: Fig. 3, 4, 5, 6 are not in this sweep." in text
    for name in ("fig7", "fig8", "optimality_gap", "server_share"):
        assert f"![{name}](figures/{name}.png)" in text
        assert (sweep / "figures" / f"{name}.png").is_file()
    assert "fig5" not in text
    # the budget table: fig 7 ran 3 methods x 3 values x 2 seeds, learners 200 episodes
    assert "| 7 | quick | adsac, optimizer, ppo | accuracy_min: 0.3, 0.5, 0.7 | 2 (0-1) | 200 | " \
           "10 | 100 | 18/18 |" in text
    assert "| 8 | quick | adsac, adsac-c, adsac-d, adsac-nompo | - | 2 (0-1) |" in text
    # every number of Figs. 7 and 8 is in the table with ours and a relative difference
    table = numbers_table(load_finals(sweep)).set_index("key")
    for key in ("fig7_latency_03", "fig8_d_energy"):
        row = table.loc[key]
        assert f"| {row['paper']:g} | {row['ours']:.4g} | {row['rel_diff_pct']:+.1f} % |" in text


def test_plot_command_redraws_without_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import satedge.experiments.runner as runner

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("satedge plot must not run anything")

    monkeypatch.setattr(runner, "run_sweep", forbidden)
    monkeypatch.setattr(runner, "execute_run", forbidden)
    # a None entry makes any import of these modules fail: no training, no torch
    monkeypatch.setitem(sys.modules, "satedge.experiments.train", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    sweep = _small_sweep(tmp_path, ("8",))
    assert main(["plot", str(sweep)]) == 0
    assert f"report: {sweep / 'REPORT.md'}" in capsys.readouterr().out
    assert (sweep / "figures" / "fig8.pdf").is_file()
    assert "![fig8](figures/fig8.png)" in (sweep / "REPORT.md").read_text()


def test_plot_command_on_a_non_sweep_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("satedge: error:") and "manifest.json" in err and "\n" not in err


_TINY_POLICY_SPEC = """
figure: 5
title: tiny
methods: [random, greedy]
x: {name: n_iotds, target: scenario, keys: [n_iotds]}
presets:
  quick: {values: [3, 4], seeds: 2, eval_episodes: 1, scenario: {episode_slots: 3}}
  standard: {values: [3, 4]}
  paper: {values: [3, 4]}
"""

_TINY_LEARNER_SPEC = """
figure: 3
title: tiny curves
methods: [adsac, random]
presets:
  quick: {seeds: 2, episodes: 8, eval_episodes: 1, eval_every_episodes: 4,
          scenario: {episode_slots: 3, n_iotds: 3}}
  standard: {}
  paper: {}
"""


@pytest.mark.slow
def test_tiny_sweep_then_plot_then_report(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    specs = []
    for name, text in (("fig5.yaml", _TINY_POLICY_SPEC), ("fig3.yaml", _TINY_LEARNER_SPEC)):
        (tmp_path / name).write_text(text)
        specs.append(str(tmp_path / name))
    out = tmp_path / "sweep"
    assert main(["reproduce", "--preset", "quick", "--figures", ",".join(specs),
                 "--workers", "2", "--no-progress", "--out", str(out)]) == 0
    assert f"report: {out / 'REPORT.md'}" in capsys.readouterr().out
    text = (out / "REPORT.md").read_text()
    for name in ("fig3", "fig5", "latency_cdf", "server_share"):
        assert (out / "figures" / f"{name}.pdf").is_file()
        assert f"![{name}](figures/{name}.png)" in text
    fig5 = pd.read_csv(out / "figures" / "fig5.csv")
    assert set(fig5["method"]) == {"random", "greedy"} and set(fig5["n_seeds"]) == {2}
    fig3 = pd.read_csv(out / "figures" / "fig3.csv")
    assert set(fig3["method"]) == {"adsac", "random"}
    assert fig3.loc[fig3["method"] == "adsac", "episodes"].tolist() == [4, 8]
    assert "| 5 | quick | greedy, random | n_iotds: 3, 4 | 2 (0-1) | - | 1 | 3 | 8/8 |" in text
    # a second run finds every run finished and redraws from the files
    assert main(["reproduce", "--figures", ",".join(specs), "--out", str(out)]) == 0
    assert "0 to run" in capsys.readouterr().out
