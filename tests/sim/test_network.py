"""Network dynamics: UAV moves, mobility, handovers, TLE input and the slot's random draws."""

from __future__ import annotations

import numpy as np
import pytest

from satedge.sim import isl
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import resolve
from satedge.sim.state import TaskStatus


def _rngs(n: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def test_uav_moves_are_capped_and_kept_in_the_area() -> None:
    net = EdgeNetwork(resolve("default"))
    rngs = _rngs(3)
    st = net.reset(rngs)
    step = net.scenario.uav.speed_max_m_s * net.scenario.slot_s
    move = np.full((3, 3, 2), 1e4)  # far beyond the cap, diagonally
    nxt = net.advance(st, move, rngs)
    d = np.linalg.norm(nxt.uav_xy_m - st.uav_xy_m, axis=-1)
    assert np.all(d <= step + 1e-9)
    assert np.all((nxt.uav_xy_m >= 0) & (nxt.uav_xy_m <= net.scenario.area_m))
    small = np.zeros((3, 3, 2))
    small[..., 0] = 5.0
    nxt = net.advance(st, small, rngs)
    inside = st.uav_xy_m[..., 0] < net.scenario.area_m - 5.0
    np.testing.assert_allclose((nxt.uav_xy_m - st.uav_xy_m)[..., 0][inside], 5.0)


@pytest.mark.parametrize("mobility", ["random_walk", "random_waypoint", "static"])
def test_iotd_mobility_speed(mobility: str) -> None:
    net = EdgeNetwork(resolve("default", [f"iotd.mobility={mobility}", "iotd.speed_m_s=2"]))
    rngs = _rngs(8)
    st = net.reset(rngs)
    nxt = net.advance(st, np.zeros((8, 3, 2)), rngs)
    d = np.linalg.norm(nxt.iotd_xy_m - st.iotd_xy_m, axis=-1)
    assert np.all(d <= 2.0 * 3.0 + 1e-9)
    if mobility == "static":
        assert np.all(d == 0)
    else:
        assert np.median(d) > 5.0  # most IoTDs move the full 6 m step


def test_time_advances_and_handover_happens_when_the_access_satellite_sets() -> None:
    net = EdgeNetwork(resolve("default"))
    rngs = _rngs(2, seed=3)
    st = net.reset(rngs)
    handovers = 0
    for _ in range(200):  # 600 s: longer than any pass (443 s)
        prev = st
        st = net.advance(st, np.zeros((2, 3, 2)), rngs)
        np.testing.assert_allclose(st.time_s - prev.time_s, 3.0)
        assert np.all(st.access_sat >= 0)  # the default shell always covers the area
        changed = st.access_sat != prev.access_sat
        np.testing.assert_array_equal(changed, st.handover)
        # a handover only when the old access satellite's window had run out
        assert np.all(prev.visibility_s[changed] <= 3.0 + 1e-6)
        handovers += int(changed.sum())
        assert np.all(st.visibility_s <= net.pass_duration_s + 1.0)
    assert handovers >= 2


def test_tle_file_scenario_runs(tmp_path) -> None:
    from satedge.sim.orbits import default_walker
    from satedge.sim.tle import walker_to_tle_lines

    path = tmp_path / "shell.tle"
    path.write_text("\n".join(walker_to_tle_lines(default_walker(), 2460310.5)) + "\n")
    net = EdgeNetwork(resolve("default", [f"constellation.tle_file={path}"]))
    rngs = _rngs(2)
    st = net.reset(rngs)
    for _ in range(5):
        out, st = net.step(st, np.argmax(st.mask, -1), np.full((2, 10), 0.1),
                           np.zeros((2, 3, 2)), rngs)
        assert np.all(np.isfinite(out.latency_s)) and np.all(st.access_sat >= 0)
    assert np.any(out.status == TaskStatus.OK)
    with pytest.raises(ValueError, match="does not exist"):
        EdgeNetwork(resolve("default", ["constellation.tle_file=/nonexistent.tle"]))


def test_fading_statistics_in_the_simulator() -> None:
    """The simulator's UAV gains divided by their large-scale part have the Rician unit mean."""
    from satedge.sim import channels

    net = EdgeNetwork(resolve("default"))
    st = net.reset(_rngs(2000, seed=9))
    sc = net.scenario
    dist = np.sqrt(st.uav_horizontal_m**2 + sc.uav.altitude_m**2)
    small = st.uav_gain / channels.ground_uav_large_scale_gain(dist, sc.channel.beta0_db,
                                                               sc.channel.path_loss_exponent)
    assert abs(small.mean() - 1.0) < 5 * small.std() / np.sqrt(small.size)


def test_candidate_geometry_matches_full_constellation_positions() -> None:
    """Slant ranges and ISL path lengths from the candidates' positions alone equal those from
    every satellite's position (isl.path_length_m), including after re-acquisitions."""
    net = EdgeNetwork(resolve("default"))
    rngs = _rngs(16, seed=3)
    st = net.reset(rngs)
    for _ in range(60):
        st = net.advance(st, np.zeros((16, 3, 2)), rngs)
    pos = net.constellation.positions_ecef_m(st.time_s)  # [B, T, 3]
    rows = np.arange(16)
    paths = net.candidates.paths[st.access_sat]  # [B, N, H+1]
    np.testing.assert_allclose(st.candidate_path_m, isl.path_length_m(pos, paths),
                               rtol=1e-12, atol=1e-6)  # m
    slant = np.linalg.norm(pos[rows, st.access_sat] - net.ground_ecef_m, axis=-1)
    np.testing.assert_allclose(st.slant_range_m, slant, rtol=1e-12)
    np.testing.assert_array_equal(st.candidate_sats, net.candidates.sats[st.access_sat])
