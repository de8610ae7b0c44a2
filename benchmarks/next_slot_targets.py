"""Present-slot against next-slot UAV move targets along a trained policy's own rollout.

Usage::

    python benchmarks/next_slot_targets.py runs/adsac_search_cond_pow_srv_cap/runs/<run> \\
        [--envs 8] [--slots 40] [--seed 777]

For a run trained with ``move_values="simulated"`` this plays the run's stochastic policy in
``--envs`` environments of its scenario for ``--slots`` slots and, for every move, computes both
targets the training loop can store: the one priced on the slot the move is commanded in
(``offpolicy.move_target_table``, ``move_target_slot="present"``) and the one priced on the slot
it reaches, with the action taken there (``offpolicy.next_slot_move_table``, ``"next"``). Over
the UAVs whose position matters to the search (spread > 0) it prints, per kind of target:

- *own*: how often the target is the sampled move itself;
- *to mode*: the mean distance from the target to the policy's mode (the deterministic move), in
  the action's [-1, 1]^2 units (1 = the longest move, ``v_max tau``);
- *length*: the mean length of the target move;
- *spread*: the mean gap between the best and the worst candidate's slot reward;

and the mean distance between the two targets of the same move (docs/agents.md, "Move targets
priced on the next slot: measured").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from satedge.agents.common.offpolicy import move_target_table, next_slot_move_table
from satedge.agents.common.protocol import to_env_action
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.experiments.train import load_trained_agent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained AD-SAC run directory")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--slots", type=int, default=40)
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    agent, sc = load_trained_agent(args.run)
    k, m = sc.n_iotds, sc.n_uavs
    env = MllmOffloadVectorEnv(args.envs, sc)
    obs, info = env.reset(seed=args.seed)
    rows: dict[str, list[np.ndarray]] = {"present": [], "next": []}
    between: list[float] = []
    prev = None
    for _ in range(args.slots):
        state = env.state
        assert state is not None
        action = agent.act(obs, info["action_mask"])
        mode = agent.act(obs, info["action_mask"], deterministic=True)
        if prev is not None:  # the previous slot's moves reach this slot
            before, moves, mode_moves, present = prev
            nxt = next_slot_move_table(env, state, action, before, moves)
            for name, table in (("present", present), ("next", nxt)):
                live = table[..., 2] > 0
                target = table[..., :2]
                rows[name].append(np.stack([
                    (np.abs(target - moves).max(-1) < 1e-6)[live],
                    np.linalg.norm(target - mode_moves, axis=-1)[live],
                    np.linalg.norm(target, axis=-1)[live],
                    table[..., 2][live]], -1))
            both = (nxt[..., 2] > 0) & (present[..., 2] > 0)
            between.extend(np.linalg.norm(nxt[..., :2] - present[..., :2], axis=-1)[both])
        prev = (np.array(state.uav_xy_m), action.continuous[:, k:].reshape(-1, m, 2),
                mode.continuous[:, k:].reshape(-1, m, 2), move_target_table(env, state, action))
        obs, _, _, _, info = env.step(to_env_action(action, k, m))
    print(f"{args.run}: {args.envs} environments x {args.slots} slots")
    print("target    UAV-moves  own   to mode  length  spread")
    for name, parts in rows.items():
        v = np.concatenate(parts)
        print(f"{name:8s}  {len(v):9d}  {v[:, 0].mean():.2f}  {v[:, 1].mean():7.2f}  "
              f"{v[:, 2].mean():6.2f}  {v[:, 3].mean():6.2f}")
    print(f"distance between the two targets of the same move: {np.mean(between):.2f}")


if __name__ == "__main__":
    main()
