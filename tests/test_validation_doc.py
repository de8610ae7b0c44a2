"""docs/validation.md stays true to the code, and its checks keep their teeth.

The doc is written by docs/make_validation.py (about half a minute for the default run); here the
cheap parts run at smaller sizes: the deterministic sections (roofline, RL from its JSON record)
must match the doc exactly, the orbit and fading checks must pass their stated tolerances on
smaller samples, and each kind of check must fail on a deliberately wrong model.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from satedge.sim import channels
from satedge.sim.orbits import WalkerDelta, default_walker

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "run: python docs/make_validation.py"


@pytest.fixture(scope="module")
def mv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_validation",
                                                  ROOT / "docs" / "make_validation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_validation"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def doc(mv: ModuleType) -> str:
    return mv.DOC.read_text()


# ------------------------------------------------------------------ the doc matches the script
def test_roofline_section_is_current(mv: ModuleType, doc: str) -> None:
    assert mv.block(doc, "roofline") == mv.roofline_section().markdown().rstrip(), REGENERATE


def test_rl_section_matches_its_json_record(mv: ModuleType, doc: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    record = json.loads(mv.RL_JSON.read_text())
    assert mv.block(doc, "rl") == mv.rl_section(record).markdown().rstrip(), REGENERATE
    # every recorded run says which configuration produced it and how it was judged
    for name, run in record["runs"].items():
        assert {"return", "threshold", "steps", "date", "reference"} <= set(run), name


def test_orbit_and_fading_sections_exist_and_pass(mv: ModuleType, doc: str) -> None:
    for key in ("orbits", "fading"):
        text = mv.block(doc, key)
        assert text is not None, REGENERATE
        assert "| pass |" in text and "FAIL" not in text, key


# ------------------------------------------------------------------ cheap parts, smaller sizes
def test_orbit_implementation_checks_pass_on_six_hours(mv: ModuleType) -> None:
    pytest.importorskip("skyfield")
    tol = mv.OrbitTolerance()
    sizes = mv.OrbitSizes(horizon_s=6 * 3600.0, position_sats=(0, 47, 94, 141),
                          window_sats=(0, 94))
    comps = mv.orbit_comparisons(sizes)
    for key in ("walker", "tle_shell", "tle_real"):
        c = comps[key]
        assert c.position_m <= tol.position_m, (key, c)
        assert c.elevation_deg <= tol.elevation_deg, (key, c)
        assert c.passes >= 1 and max(c.start_s, c.end_s) <= tol.window_s, (key, c)
    table = mv._implementation_table(comps, tol)
    assert table.passed and len(table.rows) == 12


def test_fading_samplers_pass_on_smaller_samples(mv: ModuleType) -> None:
    tol = mv.FadingTolerance()
    results = mv.fading_results(n=200_000, seed=7)
    assert len(results) == 4
    assert mv._fading_table(results, tol).passed
    assert mv._pdf_table(mv.closed_form_pdf_errors(), tol).passed


# ------------------------------------------------------------------ the checks can fail
def test_fading_checks_reject_a_wrong_sampler(mv: ModuleType) -> None:
    tol = mv.FadingTolerance()
    rng = np.random.default_rng(3)
    k = 10.0  # 10 dB
    wrong_k = mv.check_sampler(channels.sample_rician_power_gain(rng, 7.0, 200_000),
                               mv.rician_reference(k))
    assert not mv._fading_table([wrong_k], tol).passed
    avg = channels.SHADOWING["average"]
    wrong_m = channels.ShadowedRicianParams(b=avg.b, m=3.0, omega=avg.omega)  # same mean power
    res = mv.check_sampler(channels.sample_shadowed_rician_power_gain(rng, wrong_m, 200_000),
                           mv.shadowed_rician_reference(avg.b, avg.m, avg.omega, "average"))
    assert abs(res.z("mean")) < tol.z_max  # the mean alone cannot see it ...
    assert not mv._fading_table([res], tol).passed  # ... the fourth moment and the cdf do


def test_orbit_check_rejects_a_shell_one_km_too_high(mv: ModuleType) -> None:
    pytest.importorskip("skyfield")
    from skyfield.api import load

    from tests.sim.test_orbits_skyfield import EPOCH_JD

    walker = default_walker()
    wrong = WalkerDelta(walker.inclination_deg, walker.total, walker.planes, walker.phasing,
                        walker.altitude_m + 1e3)
    t0 = mv._utc(load.timescale(), EPOCH_JD)
    refs = {k: mv._kepler_reference(walker, k, t0) for k in (0, 90)}
    good = mv.compare_orbits(walker, refs, t0, 3600.0)
    bad = mv.compare_orbits(wrong, refs, t0, 3600.0)
    assert good.position_m <= mv.OrbitTolerance().position_m < bad.position_m


def test_roofline_check_rejects_rates_off_by_half(mv: ModuleType) -> None:
    rows = mv.roofline_rows()
    shipped, _ = mv._roofline_tables(rows)
    assert sum(r.ok is True for r in shipped.rows) >= 4  # what the doc reports
    faster = [{**r, "published": 1.5 * r["published"]} for r in rows]
    shipped, loo = mv._roofline_tables(faster)
    assert not any(r.ok for r in shipped.rows) and not any(r.ok for r in loo.rows)


def test_table_verdicts_and_number_format(mv: ModuleType) -> None:
    table = mv.Table(["a"])
    table.add(True, 1.0)
    table.add(None, math.pi)
    assert table.passed and "| 3.14 | info |" in table.markdown()
    table.add(False, 12345.678)
    assert not table.passed and "| 12346 | **FAIL** |" in table.markdown()
