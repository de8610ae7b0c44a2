"""The single-agent ablations of AD-SAC (paper Fig. 8; SPEC section 9): AD-SAC-D and AD-SAC-C.

Both replace AD-SAC's two cooperating agents and its MPO fusion by one SAC agent over a single
action representation, and keep everything else: AD-SAC's shared hyperparameters (read from
:class:`~satedge.agents.adsac.AdSacConfig`'s defaults, so the comparison isolates the action
representation), the off-policy loop, the replay buffer and the evaluation.

**AD-SAC-D** (:class:`AdSacD`): one discrete agent (:class:`~satedge.agents.sac.DiscreteSac`)
over the heads of :class:`~satedge.agents.common.discretise.DiscreteActionSpec`: a server per IoTD
(masked by the environment's mask), ``power_levels`` transmit powers per IoTD and
``uav_directions`` moves per UAV. Its critic is decomposed per head, so the power and UAV heads
see their average effect given the state. The replay buffer stores the environment's continuous
action; it is mapped back to head indices with ``from_continuous`` (exact for the agent's own
actions; the uniform warm-up actions of the loop are rounded to the nearest level). The
unavailable-action samples stay on (the loop's default, as for AD-SAC): the server heads are
masked categoricals exactly like AD-SAC's discrete agent, so the samples play the same role,
giving the critic the value of masked server choices with the simulator's exact reward.

**AD-SAC-C** (:class:`AdSacC`): one continuous agent (:class:`~satedge.agents.sac.ContinuousSac`)
whose action is K S server scores followed by the K + 2M powers and UAV moves; the server of IoTD
k is the argmax of its scores over the feasible servers. The replay buffer stores only the
executed server, so the scores are **reconstructed** as the canonical score vector of that
server (+1 for it, -1 for the others): it selects the same server under the same mask, so the
critic is trained on the action that was actually executed, at the vertices of the score cube,
while the actor's gradient comes from the critic between them (a continuous relaxation). The
scores of masked servers never change the outcome and are shown to the critic as -1
(``ContinuousSac``'s ``action_mask``). Storing the raw scores instead would need a wider buffer
than the one all learners share. The unavailable-action samples are **off** for AD-SAC-C
(registry loop preset): a masked server cannot be the argmax over feasible servers, so no score
vector executes such a sample and its reconstruction would contradict its reward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.nn import functional as F

from satedge.agents.adsac import AdSacConfig
from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.discretise import DiscreteActionSpec
from satedge.agents.common.protocol import AgentAction
from satedge.agents.sac import ContinuousSac, DiscreteSac, SacConfig

__all__ = ["AdSacC", "AdSacCConfig", "AdSacD", "AdSacDConfig"]

_AD = AdSacConfig()  # AD-SAC's defaults: the ablations share every hyperparameter they have


@dataclass(frozen=True)
class AdSacDConfig(SacConfig):
    """AD-SAC-D: :class:`~satedge.agents.sac.SacConfig` with AD-SAC's shared defaults (critic lr
    [paper], actor/alpha lr, gamma, tau, hidden, initial temperature and discrete target-entropy
    scale; see docs/agents.md) and the discretisation."""

    hidden: tuple[int, ...] = _AD.hidden
    actor_lr: float = _AD.actor_lr
    critic_lr: float = _AD.critic_lr
    alpha_lr: float = _AD.alpha_lr
    gamma: float = _AD.gamma
    tau: float = _AD.tau
    init_alpha: float = _AD.init_alpha
    target_entropy_scale_d: float = _AD.target_entropy_scale_d
    power_levels: int = 5  # DiscreteActionSpec default: levels evenly spaced over [-1, 1]
    uav_directions: int = 9  # DiscreteActionSpec default: stay + 8 compass moves


@dataclass(frozen=True)
class AdSacCConfig(SacConfig):
    """AD-SAC-C: :class:`~satedge.agents.sac.SacConfig` with AD-SAC's shared defaults; the
    target entropy is ``-(K S + K + 2M)`` (``target_entropy_scale_c`` = 1, as AD-SAC's
    continuous agent)."""

    hidden: tuple[int, ...] = _AD.hidden
    actor_lr: float = _AD.actor_lr
    critic_lr: float = _AD.critic_lr
    alpha_lr: float = _AD.alpha_lr
    gamma: float = _AD.gamma
    tau: float = _AD.tau
    init_alpha: float = _AD.init_alpha


def _n_uavs(n_iotds: int, cont_dim: int) -> int:
    m, odd = divmod(cont_dim - n_iotds, 2)
    if odd or m < 1:
        raise ValueError(f"cont_dim={cont_dim} must be n_iotds + 2 M with M >= 1 UAVs "
                         f"(n_iotds={n_iotds})")
    return m


def _feasible(mask: Tensor) -> Tensor:
    """[B, K, S] the environment's mask with all-False rows opened (no feasible server: the task
    fails whatever is chosen, so any server is as good; the environment's contract)."""
    return mask | ~mask.any(dim=-1, keepdim=True)


