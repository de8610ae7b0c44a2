"""benchmarks/server_fit.py: more supervised steps on a run's stored server targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from satedge.experiments.train import train
from tests.experiments.scripts import PROBE_RUN, TINY, load_script, probe


def test_fits_the_targets_and_leaves_the_run_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "opt"
    train("adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves", TINY, 0, 4, run,
          overrides=PROBE_RUN, progress=False)
    out, line = probe(capsys, "server_fit", run, ["--steps", "200", "--episodes", "1"])
    fitted = [float(v) for v in line.split("fitted ")[1].split(" %")[0].split(" -> ")]
    assert fitted[1] > fitted[0]  # 200 steps on 4 episodes of targets: it fits them better
    assert "held-out agreement" in out and "cost per slot" in out


def test_a_run_without_server_targets_is_named(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    train("adsac", TINY, 0, 4, run, overrides=PROBE_RUN, progress=False)
    with pytest.raises(SystemExit, match="stores no server targets"):
        load_script("server_fit").main([str(run), "--steps", "1"])
    with pytest.raises(SystemExit, match="--steps=0"):
        load_script("server_fit").main([str(run), "--steps", "0"])
