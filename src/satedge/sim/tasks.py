"""MLLM requests and the per-slot tasks they form (SPEC section 3).

Each IoTD k produces ``n_k ~ Poisson(lambda_k)`` requests per slot (paper: lambda in [1, 1.5]); the
slot's requests of one IoTD form one task whose sizes add up [choice]. A request is a text prompt
plus one image; its service type sets the output length:

=============  ===================================  ===========
service        output tokens L                       tag
=============  ===================================  ===========
VQA            32                                   choice
captioning     64 or 128 (equally likely)           choice
summarisation  256                                  choice
translation    equal to the prompt's text tokens    choice
=============  ===================================  ===========

All sampling here is a pure transform of uniform variates drawn by the caller from each
environment's own generator, so a batch of environments reproduces single environments exactly.
Poisson counts are truncated at ``max_requests`` (the tail mass is put on the cap); at the default
rates the probability of reaching the cap of 8 is below 1e-4.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

__all__ = [
    "SERVICE_TYPES",
    "TaskBatch",
    "poisson_cdf_table",
    "request_counts",
    "sample_tasks",
    "uniforms_per_slot",
]

SERVICE_TYPES: tuple[str, ...] = ("vqa", "captioning", "summarisation", "translation")
VQA_TOKENS = 32
CAPTION_TOKENS = (64, 128)
SUMMARY_TOKENS = 256

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_FIXED_TOKENS = np.array([VQA_TOKENS, VQA_TOKENS, *CAPTION_TOKENS, SUMMARY_TOKENS, SUMMARY_TOKENS,
                          0.0, 0.0])
"""Output tokens by ``2 * service + (level uniform >= 0.5)``; translation (0 here) is set apart."""
_FIXED_TOKENS.setflags(write=False)


@dataclass(frozen=True)
class TaskBatch:
    """The tasks of one slot for B environments and K IoTDs (all arrays [B, K]).

    Attributes:
        n_requests: requests merged into the task (0 = the IoTD is idle this slot).
        upload_bits: input size D (bit): text bits plus one image per request.
        text_tokens: prompt text tokens summed over requests (images are counted per server,
            whose vision encoder sets the tokens per image).
        output_tokens: output length L (token).
        deadline_s: latency bound T_max (s).
        accuracy_min: minimum accuracy A_min on the scenario's accuracy scale.
    """

    n_requests: IntArray
    upload_bits: FloatArray
    text_tokens: FloatArray
    output_tokens: FloatArray
    deadline_s: FloatArray
    accuracy_min: FloatArray

    @functools.cached_property
    def active(self) -> NDArray[np.bool_]:
        """[B, K] True where the IoTD has a task this slot (computed once, read-only)."""
        return _readonly(self.n_requests > 0)


def poisson_cdf_table(rate: FloatArray, max_requests: int) -> FloatArray:
    """CDF of Poisson(rate) at 0..max_requests-1, shape [..., max_requests].

    ``P(n <= j) = sum_{i<=j} e^{-lambda} lambda^i / i!``, computed in log space. The count drawn by
    :func:`request_counts` is the number of CDF entries below the uniform, so the mass above
    ``max_requests - 1`` lands on ``max_requests`` (truncation).
    """
    i = np.arange(max_requests, dtype=np.float64)
    lam = np.asarray(rate, dtype=np.float64)[..., None]
    # rate 0: log 0 = -inf and 0 * -inf = nan; the next line replaces that row exactly
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = -lam + i * np.log(lam) - gammaln(i + 1.0)
    log_pmf = np.where(lam == 0.0, np.where(i == 0, 0.0, -np.inf), log_pmf)
    return np.asarray(np.cumsum(np.exp(log_pmf), axis=-1))


def request_counts(u: FloatArray, cdf: FloatArray) -> IntArray:
    """Inverse-CDF Poisson counts: u [...], cdf [..., n_max] -> [...] in 0..n_max.

    The count is the number of CDF entries at or below u (``einsum`` counts them several times
    faster than ``sum`` over a short last axis).
    """
    below = np.asarray(u)[..., None] >= cdf
    return np.asarray(np.einsum("...j->...", below, dtype=np.int64))


def uniforms_per_slot(n_iotds: int, max_requests: int) -> int:
    """How many uniforms :func:`sample_tasks` consumes per environment and slot."""
    return n_iotds * (3 + 4 * max_requests)


def sample_tasks(
    u: FloatArray,
    cdf: FloatArray,
    *,
    image_bits: tuple[float, float],
    text_tokens: tuple[int, int],
    bits_per_text_token: float,
    service_mix: tuple[float, ...],
    deadline_s: tuple[float, float],
    accuracy_min: tuple[float, float],
) -> TaskBatch:
    """Tasks of one slot from uniforms.

    Args:
        u: [B, n] uniforms in [0, 1), n >= uniforms_per_slot(K, R); the leading
            uniforms_per_slot(K, R) of each row are used (the rest may serve other draws).
        cdf: [B, K, R] Poisson CDF table from :func:`poisson_cdf_table` (R = max_requests).
        image_bits: (low, high) image size per request (bit), uniform.
        text_tokens: (low, high) prompt tokens per request, uniform integer.
        bits_per_text_token: upload bits per text token (bit).
        service_mix: probabilities of VQA, captioning, summarisation, translation.
        deadline_s: (low, high) T_max (s), uniform per task.
        accuracy_min: (low, high) A_min, uniform per task.
    """
    b, k, r = cdf.shape
    u = np.ascontiguousarray(u)
    per_iotd = u[:, : k * (3 + 4 * r)].reshape(b, k, 3 + 4 * r)
    n = request_counts(per_iotd[..., 0], cdf)
    # Only the requests that exist (j < n: ~16 % of R = 8 at the default rates) are computed,
    # taken request-major so that bincount adds each task's requests in the order j = 0, 1, ...
    j_grid, first, blocks = _request_offsets(b, k, r, u.shape[1])
    used = np.flatnonzero(j_grid < n.reshape(-1))
    u_img, u_txt, u_svc, u_lvl = u.reshape(-1)[first[used] + blocks]  # [4, used]
    img = image_bits[0] + (image_bits[1] - image_bits[0]) * u_img
    txt = np.floor(text_tokens[0] + (text_tokens[1] - text_tokens[0] + 1) * u_txt)
    txt = np.minimum(txt, text_tokens[1])
    out = _output_tokens(u_svc, u_lvl, txt, service_mix)
    task = used % (b * k)
    per_task = [np.bincount(task, w, minlength=b * k).astype(np.float64, copy=False).reshape(b, k)
                for w in (img + txt * bits_per_text_token, txt, out)]
    return TaskBatch(
        n_requests=n,
        upload_bits=per_task[0],
        text_tokens=per_task[1],
        output_tokens=per_task[2],
        deadline_s=deadline_s[0] + (deadline_s[1] - deadline_s[0]) * per_iotd[..., 1],
        accuracy_min=accuracy_min[0] + (accuracy_min[1] - accuracy_min[0]) * per_iotd[..., 2],
    )


@functools.lru_cache(maxsize=16)
def _request_offsets(b: int, k: int, r: int, row_len: int) -> tuple[IntArray, IntArray, IntArray]:
    """Index tables of :func:`sample_tasks` for uniforms u [b, row_len] (cached per shape).

    Per IoTD the uniforms are: count, deadline, accuracy, then R image, R text, R service and
    R level uniforms. Returns ``j`` [R, 1] request numbers, ``first`` [R * b * k] flat index in
    u of request j's image uniform (request-major: j, then env, then IoTD) and ``blocks``
    [4, 1] offsets of its image, text, service and level uniforms.
    """
    iotd_start = (np.arange(b)[:, None] * row_len + np.arange(k) * (3 + 4 * r)).reshape(-1)
    j = np.arange(r)[:, None]
    first = (iotd_start + 3 + j).reshape(-1)
    return _readonly(j), _readonly(first), _readonly(r * np.arange(4)[:, None])


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a


def _output_tokens(u_svc: FloatArray, u_lvl: FloatArray, txt: FloatArray,
                   service_mix: tuple[float, ...]) -> FloatArray:
    """Output length L of each request from its service type (table in the module doc)."""
    thresholds = list(itertools.accumulate(service_mix))[:-1]  # what np.cumsum gives, exactly
    service = (u_svc >= thresholds[0]).astype(np.int64)  # index into SERVICE_TYPES
    for threshold in thresholds[1:]:
        service += u_svc >= threshold
    fixed = _FIXED_TOKENS[2 * service + (u_lvl >= 0.5)]
    return np.where(service == 3, np.maximum(txt, 1.0), fixed)