class AdSacD:
    """AD-SAC-D: one discrete SAC agent over servers, power levels and UAV moves.

    Args:
        obs_dim: D. n_iotds, n_servers: K and S. cont_dim: K + 2M. config: hyperparameters.
        seed: seeds the core's initialisation and sampling streams.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: AdSacDConfig, seed: int) -> None:
        self.cfg = config
        self.spec = DiscreteActionSpec(n_iotds, _n_uavs(n_iotds, cont_dim), n_servers,
                                       config.power_levels, config.uav_directions)
        self.core = DiscreteSac(obs_dim, self.spec.head_sizes, config, seed)

    def _head_mask(self, mask: Tensor) -> Tensor:
        """[B, 2K + M, W] feasible choices of every head from the server mask [B, K, S]."""
        return torch.as_tensor(self.spec.head_mask(_feasible(mask).numpy()))

    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        """Servers [B, K] and the continuous part [B, K + 2M] of the chosen levels and moves."""
        heads = self.core.act(torch.as_tensor(obs), self._head_mask(torch.as_tensor(mask)),
                              deterministic).numpy()
        server, power_idx, uav_idx = self.spec.split(heads)
        return AgentAction(server.astype(np.int64), self.spec.to_continuous(power_idx, uav_idx))

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One discrete SAC update on the replayed transitions (continuous part -> head indices)."""
        rest = torch.as_tensor(self.spec.from_continuous(batch.action_c.numpy()))
        heads = torch.cat([batch.action_d, rest], dim=-1)
        return self.core.update(batch.obs, heads, batch.reward, batch.next_obs, batch.done,
                                self._head_mask(batch.mask), self._head_mask(batch.next_mask))

    def state_dict(self) -> dict[str, Any]:
        return {"core": self.core.state_dict(), "config": _plain(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state["core"])


class AdSacC:
    """AD-SAC-C: one continuous SAC agent over server scores, powers and UAV moves.

    Args:
        obs_dim: D. n_iotds, n_servers: K and S. cont_dim: K + 2M. config: hyperparameters.
        seed: seeds the core's initialisation and sampling streams.
    """

    def __init__(self, obs_dim: int, n_iotds: int, n_servers: int, cont_dim: int,
                 config: AdSacCConfig, seed: int) -> None:
        _n_uavs(n_iotds, cont_dim)
        self.cfg, self.k, self.s = config, n_iotds, n_servers
        self.core = ContinuousSac(obs_dim, n_iotds * n_servers + cont_dim, config, seed)

    def _action_mask(self, mask: Tensor) -> Tensor:
        """[B, K S + K + 2M] True where a component can change the outcome: feasible servers'
        scores and the whole continuous part."""
        feasible = _feasible(mask).flatten(1)
        rest = torch.ones((mask.shape[0], self.core.action_dim - feasible.shape[1]),
                          dtype=torch.bool)
        return torch.cat([feasible, rest], dim=-1)

    def servers(self, scores: Tensor, mask: Tensor) -> Tensor:
        """int64 [B, K] argmax of the scores [B, K S] over the feasible servers of ``mask``."""
        s = scores.view(-1, self.k, self.s)
        return torch.where(_feasible(mask), s, torch.full_like(s, -torch.inf)).argmax(dim=-1)

    def act(self, obs: NDArray[np.float32], mask: NDArray[np.bool_],
            deterministic: bool = False) -> AgentAction:
        """Servers [B, K] (argmax of the scores over the feasible servers) and the continuous
        part [B, K + 2M]."""
        x = self.core.act(torch.as_tensor(obs), deterministic)
        n = self.k * self.s
        server = self.servers(x[:, :n], torch.as_tensor(mask))
        return AgentAction(server.numpy().astype(np.int64), x[:, n:].numpy().astype(np.float32))

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One SAC update; the stored server becomes its canonical score vector (+1 / -1)."""
        scores = 2.0 * F.one_hot(batch.action_d, self.s).flatten(1).float() - 1.0
        action = torch.cat([scores, batch.action_c], dim=-1)
        return self.core.update(batch.obs, action, batch.reward, batch.next_obs, batch.done,
                                self._action_mask(batch.mask), self._action_mask(batch.next_mask))

    def state_dict(self) -> dict[str, Any]:
        return {"core": self.core.state_dict(), "config": _plain(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state["core"])


def _plain(cfg: SacConfig) -> dict[str, Any]:
    """The config as plain values (tuples as lists) for a weights-only checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
