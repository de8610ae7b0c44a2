"""Training throughput against Stable-Baselines3 and against the machine's own matmul speed.

Run from a fresh clone (one command; SB3 is a development-only extra):

    pip install -e ".[bench]" && python benchmarks/train_throughput.py [--quick] [--profile]

What it prints (issue 7), every ratio measured side by side in one process, one torch thread:

1. **AD-SAC vs SB3 SAC**: environment steps per second of training with one gradient update per
   environment step, batch 128, two hidden layers of 256, one environment (default scenario).
   Ours is AD-SAC exactly as trained (both agents, MPO step, unavailable-action samples); SB3's
   SAC trains on :class:`~satedge.envs.wrappers.ContinuousRelaxation` with the same sizes, batch,
   replay size, gamma and update ratio. AD-SAC does more work per update than SAC (two agents,
   an MPO E-step over 16 sampled actions per state), which the FLOP counts below quantify.
2. **Our PPO vs SB3 PPO** on :class:`~satedge.envs.wrappers.DiscretisedAction`: the same rollout
   length, environments, epochs, minibatch, network and reward normalisation (our PPO's
   defaults); a window is whole rollout-and-update iterations.
3. **Matmul roofline of one AD-SAC update**: its FLOPs (``torch.utils.flop_counter``; matrix
   products forward and backward), the machine's single-thread matmul GFLOP/s at the networks'
   layer shapes (forward ``[B, in] x [in, out]`` and both backward products, B = 128 and the MPO
   E-step's 16 x 128), and the fraction of the machine's matmul speed one update reaches: the
   update's own matrix products, recorded and replayed back to back, against the whole update,
   timed alternately.
4. **Memory**: peak resident set size of a short default ``satedge`` training run (a child
   process) and the replay buffer's bytes per transition (``ReplayBuffer.nbytes_per_transition``).

Method. Every comparison alternates short timed windows of its two contenders after a warm-up
(the replay buffer filled past ``learning_starts``), so load from other processes falls on both
alike; a window's length in steps is calibrated to last about ``--window-s`` seconds. Reported:
median steps per second over the rounds, and the median of the per-round ratios. Our training
step is the body of :func:`satedge.agents.common.offpolicy.train_off_policy` (act, environment
step, replay adds, unavailable samples, sample and update) without its checkpointing and
logging; the end-to-end speed of the library loop, checkpoints included, is printed from the
memory run's metrics.

``--profile`` runs torch.profiler over a few AD-SAC updates and prints the top operators.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from env_step import cpu_model  # benchmarks/ is on sys.path when a script in it runs
from satedge.agents.adsac import AdSac
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.offpolicy import collect, sample_seeds, uniform_actions
from satedge.agents.common.onpolicy import OnPolicyConfig, ReturnNormaliser, learn, rollout_step
from satedge.agents.common.protocol import AgentAction
from satedge.agents.common.seeding import make_seeds
from satedge.agents.registry import algorithm_spec, build_agent
from satedge.envs import MllmOffloadEnv, MllmOffloadVectorEnv, spawn_seeds
from satedge.envs.encoding import observation_size
from satedge.envs.wrappers import ContinuousRelaxation, DiscretisedAction
from satedge.sim.scenario import Scenario, resolve

ATEN = torch.ops.aten
MATMULS = (ATEN.mm.default, ATEN.addmm.default, ATEN.bmm.default)


# -- our training steps -------------------------------------------------------------------
class OffPolicyStepper:
    """AD-SAC's training step (the off-policy loop's body: act, ``collect``, one update per
    environment transition), warmed up past ``learning_starts`` with uniform actions.

    ``n_seeds > 1`` trains seeds ``seed ... seed + n_seeds - 1`` seed-batched (stacked
    networks, ``n_envs`` environments each), as ``train_seeds`` does."""

    def __init__(self, scenario: Scenario, seed: int, learning_starts: int, n_seeds: int = 1,
                 n_envs: int = 1, overrides: dict[str, Any] | None = None) -> None:
        sc = self.sc = scenario
        k, s, self.cont = sc.n_iotds, sc.n_servers, sc.n_iotds + 2 * sc.n_uavs
        all_seeds = [make_seeds(seed + i) for i in range(n_seeds)]
        agents = [build_agent("adsac", observation_size(sc), k, s, self.cont, x.torch,
                              overrides) for x in all_seeds]
        cfg = agents[0][1]
        self.agent = agents[0][0] if n_seeds == 1 else \
            AdSac.seed_batched([cast(AdSac, a) for a, _ in agents])
        self.batch_size, self.unavailable = cfg["batch_size"], cfg["unavailable_samples"]
        self.buffers = [ReplayBuffer(cfg["buffer_size"], observation_size(sc), k, s,
                                     self.cont) for _ in all_seeds]
        self.n_envs = n_envs
        self.env = MllmOffloadVectorEnv(n_seeds * n_envs, sc)
        self.rngs = [x.buffer for x in all_seeds]
        self.blocks = [slice(i * n_envs, (i + 1) * n_envs) for i in range(n_seeds)]
        self.obs, self.info = self.env.reset(
            seed=[e for x in all_seeds for e in spawn_seeds(x.env, n_envs)])
        while min(len(b) for b in self.buffers) < max(learning_starts, self.batch_size):
            self._transition(uniform_actions(self.info["action_mask"], self.cont, self.rngs,
                                             self.blocks))

    @property
    def buffer(self) -> ReplayBuffer:
        return self.buffers[0]

    @property
    def rng(self) -> np.random.Generator:
        return self.rngs[0]

    def _transition(self, action: AgentAction) -> None:
        self.obs, _, _, self.info = collect(self.env, self.obs, self.info["action_mask"], action,
                                            self.buffers, self.rngs, self.unavailable)

    def run(self, steps: int) -> int:
        """``steps`` vector steps; returns the environment transitions per seed."""
        for _ in range(steps):
            self._transition(self.agent.act(self.obs, self.info["action_mask"]))
            for _ in range(self.n_envs):
                self.agent.update(sample_seeds(self.buffers, self.batch_size, self.rngs))
        return steps * self.n_envs


class OnPolicyStepper:
    """Our PPO's training iterations (the on-policy loop's ``rollout_step`` and ``learn``): whole
    rollouts of
    ``n_steps x n_envs`` environment steps, each followed by its epochs of minibatch updates."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.sc = scenario
        preset = algorithm_spec("ppo").loop_preset
        n_envs = preset.get("n_envs", OnPolicyConfig.n_envs)
        self.cfg = OnPolicyConfig(**{"episodes": n_envs, **preset})  # episodes: unused here
        cfg, seeds = self.cfg, make_seeds(seed)
        self.agent: Any = build_agent("ppo", observation_size(scenario), scenario.n_iotds,
                                      scenario.n_servers, scenario.n_iotds + 2 * scenario.n_uavs,
                                      seeds.torch)[0]
        self.buffer = self.agent.rollout_buffer(cfg.n_steps, cfg.n_envs)
        self.norm = ReturnNormaliser(cfg.n_envs, cfg.gamma, cfg.normalize_reward)
        self.env = MllmOffloadVectorEnv(cfg.n_envs, scenario)
        self.rng = seeds.buffer
        self.sums: dict[str, float] = {}
        self.counters = {"updates": 0}
        self.obs, self.info = self.env.reset(seed=seeds.env)

    @property
    def rollout_steps(self) -> int:
        return self.cfg.n_steps * self.cfg.n_envs

    def run(self, steps: int) -> int:
        done = 0
        while done < steps:
            for _ in range(self.cfg.n_steps):
                self.obs, _, _, _, self.info = rollout_step(
                    self.agent, self.env, self.obs, self.info["action_mask"], self.buffer,
                    self.norm, self.sc.n_iotds, self.sc.n_uavs)
            learn(self.agent, self.buffer, self.cfg, self.obs, self.rng, self.sums,
                  self.counters)
            done += self.rollout_steps
        return done


