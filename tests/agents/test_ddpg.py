"""DDPG on the relaxed server choice: bounded outputs and exploration, masked argmax, the score
vectors the critic sees, learning checks, checkpoint round trip and a resumable CLI run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.common.buffers import ReplayBatch
from satedge.agents.ddpg import Ddpg, DdpgConfig, select_servers, vertex_scores
from tests.agents.cli_resume import check_cli_determinism_and_resume

torch.set_num_threads(1)

FAST = {"learning_starts": 40, "eval_episodes": 2, "eval_every_episodes": 4, "batch_size": 32,
        "hidden": [32, 32], "buffer_size": 500}
K, S, A, OBS = 3, 4, 7, 6


def _agent(seed: int = 0, **cfg: object) -> Ddpg:
    return Ddpg(OBS, K, S, A, DdpgConfig(hidden=(32, 32), **cfg), seed)  # type: ignore[arg-type]


def test_select_servers_and_vertex_scores_by_hand() -> None:
    scores = torch.tensor([[[0.9, 0.5, -0.2, 0.1], [0.3, 0.3, 0.8, -1.0], [0.0, 0.7, 0.1, 0.2]]])
    mask = torch.tensor([[[False, True, True, True], [True, True, False, True], [False] * 4]])
    # IoTD 0: 0.9 is masked -> 0.5 (server 1); IoTD 1: 0.8 masked, tie 0.3/0.3 -> first (0);
    # IoTD 2: nothing feasible -> plain argmax (1)
    server = select_servers(scores, mask)
    assert server.tolist() == [[1, 0, 1]]
    assert vertex_scores(server, S).tolist() == [[[-1, 1, -1, -1], [1, -1, -1, -1],
                                                  [-1, 1, -1, -1]]]


@pytest.mark.parametrize("deterministic", [False, True])
def test_outputs_and_exploration_stay_in_bounds(deterministic: bool) -> None:
    agent = _agent(score_noise=3.0, action_noise=3.0)  # noise far beyond the box
    with torch.no_grad():  # saturate the actor: raw outputs of order 1e3
        agent.actor[-1].weight.mul_(1e5)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, OBS)).astype(np.float32)
    mask = rng.random((200, K, S)) < 0.4
    act = agent.act(obs, mask, deterministic)
    assert np.all(np.abs(act.continuous) <= 1.0) and np.isfinite(act.continuous).all()
    assert act.continuous.shape == (200, A) and act.discrete.shape == (200, K)
    feasible = np.take_along_axis(mask, act.discrete[..., None], -1)[..., 0]
    assert np.all(feasible | ~mask.any(-1))  # a feasible server wherever there is one
    scores, cont = agent.policy(agent.actor, torch.as_tensor(obs))
    assert scores.abs().max() <= 1.0 and cont.abs().max() <= 1.0
    if not deterministic:  # saturated means at +-1, so the noise was clipped at the bounds
        assert np.mean(np.abs(act.continuous) == 1.0) > 0.3


def test_exploration_noise_has_the_configured_scale() -> None:
    agent = _agent(action_noise=0.1)
    obs = np.zeros((4000, OBS), np.float32)
    mean = agent.policy(agent.actor, torch.as_tensor(obs))[1].detach().numpy()
    act = agent.act(obs, np.ones((4000, K, S), bool))
    diff = act.continuous - mean  # means are near 0 at initialisation: no clipping
    assert np.std(diff) == pytest.approx(0.1, rel=0.05) and abs(np.mean(diff)) < 0.01
    det = agent.act(obs[:5], np.ones((5, K, S), bool), deterministic=True)
    np.testing.assert_allclose(det.continuous, mean[:5], rtol=0, atol=1e-7)


def test_critic_score_input_of_the_actor_update() -> None:
    scores = torch.tensor([[[0.2, -0.5, 0.7, 0.1]]], requires_grad=True)
    mask = torch.tensor([[[True, True, False, True]]])
    relaxed = _agent().critic_scores(scores, mask)  # the infeasible server is pinned at -1
    torch.testing.assert_close(relaxed.detach(), torch.tensor([[[0.2, -0.5, -1.0, 0.1]]]))
    relaxed.sum().backward()
    assert scores.grad is not None and scores.grad.tolist() == [[[1.0, 1.0, 0.0, 1.0]]]


def _batch(seed: int, n: int = 32) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, K, S, generator=g) < 0.6
    mask[..., 1] = True
    return ReplayBatch(torch.randn(n, OBS, generator=g), torch.randint(0, S, (n, K), generator=g),
                       torch.rand(n, A, generator=g) * 2 - 1, torch.randn(n, generator=g),
                       torch.randn(n, OBS, generator=g), torch.ones(n), mask, mask)


def test_terminal_updates_fit_the_critic_and_the_actor_ascends_it() -> None:
    agent, batch = _agent(critic_lr=3e-3, actor_lr=1e-3), _batch(1)
    vertex = vertex_scores(batch.action_d, S)

    def q_policy() -> float:
        with torch.no_grad():
            scores, cont = agent.policy(agent.actor, batch.obs)
            return float(agent.critic(batch.obs, agent.critic_scores(scores, batch.mask),
                                      cont).mean())

    q_before = q_policy()
    for _ in range(500):
        metrics = agent.update(batch)
    with torch.no_grad():  # done = 1: the target is r for the stored (vertex) action
        q = agent.critic(batch.obs, vertex, batch.action_c)
    q_after = q_policy()
    torch.testing.assert_close(q, batch.reward, atol=0.05, rtol=0)
    assert metrics["loss/critic"] < 1e-3
    assert q_after > q_before  # the actor ascends the (fitted) critic
    assert q_after == pytest.approx(-metrics["loss/policy"], abs=0.05)


def test_state_dict_round_trip_is_weights_only_safe() -> None:
    agent, batch = _agent(seed=3, target_noise=0.2), _batch(2)
    obs, mask = batch.obs.numpy(), batch.mask.numpy()
    for _ in range(3):
        agent.update(batch)
        agent.act(obs, mask)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    other = _agent(seed=99, target_noise=0.2)
    other.load_state_dict(torch.load(buf, weights_only=True))
    a, b = agent.act(obs, mask), other.act(obs, mask)
    np.testing.assert_array_equal(a.discrete, b.discrete)
    np.testing.assert_array_equal(a.continuous, b.continuous)
    assert agent.update(batch) == other.update(batch)


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="preactivation_penalty=-1"):
        DdpgConfig(preactivation_penalty=-1.0)
    with pytest.raises(ValueError, match=r"score_noise=-0\.1"):
        DdpgConfig(score_noise=-0.1)


def test_cli_training_is_deterministic_and_resumes_exactly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nets = ("actor", "critic", "actor_target", "critic_target")
    check_cli_determinism_and_resume("ddpg", FAST, nets, tmp_path, capsys)
