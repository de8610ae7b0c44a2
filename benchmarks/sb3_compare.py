"""Our PPO, D3QN and DDPG against Stable-Baselines3's reference PPO, DQN and DDPG (issue 4).

Run from a fresh clone (one command; SB3 is a development-only extra, never needed by the library):

    pip install -e ".[bench]" && python benchmarks/sb3_compare.py

Options: ``--seeds 0 1 2 3 4`` (training seeds), ``--episodes 400`` (training episodes per run),
``--algos ppo d3qn ddpg`` (ours; each is paired with its SB3 counterpart), ``--preset default``,
``--eval-episodes 8``, ``--learning-starts N`` (off-policy warm-up, both sides), ``--runs DIR``
(keep our run directories, so an interrupted comparison resumes), ``--out results.json``.

What is compared, pair by pair (each SB3 learner trains on a wrapper of
:mod:`satedge.envs.wrappers`):

=====  ===========================  ==========================================================
ours   SB3 reference                environment seen by SB3
=====  ===========================  ==========================================================
ppo    ``PPO("MlpPolicy")``         ``DiscretisedAction`` (our PPO's power levels and moves)
d3qn   ``DQN("MlpPolicy")``         ``FlatDiscrete`` on a tiny scenario (below)
ddpg   ``DDPG("MlpPolicy")``        ``ContinuousRelaxation``
=====  ===========================  ==========================================================

Matched budgets. Every setting that both implementations have is taken from OUR resolved
configuration (``satedge.agents.registry`` presets plus loop presets) and given to SB3: total
environment steps (``episodes x episode_slots``), parallel environments, hidden layers and
activation, batch (minibatch) size, gamma, learning rate, replay size, warm-up, gradient steps
per environment step, target-network averaging per gradient step, exploration noise and
schedule, PPO's rollout length, epochs, clip ranges, entropy and value coefficients, gradient
clipping and reward normalisation (SB3 ``VecNormalize(norm_reward=True)``). The settings used
are printed and saved. Training environments use the same seeds (``make_seeds(seed).env``
expanded as the vector environment does), and both sides are evaluated by the same function
(:func:`satedge.experiments.evaluate.evaluate`, deterministic actions) on the same held-out
seeds (``make_seeds(seed).eval[0]``, ``--eval-episodes`` episodes).

Known differences (inherent, not tuning):

- SB3's PPO and DQN cannot mask actions: infeasible servers are passed to the environment,
  which fails and penalises the task (the wrappers' documented contract); ours mask. This is a
  handicap for SB3, so "ours is at least as good" is the minimum to expect.
- DQN needs one ``Discrete`` action: the pair runs on the preset ``small`` with K = 3 IoTDs,
  2 power levels and hovering UAVs (1,000 joint actions, ``DQN_SCENARIO``); our D3QN runs on the
  same scenario with the same discretisation. SB3's DQN is neither double nor dueling and its
  network has no per-branch layers; ours is a branching dueling double DQN.
- SB3's DDPG has one learning rate for actor and critic: it gets our critic's rate. Its critic
  sees the actor's raw scores; ours the executed server's canonical scores.
- SB3's PPO clips the value prediction (no max with the unclipped loss as ours / CleanRL).
- DQN's epsilon schedule in SB3 runs over all steps including warm-up; it is set to end where
  ours ends (warm-up plus our decay length).

Output: per pair, for ours and SB3, the final cost per slot and the negative reward per slot
(means over seeds with 95 % Student-t intervals), latency, energy, failure rate (infeasible
server, deadline, visibility), training wall time and environment steps; then the ratios ours /
SB3 of both means with paired percentile-bootstrap 95 % intervals over seeds (below 1: ours is
better); and the masked random and greedy policies on the same evaluation seeds for scale. The
cost counts executed tasks only, so a policy that fails tasks can have a low cost: read it with
the failure rate and the negative reward, which includes the failure penalties. ``--out`` saves
settings and per-seed results as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from env_step import cpu_model  # benchmarks/ is on sys.path when a script in it runs
from satedge.agents.common.offpolicy import OffPolicyConfig
from satedge.agents.common.onpolicy import OnPolicyConfig
from satedge.agents.common.seeding import make_seeds
from satedge.agents.heuristics import make_policy
from satedge.agents.registry import algorithm_spec
from satedge.envs import MllmOffloadEnv, spawn_seeds
from satedge.envs.encoding import ObservationEncoder
from satedge.envs.wrappers import (
    ContinuousRelaxation,
    DiscretisedAction,
    FlatDiscrete,
    heads_to_action,
    relaxed_to_action,
)
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario, resolve
from satedge.sim.state import SlotState

SB3_NAME = {"ppo": "PPO", "d3qn": "DQN", "ddpg": "DDPG"}
DQN_SCENARIO = ("small", ("n_iotds=3",))
"""Preset and overrides of the DQN pair: S^K P^K D^M = 5^3 x 2^3 x 1^2 = 1,000 joint actions."""
DQN_DISCRETISATION = {"power_levels": 2, "uav_directions": 1}


# -- settings -----------------------------------------------------------------------------
def our_settings(algo: str, episodes: int, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Our resolved (agent config, loop config) of ``algo`` with ``overrides``, as
    :func:`satedge.experiments.train.train` resolves them."""
    spec = algorithm_spec(algo)
    loop_cls = OnPolicyConfig if spec.loop == "on_policy" else OffPolicyConfig
    loop_keys = {f.name for f in dataclasses.fields(loop_cls)}
    merged = {**spec.loop_preset, **overrides}
    loop = loop_cls(episodes=episodes, **{k: v for k, v in merged.items() if k in loop_keys})
    agent = spec.config_cls(**{**spec.preset,
                               **{k: v for k, v in merged.items() if k not in loop_keys}})
    return agent, loop


