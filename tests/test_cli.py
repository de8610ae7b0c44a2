"""The command line: scenario show, evaluate, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from satedge.cli import main


def test_scenario_show_json_applies_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "show", "--set", "n_iotds=7", "--set", "uav.altitude_m=150",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_iotds"] == 7 and data["uav"]["altitude_m"] == 150.0


def test_scenario_show_table_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "show", "--preset", "small"]) == 0
    out = capsys.readouterr().out
    assert "uav.coverage_radius_m" in out and "paper" in out
    assert main(["scenario", "list"]) == 0
    assert "default" in capsys.readouterr().out


def test_evaluate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--policy", "greedy", "--episodes", "2", "--preset", "small",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("latency_s", "energy_j_per_slot", "cost_per_slot", "reward_per_slot",
                "deadline_miss_rate", "infeasible_rate", "drop_rate", "uav_share",
                "satellite_share"):
        assert key in data
    assert data["uav_share"] + data["satellite_share"] == pytest.approx(1.0)


@pytest.mark.parametrize(("argv", "fragment"), [
    (["scenario", "show", "--set", "n_iotds=-3"], "n_iotds=-3 is out of range"),
    (["scenario", "show", "--set", "bogus=1"], "unknown key bogus"),
    (["evaluate", "--policy", "greedy", "--set", "tasks.deadline_min_s=0"],
     "tasks.deadline_min_s=0"),
    (["evaluate", "--policy", "greedy", "--decision-samples", "4"],
     "not to the built-in policy 'greedy'"),
])
def test_bad_values_exit_2_with_one_line(argv: list[str], fragment: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "satedge.cli", *argv], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
