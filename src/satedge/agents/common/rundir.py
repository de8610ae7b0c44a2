"""A training run's directory: what was run, its metrics, and checkpoints to resume from.

Layout::

    DIR/run.json            algorithm, agent and loop config, scenario, seeds, command,
                            package version, git revision, start time
    DIR/metrics.jsonl       one JSON record per episode batch (fixed metric names)
    DIR/tb/                 TensorBoard event files of the same metrics
    DIR/checkpoint.pt       the latest checkpoint (weights-only torch file, written atomically)
    DIR/summary.json        final evaluation, written when the run completes

Running the same command again on an existing DIR resumes from ``checkpoint.pt``; a DIR holding a
different run (algorithm, config, scenario or seed) is refused with the differing key named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from satedge.agents.common.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from satedge.agents.common.logger import MetricLogger
from satedge.agents.common.seeding import RunSeeds, make_seeds
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.state import SlotState
from satedge.sim.tasks import TaskBatch

__all__ = ["RunDir", "Stateful", "config_hash"]


class Stateful(Protocol):
    """What a checkpoint's ``buffer`` slot holds: a replay buffer (off-policy loop) or the partly
    filled rollout with its reward normaliser (on-policy loop)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def config_hash(identity: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able run identity."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


class RunDir:
    """Creates or reopens a run directory for a given identity (algo, configs, scenario, seed)."""

    def __init__(self, path: str | Path, identity: dict[str, Any], seed: int) -> None:
        from satedge import __version__

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        # JSON round trip: run.json stores tuples as lists, so compare in that form
        self.identity = json.loads(json.dumps({**identity, "seed": seed}))
        self.hash = config_hash(self.identity)
        self.seeds: RunSeeds = make_seeds(seed)
        meta_path = self.path / "run.json"
        # a missing or unreadable record is written anew: the checkpoint's own identity check
        # still refuses to resume another run's state
        recorded = (_read_json(meta_path) or {}).get("identity")
        if isinstance(recorded, dict):
            for key, value in self.identity.items():
                if recorded.get(key) != value:
                    raise ValueError(
                        f"{self.path} holds a different run: its {key!r} differs; "
                        "use another --out or delete it"
                    )
        else:
            _write_json_atomic(
                meta_path,
                {
                    "identity": self.identity,
                    "hash": self.hash,
                    "seeds": self.seeds.to_dict(),
                    "command": sys.argv,
                    "version": __version__,
                    "git_revision": _git_revision(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def is_finished(self) -> bool:
        return (self.path / "summary.json").exists()

    def logger(self, truncate_after: int) -> MetricLogger:
        logger = MetricLogger(self.path)
        logger.truncate_after(truncate_after)
        return logger

    def save(
        self,
        agent: Stateful,
        buffer: Stateful,
        env: MllmOffloadVectorEnv,
        rng: np.random.Generator,
        counters: dict[str, int],
    ) -> None:
        assert env.state is not None
        save_checkpoint(
            self.checkpoint_path,
            {
                "agent": agent.state_dict(),
                "buffer": buffer.state_dict(),
                "env_state": _state_to_dict(env.state),
                "env_rngs": [g.bit_generator.state for g in env.rngs],
                "rng": rng.bit_generator.state,
                "counters": dict(counters),
            },
            meta={
                "hash": self.hash,
                "algo": self.identity.get("algo"),
                "satedge_major": _major_version(),
                "identity_hashes": _identity_hashes(self.identity),
            },
        )

    def restore(
        self,
        agent: Stateful,
        buffer: Stateful,
        env: MllmOffloadVectorEnv,
        rng: np.random.Generator,
        counters: dict[str, int],
    ) -> tuple[Any, dict[str, Any]]:
        """Load the checkpoint into the given objects; returns the env's (obs, info)."""
        state = self._load()
        agent.load_state_dict(state["agent"])
        buffer.load_state_dict(state["buffer"])
        env.state = _state_from_dict(state["env_state"])
        for g, s in zip(env.rngs, state["env_rngs"], strict=True):
            g.bit_generator.state = s
        rng.bit_generator.state = state["rng"]
        counters.update({k: int(v) for k, v in state["counters"].items()})
        return env.observe(), {"action_mask": env.state.mask}

    def checkpoint_steps(self) -> int:
        """Environment steps the checkpoint has reached (it must exist)."""
        return int(self._load()["counters"]["env_steps"])

    def load_agent_state(self) -> dict[str, Any]:
        """The agent part of the checkpoint (for evaluation)."""
        if not self.has_checkpoint():
            raise CheckpointError(f"{self.path} has no checkpoint.pt")
        return dict(self._load()["agent"])

    def _load(self) -> dict[str, Any]:
        """The checkpoint's state, refused (CheckpointError, saying why) when it is damaged or
        belongs to another run or satedge major version."""
        try:
            loaded = load_checkpoint(self.checkpoint_path)
        except CheckpointError as err:
            raise CheckpointError(f"{err}; delete it to start the run over") from None
        meta = loaded["meta"]
        major = _major_version()
        if meta.get("satedge_major") != major:
            raise CheckpointError(
                f"{self.checkpoint_path} was written by satedge major version "
                f"{meta.get('satedge_major')!r}; this is version {major}, whose checkpoints "
                "differ: use a matching satedge or start the run over")
        if meta.get("hash") != self.hash:
            theirs = meta.get("identity_hashes") or {}
            differ = sorted(k for k, h in _identity_hashes(self.identity).items()
                            if theirs.get(k) != h) if theirs else ["identity"]
            raise CheckpointError(
                f"{self.checkpoint_path} belongs to another run: its {', '.join(differ)} "
                f"differ{'s' if len(differ) == 1 else ''} from this run's")
        return dict(loaded["state"])

    def completed_episodes(self) -> int:
        """Episodes recorded by ``summary.json`` (0 if the run has not finished, or the file is
        unreadable: the final evaluation is then redone from the checkpoint)."""
        summary = _read_json(self.path / "summary.json")
        episodes = summary.get("episodes", 0) if summary is not None else 0
        return episodes if isinstance(episodes, int) else 0

    @staticmethod
    def seeds_for(seed: int) -> RunSeeds:
        """The seeds a run with this seed uses (before its directory exists)."""
        return make_seeds(seed)

    def finish(self, final: dict[str, Any]) -> None:
        _write_json_atomic(self.path / "summary.json", {"hash": self.hash, **final})


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None if it is missing, cut short or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _identity_hashes(identity: dict[str, Any]) -> dict[str, str]:
    """Per-key hashes of a run identity (algo, agent, loop, scenario, seed)."""
    return {key: config_hash({key: value}) for key, value in identity.items()}


def _major_version() -> int:
    from satedge import __version__

    return int(__version__.split(".")[0])


def _state_to_dict(st: SlotState) -> dict[str, Any]:
    out = {f.name: getattr(st, f.name) for f in dataclasses.fields(st) if f.name != "tasks"}
    out["tasks"] = {f.name: getattr(st.tasks, f.name) for f in dataclasses.fields(st.tasks)}
    return out


def _state_from_dict(d: dict[str, Any]) -> SlotState:
    fields = {k: np.asarray(v) for k, v in d.items() if k != "tasks"}
    tasks = TaskBatch(**{k: np.asarray(v) for k, v in d["tasks"].items()})
    return SlotState(tasks=tasks, **fields)
