"""Profiled zoo entries and fitted hardware rows in the simulator (torch-free).

Checks the zoo format's optional columns, the ``measured`` cost model against hand computations,
the fitted per-device overhead, and scenarios that merge extra zoo and hardware files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from satedge.sim import zoo
from satedge.sim.network import build_server_table
from satedge.sim.scenario import Scenario, ScenarioError, resolve
from satedge.sim.tasks import TaskBatch

HEADER = ",".join(zoo.ZOO_COLUMNS)
# A profiled entry: 7e9 parameters, 100 tokens per image, prefill 2000 token/s, decode 25 token/s
PROBE = 'probe@dev,Probe,7e9,0.36,,,100,2000,25,"gpu X; float16",[measured] test row'


def _write(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "extra.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _task(text_tokens: float, n_requests: int, out_tokens: float) -> TaskBatch:
    one = np.ones((1, 1))
    return TaskBatch(n_requests=np.full((1, 1), n_requests, dtype=np.int64),
                     upload_bits=1e6 * one, text_tokens=text_tokens * one,
                     output_tokens=out_tokens * one, deadline_s=3.0 * one,
                     accuracy_min=0.3 * one)


# --- format -------------------------------------------------------------------------------------


def test_shipped_files_have_the_column_order_entries_are_written_in() -> None:
    data = resources.files("satedge.sim.data")
    assert data.joinpath("mllm_zoo.csv").read_text().splitlines()[0] == HEADER
    assert data.joinpath("hardware.csv").read_text().splitlines()[0] == ",".join(
        zoo.HARDWARE_COLUMNS)
    assert all(m.measured_decode_tokens_per_s is None for m in zoo.load_zoo().values())
    assert all(h.token_overhead_s is None for h in zoo.load_hardware().values())


def test_a_custom_zoo_without_the_measured_columns_still_loads(tmp_path: Path) -> None:
    old_header = "name,display_name,params,mmmu_val_fp16,mmmu_val_int4," \
                 "tokens_per_s_agx_orin_int4,vision_tokens,source"
    path = _write(tmp_path, "old,Old,1e9,0.3,,,576,[choice] test", header=old_header)
    model = zoo.load_zoo(path)["old"]
    assert model.params == 1e9 and model.measured_prefill_tokens_per_s is None


def test_measured_columns_come_together(tmp_path: Path) -> None:
    path = _write(tmp_path, 'half,Half,7e9,0.36,,,100,2000,,"gpu X",[measured] test')
    with pytest.raises(ValueError, match=r"extra\.csv: row 2: measured_prefill_tokens_per_s, "
                                         "measured_decode_tokens_per_s and measured_on must be"):
        zoo.load_zoo(path)


def test_extra_rows_merge_and_clashes_or_bad_rows_are_errors(tmp_path: Path) -> None:
    merged = zoo.load_zoo(extra=_write(tmp_path, PROBE))
    assert set(merged) == set(zoo.load_zoo()) | {"probe@dev"}
    assert merged["probe@dev"].measured_decode_tokens_per_s == 25.0
    clash = _write(tmp_path, PROBE.replace("probe@dev", "vila1.5-3b"), name="clash.csv")
    with pytest.raises(ValueError, match=r"clash\.csv: names \['vila1.5-3b'\] are already"):
        zoo.load_zoo(extra=clash)
    bad = _write(tmp_path, PROBE.replace(",2000,", ",-2000,"), name="bad.csv")
    with pytest.raises(ValueError, match=r"bad\.csv: row 2, column 'measured_prefill_tokens"):
        zoo.load_zoo(extra=bad)
    assert zoo.load_zoo(extra="") == zoo.load_zoo()


# --- cost models --------------------------------------------------------------------------------


def test_measured_time_is_prefill_plus_decode_at_the_measured_rates() -> None:
    # 100 input tokens at 1000 token/s + 10 output tokens at 50 token/s = 0.1 + 0.2 s
    assert zoo.measured_inference_time_s(100, 10, 1000.0, 50.0) == pytest.approx(0.3, abs=1e-15)
    with pytest.raises(ValueError, match="decode_tokens_per_s must be finite and > 0"):
        zoo.measured_inference_time_s(1, 1, 1.0, 0.0)


def test_measured_cost_model_uses_entry_rates_and_falls_back_to_roofline(tmp_path: Path) -> None:
    models, hw = zoo.load_zoo(extra=_write(tmp_path, PROBE)), zoo.load_hardware()
    agx = hw["jetson-agx-orin-32gb"]
    # probe: 300 / 2000 + 40 / 25 = 0.15 + 1.6 s, whatever the hardware row says
    for device in hw.values():
        t = zoo.inference_time_s("measured", models["probe@dev"], device, 300, 40)
        assert t == pytest.approx(1.75, rel=1e-12)
    plain = models["vila1.5-13b"]
    assert zoo.inference_time_s("measured", plain, agx, 300, 40) == zoo.inference_time_s(
        "roofline", plain, agx, 300, 40)
    # the same entry under the roofline is timed from its parameter count instead
    roofline = zoo.inference_time_s("roofline", models["probe@dev"], agx, 300, 40)
    assert roofline == zoo.roofline_inference_time_s(300, 40, 7e9, agx)
    assert abs(roofline - 1.75) > 0.5


def test_a_fitted_row_carries_its_own_per_token_overhead() -> None:
    # P = 1e9 at 4 bit on F = 1e12 FLOP/s, B = 1e11 byte/s: max(2 ms, 5 ms) + t0
    fitted = zoo.Hardware("fitted", 1e12, 1e11, 1.0, 2.0, "[measured] test", token_overhead_s=0.005)
    assert zoo.roofline_tokens_per_s(1e9, fitted) == pytest.approx(1 / 0.010, rel=1e-12)
    shipped_like = zoo.Hardware("plain", 1e12, 1e11, 1.0, 2.0, "[choice] test")
    step = 0.005 + zoo.DEFAULT_ROOFLINE_EFFICIENCY.token_overhead_s
    assert zoo.roofline_tokens_per_s(1e9, shipped_like) == pytest.approx(1 / step, rel=1e-12)


# --- scenarios ----------------------------------------------------------------------------------


def test_defaults_are_unchanged() -> None:
    compute = Scenario().compute
    assert (compute.cost_model, compute.extra_zoo_csv, compute.extra_hardware_csv) == (
        "flops", "", "")


def test_a_scenario_serves_a_profiled_entry_at_its_measured_rates(tmp_path: Path) -> None:
    path = _write(tmp_path, PROBE)
    overrides = {"compute.extra_zoo_csv": str(path), "satellite.access_model": "probe@dev"}
    measured = build_server_table(resolve("default", {**overrides,
                                                      "compute.cost_model": "measured"}))
    m = measured.n_uavs  # the access satellite is the first candidate
    assert measured.model_names[m] == "probe@dev" and measured.vision_tokens[m] == 100
    assert measured.s_per_input_token[m] == pytest.approx(1 / 2000, rel=1e-12)
    assert measured.s_per_output_token[m] == pytest.approx(1 / 25, rel=1e-12)
    # hand computation: (50 text + 2 images x 100) / 2000 + 32 / 25 = 0.125 + 1.28 s
    alone = measured.alone_time_s(_task(50, 2, 32))[0, 0]
    assert alone[m] == pytest.approx(1.405, rel=1e-12)
    # servers without a measurement keep the roofline; the roofline times probe from P instead:
    # 250 x 2P / F + 32 x (max(2P / F, P / 2 / B) + t0) on the AGX Orin
    roofline = build_server_table(resolve("default", {**overrides,
                                                      "compute.cost_model": "roofline"}))
    by_roofline = roofline.alone_time_s(_task(50, 2, 32))[0, 0]
    assert alone[0] == pytest.approx(by_roofline[0], rel=1e-12)
    p, f, b, t0 = 7e9, 3.33e12, 204.8e9, zoo.DEFAULT_ROOFLINE_EFFICIENCY.token_overhead_s
    hand = 250 * 2 * p / f + 32 * (max(2 * p / f, p / 2 / b) + t0)
    assert by_roofline[m] == pytest.approx(hand, rel=1e-12) and abs(hand - 1.405) > 0.5


def test_a_scenario_uses_a_fitted_hardware_row(tmp_path: Path) -> None:
    row = "fitted-gpu,1e13,1e12,50,300,0.02,[measured] test fit"
    path = _write(tmp_path, row, header=",".join(zoo.HARDWARE_COLUMNS), name="hw.csv")
    sc = resolve("default", {"compute.extra_hardware_csv": str(path),
                             "satellite.hardware": "fitted-gpu", "compute.cost_model": "roofline"})
    servers = build_server_table(sc)
    m = servers.n_uavs  # VILA1.5-13B at 4 bit: max(2P/F, P/2/B) + 0.02 s
    p = 13.4e9
    assert servers.s_per_output_token[m] == pytest.approx(max(2 * p / 1e13, p / 2 / 1e12) + 0.02)
    assert servers.s_per_input_token[m] == pytest.approx(2 * p / 1e13)


@pytest.mark.parametrize(("row", "extra", "fragment"), [
    (None, "compute.extra_zoo_csv=/no/such/zoo.csv",
     r"compute.extra_zoo_csv='/no/such/zoo.csv' cannot be loaded: .*No such file"),
    (PROBE.replace(",7e9,", ",seven,"), None,
     r"compute.extra_zoo_csv='.*extra.csv' cannot be loaded: .*row 2, column 'params'"),
    (PROBE.replace(",0.36,", ",,"), "satellite.access_model=probe@dev",
     r"satellite.access_model='probe@dev' cannot serve: .*no published MMMU"),
    (None, "compute.extra_hardware_csv=/no/hw.csv", r"compute.extra_hardware_csv='/no/hw.csv'"),
])
def test_bad_extra_files_are_one_line_errors_naming_the_field(
        tmp_path: Path, row: str | None, extra: str | None, fragment: str) -> None:
    overrides = [f"compute.extra_zoo_csv={_write(tmp_path, row)}"] if row else []
    overrides += [extra] if extra else []
    with pytest.raises(ScenarioError, match=fragment) as info:
        resolve("default", overrides)
    assert "\n" not in str(info.value)