class Sb3Stepper:
    """An SB3 model trained in windows: ``learn(n, reset_num_timesteps=False)`` continues."""

    def __init__(self, model: Any, warmup_steps: int) -> None:
        self.model = model
        model.learn(total_timesteps=warmup_steps, progress_bar=False)

    def run(self, steps: int) -> int:
        before = self.model.num_timesteps
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False, progress_bar=False)
        return int(self.model.num_timesteps - before)


def _seeded_envs(make: Callable[[], Any], n: int, seed: int) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv

    envs = [make() for _ in range(n)]
    for env, s in zip(envs, spawn_seeds(make_seeds(seed).env, n), strict=True):
        env.reset(seed=s)
    return DummyVecEnv([_constant(e) for e in envs])


def _constant(env: Any) -> Callable[[], Any]:
    """An environment factory for ``DummyVecEnv`` returning an already seeded environment."""
    return lambda: env


def sb3_sac(scenario: Scenario, seed: int, adsac_cfg: dict[str, Any]) -> Any:
    """SB3 SAC with AD-SAC's sizes, batch, replay size, gamma, tau and update ratio."""
    from stable_baselines3 import SAC

    venv = _seeded_envs(lambda: ContinuousRelaxation(MllmOffloadEnv(scenario)), 1, seed)
    return SAC("MlpPolicy", venv, buffer_size=adsac_cfg["buffer_size"],
               batch_size=adsac_cfg["batch_size"], gamma=adsac_cfg["gamma"],
               tau=adsac_cfg["tau"], learning_rate=adsac_cfg["critic_lr"], train_freq=1,
               gradient_steps=1, learning_starts=adsac_cfg["learning_starts"],
               policy_kwargs={"net_arch": list(adsac_cfg["hidden"])}, device="cpu",
               seed=make_seeds(seed).torch % 2**32, verbose=0)


