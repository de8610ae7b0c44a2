"""Load a benchmark script (``benchmarks/NAME.py``, not a package module) as a module, and what
the tests of the probes on trained runs share."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from satedge.sim.scenario import resolve

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
TINY = resolve("small", ["episode_slots=10"])
"""A tiny scenario for training runs to probe."""
PROBE_RUN = {"learning_starts": 40, "eval_episodes": 1, "eval_every_episodes": 4,
             "batch_size": 32, "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}
"""Fast settings for a run to probe."""


def run_digest(run: Path) -> str:
    """A digest of every file of a run directory, to check that a probe wrote nothing."""
    return "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())
                   if p.is_file())


def load_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, imported afresh; it can import its sibling scripts,
    as when it is run."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe(capsys: pytest.CaptureFixture[str], script: str, run: Path,
          args: list[str]) -> tuple[str, str]:
    """Run ``benchmarks/<script>.py`` on a trained run and check that it wrote nothing there;
    its whole output and the line that names the run."""
    before = run_digest(run)
    load_script(script).main([str(run), *args])
    out = capsys.readouterr().out
    assert run_digest(run) == before  # a probe: the run directory is not written
    return out, next(x for x in out.splitlines() if x.startswith(str(run)))
