"""Orbits, visibility windows and access-satellite selection (SPEC section 2).

Frames. ``ECI`` is an inertial frame with z along the Earth's spin axis whose x axis points at the
Greenwich meridian at ``t = 0``; ``ECEF`` rotates with the Earth, so a point fixed in ECEF is
rotated by ``+omega_E t`` about z in ECI and ECI vectors are rotated by ``-omega_E t`` to get ECEF.
The Earth is a sphere of radius ``R_EARTH_M`` (SPEC section 11); heights and elevations are
spherical. Angles are radians unless the name says ``_deg``.

Two constellation models share one interface (``positions_ecef_m``, ``position_of``, ``total``,
``planes``, ``sats_per_plane``, ``phasing``, ``plane_index``, ``slot_index``):

- :class:`WalkerDelta`: analytic circular two-body orbits [choice, SPEC section 2];
- :class:`TleConstellation`: any TLE set through vectorised SGP4 (J2-J4, drag), TEME -> ECEF
  through GMST; :func:`walker_to_tle_lines` writes a Walker shell as TLEs.

Deviations from the paper (SPEC section 2): the paper gives only the visibility
window formula (Eq. 4-5, reconstructed in :func:`pass_duration_s`); the simulator instead uses the
*remaining* window from the propagated geometry (:func:`remaining_visibility_s`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import Satrec, SatrecArray

from satedge.sim.constants import MU_EARTH_M3_S2, OMEGA_EARTH_RAD_S, R_EARTH_M
from satedge.sim.scenario import ConstellationConfig, Scenario

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

TWO_PI = 2.0 * math.pi
SECONDS_PER_DAY = 86_400.0

_SHELL = ConstellationConfig()
DEFAULT_WALKER: dict[str, Any] = dict(
    inclination_deg=_SHELL.inclination_deg, total=_SHELL.total, planes=_SHELL.planes,
    phasing=_SHELL.phasing, altitude_m=_SHELL.altitude_m)
"""The scenario's default shell (``53 deg: 180/12/0`` at 500 km, defined once in
:class:`~satedge.sim.scenario.ConstellationConfig`) as WalkerDelta keyword arguments [choice].

