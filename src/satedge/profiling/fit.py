r"""Refit a hardware row of the roofline cost model from profile entries (``satedge zoo fit``).

The roofline (``satedge.sim.zoo.roofline_inference_time_s``, with efficiencies 1) predicts, for a
model of ``P`` parameters stored at ``b`` bits per weight on a device with compute ``F`` (FLOP/s),
memory bandwidth ``B`` (byte/s) and per-token overhead ``t0`` (s):

.. math::
    T_\mathrm{prefill} = N_\mathrm{in} \frac{2P}{F}, \qquad
    T_\mathrm{step} = \max\left(\frac{2P}{F}, \frac{P b / 8}{B}\right) + t_0

Each profile gives one measured ``T_prefill`` (mean time to first token for ``N_in`` prompt tokens)
and one ``T_step`` (mean decode step). :func:`fit_hardware` finds ``F``, ``B`` and ``t0`` by least
squares on the log residuals of all of them (``scipy.optimize.least_squares``; ``t0 >= 0``), so
every measurement weighs by its relative error. Identifiability: ``F`` comes from the prefills,
``B`` and ``t0`` from the decode steps, which must span at least two weight sizes ``P b`` to
separate them; with fewer, ``t0`` is held at 0 (or at the value given). The fitted row keeps its
own ``t0`` (hardware column ``token_overhead_s``), so a scenario using it reproduces the fit.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satedge.profiling.entry import ProfileRecord
from satedge.sim.zoo import HARDWARE_COLUMNS, Hardware

__all__ = ["FitPoint", "RooflineFit", "fit_hardware", "fit_points", "hardware_csv",
           "write_hardware_csv"]


@dataclass(frozen=True)
class FitPoint:
    """One profile as the fit sees it: P (count), b (bit/weight), N_in (token), times in s."""

    name: str
    params: float
    bits_per_weight: float
    input_tokens: float
    prefill_s: float
    decode_step_s: float
    device: str


def fit_points(records: Sequence[ProfileRecord]) -> list[FitPoint]:
    """Fit points of profiles measured on one device; mixing devices is a ``ValueError``."""
    devices = sorted({r.provenance["device"] for r in records})
    if len(devices) != 1:
        raise ValueError(f"entries come from {len(devices)} devices {devices}; one hardware row "
                         "is fitted from profiles of a single device")
    return [FitPoint(r.name, float(r.params), r.bits_per_weight, float(r.input_tokens),
                     r.summary["prefill_s"]["mean"], r.summary["decode_step_s"]["mean"],
                     devices[0]) for r in records]


@dataclass(frozen=True)
class RooflineFit:
    """Fitted ``flops`` (FLOP/s), ``memory_bandwidth_bytes_s`` (byte/s), ``token_overhead_s``
    (s), whether the overhead was fitted, and per point (name, quantity, measured s,
    predicted s) residuals with their RMS in log space."""

    flops: float
    memory_bandwidth_bytes_s: float
    token_overhead_s: float
    overhead_fitted: bool
    residuals: list[tuple[str, str, float, float]]
    rms_log_residual: float


def _predict(points: Sequence[FitPoint], flops: float, bandwidth: float,
             overhead_s: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.array([q.params for q in points])
    n_in = np.array([q.input_tokens for q in points])
    weight_bytes = p * np.array([q.bits_per_weight for q in points]) / 8.0
    step_s = np.maximum(2.0 * p / flops, weight_bytes / bandwidth) + overhead_s
    return n_in * 2.0 * p / flops, step_s


def fit_hardware(points: Sequence[FitPoint], *, overhead_s: float | None = None) -> RooflineFit:
    """Least-squares ``F``, ``B`` (and ``t0`` unless ``overhead_s`` fixes it) from ``points``.

    ``t0`` is fitted only when the decode points span two or more weight sizes; otherwise it is
    held at ``overhead_s`` or 0. Raises ``ValueError`` for no points or a negative overhead.
    """
    from scipy.optimize import least_squares  # calibration only

    if not points:
        raise ValueError("no profile entries to fit")
    if overhead_s is not None and not (math.isfinite(overhead_s) and overhead_s >= 0):
        raise ValueError(f"overhead_s={overhead_s} is out of range; allowed [0, inf) s")
    sizes = {round(q.params * q.bits_per_weight) for q in points}
    fit_t0 = overhead_s is None and len(sizes) >= 2
    t0_fixed = overhead_s or 0.0
    measured = np.log([q.prefill_s for q in points] + [q.decode_step_s for q in points])

    def unpack(x: np.ndarray) -> tuple[float, float, float]:
        return math.exp(x[0]), math.exp(x[1]), float(x[2]) if fit_t0 else t0_fixed

    def residuals(x: np.ndarray) -> np.ndarray:
        prefill, step = _predict(points, *unpack(x))
        return np.log(np.concatenate([prefill, step])) - measured

    # Start from the closed forms: F from the prefills, B from the steps with a small t0.
    log_f = np.mean([math.log(2 * q.params * q.input_tokens / q.prefill_s) for q in points])
    t0_start = 0.1 * min(q.decode_step_s for q in points) if fit_t0 else t0_fixed
    log_b = np.mean([math.log(q.params * q.bits_per_weight / 8 / max(q.decode_step_s - t0_start,
                                                                      1e-12)) for q in points])
    x0 = np.array([log_f, log_b] + ([t0_start] if fit_t0 else []))
    lower = [-np.inf, -np.inf] + ([0.0] if fit_t0 else [])
    scale = [1.0, 1.0] + ([max(t0_start, 1e-6)] if fit_t0 else [])
    solution = least_squares(residuals, x0, bounds=(lower, np.inf), x_scale=scale, xtol=1e-14,
                             ftol=1e-14, gtol=1e-14)
    flops, bandwidth, t0 = unpack(solution.x)
    prefill, step = _predict(points, flops, bandwidth, t0)
    rows = [(q.name, "prefill_s", q.prefill_s, float(pre))
            for q, pre in zip(points, prefill, strict=True)]
    rows += [(q.name, "decode_step_s", q.decode_step_s, float(s))
             for q, s in zip(points, step, strict=True)]
    rms = float(np.sqrt(np.mean(residuals(solution.x) ** 2)))
    return RooflineFit(flops, bandwidth, t0, fit_t0, rows, rms)


def hardware_csv(fit: RooflineFit, name: str, power_min_w: float, power_max_w: float,
                 source: str) -> str:
    """The fitted row as a hardware-table CSV (header + row), validated by ``Hardware``."""
    Hardware(name, fit.flops, fit.memory_bandwidth_bytes_s, power_min_w, power_max_w, source,
             fit.token_overhead_s)  # raises ValueError on a bad power range
    row = {"name": name, "flops": f"{fit.flops:.6g}",
           "memory_bandwidth_bytes_s": f"{fit.memory_bandwidth_bytes_s:.6g}",
           "power_min_w": f"{power_min_w:g}", "power_max_w": f"{power_max_w:g}",
           "token_overhead_s": f"{fit.token_overhead_s:.6g}", "source": source}
    assert tuple(row) == HARDWARE_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(HARDWARE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return buffer.getvalue()


def write_hardware_csv(text: str, path: str | Path) -> Path:
    """Write :func:`hardware_csv` output to ``path`` (parents created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
