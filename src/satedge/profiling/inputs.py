"""Seeded synthetic MMMU-like prompts: K generated images followed by N random text tokens.

MMMU questions are a short text with one (sometimes several) pictures. The amount of computation
depends only on the token counts, not on which tokens or pixels they are, so the prompt is:

- K images of ``image_px`` x ``image_px`` RGB pixels drawn uniformly from a seeded generator,
  preprocessed by the model family's own transformers image processor (resize, AnyRes tiling and
  CLIP normalisation for LLaVA-NeXT); preprocessing is not timed;
- each image's placeholder tokens (as many as the model's vision path produces for that image,
  counted by running it once) followed by N text token ids drawn uniformly from the ordinary
  vocabulary (never a special token, see ``LoadedModel.special_ids``). No chat template and no
  BOS token are added, so the prompt is exactly ``N + K * image_tokens`` tokens long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from satedge.profiling.shapes import LoadedModel

__all__ = ["PromptInputs", "image_tokens_per_image", "make_inputs", "synthetic_images"]


@dataclass(frozen=True)
class PromptInputs:
    """One batch-1 prompt on the model's device.

    ``input_ids`` and ``attention_mask`` are [1, input_tokens]; ``image_kwargs`` holds
    ``pixel_values`` (and ``image_sizes`` for LLaVA-NeXT), empty when there are no images.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    image_kwargs: dict[str, torch.Tensor]
    text_tokens: int
    images: int
    image_tokens_per_image: int

    @property
    def input_tokens(self) -> int:
        """Prompt length N + K * image tokens (token): what prefill processes."""
        return int(self.input_ids.shape[1])


def synthetic_images(rng: np.random.Generator, count: int, size_px: int) -> list[np.ndarray]:
    """``count`` uint8 RGB images [size_px, size_px, 3] of uniform random pixels."""
    return [rng.integers(0, 256, size=(size_px, size_px, 3), dtype=np.uint8)
            for _ in range(count)]


def _image_processor(loaded: LoadedModel) -> Any:
    """The model family's image processor, configured from the model (no file is read).

    The PIL implementation (``...ImageProcessorPil`` from transformers 5.x on; the plain class
    before that) needs no torchvision.
    """
    import transformers

    family = "LlavaNext" if loaded.model_type == "llava_next" else "CLIP"
    cls = getattr(transformers, f"{family}ImageProcessorPil", None) or getattr(
        transformers, f"{family}ImageProcessor")
    side = loaded.image_size_px
    kwargs: dict[str, Any] = {"size": {"shortest_edge": side},
                              "crop_size": {"height": side, "width": side}}
    if family == "LlavaNext":
        kwargs["image_grid_pinpoints"] = loaded.model.config.image_grid_pinpoints
    return cls(**kwargs)


def _pixels(loaded: LoadedModel, images: list[np.ndarray], dtype: torch.dtype) -> dict[str, Any]:
    batch = _image_processor(loaded)(images, return_tensors="pt")
    device = loaded.model.device
    out = {"pixel_values": batch["pixel_values"].to(device=device, dtype=dtype)}
    if "image_sizes" in batch:
        out["image_sizes"] = batch["image_sizes"].to(device)
    return out


@torch.inference_mode()
def image_tokens_per_image(loaded: LoadedModel, image_px: int, dtype: torch.dtype) -> int:
    """Tokens one ``image_px``-square image becomes, counted by running the vision path once.

    For LLaVA-NeXT this is the base tile plus the unpadded AnyRes tiles and one newline token
    per row of patches (1176 for a 336 px image on the 7B/13B shapes); for LLaVA-1.5 it is the
    (336/14)^2 = 576 patch tokens.
    """
    pixels = _pixels(loaded, synthetic_images(np.random.default_rng(0), 1, image_px), dtype)
    features = loaded.model.get_image_features(**pixels).pooler_output
    if isinstance(features, torch.Tensor) and features.dim() == 3:  # [images, tokens, hidden]
        return int(features.shape[1])
    return int(features[0].shape[0])  # a list of [tokens, hidden] per image


def make_inputs(loaded: LoadedModel, rng: np.random.Generator, *, text_tokens: int, images: int,
                image_px: int, image_tokens: int, dtype: torch.dtype) -> PromptInputs:
    """A synthetic prompt: ``images`` pictures then ``text_tokens`` ordinary token ids.

    ``image_tokens`` is :func:`image_tokens_per_image` for ``image_px`` (counted once by the
    caller).
    """
    ordinary = np.setdiff1d(np.arange(loaded.vocab_size), np.fromiter(loaded.special_ids, int))
    text = rng.choice(ordinary, size=text_tokens, replace=True)
    ids = np.concatenate([np.full(images * image_tokens, loaded.image_token_id), text])
    device = loaded.model.device
    input_ids = torch.as_tensor(ids, dtype=torch.long, device=device)[None]
    kwargs = _pixels(loaded, synthetic_images(rng, images, image_px), dtype) if images else {}
    return PromptInputs(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                        image_kwargs=kwargs, text_tokens=text_tokens, images=images,
                        image_tokens_per_image=image_tokens)
