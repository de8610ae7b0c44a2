"""What the one-slot move and power lookaheads of ``move_values="simulated"`` and
``power_values="simulated"`` cost and where they point.

Usage::

    python benchmarks/move_search.py [--envs 20] [--slots 30] [--seed 3]

On the default scenario it plays greedy in ``envs`` environments for ``slots`` slots. At every slot
it searches each UAV's move with ``search_uav_moves`` for greedy's servers and powers (from
hovering) and compares the best move with greedy's centroid move: the cosine between them and the
best move's length (1 = the longest, ``v_max tau``), over the UAVs whose position matters (a
positive spread). Then it times ``move_target_table`` (the search as the training loop calls it)
and ``power_target_table`` (the power search) against ``server_reward_table`` (the exact server
values, already part of every ``adsac-exact*`` step), alternately on the same states, and prints
them in ms per call, and ``server_target_table`` (the server search of ``server_search``) from
greedy's servers and from uniform feasible ones, with the reward each search adds. For the powers
it prints where the search puts greedy's tasks (the share at p_max) and how much searching each
IoTD's power, from greedy's, lowers the slot's cost. Last, it times ``optimizer_target_tables``
(the per-slot optimiser's targets of ``target_search="optimizer"``) on greedy's action and prints
how much the optimiser's power search for greedy's servers, and the optimiser's own servers and
powers, raise the reward beyond the one-IoTD-at-a-time power search.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from satedge.agents.common.offpolicy import (
    move_target_table,
    optimizer_target_tables,
    power_target_table,
    server_reward_table,
    server_target_table,
)
from satedge.agents.common.protocol import AgentAction
from satedge.agents.heuristics import (
    GreedyPolicy,
    search_iotd_powers,
    search_servers,
    search_uav_moves,
    uniform_feasible_servers,
)
from satedge.agents.optimizer import OptimizerPolicy, optimise_powers
from satedge.envs.encoding import power_watts, reward
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import resolve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=20, help="environments (a 5-seed batch: 20)")
    parser.add_argument("--slots", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--server-rounds", type=int, default=8,
                        help="rounds of the server search (server_search)")
    args = parser.parse_args(argv)
    sc = resolve()
    env = MllmOffloadVectorEnv(args.envs, sc)
    env.reset(seed=args.seed)
    greedy, rng = GreedyPolicy(), np.random.default_rng(args.seed)
    cosines, lengths, used_share = [], [], []
    t_moves, t_servers, t_powers, t_search, t_search_rand = [], [], [], [], []
    search_gain, rand_gain = [], []
    at_max, greedy_max, power_gain = [], [], []
    t_opt, opt_power_gain, opt_gain = [], [], []
    opt_rng = np.random.default_rng(args.seed + 1)
    for _ in range(args.slots):
        state = env.state
        assert state is not None
        act = greedy.act(env.network, state, rng)
        server, power_w, _ = env.decode(act)
        best, _, spread = search_uav_moves(env.network, state, server, power_w,
                                           np.zeros_like(act["uav"]))
        used = spread > 0
        own = np.asarray(act["uav"])
        norms = np.linalg.norm(best, axis=-1) * np.linalg.norm(own, axis=-1)
        cos = (best * own).sum(-1) / np.maximum(norms, 1e-12)
        cosines += list(cos[used])
        lengths += list(np.linalg.norm(best, axis=-1)[used])
        used_share.append(used.mean())
        cont = np.concatenate([np.asarray(act["power"]), own.reshape(args.envs, -1)],
                              -1).astype(np.float32)
        action = AgentAction(np.asarray(act["offload"]), cont)
        t0 = time.perf_counter()
        move_target_table(env, state, action)
        t1 = time.perf_counter()
        server_reward_table(env, state, action.discrete, action.continuous)
        t2 = time.perf_counter()
        power_target_table(env, state, action)
        t3 = time.perf_counter()
        t_moves.append(t1 - t0)
        t_servers.append(t2 - t1)
        t_powers.append(t3 - t2)
        rand = AgentAction(uniform_feasible_servers(state.mask, rng), cont)
        t4 = time.perf_counter()
        server_target_table(env, state, action, args.server_rounds)
        t5 = time.perf_counter()
        server_target_table(env, state, rand, args.server_rounds)
        t6 = time.perf_counter()
        t_search.append(t5 - t4)
        t_search_rand.append(t6 - t5)
        search_gain.append(float(np.mean(search_servers(env.network, state, server, power_w,
                                                        args.server_rounds)[1])))
        rand_server, _, _ = env.decode({**act, "offload": rand.discrete})
        rand_gain.append(float(np.mean(search_servers(env.network, state, rand_server, power_w,
                                                      args.server_rounds)[1])))
        best_p, _, spread_p = search_iotd_powers(env.network, state, server,
                                                 np.asarray(act["power"]))
        task = spread_p > 0
        at_max += list(best_p[task] == 1.0)
        greedy_max += list(np.asarray(act["power"])[task] == 1.0)
        searched = env.network.cost(state, server, power_watts(sc, best_p))
        power_gain.append(float(np.mean(reward(sc, searched) - reward(sc, env.network.cost(
            state, server, power_w)))))
        t7 = time.perf_counter()
        optimizer_target_tables(env, state, action, [opt_rng])
        t_opt.append(time.perf_counter() - t7)
        opt_p, _ = optimise_powers(env.network, state, server, power_w)
        opt_power_gain.append(float(np.mean(reward(sc, env.network.cost(state, server, opt_p))
                                            - reward(sc, searched))))
        sol = OptimizerPolicy().solve(env.network, state, opt_rng)
        opt_gain.append(float(np.mean(reward(sc, env.network.cost(state, sol.server, sol.power_w))
                                      - reward(sc, searched))))
        env.step(act)
    print(f"default scenario, {args.envs} environments x {args.slots} slots of greedy")
    print(f"  UAVs whose position matters to greedy's action: {100 * np.mean(used_share):.0f} %")
    print(f"  searched best move against greedy's: cosine median {np.median(cosines):.2f}, "
          f"mean {np.mean(cosines):.2f}; length {np.mean(lengths):.2f} of the longest")
    print(f"  searched best power at p_max for {100 * np.mean(at_max):.0f} % of the tasks "
          f"(greedy's: {100 * np.mean(greedy_max):.0f} %); every IoTD's searched power in place "
          f"of greedy's lowers the cost by {np.mean(power_gain):.3f} per slot")
    print(f"  move_target_table {1e3 * np.median(t_moves):.1f} ms per call, "
          f"power_target_table {1e3 * np.median(t_powers):.1f} ms, "
          f"server_reward_table {1e3 * np.median(t_servers):.1f} ms (medians, alternating)")
    print(f"  server_target_table ({args.server_rounds} rounds) from greedy's servers "
          f"{1e3 * np.median(t_search):.1f} ms per call, from uniform feasible servers "
          f"{1e3 * np.median(t_search_rand):.1f} ms; the search raises the reward (-J / K_active) "
          f"of greedy's servers by {np.mean(search_gain):.3f} per slot, of uniform ones by "
          f"{np.mean(rand_gain):.3f}")
    print(f"  optimizer_target_tables {1e3 * np.median(t_opt):.1f} ms per call; beyond greedy's "
          f"servers with the one-IoTD power search, the optimiser's power search for the same "
          f"servers raises the reward by {np.mean(opt_power_gain):.3f} per slot, its own servers "
          f"and powers by {np.mean(opt_gain):.3f}")


if __name__ == "__main__":
    main()
