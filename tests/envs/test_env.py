"""Environment contract: Gymnasium checks, seeding, batched equals single, actions, rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import satedge  # noqa: F401  (registers the environment)
from satedge.envs import ENV_ID, MllmOffloadEnv, MllmOffloadVectorEnv, spawn_seeds

SMALL = ["episode_slots=12"]


def _rollout(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, 0.0, info["action_mask"])]
    for _ in range(steps):
        obs, r, _term, _trunc, info = env.step(env.action_space.sample())
        out.append((obs, r, info["action_mask"]))
    return out


def test_check_env_passes() -> None:
    env = gym.make(ENV_ID, overrides=SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_same_seed_same_rollout_different_seed_differs() -> None:
    env = MllmOffloadEnv(overrides=SMALL)
    a, b, c = (_rollout(env, s, 10) for s in (3, 3, 4))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1] == y[1]
        np.testing.assert_array_equal(x[2], y[2])
    assert not np.array_equal(a[0][0], c[0][0])
    assert any(x[1] != y[1] for x, y in zip(a, c, strict=True))


def test_truncates_after_episode_slots() -> None:
    env = MllmOffloadEnv(overrides=["episode_slots=5"])
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def _batched_action(rng: np.random.Generator, masks: np.ndarray, m: int) -> dict:
    b, k, s = masks.shape
    return {"offload": rng.integers(0, s, (b, k)), "power": rng.uniform(-1, 1, (b, k)),
            "uav": rng.uniform(-1, 1, (b, m, 2))}


def test_batched_env_equals_single_envs() -> None:
    b, steps = 5, 14
    seeds = spawn_seeds(11, b)
    venv = MllmOffloadVectorEnv(b, overrides=SMALL)
    singles = [MllmOffloadEnv(overrides=SMALL) for _ in range(b)]
    obs_v, info_v = venv.reset(seed=11)
    obs_s = [e.reset(seed=s)[0] for e, s in zip(singles, seeds, strict=True)]
    np.testing.assert_array_equal(obs_v, np.stack(obs_s))
    rng = np.random.default_rng(0)
    m = venv.scenario.n_uavs
    for _ in range(steps):
        act = _batched_action(rng, info_v["action_mask"], m)
        obs_v, r_v, _, tr_v, info_v = venv.step(act)
        for i, env in enumerate(singles):
            single = {key: np.asarray(v[i]) for key, v in act.items()}
            obs, r, _, tr, info = env.step(single)
            for key in ("cost", "energy_j", "latency_s", "n_deadline", "n_infeasible"):
                assert info_v[key][i] == pytest.approx(info[key], rel=1e-10, abs=1e-12)
            if tr:  # the vector env auto-resets with the generator it holds, like reset()
                np.testing.assert_allclose(info_v["final_obs"][i], obs, rtol=1e-6, atol=1e-7)
                obs, info = env.reset()
            np.testing.assert_allclose(obs_v[i], obs, rtol=1e-6, atol=1e-7)
            assert r_v[i] == pytest.approx(r, rel=1e-10, abs=1e-12)
            assert tr_v[i] == tr
            np.testing.assert_array_equal(info_v["action_mask"][i], info["action_mask"])


def test_make_vec_uses_native_vector_env() -> None:
    venv = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point",
                        overrides=SMALL)
    obs, info = venv.reset(seed=1)
    assert obs.shape == (3, venv.single_observation_space.shape[0])
    assert info["action_mask"].shape == (3, 10, 8)


@pytest.mark.parametrize(("patch", "fragment"), [
    ({"power": np.full(10, np.nan)}, "finite"),
    ({"power": np.zeros(9)}, "shape"),
    ({"offload": np.full(10, 8)}, "integers in [0, 7]"),
    ({"offload": np.full(10, 1.5)}, "integers"),
    ({"uav": np.full((3, 2), np.inf)}, "finite"),
])
def test_bad_actions_raise_clear_errors(patch: dict, fragment: str) -> None:
    env = MllmOffloadEnv(overrides=SMALL)
    env.reset(seed=0)
    action = {**env.action_space.sample(), **patch}
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        env.step(action)
    with pytest.raises(ValueError, match="keys offload, power, uav"):
        env.step({"offload": action["offload"]})


def test_info_components_add_up_and_mask_is_respected() -> None:
    env = MllmOffloadEnv(overrides=SMALL)
    obs, info = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    for _ in range(10):
        mask = info["action_mask"]
        action = env.action_space.sample()
        action["offload"] = np.argmax(mask, axis=-1)  # a feasible server where one exists
        obs, r, _, _, info = env.step(action)
        assert env.observation_space.contains(obs)
        parts = sum(info[f"latency_{p}"] for p in ("upload_s", "inference_s", "download_s",
                                                    "isl_s", "propagation_s"))
        assert info["latency_s"] == pytest.approx(parts)
        energy = sum(info[f"energy_{p}_j"] for p in ("upload", "inference", "download", "isl"))
        assert info["energy_j"] == pytest.approx(energy)
        assert info["n_infeasible"] == 0
        assert info["n_executed"] == info["n_uav"] + info["n_satellite"]
        assert r <= 0.0


def test_reciprocal_reward_form() -> None:
    env = MllmOffloadEnv(overrides=[*SMALL, "cost.reward_form=reciprocal"])
    _, info = env.reset(seed=2)
    action = env.action_space.sample()
    action["offload"] = np.argmax(info["action_mask"], axis=-1)
    _, r, _, _, info = env.step(action)
    n = info["n_active"]
    expected = n / info["cost"] - info["penalty"] / n if n else 0.0
    assert r == pytest.approx(expected)


def test_render_rgb_array() -> None:
    env = MllmOffloadEnv(overrides=SMALL, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame is not None and frame.dtype == np.uint8 and frame.shape[2] == 3
    assert frame.std() > 10  # something was drawn


@pytest.mark.parametrize("form", ["negative", "reciprocal"])
def test_reward_per_task_sums_to_reward(form):
    from satedge.sim.scenario import resolve

    env = MllmOffloadVectorEnv(3, resolve("small", [f'cost.reward_form="{form}"']))
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        act = env.action_space.sample()
        act["offload"] = rng.integers(0, env.scenario.n_servers, act["offload"].shape)
        _, r, _, _, info = env.step(act)
        shares = info["reward_per_task"]
        assert shares.shape == (3, env.scenario.n_iotds)
        np.testing.assert_allclose(shares.sum(-1), r, rtol=1e-9, atol=1e-9)


def test_power_units_invert_power_watts() -> None:
    from satedge.envs.encoding import power_units, power_watts
    from satedge.sim.scenario import Scenario

    sc = Scenario()
    units = np.linspace(-1.0, 1.0, 11)
    np.testing.assert_allclose(power_units(sc, power_watts(sc, units)), units, atol=1e-12)
    lo, hi = sc.iotd.power_min_w, sc.iotd.power_max_w
    np.testing.assert_array_equal(power_units(sc, np.array([lo / 2, hi * 2])), [-1.0, 1.0])
