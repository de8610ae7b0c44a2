"""Experiment specs: the packaged figure specs, run expansion, run keys, and validation errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from satedge.experiments.spec import (
    FIGURES,
    PRESETS,
    FigureSpec,
    SpecError,
    load_spec,
    load_specs,
    parse_spec,
)

BUDGET = {"seeds": 2, "episodes": 4, "eval_episodes": 2, "eval_every_episodes": 4,
          "loop": {"off_policy": {"n_envs": 2, "learning_starts": 40, "batch_size": 32}}}
DEFAULTS = {p: BUDGET for p in PRESETS}


def tiny(**changes: Any) -> dict[str, Any]:
    """A valid spec: random and AD-SAC on the small scenario, swept over K."""
    data: dict[str, Any] = {
        "figure": "t", "scenario_preset": "small", "methods": ["random", "adsac"],
        "x": {"name": "n_iotds", "target": "scenario", "keys": ["n_iotds"]},
        "presets": {p: {"values": [3, 4]} for p in PRESETS},
    }
    data.update(changes)
    return data


def parse(data: dict[str, Any]) -> FigureSpec:
    return parse_spec(data, "tiny.yaml", DEFAULTS)


@pytest.fixture(scope="module")
def specs() -> dict[str, FigureSpec]:
    return {s.figure: s for s in load_specs()}


def test_every_figure_ships_a_spec_with_three_presets(specs: dict[str, FigureSpec]) -> None:
    assert sorted(specs) == sorted(FIGURES) == ["3", "4", "5", "6", "7", "8"]
    for spec in specs.values():
        assert set(spec.budgets) == set(PRESETS)
        standard, paper = spec.budgets["standard"], spec.budgets["paper"]
        assert len(standard.seeds) >= 5 and len(paper.seeds) == 10
        assert paper.episodes == 1000  # the paper's training budget (Fig. 3 axis)
        assert spec.budgets["quick"].episodes < standard.episodes < paper.episodes


def test_paper_figures_sweep_what_spec_section_10_says(specs: dict[str, FigureSpec]) -> None:
    fig7 = specs["7"].budgets["paper"]
    assert fig7.values == (0.3, 0.4, 0.5, 0.6, 0.7)
    assert specs["4"].x_target == "agent" and specs["4"].x_keys == ("critic_lr",)
    assert specs["4"].budgets["paper"].values == (1e-4, 1e-3, 1e-2)
    assert specs["5"].x_keys == ("n_iotds",) and specs["5"].budgets["paper"].values[-1] == 25
    assert {m for m, _ in specs["8"].methods} >= {"adsac", "adsac-d", "adsac-c"}
    for fig in ("3", "5", "6", "7"):
        assert {"adsac", "ppo", "d3qn", "ddpg", "hybrid-ppo", "random"} <= {
            m for m, _ in specs[fig].methods}


def test_expansion_sets_the_swept_scenario_value(specs: dict[str, FigureSpec]) -> None:
    runs = specs["7"].expand("standard")
    n_methods = len(specs["7"].methods)
    assert len(runs) == n_methods * 5 * 5  # methods x A_min values x seeds
    run = next(r for r in runs if r.method == "adsac" and r.x == 0.6 and r.seed == 3)
    sc = run.resolve_scenario()
    assert sc.tasks.accuracy_min == sc.tasks.accuracy_max == 0.6
    assert run.kind == "learner" and run.episodes == specs["7"].budgets["standard"].episodes
    fig6 = next(r for r in specs["6"].expand("paper") if r.x == 2.0)
    assert fig6.resolve_scenario().tasks.deadline_max_s == 2.0
    fig4 = [r for r in specs["4"].expand("quick")]
    assert sorted(r.overrides["critic_lr"] for r in fig4) == [1e-4, 1e-3, 1e-2]


def test_policies_carry_no_training_budget(specs: dict[str, FigureSpec]) -> None:
    random_run = next(r for r in specs["5"].expand("quick") if r.method == "random")
    assert random_run.kind == "policy" and random_run.episodes == 0
    assert random_run.overrides == {}


def test_figures_without_an_axis_have_nan_x(specs: dict[str, FigureSpec]) -> None:
    runs = specs["8"].expand("quick")
    assert all(r.x_name == "none" and math.isnan(r.x) for r in runs)


def test_quick_preset_shortens_episodes_but_keeps_the_scenario(
        specs: dict[str, FigureSpec]) -> None:
    run = specs["3"].expand("quick")[0]
    sc = run.resolve_scenario()
    assert sc.episode_slots == 20 and sc.n_iotds == 10


def test_key_depends_on_what_is_run_not_on_labels(specs: dict[str, FigureSpec]) -> None:
    quick = {f: s.expand("quick") for f, s in specs.items()}
    fig3 = next(r for r in quick["3"] if r.method == "adsac")
    fig5 = next(r for r in quick["5"] if r.method == "adsac" and r.x == 10)
    fig8 = next(r for r in quick["8"] if r.method == "adsac")
    fig4 = next(r for r in quick["4"] if r.x == 1e-3)  # critic_lr 1e-3 is the default
    assert fig3.key == fig5.key == fig8.key == fig4.key
    assert len(fig3.key) == 16 and int(fig3.key, 16) >= 0
    others = {r.key for r in quick["4"] if r.x != 1e-3}
    assert fig3.key not in others and len(others) == 2
    a, b = parse(tiny()).expand("quick")[:2]  # same method and x, seeds 0 and 1
    assert (a.method, a.x, a.seed, b.seed) == ("random", 3.0, 0, 1) and a.key != b.key


def test_key_changes_with_scenario_budget_and_overrides() -> None:
    base = parse(tiny()).expand("quick")
    adsac = next(r for r in base if r.method == "adsac" and r.seed == 0 and r.x == 3)
    longer = copy.deepcopy(DEFAULTS)
    longer["quick"] = {**BUDGET, "episodes": 8}
    spec8 = parse_spec(tiny(), "tiny.yaml", longer)
    same_but_longer = next(r for r in spec8.expand("quick")
                           if r.method == "adsac" and r.seed == 0 and r.x == 3)
    assert same_but_longer.key != adsac.key
    tuned = parse(tiny(methods=["random", {"name": "adsac", "overrides": {"critic_lr": 0.01}}]))
    tuned_run = next(r for r in tuned.expand("quick")
                     if r.method == "adsac" and r.seed == 0 and r.x == 3)
    assert tuned_run.key != adsac.key
    # the policy ignores training budgets: its key stays
    rand = next(r for r in base if r.method == "random" and r.seed == 0 and r.x == 3)
    rand8 = next(r for r in spec8.expand("quick")
                 if r.method == "random" and r.seed == 0 and r.x == 3)
    assert rand.key == rand8.key


def test_load_spec_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(tiny(figure="mine")))
    spec = load_spec(path)
    assert spec.figure == "mine" and spec.origin == str(path)
    assert len(spec.expand("paper")) == 2 * 2 * 10  # presets.yaml: 10 seeds for paper


def test_unknown_figure_and_missing_file() -> None:
    with pytest.raises(SpecError,
                       match=r"unknown figure 9; choose one of \['3', '4', '5', '6', '7', '8'\]"):
        load_spec(9)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec("nowhere.yaml")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("figure: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"colour": "red"}, r"unknown key colour; allowed keys: \['description', 'figure'"),
    ({"methods": ["random", "sac9"]}, r"methods\[1\]='sac9' is not a registered .*'adsac'"),
    ({"methods": ["random", "random"]}, "method 'random' is listed twice"),
    ({"methods": [{"name": "random", "overrides": {"x": 1}}]}, "built-in policy"),
    ({"methods": [{"name": "adsac", "overridez": {}}]},
     r"unknown key methods\[0\]\.overridez; allowed keys: \['name', 'overrides'\]"),
    ({"x": {"name": "n_iotds", "target": "agents"}},
     r"x.target='agents' is not allowed; choose one of \['scenario', 'agent'\]"),
    ({"presets": {"quick": {"values": [3]}, "standard": {"values": [3]}}},
     r"presets.paper is missing"),
    ({"presets": {p: {"values": [3, 3]} for p in PRESETS}}, "repeats a value"),
    ({"presets": {p: {} for p in PRESETS}}, r"presets.quick.values is missing"),
    ({"presets": {p: {"values": ["many"]} for p in PRESETS}},
     r"presets.quick.values\[0\]='many' must be a finite number"),
    ({"presets": {p: {"values": [3], "episodes": "ten"} for p in PRESETS}},
     r"presets.quick.episodes='ten' must be an integer >= 1"),
    ({"presets": {p: {"values": [3], "seeds": [0, 0]} for p in PRESETS}}, "repeats a seed"),
    ({"presets": {p: {"values": [3], "budget": 1} for p in PRESETS}},
     r"unknown key presets.quick.budget; allowed keys: \['episodes', 'eval_episodes'"),
    ({"presets": {p: {"values": [3], "loop": {"off_policy": {"n_env": 2}}} for p in PRESETS}},
     r"unknown key presets.quick.loop.off_policy.n_env; allowed keys: .*'n_envs'"),
    ({"presets": {p: {"values": [3], "loop": {"offpolicy": {}}} for p in PRESETS}},
     r"unknown key presets.quick.loop.offpolicy; allowed keys: \['off_policy', 'on_policy'\]"),
    ({"presets": {p: {"values": [3], "episodes": 5} for p in PRESETS}},
     r"invalid settings for adsac.*episodes=5 must be a positive multiple of n_envs=2"),
    ({"presets": {p: {"values": [3, 2000]} for p in PRESETS}},
     r"invalid scenario for random at n_iotds=2000.0: n_iotds=2000 is out of range; "
     r"allowed \[1, 1000\]"),
    ({"scenario": {"uav.altitude": 50}}, r"unknown key uav.altitude; allowed keys: "),
    ({"scenario_preset": "tiny"},
     r"scenario_preset='tiny' is unknown; choose one of \['default', 'dense'"),
    ({"x": None}, r"presets.quick.values is given but the spec has no x axis"),
])
def test_invalid_specs_name_the_field_and_the_allowed_values(change: dict[str, Any],
                                                             fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        parse(tiny(**change))


def test_agent_axis_checks_the_setting_and_the_method_kind() -> None:
    axis = {"name": "critic_lr", "target": "agent", "keys": ["critic_lr"]}
    spec = parse(tiny(x=axis, methods=["adsac"],
                      presets={p: {"values": [1e-4, 1e-2]} for p in PRESETS}))
    assert {r.overrides["critic_lr"] for r in spec.expand("quick")} == {1e-4, 1e-2}
    with pytest.raises(SpecError, match="cannot sweep an agent setting"):
        parse(tiny(x=axis, presets={p: {"values": [1e-4]} for p in PRESETS}))
    bad = {**axis, "keys": ["critic_learning_rate"]}
    with pytest.raises(SpecError, match=r"unknown setting 'critic_learning_rate'; allowed: .*"
                                        r"'critic_lr'"):
        parse(tiny(x=bad, methods=["adsac"], presets={p: {"values": [1e-4]} for p in PRESETS}))


def test_invalid_accuracy_requirement_is_caught_at_load() -> None:
    axis = {"name": "accuracy_min", "keys": ["tasks.accuracy_min", "tasks.accuracy_max"]}
    with pytest.raises(SpecError, match=r"accuracy_min=0.9 is out of range: no server can meet"):
        parse(tiny(x=axis, presets={p: {"values": [0.5, 0.9]} for p in PRESETS}))


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "benchmarks" / "specs")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_every_benchmark_spec_loads(path: Path) -> None:
    """The specs the docs tell users to run load with every preset's settings checked (the
    agent settings that follow from the scenario, such as ``uav_step``, included)."""
    assert load_spec(path).figure
