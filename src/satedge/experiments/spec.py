"""Experiment specs: which runs reproduce a paper figure, validated once and expanded into runs.

A figure spec (``specs/fig<N>.yaml``, loaded with ``yaml.safe_load``) names the methods (learning
algorithms of :mod:`satedge.agents.registry` and built-in policies of
:mod:`satedge.agents.heuristics`), the swept value (a scenario key such as ``n_iotds`` or an agent
setting such as ``critic_lr``) and, per experiment preset (``quick``, ``standard``, ``paper``), the
swept values and any change to the preset's budget. Budgets (seeds, training episodes, evaluation
episodes, loop settings, scenario changes such as shorter episodes) live once per preset in
``specs/presets.yaml``; a figure may override them per preset.

Validation happens at load, for every preset: unknown keys, wrong types, unknown methods, agent
settings an algorithm does not have, and scenario values the scenario rejects raise
:class:`SpecError` naming the file, the field and what is allowed. :meth:`FigureSpec.expand` turns
one preset into :class:`RunSpec` s, one per (method, swept value, seed); :attr:`RunSpec.key`
hashes everything that determines a run's result, so equal runs of different figures share it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from satedge.experiments.runspec import (
    NO_AXIS,
    Budget,
    FigureSpec,
    RunSpec,
    SpecError,
    available_methods,
    loop_class,
    loop_fields,
)
from satedge.sim.scenario import PRESETS as SCENARIO_PRESETS

__all__ = ["FIGURES", "NO_AXIS", "PRESETS", "FigureSpec", "RunSpec", "SpecError",
           "available_methods", "load_spec", "load_specs", "parse_spec"]

FIGURES = ("3", "4", "5", "6", "7", "8")
"""The paper's figures that ship a spec (SPEC section 10)."""
PRESETS = ("quick", "standard", "paper")
"""Experiment presets: ``quick`` (all figures in minutes), ``standard`` (a workstation, hours),
``paper`` (the paper's budget, a cluster)."""

_SPEC_KEYS = {"figure", "title", "description", "plot", "scenario_preset", "scenario", "x",
              "methods", "presets"}
_AXIS_KEYS = {"name", "target", "keys"}
_BUDGET_KEYS = {"seeds", "episodes", "eval_episodes", "eval_every_episodes", "scenario", "loop"}
_METHOD_KEYS = {"name", "overrides"}
_TARGETS = ("scenario", "agent")


# -- loading ------------------------------------------------------------------------------------
def _spec_files() -> Any:
    return resources.files("satedge.experiments.specs")


def load_spec(source: str | int | Path) -> FigureSpec:
    """A figure spec by figure id (``7`` or ``"7"``, the packaged ``specs/fig7.yaml``) or path."""
    text_id = str(source)
    if isinstance(source, Path) or text_id.endswith((".yaml", ".yml", ".json")):
        path = Path(text_id)
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist")
        return parse_spec(_load_yaml(path.read_text(encoding="utf-8"), str(path)), str(path),
                          _packaged_presets())
    if text_id not in FIGURES:
        raise SpecError(f"unknown figure {source!r}; choose one of {list(FIGURES)} or give a "
                        "spec file path")
    name = f"fig{text_id}.yaml"
    text = _spec_files().joinpath(name).read_text(encoding="utf-8")
    return parse_spec(_load_yaml(text, name), name, _packaged_presets())


def load_specs(figures: Iterable[str | int | Path] | None = None) -> list[FigureSpec]:
    """Specs of ``figures`` (default: all of :data:`FIGURES`); duplicates are an error."""
    specs = [load_spec(f) for f in (FIGURES if figures is None else figures)]
    ids = [s.figure for s in specs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SpecError(f"figure {dup[0]!r} is given twice")
    return specs


def _load_yaml(text: str, origin: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"{origin} is not valid YAML: {err}") from None


def _packaged_presets() -> dict[str, Any]:
    data = _load_yaml(_spec_files().joinpath("presets.yaml").read_text(encoding="utf-8"),
                      "presets.yaml")
    _mapping(data, "presets.yaml", "")
    _check_keys(data, set(PRESETS), "presets.yaml", "")
    return dict(data)


# -- validation helpers -------------------------------------------------------------------------
def _mapping(value: Any, origin: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{origin}: {where or 'the file'} must be a mapping, got "
                        f"{type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(f"{origin}: {where or 'the file'} has a key {key!r} that is not a "
                            "string")
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], origin: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            shown = key if isinstance(key, str) and key.isprintable() else repr(key)
            raise SpecError(f"{origin}: unknown key {where}{shown}; allowed keys: "
                            f"{sorted(allowed)}")