It is the smallest Walker-delta shell found by an exhaustive search (T <= 200, every plane count P
with S = T/P >= 10, every phasing F) that keeps at least one satellite above 11 deg (the 10 deg
mask plus 1 deg margin) at every instant of 24 h at every latitude 0-60 deg (1 deg grid, 60 s
steps). S >= 10 keeps in-plane ISL chords > 160 km above the ground. Evidence
(tests/sim/test_orbits.py): minimum over 24 h of the highest elevation is 12.8 deg at 30 N 110 E
(1 s steps) and >= 12 deg at every latitude in [-60, 60] deg (5 s steps)."""

DEFAULT_AREA_LAT_DEG: float = Scenario().area_lat_deg
"""Default service-area latitude (deg N) [choice]: an inland mid-latitude site (western Hubei,
China), well inside the band the default shell covers continuously."""

DEFAULT_AREA_LON_DEG: float = Scenario().area_lon_deg
"""Default service-area longitude (deg E) [choice]; over 24 h the Earth turns the site through all
longitudes relative to the shell, so coverage barely depends on it."""


# ----------------------------------------------------------------------------------------------
# Circular-orbit formulas
# ----------------------------------------------------------------------------------------------


def orbital_speed_m_s(altitude_m: ArrayLike) -> FloatArray:
    r"""Speed of a circular orbit, :math:`v = \sqrt{\mu / (R_E + H)}`.

    Reference: two-body circular orbit; paper Eq. 4 uses it as the satellite speed [recon].

    Input: ``altitude_m`` [...] orbit altitude H (m).
    Output: [...] orbital speed (m/s).
    """
    return np.sqrt(MU_EARTH_M3_S2 / (R_EARTH_M + np.asarray(altitude_m, dtype=float)))


def orbital_period_s(altitude_m: ArrayLike) -> FloatArray:
    r"""Period of a circular orbit, :math:`T = 2 \pi \sqrt{(R_E + H)^3 / \mu}`.

    Input: ``altitude_m`` [...] orbit altitude H (m).
    Output: [...] period (s).
    """
    radius_m = R_EARTH_M + np.asarray(altitude_m, dtype=float)
    return TWO_PI * np.sqrt(radius_m**3 / MU_EARTH_M3_S2)


def slant_range_m(elevation_rad: ArrayLike, altitude_m: ArrayLike) -> FloatArray:
    r"""Ground-to-satellite distance at a given elevation (SPEC section 11).

    .. math:: d = \sqrt{(R_E + H)^2 - R_E^2 \cos^2 e} - R_E \sin e

    Input: ``elevation_rad`` [...] elevation e (rad); ``altitude_m`` [...] altitude H (m),
    broadcast together.
    Output: [...] slant range d (m).
    """
    e = np.asarray(elevation_rad, dtype=float)
    radius_m = R_EARTH_M + np.asarray(altitude_m, dtype=float)
    return np.sqrt(radius_m**2 - (R_EARTH_M * np.cos(e)) ** 2) - R_EARTH_M * np.sin(e)


def coverage_half_angle_rad(elevation_rad: ArrayLike, altitude_m: ArrayLike) -> FloatArray:
    r"""Earth-central half angle of a satellite's coverage cone (paper Eq. 5) [recon].

    .. math:: \beta = \arccos\!\left(\frac{R_E \cos e}{R_E + H}\right) - e

    Input: ``elevation_rad`` [...] minimum elevation e (rad); ``altitude_m`` [...] altitude H (m).
    Output: [...] half angle beta (rad).
    """
    e = np.asarray(elevation_rad, dtype=float)
    radius_m = R_EARTH_M + np.asarray(altitude_m, dtype=float)
    return np.arccos(R_EARTH_M * np.cos(e) / radius_m) - e


def pass_duration_s(elevation_min_rad: ArrayLike, altitude_m: ArrayLike) -> FloatArray:
    r"""Duration of a full overhead pass above ``elevation_min`` (paper Eq. 4-5) [recon].

    .. math:: T_{vis} = \frac{(R_E + H) \, 2 \beta}{v}

    with :math:`\beta` from :func:`coverage_half_angle_rad` and v from :func:`orbital_speed_m_s`.
    Earth rotation is ignored (as in the paper); about 443-445 s at 500 km and 10 deg.

    Input: ``elevation_min_rad`` [...] (rad); ``altitude_m`` [...] (m).
    Output: [...] window length (s).
    """
    radius_m = R_EARTH_M + np.asarray(altitude_m, dtype=float)
    arc_m = radius_m * 2.0 * coverage_half_angle_rad(elevation_min_rad, altitude_m)
    return arc_m / orbital_speed_m_s(altitude_m)


def ground_ecef_m(lat_rad: ArrayLike, lon_rad: ArrayLike, height_m: ArrayLike = 0.0) -> FloatArray:
    r"""ECEF position of a ground point on the spherical Earth.

    .. math:: \mathbf{g} = (R_E + h) (\cos\varphi \cos\lambda, \cos\varphi \sin\lambda,
              \sin\varphi)

    Input: ``lat_rad``, ``lon_rad`` [...] geocentric latitude and longitude (rad); ``height_m``
    [...] height above the sphere (m); broadcast together.
    Output: [..., 3] ECEF position (m).
    """
    lat, lon, h = np.broadcast_arrays(
        np.asarray(lat_rad, float), np.asarray(lon_rad, float), np.asarray(height_m, float)
    )
    r = R_EARTH_M + h
    return np.stack(
        [r * np.cos(lat) * np.cos(lon), r * np.cos(lat) * np.sin(lon), r * np.sin(lat)], axis=-1
    )


def elevation_rad(sat_ecef_m: ArrayLike, ground_ecef_m: ArrayLike) -> FloatArray:
    r"""Elevation of satellites seen from ground points (SPEC section 2).

    .. math:: e = \arcsin\frac{\mathbf{d} \cdot \hat{\mathbf{u}}}{|\mathbf{d}|},\quad
              \mathbf{d} = \mathbf{s} - \mathbf{g},\ \hat{\mathbf{u}} = \mathbf{g} / |\mathbf{g}|

    (spherical Earth: local up is radial). For speed, ``|d|^2`` is expanded as
    ``|s|^2 - 2 |g| (s . u) + |g|^2`` with component-wise products (no BLAS call, no
    [..., S, 3] difference array).

    Input: ``sat_ecef_m`` [..., S, 3] (m); ``ground_ecef_m`` [..., 3] (m), leading dims broadcast.
    Output: [..., S] elevation (rad), in [-pi/2, pi/2].
    """
    sin_el = _sin_elevation(np.asarray(sat_ecef_m, float), np.asarray(ground_ecef_m, float))
    return np.arcsin(sin_el, out=sin_el)


def azimuth_elevation_rad(
    sat_ecef_m: ArrayLike, ground_ecef_m: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    r"""Azimuth (clockwise from north) and elevation of satellites seen from ground points.

    .. math:: A = \operatorname{atan2}(\mathbf{d} \cdot \hat{\mathbf{e}}, \mathbf{d} \cdot
              \hat{\mathbf{n}}) mod 2\pi

    with the local east :math:`\hat{\mathbf{e}} = \hat{\mathbf{z}} 	imes \hat{\mathbf{u}}` and
    north :math:`\hat{\mathbf{n}} = \hat{\mathbf{u}} 	imes \hat{\mathbf{e}}` of the sphere (for
    sky plots; azimuth is undefined at the poles, where east is taken as +y).

    Input: ``sat_ecef_m`` [..., S, 3] (m); ``ground_ecef_m`` [..., 3] (m).
    Output: azimuth [..., S] in [0, 2 pi) and elevation [..., S] (rad).
    """
    sat = np.asarray(sat_ecef_m, dtype=float)
    g = np.asarray(ground_ecef_m, dtype=float)
    up = g / np.linalg.norm(g, axis=-1, keepdims=True)
    east = np.cross([0.0, 0.0, 1.0], up)
    east_norm = np.linalg.norm(east, axis=-1, keepdims=True)
    east = np.where(east_norm > 1e-12, east / np.maximum(east_norm, 1e-12), [0.0, 1.0, 0.0])
    north = np.cross(up, east)
    d = sat - g[..., None, :]
    azimuth = np.arctan2(
        np.einsum("...sk,...k->...s", d, east), np.einsum("...sk,...k->...s", d, north)
    )
    azimuth = np.mod(azimuth, TWO_PI)
    azimuth[azimuth >= TWO_PI] = 0.0  # mod of a tiny negative angle rounds up to 2 pi
    return azimuth, elevation_rad(sat, g)


def _sin_elevation(sat: FloatArray, g: FloatArray) -> FloatArray:
    """sin(elevation) [..., S] for sat [..., S, 3] and ground [..., 3] (see ``elevation_rad``)."""
    g_norm = np.linalg.norm(g, axis=-1)[..., None]  # [..., 1]
    up = g[..., None, :] / g_norm[..., None]  # [..., 1, 3]
    sx, sy, sz = sat[..., 0], sat[..., 1], sat[..., 2]
    s_up = sx * up[..., 0] + sy * up[..., 1] + sz * up[..., 2]  # [..., S]
    d_sq = sx * sx + sy * sy + sz * sz - 2.0 * g_norm * s_up
    d_sq += g_norm * g_norm
    sin_el = s_up - g_norm
    sin_el /= np.sqrt(np.maximum(d_sq, 1e-18, out=d_sq), out=d_sq)
    return np.clip(sin_el, -1.0, 1.0, out=sin_el)


# ----------------------------------------------------------------------------------------------
# Walker-delta shell
# ----------------------------------------------------------------------------------------------


class Constellation(Protocol):
    """What the visibility code needs from a constellation model."""

    def positions_ecef_m(self, t_s: ArrayLike) -> FloatArray: ...

    def position_of(self, sat_index: ArrayLike, t_s: ArrayLike) -> FloatArray: ...


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _time_coefficients(t_s: ArrayLike, mean_motion_rad_s: float) -> FloatArray:
    """[..., 6] coefficients ``(C c, S c, C s, S s, C, S)`` with C, S = cos, sin(n t) and
    c, s = cos, sin(omega_E t); positions are linear in them (see ``WalkerDelta``)."""
    t = np.asarray(t_s, dtype=float)
    big_c, big_s = np.cos(mean_motion_rad_s * t), np.sin(mean_motion_rad_s * t)
    c, s = np.cos(OMEGA_EARTH_RAD_S * t), np.sin(OMEGA_EARTH_RAD_S * t)
    return np.stack([big_c * c, big_s * c, big_c * s, big_s * s, big_c, big_s], axis=-1)


@dataclass(frozen=True)
class WalkerDelta:
    r"""Walker-delta shell ``i: T/P/F`` of circular orbits (SPEC section 2) [choice].

    Plane p has RAAN :math:`\Omega_p = 2\pi p / P`; satellite s of plane p has argument of
    latitude :math:`u_{p,s}(t) = 2\pi s / S + 2\pi F p / T + n t` with :math:`S = T / P`,
    :math:`n = \sqrt{\mu / a^3}`, :math:`a = R_E + H`. Satellite index is ``p * S + s``.

    Position in ECI: :math:`\mathbf{r} = \mathbf{A} \cos nt + \mathbf{B} \sin nt` with A the
    position and B = v / n at t = 0; ECEF rotates it by :math:`-\omega_E t` about z. Both are
    linear in six time coefficients (``_time_coefficients``), so ``positions_ecef_m`` is one
    [n, 6] x [6, 3T] matrix product on a basis computed once per shell.

    Deviations: two-body motion only (no J2: the real nodes regress ~4.6 deg/day at 53 deg,
    500 km); use
    :class:`TleConstellation` for SGP4.
    """

    inclination_deg: float
    total: int
    planes: int
    phasing: int
    altitude_m: float

    def __post_init__(self) -> None:
        for name in ("total", "planes", "phasing"):
            value = getattr(self, name)
            _check(
                isinstance(value, int | np.integer) and not isinstance(value, bool),
                f"{name} must be an integer (got {value!r})",
            )
        _check(self.total >= 1, f"total must be >= 1 (got {self.total})")
        _check(
            self.planes >= 1 and self.total % self.planes == 0,
            f"planes must divide total={self.total} (got planes={self.planes})",
        )
        _check(
            0 <= self.phasing < self.planes,
            f"phasing must be in [0, planes - 1 = {self.planes - 1}] (got {self.phasing})",
        )
        _check(self.altitude_m > 0, f"altitude_m must be > 0 (got {self.altitude_m})")
        _check(
            0.0 <= self.inclination_deg <= 180.0,
            f"inclination_deg must be in [0, 180] (got {self.inclination_deg})",
        )

    @property
    def sats_per_plane(self) -> int:
        """S = T / P."""
        return self.total // self.planes

    @property
    def radius_m(self) -> float:
        """Orbit radius a = R_E + H (m)."""
        return R_EARTH_M + float(self.altitude_m)

    @property
    def mean_motion_rad_s(self) -> float:
        """n = sqrt(mu / a^3) (rad/s)."""
        return math.sqrt(MU_EARTH_M3_S2 / self.radius_m**3)

    @cached_property
    def plane_index(self) -> IntArray:
        """[T] plane p of each satellite."""
        return _readonly(np.arange(self.total) // self.sats_per_plane)

    @cached_property
    def slot_index(self) -> IntArray:
        """[T] in-plane slot s of each satellite."""
        return _readonly(np.arange(self.total) % self.sats_per_plane)

    @cached_property
    def raan_rad(self) -> FloatArray:
        """[T] right ascension of the ascending node, 2 pi p / P (rad)."""
        return _readonly(TWO_PI * self.plane_index / self.planes)

    @cached_property
    def arg_lat0_rad(self) -> FloatArray:
        """[T] argument of latitude at t = 0, 2 pi s / S + 2 pi F p / T (rad)."""
        u = TWO_PI * self.slot_index / self.sats_per_plane
        return _readonly(u + TWO_PI * self.phasing * self.plane_index / self.total)

    @cached_property
    def _basis_m(self) -> FloatArray:
        """[6, T, 3] weights of the six time coefficients for every satellite (m)."""
        raan, u0 = self.raan_rad, self.arg_lat0_rad
        inc = math.radians(self.inclination_deg)
        p_hat = np.stack([np.cos(raan), np.sin(raan), np.zeros_like(raan)], axis=-1)
        q_hat = np.stack(
            [
                -np.sin(raan) * math.cos(inc),
                np.cos(raan) * math.cos(inc),
                np.full_like(raan, math.sin(inc)),
            ],
            axis=-1,
        )
        a = self.radius_m * (p_hat * np.cos(u0)[:, None] + q_hat * np.sin(u0)[:, None])
        b = self.radius_m * (q_hat * np.cos(u0)[:, None] - p_hat * np.sin(u0)[:, None])
        zero = np.zeros_like(raan)
        rows = [
            (a[:, 0], a[:, 1], zero),  # C c
            (b[:, 0], b[:, 1], zero),  # S c
            (a[:, 1], -a[:, 0], zero),  # C s
            (b[:, 1], -b[:, 0], zero),  # S s
            (zero, zero, a[:, 2]),  # C
            (zero, zero, b[:, 2]),  # S
        ]
        return _readonly(np.stack([np.stack(r, axis=-1) for r in rows]))

    @cached_property
    def _basis_flat_m(self) -> FloatArray:
        return _readonly(np.ascontiguousarray(self._basis_m.reshape(6, -1)))

    def positions_ecef_m(self, t_s: ArrayLike) -> FloatArray:
        """ECEF positions of all satellites.

        Input: ``t_s`` [...] seconds since the epoch (at t = 0 ECI and ECEF coincide).
        Output: [..., T, 3] positions (m).
        """
        t = np.asarray(t_s, dtype=float)
        coeff = _time_coefficients(t, self.mean_motion_rad_s).reshape(-1, 6)
        return _blocked_matmul(coeff, self._basis_flat_m).reshape(*t.shape, self.total, 3)

    def position_of(self, sat_index: ArrayLike, t_s: ArrayLike) -> FloatArray:
        r"""ECEF position of chosen satellites only, from the elements directly.

        .. math:: \mathbf{r} = a (\cos\Omega' \cos u - \sin\Omega' \sin u \cos i,\
                  \sin\Omega' \cos u + \cos\Omega' \sin u \cos i,\ \sin u \sin i),
                  \quad \Omega' = \Omega - \omega_E t

        Input: ``sat_index`` [...] int and ``t_s`` [...] (s), broadcast together.
        Output: [..., 3] positions (m).
        """
        idx = np.asarray(sat_index, dtype=np.int64)
        t = np.asarray(t_s, dtype=float)
        u = self.arg_lat0_rad[idx] + self.mean_motion_rad_s * t
        node = self.raan_rad[idx] - OMEGA_EARTH_RAD_S * t  # node longitude in ECEF
        cos_u, sin_u, cos_node, sin_node = np.cos(u), np.sin(u), np.cos(node), np.sin(node)
        inc = math.radians(self.inclination_deg)
        sin_u_cos_i = sin_u * math.cos(inc)
        x = cos_node * cos_u - sin_node * sin_u_cos_i
        y = sin_node * cos_u + cos_node * sin_u_cos_i
        return self.radius_m * np.stack([x, y, sin_u * math.sin(inc)], axis=-1)


def _blocked_matmul(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` in row blocks of ~2e5 multiply-adds: OpenBLAS then stays single-threaded, which
    avoids its thread start/spin stalls (measured 0.4 ms -> up to 8 ms for 1024 x 180 satellites
    when the cores are shared with other simulator processes)."""
    out = np.empty((a.shape[0], b.shape[1]))
    rows = max(1, 200_000 // max(1, b.size))
    for start in range(0, a.shape[0], rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])
    return out


