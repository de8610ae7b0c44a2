"""Regenerate docs/validation.md: every model checked against a reference no one here wrote.

Run from the repository root::

    python docs/make_validation.py          # orbits, fading, roofline (under a minute)
    python docs/make_validation.py --rl     # also re-train the RL cores (minutes; see the doc)
    python docs/make_validation.py --rl ppo-cartpole   # re-train only the named RL cases

The RL table is read back from ``docs/validation_rl.json`` when ``--rl`` is not given, so a
default run keeps the last recorded training results. ``tests/test_validation_doc.py`` runs the
cheap parts with smaller samples, checks their tolerances, and checks that the deterministic
sections of the doc (roofline, RL) match this script's output.

References: Skyfield (orbits, Earth orientation, rise/set search), SciPy's distributions and
quadrature (fading), the published Jetson token rates (roofline), and RL Baselines3 Zoo scores
with Gymnasium's ``reward_threshold`` (RL cores). Nothing here tunes a model: a check that fails is
reported as failing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import re
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "validation.md"
RL_JSON = ROOT / "docs" / "validation_rl.json"
if str(ROOT) not in sys.path:  # the RL and orbit helpers are imported from tests/
    sys.path.insert(0, str(ROOT))

from satedge.sim import channels, zoo  # noqa: E402
from satedge.sim.orbits import WalkerDelta, default_walker, elevation_rad, ground_ecef_m  # noqa: E402
from satedge.sim.scenario import Scenario  # noqa: E402
from satedge.sim.visibility import remaining_visibility_s  # noqa: E402

FloatArray = NDArray[np.float64]


# ==================================================================================== tables
@dataclass
class Row:
    """One table row: its cells and its verdict (``None``: informational, no tolerance)."""

    cells: list[str]
    ok: bool | None


@dataclass
class Table:
    """A Markdown table; a last ``verdict`` column is appended from the rows."""

    header: list[str]
    rows: list[Row] = field(default_factory=list)

    def add(self, ok: bool | None, *cells: object) -> None:
        self.rows.append(Row([_cell(c) for c in cells], ok))

    @property
    def passed(self) -> bool:
        return all(r.ok is not False for r in self.rows)

    def markdown(self) -> str:
        lines = ["| " + " | ".join([*self.header, "verdict"]) + " |",
                 "|" + "---|" * (len(self.header) + 1)]
        for r in self.rows:
            lines.append("| " + " | ".join([*r.cells, _verdict(r.ok)]) + " |")
        return "\n".join(lines)


def _verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("pass" if ok else "**FAIL**")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _num(x: float, digits: int = 3) -> str:
    """A float with ``digits`` significant figures, no exponent for ordinary magnitudes."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{decimals}f}"
    return f"{x:.{digits - 1}e}"


@dataclass
class Section:
    """One validated model: a key (for the doc markers), prose and tables."""

    key: str
    title: str
    body: str
    tables: list[tuple[str, Table]]
    summary: str  # one line for the summary table: what was compared
    reading: str = ""  # what the numbers say, generated from them

    @property
    def passed(self) -> bool:
        return all(t.passed for _, t in self.tables)

    @property
    def counts(self) -> tuple[int, int, int]:
        rows = [r for _, t in self.tables for r in t.rows]
        return (sum(r.ok is True for r in rows), sum(r.ok is False for r in rows),
                sum(r.ok is None for r in rows))

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", self.body.strip(), ""]
        for caption, table in self.tables:
            parts += [caption, "", table.markdown(), ""]
        if self.reading:
            parts += [textwrap.fill("**Reading.** " + " ".join(self.reading.split()), 100), ""]
        return "\n".join(parts).rstrip() + "\n"


# ==================================================================================== 1 orbits
@dataclass(frozen=True)
class OrbitTolerance:
    """What the simulator needs from its geometry.

    ``position_m``: 500 m, the error budget the TLE model documents for taking UT1 = UTC
    (satedge.sim.tle.gmst82_rad); 0.003 dB of path loss and 1.7 us of delay at 1,700 km.
    ``elevation_deg``: 0.1 deg, about twice what 500 m subtends (0.057 deg) from the ground at
    the 500 km zenith. ``window_s``: 1 s, a third of a 3 s slot.
    """

    position_m: float = 500.0
    elevation_deg: float = 0.1
    window_s: float = 1.0


@dataclass
class OrbitComparison:
    """Largest differences between one of our constellations and its Skyfield reference."""

    position_m: float
    elevation_deg: float
    passes: int  # complete passes the reference finds
    passes_ours: int  # passes of ours: paired with them, or found on our own
    start_s: float
    end_s: float
    window_ours_s: float  # mean window length of our passes (paired or our own, see passes_ours)
    window_ref_s: float
    horizon_s: float
    position_at_s: dict[float, float] = field(default_factory=dict)
    dut1_s: float = 0.0  # UT1 - UTC at the epoch (IERS, from Skyfield); the simulator takes 0
    radius_m: float = 0.0  # largest orbit radius of the compared satellites at the epoch

    @property
    def dut1_displacement_m(self) -> float:
        """How far the Earth turns in ``dut1_s`` at ``radius_m``: the position error that taking
        UT1 = UTC alone causes."""
        from satedge.sim.constants import OMEGA_EARTH_RAD_S

        return abs(self.dut1_s) * OMEGA_EARTH_RAD_S * self.radius_m


def _site() -> tuple[Any, FloatArray]:
    """The site of tests/sim/test_orbits_skyfield.py: Skyfield's observer on our sphere and our
    ECEF point (default service area, 30 N 110 E)."""
    from tests.sim.test_orbits_skyfield import SITE_LAT_DEG, SITE_LON_DEG, _sphere_site

    return _sphere_site(), ground_ecef_m(math.radians(SITE_LAT_DEG), math.radians(SITE_LON_DEG))


def _kepler_reference(walker: WalkerDelta, k: int, t0: Any) -> Any:
    """Skyfield's two-body orbit of Walker satellite ``k``, independent of our propagation.

    Skyfield builds the initial state from the elements (``keplerlib.ele_to_vec``) and propagates
    it with its universal-variable Kepler solver (a port of SPICE ``prop2b``). Our inertial frame
    has the ITRS axes at the epoch, so the state is rotated into GCRS with Skyfield's own Earth
    orientation at ``t0``; from then on Skyfield's ITRS (precession, nutation, Earth rotation
    angle) is the reference for our uniform rotation.
    """
    from skyfield.constants import AU_KM, DAY_S
    from skyfield.framelib import itrs
    from skyfield.keplerlib import _KeplerOrbit, ele_to_vec
    from skyfield.units import Distance, Velocity

    from satedge.sim.constants import MU_EARTH_M3_S2

    mu_km3_s2 = MU_EARTH_M3_S2 / 1e9
    pos, vel = ele_to_vec(walker.radius_m / 1e3, 0.0, math.radians(walker.inclination_deg),
                          float(walker.raan_rad[k]), 0.0, float(walker.arg_lat0_rad[k]), mu_km3_s2)
    to_gcrs = itrs.rotation_at(t0).T
    return _KeplerOrbit(Distance(km=to_gcrs @ pos), Velocity(km_per_s=to_gcrs @ vel), t0,
                        mu_au3_d2=mu_km3_s2 * DAY_S**2 / AU_KM**3, center=399)


def _reference_passes(ref: Any, site: Any, t0: Any, horizon_s: float, el_min_deg: float
                      ) -> list[tuple[float, float]]:
    """(rise, set) seconds after ``t0`` of every complete pass, by Skyfield's ``find_discrete``
    (1 ms precision) on Skyfield's own altitude."""
    from skyfield.searchlib import find_discrete

    topo = ref - site

    def above(t: Any) -> Any:
        return topo.at(t).altaz()[0].degrees >= el_min_deg

    above.step_days = 60.0 / 86_400.0  # type: ignore[attr-defined]  # passes last > 5 min
    times, values = find_discrete(t0, t0 + horizon_s / 86_400.0, above)
    seconds = (times - t0) * 86_400.0
    return [(float(seconds[i]), float(seconds[i + 1])) for i in range(len(values) - 1)
            if values[i] and not values[i + 1]]


