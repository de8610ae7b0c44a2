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

from dataclasses import dataclass

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

    @property
    def active(self) -> NDArray[np.bool_]:
        """[B, K] True where the IoTD has a task this slot."""
        return self.n_requests > 0


def poisson_cdf_table(rate: FloatArray, max_requests: int) -> FloatArray:
    """CDF of Poisson(rate) at 0..max_requests-1, shape [..., max_requests].

    ``P(n <= j) = sum_{i<=j} e^{-lambda} lambda^i / i!``, computed in log space. The count drawn by
    :func:`request_counts` is the number of CDF entries below the uniform, so the mass above
    ``max_requests - 1`` lands on ``max_requests`` (truncation).
    """
    i = np.arange(max_requests, dtype=np.float64)
    lam = np.asarray(rate, dtype=np.float64)[..., None]
    with np.errstate(divide="ignore"):
        log_pmf = -lam + i * np.log(lam) - gammaln(i + 1.0)
    log_pmf = np.where(lam == 0.0, np.where(i == 0, 0.0, -np.inf), log_pmf)
    return np.asarray(np.cumsum(np.exp(log_pmf), axis=-1))


def request_counts(u: FloatArray, cdf: FloatArray) -> IntArray:
    """Inverse-CDF Poisson counts: u [...], cdf [..., n_max] -> [...] in 0..n_max."""
    return np.asarray(np.sum(u[..., None] >= cdf, axis=-1), dtype=np.int64)


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
        u: [B, uniforms_per_slot(K, R)] uniforms in [0, 1).
        cdf: [B, K, R] Poisson CDF table from :func:`poisson_cdf_table` (R = max_requests).
        image_bits: (low, high) image size per request (bit), uniform.
        text_tokens: (low, high) prompt tokens per request, uniform integer.
        bits_per_text_token: upload bits per text token (bit).
        service_mix: probabilities of VQA, captioning, summarisation, translation.
        deadline_s: (low, high) T_max (s), uniform per task.
        accuracy_min: (low, high) A_min, uniform per task.
    """
    b, k, r = cdf.shape
    u_count, u_deadline, u_acc, u_req = np.split(u.reshape(b, k, -1), [1, 2, 3], axis=-1)
    n = request_counts(u_count[..., 0], cdf)
    u_img, u_txt, u_svc, u_lvl = np.split(u_req, 4, axis=-1)
    used = np.arange(r) < n[..., None]  # [B, K, R] request j exists
    img = image_bits[0] + (image_bits[1] - image_bits[0]) * u_img
    txt = np.floor(text_tokens[0] + (text_tokens[1] - text_tokens[0] + 1) * u_txt)
    txt = np.minimum(txt, text_tokens[1])
    service = np.sum(u_svc[..., None] >= np.cumsum(service_mix)[:-1], axis=-1)
    caption = np.where(u_lvl < 0.5, CAPTION_TOKENS[0], CAPTION_TOKENS[1])
    out = np.choose(service, (np.full_like(txt, VQA_TOKENS), caption,
                              np.full_like(txt, SUMMARY_TOKENS), np.maximum(txt, 1.0)))
    return TaskBatch(
        n_requests=n,
        upload_bits=np.sum(np.where(used, img + txt * bits_per_text_token, 0.0), axis=-1),
        text_tokens=np.sum(np.where(used, txt, 0.0), axis=-1),
        output_tokens=np.sum(np.where(used, out, 0.0), axis=-1),
        deadline_s=deadline_s[0] + (deadline_s[1] - deadline_s[0]) * u_deadline[..., 0],
        accuracy_min=accuracy_min[0] + (accuracy_min[1] - accuracy_min[0]) * u_acc[..., 0],
    )
