"""Replay ring buffer, rollout buffer and GAE against hand-computed and naive references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from satedge.agents.common.buffers import ReplayBuffer, RolloutBuffer, compute_gae

torch.set_num_threads(1)

OBS, K, S, A = 3, 2, 4, 5


def _rows(b: int, start: float) -> dict[str, np.ndarray]:
    """B transitions whose obs rows are start, start + 1, ... (so rows can be identified)."""
    ids = start + np.arange(b, dtype=np.float32)
    mask = np.zeros((b, K, S), bool)
    mask[:, :, 0] = True
    return {"obs": np.repeat(ids[:, None], OBS, 1), "action_d": (ids[:, None] % S).repeat(K, 1),
            "action_c": np.repeat(ids[:, None] / 100, A, 1), "reward": -ids,
            "next_obs": np.repeat(ids[:, None] + 0.5, OBS, 1), "terminated": ids % 2 == 1,
            "mask": mask, "next_mask": ~mask}


def _buffer(capacity: int) -> ReplayBuffer:
    return ReplayBuffer(capacity, OBS, K, S, A)


# ------------------------------------------------------------------------------------- replay
def test_ring_buffer_wraps_around_oldest_first() -> None:
    buf = _buffer(5)
    buf.add(**_rows(3, 0.0))
    assert len(buf) == 3 and buf.pos == 3
    buf.add(**_rows(4, 3.0))  # rows 3..6: 3, 4 fill slots 3, 4; 5, 6 overwrite slots 0, 1
    assert len(buf) == 5 and buf.pos == 2
    np.testing.assert_array_equal(buf.state_dict()["obs"][:, 0], [5, 6, 2, 3, 4])
    buf.add(**_rows(12, 100.0))  # more than capacity: the newest five rows survive
    assert sorted(buf.state_dict()["obs"][:, 0]) == [107, 108, 109, 110, 111]
    assert buf.pos == (2 + 12) % 5


def test_sample_draws_only_filled_rows_uniformly_with_types() -> None:
    buf = _buffer(100)
    buf.add(**_rows(3, 10.0))
    batch = buf.sample(3000, np.random.default_rng(0), device="cpu")
    ids = batch.obs[:, 0].numpy()
    assert set(np.unique(ids)) == {10.0, 11.0, 12.0}
    counts = np.bincount((ids - 10).astype(int))
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)
    assert batch.action_d.dtype == torch.int64 and batch.done.dtype == torch.float32
    assert batch.mask.dtype == torch.bool and batch.mask.shape == (3000, K, S)
    # fields stay aligned: reward = -id, next_obs = id + 0.5, done = 1 for odd ids
    torch.testing.assert_close(batch.reward, -batch.obs[:, 0])
    torch.testing.assert_close(batch.next_obs, batch.obs + 0.5)
    torch.testing.assert_close(batch.done, (batch.obs[:, 0] % 2 == 1).float())
    torch.testing.assert_close(batch.action_c[:, 0], batch.obs[:, 0] / 100)
    assert torch.equal(batch.next_mask, ~batch.mask)


def test_add_validates_shapes_and_actions() -> None:
    buf = _buffer(10)
    bad = _rows(2, 0.0)
    bad["action_d"] = np.full((2, K), S)
    with pytest.raises(ValueError, match="action_d"):
        buf.add(**bad)
    bad = _rows(2, 0.0)
    bad["mask"] = bad["mask"][:, :1]
    with pytest.raises(ValueError, match="mask"):
        buf.add(**bad)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1, np.random.default_rng(0))
    # float32 obs x2, int16 actions, float32 action_c, reward and per-task rewards, bool
    # terminated and masks
    assert buf.nbytes_per_transition == 4 * OBS * 2 + 2 * K + 4 * A + 4 + 4 * K + 1 + 2 * K * S


def test_state_dict_round_trip_gives_identical_samples() -> None:
    buf = _buffer(7)
    buf.add(**_rows(5, 0.0))
    buf.add(**_rows(4, 5.0))
    state = buf.state_dict()
    assert all(isinstance(v, (int, np.ndarray)) for v in state.values())
    clone = _buffer(7)
    clone.load_state_dict(state)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(3):
        a, b = buf.sample(16, rng_a), clone.sample(16, rng_b)
        for x, y in zip(a, b, strict=True):
            assert (x is None and y is None) or torch.equal(x, y)
    buf.add(**_rows(2, 50.0))
    clone.add(**_rows(2, 50.0))
    for key, value in buf.state_dict().items():
        np.testing.assert_array_equal(value, clone.state_dict()[key])
    with pytest.raises(ValueError, match="capacity"):
        _buffer(8).load_state_dict(state)


# ---------------------------------------------------------------------------------------- GAE
def test_gae_hand_computed_with_termination_and_truncation() -> None:
    gamma, lam = 0.9, 0.8
    r = np.array([[1.0], [2.0], [3.0], [4.0]])
    v = np.array([[0.5], [1.0], [1.5], [2.0]])
    term = np.array([[0], [1], [0], [0]], bool)
    trunc = np.array([[0], [0], [1], [0]], bool)
    # next_values: V(s1) = 1.0; ignored at the termination; V(final obs) = 10 at the truncation;
    # V(obs after the rollout) = 3.0
    nv = np.array([[1.0], [99.0], [10.0], [3.0]])
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma, lam)
    # t=3: delta = 4 + 0.9 * 3 - 2 = 4.7                          A3 = 4.7
    # t=2: delta = 3 + 0.9 * 10 - 1.5 = 10.5 (cut by truncation)  A2 = 10.5
    # t=1: delta = 2 + 0 - 1.0 = 1.0 (terminal: no bootstrap)     A1 = 1.0
    # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4                      A0 = 1.4 + 0.72 * 1.0 = 2.12
    np.testing.assert_allclose(adv[:, 0], [2.12, 1.0, 10.5, 4.7], rtol=1e-12)
    np.testing.assert_allclose(ret[:, 0], [2.62, 2.0, 12.0, 6.7], rtol=1e-12)


def _naive_gae(r: np.ndarray, v: np.ndarray, nv: np.ndarray, term: np.ndarray,
               trunc: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """A_t = sum_l (gamma lam)^l delta_{t+l}, summed forwards until the episode ends."""
    t_len, b_len = r.shape
    adv = np.zeros_like(r)
    for b in range(b_len):
        for t in range(t_len):
            total, coef = 0.0, 1.0
            for j in range(t, t_len):
                delta = r[j, b] + gamma * (0.0 if term[j, b] else nv[j, b]) - v[j, b]
                total += coef * delta
                if term[j, b] or trunc[j, b]:
                    break
                coef *= gamma * lam
            adv[t, b] = total
    return adv


def test_gae_matches_naive_forward_sum_on_random_data() -> None:
    rng = np.random.default_rng(0)
    shape = (37, 6)
    r, v, nv = rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape)
    term, trunc = rng.random(shape) < 0.1, rng.random(shape) < 0.1
    adv, ret = compute_gae(r, v, nv, term, trunc, 0.97, 0.9)
    np.testing.assert_allclose(adv, _naive_gae(r, v, nv, term, trunc, 0.97, 0.9), rtol=1e-10)
    np.testing.assert_allclose(ret, adv + v)
    lam1, _ = compute_gae(r, v, nv, term, trunc, 0.97, 1.0)  # lam = 1: Monte Carlo minus V
    np.testing.assert_allclose(lam1, _naive_gae(r, v, nv, term, trunc, 0.97, 1.0), rtol=1e-10)
    with pytest.raises(ValueError):
        compute_gae(r, v[:-1], nv, term, trunc, 0.9, 0.9)


# ------------------------------------------------------------------------------------ rollout
def _step(buf: RolloutBuffer, t: int, value: list[float], reward: list[float],
          term: list[bool], trunc: list[bool], final: list[float] | None = None) -> None:
    b = buf.n_envs
    buf.add(obs=np.full((b, OBS), t), mask=np.ones((b, K, S), bool),
            action_d=np.full((b, K), t % S), action_c=np.zeros((b, A)), pre_tanh=np.zeros((b, A)),
            log_prob_d=np.full(b, -1.0), log_prob_c=np.full(b, -2.0), value=value, reward=reward,
            terminated=term, truncated=trunc, final_value=final)


def test_rollout_bootstraps_from_final_values_and_last_values() -> None:
    buf = RolloutBuffer(3, 2, OBS, K, S, A)
    _step(buf, 0, [1.0, 2.0], [1.0, 1.0], [False, True], [False, False])
    with pytest.raises(ValueError, match="final_value"):
        _step(buf, 1, [3.0, 4.0], [0.0, 2.0], [False, False], [True, False])
    _step(buf, 1, [3.0, 4.0], [0.0, 2.0], [False, False], [True, False], final=[7.0, -50.0])
    _step(buf, 2, [5.0, 6.0], [1.0, 0.0], [False, False], [False, False])
    with pytest.raises(ValueError, match="full"):
        _step(buf, 3, [0.0, 0.0], [0.0, 0.0], [False, False], [False, False])
    buf.compute(0.5, 1.0, last_values=np.array([8.0, 9.0]))
    # env 0: next values 3 (= V[1]), 7 (final value at the truncation), 8 (last value)
    # env 1: 4 (ignored: terminated), 6 (= V[2], the final value -50 is unused), 9
    np.testing.assert_allclose(buf.next_values, [[3, 4], [7, 6], [8, 9]])
    adv, ret = compute_gae(buf.rewards, buf.values, buf.next_values, buf.terminated,
                           buf.truncated, 0.5, 1.0)
    np.testing.assert_allclose(buf.advantages, adv, rtol=1e-6)
    # env 0, t=2: 1 + 0.5 * 8 - 5 = 0; t=1: 0 + 0.5 * 7 - 3 = 0.5 (cut); t=0: 1 + 1.5 - 1 + 0.25
    np.testing.assert_allclose(buf.advantages[:, 0], [1.75, 0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(buf.returns, ret, rtol=1e-6)


def test_minibatches_cover_every_sample_once_per_epoch() -> None:
    buf = RolloutBuffer(4, 3, OBS, K, S, A)
    with pytest.raises(ValueError):
        next(iter(buf.minibatches(4, np.random.default_rng(0))))
    for t in range(4):
        _step(buf, t, [float(t)] * 3, [1.0] * 3, [False] * 3, [False] * 3)
    buf.compute(0.9, 0.95, last_values=np.zeros(3))
    batches = list(buf.minibatches(5, np.random.default_rng(0), device="cpu"))
    assert [len(b.obs) for b in batches] == [5, 5, 2]
    obs_t = torch.cat([b.obs[:, 0] for b in batches])
    assert sorted(obs_t.tolist()) == sorted([float(t) for t in range(4) for _ in range(3)])
    for b in batches:  # fields stay aligned after shuffling: value = step index = obs
        torch.testing.assert_close(b.value, b.obs[:, 0])
        torch.testing.assert_close(b.returns, b.advantage + b.value)
        assert b.action_d.dtype == torch.int64 and b.mask.dtype == torch.bool
        assert torch.all(b.log_prob_d == -1.0) and torch.all(b.log_prob_c == -2.0)
    again = list(buf.minibatches(5, np.random.default_rng(0)))
    assert all(torch.equal(x.obs, y.obs) for x, y in zip(batches, again, strict=True))


def test_per_task_rewards_default_to_an_equal_split() -> None:
    buf = _buffer(10)
    rows = _rows(3, 0.0)
    rows.pop("reward_k", None)
    buf.add(**rows)
    batch = buf.sample(8, np.random.default_rng(0))
    assert batch.reward_k is not None
    torch.testing.assert_close(batch.reward_k.sum(-1), batch.reward)
    torch.testing.assert_close(batch.reward_k[:, 0], batch.reward / K)
