"""AD-SAC-D and AD-SAC-C: action mapping, masks, score reconstruction, checkpoints, and the
training command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.adsac_variants import AdSacC, AdSacCConfig, AdSacD, AdSacDConfig
from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.checkpoint import load_checkpoint, save_checkpoint
from satedge.agents.common.logger import METRIC_NAMES
from satedge.agents.registry import algorithm_spec, build_agent
from satedge.cli import main

torch.set_num_threads(1)

K, S, M = 3, 4, 1
CONT = K + 2 * M
OBS = 6
SMALL = {"hidden": (16, 16)}


def _mask(b: int, rng: np.random.Generator) -> np.ndarray:
    mask = rng.random((b, K, S)) < 0.5
    mask[0, 0] = False  # an IoTD with no feasible server (any server, as the env's contract)
    return mask


def _buffer(agent: AdSacD | AdSacC, n: int, seed: int) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(n, OBS, K, S, CONT)
    obs, mask = rng.normal(size=(n, OBS)).astype(np.float32), _mask(n, rng)
    a = agent.act(obs, mask)
    buf.add(obs, a.discrete, a.continuous, rng.normal(size=n), obs[::-1], np.zeros(n, bool),
            mask, mask[::-1])
    return buf


@pytest.mark.parametrize("cls", [AdSacD, AdSacC])
def test_actions_respect_the_mask_and_the_layout(cls: type) -> None:
    cfg = AdSacDConfig(**SMALL) if cls is AdSacD else AdSacCConfig(**SMALL)
    agent = cls(OBS, K, S, CONT, cfg, 0)
    rng = np.random.default_rng(0)
    mask = _mask(400, rng)
    obs = rng.normal(size=(400, OBS)).astype(np.float32)
    for deterministic in (False, True):
        a = agent.act(obs, mask, deterministic)
        assert a.discrete.shape == (400, K) and a.continuous.shape == (400, CONT)
        chosen = np.take_along_axis(mask, a.discrete[..., None], -1)[..., 0]
        assert (chosen | ~mask.any(-1)).all()  # a feasible server wherever there is one
        assert (np.abs(a.continuous) <= 1).all()


def test_adsac_d_continuous_part_is_on_the_grid_and_maps_back_exactly() -> None:
    agent = AdSacD(OBS, K, S, CONT, AdSacDConfig(**SMALL, power_levels=3), 0)
    rng = np.random.default_rng(1)
    a = agent.act(rng.normal(size=(200, OBS)).astype(np.float32), _mask(200, rng))
    assert set(np.unique(a.continuous[:, :K])) <= {-1.0, 0.0, 1.0}
    idx = agent.spec.from_continuous(a.continuous)
    np.testing.assert_array_equal(agent.spec.to_continuous(idx[:, :K], idx[:, K:]), a.continuous)
    assert agent.core.head_sizes == (S,) * K + (3,) * K + (9,) * M


def test_adsac_c_servers_and_score_reconstruction_by_hand() -> None:
    agent = AdSacC(OBS, 1, 3, 3, AdSacCConfig(**SMALL), 0)
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]])
    mask = torch.tensor([[[False, True, True]], [[False, False, False]]])
    # feasible argmax: server 2 (0.5 > 0.1); an all-masked IoTD may use any server: server 0
    assert agent.servers(scores, mask).tolist() == [[2], [0]]
    # the canonical scores of an executed server (+1 it, -1 the rest) select that server again
    rng = np.random.default_rng(2)
    agent = AdSacC(OBS, K, S, CONT, AdSacCConfig(**SMALL), 0)
    m = torch.as_tensor(_mask(300, rng))
    a = agent.act(rng.normal(size=(300, OBS)).astype(np.float32), m.numpy())
    canon = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(a.discrete), S).flatten(1) - 1.0
    assert torch.equal(agent.servers(canon, m), torch.as_tensor(a.discrete))
    active = agent._action_mask(m)
    assert active.shape == (300, K * S + CONT) and active[:, K * S:].all()
    assert active[0, :S].all()  # the IoTD without a feasible server: every score counts


@pytest.mark.parametrize("name", ["adsac-d", "adsac-c"])
def test_update_metrics_and_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    agent, cfg = build_agent(name, OBS, K, S, CONT, 5, SMALL)
    twin, _ = build_agent(name, OBS, K, S, CONT, 6, SMALL)
    buf = _buffer(agent, 64, 0)
    rng = np.random.default_rng(9)
    batches = [buf.sample(16, rng) for _ in range(5)]
    for batch in batches[:3]:
        metrics = agent.update(batch)
    assert set(metrics) <= set(METRIC_NAMES) and all(np.isfinite(v) for v in metrics.values())
    save_checkpoint(tmp_path / "a.pt", {"agent": agent.state_dict()})
    twin.load_state_dict(load_checkpoint(tmp_path / "a.pt")["state"]["agent"])
    for batch in batches[3:]:
        agent.update(batch)
        twin.update(batch)
    obs = np.zeros((8, OBS), np.float32)
    mask = np.ones((8, K, S), bool)
    a, b = agent.act(obs, mask), twin.act(obs, mask)
    np.testing.assert_array_equal(a.discrete, b.discrete)
    np.testing.assert_array_equal(a.continuous, b.continuous)
    assert cfg["critic_lr"] == 1e-3 and cfg["gamma"] == 0.9  # AD-SAC's shared settings


def test_registry_loop_presets() -> None:
    assert algorithm_spec("adsac-c").loop_preset == {"unavailable_samples": False}
    assert "unavailable_samples" not in algorithm_spec("adsac-d").loop_preset
    with pytest.raises(ValueError, match="cont_dim=4"):
        build_agent("adsac-d", OBS, K, S, 4, 0)


@pytest.mark.parametrize("algo", ["adsac-d", "adsac-c"])
def test_cli_trains_and_evaluates_the_ablation(algo: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / algo
    args = ["train", "--algo", algo, "--preset", "small", "--set", "episode_slots=10", "--seed",
            "0", "--episodes", "8", "--out", str(out), "--no-progress"]
    fast = {"learning_starts": 40, "eval_episodes": 2, "batch_size": 32, "hidden": [32, 32],
            "buffer_size": 500}
    for key, value in fast.items():
        args += ["--agent-set", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", "--policy", str(out), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cost_per_slot"] > 0 and result["episodes"] == 2
    # decision-time samples are AdSac's; an ablation's run says so and is not evaluated
    assert main(["evaluate", "--policy", str(out), "--decision-samples", "4"]) == 2
    assert "agent of class AdSac" in capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    unavailable = run["identity"]["loop"]["unavailable_samples"]
    assert unavailable is (algo == "adsac-d")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 8 and summary["updates"] > 0
