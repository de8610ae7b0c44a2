"""AD-SAC's potential-based UAV-distance shaping of the critic's targets (``uav_shaping``)."""

from __future__ import annotations

import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig, uav_shaping_reward
from satedge.agents.common.buffers import ReplayBatch
from satedge.envs.encoding import IOTD_FEATURE, PER_IOTD, observation_size
from satedge.sim.scenario import Scenario
from tests.agents.train_resume import check_resume_and_identity

SC = Scenario()
K, M, S = SC.n_iotds, SC.n_uavs, SC.n_servers
BLOCK, OBS = PER_IOTD + M, observation_size(SC)
UAV = K * BLOCK + 3  # the UAV positions in the global part (envs/encoding.py)


def _place(obs: torch.Tensor, iotds: list[tuple[float, float]],
           uavs: list[tuple[float, float]]) -> None:
    for k, (x, y) in enumerate(iotds):
        obs[0, k * BLOCK + IOTD_FEATURE["x"]] = x
        obs[0, k * BLOCK + IOTD_FEATURE["y"]] = y
    obs[0, UAV : UAV + 2 * M] = torch.tensor(uavs).flatten()


def test_shares_by_hand_and_their_sum_is_the_potential_difference() -> None:
    obs, nxt = torch.zeros(1, OBS), torch.zeros(1, OBS)
    iotds = [(0.1 * k - 0.5, 0.2) for k in range(K)]
    _place(obs, iotds, [(-0.5, -0.2), (0.5, 0.6), (0.9, 0.9)])
    _place(nxt, iotds, [(-0.5, 0.2), (0.3, 0.2), (0.9, 0.9)])
    beta, gamma = 2.0, 0.9

    def nearest(uavs: list[tuple[float, float]]) -> torch.Tensor:
        return torch.tensor([min(((x - u) ** 2 + (y - v) ** 2) ** 0.5 for u, v in uavs)
                             for x, y in iotds])

    now = nearest([(-0.5, -0.2), (0.5, 0.6), (0.9, 0.9)])
    then = nearest([(-0.5, 0.2), (0.3, 0.2), (0.9, 0.9)])
    for done, want in ((0.0, beta / K * (now - gamma * then)), (1.0, beta / K * now)):
        got = uav_shaping_reward(obs, nxt, torch.tensor([1.0 - done]), K, BLOCK, beta, gamma)
        torch.testing.assert_close(got[0], want, atol=2e-3, rtol=0)  # sqrt(d^2 + 1e-6)
        phi = -beta * now.mean(), -beta * then.mean() * (1.0 - done)
        torch.testing.assert_close(got.sum(), gamma * phi[1] - phi[0], atol=2e-3, rtol=0)
    # moving the UAVs toward the IoTDs is rewarded, away from them penalised
    assert uav_shaping_reward(obs, nxt, torch.ones(1), K, BLOCK, beta, gamma).sum() > 0
    assert uav_shaping_reward(nxt, obs, torch.ones(1), K, BLOCK, beta, gamma).sum() < 0


def _batch(n: int = 16) -> ReplayBatch:
    g = torch.Generator().manual_seed(4)
    return ReplayBatch(
        obs=torch.rand(n, OBS, generator=g) * 2 - 1,
        action_d=torch.randint(0, S, (n, K), generator=g),
        action_c=torch.rand(n, K + 2 * M, generator=g) * 2 - 1,
        reward=-torch.rand(n, generator=g),
        next_obs=torch.rand(n, OBS, generator=g) * 2 - 1,
        done=(torch.arange(n) == 3).float(),
        mask=torch.ones(n, K, S, dtype=torch.bool),
        next_mask=torch.ones(n, K, S, dtype=torch.bool),
        reward_k=-torch.rand(n, K, generator=g) / K,
    )


@pytest.mark.parametrize("per_task", [True, False])
def test_the_critic_regresses_on_the_shaped_reward(per_task: bool) -> None:
    """An agent with ``uav_shaping=beta`` makes the same critic update as an agent without it
    given the shaped rewards, and a different one given the raw rewards."""
    common = {"iotd_block": BLOCK, "hidden": (16, 16), "iotd_hidden": (16, 16),
              "reward_decomposition": per_task}
    b = _batch()
    shaping = uav_shaping_reward(b.obs, b.next_obs, 1.0 - b.done, K, BLOCK, 0.7, 0.9)
    shaped = b._replace(reward=b.reward + shaping.sum(-1), reward_k=b.reward_k + shaping)
    agents = [AdSac(OBS, K, S, K + 2 * M, AdSacConfig(**common, uav_shaping=beta), seed=0)
              for beta in (0.7, 0.0, 0.0)]
    for agent, batch in zip(agents, (b, shaped, b), strict=True):
        agent._update_critic(batch)
    states = [a.state_dict()["critics"] for a in agents]
    for name, value in states[0].items():
        torch.testing.assert_close(value, states[1][name], rtol=0, atol=1e-6)
    assert any(not torch.allclose(v, states[2][n]) for n, v in states[0].items())


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="uav_shaping=-1"):
        AdSacConfig(uav_shaping=-1.0, iotd_block=BLOCK)
    with pytest.raises(ValueError, match="iotd_block=0"):
        AdSacConfig(uav_shaping=1.0)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar-shaped", "adsac-exact-geo-ar",
                                      "uav_shaping", ("actor_c", "actor_d", "critics"))
    assert whole.cfg.uav_shaping == 1.0
