"""Random valid scenarios and random actions for the fuzz and soak tests.

:func:`random_scenario` draws overrides of a random subset of the scenario's keys, each inside the
range the scenario declares in its field metadata (log-uniform where the range spans decades, the
ends of the range one draw in five), with sizes capped so that a batch steps quickly. Draws the
scenario rejects (an accuracy no server meets, a constellation too small) are drawn again, so
every result is a valid :class:`Scenario`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from satedge.sim import zoo
from satedge.sim.scenario import Scenario, ScenarioError

SIZE_CAPS = {"n_iotds": 16, "n_uavs": 4, "n_candidates": 8, "episode_slots": 40,
             "tasks.max_requests": 16}
"""Upper bounds (inclusive) of the sizes, so that a random scenario steps in milliseconds."""
WALKER = ("constellation.total", "constellation.planes", "constellation.phasing")
"""Drawn jointly by :func:`_walker` (T divisible by P, F < P)."""
FILES = ("constellation.tle_file", "compute.extra_zoo_csv", "compute.extra_hardware_csv")
"""File keys: left at their defaults here (files are fuzzed separately)."""
PAIRS = (("tasks.arrival_rate_min", "tasks.arrival_rate_max"),
         ("tasks.image_bits_min", "tasks.image_bits_max"),
         ("tasks.text_tokens_min", "tasks.text_tokens_max"),
         ("tasks.deadline_min_s", "tasks.deadline_max_s"),
         ("tasks.accuracy_min", "tasks.accuracy_max"),
         ("iotd.power_min_w", "iotd.power_max_w"))
"""(lower, upper) keys that must stay ordered."""


def scalar_fields(obj: Any = None, prefix: str = "") -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """``{dotted key: (default value, field metadata)}`` of every leaf of the scenario."""
    obj = Scenario() if obj is None else obj
    out: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(scalar_fields(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (value, f.metadata)
    return out


def _numeric(key: str, default: float, meta: Mapping[str, Any],
             rng: np.random.Generator) -> float | int:
    lo, hi = float(meta["lo"]), float(meta["hi"])
    hi = min(hi, SIZE_CAPS.get(key, hi))
    u = rng.random()
    if u < 0.1:  # the ends of the range are where numerical trouble lives
        x = hi if meta.get("lo_open") else lo
    elif u < 0.2:
        x = hi
    elif lo > 0 and hi / lo > 100:
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    else:
        x = rng.uniform(lo, hi)
    return round(x) if isinstance(default, int) and not isinstance(default, bool) else x


def _walker(rng: np.random.Generator) -> dict[str, Any]:
    planes = int(rng.integers(1, 25))
    return {"constellation.planes": planes,
            "constellation.total": planes * int(rng.integers(1, 25)),
            "constellation.phasing": int(rng.integers(0, planes))}


def random_overrides(rng: np.random.Generator, p: float = 0.35) -> dict[str, Any]:
    """Dotted-key overrides of about a fraction ``p`` of the keys, every value in its range."""
    models = sorted(zoo.load_zoo())
    hardware = sorted(zoo.load_hardware())
    out: dict[str, Any] = {}
    for key, (default, meta) in scalar_fields().items():
        if key in WALKER or key in FILES:
            continue
        if key in SIZE_CAPS and rng.random() > p:  # small sizes by default: fast steps
            out[key] = int(rng.integers(1, min(SIZE_CAPS[key], 6) + 1))
            continue
        if rng.random() > p:
            continue
        if meta.get("choices") is not None:
            out[key] = list(meta["choices"])[int(rng.integers(len(meta["choices"])))]
        elif key.endswith("model"):
            out[key] = str(rng.choice(models))
        elif key == "satellite.other_models":
            out[key] = [str(m) for m in rng.choice(models, size=int(rng.integers(1, 4)))]
        elif key.endswith("hardware"):
            out[key] = str(rng.choice(hardware))
        elif key == "tasks.service_mix":
            mix = rng.dirichlet(np.full(4, 0.5)) * (rng.random(4) > 0.3)
            out[key] = [float(v) for v in mix / mix.sum()] if mix.sum() > 0 else [0, 0, 0, 1]
        else:
            out[key] = _numeric(key, default, meta, rng)
    if rng.random() < p:
        out.update(_walker(rng))
    defaults = scalar_fields()
    for lo, hi in PAIRS:
        a, b = out.get(lo, defaults[lo][0]), out.get(hi, defaults[hi][0])
        if a > b:
            out[lo], out[hi] = b, a
    return out


def random_scenario(rng: np.random.Generator, p: float = 0.35,
                    tries: int = 200) -> tuple[Scenario, dict[str, Any]]:
    """A valid random scenario and the overrides that made it (rejected draws are redrawn)."""
    last: Exception | None = None
    for _ in range(tries):
        overrides = random_overrides(rng, p)
        try:
            return Scenario().replace(overrides), overrides
        except ScenarioError as err:
            last = err
    raise AssertionError(f"no valid scenario in {tries} draws; last error: {last}")


def random_actions(rng: np.random.Generator, sc: Scenario, batch: int) -> dict[str, Any]:
    """A batched Dict action: uniform servers (masked ones included), powers and moves in the
    action box."""
    return {"offload": rng.integers(0, sc.n_servers, (batch, sc.n_iotds)),
            "power": rng.uniform(-1, 1, (batch, sc.n_iotds)).astype(np.float32),
            "uav": rng.uniform(-1, 1, (batch, sc.n_uavs, 2)).astype(np.float32)}


def fp_errors_raise() -> np.errstate:
    """numpy floating-point errors the model should never produce raise: division by zero,
    overflow and invalid operations (nan). Underflow to 0 stays silent: it is benign (e.g.
    ``exp`` of a very negative log-probability)."""
    return np.errstate(divide="raise", over="raise", invalid="raise", under="ignore")
