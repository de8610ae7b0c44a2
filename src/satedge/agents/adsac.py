"""AD-SAC: action-decoupled soft actor-critic with an MPO fusion step (SPEC section 9).

Two cooperating SAC agents act on the hybrid action: a **discrete agent** (a masked categorical
per IoTD over the M + N servers) and a **continuous agent** (a tanh-Gaussian over the K powers and
the M UAV moves). Their critics see the joint action. The acting policy ``l = l_d x l_c`` is then
improved by an MPO step (Abdolmaleki et al. 2018; hybrid form Neunert et al. 2019): the E-step
re-weights N joint actions sampled from the previous policy by ``exp(Q / eta)`` under the KL bound
``epsilon``, and the M-step fits the categorical and the Gaussian factors to those weights under
separate KL bounds ``epsilon_d`` and ``epsilon_c``.

Critic [our design, justified]: the reward is a sum over IoTDs, so the critic is decomposed per
IoTD, ``Q(s, a_c, a_d) = sum_k q_k(s, a_c, n(a_d))[a_d,k]``, with ``n(a_d)`` the servers' loads
(counts of IoTDs per server, / K) as a mean-field summary of the other IoTDs' choices. The
expectation of Q under the factorised discrete policy is then exact per IoTD given the expected
load ``sum_k pi_k``, which gives the discrete agent the same low-variance update as discrete SAC
(Christodoulou 2019) without enumerating (M + N)^K joint actions.

Deliberate deviations from the paper (its equations were lost; SPEC reconstructs Algorithm 1):
- Default form ``modern``: twin soft-Q critics with target critics and learned temperatures, one
  per agent (Haarnoja et al. 2018b), instead of the paper's four networks per agent (V, Q, pi,
  target V; Haarnoja et al. 2018a), which ``form="paper"`` keeps: per agent a value network, one
  soft-Q network over the joint action, the policy, and a Polyak target of the value network.
  Measured over 5 seeds on the default scenario (docs/agents.md): the paper form is ahead after
  24 episodes, the modern form after 48 (34.8 against 37.0 cost per slot, lower on 4 of 5 seeds).
- One shared critic pair in the modern form: both agents maximise the same joint soft value
  (reward plus both entropy bonuses), so a second pair would estimate the same function.
- The MPO step's previous policy is a Polyak-averaged copy of the actors (tau_actor), not a
  periodically copied one; the KLs achieved against it are logged every update.
- Per-task critic targets (modern form, ``reward_decomposition``): the reward is a sum of
  per-task shares (``info["reward_per_task"]``), so head k regresses its own share plus the
  discounted share of the next state's soft value, ``y_k = r_k + gamma V_k(s')``; summed over k
  this is the usual target, with far less variance per head.
- Per-IoTD networks shared across IoTDs (``iotd_block > 0``, set by ``satedge train``): the
  discrete actor and the critics apply one MLP to every IoTD's block of the observation (plus
  the global part and the mean of all blocks), since IoTDs are exchangeable in the model; the
  critic's load summary counts IoTDs, requests and output length per server.
- The MPO E-step scores its samples with one critic (as MPO does), not the twins' minimum.
- Unavailable actions (Algorithm 1 line 6) are added by the training loop: for each transition,
  a copy with one IoTD's server replaced by a masked one, its reward from the simulator's pure
  cost function (the next state does not depend on server choices, so the copy is exact).
- Exact server values (``server_values="exact"``, off by default): the same pure cost function
  prices, for every stored transition, each IoTD's alternative servers with the rest of the
  action kept (``offpolicy.server_reward_table``). Since server choices do not change the next
  state, these are exact Q differences, and the discrete agent maximises them instead of the
  critic's; the MPO E-step scores a sample by the critic at the stored servers plus the exact
  reward change of its servers, summed over IoTDs (first order in the IoTDs that changed).
- UAV geometry (``uav_geometry``, off by default; shared per-IoTD critic only): each IoTD's
  critic input also holds its horizontal distance to every UAV after the commanded move
  (:func:`post_move_distance`), computed from the observation as the environment applies the move.
- Decision-time samples (``decision_samples``, 0 by default): a deterministic action's servers are
  the best, by the min-twin Q, of the discrete mode and N samples (continuous part at its mode).
- Autoregressive discrete actor (``discrete_actor="autoregressive"``, off by default): IoTDs are
  placed one after another, each categorical seeing the load of those placed before it
  (:class:`AutoregressiveIotdActor`). Its losses use each IoTD's categorical given the stored
  servers of the IoTDs before it (the MPO KLs too); the soft value uses one sampled placement.
- Shared continuous actor (``continuous_actor="shared"``, off by default): powers from the shared
  per-IoTD inputs, and each UAV's move from attention over the IoTDs' offsets to that UAV
  (:class:`SharedContinuousActor`), instead of one MLP on the absolute positions.
  ``continuous_actor="conditioned"``: the same actor given the discrete action (the paper's two
  agents act side by side): the servers are drawn first, each IoTD's power sees its server and
  each UAV's move which tasks it will serve. The actor loss, the MPO step and its KL condition on
  the stored servers (for which the simulated targets were searched); the soft value on one
  sampled placement.
- UAV-distance shaping (``uav_shaping``, 0 = off by default): the critic's targets add the
  potential-based shaping term ``gamma Phi(s') - Phi(s)`` (Ng et al. 1999) with ``Phi(s) = -beta *
  mean_k min_m d_km``, the IoTDs' mean horizontal distance to their nearest UAV
  (:func:`uav_shaping_reward`). A potential-based term leaves the optimal policy unchanged; it
  puts the delayed effect of a UAV move on the channels into the reward of the slot that
  commands it. Measured, it changes nothing (docs/agents.md, "UAV-distance shaping: measured").
- Simulated move values (``move_values="simulated"``, off by default): the UAV moves are not
  trained on the critic. For every stored transition the training loop searches each UAV's move
  by a one-slot lookahead with the pure cost function (hover, 16 fixed moves and the move taken,
  priced with the slot's own servers and powers at the positions each move reaches;
  ``heuristics.search_uav_moves``), and the continuous agent fits the best by maximum
  likelihood (:meth:`AdSac._move_loss`); the critic's gradient reaches the powers only, and the
  MPO E-step ranks its samples' powers at the stored moves. As the exact server values replace
  the critic for the servers, this replaces a critic measured to be biased against long moves
  (docs/agents.md, "Simulated move values").
- Simulated power values (``power_values="simulated"``, off by default): likewise for the
  transmit powers. Each IoTD's power is searched (one IoTD at a time, the others at the powers
  taken) over the power taken and 9 levels from p_min to p_max, priced with the slot's servers
  (``heuristics.search_iotd_powers``); the continuous agent fits the best by maximum likelihood
  (:meth:`AdSac._power_loss`) and the critic's gradient no longer reaches the powers. A power
  acts within its slot only, so this one-slot value is exact, not a proxy (docs/agents.md,
  "Simulated power values").
- Searched server targets (``server_search`` rounds > 0, off by default): for every stored
  transition the training loop also improves the transition's server assignment by a local
  search with the pure cost function (each round prices every one-task reassignment, the
  powers taken, and takes the best that helps; ``heuristics.search_servers``), and the discrete
  agent also fits the improved assignment by maximum likelihood, weight ``server_weight``
  (:meth:`AdSac._server_loss`; autoregressive: each IoTD given the targets of those before it).
  The exact server values teach each IoTD its best reply to the others' stored servers; the
  search's target is a coordinated assignment several reassignments away.
- Searching from the mode too (``server_search_from_mode``, off by default; with
  ``server_search``): the loop also runs the search from the discrete actor's mode at the stored
  state (the servers a deterministic action takes) and stores the better of the two local optima,
  so the target improves the policy that is evaluated, not only the sampled one.
- The optimiser's targets (``target_search="optimizer"``, off by default): the discrete agent
  fits the per-slot optimiser's assignment for the stored state (``optimizer.OptimizerPolicy``:
  exhaustive over small slots, a reassign-and-swap local search from greedy and a random start
  otherwise) instead of a local search's, and with simulated power values the continuous agent
  fits the optimiser's power search for the stored servers (``optimizer.optimise_powers``: a
  zoomed grid per task, steepest descent over interfering UAV uplinks) instead of the
  one-IoTD-at-a-time grid. This distils a planner into the networks; it is a deviation, and it
  costs about 0.16 s of optimiser per environment step of 4 environments.
- Bounded continuous temperature (``alpha_continuous_max``, 0 = unbounded by default): the
  continuous temperature is clamped to at most this value after each of its updates. With
  simulated move and power values the continuous actor fits its targets by maximum likelihood,
  its entropy stays below ``-dim(a_c)``, and the learned temperature keeps rising (0.05 to 2.9
  by about 170 episodes); the entropy term then pulls the moves toward hovering.
- Greedy's UAV rule as the move target (``move_values="centroid"``, off by default): the moves
  fit, by maximum likelihood, greedy's move toward the centroid of the IoTDs each UAV serves
  under the stored servers; the UAV moves are then learned imitation of the heuristic's rule,
  not values, and only the servers and powers are AD-SAC's own.
- Centroid move candidate (``move_centroid``, off by default; with simulated move values): the
  move search also prices each UAV's greedy move for the stored servers, toward the centroid of
  the IoTDs it serves (``GreedyPolicy.uav_moves``), a target that is a simple function of what
  the conditioned actor sees.
- Move targets priced on the next slot (``move_target_slot="next"``, off by default; with
  simulated move values): a move takes effect in the next slot, so its candidates are priced
  there, on the tasks, IoTD positions and fading that slot realises and with the servers and
  powers the policy takes in it (``offpolicy.next_slot_move_table``), instead of on the slot
  the move is commanded in. The loop stores each transition with no move target and writes the
  target one step later; an episode's last moves reach no slot and get none.
- Learned candidate-move values (``move_value_net``, off by default; with simulated move
  values): a value of each of the move search's fixed candidates per UAV (:class:`MoveValueNet`)
  regresses on the candidates' stored rewards, and the moves fit its best candidate instead of
  the one slot's best, so what a slot cannot predict is averaged before the move is chosen.
- Decision beam (``decision_beam``, 0 = off by default; autoregressive actor with server
  targets): a second network (:class:`ServerContextNet`) learns each IoTD's server target given
  every other IoTD's target, and a deterministic action's servers are, of the actor's greedy
  decoding and its beam search of this width (:meth:`AutoregressiveIotdActor.beam`), the
  assignment most pseudo-likely under it. Greedy decoding of the autoregressive actor is not
  its most probable joint assignment, and an IoTD placed early cannot see where the later ones
  go; the second network sees them all. Its loss has its own parameters, so the rest of training
  is unchanged, and exploration still samples the actor; only deterministic actions differ.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.distributions import MaskedCategorical, TanhGaussian, gumbel_noise
from satedge.agents.common.mpo import (
    dual_loss,
    e_step_kl,
    e_step_weights,
    eta_from_raw,
    lagrange_from_raw,
    m_step_loss,
)
from satedge.agents.common.networks import mlp, soft_update
from satedge.agents.common.protocol import AgentAction
from satedge.agents.common.sac_losses import (
    continuous_temperature_loss,
    discrete_temperature_loss,
)
from satedge.agents.common.seedbatch import (
    SeedGenerators,
    seed_axis,
    stack_modules,
    stack_state,
    unstack_state,
)
from satedge.agents.heuristics import MOVE_CANDIDATES
from satedge.envs.encoding import IOTD_FEATURE, PER_IOTD

__all__ = ["AdSac", "AdSacConfig"]

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_TARGET_BOUND = 0.999  # move and power targets are clipped to +-this before atanh
_LOG_2PI = float(np.log(2.0 * np.pi))
_MODULES = ("actor_d", "actor_c", "old_d", "old_c", "critics", "critic_targets", "values",
            "value_targets", "move_value", "context_d")
_OPTIONAL = frozenset({"move_value", "context_d"})
"""Modules added after the first releases: empty unless their option is on, and absent from
older checkpoints."""
_STATEFUL = (*_MODULES, "opt_actor", "opt_critic", "opt_alpha", "opt_dual")
"""Attributes whose ``state_dict`` a checkpoint holds (plus the raw dual tensors and the RNG)."""


@dataclass(frozen=True)
class AdSacConfig:
    """Hyperparameters. ``[paper]`` values are the paper's; the rest are ours (docs/agents.md)."""

    form: str = "modern"  # "modern" (twin Q, learned temperatures) or "paper" (V, Q, pi, V')
    use_mpo: bool = True  # False: the "AD-SAC without MPO" ablation
    hidden: tuple[int, ...] = (256, 256)
    critic_lr: float = 1e-3  # [paper] (Fig. 4 compares 1e-4, 1e-3, 1e-2)
    actor_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.9
    tau: float = 0.005
    tau_actor: float = 0.01
    batch_size: int = 128  # [paper]
    buffer_size: int = 10_000  # [paper]
    learning_starts: int = 1_000
    init_alpha: float = 0.05
    # > 0: the continuous temperature is held at or below this after every update (a projected
    # step); 0: no bound (the paper). With simulated move and power values its entropy target
    # cannot be met and it keeps rising (docs/agents.md, "Bounded continuous temperature")
    alpha_continuous_max: float = 0.0
    target_entropy_scale_d: float = 0.3  # of log(#feasible servers), per IoTD
    mpo_samples: int = 8
    reward_decomposition: bool = True  # modern form: critic heads regress per-task rewards
    iotd_block: int = 0  # > 0: per-IoTD networks shared across IoTDs (observation block size)
    iotd_hidden: tuple[int, ...] = (128, 128)  # hidden sizes of the shared per-IoTD networks
    mpo_epsilon: float = 0.1
    mpo_epsilon_d: float = 0.01
    mpo_epsilon_c: float = 0.01
    unavailable_samples: bool = True
    # "critic": the discrete agent maximises the learned critic (the paper); "exact": it
    # maximises the exact one-slot reward of each IoTD's alternatives (server_reward_table)
    server_values: str = "critic"
    # critic input: each IoTD's horizontal distance to every UAV after the commanded move
    # (shared per-IoTD networks only); uav_step is the longest move in the observation's
    # position units, 2 v_max tau / area, which ``satedge train`` sets from the scenario
    uav_geometry: bool = False
    uav_step: float = 0.0
    # > 0: a deterministic action (evaluation) is the best, by the min-twin Q, of the discrete
    # mode and this many samples of the discrete policy, the continuous part at its mode
    decision_samples: int = 0
    # > 0: a deterministic action's servers are the most pseudo-likely, under a network fitted
    # to the stored server targets given the other IoTDs' targets (ServerContextNet), of the
    # autoregressive actor's greedy decoding and its beam search of this width
    decision_beam: int = 0
    # "factorised": one categorical per IoTD given the state (the paper); "autoregressive": IoTD
    # k's categorical also sees the servers' load from the IoTDs placed before it (shared
    # per-IoTD networks only; AutoregressiveIotdActor)
    discrete_actor: str = "factorised"
    # "flat": one MLP on the whole observation gives every power and UAV move (the paper);
    # "shared": IoTD k's power from the shared per-IoTD inputs, UAV m's move from the IoTDs'
    # offsets to UAV m (shared per-IoTD networks and uav_step needed; SharedContinuousActor);
    # "conditioned": "shared" given the discrete action too (each IoTD's server; the servers
    # are drawn first, and the losses condition on the stored servers)
    continuous_actor: str = "flat"
    # > 0: beta of the potential-based UAV-distance shaping of the critic's targets,
    # Phi(s) = -beta * mean_k min_m d_km in reward units per observation position unit (2 / area
    # per metre); shared per-IoTD networks only (uav_shaping_reward)
    uav_shaping: float = 0.0
    # "critic": the continuous agent's UAV moves maximise the learned critic (the paper);
    # "simulated": they fit, by maximum likelihood with weight move_weight, the best move per
    # UAV of a one-slot lookahead with the pure cost function (offpolicy.move_target_table),
    # and the critic's gradient does not reach the moves; "centroid": they fit, likewise, greedy's
    # UAV rule for the stored servers (offpolicy.centroid_move_table: toward the centroid of the
    # IoTDs each UAV serves), a heuristic's rule rather than a value
    move_values: str = "critic"
    move_weight: float = 1.0
    # with move_values="simulated": each UAV's greedy move for the stored servers (toward the
    # centroid of the IoTDs it serves) is one more candidate of the lookahead
    move_centroid: bool = False
    # with move_values="simulated": "present" prices the move candidates on the slot the move
    # is commanded in (its tasks, servers and powers; a proxy); "next" on the slot the move
    # reaches, with the servers and powers taken there (offpolicy.next_slot_move_table; the
    # loop writes the target one step later, and an episode's last moves get none)
    move_target_slot: str = "present"
    # with move_values="simulated": a value of each of the search's fixed candidate moves per UAV
    # (MoveValueNet, trained with the critics) regresses on the candidates' stored rewards, and
    # the moves fit its best candidate instead of the one slot's best, so that what a slot
    # cannot predict is averaged before the best move is chosen (shared or conditioned
    # continuous actor only)
    move_value_net: bool = False
    # "critic": the continuous agent's powers maximise the learned critic (the paper);
    # "simulated": they fit, by maximum likelihood with weight power_weight, the best power per
    # IoTD of a one-slot lookahead with the pure cost function (offpolicy.power_target_table)
    power_values: str = "critic"
    power_weight: float = 1.0
    # > 0: the discrete agent also fits, by maximum likelihood with weight server_weight, the
    # assignment that this many rounds of a local search (heuristics.search_servers) reach from
    # the stored servers (offpolicy.server_target_table)
    server_search: int = 0
    server_weight: float = 1.0
    # with server_search: the loop also searches from the discrete actor's mode at the stored
    # state and stores the better of the two local optima (offpolicy.server_target_table)
    server_search_from_mode: bool = False
    # "local": the server targets (server_search) and power targets (power_values="simulated")
    # come from the local searches above; "optimizer": from the per-slot optimiser instead (its
    # servers for the stored state, and its power search for the stored servers;
    # offpolicy.optimizer_target_tables), so the agent distils the optimiser's slot solution
    target_search: str = "local"

    def __post_init__(self) -> None:
        if self.form not in ("modern", "paper"):
            raise ValueError(f"form={self.form!r} must be 'modern' or 'paper'")
        if self.server_values not in ("critic", "exact"):
            raise ValueError(f"server_values={self.server_values!r} must be 'critic' or 'exact'")
        if self.move_values not in ("critic", "simulated", "centroid"):
            raise ValueError(f"move_values={self.move_values!r} must be 'critic', 'simulated' or "
                             "'centroid'")
        if self.power_values not in ("critic", "simulated"):
            raise ValueError(f"power_values={self.power_values!r} must be 'critic' or "
                             "'simulated'")
        if self.discrete_actor not in ("factorised", "autoregressive"):
            raise ValueError(f"discrete_actor={self.discrete_actor!r} must be 'factorised' or "
                             "'autoregressive'")
        if self.continuous_actor not in ("flat", "shared", "conditioned"):
            raise ValueError(f"continuous_actor={self.continuous_actor!r} must be 'flat', "
                             "'shared' or 'conditioned'")
        if self.continuous_actor != "flat" and not (self.iotd_block > 0 and self.uav_step > 0):
            raise ValueError(f"continuous_actor={self.continuous_actor!r} needs iotd_block > 0 "
                             f"and uav_step > 0 (the normalised UAV step); got iotd_block="
                             f"{self.iotd_block}, uav_step={self.uav_step}")
        if not self.uav_shaping >= 0:
            raise ValueError(f"uav_shaping={self.uav_shaping} must be >= 0 (0: off)")
        if self.uav_shaping > 0 and self.iotd_block <= 0:
            raise ValueError("uav_shaping > 0 needs the shared per-IoTD networks (iotd_block > 0, "
                             f"which locates the positions); got iotd_block={self.iotd_block}")
        if self.discrete_actor == "autoregressive" and self.iotd_block <= 0:
            raise ValueError("discrete_actor='autoregressive' needs the shared per-IoTD networks "
                             f"(iotd_block > 0); got iotd_block={self.iotd_block}")
        for name in (
            "critic_lr",
            "actor_lr",
            "alpha_lr",
            "tau",
            "tau_actor",
            "init_alpha",
            "mpo_epsilon",
            "mpo_epsilon_d",
            "mpo_epsilon_c",
            "move_weight",
            "power_weight",
            "server_weight",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.iotd_block < 0:
            raise ValueError(f"iotd_block={self.iotd_block} must be >= 0 (0 = flat networks)")
        if self.uav_geometry and not (self.iotd_block > 0 and self.uav_step > 0):
            raise ValueError(f"uav_geometry needs iotd_block > 0 and uav_step > 0 (the "
                             f"normalised UAV step); got iotd_block={self.iotd_block}, "
                             f"uav_step={self.uav_step}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma={self.gamma} must be in [0, 1)")
        for name in ("tau", "tau_actor"):  # Polyak weights: above 1 the targets diverge
            if not getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must be in (0, 1]")
        if self.alpha_continuous_max < 0:
            raise ValueError(f"alpha_continuous_max={self.alpha_continuous_max} must be >= 0 "
                             "(0: no bound)")
        if 0 < self.alpha_continuous_max < self.init_alpha:
            raise ValueError(f"alpha_continuous_max={self.alpha_continuous_max} is below "
                             f"init_alpha={self.init_alpha}")
        if self.mpo_samples < 1:
            raise ValueError(f"mpo_samples={self.mpo_samples} must be at least 1")
        if self.move_centroid and self.move_values != "simulated":
            raise ValueError("move_centroid adds a candidate to the simulated move search; it "
                             f"needs move_values='simulated', got {self.move_values!r}")
        if self.move_target_slot not in ("present", "next"):
            raise ValueError(f"move_target_slot={self.move_target_slot!r} must be 'present' or "
                             "'next'")
        if self.move_target_slot == "next" and self.move_values != "simulated":
            raise ValueError("move_target_slot='next' prices the simulated move search on the "
                             f"next slot; it needs move_values='simulated', got "
                             f"{self.move_values!r}")
        if self.move_value_net and (self.move_values != "simulated"
                                    or self.continuous_actor == "flat"):
            raise ValueError("move_value_net regresses on the simulated move search's candidate "
                             "rewards with the shared UAV networks; it needs "
                             "move_values='simulated' and a 'shared' or 'conditioned' "
                             f"continuous_actor, got move_values={self.move_values!r}, "
                             f"continuous_actor={self.continuous_actor!r}")
        if self.server_search < 0:
            raise ValueError(f"server_search={self.server_search} must be >= 0 (0: off)")
        if self.server_search_from_mode and self.server_search < 1:
            raise ValueError("server_search_from_mode searches from the mode too; it needs "
                             f"server_search >= 1, got {self.server_search}")
        if self.target_search not in ("local", "optimizer"):
            raise ValueError(f"target_search={self.target_search!r} must be 'local' or "
                             "'optimizer'")
        if self.target_search == "optimizer" and (self.server_search or
                                                  self.server_search_from_mode):
            raise ValueError("target_search='optimizer' takes the server targets from the "
                             "optimiser; it replaces the local server search, so server_search "
                             f"must be 0 and server_search_from_mode off, got server_search="
                             f"{self.server_search}, server_search_from_mode="
                             f"{self.server_search_from_mode}")
        if self.decision_samples < 0:
            raise ValueError(f"decision_samples={self.decision_samples} must be >= 0 (0: the "
                             "mode)")
        if self.decision_beam < 0:
            raise ValueError(f"decision_beam={self.decision_beam} must be >= 0 (0: off)")
        if self.decision_beam > 0 and not (
                self.discrete_actor == "autoregressive" and self.decision_samples == 0
                and (self.server_search > 0 or self.target_search == "optimizer")):
            raise ValueError(f"decision_beam={self.decision_beam} needs the autoregressive "
                             "discrete actor, server targets (server_search > 0 or "
                             "target_search='optimizer') and no decision_samples; got "
                             f"discrete_actor={self.discrete_actor!r}, server_search="
                             f"{self.server_search}, target_search={self.target_search!r}, "
                             f"decision_samples={self.decision_samples}")


class DecomposedCritic(nn.Module):
    """``q_k(s, a_c, load)`` for every IoTD k and server: [B, K, S], one flat MLP.

    ``forward(obs, a_c, weights)`` takes the discrete action as per-IoTD weights over the servers
    [B, K, S] (one-hots, or the policy's probabilities for the expected load) and summarises them
    as the servers' load ``sum_k weights_k / K``.
    """

    def __init__(
        self, obs_dim: int, cont_dim: int, k: int, s: int, hidden: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.k, self.s = k, s
        self.net = mlp(obs_dim + cont_dim + s, k * s, hidden)

    def forward(self, obs: Tensor, a_c: Tensor, weights: Tensor) -> Tensor:
        load = weights.sum(1) / self.k
        return self.net(torch.cat([obs, a_c, load], dim=-1)).view(-1, self.k, self.s)


class SharedIotdCritic(nn.Module):
    """``q_k`` [B, K, S] from one MLP shared by all IoTDs (parameter sharing; IoTDs are
    exchangeable in the model, so every transition trains the head K times).

    IoTD k's input: its own block of the observation (``block`` features), the global part of the
    observation, the mean of all IoTD blocks (context), its own power, the UAV moves, and the
    servers' load as three features per server: the share of IoTDs, of their requests and of
    their output length on that server (linear in the weights, so exact in expectation).
    """

    def __init__(
        self,
        obs_dim: int,
        cont_dim: int,
        k: int,
        s: int,
        block: int,
        hidden: tuple[int, ...],
        uav_step: float = 0.0,
    ) -> None:
        super().__init__()
        self.k, self.s, self.block, self.uav_step = k, s, block, uav_step
        n_global, n_uav = obs_dim - k * block, cont_dim - k
        n_geo = n_uav // 2 if uav_step > 0 else 0
        self.net = mlp(2 * block + n_global + 1 + n_uav + 3 * s + n_geo, s, hidden)

    def forward(self, obs: Tensor, a_c: Tensor, weights: Tensor) -> Tensor:
        k = self.k
        per, glob, ctx = split_iotd_blocks(obs, k, self.block)
        load = torch.einsum("bks,bkf->bsf", weights, load_sizes(per)).flatten(1) / k  # [B, 3 S]
        rest = torch.cat([glob, a_c[:, k:], load], -1).unsqueeze(1).expand(-1, k, -1)
        x = torch.cat([per, ctx.expand(-1, k, -1), a_c[:, :k, None], rest], -1)
        if self.uav_step > 0:
            x = torch.cat([x, post_move_distance(per, glob, a_c[:, k:], self.uav_step)], -1)
        return self.net(x)


def post_move_distance(per: Tensor, glob: Tensor, moves: Tensor, step: float) -> Tensor:
    """[B, K, M] horizontal distance from every IoTD to every UAV after the commanded moves, in
    the observation's position units (2 / area per metre), as the environment applies them: a
    move ``a`` in [-1, 1]^2 is ``a * step`` with its length capped at ``step``, and the UAV stays
    in the area. Differentiable in ``moves`` (the continuous agent's gradient flows through it).

    ``per``: IoTD blocks [B, K, block]; ``glob``: the global part [B, G], whose features 3 .. 3 +
    2M are the UAV positions (envs/encoding.py); ``moves``: [B, 2M] UAV moves.
    """
    m = moves.shape[-1] // 2
    a = moves.reshape(-1, m, 2)
    norm = a.square().sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
    uav = glob[:, 3 : 3 + 2 * m].reshape(-1, m, 2) + a * (step / norm.clamp_min(1.0))
    uav = uav.clamp(-1.0, 1.0)
    xy = per[..., IOTD_FEATURE["x"] : IOTD_FEATURE["y"] + 1]  # [B, K, 2]
    diff = xy.unsqueeze(2) - uav.unsqueeze(1)  # [B, K, M, 2]
    return diff.square().sum(-1).add(1e-6).sqrt()


def uav_shaping_reward(obs: Tensor, next_obs: Tensor, not_done: Tensor, k: int, block: int,
                       beta: float, gamma: float) -> Tensor:
    """[B, K] each IoTD's share of the potential-based shaping term ``gamma Phi(s') - Phi(s)``
    with ``Phi(s) = -beta * mean_k min_m d_km(s)`` (``d``: horizontal IoTD-to-UAV distance in the
    observation's position units; ``not_done`` [B] zeroes ``Phi`` of a terminal state). IoTD k's
    share is ``beta / K * (min_m d_km(s) - gamma min_m d_km(s'))``; the shares sum to the term.
    """

    def nearest(o: Tensor) -> Tensor:
        per, glob, _ = split_iotd_blocks(o, k, block)
        m = block - PER_IOTD  # a block holds PER_IOTD features and one gain per UAV
        return post_move_distance(per, glob, o.new_zeros(o.shape[0], 2 * m), 1.0).min(-1).values

    return beta / k * (nearest(obs) - gamma * not_done.unsqueeze(-1) * nearest(next_obs))


class SharedIotdActor(nn.Module):
    """Server logits [B, K * S] from one MLP shared by all IoTDs (own block, global part,
    context)."""

    def __init__(self, obs_dim: int, k: int, s: int, block: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.k, self.block = k, block
        self.net = mlp(2 * block + obs_dim - k * block, s, hidden)

    def forward(self, obs: Tensor) -> Tensor:
        per, glob, ctx = split_iotd_blocks(obs, self.k, self.block)
        x = torch.cat([per, ctx.expand(-1, self.k, -1), glob.unsqueeze(1).expand(-1, self.k, -1)],
                      -1)
        return self.net(x).flatten(1)


class AutoregressiveIotdActor(nn.Module):
    """Server logits [B, K * S] of IoTDs placed one after another, from one MLP shared by all
    IoTDs: IoTD k's categorical sees what :class:`SharedIotdActor` sees plus the servers' load
    from the IoTDs placed before it (the critic's three features per server, over those IoTDs
    only), so the joint policy ``prod_k pi(a_k | s, a_<k)`` can coordinate the IoTDs' choices.

    The order is by requested output length, longest first (ties by index), the order in which
    the greedy heuristic places tasks. :meth:`forward` gives the conditionals of given servers
    (teacher forcing, one pass); :meth:`decode` draws servers one IoTD at a time.
    """

    def __init__(self, obs_dim: int, k: int, s: int, block: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.k, self.s, self.block = k, s, block
        self.net = mlp(2 * block + obs_dim - k * block + 3 * s, s, hidden)

    def _parts(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(per-IoTD inputs without the load [B, K, F], load sizes [B, K, 3], order [B, K])."""
        per, glob, ctx = split_iotd_blocks(obs, self.k, self.block)
        base = torch.cat([per, ctx.expand(-1, self.k, -1),
                          glob.unsqueeze(1).expand(-1, self.k, -1)], -1)
        return base, load_sizes(per), placement_order(per)

    def _logits(self, base: Tensor, load: Tensor) -> Tensor:
        """[..., S] server logits of IoTDs with inputs ``base`` [..., F] and the servers' load
        ``load`` [..., S, 3] from the IoTDs placed before them."""
        return self.net(torch.cat([base, load.flatten(-2) / self.k], -1))

    def forward(self, obs: Tensor, servers: Tensor) -> Tensor:
        base, size, order = self._parts(obs)
        share = nn.functional.one_hot(servers, self.s).float().unsqueeze(-1) * size.unsqueeze(2)
        index = order[..., None, None].expand_as(share)
        ordered = share.gather(1, index)  # [B, K, S, 3] in placement order
        before = torch.cat([torch.zeros_like(ordered[:, :1]), ordered[:, :-1]], 1).cumsum(1)
        load = torch.empty_like(before).scatter_(1, index, before)  # back to IoTD positions
        return self._logits(base, load).flatten(1)

    @torch.no_grad()
    def decode(self, obs: Tensor, mask: Tensor, gumbel: Tensor | None = None) -> Tensor:
        """int64 [B, K] servers placed in order: each IoTD's most probable allowed server given
        those placed before it (``gumbel`` None), or a sample, ``argmax(log p + G)`` with the
        Gumbel draws ``gumbel`` [B, K, S] (:func:`gumbel_noise`)."""
        base, size, order = self._parts(obs)
        rows = torch.arange(obs.shape[0])
        load = base.new_zeros(obs.shape[0], self.s, 3)
        servers = torch.zeros(obs.shape[0], self.k, dtype=torch.long)
        for j in range(self.k):
            col = order[:, j]
            logits = self._logits(base[rows, col], load)
            score = MaskedCategorical(logits.unsqueeze(1), mask[rows, col].unsqueeze(1)).log_probs
            if gumbel is not None:
                score = score + gumbel[rows, col].unsqueeze(1)
            pick = score[:, 0].argmax(-1)
            servers[rows, col] = pick
            load = load + nn.functional.one_hot(pick, self.s).float().unsqueeze(-1) * \
                size[rows, col].unsqueeze(1)
        return servers

    @torch.no_grad()
    def beam(self, obs: Tensor, mask: Tensor, width: int) -> Tensor:
        """int64 [B, W, K] the ``W = min(width, S^K)`` most probable placements found by a beam
        search of ``width`` in placement order, most probable first (a placement that needs a
        masked server ranks below every allowed one)."""
        base, size, order = self._parts(obs)
        b, k, s = obs.shape[0], self.k, self.s
        rows = torch.arange(b)
        score = base.new_zeros(b, 1)
        servers = torch.zeros(b, 1, k, dtype=torch.long)
        load = base.new_zeros(b, 1, s, 3)
        for j in range(k):
            col, w = order[:, j], score.shape[1]
            x = base[rows, col].unsqueeze(1).expand(-1, w, -1).reshape(b * w, -1)
            logits = self._logits(x, load.reshape(b * w, s, 3)).view(b, w, s)
            logp = MaskedCategorical(logits, mask[rows, col].unsqueeze(1).expand(-1, w, -1))
            top = (score.unsqueeze(-1) + logp.log_probs).view(b, w * s).topk(min(width, w * s))
            parent, pick = top.indices // s, top.indices % s
            score = top.values
            servers = servers.gather(1, parent.unsqueeze(-1).expand(-1, -1, k)).clone()
            servers[rows.unsqueeze(1), torch.arange(pick.shape[1]), col.unsqueeze(1)] = pick
            load = load.gather(1, parent[..., None, None].expand(-1, -1, s, 3)) + \
                nn.functional.one_hot(pick, s).float().unsqueeze(-1) * size[rows, col][:, None,
                                                                                        None]
        return servers


class ServerContextNet(AutoregressiveIotdActor):
    """IoTD k's server logits given the servers of all the other IoTDs [B, K * S]: the
    autoregressive actor's inputs with the load of every other IoTD instead of those placed
    before it (``decision_beam``). Fitted to the stored server targets, it scores a whole
    assignment by its pseudo-likelihood ``sum_k log p(a_k | s, a_-k)``."""

    def forward(self, obs: Tensor, servers: Tensor) -> Tensor:
        base, size, _ = self._parts(obs)
        share = nn.functional.one_hot(servers, self.s).float().unsqueeze(-1) * size.unsqueeze(2)
        return self._logits(base, share.sum(1, keepdim=True) - share).flatten(1)

    def pseudo_log_likelihood(self, obs: Tensor, mask: Tensor, servers: Tensor,
                              used: Tensor) -> Tensor:
        """[B] ``sum_k log p(a_k | s, a_-k)`` of servers [B, K] over the IoTDs ``used``."""
        logp = MaskedCategorical(self(obs, servers).view(-1, self.k, self.s),
                                 mask).log_prob(servers)
        return torch.where(used, logp, torch.zeros_like(logp)).sum(-1)


class SharedContinuousActor(nn.Module):
    """The continuous agent's Gaussian parameters [B, 2 (K + 2M)] (means, then log-stds, in the
    flat actor's layout: K powers, then the M moves as (x, y) pairs) from networks shared across
    IoTDs and across UAVs, which see positions relative to each UAV.

    Power of IoTD k: one MLP on what :class:`SharedIotdActor` sees (own block, context, global).
    Move of UAV m: a pair MLP scores every IoTD k and gives it a value vector from its block, its
    offset to UAV m (in position units, and in moves clipped to [-1, 1]: ``offset / uav_step``),
    their distance and its gain to UAV m; the UAV's MLP then reads the softmax-weighted sum of
    the values and offsets (attention over the IoTDs and a "none" slot of value 0), the UAV's own
    position and the global part. A rule such as "move toward a weighted centroid of the IoTDs"
    is then one linear map of the pooled offsets, which the flat actor would have to learn from
    absolute coordinates.

    ``n_servers > 0`` conditions it on the discrete action (``continuous_actor="conditioned"``):
    :meth:`forward` then takes the servers [B, K], IoTD k's power MLP also reads the one-hot of
    its server, and the pair MLP of (UAV m, IoTD k) also reads whether k's task goes to UAV m
    (servers 0..M-1 are the UAVs), so the moves can follow the tasks each UAV will serve.
    """

    def __init__(self, obs_dim: int, k: int, m: int, block: int, hidden: tuple[int, ...],
                 uav_step: float, width: int = 32, n_servers: int = 0) -> None:
        super().__init__()
        self.k, self.m, self.block, self.step = k, m, block, uav_step
        self.n_servers = n_servers
        n_global = obs_dim - k * block
        self.power = mlp(2 * block + n_global + n_servers, 2, hidden)
        self.pair = mlp(block + 6 + (1 if n_servers else 0), 1 + width, hidden)
        self.uav = mlp(width + 4 + 2 + n_global, 4, hidden)

    def forward(self, obs: Tensor, servers: Tensor | None = None) -> Tensor:
        k, m = self.k, self.m
        power_in, pair_in = [], []  # the conditioned actor's server features
        if self.n_servers:
            onehot = _server_onehot(servers, self.n_servers, obs.dtype)
            power_in = [onehot]
            pair_in = [onehot[..., :m].transpose(1, 2).unsqueeze(-1)]  # [B, M, K, 1]
        per, glob, ctx = split_iotd_blocks(obs, k, self.block)
        power = self.power(torch.cat([per, ctx.expand(-1, k, -1),
                                      glob.unsqueeze(1).expand(-1, k, -1), *power_in],
                                     -1))  # [B, K, 2]
        head = self.uav(uav_head_inputs(self.pair, per, glob, m, self.step, pair_in))
        mean = torch.cat([power[..., 0], head[..., :2].flatten(1)], -1)
        return torch.cat([mean, power[..., 1], head[..., 2:].flatten(1)], -1)


def _server_onehot(servers: Tensor | None, n_servers: int, dtype: torch.dtype) -> Tensor:
    """[B, K, S] the one-hot servers a conditioned network reads (refused if not given)."""
    if servers is None:
        raise ValueError("a network conditioned on the discrete action needs the servers [B, K]")
    return nn.functional.one_hot(servers, n_servers).to(dtype)


def uav_head_inputs(pair: nn.Module, per: Tensor, glob: Tensor, m: int, step: float,
                    pair_in: list[Tensor]) -> Tensor:
    """[B, M, width + 6 + G] what a per-UAV head reads (:class:`SharedContinuousActor`): the
    attention-pooled values and offsets of the IoTDs (``pair`` scores each (UAV, IoTD) pair from
    the IoTD's block, its offset, clipped move, distance and gain to the UAV, and ``pair_in``),
    the UAV's position and the global part of the observation."""
    k = per.shape[1]
    uav = glob[:, 3 : 3 + 2 * m].reshape(-1, m, 2)
    xy = per[..., IOTD_FEATURE["x"] : IOTD_FEATURE["y"] + 1]
    offset = xy.unsqueeze(1) - uav.unsqueeze(2)  # [B, M, K, 2]
    moves = (offset / step).clamp(-1.0, 1.0)
    dist = offset.square().sum(-1, keepdim=True).add(1e-6).sqrt()
    gain = per[..., PER_IOTD : PER_IOTD + m].transpose(1, 2).unsqueeze(-1)  # [B, M, K, 1]
    out = pair(torch.cat([per.unsqueeze(1).expand(-1, m, -1, -1), offset, moves, dist,
                          gain, *pair_in], -1))  # [B, M, K, 1 + width]
    # softmax over the K IoTDs and a "none" slot of score 0 and value 0, so the scores' level
    # (how much attention the IoTDs get at all) is learned, not a free shift
    score = torch.cat([out[..., 0], torch.zeros_like(out[..., :1, 0])], -1)
    weight = torch.softmax(score, dim=-1)[..., :k, None]
    pooled = (weight * torch.cat([out[..., 1:], offset, moves], -1)).sum(2)
    return torch.cat([pooled, uav, glob.unsqueeze(1).expand(-1, m, -1)], -1)


class MoveValueNet(nn.Module):
    """[B, M, C] per UAV a value of each of C fixed candidate moves (``move_value_net``): the
    moves' network of :class:`SharedContinuousActor` (the same inputs, and with ``n_servers > 0``
    the same conditioning on the discrete action) with C outputs, regressed on the candidates'
    simulated rewards less their mean."""

    def __init__(self, obs_dim: int, k: int, m: int, block: int, hidden: tuple[int, ...],
                 uav_step: float, n_candidates: int, width: int = 32,
                 n_servers: int = 0) -> None:
        super().__init__()
        self.k, self.m, self.block, self.step = k, m, block, uav_step
        self.n_servers = n_servers
        self.pair = mlp(block + 6 + (1 if n_servers else 0), 1 + width, hidden)
        self.uav = mlp(width + 4 + 2 + obs_dim - k * block, n_candidates, hidden)

    def forward(self, obs: Tensor, servers: Tensor | None = None) -> Tensor:
        pair_in = []
        if self.n_servers:
            onehot = _server_onehot(servers, self.n_servers, obs.dtype)
            pair_in = [onehot[..., :self.m].transpose(1, 2).unsqueeze(-1)]
        per, glob, _ = split_iotd_blocks(obs, self.k, self.block)
        return cast(Tensor, self.uav(uav_head_inputs(self.pair, per, glob, self.m, self.step,
                                                     pair_in)))


def placement_order(per: Tensor) -> Tensor:
    """[B, K] the IoTDs in placement order: by requested output length, longest first (ties by
    index)."""
    return torch.argsort(-per[..., IOTD_FEATURE["output_tokens"]], dim=1, stable=True)


def task_present(obs: Tensor, mask: Tensor, k: int, block: int) -> Tensor:
    """bool [B, K] the IoTDs with a task this slot and at least one allowed server."""
    per = obs[:, : k * block].reshape(-1, k, block)
    return (per[..., IOTD_FEATURE["active"]] > 0.5) & mask.any(-1)


def load_sizes(per: Tensor) -> Tensor:
    """[B, K, 3] what an IoTD adds to its server's load: 1, and its request and output-length
    features rescaled from [-1, 1] to [0, 1]."""
    feats = (per[..., [IOTD_FEATURE["requests"], IOTD_FEATURE["output_tokens"]]] + 1.0) / 2
    return torch.cat([torch.ones_like(feats[..., :1]), feats], -1)


def split_iotd_blocks(obs: Tensor, k: int, block: int) -> tuple[Tensor, Tensor, Tensor]:
    """(per-IoTD blocks [B, K, block], the global rest [B, G], their mean [B, 1, block])."""
    per = obs[:, : k * block].reshape(-1, k, block)
    return per, obs[:, k * block :], per.mean(1, keepdim=True)


def seed_major(x: Tensor, n_seeds: int) -> Tensor:
    """[N, S * B, ...] samples per state as critic rows [S * N * B, ...]: S blocks of rows, seed
    outermost, as seed-batched networks take them (unchanged order of rows for one seed)."""
    n = x.shape[0]
    return x.reshape(n, n_seeds, -1, *x.shape[2:]).transpose(0, 1).flatten(0, 2)


def unseed_major(x: Tensor, n: int, n_seeds: int) -> Tensor:
    """The inverse of :func:`seed_major`: rows [S * N * B, ...] as [N, S * B, ...]."""
    return x.reshape(n_seeds, n, -1, *x.shape[1:]).transpose(0, 1).flatten(1, 2)


def q_joint(q_ks: Tensor, onehot: Tensor) -> Tensor:
    """[B] Q of a joint discrete action from per-IoTD values [B, K, S] and one-hots [B, K, S]."""
    return (q_ks * onehot).sum(dim=(-1, -2))


class AdSac:
    """The AD-SAC agent (and, with ``use_mpo=False``, its no-MPO ablation).

    Args:
        obs_dim: observation length; n_iotds, n_servers: K and S; cont_dim: K + 2M.
        config: hyperparameters; seed: seeds torch's generator for init and sampling.
    """

    def __init__(
        self,
        obs_dim: int,
        n_iotds: int,
        n_servers: int,
        cont_dim: int,
        config: AdSacConfig,
        seed: int,
    ) -> None:
        self.cfg, self.k, self.s, self.a = config, n_iotds, n_servers, cont_dim
        self.obs_dim = obs_dim
        self.n_seeds = 1  # > 1: a seed-batched agent (seed_batched)
        torch.manual_seed(seed)
        self.gen: torch.Generator | SeedGenerators = torch.Generator().manual_seed(seed)
        h = config.hidden
        blk = config.iotd_block
        self.ar = config.discrete_actor == "autoregressive"
        self.actor_d: nn.Module = (
            AutoregressiveIotdActor(obs_dim, n_iotds, n_servers, blk, config.iotd_hidden)
            if self.ar
            else SharedIotdActor(obs_dim, n_iotds, n_servers, blk, config.iotd_hidden)
            if blk
            else mlp(obs_dim, n_iotds * n_servers, h)
        )
        self.cond = config.continuous_actor == "conditioned"
        self.actor_c: nn.Module = (
            SharedContinuousActor(obs_dim, n_iotds, (cont_dim - n_iotds) // 2, blk,
                                  config.iotd_hidden, config.uav_step,
                                  n_servers=n_servers if self.cond else 0)
            if config.continuous_actor in ("shared", "conditioned")
            else mlp(obs_dim, 2 * cont_dim, h)
        )
        self.old_d, self.old_c = copy.deepcopy(self.actor_d), copy.deepcopy(self.actor_c)
        n_q = 2  # modern: twin Q shared by both agents; paper: one Q per agent
        self.critics = nn.ModuleList(
            SharedIotdCritic(obs_dim, cont_dim, n_iotds, n_servers, blk, config.iotd_hidden,
                             config.uav_step if config.uav_geometry else 0.0)
            if blk
            else DecomposedCritic(obs_dim, cont_dim, n_iotds, n_servers, h)
            for _ in range(n_q)
        )
        self.critic_targets = copy.deepcopy(self.critics)
        self.values = (
            nn.ModuleList(mlp(obs_dim, 1, h) for _ in range(2))
            if config.form == "paper"
            else nn.ModuleList()
        )
        self.value_targets = copy.deepcopy(self.values)
        self.move_value = (
            nn.ModuleList([MoveValueNet(obs_dim, n_iotds, (cont_dim - n_iotds) // 2, blk,
                                        config.iotd_hidden, config.uav_step,
                                        len(MOVE_CANDIDATES),
                                        n_servers=n_servers if self.cond else 0)])
            if config.move_value_net
            else nn.ModuleList()
        )
        self.context_d = (
            ServerContextNet(obs_dim, n_iotds, n_servers, blk, config.iotd_hidden)
            if config.decision_beam
            else nn.ModuleList()
        )
        log_alpha = float(np.log(config.init_alpha))
        self.log_alpha = torch.tensor([log_alpha, log_alpha], requires_grad=True)  # d, c
        self.eta_raw = torch.tensor(0.5, requires_grad=True)
        self.lagrange_raw = torch.zeros(2, requires_grad=True)
        self._make_optimizers()
        self.target_entropy_c = -float(cont_dim)

    @property
    def needs_server_rewards(self) -> bool:
        """Whether the training loop must store each transition's server-reward table."""
        return self.cfg.server_values == "exact"

    @property
    def needs_move_targets(self) -> bool:
        """Whether the training loop must store each transition's UAV move targets."""
        return self.cfg.move_values in ("simulated", "centroid")

    @property
    def move_target_rule(self) -> str:
        """Which move targets the loop stores: "search" (the simulated one-slot move search) or
        "centroid" (greedy's UAV rule for the stored servers)."""
        return "centroid" if self.cfg.move_values == "centroid" else "search"

    @property
    def needs_power_targets(self) -> bool:
        """Whether the training loop must store each transition's transmit-power targets."""
        return self.cfg.power_values == "simulated"

    @property
    def move_centroid_candidate(self) -> bool:
        """Whether the loop's move search also prices each UAV's greedy centroid move."""
        return self.cfg.move_centroid

    @property
    def move_target_next_slot(self) -> bool:
        """Whether the loop prices the move targets on the slot the moves reach."""
        return self.cfg.move_target_slot == "next"

    @property
    def move_value_net(self) -> bool:
        """Whether the loop must store the move candidates' rewards for :class:`MoveValueNet`."""
        return self.cfg.move_value_net

    @property
    def server_search_rounds(self) -> int:
        """Rounds of the server search whose targets the loop must store (0: none)."""
        return self.cfg.server_search

    @property
    def target_search(self) -> str:
        """Where the loop's server and power targets come from: "local" (the local searches) or
        "optimizer" (the per-slot optimiser; server targets are then always stored)."""
        return self.cfg.target_search

    @property
    def server_search_from_mode(self) -> bool:
        """Whether the loop's server search also starts from :meth:`mode_servers`."""
        return self.cfg.server_search_from_mode

    @torch.no_grad()
    def mode_servers(self, obs: NDArray[np.float32], mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        """[B, K] the discrete actor's mode (the servers of a deterministic action without
        decision-time samples); draws nothing, so the agent's generator is left as it was."""
        return self._mode_d(torch.as_tensor(obs), torch.as_tensor(mask)).numpy().astype(np.int64)

    def _make_optimizers(self) -> None:
        config = self.cfg
        self.opt_actor = torch.optim.Adam(
            [*self.actor_d.parameters(), *self.actor_c.parameters(),
             *self.context_d.parameters()], lr=config.actor_lr
        )
        self.opt_critic = torch.optim.Adam(
            [*self.critics.parameters(), *self.values.parameters(),
             *self.move_value.parameters()], lr=config.critic_lr
        )
        self.opt_alpha = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        self.opt_dual = torch.optim.Adam([self.eta_raw, self.lagrange_raw], lr=1e-2)

    # -- seed batching --------------------------------------------------------------------
    @classmethod
    def seed_batched(cls, agents: list[AdSac]) -> AdSac:
        """One agent training the S given agents (same configuration, any state) as stacked
        networks on S blocks of rows (:mod:`satedge.agents.common.seedbatch`).

        Its batches hold the S seeds one after another (``[S * B, ...]``); :meth:`act` takes
        observations the same way. Each seed keeps its own generator, temperatures, dual
        variables and Adam state; losses are averaged per seed and summed over seeds, so each
        seed's gradient is that of its own loss. Metrics are per-seed lists.
        """
        first = agents[0]
        if any(a.cfg != first.cfg or a.n_seeds != 1 for a in agents):
            raise ValueError("seed_batched takes single-seed agents of one configuration")
        new = copy.copy(first)
        new.n_seeds = len(agents)
        for name in _MODULES:
            setattr(new, name, stack_modules([getattr(a, name) for a in agents]))
        new.log_alpha = torch.zeros(len(agents), 2, requires_grad=True)
        new.eta_raw = torch.zeros(len(agents), requires_grad=True)
        new.lagrange_raw = torch.zeros(len(agents), 2, requires_grad=True)
        new.gen = SeedGenerators([torch.Generator() for _ in agents])
        new._make_optimizers()
        new.load_state_dict(stack_state([a.state_dict() for a in agents]))
        return new

    def seed_state_dict(self, seed: int) -> dict[str, Any]:
        """Seed ``seed``'s state as a single-seed agent's :meth:`state_dict` (a checkpoint of
        the separate run)."""
        return unstack_state(self.state_dict(), seed) if self.n_seeds > 1 else self.state_dict()

    def seed_agent(self, seed: int) -> AdSac:
        """Seed ``seed`` as a single-seed agent (a copy, e.g. to evaluate it)."""
        with torch.random.fork_rng():  # building seeds torch's global RNG; leave it as it was
            agent = AdSac(self.obs_dim, self.k, self.s, self.a, self.cfg, seed=0)
        agent.load_state_dict(self.seed_state_dict(seed))
        return agent

    def _rows(self, per_seed: Tensor, rows: int) -> Tensor:
        """Per-seed values [S, ...] as per-row values [rows, ...] (unchanged for one seed)."""
        if self.n_seeds == 1:
            return per_seed
        return per_seed.repeat_interleave(rows // self.n_seeds, dim=0)

    def _mean(self, x: Tensor) -> Tensor:
        """Mean over the batch: [] for one seed, per seed [S] for a seed-batched agent."""
        return x.mean() if self.n_seeds == 1 else x.reshape(self.n_seeds, -1).mean(1)

    def _total(self, loss: Tensor) -> Tensor:
        """What to differentiate: the loss, or the sum of the seeds' losses."""
        return loss if self.n_seeds == 1 else loss.sum()

    def _used_mean(self, x: Tensor, used: Tensor) -> Tensor:
        """Mean of ``x`` [B, J] over the parts that are ``used`` [B, J] (0 or 1), per seed."""
        return self._mean((used * x).sum(-1)) / self._mean(used.sum(-1)).clamp_min(1e-9)

    def _metric(self, x: Tensor) -> Any:
        """A logged value: a float, or a list of S floats (one per seed)."""
        x = x.detach()
        return float(x) if self.n_seeds == 1 else x.reshape(self.n_seeds, -1).mean(1).tolist()

    # -- policies -------------------------------------------------------------------------
    def _dist_d(self, net: nn.Module, obs: Tensor, mask: Tensor,
                given: Tensor | None = None) -> MaskedCategorical:
        """Each IoTD's categorical; autoregressive: conditioned on the servers ``given`` [B, K]
        to the IoTDs placed before it."""
        if not self.ar:
            return MaskedCategorical(net(obs).view(-1, self.k, self.s), mask)
        if given is None:
            raise ValueError("the autoregressive discrete actor's categoricals need the servers "
                             "they are conditioned on")
        return MaskedCategorical(net(obs, given).view(-1, self.k, self.s), mask)

    def _sample_d(self, net: nn.Module, obs: Tensor, mask: Tensor, gen: Any, n: int = 0,
                  dist: MaskedCategorical | None = None) -> Tensor:
        """Servers drawn from the discrete policy: [B, K], or ``n`` per state [n, B, K] (the
        seeds along dim 1 of ``gen``'s draws, as :func:`seed_axis` sets). ``dist``: ``net``'s
        factorised categoricals at ``obs`` if already computed."""
        if not self.ar:
            dd = dist if dist is not None else self._dist_d(net, obs, mask)
            if not n:
                return dd.sample(gen)
            return MaskedCategorical(dd.logits.expand(n, *dd.logits.shape)).sample(gen)
        shape = (obs.shape[0], self.k, self.s)
        ar = cast(AutoregressiveIotdActor, net)
        if not n:
            return ar.decode(obs, mask, gumbel_noise(shape, gen))
        g = gumbel_noise((n, *shape), gen)
        o, m = (seed_major(x.expand(n, *x.shape), self.n_seeds) for x in (obs, mask))
        return unseed_major(ar.decode(o, m, seed_major(g, self.n_seeds)), n, self.n_seeds)

    def _mode_d(self, obs: Tensor, mask: Tensor) -> Tensor:
        if self.ar:
            return cast(AutoregressiveIotdActor, self.actor_d).decode(obs, mask)
        return self._dist_d(self.actor_d, obs, mask).mode()

    def _log_prob_d(self, net: nn.Module, obs: Tensor, mask: Tensor, servers: Tensor,
                    dist: MaskedCategorical) -> Tensor:
        """[N, B, K] per-IoTD log-probabilities of N server samples [N, B, K]: from ``dist``
        (factorised), or each sample's own conditionals (autoregressive)."""
        if not self.ar:
            return dist.log_prob(servers)
        n, seeds = servers.shape[0], self.n_seeds
        o, m = (seed_major(x.expand(n, *x.shape), seeds) for x in (obs, mask))
        a = seed_major(servers, seeds)
        return unseed_major(self._dist_d(net, o, m, a).log_prob(a), n, seeds)

    def _dist_c(self, net: nn.Module, obs: Tensor, servers: Tensor | None = None
                ) -> TanhGaussian:
        """The continuous Gaussian at ``obs``; the conditioned actor's given the ``servers``
        [B, K] (ignored by the others)."""
        mean, log_std = (net(obs, servers) if self.cond else net(obs)).chunk(2, dim=-1)
        return TanhGaussian(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))

    @torch.no_grad()
    def act(
        self, obs: NDArray[np.float32], mask: NDArray[np.bool_], deterministic: bool = False
    ) -> AgentAction:
        o, m = torch.as_tensor(obs), torch.as_tensor(mask)
        if deterministic:
            a_d = self._mode_d(o, m)
            if self.cfg.decision_beam:
                a_d = self._best_by_context(o, m, a_d, self.cfg.decision_beam)
            a_c = self._dist_c(self.actor_c, o, a_d).mode()
            if self.cfg.decision_samples:
                a_d = self._best_by_critic(o, m, a_d, a_c, self.cfg.decision_samples)
                if self.cond:  # the moves and powers for the servers chosen
                    a_c = self._dist_c(self.actor_c, o, a_d).mode()
        else:  # the servers first: the conditioned actor draws its part given them
            a_d = self._sample_d(self.actor_d, o, m, self.gen)
            a_c, _ = self._dist_c(self.actor_c, o, a_d).rsample(self.gen)
        return AgentAction(a_d.numpy().astype(np.int64), a_c.numpy().astype(np.float32))

    def _best_by_critic(self, obs: Tensor, mask: Tensor, mode: Tensor, a_c: Tensor,
                        n: int) -> Tensor:
        """[R, K] the best by min-twin Q of the mode and ``n`` samples of ``dd`` at ``a_c``.

        The samples come from a generator seeded 0 at every call (one per seed when
        seed-batched, each drawing a separate run's shape), so a deterministic action stays a
        function of the observation and leaves the agent's generator alone."""
        seeds = self.n_seeds
        gen: torch.Generator | SeedGenerators = torch.Generator().manual_seed(0)
        if seeds > 1:
            gen = SeedGenerators([torch.Generator().manual_seed(0) for _ in range(seeds)], axis=1)
        cands = torch.cat([mode[None], self._sample_d(self.actor_d, obs, mask, gen, n)])
        c, r, k = cands.shape
        onehot = seed_major(nn.functional.one_hot(cands, self.s).float(), seeds)
        o, a = (seed_major(x.expand(c, *x.shape), seeds) for x in (obs, a_c))
        q = torch.stack([q_joint(cr(o, a, onehot), onehot) for cr in self._role_critics(0)])
        q = q.min(0).values.view(seeds, c, r // seeds).transpose(0, 1).reshape(c, r)
        return cands.gather(0, q.argmax(0).view(1, r, 1).expand(1, r, k)).squeeze(0)

    @torch.no_grad()
    def _best_by_context(self, obs: Tensor, mask: Tensor, mode: Tensor, width: int) -> Tensor:
        """[R, K] of the mode and the actor's beam of ``width``, the assignment of highest
        pseudo-likelihood under :class:`ServerContextNet` (ties: the earlier, the mode first);
        draws nothing."""
        beams = cast(AutoregressiveIotdActor, self.actor_d).beam(obs, mask, width)
        cands = torch.cat([mode[None], beams.transpose(0, 1)])  # [C, R, K]
        c, r, k = cands.shape
        used = task_present(obs, mask, self.k, self.cfg.iotd_block)
        o, m, u = (seed_major(x.expand(c, *x.shape), self.n_seeds) for x in (obs, mask, used))
        a = seed_major(cands, self.n_seeds)
        score = cast(ServerContextNet, self.context_d).pseudo_log_likelihood(o, m, a, u)
        score = unseed_major(score.unsqueeze(-1), c, self.n_seeds).squeeze(-1)  # [C, R]
        return cands.gather(0, score.argmax(0).view(1, r, 1).expand(1, r, k)).squeeze(0)

    def _context_loss(self, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        """The negative pseudo-log-likelihood of the stored server targets under
        :class:`ServerContextNet` (each IoTD's target given the others'), summed over the IoTDs
        with a task."""
        if b.server_targets is None:
            raise ValueError("decision_beam > 0 needs server_targets in the batch")
        target, used = b.server_targets[..., 0].long(), b.server_targets[..., 1] > 0
        net = cast(ServerContextNet, self.context_d)
        loss = self._mean(-net.pseudo_log_likelihood(b.obs, b.mask, target, used))
        return loss, {"loss/server_context": self._metric(loss)}

    # -- update ---------------------------------------------------------------------------
    def update(self, batch: ReplayBatch) -> dict[str, Any]:
        metrics = self._update_critic(batch)
        metrics.update(self._update_actors(batch))
        for target, source in (
            (self.critic_targets, self.critics),
            (self.value_targets, self.values),
        ):
            soft_update(target, source, self.cfg.tau)
        soft_update(self.old_d, self.actor_d, self.cfg.tau_actor)
        soft_update(self.old_c, self.actor_c, self.cfg.tau_actor)
        return metrics

    def _alphas(self, rows: int) -> tuple[Tensor, Tensor]:
        """(alpha_d, alpha_c): scalars, or per row [rows, 1] and [rows] when seed-batched."""
        alpha = self.log_alpha.detach().exp()
        if self.n_seeds == 1:
            return alpha[0], alpha[1]
        per_row = self._rows(alpha, rows)
        return per_row[:, :1], per_row[:, 1]

    def _expected_q(self, critic: nn.Module, obs: Tensor, a_c: Tensor, probs: Tensor) -> Tensor:
        q_ks = critic(obs, a_c, probs.sum(dim=1) / self.k)
        return (q_ks * probs).sum(dim=(-1, -2))

    def _soft_value(self, obs: Tensor, mask: Tensor, critics: list[nn.Module]) -> Tensor:
        """[B, K] per-IoTD shares of ``V(s) = E_pi[min_i Q_i] + alpha_d H_d - alpha_c log pi_c``
        (one a_c sample; the twin with the lower total is taken per state, and the continuous
        entropy term is shared equally over the K IoTDs). Summed over K it is V(s)."""
        alpha_d, alpha_c = self._alphas(obs.shape[0])
        # autoregressive: the conditionals along one sampled placement, whose entropies sum to
        # an unbiased estimate of the joint entropy (chain rule)
        # conditioned continuous actor: its Gaussian given that same (or, factorised, one
        # sampled) placement, while the critic's expectation runs over the discrete policy
        given = self._sample_d(self.actor_d, obs, mask, self.gen) if self.ar or self.cond \
            else None
        dd = self._dist_d(self.actor_d, obs, mask, given)
        dc = self._dist_c(self.actor_c, obs, given)
        a_c, u = dc.rsample(self.gen)
        q_k = torch.stack([(c(obs, a_c, dd.probs) * dd.probs).sum(-1) for c in critics])  # [n,B,K]
        pick = q_k.sum(-1).argmin(0)  # [B]
        q_k = q_k.gather(0, pick.view(1, -1, 1).expand(1, *q_k.shape[1:])).squeeze(0)
        ent_c = (-alpha_c * dc.log_prob(a_c, u) / self.k).unsqueeze(-1)
        return q_k + alpha_d * dd.entropy() + ent_c

    def _role_critics(self, role: int) -> list[nn.Module]:
        """Critics an agent maximises: the twin pair (modern) or its own Q (paper; 0 = discrete
        agent, 1 = continuous agent)."""
        return list(self.critics) if self.cfg.form == "modern" else [self.critics[role]]

    def _update_critic(self, b: ReplayBatch) -> dict[str, float]:
        onehot = nn.functional.one_hot(b.action_d, self.s).float()
        per_task = self.cfg.form == "modern" and self.cfg.reward_decomposition
        # per-IoTD values [B, K] (per_task) or joint values [B]
        q = [(c(b.obs, b.action_c, onehot) * onehot).sum(-1) for c in self.critics]
        if not per_task:
            q = [qi.sum(-1) for qi in q]
        with torch.no_grad():
            if self.cfg.form == "modern":
                v = self._soft_value(b.next_obs, b.next_mask, list(self.critic_targets))
                v_next = [v if per_task else v.sum(-1)] * 2
            else:  # each agent's Q regresses on its own target value network (SAC v1)
                v_next = [v(b.next_obs).squeeze(-1) for v in self.value_targets]
        if per_task:
            assert b.reward_k is not None, "per-task critic targets need reward_k in the batch"
            r, not_done = b.reward_k, (1.0 - b.done).unsqueeze(-1)
        else:
            r, not_done = b.reward, 1.0 - b.done
        if self.cfg.uav_shaping > 0:
            shaping = uav_shaping_reward(b.obs, b.next_obs, 1.0 - b.done, self.k,
                                         self.cfg.iotd_block, self.cfg.uav_shaping,
                                         self.cfg.gamma)
            r = r + (shaping if per_task else shaping.sum(-1))
        ys = [r + self.cfg.gamma * not_done * v for v in v_next]
        if per_task:  # sum of the per-IoTD squared errors, mean over the batch
            loss = sum(self._mean(((qi - y) ** 2).sum(-1)) for qi, y in zip(q, ys, strict=True))
        else:
            loss = sum(self._mean((qi - y) ** 2) for qi, y in zip(q, ys, strict=True))
        if self.cfg.form == "paper":
            with torch.no_grad():
                v_targets = [self._soft_value(b.obs, b.mask, [c]).sum(-1) for c in self.critics]
            loss = loss + cast(Tensor, sum(
                self._mean((v(b.obs).squeeze(-1) - t) ** 2)
                for v, t in zip(self.values, v_targets, strict=True)
            ))
        assert isinstance(loss, Tensor)
        metrics: dict[str, Any] = {}
        if self.cfg.move_value_net:
            loss_v, metrics = self._move_value_loss(b)
            loss = loss + loss_v
        self.opt_critic.zero_grad()
        self._total(loss).backward()
        self.opt_critic.step()
        return {
            "loss/critic": self._metric(loss),
            "train/q_mean": self._metric(self._mean(q[0].sum(-1) if per_task else q[0])),
            **metrics,
        }

    def _move_value_loss(self, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        """The :class:`MoveValueNet` regression: per UAV whose position mattered (spread > 0),
        the mean over the C candidates of the squared error to their stored rewards (less
        their mean), summed over the UAVs, per-batch mean; and its root-mean-square error."""
        t = self._stored_move_targets(b)
        pred = self.move_value[0](b.obs, b.action_d if self.cond else None)  # [B, M, C]
        used = (t[..., 2] > 0).float()
        err = (pred - t[..., 3:]).square().mean(-1)  # [B, M]
        loss = self._mean((used * err).sum(-1))
        mse = self._used_mean(err, used)
        return loss, {"loss/move_value": self._metric(loss),
                      "train/move_value_rmse": self._metric(mse.sqrt())}

    def _stored_move_targets(self, b: ReplayBatch) -> Tensor:
        if b.move_targets is None:
            raise ValueError(f"move_values={self.cfg.move_values!r} needs move_targets in the "
                             "batch (a ReplayBuffer built with move_targets=True)")
        if self.cfg.move_value_net and b.move_targets.shape[-1] != 3 + len(MOVE_CANDIDATES):
            raise ValueError(f"move_value_net needs the {len(MOVE_CANDIDATES)} candidates' "
                             "rewards after each move target (a ReplayBuffer built with "
                             f"move_values={len(MOVE_CANDIDATES)}); got "
                             f"{b.move_targets.shape[-1] - 3} columns")
        return b.move_targets

    def _update_actors(self, b: ReplayBatch) -> dict[str, float]:
        alpha_d, alpha_c = self._alphas(b.obs.shape[0])
        # autoregressive: each IoTD's categorical given the stored servers of those before it
        dd = self._dist_d(self.actor_d, b.obs, b.mask, b.action_d)
        # conditioned: given the stored servers, for which the simulated targets were searched
        dc = self._dist_c(self.actor_c, b.obs, b.action_d)
        a_c, u = dc.rsample(self.gen)
        logp_c = dc.log_prob(a_c, u)
        probs = dd.probs.detach()
        # simulated move (power) values: the critic's gradient does not reach the moves (powers)
        a_q = self._critic_part(a_c, a_c.detach())
        q_c = torch.min(
            torch.stack(
                [
                    (c(b.obs, a_q, probs) * probs).sum((-1, -2))
                    for c in self._role_critics(1)
                ]
            ),
            dim=0,
        ).values
        loss_c = self._mean(alpha_c * logp_c - q_c)
        target_metrics: dict[str, Any] = {}
        for simulated, target_loss in ((self.needs_move_targets, self._move_loss),
                                       (self.needs_power_targets, self._power_loss)):
            if simulated:
                loss_t, metrics_t = target_loss(dc, b)
                loss_c = loss_c + loss_t
                target_metrics.update(metrics_t)
        if self.cfg.server_values == "exact":  # Q differences between servers, exactly
            q_ks = self._server_rewards(b)
        else:
            q_ks = torch.min(
                torch.stack([c(b.obs, a_c.detach(), probs) for c in self._role_critics(0)]),
                dim=0,
            ).values.detach()
        alpha_dk = alpha_d if self.n_seeds == 1 else alpha_d.unsqueeze(-1)  # [rows, 1, 1]
        loss_d = self._mean((dd.probs * (alpha_dk * dd.log_probs - q_ks)).sum((-1, -2)))
        if self.cfg.server_search > 0 or self.cfg.target_search == "optimizer":
            loss_s, metrics_s = self._server_loss(b)
            loss_d = loss_d + loss_s
            target_metrics.update(metrics_s)
        loss = loss_c + loss_d
        metrics: dict[str, Any] = {
            "loss/actor_continuous": self._metric(loss_c),
            "loss/actor_discrete": self._metric(loss_d),
            **target_metrics,
        }
        if self.cfg.use_mpo:
            mpo_loss, mpo_metrics = self._mpo_losses(b)
            loss = loss + mpo_loss
            metrics.update(mpo_metrics)
        if self.cfg.decision_beam:  # its own parameters: the other gradients are unchanged
            loss_x, metrics_x = self._context_loss(b)
            loss = loss + loss_x
            metrics.update(metrics_x)
        self.opt_actor.zero_grad()
        self._total(loss).backward()
        self.opt_actor.step()
        metrics.update(self._update_alpha(dd, logp_c.detach(), b.mask))
        return metrics

    def _critic_part(self, a_c: Tensor, stored: Tensor) -> Tensor:
        """The continuous action the critic scores: ``a_c``, with its moves and (or) powers
        taken from ``stored`` where they are trained on simulated values instead (``stored``
        broadcasts against ``a_c``)."""
        k, stored = self.k, stored.expand_as(a_c)
        powers = stored[..., :k] if self.needs_power_targets else a_c[..., :k]
        moves = stored[..., k:] if self.needs_move_targets else a_c[..., k:]
        return torch.cat([powers, moves], -1)

    def _move_loss(self, dc: TanhGaussian, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        """``move_weight`` times the negative log-likelihood, under each UAV's pre-tanh Gaussian,
        of the stored best move of the one-slot lookahead (with ``move_value_net``: the best
        candidate under the learned values), summed over the UAVs whose position mattered
        (spread > 0); the tanh Jacobian does not depend on the policy and is left out."""
        t = self._stored_move_targets(b)
        m = t.shape[1]
        mean = dc.mean[:, self.k:].reshape(-1, m, 2)
        log_std = dc.log_std[:, self.k:].reshape(-1, m, 2)
        target, metrics = t[..., :2], {}
        if self.cfg.move_value_net:
            with torch.no_grad():
                pick = self.move_value[0](b.obs, b.action_d if self.cond else None).argmax(-1)
            target = torch.as_tensor(MOVE_CANDIDATES, dtype=mean.dtype)[pick]  # [B, M, 2]
            # what the learned choice gives up on the stored slot's own candidate rewards
            stored = t[..., 3:]
            regret = stored.max(-1).values - stored.gather(-1, pick.unsqueeze(-1)).squeeze(-1)
            used = (t[..., 2] > 0).float()
            metrics["train/move_value_regret"] = self._metric(self._used_mean(regret, used))
        loss, gap = self._target_nll(mean, log_std, target, t[..., 2] > 0, self.cfg.move_weight)
        return loss, {"loss/actor_moves": self._metric(loss),
                      "train/move_target_gap": self._metric(gap), **metrics}

    def _power_loss(self, dc: TanhGaussian, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        """``power_weight`` times the negative log-likelihood, under each IoTD's pre-tanh
        Gaussian, of the stored best power of the one-slot lookahead, summed over the IoTDs whose
        power mattered (spread > 0)."""
        if b.power_targets is None:
            raise ValueError("power_values='simulated' needs power_targets in the batch (a "
                             "ReplayBuffer built with power_targets=True)")
        t = b.power_targets
        mean, log_std = dc.mean[:, :self.k, None], dc.log_std[:, :self.k, None]
        loss, gap = self._target_nll(mean, log_std, t[..., :1], t[..., 1] > 0,
                                     self.cfg.power_weight)
        return loss, {"loss/actor_powers": self._metric(loss),
                      "train/power_target_gap": self._metric(gap)}

    def _server_loss(self, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        """``server_weight`` times the negative log-likelihood of the searched assignment, summed
        over the IoTDs with a task (autoregressive: each given the targets before it); and the
        share of those IoTDs whose target differs from the stored server."""
        if b.server_targets is None:
            raise ValueError("server_search > 0 needs server_targets in the batch (a "
                             "ReplayBuffer built with server_targets=True)")
        target = b.server_targets[..., 0].long()
        used = b.server_targets[..., 1]
        logp = self._dist_d(self.actor_d, b.obs, b.mask, target).log_prob(target)  # [B, K]
        logp = torch.where(used > 0, logp, torch.zeros_like(logp))  # no task: any server
        loss = self._mean(self.cfg.server_weight * -logp.sum(-1))
        moved = self._used_mean((target != b.action_d).float(), used)
        return loss, {"loss/actor_servers": self._metric(loss),
                      "train/server_target_moved": self._metric(moved)}

    def _target_nll(self, mean: Tensor, log_std: Tensor, target: Tensor, used: Tensor,
                    weight: float) -> tuple[Tensor, Tensor]:
        """(loss, gap) of fitting squashed targets [B, J, D] in [-1, 1] by maximum likelihood
        under the pre-tanh Gaussians ``mean``, ``log_std`` [B, J, D]: ``weight`` times the
        negative log-likelihood of ``atanh(target)`` (targets clipped to +-0.999), summed over
        the D dimensions and the J parts that are ``used`` [B, J], per-batch mean; and the mean
        Euclidean distance from the policy's mode to the target over the used parts. The tanh
        Jacobian does not depend on the policy and is left out."""
        u = torch.atanh(target.clamp(-_TARGET_BOUND, _TARGET_BOUND))
        z = (u - mean) / log_std.exp()
        nll = (0.5 * z**2 + log_std).sum(-1) + 0.5 * _LOG_2PI * target.shape[-1]
        w = used.float()
        loss = self._mean(weight * (w * nll).sum(-1))
        dist = (torch.tanh(mean) - target).square().sum(-1).sqrt()  # mode to target
        gap = self._used_mean(dist, w)
        return loss, gap

    @staticmethod
    def _server_rewards(b: ReplayBatch) -> Tensor:
        if b.server_rewards is None:
            raise ValueError("server_values='exact' needs server_rewards in the batch (a "
                             "ReplayBuffer built with server_rewards=True)")
        return b.server_rewards

    def _mpo_losses(self, b: ReplayBatch) -> tuple[Tensor, dict[str, Any]]:
        n, bs, n_seeds = self.cfg.mpo_samples, b.obs.shape[0], self.n_seeds
        with torch.no_grad():  # E-step on N actions per state from the previous policy
            old_d = self._dist_d(self.old_d, b.obs, b.mask, b.action_d)
            old_c = self._dist_c(self.old_c, b.obs, b.action_d)
            # the policies run once per state (the factorised discrete one); only the critics
            # see the N samples ([N, B, ...])
            gen = seed_axis(self.gen, 1)  # samples [N, S * B, ...]: the seeds along dim 1
            a_d = self._sample_d(self.old_d, b.obs, b.mask, gen, n, old_d)
            a_c, u = TanhGaussian(
                old_c.mean.expand(n, *old_c.mean.shape), old_c.log_std
            ).rsample(gen)

            exact = self.cfg.server_values == "exact"
            # exact: the critic scores each continuous sample with the stored servers, and each
            # sample's servers add their exact reward change, one IoTD at a time (first order)
            taken = b.action_d.expand(n, *b.action_d.shape) if exact else a_d
            onehot = seed_major(nn.functional.one_hot(taken, self.s).float(), n_seeds)
            obs_n = seed_major(b.obs.expand(n, *b.obs.shape), n_seeds)
            # simulated move (power) values: the critic ranks the samples at the stored moves
            # (powers)
            a_q = self._critic_part(a_c, b.action_c)
            # one critic, as in MPO (Abdolmaleki et al. 2018): the E-step only ranks the N
            # samples of a state, and a second forward pass over N B rows doubles its cost
            q = q_joint(self.critics[0](obs_n, seed_major(a_q, n_seeds), onehot), onehot)
            q = q.view(n, bs).T if n_seeds == 1 else \
                q.view(n_seeds, n, -1).transpose(1, 2).reshape(bs, n)  # [S * B, N]
            if exact:
                table = self._server_rewards(b)  # [B, K, S]
                own = table.gather(-1, b.action_d.unsqueeze(-1)).squeeze(-1)  # [B, K]
                alt = table.unsqueeze(0).expand(n, *table.shape).gather(
                    -1, a_d.unsqueeze(-1)).squeeze(-1)  # [N, B, K]
                q = q + (alt - own).sum(-1).T
        eta_loss = self._mean(dual_loss(q, self._rows(eta_from_raw(self.eta_raw), bs),
                                        self.cfg.mpo_epsilon))
        self.opt_dual.zero_grad()
        self._total(eta_loss).backward()
        eta = eta_from_raw(self.eta_raw).detach()
        weights = e_step_weights(q, self._rows(eta, bs))
        new_d = self._dist_d(self.actor_d, b.obs, b.mask, b.action_d)
        new_c = self._dist_c(self.actor_c, b.obs, b.action_d)
        lp_d = self._log_prob_d(self.actor_d, b.obs, b.mask, a_d, new_d).sum(-1).T  # [B, N]
        lp_c = new_c.log_prob(a_c, u).T
        kl_d, kl_c = old_d.kl(new_d).sum(-1), old_c.kl(new_c)
        lag = lagrange_from_raw(self.lagrange_raw)
        lag_rows = self._rows(lag, bs)
        m = m_step_loss(
            lp_d,
            lp_c,
            weights,
            kl_d,
            kl_c,
            lag_rows[..., 0],
            lag_rows[..., 1],
            self.cfg.mpo_epsilon_d,
            self.cfg.mpo_epsilon_c,
        )
        self._total(self._mean(m.lagrange)).backward(retain_graph=True)
        self.opt_dual.step()
        return self._mean(m.policy), {
            "mpo/eta": self._metric(eta),
            "mpo/kl_discrete": self._metric(self._mean(kl_d)),
            "mpo/kl_continuous": self._metric(self._mean(kl_c)),
            "mpo/kl_e_step": self._metric(self._mean(e_step_kl(weights))),
            "mpo/lagrange_discrete": self._metric(lag[..., 0]),
            "mpo/lagrange_continuous": self._metric(lag[..., 1]),
        }

    def _update_alpha(
        self, dd: MaskedCategorical, logp_c: Tensor, mask: Tensor
    ) -> dict[str, Any]:
        feasible = mask.sum(-1).clamp(min=1).float()
        target_d = self._mean((self.cfg.target_entropy_scale_d * torch.log(feasible)).sum(-1))
        if self.n_seeds == 1:
            loss_d = discrete_temperature_loss(
                self.log_alpha[0], dd.probs.detach(), dd.log_probs.detach(), float(target_d)
            )
            loss_c = continuous_temperature_loss(self.log_alpha[1], logp_c, self.target_entropy_c)
        else:  # each seed's temperatures and entropy target on its rows, averaged per seed
            rows = mask.shape[0]
            log_alpha = self._rows(self.log_alpha, rows)
            loss_d = self._mean(discrete_temperature_loss(
                log_alpha[:, 0], dd.probs.detach(), dd.log_probs.detach(),
                self._rows(target_d, rows), per_state=True))
            loss_c = self._mean(continuous_temperature_loss(
                log_alpha[:, 1], logp_c, self.target_entropy_c, per_state=True))
        self.opt_alpha.zero_grad()
        self._total(loss_d + loss_c).backward()
        self.opt_alpha.step()
        if self.cfg.alpha_continuous_max > 0:
            with torch.no_grad():
                self.log_alpha[..., 1].clamp_(max=float(np.log(self.cfg.alpha_continuous_max)))
        alpha = self.log_alpha.detach().exp()
        return {
            "loss/alpha_discrete": self._metric(loss_d),
            "loss/alpha_continuous": self._metric(loss_c),
            "alpha/discrete": self._metric(alpha[..., 0]),
            "alpha/continuous": self._metric(alpha[..., 1]),
        }

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        modules = {
            name: getattr(self, name).state_dict()
            for name in _STATEFUL
        }
        return {
            **modules,
            "log_alpha": self.log_alpha.detach().clone(),
            "eta_raw": self.eta_raw.detach().clone(),
            "lagrange_raw": self.lagrange_raw.detach().clone(),
            "generator": self.gen.get_state(),
            "config": asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _STATEFUL:
            # checkpoints from before an optional module existed lack it (then it is empty)
            getattr(self, name).load_state_dict(state.get(name, {}) if name in _OPTIONAL
                                                else state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
            self.eta_raw.copy_(state["eta_raw"])
            self.lagrange_raw.copy_(state["lagrange_raw"])
        self.gen.set_state(state["generator"])