def default_walker() -> WalkerDelta:
    """The default shell :data:`DEFAULT_WALKER`."""
    return WalkerDelta(**DEFAULT_WALKER)


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a


# ----------------------------------------------------------------------------------------------
# Visibility and access
# ----------------------------------------------------------------------------------------------


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
        return _sin_elevation(pos[..., None, :], g[:, None, :])[..., 0] < sin_min

    offsets = np.minimum(np.arange(0.0, horizon_s + step_s, step_s), horizon_s)
    is_below = below(np.broadcast_to(offsets, (idx.size, offsets.size)))
    first = np.argmax(is_below, axis=1)
    sets = is_below.any(axis=1)
    hi = offsets[first]
    lo = offsets[np.maximum(first - 1, 0)]
    for _ in range(max(1, math.ceil(math.log2(step_s / tolerance_s)))):
        mid = 0.5 * (lo + hi)
        mid_below = below(mid[:, None])[:, 0]
        hi, lo = np.where(mid_below, mid, hi), np.where(mid_below, lo, mid)
    out = np.where(first == 0, 0.0, 0.5 * (lo + hi))
    return np.where(sets, out, float(horizon_s)).reshape(np.shape(t0))


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


# ----------------------------------------------------------------------------------------------
# TLE constellations (SGP4)
# ----------------------------------------------------------------------------------------------


