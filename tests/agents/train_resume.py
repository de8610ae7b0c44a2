"""A shared check for AD-SAC options added after the first releases: a run resumed half-way
equals an uninterrupted one, and the option names itself in the run identity only when set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve

FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}


def check_resume_and_identity(tmp_path: Path, algo: str, plain_algo: str, key: str,
                              modules: tuple[str, ...], settings: dict[str, Any] | None = None,
                              part: str = "agent") -> Any:
    """Train ``algo`` (with ``settings`` on top of the fast ones) for 8 episodes at once and as
    4 + 4 resumed (tiny scenario): ``modules`` equal bit for bit. ``key`` is in the ``part``
    ("agent" or "loop") of ``algo``'s identity and not in ``plain_algo``'s (trained without
    ``settings``, where the option is at its default). Returns the uninterrupted run's agent."""
    tiny = resolve("small", ["episode_slots=10"])
    over = {**FAST, **(settings or {})}
    train(algo, tiny, 5, 8, tmp_path / "whole", overrides=over, progress=False)
    train(algo, tiny, 5, 4, tmp_path / "parts", overrides=over, progress=False)
    train(algo, tiny, 5, 8, tmp_path / "parts", overrides=over, progress=False)
    whole, _ = load_trained_agent(tmp_path / "whole")
    parts, _ = load_trained_agent(tmp_path / "parts")
    for name in modules:
        for k, value in whole.state_dict()[name].items():
            torch.testing.assert_close(value, parts.state_dict()[name][k], rtol=0, atol=0)
    train(plain_algo, tiny, 5, 4, tmp_path / "plain", overrides=FAST, progress=False)
    ident = {p: json.loads((tmp_path / p / "run.json").read_text())["identity"][part]
             for p in ("whole", "plain")}
    assert key in ident["whole"]
    assert key not in ident["plain"]
    return whole


def check_registered_as(tmp_path: Path, name: str, base: str, settings: dict[str, Any]) -> Any:
    """The registered algorithm ``name`` has the agent part of ``base``'s run identity with
    ``settings`` on top (tiny scenario); returns ``name``'s agent."""
    from satedge.experiments.train import _prepare

    tiny = resolve("small", ["episode_slots=10"])
    named = _prepare(name, tiny, 0, 4, tmp_path / "named", {})
    spelled = _prepare(base, tiny, 0, 4, tmp_path / "spelled", settings)
    assert named[2].identity["agent"] == spelled[2].identity["agent"]
    return named[0]
