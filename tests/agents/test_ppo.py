"""PPO and Hybrid-PPO: loss terms by hand, the stored log-probabilities, masks, executed
parameters, determinism, and ``satedge train --algo ppo`` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from satedge.agents.common.buffers import RolloutBatch
from satedge.agents.common.distributions import TanhGaussian
from satedge.agents.common.ppo_losses import (
    approx_kl,
    clipped_surrogate,
    clipped_value_loss,
    normalise_advantages,
    orthogonal_mlp,
)
from satedge.agents.hybrid_ppo import HybridPpo, HybridPpoConfig, executed_parameters
from satedge.agents.ppo import Ppo, PpoConfig
from satedge.cli import main
from satedge.experiments.train import load_trained_agent, train
from satedge.sim.scenario import resolve

torch.set_num_threads(1)

TINY = resolve("small", ["episode_slots=10"])
FAST = {"n_envs": 2, "n_steps": 10, "epochs": 2, "minibatch_size": 10, "eval_episodes": 2,
        "eval_every_episodes": 4, "hidden": [16, 16]}
OBS, K, M, S = 6, 3, 1, 2  # S = 2 < power levels 5 < UAV directions 9: padded server heads


# ------------------------------------------------------------------------------- losses
def test_clipped_surrogate_by_hand() -> None:
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.1, 0.5])
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0, -1.0])
    log_ratio = ratio.log().requires_grad_()
    loss, frac = clipped_surrogate(log_ratio, adv, 0.2)
    # min(r A, clip(r) A): 0.5 (r < 1 - eps but A > 0: unclipped is lower), -1, 2.4 (1.2 * 2),
    # -2.2 (1.1 inside the range), -0.8 (clip(0.5) = 0.8 times -1 is lower than -0.5)
    assert float(loss.detach()) == pytest.approx(-(0.5 - 1.0 + 2.4 - 2.2 - 0.8) / 5)
    assert float(frac) == pytest.approx(3 / 5)  # 0.5, 1.5, 0.5 lie outside [0.8, 1.2]
    loss.backward()
    # d(-r A / 5) / d log r = -r A / 5 where the unclipped term is the minimum, else 0
    assert log_ratio.grad is not None
    torch.testing.assert_close(log_ratio.grad, torch.tensor([-0.1, 0.2, 0.0, 0.44, 0.0]))
    with pytest.raises(ValueError, match=r"clip=1\.5"):
        clipped_surrogate(log_ratio, adv, 1.5)


def test_clipped_value_loss_by_hand() -> None:
    old, value, ret = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, -0.1, 2.0]), torch.ones(3)
    ret[2] = 0.0
    # clipped values 0.2, -0.1, 1.2; squared errors max((0.25, 0.64), (1.21, 1.21), (4, 1.44))
    assert float(clipped_value_loss(value, old, ret, 0.2)) == pytest.approx(0.5 * 5.85 / 3)
    assert float(clipped_value_loss(value, old, ret, None)) == pytest.approx(0.5 * 5.46 / 3)


def test_kl_estimate_and_advantage_normalisation_by_hand() -> None:
    # (2 - 1 - log 2) + (0.5 - 1 + log 2) = 0.5, mean 0.25
    assert float(approx_kl(torch.tensor([math.log(2.0), math.log(0.5)]))) == pytest.approx(0.25)
    torch.testing.assert_close(normalise_advantages(torch.tensor([1.0, 2.0, 3.0])),
                               torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_orthogonal_init_gains_and_zero_biases() -> None:
    net = orthogonal_mlp(5, 3, (8, 4), 0.01, torch.Generator().manual_seed(0))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for layer, gain in zip(linears, (math.sqrt(2.0), math.sqrt(2.0), 0.01), strict=True):
        w = layer.weight.detach()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(small, gain**2 * torch.eye(small.shape[0]), atol=1e-5,
                                   rtol=0)
        assert torch.all(layer.bias == 0)
    again = orthogonal_mlp(5, 3, (8, 4), 0.01, torch.Generator().manual_seed(0))
    for a, b in zip(net.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [{"clip_range": 1.0}, {"lr": 0.0}, {"ent_coef": -0.1},
                                 {"clip_range_vf": 0.0}, {"hidden": ()}])
def test_config_errors_name_the_value(bad: dict) -> None:
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        PpoConfig(**bad)
    with pytest.raises(ValueError, match="log_std_init=9"):
        HybridPpoConfig(log_std_init=9.0)


# ----------------------------------------------------------------------------------- PPO
def _mask(b: int, rng: np.random.Generator) -> np.ndarray:
    mask = rng.random((b, K, S)) < 0.6
    mask[0, 0] = False  # no feasible server: every real server allowed, never the padding
    mask[0, 1] = [False, True]
    return mask


def _skewed(agent: Ppo | HybridPpo) -> None:
    """Non-uniform policies, so that sampled and most probable actions differ in log-prob."""
    with torch.no_grad():
        for net in [getattr(agent, n) for n in ("actor", "actor_d", "actor_c") if
                    hasattr(agent, n)]:
            net[-1].bias.copy_(torch.linspace(-1.5, 1.5, net[-1].bias.numel()))


def test_ppo_samples_only_allowed_choices_and_stores_the_sampled_log_prob() -> None:
    agent = Ppo(OBS, K, S, K + 2 * M, PpoConfig(hidden=(8,)), seed=0)
    _skewed(agent)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(256, OBS)).astype(np.float32)
    mask = _mask(256, rng)
    action, rec = agent.explore(obs, mask)
    heads = rec["action_d"]
    assert heads.shape == (256, 2 * K + M) and np.array_equal(action.discrete, heads[:, :K])
    sizes = np.array(agent.spec.head_sizes)
    assert np.all(heads < sizes) and np.all(heads >= 0)
    row_ok = mask | ~mask.any(-1, keepdims=True)
    assert np.all(np.take_along_axis(row_ok, heads[:, :K, None], -1))
    assert np.all(heads[0, 1] == 1)
    # the log-prob of the sampled joint action, recomputed in numpy from the logits
    with torch.no_grad():
        logits = agent.actor(torch.as_tensor(obs)).view(256, 2 * K + M, -1).numpy()
    allowed = rec["mask"]
    z = np.where(allowed, logits.astype(np.float64), -np.inf)
    logp = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - z.max(-1, keepdims=True)
    sampled = np.take_along_axis(logp, heads[..., None], -1)[..., 0].sum(-1)
    np.testing.assert_allclose(rec["log_prob_d"], sampled, rtol=1e-5)
    assert np.mean(np.abs(rec["log_prob_d"] - logp.max(-1).sum(-1)) > 1e-3) > 0.5
    np.testing.assert_allclose(action.continuous[:, :K],
                               np.linspace(-1, 1, 5)[heads[:, K:2 * K]])
    det = agent.act(obs, mask, deterministic=True)
    np.testing.assert_array_equal(det.discrete, logp.argmax(-1)[:, :K])


def _batch(agent: Ppo | HybridPpo, rec: dict, adv: np.ndarray) -> RolloutBatch:
    t = {k: torch.as_tensor(np.asarray(v)) for k, v in rec.items()}
    n = len(adv)
    return RolloutBatch(obs=t["obs"], mask=t["mask"], action_d=t["action_d"].long(),
                        action_c=t["action_c"].float(), pre_tanh=t["pre_tanh"].float(),
                        log_prob_d=t["log_prob_d"].float(), log_prob_c=t["log_prob_c"].float(),
                        value=t["value"].float(), advantage=torch.as_tensor(adv).float(),
                        returns=t["value"].float() + torch.as_tensor(adv).float()[:n])


@pytest.mark.parametrize("cls", ["ppo", "hybrid"])
def test_update_improves_the_surrogate_and_starts_at_ratio_one(cls: str) -> None:
    """On its own rollout the first update sees ratio 1 (KL 0, nothing clipped); repeated
    updates raise the probability of positive-advantage actions."""
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(64, OBS)).astype(np.float32)
    mask = _mask(64, rng)
    agent: Ppo | HybridPpo = (Ppo(OBS, K, S, K + 2 * M, PpoConfig(hidden=(8,), lr=1e-2), 0)
                              if cls == "ppo" else
                              HybridPpo(OBS, K, S, K + 2 * M, HybridPpoConfig(hidden=(8,),
                                                                             lr=1e-2), 0))
    _, rec = agent.explore(obs, mask)
    adv = np.where(np.arange(64) % 2 == 0, 1.0, -1.0)
    batch = _batch(agent, rec, adv)
    first = agent.update(batch)
    assert first["ppo/approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert first["ppo/clip_fraction"] == 0.0
    for _ in range(20):
        agent.update(batch)
    if isinstance(agent, Ppo):
        dist = agent._dist(batch.obs, batch.mask)
    else:
        dist, _ = agent._dists(batch.obs, batch.mask)
    new = dist.log_prob(batch.action_d).sum(-1)
    gain = (new - batch.log_prob_d).detach().numpy()
    assert gain[adv > 0].mean() > 0 > gain[adv < 0].mean()


# ---------------------------------------------------------------------------- Hybrid-PPO
def test_hybrid_executes_the_chosen_servers_power_and_its_log_prob_only() -> None:
    agent = HybridPpo(OBS, K, S, K + 2 * M, HybridPpoConfig(hidden=(8,)), seed=0)
    _skewed(agent)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(128, OBS)).astype(np.float32)
    mask = _mask(128, rng)
    action, rec = agent.explore(obs, mask)
    a_d, params, u = rec["action_d"], rec["action_c"], rec["pre_tanh"]
    assert params.shape == (128, K * S + 2 * M)
    np.testing.assert_allclose(params, np.tanh(u), rtol=1e-6)
    chosen = np.take_along_axis(params[:, :K * S].reshape(128, K, S), a_d[..., None], -1)[..., 0]
    np.testing.assert_array_equal(action.continuous[:, :K], chosen)
    np.testing.assert_array_equal(action.continuous[:, K:], params[:, K * S:])
    # log-density of the executed parameters by hand: N(u; mu, sigma) / (1 - tanh(u)^2)
    with torch.no_grad():
        mu = agent.actor_c(torch.as_tensor(obs)).numpy().astype(np.float64)
    sigma = np.exp(agent.cfg.log_std_init)
    per_dim = (-0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
               - np.log(1 - np.tanh(u.astype(np.float64)) ** 2))
    executed = np.zeros((128, K * S + 2 * M))
    for b in range(128):
        for k in range(K):
            if mask[b, k].any():
                executed[b, k * S + a_d[b, k]] = 1.0
    executed[:, K * S:] = 1.0
    assert executed[0, :S].sum() == 0  # IoTD 0 of row 0 has no feasible server: no power used
    np.testing.assert_allclose(rec["log_prob_c"], (per_dim * executed).sum(-1), rtol=1e-4)
    got = executed_parameters(torch.as_tensor(a_d), torch.as_tensor(mask), 2 * M).numpy()
    np.testing.assert_array_equal(got, executed)
    # the discrete log-prob is that of the sampled servers, not of the most probable ones
    with torch.no_grad():
        dd, _ = agent._dists(torch.as_tensor(obs), torch.as_tensor(mask))
    np.testing.assert_allclose(rec["log_prob_d"],
                               dd.log_prob(torch.as_tensor(a_d)).sum(-1).numpy(), rtol=1e-6)
    assert np.any(np.abs(rec["log_prob_d"] - dd.log_probs.max(-1).values.sum(-1).numpy()) > 1e-3)


def test_hybrid_gives_no_policy_gradient_to_unexecuted_parameters() -> None:
    agent = HybridPpo(OBS, K, S, K + 2 * M, HybridPpoConfig(hidden=(8,)), seed=0)
    rng = np.random.default_rng(3)
    obs, mask = rng.normal(size=(32, OBS)).astype(np.float32), _mask(32, rng)
    _, rec = agent.explore(obs, mask)
    batch = _batch(agent, rec, rng.normal(size=32))
    _, dc = agent._dists(batch.obs, batch.mask)
    mean = dc.mean.detach().requires_grad_()
    executed = executed_parameters(batch.action_d, batch.mask, 2 * M)
    logp = agent._log_prob_c(TanhGaussian(mean, dc.log_std), batch.pre_tanh, executed)
    clipped_surrogate(logp - batch.log_prob_c, batch.advantage, 0.2)[0].backward()
    assert mean.grad is not None
    assert torch.all(mean.grad[executed == 0] == 0)
    assert torch.count_nonzero(mean.grad[executed == 1]) > 0.9 * int(executed.sum())


# ------------------------------------------------------------------------ runs end to end
def _params(path: Path) -> dict[str, torch.Tensor]:
    agent, _ = load_trained_agent(path)
    state = agent.state_dict()
    return {f"{net}.{k}": v for net in ("actor", "actor_d", "actor_c", "critic")
            if net in state for k, v in state[net].items()}


@pytest.mark.parametrize("algo", ["ppo", "hybrid-ppo"])
def test_same_seed_same_parameters(tmp_path: Path, algo: str) -> None:
    a = train(algo, TINY, 3, 4, tmp_path / "a", overrides=FAST, progress=False)
    b = train(algo, TINY, 3, 4, tmp_path / "b", overrides=FAST, progress=False)
    train(algo, TINY, 4, 4, tmp_path / "c", overrides=FAST, progress=False)
    pa, pb, pc = (_params(tmp_path / n) for n in "abc")
    assert len(pa) >= 6
    for key in pa:
        torch.testing.assert_close(pa[key], pb[key], rtol=0, atol=0)
    assert a == b
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)
    assert all(np.isfinite(v) for v in a.values())


def test_cli_train_and_evaluate_ppo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["train", "--algo", "ppo", "--preset", "small", "--seed", "0", "--episodes", "4",
            "--out", str(out), "--no-progress"]
    for key, value in {**FAST, "n_steps": 20}.items():
        args += ["--agent-set", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["algo"] == "ppo" and trained["cost_per_slot"] > 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["identity"]["loop"]["n_steps"] == 20 and meta["identity"]["agent"]["lr"] == 1e-3
    assert main(["evaluate", "--policy", str(out), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cost_per_slot"] > 0 and result["episodes"] == 2
    assert main(["train", "--algo", "hybrid-ppo", "--preset", "small", "--seed", "0",
                 "--episodes", "8", "--out", str(tmp_path / "bad"), "--agent-set",
                 "minibatch_size=1000"]) == 2
    assert "minibatch_size=1000" in capsys.readouterr().err
