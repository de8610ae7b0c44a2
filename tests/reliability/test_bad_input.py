"""Bad input gets a clear error and nothing else.

Fuzzes (hypothesis) the scenario overrides, the command line, the environment's actions and the
sweep specs: every bad value must raise ``ValueError`` (``ScenarioError``, ``SpecError``) with a
one-line message that names the field (and, for numbers, the allowed range); the CLI must return
exit code 2 with exactly one line on stderr and no traceback. Example counts are recorded in
docs/reliability.md.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satedge.cli import main
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim import zoo
from satedge.sim.scenario import Scenario, ScenarioError, parse_override, resolve
from satedge.sim.tasks import poisson_cdf_table, request_counts
from tests.reliability.scenarios import PAIRS, fp_errors_raise, random_actions, scalar_fields

FIELDS = scalar_fields()
NUMERIC = {k: (d, m) for k, (d, m) in FIELDS.items()
           if m.get("lo") is not None and not isinstance(d, tuple)}
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6)
                    | st.floats(allow_nan=True) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
"""Any JSON-like value (what a config file or ``--set key=<JSON>`` can hold)."""


def _one_line(text: str) -> str:
    assert "\n" not in text.strip(), f"multi-line error: {text!r}"
    assert "Traceback" not in text
    return text


# -- scenario values ----------------------------------------------------------------------------
@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[str, Any]:
    """A numeric key and a value outside its declared range (or not finite)."""
    key = draw(st.sampled_from(sorted(NUMERIC)))
    default, meta = NUMERIC[key]
    lo, hi = meta["lo"], meta["hi"]
    is_int = isinstance(default, int) and not isinstance(default, bool)
    below = (st.integers(lo - 10**6, lo - 1) if is_int else
             st.floats(max_value=lo, exclude_max=not meta.get("lo_open"), allow_nan=False,
                       allow_infinity=False))
    above = (st.integers(hi + 1, hi + 10**9) if is_int else
             st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False))
    choices = [below, above]
    if not is_int:
        choices.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    return key, draw(st.one_of(choices))


@settings(max_examples=400, deadline=None)
@given(out_of_range())
def test_out_of_range_value_names_the_key_and_the_range(case: tuple[str, Any]) -> None:
    key, value = case
    with pytest.raises(ScenarioError) as info:
        Scenario().replace({key: value})
    msg = _one_line(str(info.value))
    _, meta = NUMERIC[key]
    assert msg.startswith(f"{key}=")
    assert f"{meta['lo']}, {meta['hi']}]" in msg  # the allowed range, e.g. "[1, 1000]"


def _wrong_type(default: Any) -> st.SearchStrategy[Any]:
    """Values a field with this default's type must reject (JSON never gives tuples)."""
    text = st.text(min_size=1, max_size=5).filter(lambda t: t not in ("", ))
    if isinstance(default, bool):
        return st.one_of(st.integers(), st.floats(), text, st.none(), st.lists(st.booleans()))
    if isinstance(default, int):
        return st.one_of(st.booleans(), text, st.none(), st.lists(st.integers(), max_size=2),
                         st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer())))
    if isinstance(default, float):
        return st.one_of(st.booleans(), text, st.none(), st.lists(st.floats(), max_size=2),
                         st.dictionaries(text, st.integers(), max_size=1))
    if isinstance(default, tuple):
        inner = st.booleans() if isinstance(default[0], float) else st.integers()
        return st.one_of(st.none(), st.integers(), st.floats(), st.booleans(),
                         st.lists(inner, min_size=1, max_size=4))
    return st.one_of(st.integers(), st.floats(), st.booleans(), st.none(),
                     st.lists(text, max_size=2))


@st.composite
def wrong_type(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(sorted(FIELDS)))
    return key, draw(_wrong_type(FIELDS[key][0]))


@settings(max_examples=400, deadline=None)
@given(wrong_type())
def test_wrong_type_names_the_key(case: tuple[str, Any]) -> None:
    key, value = case
    with pytest.raises(ScenarioError) as info:
        Scenario().replace({key: value})
    assert key in _one_line(str(info.value))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(k for k, (d, m) in FIELDS.items() if isinstance(d, str))),
       st.text(min_size=1, max_size=12))
