"""MLLM zoo, edge hardware, accuracy scale and inference cost models (SPEC section 4).

The data live in ``satedge/sim/data/mllm_zoo.csv`` and ``hardware.csv``; every row carries a
``source`` with [paper]/[recon]/[choice] tags. Custom zoos load from any path with the same columns,
and ``extra=`` merges a file of further rows (e.g. entries written by ``satedge profile`` or
``satedge zoo fit``, see ``docs/profiling.md``) into a table.

Deliberate deviations from the paper (see ``docs/model.md``):

- Accuracy is rescaled MMMU (``scale="paper"``, an affine map anchored on VILA1.5-3B int4 -> 0.50
  and VILA1.5-13B fp16 -> 0.75), because published MMMU (0.33-0.38) cannot span the paper's
  accuracy requirements 0.3-0.7 [choice]; the raw score stays available (``scale="mmmu"``).
- Besides the paper's FLOP-count model (Eq. 14, 23) [recon] there is a roofline model [choice]
  whose decode step also carries a fixed per-token overhead, fitted with the bandwidth efficiency
  to the published AGX Orin 4-bit token rates; the compute efficiency cannot be identified from
  decode rates (both roofline branches scale with ``params``) and is set to 1 [choice].
- A third cost model, ``measured`` [choice, beyond the paper], uses the prefill and decode rates a
  profiled zoo entry carries (``satedge profile``); entries without them fall back to the roofline.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# --- Records


@dataclass(frozen=True)
class MllmModel:
    """One multimodal LLM of the zoo (one row of ``mllm_zoo.csv``).

    ``params`` is a count of parameters; MMMU scores are fractions in (0, 1], ``None`` where
    unpublished; ``tokens_per_s_agx_orin_int4`` is the published 4-bit decode rate on a Jetson
    AGX Orin (token/s), ``None`` where unpublished; ``vision_tokens`` is per image.

    Profiled entries (``satedge profile``) also carry ``measured_prefill_tokens_per_s`` (input
    tokens per second of time to first token), ``measured_decode_tokens_per_s`` (token/s) and
    ``measured_on`` (device, dtype and libraries); all three are ``None`` for published rows.
    """

    name: str
    display_name: str
    params: float
    mmmu_val_fp16: float | None
    mmmu_val_int4: float | None
    tokens_per_s_agx_orin_int4: float | None
    vision_tokens: int
    source: str
    measured_prefill_tokens_per_s: float | None = None
    measured_decode_tokens_per_s: float | None = None
    measured_on: str | None = None

    def __post_init__(self) -> None:
        measured = (self.measured_prefill_tokens_per_s, self.measured_decode_tokens_per_s,
                    self.measured_on)
        if any(v is not None for v in measured) and any(v is None for v in measured):
            raise ValueError("measured_prefill_tokens_per_s, measured_decode_tokens_per_s and "
                             "measured_on must be given together or all left empty")


@dataclass(frozen=True)
class Hardware:
    """One edge accelerator (one row of ``hardware.csv``): FLOP/s, byte/s and W.

    ``token_overhead_s`` (s) is the roofline's per-decode-step overhead on this device, set by
    ``satedge zoo fit``; ``None`` (the shipped rows) uses the cost model's default.
    """

    name: str
    flops: float
    memory_bandwidth_bytes_s: float
    power_min_w: float
    power_max_w: float
    source: str
    token_overhead_s: float | None = None

    def __post_init__(self) -> None:
        if self.power_max_w < self.power_min_w:
            raise ValueError(
                f"power_max_w ({self.power_max_w}) must be >= power_min_w ({self.power_min_w})"
            )


# --- CSV loading: one parser per column, errors name the file, row (file line) and column


def _text(cell: str) -> str:
    if not cell.strip():
        raise ValueError("must not be empty")
    return cell.strip()


def _positive(cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{cell!r} must be a finite number > 0")
    return value


def _optional_positive(cell: str) -> float | None:
    return None if not cell.strip() else _positive(cell)


def _optional_non_negative(cell: str) -> float | None:
    if not cell.strip():
        return None
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{cell!r} must be a finite number >= 0")
    return value


def _optional_text(cell: str) -> str | None:
    return cell.strip() or None


def _optional_fraction(cell: str) -> float | None:
    value = _optional_positive(cell)
    if value is not None and value > 1:
        raise ValueError(f"{cell!r} must be a fraction in (0, 1] (not a percentage)")
    return value


def _count(cell: str) -> int:
    if not cell.strip().isdigit():
        raise ValueError(f"{cell!r} must be a non-negative integer")
    return int(cell)


_ZOO_COLUMNS: dict[str, Callable[[str], Any]] = {
    "name": _text,
    "display_name": _text,
    "params": _positive,
    "mmmu_val_fp16": _optional_fraction,
    "mmmu_val_int4": _optional_fraction,
    "tokens_per_s_agx_orin_int4": _optional_positive,
    "vision_tokens": _count,
    "measured_prefill_tokens_per_s": _optional_positive,  # profiled entries (satedge profile)
    "measured_decode_tokens_per_s": _optional_positive,
    "measured_on": _optional_text,
    "source": _text,
}
_HARDWARE_COLUMNS: dict[str, Callable[[str], Any]] = {
    "name": _text,
    "flops": _positive,
    "memory_bandwidth_bytes_s": _positive,
    "power_min_w": _positive,
    "power_max_w": _positive,
    "token_overhead_s": _optional_non_negative,  # rows fitted by satedge zoo fit
    "source": _text,
}
_OPTIONAL_COLUMNS = frozenset({"measured_prefill_tokens_per_s", "measured_decode_tokens_per_s",
                               "measured_on", "token_overhead_s"})
"""Columns a file may leave out (older custom tables); their values are then ``None``."""

ZOO_COLUMNS: tuple[str, ...] = tuple(_ZOO_COLUMNS)
"""Column order of ``mllm_zoo.csv``."""
HARDWARE_COLUMNS: tuple[str, ...] = tuple(_HARDWARE_COLUMNS)
"""Column order of ``hardware.csv``."""


def _read_rows(
    label: str, text: str, columns: Mapping[str, Callable[[str], Any]], factory: Any
) -> dict[str, Any]:
    """Parse CSV ``text`` into ``{name: factory(**row)}``, checking every column of every row.

    Every column must be present except the optional ones (``_OPTIONAL_COLUMNS``, then
    ``None``); any other column is an error.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    missing = set(columns) - set(header) - _OPTIONAL_COLUMNS
    unknown = set(header) - set(columns)
    if missing or unknown:
        raise ValueError(
            f"{label}: missing columns {sorted(missing)}, unknown columns {sorted(unknown)}; "
            f"expected {list(columns)} (optional: {sorted(_OPTIONAL_COLUMNS & set(columns))})"
        )
    parsers = {c: parse for c, parse in columns.items() if c in header}
    records: dict[str, Any] = {}
    for row in reader:
        where = f"{label}: row {reader.line_num}"  # the file line, header = line 1
        values = {}
        for column, parse in parsers.items():
            try:
                values[column] = parse(row[column] or "")
            except ValueError as err:
                raise ValueError(f"{where}, column {column!r}: {err}") from None
        if values["name"] in records:
            raise ValueError(f"{where}, column 'name': duplicate name {values['name']!r}")
        try:
            records[values["name"]] = factory(**values)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if not records:
        raise ValueError(f"{label}: no data rows")
    return records


