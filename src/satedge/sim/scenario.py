"""Typed, validated scenario configuration: every default of the model lives here, once.

A :class:`Scenario` is a frozen tree of dataclasses. Each field carries its unit, its allowed range,
its provenance tag (``paper``: stated in the source paper; ``recon``: the paper had the value or
equation but it was lost and this is the standard form its prose describes; ``choice``: ours) and a
one-line description in the field metadata. Validation happens once, at construction; unknown keys
and out-of-range values raise :class:`ScenarioError` naming the key and the allowed range.

Overrides use dotted keys, e.g. ``uav.altitude_m=120`` or ``n_iotds=20``; see :func:`resolve`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

__all__ = [
    "PRESETS",
    "ChannelConfig",
    "ComputeConfig",
    "ConstellationConfig",
    "CostConfig",
    "IotdConfig",
    "SatelliteConfig",
    "Scenario",
    "ScenarioError",
    "TaskConfig",
    "UavConfig",
    "parameter_table",
    "resolve",
]


class ScenarioError(ValueError):
    """A scenario key or value is invalid; the message names the key and what is allowed."""


def _f(
    default: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    unit: str = "",
    tag: str = "choice",
    doc: str = "",
    choices: Sequence[Any] | None = None,
    lo_open: bool = False,
) -> Any:
    """A dataclass field with validation metadata (range, unit, provenance tag, description)."""
    meta = {"lo": lo, "hi": hi, "unit": unit, "tag": tag, "doc": doc, "choices": choices,
            "lo_open": lo_open}
    if isinstance(default, (list, tuple)):
        value = tuple(default)
        return field(default_factory=lambda: value, metadata=meta)
    return field(default=default, metadata=meta)


def _check_field(path: str, value: Any, meta: Mapping[str, Any]) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ScenarioError(f"{path}={value!r} is not allowed; choose one of {list(choices)}")
    lo, hi = meta.get("lo"), meta.get("hi")
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if not math.isfinite(v):
            raise ScenarioError(f"{path}={v!r} must be a finite number in {_range_text(meta)}")
        too_low = lo is not None and (v <= lo if meta.get("lo_open") else v < lo)
        if too_low or (hi is not None and v > hi):
            unit = f" {meta['unit']}" if meta.get("unit") else ""
            raise ScenarioError(f"{path}={v!r} is out of range; allowed {_range_text(meta)}{unit}")


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    left = "(" if meta.get("lo_open") else "["
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


class _Section:
    """Mixin: range-checks every field after construction (frozen dataclasses)."""

    _prefix: str = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata:
                _check_field(f"{self._prefix}{f.name}", getattr(self, f.name), f.metadata)
        self._check_consistency()

    def _check_consistency(self) -> None:
        """Cross-field checks of one section; overridden where needed."""


@dataclass(frozen=True)
class ConstellationConfig(_Section):
    """Walker-delta LEO shell `i: T/P/F` (SPEC section 2), or a TLE file."""

    _prefix = "constellation."
    inclination_deg: float = _f(53.0, 0.0, 180.0, unit="deg", doc="orbital inclination")
    total: int = _f(180, 1, 20000, doc="satellites T of the Walker shell (180/12/0: the smallest "
                                       "shell found with continuous coverage, docs/model.md)")
    planes: int = _f(12, 1, 1000, doc="orbital planes P (T must be divisible by P)")
    phasing: int = _f(0, 0, 999, doc="Walker phasing factor F (0 <= F < P)")
    altitude_m: float = _f(500e3, 150e3, 2000e3, unit="m", tag="paper", doc="orbit altitude")
    elevation_min_deg: float = _f(10.0, 0.0, 60.0, unit="deg", doc="minimum elevation for access")
    tle_file: str = _f("", doc="optional TLE file; when set it replaces the Walker shell")

    def _check_consistency(self) -> None:
        if self.total % self.planes:
            raise ScenarioError(
                f"constellation.total={self.total} must be divisible by "
                f"constellation.planes={self.planes}")
        if self.phasing >= self.planes:
            raise ScenarioError(
                f"constellation.phasing={self.phasing} is out of range; allowed [0, "
                f"{self.planes - 1}] (phasing < planes)")


@dataclass(frozen=True)
class IotdConfig(_Section):
    """IoT devices: mobility and transmit power (SPEC sections 1 and 5)."""

    _prefix = "iotd."
    speed_m_s: float = _f(1.0, 0.0, 50.0, unit="m/s", doc="walking speed between slots")
    mobility: str = _f("random_walk", choices=("random_walk", "random_waypoint", "static"),
                       doc="mobility model between slots")
    power_min_w: float = _f(0.01, 1e-6, 10.0, unit="W", doc="minimum transmit power p_min")
    power_max_w: float = _f(0.2, 1e-6, 10.0, unit="W", doc="maximum transmit power p_max")
    antenna_gain_dbi: float = _f(0.0, -20.0, 30.0, unit="dBi", doc="IoTD antenna gain")

    def _check_consistency(self) -> None:
        if self.power_min_w > self.power_max_w:
            raise ScenarioError(
                f"iotd.power_min_w={self.power_min_w} must not exceed "
                f"iotd.power_max_w={self.power_max_w}")


@dataclass(frozen=True)
class UavConfig(_Section):
    """UAVs: flight, radio and the on-board MLLM server (SPEC sections 1, 4, 5)."""

    _prefix = "uav."
    altitude_m: float = _f(100.0, 10.0, 1000.0, unit="m", doc="fixed flight altitude H_uav")
    speed_max_m_s: float = _f(20.0, 0.0, 100.0, unit="m/s", doc="maximum speed v_max")
    coverage_radius_m: float = _f(250.0, 1.0, 10000.0, unit="m", tag="paper",
                                  doc="horizontal coverage radius R_cov (constraint paper, value "
                                      "choice)")
    bandwidth_hz: float = _f(10e6, 1e3, 1e9, unit="Hz", doc="bandwidth shared by its IoTDs")
    tx_power_w: float = _f(1.0, 1e-3, 100.0, unit="W", doc="UAV transmit power (result downlink)")
    model: str = _f("vila1.5-3b", doc="MLLM hosted by every UAV (zoo key)")
    hardware: str = _f("jetson-orin-nx-16gb", tag="paper", doc="on-board computer (hardware key)")
    compute_power_w: float = _f(25.0, 0.1, 1000.0, unit="W", doc="computer power while inferring")


@dataclass(frozen=True)
class SatelliteConfig(_Section):
    """LEO satellites: radio, ISL and the on-board MLLM servers (SPEC sections 2, 4, 5, 6)."""

    _prefix = "satellite."
    carrier_hz: float = _f(2e9, 1e8, 1e11, unit="Hz", doc="carrier frequency f_c")
    antenna_gain_dbi: float = _f(30.0, -10.0, 60.0, unit="dBi", doc="satellite antenna gain")
    uplink_bandwidth_hz: float = _f(20e6, 1e3, 1e10, unit="Hz",
                                    doc="uplink bandwidth, shared by IoTDs sending to satellites")
    downlink_bandwidth_hz: float = _f(20e6, 1e3, 1e10, unit="Hz",
                                      doc="downlink bandwidth, shared likewise")
    tx_power_w: float = _f(10.0, 1e-3, 1000.0, unit="W", doc="downlink transmit power")
    shadowing: str = _f("average", choices=("frequent_heavy", "average", "infrequent_light"),
                        doc="Shadowed-Rician parameter set (Abdi et al. 2003)")
    normalise_fading: bool = _f(False, choices=(False, True),
                                doc="divide Shadowed-Rician power by its mean 2b + Omega")
    isl_rate_bps: float = _f(1e9, 1e6, 1e12, unit="bit/s", tag="recon", doc="ISL data rate")
    isl_power_w: float = _f(5.0, 0.0, 1000.0, unit="W", tag="recon", doc="ISL transmit power")
    access_model: str = _f("vila1.5-13b", doc="MLLM of the access satellite (candidate slot 0)")
    other_models: tuple[str, ...] = _f(
        ("llava-1.6-13b", "llava-1.6-7b", "llama-3-vila1.5-8b"),
        doc="MLLMs of candidate slots 1..N-1, assigned cyclically")
    hardware: str = _f("jetson-agx-orin-32gb", tag="paper", doc="on-board computer")
    compute_power_w: float = _f(40.0, 0.1, 1000.0, unit="W", doc="computer power while inferring")

    def _check_consistency(self) -> None:
        if not self.other_models:
            raise ScenarioError("satellite.other_models must name at least one zoo model")


@dataclass(frozen=True)
class ChannelConfig(_Section):
    """Ground-to-UAV channel and thermal noise (SPEC section 5)."""

    _prefix = "channel."
    beta0_db: float = _f(-30.0, -100.0, 0.0, unit="dB", tag="recon", doc="gain at 1 m")
    path_loss_exponent: float = _f(2.0, 1.5, 6.0, tag="recon", doc="large-scale exponent alpha")
    rician_k_db: float = _f(10.0, -30.0, 40.0, unit="dB", doc="Rician factor kappa")
    noise_psd_dbm_hz: float = _f(-174.0, -220.0, -100.0, unit="dBm/Hz", doc="noise PSD N0")


@dataclass(frozen=True)
class TaskConfig(_Section):
    """MLLM requests and the tasks they form (SPEC section 3)."""

    _prefix = "tasks."
    arrival_rate_min: float = _f(1.0, 0.0, 20.0, unit="1/slot", tag="paper",
                                 doc="lower end of the per-IoTD Poisson rate lambda")
    arrival_rate_max: float = _f(1.5, 0.0, 20.0, unit="1/slot", tag="paper",
                                 doc="upper end of lambda (each IoTD draws lambda at reset)")
    max_requests: int = _f(8, 1, 64, doc="requests per IoTD per slot are capped here (truncated "
                                         "Poisson)")
    image_bits_min: float = _f(0.8e6, 0.0, 1e9, unit="bit", doc="image size, lower end")
    image_bits_max: float = _f(4e6, 0.0, 1e9, unit="bit", doc="image size, upper end")
    text_tokens_min: int = _f(16, 0, 100000, unit="token", doc="prompt text length, lower end")
    text_tokens_max: int = _f(256, 0, 100000, unit="token", doc="prompt text length, upper end")
    bits_per_text_token: float = _f(32.0, 1.0, 1024.0, unit="bit", doc="upload bits per token")
    bits_per_output_token: float = _f(32.0, 1.0, 1024.0, unit="bit",
                                      doc="result bits per generated token s")
    service_mix: tuple[float, ...] = _f(
        (0.25, 0.25, 0.25, 0.25), 0.0, 1.0,
        doc="probabilities of VQA, captioning, summarisation, translation")
    deadline_min_s: float = _f(3.0, 0.0, 600.0, unit="s", lo_open=True,
                               doc="deadline T_max, lower end (Fig. 6 sweeps it)")
    deadline_max_s: float = _f(3.0, 0.0, 600.0, unit="s", lo_open=True, doc="deadline, upper end")
    accuracy_min: float = _f(0.3, 0.0, 1.0, doc="accuracy requirement A_min, lower end (Fig. 7)")
    accuracy_max: float = _f(0.7, 0.0, 1.0, doc="accuracy requirement A_min, upper end")

    def _check_consistency(self) -> None:
        for lo, hi in (("arrival_rate_min", "arrival_rate_max"), ("image_bits_min",
                       "image_bits_max"), ("text_tokens_min", "text_tokens_max"),
                       ("deadline_min_s", "deadline_max_s"), ("accuracy_min", "accuracy_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ScenarioError(f"tasks.{lo}={getattr(self, lo)} must not exceed "
                                    f"tasks.{hi}={getattr(self, hi)}")
        if len(self.service_mix) != 4 or not math.isclose(sum(self.service_mix), 1.0,
                                                          abs_tol=1e-6):
            raise ScenarioError(f"tasks.service_mix={list(self.service_mix)} must be 4 "
                                "probabilities (VQA, captioning, summarisation, translation) "
                                "summing to 1")


@dataclass(frozen=True)
class ComputeConfig(_Section):
    """Inference-cost model and accuracy scale (SPEC section 4)."""

    _prefix = "compute."
    cost_model: str = _f("flops", choices=("flops", "roofline", "measured"), tag="recon",
                         doc="flops: T = L rho / F (paper Eq. 14, 23); roofline: prefill + "
                             "memory-bound decode; measured: a profiled entry's own rates "
                             "(others: roofline)")
    accuracy_scale: str = _f("paper", choices=("paper", "mmmu"),
                             doc="paper: affine map of MMMU (see docs/model.md); mmmu: raw")
    precision: str = _f("int4", choices=("int4", "fp16"), doc="deployed weight precision")
    extra_zoo_csv: str = _f("", doc="CSV of extra zoo entries merged with the shipped zoo, e.g. "
                                    "from `satedge profile` (\"\": none)")
    extra_hardware_csv: str = _f("", doc="CSV of extra hardware rows merged with the shipped "
                                         "table, e.g. from `satedge zoo fit` (\"\": none)")


@dataclass(frozen=True)
class CostConfig(_Section):
    """System cost, reward and failure penalties (SPEC sections 6-8)."""

    _prefix = "cost."
    latency_weight_per_s: float = _f(1.0, 0.0, 1e6, unit="1/s", doc="w_T")
    energy_weight_per_j: float = _f(0.05, 0.0, 1e6, unit="1/J", doc="w_E")
    reward_form: str = _f("negative", choices=("negative", "reciprocal"), tag="paper",
                          doc="negative: -zeta C / K_active - penalties; reciprocal: zeta / C")
    reward_scale: float = _f(1.0, 0.0, 1e6, lo_open=True, tag="paper", doc="coefficient zeta")
    deadline_penalty: float = _f(2.0, 0.0, 1e6, doc="per task finishing after T_max")
    visibility_penalty: float = _f(2.0, 0.0, 1e6,
                                   doc="per task whose access satellite set before it finished")
    # 20 > the cost of a task served at its 3 s deadline with a large energy bill (3 + 0.05 x
    # ~150 J) plus the deadline penalty 2, so refusing a task by choosing a masked server never
    # pays; at 5 a mask-blind policy could lower its cost by refusing tasks in busy slots.
    infeasible_penalty: float = _f(20.0, 0.0, 1e6, doc="per task sent to a masked server")
    drop_penalty: float = _f(5.0, 0.0, 1e6, doc="per task with no feasible server at all")


_S = TypeVar("_S")


@dataclass(frozen=True)
class Scenario(_Section):
    """The whole scenario. Defaults are SPEC's; see docs/model.md for the table with sources."""

    n_iotds: int = _f(10, 1, 1000, doc="IoT devices K")
    n_uavs: int = _f(3, 1, 100, doc="UAVs M")
    n_candidates: int = _f(5, 1, 100, doc="candidate compute satellites N (slot 0 = access)")
    episode_slots: int = _f(100, 1, 1_000_000, doc="slots per episode T")
    slot_s: float = _f(3.0, 0.0, 3600.0, lo_open=True, unit="s", tag="paper", doc="slot length")
    area_m: float = _f(500.0, 1.0, 1e6, unit="m", tag="paper", doc="side of the square area")
    area_lat_deg: float = _f(30.0, -90.0, 90.0, unit="deg", doc="latitude of the area centre")
    area_lon_deg: float = _f(110.0, -180.0, 180.0, unit="deg", doc="longitude of the centre")
    constellation: ConstellationConfig = field(default_factory=ConstellationConfig)
    iotd: IotdConfig = field(default_factory=IotdConfig)
    uav: UavConfig = field(default_factory=UavConfig)
    satellite: SatelliteConfig = field(default_factory=SatelliteConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    cost: CostConfig = field(default_factory=CostConfig)

    def _check_consistency(self) -> None:
        if self.n_candidates > self.constellation.total:
            raise ScenarioError(
                f"n_candidates={self.n_candidates} is out of range; allowed [1, "
                f"{self.constellation.total}] (constellation.total)")
        best = max(self._server_accuracies().values())
        if self.tasks.accuracy_min > best:
            raise ScenarioError(
                f"tasks.accuracy_min={self.tasks.accuracy_min} is out of range: no server can "
                f"meet it; allowed [0, {best:.4f}] (the most accurate model on the "
                f"'{self.compute.accuracy_scale}' scale)")

    def _server_accuracies(self) -> dict[str, float]:
        """Accuracy of every configured model; unknown models or hardware raise ScenarioError."""
        from satedge.sim import zoo  # the zoo data is read lazily, once

        models = _load_table(zoo.load_zoo, "compute.extra_zoo_csv", self.compute.extra_zoo_csv)
        hardware = _load_table(zoo.load_hardware, "compute.extra_hardware_csv",
                               self.compute.extra_hardware_csv)
        for key, name in (("uav.hardware", self.uav.hardware),
                          ("satellite.hardware", self.satellite.hardware)):
            if name not in hardware:
                raise ScenarioError(f"{key}={name!r} is not in the hardware table; choose one "
                                    f"of {sorted(hardware)}")
        named = [("uav.model", self.uav.model), ("satellite.access_model",
                                                 self.satellite.access_model)]
        named += [("satellite.other_models", n) for n in self.satellite.other_models]
        out = {}
        for key, name in named:
            if name not in models:
                raise ScenarioError(f"{key}={name!r} is not in the MLLM zoo; choose one of "
                                    f"{sorted(models)}")
            try:
                out[name] = zoo.accuracy(models[name], self.compute.accuracy_scale,  # type: ignore[arg-type]
                                         self.compute.precision)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ScenarioError(f"{key}={name!r} cannot serve: {exc}") from None
        return out

    # -- construction helpers -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build from a nested mapping; unknown keys and bad values raise ScenarioError."""
        return _from_dict(cls, data, "")

    def replace(self, overrides: Mapping[str, Any]) -> Scenario:
        """A copy with dotted-key overrides applied, e.g. ``{"uav.altitude_m": 120}``."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(data, key, value, type(self))
        return Scenario.from_dict(data)

    @property
    def n_servers(self) -> int:
        """Number of server choices per IoTD: M UAVs then N candidate satellites."""
        return self.n_uavs + self.n_candidates


def _load_table(load: Callable[..., dict[str, Any]], key: str, path: str) -> dict[str, Any]:
    """A shipped zoo or hardware table with the scenario's extra CSV merged in (errors name key)."""
    try:
        return load(extra=path)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{key}={path!r} cannot be loaded: {exc}") from None


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def _from_dict(cls: type[_S], data: Mapping[str, Any], prefix: str) -> _S:
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{prefix.rstrip('.') or 'scenario'} must be a mapping, "
                            f"got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ScenarioError(f"unknown key {_key_text(f'{prefix}{key!s}')}; allowed keys: "
                                f"{sorted(names)}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, f"{path}.")
    origin = get_origin(hint)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ScenarioError(f"{path} must be a list, got {value!r}")
        inner = get_args(hint)[0]
        return tuple(_coerce(inner, v, path) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ScenarioError(f"{path} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (
                isinstance(value, float) and value.is_integer())):
            raise ScenarioError(f"{path} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{path} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{path} must be a string, got {value!r}")
        return value
    raise ScenarioError(f"{path}: unsupported type {hint!r}")  # pragma: no cover


def _key_text(key: str) -> str:
    """A key as error messages show it: as is, or quoted if it holds a line break or the like
    (messages stay on one line)."""
    return key if key.isprintable() else repr(key)


def _set_dotted(data: dict[str, Any], key: str, value: Any, cls: type) -> None:
    if not isinstance(key, str):
        raise ScenarioError(f"key {key!r} must be a string such as 'uav.altitude_m'")
    parts = key.split(".")
    node: dict[str, Any] = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            raise ScenarioError(f"unknown key {_key_text('.'.join(parts[:i + 1]))}; allowed keys: "
                                f"{sorted(k for k in node)}")
        node = child
    if parts[-1] not in node:
        raise ScenarioError(f"unknown key {_key_text(key)}; allowed keys: "
                            f"{sorted('.'.join([*parts[:-1], k]) for k in node)}")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as JSON when it parses, else a string.

    JSON (never ``eval``) keeps the parser safe: ``1e6`` is a number, ``true`` a bool, ``[1, 2]`` a
    list, and anything else (``vila1.5-3b``) stays a string. The scenario's type check then rejects
    a wrong type with the key's name.
    """
    if "=" not in text:
        raise ScenarioError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise ScenarioError(f"override {text!r} has an empty key")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key, flags=re.ASCII):
        raise ScenarioError(f"override {text!r} has an invalid key {key!r}; keys are dotted "
                            "names such as uav.altitude_m")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {"n_iotds": 4, "n_uavs": 2, "n_candidates": 3, "episode_slots": 20},
    "dense": {"n_iotds": 25},
    "strict-accuracy": {"tasks.accuracy_min": 0.6, "tasks.accuracy_max": 0.7},
    "roofline": {"compute.cost_model": "roofline"},
    # candidate calibration to the paper's Fig. 7 magnitudes (docs/calibration.md): measured with
    # the greedy policy as a proxy; AD-SAC has not been trained on it yet
    "paper-calibrated": {"satellite.other_models": ["vila1.5-13b"],
                         "tasks.image_bits_min": 200_000.0, "tasks.image_bits_max": 1_000_000.0,
                         "n_iotds": 15, "n_candidates": 9, "n_uavs": 4,
                         "cost.energy_weight_per_j": 0.035},
}
"""Named scenarios as overrides of the defaults. ``small`` is for quick tests and demos;
``paper-calibrated`` is the candidate calibration of docs/calibration.md."""


def resolve(preset: str = "default", overrides: Sequence[str] | Mapping[str, Any] = ()) -> Scenario:
    """The scenario of a named preset with ``key=value`` overrides applied (CLI semantics)."""
    if preset not in PRESETS:
        raise ScenarioError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    merged: dict[str, Any] = dict(PRESETS[preset])
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for key, value in items:
        merged[key] = value
    return Scenario().replace(merged)


def parameter_table(scenario: Scenario | None = None) -> list[dict[str, Any]]:
    """Rows ``key, value, unit, range, tag, description`` for docs and ``scenario show``."""
    rows: list[dict[str, Any]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            meta = f.metadata
            rng = (f"one of {list(meta['choices'])}" if meta.get("choices") is not None
                   else _range_text(meta) if meta.get("lo") is not None or meta.get("hi")
                   is not None else "")
            rows.append({"key": f"{prefix}{f.name}", "value": _to_dict(value),
                         "unit": meta.get("unit", ""), "range": rng, "tag": meta.get("tag", ""),
                         "description": meta.get("doc", "")})

    walk(scenario or Scenario(), "")
    return rows