def sb3_settings(algo: str, agent: Any, loop: Any, total_steps: int,
                 scenario: Scenario) -> dict[str, Any]:
    """Keyword arguments of the SB3 counterpart matched to our settings (JSON-able; the noise
    and network classes are added by :func:`build_sb3`)."""
    hidden = list(agent.hidden)
    if algo == "ppo":
        return {"learning_rate": agent.lr, "n_steps": loop.n_steps,
                "batch_size": loop.minibatch_size, "n_epochs": loop.epochs, "gamma": loop.gamma,
                "gae_lambda": loop.gae_lambda, "clip_range": agent.clip_range,
                "clip_range_vf": agent.clip_range_vf, "normalize_advantage":
                agent.normalize_advantage, "ent_coef": agent.ent_coef, "vf_coef": agent.vf_coef,
                "max_grad_norm": agent.max_grad_norm,
                "policy_kwargs": {"net_arch": {"pi": hidden, "vf": hidden},
                                  "optimizer_kwargs": {"eps": agent.adam_eps}}}
    grad_steps = round(loop.updates_per_transition * loop.n_envs)
    common = {"buffer_size": loop.buffer_size, "learning_starts": loop.learning_starts,
              "batch_size": loop.batch_size, "gamma": agent.gamma, "train_freq": 1,
              "gradient_steps": grad_steps, "policy_kwargs": {"net_arch": hidden}}
    if algo == "ddpg":
        k, s, m = scenario.n_iotds, scenario.n_servers, scenario.n_uavs
        noise = [agent.score_noise] * (k * s) + [agent.action_noise] * (k + 2 * m)
        return {**common, "learning_rate": agent.critic_lr, "tau": agent.tau,
                "action_noise_sigma": noise}
    # DQN: ours averages the target every target_period gradient steps, SB3 once per
    # target_update_interval environment steps (counted over all envs): same rate per step
    per_vec_step = grad_steps / agent.target_period
    tau, interval = ((1 - (1 - agent.tau) ** per_vec_step, loop.n_envs) if per_vec_step >= 1
                     else (agent.tau, round(loop.n_envs / per_vec_step)))
    decay_end = loop.learning_starts + agent.eps_decay_transitions
    return {**common, "learning_rate": agent.lr, "tau": tau, "target_update_interval": interval,
            "exploration_initial_eps": agent.eps_start, "exploration_final_eps": agent.eps_end,
            "exploration_fraction": min(1.0, decay_end / total_steps),
            "max_grad_norm": agent.max_grad_norm}


