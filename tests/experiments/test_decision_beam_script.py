"""benchmarks/decision_beam.py: a trained run's cost with and without the decision beam."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from satedge.experiments.train import train
from satedge.sim.scenario import resolve
from tests.experiments.scripts import load_script

TINY = resolve("small", ["episode_slots=10"])
FAST = {"learning_starts": 40, "eval_episodes": 1, "eval_every_episodes": 4, "batch_size": 32,
        "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}
OPT = "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves"


def _digest(run: Path) -> str:
    return "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())
                   if p.is_file())


@pytest.mark.parametrize("algo, fitted", [(OPT, "fitted afterwards: 50 steps"),
                                          (f"{OPT}-beam", "its own context network")])
def test_prints_the_paired_costs_and_leaves_the_run_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], algo: str, fitted: str) -> None:
    run = tmp_path / "run"
    train(algo, TINY, 0, 4, run, overrides=FAST, progress=False)
    before = _digest(run)
    load_script("decision_beam").main([str(run), "--widths", "2", "4", "--steps", "50",
                                       "--episodes", "1"])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(str(run)))
    assert fitted in line and "beam 2 " in line and "beam 4 " in line
    shares = [float(x.split(" %")[0].rsplit(" ", 1)[1])
              for x in line.split("agreement with the targets: ")[1].split(", ")]
    assert len(shares) == 4 and all(0 <= x <= 100 for x in shares)
    assert "- beam 4:" in out and "change" in out
    assert _digest(run) == before  # a probe: the run directory is not written


def test_runs_it_cannot_probe_and_bad_arguments_are_named(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    train("adsac-exact-geo-ar", TINY, 0, 4, run, overrides=FAST, progress=False)
    with pytest.raises(SystemExit, match="stores no server targets"):
        load_script("decision_beam").main([str(run), "--steps", "1", "--episodes", "1"])
    with pytest.raises(SystemExit, match="--widths=0"):
        load_script("decision_beam").main([str(run), "--widths", "0"])
