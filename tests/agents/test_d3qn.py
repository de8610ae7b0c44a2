"""D3QN: hand-computed dueling aggregation and double-DQN target, masks, exploration schedule,
checkpoint round trip, determinism and a resumable CLI run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.d3qn import D3qn, D3qnConfig, double_dqn_target, dueling_q
from tests.agents.cli_resume import check_cli_determinism_and_resume

torch.set_num_threads(1)

FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "hidden": [32, 32], "branch_hidden": 16, "buffer_size": 500,
        "eps_decay_transitions": 100}
K, S, M = 3, 4, 2  # IoTDs, servers, UAVs: heads 3 server (4) + 3 power (5) + 2 UAV (9)
OBS = 7


def _agent(seed: int = 0, **cfg: object) -> D3qn:
    return D3qn(OBS, K, S, K + 2 * M, D3qnConfig(hidden=(32, 32), branch_hidden=16, **cfg),
                seed)  # type: ignore[arg-type]


def test_dueling_aggregation_subtracts_the_mean_over_available_choices() -> None:
    value = torch.tensor([10.0])
    adv = torch.tensor([[[1.0, 3.0, 8.0], [0.0, 6.0, 3.0]]])
    avail = torch.tensor([[[True, True, False], [True, True, True]]])
    q = dueling_q(value, adv, avail)
    # branch 0: mean over {1, 3} = 2 -> 10 + [1, 3] - 2; branch 1: mean 3 -> 10 + [0, 6, 3] - 3
    assert q[0, 0, :2].tolist() == [9.0, 11.0]
    assert q[0, 1].tolist() == [7.0, 13.0, 10.0]


def test_double_dqn_target_uses_online_argmax_over_available_and_target_values() -> None:
    online = torch.tensor([[[5.0, 9.0, 1.0], [1.0, 2.0, 3.0]]] * 2)
    target = torch.tensor([[[2.0, 100.0, 7.0], [4.0, 6.0, -1.0]]] * 2)
    avail = torch.tensor([[[True, False, True], [True, True, True]]] * 2)
    y = double_dqn_target(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 1.0]), online, target,
                          avail, gamma=0.9)
    # branch 0: server 1 is masked, so the online argmax is 0 and the target gives 2 (not 100,
    # nor 7 = the target's own max); branch 1: online argmax 2, target -1; mean (2 - 1) / 2
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * 0.5, -3.0]))


def test_availability_from_the_server_mask() -> None:
    agent = _agent()
    mask = torch.tensor([[[True, False, False, True], [False] * 4, [True] * 4]])
    avail = agent.available(mask)[0]
    assert avail.shape == (2 * K + M, 9)
    assert avail[0, :4].tolist() == [True, False, False, True]
    assert avail[1, :4].all()  # no feasible server: the task is dropped, any choice will do
    assert not avail[:K, 4:].any()  # padding of the server heads
    assert avail[K:2 * K, :5].all() and not avail[K:2 * K, 5:].any()  # 5 power levels
    assert avail[2 * K:].all()  # 9 UAV directions


def test_actions_respect_the_mask_and_the_grid_and_epsilon_decays() -> None:
    agent = _agent(eps_start=1.0, eps_end=0.1, eps_decay_transitions=200)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(50, OBS)).astype(np.float32)
    mask = rng.random((50, K, S)) < 0.4
    mask[:, :, 0] |= ~mask.any(-1)  # at least one feasible server per IoTD
    assert agent.epsilon() == 1.0
    for deterministic in (False, True):
        act = agent.act(obs, mask, deterministic)
        assert np.take_along_axis(mask, act.discrete[..., None], -1).all()
        heads = agent.spec.from_continuous(act.continuous)  # on the grid: exact round trip
        np.testing.assert_array_equal(
            agent.spec.to_continuous(heads[:, :K], heads[:, K:]), act.continuous)
    assert agent.explore_transitions == 50  # deterministic actions do not advance the clock
    assert agent.epsilon() == pytest.approx(1.0 - 0.9 * 50 / 200)
    agent.explore_transitions = 10_000
    assert agent.epsilon() == pytest.approx(0.1)


def _batch(seed: int, n: int = 16) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    agent = _agent()
    mask = torch.rand(n, K, S, generator=g) < 0.6
    mask[..., 0] = True
    act = agent.act(np.zeros((n, OBS), np.float32), mask.numpy())
    return ReplayBatch(torch.randn(n, OBS, generator=g), torch.as_tensor(act.discrete),
                       torch.as_tensor(act.continuous), torch.randn(n, generator=g),
                       torch.randn(n, OBS, generator=g), torch.ones(n), mask, mask)


def test_terminal_updates_fit_every_branch_to_the_reward() -> None:
    """With done = 1 the target is r, so every branch's Q of the taken action must reach r."""
    agent, batch = _agent(lr=3e-3), _batch(1)
    for _ in range(600):
        metrics = agent.update(batch)
    heads = torch.cat([batch.action_d, torch.as_tensor(
        agent.spec.from_continuous(batch.action_c.numpy()))], -1)
    with torch.no_grad():
        q = agent.q_values(agent.q, batch.obs, agent.available(batch.mask))
    q_taken = q.gather(-1, heads[..., None]).squeeze(-1)
    torch.testing.assert_close(q_taken, batch.reward[:, None].expand_as(q_taken), atol=0.05,
                               rtol=0)
    assert metrics["loss/critic"] < 1e-3 and set(metrics) >= {"train/q_mean", "explore/epsilon"}


