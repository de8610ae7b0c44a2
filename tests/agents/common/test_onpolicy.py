"""The on-policy loop: config checks, GAE with truncation and termination by hand, bootstrapping
from the final observation, the reward normaliser, and exact resumption mid-rollout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from satedge.agents.common.buffers import RolloutBatch, RolloutBuffer
from satedge.agents.common.logger import read_metrics
from satedge.agents.common.onpolicy import OnPolicyConfig, ReturnNormaliser, train_on_policy
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.common.rundir import RunDir
from satedge.envs.encoding import observation_size
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve

torch.set_num_threads(1)

TINY = resolve("small", ["episode_slots=10"])


# --------------------------------------------------------------------------------- config
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"episodes": 6, "n_envs": 4}, "episodes=6 must be a positive multiple of n_envs=4"),
    ({"episodes": 8, "n_envs": 4, "eval_every_episodes": 2}, "eval_every_episodes=2"),
    ({"episodes": 8, "n_steps": 0}, "n_steps=0 must be at least 1"),
    ({"episodes": 8, "epochs": 0}, "epochs=0"),
    ({"episodes": 8, "minibatch_size": 201},
     r"minibatch_size=201 must lie in \[1, n_envs \* n_steps = 200\]"),
    ({"episodes": 8, "gamma": 1.5}, r"gamma=1.5 must lie in \[0, 1\]"),
    ({"episodes": 8, "gae_lambda": -0.1}, r"gae_lambda=-0.1 must lie in \[0, 1\]"),
])
def test_config_errors_name_the_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OnPolicyConfig(**kwargs)


# ------------------------------------------------------------------------------------ GAE
def test_gae_by_hand_with_truncation_and_termination() -> None:
    """Two envs, three steps, gamma = lambda = 0.5. Env 0 is truncated at t=1 (bootstrap from
    its final value 4, recursion cut); env 1 terminates at t=0 (no bootstrap)."""
    buf = RolloutBuffer(3, 2, 1, 1, 2, 0)
    rewards = [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    values = [[0.5, 1.0], [1.0, 1.0], [1.5, 1.0]]
    term = [[False, True], [False, False], [False, False]]
    trunc = [[False, False], [True, False], [False, False]]
    for t in range(3):
        buf.add(obs=np.zeros((2, 1)), mask=np.ones((2, 1, 2), bool), action_d=np.zeros((2, 1)),
                action_c=np.zeros((2, 0)), pre_tanh=np.zeros((2, 0)), log_prob_d=np.zeros(2),
                log_prob_c=np.zeros(2), value=np.array(values[t]), reward=np.array(rewards[t]),
                terminated=np.array(term[t]), truncated=np.array(trunc[t]),
                final_value=np.array([4.0, 0.0]) if t == 1 else None)
    buf.compute(0.5, 0.5, last_values=np.array([2.0, 2.0]))
    # env 0: d2 = 3 + 0.5*2 - 1.5 = 2.5; d1 = 2 + 0.5*4 - 1 = 3 (cut); d0 = 1 + 0.5*1 - 0.5 = 1,
    #        A0 = 1 + 0.25*3 = 1.75. env 1: d2 = 1 + 1 - 1 = 1; d1 = 1 + 0.5 - 1 = 0.5,
    #        A1 = 0.5 + 0.25*1 = 0.75; terminated: d0 = 1 - 1 = 0, A0 = 0.
    np.testing.assert_allclose(buf.advantages, [[1.75, 0.0], [3.0, 0.75], [2.5, 1.0]])
    np.testing.assert_allclose(buf.returns, [[2.25, 1.0], [4.0, 1.75], [4.0, 2.0]])


# ----------------------------------------------------------------- bootstrapping in the loop
class _ConstantAgent:
    """Always server 0 at zero power and no UAV move; V(obs) = obs . w, a fixed projection.
    Records the rollout buffer at every update."""

    def __init__(self, obs_dim: int, k: int, s: int, cont: int) -> None:
        self.k, self.s, self.cont, self.obs_dim = k, s, cont, obs_dim
        self.w = np.random.default_rng(0).normal(size=obs_dim).astype(np.float32)
        self.buffers: list[dict[str, np.ndarray]] = []
        self.buffer: RolloutBuffer | None = None

    def act(self, obs: np.ndarray, mask: np.ndarray, deterministic: bool = False) -> AgentAction:
        b = obs.shape[0]
        return AgentAction(np.zeros((b, self.k), np.int64), np.zeros((b, self.cont), np.float32))

    def explore(self, obs: np.ndarray, mask: np.ndarray) -> tuple[AgentAction, dict[str, Any]]:
        b = obs.shape[0]
        a = self.act(obs, mask)
        return a, {"obs": obs, "mask": mask, "action_d": a.discrete, "action_c": a.continuous,
                   "pre_tanh": a.continuous, "log_prob_d": np.zeros(b),
                   "log_prob_c": np.zeros(b), "value": self.value(obs)}

    def value(self, obs: np.ndarray) -> np.ndarray:
        return obs @ self.w

    def rollout_buffer(self, n_steps: int, n_envs: int) -> RolloutBuffer:
        self.buffer = RolloutBuffer(n_steps, n_envs, self.obs_dim, self.k, self.s, self.cont)
        return self.buffer

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        assert self.buffer is not None  # one epoch of one minibatch: one call per rollout
        self.buffers.append({n: getattr(self.buffer, n).copy() for n in
                             ("truncated", "next_values", "rewards", "values")})
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_loop_bootstraps_from_the_final_observation_not_the_reset(tmp_path: Path) -> None:
    """Episodes of 10 slots, rollouts of 15 steps: the first rollout's truncation at t=9 must
    use V(final obs), which an independent replay of the same env and actions gives."""
    sc = TINY
    obs_dim, cont = observation_size(sc), sc.n_iotds + 2 * sc.n_uavs
    agent = _ConstantAgent(obs_dim, sc.n_iotds, sc.n_servers, cont)
    cfg = OnPolicyConfig(episodes=4, n_envs=2, n_steps=15, epochs=1, minibatch_size=30,
                         eval_every_episodes=4, normalize_reward=False)
    run = RunDir(tmp_path, {"algo": "stub"}, 0)
    train_on_policy(agent, MllmOffloadVectorEnv(2, sc), cfg, run, lambda a: {}, progress=False)
    assert len(agent.buffers) == 1  # 20 steps: one full rollout of 15
    first = agent.buffers[0]
    np.testing.assert_array_equal(first["truncated"][:, 0], np.arange(15) == 9)

    env = MllmOffloadVectorEnv(2, sc)  # replay
    obs, _ = env.reset(seed=run.seeds.env)
    constant = agent.act(obs, np.ones((2, sc.n_iotds, sc.n_servers), bool))
    action = to_env_action(constant, sc.n_iotds, sc.n_uavs)
    for t in range(15):
        obs, reward, _, _, infos = env.step(action)
        np.testing.assert_allclose(first["rewards"][t], reward, rtol=1e-6)
        if t == 9:
            final_v = agent.value(infos["final_obs"])
            reset_v = agent.value(obs)
            assert not np.allclose(final_v, reset_v)
            np.testing.assert_allclose(first["next_values"][9], final_v, rtol=1e-6)
        elif t < 14:
            np.testing.assert_allclose(first["next_values"][t], first["values"][t + 1])


# --------------------------------------------------------------------- reward normaliser
def test_return_normaliser_against_a_naive_reference() -> None:
    rng = np.random.default_rng(1)
    gamma, n_envs, steps = 0.9, 3, 40
    norm = ReturnNormaliser(n_envs, gamma)
    seen: list[np.ndarray] = []
    ret = np.zeros(n_envs)
    for t in range(steps):
        r = rng.normal(-10.0, 5.0, n_envs)
        done = np.full(n_envs, t % 10 == 9)
        ret = gamma * ret + r
        seen.append(ret.copy())
        expected = np.clip(r / np.sqrt(np.var(np.concatenate(seen)) + 1e-8), -10, 10)
        np.testing.assert_allclose(norm(r, done), expected, rtol=2e-3)  # prior weight 1e-4
        ret[done] = 0.0
    off = ReturnNormaliser(n_envs, gamma, enabled=False)
    np.testing.assert_array_equal(off(np.array([1.0, -2.0, 3.0]), np.zeros(3, bool)), [1, -2, 3])
    copy = ReturnNormaliser(n_envs, gamma)
    copy.load_state_dict(norm.state_dict())
    r = rng.normal(size=n_envs)
    np.testing.assert_array_equal(copy(r, np.zeros(3, bool)), norm(r, np.zeros(3, bool)))


# ------------------------------------------------------------------------ exact resumption
FAST = {"n_envs": 2, "n_steps": 15, "epochs": 2, "minibatch_size": 10, "eval_episodes": 2,
        "eval_every_episodes": 4, "hidden": [16, 16]}


def _state(path: Path) -> dict[str, torch.Tensor]:
    agent, _ = load_trained_agent(path)
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, torch.Tensor):
            flat[prefix] = obj

    walk("", agent.state_dict())
    return flat


class _Killed(Exception):
    pass


@pytest.mark.parametrize("algo", ["ppo", "hybrid-ppo"])
def test_killed_run_resumes_exactly_mid_rollout(tmp_path: Path, algo: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Rollouts of 15 steps and episodes of 10: the run is killed right after its checkpoint at
    step 20 (5 steps into the second rollout), run again with the same command, killed after
    the one at step 40 (10 steps into the third), and run again to the end. The partial
    rollouts and the reward normaliser must be restored too."""
    train(algo, TINY, 5, 12, tmp_path / "whole", overrides=FAST, progress=False)
    save = RunDir.save
    calls = {"n": 0}

    def save_then_die(self: RunDir, *args: Any) -> None:
        save(self, *args)
        calls["n"] += 1
        if calls["n"] in (2, 4):
            raise _Killed

    monkeypatch.setattr(RunDir, "save", save_then_die)
    for _ in range(2):
        with pytest.raises(_Killed):
            train(algo, TINY, 5, 12, tmp_path / "parts", overrides=FAST, progress=False)
        with open(tmp_path / "parts" / "metrics.jsonl", "a") as fh:  # a crash mid-write
            fh.write('{"step": 999, "train/cost_')
    train(algo, TINY, 5, 12, tmp_path / "parts", overrides=FAST, progress=False)
    whole, parts = _state(tmp_path / "whole"), _state(tmp_path / "parts")
    assert whole.keys() == parts.keys() and len(whole) > 4
    for key in whole:
        torch.testing.assert_close(whole[key], parts[key], rtol=0, atol=0)

    def metrics(p: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if not k.startswith("perf/")}
                for m in read_metrics(p)]

    assert metrics(tmp_path / "whole") == metrics(tmp_path / "parts")
    steps = [m["step"] for m in read_metrics(tmp_path / "parts")]
    assert steps == [10, 20, 30, 40, 50, 60]
    assert any("loss/value" in m for m in read_metrics(tmp_path / "parts"))
