"""Scenario configuration: defaults, validation messages, overrides and presets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satedge.sim.scenario import (
    PRESETS,
    Scenario,
    ScenarioError,
    parameter_table,
    parse_override,
    resolve,
)


def test_defaults_follow_spec() -> None:
    sc = Scenario()
    assert (sc.n_iotds, sc.n_uavs, sc.n_candidates, sc.episode_slots) == (10, 3, 5, 100)
    assert sc.slot_s == 3.0 and sc.area_m == 500.0
    assert sc.constellation.altitude_m == 500e3 and sc.constellation.inclination_deg == 53.0
    assert sc.uav.altitude_m == 100.0 and sc.uav.bandwidth_hz == 10e6
    assert (sc.iotd.power_min_w, sc.iotd.power_max_w) == (0.01, 0.2)
    assert sc.satellite.uplink_bandwidth_hz == 20e6 and sc.satellite.tx_power_w == 10.0
    assert sc.satellite.isl_rate_bps == 1e9 and sc.satellite.isl_power_w == 5.0
    assert (sc.tasks.arrival_rate_min, sc.tasks.arrival_rate_max) == (1.0, 1.5)
    assert sc.n_servers == 8


def test_round_trip_through_json() -> None:
    sc = resolve("default", ["n_iotds=12", "uav.altitude_m=120"])
    again = Scenario.from_dict(json.loads(json.dumps(sc.to_dict())))
    assert again == sc


@pytest.mark.parametrize(("overrides", "fragment"), [
    (["n_iotdz=3"], "unknown key n_iotdz"),
    (["uav.altitud_m=3"], "unknown key uav.altitud_m"),
    (["nosection.x=1"], "unknown key nosection"),
    (["n_iotds=0"], "n_iotds=0 is out of range; allowed [1, 1000]"),
    (["tasks.deadline_min_s=-1", "tasks.deadline_max_s=3"], "tasks.deadline_min_s=-1"),
    (["n_iotds=2.5"], "n_iotds must be an integer"),
    (["uav.altitude_m=\"high\""], "uav.altitude_m must be a number"),
    (["compute.cost_model=magic"], "compute.cost_model='magic' is not allowed"),
    (["iotd.power_min_w=0.5"], "iotd.power_min_w=0.5 must not exceed iotd.power_max_w=0.2"),
    (["n_candidates=500"], "n_candidates=500 is out of range"),
    (["constellation.planes=7"], "must be divisible by constellation.planes=7"),
    (["tasks.service_mix=[0.5,0.5]"], "tasks.service_mix"),
    (["uav.altitude_m=NaN"], "uav.altitude_m"),
    (["uav.model=gpt-9"], "uav.model='gpt-9' is not in the MLLM zoo"),
    (["satellite.other_models=[\"obsidian-3b\"]"], "satellite.other_models='obsidian-3b' cannot"),
    (["uav.hardware=abacus"], "uav.hardware='abacus' is not in the hardware table"),
    (["tasks.accuracy_min=0.8", "tasks.accuracy_max=0.9"], "no server can meet it"),
    (["compute.accuracy_scale=mmmu", "tasks.accuracy_min=0.5"], "allowed [0, 0.3780]"),
])
def test_bad_values_name_the_key_and_range(overrides: list[str], fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        resolve("default", overrides)
    assert fragment in str(info.value)


def test_unknown_preset() -> None:
    with pytest.raises(ScenarioError, match="unknown preset 'nope'"):
        resolve("nope")


def test_every_preset_resolves() -> None:
    for name in PRESETS:
        assert isinstance(resolve(name), Scenario)


def test_parse_override_is_json_or_string() -> None:
    assert parse_override("a=1e6") == ("a", 1e6)
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("uav.model=vila1.5-3b") == ("uav.model", "vila1.5-3b")
    with pytest.raises(ScenarioError, match="key=value"):
        parse_override("novalue")


def test_parameter_table_has_units_tags_and_ranges() -> None:
    rows = {r["key"]: r for r in parameter_table()}
    assert rows["slot_s"]["tag"] == "paper" and rows["slot_s"]["unit"] == "s"
    assert rows["uav.altitude_m"]["range"] == "[10.0, 1000.0]"
    assert all(r["tag"] in ("paper", "recon", "choice") for r in rows.values())
    assert all(r["description"] for r in rows.values())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([r["key"] for r in parameter_table()]),
                       st.one_of(st.integers(-10**7, 10**7), st.floats(allow_nan=True),
                                 st.text(max_size=5), st.booleans()), max_size=4))
def test_fuzzed_overrides_either_validate_or_raise_scenario_error(overrides: dict) -> None:
    try:
        sc = Scenario().replace(overrides)
    except ScenarioError as exc:
        assert str(exc)
    else:
        assert Scenario.from_dict(sc.to_dict()) == sc
