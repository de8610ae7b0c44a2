"""benchmarks/decision_beam.py: a trained run's cost with and without the decision beam."""

from __future__ import annotations

from pathlib import Path

import pytest

from satedge.experiments.train import train
from tests.experiments.scripts import PROBE_RUN, TINY, load_script, probe

OPT = "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves"


@pytest.mark.parametrize("algo, fitted", [(OPT, "fitted afterwards: 50 steps"),
                                          (f"{OPT}-beam", "its own context network")])
def test_prints_the_paired_costs_and_leaves_the_run_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], algo: str, fitted: str) -> None:
    run = tmp_path / "run"
    train(algo, TINY, 0, 4, run, overrides=PROBE_RUN, progress=False)
    out, line = probe(capsys, "decision_beam", run,
                      ["--widths", "2", "4", "--steps", "50", "--episodes", "1"])
    assert fitted in line and "beam 2 " in line and "beam 4 " in line
    shares = [float(x.split(" %")[0].rsplit(" ", 1)[1])
              for x in line.split("agreement with the targets: ")[1].split(", ")]
    assert len(shares) == 4 and all(0 <= x <= 100 for x in shares)
    assert "- beam 4:" in out and "change" in out


def test_runs_it_cannot_probe_and_bad_arguments_are_named(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    train("adsac-exact-geo-ar", TINY, 0, 4, run, overrides=PROBE_RUN, progress=False)
    with pytest.raises(SystemExit, match="stores no server targets"):
        load_script("decision_beam").main([str(run), "--steps", "1", "--episodes", "1"])
    with pytest.raises(SystemExit, match="--widths=0"):
        load_script("decision_beam").main([str(run), "--widths", "0"])
