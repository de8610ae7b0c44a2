"""Timing one generation: time to first token, decode rate, tokens counted, peak memory.

How each number is taken (``docs/profiling.md`` has the reasoning):

- A streamer is handed every generated token by ``generate`` as soon as it exists and stamps the
  host clock (``time.perf_counter``). On CUDA, ``generate`` copies each token to the host before
  the streamer sees it, which waits for the GPU, so a stamp is the time the token was produced.
- ``prefill_s``: from just before ``generate`` (after ``torch.cuda.synchronize``) to the first
  generated token, i.e. time to first token: image encoding and projection, the language model's
  pass over the whole prompt, and the first greedy choice.
- ``decode_s``: from the first to the last generated token; the decode rate is
  ``(n - 1) / decode_s``, with ``n`` counted from the returned sequence (output length minus
  prompt length) and checked against the streamer's count.
- ``n`` is forced: ``min_new_tokens = max_new_tokens`` and greedy decoding, so EOS cannot end a
  run early (it is masked until the minimum is reached).
- Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
  (every tensor: weights, activations, KV cache; not the allocator's unused reserve). On the CPU
  the process's peak resident set size (``getrusage`` ``ru_maxrss``), a high-water mark of the
  whole process (interpreter, libraries, weights, activations) that never decreases; the runner
  also records the resident set size just before the model is built (``rss_before_load_bytes``),
  so the difference is the model's share (weights, activations, KV cache, lazily loaded code).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig
from transformers.generation.streamers import BaseStreamer

from satedge.profiling.inputs import PromptInputs
from satedge.profiling.shapes import LoadedModel

__all__ = ["MEMORY_METHODS", "current_rss_bytes", "run_repeats", "time_generation"]

MEMORY_METHODS = {
    "cuda": "torch.cuda.max_memory_allocated after reset_peak_memory_stats (all tensors)",
    "cpu": "peak resident set size of the process (getrusage ru_maxrss; a high-water mark)",
}


class _TokenClock(BaseStreamer):
    """Stamps the host clock at every generated token (the first ``put`` is the prompt)."""

    def __init__(self) -> None:
        self.prompt_seen = False
        self.stamps: list[float] = []

    def put(self, value: Any) -> None:
        now = time.perf_counter()
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.stamps.extend([now] * int(value.numel()))  # batch 1: one token per put

    def end(self) -> None:
        """Nothing to flush: stamps are taken in ``put``."""


def _peak_memory_bytes(device: str) -> int:
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def current_rss_bytes() -> int | None:
    """The process's resident set size now (byte; Linux ``/proc/self/statm``), else None."""
    statm = Path("/proc/self/statm")
    if not statm.is_file():
        return None
    return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@torch.inference_mode()
def time_generation(loaded: LoadedModel, inputs: PromptInputs, new_tokens: int,
                    device: str) -> dict[str, Any]:
    """Generate exactly ``new_tokens`` greedily from ``inputs`` once and time it.

    Returns ``{"prefill_s", "decode_s", "new_tokens", "peak_memory_bytes"}`` (s, s, counted
    tokens, bytes). Raises ``RuntimeError`` if the counted tokens and the streamed tokens differ.
    """
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                              do_sample=False, num_beams=1, use_cache=True,
                              eos_token_id=loaded.eos_token_id, pad_token_id=loaded.pad_token_id)
    clock = _TokenClock()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = loaded.model.generate(input_ids=inputs.input_ids,
                                   attention_mask=inputs.attention_mask, **inputs.image_kwargs,
                                   generation_config=config, streamer=clock)
    if device == "cuda":
        torch.cuda.synchronize()
    counted = int(output.shape[1]) - inputs.input_tokens
    if counted != len(clock.stamps) or counted < 1:
        raise RuntimeError(f"generate returned {counted} new tokens but streamed "
                           f"{len(clock.stamps)}; cannot time them")
    return {"prefill_s": clock.stamps[0] - start, "decode_s": clock.stamps[-1] - clock.stamps[0],
            "new_tokens": counted, "peak_memory_bytes": _peak_memory_bytes(device)}


def run_repeats(loaded: LoadedModel, inputs_for: Callable[[int], PromptInputs], *,
                new_tokens: int, repeats: int, warmup: int, device: str) -> list[dict[str, Any]]:
    """``warmup`` untimed generations, then ``repeats`` timed ones (run ``i`` uses
    ``inputs_for(i)``, so every run gets its own seeded prompt). Returns the timed runs only."""
    for i in range(warmup):
        time_generation(loaded, inputs_for(i), new_tokens, device)
    return [time_generation(loaded, inputs_for(warmup + i), new_tokens, device)
            for i in range(repeats)]
