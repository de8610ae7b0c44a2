"""TLE constellations (SGP4): GMST, Walker -> TLE round trips, shell inference, propagation.

Independent checks against Skyfield are in test_orbits_skyfield.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sgp4.api import jday

from satedge.sim.orbits import WalkerDelta, default_walker, elevation_rad, ground_ecef_m
from satedge.sim.tle import TleConstellation, gmst82_rad, walker_to_tle_lines
from satedge.sim.visibility import remaining_visibility_s

EL_MIN_RAD = math.radians(10.0)  # SPEC section 2 default mask
H_M = 500e3  # SPEC section 1 altitude [paper]


EPOCH_JD = float(sum(jday(2024, 1, 1, 0, 0, 0)))


def test_gmst_at_j2000() -> None:
    # IAU 1982 GMST at 2000-01-01 12:00 UT1 = 18h 41m 50.54841 s = 280.46061837 deg (Astronomical
    # Almanac / Vallado eq. 3-45).
    assert math.degrees(float(gmst82_rad(2451545.0))) == pytest.approx(280.46061837, abs=1e-8)


@pytest.mark.parametrize(("total", "planes", "phasing"), [(180, 12, 0), (24, 6, 5), (200, 20, 7)])
def test_walker_tle_round_trip_recovers_shell(total: int, planes: int, phasing: int) -> None:
    w = WalkerDelta(53.0, total, planes, phasing, H_M)
    lines = walker_to_tle_lines(w, EPOCH_JD)
    assert len(lines) == 3 * total and all(len(x) == 69 for x in lines[1::3] + lines[2::3])
    c = TleConstellation.from_tle_lines(lines)
    assert c.epoch_jd == pytest.approx(EPOCH_JD, abs=1e-8)
    assert (c.total, c.planes, c.sats_per_plane, c.phasing) == (
        total,
        planes,
        total // planes,
        phasing,
    )
    np.testing.assert_array_equal(c.plane_index, w.plane_index)
    np.testing.assert_array_equal(c.slot_index, w.slot_index)
    np.testing.assert_array_equal(c.tle_order, np.arange(total))


def test_tle_shuffled_two_line_input_is_reordered() -> None:
    w = WalkerDelta(53.0, 24, 6, 5, H_M)
    three = walker_to_tle_lines(w, EPOCH_JD)
    pairs = [three[3 * k + 1 : 3 * k + 3] for k in range(w.total)]
    perm = np.random.default_rng(3).permutation(w.total)
    c = TleConstellation.from_tle_lines([x for k in perm for x in pairs[k]])
    np.testing.assert_array_equal(perm[c.tle_order], np.arange(w.total))
    ref = TleConstellation.from_tle_lines(three)
    t = np.array([0.0, 300.0])
    np.testing.assert_allclose(c.positions_ecef_m(t), ref.positions_ecef_m(t), atol=1e-6)


def test_sgp4_shell_agrees_with_analytic_walker() -> None:
    # SGP4 adds J2: short-period terms of order 1.5 J2 (R_eq/a)^2 a ~ 10 km (radius seen within
    # +-7 km) and secular node/latitude drift ~1e-6 rad/s (< 1 km in 15 min). So over 15 min
    # positions agree within 20 km and radii within 10 km; the analytic model has no J2.
    w = default_walker()
    c = TleConstellation.from_tle_lines(walker_to_tle_lines(w, EPOCH_JD))
    t = np.linspace(0.0, 900.0, 7)
    diff_km = np.linalg.norm(c.positions_ecef_m(t) - w.positions_ecef_m(t), axis=-1) / 1e3
    assert diff_km.max() < 20.0
    radius_km = np.linalg.norm(c.positions_ecef_m(t), axis=-1) / 1e3
    np.testing.assert_allclose(radius_km, w.radius_m / 1e3, atol=10.0)
    # the drift is secular: after one day the shells have visibly separated (node drift)
    late = np.linalg.norm(c.positions_ecef_m(86400.0) - w.positions_ecef_m(86400.0), axis=-1)
    assert np.median(late) > 100e3


def test_tle_position_of_epoch_and_visibility() -> None:
    w = WalkerDelta(53.0, 24, 6, 1, H_M)
    lines = walker_to_tle_lines(w, EPOCH_JD)
    c = TleConstellation.from_tle_lines(lines)
    later = TleConstellation.from_tle_lines(lines, epoch_jd=EPOCH_JD + 0.5)
    # numbering is fixed at each constellation's epoch, so compare in TLE-line order
    by_line_later = later.positions_ecef_m(0.0)[np.argsort(later.tle_order)]
    by_line = c.positions_ecef_m(43200.0)[np.argsort(c.tle_order)]
    np.testing.assert_allclose(by_line_later, by_line, atol=1e-3)
    t = np.array([[10.0, 500.0], [2000.0, 3000.0]])
    idx = np.array([[0, 23], [7, 7]])
    picked = c.positions_ecef_m(t)[np.arange(2)[:, None], np.arange(2), idx]
    np.testing.assert_allclose(c.position_of(idx, t), picked, atol=1e-6)
    ground = ground_ecef_m(math.radians(40.0), math.radians(10.0))
    tt = np.arange(0.0, 6000.0, 600.0)
    sat = np.argmax(elevation_rad(c.positions_ecef_m(tt), ground), axis=1)
    got = remaining_visibility_s(c, sat, ground, tt, EL_MIN_RAD)
    for b in np.flatnonzero(got > 0):  # brute force on 0.05 s grid
        grid = np.arange(0.0, 900.0, 0.05)
        el = elevation_rad(c.position_of(sat[b], tt[b] + grid)[:, None, :], ground)[:, 0]
        assert got[b] == pytest.approx(grid[np.argmax(el < EL_MIN_RAD)], abs=0.06)


def test_tle_unequal_planes_rejected_for_grid() -> None:
    w = WalkerDelta(53.0, 24, 6, 1, H_M)
    lines = walker_to_tle_lines(w, EPOCH_JD)[3:]  # drop one satellite of plane 0
    c = TleConstellation.from_tle_lines(lines)
    assert c.planes == 6 and c.total == 23 and c.phasing == 0
    with pytest.raises(ValueError, match="unequal"):
        _ = c.sats_per_plane
