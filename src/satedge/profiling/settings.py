"""What one profile measures: prompt size, generated tokens, repeats, device and dtype.

Torch-free, so the command line can read the defaults without importing torch. Every default of
``satedge profile`` lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICES", "DTYPES", "ProfileSettings"]

DEVICES: tuple[str, ...] = ("cpu", "cuda")
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class ProfileSettings:
    """Settings of one profile; invalid values raise ``ValueError`` naming the setting and range.

    Attributes:
        text_tokens: prompt text tokens N per request (token), >= 1. The default 64 is the middle
            of a short MMMU question; ``tasks.text_tokens_*`` spans 16-256.
        images: generated images K per prompt, >= 0 (MMMU-style: one picture per question).
        new_tokens: generated tokens L, forced exactly (min = max new tokens, no early EOS), >= 2
            (the decode rate is measured over the L - 1 steps after the first token).
        repeats: timed runs R, >= 1, reported with their spread.
        warmup: untimed runs W before the repeats, >= 0 (first-call allocation, kernel selection).
        seed: seed of the synthetic prompts and of the random weights of named shapes.
        device: ``cpu`` or ``cuda``.
        dtype: ``float32``, ``float16`` or ``bfloat16`` (weights and activations).
        image_px: side of the square generated images (px); None = the vision tower's input size.
        threads: CPU threads for torch (``torch.set_num_threads``); None leaves torch's default.
    """

    text_tokens: int = 64
    images: int = 1
    new_tokens: int = 32
    repeats: int = 5
    warmup: int = 2
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    image_px: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        for key, low in (("text_tokens", 1), ("images", 0), ("new_tokens", 2), ("repeats", 1),
                         ("warmup", 0), ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key}={value!r} is out of range; allowed integers >= {low}")
        for key in ("image_px", "threads"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{key}={value!r} is out of range; allowed integers >= 1 or "
                                 "None")
        if self.device not in DEVICES:
            raise ValueError(f"device={self.device!r} is not allowed; choose one of "
                             f"{list(DEVICES)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not allowed; choose one of {list(DTYPES)}")
