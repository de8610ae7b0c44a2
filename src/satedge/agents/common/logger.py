"""Training metrics: one JSON line per ``log`` call in ``metrics.jsonl`` plus TensorBoard scalars.

Metric names are fixed (:data:`METRIC_NAMES`) so that every algorithm's curves line up in the
aggregation and the plots; a misspelt name is an error, not a new curve. Each line of
``metrics.jsonl`` is ``{"step": int, name: value, ...}``; a non-finite value is written as
``null`` (strict JSON). On resume, :meth:`MetricLogger.truncate_after` drops the records written
after the restored checkpoint, so the file has neither gaps nor duplicates, and TensorBoard
events after that step are purged (``SummaryWriter(purge_step=...)``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["METRICS_FILE", "METRIC_NAMES", "MetricLogger", "read_metrics"]

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"

METRIC_NAMES: dict[str, str] = {
    # training episodes (the behaviour policy); per-slot quantities averaged over the episode
    "train/episode_return": "undiscounted return of finished training episodes (mean)",
    "train/cost_per_slot": "weighted system cost per slot, zeta C (paper Eq. 31), training",
    "train/latency_s": "mean task latency of executed tasks (s), training",
    "train/energy_j_per_slot": "total energy per slot (J), training",
    # greedy-policy evaluation on the held-out evaluation seeds
    "eval/episode_return": "undiscounted return, deterministic policy, evaluation seeds (mean)",
    "eval/cost_per_slot": "weighted system cost per slot, evaluation",
    "eval/latency_s": "mean task latency of executed tasks (s), evaluation",
    "eval/energy_j_per_slot": "total energy per slot (J), evaluation",
    "eval/deadline_miss_rate": "tasks over their deadline / tasks, evaluation",
    "train/q_mean": "mean critic value Q(s, a) of the replayed batch",
    # SAC-style learners
    "loss/critic": "critic (Q or V) regression loss",
    "loss/actor_discrete": "policy loss of the discrete (server choice) agent",
    "loss/actor_continuous": "policy loss of the continuous (power, UAV) agent",
    "loss/alpha_discrete": "temperature loss of the discrete agent",
    "loss/alpha_continuous": "temperature loss of the continuous agent",
    "alpha/discrete": "entropy temperature of the discrete agent",
    "alpha/continuous": "entropy temperature of the continuous agent",
    "loss/actor_moves": "AD-SAC move_values='simulated' ('centroid'): NLL of the lookahead's "
                        "best UAV moves (greedy's moves; part of loss/actor_continuous)",
    "train/move_target_gap": "AD-SAC move_values='simulated' ('centroid'): distance from the "
                             "policy's mode move to the lookahead's best (greedy's), per UAV "
                             "([-1, 1] units)",
    "loss/move_value": "AD-SAC move_value_net: regression loss of the learned candidate-move "
                       "values (part of loss/critic)",
    "train/move_value_rmse": "AD-SAC move_value_net: RMS error of the learned candidate-move "
                             "values against the stored rewards, per UAV and candidate",
    "train/move_value_regret": "AD-SAC move_value_net: stored best candidate's reward minus that "
                               "of the learned values' best, per UAV whose position mattered",
    "loss/actor_powers": "AD-SAC power_values='simulated': NLL of the lookahead's best transmit "
                         "powers (part of loss/actor_continuous)",
    "train/power_target_gap": "AD-SAC power_values='simulated': distance from the policy's mode "
                              "power to the lookahead's best, per IoTD ([-1, 1] units)",
    "loss/actor_servers": "AD-SAC server_search > 0: NLL of the local search's server "
                          "assignment (part of loss/actor_discrete)",
    "train/server_target_moved": "AD-SAC server_search > 0: share of the IoTDs with a task whose "
                                 "searched server differs from the stored one",
    "loss/server_context": "AD-SAC decision_beam > 0: negative pseudo-log-likelihood of the "
                           "stored server targets under the context network (each IoTD's "
                           "target given the others')",
    # MPO fusion step
    "mpo/eta": "E-step temperature eta",
    "mpo/kl_discrete": "achieved M-step KL(pi_old_d || pi_d), nats",
    "mpo/kl_continuous": "achieved M-step KL(pi_old_c || pi_c), nats",
    "mpo/kl_e_step": "achieved E-step KL(q || pi_old), nats",
    "mpo/lagrange_discrete": "M-step Lagrange multiplier of the discrete KL bound",
    "mpo/lagrange_continuous": "M-step Lagrange multiplier of the continuous KL bound",
    # PPO family
    "ppo/clip_fraction": "fraction of samples whose ratio was clipped",
    "ppo/clip_fraction_continuous": "Hybrid-PPO: fraction whose continuous ratio was clipped "
                                    "(ppo/clip_fraction is then the discrete ratio's)",
    "ppo/approx_kl": "approximate KL(old || new), (r - 1) - log r estimator",
    "ppo/entropy": "policy entropy (nats)",
    "loss/value": "value-function loss",
    "loss/policy": "clipped surrogate (or deterministic actor) policy loss",
    # value-based baselines (D3QN, DDPG)
    "explore/epsilon": "epsilon-greedy exploration probability per action branch (D3QN)",
    "train/grad_norm": "L2 norm of the gradient before clipping (D3QN: Q network; DDPG: actor)",
    # throughput
    "perf/steps_per_s": "environment steps per wall-clock second",
}
"""Every name :meth:`MetricLogger.log` accepts, with its meaning. Add a name here, with a
meaning, before logging it."""


def _parse(path: Path) -> list[dict[str, Any]]:
    """Records of a metrics file; an incomplete last line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    # Every record ends with "\n"; text after the last newline is a write cut short by a crash.
    complete = path.read_text(encoding="utf-8").split("\n")[:-1]
    records = []
    for i, line in enumerate(complete):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{i + 1} is not valid JSON: {err}") from err
    return records


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of ``run_dir/metrics.jsonl`` in order (``[]`` if there is none)."""
    return _parse(Path(run_dir) / METRICS_FILE)


class MetricLogger:
    """Appends metrics of a run to ``run_dir/metrics.jsonl`` and to TensorBoard.

    Args:
        run_dir: the run's directory (created). An existing ``metrics.jsonl`` is appended to.
        tensorboard: also write TensorBoard scalars under ``run_dir/tensorboard``.

    Steps must not decrease between calls (several calls at one step are fine).
    """

    def __init__(self, run_dir: str | os.PathLike[str], tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self.tensorboard = tensorboard
        records = _parse(self.path)
        self.last_step = int(records[-1]["step"]) if records else -1
        if records and not self.path.read_text(encoding="utf-8").endswith("\n"):
            self._rewrite(records)  # drop a partial last line before appending
        self._file = self.path.open("a", encoding="utf-8")
        self._writer: Any = None
        if tensorboard:
            self._open_writer(purge_step=None)

    def _open_writer(self, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard is slow to import

        self._writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR),
                                     purge_step=purge_step, flush_secs=30)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append ``{"step": step, **metrics}`` (flushed) and the TensorBoard scalars.

        Raises:
            ValueError: an unknown metric name, or ``step`` below the last logged step.
        """
        unknown = sorted(set(metrics) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(f"unknown metric name(s) {unknown}; allowed names are listed in "
                             "satedge.agents.common.logger.METRIC_NAMES")
        step = int(step)
        if step < self.last_step:
            raise ValueError(f"step {step} is below the last logged step {self.last_step}")
        values = {name: float(v) for name, v in metrics.items()}
        record = {"step": step, **{k: (v if math.isfinite(v) else None)
                                   for k, v in values.items()}}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        # durable before the loop's next checkpoint: after a machine crash the metrics are
        # never behind the checkpoint (which would leave a gap on resume)
        os.fsync(self._file.fileno())
        self.last_step = step
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, global_step=step)

    def truncate_after(self, step: int) -> None:
        """Keep only the records with ``record["step"] <= step`` (atomic rewrite) and purge later
        TensorBoard events; call it when resuming from a checkpoint taken at ``step``."""
        self._file.close()
        kept = [r for r in _parse(self.path) if int(r["step"]) <= step]
        self._rewrite(kept)
        self._file = self.path.open("a", encoding="utf-8")
        self.last_step = int(kept[-1]["step"]) if kept else -1
        if self._writer is not None:
            self._writer.close()
            self._open_writer(purge_step=step + 1)

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.run_dir, prefix=f".{METRICS_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, allow_nan=False) + "\n" for r in records)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Flush and close the file and the TensorBoard writer (idempotent)."""
        if not self._file.closed:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
