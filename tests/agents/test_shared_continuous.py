"""AD-SAC's shared continuous actor: powers from the shared per-IoTD inputs, each UAV's move from
attention over the IoTDs' offsets to that UAV."""

from __future__ import annotations

import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig, SharedContinuousActor
from satedge.envs.encoding import IOTD_FEATURE, PER_IOTD, observation_size
from satedge.sim.scenario import Scenario
from tests.agents.train_resume import check_resume_and_identity

SC = Scenario()
K, M = SC.n_iotds, SC.n_uavs
BLOCK, OBS, STEP = PER_IOTD + M, observation_size(SC), 0.24


def _actor(seed: int = 0) -> SharedContinuousActor:
    torch.manual_seed(seed)
    return SharedContinuousActor(OBS, K, M, BLOCK, (16, 16), STEP)


def _obs(rows: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(rows, OBS, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _record_pair_input(net: SharedContinuousActor) -> dict[str, torch.Tensor]:
    """``{"x": ...}``: the pair network's input [B, M, K, in] at the first call after this."""
    seen: dict[str, torch.Tensor] = {}

    def hook(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.setdefault("x", args[0])  # returns None: the input is not replaced

    net.pair.register_forward_pre_hook(hook)
    return seen


def _permute_iotds(obs: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    per = obs[:, : K * BLOCK].view(-1, K, BLOCK)[:, perm]
    return torch.cat([per.flatten(1), obs[:, K * BLOCK:]], -1)


def test_layout_is_the_flat_actors_and_iotds_are_exchangeable() -> None:
    net, obs = _actor(), _obs(5)
    out = net(obs)
    assert out.shape == (5, 2 * (K + 2 * M))
    perm = torch.randperm(K, generator=torch.Generator().manual_seed(3))
    moved = net(_permute_iotds(obs, perm))
    mean, log_std = out.chunk(2, -1)
    p_mean, p_log_std = moved.chunk(2, -1)
    # powers follow their IoTDs; the UAV moves pool over IoTDs, so they do not change
    torch.testing.assert_close(p_mean[:, :K], mean[:, :K][:, perm])
    torch.testing.assert_close(p_log_std[:, :K], log_std[:, :K][:, perm])
    torch.testing.assert_close(p_mean[:, K:], mean[:, K:], rtol=1e-5, atol=1e-6)


def test_a_uav_move_reads_the_iotds_offsets_from_that_uav() -> None:
    net, obs = _actor(), _obs(1)
    seen = _record_pair_input(net)
    net(obs)
    x = seen["x"][0]  # [M, K, BLOCK + 6]
    per = obs[0, : K * BLOCK].view(K, BLOCK)
    uav = obs[0, K * BLOCK + 3: K * BLOCK + 3 + 2 * M].view(M, 2)
    xy = per[:, IOTD_FEATURE["x"]: IOTD_FEATURE["y"] + 1]
    for m in range(M):
        offset = xy - uav[m]
        torch.testing.assert_close(x[m, :, BLOCK: BLOCK + 2], offset)
        torch.testing.assert_close(x[m, :, BLOCK + 2: BLOCK + 4], (offset / STEP).clamp(-1, 1))
        torch.testing.assert_close(x[m, :, BLOCK + 4], offset.norm(dim=-1), atol=1e-5, rtol=0)
        torch.testing.assert_close(x[m, :, BLOCK + 5], per[:, PER_IOTD + m])
    # moving one IoTD changes every UAV's move (through the pooling)
    shifted = obs.clone()
    shifted[0, IOTD_FEATURE["x"]] += 0.3
    before, after = net(obs).chunk(2, -1)[0], net(shifted).chunk(2, -1)[0]
    assert (before[0, K:] - after[0, K:]).abs().min() > 0


def test_the_conditioned_actor_reads_each_iotds_server() -> None:
    torch.manual_seed(0)
    net = SharedContinuousActor(OBS, K, M, BLOCK, (16, 16), STEP, n_servers=SC.n_servers)
    obs = _obs(2)
    servers = torch.full((2, K), M, dtype=torch.long)  # every task to the first satellite
    seen = _record_pair_input(net)
    base = net(obs, servers)
    assert base.shape == (2, 2 * (K + 2 * M))
    assert seen["x"].shape[-1] == BLOCK + 7 and not seen["x"][..., -1].any()
    moved_servers = servers.clone()
    moved_servers[0, 3] = 1  # IoTD 3's task goes to UAV 1, in the first state only
    moved = net(obs, moved_servers)
    mean, p_mean = base.chunk(2, -1)[0], moved.chunk(2, -1)[0]
    # UAV 1's move and IoTD 3's power change; the other UAVs' moves, the other powers and the
    # second state do not
    uav1 = [K + 2, K + 3]
    assert (mean[0, uav1] - p_mean[0, uav1]).abs().min() > 0
    assert (mean[0, 3] - p_mean[0, 3]).abs() > 0
    same = [i for i in range(K + 2 * M) if i not in (3, *uav1)]
    torch.testing.assert_close(p_mean[0, same], mean[0, same])
    torch.testing.assert_close(moved[1], base[1])
    with pytest.raises(ValueError, match="servers"):
        net(obs)


def test_config_needs_the_shared_networks_and_the_uav_step() -> None:
    with pytest.raises(ValueError, match="continuous_actor"):
        AdSacConfig(continuous_actor="shared", iotd_block=BLOCK)
    with pytest.raises(ValueError, match="continuous_actor"):
        AdSacConfig(continuous_actor="pooled", iotd_block=BLOCK, uav_step=STEP)
    with pytest.raises(ValueError, match="continuous_actor='conditioned' needs"):
        AdSacConfig(continuous_actor="conditioned", uav_step=STEP)
    cfg = AdSacConfig(continuous_actor="shared", iotd_block=BLOCK, uav_step=STEP,
                      iotd_hidden=(16, 16))
    agent = AdSac(OBS, K, SC.n_servers, K + 2 * M, cfg, seed=0)
    assert isinstance(agent.actor_c, SharedContinuousActor)
    assert isinstance(agent.old_c, SharedContinuousActor)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-rel", "adsac-exact-geo-ar",
                                      "continuous_actor", ("actor_c", "critics"))
    assert isinstance(whole.actor_c, SharedContinuousActor)
    assert whole.cfg.continuous_actor == "shared"


def test_conditioned_runs_resume_exactly_and_act_given_their_servers(tmp_path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-search-cond-pow",
                                      "adsac-exact-geo-ar", "continuous_actor",
                                      ("actor_c", "old_c", "critics"))
    assert isinstance(whole.actor_c, SharedContinuousActor) and whole.actor_c.n_servers
    obs = (torch.rand(4, whole.obs_dim, generator=torch.Generator().manual_seed(1)) * 2
           - 1).numpy()
    mask = torch.ones(4, whole.k, whole.s, dtype=torch.bool).numpy()
    det = whole.act(obs, mask, True)
    # the deterministic moves are the conditioned actor's mode at the deterministic servers
    want = whole._dist_c(whole.actor_c, torch.as_tensor(obs),
                         torch.as_tensor(det.discrete)).mode()
    torch.testing.assert_close(torch.as_tensor(det.continuous), want)
    other = (torch.as_tensor(det.discrete) + 1) % whole.s
    assert not torch.allclose(whole._dist_c(whole.actor_c, torch.as_tensor(obs), other).mode(),
                              want)


def test_uav_step_stays_in_the_identity_while_a_setting_reads_it(tmp_path) -> None:
    from satedge.experiments.train import _prepare
    from satedge.sim.scenario import resolve

    tiny = resolve("small", ["episode_slots=10"])
    for algo, over, reads in [("adsac", {}, False),
                              ("adsac-exact-geo", {}, True),
                              ("adsac-exact-geo-ar-rel", {"uav_geometry": False}, True)]:
        run = _prepare(algo, tiny, 0, 4, tmp_path / algo, over)[2]
        assert ("uav_step" in run.identity["agent"]) == reads, algo