def _our_passes(const: Any, k: int, ground: FloatArray, ref_passes: list[tuple[float, float]],
                el_min_deg: float) -> list[tuple[float, float]]:
    """Our (rise, set) for each reference pass: the rise by root-finding our elevation near the
    reference rise (the simulator has no rise finder), the set from the rise by the simulator's
    own :func:`remaining_visibility_s`. NaN where ours does not cross within 120 s."""
    from scipy.optimize import brentq

    def above_mask_deg(t_s: float) -> float:
        pos = const.position_of(np.array([k]), np.array([t_s]))
        return math.degrees(float(elevation_rad(pos, ground)[0])) - el_min_deg

    out = []
    for rise, _ in ref_passes:
        lo, hi = rise - 120.0, rise + 120.0
        if not above_mask_deg(lo) < 0.0 < above_mask_deg(hi):
            out.append((math.nan, math.nan))
            continue
        our_rise = brentq(above_mask_deg, lo, hi, xtol=1e-4)
        left = remaining_visibility_s(const, np.array([k]), ground, np.array([our_rise + 0.5]),
                                      math.radians(el_min_deg))[0]
        out.append((our_rise, our_rise + 0.5 + float(left)))
    return out


def _scan_passes(const: Any, k: int, ground: FloatArray, horizon_s: float, el_min_deg: float
                 ) -> list[tuple[float, float]]:
    """Our own complete passes of satellite ``k`` (no reference): rises where our elevation on a
    10 s grid crosses the mask, refined by root-finding; sets by ``remaining_visibility_s``."""
    from scipy.optimize import brentq

    grid = np.arange(0.0, horizon_s, 10.0)
    el = np.degrees(elevation_rad(const.position_of(np.full(grid.size, k), grid), ground))
    ups = np.flatnonzero((el[:-1] < el_min_deg) & (el[1:] >= el_min_deg))

    def above_mask_deg(t_s: float) -> float:
        pos = const.position_of(np.array([k]), np.array([t_s]))
        return math.degrees(float(elevation_rad(pos, ground)[0])) - el_min_deg

    out = []
    for i in ups:
        rise = brentq(above_mask_deg, grid[i], grid[i + 1], xtol=1e-4)
        left = remaining_visibility_s(const, np.array([k]), ground, np.array([rise + 0.5]),
                                      math.radians(el_min_deg))[0]
        if rise + 0.5 + left < horizon_s:
            out.append((rise, rise + 0.5 + float(left)))
    return out


def compare_orbits(const: Any, refs: dict[int, Any], t0: Any, horizon_s: float, *,
                   step_s: float = 60.0, window_sats: Sequence[int] = (),
                   el_min_deg: float = 10.0, marks_s: Sequence[float] = (),
                   paired: bool = True) -> OrbitComparison:
    """Compare ``const`` (ours, t = 0 at the Skyfield time ``t0``) with Skyfield references
    ``refs[k]`` over ``[0, horizon_s]``: ITRS positions, elevations on the spherical-Earth site
    (where either is above -5 deg) and, for ``window_sats``, every complete pass: ``paired``
    compares each reference pass with ours pass by pass; otherwise only the mean window
    lengths of the passes each side finds on its own are compared (start and end are NaN)."""
    from skyfield.framelib import itrs

    site, ground = _site()
    seconds = np.arange(0.0, horizon_s + step_s / 2, step_s)
    t = t0 + seconds / 86_400.0
    ours = const.positions_ecef_m(seconds)
    pos_err = np.zeros((len(refs), seconds.size))
    el_err = 0.0
    for i, (k, ref) in enumerate(refs.items()):
        pos_err[i] = np.linalg.norm(ref.at(t).frame_xyz(itrs).m.T - ours[:, k], axis=-1)
        alt = (ref - site).at(t).altaz()[0].degrees
        el = np.degrees(elevation_rad(ours[:, k], ground))
        near = (alt > -5.0) | (el > -5.0)
        el_err = max(el_err, float(np.abs(alt - el)[near].max(initial=0.0)))
    starts, ends, ours_len, ref_len = [], [], [], []
    for k in window_sats:
        ref_passes = _reference_passes(refs[k], site, t0, horizon_s, el_min_deg)
        ref_len += [r1 - r0 for r0, r1 in ref_passes]
        if not paired:
            ours_len += [o1 - o0 for o0, o1 in _scan_passes(const, k, ground, horizon_s,
                                                            el_min_deg)]
            continue
        for (r0, r1), (o0, o1) in zip(ref_passes, _our_passes(const, k, ground, ref_passes,
                                                              el_min_deg), strict=True):
            starts.append(abs(o0 - r0))
            ends.append(abs(o1 - r1))
            ours_len.append(o1 - o0)
    marks = {m: float(pos_err[:, seconds <= m + 1e-9].max()) for m in marks_s}
    radius = float(np.linalg.norm(ours[0, list(refs)], axis=-1).max())
    return OrbitComparison(float(pos_err.max()), el_err, len(ref_len), len(ours_len),
                           _nanmax(starts), _nanmax(ends), _nanmean(ours_len), _nanmean(ref_len),
                           horizon_s, marks, float(t0.dut1), radius)


def _nanmax(x: list[float]) -> float:
    return float("nan") if not x or np.isnan(x).any() else float(np.max(x))


def _nanmean(x: list[float]) -> float:
    return float("nan") if not x else float(np.mean(x))


def _utc(ts: Any, jd_utc: float, seconds: float = 0.0) -> Any:
    """Skyfield time ``seconds`` after a UTC Julian date (as sgp4 counts it, 86,400 s a day)."""
    d = datetime(2000, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=jd_utc - 2451545.0)
    return ts.utc(d.year, d.month, d.day, d.hour, d.minute,
                  d.second + d.microsecond / 1e6 + seconds)


REAL_TLE_SATS = ("28057", "29238")
"""Two low, near-circular orbits from the SGP4 verification set that ships with ``sgp4``
(Vallado et al. 2006, SGP4-VER.TLE): 28057 (98.4 deg, ~14.35 rev/day) and 29238 (51.6 deg,
~15.74 rev/day, strong drag)."""


def _real_tle_lines() -> list[str]:
    import sgp4

    rows = (Path(sgp4.__file__).with_name("SGP4-VER.TLE")).read_text().splitlines()
    out = []
    for i, row in enumerate(rows[:-1]):
        if row.startswith("1 ") and row[2:7] in REAL_TLE_SATS and rows[i + 1].startswith("2 "):
            out += [f"SAT-{row[2:7]}", row[:69], rows[i + 1][:69]]
    if len(out) != 3 * len(REAL_TLE_SATS):
        raise RuntimeError(f"could not find {REAL_TLE_SATS} in sgp4's SGP4-VER.TLE")
    return out


@dataclass(frozen=True)
class OrbitSizes:
    """How much to compare (the test uses a smaller set)."""

    horizon_s: float = 86_400.0
    position_sats: Sequence[int] = tuple(range(180))
    window_sats: Sequence[int] = tuple(range(0, 180, 15))  # one satellite of each plane


def orbit_comparisons(sizes: OrbitSizes = OrbitSizes()) -> dict[str, OrbitComparison]:
    """The four comparisons of the orbit section, keyed ``walker``, ``tle_shell``, ``tle_real``
    and ``walker_vs_sgp4``."""
    from skyfield.api import EarthSatellite, load
    from tests.sim.test_orbits_skyfield import EPOCH_JD, _skyfield_sat

    from satedge.sim.tle import TleConstellation, walker_to_tle_lines

    ts = load.timescale()
    walker = default_walker()
    t0 = _utc(ts, EPOCH_JD)
    lines = walker_to_tle_lines(walker, EPOCH_JD)
    kw: dict[str, Any] = dict(window_sats=sizes.window_sats)
    out = {"walker": compare_orbits(
        walker, {k: _kepler_reference(walker, k, t0) for k in sizes.position_sats}, t0,
        sizes.horizon_s, **kw)}
    sgp4_refs = {k: _skyfield_sat(lines, k, ts) for k in sizes.position_sats}
    out["tle_shell"] = compare_orbits(TleConstellation.from_tle_lines(lines), sgp4_refs, t0,
                                      sizes.horizon_s, **kw)
    real = _real_tle_lines()
    const = TleConstellation.from_tle_lines(real)
    refs = {int(np.flatnonzero(const.tle_order == i)[0]):
            EarthSatellite(real[3 * i + 1], real[3 * i + 2], real[3 * i], ts)
            for i in range(len(REAL_TLE_SATS))}
    out["tle_real"] = compare_orbits(const, refs, _utc(ts, const.epoch_jd), sizes.horizon_s,
                                     window_sats=tuple(refs), step_s=30.0)
    out["walker_vs_sgp4"] = compare_orbits(walker, sgp4_refs, t0, sizes.horizon_s, **kw,
                                           marks_s=(0.0, 300.0, 3600.0, 3 * 3600.0),
                                           paired=False)
    return out


