"""Single-agent soft actor-critic cores on a flat observation: discrete and continuous.

:class:`DiscreteSac` acts with a factorised masked categorical over H heads (each head its own
number of choices) and follows discrete SAC with exact expectations over the categoricals
(Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings", Sec. 4). Its critic is
decomposed per head, ``Q(s, a) = sum_h q_h(s)[a_h]`` (the action-branching critic of Tavakoli et
al. 2018, "Action Branching Architectures for Deep RL", summed instead of averaged), so the
expectation of Q under the factorised policy is exact without enumerating the joint actions.
:class:`ContinuousSac` is SAC with a tanh-Gaussian policy (Haarnoja et al. 2018b, "Soft
Actor-Critic Algorithms and Applications", Algorithm 1). Both keep twin critics with Polyak
targets, use the minimum of the twins in their targets, and learn their temperature against a
target entropy.

They are the single agents of the AD-SAC ablations (:mod:`satedge.agents.adsac_variants`) and are
checked on Gymnasium control tasks (``tests/agents/test_sac_cores.py``).

Shapes: ``B`` batch rows, ``D`` observation features, ``H`` heads, ``W`` the widest head (heads
are padded to ``W`` and the padding is masked), ``A`` continuous action dimensions in [-1, 1].

Deliberate choices:
- The decomposed critic cannot represent interactions between heads beyond their dependence on
  the state; with one head it is exact.
- The actor of :class:`DiscreteSac` maximises the element-wise minimum of the twin heads
  ``min_i q_{i,h}(s)[a]`` (as Christodoulou 2019 does per action); the critic target uses the
  minimum of the twins' expected values ``min_i E_pi[Q'_i(s', .)]``, the clipped double-Q value of
  the joint action (a per-element minimum summed over many heads would be far more pessimistic).
- ``ContinuousSac.update`` accepts an ``action_mask``: action components that do not affect the
  outcome in a state are shown to the critic as :data:`INACTIVE_VALUE`, so the critic never has to
  explain variation it cannot see in the reward (AD-SAC-C uses it for masked servers' scores).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from satedge.agents.common.distributions import MaskedCategorical, TanhGaussian
from satedge.agents.common.networks import mlp, soft_update
from satedge.agents.common.sac_losses import (
    continuous_temperature_loss,
    discrete_temperature_loss,
    soft_q_target,
    soft_value_discrete,
    target_entropy_discrete_masked,
)

__all__ = ["INACTIVE_VALUE", "ContinuousSac", "DiscreteSac", "SacConfig"]

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # clamp of the Gaussian's log std (as CleanRL and AdSac)
INACTIVE_VALUE = -1.0
"""What the continuous critic sees in place of an action component marked inactive."""
_MODULES = ("actor", "critics", "critic_targets", "opt_actor", "opt_critic", "opt_alpha")
"""Attributes whose ``state_dict`` a checkpoint holds (plus log alpha and the generator)."""


@dataclass(frozen=True)
class SacConfig:
    """Hyperparameters of both cores (defaults: Haarnoja et al. 2018b, Table 1, unless noted).

    Replay size, batch size and warm-up belong to the driver (the training loop), not the agent.
    """

    hidden: tuple[int, ...] = (256, 256)  # [Haarnoja 2018b] two hidden layers of 256
    actor_lr: float = 3e-4  # [Haarnoja 2018b]
    critic_lr: float = 3e-4  # [Haarnoja 2018b]
    alpha_lr: float = 3e-4  # [Haarnoja 2018b]
    gamma: float = 0.99  # [Haarnoja 2018b]
    tau: float = 0.005  # [Haarnoja 2018b] Polyak rate of the target critics
    init_alpha: float = 1.0  # initial temperature (log alpha = 0, as SB3 and CleanRL)
    target_entropy_scale_d: float = 0.2
    """Discrete target entropy per head, as a fraction of ``log(#feasible choices)``; 0.2 as
    TorchRL's discrete-SAC CartPole example. Christodoulou's 0.98 keeps a 2-action policy near
    uniform (the temperature keeps rising; Xu et al. 2021, "Target Entropy Annealing for Discrete
    SAC"); on CartPole-v1 we measured 0.2 better than 0.3 and 0.5 (tests/agents/test_sac_cores)."""
    target_entropy_scale_c: float = 1.0
    """Continuous target entropy ``-scale * A`` nats ([Haarnoja 2018b]: ``-A``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden={self.hidden} must be one or more positive widths")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma={self.gamma} must lie in [0, 1)")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau={self.tau} must lie in (0, 1]")
        if not 0.0 <= self.target_entropy_scale_d <= 1.0:
            raise ValueError(f"target_entropy_scale_d={self.target_entropy_scale_d} must lie in "
                             "[0, 1]")
        if self.target_entropy_scale_c < 0:
            raise ValueError(f"target_entropy_scale_c={self.target_entropy_scale_c} must be >= 0")


def _split_seed(seed: int) -> tuple[int, int]:
    """Independent (initialisation, sampling) seeds from ``SeedSequence(seed).spawn(2)``."""
    if seed < 0:
        raise ValueError(f"seed={seed} must be non-negative")
    a, b = (int(c.generate_state(1, np.uint64)[0] >> np.uint64(1))
            for c in np.random.SeedSequence(seed).spawn(2))
    return a, b


class _SacBase:
    """What both cores share: seeding, the temperature, the targets and checkpointing."""

    actor: nn.Module
    critics: nn.ModuleList
    critic_targets: nn.ModuleList

    def __init__(self, config: SacConfig, seed: int) -> None:
        self.cfg = config
        self.init_seed, sample_seed = _split_seed(seed)
        self.gen = torch.Generator().manual_seed(sample_seed)
        self.log_alpha = torch.tensor(math.log(config.init_alpha), requires_grad=True)

    def _build(self, actor: nn.Module, critics: nn.ModuleList) -> None:
        self.actor, self.critics = actor, critics
        self.critic_targets = copy.deepcopy(critics)
        self.critic_targets.requires_grad_(False)
        cfg = self.cfg
        self.opt_actor = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
        self.opt_critic = torch.optim.Adam(critics.parameters(), lr=cfg.critic_lr)
        self.opt_alpha = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)

    @property
    def alpha(self) -> Tensor:
        """[] the current temperature (detached)."""
        return self.log_alpha.detach().exp()

    def _step(self, opt: torch.optim.Optimizer, loss: Tensor) -> float:
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, log alpha, the sampling generator and the config (tensors,
        dicts, lists, numbers and strings only: loadable with ``weights_only=True``)."""
        state = {name: getattr(self, name).state_dict() for name in _MODULES}
        cfg = asdict(self.cfg)
        cfg["hidden"] = list(self.cfg.hidden)
        return {**state, "log_alpha": self.log_alpha.detach().clone(),
                "generator": self.gen.get_state(), "config": cfg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a core built with the same layout."""
        for name in _MODULES:
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.gen.set_state(state["generator"])


class DiscreteSac(_SacBase):
    """Discrete SAC over H heads with a per-head decomposed twin critic.

    Args:
        obs_dim: D. head_sizes: the number of choices of every head (H entries, each >= 1).
        config: hyperparameters. seed: derives the initialisation and sampling streams.
    """

    def __init__(self, obs_dim: int, head_sizes: Sequence[int], config: SacConfig,
                 seed: int) -> None:
        if len(head_sizes) < 1 or min(head_sizes) < 1:
            raise ValueError(f"head_sizes={tuple(head_sizes)} must be one or more sizes >= 1")
        super().__init__(config, seed)
        self.head_sizes = tuple(int(n) for n in head_sizes)
        self.n_heads, self.width = len(self.head_sizes), max(self.head_sizes)
        out = self.n_heads * self.width
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG untouched
            torch.manual_seed(self.init_seed)
            actor = mlp(obs_dim, out, config.hidden)
            critics = nn.ModuleList(mlp(obs_dim, out, config.hidden) for _ in range(2))
        self._build(actor, critics)
        self.padding = torch.arange(self.width) < torch.tensor(self.head_sizes)[:, None]  # [H, W]

    def feasible(self, mask: Tensor | None, batch: int) -> Tensor:
        """[B, H, W] bool: the caller's mask (if any) without the padding; a head with no feasible
        choice left is opened to all its real choices (any choice is then equally useless)."""
        pad = self.padding.expand(batch, -1, -1)
        if mask is None:
            return pad
        m = mask.to(torch.bool) & pad
        return m | (pad & ~m.any(dim=-1, keepdim=True))

    def dist(self, obs: Tensor, mask: Tensor | None = None) -> MaskedCategorical:
        """The policy at ``obs`` [B, D] under ``mask`` [B, H, W]."""
        logits = self.actor(obs).view(-1, self.n_heads, self.width)
        return MaskedCategorical(logits, self.feasible(mask, obs.shape[0]))

    def q_heads(self, critic: nn.Module, obs: Tensor) -> Tensor:
        """[B, H, W] per-head values ``q_h(s)[a]`` of one critic."""
        return critic(obs).view(-1, self.n_heads, self.width)

    @torch.no_grad()
    def act(self, obs: Tensor, mask: Tensor | None = None,
            deterministic: bool = False) -> Tensor:
        """int64 [B, H] a choice per head: a sample, or the most probable feasible choice."""
        d = self.dist(obs, mask)
        return d.mode() if deterministic else d.sample(self.gen)

    def update(self, obs: Tensor, actions: Tensor, reward: Tensor, next_obs: Tensor,
               done: Tensor, mask: Tensor | None = None,
               next_mask: Tensor | None = None) -> dict[str, float]:
        """One gradient step of the critics, the actor and the temperature, then the targets.

        Args:
            obs, next_obs: float [B, D]. actions: int [B, H]. reward: [B]. done: [B], 1 only on
            termination (a truncated episode still bootstraps). mask, next_mask: bool
            [B, H, W] feasible choices at ``obs`` and ``next_obs`` (``None``: all).
        Returns:
            ``loss/critic``, ``train/q_mean``, ``loss/actor_discrete``, ``loss/alpha_discrete``,
            ``alpha/discrete``.
        """
        m = self.feasible(mask, obs.shape[0])
        alpha = self.alpha
        with torch.no_grad():  # y = r + gamma (1 - d) min_i E_pi[Q'_i(s', .) - alpha log pi]
            nd = self.dist(next_obs, next_mask)
            v_next = torch.stack([
                soft_value_discrete(nd.probs, nd.log_probs, self.q_heads(c, next_obs), alpha)
                .sum(-1) for c in self.critic_targets]).min(dim=0).values
            y = reward + self.cfg.gamma * (1.0 - done.to(reward.dtype)) * v_next
        index = actions.long().unsqueeze(-1)
        q = torch.stack([self.q_heads(c, obs).gather(-1, index).squeeze(-1).sum(-1)
                         for c in self.critics])  # [2, B] Q_i(s, a) = sum_h q_ih(s)[a_h]
        critic_loss = ((q - y) ** 2).mean(dim=1).sum()
        metrics = {"loss/critic": self._step(self.opt_critic, critic_loss),
                   "train/q_mean": float(q[0].detach().mean())}
        d = self.dist(obs, m)
        with torch.no_grad():
            q_min = torch.stack([self.q_heads(c, obs) for c in self.critics]).min(dim=0).values
        # sum_h sum_a pi_h(a) (alpha log pi_h(a) - q_h(a)): the exact expected policy loss
        actor_loss = -soft_value_discrete(d.probs, d.log_probs, q_min, alpha).sum(-1).mean()
        metrics["loss/actor_discrete"] = self._step(self.opt_actor, actor_loss)
        target = target_entropy_discrete_masked(m, self.cfg.target_entropy_scale_d)
        alpha_loss = discrete_temperature_loss(
            self.log_alpha, d.probs.detach(), d.log_probs.detach(), target)
        metrics["loss/alpha_discrete"] = self._step(self.opt_alpha, alpha_loss)
        metrics["alpha/discrete"] = float(self.alpha)
        soft_update(self.critic_targets, self.critics, self.cfg.tau)
        return metrics


class ContinuousSac(_SacBase):
    """SAC with a tanh-Gaussian policy over A dimensions in (-1, 1) and twin Q critics.

    Args:
        obs_dim: D. action_dim: A. config: hyperparameters. seed: derives the initialisation and
        sampling streams.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: SacConfig, seed: int) -> None:
        if action_dim < 1:
            raise ValueError(f"action_dim={action_dim} must be >= 1")
        super().__init__(config, seed)
        self.action_dim = action_dim
        self.target_entropy = -config.target_entropy_scale_c * action_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            actor = mlp(obs_dim, 2 * action_dim, config.hidden)
            critics = nn.ModuleList(
                mlp(obs_dim + action_dim, 1, config.hidden) for _ in range(2))
        self._build(actor, critics)

    def dist(self, obs: Tensor) -> TanhGaussian:
        """The policy at ``obs`` [B, D]."""
        mean, log_std = self.actor(obs).chunk(2, dim=-1)
        return TanhGaussian(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))

    @staticmethod
    def critic_view(action: Tensor, action_mask: Tensor | None) -> Tensor:
        """[B, A] the action as the critic sees it: inactive components set to
        :data:`INACTIVE_VALUE` (``action_mask`` [B, A] bool, True = active; ``None``: all)."""
        if action_mask is None:
            return action
        return torch.where(action_mask, action, torch.full_like(action, INACTIVE_VALUE))

    def q_values(self, critics: nn.ModuleList, obs: Tensor, action: Tensor,
                 action_mask: Tensor | None = None) -> Tensor:
        """[n_critics, B] ``Q_i(s, a)`` of every critic in ``critics``."""
        x = torch.cat([obs, self.critic_view(action, action_mask)], dim=-1)
        return torch.stack([c(x).squeeze(-1) for c in critics])

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """float32 [B, A] a sample, or ``tanh(mean)``."""
        d = self.dist(obs)
        return d.mode() if deterministic else d.rsample(self.gen)[0]

    def update(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor,
               done: Tensor, action_mask: Tensor | None = None,
               next_action_mask: Tensor | None = None) -> dict[str, float]:
        """One gradient step of the critics, the actor and the temperature, then the targets.

        Args:
            obs, next_obs: float [B, D]. action: [B, A] in [-1, 1]. reward: [B]. done: [B], 1
            only on termination. action_mask, next_action_mask: bool [B, A] active components
            at ``obs`` and ``next_obs`` (``None``: all).
        Returns:
            ``loss/critic``, ``train/q_mean``, ``loss/actor_continuous``,
            ``loss/alpha_continuous``, ``alpha/continuous``.
        """
        alpha = self.alpha
        with torch.no_grad():  # y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
            nd = self.dist(next_obs)
            a_next, u_next = nd.rsample(self.gen)
            q_next = self.q_values(self.critic_targets, next_obs, a_next,
                                   next_action_mask).min(dim=0).values
            y = soft_q_target(reward, done, self.cfg.gamma, q_next,
                              nd.log_prob(pre_tanh=u_next), alpha)
        q = self.q_values(self.critics, obs, action, action_mask)
        critic_loss = ((q - y) ** 2).mean(dim=1).sum()
        metrics = {"loss/critic": self._step(self.opt_critic, critic_loss),
                   "train/q_mean": float(q[0].detach().mean())}
        d = self.dist(obs)
        a, u = d.rsample(self.gen)
        log_prob = d.log_prob(pre_tanh=u)
        self.critics.requires_grad_(False)  # the actor's loss trains the actor only
        q_pi = self.q_values(self.critics, obs, a, action_mask).min(dim=0).values
        self.critics.requires_grad_(True)
        metrics["loss/actor_continuous"] = self._step(
            self.opt_actor, (alpha * log_prob - q_pi).mean())
        alpha_loss = continuous_temperature_loss(self.log_alpha, log_prob.detach(),
                                                 self.target_entropy)
        metrics["loss/alpha_continuous"] = self._step(self.opt_alpha, alpha_loss)
        metrics["alpha/continuous"] = float(self.alpha)
        soft_update(self.critic_targets, self.critics, self.cfg.tau)
        return metrics
