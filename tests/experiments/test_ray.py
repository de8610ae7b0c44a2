"""The Ray backend on a real local cluster: a head and a worker node on 127.0.0.1 (token
authentication, no dashboard). The same sweep gives the local pool's results; killing the worker
node mid-sweep loses no finished run and the sweep completes on the head.

Teardown kills exactly this cluster's processes (found by its temporary directory and port),
never ``ray stop``, which would stop every Ray process on the machine.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from satedge.experiments.executors import ray_session
from satedge.experiments.results import RESULT_FILE, load_curves, load_finals, load_tasks
from satedge.experiments.runner import execute_run, run_sweep
from satedge.experiments.spec import load_spec
from tests.experiments.test_runner import mtimes, policy_spec, write_spec

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="ray is not installed (pip install satedge[ray])")]

# Ray maps a loopback --node-ip-address to the machine's LAN address when it may form a
# multi-node cluster; keeping 127.0.0.1 makes both nodes (and their servers) loopback-only.
_LAUNCH = ("import sys\n"
           "from ray._private import services\n"
           "services.resolve_ip_for_localhost = lambda host: host\n"
           "from ray.scripts.scripts import main\n"
           "sys.argv = ['ray', *sys.argv[1:]]\n"
           "main()\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            out[int(name)] = (ppid, cmd)
    return out


def kill_tree(*markers: str) -> int:
    """SIGKILL every process whose command line holds a marker, and all their descendants."""
    procs = _processes()
    doomed = {p for p, (_, cmd) in procs.items() if p != os.getpid()
              and any(m in cmd for m in markers)}
    grown = True
    while grown:
        children = {p for p, (pp, _) in procs.items() if pp in doomed} - doomed
        doomed |= children
        grown = bool(children)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(doomed)


@dataclass
class Cluster:
    address: str
    tmp: Path
    worker_port: int
    env: dict[str, str]


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", _LAUNCH, "start", *args], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _node_args() -> list[str]:
    return ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
            "--object-store-memory=100000000", f"--metrics-export-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


@pytest.fixture(scope="module", autouse=True)
def ray_tmp() -> Iterator[Path]:
    """This module's Ray directory and token. Ray reads its authentication settings once per
    process, so they are set before this module first imports Ray, for every test in it."""
    tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket path limit
    token = tmp / "token"
    token.write_text(secrets.token_hex(32))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "token")
        mp.setenv("RAY_AUTH_TOKEN_PATH", str(token))
        yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(ray_tmp: Path) -> Iterator[Cluster]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    port, worker_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    try:
        _ray_start(["--head", f"--port={port}", "--include-dashboard=false",
                    f"--temp-dir={ray_tmp}", f"--ray-client-server-port={free_port()}",
                    *_node_args()], env)
        _ray_start([f"--address={address}", f"--node-manager-port={worker_port}",
                    *_node_args()], env)
        yield Cluster(address, ray_tmp, worker_port, env)
    finally:
        kill_tree(str(ray_tmp), address)


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_private_local_cluster_listens_on_loopback_only(tmp_path: Path) -> None:
    run = policy_spec(tmp_path).expand("quick")[0]
    with ray_session(None, 1) as ray:
        node = ray.nodes()[0]
        assert node["NodeManagerAddress"] == "127.0.0.1"
        gcs_host, gcs_port = ray.get_runtime_context().gcs_address.rsplit(":", 1)
        assert gcs_host == "127.0.0.1"
        loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, v4-mapped v6
        assert _listening(int(gcs_port)) and _listening(int(gcs_port)) <= loopback
        remote = ray.remote(num_cpus=1)(execute_run)
        out = ray.get(remote.remote(run, str(tmp_path / "ray-run")))
        session = Path(ray._private.worker._global_node.get_session_dir_path())
    shutil.rmtree(session, ignore_errors=True)  # this test's logs under Ray's default /tmp/ray
    latest = session.parent / "session_latest"
    if latest.is_symlink() and latest.resolve() == session.resolve():
        latest.unlink()
    assert out.metrics == execute_run(run, str(tmp_path / "local-run")).metrics
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None  # restored


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in table.columns if not c.startswith("perf/")]  # wall-clock throughput
    return table[keep].sort_values(["figure", "key", *[c for c in ("step", "episode", "slot",
                                                                   "iotd") if c in keep]]
                                   ).reset_index(drop=True)


def test_ray_cluster_gives_the_local_pools_results(cluster: Cluster, tmp_path: Path) -> None:
    specs = [load_spec(write_spec(tmp_path / "ta.yaml", "ta", ["random", "greedy", "adsac"])),
             policy_spec(tmp_path)]
    t0 = time.perf_counter()
    local = run_sweep(specs, "quick", tmp_path / "local", workers=2, progress=False)
    t1 = time.perf_counter()
    remote = run_sweep(specs, "quick", tmp_path / "ray", backend="ray", address=cluster.address,
                       progress=False, max_retries=2)
    t2 = time.perf_counter()
    print(f"local pool {t1 - t0:.1f} s, ray cluster {t2 - t1:.1f} s")
    assert local["figures"]["ta"]["runs"] == remote["figures"]["ta"]["runs"]
    assert sorted(remote["last_sweep"]["executed"]) == sorted(local["last_sweep"]["executed"])
    for load in (load_finals, load_curves, load_tasks):
        pd.testing.assert_frame_equal(_comparable(load(tmp_path / "ray")),
                                      _comparable(load(tmp_path / "local")))


def test_killing_the_worker_node_loses_no_finished_run(cluster: Cluster, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "tr.yaml", "tr", ["random", "adsac"],
                                seeds=[0, 1, 2, 3]))
    out = tmp_path / "sweep"
    at_kill: dict[str, int] = {}

    def kill_worker_after_first_result() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = mtimes(out) if (out / "runs").exists() else {}
            if done:
                at_kill.update(done)
                at_kill["killed"] = kill_tree(f"--node_manager_port={cluster.worker_port}")
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_worker_after_first_result, daemon=True)
    killer.start()
    manifest = run_sweep([spec], "quick", out, backend="ray", address=cluster.address,
                         progress=True, max_retries=3)
    killer.join(timeout=5)
    assert at_kill.pop("killed", 0) >= 1, "the worker node's raylet was not found"
    keys = {e["key"] for e in manifest["figures"]["tr"]["runs"]}
    assert len(keys) == 8 and all(manifest["runs"][k]["status"] == "done" for k in keys)
    assert sorted(manifest["last_sweep"]["executed"]) == sorted(keys)  # each run exactly once
    assert len(at_kill) < len(keys)  # the kill came mid-sweep
    after = mtimes(out)
    assert {k: after[k] for k in at_kill} == at_kill  # finished runs were not redone
    assert all((out / "runs" / k / RESULT_FILE).is_file() for k in keys)
    assert len(load_finals(out)) == 8
