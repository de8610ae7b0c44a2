"""How well a run's learned candidate-move values (``move_value_net``) fit its stored ones.

Usage::

    python benchmarks/move_value_fit.py runs/adsac_search_cond_pow_srv_cap_next_val/runs/*/

For each run directory trained with ``move_value_net=True`` this loads the checkpoint's replay
buffer (the last 10,000 transitions) and agent, and over the stored UAV moves whose position
mattered to the search (spread > 0) compares the value network's prediction with the stored
candidate rewards (each less its mean over the 17 candidates). It prints per run:

- *R2*: the share of the stored values' variance the network explains (1 - MSE / mean square);
- *R2 over a constant*: the same against the best constant per candidate (its mean over rows);
- *agree*: how often the network's best candidate is the stored slot's best;
- *regret*: the stored slot's best reward minus that of the network's best candidate, against
  the best constant candidate's and a uniformly random candidate's (the mean over candidates);
- the best constant candidate and how often the network picks each length (hover, 0.45, 0.9).

These are in-sample figures on transitions the network was trained on; the stored rewards of one
slot include what the observation cannot predict, so R2 = 1 is not reachable
(docs/agents.md, "Learned candidate-move values: measured").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from satedge.agents.adsac import AdSac
from satedge.agents.common.checkpoint import load_checkpoint
from satedge.agents.heuristics import MOVE_CANDIDATES
from satedge.experiments.train import load_trained_agent


def fit(run: Path) -> dict[str, float]:
    """The figures above for one run directory."""
    agent, _ = load_trained_agent(run)
    if not isinstance(agent, AdSac) or not agent.move_value_net:
        raise SystemExit(f"{run}: not an AD-SAC run with move_value_net")
    buf = load_checkpoint(run / "checkpoint.pt")["state"]["buffer"]
    targets = np.asarray(buf["move_targets"])
    used = targets[..., 2] > 0
    obs = torch.as_tensor(np.asarray(buf["obs"]))
    servers = torch.as_tensor(np.asarray(buf["action_d"]).astype(np.int64))
    with torch.no_grad():
        pred = agent.move_value[0](obs, servers if agent.cond else None).numpy()[used]
    stored = targets[..., 3:][used]
    mse = float(((pred - stored) ** 2).mean())
    const = stored.mean(0)
    pick = pred.argmax(-1)
    best = stored.max(-1)
    lengths = np.linalg.norm(MOVE_CANDIDATES[pick], axis=-1)
    return {
        "moves": float(used.sum()),
        "r2": 1.0 - mse / float((stored**2).mean()),
        "r2_const": 1.0 - mse / float(((stored - const) ** 2).mean()),
        "agree": float((pick == stored.argmax(-1)).mean()),
        "regret": float((best - stored[np.arange(len(pick)), pick]).mean()),
        "regret_const": float((best - stored[:, const.argmax()]).mean()),
        "regret_random": float((best - stored.mean(-1)).mean()),
        "const_best": float(const.argmax()),
        "hover": float((lengths < 0.1).mean()),
        "short": float(((lengths > 0.1) & (lengths < 0.7)).mean()),
        "long": float((lengths > 0.7).mean()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (move_value_net)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| seed | moves | R2 | R2 over a constant | agree | regret (learned / constant / "
          "random) | picks hover / 0.45 / 0.9 |")
    print("|---|---|---|---|---|---|---|")
    for run in sorted(args.runs, key=lambda r: json.loads((r / "run.json").read_text())[
            "identity"]["seed"]):
        seed = json.loads((run / "run.json").read_text())["identity"]["seed"]
        f = fit(run)
        print(f"| {seed} | {f['moves']:.0f} | {f['r2']:.2f} | {f['r2_const']:.2f} | "
              f"{100 * f['agree']:.1f} % | {f['regret']:.3f} / {f['regret_const']:.3f} / "
              f"{f['regret_random']:.3f} | {100 * f['hover']:.0f} / {100 * f['short']:.0f} / "
              f"{100 * f['long']:.0f} % |")


if __name__ == "__main__":
    main()
