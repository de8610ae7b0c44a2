"""PPO on the discretised action (SPEC section 9, baseline "PPO").

The hybrid action becomes ``2K + M`` categorical heads (:class:`DiscreteActionSpec`): a server
per IoTD (masked by feasibility), a transmit-power level per IoTD, and a move per UAV (stay or a
full-speed compass step). The policy is one network giving all heads' logits; the joint
log-probability is the sum over heads, so the PPO ratio is the ratio of the joint action's
probabilities. Clipped surrogate (Schulman et al. 2017, Eq. 7), GAE (computed by the on-policy
loop), clipped value loss, per-minibatch advantage normalisation, entropy bonus, global gradient
clipping and orthogonal initialisation, as in SB3's ``PPO`` and CleanRL's ``ppo.py``.

Hyperparameters (:class:`PpoConfig`) with their source; the loop settings (``n_steps``,
``epochs``, ``minibatch_size``, ``gamma``, ``gae_lambda``) live in
:class:`~satedge.agents.common.onpolicy.OnPolicyConfig`. Tuning: ``docs/baselines.md``.

Design choices:
- A server head whose IoTD has no feasible server (the task is dropped whatever is chosen) allows
  every real server, never the padding columns beyond S that the shared head width adds.
- Separate actor and critic networks (SB3's default for on-policy MLP policies), one Adam
  optimiser over both, loss ``L_clip + vf_coef L_V - ent_coef H``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from satedge.agents.common.buffers import RolloutBatch, RolloutBuffer
from satedge.agents.common.discretise import DiscreteActionSpec
from satedge.agents.common.distributions import MaskedCategorical
from satedge.agents.common.ppo_losses import (
    approx_kl,
    clipped_surrogate,
    clipped_value_loss,
    normalise_advantages,
    orthogonal_mlp,
)
from satedge.agents.common.protocol import AgentAction

__all__ = ["Ppo", "PpoConfig", "check_ppo_config", "n_uavs_of"]


@dataclass(frozen=True)
class PpoConfig:
    """PPO hyperparameters (defaults: SB3 / CleanRL unless marked; see docs/baselines.md)."""

    hidden: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy, CleanRL
    lr: float = 1e-3  # tuned: 1e-3 of {3e-4, 1e-3, 3e-3} (SB3, CleanRL: 3e-4)
    adam_eps: float = 1e-5  # CleanRL (SB3: 1e-8)
    clip_range: float = 0.2  # SB3, CleanRL
    clip_range_vf: float | None = 0.2  # CleanRL clip_vloss with clip_coef (SB3: None)
    ent_coef: float = 0.0  # SB3 (CleanRL: 0.01 for Atari; our entropy sums 2K + M heads)
    vf_coef: float = 0.5  # SB3, CleanRL
    max_grad_norm: float = 0.5  # SB3, CleanRL
    normalize_advantage: bool = True  # SB3, CleanRL
    power_levels: int = 5  # ours: the discretisation shared with D3QN and AD-SAC-D
    uav_directions: int = 9  # ours: stay + 8 compass moves

    def __post_init__(self) -> None:
        check_ppo_config(self)


def check_ppo_config(cfg: Any) -> None:
    """Range checks shared by :class:`PpoConfig` and the Hybrid-PPO config."""
    for name in ("lr", "adam_eps", "max_grad_norm"):
        if not getattr(cfg, name) > 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be > 0")
    if not 0 < cfg.clip_range < 1:
        raise ValueError(f"clip_range={cfg.clip_range} must lie in (0, 1)")
    if cfg.clip_range_vf is not None and not cfg.clip_range_vf > 0:
        raise ValueError(f"clip_range_vf={cfg.clip_range_vf} must be > 0 (or None: no clip)")
    for name in ("vf_coef", *(f for f in ("ent_coef", "ent_coef_d", "ent_coef_c")
                              if hasattr(cfg, f))):
        if not getattr(cfg, name) >= 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be >= 0")
    if not cfg.hidden or any(h < 1 for h in cfg.hidden):
        raise ValueError(f"hidden={tuple(cfg.hidden)} must be non-empty positive widths")


def n_uavs_of(n_iotds: int, cont_dim: int) -> int:
    """M from the continuous width ``cont_dim = K + 2M`` the registry passes."""
    m, odd = divmod(cont_dim - n_iotds, 2)
    if odd or m < 1:
        raise ValueError(f"cont_dim={cont_dim} must be K + 2M with K={n_iotds}, M >= 1")
    return m


class Ppo:
    """PPO over the ``2K + M`` categorical heads of the discretised action.

    Args:
        obs_dim: observation length D; n_iotds: K; n_servers: S = M + N;
        cont_dim: K + 2M (the environment's continuous width, gives M);
        config: hyperparameters; seed: seeds initialisation and action sampling.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: PpoConfig, seed: int) -> None:
        self.cfg, self.obs_dim = config, obs_dim
        self.spec = DiscreteActionSpec(n_iotds, n_uavs_of(n_iotds, cont_dim), n_servers,
                                       config.power_levels, config.uav_directions)
        self.gen = torch.Generator().manual_seed(seed)
        n_logits = self.spec.n_heads * self.spec.max_head_size
        self.actor = orthogonal_mlp(obs_dim, n_logits, config.hidden, 0.01, self.gen)
        self.critic = orthogonal_mlp(obs_dim, 1, config.hidden, 1.0, self.gen)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=config.lr, eps=config.adam_eps)

    # -- policy ---------------------------------------------------------------------------
    def head_mask(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """[B, 2K + M, max head size] allowed choices of every head from the server mask
        [B, K, S]; an all-False server row becomes all-True over the S real servers."""
        server = mask | ~mask.any(axis=-1, keepdims=True)
        return self.spec.head_mask(server)

    def _dist(self, obs: Tensor, head_mask: Tensor) -> MaskedCategorical:
        logits = self.actor(obs).view(-1, self.spec.n_heads, self.spec.max_head_size)
        return MaskedCategorical(logits, head_mask)

    def _action(self, heads: NDArray[np.int64]) -> AgentAction:
        server, power, uav = self.spec.split(heads)
        return AgentAction(server.astype(np.int64), self.spec.to_continuous(power, uav))

    @torch.no_grad()
    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        """Joint actions for obs [B, D] and server mask [B, K, S]: the most probable choice of
        every head if ``deterministic``, else a sample from the agent's generator."""
        dist = self._dist(torch.as_tensor(obs), torch.as_tensor(self.head_mask(mask)))
        heads = dist.mode() if deterministic else dist.sample(self.gen)
        return self._action(heads.numpy())

    @torch.no_grad()
    def explore(self, obs: NDArray[np.float32],
                mask: NDArray[np.bool_]) -> tuple[AgentAction, dict[str, NDArray[Any]]]:
        """A sampled action and its rollout record: head choices [B, 2K + M], head mask, the
        log-probability of the **sampled** joint action [B] and ``V(obs)`` [B]."""
        hm = self.head_mask(mask)
        o = torch.as_tensor(obs)
        dist = self._dist(o, torch.as_tensor(hm))
        heads = dist.sample(self.gen)
        b = obs.shape[0]
        empty = np.zeros((b, 0), np.float32)
        return self._action(heads.numpy()), {
            "obs": obs, "mask": hm, "action_d": heads.numpy(), "action_c": empty,
            "pre_tanh": empty, "log_prob_d": dist.log_prob(heads).sum(-1).numpy(),
            "log_prob_c": np.zeros(b, np.float32),
            "value": self.critic(o).squeeze(-1).numpy()}

    @torch.no_grad()
    def value(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """[B] ``V(obs)``."""
        return self.critic(torch.as_tensor(obs)).squeeze(-1).numpy()

    def rollout_buffer(self, n_steps: int, n_envs: int) -> RolloutBuffer:
        """Rollout storage with the heads as its "IoTDs" and no continuous part."""
        return RolloutBuffer(n_steps, n_envs, self.obs_dim, self.spec.n_heads,
                             self.spec.max_head_size, 0)

    # -- update ---------------------------------------------------------------------------
    def update(self, b: RolloutBatch) -> dict[str, float]:
        """One clipped-PPO gradient step on a minibatch."""
        cfg = self.cfg
        dist = self._dist(b.obs, b.mask)
        log_ratio = dist.log_prob(b.action_d).sum(-1) - b.log_prob_d
        adv = normalise_advantages(b.advantage) if cfg.normalize_advantage else b.advantage
        policy_loss, clip_frac = clipped_surrogate(log_ratio, adv, cfg.clip_range)
        value_loss = clipped_value_loss(self.critic(b.obs).squeeze(-1), b.value, b.returns,
                                        cfg.clip_range_vf)
        entropy = dist.entropy().sum(-1).mean()
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.opt.step()
        return {"loss/policy": float(policy_loss.detach()),
                "loss/value": float(value_loss.detach()),
                "ppo/entropy": float(entropy.detach()),
                "ppo/approx_kl": float(approx_kl(log_ratio)),
                "ppo/clip_fraction": float(clip_frac)}

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser and the sampling generator (tensors and plain containers)."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "opt": self.opt.state_dict(), "generator": self.gen.get_state(),
                "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["generator"])
