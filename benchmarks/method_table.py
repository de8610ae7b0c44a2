"""Every method on the default scenario over 5 seeds: the table of issue 4 (docs/baselines.md).

Usage::

    python benchmarks/method_table.py --run --out runs/methods     # train and evaluate (hours)
    python benchmarks/method_table.py --out runs/methods           # print the table again
    python benchmarks/method_table.py --out runs/methods runs/methods_adsac   # several sweeps

``--run`` runs the three specs next to this file with the sweep runner (``standard`` preset:
seeds 0-4, 8 evaluation episodes on each seed's held-out evaluation seeds; the runner skips
finished runs, resumes interrupted ones and batches AD-SAC's seeds when that pays off):

- ``specs/methods_onpolicy.yaml``: PPO and Hybrid-PPO, 200 training episodes;
- ``specs/methods_offpolicy.yaml``: D3QN and DDPG, 100 training episodes, and the reference
  policies random, random-unmasked, greedy and the per-slot optimiser;
- ``specs/methods_adsac.yaml``: AD-SAC, 100 training episodes.

The table is read from the saved results alone. Per method: the mean over seeds with the
half-width of a 95 % Student-t interval of the cost per slot, the objective ``J = -reward`` per
slot, latency, energy, the deadline-miss, infeasible (masked server chosen), drop (no feasible
server) and visibility-failure rates, and the optimality gap ``J / J_opt - 1`` against the
per-slot optimiser evaluated on the same seeds and episodes (per seed, then averaged; masked
methods are compared with ``optimizer``, ``random-unmasked`` with it too: the masked optimiser is
the reference for the masked problem, docs/baselines.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from satedge.experiments.results import load_finals
from satedge.experiments.runner import run_sweep

HERE = Path(__file__).resolve().parent
SPECS = [HERE / "specs" / f"methods_{part}.yaml" for part in ("onpolicy", "offpolicy", "adsac")]
ORDER = ["adsac", "hybrid-ppo", "ppo", "ddpg", "d3qn", "greedy", "optimizer", "random",
         "random-unmasked"]
COLUMNS = [("cost_per_slot", "cost / slot", 1.0, "{:.1f}"),
           ("objective", "J / slot", 1.0, "{:.2f}"),
           ("latency_s", "latency (s)", 1.0, "{:.2f}"),
           ("energy_j_per_slot", "energy (J / slot)", 1.0, "{:.0f}"),
           ("deadline_miss_rate", "deadline miss", 100.0, "{:.1f} %"),
           ("infeasible_rate", "infeasible", 100.0, "{:.1f} %"),
           ("drop_rate", "dropped", 100.0, "{:.2f} %"),
           ("visibility_fail_rate", "visibility fail", 100.0, "{:.2f} %"),
           ("gap", "optimality gap", 100.0, "{:+.1f} %")]


def _mean_ci(values: pd.Series, scale: float, fmt: str) -> str:
    v = values.to_numpy(dtype=float) * scale
    if len(v) < 2:
        return fmt.format(v.mean()) if len(v) else "-"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    unit = " %" if fmt.endswith(" %") else ""
    mean_fmt = fmt.removesuffix(" %")
    return f"{mean_fmt.format(v.mean())} ± {mean_fmt.replace('+', '').format(half)}{unit}"


def table(outs: list[Path]) -> str:
    """The markdown table of the sweeps in ``outs`` (their results together)."""
    finals = pd.concat([load_finals(out) for out in outs], ignore_index=True)
    finals = finals.assign(objective=-finals.reward_per_slot)
    opt = finals[finals.method == "optimizer"].set_index("seed").objective
    finals = finals.assign(gap=finals.objective / finals.seed.map(opt) - 1.0)
    methods = [m for m in ORDER if m in set(finals.method)] + sorted(
        set(finals.method) - set(ORDER))
    head = "| method | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for m in methods:
        rows = finals[finals.method == m].sort_values("seed")
        cells = [_mean_ci(rows[c], scale, fmt) for c, _, scale, fmt in COLUMNS]
        lines.append(f"| {m} | {len(rows)} | " + " | ".join(cells) + " |")
    per_seed = finals.pivot_table(index="method", columns="seed", values="cost_per_slot")
    lines += ["", "Cost per slot per seed:", "",
              "| method | " + " | ".join(f"seed {s}" for s in per_seed.columns) + " |",
              "|" + "---|" * (len(per_seed.columns) + 1)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{v:.1f}" for v in per_seed.loc[m]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, nargs="+", default=[Path("runs/methods")],
                        help="sweep directories (--run writes into the first)")
    parser.add_argument("--run", action="store_true", help="run what is missing first")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if args.run:
        run_sweep(SPECS, "standard", args.out[0], workers=args.workers)
    print(table(args.out))


if __name__ == "__main__":
    main()
