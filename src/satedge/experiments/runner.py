"""The sweep runner: runs every missing run of some figure specs on a local process pool or Ray.

One code path: :func:`run_sweep` expands the specs into runs, keys each by its identity
(:attr:`RunSpec.key`), skips the runs whose result is valid, and hands the rest to an executor
(a ``concurrent.futures.ProcessPoolExecutor`` with the spawn context, or Ray tasks), both of which
call :func:`execute_run` in a worker process and return its :class:`RunOutput` to this process,
which alone writes results (``results.write_run_result``) and the manifest. Workers write only
the training run directory (checkpoints), so an interrupted run resumes where it stopped, and a
Ray task retried on another node resumes from the checkpoint if ``out`` is on a shared file
system (it restarts otherwise).

``manifest.json``::

    {"format": 1, "satedge_version": ..., "preset": <last sweep's>,
     "figures": {"7": {"preset", "title", "origin", "spec", "budget", "x_name",
                       "runs": [{"key", "method", "x_name", "x", "seed"}, ...]}, ...},
     "runs": {<key>: {"status": "done" | "pending" | "failed", "method", "kind", "seed",
                      "wall_s", "error"}, ...},
     "last_sweep": {"preset", "backend", "started", "finished", "executed", "skipped",
                    "failed"}}

Figures of an earlier sweep into the same directory stay unless this sweep reruns them; one
sweep at a time may write a directory (``.sweep.lock``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satedge.experiments.executors import cpu_count, local_results, ray_results
from satedge.experiments.results import (
    MANIFEST_FILE,
    load_manifest,
    read_run_result,
    remove_run_result,
    write_json_atomic,
    write_run_result,
)
from satedge.experiments.spec import PRESETS, FigureSpec, RunSpec, load_spec
from satedge.sim.state import TaskStatus

__all__ = ["AUTO_SEED_BATCH_MAX", "BACKENDS", "RunOutput", "SweepError", "execute_run",
           "execute_runs", "run_sweep", "seed_batches"]

BACKENDS = ("local", "ray")
AUTO_SEED_BATCH_MAX = 4
"""Largest seed batch the runner forms by itself (``seed_batch=None``); see
:func:`seed_batches` and docs/performance.md for the measurements behind it."""
_EVAL_CURVE_KEYS = ("episode_return", "cost_per_slot", "latency_s", "energy_j_per_slot",
                    "deadline_miss_rate")
_STATUS_NAMES = {s.value: s.name.lower() for s in TaskStatus}


class SweepError(RuntimeError):
    """Some runs failed; ``manifest`` holds every run's status and error."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest = manifest


@dataclass
class RunOutput:
    """What a worker returns: final metrics, the training curve and the evaluation's tasks."""

    key: str
    metrics: dict[str, float | int]
    curves: list[dict[str, Any]]
    tasks: dict[str, np.ndarray]
    wall_s: float
    resumed: bool
    train_final: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)


# -- the work of one run (in a worker process) --------------------------------------------------
def execute_run(run: RunSpec, run_dir: str) -> RunOutput:
    """Train (learners; resuming from ``run_dir``) and evaluate one run on its held-out seeds."""
    import torch

    from satedge.agents.common.seeding import make_seeds
    from satedge.agents.heuristics import make_policy
    from satedge.experiments.evaluate import evaluate
    from satedge.experiments.train import train

    torch.set_num_threads(1)  # parallelism comes from processes
    t0 = time.perf_counter()
    scenario = run.resolve_scenario()
    if run.kind == "policy":
        result = evaluate(make_policy(run.method), scenario, run.eval_episodes,
                          make_seeds(run.seed).eval[0], record_tasks=True)
        curves = [{"step": 0, "episodes": 0,
                   **{f"eval/{k}": float(result[k]) for k in _EVAL_CURVE_KEYS}}]
        return _output(run, result, curves, time.perf_counter() - t0, False, None)
    resumed = (Path(run_dir) / "checkpoint.pt").exists()
    train_final = train(run.method, scenario, run.seed, run.episodes, run_dir,
                        overrides=run.overrides, progress=False)
    return _evaluate_learner(run, run_dir, train_final, resumed, t0)


