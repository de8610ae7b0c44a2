"""The sweep runner and results storage: a tiny sweep's files and tables, skipping finished runs,
redoing corrupt ones, resuming a killed sweep from checkpoints, and failures."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from satedge.agents.common.seeding import make_seeds
from satedge.agents.heuristics import make_policy
from satedge.experiments.evaluate import evaluate
from satedge.experiments.results import (
    CURVES_FILE,
    RESULT_FILE,
    TASKS_FILE,
    load_curves,
    load_finals,
    load_manifest,
    load_tasks,
    read_run_result,
    write_run_result,
)
from satedge.experiments.runner import SweepError, execute_run, run_sweep, seed_batches
from satedge.experiments.spec import PRESETS, FigureSpec, load_spec

BUDGET = {"seeds": [0], "episodes": 4, "eval_episodes": 2, "eval_every_episodes": 4,
          "loop": {"off_policy": {"n_envs": 2, "learning_starts": 40, "batch_size": 32}}}


def write_spec(path: Path, figure: str, methods: list[str], values: list[float] | None = None,
               **budget: Any) -> Path:
    """A spec file on the small scenario; ``values`` sweep K (n_iotds)."""
    own = {**BUDGET, **budget, **({"values": values} if values else {})}
    data: dict[str, Any] = {"figure": figure, "scenario_preset": "small", "methods": methods,
                            "presets": {p: own for p in PRESETS}}
    if values:
        data["x"] = {"name": "n_iotds", "keys": ["n_iotds"]}
    path.write_text(yaml.safe_dump(data))
    return path


def policy_spec(tmp: Path) -> FigureSpec:
    """Random over K = 3 and 4 (4 is the small scenario's own K)."""
    return load_spec(write_spec(tmp / "tb.yaml", "tb", ["random"], [3, 4]))


def mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob(f"*/{RESULT_FILE}")}


def test_execute_run_of_a_policy_is_evaluate_on_the_runs_held_out_seed(tmp_path: Path) -> None:
    run = policy_spec(tmp_path).expand("quick")[0]
    out = execute_run(run, str(tmp_path / "run"))
    direct = evaluate(make_policy("random"), run.resolve_scenario(), 2, make_seeds(0).eval[0])
    for name in ("latency_s", "energy_j_per_slot", "cost_per_slot", "uav_share", "drop_rate"):
        assert out.metrics[name] == direct[name]
    assert out.curves == [{"step": 0, "episodes": 0, "eval/episode_return":
                           direct["episode_return"], "eval/cost_per_slot":
                           direct["cost_per_slot"], "eval/latency_s": direct["latency_s"],
                           "eval/energy_j_per_slot": direct["energy_j_per_slot"],
                           "eval/deadline_miss_rate": direct["deadline_miss_rate"]}]
    assert out.tasks["latency_s"].size == direct["tasks"]
    executed = ~np.isnan(out.tasks["latency_s"])
    assert np.nanmean(out.tasks["latency_s"]) == pytest.approx(direct["latency_s"], rel=1e-12)
    assert out.tasks["uav"][executed].mean() == pytest.approx(direct["uav_share"], rel=1e-12)


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    curves = pd.DataFrame({"step": [0], "episodes": [0], "eval/latency_s": [1.5]})
    tasks = pd.DataFrame({"latency_s": [1.0, np.nan], "deadline_s": [3.0, 3.0],
                          "server_kind": ["uav", "none"], "status": ["ok", "dropped"]})
    return curves, tasks