def _coverage_deg(horizon_s: float, step_s: float = 30.0) -> tuple[float, float]:
    """Minimum over the horizon of the highest elevation of any satellite at the site: our
    analytic shell, and Skyfield's SGP4 of the same shell (its TLEs)."""
    from skyfield.api import load
    from tests.sim.test_orbits_skyfield import EPOCH_JD, _skyfield_sat

    from satedge.sim.tle import walker_to_tle_lines

    ts = load.timescale()
    walker = default_walker()
    site, ground = _site()
    lines = walker_to_tle_lines(walker, EPOCH_JD)
    seconds = np.arange(0.0, horizon_s, step_s)
    t = _utc(ts, EPOCH_JD) + seconds / 86_400.0
    best = np.full(seconds.size, -90.0)
    for k in range(walker.total):
        best = np.maximum(best, (_skyfield_sat(lines, k, ts) - site).at(t).altaz()[0].degrees)
    ours = np.degrees(elevation_rad(walker.positions_ecef_m(seconds), ground)).max(axis=-1)
    return float(ours.min()), float(best.min())


def _implementation_table(comps: dict[str, OrbitComparison], tol: OrbitTolerance) -> Table:
    names = {"walker": "analytic Walker shell (`WalkerDelta`) vs Skyfield two-body",
             "tle_shell": "Walker shell as TLEs (`TleConstellation`) vs Skyfield SGP4",
             "tle_real": f"real TLEs {', '.join(REAL_TLE_SATS)} (`TleConstellation`) vs "
                         "Skyfield SGP4"}
    table = Table(["case", "quantity", "ours vs reference", "tolerance"])
    for key, name in names.items():
        c = comps[key]
        table.add(c.position_m <= tol.position_m, name, "max position error (m)",
                  c.position_m, f"{tol.position_m:g}")
        table.add(c.elevation_deg <= tol.elevation_deg, name, "max elevation error (deg)",
                  c.elevation_deg, f"{tol.elevation_deg:g}")
        for label, value in (("start", c.start_s), ("end", c.end_s)):
            table.add(bool(c.passes) and value <= tol.window_s, name,
                      f"max window {label} difference (s), {c.passes} passes", value,
                      f"{tol.window_s:g}")
    return table


def _model_form_table(c: OrbitComparison, coverage: tuple[float, float]) -> Table:
    table = Table(["quantity", "analytic shell", "SGP4 of the same shell", "difference",
                   "tolerance"])
    for mark, err in c.position_at_s.items():
        label = ("at the epoch (SGP4 mean vs osculating elements)" if mark == 0 else
                 f"within {mark:g} s (one 100-slot episode)" if mark == 300 else
                 f"within {mark / 3600:g} h")
        table.add(None, f"max position difference {label}", "", "",
                  f"{err / 1e3:.1f} km", "none (documented deviation)")
    table.add(None, f"max position difference within {c.horizon_s / 3600:g} h", "", "",
              f"{c.position_m / 1e3:.1f} km", "none (documented deviation)")
    rel = (c.window_ours_s - c.window_ref_s) / c.window_ref_s
    table.add(abs(rel) <= 0.02,
              f"mean visibility window (s), {c.passes_ours} / {c.passes} complete passes",
              c.window_ours_s, c.window_ref_s, f"{100 * rel:+.2f} %", "2 %")
    table.add(abs(coverage[0] - coverage[1]) <= 1.0,
              "coverage: min over 24 h of the highest elevation (deg)", coverage[0],
              coverage[1], f"{coverage[0] - coverage[1]:+.2f} deg", "1 deg")
    return table


ORBIT_BODY = """
**Reference.** [Skyfield](https://rhodesmill.org/skyfield/) {skyfield} (Rhodes): its own SGP4
wrapper, IAU Earth orientation (precession, nutation, Earth rotation angle, IERS UT1 tables),
two-body Kepler propagator (`keplerlib`, a port of SPICE `prop2b`), topocentric altitude
(`altaz`) and discrete-event search (`find_discrete`, 1 ms precision). The site is the default
service area (30 N, 110 E) on our spherical Earth (Skyfield `Geoid('sphere', 6371 km)`, as in
`tests/sim/test_orbits_skyfield.py`, whose helpers this script imports).

**Method.** Positions in the Earth-fixed frame (ITRS) every 60 s (30 s for the real TLEs) over
{horizon:g} h for {n_pos} satellites; elevations where either side is above -5 deg; visibility
windows at the 10 deg mask for one satellite of each of the 12 planes ({n_win}
satellites): Skyfield's rise and set from its own altitude; ours from our elevation (rise,
root-found) and the simulator's `remaining_visibility_s` (set). Three implementation checks:

- the analytic `WalkerDelta` shell (the default; two-body, uniform Earth rotation) against
  Skyfield's two-body propagation of the same elements, initialised in GCRS through Skyfield's
  Earth orientation at the epoch 2024-01-01 00:00 UTC;
- `TleConstellation` on the default shell written as TLEs (`walker_to_tle_lines`) against
  Skyfield's `EarthSatellite`;
- `TleConstellation` on two real element sets from the SGP4 verification set shipped with
  `sgp4` (Vallado et al. 2006; satellites {real}), one constellation with two epochs, over
  {horizon:g} h from the later epoch.

Then a model-form check: the analytic two-body shell against SGP4 (J2-J4 and drag) for the same
shell. The simulator starts each episode at a random time of day, so what matters is not the
drift since the epoch (reported, no tolerance: `WalkerDelta` documents that it has no J2) but
whether the statistics the agent sees survive: the mean visibility window and the coverage
(the lowest best elevation over 24 h, all 180 satellites, 30 s steps).

**Tolerances** (what the simulator needs; `OrbitTolerance` in the script): position {pos:g} m
(the error budget `satedge.sim.tle` documents for UT1 = UTC), elevation {el:g} deg (about
twice the 0.057 deg that 500 m subtends at the 500 km zenith), window start and end {win:g} s
(a third of a 3 s slot); for the model-form check, the mean window within 2 % and coverage
within 1 deg.
"""


def orbit_section(sizes: OrbitSizes = OrbitSizes(), tol: OrbitTolerance = OrbitTolerance()
                  ) -> Section:
    import skyfield

    comps = orbit_comparisons(sizes)
    coverage = _coverage_deg(sizes.horizon_s)
    body = ORBIT_BODY.format(skyfield=skyfield.__version__, horizon=sizes.horizon_s / 3600,
                             n_pos=len(sizes.position_sats), n_win=len(sizes.window_sats),
                             real=", ".join(REAL_TLE_SATS), pos=tol.position_m,
                             el=tol.elevation_deg, win=tol.window_s)
    return Section("orbits", "1. Orbits, elevations and visibility windows", body,
                   [("Implementation checks:", _implementation_table(comps, tol)),
                    ("Model-form check (analytic two-body shell vs SGP4, same shell):",
                     _model_form_table(comps["walker_vs_sgp4"], coverage))],
                   "positions, elevations, windows vs Skyfield (two-body and SGP4)",
                   _orbit_reading(comps, coverage))


def _orbit_reading(comps: dict[str, OrbitComparison], coverage: tuple[float, float]) -> str:
    real, shell, walker, form = (comps[k] for k in ("tle_real", "tle_shell", "walker",
                                                    "walker_vs_sgp4"))
    impl = [walker, shell, real]
    el = max(c.elevation_deg for c in impl)
    win = max(max(c.start_s, c.end_s) for c in impl)
    rel = 100 * (form.window_ours_s / form.window_ref_s - 1)
    episode = form.position_at_s.get(300.0, math.nan) / 1e3
    return f"""
The implementation errors left are the Earth-orientation simplifications the code documents:
the simulator turns the Earth uniformly and takes UT1 = UTC. For the real TLEs (2006 epoch),
IERS UT1 - UTC is {real.dut1_s:.3f} s, which alone moves a satellite at their orbit radius by
{real.dut1_displacement_m:.0f} m: that is the {real.position_m:.0f} m found. For the 2024 shell it
is {shell.dut1_s:.4f} s ({shell.dut1_displacement_m:.1f} m): {shell.position_m:.1f} m were found
through SGP4, where both sides turn TEME by the same sidereal time, and {walker.position_m:.1f} m
two-body, where Skyfield's precession and nutation over 24 h, which a uniform rotation leaves
out, add the rest. Elevations agree to {el:.1e} deg and window starts and ends to {win:.3f} s,
far inside the tolerances; the set times are as exact as the simulator's 0.01 s bisection. The
analytic shell has no J2 and uses the mean elements as osculating ones, so it departs from SGP4 by
{episode:.0f} km already within one episode and by {form.position_m / 1e3:.0f} km after
{form.horizon_s / 3600:g} h; since episodes start at random times of day, what the agent sees is
the statistics, and those agree: mean window {rel:+.2f} %, coverage {coverage[0]:.2f} vs
{coverage[1]:.2f} deg (the default shell's continuous coverage holds under SGP4 too).
"""