def make_env(algo: str, scenario: Scenario, agent: Any) -> Any:
    """One training environment of the SB3 learner, wrapped for its action space."""
    env = MllmOffloadEnv(scenario)
    if algo == "ppo":
        return DiscretisedAction(env, agent.power_levels, agent.uav_directions)
    if algo == "d3qn":
        return FlatDiscrete(env, agent.power_levels, agent.uav_directions)
    return ContinuousRelaxation(env)


def _constant(env: Any) -> Callable[[], Any]:
    """An environment factory for ``DummyVecEnv`` returning an already seeded environment."""
    return lambda: env


def build_sb3(algo: str, scenario: Scenario, agent: Any, loop: Any, seed: int,
              total_steps: int) -> tuple[Any, dict[str, Any]]:
    """The SB3 model (untrained) on ``loop.n_envs`` seeded environments, and its settings."""
    from stable_baselines3 import DDPG, DQN, PPO
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    from torch import nn

    seeds = make_seeds(seed)
    envs = [make_env(algo, scenario, agent) for _ in range(loop.n_envs)]
    for env, s in zip(envs, spawn_seeds(seeds.env, loop.n_envs), strict=True):
        env.reset(seed=s)  # as our vector env seeds its sub-environments; SB3's reset keeps it
    venv: Any = DummyVecEnv([_constant(e) for e in envs])
    settings = sb3_settings(algo, agent, loop, total_steps, scenario)
    kwargs: dict[str, Any] = {k: v for k, v in settings.items() if k != "action_noise_sigma"}
    sb3_seed = seeds.torch % 2**32  # SB3 also seeds numpy's legacy global RNG (32 bits)
    set_random_seed(sb3_seed)  # torch, numpy's and Python's global RNGs (SB3 uses them)
    common: dict[str, Any] = {"device": "cpu", "verbose": 0, "seed": None}
    if algo == "ppo":
        if loop.normalize_reward:
            venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=loop.gamma,
                                clip_reward=10.0)
        settings["reward_normalisation"] = bool(loop.normalize_reward)
        kwargs["policy_kwargs"] = {**kwargs["policy_kwargs"], "activation_fn": nn.Tanh}
        model: Any = PPO("MlpPolicy", venv, **kwargs, **common)
    elif algo == "d3qn":
        kwargs["policy_kwargs"] = {**kwargs["policy_kwargs"], "activation_fn": nn.ReLU}
        model = DQN("MlpPolicy", venv, **kwargs, **common)
    else:
        sigma = np.asarray(settings["action_noise_sigma"])
        dim = sigma.size
        kwargs["policy_kwargs"] = {**kwargs["policy_kwargs"], "activation_fn": nn.ReLU}
        model = DDPG("MlpPolicy", venv, action_noise=NormalActionNoise(np.zeros(dim), sigma),
                     **kwargs, **common)
    model.action_space.seed(sb3_seed)  # warm-up actions
    return model, settings


# -- evaluation ---------------------------------------------------------------------------
class Sb3Policy:
    """A trained SB3 model seen through the policy interface of ``evaluate``: it encodes the
    state as the environment does, predicts deterministically, and maps the flat action to the
    environment's action exactly as the training wrapper did."""

    def __init__(self, model: Any, to_env: Callable[[Any, Any], dict[str, Any]]) -> None:
        self.model, self.to_env = model, to_env
        self._encoders: dict[int, ObservationEncoder] = {}

    def act(self, network: EdgeNetwork, state: SlotState,
            rng: np.random.Generator) -> dict[str, Any]:
        enc = self._encoders.setdefault(id(network), ObservationEncoder(network))
        action, _ = self.model.predict(enc(state), deterministic=True)
        return self.to_env(np.asarray(action), state.mask)


def action_mapper(algo: str, scenario: Scenario, agent: Any) -> Callable[[Any, Any], Any]:
    """Batched flat action -> environment action, the same mapping as the training wrapper."""
    wrapper = make_env(algo, scenario, agent)
    if algo == "ppo":
        return lambda a, mask: heads_to_action(wrapper.action_spec, a)
    if algo == "d3qn":
        return lambda a, mask: heads_to_action(wrapper.action_spec, wrapper.heads(a))
    k, s, m = scenario.n_iotds, scenario.n_servers, scenario.n_uavs
    return lambda a, mask: relaxed_to_action(k, s, m, a, mask)