def test_result_files_are_valid_only_when_complete(tmp_path: Path) -> None:
    run_dir = tmp_path / "abc"
    curves, tasks = _tables()
    write_run_result(run_dir, {"key": "abc", "metrics": {"latency_s": math.nan}}, curves, tasks)
    record = read_run_result(run_dir, "abc")
    assert record is not None and record["metrics"]["latency_s"] is None  # strict JSON
    assert sorted(p.name for p in run_dir.iterdir()) == [CURVES_FILE, RESULT_FILE, TASKS_FILE]
    assert read_run_result(run_dir, "abd") is None  # another key
    text = (run_dir / RESULT_FILE).read_text()
    (run_dir / RESULT_FILE).write_text(text[: len(text) // 2])  # cut short
    assert read_run_result(run_dir, "abc") is None
    write_run_result(run_dir, {"key": "abc", "metrics": {}}, curves, tasks)
    pd.DataFrame({"step": [1]}).to_parquet(run_dir / CURVES_FILE)  # table replaced afterwards
    assert read_run_result(run_dir, "abc") is None
    write_run_result(run_dir, {"key": "abc", "metrics": {}}, curves, tasks)
    (run_dir / TASKS_FILE).unlink()
    assert read_run_result(run_dir, "abc") is None


def test_policy_sweep_writes_files_and_skips_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    manifest = run_sweep([policy_spec(tmp_path)], "quick", out, workers=1, progress=False)
    keys = [e["key"] for e in manifest["figures"]["tb"]["runs"]]
    assert len(set(keys)) == 2 and sorted(manifest["last_sweep"]["executed"]) == sorted(keys)
    assert all(manifest["runs"][k]["status"] == "done" for k in keys)
    for key in keys:
        assert {p.name for p in (out / "runs" / key).iterdir()} == {
            RESULT_FILE, CURVES_FILE, TASKS_FILE}
    assert load_manifest(out) == manifest
    finals = load_finals(out)
    assert list(finals.columns[:6]) == ["figure", "method", "x_name", "x", "seed", "key"]
    assert sorted(finals.x) == [3.0, 4.0] and set(finals.method) == {"random"}
    assert finals.latency_s.notna().all() and (finals.tasks > 0).all()
    before = mtimes(out)
    again = run_sweep([policy_spec(tmp_path)], "quick", out, workers=1, progress=False)
    assert again["last_sweep"]["executed"] == [] and sorted(again["last_sweep"]["skipped"]) == \
        sorted(keys)
    assert mtimes(out) == before


def test_sim_and_envs_import_none_of_the_experiment_dependencies() -> None:
    code = ("import sys, satedge.sim, satedge.envs; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'pyarrow', 'ray', 'yaml', 'torch')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- slow: a learner in the sweep ----------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FigureSpec], dict]:
    """Fig "ta": random, greedy and a 4-episode AD-SAC (no swept value); fig "tb": random over
    K = 3, 4, whose K = 4 run is fig ta's random run (same key)."""
    tmp = tmp_path_factory.mktemp("runner")
    specs = [load_spec(write_spec(tmp / "ta.yaml", "ta", ["random", "greedy", "adsac"])),
             policy_spec(tmp)]
    out = tmp / "sweep"
    manifest = run_sweep(specs, "quick", out, workers=2, progress=False)
    return out, specs, manifest


@pytest.mark.slow
def test_round_trip_tables(sweep: tuple[Path, list[FigureSpec], dict]) -> None:
    out, _, manifest = sweep
    assert len(manifest["runs"]) == 4 and len(manifest["last_sweep"]["executed"]) == 4
    finals = load_finals(out)
    assert len(finals) == 5  # 3 + 2 entries, 4 distinct runs
    ta = finals[(finals.method == "random") & (finals.figure == "ta")].iloc[0]
    tb = finals[(finals.method == "random") & (finals.figure == "tb") & (finals.x == 4.0)].iloc[0]
    assert ta.key == tb.key and ta.latency_s == tb.latency_s
    assert math.isnan(float(ta.x)) and ta.x_name == "none"
    adsac = finals[finals.method == "adsac"].iloc[0]
    record = read_run_result(out / "runs" / adsac.key, adsac.key)
    assert record is not None and record["resumed"] is False
    for name, value in record["train_final"].items():  # train()'s own final evaluation
        assert adsac[name] == pytest.approx(value, rel=1e-9)
    curves = load_curves(out)
    learner = curves[curves.method == "adsac"]
    assert learner.step.tolist() == [20, 40] and learner.episodes.tolist() == [2, 4]
    assert learner["eval/cost_per_slot"].iloc[-1] == pytest.approx(adsac.cost_per_slot)
    assert (curves[curves.method != "adsac"].step == 0).all()
    tasks = load_tasks(out)
    assert set(tasks.server_kind) <= {"uav", "satellite"} and tasks.latency_s.notna().all()
    for _, row in finals.iterrows():
        mine = tasks[(tasks.key == row.key) & (tasks.figure == row.figure)]
        assert (mine.server_kind == "uav").mean() == pytest.approx(row.uav_share)
        assert mine.latency_s.mean() == pytest.approx(row.latency_s)
    everything = load_tasks(out, executed_only=False)
    assert len(everything[everything.figure == "ta"]) == finals[finals.figure == "ta"].tasks.sum()


@pytest.mark.slow
def test_rerun_redoes_only_missing_or_corrupt_results(
        sweep: tuple[Path, list[FigureSpec], dict]) -> None:
    out, specs, _ = sweep
    finals = load_finals(out)
    before = mtimes(out)
    greedy = finals[finals.method == "greedy"].key.iloc[0]
    adsac = finals[finals.method == "adsac"].key.iloc[0]
    (out / "runs" / greedy / RESULT_FILE).unlink()  # as if killed before its result was written
    (out / "runs" / adsac / TASKS_FILE).write_bytes(b"PAR1 cut short")  # a corrupt table
    manifest = run_sweep(specs, "quick", out, workers=1, progress=False)
    assert sorted(manifest["last_sweep"]["executed"]) == sorted([greedy, adsac])
    after = mtimes(out)
    assert {k for k in before if after[k] != before[k]} == {greedy, adsac}
    record = read_run_result(out / "runs" / adsac, adsac)
    assert record is not None and record["resumed"] is True  # training was not repeated
    assert len(pd.read_json(out / "runs" / adsac / "metrics.jsonl", lines=True)) == 2
    pd.testing.assert_frame_equal(load_finals(out), finals)


@pytest.mark.slow
def test_a_failing_run_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "tf.yaml", "tf", ["random", "adsac"]))
    adsac = next(r for r in spec.expand("quick") if r.method == "adsac")
    run_dir = tmp_path / "sweep" / "runs" / adsac.key
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"identity": {"algo": "ppo"}}))
    with pytest.raises(SweepError, match=r"1 of 2 runs failed .*holds a different run") as err:
        run_sweep([spec], "quick", tmp_path / "sweep", workers=2, progress=False)
    status = err.value.manifest["runs"]
    assert status[adsac.key]["status"] == "failed"
    assert [s["status"] for k, s in status.items() if k != adsac.key] == ["done"]
    assert load_finals(tmp_path / "sweep").method.tolist() == ["random"]


