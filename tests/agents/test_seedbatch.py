"""Seed-batched training (issue 7): stacked networks give what separate runs give.

Tolerances: a batched matrix product and the sum over S B rows round differently from the
separate runs' products and means, so float32 parameters agree to about 1e-6 absolute after a
few updates (checked at 1e-4 relative to each tensor's scale), while everything drawn from an RNG
(generator states, discrete actions, minibatch indices) and every counter is exactly equal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.adsac import AdSac, AdSacConfig
from satedge.agents.common import checkpoint
from satedge.agents.common.buffers import ReplayBatch, ReplayBuffer
from satedge.agents.common.networks import mlp
from satedge.agents.common.seedbatch import (
    BatchedLinear,
    SeedGenerators,
    stack_modules,
    stack_state,
    unstack_state,
)
from satedge.agents.heuristics import MOVE_CANDIDATES
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.experiments.train import supports_seed_batching, train, train_seeds
from satedge.sim.scenario import Scenario

torch.set_num_threads(1)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> bool:
    scale = max(float(a.abs().max()), 1e-3)
    return float((a - b).abs().max()) <= rtol * scale


def _compare_states(a: object, b: object, key: str = "") -> None:
    """Floats within tolerance; integers, bytes (generator states) and counts exactly equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, key
        if a.dtype.is_floating_point:
            assert _close(a, b), f"{key}: {float((a - b).abs().max())}"
        else:
            assert torch.equal(a, b), key
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), key
        for k in a:
            _compare_states(a[k], b[k], str(k))
    else:
        assert a == b, key


def test_batched_linear_is_the_separate_layers() -> None:
    torch.manual_seed(0)
    nets = [mlp(5, 3, (7,)) for _ in range(4)]
    stacked = stack_modules(nets)
    assert sum(isinstance(m, BatchedLinear) for m in stacked.modules()) == 2
    x = torch.randn(4 * 6, 2, 5)  # seed-major rows, an extra batch dimension
    y = stacked(x)
    expected = torch.cat([net(x[6 * i: 6 * (i + 1)]) for i, net in enumerate(nets)])
    assert y.shape == (24, 2, 3) and torch.allclose(y, expected, atol=1e-6)
    with pytest.raises(TypeError, match="LayerNorm"):
        stack_modules([mlp(5, 3, (7,), layer_norm=True)] * 2)


def test_seed_generators_draw_each_seed_s_own_stream() -> None:
    gens = SeedGenerators([torch.Generator().manual_seed(s) for s in (3, 4)])
    rows = gens.draw(torch.rand, (6, 2))
    cols = gens.along(1).draw(torch.randn, (5, 4))
    assert torch.equal(rows[:3], torch.rand((3, 2), generator=torch.Generator().manual_seed(3)))
    assert torch.equal(rows[3:], torch.rand((3, 2), generator=torch.Generator().manual_seed(4)))
    g3, g4 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    torch.rand((3, 2), generator=g3), torch.rand((3, 2), generator=g4)  # same history
    assert torch.equal(cols[:, :2], torch.randn((5, 2), generator=g3))
    assert torch.equal(cols[:, 2:], torch.randn((5, 2), generator=g4))
    with pytest.raises(ValueError, match="multiple of 2 seeds"):
        gens.draw(torch.rand, (3,))


def test_state_dicts_stack_and_unstack() -> None:
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    opt = torch.optim.Adam(a.parameters())
    a(torch.ones(1, 3)).sum().backward()
    opt.step()
    states = [{"net": a.state_dict(), "opt": opt.state_dict(), "generator": torch.zeros(2),
               "config": {"x": 1}},
              {"net": b.state_dict(), "opt": opt.state_dict(), "generator": torch.ones(2),
               "config": {"x": 1}}]
    stacked = stack_state(states)
    assert stacked["net"]["weight"].shape == (2, 2, 3)
    assert stacked["opt"]["state"][0]["step"].shape == ()  # Adam's step count is shared
    for i in (0, 1):
        _compare_states(unstack_state(stacked, i), states[i])
    with pytest.raises(ValueError, match="differs"):
        stack_state([{"config": {"x": 1}}, {"config": {"x": 2}}])


