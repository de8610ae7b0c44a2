"""AD-SAC's ``uav_geometry``: the critic's post-move IoTD-to-UAV distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig, post_move_distance, split_iotd_blocks
from satedge.agents.common.protocol import AgentAction, to_env_action
from satedge.agents.registry import build_agent
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.envs.vector import MllmOffloadVectorEnv


def test_distances_match_the_environments_moved_uavs() -> None:
    env = MllmOffloadVectorEnv(5)
    obs, _ = env.reset(seed=3)
    sc = env.scenario
    k, m = sc.n_iotds, sc.n_uavs
    state = env.state
    assert state is not None
    rng = np.random.default_rng(0)
    moves = rng.uniform(-1, 1, (5, 2 * m)).astype(np.float32)
    moves[0] = 1.0  # a diagonal move, capped at one step's length
    moves[1] = 0.0
    action = AgentAction(np.zeros((5, k), np.int64),
                         np.concatenate([np.zeros((5, k), np.float32), moves], 1))
    env.step(to_env_action(action, k, m))
    after = env.state
    assert after is not None
    expected = np.linalg.norm(state.iotd_xy_m[:, :, None] - after.uav_xy_m[:, None], axis=-1)
    step = 2.0 * sc.uav.speed_max_m_s * sc.slot_s / sc.area_m
    per, glob, _ = split_iotd_blocks(torch.as_tensor(obs), k, PER_IOTD + m)
    got = post_move_distance(per, glob, torch.as_tensor(moves), step).numpy()
    np.testing.assert_allclose(got, expected * 2.0 / sc.area_m, atol=2e-5)


def test_uav_moves_get_a_gradient_through_the_distances() -> None:
    per = torch.zeros(1, 2, 13)
    per[0, 1, 7:9] = torch.tensor([0.5, 0.0])
    glob = torch.zeros(1, 9)
    moves = torch.zeros(1, 6, requires_grad=True)
    d = post_move_distance(per, glob, moves, 0.24)
    d[0, 1, 0].backward()  # moving UAV 0 toward +x brings it closer to IoTD 1
    assert moves.grad is not None and moves.grad[0, 0] < 0


def test_geometry_needs_the_step_and_shared_networks() -> None:
    with pytest.raises(ValueError, match="uav_step"):
        AdSacConfig(uav_geometry=True, iotd_block=13)
    with pytest.raises(ValueError, match="iotd_block"):
        AdSacConfig(uav_geometry=True, uav_step=0.24)


def test_registry_entry_builds_a_geometry_critic() -> None:
    sc_obs = observation_size(MllmOffloadVectorEnv(1).scenario)
    agent, cfg = build_agent("adsac-exact-geo", sc_obs, 10, 8, 16, seed=0,
                             overrides={"iotd_block": 13, "uav_step": 0.24})
    assert isinstance(agent, AdSac)
    assert cfg["uav_geometry"] and cfg["server_values"] == "exact"
    q = agent.critics[0](torch.zeros(2, sc_obs), torch.zeros(2, 16), torch.zeros(2, 10, 8))
    assert q.shape == (2, 10, 8)


def test_geometry_runs_resume_exactly_and_defaults_stay_out_of_the_identity(tmp_path) -> None:
    import json

    from satedge.experiments.train import load_trained_agent, train
    from satedge.sim.scenario import resolve

    tiny = resolve("small", ["episode_slots=10"])
    fast = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4,
            "batch_size": 32, "mpo_samples": 4, "hidden": [32, 32], "buffer_size": 500}
    train("adsac-exact-geo", tiny, 5, 8, tmp_path / "whole", overrides=fast, progress=False)
    train("adsac-exact-geo", tiny, 5, 4, tmp_path / "parts", overrides=fast, progress=False)
    train("adsac-exact-geo", tiny, 5, 8, tmp_path / "parts", overrides=fast, progress=False)
    whole, _ = load_trained_agent(tmp_path / "whole")
    parts, _ = load_trained_agent(tmp_path / "parts")
    for key, value in whole.state_dict()["critics"].items():
        torch.testing.assert_close(value, parts.state_dict()["critics"][key], rtol=0, atol=0)
    # the step follows the scenario: 2 v_max tau / area
    step = 2.0 * tiny.uav.speed_max_m_s * tiny.slot_s / tiny.area_m
    assert whole.cfg.uav_geometry and whole.cfg.uav_step == pytest.approx(step)
    train("adsac", tiny, 5, 4, tmp_path / "default", overrides=fast, progress=False)
    ident = {p: json.loads((tmp_path / p / "run.json").read_text())["identity"]["agent"]
             for p in ("whole", "default")}
    assert ident["whole"]["uav_step"] == pytest.approx(step)
    assert "uav_step" not in ident["default"] and "uav_geometry" not in ident["default"]
