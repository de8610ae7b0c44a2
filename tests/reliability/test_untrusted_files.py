"""Untrusted files are data, not code.

Crafted checkpoints whose unpickling would run a command are refused by every path that loads
a checkpoint (``load_checkpoint``, resuming ``satedge train``, ``satedge evaluate --policy DIR``)
and the command never runs; damaged checkpoints are never read as valid (byte-flip fuzz); a
checkpoint of another run or satedge version is refused with the reason; YAML specs are read
safely; and no library code evaluates or unpickles what it reads (a source scan).
"""

from __future__ import annotations

import ast
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import satedge
from satedge.agents.common import rundir
from satedge.agents.common.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from satedge.cli import main
from satedge.experiments.train import load_trained_agent
from tests.reliability.runs import assert_same_state, command, train_here

torch.set_num_threads(1)


class _Payload:
    """Unpickling this calls ``func(*args)``: what a malicious checkpoint would carry."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def payloads(marker: Path) -> dict[str, Any]:
    """Objects whose unpickling would create ``marker`` by different routes."""
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.exec": _Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.open": _Payload(open, str(marker), "w"),
    }


def write_evil(path: Path, obj: Any, where: str, meta: dict[str, Any], container: str) -> None:
    """A checkpoint whose ``where`` ("meta" or "state") holds ``obj``, as a torch zip file or
    a bare pickle (torch's legacy format)."""
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "meta": dict(meta),
                               "state": {"agent": {}}}
    if where == "meta":
        payload["meta"]["evil"] = obj
    else:
        payload["state"]["agent"]["evil"] = obj
    if container == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished small AD-SAC run (4 episodes): run.json, checkpoint.pt, summary.json."""
    out = tmp_path_factory.mktemp("trained") / "adsac"
    train_here("adsac", out, 4)
    return out


# -- malicious pickles ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch", "pickle"])
@pytest.mark.parametrize("where", ["meta", "state"])
def test_malicious_checkpoint_is_refused_by_every_loading_path(
        tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str], container: str,
        where: str) -> None:
    marker = tmp_path / "pwned"
    meta = load_checkpoint(trained / "checkpoint.pt")["meta"]  # so only the unpickler stops it
    for name, obj in payloads(marker).items():
        run = tmp_path / name
        shutil.copytree(trained, run)
        (run / "summary.json").unlink()  # so that train resumes (loads the checkpoint)
        write_evil(run / "checkpoint.pt", obj, where, meta, container)
        with pytest.raises(CheckpointError, match="weights-only allow-list"):
            load_checkpoint(run / "checkpoint.pt")
        with pytest.raises(CheckpointError, match="nothing was executed"):
            load_trained_agent(run)
        for argv in (["evaluate", "--policy", str(run), "--episodes", "1"],
                     command("adsac", run, 8)):
            assert main(argv) == 2, name
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "possibly malicious" in err, (name, err)
        assert not marker.exists(), f"{name} in {where} ({container}) ran"


def test_a_subprocess_loading_a_malicious_checkpoint_runs_nothing(tmp_path: Path,
                                                                  trained: Path) -> None:
    """The same through the installed command in a fresh interpreter (no test-process state)."""
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    meta = load_checkpoint(trained / "checkpoint.pt")["meta"]
    write_evil(run / "checkpoint.pt", payloads(marker)["os.system"], "state", meta, "torch")
    proc = subprocess.run([sys.executable, "-m", "satedge.cli", "evaluate", "--policy", str(run),
                           "--episodes", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "possibly malicious" in proc.stderr
    assert not marker.exists()


# -- damaged checkpoints: byte-flip fuzz ----------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint_bytes(trained: Path) -> tuple[bytes, dict[str, Any]]:
    path = trained / "checkpoint.pt"
    return path.read_bytes(), load_checkpoint(path)


FLIPS = {"n": 0, "refused": 0, "same": 0}
"""Outcomes of the byte-flip fuzz (reported in docs/reliability.md)."""


@settings(max_examples=300, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 16), st.binary(min_size=16,
                                                                            max_size=16),
       st.booleans())
def test_damaged_checkpoint_is_never_read_as_valid(
        tmp_path: Path, checkpoint_bytes: tuple[bytes, dict[str, Any]], at: float, length: int,
        noise: bytes, truncate: bool) -> None:
    """Overwrite (or cut the file at) a random place: loading either refuses it with a
    CheckpointError or returns exactly the original content (the bytes were zip padding)."""
    data, original = checkpoint_bytes
    start = int(at * len(data))
    damaged = data[:start] if truncate else (
        data[:start] + bytes(a ^ (b | 1) for a, b in zip(data[start:start + length],
                                                         noise, strict=False))
        + data[start + length:])
    path = tmp_path / "damaged.pt"
    path.write_bytes(damaged)
    FLIPS["n"] += 1
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        FLIPS["refused"] += 1
        return
    FLIPS["same"] += 1
    assert loaded["meta"] == original["meta"]
    assert_same_state(loaded["state"], original["state"])


def test_checkpoints_without_a_digest_still_load(tmp_path: Path) -> None:
    """Files written before the digest existed load as before."""
    torch.save({"format_version": FORMAT_VERSION, "meta": {"a": 1},
                "state": {"w": torch.arange(3.0)}}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["meta"] == {"a": 1} and torch.equal(loaded["state"]["w"], torch.arange(3.0))


# -- checkpoints of another run or version --------------------------------------------------------
@pytest.mark.parametrize(("setting", "differs"), [
    (["--set", "n_iotds=5"], "scenario differs"),
    (["--seed", "4"], "seed differs"),
    (["--agent-set", "critic_lr=0.01"], "agent differs"),
    (["--agent-set", "batch_size=16"], "loop differs"),
])
def test_checkpoint_of_another_run_is_refused_with_the_reason(
        tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str], setting: list[str],
        differs: str) -> None:
    """A checkpoint copied into the directory of a run with another scenario, seed or config:
    resuming refuses it and names what differs."""
    run = tmp_path / "other"
    run.mkdir()
    shutil.copy(trained / "checkpoint.pt", run / "checkpoint.pt")
    argv = command("adsac", run, 8)
    if setting[0] == "--seed":
        argv[argv.index("--seed") + 1] = setting[1]
    else:
        argv += setting
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.pt belongs to another run" in err, err
    assert differs in err, err


def test_checkpoint_of_another_major_version_is_refused(tmp_path: Path, trained: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    monkeypatch.setattr(rundir, "_major_version", lambda: 99)
    assert main(["evaluate", "--policy", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    written = satedge.__version__.split(".")[0]
    assert err.count("\n") == 1
    assert f"written by satedge major version {written}; this is version 99" in err, err


def test_checkpoint_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck.pt", {"w": torch.ones(2)})
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match=rf"format_version {FORMAT_VERSION + 1}; this "
                                              rf"satedge reads up to {FORMAT_VERSION}"):
        load_checkpoint(tmp_path / "ck.pt")


# -- YAML and other files read by the library -----------------------------------------------------
@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/object:satedge.sim.scenario.Scenario {{}}",
    "!!python/name:os.system",
    "!!python/module:os",
])
@pytest.mark.parametrize("place", ["figure: {tag}", "presets:\n  quick: {{scenario: {tag}}}"])
def test_yaml_with_python_tags_is_refused_unexecuted(tmp_path: Path, tag: str,
                                                     place: str) -> None:
    from satedge.experiments.spec import SpecError, load_spec

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    body = place.format(tag=tag.format(marker=marker))
    path.write_text(f"methods: [random]\n{body}\n")
    with pytest.raises(SpecError, match=r"evil\.yaml is not valid YAML"):
        load_spec(path)
    assert not marker.exists()


@pytest.mark.parametrize("text", ["", "hello\nworld\n", "\x00\x01\x02" * 50,
                                  "1 00001U 00000A   24001.00000000\n2 00001  53.0000\n"])
def test_garbage_tle_file_is_a_clear_error(tmp_path: Path, text: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sats.tle"
    path.write_text(text)
    argv = ["evaluate", "--policy", "greedy", "--episodes", "1", "--preset", "small", "--set",
            f"constellation.tle_file={path}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("text", ["", "name\n", "a,b,c\n1,2,3\n", "\x00\x01" * 40,
                                  "name,params\nx,-1\n"])
def test_garbage_zoo_csv_names_the_key(tmp_path: Path, text: str) -> None:
    from satedge.sim.scenario import ScenarioError, resolve

    path = tmp_path / "zoo.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=f"compute.extra_zoo_csv='{path}' cannot be loaded"):
        resolve("default", {"compute.extra_zoo_csv": str(path)})


# -- no library code evaluates or unpickles what it reads ----------------------------------------
_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
_FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
                    ("marshal", "loads"), ("marshal", "load"), ("yaml", "load"),
                    ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"),
                    ("pd", "read_pickle"), ("pandas", "read_pickle"), ("shelve", "open"),
                    ("dill", "load"), ("joblib", "load"), ("cloudpickle", "load")}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _kw(call: ast.Call, name: str) -> Any:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else "?"
    return None


def test_library_source_never_evaluates_or_unpickles_input() -> None:
    """Static scan of ``src/satedge``: no eval/exec, no pickle/marshal/unsafe YAML loading,
    ``torch.load`` only with ``weights_only=True`` and ``np.load`` never with pickles."""
    root = Path(satedge.__file__).parent
    problems = []
    for path in sorted(root.rglob("*.py")):
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            func = call.func
            where = f"{path.relative_to(root)}:{call.lineno}"
            if isinstance(func, ast.Name) and func.id in _FORBIDDEN_CALLS:
                problems.append(f"{where} calls {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                pair = (func.value.id, func.attr)
                if pair in _FORBIDDEN_ATTRS:
                    problems.append(f"{where} calls {'.'.join(pair)}()")
                if pair == ("torch", "load") and _kw(call, "weights_only") is not True:
                    problems.append(f"{where} calls torch.load without weights_only=True")
                if pair == ("np", "load") and _kw(call, "allow_pickle") not in (None, False):
                    problems.append(f"{where} calls np.load with allow_pickle")
    assert problems == []