def test_unknown_names_are_refused_with_the_choices(key: str, name: str) -> None:
    """Every string setting names a choice, a zoo model, a hardware row or a file that must
    exist; anything else is refused, naming the key (files: when the network is built)."""
    known = {*zoo.load_zoo(), *zoo.load_hardware(), *(FIELDS[key][1].get("choices") or ())}
    if name in known or Path(name).exists():
        return
    try:
        sc = Scenario().replace({key: name})
    except ScenarioError as err:
        assert key in _one_line(str(err))
        return
    assert key in ("constellation.tle_file",), f"{key}={name!r} was accepted"
    with pytest.raises(ValueError, match=f"^{key}="):
        MllmOffloadVectorEnv(1, sc)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PAIRS), st.data())
def test_inverted_range_names_both_ends(pair: tuple[str, str], data: st.DataObject) -> None:
    lo_key, hi_key = pair
    _, meta = NUMERIC[lo_key]
    is_int = isinstance(FIELDS[lo_key][0], int)
    lo_v, hi_v = float(meta["lo"]), float(meta["hi"])
    if lo_key == "tasks.accuracy_min":  # stay below the best server's accuracy
        hi_v = 0.75
    values = (st.integers(int(lo_v), int(hi_v)) if is_int else
              st.floats(lo_v, hi_v, exclude_min=bool(meta.get("lo_open"))))
    a, b = data.draw(values), data.draw(values)
    if a == b:
        return
    small, big = min(a, b), max(a, b)
    with pytest.raises(ScenarioError) as info:
        Scenario().replace({lo_key: big, hi_key: small})
    msg = _one_line(str(info.value))
    assert f"{lo_key}={big}" in msg and f"must not exceed {hi_key}={small}" in msg


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 24), st.integers(1, 8), st.integers(1, 100))
def test_more_candidates_than_satellites(planes: int, per_plane: int, n_candidates: int) -> None:
    total = planes * per_plane
    overrides = {"constellation.planes": planes, "constellation.total": total,
                 "n_candidates": n_candidates}
    if n_candidates <= total:
        assert Scenario().replace(overrides).n_candidates == n_candidates
        return
    with pytest.raises(ScenarioError) as info:
        Scenario().replace(overrides)
    msg = _one_line(str(info.value))
    assert f"n_candidates={n_candidates} is out of range; allowed [1, {total}]" in msg
    assert "constellation.total" in msg


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(zoo.load_zoo())), st.sampled_from(["paper", "mmmu"]),
       st.sampled_from(["int4", "fp16"]), st.floats(0.0, 1.0))
def test_accuracy_nobody_can_meet(model: str, scale: str, precision: str, a_min: float) -> None:
    """With every server running ``model``, A_min above its accuracy is refused with the
    reachable range; at or below it the scenario is valid."""
    overrides = {"uav.model": model, "satellite.access_model": model,
                 "satellite.other_models": [model], "compute.accuracy_scale": scale,
                 "compute.precision": precision, "tasks.accuracy_min": a_min,
                 "tasks.accuracy_max": 1.0}
    try:
        best = zoo.accuracy(zoo.load_zoo()[model], scale, precision)
    except ValueError:  # the model has no score at this precision: refused for that reason
        with pytest.raises(ScenarioError, match="cannot serve"):
            Scenario().replace(overrides)
        return
    if a_min <= best:
        assert Scenario().replace(overrides).tasks.accuracy_min == a_min
        return
    with pytest.raises(ScenarioError) as info:
        Scenario().replace(overrides)
    msg = _one_line(str(info.value))
    assert f"tasks.accuracy_min={a_min}" in msg and "no server can meet it" in msg
    assert f"allowed [0, {best:.4f}]" in msg


@pytest.mark.parametrize("deadline", [0.0, -1e-9, -3.0, -1e300])
def test_negative_or_zero_deadline(deadline: float) -> None:
    expected = f"tasks.deadline_min_s={deadline!r} is out of range; allowed (0.0, 600.0] s"
    with pytest.raises(ScenarioError, match=re.escape(expected)):
        resolve("default", {"tasks.deadline_min_s": deadline})


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,8}){0,2}", fullmatch=True))
def test_unknown_keys_are_named(key: str) -> None:
    if key in FIELDS:
        return
    with pytest.raises(ScenarioError) as info:
        Scenario().replace({key: 1})
    msg = _one_line(str(info.value))
    assert msg.startswith("unknown key ") and key.startswith(msg.split()[2].rstrip(";"))


