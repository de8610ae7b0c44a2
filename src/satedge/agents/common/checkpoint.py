"""Checkpoints that are written atomically and read without unrestricted unpickling.

A checkpoint is one ``torch.save`` file holding ``{"format_version": int, "meta": dict, "state":
dict}``. ``state`` is a nested structure of dicts, lists, tuples, torch tensors, numpy arrays and
Python scalars / strings / bytes / None: model and optimiser ``state_dict()``s, a
``numpy.random.Generator``'s ``bit_generator.state``, ``torch.get_rng_state()``, a replay buffer's
``state_dict()``. numpy arrays are stored as their raw bytes in a uint8 tensor with dtype and shape
(so every dtype round-trips bit-exactly) and come back as numpy arrays; numpy scalars come back as
Python scalars. ``meta`` is JSON-able run identity (algorithm, scenario hash, versions) checked
with :func:`check_compatible` before anything is restored.

Reading uses ``torch.load(weights_only=True)`` only: a file that needs any other class (e.g. a
crafted pickle whose ``__reduce__`` calls ``os.system``) is refused before any of it runs. The
file also holds a SHA-256 ``digest`` of ``meta`` and ``state`` (tensor bytes included): torch
does not check its zip records' CRCs, so without it a checkpoint with damaged tensor bytes would
load as valid weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FORMAT_VERSION", "CheckpointError", "check_compatible", "load_checkpoint",
           "save_checkpoint"]

FORMAT_VERSION = 1
"""Bump when the layout changes; :func:`load_checkpoint` refuses newer versions."""

_ND = "__ndarray__"  # marker key of an encoded numpy array
_SCALARS = (str, bytes, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated/corrupt, unsafe, or incompatible with this run."""


def _encode(obj: Any, where: str) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise CheckpointError(f"{where}: object arrays cannot be stored")
        raw = np.ascontiguousarray(obj).reshape(-1).view(np.uint8)
        return {_ND: torch.from_numpy(raw.copy()), "dtype": obj.dtype.str,
                "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, Mapping):
        if _ND in obj:
            raise CheckpointError(f"{where}: the key {_ND!r} is reserved")
        out = {}
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where}: dict keys must be str or int; got {key!r}")
            out[key] = _encode(value, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, _SCALARS):
        return obj
    raise CheckpointError(f"{where}: cannot store {type(obj).__name__} in a checkpoint "
                          "(tensors, numpy arrays, dicts, lists and scalars only)")


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ND in obj:
            raw = obj[_ND].numpy()
            return raw.view(np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        return {key: _decode(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v) for v in obj)
    return obj


def _digest(meta: Any, state: Any) -> str:
    """SHA-256 of an encoded payload's structure, scalars and tensor bytes."""
    h = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().data)  # the raw bytes, not copied
        elif isinstance(obj, dict):
            h.update(f"D{len(obj)}".encode())
            for key, value in obj.items():
                h.update(repr(key).encode())
                feed(value)
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__}{len(obj)}".encode())
            for value in obj:
                feed(value)
        else:
            h.update(f"{type(obj).__name__}:{obj!r};".encode())

    feed({"meta": meta, "state": state})
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any], *,
                    meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``state`` (and ``meta``) to ``path`` atomically.

    The file is written to a temporary file in the same directory, flushed and ``fsync``-ed, then
    moved over ``path`` with ``os.replace`` (atomic on POSIX and Windows), and the directory is
    synced: after a crash ``path`` holds either the previous or the new checkpoint, never a mix.

    Raises:
        CheckpointError: ``state`` holds something that cannot be stored, or ``meta`` is not JSON.
    """
    path = Path(path)
    meta = dict(meta or {})
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"meta must be JSON-serialisable: {err}") from err
    encoded = _encode(state, "state")
    payload = {"format_version": FORMAT_VERSION, "meta": meta, "state": encoded,
               "digest": _digest(meta, encoded)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``{"format_version": int, "meta": dict, "state": dict}`` with numpy arrays restored.

    Raises:
        CheckpointError: missing file; truncated or corrupt file; a file that needs classes
            outside torch's weights-only allow-list (refused unexecuted); not a satedge
            checkpoint; or a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "weights only" in text.lower() or "weights_only" in text.lower():
            detail = [line for line in text.splitlines() if "unsupported" in line.lower()]
            raise CheckpointError(
                f"refused {path}: it contains objects outside the weights-only allow-list "
                f"(possibly malicious; nothing was executed). "
                f"{(detail or text.splitlines())[0].strip()}") from err
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {err}") from err
    except Exception as err:  # any failure to parse the file (IndexError, MemoryError, ...)
        # means it is damaged and cannot be trusted
        size = path.stat().st_size
        reason = str(err).splitlines()[0] if str(err) else f"{type(err).__name__}, {size} bytes"
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {reason}") from err
    if not isinstance(payload, dict) or not {"format_version", "meta", "state"} <= set(payload):
        raise CheckpointError(f"{path} is not a satedge checkpoint (format_version, meta and "
                              "state expected)")
    version = payload["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format_version {version!r}; this satedge reads "
                              f"up to {FORMAT_VERSION}")
    # files written before the digest existed have none; a digest that differs is damage
    if "digest" in payload and payload["digest"] != _digest(payload["meta"], payload["state"]):
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: its content does not "
                              "match its SHA-256 digest")
    return {"format_version": version, "meta": payload["meta"],
            "state": _decode(payload["state"])}


def check_compatible(meta: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Require ``meta[key] == value`` for every item of ``expected`` (e.g. ``algorithm``,
    ``scenario_hash``, ``satedge_major``); keys of ``meta`` not in ``expected`` are not checked.

    Raises:
        CheckpointError: naming the first missing or mismatching key with both values.
    """
    for key, want in expected.items():
        if key not in meta:
            raise CheckpointError(f"checkpoint meta has no {key!r} (expected {want!r})")
        if meta[key] != want:
            raise CheckpointError(f"checkpoint meta[{key!r}] = {meta[key]!r} but this run "
                                  f"expects {want!r}")