# ==================================================================================== 2 fading
@dataclass(frozen=True)
class FadingTolerance:
    """Moments within ``z_max`` standard errors (estimated from the sample); KS and binned
    chi-square p-values at least ``p_min``; the closed-form pdfs equal to ``pdf_rel``."""

    z_max: float = 4.0
    p_min: float = 1e-3
    pdf_rel: float = 1e-9


@dataclass(frozen=True)
class Reference:
    """An independent description of a power-gain distribution: moments and cdf/pdf."""

    name: str
    mean: float
    second: float  # E|h|^4
    cdf: Callable[[FloatArray], FloatArray]
    pdf: Callable[[FloatArray], FloatArray]


def rician_reference(k_linear: float) -> Reference:
    """Unit-mean Rician power: ``2 (K + 1) |h|^2`` is noncentral chi-square, 2 degrees of freedom,
    noncentrality ``2 K`` (scipy.stats.ncx2); ``E|h|^4 = (K^2 + 4K + 2) / (K + 1)^2``."""
    from scipy import stats

    s = 2.0 * (k_linear + 1.0)
    return Reference(
        f"Rician, K = {10 * math.log10(k_linear):g} dB", 1.0,
        (k_linear**2 + 4 * k_linear + 2) / (k_linear + 1) ** 2,
        lambda x: stats.ncx2.cdf(s * np.asarray(x), 2, 2 * k_linear),
        lambda x: s * stats.ncx2.pdf(s * np.asarray(x), 2, 2 * k_linear))


def shadowed_rician_reference(b: float, m: float, omega: float, name: str) -> Reference:
    """Shadowed-Rician power ``|A e^{j phi} + Z|^2`` as a mixture: given the Nakagami amplitude
    ``A``, ``|h|^2 / b`` is noncentral chi-square (2 dof, noncentrality ``A^2 / b``); the mixture
    over ``A^2 = (omega / m) G``, ``G ~ Gamma(m, 1)`` is integrated by generalised Gauss-Laguerre
    quadrature (96 nodes, scipy.special.roots_genlaguerre). Moments by hand from the same
    model: ``E|h|^2 = 2b + omega``, ``E|h|^4 = omega^2 (1 + 1/m) + 8 b omega + 8 b^2``."""
    from scipy import special, stats

    nodes, weights = special.roots_genlaguerre(96, m - 1.0)
    weights = weights / special.gamma(m)
    nc = omega * nodes / (m * b)

    def cdf(x: FloatArray) -> FloatArray:
        return stats.ncx2.cdf(np.asarray(x, float)[..., None] / b, 2, nc) @ weights

    def pdf(x: FloatArray) -> FloatArray:
        return stats.ncx2.pdf(np.asarray(x, float)[..., None] / b, 2, nc) @ weights / b

    return Reference(name, 2 * b + omega, omega**2 * (1 + 1 / m) + 8 * b * omega + 8 * b * b,
                     cdf, pdf)


def abdi_pdf(x: FloatArray, b: float, m: float, omega: float) -> FloatArray:
    """Abdi et al. (2003) closed-form shadowed-Rician pdf of the power ``x = r^2`` (their
    envelope pdf with the change of variable ``x = r^2``), with SciPy's ``hyp1f1`` directly (no
    Kummer transformation, unlike the library)."""
    from scipy import special

    c = 2 * b * m + omega
    return ((2 * b * m / c) ** m / (2 * b) * np.exp(-x / (2 * b))
            * special.hyp1f1(m, 1.0, omega * x / (2 * b * c)))


@dataclass
class FadingResult:
    """One sampler against its reference."""

    reference: Reference
    n: int
    mean: float
    mean_se: float
    second: float
    second_se: float
    ks_stat: float
    ks_p: float
    chi2_p: float
    max_bin_rel: float  # largest |observed / expected count - 1| over the bins

    def z(self, which: str) -> float:
        if which == "mean":
            return (self.mean - self.reference.mean) / self.mean_se
        return (self.second - self.reference.second) / self.second_se


def check_sampler(sample: FloatArray, ref: Reference, bins: int = 50) -> FadingResult:
    """Moments, KS test and an equiprobable-bin chi-square test of ``sample`` against ``ref``.

    The reference cdf is tabulated on 4,001 points up to 1.5 x the sample maximum and
    interpolated (interpolation error < 1e-5, against a KS resolution of ~1e-3 at 2e6 draws).
    """
    from scipy import stats

    x = np.asarray(sample, dtype=float)
    n = x.size
    grid = np.linspace(0.0, 1.5 * float(x.max()), 4001)
    table = ref.cdf(grid)

    def cdf(v: FloatArray) -> FloatArray:
        return np.interp(v, grid, table)

    ks = stats.kstest(x, cdf)
    edges = np.interp(np.linspace(0.0, 1.0, bins + 1)[1:-1], table, grid)  # reference quantiles
    counts = np.bincount(np.searchsorted(edges, x), minlength=bins)
    expected = np.diff(np.concatenate([[0.0], cdf(edges), [1.0]])) * n
    expected *= n / expected.sum()
    chi2 = stats.chisquare(counts, expected)
    x2 = x * x
    return FadingResult(ref, n, float(x.mean()), float(x.std() / math.sqrt(n)),
                        float(x2.mean()), float(x2.std() / math.sqrt(n)), float(ks.statistic),
                        float(ks.pvalue), float(chi2.pvalue),
                        float(np.abs(counts / expected - 1.0).max()))


def fading_results(n: int = 2_000_000, seed: int = 20240601) -> list[FadingResult]:
    """The scenario's Rician sampler and the three shadowed-Rician sets through the library's
    ``sample_*`` functions (the order the network draws), one seeded stream each."""
    sc = Scenario()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    k = float(channels.db_to_linear(sc.channel.rician_k_db))
    out = [check_sampler(channels.sample_rician_power_gain(streams[0], k, n),
                         rician_reference(k))]
    for rng, (name, p) in zip(streams[1:], channels.SHADOWING.items(), strict=True):
        label = f"Shadowed-Rician, {name}" + (" (default)" if name == sc.satellite.shadowing
                                              else "")
        ref = shadowed_rician_reference(p.b, p.m, p.omega, label)
        sample = channels.sample_shadowed_rician_power_gain(rng, p, n,
                                                            sc.satellite.normalise_fading)
        out.append(check_sampler(sample, ref))
    return out


def closed_form_pdf_errors() -> list[tuple[str, float, float]]:
    """Largest relative difference, on 200 points up to the 99.99 % quantile, between the
    mixture pdf and (a) Abdi's closed form through SciPy, (b) the library's
    ``shadowed_rician_power_pdf``."""
    out = []
    for name, p in channels.SHADOWING.items():
        ref = shadowed_rician_reference(p.b, p.m, p.omega, name)
        grid = np.linspace(1e-4, 20.0, 20001)
        top = float(np.interp(0.9999, ref.cdf(grid), grid))
        x = np.linspace(top / 200, top, 200)
        mix = ref.pdf(x)
        out.append((name, float(np.max(np.abs(abdi_pdf(x, p.b, p.m, p.omega) / mix - 1))),
                    float(np.max(np.abs(channels.shadowed_rician_power_pdf(x, p) / mix - 1)))))
    return out


def _fading_table(results: list[FadingResult], tol: FadingTolerance) -> Table:
    table = Table(["sampler", "quantity", "closed form", "sample (n = {n})", "z or p", "tolerance"])
    for r in results:
        name = r.reference.name
        for which, ref_v, val, se in (("mean", r.reference.mean, r.mean, r.mean_se),
                                      ("second", r.reference.second, r.second, r.second_se)):
            z = r.z(which)
            label = "E\\|h\\|^2" if which == "mean" else "E\\|h\\|^4"
            table.add(abs(z) <= tol.z_max, name, label, _num(ref_v, 5),
                      f"{_num(val, 5)} ± {_num(se, 2)}", f"z = {z:+.2f}",
                      f"\\|z\\| ≤ {tol.z_max:g}")
        af_ref = r.reference.second / r.reference.mean**2 - 1
        table.add(None, name, "amount of fading E\\|h\\|^4 / (E\\|h\\|^2)^2 - 1", _num(af_ref, 4),
                  _num(r.second / r.mean**2 - 1, 4), "", "")
        table.add(r.ks_p >= tol.p_min, name, "KS test vs reference cdf", "",
                  f"D = {r.ks_stat:.2e}", f"p = {r.ks_p:.3f}", f"p ≥ {tol.p_min:g}")
        table.add(r.chi2_p >= tol.p_min, name, "chi-square, 50 equiprobable bins", "",
                  f"max \\|observed / expected - 1\\| = {100 * r.max_bin_rel:.1f} %",
                  f"p = {r.chi2_p:.3f}", f"p ≥ {tol.p_min:g}")
    table.header[3] = table.header[3].format(n=f"{results[0].n:,}")
    return table


