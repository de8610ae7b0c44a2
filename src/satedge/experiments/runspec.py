"""The runs a figure spec stands for: :class:`FigureSpec` (validated by
:mod:`satedge.experiments.spec`), its expansion into :class:`RunSpec` s, and each run's key.

:attr:`RunSpec.key` hashes everything that determines a run's result (the resolved scenario, the
method, the seed, the budget, the training settings that differ from what ``train()`` uses anyway,
the package's major version) and nothing else: equal runs of different figures share a key, and
so a directory and a result.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from satedge.sim.scenario import Scenario, resolve

__all__ = ["NO_AXIS", "Budget", "FigureSpec", "RunSpec", "SpecError", "available_methods",
           "loop_class", "loop_fields"]

NO_AXIS = "none"
"""``x_name`` of a figure without a swept value (its runs have ``x = nan``)."""


class SpecError(ValueError):
    """An invalid experiment spec; the message names the file, the field and what is allowed."""


def available_methods() -> dict[str, str]:
    """Every method a spec may name: ``{name: "learner" | "policy"}`` (registered now)."""
    from satedge.agents.heuristics import POLICIES
    from satedge.agents.registry import ALGORITHMS

    return {**dict.fromkeys(POLICIES, "policy"), **dict.fromkeys(ALGORITHMS, "learner")}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a method on one scenario with one seed and budget.

    Attributes:
        figure: figure id (``"3"`` ... ``"8"`` or a custom spec's id).
        preset: experiment preset the run belongs to.
        method: algorithm or built-in policy name.
        kind: ``"learner"`` (trained, then evaluated) or ``"policy"`` (evaluated only).
        scenario_preset: named scenario (:data:`satedge.sim.scenario.PRESETS`) under the changes.
        scenario: dotted-key scenario changes, swept value included.
        x_name: name of the swept value (:data:`NO_AXIS` if none).
        x: the swept value (``nan`` if none).
        seed: run seed (every random stream derives from it).
        episodes: training episodes (0 for policies).
        eval_episodes: episodes of the final evaluation on the run's held-out seeds.
        overrides: ``train()`` overrides (loop settings and agent settings; empty for policies).
    """

    figure: str
    preset: str
    method: str
    kind: str
    scenario_preset: str
    scenario: dict[str, Any]
    x_name: str
    x: float
    seed: int
    episodes: int
    eval_episodes: int
    overrides: dict[str, Any] = field(default_factory=dict)

    def resolve_scenario(self) -> Scenario:
        """The validated :class:`Scenario` of this run (cached: a sweep has few distinct ones)."""
        return _resolve_cached(self.scenario_preset, json.dumps(self.scenario, sort_keys=True))

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's result (labels such as the figure excluded)."""
        from satedge import __version__

        ident: dict[str, Any] = {
            "format": 1, "method": self.method, "kind": self.kind, "seed": self.seed,
            "scenario": self.resolve_scenario().to_dict(), "eval_episodes": self.eval_episodes,
            "satedge_major": int(__version__.split(".")[0]),
        }
        if self.kind == "learner":
            ident.update(episodes=self.episodes,
                         overrides=_effective_overrides(self.method, self.overrides))
        return ident

    @functools.cached_property
    def key(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`identity` as canonical JSON."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4096)
def _resolve_cached(preset: str, overrides_json: str) -> Scenario:
    return resolve(preset, json.loads(overrides_json))


@dataclass(frozen=True)
class Budget:
    """One preset's budget of a figure (``presets.yaml`` merged with the figure's own values);
    ``values`` are the swept values (``(nan,)`` without an axis)."""

    seeds: tuple[int, ...]
    episodes: int
    eval_episodes: int
    eval_every_episodes: int
    scenario: dict[str, Any]
    loop: dict[str, dict[str, Any]]
    values: tuple[float | int, ...]


@dataclass(frozen=True)
class FigureSpec:
    """A validated figure spec (:mod:`satedge.experiments.spec` parses the file; ``raw`` is it
    as parsed): methods, the swept value and one :class:`Budget` per preset."""

    figure: str
    title: str
    origin: str
    x_name: str
    x_target: str
    x_keys: tuple[str, ...]
    methods: tuple[tuple[str, dict[str, Any]], ...]
    scenario_preset: str
    scenario: dict[str, Any]
    budgets: dict[str, Budget]
    raw: dict[str, Any]

    def budget(self, preset: str) -> dict[str, Any]:
        """The resolved budget of ``preset`` (presets.yaml merged with the spec's own values)."""
        b = self.budgets[preset]
        return {"seeds": list(b.seeds), "episodes": b.episodes, "eval_episodes": b.eval_episodes,
                "eval_every_episodes": b.eval_every_episodes, "scenario": dict(b.scenario),
                "loop": {k: dict(v) for k, v in b.loop.items()},
                "values": [None if isinstance(v, float) and math.isnan(v) else v
                           for v in b.values]}

    def expand(self, preset: str) -> list[RunSpec]:
        """The runs of ``preset``: methods x swept values x seeds, in that order."""
        if preset not in self.budgets:
            raise SpecError(f"{self.origin}: unknown preset {preset!r}; choose one of "
                            f"{sorted(self.budgets)}")
        b = self.budgets[preset]
        kinds = available_methods()
        runs = []
        for name, method_over in self.methods:
            kind = kinds[name]
            for x in b.values:
                scenario = {**self.scenario, **b.scenario}
                over: dict[str, Any] = {}
                if kind == "learner":
                    over = {**b.loop.get(_loop_kind(name), {}), **method_over,
                            "eval_episodes": b.eval_episodes,
                            "eval_every_episodes": b.eval_every_episodes}
                target = scenario if self.x_target == "scenario" else over
                target.update(dict.fromkeys(self.x_keys, x))
                for seed in b.seeds:
                    runs.append(RunSpec(
                        self.figure, preset, name, kind, self.scenario_preset, dict(scenario),
                        self.x_name, float(x), seed, b.episodes if kind == "learner" else 0,
                        b.eval_episodes, dict(over)))
        return runs


# -- training settings ----------------------------------------------------------------------
def _loop_kind(method: str) -> str:
    from satedge.agents.registry import algorithm_spec

    return algorithm_spec(method).loop


def _effective_overrides(method: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` without the settings that equal what ``train()`` would use anyway (the
    algorithm's presets, else the config defaults), so ``critic_lr=1e-3`` and no override give
    the same run key. Lists compare equal to tuples (YAML has no tuples)."""
    from satedge.agents.registry import algorithm_spec

    algo = algorithm_spec(method)
    defaults: dict[str, Any] = {}
    # train() routes a key the loop knows to the loop (with the loop preset), others to the agent
    for cls, preset in ((algo.config_cls, algo.preset), (loop_class(algo.loop),
                                                         algo.loop_preset)):
        for f in dataclasses.fields(cls):
            if f.name in preset:
                defaults[f.name] = preset[f.name]
            elif f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()

    def norm(v: Any) -> Any:
        return tuple(norm(i) for i in v) if isinstance(v, (list, tuple)) else v

    return {k: v for k, v in sorted(overrides.items())
            if k not in defaults or norm(defaults[k]) != norm(v)}


def loop_class(loop: str) -> type:
    from satedge.agents.common.offpolicy import OffPolicyConfig
    from satedge.agents.common.onpolicy import OnPolicyConfig

    cls = {"off_policy": OffPolicyConfig, "on_policy": OnPolicyConfig}.get(loop)
    if cls is None:
        raise SpecError(f"training loop {loop!r} is unknown to the spec validator")
    return cls


def loop_fields(loop: str) -> set[str]:
    """Settings of the training loop ``loop`` (``episodes`` is the budget's, not a setting)."""
    return {f.name for f in dataclasses.fields(loop_class(loop))} - {"episodes"}