def _read_default(file_name: str, columns: Mapping[str, Callable[[str], Any]], factory: Any) -> Any:
    resource = resources.files("satedge.sim.data").joinpath(file_name)
    return _read_rows(str(resource), resource.read_text(encoding="utf-8"), columns, factory)


def _read_path(path: str | Path, columns: Mapping[str, Callable[[str], Any]], factory: Any) -> Any:
    return _read_rows(str(path), Path(path).read_text(encoding="utf-8"), columns, factory)


@functools.cache
def _default_zoo() -> dict[str, MllmModel]:
    return _read_default("mllm_zoo.csv", _ZOO_COLUMNS, MllmModel)


@functools.cache
def _default_hardware() -> dict[str, Hardware]:
    return _read_default("hardware.csv", _HARDWARE_COLUMNS, Hardware)


def _merge(base: dict[str, Any], extra: str | Path | None, columns: Any, factory: Any) -> Any:
    if extra is None or str(extra) == "":
        return base
    more = _read_path(extra, columns, factory)
    clash = sorted(set(more) & set(base))
    if clash:
        raise ValueError(f"{extra}: names {clash} are already in the table it extends; give the "
                         "extra rows other names")
    return {**base, **more}


def load_zoo(
    path: str | Path | None = None, *, extra: str | Path | None = None
) -> dict[str, MllmModel]:
    """Load the MLLM zoo keyed by short name (the shipped one, cached, when ``path`` is None).

    ``extra`` (a CSV path; None or "" for none) adds its rows, e.g. profiled entries; a name
    already in the table is an error. Raises ``ValueError`` naming the file, row (file line) and
    column of the first bad value, and ``OSError`` for an unreadable file.
    """
    base = dict(_default_zoo()) if path is None else _read_path(path, _ZOO_COLUMNS, MllmModel)
    return _merge(base, extra, _ZOO_COLUMNS, MllmModel)  # a copy: callers cannot touch the cache


