"""Network exposure: what the sweep runner starts listens on loopback only.

The fast test records the arguments ``executors.ray_session`` gives Ray (a stand-in ``ray``
module): the private cluster (``address=None``) has no dashboard and a 127.0.0.1 node address
with Ray's single-machine mode on. The slow test starts the real private cluster in a fresh
interpreter and lists every TCP socket its processes listen on (from /proc): all must be
loopback addresses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from typing import Any

import pytest

from satedge.experiments.executors import ray_session

_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def fake_ray(calls: list[dict[str, Any]]) -> dict[str, types.ModuleType]:
    """Modules standing in for ``ray`` and ``ray._private.ray_constants`` that record each
    ``ray.init`` call with the environment and constant it saw."""
    ray = types.ModuleType("ray")
    private = types.ModuleType("ray._private")
    constants = types.ModuleType("ray._private.ray_constants")
    constants.ENABLE_RAY_CLUSTER = True  # type: ignore[attr-defined]  # Ray's Linux default

    def init(**kwargs: Any) -> None:
        calls.append({**kwargs, "env": os.environ.get(_ENV),
                      "cluster_mode": constants.ENABLE_RAY_CLUSTER})  # type: ignore[attr-defined]

    ray.init = init  # type: ignore[attr-defined]
    ray.shutdown = lambda: None  # type: ignore[attr-defined]
    private.ray_constants = constants  # type: ignore[attr-defined]
    ray._private = private  # type: ignore[attr-defined]
    return {"ray": ray, "ray._private": private, "ray._private.ray_constants": constants}


@pytest.mark.parametrize(("address", "loopback"), [(None, True), ("127.0.0.1:6379", True),
                                                   ("localhost:6379", True),
                                                   ("10.0.0.5:6379", False)])
def test_runner_starts_ray_on_loopback_without_dashboard(monkeypatch: pytest.MonkeyPatch,
                                                         address: str | None,
                                                         loopback: bool) -> None:
    calls: list[dict[str, Any]] = []
    modules = fake_ray(calls)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv(_ENV, raising=False)
    with ray_session(address, 2):
        pass
    (call,) = calls
    if address is None:  # the private cluster this process starts
        assert call["include_dashboard"] is False and call["env"] == "0"
        assert "address" not in call
    else:  # joining a cluster someone started: its own settings apply
        assert call["address"] == address and call.get("include_dashboard") is None
    assert call["cluster_mode"] is not loopback  # Ray's single-machine mode on loopback
    assert (call.get("_node_ip_address") == "127.0.0.1") is loopback
    assert _ENV not in os.environ  # restored
    assert modules["ray._private.ray_constants"].ENABLE_RAY_CLUSTER is True


_PROBE = r"""
import json, os, sys
from pathlib import Path
from satedge.experiments.executors import ray_session

def tree(root):
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += kids.get(p, [])
    return out

def listening():
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A":
                found[parts[9]] = parts[1]
    return found

with ray_session(None, 1) as ray:
    ray.get(ray.remote(lambda: 1).remote())  # a worker process is up too
    sockets = listening()
    report = []
    for pid in sorted(tree(os.getpid())):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode()
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            if inode in sockets:
                report.append({"pid": pid, "cmd": cmd, "local": sockets[inode]})
    processes = len(tree(os.getpid()))
print(json.dumps({"listening": report, "processes": processes}))
"""


def _decode(local: str) -> str:
    """'0100007F:1F90' (little-endian hex, as /proc/net/tcp writes it) -> '127.0.0.1'."""
    addr = local.rsplit(":", 1)[0]
    if len(addr) == 8:
        return ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
    words = [addr[i:i + 8] for i in range(0, 32, 8)]
    raw = b"".join(bytes.fromhex(w)[::-1] for w in words)
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return ".".join(str(b) for b in raw[12:])
    return ":".join(raw[i:i + 2].hex() for i in range(0, 16, 2))


def test_decode_proc_net_addresses() -> None:
    assert _decode("0100007F:1F90") == "127.0.0.1"
    assert _decode("00000000:1F90") == "0.0.0.0"
    assert _decode("0000000000000000FFFF00000100007F:0050") == "127.0.0.1"
    assert _decode("00000000000000000000000001000000:0050") == "0000:0000:0000:0000:0000:0000:" \
                                                             "0000:0001"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_private_ray_cluster_listens_on_loopback_only() -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_AUTH_MODE", None)
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    sockets = [(r["cmd"].split()[0].rsplit("/", 1)[-1], _decode(r["local"]))
               for r in report["listening"]]
    print(f"\n{report['processes']} processes, {len(sockets)} listening sockets: {sockets}")
    assert len(sockets) >= 3  # GCS, raylet, object manager at least
    exposed = [s for s in sockets if not (s[1].startswith("127.") or
                                          s[1] == "0000:0000:0000:0000:0000:0000:0000:0001")]
    assert exposed == []
