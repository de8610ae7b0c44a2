"""How much the simulated UAV-move targets of one state differ between draws of the action.

Usage::

    python benchmarks/move_targets.py runs/adsac_search_pow_kl/runs/* [--episodes 4] [--samples 16]

With ``move_values="simulated"`` each stored transition's UAV moves are trained toward the best
move of a one-slot lookahead (``search_uav_moves``) for the action that was *sampled* at that
state: its servers, powers and the other UAVs' moves. For every trained run directory this plays
the run's deterministic policy on its own evaluation seed (``episodes`` episodes) and, at every
slot, draws ``samples`` actions from the run's stochastic policy, searches each one's best move
per UAV, and prints, over the UAVs whose position matters to at least two of the draws:

- *spread*: the mean distance from each draw's target to the targets' mean (in the action's
  [-1, 1]^2 units; 1 = the longest move, ``v_max tau``), i.e. how far the targets of one state
  scatter;
- *mode to mean*: the distance from the policy's mode to that mean, what a perfect fit of the
  targets would make 0;
- *mode to fit*: the distance from the mode to where a maximum-likelihood fit of the targets
  under a tanh-squashed Gaussian puts it, ``tanh(mean(atanh(target)))`` (targets clipped to
  +-0.999 as in training);
- *mode to each*: the mean distance from the mode to the single draws' targets, the quantity the
  training metric ``train/move_target_gap`` estimates (it measures the mode against one draw);
- *agree*: how often two draws pick the same candidate move.

If *mode to each* is large while *mode to mean* is small, the training gap is the targets' scatter,
not a poor fit (docs/agents.md, "Wider continuous trust region: measured").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from satedge.agents.adsac import _TARGET_BOUND
from satedge.agents.common.protocol import to_env_action
from satedge.agents.heuristics import Action, search_uav_moves
from satedge.envs.encoding import ActionDecoder, ObservationEncoder
from satedge.experiments.evaluate import evaluate
from satedge.experiments.train import load_trained_agent
from satedge.sim.network import EdgeNetwork
from satedge.sim.state import SlotState


class _TargetProbe:
    """The agent's deterministic policy, recording the scatter of the move targets of
    ``samples`` stochastic actions at every state it visits."""

    def __init__(self, agent: Any, samples: int) -> None:
        self.agent, self.samples = agent, samples
        self.encoders: dict[int, ObservationEncoder] = {}
        self.rows: dict[str, list[float]] = {"spread": [], "mode_mean": [], "mode_fit": [],
                                              "mode_each": [], "agree": []}
        # every visited state's observation [D], action mask [K, S], targets [samples, M, 2]
        # and which of them are used [samples, M] (benchmarks/move_fit.py fits them)
        self.states: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        sc = network.scenario
        k, m, n = sc.n_iotds, sc.n_uavs, self.samples
        encode = self.encoders.get(id(network))
        if encode is None:
            encode = self.encoders[id(network)] = ObservationEncoder(network)
        obs = encode(state)
        b = len(obs)
        mode = self.agent.act(obs, state.mask, True)
        drawn = self.agent.act(np.repeat(obs, n, 0), np.repeat(state.mask, n, 0), False)
        server, power_w, _ = ActionDecoder(sc)(to_env_action(drawn, k, m), b * n)
        moves = drawn.continuous[:, k:].reshape(-1, m, 2)
        best, _, spread = search_uav_moves(network, state.take(np.repeat(np.arange(b), n)),
                                           server, power_w, moves)
        best, used = best.reshape(b, n, m, 2), spread.reshape(b, n, m) > 0
        own = np.asarray(mode.continuous[:, k:], dtype=np.float64).reshape(b, m, 2)
        for i in range(b):
            self.states.append((obs[i], state.mask[i], best[i], used[i]))
            for j in range(m):
                t = best[i, used[i, :, j], j]  # [n_used, 2]
                if len(t) < 2:
                    continue
                mean = t.mean(0)
                self.rows["spread"].append(float(np.linalg.norm(t - mean, axis=-1).mean()))
                self.rows["mode_mean"].append(float(np.linalg.norm(own[i, j] - mean)))
                fit = np.tanh(np.arctanh(np.clip(t, -_TARGET_BOUND, _TARGET_BOUND)).mean(0))
                self.rows["mode_fit"].append(float(np.linalg.norm(own[i, j] - fit)))
                self.rows["mode_each"].append(float(np.linalg.norm(t - own[i, j], axis=-1).mean()))
                same = np.all(np.isclose(t[:, None], t[None]), axis=-1)
                self.rows["agree"].append(float((same.sum() - len(t)) / (len(t) * (len(t) - 1))))
        return to_env_action(mode, k, m)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained AD-SAC run directories "
                        "(move_values='simulated')")
    parser.add_argument("--episodes", type=int, default=4, help="evaluation episodes per run")
    parser.add_argument("--samples", type=int, default=16, help="actions drawn per state")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error(f"--samples {args.samples} must be at least 2")
    total: dict[str, list[float]] = {}
    for run in args.runs:
        agent, scenario = load_trained_agent(run)
        seed = json.loads((run / "run.json").read_text())["seeds"]["eval"][0]
        probe = _TargetProbe(agent, args.samples)
        result = evaluate(probe, scenario, args.episodes, seed)
        print(f"{run} (evaluation seed {seed}, {args.episodes} episodes, cost/slot "
              f"{result['cost_per_slot']:.2f}): {_summary(probe.rows)}")
        for key, v in probe.rows.items():
            total.setdefault(key, []).extend(v)
    if len(args.runs) > 1:
        print(f"all runs: {_summary(total)}")


def _summary(rows: dict[str, list[float]]) -> str:
    r = {key: np.mean(v) for key, v in rows.items()}
    return (f"spread {r['spread']:.3f}, mode to mean {r['mode_mean']:.3f}, mode to fit "
            f"{r['mode_fit']:.3f}, mode to each "
            f"{r['mode_each']:.3f}, agree {100 * r['agree']:.0f} % ({len(rows['spread'])} "
            "UAV-states)")


if __name__ == "__main__":
    main()
