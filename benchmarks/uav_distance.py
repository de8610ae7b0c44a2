"""How close a sweep's trained policies keep the UAVs to the IoTDs, beside greedy's.

Usage::

    python benchmarks/uav_distance.py runs/fig5            # every learner run of the sweep
    python benchmarks/uav_distance.py runs/fig5 --method adsac

For every training run under ``SWEEP/runs/`` (optionally one method) it plays the run's own
evaluation (its held-out evaluation seed and episode count, as ``summary.json`` was made) with the
trained policy and with greedy on the same seeds, and prints per run the mean horizontal distance
from each IoTD to its nearest UAV over the first 10 and the last 50 slots of an episode, and the
share of executed tasks served by UAVs. A learner whose UAVs drift away from the IoTDs cannot use
them (docs/reproduction.md, Fig. 5).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from satedge.agents.heuristics import Action, HeuristicPolicy, make_policy
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState


class _Recorder:
    """``policy`` with each state's mean IoTD-to-nearest-UAV distance recorded."""

    def __init__(self, policy: HeuristicPolicy) -> None:
        self.policy = policy
        self.distance_m: list[float] = []

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        self.distance_m.append(float(state.uav_horizontal_m.min(-1).mean()))
        return self.policy.act(network, state, rng)


def nearest_uav_distance(policy: HeuristicPolicy, scenario: Scenario, episodes: int,
                         seed: int) -> tuple[float, float, float]:
    """(mean nearest-UAV distance in m over the first 10 slots, over the last 50, UAV share)
    in :func:`satedge.experiments.evaluate.evaluate` of ``policy`` on ``seed``."""
    recorder = _Recorder(policy)
    result = evaluate(recorder, scenario, episodes, seed)
    dist = recorder.distance_m
    return float(np.mean(dist[:10])), float(np.mean(dist[-50:])), float(result["uav_share"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep directory (satedge reproduce --out)")
    parser.add_argument("--method", default=None, help="only this method's runs")
    args = parser.parse_args(argv)
    print("method x seed | nearest UAV (m): first 10 slots, last 50 | UAV share | "
          "greedy: first 10, last 50 | UAV share")
    rows = []
    for run in sorted((args.sweep / "runs").iterdir()):
        result_file, run_file = run / "result.json", run / "run.json"
        if not (result_file.is_file() and run_file.is_file()):
            continue
        result = json.loads(result_file.read_text())
        if args.method is not None and result["method"] != args.method:
            continue
        agent, scenario = load_trained_agent(run)
        meta = json.loads(run_file.read_text())
        seed, episodes = meta["seeds"]["eval"][0], int(result["metrics"]["episodes"])
        own = nearest_uav_distance(AgentPolicy(agent), scenario, episodes, seed)
        ref = nearest_uav_distance(make_policy("greedy"), scenario, episodes, seed)
        rows.append((result["method"], result["x"], result["seed"], own, ref))
    for method, x, seed, own, ref in sorted(rows, key=lambda r: (r[0], str(r[1]), r[2])):
        print(f"{method} {x} {seed} | {own[0]:.0f}, {own[1]:.0f} | {own[2]:.2f} | "
              f"{ref[0]:.0f}, {ref[1]:.0f} | {ref[2]:.2f}")


if __name__ == "__main__":
    main()
