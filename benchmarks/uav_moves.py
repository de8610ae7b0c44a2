"""What the UAV moves are worth, and whether an AD-SAC critic knows it.

Usage::

    python benchmarks/uav_moves.py runs/ar100/seed0 runs/ar100/seed3 [--episodes 8]

For every trained AD-SAC run directory it plays the run's own evaluation seed (``episodes``
episodes) with eight policies: greedy; greedy with hovering UAVs (zero moves); greedy's servers
and powers with the run's UAV moves; the run's policy (its mode); the run with hovering UAVs; the
run with greedy's UAV moves; and the run and greedy with each UAV's move chosen by the one-slot
lookahead of ``search_uav_moves`` (what ``move_values="simulated"`` trains toward). It prints each
one's cost per slot and the mean horizontal distance from each IoTD to its nearest UAV (all
slots). Then, along the run's own evaluation, it asks the run's critic (min of the twins, at the
run's servers and powers) whether it prefers greedy's UAV moves or hovering to the run's own
moves, and prints how long both policies' moves are (1 = the longest, ``v_max tau``)
(docs/agents.md, "UAV-distance shaping").

With ``--branches N`` it also measures what the critic estimates, ``Q^pi(s, a)`` of the run's own
policy pi, by simulation: at N states along one evaluation episode, from a copy of the
environment (same random draws in both branches) it plays the run's action with its own UAV moves
or with greedy's, then pi for ``--horizon`` slots, and sums the discounted rewards (the run's
gamma). It prints how often, and by how much, greedy's moves are better under pi's continuation,
beside the critic's answer at the same states.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satedge.agents.common.protocol import to_env_action
from satedge.agents.heuristics import Action, HeuristicPolicy, MoveSearch, make_policy
from satedge.envs.encoding import ObservationEncoder
from satedge.envs.offload import MllmOffloadEnv
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
        self.lengths: dict[str, list[float]] = {"own": [], "greedy": []}

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        sc = network.scenario
        encode = self.encoders.get(id(network))
        if encode is None:
            encode = self.encoders[id(network)] = ObservationEncoder(network)
        obs = encode(state)
        action = self.agent.act(obs, state.mask, True)
        moves = np.asarray(self.greedy.act(network, state, rng)["uav"]).reshape(len(obs), -1)
        with_greedy, hover = action.continuous.copy(), action.continuous.copy()
        with_greedy[:, sc.n_iotds:] = moves
        hover[:, sc.n_iotds:] = 0.0
        base = critic_q(self.agent, obs, action.discrete, action.continuous)
        self.d_greedy += (critic_q(self.agent, obs, action.discrete, with_greedy) - base).tolist()
        self.d_hover += (critic_q(self.agent, obs, action.discrete, hover) - base).tolist()
        for name, m in (("own", action.continuous[:, sc.n_iotds:]), ("greedy", moves)):
            self.lengths[name] += np.minimum(np.linalg.norm(np.reshape(m, (-1, 2)), axis=-1),
                                             1.0).tolist()
        return to_env_action(action, sc.n_iotds, sc.n_uavs)


def critic_q(agent: Any, obs: np.ndarray, discrete: np.ndarray,
             continuous: np.ndarray) -> np.ndarray:
    """[B] the run's critic (min of the twins) at observations [B, ...] and actions."""
    with torch.no_grad():
        o = torch.as_tensor(obs)
        onehot = torch.nn.functional.one_hot(torch.as_tensor(discrete), agent.s).float()
        a_c = torch.as_tensor(continuous, dtype=o.dtype)
        return torch.stack([(c(o, a_c, onehot) * onehot).sum((-1, -2))
                            for c in agent.critics]).min(0).values.numpy()


def branch_returns(agent: Any, scenario: Any, seed: int, branches: int,
                   horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """([N] simulated ``Q^pi(s, greedy's moves) - Q^pi(s, own moves)``, [N] the critic's
    estimate of the same difference) at N states spread over one episode from ``seed``."""
    env = MllmOffloadEnv(scenario)
    greedy, gamma = make_policy("greedy"), agent.cfg.gamma
    k, m = scenario.n_iotds, scenario.n_uavs
    obs, info = env.reset(seed=seed)
    at = set(np.linspace(10, scenario.episode_slots - horizon - 1, branches).astype(int))
    sim, critic = [], []

    def unbatched(action: Any) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in to_env_action(action, k, m).items()}

    for t in range(scenario.episode_slots - horizon):
        own = agent.act(obs[None], info["action_mask"][None], True)
        if t in at:
            assert env.state is not None
            moves = np.asarray(greedy.act(env.network, env.state, np.random.default_rng(0))["uav"])
            alt = copy.deepcopy(own)
            alt.continuous[:, k:] = moves.reshape(1, -1)
            values = []
            for first in (own, alt):
                twin = copy.deepcopy(env)
                o, r, *_, inf = twin.step(unbatched(first))
                ret = r
                for h in range(1, horizon):
                    a = agent.act(o[None], inf["action_mask"][None], True)
                    o, r, *_, inf = twin.step(unbatched(a))
                    ret += gamma ** h * r
                values.append(ret)
            sim.append(values[1] - values[0])
            q = [critic_q(agent, obs[None], a.discrete, a.continuous)[0] for a in (alt, own)]
            critic.append(q[0] - q[1])
        obs, _, _, _, info = env.step(unbatched(own))
    return np.array(sim), np.array(critic)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained AD-SAC run directories")
    parser.add_argument("--episodes", type=int, default=8, help="evaluation episodes per policy")
    parser.add_argument("--branches", type=int, default=0,
                        help="states at which to simulate Q^pi of greedy's and of the own moves")
    parser.add_argument("--horizon", type=int, default=40, help="slots simulated per branch")
    parser.add_argument("--only-branches", action="store_true",
                        help="skip the policy table and the critic's preferences")
    args = parser.parse_args(argv)
    for run in args.runs:
        agent, scenario = load_trained_agent(run)
        seed = json.loads((run / "run.json").read_text())["seeds"]["eval"][0]
        greedy, own = make_policy("greedy"), AgentPolicy(agent)
        print(f"{run} (evaluation seed {seed}, {args.episodes} episodes)")
        if args.branches:
            sim, critic = branch_returns(agent, scenario, seed, args.branches, args.horizon)
            print(f"  simulated Q^pi(greedy's moves) - Q^pi(own): {sim.mean():+.3f} (better in "
                  f"{100 * np.mean(sim > 0):.0f} % of {len(sim)} states); the critic says "
                  f"{critic.mean():+.3f} (better in {100 * np.mean(critic > 0):.0f} %); "
                  f"sign agrees in {100 * np.mean((sim > 0) == (critic > 0)):.0f} %")
        if args.only_branches:
            continue
        for name, policy in [("greedy", greedy), ("greedy, hovering UAVs", _Moves(greedy, None)),
                             ("greedy, the run's UAV moves", _Moves(greedy, own)),
                             ("the run", own), ("the run, hovering UAVs", _Moves(own, None)),
                             ("the run, greedy's UAV moves", _Moves(own, greedy)),
                             ("the run, searched UAV moves", MoveSearch(own)),
                             ("greedy, searched UAV moves", MoveSearch(greedy))]:
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
        print(f"  move length: the run's {np.mean(probe.lengths['own']):.2f}, greedy's "
              f"{np.mean(probe.lengths['greedy']):.2f}")


if __name__ == "__main__":
    main()