def gmst82_rad(jd_ut1: ArrayLike, fraction: ArrayLike = 0.0) -> FloatArray:
    r"""Greenwich mean sidereal time, IAU 1982 (Vallado ``gstime``; what SGP4's TEME expects).

    .. math:: \theta = 67310.54841 + (876600 \cdot 3600 + 8640184.812866) t
              + 0.093104 t^2 - 6.2 \cdot 10^{-6} t^3 \ \mathrm{s},
              \quad t = (JD_{UT1} - 2451545) / 36525

    Input: ``jd_ut1`` [...] Julian date (UT1; we pass UTC, |UT1 - UTC| < 0.9 s gives < 0.5 km
    at 500 km altitude) and ``fraction`` [...] day fraction added to it.
    Output: [...] GMST (rad) in [0, 2 pi).
    """
    t = ((np.asarray(jd_ut1, float) - 2451545.0) + np.asarray(fraction, float)) / 36525.0
    seconds = 67310.54841 + (876600.0 * 3600.0 + 8640184.812866) * t
    seconds = seconds + (0.093104 - 6.2e-6 * t) * t * t
    return np.mod(seconds * (TWO_PI / SECONDS_PER_DAY), TWO_PI)


def _rotate_z(r: FloatArray, angle_rad: FloatArray) -> FloatArray:
    """Rotate the frame by ``angle`` about z: r [..., 3], angle broadcast with r[..., 0]."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    x, y = r[..., 0], r[..., 1]
    return np.stack([c * x + s * y, c * y - s * x, r[..., 2]], axis=-1)


def _split_jd(jd: float) -> tuple[float, float]:
    whole = math.floor(jd - 0.5) + 0.5
    return whole, jd - whole


class TleConstellation:
    """A constellation propagated with vectorised SGP4 (``sgp4.api.SatrecArray``) [choice].

    Positions are TEME from SGP4 (WGS-72 gravity, J2-J4, drag) rotated to ECEF by GMST 1982
    (:func:`gmst82_rad`); polar motion (< 20 m) and UT1 - UTC (< 0.5 km) are ignored. Propagation
    errors (decayed satellites) give NaN positions. ``t_s`` counts seconds from ``epoch_jd``
    (default: the latest TLE epoch of the set).

    Shell structure, so the ISL code can treat a TLE shell like a Walker shell: at the epoch each
    satellite's RAAN and argument of latitude u are computed from its SGP4 state; satellites whose
    RAANs lie within ``raan_tolerance_deg`` of a neighbour (chained) share a plane; planes are
    numbered by increasing RAAN from the plane whose ascending node is nearest to longitude 0 at
    the epoch (so a shell from :func:`walker_to_tle_lines` keeps its Walker numbering; another
    ``epoch_jd`` may number it differently). If all planes hold S satellites, the phasing F is
    the one in [0, P-1] that best explains ``u_{p,s} = u_0 + 2 pi s / S + 2 pi F p / T`` and
    slots follow it; otherwise slots are ranks of u and F = 0 (and ``sats_per_plane`` raises).
    Satellites are reordered to index ``p * S + s``; ``tle_order[i]`` is satellite i's position
    in the input.
    """

    def __init__(
        self,
        satrecs: Sequence[Satrec],
        epoch_jd: float | None = None,
        raan_tolerance_deg: float = 1.0,
    ) -> None:
        if len(satrecs) == 0:
            raise ValueError("a TleConstellation needs at least one satellite")
        epochs = [s.jdsatepoch + s.jdsatepochF for s in satrecs]
        if epoch_jd is None:
            latest = int(np.argmax(epochs))
            self.epoch_jd_whole = float(satrecs[latest].jdsatepoch)
            self.epoch_jd_fraction = float(satrecs[latest].jdsatepochF)
        else:
            self.epoch_jd_whole, self.epoch_jd_fraction = _split_jd(float(epoch_jd))
        jd_fr = self._jd(np.zeros(1))
        raan, u = _raan_and_arg_lat(SatrecArray(list(satrecs)), jd_fr)
        node_lon = raan - gmst82_rad(*jd_fr)  # planes numbered by node longitude in ECEF
        plane, slot, self.phasing = _infer_shell(node_lon, u, math.radians(raan_tolerance_deg))
        order = np.lexsort((slot, plane))
        self.tle_order: IntArray = _readonly(order.astype(np.int64))
        self._satrecs = [satrecs[i] for i in order]
        self._array = SatrecArray(self._satrecs)
        self.plane_index: IntArray = _readonly(plane[order].astype(np.int64))
        self.slot_index: IntArray = _readonly(slot[order].astype(np.int64))
        self.total = len(self._satrecs)
        self.planes = int(self.plane_index.max()) + 1

    @classmethod
    def from_tle_lines(
        cls, lines: Sequence[str], epoch_jd: float | None = None, raan_tolerance_deg: float = 1.0
    ) -> TleConstellation:
        """Parse two-line or three-line (name + two lines) element sets; blank lines ignored."""
        rows = [line.rstrip() for line in lines if line.strip()]
        satrecs = []
        k = 0
        while k < len(rows):
            if rows[k].startswith("1 ") and k + 1 < len(rows) and rows[k + 1].startswith("2 "):
                satrecs.append(Satrec.twoline2rv(rows[k], rows[k + 1]))
                k += 2
            else:  # a name line precedes the pair
                k += 1
        return cls(satrecs, epoch_jd=epoch_jd, raan_tolerance_deg=raan_tolerance_deg)

    @property
    def epoch_jd(self) -> float:
        """Epoch of ``t_s = 0`` (Julian date, UTC)."""
        return self.epoch_jd_whole + self.epoch_jd_fraction

    @property
    def sats_per_plane(self) -> int:
        """S; raises ValueError when planes differ in size (+Grid needs equal planes)."""
        sizes = np.bincount(self.plane_index)
        if not np.all(sizes == sizes[0]):
            raise ValueError(
                f"planes have unequal sizes {sorted(set(sizes.tolist()))}; +Grid ISLs need the "
                "same number of satellites in every plane"
            )
        return int(sizes[0])

    def _jd(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        jd = np.full(t_s.shape, self.epoch_jd_whole)
        return jd, self.epoch_jd_fraction + t_s / SECONDS_PER_DAY

    def positions_ecef_m(self, t_s: ArrayLike) -> FloatArray:
        """ECEF positions of all satellites: ``t_s`` [...] (s) -> [..., T, 3] (m)."""
        t = np.asarray(t_s, dtype=float)
        jd, fr = self._jd(t.reshape(-1))
        err, r_km, _ = self._array.sgp4(jd, fr)  # [T, n], [T, n, 3]
        r_km[err != 0] = np.nan
        ecef = _rotate_z(r_km.transpose(1, 0, 2) * 1e3, gmst82_rad(jd, fr)[:, None])
        return ecef.reshape(*t.shape, self.total, 3)

    def position_of(self, sat_index: ArrayLike, t_s: ArrayLike) -> FloatArray:
        """ECEF position of chosen satellites only: [...] int, [...] (s) -> [..., 3] (m).

        Loops over the distinct satellites requested (not over the batch).
        """
        idx, t = np.broadcast_arrays(np.asarray(sat_index, dtype=np.int64), np.asarray(t_s, float))
        jd, fr = self._jd(t.reshape(-1))
        flat_idx = idx.reshape(-1)
        out = np.empty((flat_idx.size, 3))
        for k in np.unique(flat_idx):
            sel = flat_idx == k
            err, r_km, _ = self._satrecs[k].sgp4_array(jd[sel], fr[sel])
            r_km[err != 0] = np.nan
            out[sel] = r_km * 1e3
        return _rotate_z(out, gmst82_rad(jd, fr)).reshape(*idx.shape, 3)


def _raan_and_arg_lat(
    array: SatrecArray, jd_fr: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """[T] RAAN and argument of latitude (rad, TEME) from the SGP4 state at one instant."""
    _, r, v = array.sgp4(*jd_fr)
    r, v = r[:, 0], v[:, 0]
    h = np.cross(r, v)
    raan = np.mod(np.arctan2(h[:, 0], -h[:, 1]), TWO_PI)
    node = np.stack([np.cos(raan), np.sin(raan), np.zeros_like(raan)], axis=-1)
    in_plane = np.cross(h / np.linalg.norm(h, axis=-1, keepdims=True), node)
    u = np.arctan2(np.sum(r * in_plane, -1), np.sum(r * node, -1))
    return raan, np.mod(u, TWO_PI)


def _cluster_planes(raan: FloatArray, tol_rad: float) -> IntArray:
    """[T] plane labels: RAANs chained by gaps <= tol (circularly), numbered by mean RAAN."""
    raan = np.mod(raan, TWO_PI)
    order = np.argsort(raan)
    gaps = np.diff(np.append(raan[order], raan[order[0]] + TWO_PI))
    cut = gaps > tol_rad  # cut[k]: a new plane starts after order[k]
    if not cut.any():
        return np.zeros(raan.size, dtype=np.int64)
    start = (int(np.argmax(cut)) + 1) % raan.size
    rolled = np.roll(order, -start)
    labels = np.empty(raan.size, dtype=np.int64)
    labels[rolled] = np.concatenate([[0], np.cumsum(np.roll(cut, -start)[:-1])])
    mean = np.angle(np.bincount(labels, np.cos(raan)) + 1j * np.bincount(labels, np.sin(raan)))
    first = np.argmin(np.abs(mean))  # plane 0: mean node nearest 0, robust to round-off at 2 pi
    rank = np.argsort(np.argsort(np.mod(mean - mean[first], TWO_PI)))
    return rank[labels]


def _infer_shell(raan: FloatArray, u: FloatArray, tol_rad: float) -> tuple[IntArray, IntArray, int]:
    """Plane, slot and Walker phasing F of a TLE shell (see :class:`TleConstellation`)."""
    plane = _cluster_planes(raan, tol_rad)
    n_planes = int(plane.max()) + 1
    sizes = np.bincount(plane)
    phasing, shifted = 0, u
    if np.all(sizes == sizes[0]):
        n_slots = int(sizes[0])
        spacing = TWO_PI / n_slots
        u_plane0 = u[plane == 0]
        u_ref = u_plane0[np.argmin(np.minimum(u_plane0, TWO_PI - u_plane0))]  # nearest to 0
        offset = [
            np.mod(u - u_ref - TWO_PI * f * plane / raan.size, TWO_PI) for f in range(n_planes)
        ]
        resid = [np.mean(np.minimum(o % spacing, spacing - o % spacing) ** 2) for o in offset]
        phasing = int(np.argmin(resid))
        shifted = np.mod(offset[phasing] + 0.5 * spacing, TWO_PI)
    order = np.lexsort((shifted, plane))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.empty(u.size, dtype=np.int64)
    slot[order] = np.arange(u.size) - starts[plane[order]]
    return plane, slot, phasing


_TLE_LINE1_TAIL = "  .00000000  00000-0  00000-0 0  999"  # no drag terms, element set 999


def _tle_checksum(line: str) -> str:
    return str(sum(int(c) if c.isdigit() else c == "-" for c in line[:68]) % 10)


def walker_to_tle_lines(
    walker: WalkerDelta, epoch_jd: float, *, align_ecef: bool = True, name: str = "WALKER"
) -> list[str]:
    """Synthetic three-line element sets of a Walker shell (for tests and TLE-mode scenarios).

    Each satellite gets e = 0, argument of perigee 0, mean anomaly ``u_0`` and the two-body mean
    motion ``n`` (rev/day, 1e-8 precision; angles to 1e-4 deg, ~12 m), no drag. With
    ``align_ecef`` the RAANs are shifted by GMST(epoch) so that ECEF positions at ``t = 0`` equal
    ``walker.positions_ecef_m(0)``, as the analytic model puts ECI = ECEF at its epoch.

    Input: ``walker``; ``epoch_jd`` Julian date (UTC) of the element sets.
    Output: 3 T lines (name, line 1, line 2 per satellite), satellite numbers 1..T.
    """
    if walker.total > 99_999:
        raise ValueError(f"TLE catalogue numbers allow at most 99999 satellites ({walker.total})")
    epoch = datetime(2000, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=epoch_jd - 2451545.0)
    year_start = datetime(epoch.year, 1, 1, tzinfo=timezone.utc)
    doy = 1.0 + (epoch - year_start).total_seconds() / SECONDS_PER_DAY
    raan_shift = float(gmst82_rad(*_split_jd(epoch_jd))) if align_ecef else 0.0
    raan_deg = np.degrees(np.mod(walker.raan_rad + raan_shift, TWO_PI))
    anomaly_deg = np.degrees(np.mod(walker.arg_lat0_rad, TWO_PI))
    rev_per_day = walker.mean_motion_rad_s * SECONDS_PER_DAY / TWO_PI
    yy = epoch.year % 100
    lines = []
    for k in range(walker.total):
        l1 = f"1 {k + 1:05d}U {yy:02d}001A   {yy:02d}{doy:012.8f}{_TLE_LINE1_TAIL}"
        l2 = (
            f"2 {k + 1:05d} {walker.inclination_deg:8.4f} {raan_deg[k]:8.4f} 0000000"
            f"   0.0000 {anomaly_deg[k]:8.4f} {rev_per_day:11.8f}    0"
        )
        lines += [f"{name}-{k:05d}", l1 + _tle_checksum(l1), l2 + _tle_checksum(l2)]
    return lines
