"""benchmarks/server_fit.py: more supervised steps on a run's stored server targets."""

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


def _digest(run: Path) -> str:
    return "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())
                   if p.is_file())


def test_fits_the_targets_and_leaves_the_run_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "opt"
    train("adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves", TINY, 0, 4, run,
          overrides=FAST, progress=False)
    before = _digest(run)
    load_script("server_fit").main([str(run), "--steps", "200", "--episodes", "1"])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(str(run)))
    fitted = [float(v) for v in line.split("fitted ")[1].split(" %")[0].split(" -> ")]
    assert fitted[1] > fitted[0]  # 200 steps on 4 episodes of targets: it fits them better
    assert "held-out agreement" in out and "cost per slot" in out
    assert _digest(run) == before  # a probe: the run directory is not written


def test_a_run_without_server_targets_is_named(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    train("adsac", TINY, 0, 4, run, overrides=FAST, progress=False)
    with pytest.raises(SystemExit, match="stores no server targets"):
        load_script("server_fit").main([str(run), "--steps", "1"])
    with pytest.raises(SystemExit, match="--steps=0"):
        load_script("server_fit").main([str(run), "--steps", "0"])
