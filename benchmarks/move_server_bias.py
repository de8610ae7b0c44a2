"""UAV move candidates priced with the servers kept against servers chosen again for each move.

Usage::

    python benchmarks/move_server_bias.py [--envs 8] [--slots 40] [--seed 777]

The move search behind AD-SAC's simulated move targets (``heuristics.search_uav_moves``) prices
each candidate move of a UAV with the action's own servers and powers, which were chosen for the
UAVs' positions under the action's own move. Once a UAV has moved, a policy chooses its servers
for the new positions. This plays the greedy heuristic in ``--envs`` environments of the default
scenario for ``--slots`` slots and, at every slot, prices each UAV's candidates (its greedy move
first, then the 17 fixed ones) both ways on the slot's own tasks:

- *kept*: greedy's servers and powers for its own moves (what the training targets use);
- *chosen again*: greedy's servers and powers chosen for the positions the candidate gives.

Over the UAVs whose position matters to either (spread > 0) it prints how often each way's best
candidate is the greedy move itself, how far apart the two bests are (in the action's [-1, 1]^2
units), their lengths, and what the kept best gives up when servers are chosen again (the
chosen-again reward of the chosen-again best minus that of the kept best, reward per slot; the
same for greedy's own move). A large gap means the targets favour staying where the servers
suit the UAVs, a bias no amount of averaging removes (docs/agents.md, "Learned candidate-move
values: measured").
"""

from __future__ import annotations

import argparse

import numpy as np

from satedge.agents.heuristics import MOVE_CANDIDATES, GreedyPolicy, price_uav_moves
from satedge.envs.encoding import ActionDecoder
from satedge.envs.encoding import reward as env_reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState


def chosen_again(env: MllmOffloadVectorEnv, greedy: GreedyPolicy, state: SlotState,
                 cands: np.ndarray) -> np.ndarray:
    """[B, M, N] the reward of greedy's servers and powers chosen for the positions of each
    candidate (UAV m at candidate n, the others after the first candidate, their own move)."""
    network = env.network
    sc = network.scenario
    b, m, n = cands.shape[:3]
    step = sc.uav.speed_max_m_s * sc.slot_s
    xy = state.uav_xy_m
    base = network.moved_uav_xy(xy, np.clip(cands[:, :, 0], -1.0, 1.0) * step)  # [B, M, 2]
    alt = network.moved_uav_xy(xy[:, :, None], np.clip(cands, -1.0, 1.0) * step)  # [B, M, N, 2]
    trial = np.repeat(base[:, None, None], m, axis=1).repeat(n, axis=2)  # [B, M, N, M, 2]
    uav = np.arange(m)
    trial[:, uav, :, uav] = alt.transpose(1, 0, 2, 3)
    rows = np.repeat(np.arange(b), m * n)
    moved = network.with_uav_positions(state.take(rows), trial.reshape(-1, m, 2))
    action = greedy.act(network, moved, np.random.default_rng(0))
    server, watts, _ = ActionDecoder(sc)(action, len(rows))
    return np.asarray(env_reward(sc, network.cost(moved, server, watts))).reshape(b, m, n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--slots", type=int, default=40)
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args(argv)
    sc = Scenario()
    env = MllmOffloadVectorEnv(args.envs, sc)
    env.reset(seed=args.seed)
    greedy = GreedyPolicy()
    decode = ActionDecoder(sc)
    rows = []
    for _ in range(args.slots):
        state = env.state
        assert state is not None
        action = greedy.act(env.network, state, np.random.default_rng(0))
        server, watts, _ = decode(action, state.batch_size)
        cands, kept = price_uav_moves(env.network, state, server, watts,
                                      np.asarray(action["uav"], np.float64))
        again = chosen_again(env, greedy, state, cands)
        live = (np.ptp(kept, -1) > 0) | (np.ptp(again, -1) > 0)
        k_best, a_best = kept.argmax(-1), again.argmax(-1)
        pick = np.take_along_axis
        k_move = pick(cands, k_best[..., None, None], 2)[:, :, 0]
        a_move = pick(cands, a_best[..., None, None], 2)[:, :, 0]
        top = again.max(-1)
        rows.append(np.stack([
            (k_best == 0), (a_best == 0),
            np.linalg.norm(k_move - a_move, axis=-1),
            np.linalg.norm(k_move, axis=-1), np.linalg.norm(a_move, axis=-1),
            top - pick(again, k_best[..., None], 2)[..., 0],
            top - again[..., 0]], -1)[live])
        env.step(action)
    v = np.concatenate(rows)
    print(f"greedy, default scenario: {args.envs} environments x {args.slots} slots, "
          f"{len(v)} UAV-moves whose position mattered")
    print(f"best is greedy's own move:  kept {v[:, 0].mean():.2f}  chosen again "
          f"{v[:, 1].mean():.2f}")
    print(f"distance between the two bests: {v[:, 2].mean():.2f}   lengths: kept "
          f"{v[:, 3].mean():.2f}, chosen again {v[:, 4].mean():.2f}")
    print(f"given up with servers chosen again: kept best {v[:, 5].mean():.3f}, greedy's own "
          f"move {v[:, 6].mean():.3f} reward per slot (MOVE_CANDIDATES: {len(MOVE_CANDIDATES)})")


if __name__ == "__main__":
    main()
