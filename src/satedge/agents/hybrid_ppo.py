"""Hybrid-PPO: parameterised PPO on the hybrid action (Fan et al. 2019, "Hybrid actor-critic
reinforcement learning in parameterized action space", H-PPO; SPEC section 9 baseline).

Parallel sub-actors and one critic. The **discrete actor** gives a masked categorical per IoTD over
the S servers. The **continuous actor** gives, as in a parameterised action space, the parameters
of every discrete choice: a transmit power for every (IoTD, server) pair, plus the M UAV moves,
``K S + 2M`` dimensions in all. The environment executes, for IoTD k, only the power of the
chosen server ``a_k``, and every UAV move.

Losses on one shared GAE advantage ``A`` (normalised per minibatch):
``L = L_clip(r_d, A) + L_clip(r_c, A) + vf_coef L_V - ent_coef_d H_d - ent_coef_c H_c`` with
separate ratios ``r_d = pi_d(a_d|s) / pi_d_old(a_d|s)`` (product over IoTDs) and
``r_c = pi_c(x|s) / pi_c_old(x|s)`` where ``x`` is the **executed** parameters only: the chosen
server's power of every IoTD that has a feasible server (a dropped task uses no power) and the
UAV moves. The rollout stores the log-probabilities of the **sampled** actions (some public
versions store the maximum probability instead, which makes the ratio wrong).

Bounds: the Gaussian is tanh-squashed into (-1, 1) (:class:`TanhGaussian`), with the exact
log-density correction ``-log(1 - tanh(u)^2)``; the rollout keeps the pre-tanh sample ``u``, so the
new log-density is evaluated at exactly the executed action. The correction is the same under old
and new policies and cancels in the ratio; it matters only for the stored log-probabilities'
absolute values. Unlike clipping at the environment, the executed action is the one whose density
enters the ratio, and the deterministic action ``tanh(mean)`` is always inside the box.
The continuous entropy bonus is the closed-form entropy of the pre-tanh Gaussian over the executed
dimensions. ``log_std`` is a state-independent parameter per dimension (SB3, CleanRL).

Hyperparameters (:class:`HybridPpoConfig`) share PPO's sources; see docs/baselines.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F

from satedge.agents.common.buffers import RolloutBatch, RolloutBuffer
from satedge.agents.common.distributions import MaskedCategorical, TanhGaussian
from satedge.agents.common.ppo_losses import (
    approx_kl,
    clipped_surrogate,
    clipped_value_loss,
    normalise_advantages,
    orthogonal_mlp,
)
from satedge.agents.common.protocol import AgentAction
from satedge.agents.ppo import check_ppo_config, n_uavs_of

__all__ = ["HybridPpo", "HybridPpoConfig", "executed_parameters"]

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class HybridPpoConfig:
    """Hybrid-PPO hyperparameters (defaults: SB3 / CleanRL unless marked)."""

    hidden: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy, CleanRL
    lr: float = 1e-3  # tuned with PPO's loop settings: 1e-3 of {3e-4, 1e-3} (SB3: 3e-4)
    adam_eps: float = 1e-5  # CleanRL
    clip_range: float = 0.2  # SB3, CleanRL; the same epsilon for both ratios (Fan et al.)
    clip_range_vf: float | None = 0.2  # CleanRL clip_vloss (SB3: None)
    ent_coef_d: float = 0.0  # SB3
    ent_coef_c: float = 0.0  # SB3
    vf_coef: float = 0.5  # SB3, CleanRL
    max_grad_norm: float = 0.5  # SB3, CleanRL
    normalize_advantage: bool = True  # SB3, CleanRL
    log_std_init: float = 0.0  # SB3

    def __post_init__(self) -> None:
        check_ppo_config(self)
        if not LOG_STD_MIN <= self.log_std_init <= LOG_STD_MAX:
            raise ValueError(f"log_std_init={self.log_std_init} must lie in "
                             f"[{LOG_STD_MIN}, {LOG_STD_MAX}]")


def executed_parameters(action_d: Tensor, mask: Tensor, n_uav_dims: int) -> Tensor:
    """[B, K S + 2M] float, 1 where the environment executes a continuous parameter: the power of
    the chosen server ``action_d`` [B, K] of every IoTD whose server mask [B, K, S] row has a
    feasible server, and all ``n_uav_dims`` UAV move coordinates."""
    s = mask.shape[-1]
    chosen = F.one_hot(action_d, s).to(torch.float32) * mask.any(-1, keepdim=True)
    ones = torch.ones(action_d.shape[0], n_uav_dims)
    return torch.cat([chosen.flatten(1), ones], dim=-1)


class HybridPpo:
    """Parameterised PPO: a discrete actor, a continuous actor over every choice's parameters,
    one critic.

    Args:
        obs_dim: observation length D; n_iotds: K; n_servers: S; cont_dim: K + 2M;
        config: hyperparameters; seed: seeds initialisation and action sampling.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: HybridPpoConfig, seed: int) -> None:
        self.cfg, self.obs_dim = config, obs_dim
        self.k, self.s = n_iotds, n_servers
        self.uav_dims = 2 * n_uavs_of(n_iotds, cont_dim)
        self.param_dim = n_iotds * n_servers + self.uav_dims
        self.gen = torch.Generator().manual_seed(seed)
        h = config.hidden
        self.actor_d = orthogonal_mlp(obs_dim, n_iotds * n_servers, h, 0.01, self.gen)
        self.actor_c = orthogonal_mlp(obs_dim, self.param_dim, h, 0.01, self.gen)
        self.log_std = nn.Parameter(torch.full((self.param_dim,), config.log_std_init))
        self.critic = orthogonal_mlp(obs_dim, 1, h, 1.0, self.gen)
        self.params = [*self.actor_d.parameters(), *self.actor_c.parameters(), self.log_std,
                       *self.critic.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=config.lr, eps=config.adam_eps)

    # -- policy ---------------------------------------------------------------------------
    def _dists(self, obs: Tensor, mask: Tensor) -> tuple[MaskedCategorical, TanhGaussian]:
        logits = self.actor_d(obs).view(-1, self.k, self.s)
        log_std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        return MaskedCategorical(logits, mask), TanhGaussian(self.actor_c(obs), log_std)

    def _log_prob_c(self, dc: TanhGaussian, pre_tanh: Tensor, executed: Tensor) -> Tensor:
        """[B] squashed log-density of the executed parameters only."""
        per_dim = TanhGaussian(dc.mean.unsqueeze(-1), dc.log_std.unsqueeze(-1))
        return (per_dim.log_prob(pre_tanh=pre_tanh.unsqueeze(-1)) * executed).sum(-1)

    def _action(self, a_d: Tensor, params: Tensor) -> AgentAction:
        """The environment's action: the chosen server's power of every IoTD, the UAV moves."""
        power = params[:, : self.k * self.s].view(-1, self.k, self.s)
        power = power.gather(-1, a_d.unsqueeze(-1)).squeeze(-1)
        cont = torch.cat([power, params[:, self.k * self.s:]], dim=-1)
        return AgentAction(a_d.numpy().astype(np.int64), cont.numpy().astype(np.float32))

    @torch.no_grad()
    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        """Actions for obs [B, D] and server mask [B, K, S]: the most probable server and
        ``tanh(mean)`` if ``deterministic``, else a sample from the agent's generator."""
        dd, dc = self._dists(torch.as_tensor(obs), torch.as_tensor(mask))
        if deterministic:
            return self._action(dd.mode(), dc.mode())
        a_d = dd.sample(self.gen)
        return self._action(a_d, dc.rsample(self.gen)[0])

    @torch.no_grad()
    def explore(self, obs: NDArray[np.float32],
                mask: NDArray[np.bool_]) -> tuple[AgentAction, dict[str, NDArray[Any]]]:
        """A sampled action and its rollout record: servers [B, K], all parameters [B, KS + 2M]
        (squashed and pre-tanh), the log-probabilities of the **sampled** servers and executed
        parameters [B], and ``V(obs)`` [B]."""
        o, m = torch.as_tensor(obs), torch.as_tensor(mask)
        dd, dc = self._dists(o, m)
        a_d = dd.sample(self.gen)
        a_c, u = dc.rsample(self.gen)
        logp_c = self._log_prob_c(dc, u, executed_parameters(a_d, m, self.uav_dims))
        return self._action(a_d, a_c), {
            "obs": obs, "mask": mask, "action_d": a_d.numpy(), "action_c": a_c.numpy(),
            "pre_tanh": u.numpy(), "log_prob_d": dd.log_prob(a_d).sum(-1).numpy(),
            "log_prob_c": logp_c.numpy(), "value": self.critic(o).squeeze(-1).numpy()}

    @torch.no_grad()
    def value(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """[B] ``V(obs)``."""
        return self.critic(torch.as_tensor(obs)).squeeze(-1).numpy()

    def rollout_buffer(self, n_steps: int, n_envs: int) -> RolloutBuffer:
        """Rollout storage: K server heads over S servers, ``K S + 2M`` parameters."""
        return RolloutBuffer(n_steps, n_envs, self.obs_dim, self.k, self.s, self.param_dim)

    # -- update ---------------------------------------------------------------------------
    def update(self, b: RolloutBatch) -> dict[str, float]:
        """One gradient step: separate clipped losses for the two ratios on one advantage."""
        cfg = self.cfg
        dd, dc = self._dists(b.obs, b.mask)
        executed = executed_parameters(b.action_d, b.mask, self.uav_dims)
        log_ratio_d = dd.log_prob(b.action_d).sum(-1) - b.log_prob_d
        log_ratio_c = self._log_prob_c(dc, b.pre_tanh, executed) - b.log_prob_c
        adv = normalise_advantages(b.advantage) if cfg.normalize_advantage else b.advantage
        loss_d, frac_d = clipped_surrogate(log_ratio_d, adv, cfg.clip_range)
        loss_c, frac_c = clipped_surrogate(log_ratio_c, adv, cfg.clip_range)
        value_loss = clipped_value_loss(self.critic(b.obs).squeeze(-1), b.value, b.returns,
                                        cfg.clip_range_vf)
        ent_d = dd.entropy().sum(-1).mean()
        ent_c = (TanhGaussian(dc.mean.unsqueeze(-1), dc.log_std.unsqueeze(-1))
                 .gaussian_entropy() * executed).sum(-1).mean()
        loss = (loss_d + loss_c + cfg.vf_coef * value_loss - cfg.ent_coef_d * ent_d
                - cfg.ent_coef_c * ent_c)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.opt.step()
        return {
            "loss/policy": float((loss_d + loss_c).detach()),
            "loss/actor_discrete": float(loss_d.detach()),
            "loss/actor_continuous": float(loss_c.detach()),
            "loss/value": float(value_loss.detach()),
            "ppo/entropy": float((ent_d + ent_c).detach()),
            "ppo/approx_kl": float(approx_kl(log_ratio_d + log_ratio_c)),
            "ppo/clip_fraction": float(frac_d),
            "ppo/clip_fraction_continuous": float(frac_c),
        }

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, ``log_std``, optimiser and the sampling generator."""
        return {"actor_d": self.actor_d.state_dict(), "actor_c": self.actor_c.state_dict(),
                "log_std": self.log_std.detach().clone(), "critic": self.critic.state_dict(),
                "opt": self.opt.state_dict(), "generator": self.gen.get_state(),
                "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for name in ("actor_d", "actor_c", "critic", "opt"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.gen.set_state(state["generator"])