def _pdf_table(errors: list[tuple[str, float, float]], tol: FadingTolerance) -> Table:
    table = Table(["parameter set", "Abdi closed form (SciPy hyp1f1) vs mixture",
                   "`channels.shadowed_rician_power_pdf` vs mixture", "tolerance"])
    for name, abdi, ours in errors:
        table.add(abdi <= tol.pdf_rel and ours <= tol.pdf_rel, name, f"{abdi:.1e}", f"{ours:.1e}",
                  f"{tol.pdf_rel:g} relative")
    return table


FADING_BODY = """
**Reference.** Closed forms and SciPy {scipy}, independent of `satedge.sim.channels`:

- Rician (ground-UAV, unit mean): `2 (K + 1) |h|^2` is noncentral chi-square with 2 degrees of
  freedom and noncentrality `2K` (`scipy.stats.ncx2`); `E|h|^2 = 1`,
  `E|h|^4 = (K^2 + 4K + 2) / (K + 1)^2`.
- Shadowed-Rician (ground-satellite; Abdi, Lau, Alouini and Kaveh, IEEE Trans. Wireless Commun.
  2(3), 2003): `h = A e^{{j phi}} + Z`, `A` Nakagami(m, Omega), `Z ~ CN(0, 2b)`. Reference cdf
  and pdf as a mixture: given `A`, `|h|^2 / b` is noncentral chi-square (2 dof, noncentrality
  `A^2 / b`), integrated over the Gamma law of `A^2` by generalised Gauss-Laguerre quadrature;
  `E|h|^2 = 2b + Omega`, `E|h|^4 = Omega^2 (1 + 1/m) + 8 b Omega + 8 b^2` (derived by hand from
  the model). Abdi's closed-form pdf is computed separately with `scipy.special.hyp1f1` and
  compared with the mixture and with the library's own pdf.

**Method.** The scenario's parameters (`Scenario()` defaults: Rician K = {k_db:g} dB;
shadowing `{shadowing}`, not normalised), plus the two other shadowing sets the scenario
accepts. {n:,} draws per sampler from `sample_rician_power_gain` /
`sample_shadowed_rician_power_gain` (the draw order the network uses), one seeded stream
each (`SeedSequence({seed}).spawn`). Moments with their standard errors estimated from the
sample; a Kolmogorov-Smirnov test against the reference cdf; a chi-square test on 50 bins of
equal reference probability (the table also shows the largest relative deviation of a bin's
count from its expected count, a plain-units view of the same test; about 0.5 % is one standard
error at 2e6 draws).

**Tolerances.** Moments within {z:g} standard errors; KS and chi-square p-values at least
{p:g} (with 4 samplers x 2 tests, a correct sampler fails one by chance with probability under
1 %); closed-form pdfs equal to {rel:g} relative.
"""


def fading_section(n: int = 2_000_000, seed: int = 20240601,
                   tol: FadingTolerance = FadingTolerance()) -> Section:
    import scipy

    sc = Scenario()
    body = FADING_BODY.format(scipy=scipy.__version__, k_db=sc.channel.rician_k_db,
                              shadowing=sc.satellite.shadowing, n=n, seed=seed, z=tol.z_max,
                              p=tol.p_min, rel=tol.pdf_rel)
    results, pdf_errors = fading_results(n, seed), closed_form_pdf_errors()
    return Section("fading", "2. Small-scale fading samplers", body,
                   [("Samplers against closed-form moments and distributions:",
                     _fading_table(results, tol)),
                    ("Closed-form shadowed-Rician pdf (Abdi et al. 2003, in power form):",
                     _pdf_table(pdf_errors, tol))],
                   "Rician and Shadowed-Rician samplers: moments, KS, chi-square, pdf",
                   _fading_reading(results, pdf_errors))


def _fading_reading(results: list[FadingResult], pdf_errors: list[tuple[str, float, float]]
                    ) -> str:
    z = max(abs(r.z(w)) for r in results for w in ("mean", "second"))
    p = min(min(r.ks_p, r.chi2_p) for r in results)
    default = next(r for r in results if "(default)" in r.reference.name)
    heavy = next(r for r in results if "frequent_heavy" in r.reference.name)
    return f"""
Largest moment deviation {z:.2f} standard errors, smallest p-value {p:.3f}: at {results[0].n:,}
draws (a KS resolution of about {1.36 / math.sqrt(results[0].n):.0e} in probability) no sampler
is distinguishable from its reference. The library's closed-form pdf agrees with both Abdi's
form and the mixture to {max(e for _, a, o in pdf_errors for e in (a, o)):.0e}. The
satellite gain is not normalised, as the library documents: with the default `average`
shadowing the mean power is {default.mean:.4f} (closed form {default.reference.mean:.3f}, the
SPEC's known value 1.087), and `frequent_heavy` shadowing lowers it to
{heavy.reference.mean:.3f}.
"""


# ==================================================================================== 3 roofline
ROOFLINE_REL_TOL = 0.20
"""Per-model tolerance on the decode rate: 20 %, the accuracy issue 6 asks of the calibrated
scenario's headline numbers (an inference-time model worse than that would dominate them)."""


def roofline_rows() -> list[dict[str, Any]]:
    """Published AGX Orin int4 decode rate vs the roofline (shipped constants, in-sample), the
    roofline re-fitted without that model (leave-one-out) and the paper's ``flops`` model."""
    models = zoo.load_zoo()
    hw = zoo.load_hardware()["jetson-agx-orin-32gb"]
    rated = [m for m in models.values() if m.tokens_per_s_agx_orin_int4]
    rows = []
    for m in rated:
        loo = zoo.fit_roofline_efficiency([o for o in rated if o.name != m.name], hw)
        rows.append({"model": m.display_name, "published": float(m.tokens_per_s_agx_orin_int4),
                     "roofline": float(zoo.roofline_tokens_per_s(m.params, hw)),
                     "loo": float(zoo.roofline_tokens_per_s(m.params, hw, efficiency=loo)),
                     "loo_eff": loo,
                     "flops": float(1.0 / zoo.flops_inference_time_s(1.0, m.params, hw.flops))})
    return rows


def _rel(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.1f} %"


def _roofline_tables(rows: list[dict[str, Any]]) -> tuple[Table, Table]:
    shipped = Table(["device", "model", "published tok/s", "roofline (shipped fit)", "error",
                     "paper `flops` model", "error"])
    loo = Table(["device", "model", "published tok/s", "fit without this model (eta_m, t0)",
                 "prediction", "error"])
    for r in rows:
        pub = r["published"]
        shipped.add(abs(r["roofline"] / pub - 1) <= ROOFLINE_REL_TOL, "Jetson AGX Orin",
                    r["model"], f"{pub:g}", f"{r['roofline']:.1f}", _rel(r["roofline"], pub),
                    f"{r['flops']:.0f}", f"{100 * (r['flops'] / pub - 1):+.0f} %")
        eff = r["loo_eff"]
        loo.add(abs(r["loo"] / pub - 1) <= ROOFLINE_REL_TOL, "Jetson AGX Orin", r["model"],
                f"{pub:g}", f"{eff.memory:.3f}, {1e3 * eff.token_overhead_s:.2f} ms",
                f"{r['loo']:.1f}", _rel(r["loo"], pub))
    return shipped, loo


ROOFLINE_BODY = """
**Reference.** The published batch-1, 4-bit decode rates on a Jetson AGX Orin listed in SPEC
section 4 and `satedge/sim/data/mllm_zoo.csv` (column `tokens_per_s_agx_orin_int4`): VILA1.5
from the NVlabs/VILA README (TinyChat, AWQ int4), LLaVA-1.6 from the Jetson AI Lab NanoVLM
benchmark (MLC, W4A16). Obsidian-3B has no published rate and no Orin NX rate is published, so
neither is validated here.

**Method.** Predicted decode rate `1 / T_step` of `satedge.sim.zoo.roofline_tokens_per_s`
(hardware row `jetson-agx-orin-32gb`: 204.8 GB/s, 3.33 TFLOPS; `weight_bits = 4`) with the
shipped constants `DEFAULT_ROOFLINE_EFFICIENCY` (eta_m = {eta_m:g}, t0 = {t0_ms:.2f} ms). These
were fitted to the same five rates, so that column is in-sample; the leave-one-out column
re-fits (`fit_roofline_efficiency`) on the other four rates and predicts the fifth, which is the
honest out-of-sample test with five points. The paper's `flops` model (Eq. 14, 23 [recon]:
`F / (2 P)` token/s; the scenario default `compute.cost_model = "{cost_model}"`) is shown for
comparison. Note that VILA's "Orin" figures may come from an AGX Orin 64 GB, which has the same
204.8 GB/s memory bandwidth.

**Tolerance.** {tol:.0f} % per model on the decode rate, in-sample and leave-one-out (issue 6 asks
the calibrated scenario for its headline numbers within 20 %; an inference model worse than that
would dominate them). The `flops` column carries no tolerance: it is the paper's form, not a
performance model.
"""


