"""Long runs stay healthy: the batched environment over random valid scenarios.

Random actions (masked servers included) on random valid scenarios (:mod:`.scenarios`), with
numpy's floating-point errors raised (division by zero, overflow, invalid; not underflow): no
NaN or infinity in observations, rewards or info, observations inside their [-1, 1] box, and the
process's resident memory does not grow without bound. The short version runs in the default
suite; the soak (``slow``) steps millions of task-slots and prints the numbers recorded in
docs/reliability.md.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim.scenario import Scenario, resolve
from tests.reliability.scenarios import fp_errors_raise, random_actions, random_scenario


def rss_mb() -> float:
    """Resident set size of this process (MB), from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def check_step(obs: np.ndarray, reward: np.ndarray, infos: dict[str, Any], where: str) -> None:
    """Everything the env returned is finite; observations lie in their box."""
    assert obs.dtype == np.float32 and np.isfinite(obs).all(), where
    assert obs.min() >= -1.0 and obs.max() <= 1.0, where
    assert np.isfinite(reward).all(), where
    for key, value in infos.items():
        if isinstance(value, dict):
            check_step(obs, reward, value, f"{where} final_info")
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), f"{where}: info[{key!r}]"


def run_episodes(sc: Scenario, batch: int, episodes: int, seed: int) -> dict[str, int]:
    """Step ``episodes`` episodes of ``batch`` environments with random actions, checking every
    step under raised floating-point errors. Returns step and task counts."""
    rng = np.random.default_rng(seed)
    env = MllmOffloadVectorEnv(batch, sc)
    counts = {"env_steps": 0, "iotd_slots": 0, "tasks": 0}
    with fp_errors_raise():
        obs, _ = env.reset(seed=int(rng.integers(2**62)))
        for step in range(episodes * sc.episode_slots):
            obs, reward, _, _, infos = env.step(random_actions(rng, sc, batch))
            check_step(obs, reward, infos, f"step {step}")
            counts["env_steps"] += batch
            counts["iotd_slots"] += batch * sc.n_iotds
            counts["tasks"] += int(infos.get("final_info", infos)["n_active"].sum())
    return counts


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1))
def test_random_scenarios_step_without_floating_point_errors(seed: int) -> None:
    sc, _ = random_scenario(np.random.default_rng(seed))
    counts = run_episodes(sc, batch=4, episodes=1, seed=seed)
    assert counts["env_steps"] == 4 * sc.episode_slots


def test_extreme_corners_step_without_floating_point_errors() -> None:
    """Hand-picked ends of the ranges where a formula could divide by zero or overflow."""
    corners: list[dict[str, Any]] = [
        {"tasks.image_bits_min": 0.0, "tasks.image_bits_max": 0.0, "tasks.text_tokens_min": 0,
         "tasks.text_tokens_max": 0},  # empty uploads
        {"tasks.arrival_rate_min": 20.0, "tasks.arrival_rate_max": 20.0,
         "tasks.max_requests": 64},  # every IoTD at the cap
        {"uav.speed_max_m_s": 0.0, "iotd.speed_m_s": 0.0, "iotd.mobility": "static"},
        {"area_m": 1.0, "uav.coverage_radius_m": 1.0, "uav.altitude_m": 10.0},
        {"area_m": 1e6, "uav.coverage_radius_m": 10000.0, "uav.altitude_m": 1000.0},
        {"channel.noise_psd_dbm_hz": -220.0, "channel.beta0_db": 0.0,
         "channel.path_loss_exponent": 1.5},  # enormous SNR
        {"channel.noise_psd_dbm_hz": -100.0, "channel.beta0_db": -100.0,
         "channel.path_loss_exponent": 6.0, "satellite.antenna_gain_dbi": -10.0},  # no SNR
        {"satellite.isl_power_w": 0.0, "cost.energy_weight_per_j": 0.0,
         "cost.latency_weight_per_s": 0.0},  # zero cost
        {"cost.reward_form": "reciprocal", "cost.latency_weight_per_s": 0.0,
         "cost.energy_weight_per_j": 0.0},  # reciprocal of a zero cost
        {"cost.reward_form": "reciprocal", "cost.reward_scale": 1e6},
        {"constellation.total": 1, "constellation.planes": 1, "n_candidates": 1,
         "constellation.elevation_min_deg": 60.0},  # almost never a visible satellite
        {"constellation.altitude_m": 2e6, "constellation.elevation_min_deg": 0.0,
         "area_lat_deg": 90.0, "area_lon_deg": -180.0},
        {"tasks.deadline_min_s": 1e-9, "tasks.deadline_max_s": 1e-9},
        {"slot_s": 1e-6, "episode_slots": 3}, {"slot_s": 3600.0, "episode_slots": 3},
        {"iotd.power_min_w": 1e-6, "iotd.power_max_w": 1e-6},
        {"uav.bandwidth_hz": 1e3, "satellite.uplink_bandwidth_hz": 1e3,
         "satellite.downlink_bandwidth_hz": 1e3, "tasks.image_bits_max": 1e9,
         "tasks.image_bits_min": 1e9},  # days of upload
    ]
    for i, overrides in enumerate(corners):
        sc = resolve("small", {"episode_slots": 10, **overrides})
        run_episodes(sc, batch=3, episodes=1, seed=i)


