"""benchmarks/against_greedy.py: trained runs against a built-in policy on unseen episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satedge.agents.heuristics import make_policy
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve
from tests.experiments.scripts import load_script

TINY = resolve("small", ["episode_slots=10"])
FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        train("adsac", TINY, seed, 4, root / f"s{seed}", overrides=FAST, progress=False)
    return [root / "s0", root / "s1"]


def test_pairs_each_run_with_the_reference_on_an_unseen_evaluation_seed(
        runs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    load_script("against_greedy").main([*map(str, runs), "--episodes", "2", "--reference",
                                        "random"])
    out = capsys.readouterr().out
    start = f"| {runs[0].parent}"
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(start)]
    assert len(rows) == 2
    diffs = []
    for path, row in zip(runs, rows, strict=True):
        meta = json.loads((path / "run.json").read_text())
        seed = meta["seeds"]["eval"][1]  # not [0]: the run's own evaluations use that one
        assert seed != meta["seeds"]["eval"][0] and int(row[2]) == seed
        agent, sc = load_trained_agent(path)
        mine = evaluate(AgentPolicy(agent), sc, 2, seed)["cost_per_slot"]
        theirs = evaluate(make_policy("random"), sc, 2, seed)["cost_per_slot"]
        assert row[3:6] == [f"{mine:.2f}", f"{theirs:.2f}", f"{mine - theirs:+.2f}"]
        diffs.append(mine - theirs)
    assert f"paired difference (run - random): {sum(diffs) / 2:.2f} ± " in out
    assert "p = " in out and "2 runs, 2 episodes each" in out


def test_an_evaluation_index_the_run_lacks_is_named(runs: list[Path]) -> None:
    with pytest.raises(SystemExit, match="--eval-index 10 is outside the 10 evaluation seeds"):
        load_script("against_greedy").main([str(runs[0]), "--episodes", "1", "--eval-index", "10"])
