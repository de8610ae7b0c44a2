"""Remaining visibility windows and sticky access-satellite selection.

Known values: the paper's full-pass window (Eq. 4-5) for a polar pass over the pole, where Earth
rotation does not move the observer; otherwise brute-force elevation scans on fine time grids.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from satedge.sim.orbits import (
    DEFAULT_AREA_LAT_DEG,
    DEFAULT_AREA_LON_DEG,
    WalkerDelta,
    default_walker,
    elevation_rad,
    ground_ecef_m,
    pass_duration_s,
    sin_elevation,
)
from satedge.sim.visibility import access_satellite, remaining_visibility_s

EL_MIN_RAD = math.radians(10.0)  # SPEC section 2 default mask
H_M = 500e3  # SPEC section 1 altitude [paper]


# --- remaining visibility ------------------------------------------------------------------------


def test_remaining_visibility_polar_pass_matches_paper_window() -> None:
    # Polar orbit seen from the North Pole: Earth rotation does not move the observer, so the
    # pass is exactly the paper's window 2 beta / n (Eq. 4-5); from culmination half remains.
    w = WalkerDelta(90.0, 1, 1, 0, H_M)
    pole = ground_ecef_m(math.pi / 2, 0.0)
    t_top = (math.pi / 2) / w.mean_motion_rad_s
    window = float(pass_duration_s(EL_MIN_RAD, H_M))
    t = np.array([t_top, t_top - 100.0, t_top + 200.0, t_top + 0.6 * window])
    got = remaining_visibility_s(w, np.zeros(4, int), pole, t, EL_MIN_RAD)
    np.testing.assert_allclose(
        got, [window / 2, window / 2 + 100, window / 2 - 200, 0.0], atol=0.02
    )


def _brute_force_remaining(
    w: WalkerDelta,
    idx: np.ndarray,
    ground: np.ndarray,
    t: np.ndarray,
    horizon_s: float,
    step_s: float = 0.005,
) -> np.ndarray:
    grid = np.arange(0.0, horizon_s + step_s, step_s)
    out = np.empty(idx.size)
    for b in range(idx.size):
        pos = w.position_of(idx[b], t[b] + grid)
        el = elevation_rad(pos[:, None, :], ground)[:, 0]
        below = np.flatnonzero(el < EL_MIN_RAD)
        out[b] = horizon_s if below.size == 0 else grid[below[0]]
    return out


def test_remaining_visibility_against_brute_force() -> None:
    w = default_walker()
    ground = ground_ecef_m(math.radians(DEFAULT_AREA_LAT_DEG), math.radians(DEFAULT_AREA_LON_DEG))
    rng = np.random.default_rng(7)
    t = rng.uniform(0.0, 86400.0, 24)
    el = elevation_rad(w.positions_ecef_m(t), ground)
    access, _, _ = access_satellite(el, np.full(t.size, -1), EL_MIN_RAD)
    idx = access.copy()
    idx[:4] = np.argmin(el[:4], axis=1)  # four satellites below the mask: 0 remaining
    got = remaining_visibility_s(w, idx, ground, t, EL_MIN_RAD)
    ref = _brute_force_remaining(w, idx, ground, t, 900.0)
    np.testing.assert_array_equal(got[:4], 0.0)
    np.testing.assert_allclose(got, ref, atol=0.02)  # brute-force grid 5 ms; bisection 10 ms
    assert np.all(got[4:] > 0.0) and np.all(got <= float(pass_duration_s(EL_MIN_RAD, H_M)) + 60)


def test_remaining_visibility_horizon_cap_and_shapes() -> None:
    w = default_walker()
    ground = np.broadcast_to(ground_ecef_m(0.5, 1.9), (3, 3))
    t = np.array([100.0, 2000.0, 5000.0])
    el = elevation_rad(w.positions_ecef_m(t), ground)
    idx = np.argmax(el, axis=1)
    full = remaining_visibility_s(w, idx, ground, t, EL_MIN_RAD)
    capped = remaining_visibility_s(w, idx, ground, t, EL_MIN_RAD, horizon_s=5.0)
    np.testing.assert_allclose(capped, np.minimum(full, 5.0), atol=0.02)
    np.testing.assert_allclose(remaining_visibility_s(w, idx, ground[0], t, EL_MIN_RAD), full)


# --- access satellite ---------------------------------------------------------------------------


def test_access_satellite_sticky_handover_and_outage() -> None:
    d = math.radians
    el = np.array(
        [
            [d(50), d(20), d(5)],  # previous (1) still visible: kept although 0 is higher
            [d(50), d(9), d(30)],  # previous (1) set: highest visible (0), handover
            [d(50), d(20), d(30)],  # no previous: highest, not a handover
            [d(5), d(9), d(-3)],  # nothing visible: -1
            [d(5), d(9), d(-3)],  # coverage lost: -1, no handover
            [d(10), d(9), d(-3)],  # exactly at the mask counts as visible
        ]
    )
    prev = np.array([1, 1, -1, -1, 2, 0])
    index, handover, any_visible = access_satellite(el, prev, EL_MIN_RAD)
    np.testing.assert_array_equal(index, [1, 0, 0, -1, -1, 0])
    np.testing.assert_array_equal(handover, [False, True, False, False, False, False])
    np.testing.assert_array_equal(any_visible, [True, True, True, False, False, True])


def test_access_over_a_day_hands_over_only_when_the_satellite_sets() -> None:
    w = default_walker()
    ground = ground_ecef_m(math.radians(DEFAULT_AREA_LAT_DEG), math.radians(DEFAULT_AREA_LON_DEG))
    t = np.arange(0.0, 86400.0, 3.0)  # SPEC slot length tau = 3 s
    el = elevation_rad(w.positions_ecef_m(t), ground)
    prev, n_handover = np.array([-1]), 0
    for k in range(t.size):
        index, handover, any_visible = access_satellite(el[k : k + 1], prev, EL_MIN_RAD)
        assert any_visible[0]
        if handover[0]:
            n_handover += 1
            assert el[k, prev[0]] < EL_MIN_RAD  # the old access satellite had set
        prev = index
    # sticky access lasts a good part of a ~443 s pass: between 86400/443 and 3x that many
    assert 86400 / 443 < n_handover < 3 * 86400 / 443


def _bisection_reference(w: WalkerDelta, idx: np.ndarray, ground: np.ndarray, t: np.ndarray,
                         horizon_s: float, step_s: float = 30.0, tol_s: float = 0.01) -> np.ndarray:
    """The window by plain one-step-at-a-time bisection (the algorithm before the speed-up)."""
    sin_min = math.sin(EL_MIN_RAD)

    def below(dt: np.ndarray) -> np.ndarray:
        pos = w.position_of(idx[:, None], t[:, None] + dt)
        return sin_elevation(pos[..., None, :], ground[None, None, :])[..., 0] < sin_min

    offsets = np.minimum(np.arange(0.0, horizon_s + step_s, step_s), horizon_s)
    is_below = below(np.broadcast_to(offsets, (idx.size, offsets.size)))
    first = np.argmax(is_below, axis=1)
    hi, lo = offsets[first], offsets[np.maximum(first - 1, 0)]
    for _ in range(math.ceil(math.log2(step_s / tol_s))):
        mid = 0.5 * (lo + hi)
        mid_below = below(mid[:, None])[:, 0]
        hi, lo = np.where(mid_below, mid, hi), np.where(mid_below, lo, mid)
    out = np.where(first == 0, 0.0, 0.5 * (lo + hi))
    return np.where(is_below.any(axis=1), out, horizon_s)


@pytest.mark.parametrize("horizon_s", [900.0, 5.0, 120.0])
def test_remaining_visibility_equals_plain_bisection_bit_for_bit(horizon_s: float) -> None:
    w = default_walker()
    rng = np.random.default_rng(11)
    ground = ground_ecef_m(math.radians(DEFAULT_AREA_LAT_DEG), math.radians(DEFAULT_AREA_LON_DEG))
    t = rng.uniform(0.0, 86400.0, 300)
    el = elevation_rad(w.positions_ecef_m(t), ground)
    idx = np.where(rng.random(300) < 0.8, np.argmax(el, axis=1), rng.integers(0, w.total, 300))
    got = remaining_visibility_s(w, idx, ground, t, EL_MIN_RAD, horizon_s=horizon_s)
    np.testing.assert_array_equal(got, _bisection_reference(w, idx, ground, t, horizon_s))
