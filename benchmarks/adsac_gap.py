"""Where a trained AD-SAC loses to the greedy heuristic: swap parts of the action, re-rank samples.

Usage (the runs of ``benchmarks/specs/methods_adsac.yaml``, or any AD-SAC run directories)::

    python benchmarks/adsac_gap.py runs/methods_adsac/runs/*/
    python benchmarks/adsac_gap.py DIR [DIR ...] --episodes 8 --samples 32 128

Every row evaluates one policy with :func:`satedge.experiments.evaluate.evaluate` on the run's
own first evaluation seed and episodes (the protocol of the run's final evaluation, so the row
``adsac`` reproduces ``summary.json``). The rows:

- ``adsac``: the trained agent, deterministic (mode of each distribution);
- ``+ greedy UAV moves``: its servers and powers, with greedy's UAV rule (move each UAV toward the
  IoTDs AD-SAC sent to it);
- ``+ greedy powers``: its servers and UAV moves, with greedy's powers for those servers;
- ``+ greedy servers``: greedy's server choice, AD-SAC's powers and UAV moves;
- ``+ greedy servers and powers``: only the UAV moves are AD-SAC's;
- ``critic picks best of N``: the mode and N samples of the discrete policy (continuous part at
  its mode), the one with the highest min-twin Q kept: what the learned critic can add at
  decision time;
- ``cost picks best of N`` (a probe, not a method: it uses the simulator's exact one-slot cost):
  the same candidates ranked by the exact cost plus penalty, i.e. how good the actor's proposals
  are when ranked perfectly for the slot;
- ``cost local search from the mode`` (probe): the mode's servers improved by
  :func:`~satedge.agents.heuristics.search_servers` (one-task reassignments priced exactly,
  the mode's powers and moves kept);
- ``+ optimiser servers and powers`` (probe): the per-slot optimiser's servers and powers with
  the run's own UAV moves; it also prints how often AD-SAC's mode sends a task to the
  optimiser's server on those states;
- ``+ k-means UAV moves`` (probe): the run's servers and powers with the optimiser's UAV rule
  (toward weighted k-means centres of the IoTDs' expected requests);
- ``+ learned-value UAV moves`` (runs with ``move_value_net`` only): the run's servers and powers,
  each UAV making the candidate move its learned value network rates best (what the actor's
  moves are trained toward, taken directly);
- ``greedy``: the heuristic itself; ``greedy with k-means UAV moves`` (probe); ``greedy with cost
  local search`` (probe: greedy's servers improved by the same search as ``cost local search from
  the mode``, the fair counterpart of that row); ``optimiser``: the per-slot optimiser
  (``satedge evaluate --policy optimizer``).

``--rows`` keeps only the rows whose name contains one of the given strings.

Then, on the states AD-SAC visits (its ``adsac`` row), its mode servers are compared with
greedy's servers for the same state and continuous action: how often the exact one-slot cost
prefers greedy's (server choices do not change the next state, so the one-slot cost ranks them
exactly), and how often the critic's min-twin Q does.

Mean over the runs and the per-run values are printed; the run takes about a minute per run
directory on one core.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from satedge.agents.adsac import AdSac, q_joint
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.heuristics import (
    MOVE_CANDIDATES,
    GreedyPolicy,
    HeuristicPolicy,
    make_policy,
    search_servers,
)
from satedge.agents.optimizer import OptimizerConfig, uav_moves
from satedge.envs.encoding import ActionDecoder, ObservationEncoder
from satedge.experiments.evaluate import evaluate
from satedge.experiments.train import load_trained_agent
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import SlotState

Action = dict[str, np.ndarray]


class Probe:
    """A policy built from a trained AD-SAC's distributions at each state and a rule ``pick``
    that turns (network, state, candidate servers [N, B, K], continuous mode [B, D]) into the
    environment action. Candidate 0 is the mode; 1..N are samples (fixed generator per call, so
    the probe is a deterministic function of the state)."""

    def __init__(self, agent: AdSac, samples: int,
                 pick: Callable[[EdgeNetwork, SlotState, np.ndarray, np.ndarray, torch.Tensor],
                                Action]) -> None:
        self.agent, self.samples, self.pick = agent, samples, pick
        self._encoders: dict[int, ObservationEncoder] = {}

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        enc = self._encoders.setdefault(id(network), ObservationEncoder(network))
        obs = torch.as_tensor(enc(state))
        agent, mask = self.agent, torch.as_tensor(state.mask)
        with torch.no_grad():  # the agent's own mode and samples (either discrete actor)
            mode = agent._mode_d(obs, mask)
            # a conditioned continuous actor (continuous_actor="conditioned") at the mode's servers
            dc = agent._dist_c(agent.actor_c, obs, mode)
            cands = [mode[None]]
            if self.samples:
                gen = torch.Generator().manual_seed(0)
                cands.append(agent._sample_d(agent.actor_d, obs, mask, gen, self.samples))
            servers = torch.cat(cands).numpy().astype(np.int64)
            cont = dc.mode().numpy().astype(np.float64)
        return self.pick(network, state, servers, cont, obs)


def env_action(sc: Scenario, server: np.ndarray, cont: np.ndarray) -> Action:
    """The environment's action of servers [B, K] and a continuous action [B, K + 2M]."""
    return to_env_action(AgentAction(server, cont), sc.n_iotds, sc.n_uavs)


