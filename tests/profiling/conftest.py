"""A tiny LLaVA-NeXT-style model, profiled once per session on the CPU (needs transformers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY_SETTINGS: dict[str, Any] = {"text_tokens": 12, "images": 2, "new_tokens": 6, "repeats": 2,
                                 "warmup": 1, "seed": 7, "threads": 1}
TINY_MMMU = 0.37


@pytest.fixture(scope="session")
def tiny_entry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """(ProfileRecord, path of the written zoo CSV) of the tiny shape, 2 repeats, 1 warm-up."""
    pytest.importorskip("transformers")
    from satedge.profiling.entry import write_entry
    from satedge.profiling.runner import run_profile
    from satedge.profiling.settings import ProfileSettings

    record = run_profile("tiny", ProfileSettings(**TINY_SETTINGS), mmmu_val=TINY_MMMU)
    csv_path, _ = write_entry(record, tmp_path_factory.mktemp("profile") / "tiny.csv")
    return record, csv_path
