"""One profile, from a model name to a :class:`~satedge.profiling.entry.ProfileRecord`.

``run_profile("tiny", ProfileSettings(repeats=2))`` loads the model (a named shape with seeded
random weights, or a local directory), counts the tokens of one image, builds a fresh seeded
synthetic prompt for every run, runs the warm-up and timed generations, and collects the
provenance. ``satedge profile`` calls it and writes the entry with
:func:`~satedge.profiling.entry.write_entry`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

import satedge
from satedge.profiling.entry import ProfileRecord
from satedge.profiling.inputs import PromptInputs, image_tokens_per_image, make_inputs
from satedge.profiling.measure import MEMORY_METHODS, current_rss_bytes, run_repeats
from satedge.profiling.settings import ProfileSettings
from satedge.profiling.shapes import SHAPES, LoadedModel, load_model
from satedge.sim import zoo

__all__ = ["device_name", "run_profile"]


def device_name(device: str) -> str:
    """A readable name of the device: the GPU's name, or the CPU model with its core count."""
    if device == "cuda":
        return f"cuda {torch.cuda.get_device_name()}"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"cpu {cpu} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads)"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _accuracy(loaded: LoadedModel, mmmu_val: float | None) -> tuple[float | None, float | None,
                                                                     str]:
    """MMMU val (fp16, int4) of the entry and where it comes from: timing cannot measure it."""
    if mmmu_val is not None:
        return mmmu_val, None, f"[choice] MMMU val {mmmu_val:g} given by the user"
    if loaded.zoo_name is not None:
        row = zoo.load_zoo()[loaded.zoo_name]
        return (row.mmmu_val_fp16, row.mmmu_val_int4,
                f"[recon] MMMU copied from the shipped zoo row {loaded.zoo_name} (the real "
                "model's published score; timing used this shape)")
    return None, None, "no MMMU: give one (--mmmu-val) before a scenario can deploy the entry"


def _provenance(settings: ProfileSettings, loaded: LoadedModel) -> dict[str, Any]:
    return {"device": device_name(settings.device),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "satedge": satedge.__version__,
            "torch_threads": torch.get_num_threads(),
            "attention": str(loaded.model.config._attn_implementation),
            "memory_method": MEMORY_METHODS[settings.device],
            "timer": "time.perf_counter at each streamed token (see satedge.profiling.measure)"}


def run_profile(spec: str, settings: ProfileSettings, *, name: str | None = None,
                mmmu_val: float | None = None, text_layers: int | None = None) -> ProfileRecord:
    """Profile model ``spec`` (a name in ``SHAPES`` or a local directory) under ``settings``.

    ``name`` is the zoo key of the entry (default ``<model>@<device>-<dtype>``); ``mmmu_val``
    gives the entry an accuracy (default: the published score of a named shape's real model);
    ``text_layers`` keeps only that many language-model layers of a named shape (a scaled check;
    the entry then carries no MMMU). Raises ``ValueError`` for any bad input.
    """
    if mmmu_val is not None and not 0 < mmmu_val <= 1:
        raise ValueError(f"mmmu_val={mmmu_val} is out of range; allowed (0, 1] (a fraction)")
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device='cuda' but torch {torch.__version__} sees no CUDA device")
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    dtype = getattr(torch, settings.dtype)
    rss_before = current_rss_bytes()
    loaded = load_model(spec, settings.device, dtype, seed=settings.seed, text_layers=text_layers)
    image_px = settings.image_px or loaded.image_size_px
    per_image = image_tokens_per_image(loaded, image_px, dtype)
    streams = np.random.SeedSequence(settings.seed).spawn(settings.warmup + settings.repeats)

    def inputs_for(i: int) -> PromptInputs:
        return make_inputs(loaded, np.random.default_rng(streams[i]),
                           text_tokens=settings.text_tokens, images=settings.images,
                           image_px=image_px, image_tokens=per_image, dtype=dtype)

    input_tokens = settings.text_tokens + settings.images * per_image
    context = int(loaded.model.config.text_config.max_position_embeddings)
    if input_tokens + settings.new_tokens > context:
        raise ValueError(f"{input_tokens} prompt tokens ({settings.text_tokens} text + "
                         f"{settings.images} images x {per_image}) + {settings.new_tokens} new "
                         f"tokens exceed the model's context of {context} tokens")
    repeats = run_repeats(loaded, inputs_for, new_tokens=settings.new_tokens,
                          repeats=settings.repeats, warmup=settings.warmup,
                          device=settings.device)
    provenance = {**_provenance(settings, loaded), "rss_before_load_bytes": rss_before}
    return _record(loaded, spec, settings, repeats, provenance, name=name, mmmu_val=mmmu_val,
                   text_layers=text_layers, image_px=image_px, per_image=per_image)


def _record(loaded: LoadedModel, spec: str, settings: ProfileSettings,
            repeats: list[dict[str, Any]], provenance: dict[str, Any], *, name: str | None,
            mmmu_val: float | None, text_layers: int | None, image_px: int,
            per_image: int) -> ProfileRecord:
    """The record of a finished profile: naming, counts, accuracy and provenance."""
    weights = list(loaded.model.parameters())
    label = loaded.label + ("" if text_layers is None else f"-{text_layers}layers")
    device_key = "cpu" if settings.device == "cpu" else _slug(torch.cuda.get_device_name())
    shape = SHAPES.get(loaded.label) if loaded.kind == "shape" else None
    title = (shape.display_name if shape else loaded.label) + (
        "" if text_layers is None else f", {text_layers} LM layers")
    fp16, int4, accuracy_source = _accuracy(loaded, mmmu_val)
    return ProfileRecord(
        name=name or f"{label}@{device_key}-{settings.dtype}",
        display_name=f"{title} ({settings.device}, {settings.dtype})",
        params=int(sum(p.numel() for p in weights)),
        weight_bytes=int(sum(p.numel() * p.element_size() for p in weights)),
        input_tokens=settings.text_tokens + settings.images * per_image, vision_tokens=per_image,
        mmmu_val_fp16=fp16, mmmu_val_int4=int4, accuracy_source=accuracy_source,
        model={"spec": spec, "kind": loaded.kind, "model_type": loaded.model_type,
               "text_layers": loaded.text_layers, "zoo_name": loaded.zoo_name,
               "source": loaded.source},
        settings={**dataclasses.asdict(settings), "image_px": image_px,
                  "threads": torch.get_num_threads()},
        provenance=provenance, repeats=repeats)
