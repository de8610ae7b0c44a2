"""Action distributions of the hybrid offloading action: a masked categorical per IoTD (server
choice), a tanh-squashed diagonal Gaussian (transmit powers and UAV moves), and their product.

Shapes: ``K`` IoTDs, ``S = M + N`` servers, ``A`` continuous dimensions, ``...`` any batch shape.
Every method is differentiable where it makes sense; samplers take an optional
``torch.Generator`` so that action sampling is seedable without touching the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from satedge.agents.common.seedbatch import Generator, seeded_rand, seeded_randn

__all__ = ["HybridDistribution", "HybridLogProb", "MaskedCategorical", "TanhGaussian",
           "gumbel_noise", "masked_logit"]

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def masked_logit(dtype: torch.dtype) -> float:
    """The finite logit given to masked-out choices: ``-1e9`` (or a quarter of the dtype's most
    negative value for half precision). ``exp(-1e9 - logsumexp) == 0`` exactly, so masked choices
    get probability 0 while every log-probability stays finite (no ``0 * inf = NaN``)."""
    return max(-1e9, torch.finfo(dtype).min / 4)


def gumbel_noise(shape: Sequence[int], generator: Generator = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """Standard Gumbel draws ``G = -log(-log U)``, ``U ~ U(0, 1)``: ``argmax(log p + G)`` samples
    the categorical ``p`` (the Gumbel-max trick)."""
    u = seeded_rand(shape, generator, dtype=dtype, device=device)
    return -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))


class MaskedCategorical:
    """K independent categoricals over S servers with an action mask.

    ``p_ks = mask_ks exp(z_ks) / sum_j mask_kj exp(z_kj)``, implemented by replacing masked logits
    with :func:`masked_logit` (as in Huang & Ontanon 2022, "A closer look at invalid action
    masking in policy gradient algorithms"), so gradients never reach masked logits. A row whose
    mask is all False (no feasible server: the task fails whatever is chosen) is treated as
    unmasked, matching the environment's contract.

    Args:
        logits: [..., K, S] unnormalised log-probabilities (``-inf`` is allowed and clamped).
        mask: [..., K, S] bool (broadcastable), True = allowed; ``None`` = everything allowed.
    """

    def __init__(self, logits: Tensor, mask: Tensor | None = None) -> None:
        if logits.dim() < 2:
            raise ValueError(f"logits must be [..., K, S]; got shape {tuple(logits.shape)}")
        fill = masked_logit(logits.dtype)
        if mask is not None:
            if mask.dtype != torch.bool:
                raise TypeError(f"mask must be a bool tensor; got {mask.dtype}")
            mask = torch.broadcast_to(mask.to(logits.device), logits.shape)
            mask = mask | ~mask.any(dim=-1, keepdim=True)
            logits = torch.where(mask, logits, torch.full_like(logits, fill))
        self.mask = mask
        self.logits = logits.clamp_min(fill)
        self.log_probs = self.logits - torch.logsumexp(self.logits, dim=-1, keepdim=True)

    @property
    def probs(self) -> Tensor:
        """[..., K, S] probabilities; exactly 0 where masked."""
        return self.log_probs.exp()

    @property
    def batch_shape(self) -> torch.Size:
        """``[..., K]``."""
        return self.logits.shape[:-1]

    @torch.no_grad()
    def sample(self, generator: Generator = None) -> Tensor:
        """int64 [..., K] draws by the Gumbel-max trick, ``argmax_s (log p_s + G_s)`` with
        ``G = -log(-log U)``, ``U ~ U(0, 1)`` (Gumbel 1954; Maddison et al. 2014, Sec. 2)."""
        gumbel = gumbel_noise(self.logits.shape, generator, self.logits.dtype,
                              self.logits.device)
        return torch.argmax(self.log_probs + gumbel, dim=-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        """[...', K] ``log p_k(a_k)`` per IoTD. ``actions`` is integer [...', K] where ``...'``
        broadcasts against the batch shape (e.g. ``[N, B, K]`` for N sampled actions)."""
        shape = torch.broadcast_shapes(actions.shape, self.batch_shape)
        log_probs = self.log_probs.expand(*shape, self.logits.shape[-1])
        index = actions.long().expand(shape).unsqueeze(-1)
        return log_probs.gather(-1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        """[..., K] ``H_k = -sum_s p_ks log p_ks``; masked terms are ``0 * finite = 0`` exactly."""
        return -(self.probs * self.log_probs).sum(dim=-1)

    def mode(self) -> Tensor:
        """int64 [..., K] most probable allowed server per IoTD."""
        return torch.argmax(self.logits, dim=-1)

    def kl(self, other: MaskedCategorical) -> Tensor:
        """[..., K] ``KL(self || other) = sum_s p_s (log p_s - log q_s)`` per IoTD.

        Finite even where ``other`` masks a choice that ``self`` allows (then it is about
        ``p_s * 1e9``: a very large penalty rather than ``inf``)."""
        return (self.probs * (self.log_probs - other.log_probs)).sum(dim=-1)


class TanhGaussian:
    """A diagonal Gaussian over ``u`` squashed by ``a = tanh(u)`` into (-1, 1)^A.

    Density by change of variables (Haarnoja et al. 2018, "Soft Actor-Critic", App. C, Eq. 21):
    ``log pi(a) = sum_i [log N(u_i; mu_i, sigma_i^2) - log(1 - tanh(u_i)^2)]`` with the stable form
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` (as in the SpinningUp and CleanRL SAC).

    Args:
        mean: [..., A] mean ``mu`` of the pre-tanh Gaussian.
        log_std: [..., A] ``log sigma`` (broadcast against ``mean``); clamp it in the network.
    """

    def __init__(self, mean: Tensor, log_std: Tensor) -> None:
        self.mean, self.log_std = torch.broadcast_tensors(mean, log_std)
        self.std = self.log_std.exp()

    def rsample(self, generator: Generator = None) -> tuple[Tensor, Tensor]:
        """Reparameterised draw ``u = mu + sigma eps``, ``eps ~ N(0, I)`` from ``generator``.

        Returns:
            ``(action, pre_tanh)``, both [..., A]; ``action = tanh(pre_tanh)``.
        """
        eps = seeded_randn(self.mean.shape, generator, dtype=self.mean.dtype,
                           device=self.mean.device)
        u = self.mean + self.std * eps
        return torch.tanh(u), u

    def log_prob(self, action: Tensor | None = None, pre_tanh: Tensor | None = None) -> Tensor:
        """[...] log-density of the squashed action, summed over A.

        Pass ``pre_tanh`` whenever it is known (exact; ``action`` is then ignored). From
        ``action`` alone, ``u = atanh(a)`` with ``a`` clipped to ``+-(1 - eps_float)``, which is
        inexact where ``|u|`` is so large that ``tanh(u)`` rounds to 1.
        """
        if pre_tanh is None:
            if action is None:
                raise ValueError("log_prob needs action or pre_tanh")
            bound = 1.0 - torch.finfo(action.dtype).eps
            pre_tanh = torch.atanh(action.clamp(-bound, bound))
        u = pre_tanh
        z = (u - self.mean) / self.std
        log_normal = -0.5 * z * z - self.log_std - _HALF_LOG_2PI
        log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))
        return (log_normal - log_det).sum(dim=-1)

    def mode(self) -> Tensor:
        """[..., A] ``tanh(mu)``: the deterministic (evaluation) action."""
        return torch.tanh(self.mean)

    def gaussian_entropy(self) -> Tensor:
        """[...] closed-form entropy of the pre-tanh Gaussian, ``sum_i (1/2 + log(2 pi)/2 +
        log sigma_i)``. The squashed entropy is smaller by ``E[sum_i log(1 - tanh(u_i)^2)]``."""
        return (0.5 + _HALF_LOG_2PI + self.log_std).sum(dim=-1)

    def kl(self, other: TanhGaussian) -> Tensor:
        """[...] ``KL(self || other)`` of the pre-tanh Gaussians, summed over A:
        ``log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2``. KL divergence is invariant under
        a shared bijection, so this is also the KL between the squashed distributions."""
        var_ratio = (self.std / other.std) ** 2
        mean_term = ((self.mean - other.mean) / other.std) ** 2
        return (other.log_std - self.log_std + 0.5 * (var_ratio + mean_term) - 0.5).sum(dim=-1)

    def kl_mean(self, other: TanhGaussian) -> Tensor:
        """[...] decoupled mean KL ``KL(N(m1, s1) || N(m2, s1)) = sum (m1 - m2)^2 / (2 s1^2)``:
        ``other``'s mean with ``self``'s std: the mean part ``C_mu`` of the decoupled KL constraint
        of Abdolmaleki et al. 2018 ("Maximum a posteriori policy optimisation", Gaussian M-step;
        acme's ``kl_divergence(target, fixed_stddev_distribution)``). Call it as
        ``old.kl_mean(online)``: gradients then reach only the online mean."""
        return (((self.mean - other.mean) / self.std) ** 2).sum(dim=-1) * 0.5

    def kl_std(self, other: TanhGaussian) -> Tensor:
        """[...] decoupled covariance KL ``KL(N(m1, s1) || N(m1, s2)) = sum log(s2/s1) + s1^2 /
        (2 s2^2) - 1/2``: ``other``'s std with ``self``'s mean (ibid., the covariance part
        ``C_Sigma``). Call it as ``old.kl_std(online)``: gradients reach only the online std.
        If only the stds differ it equals :meth:`kl`; if only the means differ, :meth:`kl_mean`
        does; in general ``kl_mean + kl_std != kl``."""
        var_ratio = (self.std / other.std) ** 2
        return (other.log_std - self.log_std + 0.5 * var_ratio - 0.5).sum(dim=-1)


class HybridLogProb(NamedTuple):
    """Log-probabilities (or entropies) of a hybrid action, each [...]."""

    discrete: Tensor
    """summed over the K IoTDs"""
    continuous: Tensor
    """summed over the A continuous dimensions"""
    joint: Tensor
    """``discrete + continuous`` (the two factors are independent given the state)"""


def _terms(discrete: Tensor, continuous: Tensor) -> HybridLogProb:
    return HybridLogProb(discrete, continuous, discrete + continuous)


class HybridDistribution:
    """The product policy ``pi(a_d, a_c | s) = pi_d(a_d | s) pi_c(a_c | s)`` (Neunert et al. 2019,
    "Continuous-discrete reinforcement learning for hybrid control in robotics", Sec. 3)."""

    def __init__(self, categorical: MaskedCategorical, gaussian: TanhGaussian) -> None:
        if categorical.batch_shape[:-1] != gaussian.mean.shape[:-1]:
            raise ValueError(f"batch shapes differ: categorical {tuple(categorical.batch_shape)} "
                             f"(..., K) vs gaussian {tuple(gaussian.mean.shape)} (..., A)")
        self.categorical = categorical
        self.gaussian = gaussian

    def sample(self, generator: Generator = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(a_d [..., K] int64, a_c [..., A], pre_tanh [..., A])``; ``a_c`` is reparameterised."""
        a_d = self.categorical.sample(generator)
        a_c, u = self.gaussian.rsample(generator)
        return a_d, a_c, u

    def mode(self) -> tuple[Tensor, Tensor]:
        """``(argmax server per IoTD, tanh(mean))``: the deterministic evaluation action."""
        return self.categorical.mode(), self.gaussian.mode()

    def log_prob(self, a_d: Tensor, a_c: Tensor | None = None,
                 pre_tanh: Tensor | None = None) -> HybridLogProb:
        """Log-probability of a hybrid action; see :meth:`TanhGaussian.log_prob` for
        ``a_c`` / ``pre_tanh``."""
        return _terms(self.categorical.log_prob(a_d).sum(dim=-1),
                      self.gaussian.log_prob(a_c, pre_tanh))

    def entropy(self) -> HybridLogProb:
        """Closed-form entropies: ``discrete`` exact (summed over K); ``continuous`` is the
        entropy of the **pre-tanh** Gaussian, an upper bound on the squashed one (use
        :meth:`entropy_estimate` for the latter)."""
        return _terms(self.categorical.entropy().sum(dim=-1), self.gaussian.gaussian_entropy())

    def entropy_estimate(self, u: Tensor) -> HybridLogProb:
        """Entropies with the squashed continuous part estimated by ``-log pi_c(tanh u)`` from a
        sample ``u`` (pre-tanh, as returned by :meth:`sample`): unbiased over ``u ~ pi_c``, as in
        SAC's entropy term. The discrete part is exact."""
        return _terms(self.categorical.entropy().sum(dim=-1),
                      -self.gaussian.log_prob(pre_tanh=u))