ANY_KEY = st.one_of(st.text(max_size=6), st.integers(), st.none())
"""Keys a YAML mapping can have (YAML allows numbers and null as keys)."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(st.sampled_from(sorted({k.split(".")[0] for k in FIELDS})),
                                 ANY_KEY), JSON, max_size=4))
def test_any_json_config_validates_or_raises_scenario_error(data: dict[Any, Any]) -> None:
    """``Scenario.from_dict`` of arbitrary JSON: a valid scenario or one ScenarioError line,
    never another exception (KeyError, TypeError, ...)."""
    try:
        sc = Scenario.from_dict(data)
    except ScenarioError as err:
        _one_line(str(err))
    else:
        assert Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(FIELDS)), ANY_KEY), JSON, max_size=3))
def test_any_override_mapping_validates_or_raises_scenario_error(data: dict[Any, Any]) -> None:
    """``Scenario.replace`` (what specs and the Python API use) with any keys and values."""
    try:
        Scenario().replace(data)
    except ScenarioError as err:
        _one_line(str(err))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=3))
def test_any_override_text_validates_or_raises(texts: list[str]) -> None:
    """``--set`` strings of any content: parsed as JSON or a string (never evaluated), then a
    valid scenario or one ScenarioError line."""
    try:
        resolve("small", texts)
    except ScenarioError as err:
        _one_line(str(err))


def test_parse_override_never_evaluates() -> None:
    assert parse_override("uav.model=__import__('os').system('true')") == (
        "uav.model", "__import__('os').system('true')")
    with pytest.raises(ScenarioError, match=r"uav\.model="):
        resolve("default", ["uav.model=__import__('os').system('true')"])


# -- Poisson arrivals at rate 0 (a bug fixed here: 0 * log 0 warned, the tests made it an error) --
def test_poisson_rate_zero_is_exact_and_silent() -> None:
    with fp_errors_raise():
        cdf = poisson_cdf_table(np.array([0.0, 1.0, 1e-300]), 4)
    np.testing.assert_array_equal(cdf[0], [1.0, 1.0, 1.0, 1.0])  # P(n = 0) = 1
    e = math.exp(-1.0)  # hand-computed Poisson(1) CDF: e^-1 (1, 2, 5/2, 8/3)
    np.testing.assert_allclose(cdf[1], [e, 2 * e, 2.5 * e, 8 / 3 * e], rtol=1e-15)
    np.testing.assert_allclose(cdf[2], 1.0, rtol=1e-15)
    counts = request_counts(np.array([0.0, 0.5, 0.999999]), np.broadcast_to(cdf[0], (3, 4)))
    np.testing.assert_array_equal(counts, 0)


def test_scenario_with_no_arrivals_steps_without_floating_point_errors() -> None:
    env = MllmOffloadVectorEnv(2, resolve("small", {"tasks.arrival_rate_min": 0.0,
                                                     "tasks.arrival_rate_max": 0.0}))
    rng = np.random.default_rng(0)
    with fp_errors_raise():
        obs, _ = env.reset(seed=1)
        for _ in range(5):
            obs, reward, *_ = env.step(random_actions(rng, env.scenario, 2))
            np.testing.assert_array_equal(reward, 0.0)  # no task, no cost: reward 0
    assert np.isfinite(obs).all()


# -- environment actions ------------------------------------------------------------------------
ENV = MllmOffloadVectorEnv(2, resolve("small"))
SC = ENV.scenario
ENV.reset(seed=0)
GOOD = {"offload": np.zeros((2, SC.n_iotds), np.int64), "power": np.zeros((2, SC.n_iotds)),
        "uav": np.zeros((2, SC.n_uavs, 2))}


@st.composite
def bad_action(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A batched action with one field broken; returns it and the field's name."""
    action: dict[str, Any] = {k: v.copy() for k, v in GOOD.items()}
    key = draw(st.sampled_from(["offload", "power", "uav"]))
    how = draw(st.sampled_from(["shape", "nan", "inf", "index", "fraction", "dtype"]))
    arr = action[key].astype(np.float64)
    flat = draw(st.integers(0, arr.size - 1))
    if how == "shape":
        extra = draw(st.sampled_from([(1,), (3,), (2, 1), (1, 2)]))
        shape = draw(st.sampled_from([(*arr.shape[:-1], arr.shape[-1] + extra[0]),
                                      arr.shape[::-1], (*arr.shape, *extra), arr.shape[1:],
                                      (arr.size,)]))
        if shape == arr.shape:
            shape = (*arr.shape, 2)
        action[key] = np.zeros(shape)
    elif how in ("nan", "inf"):
        arr.reshape(-1)[flat] = math.nan if how == "nan" else draw(st.sampled_from([1, -1])) \
            * math.inf
        action[key] = arr
    elif how == "index":
        key = "offload"
        arr = action[key].copy()
        arr.reshape(-1)[flat] = draw(st.one_of(st.integers(-2**63, -1),
                                               st.integers(SC.n_servers, 2**63 - 1)))
        action[key] = arr
    elif how == "fraction":
        key = "offload"
        arr = action[key].astype(np.float64)
        arr.reshape(-1)[flat] = draw(st.floats(0, SC.n_servers - 1).filter(
            lambda x: not x.is_integer()))
        action[key] = arr
    else:
        action[key] = draw(st.sampled_from([arr.astype(bool), arr.astype(str),
                                            arr.astype(complex), arr.astype(object)]))
    return action, key