def sb3_ppo(scenario: Scenario, seed: int, loop: OnPolicyConfig, agent_cfg: Any) -> Any:
    """SB3 PPO with our PPO's rollout, epochs, minibatch, network and reward normalisation."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    venv = _seeded_envs(lambda: DiscretisedAction(MllmOffloadEnv(scenario),
                                                  agent_cfg.power_levels,
                                                  agent_cfg.uav_directions), loop.n_envs, seed)
    if loop.normalize_reward:
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=loop.gamma)
    hidden = list(agent_cfg.hidden)
    return PPO("MlpPolicy", venv, learning_rate=agent_cfg.lr, n_steps=loop.n_steps,
               batch_size=loop.minibatch_size, n_epochs=loop.epochs, gamma=loop.gamma,
               gae_lambda=loop.gae_lambda, clip_range=agent_cfg.clip_range,
               clip_range_vf=agent_cfg.clip_range_vf, ent_coef=agent_cfg.ent_coef,
               vf_coef=agent_cfg.vf_coef, max_grad_norm=agent_cfg.max_grad_norm,
               policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden},
                              "activation_fn": torch.nn.Tanh}, device="cpu",
               seed=make_seeds(seed).torch % 2**32, verbose=0)


# -- side-by-side timing ------------------------------------------------------------------
def interleave(a: Any, b: Any, rounds: int, window_s: float, granularity: tuple[int, int] = (1, 1)
               ) -> tuple[list[float], list[float]]:
    """Steps per second of ``a`` and ``b`` over ``rounds`` alternating windows of about
    ``window_s`` seconds each (window lengths calibrated once, in multiples of
    ``granularity``)."""
    sizes = []
    for runner, g in zip((a, b), granularity, strict=True):
        t0 = time.perf_counter()
        n = runner.run(g)
        rate = n / (time.perf_counter() - t0)
        sizes.append(max(g, int(rate * window_s) // g * g))
    rates: tuple[list[float], list[float]] = ([], [])
    for r in range(rounds):
        order = ((0, a), (1, b)) if r % 2 == 0 else ((1, b), (0, a))
        for i, runner in order:
            t0 = time.perf_counter()
            n = runner.run(sizes[i])
            rates[i].append(n / (time.perf_counter() - t0))
    return rates


def report_ratio(name_a: str, name_b: str, rates: tuple[list[float], list[float]]) -> dict[
        str, float]:
    ra, rb = np.asarray(rates[0]), np.asarray(rates[1])
    ratios = ra / rb
    print(f"  {name_a}: {np.median(ra):9.1f} env steps/s (rounds: "
          f"{' '.join(f'{x:.1f}' for x in ra)})")
    print(f"  {name_b}: {np.median(rb):9.1f} env steps/s (rounds: "
          f"{' '.join(f'{x:.1f}' for x in rb)})")
    print(f"  ratio {name_a} / {name_b}: {np.median(ratios):.3f} (median of per-round ratios; "
          f"range {ratios.min():.3f}-{ratios.max():.3f})")
    return {"ours_steps_per_s": float(np.median(ra)), "sb3_steps_per_s": float(np.median(rb)),
            "ratio": float(np.median(ratios))}


# -- matmul roofline ----------------------------------------------------------------------
class MatmulRecorder(TorchDispatchMode):
    """Records every matrix product (op, operand shapes and strides) that runs inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, list[tuple[tuple[int, ...], tuple[int, ...]]]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if func in MATMULS:
            self.calls.append((func, [(tuple(t.shape), tuple(t.stride())) for t in args
                                      if isinstance(t, torch.Tensor)]))
        return func(*args, **(kwargs or {}))