def roofline_section() -> Section:
    eff = zoo.DEFAULT_ROOFLINE_EFFICIENCY
    body = ROOFLINE_BODY.format(eta_m=eff.memory, t0_ms=1e3 * eff.token_overhead_s,
                                cost_model=Scenario().compute.cost_model,
                                tol=100 * ROOFLINE_REL_TOL)
    rows = roofline_rows()
    shipped, loo = _roofline_tables(rows)
    return Section("roofline", "3. Roofline inference model vs published Jetson token rates", body,
                   [("Decode rate, batch 1, int4, shipped constants (in-sample):", shipped),
                    ("Leave-one-out (fit on the other four rates, predict this one):", loo)],
                   "roofline decode rate vs published AGX Orin int4 token/s",
                   _roofline_reading(rows))


def _roofline_reading(rows: list[dict[str, Any]]) -> str:
    def err(r: dict[str, Any], key: str) -> float:
        return 100 * (r[key] / r["published"] - 1)

    by_size = sorted(rows, key=lambda r: _params_of(r["model"]))
    small, rest = by_size[0], by_size[1:]
    worst = max(rows, key=lambda r: abs(err(r, "roofline")))
    others = [r for r in rest if r is not worst]
    factors = [r["flops"] / r["published"] for r in rows]
    default = Scenario().compute.cost_model
    uses = "which the default scenario uses" if default == "flops" else \
        f"which the default scenario does not use (it uses `{default}`)"
    return f"""
In-sample the shipped fit is within {100 * ROOFLINE_REL_TOL:.0f} % for all but {worst["model"]}
({err(worst, "roofline"):+.1f} %). Its published rate comes from another runtime (MLC) than the
VILA rates (TinyChat) that dominate the fit: at full bandwidth its {worst["published"]:g} tok/s
leave {1e3 * _implied_overhead_s(worst):.1f} ms of overhead per token, against the
{1e3 * zoo.DEFAULT_ROOFLINE_EFFICIENCY.token_overhead_s:.1f} ms of the shipped fit. Out of
sample the picture is weaker: the per-token overhead `t0` is identified by the smallest model alone.
Fitted without {small["model"]}, `t0` falls to {1e3 * small["loo_eff"].token_overhead_s:.2f} ms
and the prediction for it is {err(small, "loo"):+.0f} %, so the shipped rate of the 3 B UAV
model is a calibration, not a prediction; {", ".join(r["model"] for r in others)} are predicted
within {max(abs(err(r, "loo")) for r in others):.1f} % and {worst["model"]} at
{err(worst, "loo"):+.1f} %. The paper's `flops` model, {uses}, predicts decode rates
{min(factors):.1f}-{max(factors):.1f} times faster than published: it counts compute only,
while batch-1 decoding on these boards is bound by memory bandwidth.
"""


def _implied_overhead_s(row: dict[str, Any]) -> float:
    """Per-token overhead that makes the full-bandwidth int4 roofline hit the published rate."""
    hw = zoo.load_hardware()["jetson-agx-orin-32gb"]
    return 1.0 / row["published"] - _params_of(row["model"]) * 0.5 / hw.memory_bandwidth_bytes_s


def _params_of(display_name: str) -> float:
    return next(m.params for m in zoo.load_zoo().values() if m.display_name == display_name)


# ==================================================================================== 4 RL cores
@dataclass(frozen=True)
class RlCase:
    """One RL training run against a published score."""

    name: str
    algo: str
    env_id: str
    steps: int
    reference: str
    criterion: str
    threshold: float
    run: Callable[[], RlResult]
    ours: bool = True  # False: an independent implementation run as a reference (no verdict)


@dataclass
class RlResult:
    """Final greedy return, and ``(env steps, greedy return)`` checkpoints where recorded."""

    final: float
    checkpoints: list[tuple[int, float]] = field(default_factory=list)


def _from_test(test: Callable[[], None]) -> Callable[[], RlResult]:
    """Run a slow test of tests/agents/test_sac_cores.py unchanged (so its exact training
    configuration is used) and read the return it prints; a failed assert is recorded, not
    raised."""

    def run() -> RlResult:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                test()
            except AssertionError:
                pass
        found = re.search(r"mean return (-?[0-9.]+)", buf.getvalue())
        if found is None:
            raise RuntimeError(f"{test.__name__} printed no return: {buf.getvalue()!r}")
        return RlResult(float(found.group(1)))

    return run


