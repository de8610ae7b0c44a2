"""Small training runs for the interruption and untrusted-file tests, and exact comparisons.

The runs train on the ``small`` scenario with seed 3 and small networks; :func:`command` gives the
``satedge train`` arguments, :func:`train_here` the same run in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satedge.agents.common.checkpoint import load_checkpoint
from satedge.agents.common.logger import read_metrics
from satedge.experiments.train import train
from satedge.sim.scenario import parse_override, resolve

SETTINGS = {
    # small networks and early learning so that updates happen within a few episodes
    "adsac": ["n_envs=4", "learning_starts=40", "batch_size=32", "buffer_size=2000",
              "eval_every_episodes=4", "eval_episodes=2", "hidden=[32,32]", "iotd_hidden=[16]"],
    # n_steps=30 with 20-slot episodes: checkpoints hold a partly filled rollout
    "ppo": ["n_envs=4", "n_steps=30", "minibatch_size=40", "epochs=2", "eval_every_episodes=4",
            "eval_episodes=2", "hidden=[32,32]"],
}


def command(algo: str, out: Path, episodes: int) -> list[str]:
    """``satedge train`` arguments of the test runs (small scenario)."""
    argv = ["train", "--algo", algo, "--seed", "3", "--episodes", str(episodes), "--out",
            str(out), "--preset", "small", "--no-progress"]
    for item in SETTINGS[algo]:
        argv += ["--agent-set", item]
    return argv


def train_here(algo: str, out: Path, episodes: int) -> dict[str, Any]:
    """The same run as :func:`command`, in this process (the uninterrupted reference)."""
    overrides = dict(parse_override(item) for item in SETTINGS[algo])
    return train(algo, resolve("small"), 3, episodes, out, overrides=overrides, progress=False)


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """``satedge ARGV`` as a subprocess (one thread; stderr kept for failures)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "satedge.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(argv: list[str]) -> None:
    """Run ``satedge ARGV`` to the end; it must succeed."""
    proc = spawn(argv)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]


def assert_same_state(a: Any, b: Any, where: str = "state") -> None:
    """Exact equality of nested checkpoint state (tensors, arrays, scalars, containers)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b or (a != a and b != b), where  # nan == nan for floats


def metrics_without_perf(run: Path) -> list[dict[str, Any]]:
    """The run's metrics records without the wall-clock ``perf/`` values."""
    return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in read_metrics(run)]


def assert_same_run(run: Path, reference: Path) -> None:
    """``run`` (interrupted and resumed) equals ``reference`` (uninterrupted)."""
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(set(steps)), f"duplicate or unordered steps {steps}"
    assert steps == [r["step"] for r in read_metrics(reference)], "a gap in the metrics"
    assert (run / "metrics.jsonl").read_text().endswith("\n")
    assert metrics_without_perf(run) == metrics_without_perf(reference)
    assert json.loads((run / "summary.json").read_text()) == \
        json.loads((reference / "summary.json").read_text())
    assert_same_state(load_checkpoint(run / "checkpoint.pt")["state"],
                      load_checkpoint(reference / "checkpoint.pt")["state"])
