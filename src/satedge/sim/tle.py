"""TLE constellations propagated with SGP4, and Walker shells written as TLEs (SPEC section 2).

:class:`TleConstellation` offers the same interface as :class:`~satedge.sim.orbits.WalkerDelta`
(``positions_ecef_m``, ``position_of``, ``total``, ``planes``, ``sats_per_plane``, ``phasing``,
``plane_index``, ``slot_index``) for any TLE set, through vectorised SGP4 (J2-J4, drag) and the
TEME -> ECEF rotation by GMST 1982 (:func:`gmst82_rad`). :func:`walker_to_tle_lines` writes a
Walker shell as TLEs, for tests and TLE-mode scenarios. Frames and units as in
:mod:`satedge.sim.orbits`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import Satrec, SatrecArray

from satedge.sim.orbits import SECONDS_PER_DAY, TWO_PI, WalkerDelta

__all__ = ["TleConstellation", "gmst82_rad", "walker_to_tle_lines"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


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


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a