def _int(value: Any, origin: str, where: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise SpecError(f"{origin}: {where}={value!r} must be an integer >= {lo}")
    return value


def _str(value: Any, origin: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{origin}: {where}={value!r} must be a non-empty string")
    return value


def _number(value: Any, origin: str, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{origin}: {where}={value!r} must be a finite number")
    return value  # an int stays an int (it may set an integer setting such as batch_size)


def _seeds(value: Any, origin: str, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(_int(value, origin, where, 1)))
    if not isinstance(value, list) or not value:
        raise SpecError(f"{origin}: {where}={value!r} must be a count >= 1 or a non-empty list "
                        "of seeds")
    seeds = tuple(_int(v, origin, f"{where}[{i}]", 0) for i, v in enumerate(value))
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{origin}: {where}={value!r} repeats a seed")
    return seeds


# -- parsing ------------------------------------------------------------------------------------
def parse_spec(data: Any, origin: str, preset_defaults: Mapping[str, Any]) -> FigureSpec:
    """Validate a parsed spec file against the preset budgets ``preset_defaults``."""
    data = _mapping(data, origin, "")
    _check_keys(data, _SPEC_KEYS, origin, "")
    for required in ("figure", "methods", "presets"):
        if required not in data:
            raise SpecError(f"{origin}: missing key {required!r}")
    figure = data["figure"]
    if isinstance(figure, bool) or not isinstance(figure, (int, str)) or str(figure) == "":
        raise SpecError(f"{origin}: figure={figure!r} must be a figure number or a name")
    scenario_preset = data.get("scenario_preset", "default")
    if not isinstance(scenario_preset, str) or scenario_preset not in SCENARIO_PRESETS:
        raise SpecError(f"{origin}: scenario_preset={scenario_preset!r} is unknown; choose one "
                        f"of {sorted(SCENARIO_PRESETS)}")
    x_name, x_target, x_keys = _parse_axis(data.get("x"), origin)
    methods = _parse_methods(data["methods"], origin, x_target)
    presets = _mapping(data["presets"], origin, "presets")
    _check_keys(presets, set(PRESETS), origin, "presets.")
    budgets = {}
    for preset in PRESETS:
        if preset not in presets:
            raise SpecError(f"{origin}: presets.{preset} is missing; every spec defines "
                            f"{list(PRESETS)}")
        budgets[preset] = _parse_budget(preset_defaults.get(preset, {}), presets[preset],
                                        origin, f"presets.{preset}", x_keys)
    spec = FigureSpec(str(figure), str(data.get("title", "")), origin, x_name, x_target, x_keys,
                      methods, scenario_preset, dict(_mapping(data.get("scenario", {}), origin,
                                                              "scenario")), budgets, dict(data))
    for preset in PRESETS:
        _check_runs(spec, preset)
    return spec


def _parse_axis(axis: Any, origin: str) -> tuple[str, str, tuple[str, ...]]:
    if axis is None:
        return NO_AXIS, "scenario", ()
    axis = _mapping(axis, origin, "x")
    _check_keys(axis, _AXIS_KEYS, origin, "x.")
    name = _str(axis.get("name"), origin, "x.name")
    target = axis.get("target", "scenario")
    if target not in _TARGETS:
        raise SpecError(f"{origin}: x.target={target!r} is not allowed; choose one of "
                        f"{list(_TARGETS)}")
    keys = axis.get("keys", [name])
    if not isinstance(keys, list) or not keys:
        raise SpecError(f"{origin}: x.keys={keys!r} must be a non-empty list of keys")
    return name, target, tuple(_str(k, origin, f"x.keys[{i}]") for i, k in enumerate(keys))


def _parse_methods(methods: Any, origin: str, x_target: str
                   ) -> tuple[tuple[str, dict[str, Any]], ...]:
    if not isinstance(methods, list) or not methods:
        raise SpecError(f"{origin}: methods must be a non-empty list")
    kinds = available_methods()
    out = []
    for i, entry in enumerate(methods):
        where = f"methods[{i}]"
        if isinstance(entry, Mapping):
            _check_keys(entry, _METHOD_KEYS, origin, f"{where}.")
            name, over = entry.get("name"), dict(_mapping(entry.get("overrides", {}), origin,
                                                          f"{where}.overrides"))
        else:
            name, over = entry, {}
        if not isinstance(name, str) or name not in kinds:
            raise SpecError(f"{origin}: {where}={name!r} is not a registered algorithm or "
                            f"built-in policy; allowed: {sorted(kinds)}")
        if kinds[name] == "policy" and (over or x_target == "agent"):
            raise SpecError(f"{origin}: {where}={name!r} is a built-in policy: it takes no "
                            "agent overrides and cannot sweep an agent setting (x.target=agent)")
        out.append((str(name), over))
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{origin}: method {dup[0]!r} is listed twice")
    return tuple(out)


def _parse_budget(defaults: Any, own: Any, origin: str, where: str,
                  x_keys: tuple[str, ...]) -> Budget:
    defaults = _mapping(defaults, "presets.yaml", where.split(".")[-1])
    own = _mapping(own if own is not None else {}, origin, where)
    _check_keys(defaults, _BUDGET_KEYS, "presets.yaml", f"{where.split('.')[-1]}.")
    _check_keys(own, _BUDGET_KEYS | {"values"}, origin, f"{where}.")
    merged = {**defaults, **own}
    for key in ("scenario", "loop"):  # merged key by key, not replaced
        merged[key] = {**_mapping(defaults.get(key, {}), origin, f"{where}.{key}"),
                       **_mapping(own.get(key, {}), origin, f"{where}.{key}")}
    for key in ("seeds", "episodes", "eval_episodes", "eval_every_episodes"):
        if key not in merged:
            raise SpecError(f"{origin}: {where}.{key} is missing (neither in the spec nor in "
                            "presets.yaml)")
    loop: dict[str, dict[str, Any]] = {}
    for kind, settings in merged["loop"].items():
        settings = _mapping(settings, origin, f"{where}.loop.{kind}")
        try:
            allowed = loop_fields(kind)
        except SpecError:
            raise SpecError(f"{origin}: unknown key {where}.loop.{kind}; allowed keys: "
                            "['off_policy', 'on_policy']") from None
        _check_keys(settings, allowed, origin, f"{where}.loop.{kind}.")
        loop[kind] = dict(settings)
    if x_keys:
        if "values" not in own:
            raise SpecError(f"{origin}: {where}.values is missing (the swept values)")
        values = own["values"]
        if not isinstance(values, list) or not values:
            raise SpecError(f"{origin}: {where}.values={values!r} must be a non-empty list")
        xs = tuple(_number(v, origin, f"{where}.values[{i}]") for i, v in enumerate(values))
        if len(set(xs)) != len(xs):
            raise SpecError(f"{origin}: {where}.values={values!r} repeats a value")
    elif "values" in own:
        raise SpecError(f"{origin}: {where}.values is given but the spec has no x axis")
    else:
        xs = (math.nan,)
    return Budget(_seeds(merged["seeds"], origin, f"{where}.seeds"),
                   _int(merged["episodes"], origin, f"{where}.episodes", 1),
                   _int(merged["eval_episodes"], origin, f"{where}.eval_episodes", 1),
                   _int(merged["eval_every_episodes"], origin, f"{where}.eval_every_episodes", 1),
                   dict(merged["scenario"]), loop, xs)


def _check_runs(spec: FigureSpec, preset: str) -> None:
    """Build every scenario and training config of ``preset`` once, so that a bad value fails at
    load with the field named, not hours into a sweep."""
    from satedge.agents.registry import algorithm_spec, check_setting_types
    from satedge.experiments.train import scenario_agent_settings

    seen: set[str] = set()
    for run in spec.expand(preset):
        where = f"{spec.origin}: presets.{preset}"
        label = f"{run.method} at {run.x_name}={run.x}"
        scen_id = json.dumps(run.scenario, sort_keys=True)
        if scen_id not in seen:
            seen.add(scen_id)
            try:
                run.resolve_scenario()
            except ValueError as err:
                raise SpecError(f"{where}: invalid scenario for {label}: {err}") from None
        if run.kind != "learner" or run.seed != spec.budgets[preset].seeds[0]:
            continue
        algo = algorithm_spec(run.method)
        derived = scenario_agent_settings(algo.config_cls, run.resolve_scenario())  # cached
        loop_cls = loop_class(algo.loop)
        loop_keys = loop_fields(algo.loop)
        merged = {**algo.loop_preset, **run.overrides}
        agent_fields = {f.name for f in dataclasses.fields(algo.config_cls)}
        unknown = sorted(set(merged) - loop_keys - agent_fields)
        if unknown:
            raise SpecError(f"{where}: {label}: unknown setting {unknown[0]!r}; allowed: "
                            f"{sorted(loop_keys | agent_fields)}")
        try:
            check_setting_types(loop_cls, merged, label)
            check_setting_types(algo.config_cls, merged, label)
            loop_cls(episodes=run.episodes, **{k: v for k, v in merged.items() if k in loop_keys})
            algo.config_cls(**{**derived, **algo.preset, **{k: v for k, v in merged.items()
                                                            if k in agent_fields}})
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}: invalid settings for {label}: {err}") from None
