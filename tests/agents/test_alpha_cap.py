"""AD-SAC's ``alpha_continuous_max``: the continuous temperature is held at or below a bound
after every update, the discrete one is untouched, and the option resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common.buffers import ReplayBatch
from tests.agents.target_batches import small_adsac, target_batch
from tests.agents.train_resume import check_registered_as, check_resume_and_identity

OBS, K, S, M = 12, 3, 4, 2
A = K + 2 * M


def _alphas_after(agent: AdSac, batch: ReplayBatch, updates: int) -> np.ndarray:
    """(alpha_d, alpha_c) after every one of ``updates`` updates on ``batch``: [updates, 2]."""
    seen = []
    for _ in range(updates):
        metrics = agent.update(batch)
        seen.append((metrics["alpha/discrete"], metrics["alpha/continuous"]))
        np.testing.assert_allclose(seen[-1], agent.log_alpha.detach().exp().numpy(), rtol=1e-6)
    return np.asarray(seen)


def test_the_continuous_temperature_stays_at_or_below_the_bound() -> None:
    # a high learning rate and a continuous entropy target the policy cannot meet: unbounded,
    # alpha_c rises past the bound within a few updates
    batch = target_batch(32, OBS, K, S, A)
    cfg = {"alpha_lr": 0.05, "learning_starts": 0, "batch_size": 32}
    free = small_adsac(OBS, K, S, A, **cfg)
    free.target_entropy_c = 50.0
    bounded = small_adsac(OBS, K, S, A, alpha_continuous_max=0.06, **cfg)
    bounded.target_entropy_c = 50.0
    free_alpha = _alphas_after(free, batch, 12)
    bounded_alpha = _alphas_after(bounded, batch, 12)
    assert free_alpha[-1, 1] > 0.08  # the bound is binding
    assert bounded_alpha[:, 1].max() <= 0.06 * (1 + 1e-6)
    assert bounded_alpha[-1, 1] == pytest.approx(0.06, rel=1e-6)
    # the discrete temperature follows its own loss, whatever the continuous bound
    np.testing.assert_allclose(bounded_alpha[:, 0], free_alpha[:, 0], rtol=1e-5)


def test_a_seed_batched_agent_bounds_each_seed() -> None:
    batch = target_batch(32, OBS, K, S, A)
    agents = [small_adsac(OBS, K, S, A, seed=s, alpha_continuous_max=0.06, alpha_lr=0.05)
              for s in (0, 1)]
    stacked = AdSac.seed_batched(agents)
    stacked.target_entropy_c = 50.0
    rows = ReplayBatch(*(None if x is None else torch.cat([x, x]) for x in batch))
    for _ in range(12):
        stacked.update(rows)
    alpha = stacked.log_alpha.detach().exp()
    assert alpha.shape == (2, 2)
    assert torch.all(alpha[:, 1] <= 0.06 * (1 + 1e-6))


@pytest.mark.parametrize(("value", "match"), [(-0.1, "must be >= 0"),
                                              (0.01, "below init_alpha")])
def test_bad_bounds_are_named(value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdSacConfig(alpha_continuous_max=value)


def test_the_bound_resumes_exactly_and_the_default_stays_out_of_the_identity(
        tmp_path: Path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo-ar",
                                      "alpha_continuous_max", ("actor_c", "actor_d", "critics"),
                                      {"alpha_continuous_max": 0.05})
    assert whole.cfg.alpha_continuous_max == 0.05
    assert whole.log_alpha.detach().exp()[1] <= 0.05 * (1 + 1e-6)


def test_the_registered_combination_is_srv_with_the_bound(tmp_path: Path) -> None:
    agent = check_registered_as(tmp_path, "adsac-exact-geo-ar-search-cond-pow-srv-cap",
                                "adsac-exact-geo-ar-search-cond-pow-srv",
                                {"alpha_continuous_max": 0.05})
    assert isinstance(agent, AdSac) and agent.cfg.alpha_continuous_max == 0.05