@settings(max_examples=400, deadline=None)
@given(bad_action())
def test_bad_actions_raise_a_clear_error(case: tuple[dict[str, Any], str]) -> None:
    action, key = case
    before = copy.deepcopy(dataclasses.asdict(ENV.state))
    with pytest.raises(ValueError) as info:
        ENV.step(action)
    assert f"action[{key!r}]" in _one_line(str(info.value))
    after = dataclasses.asdict(ENV.state)
    for name, value in before.items():  # nothing was stepped
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[name], value)


@pytest.mark.parametrize("action", [None, [], "offload", {"offload": 0},
                                    {**GOOD, "extra": 1}, {"power": 0, "uav": 0, "offlaod": 0}])
def test_actions_that_are_not_the_dict_are_refused(action: Any) -> None:
    with pytest.raises(ValueError, match="action must be a dict with keys offload, power, uav"):
        ENV.step(action)


def test_single_environment_accepts_unbatched_and_batch_one_shapes() -> None:
    from satedge.envs.offload import MllmOffloadEnv

    env = MllmOffloadEnv(preset="small", overrides=["n_uavs=3"])
    env.reset(seed=0)
    k, m = SC.n_iotds, 3
    env.step({"offload": np.zeros(k, np.int64), "power": np.zeros(k), "uav": np.zeros((m, 2))})
    env.step({"offload": np.zeros((1, k), np.int64), "power": np.zeros((1, k)),
              "uav": np.zeros((1, m, 2))})
    with pytest.raises(ValueError, match=r"action\['uav'\] has shape \(2, 3\)"):
        env.step({"offload": np.zeros(k, np.int64), "power": np.zeros(k),
                  "uav": np.zeros((2, m))})  # transposed: same size, wrong meaning


