"""Can the continuous actor fit the simulated UAV-move targets at all? A supervised fit on fixed
states and targets.

Usage::

    python benchmarks/move_fit.py runs/adsac_search_pow_kl/runs/3a7d6be5cefa75e3 \\
        [--episodes 4] [--test-episodes 2] [--samples 16] [--steps 4000]

``benchmarks/move_targets.py`` found the trained policy's mode far (about 0.45) from the mean of
the move targets its own action draws produce. Either the actor cannot represent that mean, or
training does not bring it there (the replayed targets were searched for older policies'
actions, the entropy bonus pulls the means toward the centre, the trust region holds them near
the Polyak copy). This script tells the two apart. It plays the run's deterministic policy on
its evaluation seed (``--episodes``, the training states) and on another seed
(``--test-episodes``, held-out states), draws ``--samples`` actions at every state and searches
each one's best move per UAV, exactly as ``move_targets.py`` does. Then, on these fixed states
and targets only, it trains copies of the run's continuous actor with the training's own move
loss (``move_weight`` times the negative log-likelihood of ``atanh`` of the targets, averaged
over the draws, Adam at ``actor_lr``, batches of ``batch_size`` states):

- *trained, targets*: from the run's actor, with the move loss alone;
- *trained, targets + entropy*: the same plus the continuous entropy term of SAC's actor loss,
  ``alpha_c log pi`` of the moves at the run's final temperature;
- *fresh, targets*: from a re-initialised actor (the capacity question without the trained
  start);
- *fresh, targets, given the servers*: a re-initialised actor conditioned on the discrete
  policy's mode (``continuous_actor="conditioned"``: the pair network of every (UAV, IoTD) also
  sees whether the IoTD's task goes to that UAV); is the target easier to predict once the move
  knows the servers?

It prints, on the training and the held-out states, the distance from the mode to the targets'
maximum-likelihood fit (``tanh`` of the mean ``atanh``, the quantity ``move_targets.py`` calls
*mode to fit*) and to their mean, every few hundred steps. If the fit reaches a small distance
on both, the actor can represent the targets and the gap comes from training.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from move_targets import _TargetProbe
from satedge.agents.adsac import _TARGET_BOUND, LOG_STD_MAX, LOG_STD_MIN, SharedContinuousActor
from satedge.agents.common.distributions import TanhGaussian
from satedge.experiments.evaluate import evaluate
from satedge.experiments.train import load_trained_agent


def _collect(agent: Any, scenario: Any, episodes: int, seed: int, samples: int
             ) -> dict[str, torch.Tensor]:
    probe = _TargetProbe(agent, samples)
    evaluate(probe, scenario, episodes, seed)
    obs, mask, targets, used = (np.stack(x) for x in zip(*probe.states, strict=True))
    with torch.no_grad():  # [N, K] the discrete mode's servers
        servers = agent._mode_d(torch.as_tensor(obs), torch.as_tensor(mask))
    t = np.clip(targets, -_TARGET_BOUND, _TARGET_BOUND)
    w = used.astype(np.float64)[..., None]  # [N, n, M, 1]
    count = w.sum(1)  # [N, M, 1]
    fit = np.tanh((np.arctanh(t) * w).sum(1) / np.maximum(count, 1))
    mean = (targets * w).sum(1) / np.maximum(count, 1)
    return {"obs": torch.as_tensor(obs, dtype=torch.float32),
            "targets": torch.as_tensor(targets, dtype=torch.float32),
            "used": torch.as_tensor(used, dtype=torch.float32),
            "fit": torch.as_tensor(fit, dtype=torch.float32),
            "mean": torch.as_tensor(mean, dtype=torch.float32),
            "scored": torch.as_tensor(count[..., 0] >= 2),  # [N, M]: UAVs with >= 2 targets
            "servers": servers}


def _moves(net: nn.Module, data: dict[str, torch.Tensor], rows: Any, k: int, m: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The move dimensions' (mean, log_std) [B, M, 2] at ``data``'s states ``rows``; a
    conditioned actor also gets the discrete mode's servers."""
    obs = data["obs"][rows]
    out = net(obs, data["servers"][rows]) if getattr(net, "n_servers", 0) else net(obs)
    mean, log_std = out.chunk(2, dim=-1)
    log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
    return mean[:, k:].reshape(-1, m, 2), log_std[:, k:].reshape(-1, m, 2)


