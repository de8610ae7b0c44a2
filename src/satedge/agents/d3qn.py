"""D3QN baseline: dueling double DQN with action branching (SPEC section 9, paper baseline).

The hybrid action is discretised by :class:`~satedge.agents.common.discretise.DiscreteActionSpec`
into ``H = 2K + M`` heads (K server heads over the S servers, K power-level heads, M UAV-direction
heads). Following the Branching Dueling Q-Network (BDQ; Tavakoli, Pardo & Kormushev 2018, "Action
branching architectures for deep reinforcement learning"), one network has

- a shared torso ``phi(s)`` (an MLP),
- a state-value stream ``V(s)`` and one advantage branch ``A_d(s, .)`` per head ``d``,
- a dueling aggregation per branch over the choices available in that branch (Wang et al. 2016,
  Eq. 9, with the mean taken over the AVAILABLE choices only, so masked servers do not shift it):
  ``Q_d(s, a) = V(s) + A_d(s, a) - mean_{a' in avail_d(s)} A_d(s, a')``.

Acting picks, per branch, the available choice of highest ``Q_d`` (epsilon-greedy: per branch,
independently with probability epsilon, a uniform available choice instead).

Learning (double DQN, van Hasselt et al. 2016, per branch as in BDQ Eq. 3-5): the target is one
scalar shared by all branches, the MEAN over branches of the target network's value at the online
network's greedy next choice,

    ``y = r + gamma (1 - done) (1/H) sum_d Q'_d(s', argmax_{a in avail_d(s')} Q_d(s', a))``,

and the loss is the Huber loss of ``Q_d(s, a_d) - y`` averaged over branches and the batch. BDQ
found the branch-averaged target the most stable of its variants (a per-branch target or the max
over branches were worse); since every branch estimates the same joint return, averaging also
reduces the variance of the target.

Deliberate choices (documented in docs/baselines.md):
- Rows of the server mask that are all False (no feasible server: the task is dropped whatever is
  chosen) are treated as all-available, as the environment ignores that choice.
- The replay buffer stores the environment's continuous action part; the power and UAV indices
  are recovered exactly with :meth:`DiscreteActionSpec.from_continuous` (the agent only ever
  emits grid points; warm-up actions of the training loop are snapped to the nearest one).
- The torso gradient is not rescaled by ``1/(H+1)`` as in BDQ: averaging the loss over branches
  already gives the torso the mean of the branch gradients; global gradient-norm clipping bounds
  the rest.
- Target network: Polyak averaging with ``tau`` every ``target_period`` updates; ``tau = 1`` with
  a period is DQN's periodic copy.
- Tuned on the default scenario: ``gamma = 0.5`` (AD-SAC uses 0.9; 0.5 was better for D3QN on
  both tuning seeds) and, in the registry's loop preset, one gradient step per 4 transitions
  (DQN's update frequency, Mnih et al. 2015).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.discretise import DiscreteActionSpec
from satedge.agents.common.networks import mlp, soft_update
from satedge.agents.common.protocol import AgentAction

__all__ = ["BranchingQNetwork", "D3qn", "D3qnConfig", "double_dqn_target", "dueling_q"]


@dataclass(frozen=True)
class D3qnConfig:
    """Hyperparameters (sources and tuning in docs/baselines.md)."""

    hidden: tuple[int, ...] = (256, 256)  # shared torso
    branch_hidden: int = 64  # hidden units per branch and in the value stream (BDQ: 128)
    lr: float = 1e-3  # tuned: 5e-4, 1e-3 (docs/baselines.md)
    gamma: float = 0.5  # tuned: 0.5 beat 0.9 on seeds 0 and 1 (docs/baselines.md)
    tau: float = 0.01  # Polyak rate of the target network, applied every target_period updates
    target_period: int = 1
    huber_delta: float = 1.0
    max_grad_norm: float = 10.0
    eps_start: float = 1.0  # per-branch exploration probability, linear schedule
    eps_end: float = 0.05
    eps_decay_transitions: int = 3_000  # transitions acted by the agent (after warm-up)
    power_levels: int = 5
    uav_directions: int = 9

    def __post_init__(self) -> None:
        for name in ("lr", "huber_delta", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma={self.gamma} must be in [0, 1)")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau={self.tau} must be in (0, 1]")
        if not self.hidden:
            raise ValueError(f"hidden={self.hidden} needs at least one layer (the torso)")
        if self.target_period < 1 or self.branch_hidden < 1 or self.eps_decay_transitions < 1:
            raise ValueError(f"target_period={self.target_period}, branch_hidden="
                             f"{self.branch_hidden} and eps_decay_transitions="
                             f"{self.eps_decay_transitions} must be >= 1")
        if not 0 <= self.eps_end <= self.eps_start <= 1:
            raise ValueError(f"need 0 <= eps_end={self.eps_end} <= eps_start={self.eps_start} "
                             "<= 1")


def dueling_q(value: Tensor, adv: Tensor, avail: Tensor) -> Tensor:
    """Per-branch dueling aggregation over the available choices.

    Args:
        value: [B] state values ``V(s)``.
        adv: [B, H, P] advantages ``A_d(s, a)`` (P = the largest branch size; padding ignored).
        avail: [B, H, P] bool, True where choice ``a`` of branch ``d`` is available.

    Returns:
        [B, H, P] ``V(s) + A_d(s, a) - mean_{a' available} A_d(s, a')``; entries at unavailable
        choices are finite but meaningless (callers mask them).
    """
    n = avail.sum(-1, keepdim=True).clamp(min=1)
    mean = torch.where(avail, adv, torch.zeros_like(adv)).sum(-1, keepdim=True) / n
    return value[:, None, None] + adv - mean


def double_dqn_target(reward: Tensor, done: Tensor, q_next_online: Tensor,
                      q_next_target: Tensor, avail_next: Tensor, gamma: float) -> Tensor:
    """[B] the branch-averaged double-DQN target (BDQ Eq. 5).

    ``y = r + gamma (1 - done) mean_d q_next_target[d, argmax_{avail} q_next_online[d]]`` with
    all Q tensors [B, H, P], ``avail_next`` [B, H, P] bool, ``reward``/``done`` [B].
    """
    greedy = q_next_online.masked_fill(~avail_next, -math.inf).argmax(-1, keepdim=True)
    q_eval = q_next_target.gather(-1, greedy).squeeze(-1)  # [B, H]
    return reward + gamma * (1.0 - done) * q_eval.mean(-1)


class BranchingQNetwork(nn.Module):
    """Shared torso, value stream and ``H`` advantage branches: obs [B, D] -> (V [B], A [B, H, P]).

    Each branch is an MLP with one hidden layer of ``branch_hidden`` units. All branches read the
    same torso features, so their first layers are one ``nn.Linear`` to ``H * branch_hidden``
    units; their output layers are one batched matrix product over stacked weights [H, h, P]
    (initialised like ``nn.Linear``).
    """

    def __init__(self, obs_dim: int, n_heads: int, max_head: int, hidden: tuple[int, ...],
                 branch_hidden: int) -> None:
        super().__init__()
        feat, self.h, self.bh = hidden[-1], n_heads, branch_hidden
        self.torso = nn.Sequential(mlp(obs_dim, feat, hidden[:-1]), nn.ReLU())
        self.value = mlp(feat, 1, (branch_hidden,))
        self.branch_in = nn.Linear(feat, n_heads * branch_hidden)
        bound = 1.0 / math.sqrt(branch_hidden)  # nn.Linear's default range for this fan-in
        self.w_out = nn.Parameter(torch.empty(n_heads, branch_hidden, max_head))
        self.b_out = nn.Parameter(torch.empty(n_heads, 1, max_head))
        nn.init.uniform_(self.w_out, -bound, bound)
        nn.init.uniform_(self.b_out, -bound, bound)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        z = self.torso(obs)
        h = torch.relu(self.branch_in(z)).view(-1, self.h, self.bh).transpose(0, 1)  # [H, B, h]
        adv = torch.baddbmm(self.b_out, h, self.w_out).transpose(0, 1)  # [B, H, P]
        return self.value(z).squeeze(-1), adv


class D3qn:
    """The branching dueling double DQN agent.

    Args:
        obs_dim: observation length; n_iotds, n_servers: K and S; cont_dim: K + 2M.
        config: hyperparameters; seed: seeds network initialisation and the exploration RNG.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: D3qnConfig, seed: int) -> None:
        n_uavs, rem = divmod(cont_dim - n_iotds, 2)
        if rem or n_uavs < 0:
            raise ValueError(f"cont_dim={cont_dim} must be K + 2M with K={n_iotds}")
        self.cfg, self.k, self.s = config, n_iotds, n_servers
        self.spec = DiscreteActionSpec(n_iotds, n_uavs, n_servers, config.power_levels,
                                       config.uav_directions)
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.q = BranchingQNetwork(obs_dim, self.spec.n_heads, self.spec.max_head_size,
                                   tuple(config.hidden), config.branch_hidden)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=config.lr)
        # power / UAV / padding availability is fixed; server rows come from the env mask
        ones = np.ones((1, n_iotds, n_servers), dtype=bool)
        self._static_avail = torch.as_tensor(self.spec.head_mask(ones)[0])
        self.explore_transitions = 0  # the epsilon schedule's clock
        self.updates = 0

    # -- acting ---------------------------------------------------------------------------
    def epsilon(self) -> float:
        """Current per-branch exploration probability (linear decay, then constant)."""
        c = self.cfg
        frac = min(1.0, self.explore_transitions / c.eps_decay_transitions)
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    def available(self, mask: Tensor) -> Tensor:
        """[B, H, P] availability of every branch choice from the server mask [B, K, S]."""
        mask = mask | ~mask.any(-1, keepdim=True)  # no feasible server: any choice (dropped)
        avail = self._static_avail.expand(mask.shape[0], -1, -1).clone()
        avail[:, : self.k, : self.s] = mask
        return avail

    def q_values(self, net: nn.Module, obs: Tensor, avail: Tensor) -> Tensor:
        """[B, H, P] branch Q-values of ``net`` (the online or the target network)."""
        value, adv = net(obs)
        return dueling_q(value, adv, avail)

    @torch.no_grad()
    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        o = torch.as_tensor(obs, dtype=torch.float32)
        avail = self.available(torch.as_tensor(mask))
        heads = self.q_values(self.q, o, avail).masked_fill(~avail, -math.inf).argmax(-1)
        if not deterministic:
            eps = self.epsilon()
            explore = torch.rand(heads.shape, generator=self.gen) < eps
            noise = torch.rand(avail.shape, generator=self.gen).masked_fill(~avail, -1.0)
            heads = torch.where(explore, noise.argmax(-1), heads)  # uniform available choice
            self.explore_transitions += int(o.shape[0])
        server, power, uav = self.spec.split(heads.numpy().astype(np.int64))
        return AgentAction(server.copy(), self.spec.to_continuous(power, uav))

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: ReplayBatch) -> dict[str, float]:
        c = self.cfg
        rest = self.spec.from_continuous(batch.action_c.cpu().numpy())
        heads = torch.cat([batch.action_d, torch.as_tensor(rest)], dim=-1)  # [B, H]
        q_all = self.q_values(self.q, batch.obs, self.available(batch.mask))
        q_taken = q_all.gather(-1, heads[..., None]).squeeze(-1)  # [B, H]
        with torch.no_grad():
            avail_next = self.available(batch.next_mask)
            y = double_dqn_target(batch.reward, batch.done,
                                  self.q_values(self.q, batch.next_obs, avail_next),
                                  self.q_values(self.q_target, batch.next_obs, avail_next),
                                  avail_next, c.gamma)
        loss = F.huber_loss(q_taken, y[:, None].expand_as(q_taken), delta=c.huber_delta)
        self.opt.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.q.parameters(), c.max_grad_norm)
        self.opt.step()
        self.updates += 1
        if self.updates % c.target_period == 0:
            soft_update(self.q_target, self.q, c.tau)
        return {"loss/critic": float(loss.detach()), "train/q_mean": float(q_taken.detach().mean()),
                "train/grad_norm": float(grad_norm), "explore/epsilon": self.epsilon()}

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
                "opt": self.opt.state_dict(), "explore_transitions": self.explore_transitions,
                "updates": self.updates, "generator": self.gen.get_state(),
                "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.opt.load_state_dict(state["opt"])
        self.explore_transitions = int(state["explore_transitions"])
        self.updates = int(state["updates"])
        self.gen.set_state(state["generator"])
