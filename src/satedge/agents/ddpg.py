"""DDPG baseline on a continuous relaxation of the server choice (SPEC section 9, paper baseline).

DDPG (Lillicrap et al. 2016, "Continuous control with deep reinforcement learning") needs a
continuous action, so the server choice is relaxed: the deterministic actor ``mu(s)`` outputs
per-IoTD server scores ``sigma`` [K, S] and the K + 2M continuous part ``c`` (powers, UAV moves),
all in [-1, 1] through a final tanh (bounded outputs: the action can never leave its box, and no
clipping ever kills a gradient). The executed server of IoTD k is ``argmax_{j feasible} sigma_kj``
(over all servers when none is feasible: the task is dropped whatever is chosen). The critic is
``Q(s, sigma, c)`` on the flattened scores and the continuous part.

Score vector the critic sees [our choice, justified]. The environment's outcome depends on the
scores only through the masked argmax, so all score vectors with the same argmax are the same
action. The replay buffer (the training loop's, shared by all agents) stores the executed server
index, which is therefore a lossless record of the discrete action; the critic is trained on its
canonical representative ``v(a)`` (+1 at the executed server, -1 elsewhere), and the bootstrap
uses ``v`` of the target actor's executed choice at ``s'``. Storing the actor's raw scores instead
would (a) need a second buffer beside the loop's and (b) make the critic regress onto a function
that is piecewise constant in the scores, with any score vector of the same argmax a different
input. The warm-up actions of the loop carry no scores at all. In the actor update the critic is
evaluated at the actor's own scores (the relaxation), with scores of infeasible servers set to -1
(they cannot be executed, so they get no gradient); between the vertices the critic interpolates,
and its gradient raises the scores of the servers it values above the others.

Saturation [our addition]: the masked argmax needs a RANKING of the servers (the second best is
executed where the best is masked), but a tanh actor pushed by the critic drives every non-best
score to exactly -1, where the gradient vanishes and the ranking is lost (ties). A small penalty
``preactivation_penalty * mean(u^2)`` on the actor's pre-tanh outputs ``u`` keeps them in tanh's
responsive range; without it DDPG fails the known-answer task of
:mod:`satedge.agents.common.toy` (docs/baselines.md).

Exploration: Gaussian noise on the scores (``score_noise``) and on the continuous part
(``action_noise``), each clipped to [-1, 1]. Target policy smoothing (Fujimoto et al. 2018, TD3)
is optional: ``target_noise > 0`` adds clipped noise to the target actor's output before its
argmax; the default 0 is plain DDPG. Deliberate deviations from Lillicrap et al.: Gaussian rather
than Ornstein-Uhlenbeck noise (Fujimoto et al. 2018 found no difference), no batch
normalisation, gradient-norm clipping, the pre-activation penalty above, and (registry loop
preset) one critic and one actor step per 4 transitions.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.networks import mlp, soft_update
from satedge.agents.common.protocol import AgentAction

__all__ = ["Ddpg", "DdpgConfig", "select_servers", "vertex_scores"]


@dataclass(frozen=True)
class DdpgConfig:
    """Hyperparameters (sources and tuning in docs/baselines.md)."""

    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4  # tuned: 1e-4 (Lillicrap et al. 2016), 3e-4, 1e-3
    critic_lr: float = 1e-3  # Lillicrap et al. 2016; the paper's critic lr
    gamma: float = 0.9  # as AD-SAC
    tau: float = 0.005
    score_noise: float = 0.3  # std of the exploration noise on the server scores
    action_noise: float = 0.1  # std of the exploration noise on powers and UAV moves
    target_noise: float = 0.0  # TD3 target policy smoothing std; 0 = plain DDPG
    target_noise_clip: float = 0.5
    preactivation_penalty: float = 1e-2  # weight of mean(u^2), u the actor's pre-tanh output
    max_grad_norm: float = 10.0

    def __post_init__(self) -> None:
        for name in ("actor_lr", "critic_lr", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        for name in ("score_noise", "action_noise", "target_noise", "target_noise_clip",
                     "preactivation_penalty"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma={self.gamma} must be in [0, 1)")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau={self.tau} must be in (0, 1]")


def _feasible(mask: Tensor) -> Tensor:
    """The mask with all-False rows (no feasible server: the task is dropped) made all-True."""
    return mask | ~mask.any(-1, keepdim=True)


def select_servers(scores: Tensor, mask: Tensor) -> Tensor:
    """int64 [B, K] executed servers: the argmax of scores [B, K, S] over feasible servers."""
    return scores.masked_fill(~_feasible(mask), -torch.inf).argmax(-1)


def vertex_scores(server: Tensor, n_servers: int) -> Tensor:
    """[B, K, S] the canonical score vector of executed servers [B, K]: +1 there, -1 elsewhere."""
    return 2.0 * F.one_hot(server, n_servers).float() - 1.0


class Critic(nn.Module):
    """``Q(s, sigma, c)``: obs [B, D], scores [B, K, S], continuous [B, A] -> [B]."""

    def __init__(self, obs_dim: int, score_dim: int, cont_dim: int,
                 hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(obs_dim + score_dim + cont_dim, 1, hidden)

    def forward(self, obs: Tensor, scores: Tensor, cont: Tensor) -> Tensor:
        return self.net(torch.cat([obs, scores.flatten(1), cont], -1)).squeeze(-1)


class Ddpg:
    """The DDPG agent on the relaxed hybrid action.

    Args:
        obs_dim: observation length; n_iotds, n_servers: K and S; cont_dim: K + 2M.
        config: hyperparameters; seed: seeds network initialisation and the exploration RNG.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: DdpgConfig, seed: int) -> None:
        self.cfg, self.k, self.s, self.a = config, n_iotds, n_servers, cont_dim
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        h = tuple(config.hidden)
        # small last layer: initial scores and moves near 0 (Lillicrap et al. 2016, Sec. 7)
        self.actor = mlp(obs_dim, n_iotds * n_servers + cont_dim, h, out_init_scale=0.01)
        self.critic = Critic(obs_dim, n_iotds * n_servers, cont_dim, h)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)

    def policy(self, net: nn.Module, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(scores [B, K, S], continuous [B, A]) of an actor, in [-1, 1]."""
        return self._split(torch.tanh(net(obs)))

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        return out[:, : self.k * self.s].view(-1, self.k, self.s), out[:, self.k * self.s :]

    def _noisy(self, x: Tensor, std: float, clip: float | None = None) -> Tensor:
        """``x`` plus N(0, std^2) noise (clipped to +-clip if given), clamped to [-1, 1]."""
        if std == 0:
            return x
        noise = torch.randn(x.shape, generator=self.gen) * std
        if clip is not None:
            noise = noise.clamp(-clip, clip)
        return (x + noise).clamp(-1.0, 1.0)

    # -- acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        scores, cont = self.policy(self.actor, torch.as_tensor(obs, dtype=torch.float32))
        if not deterministic:
            scores = self._noisy(scores, self.cfg.score_noise)
            cont = self._noisy(cont, self.cfg.action_noise)
        server = select_servers(scores, torch.as_tensor(mask))
        return AgentAction(server.numpy().astype(np.int64), cont.numpy().astype(np.float32))

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: ReplayBatch) -> dict[str, float]:
        metrics = self._update_critic(batch)
        metrics.update(self._update_actor(batch))
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        soft_update(self.actor_target, self.actor, self.cfg.tau)
        return metrics

    def _update_critic(self, b: ReplayBatch) -> dict[str, float]:
        c = self.cfg
        with torch.no_grad():
            scores, cont = self.policy(self.actor_target, b.next_obs)
            if c.target_noise > 0:
                scores = self._noisy(scores, c.target_noise, c.target_noise_clip)
                cont = self._noisy(cont, c.target_noise, c.target_noise_clip)
            nxt = vertex_scores(select_servers(scores, b.next_mask), self.s)
            y = b.reward + c.gamma * (1.0 - b.done) * self.critic_target(b.next_obs, nxt, cont)
        q = self.critic(b.obs, vertex_scores(b.action_d, self.s), b.action_c)
        loss = F.mse_loss(q, y)
        self.opt_critic.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), c.max_grad_norm)
        self.opt_critic.step()
        return {"loss/critic": float(loss.detach()), "train/q_mean": float(q.detach().mean())}

    def critic_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        """[B, K, S] the score input of the critic in the actor update: the actor's scores with
        those of infeasible servers pinned at -1."""
        return torch.where(_feasible(mask), scores, torch.full_like(scores, -1.0))

    def _update_actor(self, b: ReplayBatch) -> dict[str, float]:
        pre = self.actor(b.obs)
        scores, cont = self._split(torch.tanh(pre))
        self.critic.requires_grad_(False)  # the actor step must not touch the critic's grads
        loss = -self.critic(b.obs, self.critic_scores(scores, b.mask), cont).mean()
        self.critic.requires_grad_(True)
        self.opt_actor.zero_grad()
        (loss + self.cfg.preactivation_penalty * pre.pow(2).mean()).backward()
        grad_norm = nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.max_grad_norm)
        self.opt_actor.step()
        return {"loss/policy": float(loss.detach()), "train/grad_norm": float(grad_norm)}

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "opt_actor": self.opt_actor.state_dict(),
                "opt_critic": self.opt_critic.state_dict(),
                "generator": self.gen.get_state(), "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "opt_actor",
                     "opt_critic"):
            getattr(self, name).load_state_dict(state[name])
        self.gen.set_state(state["generator"])
