"""AD-SAC end to end on a tiny scenario: determinism, exact resumption, evaluation of a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.common.logger import read_metrics
from satedge.cli import main
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve

TINY = resolve("small", ["episode_slots=10"])
FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}


def _params(path: Path) -> dict[str, torch.Tensor]:
    agent, _ = load_trained_agent(path)
    state = agent.state_dict()
    out = {}
    for name in ("actor_d", "actor_c", "critics"):
        out.update({f"{name}.{k}": v for k, v in state[name].items()})
    out["log_alpha"] = state["log_alpha"]
    return out


def _metrics(path: Path) -> list[dict]:
    return [{k: v for k, v in m.items() if not k.startswith("perf/")} for m in read_metrics(path)]


@pytest.mark.parametrize("algo", ["adsac", "adsac-nompo", "adsac-paper"])
def test_same_seed_same_parameters(tmp_path: Path, algo: str) -> None:
    a = train(algo, TINY, 3, 8, tmp_path / "a", overrides=FAST, progress=False)
    b = train(algo, TINY, 3, 8, tmp_path / "b", overrides=FAST, progress=False)
    train(algo, TINY, 4, 8, tmp_path / "c", overrides=FAST, progress=False)
    pa, pb, pc = (_params(tmp_path / n) for n in "abc")
    for key in pa:
        torch.testing.assert_close(pa[key], pb[key], rtol=0, atol=0)
    assert a == b
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)
    assert all(np.isfinite(v) for v in a.values())


def test_interrupted_run_resumes_exactly(tmp_path: Path) -> None:
    train("adsac", TINY, 5, 12, tmp_path / "whole", overrides=FAST, progress=False)
    train("adsac", TINY, 5, 4, tmp_path / "parts", overrides=FAST, progress=False)
    # simulate a crash after the checkpoint: a half-finished metrics line must be dropped
    with open(tmp_path / "parts" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 999, "train/cost_')
    train("adsac", TINY, 5, 12, tmp_path / "parts", overrides=FAST, progress=False)
    whole, parts = _params(tmp_path / "whole"), _params(tmp_path / "parts")
    for key in whole:
        torch.testing.assert_close(whole[key], parts[key], rtol=0, atol=0)
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "parts")
    steps = [m["step"] for m in read_metrics(tmp_path / "parts")]
    assert steps == sorted(set(steps))  # no gaps or duplicates


def test_run_directory_refuses_a_different_run(tmp_path: Path) -> None:
    train("adsac", TINY, 1, 4, tmp_path / "r", overrides=FAST, progress=False)
    with pytest.raises(ValueError, match="holds a different run"):
        train("adsac-nompo", TINY, 1, 4, tmp_path / "r", overrides=FAST, progress=False)
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    for key in ("identity", "seeds", "command", "version", "git_revision"):
        assert key in meta


def test_cli_train_and_evaluate_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["train", "--algo", "adsac", "--preset", "small", "--set", "episode_slots=10",
            "--seed", "0", "--episodes", "4", "--out", str(out), "--no-progress"]
    for key, value in FAST.items():
        args += ["--agent-set", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", "--policy", str(out), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cost_per_slot"] > 0 and result["episodes"] == 2
    assert "decision_samples" not in result
    assert main(["evaluate", "--policy", str(out), "--episodes", "2", "--json",
                 "--decision-samples", "8"]) == 0
    picked = json.loads(capsys.readouterr().out)
    assert picked["decision_samples"] == 8 and picked["cost_per_slot"] > 0
    assert main(["evaluate", "--policy", str(out), "--decision-samples", "-1"]) == 2
    assert "must be >= 0" in capsys.readouterr().err
    assert main(["train", "--algo", "nosuch", "--seed", "0", "--episodes", "4", "--out",
                 str(tmp_path / "x")]) == 2


def test_counterfactual_samples_train_and_leave_default_identities_alone(tmp_path: Path) -> None:
    """The loop's ``counterfactual_samples`` trains, is recorded when set, and is left out of
    the identity at its default 0, so run directories made before it existed still resume."""
    train("adsac", TINY, 0, 4, tmp_path / "off", overrides=FAST, progress=False)
    train("adsac", TINY, 0, 4, tmp_path / "on", overrides={**FAST, "counterfactual_samples": 2},
          progress=False)
    off = json.loads((tmp_path / "off" / "run.json").read_text())["identity"]["loop"]
    on = json.loads((tmp_path / "on" / "run.json").read_text())["identity"]["loop"]
    assert "counterfactual_samples" not in off and on["counterfactual_samples"] == 2
    off_p, on_p = _params(tmp_path / "off"), _params(tmp_path / "on")
    assert not all(torch.equal(off_p[k], on_p[k]) for k in off_p)
