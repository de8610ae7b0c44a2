"""Results of a sweep on disk: atomic writes, validity checks, and the tables the plots read.

Layout of a sweep directory ``DIR``::

    DIR/manifest.json              every figure's spec, preset and runs; every run key's status
    DIR/runs/<key>/result.json     final metrics, labels, task statistics, wall time, versions,
                                   and the SHA-256 of the two tables below (written last)
    DIR/runs/<key>/metrics.parquet the run's training curve: step, episodes, metric columns
                                   (logger.METRIC_NAMES); a built-in policy has one row (step 0)
    DIR/runs/<key>/tasks.parquet   every active task of the final evaluation: latency, deadline,
                                   server kind, status
    DIR/runs/<key>/...             the training run directory (run.json, metrics.jsonl,
                                   checkpoint.pt, summary.json) that resumes an interrupted run

Every file is written to a temporary name and moved into place with ``os.replace``, and
``result.json`` is written after the tables it vouches for, so a run is finished exactly when
:func:`read_run_result` accepts its ``result.json``; anything else (missing, truncated, another
key, a table whose hash differs) makes the runner redo the run.

The loaders (:func:`load_finals`, :func:`load_curves`, :func:`load_tasks`,
:func:`load_manifest`) are the contract the plots are drawn from. Figures without a swept value
have ``x_name == "none"`` and ``x`` = nan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satedge.experiments.evaluate import METRICS

__all__ = ["CURVES_FILE", "FINAL_METRICS", "MANIFEST_FILE", "RESULT_FILE", "TASKS_FILE",
           "load_curves", "load_finals", "load_manifest", "load_tasks", "read_run_result",
           "remove_run_result", "write_json_atomic", "write_run_result"]

RESULT_FILE = "result.json"
CURVES_FILE = "metrics.parquet"
TASKS_FILE = "tasks.parquet"
MANIFEST_FILE = "manifest.json"
FORMAT = 1
FINAL_METRICS = (*METRICS, "tasks")
"""Columns of :func:`load_finals` besides the labels: the metrics of ``evaluate`` and the number
of tasks they were measured on."""
_LABELS = ["figure", "method", "x_name", "x", "seed", "key"]


# -- writing ------------------------------------------------------------------------------------
def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, fsync, then replace."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as strict JSON (nan as null) atomically."""
    text = json.dumps(_strict(data), indent=1, sort_keys=True, allow_nan=False)
    _atomic(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _strict(value: Any) -> Any:
    """JSON-able copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_run_result(run_dir: str | os.PathLike[str], result: dict[str, Any],
                     curves: pd.DataFrame, tasks: pd.DataFrame) -> dict[str, Any]:
    """Write the two tables, then ``result.json`` with their hashes; returns what was written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in ((CURVES_FILE, curves), (TASKS_FILE, tasks)):
        _atomic(run_dir / name, functools.partial(table.to_parquet, index=False))
        files[name] = _sha256(run_dir / name)
    record = {**result, "format": FORMAT, "files": files}
    write_json_atomic(run_dir / RESULT_FILE, record)
    return record


def remove_run_result(run_dir: str | os.PathLike[str]) -> None:
    """Delete a run's result files (its training directory and checkpoint stay)."""
    for name in (RESULT_FILE, CURVES_FILE, TASKS_FILE):
        (Path(run_dir) / name).unlink(missing_ok=True)


def read_run_result(run_dir: str | os.PathLike[str], key: str) -> dict[str, Any] | None:
    """The run's ``result.json`` if it is complete and valid for ``key``, else None.

    Valid: strict JSON object of this format and key, and each listed table present with the
    recorded SHA-256 (a table rewritten or cut short after the result was written fails).
    """
    run_dir = Path(run_dir)
    try:
        record = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
        return None
    files = record.get("files")
    if not isinstance(files, dict) or set(files) != {CURVES_FILE, TASKS_FILE}:
        return None
    for name, digest in files.items():
        path = run_dir / name
        if not path.is_file() or _sha256(path) != digest:
            return None
    return record


# -- loading ------------------------------------------------------------------------------------
def load_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The sweep's ``manifest.json`` (see :mod:`satedge.experiments.runner`)."""
    path = Path(sweep_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {sweep_dir} is not a sweep directory "
                                "(run a sweep into it first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a satedge sweep manifest of format {FORMAT}")
    return manifest


def _finished_entries(sweep_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(label entry, result) for every figure entry of the manifest whose run is finished."""
    manifest = load_manifest(sweep_dir)
    cache: dict[str, dict[str, Any] | None] = {}
    out = []
    for figure, fig in manifest["figures"].items():
        for entry in fig["runs"]:
            key = entry["key"]
            if key not in cache:
                cache[key] = read_run_result(sweep_dir / "runs" / key, key)
            result = cache[key]
            if result is not None:
                out.append(({**entry, "figure": figure}, result))
    return out


def _labels(entry: dict[str, Any]) -> dict[str, Any]:
    x = entry.get("x")
    return {"figure": str(entry["figure"]), "method": entry["method"],
            "x_name": entry["x_name"], "x": math.nan if x is None else float(x),
            "seed": int(entry["seed"]), "key": entry["key"]}


def load_finals(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per finished (figure, method, x, seed): the labels ``figure, method, x_name, x,
    seed, key`` and one column per final metric (:data:`FINAL_METRICS`, e.g. ``latency_s``)."""
    rows = [{**_labels(entry), **{m: _num(result["metrics"].get(m)) for m in FINAL_METRICS}}
            for entry, result in _finished_entries(Path(sweep_dir))]
    return pd.DataFrame(rows, columns=[*_LABELS, *FINAL_METRICS])


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _labelled_table(sweep_dir: Path, name: str,
                    columns: list[str]) -> pd.DataFrame:
    frames = []
    for entry, _ in _finished_entries(sweep_dir):
        table = pd.read_parquet(sweep_dir / "runs" / entry["key"] / name)
        labels = _labels(entry)
        frames.append(table.assign(**labels))
    if not frames:
        return pd.DataFrame(columns=[*_LABELS, *columns])
    table = pd.concat(frames, ignore_index=True)
    rest = [c for c in table.columns if c not in _LABELS]
    return table[[*_LABELS, *rest]]


def load_curves(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Training curves: ``figure, method, x_name, x, seed, key, step, episodes`` and one column
    per logged metric (``logger.METRIC_NAMES``, e.g. ``eval/episode_return``; nan where a record
    lacks it, e.g. between evaluations). ``step`` counts vector-env steps, ``episodes`` training
    episodes finished; a built-in policy contributes one row at step 0."""
    return _labelled_table(Path(sweep_dir), CURVES_FILE, ["step", "episodes"])


def load_tasks(sweep_dir: str | os.PathLike[str], executed_only: bool = True) -> pd.DataFrame:
    """Tasks of the final evaluations: ``figure, method, x_name, x, seed, key, episode, slot,
    iotd, latency_s, deadline_s, server, server_kind`` (``uav`` / ``satellite``), ``status``
    (``ok``, ``deadline``, ``visibility``; with ``executed_only=False`` also ``infeasible`` and
    ``dropped``, whose latency is nan)."""
    table = _labelled_table(Path(sweep_dir), TASKS_FILE,
                            ["episode", "slot", "iotd", "latency_s", "deadline_s", "server",
                             "server_kind", "status"])
    if executed_only and len(table):
        table = table[table["latency_s"].notna()].reset_index(drop=True)
    return table
