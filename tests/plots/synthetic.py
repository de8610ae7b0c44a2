"""Synthetic sweep results shaped like :mod:`satedge.experiments.results`' tables, for tests
that must not train: methods differ by known offsets, seeds add seeded noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LEARNERS = ("adsac", "hybrid-ppo", "ddpg", "d3qn", "ppo")
SWEEPS = {"5": ("n_iotds", (5.0, 10.0, 15.0)), "6": ("deadline_s", (1.5, 2.5, 3.5)),
          "7": ("accuracy_min", (0.3, 0.5, 0.7))}
_QUALITY = {"adsac": 1.0, "hybrid-ppo": 1.06, "ddpg": 1.09, "d3qn": 1.12, "ppo": 1.13,
            "random": 1.6, "greedy": 1.03, "optimizer": 0.9, "adsac-d": 1.07, "adsac-c": 1.12,
            "adsac-nompo": 1.04}


def _final_row(figure: str, method: str, x_name: str, x: float, seed: int,
               rng: np.random.Generator) -> dict[str, object]:
    q = _QUALITY[method]
    scale = 1.0 if np.isnan(x) else 1.0 + 0.05 * x
    latency = 1.4 * q * scale * (1 + 0.05 * rng.standard_normal())
    energy = 380.0 * q * scale * (1 + 0.05 * rng.standard_normal())
    uav = float(np.clip(0.8 - (0.0 if np.isnan(x) else 0.05 * x) + 0.02 * rng.standard_normal(),
                        0, 1))
    return {"figure": figure, "method": method, "x_name": x_name, "x": x, "seed": seed,
            "key": f"{figure}-{method}-{x}-{seed}", "latency_s": latency,
            "energy_j_per_slot": energy, "cost_per_slot": 10.0 * q * scale,
            "episode_return": -100.0 * q * (1 + 0.02 * rng.standard_normal()),
            "deadline_miss_rate": 0.1 * q, "uav_share": uav, "satellite_share": 1.0 - uav}


def finals(seeds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Final metrics of Figs. 3-8 (Fig. 5 and 7 with the per-slot optimiser)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for m in (*LEARNERS, "random", "greedy"):
            rows.append(_final_row("3", m, "none", np.nan, s, rng))
        for lr in (1e-4, 1e-3, 1e-2):
            rows.append(_final_row("4", "adsac", "critic_lr", lr, s, rng))
        for fig, (name, xs) in SWEEPS.items():
            extra = ("optimizer",) if fig in ("5", "7") else ()
            for m in (*LEARNERS, "random", *extra):
                rows.extend(_final_row(fig, m, name, x, s, rng) for x in xs)
        for m in ("adsac", "adsac-d", "adsac-c", "adsac-nompo"):
            rows.append(_final_row("8", m, "none", np.nan, s, rng))
    return pd.DataFrame(rows)


def curves(seeds: int = 5, seed: int = 0, points: int = 11) -> pd.DataFrame:
    """Evaluation-return curves of Fig. 3 (learners) and Fig. 4 (three critic lrs)."""
    rng = np.random.default_rng(seed)
    rows = []
    episodes = np.linspace(0, 200, points)
    cases = [("3", m, np.nan) for m in LEARNERS] + [("4", "adsac", lr)
                                                     for lr in (1e-4, 1e-3, 1e-2)]
    for figure, method, x in cases:
        rate = {1e-4: 0.3, 1e-2: 2.0}.get(x, 1.0)
        for s in range(seeds):
            for step, ep in enumerate(episodes):
                final = -100.0 * _QUALITY[method]
                value = final - 150.0 * np.exp(-rate * ep / 50.0) + 3 * rng.standard_normal()
                rows.append({"figure": figure, "method": method, "x": x, "seed": s,
                             "key": f"{figure}-{method}-{x}-{s}", "step": step * 100,
                             "episodes": ep, "eval/episode_return": value,
                             "train/episode_return": value + 10 * rng.standard_normal()})
    for method in ("random", "greedy"):  # built-in policies log one point, at step 0
        for s in range(seeds):
            rows.append({"figure": "3", "method": method, "x": np.nan, "seed": s,
                         "key": f"3-{method}-nan-{s}", "step": 0, "episodes": 0.0,
                         "eval/episode_return": -100.0 * _QUALITY[method]
                         + 3 * rng.standard_normal(), "train/episode_return": np.nan})
    return pd.DataFrame(rows)


def tasks(seeds: int = 5, seed: int = 0, per_seed: int = 200) -> pd.DataFrame:
    """Per-task latencies of Fig. 3's methods (deadline 3 s)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in (*LEARNERS, "random", "greedy"):
        for s in range(seeds):
            lat = rng.lognormal(np.log(1.4 * _QUALITY[m]), 0.4, per_seed)
            kind = np.where(rng.random(per_seed) < 0.7, "uav", "satellite")
            rows.append(pd.DataFrame({"figure": "3", "method": m, "x": np.nan, "seed": s,
                                      "latency_s": lat, "deadline_s": 3.0, "server_kind": kind}))
    return pd.concat(rows, ignore_index=True)


