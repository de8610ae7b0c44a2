"""Learning algorithms by name: how to build each agent and which loop trains it."""

from __future__ import annotations

import dataclasses
import importlib
import numbers
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from satedge.agents.common.protocol import Agent

__all__ = ["ALGORITHMS", "AlgorithmSpec", "algorithm_spec", "build_agent",
           "check_setting_types"]


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm: its config class, the config overrides that define it, and its builder."""

    name: str
    config_cls: type
    preset: dict[str, Any]
    builder: Callable[[int, int, int, int, Any, int], Agent]
    loop: str = "off_policy"
    summary: str = ""
    loop_preset: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Loop settings (``OffPolicyConfig`` / on-policy config fields) that define the algorithm,
    e.g. ``{"unavailable_samples": False}`` for a baseline; user overrides win."""
    seed_batched: bool = False
    """Its agent class can train several seeds as stacked networks (``seed_batched``)."""


def _lazy(module: str, cls: str) -> Callable[[int, int, int, int, Any, int], Agent]:
    """A builder that imports ``satedge.agents.<module>`` (and so torch) only when called."""

    def build(obs_dim: int, k: int, s: int, cont: int, cfg: Any, seed: int) -> Agent:
        agent_cls = getattr(importlib.import_module(f"satedge.agents.{module}"), cls)
        return agent_cls(obs_dim, k, s, cont, cfg, seed)

    return build


_adsac_builder = _lazy("adsac", "AdSac")
_adsac_d_builder = _lazy("adsac_variants", "AdSacD")
_adsac_c_builder = _lazy("adsac_variants", "AdSacC")
_d3qn_builder = _lazy("d3qn", "D3qn")
_ddpg_builder = _lazy("ddpg", "Ddpg")
_ppo_builder = _lazy("ppo", "Ppo")
_hybrid_ppo_builder = _lazy("hybrid_ppo", "HybridPpo")


