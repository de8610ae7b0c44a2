"""Seed-batched AD-SAC training: throughput per seed for 1, 4 and 16 seeds in one process.

Usage::

    python benchmarks/seed_batching.py                      # 1, 4 and 16 seeds (~5 min)
    python benchmarks/seed_batching.py --seeds 1 2 4 --rounds 3 --window-s 5

It times the off-policy loop's body as ``train_seeds`` runs it (``OffPolicyStepper`` of
``train_throughput.py``: the agent acts for all seeds' environments, ``collect`` steps them and
stores each seed's transitions and unavailable-action samples, then one gradient update per
environment transition, each seed's minibatch drawn from its own buffer), with AD-SAC's default
settings: 4 environments per seed, batch 128, MPO with 8 samples, shared per-IoTD networks, the
default scenario. Checkpoints, logging and evaluation are left out (they are per seed, so batching
does not change them). After a warm-up past ``learning_starts``, the seed counts are timed in
alternating windows of about ``--window-s`` seconds (``--rounds`` rounds, so that load from other
processes falls on all of them alike); the figure is environment transitions per second per seed,
median over rounds, with the speed-up over the first seed count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import torch

from env_step import cpu_model  # benchmarks/ is on sys.path when a script in it runs
from satedge.envs.encoding import PER_IOTD
from satedge.sim.scenario import Scenario
from train_throughput import OffPolicyStepper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=8.0)
    parser.add_argument("--n-envs", type=int, default=4, help="environments per seed")
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="AD-SAC's hidden sizes (default: its own, 256 256)")
    parser.add_argument("--iotd-hidden", type=int, nargs="+", default=None,
                        help="hidden sizes of the shared per-IoTD networks (default 128 128)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
          "1 thread, CPU; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"AD-SAC defaults, default scenario, {args.n_envs} environments per seed, one update "
          "per transition (batch 128 per seed)")
    sc = Scenario()
    overrides: dict[str, Any] = {"iotd_block": PER_IOTD + sc.n_uavs}  # as `satedge train`
    if args.hidden:
        overrides["hidden"] = tuple(args.hidden)
    if args.iotd_hidden:
        overrides["iotd_hidden"] = tuple(args.iotd_hidden)
    print(f"agent settings: {overrides}")
    steppers = {}
    for s in args.seeds:
        t0 = time.perf_counter()
        steppers[s] = OffPolicyStepper(sc, 0, 1_000, n_seeds=s, n_envs=args.n_envs,
                                       overrides=overrides)
        steppers[s].run(1)  # first update: allocations
        print(f"  {s} seeds: warm-up {time.perf_counter() - t0:.1f} s", flush=True)
    steps = {}
    for s, st in steppers.items():  # calibrate each window to about window_s seconds
        t0 = time.perf_counter()
        st.run(1)
        steps[s] = max(1, round(args.window_s / (time.perf_counter() - t0)))
    speeds: dict[int, list[float]] = {s: [] for s in args.seeds}
    for r in range(args.rounds):
        for s in (args.seeds if r % 2 == 0 else args.seeds[::-1]):
            t0 = time.perf_counter()
            transitions = steppers[s].run(steps[s])
            speeds[s].append(transitions / (time.perf_counter() - t0))
        print(f"  round {r + 1}: " + ", ".join(f"{s} seeds {speeds[s][-1]:.1f}"
                                               for s in args.seeds)
              + " transitions/s per seed", flush=True)
    s0 = args.seeds[0]
    base = statistics.median(speeds[s0]) * s0
    print(f"{'seeds':>5}  {'per seed /s':>11}  {'all seeds /s':>12}  "
          f"speed-up (all seeds' transitions per second, over {s0} seed(s))")
    for s in args.seeds:
        med = statistics.median(speeds[s])
        print(f"{s:5d}  {med:11.2f}  {med * s:12.2f}  {med * s / base:6.2f}x "
              f"(per seed, rounds: {' '.join(f'{v:.2f}' for v in speeds[s])})")


if __name__ == "__main__":
    main()
