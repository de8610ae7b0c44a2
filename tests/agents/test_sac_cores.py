"""The single-agent SAC cores: hand-computed targets and losses, determinism, checkpoints, and
(slow) Gymnasium control tasks with published scores."""

from __future__ import annotations

import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from satedge.agents.common.buffers import ReplayBuffer
from satedge.agents.common.checkpoint import load_checkpoint, save_checkpoint
from satedge.agents.sac import INACTIVE_VALUE, ContinuousSac, DiscreteSac, SacConfig

torch.set_num_threads(1)

SMALL = SacConfig(hidden=(16, 16))


def _set_constant(net: nn.Module, values: list[float]) -> None:
    """Make a network output ``values`` whatever the input: zero last weights, bias = values."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(values))


# ---------------------------------------------------------------- hand-computed values
H_QUARTER = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # entropy of [1/4, 3/4]


def _discrete_fixture() -> DiscreteSac:
    """Two heads of sizes 2 and 3 (W = 3, head 0 padded), alpha = 1/2, constant networks."""
    cfg = SacConfig(hidden=(4,), init_alpha=0.5, gamma=0.9, critic_lr=1e-12, actor_lr=1e-12,
                    alpha_lr=1e-3, target_entropy_scale_d=0.5)
    core = DiscreteSac(1, (2, 3), cfg, seed=0)
    # policy: head 0 logits [0, ln 3] -> [1/4, 3/4]; head 1 uniform (the padding logit 7 is masked)
    _set_constant(core.actor, [0.0, math.log(3.0), 7.0, 0.0, 0.0, 0.0])
    _set_constant(core.critic_targets[0], [1.0, 2.0, 99.0, 0.0, 3.0, 6.0])
    _set_constant(core.critic_targets[1], [2.0, 2.0, 99.0, 0.0, 0.0, 0.0])
    for critic in core.critics:
        _set_constant(critic, [0.5, 1.0, 0.0, 2.0, 0.0, 0.0])
    return core


def test_discrete_target_critic_actor_and_temperature_by_hand() -> None:
    core = _discrete_fixture()
    obs = torch.zeros(2, 1)
    next_mask = torch.tensor([[True, True, True], [True, True, False]]).expand(2, 2, 3)
    # next state: head 1 loses choice 2 -> [1/2, 1/2]. E_pi Q'_0 = 0.25 + 1.5 + 1.5 = 3.25,
    # E_pi Q'_1 = 2; min 2. V = 2 + 0.5 (H([1/4, 3/4]) + ln 2) = 2.6277; y = 1 + 0.9 V (row 0),
    # y = 1 (row 1 terminal). Both online critics give Q(s, (1, 0)) = 1 + 2 = 3.
    v = 2.0 + 0.5 * (H_QUARTER + math.log(2.0))
    y = torch.tensor([1.0 + 0.9 * v, 1.0])
    critic_loss = 2 * float(((3.0 - y) ** 2).mean())
    m = core.update(obs, torch.tensor([[1, 0], [1, 0]]), torch.ones(2), obs,
                    torch.tensor([0.0, 1.0]), None, next_mask)
    assert m["loss/critic"] == pytest.approx(critic_loss, rel=1e-6)
    assert m["train/q_mean"] == pytest.approx(3.0)
    # actor: sum_h sum_a p (alpha log p - q) = -alpha (H_0 + H_1) - (0.25*0.5 + 0.75*1 + 2/3)
    h = H_QUARTER + math.log(3.0)
    assert m["loss/actor_discrete"] == pytest.approx(-0.5 * h - (0.875 + 2.0 / 3.0), rel=1e-6)
    # temperature: log(0.5) (H - 0.5 (ln 2 + ln 3)); H above target, so alpha falls by ~lr
    target = 0.5 * (math.log(2.0) + math.log(3.0))
    assert m["loss/alpha_discrete"] == pytest.approx(math.log(0.5) * (h - target), rel=1e-6)
    assert m["alpha/discrete"] == pytest.approx(0.5 * math.exp(-1e-3), rel=1e-6)


def test_discrete_act_never_picks_padding_or_masked_choices() -> None:
    core = DiscreteSac(3, (2, 4), SMALL, seed=1)
    _set_constant(core.actor, [0.0, 0.0, 50.0, 50.0, 0.0, 0.0, 50.0, 0.0])
    mask = torch.tensor([[True, True, True, True], [True, True, False, True]]).expand(500, 2, 4)
    for deterministic in (True, False):
        a = core.act(torch.zeros(500, 3), mask, deterministic)
        assert a[:, 0].max() <= 1  # head 0 has 2 choices; the big padding logit is ignored
        assert not (a[:, 1] == 2).any()
    # a head whose choices are all masked is opened to its real choices, never to the padding
    empty = torch.zeros(500, 2, 4, dtype=torch.bool)
    assert core.act(torch.zeros(500, 3), empty)[:, 0].max() <= 1


def test_continuous_target_by_hand_and_inactive_components() -> None:
    cfg = SacConfig(hidden=(4,), init_alpha=0.2, gamma=0.5, critic_lr=1e-12)
    core = ContinuousSac(1, 1, cfg, seed=3)
    _set_constant(core.actor, [0.0, 0.0])  # mean 0, log std 0
    _set_constant(core.critic_targets[0], [4.0])
    _set_constant(core.critic_targets[1], [3.0])
    for c in core.critics:
        _set_constant(c, [1.0])
    gen = torch.Generator()
    gen.set_state(core.gen.get_state())
    u = float(torch.randn((1, 1), generator=gen))  # the next action is the first draw
    # log pi(tanh u) = log N(u; 0, 1) - log(1 - tanh(u)^2)
    log_pi = -0.5 * u * u - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(u) ** 2)
    y = 2.0 + 0.5 * (3.0 - 0.2 * log_pi)
    m = core.update(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([2.0]), torch.zeros(1, 1),
                    torch.zeros(1))
    assert m["loss/critic"] == pytest.approx(2 * (1.0 - y) ** 2, rel=1e-5)
    assert core.target_entropy == -1.0
    a = torch.tensor([[0.3, -0.2]])
    shown = ContinuousSac.critic_view(a, torch.tensor([[True, False]]))
    torch.testing.assert_close(shown, torch.tensor([[0.3, INACTIVE_VALUE]]))


def test_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match=r"gamma=1\.0"):
        SacConfig(gamma=1.0)
    with pytest.raises(ValueError, match=r"target_entropy_scale_d=1\.5"):
        SacConfig(target_entropy_scale_d=1.5)
    with pytest.raises(ValueError, match="head_sizes"):
        DiscreteSac(3, (), SMALL, 0)
    assert SacConfig(hidden=[8, 8]).hidden == (8, 8)  # type: ignore[arg-type]


# ---------------------------------------------------------------- determinism, checkpoints
def _batches(discrete: bool, n: int, seed: int) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        obs, nxt = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
        if discrete:
            a = torch.randint(0, 2, (8, 2), generator=g)
        else:
            a = torch.rand(8, 2, generator=g) * 2 - 1
        done = (torch.rand(8, generator=g) < 0.1).float()
        out.append((obs, a, torch.randn(8, generator=g), nxt, done))
    return out


def _core(discrete: bool, seed: int) -> DiscreteSac | ContinuousSac:
    return DiscreteSac(3, (2, 2), SMALL, seed) if discrete else ContinuousSac(3, 2, SMALL, seed)


def _params(core: DiscreteSac | ContinuousSac) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*core.actor.parameters(), *core.critics.parameters(),
                                         *core.critic_targets.parameters(), core.log_alpha]]


def _train(core: DiscreteSac | ContinuousSac, batches: list[tuple[torch.Tensor, ...]]) -> None:
    for b in batches:
        core.update(*b)


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "continuous"])
def test_same_seed_same_parameters_and_actions(discrete: bool) -> None:
    batches = _batches(discrete, 20, 0)
    a, b, c = _core(discrete, 7), _core(discrete, 7), _core(discrete, 8)
    for core in (a, b, c):
        _train(core, batches)
    for x, y in zip(_params(a), _params(b), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert any(not torch.equal(x, z) for x, z in zip(_params(a), _params(c), strict=True))
    obs = torch.randn(16, 3)
    torch.testing.assert_close(a.act(obs), b.act(obs), rtol=0, atol=0)


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "continuous"])
def test_checkpoint_round_trip_continues_exactly(discrete: bool, tmp_path: Path) -> None:
    batches = _batches(discrete, 30, 1)
    whole, first = _core(discrete, 11), _core(discrete, 11)
    _train(whole, batches)
    _train(first, batches[:10])
    save_checkpoint(tmp_path / "c.pt", {"agent": first.state_dict()}, meta={"algo": "test"})
    resumed = _core(discrete, 99)  # another seed: everything must come from the file
    resumed.load_state_dict(load_checkpoint(tmp_path / "c.pt")["state"]["agent"])
    _train(resumed, batches[10:])
    for x, y in zip(_params(whole), _params(resumed), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    obs = torch.randn(16, 3)
    torch.testing.assert_close(whole.act(obs), resumed.act(obs), rtol=0, atol=0)  # same RNG
    for opt in ("opt_actor", "opt_critic", "opt_alpha"):
        assert getattr(resumed, opt).state_dict()["state"]  # Adam moments restored


# ---------------------------------------------------------------- Gymnasium control tasks
def run_gym(env_id: str, core: DiscreteSac | ContinuousSac, steps: int, seed: int, *,
            learning_starts: int = 1000, batch_size: int = 128,
            eval_episodes: int = 10) -> float:
    """Train ``core`` on one Gymnasium env for ``steps`` steps (one update per step after
    ``learning_starts`` uniform steps) and return the greedy policy's mean undiscounted return
    over ``eval_episodes`` episodes on other seeds. Box actions are scaled from [-1, 1]."""
    env = gym.make(env_id)
    discrete = isinstance(core, DiscreteSac)
    obs_dim = int(np.prod(env.observation_space.shape))
    n_act = int(env.action_space.n) if discrete else 1  # type: ignore[attr-defined]
    a_dim = 0 if discrete else int(np.prod(env.action_space.shape))
    scale = 1.0 if discrete else float(env.action_space.high[0])  # type: ignore[index]
    buffer = ReplayBuffer(steps, obs_dim, 1, n_act, max(a_dim, 1))
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)

    def act(o: np.ndarray, deterministic: bool) -> np.ndarray:
        t = torch.as_tensor(o, dtype=torch.float32)[None]
        return core.act(t, deterministic=deterministic)[0].numpy()

    for step in range(steps):
        if step < learning_starts:
            a = np.asarray(env.action_space.sample())
            a = a.reshape(1) if discrete else a / scale
        else:
            a = act(obs, False)
        nxt, r, term, trunc, _ = env.step(int(a[0]) if discrete else a * scale)
        a_d, a_c = (a, np.zeros(1)) if discrete else (np.zeros(1), a)
        buffer.add(obs[None], a_d[None], a_c[None], [r], nxt[None], [term],
                   np.ones((1, 1, n_act), bool), np.ones((1, 1, n_act), bool))
        obs = env.reset()[0] if term or trunc else nxt
        if step >= learning_starts:
            b = buffer.sample(batch_size, rng)
            action = b.action_d if discrete else b.action_c
            core.update(b.obs, action, b.reward, b.next_obs, b.done)
    returns = []
    for ep in range(eval_episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        total, done = 0.0, False
        while not done:
            a = act(obs, True)
            obs, r, term, trunc, _ = env.step(int(a[0]) if discrete else a * scale)
            total += float(r)
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.slow
def test_continuous_sac_pendulum() -> None:
    """Pendulum-v1: published SAC returns are about -150 to -200 after ~20k steps (rl-baselines3
    zoo); we ask for better than -250 after 8,000 steps (64-unit layers, lr 1e-3 as the zoo).
    Measured: -110.1 and -110.8 (seeds 0 and 1, 10 episodes each)."""
    cfg = SacConfig(hidden=(64, 64), actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
    t0 = time.perf_counter()
    ret = run_gym("Pendulum-v1", ContinuousSac(3, 1, cfg, seed=0), 8000, seed=0)
    print(f"Pendulum-v1: mean return {ret:.1f} in {time.perf_counter() - t0:.0f} s")
    assert ret > -250.0


@pytest.mark.slow
def test_discrete_sac_cartpole() -> None:
    """CartPole-v1 (max 500): a mean greedy return of at least 400 after 20,000 steps.

    tau 0.02 (ours): CartPole needs a faster target than 0.005 (the zoo's DQN copies its target
    every 10 updates); with 0.005, seed 1 stayed near 250 for several learning rates and entropy
    targets. Measured greedy returns at 20k steps with these settings: 496, 500, 500 (seeds 0,
    1, 2; 5 episodes each); seed 2 dipped to about 150 at 15k steps (a temperature spike)."""
    cfg = SacConfig(hidden=(64, 64), actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, tau=0.02)
    t0 = time.perf_counter()
    ret = run_gym("CartPole-v1", DiscreteSac(4, (2,), cfg, seed=0), 20_000, seed=0)
    print(f"CartPole-v1: mean return {ret:.1f} in {time.perf_counter() - t0:.0f} s")
    assert ret >= 400.0
