"""Whether a trained AD-SAC run's discrete actor can fit its stored server targets better with
more supervised steps: a fit-budget probe.

Usage::

    python benchmarks/server_fit.py runs/adsac_opt/runs/*/ [--steps 2000] [--episodes 8]

For each AD-SAC run whose replay buffer stores server targets (``server_search > 0`` or
``target_search="optimizer"``), it loads the trained agent and its checkpoint's replay buffer,
holds out a fifth of the stored states (by a checksum of the observation, so that a transition
and its unavailable-action copies fall on the same side), and trains the discrete actor alone
on the other transitions' server targets: the negative log-likelihood of ``AdSac._server_loss``
(weight 1, the IoTDs with a task), with Adam at the agent's actor learning rate on minibatches of
the agent's batch size, for ``--steps`` steps. Nothing else of the agent changes, and the run
directory is not written. Before and after, it prints how often the mode picks the target
server on the held-out transitions (IoTDs with a task) and on the fitted ones, and the cost per
slot on the run's own first evaluation seed (the protocol of ``summary.json``).

If more steps raise the held-out agreement and lower the cost, the training loop's budget of
server-loss steps limits the fit; if the fitted agreement rises but the held-out one does not,
the actor overfits the buffer; if neither moves, the actor's form does.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np
import torch

from satedge.agents.adsac import AdSac
from satedge.agents.common.checkpoint import load_checkpoint
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent


def stored_targets(run: Path) -> tuple[torch.Tensor, ...]:
    """A run's stored transitions with server targets: observations [N, obs], masks [N, K, S],
    target servers [N, K], whether each IoTD has a task [N, K], and the held-out fifth [N] (by a
    checksum of the observation, so that a transition and its unavailable-action copies fall on
    the same side)."""
    buf = load_checkpoint(run / "checkpoint.pt")["state"]["buffer"]
    if "server_targets" not in buf:
        raise SystemExit(f"{run}: its buffer stores no server targets")
    raw = np.ascontiguousarray(np.asarray(buf["obs"], dtype=np.float32))
    st = torch.as_tensor(np.asarray(buf["server_targets"]))
    held = torch.as_tensor([zlib.crc32(row.tobytes()) % 5 == 0 for row in raw])
    return (torch.as_tensor(raw), torch.as_tensor(np.asarray(buf["mask"]), dtype=torch.bool),
            st[..., 0].long(), st[..., 1] > 0, held)


def matching_share(picked: torch.Tensor, target: torch.Tensor, used: torch.Tensor) -> float:
    """Share of the used IoTDs whose picked server [N, K] is the target."""
    return float(((picked == target) & used).sum() / used.sum().clamp(min=1))


def agreement(agent: AdSac, obs: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
              used: torch.Tensor) -> float:
    """Share of the used IoTDs whose mode server is the target."""
    with torch.no_grad():
        return matching_share(agent._mode_d(obs, mask), target, used)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="AD-SAC run directories")
    ap.add_argument("--steps", type=int, default=2000, help="supervised steps per run")
    ap.add_argument("--episodes", type=int, default=8, help="evaluation episodes")
    args = ap.parse_args(argv)
    if args.steps < 1:
        raise SystemExit(f"--steps={args.steps} must be at least 1")
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        agent, scenario = load_trained_agent(run)
        if not isinstance(agent, AdSac):
            raise SystemExit(f"{run}: not an AD-SAC run ({type(agent).__name__})")
        obs, mask, target, used, held = stored_targets(run)
        fit = ~held
        idx_fit = torch.nonzero(fit).squeeze(-1)
        seed = int(json.loads((run / "run.json").read_text())["seeds"]["eval"][0])
        before = (agreement(agent, obs[held], mask[held], target[held], used[held]),
                  agreement(agent, obs[fit], mask[fit], target[fit], used[fit]),
                  evaluate(AgentPolicy(agent), scenario, args.episodes, seed)["cost_per_slot"])
        opt = torch.optim.Adam(agent.actor_d.parameters(), lr=agent.cfg.actor_lr)
        gen = torch.Generator().manual_seed(0)
        for _ in range(args.steps):
            b = idx_fit[torch.randint(0, idx_fit.numel(), (agent.cfg.batch_size,), generator=gen)]
            logp = agent._dist_d(agent.actor_d, obs[b], mask[b], target[b]).log_prob(target[b])
            loss = -torch.where(used[b], logp, torch.zeros_like(logp)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        after = (agreement(agent, obs[held], mask[held], target[held], used[held]),
                 agreement(agent, obs[fit], mask[fit], target[fit], used[fit]),
                 evaluate(AgentPolicy(agent), scenario, args.episodes, seed)["cost_per_slot"])
        rows.append((run, before, after))
        print(f"{run}: held-out agreement {100 * before[0]:.1f} -> {100 * after[0]:.1f} %, "
              f"fitted {100 * before[1]:.1f} -> {100 * after[1]:.1f} %, cost {before[2]:.2f} -> "
              f"{after[2]:.2f} ({obs.shape[0]} stored transitions)", flush=True)
    b = np.array([r[1] for r in rows])
    a = np.array([r[2] for r in rows])
    print(f"\n{len(rows)} run(s), {args.steps} supervised steps each; mean over runs:")
    print(f"- held-out agreement {100 * b[:, 0].mean():.1f} -> {100 * a[:, 0].mean():.1f} %")
    print(f"- fitted agreement {100 * b[:, 1].mean():.1f} -> {100 * a[:, 1].mean():.1f} %")
    print(f"- cost per slot {b[:, 2].mean():.2f} -> {a[:, 2].mean():.2f} "
          f"(per run: {', '.join(f'{x:.2f}' for x in a[:, 2] - b[:, 2])})")


if __name__ == "__main__":
    main()