class _GymAsHybrid:
    """``n`` copies of a discrete-action Gymnasium env in the simulator's vector-env interface:
    one "IoTD" whose server choice is the env's action, autoreset with ``infos["final_obs"]``.
    This lets the project's own D3QN and PPO code (and the on-policy rollout and GAE) drive it."""

    def __init__(self, env_id: str, n: int, seed: int) -> None:
        import gymnasium as gym

        self.envs = [gym.make(env_id) for _ in range(n)]
        self.num_envs = n
        self.n_actions = int(self.envs[0].action_space.n)  # type: ignore[attr-defined]
        self.obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(self.envs)])

    @property
    def mask(self) -> NDArray[np.bool_]:
        return np.ones((self.num_envs, 1, self.n_actions), dtype=bool)

    def step(self, actions: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        out = [e.step(int(a)) for e, a in zip(self.envs, actions["offload"][:, 0], strict=True)]
        final = np.stack([o[0] for o in out]).astype(np.float32)
        reward = np.array([o[1] for o in out], dtype=np.float64)
        term = np.array([o[2] for o in out])
        trunc = np.array([o[3] for o in out]) & ~term
        obs = final.copy()
        for i in np.flatnonzero(term | trunc):
            obs[i] = self.envs[i].reset()[0]
        self.obs = obs
        return obs, reward, term, trunc, {"final_obs": final}


def _greedy_return(act: Callable[[FloatArray], int], env_id: str, episodes: int = 10) -> float:
    """Mean undiscounted return of a greedy policy over ``episodes`` episodes on seeds
    10,000 + i (as ``run_gym`` of tests/agents/test_sac_cores.py evaluates)."""
    import gymnasium as gym

    env = gym.make(env_id)
    total = 0.0
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total += float(r)
            done = term or trunc
    return total / episodes


def _d3qn_cartpole(seed: int = 0, steps: int = 50_000, eval_every: int = 10_000) -> RlResult:
    """Our D3QN on CartPole-v1 with the RL Zoo's DQN settings (hyperparams/dqn.yml, CartPole-v1:
    5e4 steps, lr 2.3e-3, batch 64, learning_starts 1000, gamma 0.99, train_freq 256,
    gradient_steps 128, target copied once per training round, epsilon 1 -> 0.04 over 16 % of
    the steps, 256-256 torso). The power and UAV branches the offloading action adds have one
    choice each (the power branch pinned, one UAV direction: stay), so the agent is a dueling
    double DQN with one real branch; BDQ's branch-averaged target then averages that branch's
    greedy value with ``V(s')`` of the two single-choice branches. The greedy policy is also
    evaluated every ``eval_every`` steps (deterministic acting: training is unchanged)."""
    import torch

    from satedge.agents.common.buffers import ReplayBuffer
    from satedge.agents.d3qn import D3qn, D3qnConfig

    torch.set_num_threads(1)
    learning_starts, train_freq, grad_steps = 1000, 256, 128
    cfg = D3qnConfig(hidden=(256, 256), lr=2.3e-3, gamma=0.99, tau=1.0, target_period=grad_steps,
                     eps_start=1.0, eps_end=0.04, eps_decay_transitions=int(0.16 * steps),
                     power_levels=2, uav_directions=1)
    agent = D3qn(4, 1, 2, 3, cfg, seed)  # K = 1 "IoTD", S = 2 "servers", M = 1 UAV (stays)
    agent._static_avail[1, 1:] = False  # pin the power branch: one choice, Q = V
    env = _GymAsHybrid("CartPole-v1", 1, seed)
    buffer = ReplayBuffer(100_000, 4, 1, 2, 3)
    rng = np.random.default_rng(seed)

    def act(o: FloatArray) -> int:
        return int(agent.act(o[None].astype(np.float32), env.mask[:1], True).discrete[0, 0])

    checkpoints = []
    for step in range(1, steps + 1):
        obs, mask = env.obs.astype(np.float32), env.mask
        action = agent.act(obs, mask)
        _, reward, term, _, infos = env.step({"offload": action.discrete})
        buffer.add(obs, action.discrete, action.continuous, reward, infos["final_obs"], term,
                   mask, mask)
        if step % train_freq == 0 and step >= learning_starts:
            for _ in range(grad_steps):
                agent.update(buffer.sample(64, rng))
        if step % eval_every == 0:
            checkpoints.append((step, _greedy_return(act, "CartPole-v1")))
    final = checkpoints[-1][1] if checkpoints and checkpoints[-1][0] == steps else \
        _greedy_return(act, "CartPole-v1")
    return RlResult(final, checkpoints)


def _sb3_dqn_cartpole(seed: int = 0, steps: int = 50_000, eval_every: int = 10_000) -> RlResult:
    """Stable-Baselines3's own DQN (an independent implementation, the one the Zoo score comes
    from; optional ``bench`` extra) with the same Zoo settings as :func:`_d3qn_cartpole`, on
    this machine, evaluated the same way: a reference for how much one seed of this
    configuration varies."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=2.3e-3, batch_size=64,
                buffer_size=100_000, learning_starts=1000, gamma=0.99, target_update_interval=10,
                train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                exploration_final_eps=0.04, policy_kwargs={"net_arch": [256, 256]}, seed=seed,
                device="cpu")

    def act(o: FloatArray) -> int:
        return int(model.predict(o, deterministic=True)[0])

    checkpoints: list[tuple[int, float]] = []

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                checkpoints.append((self.num_timesteps, _greedy_return(act, "CartPole-v1")))
            return True

    model.learn(steps, callback=Checkpoints())
    final = checkpoints[-1][1] if checkpoints and checkpoints[-1][0] == steps else \
        _greedy_return(act, "CartPole-v1")
    return RlResult(final, checkpoints)


def _ppo_cartpole(seed: int = 0, total: int = 100_000) -> RlResult:
    """Our PPO on CartPole-v1 through the project's on-policy rollout step and GAE/minibatch
    update (``satedge.agents.common.onpolicy``) with the RL Zoo's settings (hyperparams/ppo.yml,
    CartPole-v1: 8 envs, 1e5 steps, n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8,
    no entropy bonus, learning rate and clip range decayed linearly from 1e-3 and 0.2, no reward
    normalisation). The power and UAV heads are pinned to one choice, so the policy is the
    categorical policy over the one real head."""
    import torch

    from satedge.agents.common.onpolicy import OnPolicyConfig, ReturnNormaliser, learn, rollout_step
    from satedge.agents.ppo import Ppo, PpoConfig

    class PinnedPpo(Ppo):
        def head_mask(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
            heads = super().head_mask(mask)
            heads[:, 1, 1:] = False  # the power head: level 0 only
            return heads

    torch.set_num_threads(1)
    n_envs, n_steps = 8, 32
    cfg = OnPolicyConfig(episodes=n_envs, n_envs=n_envs, n_steps=n_steps, epochs=20,
                         minibatch_size=256, gamma=0.98, gae_lambda=0.8, normalize_reward=False)
    agent = PinnedPpo(4, 1, 2, 3, PpoConfig(lr=1e-3, power_levels=2, uav_directions=1), seed)
    base = agent.cfg
    env = _GymAsHybrid("CartPole-v1", n_envs, seed)
    buffer = agent.rollout_buffer(n_steps, n_envs)
    normaliser = ReturnNormaliser(n_envs, cfg.gamma, enabled=False)
    rng = np.random.default_rng(seed)
    counters: dict[str, int] = {"updates": 0}
    sums: dict[str, float] = {}
    rollouts = math.ceil(total / (n_envs * n_steps))
    for i in range(rollouts):
        remaining = 1.0 - i / rollouts  # SB3's progress_remaining for the linear schedules
        for group in agent.opt.param_groups:
            group["lr"] = 1e-3 * remaining
        agent.cfg = replace(base, clip_range=0.2 * remaining)
        for _ in range(n_steps):
            rollout_step(agent, env, env.obs.astype(np.float32), env.mask, buffer, normaliser, 1, 1)
        learn(agent, buffer, cfg, env.obs.astype(np.float32), rng, sums, counters)

    def act(o: FloatArray) -> int:
        return int(agent.act(o[None].astype(np.float32), env.mask[:1], True).discrete[0, 0])

    return RlResult(_greedy_return(act, "CartPole-v1"))


ZOO = "RL Baselines3 Zoo `benchmark.md`"
def rl_cases() -> list[RlCase]:
    import gymnasium as gym
    from tests.agents import test_sac_cores as sac_tests

    solved = gym.spec("CartPole-v1").reward_threshold  # 475: Gymnasium's "solved" mark
    assert solved is not None

    return [
        RlCase("sac-pendulum", "SAC (continuous core)", "Pendulum-v1", 8_000,
               f"{ZOO}: SAC -157.0 ± 88.7 (20k steps)", "≥ -245.7 (published mean - 1 std)",
               -157.0 - 88.7, _from_test(sac_tests.test_continuous_sac_pendulum)),
        RlCase("sac-cartpole", "SAC (discrete core)", "CartPole-v1", 20_000,
               f"{ZOO}: DQN and PPO 500 ± 0 (no discrete-SAC entry)",
               f"≥ {solved:g} (Gymnasium reward_threshold)", solved,
               _from_test(sac_tests.test_discrete_sac_cartpole)),
        RlCase("d3qn-cartpole", "D3QN", "CartPole-v1", 50_000, f"{ZOO}: DQN 500 ± 0 (50k steps)",
               f"≥ {solved:g} (Gymnasium reward_threshold)", solved,
               _d3qn_cartpole),
        RlCase("ppo-cartpole", "PPO", "CartPole-v1", 100_096, f"{ZOO}: PPO 500 ± 0 (100k steps)",
               f"≥ {solved:g} (Gymnasium reward_threshold)", solved,
               _ppo_cartpole),
        RlCase("sb3-dqn-cartpole", "Stable-Baselines3 DQN (reference, not ours)", "CartPole-v1",
               50_000, f"{ZOO}: DQN 500 ± 0 (50k steps)",
               f"≥ {solved:g} (Gymnasium reward_threshold)", solved, _sb3_dqn_cartpole,
               ours=False),
    ]


def run_rl(names: Sequence[str]) -> dict[str, Any]:
    """Run the named cases (all if empty), merge them into the JSON record and return it."""
    record = json.loads(RL_JSON.read_text()) if RL_JSON.exists() else {"runs": {}}
    cases = {c.name: c for c in rl_cases()}
    unknown = sorted(set(names) - set(cases))
    if unknown:
        raise SystemExit(f"unknown RL case(s) {unknown}; choose from {sorted(cases)}")
    for name in names or list(cases):
        case = cases[name]
        print(f"[rl] {name}: {case.algo} on {case.env_id}, {case.steps} steps ...", flush=True)
        start = time.perf_counter()
        try:
            result = case.run()
        except ImportError as missing:
            if case.ours:
                raise
            print(f"[rl] {name}: skipped, {missing} (the last record is kept)", flush=True)
            continue
        wall = time.perf_counter() - start
        print(f"[rl] {name}: mean greedy return {result.final:.1f} in {wall:.0f} s "
              f"(checkpoints {result.checkpoints})", flush=True)
        record["runs"][name] = {
            "algo": case.algo, "env": case.env_id, "steps": case.steps, "seed": 0,
            "return": round(result.final, 1), "wall_s": round(wall, 1),
            "checkpoints": [[s, round(r, 1)] for s, r in result.checkpoints],
            "reference": case.reference, "criterion": case.criterion,
            "threshold": case.threshold, "ours": case.ours,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine_line()}
        RL_JSON.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")  # per case
    return record


def rl_table(record: dict[str, Any]) -> Table:
    """The RL table from the JSON record (cases never run are listed as such)."""
    table = Table(["core", "task", "env steps", "greedy return (10 episodes, seed 0)",
                   "published reference", "criterion", "run on"])
    runs = record.get("runs", {})
    for case in rl_cases():
        run = runs.get(case.name)
        if run is None:
            table.add(False, case.algo, case.env_id, f"{case.steps:,}", "not run",
                      case.reference, case.criterion, "")
            continue
        ok = run["return"] >= run["threshold"] if case.ours else None
        table.add(ok, run["algo"], run["env"], f"{run['steps']:,}", f"{run['return']:.1f}",
                  run["reference"], run["criterion"], f"{run['date']}, {run['wall_s']:.0f} s")
    return table


def checkpoint_table(record: dict[str, Any]) -> Table | None:
    """Greedy return at the recorded checkpoints (runs that record them), informational."""
    runs = [r for r in record.get("runs", {}).values() if r.get("checkpoints")]
    if not runs:
        return None
    steps = sorted({s for r in runs for s, _ in r["checkpoints"]})
    table = Table(["run", *(f"{s // 1000}k steps" for s in steps)])
    for r in runs:
        at = dict((s, v) for s, v in r["checkpoints"])
        table.add(None, r["algo"], *(f"{at[s]:.1f}" if s in at else "" for s in steps))
    return table


RL_BODY = """
**Reference.** Scores of trained agents in RL Baselines3 Zoo's `benchmark.md` (DLR-RM, one run
each, deterministic evaluation): SAC on Pendulum-v1 -157.0 ± 88.7 after 20k steps; DQN and PPO
on CartPole-v1 500 ± 0 (the maximum) after 50k and 100k steps. For CartPole the pass criterion is
Gymnasium's own `reward_threshold` for CartPole-v1 (475); for Pendulum, which has none, the
published mean minus one published standard deviation.