# -- one pair, one seed -------------------------------------------------------------------
def run_pair(algo: str, scenario: Scenario, seed: int, episodes: int, eval_episodes: int,
             overrides: dict[str, Any], runs: Path) -> dict[str, Any]:
    """Train ours and SB3's counterpart with ``seed``; evaluate both on the same seeds."""
    agent, loop = our_settings(algo, episodes, overrides)
    total_steps = episodes * scenario.episode_slots
    eval_seed = make_seeds(seed).eval[0]
    out: dict[str, Any] = {"seed": seed, "eval_seed": eval_seed, "env_steps": total_steps}

    run_dir = runs / f"{algo}-seed{seed}"
    t0 = time.perf_counter()
    train(algo, scenario, seed, episodes, run_dir, overrides=overrides, progress=False)
    out["ours_train_s"] = time.perf_counter() - t0
    summary = json.loads((run_dir / "summary.json").read_text())
    out["ours_env_steps"] = int(summary["env_steps"]) * loop.n_envs
    ours, _ = load_trained_agent(run_dir)
    out["ours"] = evaluate(AgentPolicy(ours), scenario, eval_episodes, eval_seed)

    model, settings = build_sb3(algo, scenario, agent, loop, seed, total_steps)
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_steps, progress_bar=False)
    out["sb3_train_s"] = time.perf_counter() - t0
    out["sb3_env_steps"] = int(model.num_timesteps)
    policy = Sb3Policy(model, action_mapper(algo, scenario, agent))
    out["sb3"] = evaluate(policy, scenario, eval_episodes, eval_seed)
    out["settings"] = {"ours_agent": dataclasses.asdict(agent),
                       "ours_loop": dataclasses.asdict(loop), "sb3": settings}
    return out


# -- statistics and table -----------------------------------------------------------------
def mean_ci(x: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t interval (0 for one value)."""
    from scipy import stats

    a = np.asarray(x, dtype=float)
    if a.size < 2:
        return float(a.mean()), 0.0
    return float(a.mean()), float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1)
                                  / math.sqrt(a.size))


def ratio_ci(ours: list[float], sb3: list[float], n_boot: int = 10_000) -> tuple[float, float,
                                                                                   float]:
    """mean(ours) / mean(sb3) and a paired percentile-bootstrap 95 % interval over seeds."""
    a, b = np.asarray(ours, float), np.asarray(sb3, float)
    idx = np.random.default_rng(0).integers(0, a.size, (n_boot, a.size))
    boot = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(a.mean() / b.mean()), float(lo), float(hi)


def _column(rows: list[dict[str, Any]], side: str, key: str) -> list[float]:
    if key == "neg_reward_per_slot":
        return [-r[side]["reward_per_slot"] for r in rows]
    if key == "fail_rate":
        return [r[side]["infeasible_rate"] + r[side]["deadline_miss_rate"]
                + r[side]["visibility_fail_rate"] for r in rows]
    return [r[side][key] for r in rows]


def print_table(results: dict[str, list[dict[str, Any]]],
                references: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Print the comparison; returns the summary (means, intervals, ratios) per pair."""
    keys = ("cost_per_slot", "neg_reward_per_slot", "latency_s", "energy_j_per_slot",
            "fail_rate")
    print(f"{'pair':<10}{'side':<6}{'cost/slot':>20}{'-reward/slot':>20}{'latency s':>11}"
          f"{'J/slot':>9}{'fail rate':>11}{'train s':>9}{'env steps':>11}")
    summary: dict[str, Any] = {}
    for algo, rows in results.items():
        entry: dict[str, Any] = {}
        for side, label in (("ours", "ours"), ("sb3", "SB3")):
            stats = {key: mean_ci(_column(rows, side, key)) for key in keys}
            train_s = float(np.mean([r[f"{side}_train_s"] for r in rows]))
            steps = int(np.mean([r[f"{side}_env_steps"] for r in rows]))
            pair = f"{algo}/{SB3_NAME[algo]}" if side == "ours" else ""
            print(f"{pair:<10}{label:<6}"
                  + "".join(f"{stats[k][0]:>11.3f} ± {stats[k][1]:<6.3f}" for k in keys[:2])
                  + f"{stats['latency_s'][0]:>11.3f}{stats['energy_j_per_slot'][0]:>9.1f}"
                  f"{stats['fail_rate'][0]:>11.3f}{train_s:>9.1f}{steps:>11}")
            entry[side] = {"mean_ci95": stats, "train_s": train_s, "env_steps": steps}
        ratios = {k: ratio_ci(_column(rows, "ours", k), _column(rows, "sb3", k))
                  for k in keys[:2]}
        print(f"{'':<10}{'ratio':<6}  ours / SB3 (paired bootstrap 95 % CI over {len(rows)} "
              "seeds; < 1: ours better): "
              + "; ".join(f"{k} {r:.3f} [{lo:.3f}, {hi:.3f}]"
                          for k, (r, lo, hi) in ratios.items()))
        entry["ratio_ours_over_sb3"] = ratios
        summary[algo] = entry
    for name, by_scenario in references.items():
        line = "; ".join(f"{scen}: cost/slot {v['cost_per_slot']:.3f}, -reward/slot "
                         f"{v['neg_reward_per_slot']:.3f}" for scen, v in by_scenario.items())
        print(f"reference {name:<7} on the same evaluation seeds ({line})")
    return summary


def scenario_of(algo: str, preset: str) -> Scenario:
    return resolve(*DQN_SCENARIO) if algo == "d3qn" else resolve(preset)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--episodes", type=int, default=400,
                   help="training episodes per run (a multiple of every loop's n_envs)")
    p.add_argument("--algos", nargs="+", default=list(SB3_NAME), choices=list(SB3_NAME))
    p.add_argument("--preset", default="default", help="scenario of the ppo and ddpg pairs")
    p.add_argument("--eval-episodes", type=int, default=8)
    p.add_argument("--learning-starts", type=int, default=None,
                   help="off-policy warm-up transitions for both sides (default: ours)")
    p.add_argument("--runs", type=Path, default=None, help="keep our run directories here")
    p.add_argument("--out", type=Path, default=None, help="write settings and results (JSON)")
    args = p.parse_args(argv)
    try:
        import stable_baselines3
    except ImportError:
        sys.exit("stable-baselines3 is missing: pip install -e '.[bench]'")
    import torch

    torch.set_num_threads(1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical "
          f"CPUs; python {platform.python_version()}, torch {torch.__version__}, SB3 "
          f"{stable_baselines3.__version__}; seeds {args.seeds}, {args.episodes} episodes")
    with tempfile.TemporaryDirectory(prefix="sb3_compare_") as tmp:
        compare(args, args.runs or Path(tmp))


