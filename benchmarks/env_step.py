"""Environment step speed: single-env step time and batched throughput in tasks per second.

Run: ``python benchmarks/env_step.py [--preset default] [--rounds 15]``. Prints the median step time
of the single Gymnasium environment and, for the native vector environment with B = 1, 64 and
1024, the throughput in tasks per second with its ratio to the single environment.

Method. Actions are random over the action space (sampled before timing), so the time is the
environment's own. The configurations are timed in interleaved rounds (a block of single-env steps,
then a block of each B, repeated), so that load from other processes falls on all of them alike.
Every step is timed on its own; a configuration's step time is the median over its steps, and its
throughput is the mean number of tasks per step divided by that median (robust to interruptions
by other processes; the mean-time throughput is printed alongside). Autoreset steps of the vector
environment are included like any other step.

glibc malloc. At large B the simulator's temporaries are hundreds of kB; glibc may return freed
memory to the OS and fault it back in on the next allocation. The variables
``MALLOC_TRIM_THRESHOLD_=100000000 MALLOC_MMAP_THRESHOLD_=4000000`` (set in the environment before
Python starts) keep it. Unless ``--no-malloc-rerun`` is given, the script runs itself a second time
with them and prints both sets of figures, labelled.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

from satedge.envs import MllmOffloadEnv, MllmOffloadVectorEnv

BATCHES = (1, 64, 1024)
MALLOC_TUNING = {"MALLOC_TRIM_THRESHOLD_": "100000000", "MALLOC_MMAP_THRESHOLD_": "4000000"}
STEPS_PER_ROUND = {0: 40, 1: 40, 64: 8, 1024: 2}  # 0 = the single Gymnasium environment


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Runner:
    """One environment (B = 0: the single env) with pre-sampled actions and its timings."""

    def __init__(self, preset: str, b: int) -> None:
        self.b = b
        self.env: Any = (MllmOffloadEnv(preset=preset) if b == 0
                         else MllmOffloadVectorEnv(b, preset=preset))
        self.env.reset(seed=0)
        self.env.action_space.seed(0)
        self.actions = [self.env.action_space.sample() for _ in range(20)]
        self.times: list[float] = []
        self.tasks: list[int] = []

    def run(self, steps: int) -> None:
        for _ in range(steps):
            action = self.actions[len(self.times) % len(self.actions)]
            t0 = time.perf_counter()
            _, _, _, truncated, info = self.env.step(action)
            self.times.append(time.perf_counter() - t0)
            self.tasks.append(int(np.sum(info["n_active"])))
            if self.b == 0 and truncated:
                self.env.reset()  # not timed; the vector env resets inside its step

    def summary(self) -> tuple[float, float, float]:
        """(median step s, tasks/s from the median, tasks/s from the total time)."""
        median = float(np.median(self.times))
        mean_tasks = float(np.mean(self.tasks))
        return median, mean_tasks / median, float(np.sum(self.tasks) / np.sum(self.times))


def measure(preset: str, rounds: int) -> None:
    runners = {b: Runner(preset, b) for b in (0, *BATCHES)}
    for runner in runners.values():
        runner.run(2)  # warm-up, discarded
        runner.times.clear()
        runner.tasks.clear()
    for _ in range(rounds):
        for b, runner in runners.items():
            runner.run(STEPS_PER_ROUND[b])
    median, single_tps, single_mean_tps = runners[0].summary()
    print(f"single env: median step {median * 1e3:.3f} ms, {single_tps:,.0f} tasks/s "
          f"({single_mean_tps:,.0f} from total time), {len(runners[0].times)} steps")
    for b in BATCHES:
        median, tps, mean_tps = runners[b].summary()
        print(f"batched B={b:>5}: {tps:>12,.0f} tasks/s ({tps / single_tps:6.1f} x single env); "
              f"median step {median * 1e3:8.3f} ms, {mean_tps:,.0f} tasks/s from total time")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-malloc-rerun", action="store_true",
                        help="measure once, with the environment as it is")
    args = parser.parse_args()
    tuned = all(os.environ.get(k) == v for k, v in MALLOC_TUNING.items())
    if not tuned:
        print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; python "
              f"{platform.python_version()}, numpy {np.__version__}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    label = "with MALLOC_TRIM_THRESHOLD_/MALLOC_MMAP_THRESHOLD_ set" if tuned \
        else "default glibc malloc settings"
    print(f"--- {label} ({args.rounds} interleaved rounds, preset {args.preset})")
    measure(args.preset, args.rounds)
    if not tuned and not args.no_malloc_rerun:
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__, "--preset", args.preset, "--rounds",
                        str(args.rounds)], env={**os.environ, **MALLOC_TUNING}, check=True)


if __name__ == "__main__":
    main()