**Method.** SAC: the slow tests of `tests/agents/test_sac_cores.py` are called unchanged (their
training configuration and budget: 8k steps on Pendulum, 20k on CartPole; the tests' own pass
marks are -250 and 400) and the return they print is recorded. D3QN and PPO have no Gymnasium
test in the repository; their agents are built for the offloading action (a server per IoTD
plus power and UAV heads), so the script drives the unchanged agent classes through a thin
adapter (`_GymAsHybrid`: CartPole's action is the one IoTD's server) with the extra heads pinned
to a single choice, using the Zoo's hyperparameters for DQN and PPO on CartPole-v1 (listed in
the docstrings of `_d3qn_cartpole` and `_ppo_cartpole`); PPO runs through the project's own
on-policy rollout step and GAE/minibatch update. Score: mean greedy return over 10 evaluation
episodes (seeds 10000-10009), one training seed (0), single-threaded torch on CPU. The Zoo's
scores are single runs (its `benchmark.md` says so), so the DQN configuration is also run with
Stable-Baselines3's own DQN on the same machine and seed (`sb3-dqn-cartpole`, needs the `bench`
extra; a reference, so it carries no verdict), and both DQN runs record the greedy return every
10k steps (evaluation acts deterministically and does not change training). The tables are read
from `docs/validation_rl.json`; the last column says when each row was last trained.
"""


def rl_section(record: dict[str, Any]) -> Section:
    tables = [("Training runs:", rl_table(record))]
    curve = checkpoint_table(record)
    if curve is not None:
        tables.append(("Greedy return (10 episodes) during the same runs, at checkpoints:",
                       curve))
    return Section("rl", "4. RL cores vs published results on Gymnasium tasks", RL_BODY, tables,
                   "SAC, D3QN and PPO cores on Pendulum / CartPole vs RL Zoo scores",
                   _rl_reading(record))


def _rl_reading(record: dict[str, Any]) -> str:
    cases = [c for c in rl_cases() if c.ours]
    runs = {c.name: record["runs"][c.name] for c in cases if c.name in record.get("runs", {})}
    missing = [c.name for c in cases if c.name not in runs]
    failed = [n for n, r in runs.items() if r["return"] < r["threshold"]]
    dates = sorted({r["date"] for r in record.get("runs", {}).values()})
    text = [f"{len(runs) - len(failed)} of {len(cases)} cases of ours meet their criterion"
            + (f"; failing: {', '.join(failed)}" if failed else "")
            + (f"; never run: {', '.join(missing)}" if missing else "") + "."]
    if len(dates) > 1:
        text.append(f"The rows were trained on different dates ({', '.join(dates)}): only the "
                    "cases named on the command line are re-run.")
    text.append("One training seed per case: a pass shows the core can reach the published "
                "level with the stated budget, not its spread over seeds.")
    ours, ref = (record.get("runs", {}).get(n) for n in ("d3qn-cartpole", "sb3-dqn-cartpole"))
    if ours and ref and ours.get("checkpoints") and ref.get("checkpoints"):
        def span(run: dict[str, Any]) -> str:
            values = [v for _, v in run["checkpoints"]]
            return f"{min(values):.0f}-{max(values):.0f}"

        def hits(run: dict[str, Any]) -> int:
            return sum(v >= run["threshold"] for _, v in run["checkpoints"])

        text.append(
            f"On the DQN configuration, Stable-Baselines3's DQN ends at {ref['return']:.1f} with "
            f"checkpoint returns {span(ref)}, our D3QN at {ours['return']:.1f} with {span(ours)} "
            f"(at or above {ours['threshold']:g} at {hits(ref)} and {hits(ours)} of "
            f"{len(ref['checkpoints'])} and {len(ours['checkpoints'])} checkpoints): the Zoo's "
            "500 is one run of a configuration whose greedy return swings by hundreds between "
            "checkpoints, so one seed cannot separate the two implementations; several seeds "
            "would.")
    return " ".join(text)


# ==================================================================================== document
def machine_line() -> str:
    """CPU model, core count, OS and Python (the machine a table was computed on)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def versions_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ["satedge", "numpy", "scipy", "skyfield", "sgp4", "torch", "gymnasium"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def begin(key: str) -> str:
    return f"<!-- validation:{key}:begin -->"


def end(key: str) -> str:
    return f"<!-- validation:{key}:end -->"


HEADER = """# Validation against independent references

Generated by `docs/make_validation.py`; do not edit by hand. Each model of the simulator is
checked against a reference no one here wrote, with the method, the numbers, a tolerance stated
in advance in the script, and a verdict. A failing row is a finding, reported as it is.

**Regenerate:** `python docs/make_validation.py` (orbits, fading and roofline, under a
minute; keeps the last recorded RL table) or `python docs/make_validation.py --rl [CASE ...]`
(also re-trains the RL cases, all or the named ones: {cases}; several minutes).
`tests/test_validation_doc.py` re-runs the cheap parts at smaller sizes and fails when a
tolerance is broken or when the roofline or RL sections here differ from the script's output.

**Machine:** {machine}. **Versions:** {versions}. Generated {date}.
"""


def summary_table(sections: list[Section]) -> str:
    lines = ["| model | what was compared | rows pass / fail / info | verdict |",
             "|---|---|---|---|"]
    for s in sections:
        ok, bad, info = s.counts
        lines.append(f"| [{s.title.split('. ', 1)[1]}](#{_anchor(s.title)}) | {s.summary} | "
                     f"{ok} / {bad} / {info} | {'pass' if s.passed else '**FAIL**'} |")
    return "\n".join(lines)


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def render(sections: list[Section], findings: str) -> str:
    names = ", ".join(f"`{c.name}`" for c in rl_cases())
    parts = [HEADER.format(cases=names, machine=machine_line(), versions=versions_line(),
                           date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
             "## Summary", "", summary_table(sections), "", findings.strip(), ""]
    for s in sections:
        parts += [begin(s.key), s.markdown().rstrip(), end(s.key), ""]
    return "\n".join(parts)


def block(text: str, key: str) -> str | None:
    """The text between a section's markers in ``text`` (None if absent)."""
    found = re.search(re.escape(begin(key)) + r"\n(.*?)\n" + re.escape(end(key)), text, re.S)
    return None if found is None else found.group(1)


def findings_text(sections: list[Section]) -> str:
    """The list of failing rows (generated), so no failure can hide in a long table."""
    lines = ["**Failing rows** (generated from the tables below; each is discussed under its "
             "section's *Reading*):", ""]
    for s in sections:
        for caption, table in s.tables:
            for r in table.rows:
                if r.ok is False:
                    cells = "; ".join(f"{h}: {c}" for h, c in zip(table.header, r.cells,
                                                                  strict=True) if c)
                    lines.append(f"- {s.title.split('. ', 1)[1]} ({caption.rstrip(':')}) - "
                                 f"{cells}")
    if len(lines) == 2:
        lines.append("- none")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rl", nargs="*", metavar="CASE",
                        help="re-train the RL cases (all, or the named ones) and record them")
    args = parser.parse_args(argv)
    record = run_rl(args.rl) if args.rl is not None else (
        json.loads(RL_JSON.read_text()) if RL_JSON.exists() else {"runs": {}})
    sections = []
    for make in (orbit_section, fading_section, roofline_section):
        start = time.perf_counter()
        sections.append(make())
        print(f"{sections[-1].key}: {time.perf_counter() - start:.1f} s, "
              f"{'pass' if sections[-1].passed else 'FAIL'}", flush=True)
    sections.append(rl_section(record))
    DOC.write_text(render(sections, findings_text(sections)))
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
