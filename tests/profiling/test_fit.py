"""``satedge zoo fit``: the roofline refit recovers known parameters from synthetic entries.

Synthetic profiles are generated from the roofline itself with known F, B and t0, so the fit must
return them; the written hardware row must then reproduce every measurement through the
simulator's own cost model. Torch-free.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from satedge.cli import main
from satedge.profiling.entry import ProfileRecord, read_profile, stats, write_entry
from satedge.profiling.fit import fit_hardware, fit_points
from satedge.sim import zoo

F, B, T0 = 2.0e14, 2.0e12, 0.015  # FLOP/s, byte/s, s: an H100-like device under HF eager decode
MODELS = ((7_000_000_000, 16, 600), (13_000_000_000, 16, 1200), (3_000_000_000, 32, 300))


def _record(params: int, bits: int, n_in: int, *, f: float = F, b: float = B, t0: float = T0,
            device: str = "cuda GPU X", noise: tuple[float, float] = (1.0, 1.0)) -> ProfileRecord:
    prefill = n_in * 2 * params / f * noise[0]
    step = (max(2 * params / f, params * bits / 8 / b) + t0) * noise[1]
    new = 9
    return ProfileRecord(
        name=f"m{params // 10**9}b-{bits}bit", display_name="synthetic", params=params,
        weight_bytes=params * bits // 8, input_tokens=n_in, vision_tokens=576, mmmu_val_fp16=None,
        mmmu_val_int4=None, accuracy_source="none", model={"source": "synthetic roofline"},
        settings={"dtype": f"{bits}-bit", "text_tokens": n_in - 576, "images": 1,
                  "new_tokens": new, "repeats": 1, "warmup": 0},
        provenance={"device": device, "torch": "-", "transformers": "-", "date": "-"},
        repeats=[{"prefill_s": prefill, "decode_s": step * (new - 1), "new_tokens": new,
                  "peak_memory_bytes": 0}])


def test_stats_against_hand_values() -> None:
    # mean 2.5, sample variance ((1.5^2 + 0.5^2) * 2) / 3 = 5/3
    assert stats([1.0, 2.0, 3.0, 4.0]) == {"mean": 2.5, "std": math.sqrt(5 / 3), "min": 1.0,
                                           "max": 4.0, "n": 4}
    assert stats([0.7])["std"] == 0.0


def test_fit_recovers_compute_bandwidth_and_overhead() -> None:
    fit = fit_hardware(fit_points([_record(*m) for m in MODELS]))
    assert fit.overhead_fitted
    assert fit.flops == pytest.approx(F, rel=1e-6)
    assert fit.memory_bandwidth_bytes_s == pytest.approx(B, rel=1e-6)
    assert fit.token_overhead_s == pytest.approx(T0, rel=1e-6)
    assert fit.rms_log_residual < 1e-6 and len(fit.residuals) == 2 * len(MODELS)


def test_one_weight_size_holds_the_overhead_at_zero_or_at_the_given_value() -> None:
    exact = fit_hardware(fit_points([_record(7_000_000_000, 16, 600, t0=0.0)]))
    assert not exact.overhead_fitted and exact.token_overhead_s == 0.0
    assert (exact.flops, exact.memory_bandwidth_bytes_s) == (pytest.approx(F, rel=1e-9),
                                                              pytest.approx(B, rel=1e-9))
    given = fit_hardware(fit_points([_record(7_000_000_000, 16, 600)]), overhead_s=T0)
    assert given.token_overhead_s == T0
    assert given.memory_bandwidth_bytes_s == pytest.approx(B, rel=1e-9)


def test_fit_with_measurement_noise_stays_close() -> None:
    rng = np.random.default_rng(3)
    records = [_record(p * k, bits, n_in, noise=tuple(1 + 0.01 * rng.standard_normal(2)))
               for p, bits, n_in in MODELS for k in (1, 2)]
    fit = fit_hardware(fit_points(records))
    assert fit.flops == pytest.approx(F, rel=0.03)
    assert fit.memory_bandwidth_bytes_s == pytest.approx(B, rel=0.05)
    assert fit.token_overhead_s == pytest.approx(T0, abs=0.002)
    assert 0.002 < fit.rms_log_residual < 0.03  # the 1 % noise shows, and nothing else


def test_entries_from_different_devices_are_refused() -> None:
    records = [_record(*MODELS[0]), _record(*MODELS[1], device="cuda GPU Y")]
    with pytest.raises(ValueError, match="entries come from 2 devices"):
        fit_points(records)
    with pytest.raises(ValueError, match="overhead_s=-1"):
        fit_hardware(fit_points(records[:1]), overhead_s=-1.0)


def test_cli_fit_writes_a_row_that_reproduces_every_measurement(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [_record(*m) for m in MODELS]
    paths = [str(write_entry(r, tmp_path / f"{r.name}.csv")[0]) for r in records]
    out = tmp_path / "hw" / "fitted.csv"
    code = main(["zoo", "fit", *paths, "--hardware", "gpu-x", "--power-min-w", "100",
                 "--power-max-w", "700", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "token_overhead_s" in printed and "m13b-16bit" in printed
    hw = zoo.load_hardware(extra=out)["gpu-x"]
    assert (hw.power_min_w, hw.power_max_w) == (100.0, 700.0) and "[measured]" in hw.source
    for r, (params, bits, n_in) in zip(records, MODELS, strict=True):
        step = r.summary["decode_step_s"]["mean"]  # rows keep 6 significant digits
        assert 1 / zoo.roofline_tokens_per_s(params, hw, weight_bits=bits) == pytest.approx(
            step, rel=2e-5)
        assert zoo.roofline_inference_time_s(n_in, 0, params, hw) == pytest.approx(
            r.summary["prefill_s"]["mean"], rel=2e-5)


def test_cli_fit_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_entry(_record(*MODELS[0]), tmp_path / "a.csv")[0])
    assert main(["zoo", "fit", path, "--hardware", "new-gpu"]) == 2
    assert "give --power-min-w and --power-max-w" in capsys.readouterr().err
    # a shipped name lends its power range
    assert main(["zoo", "fit", path, "--hardware", "jetson-agx-orin-32gb"]) == 0
    assert ",15,40," in capsys.readouterr().out
    assert main(["zoo", "fit", str(tmp_path / "none.csv"), "--hardware", "jetson-agx-orin-32gb"]) \
        == 2
    err = capsys.readouterr().err
    assert "no profile sidecar" in err and err.count("\n") == 1


def test_sidecar_round_trip_and_validation(tmp_path: Path) -> None:
    record = _record(*MODELS[1])
    _, sidecar = write_entry(record, tmp_path / "r.csv")
    assert read_profile(sidecar) == record == read_profile(tmp_path / "r.csv")
    data = json.loads(sidecar.read_text())
    data["format"] = "other"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a satedge profile sidecar"):
        read_profile(bad)
    with pytest.raises(ValueError, match="needs >= 2 new tokens"):
        ProfileRecord(**{**record.__dict__, "repeats": [{**record.repeats[0], "new_tokens": 1}]})
    with pytest.raises(ValueError, match=r"must end in \.csv"):
        write_entry(record, tmp_path / "r.txt")
