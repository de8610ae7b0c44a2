"""Metric logging: fixed names, JSON lines, TensorBoard files, truncation on resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from satedge.agents.common.logger import METRIC_NAMES, MetricLogger, read_metrics

REQUIRED = ["train/episode_return", "train/cost_per_slot", "train/latency_s",
            "train/energy_j_per_slot", "eval/episode_return", "eval/cost_per_slot",
            "eval/latency_s", "eval/energy_j_per_slot", "loss/critic", "loss/actor_discrete",
            "loss/actor_continuous", "loss/alpha_discrete", "loss/alpha_continuous",
            "alpha/discrete", "alpha/continuous", "mpo/eta", "mpo/kl_discrete",
            "mpo/kl_continuous", "mpo/kl_e_step", "mpo/lagrange_discrete",
            "mpo/lagrange_continuous", "ppo/clip_fraction", "ppo/approx_kl", "ppo/entropy",
            "loss/value", "loss/policy", "perf/steps_per_s"]


def test_metric_names_are_the_documented_set() -> None:
    assert set(REQUIRED) <= set(METRIC_NAMES)
    assert all(isinstance(v, str) and v for v in METRIC_NAMES.values())


def test_log_writes_json_lines_and_tensorboard(tmp_path: Path) -> None:
    with MetricLogger(tmp_path / "run") as log:
        log.log(0, {"loss/critic": 1.5, "alpha/discrete": 0.2})
        log.log(10, {"eval/episode_return": -3.25})
        log.log(10, {"loss/critic": float("nan")})  # same step again is fine
        # flushed at every call: readable while the logger is open
        assert [r["step"] for r in read_metrics(tmp_path / "run")] == [0, 10, 10]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 0, "loss/critic": 1.5, "alpha/discrete": 0.2}
    assert json.loads(lines[2]) == {"step": 10, "loss/critic": None}  # strict JSON, no NaN
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_tensorboard_scalars_are_readable(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricLogger(tmp_path) as log:
        for step in range(3):
            log.log(step, {"train/episode_return": float(step) * 2})
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    scalars = acc.Scalars("train/episode_return")
    assert [(e.step, e.value) for e in scalars] == [(0, 0.0), (1, 2.0), (2, 4.0)]


def test_unknown_names_and_decreasing_steps_are_refused(tmp_path: Path) -> None:
    with MetricLogger(tmp_path, tensorboard=False) as log:
        with pytest.raises(ValueError, match="loss/critc"):
            log.log(0, {"loss/critc": 1.0})
        log.log(5, {"loss/critic": 1.0})
        with pytest.raises(ValueError, match="below the last"):
            log.log(4, {"loss/critic": 1.0})
    assert read_metrics(tmp_path) == [{"step": 5, "loss/critic": 1.0}]
    assert not (tmp_path / "tensorboard").exists()


def test_truncate_after_for_resume(tmp_path: Path) -> None:
    log = MetricLogger(tmp_path, tensorboard=False)
    for step in (0, 10, 20, 30):
        log.log(step, {"perf/steps_per_s": step / 10})
    log.close()
    # a crash mid-write leaves a partial line; a resumed logger drops it
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "perf/st')
    resumed = MetricLogger(tmp_path, tensorboard=False)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 10, 20, 30]
    resumed.truncate_after(15)  # checkpoint was taken at step 15
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 10]
    resumed.log(16, {"perf/steps_per_s": 1.6})
    resumed.close()
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [0, 10, 16]
    assert math.isclose(records[-1]["perf/steps_per_s"], 1.6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no temp files


def test_truncate_purges_tensorboard_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricLogger(tmp_path)
    for step in range(5):
        log.log(step, {"loss/value": float(step)})
    log.truncate_after(2)
    log.log(3, {"loss/value": 30.0})
    log.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"), purge_orphaned_data=True)
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss/value")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]


def test_read_metrics_of_missing_run_is_empty_and_bad_json_is_an_error(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "none") == []
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(ValueError, match=":2 is not valid JSON"):
        read_metrics(tmp_path)