def compare(args: argparse.Namespace, runs: Path) -> None:
    """Train and evaluate every pair over every seed; print and optionally save the results."""
    results: dict[str, list[dict[str, Any]]] = {}
    references: dict[str, dict[str, dict[str, float]]] = {"random": {}, "greedy": {}}
    for algo in args.algos:
        scenario = scenario_of(algo, args.preset)
        overrides: dict[str, Any] = {"eval_every_episodes": args.episodes, "eval_episodes": 1}
        if algo == "d3qn":
            overrides.update(DQN_DISCRETISATION)
        if args.learning_starts is not None and algo != "ppo":
            overrides["learning_starts"] = args.learning_starts
        label = "small, K=3" if algo == "d3qn" else args.preset
        for seed in args.seeds:
            t0 = time.perf_counter()
            row = run_pair(algo, scenario, seed, args.episodes, args.eval_episodes, overrides,
                           runs)
            results.setdefault(algo, []).append(row)
            print(f"  {algo}/{SB3_NAME[algo]} seed {seed}: cost/slot ours "
                  f"{row['ours']['cost_per_slot']:.3f}, SB3 {row['sb3']['cost_per_slot']:.3f} "
                  f"({row['ours_env_steps']} / {row['sb3_env_steps']} env steps, "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)
        for name in references:
            evals = [evaluate(make_policy(name), scenario, args.eval_episodes,
                              make_seeds(s).eval[0]) for s in args.seeds]
            references[name][label] = {
                "cost_per_slot": float(np.mean([e["cost_per_slot"] for e in evals])),
                "neg_reward_per_slot": -float(np.mean([e["reward_per_slot"] for e in evals]))}
        print(f"settings {algo}: {json.dumps(results[algo][0]['settings']['sb3'])}")
    summary = print_table(results, references)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "summary": summary, "references": references,
                                        "runs": results}, indent=1, default=str))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