def matmul_flops(calls: list[tuple[Any, list[tuple[tuple[int, ...], tuple[int, ...]]]]]) -> int:
    """2 m n k summed over recorded products (addmm's bias add not counted)."""
    total = 0
    for func, shapes in calls:
        a, b = shapes[-2][0], shapes[-1][0]
        batch = a[0] if func is ATEN.bmm.default else 1
        total += 2 * batch * a[-2] * a[-1] * b[-1]
    return total


def replay(calls: list[tuple[Any, list[tuple[tuple[int, ...], tuple[int, ...]]]]]
           ) -> Callable[[], None]:
    """A function running the recorded products back to back on random operands of the same
    shapes and memory layouts."""
    gen = torch.Generator().manual_seed(0)
    prepared = []
    for func, shapes in calls:
        ts = []
        for shape, stride in shapes:
            t = torch.empty_strided(shape, stride)
            t.copy_(torch.randn(shape, generator=gen))
            ts.append(t)
        prepared.append((func, ts))

    def run() -> None:
        for func, ts in prepared:
            func(*ts)

    return run


def layer_gflops(in_out: list[tuple[int, int]], rows: int, repeats: int) -> list[tuple[Any, ...]]:
    """Single-thread GFLOP/s of forward ``[rows, in] x [in, out]`` (with bias) and backward
    (``dY W`` and ``dY^T X``) for each layer shape; best of ``repeats``."""
    out = []
    for fan_in, fan_out in sorted(set(in_out)):
        x, w = torch.randn(rows, fan_in), torch.randn(fan_out, fan_in)
        bias, dy = torch.randn(fan_out), torch.randn(rows, fan_out)
        flops = 2 * rows * fan_in * fan_out
        fwd = _best(partial(torch.addmm, bias, x, w.T), repeats)
        bwd = _best(partial(_backward_products, x, w, dy), repeats)
        out.append((rows, fan_in, fan_out, flops / fwd / 1e9, 2 * flops / bwd / 1e9))
    return out


def _backward_products(x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor) -> None:
    """The two products of a linear layer's backward pass: ``dX = dY W``, ``dW = dY^T X``."""
    dy @ w
    dy.T @ x


