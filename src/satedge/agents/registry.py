"""Learning algorithms by name: how to build each agent and which loop trains it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from satedge.agents.common.protocol import Agent

__all__ = ["ALGORITHMS", "AlgorithmSpec", "algorithm_spec", "build_agent"]


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


def _adsac_builder(obs_dim: int, k: int, s: int, cont: int, cfg: Any, seed: int) -> Agent:
    from satedge.agents.adsac import AdSac

    return AdSac(obs_dim, k, s, cont, cfg, seed)


def _specs() -> dict[str, AlgorithmSpec]:
    from satedge.agents.adsac import AdSacConfig

    return {
        "adsac": AlgorithmSpec(
            "adsac",
            AdSacConfig,
            {},
            _adsac_builder,
            summary="AD-SAC: discrete + continuous SAC agents fused by MPO",
        ),
        "adsac-nompo": AlgorithmSpec(
            "adsac-nompo",
            AdSacConfig,
            {"use_mpo": False},
            _adsac_builder,
            summary="ablation: two SAC agents, no MPO",
        ),
        "adsac-paper": AlgorithmSpec(
            "adsac-paper",
            AdSacConfig,
            {"form": "paper"},
            _adsac_builder,
            summary="AD-SAC in the paper's four-network form",
        ),
    }


ALGORITHMS = ("adsac", "adsac-nompo", "adsac-paper")


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
    cfg = spec.config_cls(**merged)
    return spec.builder(obs_dim, k, s, cont, cfg, seed), asdict(cfg)
