"""Visibility windows and access-satellite selection (SPEC section 2).

Deviation from the paper (SPEC section 2): the paper gives only the full-pass window formula
(Eq. 4-5, reconstructed in :func:`~satedge.sim.orbits.pass_duration_s`); the simulator instead uses
the *remaining* window of the access satellite from the propagated geometry
(:func:`remaining_visibility_s`). Works with any :class:`~satedge.sim.orbits.Constellation`
(the analytic :class:`~satedge.sim.orbits.WalkerDelta` or an SGP4
:class:`~satedge.sim.tle.TleConstellation`). Frames and units as in :mod:`satedge.sim.orbits`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from satedge.sim.orbits import Constellation, sin_elevation

__all__ = ["access_satellite", "remaining_visibility_s"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def remaining_visibility_s(
    constellation: Constellation,
    sat_index: ArrayLike,
    ground_ecef_m: ArrayLike,
    t_s: ArrayLike,
    elevation_min_rad: float,
    horizon_s: float = 900.0,
    *,
    step_s: float = 30.0,
    tolerance_s: float = 0.01,
) -> FloatArray:
    """Time until a satellite sets below ``elevation_min`` (the paper's window, Sec. 5.3).

    Samples the elevation every ``step_s`` up to ``horizon_s`` and bisects the first interval
    where it is below the mask, to ``tolerance_s``. Within one pass the elevation is unimodal, so
    "below" is monotone on that interval; a satellite that sets needs most of an orbit (> 4000 s
    at 500 km) to rise again, so no set-and-rise can hide between samples ``step_s`` apart.

    Input: ``sat_index`` [B] int; ``ground_ecef_m`` [B, 3] or [3] (m); ``t_s`` [B] (s).
    Output: [B] remaining window (s): 0 if already below the mask, ``horizon_s`` if it does not
    set within the horizon.
    """
    idx = np.atleast_1d(np.asarray(sat_index, dtype=np.int64))
    t0 = np.broadcast_to(np.asarray(t_s, dtype=float), idx.shape)
    g = np.broadcast_to(np.asarray(ground_ecef_m, dtype=float), (*idx.shape, 3))

    sin_min = math.sin(elevation_min_rad)

    def below(dt_s: FloatArray) -> BoolArray:  # dt_s [B, K] -> [B, K]
        pos = constellation.position_of(idx[:, None], t0[:, None] + dt_s)
        return sin_elevation(pos[..., None, :], g[:, None, :])[..., 0] < sin_min

    offsets = np.minimum(np.arange(0.0, horizon_s + step_s, step_s), horizon_s)
    is_below = below(np.broadcast_to(offsets, (idx.size, offsets.size)))
    first = np.argmax(is_below, axis=1)
    sets = is_below.any(axis=1)
    lo, hi = _bisect(offsets[np.maximum(first - 1, 0)], offsets[first], below,
                     max(1, math.ceil(math.log2(step_s / tolerance_s))))
    out = np.where(first == 0, 0.0, 0.5 * (lo + hi))
    return np.where(sets, out, float(horizon_s)).reshape(np.shape(t0))


def _bisect(lo: FloatArray, hi: FloatArray, below: Callable[[FloatArray], BoolArray],
            halvings: int) -> tuple[FloatArray, FloatArray]:
    """``halvings`` bisection steps of [lo, hi] ([B] each; ``below`` false at lo, true at hi).

    Six steps at a time: ``below`` is evaluated at the 63 interior points that six bisection
    steps could visit, and the first sub-interval where it turns true is kept. Since ``below``
    is monotone on the interval this is the bisection's result, with a sixth of the calls (the
    same points, bit for bit while the width is a short binary fraction such as the default
    30 s; otherwise they can differ in the last bit).
    """
    rows = np.arange(lo.size)
    while halvings > 0:
        bits = min(_BITS_PER_ROUND, halvings)
        fraction = np.arange(1, 2**bits) / 2**bits
        points = np.concatenate([lo[:, None], lo[:, None] + (hi - lo)[:, None] * fraction,
                                 hi[:, None]], axis=1)  # [B, 2**bits + 1]
        is_below = np.concatenate([below(points[:, 1:-1]), np.ones((lo.size, 1), bool)], axis=1)
        first = 1 + np.argmax(is_below, axis=1)  # the first point at which it is below
        lo, hi = points[rows, first - 1], points[rows, first]
        halvings -= bits
    return lo, hi


_BITS_PER_ROUND = 6


def access_satellite(
    elevation_rad: ArrayLike, previous_index: ArrayLike, elevation_min_rad: float
) -> tuple[IntArray, BoolArray, BoolArray]:
    """Sticky access-satellite selection (SPEC section 2).

    Keep the previous access satellite while it is visible (el >= el_min); otherwise take the
    visible satellite with the highest elevation (lowest index on exact ties).

    Input: ``elevation_rad`` [B, S] (rad); ``previous_index`` [B] int (-1 = none).
    Output: ``index`` [B] (-1 when none visible); ``handover`` [B] bool, true when the link
    moves from one satellite to another (first acquisition and loss of coverage are not
    handovers); ``any_visible`` [B] bool.
    """
    el = np.asarray(elevation_rad, dtype=float)
    prev = np.asarray(previous_index, dtype=np.int64)
    visible = el >= elevation_min_rad
    any_visible: BoolArray = np.asarray(visible.any(axis=-1))
    best = np.argmax(np.where(visible, el, -np.inf), axis=-1)
    prev_ok = np.take_along_axis(visible, np.maximum(prev, 0)[..., None], axis=-1)[..., 0]
    prev_ok &= prev >= 0
    index: IntArray = np.where(prev_ok, prev, np.where(any_visible, best, -1)).astype(np.int64)
    handover: BoolArray = np.asarray((prev >= 0) & (index >= 0) & (index != prev))
    return index, handover, any_visible