def load_hardware(
    path: str | Path | None = None, *, extra: str | Path | None = None
) -> dict[str, Hardware]:
    """Load the hardware table keyed by short name (shipped one, cached, when ``path`` is None).

    ``extra`` adds rows as in :func:`load_zoo` (e.g. rows fitted by ``satedge zoo fit``).
    """
    base = dict(_default_hardware()) if path is None else _read_path(
        path, _HARDWARE_COLUMNS, Hardware)
    return _merge(base, extra, _HARDWARE_COLUMNS, Hardware)


# --- Accuracy scale

PAPER_SCALE_ANCHORS: tuple[tuple[float, float], ...] = ((0.327, 0.50), (0.379, 0.75))
"""[choice] (MMMU, paper accuracy) anchors: VILA1.5-3B int4 -> 0.50, VILA1.5-13B fp16 -> 0.75."""

(_MMMU_LOW, _PAPER_LOW), (_MMMU_HIGH, _PAPER_HIGH) = PAPER_SCALE_ANCHORS

PAPER_SCALE_SLOPE: float = (_PAPER_HIGH - _PAPER_LOW) / (_MMMU_HIGH - _MMMU_LOW)
"""Slope ``a`` of ``paper = a * mmmu + b`` (about 4.808)."""

PAPER_SCALE_INTERCEPT: float = _PAPER_LOW - PAPER_SCALE_SLOPE * _MMMU_LOW
"""Intercept ``b`` of ``paper = a * mmmu + b`` (about -1.072)."""


def paper_accuracy(mmmu: npt.ArrayLike) -> FloatArray:
    r"""Map MMMU val accuracy to the paper's accuracy scale [choice].

    .. math:: A = \mathrm{clip}(a \cdot A_\mathrm{MMMU} + b,\ 0,\ 1)

    with ``a = PAPER_SCALE_SLOPE``, ``b = PAPER_SCALE_INTERCEPT`` (anchors in
    ``PAPER_SCALE_ANCHORS``). Clipping keeps an accuracy a probability; the map is monotone
    non-decreasing and saturates at MMMU >= 0.429.

    Input: MMMU fractions, any shape. Output: float64 array, same shape.
    """
    affine = PAPER_SCALE_SLOPE * np.asarray(mmmu, dtype=np.float64) + PAPER_SCALE_INTERCEPT
    return np.clip(affine, 0.0, 1.0)