def test_update_regresses_on_the_branch_averaged_double_dqn_target() -> None:
    """The agent's loss, recomputed with explicit loops: online argmax over the available next
    choices, target-network values there, mean over branches, Huber per branch."""
    agent, batch = _agent(huber_delta=0.5, gamma=0.8), _batch(3)
    batch = batch._replace(done=(torch.arange(16) % 3 == 0).float())
    with torch.no_grad():  # make the target network differ from the online one
        for p in agent.q_target.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(7)))
        q = agent.q_values(agent.q, batch.obs, agent.available(batch.mask)).numpy()
        avail = agent.available(batch.next_mask).numpy()
        q_on = agent.q_values(agent.q, batch.next_obs, agent.available(batch.next_mask)).numpy()
        q_tg = agent.q_values(agent.q_target, batch.next_obs,
                              agent.available(batch.next_mask)).numpy()
    heads = np.concatenate([batch.action_d.numpy(),
                            agent.spec.from_continuous(batch.action_c.numpy())], -1)
    losses = []
    for b in range(16):
        boot = np.mean([q_tg[b, d, np.flatnonzero(avail[b, d])[
            np.argmax(q_on[b, d, avail[b, d]])]] for d in range(heads.shape[1])])
        y = float(batch.reward[b]) + 0.8 * (1.0 - float(batch.done[b])) * boot
        for d in range(heads.shape[1]):
            err = abs(q[b, d, heads[b, d]] - y)
            losses.append(0.5 * err**2 if err < 0.5 else 0.5 * (err - 0.25))
    metrics = agent.update(batch)
    assert metrics["loss/critic"] == pytest.approx(np.mean(losses), rel=1e-5)


def test_state_dict_round_trip_is_weights_only_safe() -> None:
    agent, batch = _agent(seed=3), _batch(2)
    obs, mask = batch.obs.numpy(), batch.mask.numpy()
    for _ in range(3):
        agent.update(batch)
        agent.act(obs, mask)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    other = _agent(seed=99)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert other.explore_transitions == agent.explore_transitions
    assert other.updates == agent.updates
    a, b = agent.act(obs, mask), other.act(obs, mask)  # same generator state: same exploration
    np.testing.assert_array_equal(a.discrete, b.discrete)
    np.testing.assert_array_equal(a.continuous, b.continuous)
    ma, mb = agent.update(batch), other.update(batch)
    assert ma == mb


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"eps_end=0\.5"):
        D3qnConfig(eps_start=0.2, eps_end=0.5)
    with pytest.raises(ValueError, match="tau=0"):
        D3qnConfig(tau=0.0)


def test_cli_training_is_deterministic_and_resumes_exactly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_cli_determinism_and_resume("d3qn", FAST, ("q", "q_target"), tmp_path, capsys)
