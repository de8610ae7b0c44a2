"""A profile's result: the MLLM zoo row it becomes and the JSON sidecar with its provenance.

``write_entry(record, "x.csv")`` writes ``x.csv`` (a header and one row in the column order of the
shipped ``mllm_zoo.csv``, so it loads with ``satedge.sim.zoo.load_zoo(extra="x.csv")`` and its row
can be appended to another zoo file) and ``x.json`` beside it: device, dtype, library versions,
date, settings, and every timed repeat, from which the summary statistics are recomputed on read.
Torch-free: ``satedge zoo fit`` reads sidecars without importing torch.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from satedge.sim.zoo import ZOO_COLUMNS

__all__ = ["FORMAT", "ProfileRecord", "read_profile", "stats", "write_entry"]

FORMAT = {"format": "satedge-profile", "version": 1}
"""Marks a sidecar JSON; ``read_profile`` refuses anything else."""


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min and max of ``values``, and n."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "min": min(values), "max": max(values), "n": n}


@dataclass(frozen=True)
class ProfileRecord:
    """Everything one profile measured and how (units in the names; one dict per timed repeat).

    ``repeats`` items have ``prefill_s`` (time to first token, s), ``decode_s`` (first to last
    token, s), ``new_tokens`` (counted from the output) and ``peak_memory_bytes``. ``model``,
    ``settings`` and ``provenance`` are JSON-ready dicts (see ``docs/profiling.md``).
    """

    name: str
    display_name: str
    params: int
    weight_bytes: int
    input_tokens: int
    vision_tokens: int
    mmmu_val_fp16: float | None
    mmmu_val_int4: float | None
    accuracy_source: str
    model: dict[str, Any]
    settings: dict[str, Any]
    provenance: dict[str, Any]
    repeats: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.repeats:
            raise ValueError(f"profile {self.name!r} has no timed repeats")
        for i, rep in enumerate(self.repeats):
            if rep["new_tokens"] < 2 or not (rep["prefill_s"] > 0 and rep["decode_s"] > 0):
                raise ValueError(f"profile {self.name!r}, repeat {i}: needs >= 2 new tokens and "
                                 f"positive times, got {rep}")

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per parameter (32 for float32, 16 for float16 and bfloat16)."""
        return 8.0 * self.weight_bytes / self.params

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """Statistics over the repeats of prefill_s, decode_step_s (s/token),
        decode_tokens_per_s, new_tokens and peak_memory_bytes."""
        steps = [r["decode_s"] / (r["new_tokens"] - 1) for r in self.repeats]
        return {"prefill_s": stats([r["prefill_s"] for r in self.repeats]),
                "decode_step_s": stats(steps),
                "decode_tokens_per_s": stats([1.0 / s for s in steps]),
                "new_tokens": stats([float(r["new_tokens"]) for r in self.repeats]),
                "peak_memory_bytes": stats([float(r["peak_memory_bytes"])
                                            for r in self.repeats])}

    @property
    def prefill_tokens_per_s(self) -> float:
        """Input tokens per second of mean time to first token (token/s): the zoo's rate."""
        return self.input_tokens / self.summary["prefill_s"]["mean"]

    @property
    def decode_tokens_per_s(self) -> float:
        """Inverse of the mean decode step (token/s), so the cost model's mean time is exact."""
        return 1.0 / self.summary["decode_step_s"]["mean"]

    @property
    def measured_on(self) -> str:
        """Device, dtype and library versions in one line (the zoo's ``measured_on``)."""
        p = self.provenance
        return (f"{p['device']}; {self.settings['dtype']}; torch {p['torch']}; "
                f"transformers {p['transformers']}")

    def zoo_row(self, sidecar_name: str = "") -> dict[str, str]:
        """The entry as strings in the zoo's columns (``satedge.sim.zoo.ZOO_COLUMNS``)."""
        s = self.settings
        where = f"; provenance and repeats in {sidecar_name}" if sidecar_name else ""
        source = (f"[measured] satedge profile {self.provenance['date']}: {self.model['source']}"
                  f"; {self.measured_on}; {s['text_tokens']} text tokens + {s['images']} images "
                  f"x {self.vision_tokens} tokens, {s['new_tokens']} new tokens, {s['repeats']} "
                  f"repeats after {s['warmup']} warm-up; {self.accuracy_source}{where}")
        row = {"name": self.name, "display_name": self.display_name, "params": str(self.params),
               "mmmu_val_fp16": _cell(self.mmmu_val_fp16),
               "mmmu_val_int4": _cell(self.mmmu_val_int4), "tokens_per_s_agx_orin_int4": "",
               "vision_tokens": str(self.vision_tokens),
               "measured_prefill_tokens_per_s": f"{self.prefill_tokens_per_s:.6g}",
               "measured_decode_tokens_per_s": f"{self.decode_tokens_per_s:.6g}",
               "measured_on": self.measured_on, "source": source}
        assert tuple(row) == ZOO_COLUMNS  # the shipped zoo's order, so rows can be appended
        return row

    def to_json(self) -> dict[str, Any]:
        """The sidecar: the record's fields, the zoo row and the summary statistics."""
        return {**FORMAT, **asdict(self), "summary": self.summary,
                "prefill_tokens_per_s": self.prefill_tokens_per_s,
                "decode_tokens_per_s": self.decode_tokens_per_s, "zoo_row": self.zoo_row()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], label: str = "profile") -> ProfileRecord:
        """Rebuild a record from its sidecar; derived values are recomputed, not trusted."""
        if {k: data.get(k) for k in FORMAT} != FORMAT:
            raise ValueError(f"{label}: not a satedge profile sidecar (expected {FORMAT})")
        names = cls.__dataclass_fields__
        try:
            return cls(**{k: data[k] for k in names})
        except KeyError as exc:
            raise ValueError(f"{label}: missing field {exc}") from None


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_entry(record: ProfileRecord, out_csv: str | Path) -> tuple[Path, Path]:
    """Write the zoo CSV (header + one row) and the sidecar JSON beside it; returns both paths.

    ``out_csv`` must end in ``.csv``; the sidecar is the same path with ``.json``.
    """
    path = Path(out_csv)
    if path.suffix != ".csv":
        raise ValueError(f"out={str(out_csv)!r} must end in .csv (the sidecar gets .json)")
    sidecar = path.with_suffix(".json")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ZOO_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerow(record.zoo_row(sidecar.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    sidecar.write_text(json.dumps(record.to_json(), indent=2) + "\n", encoding="utf-8")
    return path, sidecar


def read_profile(path: str | Path) -> ProfileRecord:
    """Read a profile from its sidecar JSON, or from its CSV (the ``.json`` beside it is read)."""
    p = Path(path)
    sidecar = p.with_suffix(".json") if p.suffix == ".csv" else p
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no profile sidecar {sidecar} (written by satedge "
                         "profile)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{sidecar}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{sidecar}: not a satedge profile sidecar")
    return ProfileRecord.from_json(data, str(sidecar))
