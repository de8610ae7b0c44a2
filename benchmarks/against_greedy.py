"""Trained runs against a reference policy on episodes that no training or evaluation of theirs saw.

Usage::

    python benchmarks/against_greedy.py runs/gm200/seed*/ --episodes 32
    python benchmarks/against_greedy.py SWEEP/runs/*/ --eval-index 2 --reference optimizer

Per run: its cost per slot (the deterministic policy, the mode of each action distribution), the
reference policy's on the same episodes (the same environment seeds), and the difference. Then,
over the runs: each mean with the half-width of a 95 % Student-t interval, and the paired
difference with its interval and the paired t-test's p-value.

The episodes come from the run's evaluation seed number ``--eval-index`` in
``run.json["seeds"]["eval"]``. Training draws its environment seeds from the other half of the
seed range, and the run's own evaluations (periodic and final, ``summary.json``) use number 0, so
any index from 1 on gives episodes the run has never seen. This is a second, independent check of
a comparison that the run's own evaluation (8 episodes) makes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import stats

from satedge.agents.heuristics import POLICIES, make_policy
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent


def _mean_ci(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.2f}"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.2f} ± {half:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories (with run.json)")
    parser.add_argument("--episodes", type=int, default=32, help="episodes per run (default 32)")
    parser.add_argument("--eval-index", type=int, default=1, metavar="I",
                        help="which of the run's evaluation seeds (default 1; 0 is the run's own)")
    parser.add_argument("--reference", default="greedy", choices=sorted(POLICIES),
                        help="the built-in policy to compare with (default greedy)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes {args.episodes} must be at least 1")

    rows: list[tuple[int, float, float]] = []
    print(f"| run | seed | eval seed | run cost / slot | {args.reference} | difference | "
          "run latency (s) | run energy (J / slot) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.runs:
        meta = json.loads((path / "run.json").read_text())
        evals = meta["seeds"]["eval"]
        if not 0 <= args.eval_index < len(evals):
            raise SystemExit(f"--eval-index {args.eval_index} is outside the {len(evals)} "
                             f"evaluation seeds of {path}")
        eval_seed = int(evals[args.eval_index])
        start = time.perf_counter()
        agent, scenario = load_trained_agent(path)
        run = evaluate(AgentPolicy(agent), scenario, args.episodes, eval_seed)
        ref = evaluate(make_policy(args.reference), scenario, args.episodes, eval_seed)
        seconds = time.perf_counter() - start
        seed = int(meta["identity"]["seed"])
        diff = run["cost_per_slot"] - ref["cost_per_slot"]
        rows.append((seed, run["cost_per_slot"], ref["cost_per_slot"]))
        print(f"| {path} | {seed} | {eval_seed} | {run['cost_per_slot']:.2f} | "
              f"{ref['cost_per_slot']:.2f} | {diff:+.2f} | {run['latency_s']:.2f} | "
              f"{run['energy_j_per_slot']:.0f} | {seconds:.0f} |", flush=True)
    mine, theirs = [r[1] for r in rows], [r[2] for r in rows]
    diffs = [a - b for a, b in zip(mine, theirs, strict=True)]
    print(f"\n{len(rows)} runs, {args.episodes} episodes each (95 % t-intervals over runs):")
    print(f"- runs: {_mean_ci(mine)}; {args.reference}: {_mean_ci(theirs)}")
    line = f"- paired difference (run - {args.reference}): {_mean_ci(diffs)}"
    if len(rows) >= 2:
        line += f", p = {stats.ttest_rel(mine, theirs).pvalue:.3f} (paired t-test)"
    print(line + f"; {sum(d < 0 for d in diffs)} of {len(rows)} runs below {args.reference}")


if __name__ == "__main__":
    main()