def _best(fn: Callable[[], Any], repeats: int, inner: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def roofline(stepper: OffPolicyStepper, pairs: int) -> dict[str, Any]:
    """FLOPs of one AD-SAC update and the fraction of the machine's matmul speed it reaches."""
    agent, rng = stepper.agent, stepper.rng
    batch: ReplayBatch = stepper.buffer.sample(stepper.batch_size, rng)
    with FlopCounterMode(display=False) as counter:
        agent.update(batch)
    recorder = MatmulRecorder()
    with recorder:
        agent.update(batch)
    flops, recorded = counter.get_total_flops(), matmul_flops(recorder.calls)
    run_products = replay(recorder.calls)
    t_update, t_replay = [], []
    for _ in range(pairs):  # alternate so that load falls on both alike
        b = stepper.buffer.sample(stepper.batch_size, rng)
        t0 = time.perf_counter()
        agent.update(b)
        t_update.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_products()
        t_replay.append(time.perf_counter() - t0)
    tu, tr = float(np.median(t_update)), float(np.median(t_replay))
    fractions = np.asarray(t_replay) / np.asarray(t_update)
    linears = [(m.in_features, m.out_features) for m in
               (*agent.actor_d, *agent.actor_c, *agent.critics[0].net)
               if isinstance(m, torch.nn.Linear)]
    return {"flops": flops, "recorded_flops": recorded, "n_products": len(recorder.calls),
            "update_s": tu, "products_s": tr, "update_gflops": flops / tu / 1e9,
            "machine_gflops": recorded / tr / 1e9, "fraction": float(np.median(fractions)),
            "linears": linears}


# -- memory -------------------------------------------------------------------------------
RSS_CHILD = """
import json, resource, sys
from satedge.experiments.train import train
from satedge.sim.scenario import resolve
episodes, learning_starts, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
train("adsac", resolve("default"), 0, episodes, out, progress=False,
      overrides={"learning_starts": learning_starts, "eval_episodes": 1})
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def peak_rss(episodes: int, learning_starts: int) -> dict[str, Any]:
    """Peak RSS of a short default AD-SAC training run in a child process, and the library
    loop's own end-to-end steps per second from its metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", RSS_CHILD, str(episodes),
                              str(learning_starts), str(run)], check=True,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rss_kb = json.loads(res.stdout.strip().splitlines()[-1])["maxrss_kb"]
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [r["perf/steps_per_s"] for r in rows if "perf/steps_per_s" in r]
    return {"peak_rss_mb": rss_kb / 1024, "wall_s": wall, "episodes": episodes,
            "learning_starts": learning_starts,
            "loop_steps_per_s": steps[-1] if steps else float("nan")}


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows, few rounds")
    p.add_argument("--profile", action="store_true", help="torch.profiler of AD-SAC updates")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--window-s", type=float, default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=["sac", "ppo", "roofline", "memory"])
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = p.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 8)
    window_s = args.window_s or (2.0 if args.quick else 6.0)
    torch.set_num_threads(1)
    import stable_baselines3

    sc = resolve("default")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; python "
          f"{platform.python_version()}, torch {torch.__version__} (1 thread), SB3 "
          f"{stable_baselines3.__version__}; {rounds} rounds of ~{window_s:g} s windows")
    results: dict[str, Any] = {}
    warm = 200 if args.quick else 1000
    ours = OffPolicyStepper(sc, 0, warm)
    cfg = {**dataclasses.asdict(ours.agent.cfg), "learning_starts": warm}
    if args.profile:
        profile(ours)
    if "sac" not in args.skip:
        print("AD-SAC vs SB3 SAC: one update per env step, batch 128, hidden (256, 256)")
        sac = Sb3Stepper(sb3_sac(sc, 0, cfg), warm + 10)
        results["adsac_vs_sac"] = report_ratio("AD-SAC", "SB3 SAC",
                                               interleave(ours, sac, rounds, window_s))
        results["adsac_vs_sac"].update(
            print_update_flops(ours, sac.model, results["adsac_vs_sac"]["ratio"]))
    if "ppo" not in args.skip:
        mine = OnPolicyStepper(sc, 0)
        print(f"PPO vs SB3 PPO: rollouts of {mine.cfg.n_steps} x {mine.cfg.n_envs} steps, "
              f"{mine.cfg.epochs} epochs, minibatch {mine.cfg.minibatch_size}, hidden "
              f"{mine.agent.cfg.hidden}")
        theirs = Sb3Stepper(sb3_ppo(sc, 0, mine.cfg, mine.agent.cfg), mine.rollout_steps)
        mine.run(mine.rollout_steps)
        results["ppo_vs_sb3_ppo"] = report_ratio(
            "our PPO", "SB3 PPO", interleave(mine, theirs, max(2, rounds // 2), window_s,
                                             (mine.rollout_steps, mine.rollout_steps)))
    if "roofline" not in args.skip:
        results["roofline"] = print_roofline(ours, 10 if args.quick else 30)
    if "memory" not in args.skip:
        results["memory"] = print_memory(ours, args.quick)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")


def print_update_flops(ours: OffPolicyStepper, sac: Any, step_ratio: float) -> dict[str, float]:
    """Matmul FLOPs of one gradient update of AD-SAC and of SB3's SAC (flop_counter), and the
    steps-per-second ratio weighted by them (the ratio of arithmetic throughputs)."""
    with FlopCounterMode(display=False) as c_ours:
        ours.agent.update(ours.buffer.sample(ours.batch_size, ours.rng))
    with FlopCounterMode(display=False) as c_sac:
        sac.train(gradient_steps=1, batch_size=sac.batch_size)
    f_ours, f_sac = c_ours.get_total_flops(), c_sac.get_total_flops()
    print(f"  matmul FLOPs per update: AD-SAC {f_ours / 1e9:.3f} GFLOP, SB3 SAC "
          f"{f_sac / 1e9:.3f} GFLOP ({f_ours / f_sac:.2f}x); ratio of matmul FLOP/s during "
          f"training, AD-SAC / SB3 SAC: {step_ratio * f_ours / f_sac:.2f}")
    return {"adsac_update_flops": f_ours, "sac_update_flops": f_sac,
            "flops_per_s_ratio": step_ratio * f_ours / f_sac}


def print_roofline(ours: OffPolicyStepper, pairs: int) -> dict[str, Any]:
    r = roofline(ours, pairs)
    print(f"one AD-SAC update: {r['flops'] / 1e9:.3f} GFLOP in matrix products "
          f"(flop_counter; recorded {r['n_products']} products, {r['recorded_flops'] / 1e9:.3f} "
          f"GFLOP); {r['update_s'] * 1e3:.1f} ms -> {r['update_gflops']:.2f} GFLOP/s")
    print(f"  the same products back to back: {r['products_s'] * 1e3:.1f} ms -> "
          f"{r['machine_gflops']:.2f} GFLOP/s; fraction of the machine's matmul speed reached: "
          f"{100 * r['fraction']:.1f} % (median of {pairs} alternating pairs)")
    rows = sorted(set(r["linears"]))
    print("  single-thread matmul GFLOP/s at the layer shapes [rows, in] x [in, out] "
          "(forward / backward):")
    table = []
    for n_rows in (128, 16 * 128):
        for rows_, fi, fo, g_f, g_b in layer_gflops(rows, n_rows, 5):
            print(f"    [{rows_:>5}, {fi:>3}] x [{fi:>3}, {fo:>3}]: {g_f:6.1f} / {g_b:6.1f}")
            table.append([rows_, fi, fo, g_f, g_b])
    return {**{k: v for k, v in r.items() if k != "linears"}, "layer_gflops": table}


def print_memory(ours: OffPolicyStepper, quick: bool) -> dict[str, Any]:
    per = ours.buffer.nbytes_per_transition
    cap = ours.buffer.capacity
    print(f"replay buffer: {per:,} bytes per transition; {cap:,} transitions = "
          f"{per * cap / 2**20:.1f} MiB when full")
    episodes, starts = (4, 300) if quick else (12, 800)
    m = peak_rss(episodes, starts)
    print(f"peak RSS of `train('adsac', default, episodes={episodes}, learning_starts={starts})`"
          f" (4 envs): {m['peak_rss_mb']:.0f} MiB; its loop ran {m['loop_steps_per_s']:.1f} env"
          f" steps/s end to end (checkpoints included), {m['wall_s']:.0f} s in all")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  (this benchmark process, with SB3 loaded: {own:.0f} MiB)")
    return {**m, "bytes_per_transition": per, "buffer_full_mib": per * cap / 2**20}


def profile(ours: OffPolicyStepper, updates: int = 5) -> None:
    """torch.profiler over ``updates`` AD-SAC updates: the top operators by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    batches = [ours.buffer.sample(ours.batch_size, ours.rng) for _ in range(updates + 1)]
    ours.agent.update(batches[0])
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches[1:]:
            ours.agent.update(b)
    print(f"torch.profiler, {updates} AD-SAC updates, top operators by self CPU time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