def exact_j(network: EdgeNetwork, state: SlotState, action: Action) -> np.ndarray:
    """[B] cost plus penalty of ``action`` at ``state`` (the pure cost function)."""
    server, watts, _ = ActionDecoder(network.scenario)(action, state.batch_size)
    out = network.cost(state, server, watts)
    return np.asarray(out.cost + out.penalty)


def min_q(agent: AdSac, obs: torch.Tensor, cont: np.ndarray, servers: np.ndarray) -> np.ndarray:
    """[R] min-twin Q of servers [R, K] with the continuous action [R, D] at obs [R, obs]."""
    onehot = nn.functional.one_hot(torch.as_tensor(servers), agent.s).float()
    c = torch.as_tensor(cont, dtype=obs.dtype)
    with torch.no_grad():
        q = torch.stack([q_joint(cr(obs, c, onehot), onehot) for cr in agent.critics])
    return q.min(0).values.numpy()


def swap(part: str, greedy: GreedyPolicy) -> Callable[..., Action]:
    """Keep AD-SAC's mode action except ``part`` ("uav", "power", "server", "server+power"),
    which comes from greedy."""
    def pick(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
             obs: torch.Tensor) -> Action:
        action = env_action(network.scenario, servers[0], cont)
        g = greedy.act(network, state, np.random.default_rng(0))
        if "server" in part:
            action["offload"] = g["offload"]
        if "power" in part:
            action["power"] = g["power"]
        if part == "uav":
            action["uav"] = GreedyPolicy.uav_moves(network, state, servers[0])
        return action
    return pick


def by_critic(agent: AdSac) -> Callable[..., Action]:
    """The candidate with the highest min-twin Q (continuous part at its mode)."""
    def pick(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
             obs: torch.Tensor) -> Action:
        n, b, k = servers.shape
        q = min_q(agent, obs.repeat(n, 1), np.tile(cont, (n, 1)), servers.reshape(n * b, k))
        best = q.reshape(n, b).argmax(0)
        return env_action(network.scenario, servers[best, np.arange(b)], cont)
    return pick


class Preference:
    """Records, per visited state with an active task, (Q and exact reward of AD-SAC's servers,
    Q and exact reward of greedy's servers) while acting as AD-SAC's mode."""

    def __init__(self, agent: AdSac, greedy: GreedyPolicy) -> None:
        self.agent, self.greedy = agent, greedy
        self.rows: list[np.ndarray] = []

    def __call__(self, network: EdgeNetwork, state: SlotState, servers: np.ndarray,
                 cont: np.ndarray, obs: torch.Tensor) -> Action:
        theirs = self.greedy.act(network, state, np.random.default_rng(0))["offload"]
        cols = []
        for srv in (servers[0], theirs):
            action = env_action(network.scenario, srv, cont)
            cols += [min_q(self.agent, obs, cont, srv), -exact_j(network, state, action)]
        self.rows.append(np.stack(cols, -1)[state.tasks.active.any(-1)])
        return env_action(network.scenario, servers[0], cont)

    def summary(self) -> dict[str, float]:
        r = np.concatenate(self.rows)
        differ = np.abs(r[:, 3] - r[:, 1]) > 1e-9
        r = r[differ]
        exact, critic = r[:, 3] - r[:, 1], r[:, 2] - r[:, 0]
        return {"states": float(len(differ)), "differ": float(differ.mean()),
                "exact_prefers_greedy": float((exact > 0).mean()),
                "exact_gain": float(exact.mean()),
                "critic_prefers_greedy": float((critic > 0).mean()),
                "critic_agrees": float((np.sign(exact) == np.sign(critic)).mean())}


def by_cost(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
            obs: torch.Tensor) -> Action:
    """The candidate with the lowest exact one-slot cost plus penalty (a probe)."""
    n, b, k = servers.shape
    tiled = state.take(np.tile(np.arange(b), n))
    j = exact_j(network, tiled, env_action(network.scenario, servers.reshape(n * b, k),
                                           np.tile(cont, (n, 1))))
    best = j.reshape(n, b).argmin(0)
    return env_action(network.scenario, servers[best, np.arange(b)], cont)


