"""TleConstellation against Skyfield, an independent SGP4 + Earth-orientation implementation.

Skyfield (Rhodes, https://rhodesmill.org/skyfield/) converts SGP4's TEME output to ITRS through
its own GMST-1982 and IERS UT1 tables; we rotate TEME by GMST with UT1 = UTC. For 2024-01-01
UT1 - UTC = +0.009 s, i.e. 6.4e-7 rad of Earth rotation = 4.4 m at orbit radius, which sets the
scale of the position tolerance. Skyfield is a development dependency only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sgp4.api import jday

from satedge.sim.constants import R_EARTH_M
from satedge.sim.orbits import default_walker, elevation_rad, ground_ecef_m
from satedge.sim.tle import TleConstellation, gmst82_rad, walker_to_tle_lines
from satedge.sim.visibility import remaining_visibility_s

skyfield_api = pytest.importorskip("skyfield.api")
from skyfield.framelib import itrs  # noqa: E402
from skyfield.sgp4lib import theta_GMST1982  # noqa: E402
from skyfield.toposlib import Geoid  # noqa: E402

EPOCH_JD = float(sum(jday(2024, 1, 1, 0, 0, 0)))
EL_MIN_DEG = 10.0  # SPEC section 2 default mask
SITE_LAT_DEG, SITE_LON_DEG = 30.0, 110.0
SAMPLE = range(0, 180, 15)  # one satellite from each plane of the default shell


@pytest.fixture(scope="module")
def shell() -> tuple[list[str], TleConstellation, Any]:
    lines = walker_to_tle_lines(default_walker(), EPOCH_JD)
    return lines, TleConstellation.from_tle_lines(lines), skyfield_api.load.timescale()


def _skyfield_sat(lines: list[str], k: int, ts: Any) -> Any:
    return skyfield_api.EarthSatellite(lines[3 * k + 1], lines[3 * k + 2], lines[3 * k], ts)


def _sphere_site() -> Any:
    # Skyfield observer on our spherical Earth (flattening ~0) so elevations are comparable.
    return Geoid("sphere", R_EARTH_M, 1e12).latlon(SITE_LAT_DEG, SITE_LON_DEG)


def test_gmst_matches_skyfield(shell: tuple) -> None:
    _, _, ts = shell
    seconds = np.arange(0.0, 86400.0, 977.0)
    t = ts.utc(2024, 1, 1, 0, 0, seconds)
    theta, _ = theta_GMST1982(t.whole, t.ut1_fraction)
    ours = gmst82_rad(EPOCH_JD, seconds / 86400.0)
    diff = np.mod(theta - ours + math.pi, 2 * math.pi) - math.pi
    assert np.abs(diff).max() < 1e-6  # UT1 - UTC = 9 ms -> 6.4e-7 rad


def test_itrs_positions_match_skyfield(shell: tuple) -> None:
    lines, const, ts = shell
    seconds = np.arange(0.0, 6001.0, 250.0)
    t = ts.utc(2024, 1, 1, 0, 0, seconds)
    ours = const.positions_ecef_m(seconds)
    for k in SAMPLE:
        theirs = _skyfield_sat(lines, k, ts).at(t).frame_xyz(itrs).m.T
        err_m = np.linalg.norm(theirs - ours[:, k], axis=-1)
        assert err_m.max() < 50.0, (k, err_m.max())  # observed 4.4 m (UT1 - UTC)


def test_elevations_match_skyfield(shell: tuple) -> None:
    lines, const, ts = shell
    seconds = np.arange(0.0, 6001.0, 250.0)
    t = ts.utc(2024, 1, 1, 0, 0, seconds)
    ground = ground_ecef_m(math.radians(SITE_LAT_DEG), math.radians(SITE_LON_DEG))
    ours = np.degrees(elevation_rad(const.positions_ecef_m(seconds), ground))
    site = _sphere_site()
    for k in SAMPLE:
        alt, _, _ = (_skyfield_sat(lines, k, ts) - site).at(t).altaz()
        assert np.abs(alt.degrees - ours[:, k]).max() < 1e-3  # degrees; observed 3e-5


def test_visibility_windows_match_skyfield(shell: tuple) -> None:
    lines, const, ts = shell
    site = _sphere_site()
    ground = ground_ecef_m(math.radians(SITE_LAT_DEG), math.radians(SITE_LON_DEG))
    t0 = ts.utc(2024, 1, 1)
    checked = 0
    for k in SAMPLE:
        sat = _skyfield_sat(lines, k, ts)
        times, events = sat.find_events(
            site, t0, ts.utc(2024, 1, 1, 12), altitude_degrees=EL_MIN_DEG
        )
        seconds = (times - t0) * 86400.0
        for i in np.flatnonzero(events[:-2] == 0):  # rise, culmination, set
            if events[i + 2] != 2:
                continue
            start = seconds[i] + 1.0
            got = remaining_visibility_s(
                const, np.array([k]), ground, np.array([start]), math.radians(EL_MIN_DEG)
            )[0]
            # Skyfield's event times are coarse (its altitude there is 9.992-9.9998 deg, up to
            # 0.12 s late), so windows agree to 0.25 s ...
            assert got == pytest.approx(seconds[i + 2] - start, abs=0.25), (k, i)
            # ... while Skyfield's altitude at our setting time is the mask to 1e-3 deg.
            alt, _, _ = (sat - site).at(ts.utc(2024, 1, 1, 0, 0, start + got)).altaz()
            assert alt.degrees == pytest.approx(EL_MIN_DEG, abs=1e-3), (k, i)
            checked += 1
    assert checked >= 10
