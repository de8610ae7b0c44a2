"""What the UAV moves are worth, and whether an AD-SAC critic knows it.

Usage::

    python benchmarks/uav_moves.py runs/ar100/seed0 runs/ar100/seed3 [--episodes 8]

For every trained AD-SAC run directory it plays the run's own evaluation seed (``episodes``
episodes) with six policies: greedy; greedy with hovering UAVs (zero moves); greedy's servers and
powers with the run's UAV moves; the run's policy (its mode); the run with hovering UAVs; and the
run with greedy's UAV moves. It prints each one's cost per slot and the mean horizontal distance
from each IoTD to its nearest UAV (all slots). Then, along the run's own evaluation, it asks the
run's critic (min of the twins, at the run's servers and powers) whether it prefers greedy's UAV
moves or hovering to the run's own moves (docs/agents.md, "UAV-distance shaping").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satedge.agents.common.protocol import to_env_action
from satedge.agents.heuristics import Action, HeuristicPolicy, make_policy
from satedge.envs.encoding import ObservationEncoder
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent
from satedge.sim.network import EdgeNetwork
from satedge.sim.state import SlotState
from uav_distance import _Recorder


class _Moves:
    """``base``'s servers and powers with ``mover``'s UAV moves (None: hover)."""

    def __init__(self, base: HeuristicPolicy, mover: HeuristicPolicy | None) -> None:
        self.base, self.mover = base, mover

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        action = dict(self.base.act(network, state, rng))
        moves = (np.zeros_like(action["uav"]) if self.mover is None
                 else self.mover.act(network, state, rng)["uav"])
        return {**action, "uav": moves}


class _CriticProbe:
    """The agent's deterministic policy, recording its critic's Q of greedy's and of zero UAV
    moves minus that of its own, at its own servers and powers."""

    def __init__(self, agent: Any, greedy: HeuristicPolicy) -> None:
        self.agent, self.greedy = agent, greedy
        self.encoders: dict[int, ObservationEncoder] = {}
        self.d_greedy: list[float] = []
        self.d_hover: list[float] = []

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        sc = network.scenario
        encode = self.encoders.setdefault(id(network), ObservationEncoder(network))
        obs = encode(state)
        action = self.agent.act(obs, state.mask, True)
        moves = np.asarray(self.greedy.act(network, state, rng)["uav"]).reshape(len(obs), -1)
        with torch.no_grad():
            o = torch.as_tensor(obs)
            onehot = torch.nn.functional.one_hot(torch.as_tensor(action.discrete),
                                                 sc.n_servers).float()

            def q(a_c: torch.Tensor) -> torch.Tensor:
                return torch.stack([(c(o, a_c, onehot) * onehot).sum((-1, -2))
                                    for c in self.agent.critics]).min(0).values

            own = torch.as_tensor(action.continuous)
            with_greedy, hover = own.clone(), own.clone()
            with_greedy[:, sc.n_iotds:] = torch.as_tensor(moves, dtype=own.dtype)
            hover[:, sc.n_iotds:] = 0.0
            base = q(own)
            self.d_greedy += (q(with_greedy) - base).tolist()
            self.d_hover += (q(hover) - base).tolist()
        return to_env_action(action, sc.n_iotds, sc.n_uavs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained AD-SAC run directories")
    parser.add_argument("--episodes", type=int, default=8, help="evaluation episodes per policy")
    args = parser.parse_args(argv)
    for run in args.runs:
        agent, scenario = load_trained_agent(run)
        seed = json.loads((run / "run.json").read_text())["seeds"]["eval"][0]
        greedy, own = make_policy("greedy"), AgentPolicy(agent)
        print(f"{run} (evaluation seed {seed}, {args.episodes} episodes)")
        for name, policy in [("greedy", greedy), ("greedy, hovering UAVs", _Moves(greedy, None)),
                             ("greedy, the run's UAV moves", _Moves(greedy, own)),
                             ("the run", own), ("the run, hovering UAVs", _Moves(own, None)),
                             ("the run, greedy's UAV moves", _Moves(own, greedy))]:
            recorder = _Recorder(policy)
            result = evaluate(recorder, scenario, args.episodes, seed)
            print(f"  {name:30s} cost/slot {result['cost_per_slot']:6.2f}  nearest UAV "
                  f"{np.mean(recorder.distance_m):4.0f} m")
        probe = _CriticProbe(agent, greedy)
        evaluate(probe, scenario, args.episodes, seed)
        d_greedy, d_hover = np.array(probe.d_greedy), np.array(probe.d_hover)
        print(f"  critic: Q(greedy's moves) > Q(own) in {100 * np.mean(d_greedy > 0):.1f} % of "
              f"{len(d_greedy)} states, mean difference {d_greedy.mean():+.3f}; "
              f"Q(hover) - Q(own) {d_hover.mean():+.3f}")


if __name__ == "__main__":
    main()
