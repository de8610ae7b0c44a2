"""The animated episode: a recorded trace that follows the simulator, and a GIF with one frame
per slot, from the library and from `satedge render`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satedge.agents.heuristics import make_policy
from satedge.cli import main
from satedge.envs.animate import load_policy, record_episode, write_gif
from satedge.experiments.evaluate import evaluate
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import resolve
from satedge.sim.state import TaskStatus


def test_trace_is_seeded_and_matches_the_evaluation_of_the_same_episode() -> None:
    scenario = resolve("default", ["episode_slots=6"])
    a = record_episode(make_policy("greedy"), scenario, 3, 6)
    b = record_episode(make_policy("greedy"), scenario, 3, 6)
    c = record_episode(make_policy("greedy"), scenario, 4, 6)
    assert a.n_slots == 6 and a.iotd_xy_m.shape == (6, scenario.n_iotds, 2)
    assert a.uav_xy_m.shape == (6, scenario.n_uavs, 2)
    assert np.array_equal(a.server, b.server) and np.array_equal(a.cost, b.cost)
    assert not np.array_equal(a.iotd_xy_m, c.iotd_xy_m)
    # same seed split as `evaluate` with one episode: identical energy per slot
    result = evaluate(make_policy("greedy"), scenario, 1, 3)
    assert result["energy_j_per_slot"] == pytest.approx(a.energy_j.mean())
    # UAVs move at most v_max * tau per slot; idle IoTDs have IDLE status
    step = np.linalg.norm(np.diff(a.uav_xy_m, axis=0), axis=-1)
    assert step.max() <= scenario.uav.speed_max_m_s * scenario.slot_s + 1e-9
    assert np.all((a.status == TaskStatus.IDLE) == ~a.active)


def test_gif_has_one_frame_per_slot(tmp_path: Path) -> None:
    scenario = resolve("default", [])
    trace = record_episode(make_policy("random"), scenario, 0, 3)
    out = write_gif(EdgeNetwork(scenario), trace, tmp_path / "ep.gif", fps=2)
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 3
        assert im.size == (1100, 520)
        assert im.info["duration"] == 500  # ms per frame at 2 fps


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    scenario = resolve("default", ["episode_slots=5"])
    with pytest.raises(ValueError, match=r"slots=6 must be in \[1, 5\]"):
        record_episode(make_policy("random"), scenario, 0, 6)
    trace = record_episode(make_policy("random"), scenario, 0, 1)
    with pytest.raises(ValueError, match=r"must end in \.gif"):
        write_gif(EdgeNetwork(scenario), trace, tmp_path / "ep.png")
    with pytest.raises(ValueError, match="neither a built-in policy"):
        load_policy("no-such-policy", scenario)


def test_render_command_writes_the_gif(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "ep.gif"
    assert main(["render", "--policy", "greedy", "--set", "n_iotds=4", "--seed", "1",
                 "--slots", "2", "--out", str(out)]) == 0
    assert f"{out}: 2 frames" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.n_frames == 2
    assert main(["render", "--slots", "200", "--out", str(out)]) == 2
    assert "slots=200" in capsys.readouterr().err


@pytest.mark.slow
def test_render_a_trained_run_on_its_own_scenario(tmp_path: Path) -> None:
    from satedge.experiments.train import train

    scenario = resolve("default", ["n_iotds=3", "episode_slots=4"])
    train("adsac", scenario, 0, 4, tmp_path / "run", progress=False,
          overrides={"learning_starts": 8, "batch_size": 8})
    policy, used = load_policy(str(tmp_path / "run"), resolve("default", []))
    assert used.n_iotds == 3 and used.episode_slots == 4
    trace = record_episode(policy, used, 0, 4)
    assert trace.server.shape == (4, 3)
    with pytest.raises(ValueError, match="trained with K=3"):
        load_policy(str(tmp_path / "run"), resolve("default", []), use_trained_scenario=False)
    out = write_gif(EdgeNetwork(used), trace, tmp_path / "agent.gif")
    with Image.open(out) as im:
        assert im.n_frames == 4