def local_search(rounds: int) -> Callable[..., Action]:
    """The mode's servers improved by :func:`search_servers` (one-task reassignments priced by the
    exact one-slot cost, the mode's powers and moves kept; a probe)."""
    change = searched_part(rounds)

    def pick(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
             obs: torch.Tensor) -> Action:
        action = env_action(network.scenario, servers[0], cont)
        return {**action, **change(network, state, action)}
    return pick


def learned_value_moves(agent: AdSac) -> Callable[..., Action]:
    """AD-SAC's servers and powers, each UAV making the fixed candidate move that its learned
    value network (``move_value_net``) rates best for the mode's servers."""
    def pick(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
             obs: torch.Tensor) -> Action:
        action = env_action(network.scenario, servers[0], cont)
        with torch.no_grad():
            best = agent.move_value[0](obs, torch.as_tensor(servers[0])).argmax(-1).numpy()
        return {**action, "uav": MOVE_CANDIDATES[best]}
    return pick


def kmeans_moves(network: EdgeNetwork, state: SlotState, servers: np.ndarray, cont: np.ndarray,
                 obs: torch.Tensor) -> Action:
    """AD-SAC's servers and powers with the per-slot optimiser's UAV rule (toward weighted k-means
    centres of the IoTDs' expected requests: a placement for the slots to come, not this one)."""
    action = env_action(network.scenario, servers[0], cont)
    return {**action, **kmeans_part(network, state, action)}


class GreedyWith:
    """Greedy's action with the parts ``change(network, state, action)`` returns put in its place
    (a probe)."""

    def __init__(self, greedy: GreedyPolicy,
                 change: Callable[[EdgeNetwork, SlotState, Action], Action]) -> None:
        self.greedy, self.change = greedy, change

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        action = self.greedy.act(network, state, rng)
        return {**action, **self.change(network, state, action)}


def kmeans_part(network: EdgeNetwork, state: SlotState, action: Action) -> Action:
    """The per-slot optimiser's k-means UAV rule in place of the action's moves."""
    return {"uav": uav_moves(network, state, OptimizerConfig().kmeans_iterations)}


def searched_part(rounds: int) -> Callable[[EdgeNetwork, SlotState, Action], Action]:
    """The action's servers improved by :func:`search_servers` (powers and moves kept)."""
    def change(network: EdgeNetwork, state: SlotState, action: Action) -> Action:
        server, watts, _ = ActionDecoder(network.scenario)(action, state.batch_size)
        return {"offload": search_servers(network, state, server, watts, rounds)[0]}
    return change