_DRIVER = """
import sys
from satedge.experiments.runner import run_sweep
if __name__ == "__main__":
    run_sweep([sys.argv[1]], "quick", sys.argv[2], workers=2, progress=False)
"""


@pytest.mark.slow
def test_killed_sweep_resumes_from_checkpoints_without_losing_runs(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "tk.yaml", "tk", ["random", "greedy", "adsac"], episodes=8)
    spec = load_spec(path)
    adsac = next(r for r in spec.expand("quick") if r.method == "adsac")
    out = tmp_path / "sweep"
    (tmp_path / "driver.py").write_text(_DRIVER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(path), str(out)],
                            start_new_session=True)
    run_dir = out / "runs" / adsac.key
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (run_dir / "checkpoint.pt").exists() and len(mtimes(out)) == 2:
                break  # AD-SAC is mid-way, both policies are finished
            time.sleep(0.1)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool workers
        proc.wait()
    assert not (run_dir / RESULT_FILE).exists()
    rows_at_kill = pd.read_json(run_dir / "metrics.jsonl", lines=True)
    assert 1 <= len(rows_at_kill) < 4
    before = mtimes(out)
    manifest = run_sweep([spec], "quick", out, workers=1, progress=False)
    assert manifest["last_sweep"]["executed"] == [adsac.key]
    assert {k: v for k, v in mtimes(out).items() if k in before} == before
    record = read_run_result(run_dir, adsac.key)
    assert record is not None and record["resumed"] is True
    curve = pd.read_parquet(run_dir / CURVES_FILE)
    assert curve.step.tolist() == [20, 40, 60, 80] and curve.episodes.tolist() == [2, 4, 6, 8]
    kept = curve.iloc[: len(rows_at_kill)]
    assert kept["train/episode_return"].tolist() == rows_at_kill["train/episode_return"].tolist()
    assert len(load_finals(out)) == 3