def execute_runs(runs: tuple[RunSpec, ...], run_dirs: tuple[str, ...]) -> list[RunOutput]:
    """Several runs in one worker: one run as :func:`execute_run`; seeds of one learner
    configuration trained together, seed-batched (``train_seeds``), then each evaluated. A
    run's ``wall_s`` is its share of the batch's time."""
    if len(runs) == 1:
        return [execute_run(runs[0], run_dirs[0])]
    import torch

    from satedge.experiments.train import train_seeds

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    first = runs[0]
    resumed = [(Path(d) / "checkpoint.pt").exists() for d in run_dirs]
    finals = train_seeds(first.method, first.resolve_scenario(), [r.seed for r in runs],
                         first.episodes, list(run_dirs), overrides=first.overrides,
                         progress=False)
    outputs = [_evaluate_learner(run, d, final, res, time.perf_counter())
               for run, d, final, res in zip(runs, run_dirs, finals, resumed, strict=True)]
    share = (time.perf_counter() - t0) / len(runs)
    return [dataclasses.replace(o, wall_s=share) for o in outputs]


def _evaluate_learner(run: RunSpec, run_dir: str, train_final: dict[str, Any] | None,
                      resumed: bool, t0: float) -> RunOutput:
    """Evaluate a trained run on its held-out seeds (with the evaluation's task records)."""
    from satedge.agents.common.logger import read_metrics
    from satedge.agents.common.seeding import make_seeds
    from satedge.experiments.evaluate import AgentPolicy, evaluate
    from satedge.experiments.train import load_trained_agent

    scenario = run.resolve_scenario()
    agent, _ = load_trained_agent(run_dir)
    result = evaluate(AgentPolicy(agent), scenario, run.eval_episodes,
                      make_seeds(run.seed).eval[0], record_tasks=True)  # train()'s seed
    n_envs = int(_run_json(run_dir)["identity"]["loop"]["n_envs"])
    curves = [{**r, "episodes": int(r["step"]) * n_envs // scenario.episode_slots}
              for r in read_metrics(run_dir)]
    return _output(run, result, curves, time.perf_counter() - t0, resumed, train_final)


def _output(run: RunSpec, result: dict[str, Any], curves: list[dict[str, Any]], wall_s: float,
            resumed: bool, train_final: dict[str, Any] | None) -> RunOutput:
    tasks = result.pop("task_records")
    metrics = {k: int(v) if isinstance(v, (int, np.integer)) else float(v)
               for k, v in result.items()}
    return RunOutput(run.key, metrics, curves, tasks, wall_s, resumed, train_final, _versions())


def _run_json(run_dir: str) -> dict[str, Any]:
    return dict(json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8")))


def _versions() -> dict[str, str]:
    import platform

    import torch

    from satedge import __version__

    return {"satedge": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "pandas": pd.__version__}


# -- results of one run (in the driver) ---------------------------------------------------------
def _curves_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame.from_records(records)
    names = sorted(c for c in table.columns if c not in ("step", "episodes"))
    table = table[["step", "episodes", *names]].astype({"step": "int64", "episodes": "int64"})
    return table.astype(dict.fromkeys(names, "float64"))


def _tasks_table(tasks: dict[str, np.ndarray]) -> pd.DataFrame:
    status = np.asarray(tasks["status"])
    executed = ~np.isnan(tasks["latency_s"])
    return pd.DataFrame({
        "episode": tasks["episode"].astype("int32"), "slot": tasks["slot"].astype("int32"),
        "iotd": tasks["iotd"].astype("int32"), "latency_s": tasks["latency_s"],
        "deadline_s": tasks["deadline_s"], "server": tasks["server"].astype("int32"),
        "server_kind": np.where(executed, np.where(tasks["uav"], "uav", "satellite"), "none"),
        "status": [_STATUS_NAMES.get(int(s), str(s)) for s in status],
    })


def _task_stats(table: pd.DataFrame) -> dict[str, Any]:
    """Per-task summary for ``result.json``: counts, latency quantiles, per server kind."""
    done = table[table["latency_s"].notna()]
    lat = done["latency_s"].to_numpy()
    stats: dict[str, Any] = {"tasks": len(table), "executed": len(done),
                             "status_counts": table["status"].value_counts().to_dict()}
    if len(done):
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        stats.update(latency_p50_s=p50, latency_p90_s=p90, latency_p99_s=p99,
                     over_deadline=float(np.mean(lat > done["deadline_s"].to_numpy())))
    for kind in ("uav", "satellite"):
        part = done[done["server_kind"] == kind]["latency_s"]
        stats[kind] = {"tasks": len(part), "latency_mean_s": part.mean() if len(part) else None}
    return stats


def _store(out: Path, run: RunSpec, labels: list[dict[str, Any]], output: RunOutput) -> None:
    tasks = _tasks_table(output.tasks)
    result = {"key": output.key, "figure": run.figure, "method": run.method, "kind": run.kind,
              "x_name": run.x_name, "x": run.x, "seed": run.seed, "labels": labels,
              "identity": run.identity(), "metrics": output.metrics,
              "train_final": output.train_final, "task_stats": _task_stats(tasks),
              "wall_s": output.wall_s, "resumed": output.resumed, "versions": output.versions,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_run_result(out / "runs" / output.key, result, _curves_table(output.curves), tasks)


# -- the sweep ----------------------------------------------------------------------------------
def _as_specs(specs_or_figures: Iterable[FigureSpec | str | int | Path] | FigureSpec | str | int,
              figures: Iterable[str | int] | None) -> list[FigureSpec]:
    if isinstance(specs_or_figures, (FigureSpec, str, int, Path)):
        specs_or_figures = [specs_or_figures]
    specs = [s if isinstance(s, FigureSpec) else load_spec(s) for s in specs_or_figures]
    if figures is not None:
        wanted = {str(f) for f in figures}
        unknown = sorted(wanted - {s.figure for s in specs})
        if unknown:
            raise ValueError(f"figures={unknown} not among the specs; choose from "
                             f"{sorted(s.figure for s in specs)}")
        specs = [s for s in specs if s.figure in wanted]
    ids = [s.figure for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"figure ids must be unique, got {ids}")
    return specs


def _cost(run: RunSpec) -> float:
    """Rough relative cost, to start the longest runs first."""
    sc = run.resolve_scenario()
    return (run.episodes + run.eval_episodes) * sc.episode_slots * sc.n_iotds * (
        1.0 if run.kind == "learner" else 0.01)


def _label(run: RunSpec) -> dict[str, Any]:
    return {"figure": run.figure, "x_name": run.x_name,
            "x": None if np.isnan(run.x) else run.x}


def run_sweep(specs_or_figures: Iterable[FigureSpec | str | int | Path] | FigureSpec | str | int,
              preset: str, out: str | os.PathLike[str], backend: str = "local",
              address: str | None = None, workers: int | None = None,
              figures: Iterable[str | int] | None = None, progress: bool = True,
              max_retries: int = 3, seed_batch: int | None = None) -> dict[str, Any]:
    """Run what is missing of ``preset`` for the given figure specs (or figure ids) into ``out``.

    Args:
        specs_or_figures: :class:`FigureSpec` s, figure ids (``3`` ... ``8``) or spec paths.
        preset: ``quick``, ``standard`` or ``paper``.
        out: sweep directory (created); rerunning into it skips finished runs.
        backend: ``local`` (process pool) or ``ray``.
        address: Ray only: ``None`` starts a private local cluster on 127.0.0.1; ``"auto"`` or
            ``"HOST:PORT"`` joins a running one.
        workers: parallel runs (default: the CPUs available; Ray with an address: the cluster's).
        figures: keep only these figure ids of ``specs_or_figures``.
        progress: print one line per finished run.
        max_retries: Ray only: retries of a run whose worker or node died.
        seed_batch: most seeds of one learner configuration trained together in one process
            (seed-batched, for algorithms that support it); 1 never batches; ``None`` decides
            by :func:`seed_batches` (batches only when runs outnumber workers).

    Returns:
        The manifest (also in ``out/manifest.json``).

    Raises:
        SweepError: after every other run finished, if some runs failed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed; choose one of {list(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    if seed_batch is not None and seed_batch < 1:
        raise ValueError(f"seed_batch={seed_batch} must be at least 1")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    if address is not None and backend != "ray":
        raise ValueError("address is only used with backend='ray'")
    specs = _as_specs(specs_or_figures, figures)
    out = Path(out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    with _lock(out):
        manifest, todo, labels = _prepare(out, specs, preset, backend)
        cluster = backend == "ray" and address is not None and workers is None
        n_workers = min(workers or cpu_count(), max(len(todo), 1))
        if seed_batch is None and cluster:
            seed_batch = 1  # a cluster's CPUs run the seeds side by side
        groups = seed_batches(todo, n_workers, seed_batch)
        jobs = [(tuple(g), tuple(str(out / "runs" / r.key) for r in g)) for g in groups]
        n_workers = len(jobs) if cluster else min(n_workers, max(len(jobs), 1))
        if progress:
            batched = sum(len(g) for g in groups if len(g) > 1)
            print(f"sweep {preset} -> {out}: {len(manifest['last_sweep']['skipped'])} runs done "
                  f"before, {len(todo)} to run ({backend}, {n_workers} at a time"
                  + (f"; {batched} of them seed-batched, {sum(len(g) > 1 for g in groups)} "
                     "batches" if batched else "") + ")", flush=True)
        results = (local_results(execute_runs, jobs, n_workers) if backend == "local"
                   else ray_results(execute_runs, jobs, address, n_workers, max_retries))
        _collect(out, manifest, jobs, labels, results if jobs else iter(()), progress)
    failed = manifest["last_sweep"]["failed"]
    if failed:
        first = manifest["runs"][failed[0]]["error"]
        raise SweepError(f"{len(failed)} of {len(todo)} runs failed (first: {first}); see "
                         f"{out / MANIFEST_FILE}", manifest)
    return manifest


def seed_batches(runs: list[RunSpec], workers: int, seed_batch: int | None
                 ) -> list[list[RunSpec]]:
    """The runs as jobs: seeds of one learner configuration whose algorithm trains seed-batched
    share a job (at most ``seed_batch`` per job), other runs have one each; order kept (a
    batch takes its first run's place).

    ``seed_batch=None`` (auto) batches only what pays off on a shared CPU pool: one process
    with S seeds is cheaper per seed than S processes, but runs on one core, so batches are
    made only as large as needed to keep about ``workers`` jobs busy: ``ceil(runs / workers)``
    seeds, at most :data:`AUTO_SEED_BATCH_MAX` (docs/performance.md).
    """
    from satedge.experiments.train import supports_seed_batching

    if seed_batch is None:
        size = min(AUTO_SEED_BATCH_MAX, max(1, math.ceil(len(runs) / max(workers, 1))))
    else:
        size = seed_batch
    jobs: list[list[RunSpec]] = []
    open_batch: dict[str, list[RunSpec]] = {}
    for run in runs:
        if size > 1 and run.kind == "learner" and supports_seed_batching(run.method):
            ident = {k: v for k, v in run.identity().items() if k != "seed"}
            config = json.dumps(ident, sort_keys=True, default=str)
            batch = open_batch.get(config)
            if batch is not None and len(batch) < size:
                batch.append(run)
                continue
            open_batch[config] = [run]
            jobs.append(open_batch[config])
        else:
            jobs.append([run])
    return jobs


def _prepare(out: Path, specs: list[FigureSpec], preset: str, backend: str
             ) -> tuple[dict[str, Any], list[RunSpec], dict[str, list[dict[str, Any]]]]:
    """The updated manifest, the runs to do (longest first) and every key's labels."""
    runs_by_fig = {s.figure: s.expand(preset) for s in specs}
    unique: dict[str, RunSpec] = {}
    labels: dict[str, list[dict[str, Any]]] = {}
    for runs in runs_by_fig.values():
        for run in runs:
            unique.setdefault(run.key, run)
            labels.setdefault(run.key, []).append(_label(run))
    manifest = _start_manifest(out, specs, preset, runs_by_fig, backend)
    status, todo = manifest["runs"], []
    for key, run in unique.items():
        entry = {"status": "done", "method": run.method, "kind": run.kind, "seed": run.seed}
        if read_run_result(out / "runs" / key, key) is None:
            remove_run_result(out / "runs" / key)  # a partial or stale result is never read
            entry["status"] = "pending"
            todo.append(run)
        status[key] = {**status.get(key, {}), **entry}
    manifest["last_sweep"]["skipped"] = sorted(set(unique) - {r.key for r in todo})
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return manifest, sorted(todo, key=_cost, reverse=True), labels


def _collect(out: Path, manifest: dict[str, Any],
             jobs: list[tuple[tuple[RunSpec, ...], tuple[str, ...]]],
             labels: dict[str, list[dict[str, Any]]],
             results: Iterator[tuple[int, Any]], progress: bool) -> None:
    """Store every finished run's results and keep the manifest current."""
    sweep = manifest["last_sweep"]
    total, count = sum(len(job[0]) for job in jobs), 0
    for i, outputs in results:
        for j, run in enumerate(jobs[i][0]):
            count += 1
            entry = manifest["runs"][run.key]
            if isinstance(outputs, BaseException):
                entry.update(status="failed", error=f"{type(outputs).__name__}: {outputs}")
                sweep["failed"].append(run.key)
            else:
                _store(out, run, labels[run.key], outputs[j])
                entry.update(status="done", wall_s=outputs[j].wall_s, error=None)
                sweep["executed"].append(run.key)
            write_json_atomic(out / MANIFEST_FILE, manifest)
            if progress:
                print(_progress_line(count, total, run, entry), flush=True)
    sweep["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(out / MANIFEST_FILE, manifest)


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One sweep at a time per directory (``out/.sweep.lock`` holds the writer's pid; a lock
    left by a process that no longer exists is taken over)."""
    path = out / ".sweep.lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # stale: its writer is gone
                continue
            except PermissionError:
                pass  # the process exists (someone else's)
            raise RuntimeError(f"another sweep (pid {pid}) is writing {out}; wait for it or "
                               f"remove {path} if it is gone") from None
    else:
        raise RuntimeError(f"cannot take the sweep lock {path}")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def _progress_line(count: int, total: int, run: RunSpec, entry: dict[str, Any]) -> str:
    x = "" if np.isnan(run.x) else f" {run.x_name}={run.x:g}"
    tail = (f"{entry['wall_s']:.1f} s" if entry["status"] == "done"
            else f"FAILED: {entry['error']}")
    return (f"[{count:>{len(str(total))}}/{total}] fig {run.figure} {run.method}{x} "
            f"seed {run.seed} ({run.key}): {tail}")


def _start_manifest(out: Path, specs: list[FigureSpec], preset: str,
                    runs_by_fig: dict[str, list[RunSpec]], backend: str) -> dict[str, Any]:
    """The manifest of ``out`` (or a new one) with these figures replaced; run keys no figure
    refers to any more are dropped."""
    from satedge import __version__

    try:
        manifest = load_manifest(out)
    except (FileNotFoundError, ValueError):
        manifest = {"format": 1, "figures": {}, "runs": {}}
    manifest.update(satedge_version=__version__, preset=preset)
    for spec in specs:
        manifest["figures"][spec.figure] = {
            "preset": preset, "title": spec.title, "origin": spec.origin, "spec": spec.raw,
            "budget": spec.budget(preset), "x_name": spec.x_name,
            "runs": [{"key": r.key, "method": r.method, "x_name": r.x_name,
                      "x": _label(r)["x"], "seed": r.seed} for r in runs_by_fig[spec.figure]],
        }
    used = {e["key"] for fig in manifest["figures"].values() for e in fig["runs"]}
    manifest["runs"] = {k: v for k, v in manifest["runs"].items() if k in used}
    manifest["last_sweep"] = {"preset": preset, "backend": backend,
                              "figures": [s.figure for s in specs],
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None,
                              "executed": [], "skipped": [], "failed": [],
                              "argv": list(sys.argv)}
    return manifest