class OptimizerSwap:
    """The per-slot optimiser's servers and powers, AD-SAC's UAV moves (a probe: how much the
    one-slot part could still give with the run's own moves). It also counts, over the tasks
    of the states it visits, how often AD-SAC's mode sends a task where the optimiser does."""

    def __init__(self, optimizer: HeuristicPolicy) -> None:
        self.optimizer, self.same, self.tasks = optimizer, 0, 0

    def __call__(self, network: EdgeNetwork, state: SlotState, servers: np.ndarray,
                 cont: np.ndarray, obs: torch.Tensor) -> Action:
        action = env_action(network.scenario, servers[0], cont)
        o = self.optimizer.act(network, state, np.random.default_rng(0))
        task = state.tasks.active & state.mask.any(-1)
        self.same += int(np.sum((servers[0] == o["offload"]) & task))
        self.tasks += int(np.sum(task))
        return {**action, "offload": o["offload"], "power": o["power"]}

    @property
    def agreement(self) -> float:
        """Share of the visited tasks that AD-SAC's mode sends to the optimiser's server."""
        return self.same / max(self.tasks, 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="AD-SAC run directories")
    ap.add_argument("--episodes", type=int, default=8, help="evaluation episodes per run")
    ap.add_argument("--samples", type=int, nargs="+", default=[32, 128],
                    help="N for the best-of-N rows")
    ap.add_argument("--rows", nargs="+",
                    help="only the rows whose name contains one of these strings")
    ap.add_argument("--json", type=Path, help="also write the per-run values here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    greedy = make_policy("greedy")
    optimizer = make_policy("optimizer")
    assert isinstance(greedy, GreedyPolicy)
    table: dict[str, list[dict[str, float]]] = {}
    prefs: list[dict[str, float]] = []
    agree: list[float] = []
    def seed_of(run: Path) -> int:
        return int(json.loads((run / "run.json").read_text())["seeds"]["seed"])

    runs = sorted(args.runs, key=seed_of)
    for run in runs:
        agent, scenario = load_trained_agent(run)
        if not isinstance(agent, AdSac):
            raise SystemExit(f"{run}: not an AD-SAC run ({type(agent).__name__})")
        seed = int(json.loads((run / "run.json").read_text())["seeds"]["eval"][0])
        pref = Preference(agent, greedy)
        rows: dict[str, Any] = {
            "adsac": Probe(agent, 0, pref),
            "+ greedy UAV moves": Probe(agent, 0, swap("uav", greedy)),
            "+ greedy powers": Probe(agent, 0, swap("power", greedy)),
            "+ greedy servers": Probe(agent, 0, swap("server", greedy)),
            "+ greedy servers and powers": Probe(agent, 0, swap("server+power", greedy)),
        }
        for n in args.samples:
            rows[f"critic picks best of {n}"] = Probe(agent, n, by_critic(agent))
            rows[f"cost picks best of {n} (probe)"] = Probe(agent, n, by_cost)
        rows["cost local search from the mode (probe)"] = Probe(agent, 0, local_search(8))
        opt_swap = OptimizerSwap(optimizer)
        rows["+ optimiser servers and powers (probe)"] = Probe(agent, 0, opt_swap)
        rows["+ k-means UAV moves (probe)"] = Probe(agent, 0, kmeans_moves)
        if agent.move_value_net:
            rows["+ learned-value UAV moves"] = Probe(agent, 0, learned_value_moves(agent))
        rows["greedy"] = greedy
        rows["greedy with k-means UAV moves (probe)"] = GreedyWith(greedy, kmeans_part)
        rows["greedy with cost local search (probe)"] = GreedyWith(greedy, searched_part(8))
        rows["optimiser"] = optimizer
        if args.rows:
            rows = {n: p for n, p in rows.items() if any(r in n for r in args.rows)}
        for name, policy in rows.items():
            r = evaluate(policy, scenario, args.episodes, seed)
            table.setdefault(name, []).append(r)
            print(f"{run.name}: {name}: cost {r['cost_per_slot']:.2f}", flush=True)
        if opt_swap.tasks:
            agree.append(opt_swap.agreement)
            print(f"{run.name}: the mode sends {100 * opt_swap.agreement:.1f} % of the tasks to "
                  "the optimiser's server", flush=True)
        if pref.rows:
            prefs.append(pref.summary())
    keys = ("cost_per_slot", "latency_s", "energy_j_per_slot", "deadline_miss_rate", "uav_share")
    print(f"\n{len(runs)} run(s) (seeds {', '.join(str(seed_of(r)) for r in runs)}), "
          f"{args.episodes} evaluation episodes each; mean over runs\n")
    print("| policy | cost / slot | latency (s) | energy (J / slot) | deadline miss | UAV share "
          "| cost per run (seed order) |")
    print("|---|---|---|---|---|---|---|")
    for name, results in table.items():
        mean = {k: float(np.mean([r[k] for r in results])) for k in keys}
        per_run = ", ".join(f"{r['cost_per_slot']:.1f}" for r in results)
        print(f"| {name} | {mean['cost_per_slot']:.2f} | {mean['latency_s']:.2f} | "
              f"{mean['energy_j_per_slot']:.0f} | {100 * mean['deadline_miss_rate']:.1f} % | "
              f"{100 * mean['uav_share']:.1f} % | {per_run} |")
    if agree:
        print(f"\nAD-SAC's mode sends {100 * np.mean(agree):.1f} % of the tasks on its own states "
              f"to the per-slot optimiser's server (per run: "
              f"{', '.join(f'{100 * a:.1f}' for a in agree)} %).")
    if prefs:
        p = {k: float(np.mean([x[k] for x in prefs])) for k in prefs[0]}
        print(f"\nOn AD-SAC's own states ({p['states']:.0f} per run; greedy's servers differ from "
              f"AD-SAC's in {100 * p['differ']:.1f} % of them), where they differ:\n"
              f"- the exact one-slot cost prefers greedy's servers in "
              f"{100 * p['exact_prefers_greedy']:.1f} % (by {p['exact_gain']:.2f} cost plus "
              f"penalty per slot);\n"
              f"- the critic prefers greedy's servers in {100 * p['critic_prefers_greedy']:.1f} %, "
              f"and ranks the pair as the exact cost does in {100 * p['critic_agrees']:.1f} %.")
    if args.json:
        out = {n: [{k: r[k] for k in keys} for r in rs] for n, rs in table.items()}
        args.json.write_text(json.dumps({"policies": out, "preference": prefs}, indent=1))


if __name__ == "__main__":
    main()
