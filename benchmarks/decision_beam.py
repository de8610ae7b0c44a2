"""Whether AD-SAC's decision beam (``decision_beam``) lowers a trained run's cost, measured on
the run's own evaluation episodes, paired with the run's plain mode.

Usage::

    python benchmarks/decision_beam.py runs/adsac_opt/runs/*/ [--widths 8] [--steps 9000]
                                       [--episodes 8]

For each AD-SAC run whose replay buffer stores server targets (``server_search > 0`` or
``target_search="optimizer"``): a run trained with ``decision_beam > 0`` uses its own context
network; any other gets a fresh :class:`~satedge.agents.adsac.ServerContextNet` (torch seed 0)
fitted afterwards to four fifths of its checkpoint's replay buffer (the fifth of
``server_fit.py`` held out), ``--steps`` minibatch steps of the agent's
own loss (``AdSac._context_loss``, Adam at the actor's learning rate, the agent's batch size);
the default is about as many as the training loop gives it (one per transition after
``learning_starts``). It then evaluates the run's first evaluation seed (the protocol of
``summary.json``) with the plain mode (``decision_beam`` 0) and with each width of
``--widths``, and prints each run's costs and the mean paired change over the runs with a 95 %
t-interval. On the held-out fifth of the stored states it also prints how often each of these
picks the stored target server: the actor's mode (greedy decoding), the actor given the targets
of the IoTDs placed before (teacher forcing), the context network given all the other IoTDs'
targets, and the decision with the first width. Nothing in the run directory is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import cast

import numpy as np
import torch

from against_greedy import _mean_ci  # sibling scripts
from satedge.agents.adsac import AdSac, ServerContextNet
from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.distributions import MaskedCategorical
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent
from server_fit import matching_share, stored_targets

AGREEMENTS = ("mode", "teacher-forced", "context given the others", "decision")


def fit_context(agent: AdSac, obs: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor,
                steps: int) -> None:
    """Fit a fresh context network to the stored server targets [N, K, 2] at ``obs``."""
    torch.manual_seed(0)
    agent.context_d = ServerContextNet(agent.obs_dim, agent.k, agent.s, agent.cfg.iotd_block,
                                       agent.cfg.iotd_hidden)
    opt = torch.optim.Adam(agent.context_d.parameters(), lr=agent.cfg.actor_lr)
    gen = torch.Generator().manual_seed(0)
    n, none = obs.shape[0], torch.empty(0)
    for _ in range(steps):
        b = torch.randint(0, n, (agent.cfg.batch_size,), generator=gen)
        batch = ReplayBatch(obs[b], none, none, none, none, none, mask[b], none,
                            server_targets=targets[b])
        loss, _ = agent._context_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def agreements(agent: AdSac, obs: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
               used: torch.Tensor, width: int) -> list[float]:
    """How often, over the IoTDs with a task, the target server is picked by: the actor's mode
    (greedy decoding), its categoricals given the targets of the IoTDs placed before (teacher
    forcing), the context network given every other IoTD's target, and the decision with a beam
    of ``width``."""
    mode = agent._mode_d(obs, mask)
    forced = agent._dist_d(agent.actor_d, obs, mask, target).mode()
    net = cast(ServerContextNet, agent.context_d)
    context = MaskedCategorical(net(obs, target).view(-1, agent.k, agent.s), mask).mode()
    decided = agent._best_by_context(obs, mask, mode, width)
    return [matching_share(x, target, used) for x in (mode, forced, context, decided)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="AD-SAC run directories")
    ap.add_argument("--widths", type=int, nargs="+", default=[8], help="beam widths to try")
    ap.add_argument("--steps", type=int, default=9000,
                    help="fitting steps for a run trained without a context network")
    ap.add_argument("--episodes", type=int, default=8, help="evaluation episodes")
    args = ap.parse_args(argv)
    for name, value in (("--steps", args.steps), ("--episodes", args.episodes),
                        *(("--widths", w) for w in args.widths)):
        if value < 1:
            raise SystemExit(f"{name}={value} must be at least 1")
    torch.set_num_threads(1)
    costs, shares = [], []
    for run in args.runs:
        agent, scenario = load_trained_agent(run)
        if not isinstance(agent, AdSac) or agent.cfg.discrete_actor != "autoregressive":
            raise SystemExit(f"{run}: not an AD-SAC run with the autoregressive discrete actor")
        obs, mask, target, used, held = stored_targets(run)
        fitted = "its own context network"
        if not agent.cfg.decision_beam:
            fit = ~held
            fit_context(agent, obs[fit], mask[fit],
                        torch.stack([target[fit], used[fit]], -1).float(), args.steps)
            fitted = (f"a context network fitted afterwards: {args.steps} steps on "
                      f"{int(fit.sum())} of {obs.shape[0]} stored transitions")
        agree = agreements(agent, obs[held], mask[held], target[held], used[held],
                           args.widths[0])
        shares.append(agree)
        seed = int(json.loads((run / "run.json").read_text())["seeds"]["eval"][0])
        base = agent.cfg
        row = []
        for width in (0, *args.widths):
            agent.cfg = dataclasses.replace(base, decision_beam=width)
            row.append(evaluate(AgentPolicy(agent), scenario, args.episodes, seed)
                       ["cost_per_slot"])
        agent.cfg = base
        costs.append(row)
        print(f"{run}: mode {row[0]:.2f}, " + ", ".join(
            f"beam {w} {c:.2f}" for w, c in zip(args.widths, row[1:], strict=True))
              + f" ({fitted}); held-out agreement with the targets: "
              + ", ".join(f"{name} {100 * x:.1f} %" for name, x in zip(AGREEMENTS, agree,
                                                                        strict=True)), flush=True)
    c, a = np.array(costs), np.array(shares)
    print(f"\n{len(costs)} run(s), {args.episodes} evaluation episodes each; mean over runs:")
    print(f"- held-out agreement with the targets (beam {args.widths[0]}): " + ", ".join(
        f"{name} {100 * x:.1f} %" for name, x in zip(AGREEMENTS, a.mean(0), strict=True)))
    print(f"- mode: {c[:, 0].mean():.2f}")
    for j, width in enumerate(args.widths, 1):
        d = c[:, j] - c[:, 0]
        print(f"- beam {width}: {c[:, j].mean():.2f}, change {_mean_ci(list(d))} "
              f"(per run: {', '.join(f'{x:+.2f}' for x in d)})")


if __name__ == "__main__":
    main()