def _specs() -> dict[str, AlgorithmSpec]:
    from satedge.agents.adsac import AdSacConfig
    from satedge.agents.adsac_variants import AdSacCConfig, AdSacDConfig
    from satedge.agents.d3qn import D3qnConfig
    from satedge.agents.ddpg import DdpgConfig
    from satedge.agents.hybrid_ppo import HybridPpoConfig
    from satedge.agents.ppo import PpoConfig

    def adsac(name: str, preset: dict[str, Any], summary: str) -> AlgorithmSpec:
        return AlgorithmSpec(name, AdSacConfig, preset, _adsac_builder, summary=summary,
                             seed_batched=True)

    ar = {"server_values": "exact", "uav_geometry": True, "discrete_actor": "autoregressive"}
    # the -search-cond-pow family: simulated moves and powers, an actor given the servers
    cond = {**ar, "move_values": "simulated", "continuous_actor": "conditioned",
            "power_values": "simulated"}
    srv = {**cond, "server_search": 8}  # ... whose discrete actor also fits a local search
    cap = {**srv, "alpha_continuous_max": 0.05}  # ... with the continuous temperature bounded
    # ... with greedy's moves and the per-slot optimiser's server and power targets
    opt = {**cap, "server_search": 0, "target_search": "optimizer", "move_values": "centroid"}
    adsacs = [
        adsac("adsac", {}, "AD-SAC: discrete + continuous SAC agents fused by MPO"),
        adsac("adsac-nompo", {"use_mpo": False}, "ablation: two SAC agents, no MPO"),
        adsac("adsac-exact", {"server_values": "exact"},
              "AD-SAC whose discrete agent learns from exact one-slot server values"),
        adsac("adsac-exact-geo", {"server_values": "exact", "uav_geometry": True},
              "adsac-exact whose critic also sees each IoTD's distance to every UAV after the "
              "move"),
        adsac("adsac-exact-geo-ar", ar,
              "adsac-exact-geo whose discrete actor places the IoTDs one after another, each "
              "seeing the load of those placed before it"),
        adsac("adsac-exact-geo-ar-rel", {**ar, "continuous_actor": "shared"},
              "adsac-exact-geo-ar whose continuous actor gives each power from the shared "
              "per-IoTD inputs and each UAV's move from the IoTDs' offsets to that UAV"),
        adsac("adsac-exact-geo-ar-shaped", {**ar, "uav_shaping": 1.0},
              "adsac-exact-geo-ar whose critic targets add potential-based shaping by the "
              "IoTDs' distance to their nearest UAV"),
        adsac("adsac-exact-geo-ar-search", {**ar, "move_values": "simulated"},
              "adsac-exact-geo-ar whose UAV moves fit the best move of a one-slot lookahead "
              "with the simulator's cost function instead of the critic"),
        adsac("adsac-exact-geo-ar-search-rel",
              {**ar, "move_values": "simulated", "continuous_actor": "shared"},
              "adsac-exact-geo-ar-search with the UAV-relative continuous actor of "
              "adsac-exact-geo-ar-rel"),
        adsac("adsac-exact-geo-ar-search-rel-pow",
              {**ar, "move_values": "simulated", "continuous_actor": "shared",
               "power_values": "simulated"},
              "adsac-exact-geo-ar-search-rel whose transmit powers also fit the best power of a "
              "one-slot search with the simulator's cost function instead of the critic"),
        adsac("adsac-exact-geo-ar-search-cond-pow",
              cond,
              "adsac-exact-geo-ar-search-rel-pow whose continuous actor is also given the "
              "discrete action: each IoTD's server, and which tasks each UAV will serve"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv",
              srv,
              "adsac-exact-geo-ar-search-cond-pow whose discrete actor also fits the assignment "
              "a local search with the simulator's cost function reaches from its own servers"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-ctr",
              {**srv, "move_centroid": True},
              "adsac-exact-geo-ar-search-cond-pow-srv whose move search also prices each UAV's "
              "greedy move toward the centroid of the IoTDs it serves"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-mode",
              {**srv, "server_search_from_mode": True},
              "adsac-exact-geo-ar-search-cond-pow-srv whose server search also starts from the "
              "discrete actor's mode, the better local optimum kept"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-cap",
              cap,
              "adsac-exact-geo-ar-search-cond-pow-srv whose continuous temperature is held at or "
              "below its initial 0.05"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-cap-next",
              {**cap, "move_target_slot": "next"},
              "adsac-exact-geo-ar-search-cond-pow-srv-cap whose move targets are priced on the "
              "slot the moves reach, with the servers and powers taken there"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-cap-next-val",
              {**cap, "move_target_slot": "next", "move_value_net": True},
              "adsac-exact-geo-ar-search-cond-pow-srv-cap-next whose moves fit the best "
              "candidate under a learned value of each candidate move, regressed on the "
              "candidates' next-slot rewards"),
        adsac("adsac-exact-geo-ar-search-cond-pow-srv-cap-greedy-moves",
              {**cap, "move_values": "centroid"},
              "adsac-exact-geo-ar-search-cond-pow-srv-cap whose UAV moves imitate greedy's rule "
              "(toward the centroid of the IoTDs each UAV serves) instead of fitting the move "
              "search"),
        adsac("adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves", opt,
              "adsac-exact-geo-ar-search-cond-pow-srv-cap-greedy-moves whose server and power "
              "targets are the per-slot optimiser's instead of the local searches' (a planner "
              "distilled)"),
        adsac("adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves-beam",
              {**opt, "decision_beam": 8},
              "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves whose deterministic "
              "servers are, of the actor's greedy decoding and a beam of 8, the most "
              "pseudo-likely under a second network fitted to each IoTD's server target given "
              "the others'"),
        adsac("adsac-paper", {"form": "paper"}, "AD-SAC in the paper's four-network form"),
    ]
    return {
        **{spec.name: spec for spec in adsacs},
        "adsac-d": AlgorithmSpec(
            "adsac-d",
            AdSacDConfig,
            {},
            _adsac_d_builder,
            summary="ablation: one discrete SAC agent, power and UAV moves discretised",
        ),
        "adsac-c": AlgorithmSpec(
            "adsac-c",
            AdSacCConfig,
            {},
            _adsac_c_builder,
            summary="ablation: one continuous SAC agent, server choice as scores (argmax)",
            # a masked server is never the argmax over feasible ones: no consistent sample
            loop_preset={"unavailable_samples": False},
        ),
        "d3qn": AlgorithmSpec(
            "d3qn",
            D3qnConfig,
            {},
            _d3qn_builder,
            summary="baseline: branching dueling double DQN on the discretised action",
            loop_preset={"unavailable_samples": False, "updates_per_transition": 0.25},
        ),
        "ddpg": AlgorithmSpec(
            "ddpg",
            DdpgConfig,
            {},
            _ddpg_builder,
            summary="baseline: DDPG, server choice relaxed to scores (argmax over feasible)",
            loop_preset={"unavailable_samples": False, "updates_per_transition": 0.25},
        ),
        "ppo": AlgorithmSpec(
            "ppo",
            PpoConfig,
            {},
            _ppo_builder,
            loop="on_policy",
            summary="baseline: PPO on the discretised action (server, power level, UAV move)",
        ),
        "hybrid-ppo": AlgorithmSpec(
            "hybrid-ppo",
            HybridPpoConfig,
            {},
            _hybrid_ppo_builder,
            loop="on_policy",
            summary="baseline: parameterised PPO, categorical + Gaussian heads (Fan et al. 2019)",
        ),
    }