def accuracy(
    model: MllmModel,
    scale: Literal["paper", "mmmu"],
    precision: Literal["int4", "fp16"] = "int4",
) -> float:
    """Accuracy of ``model`` on the ``paper`` (rescaled, default in configs) or raw ``mmmu`` scale.

    ``int4`` (the default: every deployed model runs 4-bit, as the Jetson rates are 4-bit) uses the
    AWQ int4 MMMU where published and falls back to the fp16 figure otherwise (the LLaVA-1.6 zoo
    publishes no 4-bit MMMU). Raises ``ValueError`` naming the model when no score is published.
    """
    if scale not in ("paper", "mmmu"):
        raise ValueError(f"scale must be 'paper' or 'mmmu', got {scale!r}")
    if precision not in ("int4", "fp16"):
        raise ValueError(f"precision must be 'int4' or 'fp16', got {precision!r}")
    mmmu = model.mmmu_val_fp16
    if precision == "int4" and model.mmmu_val_int4 is not None:
        mmmu = model.mmmu_val_int4
    if mmmu is None:
        raise ValueError(
            f"model {model.name!r}: no published MMMU val score for precision {precision!r}; "
            "it cannot be given an accuracy (add one in a custom zoo CSV with a source)"
        )
    return mmmu if scale == "mmmu" else float(paper_accuracy(mmmu))


# --- Inference cost models


def _non_negative(name: str, value: npt.ArrayLike) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if np.any(array < 0) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite and >= 0")
    return array


def _positive_array(name: str, value: npt.ArrayLike) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(array > 0) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite and > 0")
    return array


def flops_inference_time_s(
    out_tokens: npt.ArrayLike, params: npt.ArrayLike, flops: npt.ArrayLike
) -> FloatArray:
    r"""Inference time of the paper's FLOP-count model (paper Eq. 14, 23) [recon].

    .. math:: T_\mathrm{inf} = L \rho / F, \qquad \rho = 2 \cdot \mathrm{params}

    ``rho`` is FLOP per output token (one multiply-add per weight). Input tokens are ignored, as
    in the paper's form.

    Inputs (broadcast together): ``out_tokens`` L (token), ``params`` (count), ``flops`` F
    (FLOP/s). Output: time in s, float64 array of the broadcast shape.
    """
    tokens = _non_negative("out_tokens", out_tokens)
    return tokens * 2.0 * _positive_array("params", params) / _positive_array("flops", flops)


@dataclass(frozen=True)
class RooflineEfficiency:
    """Achieved fractions of peak compute and memory bandwidth, plus a per-token overhead.

    ``compute`` multiplies the nominal FLOP/s (it may exceed 1: the paper's TFLOPS figures are
    FP32 CUDA-core rates while prefill runs on tensor cores); ``memory`` multiplies the memory
    bandwidth, in (0, 1]; ``token_overhead_s`` (s) is added to every decode step (kernel launch,
    sampling), 0 in the pure roofline.
    """

    compute: float
    memory: float
    token_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.compute > 0:
            raise ValueError(f"compute efficiency must be > 0, got {self.compute}")
        if not 0 < self.memory <= 1:
            raise ValueError(f"memory efficiency must be in (0, 1], got {self.memory}")
        if not self.token_overhead_s >= 0:
            raise ValueError(f"token_overhead_s must be >= 0, got {self.token_overhead_s}")


# Fitted once by fit_roofline_efficiency(load_zoo(), load_hardware()["jetson-agx-orin-32gb"]) on
# the 5 published AGX Orin int4 rates (docs/model.md, "Roofline fit"); compute is fixed, not
# fitted (not identifiable from decode rates); the bandwidth efficiency sits on its bound of 1.
# tests/sim/test_zoo.py re-fits and checks these constants within 1 %.
DEFAULT_ROOFLINE_EFFICIENCY = RooflineEfficiency(compute=1.0, memory=1.0, token_overhead_s=0.012274)