# -- the command line ---------------------------------------------------------------------------
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of ``satedge ARGV`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("satedge"), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(out_of_range(), wrong_type()))
def test_cli_bad_set_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                        case: tuple[str, Any]) -> None:
    key, value = case
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else \
        {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN")
    code, err = run_cli(["scenario", "show", "--set", f"{key}={text}"], capsys)
    if code == 0:  # a string that JSON reads back as a valid value (e.g. "\"3\"" -> str)
        assert isinstance(value, str)
        return
    assert_one_line_error(code, err, key)


LOOP_AND_AGENT = {
    "adsac": ["n_envs", "batch_size", "learning_starts", "critic_lr", "hidden", "use_mpo",
              "form", "tau"],
    "ppo": ["n_envs", "n_steps", "minibatch_size", "gamma", "lr", "hidden", "clip_range",
            "clip_range_vf", "normalize_advantage"],
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(LOOP_AND_AGENT)), st.data())
def test_cli_bad_agent_setting_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                  tmp_path_factory: pytest.TempPathFactory,
                                                  algo: str, data: st.DataObject) -> None:
    """Wrong types and unknown names of loop and agent settings fail before any training."""
    key = data.draw(st.sampled_from([*LOOP_AND_AGENT[algo], "no_such_setting"]))
    value = data.draw(st.one_of(st.text(min_size=1, max_size=4).map(json.dumps),
                                st.sampled_from(["null", "[]", "{}", "[\"a\"]", "true"])))
    if key in ("use_mpo", "normalize_advantage") and value == "true":
        value = "1.5"
    if key == "hidden" and value == "[]":  # no hidden layer: a valid (linear) network
        value = "[\"a\"]"
    if key == "clip_range_vf" and value == "null":
        value = "\"x\""
    out = tmp_path_factory.mktemp("run")
    code, err = run_cli(["train", "--algo", algo, "--seed", "0", "--episodes", "8", "--out",
                         str(out), "--preset", "small", "--no-progress", "--agent-set",
                         f"{key}={value}"], capsys)
    assert_one_line_error(code, err, key)
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize(("argv", "fragments"), [
    (["train", "--algo", "adsac", "--agent-set", "n_envs=0"], ["n_envs=0", "at least 1"]),
    (["train", "--algo", "adsac", "--agent-set", "batch_size=0"], ["batch_size=0"]),
    (["train", "--algo", "adsac", "--agent-set", "learning_starts=-1"], ["learning_starts=-1"]),
    (["train", "--algo", "adsac", "--agent-set", "critic_lr=-1"], ["critic_lr=-1"]),
    (["train", "--algo", "adsac", "--agent-set", "tau=2"], ["tau=2"]),
    (["train", "--algo", "ppo", "--agent-set", "gamma=1.5"], ["gamma=1.5", "[0, 1]"]),
    (["train", "--algo", "ppo", "--agent-set", "clip_range=1"], ["clip_range=1"]),
    (["train", "--algo", "ppo", "--agent-set", "minibatch_size=100000"], ["minibatch_size"]),
    (["train", "--algo", "adsac", "--episodes", "3"], ["episodes=3", "n_envs=4"]),
    (["train", "--algo", "nope"], ["unknown algorithm 'nope'", "adsac"]),
    (["train", "--algo", "adsac", "--seed", "-1"], ["--seed", "-1"]),
    (["train", "--algo", "adsac", "--episodes", "0"], ["--episodes", "at least 1"]),
    (["evaluate", "--policy", "greedy", "--seed", "-5"], ["--seed", "-5"]),
    (["evaluate", "--policy", "nope"], ["--policy 'nope'", "greedy"]),
    (["evaluate", "--policy", "greedy", "--episodes", "x"], ["--episodes", "'x'"]),
    (["scenario", "show", "--preset", "nope"], ["--preset", "'nope'", "small"]),
    (["scenario", "show", "--set", "novalue"], ["novalue", "key=value"]),
    (["scenario", "show", "--set", "n_candidates=200"], ["n_candidates=200", "[1, 100]"]),
    (["scenario", "show", "--set", "constellation.total=4", "--set", "constellation.planes=2"],
     ["n_candidates=5", "[1, 4]", "constellation.total"]),
    (["scenario", "show", "--set", "tasks.accuracy_min=0.9", "--set", "tasks.accuracy_max=1"],
     ["tasks.accuracy_min=0.9", "no server can meet it"]),
    (["evaluate", "--policy", "greedy", "--set", "constellation.tle_file=/no/such.tle"],
     ["constellation.tle_file='/no/such.tle'"]),
    (["render", "--out", "anim.png"], [".gif"]),
    (["reproduce", "--figures", "99", "--out", "sweep"], ["'99'", "'3'"]),
    (["reproduce", "--figures", "/no/such.yaml", "--out", "sweep"], ["/no/such.yaml"]),
    (["plot", "/no/such/dir"], ["not a sweep directory"]),
    (["nonsense"], ["invalid choice"]),
])
def test_cli_errors_are_one_line_exit_2(argv: list[str], fragments: list[str], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run"), "--preset", "small", "--no-progress"]
        for flag, value in (("--seed", "0"), ("--episodes", "8")):
            if flag not in argv:
                argv += [flag, value]
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, *fragments)


# -- sweep specs ----------------------------------------------------------------------------------
def _tiny_spec() -> dict[str, Any]:
    from satedge.experiments.spec import PRESETS

    return {"figure": "t", "scenario_preset": "small", "methods": ["random", "adsac"],
            "x": {"name": "n_iotds", "target": "scenario", "keys": ["n_iotds"]},
            "presets": {p: {"values": [3, 4]} for p in PRESETS}}


SPEC_DEFAULTS = {p: {"seeds": 1, "episodes": 4, "eval_episodes": 2, "eval_every_episodes": 4,
                     "loop": {"off_policy": {"n_envs": 2, "learning_starts": 40,
                                             "batch_size": 32}}}
                 for p in ("quick", "standard", "paper")}
SPEC_PATHS = [(), ("figure",), ("methods",), ("methods", 0), ("methods", 1), ("x",),
              ("x", "name"), ("x", "target"), ("x", "keys"), ("x", "keys", 0), ("presets",),
              ("presets", "quick"), ("presets", "quick", "values"),
              ("presets", "quick", "values", 0), ("presets", "paper", "seeds"),
              ("presets", "standard", "episodes"), ("presets", "quick", "loop"),
              ("presets", "quick", "scenario"), ("scenario_preset",), ("scenario",)]
"""Places in a spec where the fuzzer puts a random value, adds a key or deletes one."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SPEC_PATHS), st.sampled_from(["set", "add", "delete"]), JSON,
       st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
               max_size=6))
def test_mutated_specs_validate_or_raise_spec_error(path: tuple[Any, ...], how: str, value: Any,
                                                    new_key: str) -> None:
    """A valid spec with one random change: either still valid or one SpecError line naming
    the file; never another exception."""
    from satedge.experiments.spec import SpecError, parse_spec

    if not path and how == "delete":
        return
    data: Any = _tiny_spec()
    parent: Any = {"root": data}
    leaf: Any = "root"
    for step in path:  # every path exists in the tiny spec except presets.*.seeds/episodes
        parent, leaf = parent[leaf], step
    if how == "set":
        parent[leaf] = value
    elif how == "add" and isinstance(parent.get(leaf) if isinstance(parent, dict) else
                                     parent[leaf], dict):
        (parent[leaf])[new_key] = value
    elif how == "delete" and (isinstance(parent, list) or leaf in parent):
        del parent[leaf]
    data = parent["root"] if not path else data
    try:
        parse_spec(data, "fuzz.yaml", SPEC_DEFAULTS)
    except SpecError as err:
        msg = _one_line(str(err))
        assert msg.startswith(("fuzz.yaml", "presets.yaml")), msg


@pytest.mark.parametrize("change", [{"scenario_preset": ["small"]}, {"scenario_preset": {}},
                                    {"methods": ["random", ["adsac"]]},
                                    {"methods": [{"name": {"adsac": 1}}]},
                                    {"scenario": {1: 2}}, {"scenario": {None: 0.5}}])
def test_spec_values_of_the_wrong_kind_raise_spec_error(change: dict[str, Any]) -> None:
    from satedge.experiments.spec import SpecError, parse_spec

    with pytest.raises(SpecError, match=r"fuzz\.yaml"):
        parse_spec({**_tiny_spec(), **change}, "fuzz.yaml", SPEC_DEFAULTS)



def test_unknown_spec_key_with_a_line_break_gives_one_line() -> None:
    from satedge.experiments.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as info:
        parse_spec({**_tiny_spec(), "bad\nkey": 1}, "fuzz.yaml", SPEC_DEFAULTS)
    _one_line(str(info.value))


def test_spec_setting_of_the_wrong_type_fails_at_load() -> None:
    from satedge.experiments.spec import SpecError, parse_spec

    spec = {**_tiny_spec(), "methods": [{"name": "adsac", "overrides": {"use_mpo": 1}}]}
    with pytest.raises(SpecError, match="use_mpo"):
        parse_spec(spec, "fuzz.yaml", SPEC_DEFAULTS)