def _random_buffer(rng: np.random.Generator, obs_dim: int, k: int, s: int,
                   a: int, tables: bool = False, searched: bool = False,
                   move_values: int = 0) -> ReplayBuffer:
    """200 random transitions; with ``move_values`` C > 0, random move targets with C candidate
    rewards."""
    n_uavs = (a - k) // 2
    buf = ReplayBuffer(500, obs_dim, k, s, a, server_rewards=tables, server_targets=searched,
                       move_targets=move_values > 0, move_values=move_values)
    for _ in range(200):
        o = rng.standard_normal((1, obs_dim)).astype(np.float32)
        m = rng.random((1, k, s)) < 0.7
        m[..., 0] = True
        buf.add(o, rng.integers(0, s, (1, k)), rng.uniform(-1, 1, (1, a)).astype(np.float32),
                rng.standard_normal(1), o, np.zeros(1, bool), m, m,
                rng.standard_normal((1, k)),
                rng.standard_normal((1, k, s)) if tables else None,
                server_targets=np.stack([rng.integers(0, s, (1, k)), rng.random((1, k)) < 0.7],
                                        -1) if searched else None,
                move_targets=np.concatenate([rng.uniform(-0.9, 0.9, (1, n_uavs, 2)),
                                             rng.random((1, n_uavs, 1)) < 0.7,
                                             rng.standard_normal((1, n_uavs, move_values))], -1)
                if move_values else None)
    return buf


@pytest.mark.parametrize("form,shared,values", [("modern", True, "critic"),
                                               ("paper", False, "critic"),
                                               ("modern", True, "exact"),
                                               ("modern", True, "exact+geometry"),
                                               ("modern", True, "exact+geometry+ar"),
                                               ("modern", True, "exact+geometry+ar+rel"),
                                               ("modern", True, "exact+geometry+ar+cond"),
                                               ("modern", True, "exact+cond"),
                                               ("modern", True, "exact+geometry+ar+cond+srv"),
                                               ("modern", True,
                                                "exact+geometry+ar+cond+srv+beam"),
                                               ("modern", True, "exact+geometry+ar+cond+val")])
def test_batched_adsac_updates_like_separate_agents(form: str, shared: bool, values: str) -> None:
    sc = Scenario()
    obs_dim, k, s = observation_size(sc), sc.n_iotds, sc.n_servers
    a = k + 2 * sc.n_uavs
    values, *flags = values.split("+")  # server values, then the options switched on
    geometry, ar, rel = ("geometry" in flags), ("ar" in flags), ("rel" in flags)
    actor_c = "conditioned" if "cond" in flags else "shared" if rel else "flat"
    cfg = AdSacConfig(form=form, hidden=(64, 64), iotd_hidden=(32, 32), mpo_samples=4,
                      iotd_block=PER_IOTD + sc.n_uavs if shared else 0, server_values=values,
                      uav_geometry=geometry, uav_step=0.24,
                      discrete_actor="autoregressive" if ar else "factorised",
                      continuous_actor=actor_c, server_search=2 if "srv" in flags else 0,
                      move_values="simulated" if "val" in flags else "critic",
                      move_value_net="val" in flags, decision_beam=3 if "beam" in flags else 0)
    seeds = (5, 6, 7)
    separate = [AdSac(obs_dim, k, s, a, cfg, seed=x) for x in seeds]
    batched = AdSac.seed_batched([AdSac(obs_dim, k, s, a, cfg, seed=x) for x in seeds])
    rng = np.random.default_rng(0)
    buffers = [_random_buffer(rng, obs_dim, k, s, a, values == "exact", "srv" in flags,
                              len(MOVE_CANDIDATES) if "val" in flags else 0) for _ in seeds]
    obs = rng.standard_normal((6, obs_dim)).astype(np.float32)
    mask = np.ones((6, k, s), bool)
    acts = [ag.act(obs[2 * i: 2 * i + 2], mask[2 * i: 2 * i + 2]) for i, ag in enumerate(separate)]
    both = batched.act(obs, mask)
    assert np.array_equal(both.discrete, np.concatenate([x.discrete for x in acts]))
    assert np.allclose(both.continuous, np.concatenate([x.continuous for x in acts]), atol=1e-6)
    for step in range(8):
        parts = [b.sample(32, np.random.default_rng(step)) for b in buffers]
        sep_metrics = [ag.update(p) for ag, p in zip(separate, parts, strict=True)]
        joined = ReplayBatch(*(torch.cat([getattr(p, f) for p in parts])
                               if getattr(parts[0], f) is not None else None
                               for f in ReplayBatch._fields))
        bat_metrics = batched.update(joined)
    for key, values in bat_metrics.items():
        assert np.allclose(values, [m[key] for m in sep_metrics], rtol=1e-3, atol=1e-5), key
    for i, ag in enumerate(separate):
        _compare_states(ag.state_dict(), batched.seed_state_dict(i))
        seed_agent = batched.seed_agent(i)
        assert np.array_equal(seed_agent.act(obs, mask, True).discrete,
                              ag.act(obs, mask, True).discrete)
    # the mode the loop searches from (server_search_from_mode), seed block by seed block
    assert np.array_equal(batched.mode_servers(obs, mask), np.concatenate(
        [ag.mode_servers(obs[2 * i: 2 * i + 2], mask[2 * i: 2 * i + 2])
         for i, ag in enumerate(separate)]))