def write_sweep(out: Path, finals_table: pd.DataFrame, curves_table: pd.DataFrame,
                tasks_table: pd.DataFrame, preset: str = "quick") -> None:
    """Write the tables as a sweep directory (manifest and one result per run) through
    :mod:`satedge.experiments.results`, as the runner would, without running anything."""
    from satedge.experiments.results import MANIFEST_FILE, write_json_atomic, write_run_result

    manifest: dict[str, Any] = {"format": 1, "satedge_version": "0.1.0", "preset": preset,
                                "figures": {}, "runs": {},
                                "last_sweep": {"preset": preset, "backend": "local"}}
    for i, row in enumerate(finals_table.to_dict("records")):
        key = f"{i:016x}"
        x = None if np.isnan(row["x"]) else float(row["x"])
        match = (curves_table["figure"] == row["figure"]) & (
            curves_table["method"] == row["method"]) & (curves_table["seed"] == row["seed"]) & (
            np.isclose(curves_table["x"].fillna(-1.0), -1.0 if x is None else x))
        curve = curves_table.loc[match, ["step", "episodes", "eval/episode_return"]]
        if curve.empty:
            curve = pd.DataFrame({"step": [0], "episodes": [0], "eval/episode_return": [
                row["episode_return"]]})
        match = (tasks_table["figure"] == row["figure"]) & (
            tasks_table["method"] == row["method"]) & (tasks_table["seed"] == row["seed"])
        tasks = tasks_table.loc[match, ["latency_s", "deadline_s", "server_kind"]]
        kind = "policy" if row["method"] in ("random", "greedy", "optimizer") else "learner"
        metrics = {k: v for k, v in row.items() if k not in ("figure", "method", "x_name", "x",
                                                             "seed", "key")}
        write_run_result(out / "runs" / key, {
            "key": key, "figure": row["figure"], "method": row["method"], "kind": kind,
            "x_name": row["x_name"], "x": x, "seed": row["seed"], "metrics": metrics,
            "identity": {"episodes": 200 if kind == "learner" else 0, "eval_episodes": 10,
                         "scenario": {"episode_slots": 100}},
            "versions": {"satedge": "0.1.0", "numpy": np.__version__}},
            curve.reset_index(drop=True), tasks.reset_index(drop=True))
        figure = manifest["figures"].setdefault(row["figure"], {
            "preset": preset, "title": f"Fig. {row['figure']}", "x_name": row["x_name"],
            "runs": []})
        figure["runs"].append({"key": key, "method": row["method"], "x_name": row["x_name"],
                               "x": x, "seed": row["seed"]})
        manifest["runs"][key] = {"status": "done", "method": row["method"], "kind": kind,
                                 "seed": row["seed"]}
    write_json_atomic(out / MANIFEST_FILE, manifest)
