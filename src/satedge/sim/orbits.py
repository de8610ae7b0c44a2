"""Circular orbits, the Walker-delta shell and ground-to-satellite geometry (SPEC section 2).

Frames. ``ECI`` is an inertial frame with z along the Earth's spin axis whose x axis points at the
Greenwich meridian at ``t = 0``; ``ECEF`` rotates with the Earth, so a point fixed in ECEF is
rotated by ``+omega_E t`` about z in ECI and ECI vectors are rotated by ``-omega_E t`` to get ECEF.
The Earth is a sphere of radius ``R_EARTH_M`` (SPEC section 11); heights and elevations are
spherical. Angles are radians unless the name says ``_deg``.

Two constellation models share one interface (:class:`Constellation` plus ``total``, ``planes``,
``sats_per_plane``, ``phasing``, ``plane_index``, ``slot_index``):

- :class:`WalkerDelta` (here): analytic circular two-body orbits [choice, SPEC section 2];
- :class:`~satedge.sim.tle.TleConstellation`: any TLE set through vectorised SGP4.

Visibility windows and the access-satellite choice are in :mod:`satedge.sim.visibility`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    sin_el = sin_elevation(np.asarray(sat_ecef_m, float), np.asarray(ground_ecef_m, float))
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


def sin_elevation(sat: FloatArray, g: FloatArray) -> FloatArray:
    """sin(elevation) [..., S] of float arrays sat [..., S, 3] and ground [..., 3] (m), as in
    :func:`elevation_rad` without the arcsin (compare it with ``sin(el_min)`` instead)."""
    g_norm = np.sqrt(np.add.reduce(g * g, axis=-1))[..., None]  # [..., 1], as np.linalg.norm
    up = g[..., None, :] / g_norm[..., None]  # [..., 1, 3]
    sx, sy, sz = sat[..., 0], sat[..., 1], sat[..., 2]
    s_up = sx * up[..., 0] + sy * up[..., 1] + sz * up[..., 2]  # [..., S]
    d_sq = sx * sx + sy * sy + sz * sz - 2.0 * g_norm * s_up
    d_sq += g_norm * g_norm
    sin_el = s_up - g_norm
    sin_el /= np.sqrt(np.maximum(d_sq, 1e-18, out=d_sq), out=d_sq)
    return np.minimum(np.maximum(sin_el, -1.0, out=sin_el), 1.0, out=sin_el)  # clip


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
    :class:`~satedge.sim.tle.TleConstellation` for SGP4.
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
        out = np.empty((*u.shape, 3))
        x, y, z = out[..., 0], out[..., 1], out[..., 2]
        np.subtract(cos_node * cos_u, sin_node * sin_u_cos_i, out=x)
        np.add(sin_node * cos_u, cos_node * sin_u_cos_i, out=y)
        np.multiply(sin_u, math.sin(inc), out=z)
        out *= self.radius_m
        return out


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
