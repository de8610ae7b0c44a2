"""A shared end-to-end check for learners: ``satedge train`` on a tiny scenario is deterministic,
resumes exactly, differs across seeds, and the run evaluates through ``--policy DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from satedge.cli import main
from satedge.experiments.train import load_trained_agent


def train_args(algo: str, out: Path, seed: int, episodes: int,
               agent_set: dict[str, Any]) -> list[str]:
    """``satedge train`` arguments for ``algo`` on the small preset with 10-slot episodes."""
    args = ["train", "--algo", algo, "--preset", "small", "--set", "episode_slots=10",
            "--seed", str(seed), "--episodes", str(episodes), "--out", str(out), "--no-progress"]
    for key, value in agent_set.items():
        args += ["--agent-set", f"{key}={json.dumps(value)}"]
    return args


def _params(path: Path, networks: tuple[str, ...]) -> dict[str, torch.Tensor]:
    agent, _ = load_trained_agent(path)
    state = agent.state_dict()
    return {f"{n}.{k}": v for n in networks for k, v in state[n].items()}


def check_cli_determinism_and_resume(algo: str, agent_set: dict[str, Any],
                                     networks: tuple[str, ...], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Whole run == run in two parts (bit for bit); another seed differs; evaluation works."""
    def run(name: str, seed: int, episodes: int) -> None:
        assert main(train_args(algo, tmp_path / name, seed, episodes, agent_set)) == 0

    run("whole", 0, 12)
    run("parts", 0, 4)
    run("parts", 0, 12)  # resumes from the checkpoint
    run("other", 1, 12)
    whole, parts, other = (_params(tmp_path / n, networks) for n in ("whole", "parts", "other"))
    for key in whole:
        torch.testing.assert_close(whole[key], parts[key], rtol=0, atol=0)
    assert any(not torch.equal(whole[k], other[k]) for k in whole)
    capsys.readouterr()
    assert main(["evaluate", "--policy", str(tmp_path / "parts"), "--episodes", "2",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cost_per_slot"] > 0 and result["infeasible_rate"] == 0.0
