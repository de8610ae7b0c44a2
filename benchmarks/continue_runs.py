"""Continue a finished sweep's learner runs to a longer budget, on copies, without retraining.

Usage::

    python benchmarks/continue_runs.py runs/adsac_exact_geo --episodes 200 --out runs/geo200
    python benchmarks/continue_runs.py runs/adsac_exact_geo --episodes 200 --out runs/geo200 \\
        --decision-samples 32      # also evaluate each continued run with decision-time samples

Every run directory under ``SWEEP/runs/`` that holds a training run (``run.json``) is copied to
``OUT/seed<S>`` (once; later calls resume the copies) and trained on to ``--episodes`` with the
settings its ``run.json`` records, so the copy's identity is the original's and a resumed run
continues exactly as an uninterrupted one would (docs/agents.md, "The run directory"). Runs of one
configuration are continued together, seed-batched when the algorithm allows it, as the sweep
runner trained them. Per run it prints the final evaluation (the run's own evaluation seed and
episodes, ``summary.json``) and, with ``--decision-samples N``, the same evaluation with the
critic picking the servers among the mode and N samples (AD-SAC runs only).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent, supports_seed_batching, train, train_seeds
from satedge.sim.scenario import Scenario


def _settings(ident: dict[str, Any]) -> dict[str, Any]:
    """The agent and loop settings a run directory's identity records, as overrides."""
    return {**ident["agent"], **ident["loop"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep directory (satedge reproduce --out)")
    parser.add_argument("--episodes", type=int, required=True, help="training episodes in all")
    parser.add_argument("--out", type=Path, required=True, help="where the copies go")
    parser.add_argument("--decision-samples", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)

    groups: dict[str, list[tuple[int, Path, dict[str, Any]]]] = {}
    for meta_path in sorted(args.sweep.glob("runs/*/run.json")):
        ident = json.loads(meta_path.read_text())["identity"]
        seed = int(ident["seed"])
        out = args.out / f"seed{seed}"
        if not out.exists():
            shutil.copytree(meta_path.parent, out,
                            ignore=shutil.ignore_patterns("result.json", "*.parquet"))
        key = json.dumps({k: v for k, v in ident.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, []).append((seed, out, ident))
    if not groups:
        raise SystemExit(f"no training runs under {args.sweep}/runs/")
    for members in groups.values():
        members.sort(key=lambda m: m[0])
        ident = members[0][2]
        algo, scenario = ident["algo"], Scenario.from_dict(ident["scenario"])
        over = _settings(ident)
        seeds, outs = [m[0] for m in members], [m[1] for m in members]
        if len(members) > 1 and supports_seed_batching(algo):
            results = train_seeds(algo, scenario, seeds, args.episodes, outs, overrides=over)
        else:
            results = [train(algo, scenario, s, args.episodes, o, overrides=over)
                       for s, o in zip(seeds, outs, strict=True)]
        for seed, out, result in zip(seeds, outs, results, strict=True):
            line = f"{algo} seed {seed} ({out}): cost {result['cost_per_slot']:.2f}"
            if args.decision_samples:
                line += f", with {args.decision_samples} decision samples " + \
                    f"{_with_samples(out, args.decision_samples):.2f}"
            print(line)


def _with_samples(out: Path, n: int) -> float:
    """The run's final evaluation protocol, with ``decision_samples = n``."""
    from dataclasses import replace

    agent, scenario = load_trained_agent(out)
    agent.cfg = replace(agent.cfg, decision_samples=n)
    meta = json.loads((out / "run.json").read_text())
    episodes = int(meta["identity"]["loop"]["eval_episodes"])
    return float(evaluate(AgentPolicy(agent), scenario, episodes,
                          int(meta["seeds"]["eval"][0]))["cost_per_slot"])


if __name__ == "__main__":
    main()