@pytest.mark.slow
def test_soak_millions_of_task_slots_without_nan_or_memory_growth() -> None:
    """Phase 1: one default-scenario batch for many episodes (autoreset path); phase 2: many
    random valid scenarios. RSS is sampled between chunks of work; after a warm-up the growth
    must stay small (an unbounded leak of even 100 bytes per env step would show)."""
    target = int(os.environ.get("SATEDGE_SOAK_TASK_SLOTS", 5_000_000))
    t0 = time.perf_counter()
    totals = {"env_steps": 0, "iotd_slots": 0, "tasks": 0, "scenarios": 0}
    samples: list[tuple[int, float]] = []

    def add(counts: dict[str, int]) -> None:
        for key, value in counts.items():
            totals[key] += value
        gc.collect()
        samples.append((totals["iotd_slots"], rss_mb()))

    default = Scenario()
    while totals["iotd_slots"] < target // 2:  # phase 1: 64 envs x 10 IoTDs x 100 slots
        add(run_episodes(default, batch=64, episodes=2, seed=len(samples)))
    phase1 = list(samples)
    rng = np.random.default_rng(20240601)
    while totals["iotd_slots"] < target:
        sc, _ = random_scenario(rng)
        totals["scenarios"] += 1
        add(run_episodes(sc, batch=32, episodes=2, seed=int(rng.integers(2**31))))
    wall = time.perf_counter() - t0
    warm = phase1[min(2, len(phase1) - 1)][1]
    growth1 = phase1[-1][1] - warm
    growth2 = samples[-1][1] - phase1[-1][1]
    peak = max(r for _, r in samples)
    print(f"\nsoak: {totals} in {wall:.0f} s; RSS after warm-up {warm:.1f} MB, end of phase 1 "
          f"{phase1[-1][1]:.1f} MB (+{growth1:.1f}), end {samples[-1][1]:.1f} MB "
          f"(+{growth2:.1f}), peak {peak:.1f} MB; samples (task-slots, MB): "
          + ", ".join(f"({n}, {r:.1f})" for n, r in samples[:: max(1, len(samples) // 12)]))
    assert totals["iotd_slots"] >= target
    per_step = growth1 * 2**20 / max(phase1[-1][0] - phase1[0][0], 1) * default.n_iotds
    assert growth1 < 20.0 and per_step < 100.0, (growth1, per_step)  # bytes per env step
    assert growth2 < 100.0  # random scenarios differ in size: bounded, not zero