_HOLDER = """
import os, sys, time
from pathlib import Path
from satedge.experiments.executors import local_results

def hold(run, where):
    Path(where).write_text(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    out = Path(sys.argv[1])
    for _ in local_results(hold, [(i, str(out / f"worker{i}")) for i in range(2)], 2):
        pass
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left unreaped by a container's init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_pool_workers_end_when_the_sweep_process_is_killed(tmp_path: Path) -> None:
    # `kill PID` of a sweep reaches only the sweep process; its workers must not go on
    # training runs that a rerun of the sweep resumes at the same time
    (tmp_path / "holder.py").write_text(_HOLDER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "holder.py"), str(tmp_path)],
                            start_new_session=True)
    files = [tmp_path / f"worker{i}" for i in range(2)]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(f.exists() and f.read_text()
                                                       for f in files):
            time.sleep(0.1)
        workers = [int(f.read_text()) for f in files]
        assert all(_alive(pid) for pid in workers)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep process alone
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_one_sweep_at_a_time_per_directory(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".sweep.lock").write_text(str(os.getpid()))  # a live writer
    with pytest.raises(RuntimeError, match=rf"another sweep \(pid {os.getpid()}\) is writing"):
        run_sweep([policy_spec(tmp_path)], "quick", out, workers=1, progress=False)
    (out / ".sweep.lock").write_text("999999999")  # a writer that is gone: taken over
    manifest = run_sweep([policy_spec(tmp_path)], "quick", out, workers=1, progress=False)
    assert len(manifest["last_sweep"]["executed"]) == 2 and not (out / ".sweep.lock").exists()


def test_arguments_are_checked(tmp_path: Path) -> None:
    spec = policy_spec(tmp_path)
    with pytest.raises(ValueError, match=r"backend='dask' is not allowed; choose one of "
                                         r"\['local', 'ray'\]"):
        run_sweep([spec], "quick", tmp_path, backend="dask")
    with pytest.raises(ValueError, match="address is only used with backend='ray'"):
        run_sweep([spec], "quick", tmp_path, address="auto")
    with pytest.raises(ValueError, match=r"figures=\['9'\] not among the specs"):
        run_sweep([spec], "quick", tmp_path, figures=[9])
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        run_sweep([spec], "fast", tmp_path)
    with pytest.raises(ValueError, match="seed_batch=0 must be at least 1"):
        run_sweep([spec], "quick", tmp_path, seed_batch=0)


def test_seed_batches_group_seeds_of_one_configuration(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "sb.yaml", "sb", ["adsac", "d3qn", "random"],
                                seeds=[0, 1, 2], values=[3, 4]))
    runs = spec.expand("quick")
    jobs = seed_batches(runs, workers=2, seed_batch=2)
    assert sorted(r.key for job in jobs for r in job) == sorted(r.key for r in runs)
    for job in jobs:
        if len(job) > 1:  # AD-SAC only, same x, distinct seeds
            assert {r.method for r in job} == {"adsac"} and len({r.x for r in job}) == 1
            assert len({r.seed for r in job}) == len(job) <= 2
    assert sorted(len(j) for j in jobs if j[0].method == "adsac") == [1, 1, 2, 2]
    assert all(len(j) == 1 for j in seed_batches(runs, workers=2, seed_batch=1))
    # auto: batches only as large as keeps the workers busy
    assert all(len(j) == 1 for j in seed_batches(runs, workers=len(runs), seed_batch=None))
    auto = seed_batches(runs, workers=2, seed_batch=None)
    assert max(len(j) for j in auto) == 3 and len(auto) < len(runs)


@pytest.mark.slow
def test_a_seed_batched_sweep_matches_separate_runs(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "sc.yaml", "sc", ["adsac"], seeds=[0, 1])
    apart = run_sweep([load_spec(path)], "quick", tmp_path / "apart", workers=1,
                      progress=False, seed_batch=1)
    together = run_sweep([load_spec(path)], "quick", tmp_path / "together", workers=1,
                         progress=False, seed_batch=2)
    assert sorted(apart["runs"]) == sorted(together["runs"])
    a, b = load_finals(tmp_path / "apart"), load_finals(tmp_path / "together")
    for col in ("cost_per_slot", "latency_s", "episode_return"):
        assert np.allclose(a.sort_values("seed")[col], b.sort_values("seed")[col], rtol=1e-3)