@torch.no_grad()
def _distances(net: nn.Module, data: dict[str, torch.Tensor], k: int, m: int) -> str:
    mean, log_std = _moves(net, data, slice(None), k, m)
    mode, s = torch.tanh(mean), data["scored"]
    to_fit = (mode - data["fit"]).norm(dim=-1)[s].mean()
    to_mean = (mode - data["mean"]).norm(dim=-1)[s].mean()
    return f"to fit {to_fit:.3f}, to mean {to_mean:.3f}, std {log_std.exp()[s].mean():.2f}"


def _fit(agent: Any, net: nn.Module, train: dict[str, torch.Tensor],
         test: dict[str, torch.Tensor], k: int, m: int, alpha: float, steps: int,
         gen: torch.Generator) -> None:
    cfg = agent.cfg
    opt = torch.optim.Adam(net.parameters(), lr=cfg.actor_lr)
    n_states = len(train["obs"])
    for step in range(steps + 1):
        if step % max(steps // 8, 1) == 0:
            print(f"    step {step:5d}: train {_distances(net, train, k, m)}; held-out "
                  f"{_distances(net, test, k, m)}", flush=True)
        if step == steps:
            break
        i = torch.randint(n_states, (cfg.batch_size,), generator=gen)
        mean, log_std = _moves(net, train, i, k, m)
        # the training's move loss, each draw's targets as one more set of UAVs [B, n M, 2],
        # averaged over the n draws
        targets, used = train["targets"][i], train["used"][i]  # [B, n, M, 2], [B, n, M]
        n = targets.shape[1]
        loss, _ = agent._target_nll(mean.repeat(1, n, 1), log_std.repeat(1, n, 1),
                                    targets.flatten(1, 2), used.flatten(1) > 0,
                                    cfg.move_weight / n)
        if alpha > 0:
            dist = TanhGaussian(mean.flatten(1), log_std.flatten(1))
            a, u = dist.rsample(gen)
            loss = loss + alpha * dist.log_prob(a, u).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _reinitialised(net: nn.Module) -> nn.Module:
    fresh = copy.deepcopy(net)
    for module in fresh.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    return fresh


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained AD-SAC run directory "
                        "(move_values='simulated')")
    parser.add_argument("--episodes", type=int, default=4, help="episodes of training states")
    parser.add_argument("--test-episodes", type=int, default=2,
                        help="episodes of held-out states")
    parser.add_argument("--samples", type=int, default=16, help="actions drawn per state")
    parser.add_argument("--steps", type=int, default=4000, help="gradient steps per fit")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the fits' batches and the fresh actors")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error(f"--samples {args.samples} must be at least 2")
    torch.set_num_threads(1)
    agent, scenario = load_trained_agent(args.run)
    cfg, k, m = agent.cfg, scenario.n_iotds, scenario.n_uavs
    seed = json.loads((args.run / "run.json").read_text())["seeds"]["eval"][0]
    train = _collect(agent, scenario, args.episodes, seed, args.samples)
    test = _collect(agent, scenario, args.test_episodes, seed + 7919, args.samples)
    alpha = float(agent.log_alpha.detach().exp()[1])
    print(f"{args.run}: {int(train['scored'].sum())} training and {int(test['scored'].sum())} "
          f"held-out UAV-states with >= 2 targets; alpha_c {alpha:.3f}, move_weight "
          f"{cfg.move_weight}, actor_lr {cfg.actor_lr}")
    torch.manual_seed(args.seed)  # the re-initialised actors
    fits = [("trained, targets", copy.deepcopy(agent.actor_c), 0.0),
            ("trained, targets + entropy", copy.deepcopy(agent.actor_c), alpha),
            ("fresh, targets", _reinitialised(agent.actor_c), 0.0)]
    if cfg.continuous_actor == "shared":
        conditioned = SharedContinuousActor(agent.obs_dim, k, m, cfg.iotd_block,
                                            cfg.iotd_hidden, cfg.uav_step,
                                            n_servers=scenario.n_servers)
        fits.append(("fresh, targets, given the servers", conditioned, 0.0))
    for name, net, a in fits:
        print(f"  {name}:")
        _fit(agent, net, train, test, k, m, a, args.steps,
             torch.Generator().manual_seed(args.seed))


if __name__ == "__main__":
    main()