ALGORITHMS = ("adsac", "adsac-nompo", "adsac-paper", "adsac-exact", "adsac-exact-geo",
              "adsac-exact-geo-ar", "adsac-exact-geo-ar-rel", "adsac-exact-geo-ar-shaped",
              "adsac-exact-geo-ar-search", "adsac-exact-geo-ar-search-rel",
              "adsac-exact-geo-ar-search-rel-pow", "adsac-exact-geo-ar-search-cond-pow",
              "adsac-exact-geo-ar-search-cond-pow-srv",
              "adsac-exact-geo-ar-search-cond-pow-srv-ctr",
              "adsac-exact-geo-ar-search-cond-pow-srv-mode",
              "adsac-exact-geo-ar-search-cond-pow-srv-cap",
              "adsac-exact-geo-ar-search-cond-pow-srv-cap-next",
              "adsac-exact-geo-ar-search-cond-pow-srv-cap-next-val",
              "adsac-exact-geo-ar-search-cond-pow-srv-cap-greedy-moves",
              "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves",
              "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves-beam", "adsac-d", "adsac-c",
              "d3qn", "ddpg", "ppo", "hybrid-ppo")


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` of algorithm ``name``."""
    specs = _specs()
    if name not in specs:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(specs)}")
    return specs[name]


def build_agent(
    name: str,
    obs_dim: int,
    k: int,
    s: int,
    cont: int,
    seed: int,
    overrides: dict[str, Any] | None = None,
) -> tuple[Agent, dict[str, Any]]:
    """The agent of algorithm ``name`` and its resolved config as a dict."""
    spec = algorithm_spec(name)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    merged = {**spec.preset, **(overrides or {})}
    unknown = sorted(set(merged) - fields)
    if unknown:
        raise ValueError(f"unknown {name} setting {unknown[0]!r}; allowed: {sorted(fields)}")
    check_setting_types(spec.config_cls, merged, name)
    cfg = spec.config_cls(**merged)
    return spec.builder(obs_dim, k, s, cont, cfg, seed), asdict(cfg)


def _type_ok(hint: Any, value: Any) -> bool:
    """Whether a JSON-like ``value`` fits the annotation ``hint`` (int for float, list for
    tuple)."""
    if get_origin(hint) in (Union, types.UnionType):
        return any(_type_ok(h, value) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if get_origin(hint) is tuple:
        return isinstance(value, (list, tuple)) and all(_type_ok(get_args(hint)[0], v)
                                                        for v in value)
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral)
    if hint is float:
        return isinstance(value, numbers.Real)
    return not isinstance(hint, type) or isinstance(value, hint)


def check_setting_types(cls: type, values: Mapping[str, Any], what: str) -> None:
    """Require every ``values[key]`` to have the type of field ``key`` of dataclass ``cls``, so
    that a setting of the wrong type (``critic_lr="fast"``) is a ``ValueError`` naming it instead
    of a ``TypeError`` deep in a range check. Keys that are not fields are left to the caller."""
    hints = get_type_hints(cls)
    for key, value in values.items():
        if key in hints and not _type_ok(hints[key], value):
            raise ValueError(f"{what} setting {key}={value!r} has the wrong type; expected "
                             f"{_type_name(hints[key])}")


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(h) for h in get_args(hint))
    if get_origin(hint) is tuple:
        return f"a list of {_type_name(get_args(hint)[0]).split(' ', 1)[-1]}s"
    return names.get(hint, getattr(hint, "__name__", str(hint)))