_SCENARIO = Scenario().replace({"episode_slots": 10})
_SETTINGS = {"n_envs": 2, "learning_starts": 40, "batch_size": 32, "eval_episodes": 2,
             "eval_every_episodes": 4, "hidden": (32, 32), "iotd_hidden": (32, 32),
             "mpo_samples": 4}


def _checkpoint(path: object) -> dict:
    return checkpoint.load_checkpoint(path / "checkpoint.pt")["state"]  # type: ignore[operator]


def test_train_seeds_equals_separate_runs_and_resumes_exactly(tmp_path) -> None:
    seeds = [0, 1]
    separate = [train("adsac", _SCENARIO, x, 8, tmp_path / f"sep{x}", overrides=_SETTINGS,
                      progress=False) for x in seeds]
    outs = [tmp_path / f"bat{x}" for x in seeds]
    batched = train_seeds("adsac", _SCENARIO, seeds, 8, outs, overrides=_SETTINGS,
                          progress=False)
    for x, sep, bat in zip(seeds, separate, batched, strict=True):
        assert bat == pytest.approx(sep, rel=1e-3)
        a, b = _checkpoint(tmp_path / f"sep{x}"), _checkpoint(tmp_path / f"bat{x}")
        assert a["counters"] == b["counters"] and a["rng"] == b["rng"]
        assert a["env_rngs"] == b["env_rngs"]
        assert np.array_equal(a["buffer"]["action_d"], b["buffer"]["action_d"])
        assert np.allclose(a["buffer"]["obs"], b["buffer"]["obs"], atol=1e-5)
        _compare_states(a["agent"], b["agent"])
        # a seed of a batched run is an ordinary run directory
        assert (tmp_path / f"bat{x}" / "run.json").is_file()
        assert (tmp_path / f"bat{x}" / "metrics.jsonl").read_text().count("\n") == 4
    # interrupted after 4 episodes and resumed: exactly the uninterrupted batched run
    resumed = [tmp_path / f"res{x}" for x in seeds]
    train_seeds("adsac", _SCENARIO, seeds, 4, resumed, overrides=_SETTINGS, progress=False)
    again = train_seeds("adsac", _SCENARIO, seeds, 8, resumed, overrides=_SETTINGS,
                        progress=False)
    assert again == batched
    for x in seeds:
        a, b = _checkpoint(tmp_path / f"res{x}"), _checkpoint(tmp_path / f"bat{x}")
        assert all(torch.equal(a["agent"]["critics"][n], b["agent"]["critics"][n])
                   for n in a["agent"]["critics"])


def test_train_seeds_groups_seeds_by_progress(tmp_path) -> None:
    # seed 0 already finished, seed 1 half-way, seed 2 new: two groups and a skipped seed
    train("adsac", _SCENARIO, 0, 8, tmp_path / "s0", overrides=_SETTINGS, progress=False)
    train("adsac", _SCENARIO, 1, 4, tmp_path / "s1", overrides=_SETTINGS, progress=False)
    out = train_seeds("adsac", _SCENARIO, [0, 1, 2], 8, [tmp_path / f"s{x}" for x in range(3)],
                      overrides=_SETTINGS, progress=False)
    alone = train("adsac", _SCENARIO, 2, 8, tmp_path / "alone2", overrides=_SETTINGS,
                  progress=False)
    assert out[2] == pytest.approx(alone, rel=1e-6)
    assert all(_checkpoint(tmp_path / f"s{x}")["counters"]["episodes"] == 8 for x in range(3))


def test_train_seeds_refuses_what_it_cannot_batch(tmp_path) -> None:
    assert supports_seed_batching("adsac") and not supports_seed_batching("d3qn")
    with pytest.raises(ValueError, match="d3qn"):
        train_seeds("d3qn", _SCENARIO, [0, 1], 4, [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="repeat"):
        train_seeds("adsac", _SCENARIO, [0, 0], 4, [tmp_path / "a", tmp_path / "b"])