def _decode_step_s(
    params: FloatArray, hw: Hardware, weight_bits: float, eff: RooflineEfficiency
) -> FloatArray:
    """One batch-1 decode step (s): roofline of FLOPs vs weight bytes, plus the overhead (the
    hardware row's own, fitted, where it has one; else the efficiency's)."""
    if not weight_bits > 0:
        raise ValueError(f"weight_bits must be > 0, got {weight_bits}")
    compute_s = 2.0 * params / (hw.flops * eff.compute)
    memory_s = params * (weight_bits / 8.0) / (hw.memory_bandwidth_bytes_s * eff.memory)
    overhead_s = eff.token_overhead_s if hw.token_overhead_s is None else hw.token_overhead_s
    return np.maximum(compute_s, memory_s) + overhead_s


def roofline_inference_time_s(
    in_tokens: npt.ArrayLike,
    out_tokens: npt.ArrayLike,
    params: npt.ArrayLike,
    hw: Hardware,
    weight_bits: float = 4,
    efficiency: RooflineEfficiency = DEFAULT_ROOFLINE_EFFICIENCY,
) -> FloatArray:
    r"""Inference time of the roofline model [choice, beyond the paper].

    .. math::
        T = N_\mathrm{in} \frac{2P}{\eta_c F}
          + L \left[\max\left(\frac{2P}{\eta_c F}, \frac{P b / 8}{\eta_m B}\right) + t_0\right]

    Prefill of the ``N_in`` input (text and image) tokens runs at compute speed; each of the ``L``
    output tokens reads all ``P b / 8`` weight bytes once (batch 1), so decode is memory-bound on
    the Jetsons whenever ``eta_c > 4 B eta_m / F`` (about 0.25). ``t0`` is the per-token overhead.

    Inputs (broadcast together): ``in_tokens`` N_in and ``out_tokens`` L (token), ``params`` P
    (count); ``hw`` gives F (FLOP/s) and B (byte/s); ``weight_bits`` b (bit per weight);
    ``efficiency`` gives eta_c, eta_m and t0 (s). Output: time in s, float64 array.
    """
    n_in, n_out = _non_negative("in_tokens", in_tokens), _non_negative("out_tokens", out_tokens)
    p = _positive_array("params", params)
    prefill_s = n_in * 2.0 * p / (hw.flops * efficiency.compute)
    return prefill_s + n_out * _decode_step_s(p, hw, weight_bits, efficiency)


def roofline_tokens_per_s(
    params: npt.ArrayLike,
    hw: Hardware,
    weight_bits: float = 4,
    efficiency: RooflineEfficiency = DEFAULT_ROOFLINE_EFFICIENCY,
) -> FloatArray:
    """Decode rate (token/s) the roofline model predicts, the inverse of one decode step."""
    return 1.0 / _decode_step_s(_positive_array("params", params), hw, weight_bits, efficiency)


def fit_roofline_efficiency(
    models: Iterable[MllmModel] | Mapping[str, MllmModel],
    hw: Hardware,
    *,
    compute: float = 1.0,
    fit_overhead: bool = True,
    weight_bits: float = 4,
) -> RooflineEfficiency:
    """Fit ``memory`` (and ``token_overhead_s``) to published AGX Orin 4-bit token rates.

    Least squares on log token/s (``scipy.optimize.least_squares``) over the models with a
    published ``tokens_per_s_agx_orin_int4``, with ``memory`` bounded to (0, 1] and the overhead to
    >= 0. ``compute`` is held fixed: under the roofline both decode branches scale with ``params``
    so decode rates cannot identify it. ``hw`` must be the hardware the rates were measured on.
    """
    from scipy.optimize import least_squares  # only calibration needs scipy.optimize

    pool = models.values() if isinstance(models, Mapping) else models
    rated = [(m.params, m.tokens_per_s_agx_orin_int4) for m in pool if m.tokens_per_s_agx_orin_int4]
    n_free = 2 if fit_overhead else 1
    if len(rated) < n_free:
        raise ValueError(f"need published token rates for at least {n_free} models")
    params, log_rate = np.array([p for p, _ in rated]), np.log([r for _, r in rated])

    def residuals(x: FloatArray) -> FloatArray:
        eff = RooflineEfficiency(compute, float(x[0]), float(x[1]) if fit_overhead else 0.0)
        return np.log(roofline_tokens_per_s(params, hw, weight_bits, eff)) - log_rate

    # memory in (0, 1] (a fraction of peak bandwidth), overhead in [0, 1] s; scales ~1 and ~0.01
    x0, lower, upper, scale = [0.5, 0.005], [1e-6, 0.0], [1.0, 1.0], [1.0, 0.01]
    solution = least_squares(
        residuals, x0[:n_free], bounds=(lower[:n_free], upper[:n_free]), x_scale=scale[:n_free]
    )
    overhead_s = float(solution.x[1]) if fit_overhead else 0.0
    return RooflineEfficiency(compute, float(solution.x[0]), overhead_s)


