"""AD-SAC's ``decision_samples``: a deterministic action picked by the critic among the discrete
mode and samples of the discrete policy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.adsac import AdSac, AdSacConfig, q_joint
from satedge.agents.common.distributions import MaskedCategorical
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.sim.scenario import Scenario

SC = Scenario()
OBS, K, S = observation_size(SC), SC.n_iotds, SC.n_servers
A = K + 2 * SC.n_uavs


def _agent(samples: int, seed: int = 0) -> AdSac:
    cfg = AdSacConfig(hidden=(32, 32), iotd_hidden=(32, 32), iotd_block=PER_IOTD + SC.n_uavs,
                      decision_samples=samples)
    return AdSac(OBS, K, S, A, cfg, seed=seed)


def _inputs(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    mask = rng.random((rows, K, S)) < 0.7
    mask[..., 0] = True
    return rng.uniform(-1, 1, (rows, OBS)).astype(np.float32), mask


def _min_q(agent: AdSac, obs: np.ndarray, cont: np.ndarray, servers: torch.Tensor) -> torch.Tensor:
    onehot = nn.functional.one_hot(servers, S).float()
    o, c = torch.as_tensor(obs), torch.as_tensor(cont)
    with torch.no_grad():
        q = torch.stack([q_joint(cr(o, c, onehot), onehot) for cr in agent.critics])
    return q.min(0).values


def test_picks_the_best_candidate_by_the_critic_and_leaves_the_rng_alone() -> None:
    agent = _agent(16)
    obs, mask = _inputs(6)
    state = agent.gen.get_state()
    first = agent.act(obs, mask, deterministic=True)
    again = agent.act(obs, mask, deterministic=True)
    np.testing.assert_array_equal(first.discrete, again.discrete)
    assert torch.equal(agent.gen.get_state(), state)
    assert mask[np.arange(6)[:, None], np.arange(K), first.discrete].all()
    plain = dataclasses.replace(agent.cfg, decision_samples=0)
    mode_agent = _agent(0)
    mode_agent.load_state_dict(agent.state_dict())
    mode_agent.cfg = plain
    mode = mode_agent.act(obs, mask, deterministic=True)
    np.testing.assert_array_equal(first.continuous, mode.continuous)
    # the chosen servers score at least the mode's, and as well as the best of the candidates
    # drawn independently here with the same generator
    chosen = _min_q(agent, obs, first.continuous, torch.as_tensor(first.discrete))
    at_mode = _min_q(agent, obs, first.continuous, torch.as_tensor(mode.discrete))
    assert (chosen >= at_mode - 1e-6).all()
    with torch.no_grad():
        logits = agent._dist_d(agent.actor_d, torch.as_tensor(obs), torch.as_tensor(mask)).logits
    draws = MaskedCategorical(logits.expand(16, *logits.shape)).sample(
        torch.Generator().manual_seed(0))
    best = torch.stack([_min_q(agent, obs, first.continuous, d) for d in draws]).max(0).values
    torch.testing.assert_close(chosen, torch.maximum(best, at_mode))
    assert (first.discrete != mode.discrete).any()  # the samples were used somewhere


def test_seed_batched_agents_decide_like_separate_ones() -> None:
    separate = [_agent(8, seed) for seed in (3, 4)]
    batched = AdSac.seed_batched([_agent(8, seed) for seed in (3, 4)])
    obs, mask = _inputs(6)
    got = batched.act(obs, mask, deterministic=True)
    for i, agent in enumerate(separate):
        want = agent.act(obs[3 * i: 3 * i + 3], mask[3 * i: 3 * i + 3], deterministic=True)
        np.testing.assert_array_equal(got.discrete[3 * i: 3 * i + 3], want.discrete)


def test_negative_decision_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="decision_samples=-1"):
        AdSacConfig(decision_samples=-1)
