"""Named architecture shapes, and loading a model from a shape or from a local directory.

Timing depends on the architecture, not on the weights' values, so a shape built from a model's
published configuration numbers and filled with random weights times like the real model. The
numbers below are those of the HuggingFace ``llava-hf`` conversions of LLaVA-1.6 ("LLaVA-NeXT"):
a CLIP ViT-L/14 vision tower at 336 px, a two-layer GELU projector, AnyRes tiling over five grid
pinpoints, and a Vicuna (Llama-2) or Mistral language model. Only numbers that set the amount of
computation are given; anything else keeps the transformers default. Nothing is downloaded: named
shapes are built from config objects, and a directory is read with ``local_files_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["SHAPES", "ArchShape", "LoadedModel", "check_fits", "count_parameters", "load_model",
           "shape_parameters"]

_CLIP_VIT_L14_336: dict[str, Any] = {
    "model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
    "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
    "projection_dim": 768}
_ANYRES_336 = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))
_HF = "llava-hf/llava-v1.6-{}-hf config.json (HuggingFace)"


@dataclass(frozen=True)
class ArchShape:
    """A LLaVA-NeXT architecture given by its configuration numbers.

    ``text`` and ``vision`` are keyword arguments of the transformers text and vision configs;
    ``zoo_name`` is the shipped zoo row of the real model (its published MMMU is copied into a
    profiled entry), None for shapes that are not a published model.
    """

    name: str
    display_name: str
    text: dict[str, Any]
    vision: dict[str, Any]
    image_token_index: int
    grid_pinpoints: tuple[tuple[int, int], ...]
    zoo_name: str | None
    source: str


def _decoder(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
             **more: Any) -> dict[str, Any]:
    """Text-config keywords of a Llama-family decoder (Llama-2 vocabulary + LLaVA's 64 added)."""
    return {"model_type": "llama", "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "vocab_size": 32064, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
            **more}


SHAPES: dict[str, ArchShape] = {s.name: s for s in (
    ArchShape("llava-1.6-7b", "LLaVA-1.6-7B (Vicuna) shape",
              _decoder(4096, 11008, 32, 32, 32), _CLIP_VIT_L14_336, 32000, _ANYRES_336,
              "llava-1.6-7b", _HF.format("vicuna-7b")),
    ArchShape("llava-1.6-mistral-7b", "LLaVA-1.6-Mistral-7B shape",
              _decoder(4096, 14336, 32, 32, 8, model_type="mistral",
                       max_position_embeddings=32768),
              _CLIP_VIT_L14_336, 32000, _ANYRES_336, None, _HF.format("mistral-7b")),
    ArchShape("llava-1.6-13b", "LLaVA-1.6-13B (Vicuna) shape",
              _decoder(5120, 13824, 40, 40, 40), _CLIP_VIT_L14_336, 32000, _ANYRES_336,
              "llava-1.6-13b", _HF.format("vicuna-13b")),
    # About 40 000 times smaller than 7B, same structure (GQA, AnyRes over 2 x 1 tiles, CLIP
    # with CLS): for tests and for checking the tool end to end in seconds.
    ArchShape("tiny", "tiny LLaVA-NeXT-style test model",
              _decoder(64, 128, 2, 4, 2, vocab_size=512, max_position_embeddings=2048),
              {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
               "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 28,
               "patch_size": 14, "projection_dim": 32},
              500, ((28, 56), (56, 28), (56, 56)), None,
              "[choice] test shape: LLaVA-1.6 structure at 1/12 of the image size, 2 + 2 layers"),
)}


@dataclass
class LoadedModel:
    """A model ready to generate, with what the prompt builder needs to know about it.

    ``special_ids`` are token ids never used as prompt text (configured BOS/EOS/PAD/UNK, id 0,
    the image token and every id above it, where LLaVA checkpoints put their added tokens).
    """

    model: Any  # a transformers LlavaNext/Llava ForConditionalGeneration, in eval mode
    label: str  # the shape name or the directory's name
    kind: str  # "shape" or "directory"
    model_type: str  # "llava_next" or "llava"
    image_size_px: int
    image_token_id: int
    vocab_size: int
    eos_token_id: int | None
    pad_token_id: int
    zoo_name: str | None
    text_layers: int
    source: str
    special_ids: frozenset[int] = field(default_factory=frozenset)


def _classes(model_type: str) -> tuple[Any, Any]:
    """The config and model classes of a supported model type."""
    import transformers

    if model_type == "llava_next":
        return transformers.LlavaNextConfig, transformers.LlavaNextForConditionalGeneration
    if model_type == "llava":
        return transformers.LlavaConfig, transformers.LlavaForConditionalGeneration
    raise ValueError(f"model_type {model_type!r} is not supported; allowed: 'llava_next' "
                     "(LLaVA-1.6 / LLaVA-NeXT), 'llava' (LLaVA-1.5)")


def _shape_config(shape: ArchShape, text_layers: int | None) -> Any:
    config_cls, _ = _classes("llava_next")
    text = dict(shape.text)
    if text_layers is not None:
        if not 1 <= text_layers <= text["num_hidden_layers"]:
            raise ValueError(f"text_layers={text_layers} is out of range for shape "
                             f"{shape.name!r}; allowed [1, {text['num_hidden_layers']}]")
        text["num_hidden_layers"] = text_layers
    return config_cls(text_config=text, vision_config=dict(shape.vision),
                      image_token_index=shape.image_token_index,
                      image_grid_pinpoints=[list(p) for p in shape.grid_pinpoints])


def _free_bytes(device: str) -> int | None:
    """Free memory on ``device`` (byte): CUDA's free memory, or MemAvailable on Linux; None if
    unknown."""
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024  # kB
    return None


def check_fits(params: int, dtype: torch.dtype, free_bytes: int | None, device: str) -> None:
    """Raise ``ValueError`` when ``params`` weights of ``dtype`` exceed 90 % of ``free_bytes``."""
    need = params * torch.empty((), dtype=dtype).element_size()
    if free_bytes is not None and need > 0.9 * free_bytes:
        raise ValueError(f"{params / 1e9:.2f} B parameters in {dtype} need {need / 2**30:.1f} GiB "
                         f"of weights, but {free_bytes / 2**30:.1f} GiB are free on {device}; use "
                         "a smaller dtype, a GPU, or fewer text_layers (a scaled check)")


def count_parameters(config: Any, model_cls: Any) -> int:
    """Parameters of ``model_cls(config)``, counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in model_cls._from_config(config).parameters())


def shape_parameters(name: str, text_layers: int | None = None) -> int:
    """Parameter count of a named shape (meta device; instant even for 13B)."""
    return count_parameters(_shape_config(SHAPES[name], text_layers), _classes("llava_next")[1])


def load_model(spec: str, device: str, dtype: torch.dtype, *, seed: int = 0,
               text_layers: int | None = None) -> LoadedModel:
    """Build a named shape with random weights (seeded), or load a local directory's weights.

    Raises ``ValueError`` for an unknown name, a directory without a supported LLaVA config, a
    ``text_layers`` override of a directory, or a model that does not fit in memory.
    """
    if spec in SHAPES:
        shape = SHAPES[spec]
        config = _shape_config(shape, text_layers)
        _, model_cls = _classes("llava_next")
        check_fits(count_parameters(config, model_cls), dtype, _free_bytes(device), device)
        torch.manual_seed(seed)
        with torch.device(device):
            model = model_cls._from_config(config, dtype=dtype)
        zoo_name = shape.zoo_name if text_layers is None else None  # a cut-down model is not it
        label, kind, source = shape.name, "shape", f"random weights; shape from {shape.source}"
    elif Path(spec).is_dir():
        if text_layers is not None:
            raise ValueError("text_layers applies to named shapes only, not to a directory")
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(spec, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{spec}: no readable config.json of a LLaVA model ({exc})") from None
        _, model_cls = _classes(config.model_type)
        check_fits(count_parameters(config, model_cls), dtype, _free_bytes(device), device)
        model = model_cls.from_pretrained(spec, local_files_only=True, dtype=dtype).to(device)
        zoo_name, kind = None, "directory"
        label, source = Path(spec).resolve().name, f"weights from local directory {spec}"
    else:
        raise ValueError(f"model {spec!r} is neither a named shape ({', '.join(SHAPES)}) nor a "
                         "local directory")
    return _describe(model.eval(), config, label, kind, zoo_name, source)


def _token_ids(config: Any, key: str) -> list[int]:
    """Token ids configured under ``key`` in the text config or the top-level config."""
    found: list[int] = []
    for cfg in (config.text_config, config):
        value = getattr(cfg, key, None)
        found += value if isinstance(value, list) else [value] if isinstance(value, int) else []
    return found


def _describe(model: Any, config: Any, label: str, kind: str, zoo_name: str | None,
              source: str) -> LoadedModel:
    text = config.text_config
    image_token, vocab = int(config.image_token_id), int(text.vocab_size)
    eos, pad = _token_ids(config, "eos_token_id"), _token_ids(config, "pad_token_id")
    special = {0, *eos, *pad, *_token_ids(config, "bos_token_id"),
               *_token_ids(config, "unk_token_id"), *range(image_token, vocab)}
    return LoadedModel(model=model, label=label, kind=kind, model_type=config.model_type,
                       image_size_px=int(config.vision_config.image_size),
                       image_token_id=image_token, vocab_size=vocab,
                       eos_token_id=eos[0] if eos else None,
                       pad_token_id=(pad or eos or [0])[0], zoo_name=zoo_name,
                       text_layers=int(text.num_hidden_layers), source=source,
                       special_ids=frozenset(special))
