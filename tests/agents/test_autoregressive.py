"""AD-SAC's autoregressive discrete actor: IoTDs placed one after another, each categorical
conditioned on the servers' load from those placed before it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig, AutoregressiveIotdActor, load_sizes
from satedge.agents.common.distributions import MaskedCategorical, gumbel_noise
from satedge.envs.encoding import IOTD_FEATURE, PER_IOTD, observation_size
from satedge.sim.scenario import Scenario
from tests.agents.ar_inputs import BLOCK, OBS, K, S, random_inputs
from tests.agents.train_resume import check_resume_and_identity


def _actor(seed: int = 0) -> AutoregressiveIotdActor:
    torch.manual_seed(seed)
    return AutoregressiveIotdActor(OBS, K, S, BLOCK, (16, 16))


def _conditionals(net: AutoregressiveIotdActor, obs: torch.Tensor, mask: torch.Tensor,
                  servers: torch.Tensor) -> MaskedCategorical:
    return MaskedCategorical(net(obs, servers).view(-1, K, S), mask)


def test_the_load_an_iotd_sees_is_that_of_the_iotds_placed_before_it() -> None:
    net = _actor()
    obs, _ = random_inputs(1)
    per = obs[:, : K * BLOCK].view(1, K, BLOCK)
    per[0, :, IOTD_FEATURE["output_tokens"]] = torch.tensor([0.1, 0.9, -0.5, 0.9])
    order = [1, 3, 0, 2]  # longest output first, ties by index
    servers = torch.tensor([[2, 0, 1, 0]])
    seen: dict[str, torch.Tensor] = {}
    net.net.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    net(obs, servers)
    load = seen["x"][0, :, -3 * S:].view(K, S, 3) * K
    size = load_sizes(per)[0]
    for j, k in enumerate(order):
        want = torch.zeros(S, 3)
        for earlier in order[:j]:
            want[servers[0, earlier]] += size[earlier]
        torch.testing.assert_close(load[k], want)


def test_decoding_follows_the_conditionals_of_what_it_decoded() -> None:
    net = _actor()
    obs, mask = random_inputs(6)
    mode = net.decode(obs, mask)
    assert mask.gather(-1, mode.unsqueeze(-1)).all()
    assert torch.equal(_conditionals(net, obs, mask, mode).mode(), mode)
    gumbel = gumbel_noise((6, K, S), torch.Generator().manual_seed(2))
    drawn = net.decode(obs, mask, gumbel)
    scores = _conditionals(net, obs, mask, drawn).log_probs + gumbel
    assert torch.equal(scores.argmax(-1), drawn)


def test_samples_have_the_joint_probabilities_of_the_conditionals() -> None:
    net = _actor(3)
    obs, mask = random_inputs(1, seed=4)
    n = 40_000
    draws = net.decode(obs.expand(n, -1), mask.expand(n, -1, -1),
                       gumbel_noise((n, K, S), torch.Generator().manual_seed(5)))
    place = S ** torch.arange(K)  # a joint action's code: IoTD k's server is digit k
    freq = torch.bincount((draws * place).sum(-1), minlength=S**K).double() / n
    joint = torch.arange(S**K).unsqueeze(-1) // place % S
    with torch.no_grad():
        cond = _conditionals(net, obs.expand(len(joint), -1), mask, joint)
        p = cond.log_prob(joint).sum(-1).exp().double()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    assert (freq[p == 0] == 0).all()  # nothing masked is ever drawn
    se = (p * (1 - p) / n).sqrt()
    assert float(((freq - p).abs() / se.clamp_min(1e-12))[p > 0].max()) < 5.0


def test_the_first_placed_iotd_ignores_the_others_and_later_ones_react() -> None:
    net = _actor()
    obs, _ = random_inputs(1)
    per = obs[:, : K * BLOCK].view(1, K, BLOCK)
    per[0, :, IOTD_FEATURE["output_tokens"]] = torch.tensor([0.9, 0.5, 0.1, -0.3])  # order 0..3
    base = torch.tensor([[0, 0, 0, 0]])
    moved = torch.tensor([[0, 2, 0, 0]])  # IoTD 1, placed second, changes server
    with torch.no_grad():
        a, b = net(obs, base).view(K, S), net(obs, moved).view(K, S)
    torch.testing.assert_close(a[:2], b[:2], rtol=0, atol=0)  # IoTDs 0 and 1 do not see it
    assert not torch.allclose(a[2:], b[2:])  # IoTDs 2 and 3 do


def test_autoregressive_actor_needs_the_shared_networks() -> None:
    with pytest.raises(ValueError, match="iotd_block"):
        AdSacConfig(discrete_actor="autoregressive")
    with pytest.raises(ValueError, match="discrete_actor"):
        AdSacConfig(discrete_actor="chain", iotd_block=13)


def test_agent_acts_and_its_decision_samples_use_placements() -> None:
    sc = Scenario()
    obs_dim, k, s = observation_size(sc), sc.n_iotds, sc.n_servers
    cfg = AdSacConfig(hidden=(32, 32), iotd_hidden=(32, 32), iotd_block=PER_IOTD + sc.n_uavs,
                      discrete_actor="autoregressive", decision_samples=8)
    agent = AdSac(obs_dim, k, s, k + 2 * sc.n_uavs, cfg, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (5, obs_dim)).astype(np.float32)
    mask = rng.random((5, k, s)) < 0.6
    mask[..., 1] = True
    state = agent.gen.get_state()
    first = agent.act(obs, mask, deterministic=True)
    assert torch.equal(agent.gen.get_state(), state)  # a decision leaves the generator alone
    np.testing.assert_array_equal(first.discrete, agent.act(obs, mask, True).discrete)
    drawn = agent.act(obs, mask)
    assert mask[np.arange(5)[:, None], np.arange(k), drawn.discrete].all()
    assert mask[np.arange(5)[:, None], np.arange(k), first.discrete].all()


def test_autoregressive_runs_resume_exactly_and_the_default_stays_out_of_the_identity(
        tmp_path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo",
                                      "discrete_actor", ("actor_d", "critics"))
    assert isinstance(whole.actor_d, AutoregressiveIotdActor)
    assert whole.cfg.discrete_actor == "autoregressive"