def measured_inference_time_s(
    in_tokens: npt.ArrayLike,
    out_tokens: npt.ArrayLike,
    prefill_tokens_per_s: npt.ArrayLike,
    decode_tokens_per_s: npt.ArrayLike,
) -> FloatArray:
    r"""Inference time from a profiled entry's measured rates [choice, beyond the paper].

    .. math:: T = N_\mathrm{in} / r_\mathrm{prefill} + L / r_\mathrm{decode}

    ``r_prefill`` is input tokens per second of time to first token, ``r_decode`` generated
    tokens per second after the first (``satedge profile``, ``docs/profiling.md``). Linear in the
    token counts, like the roofline, so a measurement at one prompt size is extrapolated linearly.

    Inputs (broadcast): ``in_tokens`` N_in, ``out_tokens`` L (token), both rates (token/s).
    Output: time in s, float64 array.
    """
    n_in, n_out = _non_negative("in_tokens", in_tokens), _non_negative("out_tokens", out_tokens)
    prefill = _positive_array("prefill_tokens_per_s", prefill_tokens_per_s)
    return n_in / prefill + n_out / _positive_array("decode_tokens_per_s", decode_tokens_per_s)


def inference_time_s(
    cost_model: Literal["flops", "roofline", "measured"],
    model: MllmModel,
    hw: Hardware,
    in_tokens: npt.ArrayLike,
    out_tokens: npt.ArrayLike,
    *,
    weight_bits: float = 4,
    efficiency: RooflineEfficiency = DEFAULT_ROOFLINE_EFFICIENCY,
) -> FloatArray:
    """Inference time (s) of ``model`` on ``hw`` under the selected cost model, same shapes.

    ``flops`` ignores ``in_tokens``, ``weight_bits`` and ``efficiency`` (paper's form).
    ``measured`` uses the entry's measured rates (``hw`` is then unused: the rates belong to the
    device they were measured on) and falls back to ``roofline`` for entries without them.
    """
    if cost_model == "measured" and model.measured_decode_tokens_per_s is not None:
        assert model.measured_prefill_tokens_per_s is not None  # both or neither (__post_init__)
        return measured_inference_time_s(in_tokens, out_tokens,
                                         model.measured_prefill_tokens_per_s,
                                         model.measured_decode_tokens_per_s)
    if cost_model == "flops":
        return flops_inference_time_s(out_tokens, model.params, hw.flops)
    if cost_model in ("roofline", "measured"):
        return roofline_inference_time_s(
            in_tokens, out_tokens, model.params, hw, weight_bits, efficiency
        )
    raise ValueError(f"cost_model must be 'flops', 'roofline' or 'measured', got {cost_model!r}")


def inference_energy_j(time_s: npt.ArrayLike, power_w: npt.ArrayLike) -> FloatArray:
    r"""Device energy of an inference (SPEC section 6) [recon].

    .. math:: E = P_\mathrm{dev} T_\mathrm{inf}

    Inputs (broadcast): ``time_s`` (s), ``power_w`` (W). Output: energy in J, float64 array.
    """
    return _non_negative("time_s", time_s) * _non_negative("power_w", power_w)
