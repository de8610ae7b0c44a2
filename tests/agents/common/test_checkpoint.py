"""Checkpoints: exact round trips of nested state and RNGs, refusal of unsafe or broken files,
atomic replacement, metadata compatibility."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.common import checkpoint as ckpt
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    check_compatible,
    load_checkpoint,
    save_checkpoint,
)

torch.set_num_threads(1)


def _trained() -> tuple[nn.Module, torch.optim.Optimizer]:
    gen = torch.Generator().manual_seed(0)
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3, generator=gen)).pow(2).sum().backward()
        opt.step()
    return net, opt


def test_nested_state_round_trip_is_exact(tmp_path: Path) -> None:
    net, opt = _trained()
    rng = np.random.default_rng(123)
    rng.random(5)  # advance: the restored state must be mid-stream, not the seed
    tgen = torch.Generator().manual_seed(7)
    torch.rand(3, generator=tgen)
    state = {
        "model": net.state_dict(), "optimizer": opt.state_dict(),
        "numpy_rng": rng.bit_generator.state, "torch_rng": tgen.get_state(),
        "arrays": {"f32": np.arange(6, dtype=np.float32).reshape(2, 3),
                   "bool": np.array([[True, False]]), "i16": np.array([-3, 7], np.int16),
                   "u32": np.array([2**32 - 1], np.uint32), "empty": np.zeros((0, 4)),
                   "scalar": np.float64(2.5)},
        "step": 1000, "name": "ad-sac", "lists": [1, 2.5, "x", None, (3, 4)],
    }
    meta = {"algorithm": "ad-sac", "scenario_hash": "abc", "satedge_major": 0}
    save_checkpoint(tmp_path / "ck.pt", state, meta=meta)
    back = load_checkpoint(tmp_path / "ck.pt")
    assert back["format_version"] == FORMAT_VERSION and back["meta"] == meta
    got = back["state"]
    arrays: dict[str, object] = state["arrays"]  # type: ignore[assignment]
    for key, value in arrays.items():
        np.testing.assert_array_equal(got["arrays"][key], value)
        if isinstance(value, np.ndarray):
            assert got["arrays"][key].dtype == value.dtype
    assert got["arrays"]["scalar"] == 2.5 and got["step"] == 1000 and got["name"] == "ad-sac"
    assert got["lists"] == [1, 2.5, "x", None, (3, 4)]
    # numpy Generator: drawing after restore equals drawing from the original
    restored = np.random.default_rng()
    restored.bit_generator.state = got["numpy_rng"]
    np.testing.assert_array_equal(restored.random(10), rng.random(10))
    # torch Generator
    tback = torch.Generator()
    tback.set_state(got["torch_rng"])
    assert torch.equal(torch.rand(5, generator=tback), torch.rand(5, generator=tgen))
    # model and optimiser: the next update is identical
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    net2.load_state_dict(got["model"])
    opt2.load_state_dict(got["optimizer"])
    x = torch.ones(2, 3)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).sum().backward()
        o.step()
    for p, q in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("tables", [False, True])
def test_replay_buffer_survives_a_checkpoint(tmp_path: Path, tables: bool) -> None:
    buf = ReplayBuffer(6, 2, 1, 3, 1, server_rewards=tables)
    rng = np.random.default_rng(0)
    b = 4
    buf.add(rng.normal(size=(b, 2)), rng.integers(0, 3, (b, 1)), rng.normal(size=(b, 1)),
            rng.normal(size=b), rng.normal(size=(b, 2)), rng.random(b) < 0.5,
            rng.random((b, 1, 3)) < 0.5, rng.random((b, 1, 3)) < 0.5,
            server_rewards=rng.normal(size=(b, 1, 3)) if tables else None)
    save_checkpoint(tmp_path / "buf.pt", {"buffer": buf.state_dict()})
    clone = ReplayBuffer(6, 2, 1, 3, 1, server_rewards=tables)
    clone.load_state_dict(load_checkpoint(tmp_path / "buf.pt")["state"]["buffer"])
    a, c = buf.sample(8, np.random.default_rng(1)), clone.sample(8, np.random.default_rng(1))
    assert (a.server_rewards is not None) == tables
    assert all((x is None and y is None) or torch.equal(x, y)
               for x, y in zip(a, c, strict=True))


class _Evil:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.sentinel}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch", "raw-pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, container: str) -> None:
    sentinel, path = tmp_path / "pwned", tmp_path / "evil.pt"
    payload = {"format_version": 1, "meta": {}, "state": {"x": _Evil(sentinel)}}
    if container == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    # torch's restricted unpickler names the blocked global (or the opcode it stopped at)
    detail = r"GLOBAL \w+\.system" if container == "torch" else "nothing was executed"
    with pytest.raises(CheckpointError, match=f"weights-only allow-list.*{detail}"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_missing_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint(tmp_path / "ck.pt", {"w": torch.arange(1000.0)})
    data = good.read_bytes()
    for cut in (len(data) // 2, 10, 0):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a satedge checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format_version": FORMAT_VERSION + 1, "meta": {}, "state": {}},
               tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(tmp_path / "future.pt")


def test_unstorable_state_and_meta_fail_before_writing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"state\['obj'\]"):
        save_checkpoint(tmp_path / "a.pt", {"obj": object()})
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "a.pt", {}, meta={"bad": np.zeros(2)})
    with pytest.raises(CheckpointError, match="object arrays"):
        save_checkpoint(tmp_path / "a.pt", {"x": np.array([None])})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    before = path.read_bytes()

    def broken_save(obj: object, f: object) -> None:
        f.write(b"PK\x03\x04 partial data")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["state"]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left


def test_check_compatible_names_the_key() -> None:
    meta = {"algorithm": "ad-sac", "scenario_hash": "abc", "satedge_major": 0}
    check_compatible(meta, {"algorithm": "ad-sac", "satedge_major": 0})
    with pytest.raises(CheckpointError, match=r"meta\['scenario_hash'\] = 'abc'.*'def'"):
        check_compatible(meta, {"algorithm": "ad-sac", "scenario_hash": "def"})
    with pytest.raises(CheckpointError, match="no 'seed'"):
        check_compatible(meta, {"seed": 3})
