"""Interruptions lose nothing: SIGKILLed training resumes exactly, damaged files are detected.

``satedge train`` runs as a subprocess and is killed (SIGKILL: no handler, no cleanup) at seeded
random moments; the same command is run again until it finishes. The final checkpoint (networks,
optimisers, replay buffer or rollout, generators), ``summary.json`` and ``metrics.jsonl`` must
equal those of an uninterrupted run (except the wall-clock ``perf/`` metrics), and the metrics
must have no gap and no duplicate step. Files cut short or damaged (as a crash of the machine or
a bad copy could leave them) are detected: a partial metrics line and an unreadable
``summary.json`` or ``run.json`` are redone; a damaged checkpoint is refused with its path named.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satedge.agents.common.checkpoint import CheckpointError
from satedge.agents.common.logger import read_metrics
from satedge.cli import main
from tests.reliability.runs import assert_same_run, command, finish, spawn, train_here

torch.set_num_threads(1)

def kill_and_resume(argv: list[str], out: Path, kills: int, rng: np.random.Generator,
                    window_s: float) -> dict[str, int]:
    """Start ``argv``, SIGKILL it after a random delay in [0.35, 1] ``window_s`` (``kills``
    times, starting again each time), then run it to the end. Returns counts for the report."""
    counts = {"kills": 0, "after_checkpoint": 0, "finished_before_kill": 0, "stale_tmp": 0}
    for _ in range(kills):
        proc = spawn(argv)
        delay = float(rng.uniform(0.35 * window_s, window_s))  # past most of the start-up
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            counts["after_checkpoint"] += (out / "checkpoint.pt").exists()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            counts["kills"] += 1
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            counts["finished_before_kill"] += 1
        finally:
            if proc.stderr is not None:
                proc.stderr.close()
    finish(argv)
    counts["stale_tmp"] = len([p for p in out.iterdir() if p.name.endswith(".tmp")])
    return counts


@pytest.fixture(scope="module")
def reference_adsac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted AD-SAC run of 12 episodes (3 checkpoints)."""
    out = tmp_path_factory.mktemp("ref") / "adsac"
    train_here("adsac", out, 12)
    return out


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run after its first 4 episodes (what an interruption would leave, plus a
    summary; extending a run to more episodes continues from its checkpoint)."""
    out = tmp_path_factory.mktemp("first") / "adsac"
    train_here("adsac", out, 4)
    return out


def copy_run(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(src, out)
    return out


# -- one kill after the first checkpoint (default suite) -----------------------------------------
def test_killed_training_resumes_exactly(tmp_path: Path, reference_adsac: Path) -> None:
    out = tmp_path / "run"
    argv = command("adsac", out, 12)
    proc = spawn(argv)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint.pt").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(float(np.random.default_rng(0).uniform(0.0, 0.2)))
        assert proc.poll() is None, "the run ended before the kill"
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    at_kill = read_metrics(out)
    assert 1 <= len(at_kill) < 3 and not (out / "summary.json").exists()
    finish(argv)
    assert_same_run(out, reference_adsac)


# -- many kills at random moments (slow) ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["adsac", "ppo"])
def test_random_kills_resume_exactly(algo: str, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    t0 = time.perf_counter()
    finish(command(algo, reference, 16))  # a subprocess too: its wall time sets the kill window
    window = time.perf_counter() - t0
    out = tmp_path / "run"
    counts = kill_and_resume(command(algo, out, 16), out, kills=6,
                             rng=np.random.default_rng(2024), window_s=window)
    print(f"{algo}: uninterrupted {window:.1f} s; {counts}")
    assert counts["kills"] >= 3 and counts["after_checkpoint"] >= 1
    assert_same_run(out, reference)


# -- damaged files -------------------------------------------------------------------------------
def test_partial_metrics_line_is_dropped_and_redone(tmp_path: Path, first_batch: Path,
                                                    reference_adsac: Path) -> None:
    """A crash mid-write leaves a metrics line without its newline: on resume it is dropped
    and the record is written again, whole."""
    out = copy_run(first_batch, tmp_path)
    assert [r["step"] for r in read_metrics(out)] == [20]
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "train/episode_return": -12')  # cut short
    train_here("adsac", out, 12)
    assert_same_run(out, reference_adsac)


def test_unreadable_summary_is_redone(tmp_path: Path, reference_adsac: Path) -> None:
    out = copy_run(reference_adsac, tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    text = (out / "summary.json").read_text()
    for damaged in (text[: len(text) // 2], "", "[1, 2]"):
        (out / "summary.json").write_text(damaged)
        final = train_here("adsac", out, 12)  # the final evaluation, from the checkpoint
        assert final == {k: summary[k] for k in final}
        assert json.loads((out / "summary.json").read_text()) == summary


def test_unreadable_run_record_is_rewritten(tmp_path: Path, first_batch: Path,
                                            reference_adsac: Path) -> None:
    out = copy_run(first_batch, tmp_path)
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text((out / "run.json").read_text()[:100])
    train_here("adsac", out, 12)
    assert json.loads((out / "run.json").read_text())["identity"] == record["identity"]
    assert_same_run(out, reference_adsac)


def test_damaged_checkpoint_is_refused_then_redone(tmp_path: Path, first_batch: Path,
                                                   reference_adsac: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint cut short or overwritten is never read as valid: the run stops with one
    line naming the file; once the file is removed the same command redoes the run."""
    out = copy_run(first_batch, tmp_path)
    data = (out / "checkpoint.pt").read_bytes()
    rng = np.random.default_rng(5)
    flipped = bytearray(data)
    flipped[len(data) // 3: len(data) // 3 + 64] = rng.bytes(64)
    for damaged in (data[: len(data) // 2], data[:100], b"", bytes(flipped)):
        (out / "checkpoint.pt").write_bytes(damaged)
        with pytest.raises(CheckpointError, match=r"checkpoint\.pt is truncated or corrupt"):
            train_here("adsac", out, 12)
        assert main(command("adsac", out, 12)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "checkpoint.pt is truncated or corrupt" in err
        assert "delete it to start the run over" in err  # what to do about it
    (out / "checkpoint.pt").unlink()
    train_here("adsac", out, 12)
    assert_same_run(out, reference_adsac)


def test_corrupt_metrics_line_in_the_middle_is_reported(tmp_path: Path,
                                                        reference_adsac: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    out = copy_run(reference_adsac, tmp_path)
    (out / "summary.json").unlink()
    lines = (out / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"
    (out / "metrics.jsonl").write_text("".join(lines))
    assert main(command("adsac", out, 12)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.jsonl:2 is not valid JSON" in err


@pytest.fixture(scope="module")
def sweep_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run's result files as the sweep runner writes them (key ``k1``)."""
    from satedge.experiments.results import write_run_result

    run = tmp_path_factory.mktemp("result")
    curves = pd.DataFrame({"step": [20, 40], "episodes": [4, 8],
                           "eval/episode_return": [-3.0, -2.5]})
    tasks = pd.DataFrame({"episode": [0, 0], "latency_s": [1.5, float("nan")]})
    write_run_result(run, {"key": "k1", "metrics": {"latency_s": 1.5}}, curves, tasks)
    return run


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["result.json", "metrics.parquet", "tasks.parquet"]),
       st.floats(0.0, 1.0, exclude_max=True), st.booleans())
def test_cut_or_damaged_sweep_result_is_never_read_as_valid(tmp_path: Path, sweep_result: Path,
                                                            name: str, at: float,
                                                            flip: bool) -> None:
    """A run's result is finished only when ``result.json`` and the two tables it vouches for
    (by SHA-256) are whole: a file cut short, or a table with one byte changed, makes the
    runner redo the run."""
    from satedge.experiments.results import read_run_result

    run = tmp_path / f"r{abs(hash((name, at, flip)))}"
    shutil.copytree(sweep_result, run)
    assert read_run_result(run, "k1") is not None
    data = (run / name).read_bytes()
    cut = int(at * len(data))
    if flip and name != "result.json":  # the tables are covered by their hashes
        (run / name).write_bytes(data[:cut] + bytes([data[cut] ^ 0x01]) + data[cut + 1:])
    else:
        (run / name).write_bytes(data[:cut])
        if cut >= len(data.rstrip()):  # only the final newline went: the content is whole
            assert read_run_result(run, "k1") is not None
            return
    assert read_run_result(run, "k1") is None


# -- a sweep killed at random moments (slow) ----------------------------------------------------
_DRIVER = """
import sys
from satedge.experiments.runner import run_sweep
if __name__ == "__main__":
    run_sweep([sys.argv[1]], "quick", sys.argv[2], workers=1, progress=False)
"""


def _sweep_spec(path: Path) -> Path:
    """Random, greedy and AD-SAC over K = 3, 4 on the small scenario (6 runs)."""
    budget = {"seeds": [0], "episodes": 8, "eval_episodes": 2, "eval_every_episodes": 4,
              "values": [3, 4],
              "loop": {"off_policy": {"n_envs": 4, "learning_starts": 40, "batch_size": 32}}}
    path.write_text(yaml.safe_dump({
        "figure": "rk", "scenario_preset": "small", "methods": ["random", "greedy", "adsac"],
        "x": {"name": "n_iotds", "keys": ["n_iotds"]},
        "presets": {p: budget for p in ("quick", "standard", "paper")}}))
    return path


def _result_mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}


@pytest.mark.slow
def test_sweep_killed_at_random_moments_finishes_without_redoing_runs(tmp_path: Path) -> None:
    from satedge.experiments.results import load_curves, load_finals, load_tasks

    spec = _sweep_spec(tmp_path / "rk.yaml")
    (tmp_path / "driver.py").write_text(_DRIVER)

    def start(out: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(spec),
                                 str(out)], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    assert start(tmp_path / "reference").wait(timeout=600) == 0
    window = time.perf_counter() - t0
    out, rng = tmp_path / "sweep", np.random.default_rng(11)
    seen: dict[str, int] = {}  # run key -> mtime of its result when first seen
    kills = 0
    for _ in range(5):
        proc = start(out)
        try:
            proc.wait(timeout=float(rng.uniform(0.3 * window, window)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool worker
            proc.wait()
            kills += 1
        for key, mtime in _result_mtimes(out).items():
            assert seen.setdefault(key, mtime) == mtime, f"finished run {key} was redone"
    assert start(out).wait(timeout=600) == 0
    for key, mtime in _result_mtimes(out).items():
        assert seen.setdefault(key, mtime) == mtime, f"finished run {key} was redone"
    print(f"\nsweep: uninterrupted {window:.1f} s, {kills} kills, {len(seen)} runs")
    assert kills >= 2 and len(seen) == 6
    for load in (load_finals, load_curves, load_tasks):
        mine, ref = load(out), load(tmp_path / "reference")
        keep = [c for c in ref.columns if not c.startswith("perf/")]
        order = [c for c in ("key", "step", "episode", "slot", "iotd") if c in keep]
        pd.testing.assert_frame_equal(mine[keep].sort_values(order).reset_index(drop=True),
                                      ref[keep].sort_values(order).reset_index(drop=True))
