"""AD-SAC's decision beam: a deterministic action's servers chosen, among the autoregressive
actor's greedy decoding and its beam, by their pseudo-likelihood under a network fitted to each
IoTD's server target given the other IoTDs' targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import (
    AdSac,
    AdSacConfig,
    AutoregressiveIotdActor,
    ServerContextNet,
    load_sizes,
    task_present,
)
from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.common.distributions import MaskedCategorical
from satedge.envs.encoding import IOTD_FEATURE, PER_IOTD, observation_size
from satedge.sim.scenario import Scenario
from tests.agents.ar_inputs import BLOCK, OBS, K, S, random_inputs
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

BEAM_ALGO = "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves-beam"


def _all_placements() -> torch.Tensor:
    """[S^K, K] every assignment of K IoTDs to S servers."""
    return torch.arange(S**K).unsqueeze(-1) // S ** torch.arange(K) % S


def test_a_beam_as_wide_as_the_joint_set_ranks_every_placement_by_its_probability() -> None:
    torch.manual_seed(0)
    net = AutoregressiveIotdActor(OBS, K, S, BLOCK, (16, 16))
    obs, mask = random_inputs(2)
    beams = net.beam(obs, mask, S**K)
    joint = _all_placements()
    for row in range(2):
        o, m = obs[row : row + 1].expand(len(joint), -1), mask[row : row + 1]
        with torch.no_grad():
            logp = MaskedCategorical(net(o, joint).view(-1, K, S), m).log_prob(joint).sum(-1)
        allowed = m[0][torch.arange(K), joint].all(-1)
        n_ok = int(allowed.sum())
        want = logp[allowed].sort(descending=True).values
        with torch.no_grad():
            got = MaskedCategorical(net(obs[row : row + 1].expand(S**K, -1), beams[row]).view(
                -1, K, S), m).log_prob(beams[row]).sum(-1)
        torch.testing.assert_close(got[:n_ok], want)  # the allowed ones, in order
        assert not m[0][torch.arange(K), beams[row, n_ok:]].all(-1).any()


def test_a_narrow_beam_is_sorted_and_its_first_placements_are_allowed() -> None:
    torch.manual_seed(1)
    net = AutoregressiveIotdActor(OBS, K, S, BLOCK, (16, 16))
    obs, mask = random_inputs(5, seed=2)
    beams = net.beam(obs, mask, 4)
    assert beams.shape == (5, 4, K)
    with torch.no_grad():
        logp = torch.stack([MaskedCategorical(net(obs, beams[:, w]).view(-1, K, S), mask)
                            .log_prob(beams[:, w]).sum(-1) for w in range(4)], 1)
    assert (logp[:, :-1] >= logp[:, 1:] - 1e-5).all()
    assert mask.gather(-1, beams[:, 0].unsqueeze(-1)).all()


def test_the_context_net_sees_the_load_of_every_other_iotd_but_not_its_own() -> None:
    torch.manual_seed(0)
    net = ServerContextNet(OBS, K, S, BLOCK, (16, 16))
    obs, _ = random_inputs(1)
    servers = torch.tensor([[2, 0, 1, 0]])
    seen: dict[str, torch.Tensor] = {}
    hook = net.net.register_forward_pre_hook(lambda _m, args: seen.update(x=args[0]))
    with torch.no_grad():
        logits = net(obs, servers).view(K, S)
    hook.remove()
    load = seen["x"][0, :, -3 * S:].view(K, S, 3) * K
    size = load_sizes(obs[:, : K * BLOCK].view(1, K, BLOCK))[0]
    for k in range(K):
        want = torch.zeros(S, 3)
        for other in range(K):
            if other != k:
                want[servers[0, other]] += size[other]
        torch.testing.assert_close(load[k], want)
    moved = servers.clone()
    moved[0, 1] = 2  # IoTD 1 changes server: its own logits stay, every other IoTD's change
    with torch.no_grad():
        after = net(obs, moved).view(K, S)
    torch.testing.assert_close(after[1], logits[1], rtol=0, atol=0)
    assert not torch.allclose(after[[0, 2, 3]], logits[[0, 2, 3]])


def _agent(beam: int = 3, seed: int = 0) -> tuple[AdSac, Scenario]:
    sc = Scenario()
    cfg = AdSacConfig(hidden=(32, 32), iotd_hidden=(32, 32), iotd_block=PER_IOTD + sc.n_uavs,
                      discrete_actor="autoregressive", target_search="optimizer",
                      decision_beam=beam, mpo_samples=4)
    return AdSac(observation_size(sc), sc.n_iotds, sc.n_servers, sc.n_iotds + 2 * sc.n_uavs,
                 cfg, seed=seed), sc


def test_a_decision_is_the_most_pseudo_likely_of_the_mode_and_the_beam() -> None:
    agent, sc = _agent(beam=3)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (6, agent.obs_dim)).astype(np.float32)
    block = PER_IOTD + sc.n_uavs
    obs[:, : sc.n_iotds * block].reshape(6, sc.n_iotds, block)[..., IOTD_FEATURE["active"]] = 1.0
    mask = rng.random((6, agent.k, agent.s)) < 0.6
    mask[..., 1] = True
    state = agent.gen.get_state()
    chosen = agent.act(obs, mask, deterministic=True).discrete
    assert torch.equal(agent.gen.get_state(), state)  # a decision draws nothing
    o, m = torch.as_tensor(obs), torch.as_tensor(mask)
    cands = torch.cat([agent._mode_d(o, m)[None], agent.actor_d.beam(o, m, 3).transpose(0, 1)])
    used = task_present(o, m, agent.k, block)
    with torch.no_grad():
        score = torch.stack([agent.context_d.pseudo_log_likelihood(o, m, c, used) for c in cands])
    best = cands[score.argmax(0), torch.arange(6)]
    np.testing.assert_array_equal(chosen, best.numpy())
    assert mask[np.arange(6)[:, None], np.arange(agent.k), chosen].all()


def _batch(agent: AdSac, n: int = 32) -> ReplayBatch:
    g = torch.Generator().manual_seed(3)
    k, s = agent.k, agent.s
    targets = torch.stack([torch.full((n, k), 2.0),  # one server: a target quickly learned
                           (torch.rand(n, k, generator=g) < 0.8).float()], -1)
    return ReplayBatch(
        obs=torch.rand(n, agent.obs_dim, generator=g) * 2 - 1,
        action_d=torch.randint(0, s, (n, k), generator=g),
        action_c=torch.rand(n, agent.a, generator=g) * 2 - 1, reward=-torch.rand(n, generator=g),
        next_obs=torch.rand(n, agent.obs_dim, generator=g) * 2 - 1, done=torch.zeros(n),
        mask=torch.ones(n, k, s, dtype=torch.bool),
        next_mask=torch.ones(n, k, s, dtype=torch.bool), reward_k=-torch.rand(n, k, generator=g),
        server_rewards=torch.randn(n, k, s, generator=g), server_targets=targets,
        power_targets=torch.stack([torch.rand(n, k, generator=g) * 2 - 1, torch.ones(n, k)], -1),
        move_targets=None)


def test_the_context_net_learns_the_targets_and_leaves_the_rest_of_training_alone() -> None:
    with_beam, _ = _agent(beam=3)
    plain, _ = _agent(beam=0)
    batch = _batch(with_beam)
    first = None
    for _ in range(60):
        metrics = with_beam.update(batch)
        plain.update(batch)
        first = first if first is not None else metrics["loss/server_context"]
    assert metrics["loss/server_context"] < 0.9 * first
    for name in ("actor_d", "actor_c", "critics"):
        for key, value in plain.state_dict()[name].items():
            torch.testing.assert_close(with_beam.state_dict()[name][key], value, rtol=0, atol=0)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="decision_beam=-1 must be"):
        AdSacConfig(decision_beam=-1)
    with pytest.raises(ValueError, match="decision_beam=4 needs"):
        AdSacConfig(decision_beam=4, iotd_block=13, discrete_actor="autoregressive")
    with pytest.raises(ValueError, match="decision_samples=2"):
        AdSacConfig(decision_beam=4, iotd_block=13, discrete_actor="autoregressive",
                    target_search="optimizer", decision_samples=2)


def test_beam_runs_resume_exactly_and_the_default_stays_out_of_the_identity(
        tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, BEAM_ALGO,
                                      "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves",
                                      "decision_beam", ("actor_d", "context_d", "critics"))
    assert isinstance(whole.context_d, ServerContextNet)


def test_the_registered_combination_is_the_optimiser_targets_with_a_beam_of_8(
        tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, BEAM_ALGO,
                                "adsac-exact-geo-ar-search-cond-pow-opt-cap-greedy-moves",
                                {"decision_beam": 8})
    assert agent.cfg.decision_beam == 8 and agent.target_search == "optimizer"
