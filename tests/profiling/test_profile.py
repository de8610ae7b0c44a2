"""Profiling a tiny LLaVA-NeXT-style model with random weights on the CPU, end to end.

The tiny shape's vision path, by hand (CLIP 28 px, 14 px patches, AnyRes pinpoints 28x56, 56x28,
56x56): a 28 px square image picks the 28x56 grid (least padding), i.e. a base tile plus two
tiles; base 2 x 2 = 4 tokens, the 2 x 4 patch grid unpadded to the square image's 2 x 2 = 4
tokens plus one newline token per row (2): 10 tokens per image.
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch

from satedge.profiling import measure
from satedge.profiling.entry import read_profile
from satedge.profiling.inputs import image_tokens_per_image, make_inputs
from satedge.profiling.runner import run_profile
from satedge.profiling.settings import ProfileSettings
from satedge.profiling.shapes import SHAPES, check_fits, load_model, shape_parameters
from satedge.sim import zoo
from satedge.sim.network import build_server_table
from satedge.sim.scenario import resolve
from satedge.sim.tasks import TaskBatch
from tests.profiling.conftest import TINY_MMMU, TINY_SETTINGS

TINY_IMAGE_TOKENS = 10  # hand count in the module docstring


@pytest.fixture(scope="module")
def tiny() -> Any:
    torch.set_num_threads(1)
    return load_model("tiny", "cpu", torch.float32, seed=0)


def test_published_shapes_have_the_published_parameter_counts() -> None:
    # LLaVA model zoo / SPEC section 4: 7.1e9 and 13.4e9 (1 % tolerance: the zoo rounds)
    for name in ("llava-1.6-7b", "llava-1.6-13b"):
        published = zoo.load_zoo()[name].params
        assert shape_parameters(name) == pytest.approx(published, rel=0.01), name
    assert shape_parameters("llava-1.6-mistral-7b") == pytest.approx(7.57e9, rel=0.01)
    # one Vicuna-7B decoder layer: 4 x 4096^2 attention + 3 x 4096 x 11008 MLP + 2 norms
    layer = 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096
    assert shape_parameters("llava-1.6-7b") - shape_parameters("llava-1.6-7b", 31) == layer


def test_memory_check_refuses_weights_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match=r"7.06 B parameters in torch.float32 need 26.3 GiB"):
        check_fits(7_063_431_168, torch.float32, 24 * 2**30, "cpu")
    check_fits(7_063_431_168, torch.float16, 24 * 2**30, "cpu")  # 13.2 GiB fits


def test_image_tokens_and_synthetic_prompts(tiny: Any) -> None:
    per_image = image_tokens_per_image(tiny, tiny.image_size_px, torch.float32)
    assert per_image == TINY_IMAGE_TOKENS

    def prompt(seed: int) -> Any:
        return make_inputs(tiny, np.random.default_rng(seed), text_tokens=40, images=3,
                           image_px=28, image_tokens=per_image, dtype=torch.float32)

    a, b, c = prompt(1), prompt(1), prompt(2)
    assert a.input_tokens == 40 + 3 * TINY_IMAGE_TOKENS
    assert torch.equal(a.input_ids, b.input_ids)
    assert torch.equal(a.image_kwargs["pixel_values"], b.image_kwargs["pixel_values"])
    assert not torch.equal(a.input_ids, c.input_ids)
    ids = a.input_ids[0].tolist()
    assert ids[:30] == [tiny.image_token_id] * 30  # image placeholders first
    assert not set(ids[30:]) & tiny.special_ids and len(set(ids[30:])) > 20  # ordinary tokens
    assert a.image_kwargs["pixel_values"].shape == (3, 3, 3, 28, 28)  # 3 images x 3 tiles


def test_warmup_runs_are_not_timed(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_time(loaded: Any, inputs: int, new_tokens: int, device: str) -> dict[str, Any]:
        calls.append(inputs)
        return {"run": inputs}

    monkeypatch.setattr(measure, "time_generation", fake_time)
    timed = measure.run_repeats(tiny, lambda i: i, new_tokens=4, repeats=3, warmup=2,
                                device="cpu")
    assert calls == [0, 1, 2, 3, 4] and timed == [{"run": 2}, {"run": 3}, {"run": 4}]


def test_profile_counts_tokens_and_reports_the_spread(tiny_entry: tuple[Any, Path]) -> None:
    record, _ = tiny_entry
    s = TINY_SETTINGS
    assert len(record.repeats) == s["repeats"]
    assert all(r["new_tokens"] == s["new_tokens"] for r in record.repeats)  # counted, not assumed
    assert record.input_tokens == s["text_tokens"] + s["images"] * TINY_IMAGE_TOKENS
    assert record.vision_tokens == TINY_IMAGE_TOKENS and record.bits_per_weight == 32.0
    tiny_model = load_model("tiny", "cpu", torch.float32)
    assert record.params == sum(p.numel() for p in tiny_model.model.parameters())
    summary = record.summary
    for key in ("prefill_s", "decode_step_s", "decode_tokens_per_s"):
        st = summary[key]
        assert st["n"] == s["repeats"] and st["min"] <= st["mean"] <= st["max"]
        assert st["std"] >= 0 and st["min"] > 0
    steps = [r["decode_s"] / (s["new_tokens"] - 1) for r in record.repeats]
    assert record.decode_tokens_per_s == pytest.approx(len(steps) / sum(steps), rel=1e-12)
    prefill = [r["prefill_s"] for r in record.repeats]
    assert record.prefill_tokens_per_s == pytest.approx(
        record.input_tokens * len(prefill) / sum(prefill), rel=1e-12)
    peak = summary["peak_memory_bytes"]["min"]  # the process's peak RSS on the CPU
    assert peak > record.provenance["rss_before_load_bytes"] > 10 * record.weight_bytes
    p = record.provenance
    assert p["torch"] == torch.__version__ and p["device"].startswith("cpu ")
    assert record.settings["threads"] == 1 and "ru_maxrss" in p["memory_method"]


def test_entry_loads_into_a_scenario_and_drives_the_cost_model(
        tiny_entry: tuple[Any, Path]) -> None:
    record, path = tiny_entry
    model = zoo.load_zoo(extra=path)[record.name]
    assert model.name == "tiny@cpu-float32" and model.mmmu_val_fp16 == TINY_MMMU
    assert model.measured_prefill_tokens_per_s == pytest.approx(record.prefill_tokens_per_s,
                                                                rel=1e-5)  # 6 digits in the CSV
    assert read_profile(path) == record
    sc = resolve("default", {"compute.extra_zoo_csv": str(path), "compute.cost_model": "measured",
                             "satellite.other_models": [record.name]})
    servers = build_server_table(sc)
    k = sc.n_uavs + 1  # candidate slot 1 hosts the first of other_models
    assert servers.model_names[k] == record.name
    # hand computation for 50 text tokens, 2 requests (images), 32 output tokens
    one = np.ones((1, 1))
    task = TaskBatch(n_requests=np.full((1, 1), 2), upload_bits=one, text_tokens=50 * one,
                     output_tokens=32 * one, deadline_s=3 * one, accuracy_min=0.3 * one)
    hand = ((50 + 2 * TINY_IMAGE_TOKENS) / model.measured_prefill_tokens_per_s
            + 32 / model.measured_decode_tokens_per_s)
    assert servers.alone_time_s(task)[0, 0, k] == pytest.approx(hand, rel=1e-12)
    half = model.measured_decode_tokens_per_s / 2
    slower = zoo.MllmModel(**{**model.__dict__, "measured_decode_tokens_per_s": half})
    t = zoo.inference_time_s("measured", slower, zoo.load_hardware()["jetson-agx-orin-32gb"],
                             70, 32)
    assert t - hand == pytest.approx(32 / model.measured_decode_tokens_per_s, rel=1e-12)


def test_entry_row_appends_to_the_shipped_zoo(tiny_entry: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = tiny_entry
    shipped = resources.files("satedge.sim.data").joinpath("mllm_zoo.csv").read_text()
    header, row = path.read_text().splitlines()
    assert header == shipped.splitlines()[0]
    combined = tmp_path / "zoo.csv"
    combined.write_text(shipped.rstrip("\n") + "\n" + row + "\n")
    assert set(zoo.load_zoo(combined)) == set(zoo.load_zoo()) | {"tiny@cpu-float32"}
    source = next(csv.DictReader(path.open()))["source"]
    assert source.startswith("[measured] satedge profile") and "tiny.json" in source


def test_a_local_directory_profiles_like_its_shape(tiny: Any, tmp_path: Path) -> None:
    tiny.model.save_pretrained(tmp_path / "tiny-model")
    settings = ProfileSettings(text_tokens=8, images=1, new_tokens=3, repeats=1, warmup=0,
                               threads=1)
    record = run_profile(str(tmp_path / "tiny-model"), settings)
    assert record.model["kind"] == "directory" and record.name == "tiny-model@cpu-float32"
    assert record.params == sum(p.numel() for p in tiny.model.parameters())
    assert record.mmmu_val_fp16 is None and "no MMMU" in record.accuracy_source
    assert record.repeats[0]["new_tokens"] == 3 and record.vision_tokens == TINY_IMAGE_TOKENS


def test_named_shapes_copy_the_published_accuracy_unless_cut_down() -> None:
    assert SHAPES["llava-1.6-7b"].zoo_name == "llava-1.6-7b"
    assert SHAPES["tiny"].zoo_name is None
    settings = ProfileSettings(text_tokens=4, images=0, new_tokens=2, repeats=1, warmup=0,
                               threads=1)
    with pytest.raises(ValueError, match=r"text_layers=3 is out of range .* allowed \[1, 2\]"):
        run_profile("tiny", settings, text_layers=3)
    cut = run_profile("tiny", settings, text_layers=1)
    assert cut.name == "tiny-1layers@cpu-float32" and cut.model["text_layers"] == 1
    assert cut.input_tokens == 4 and math.isfinite(cut.decode_tokens_per_s)
