"""Action wrappers for off-the-shelf learners: Gymnasium's checker, and every mapping by hand.

The hand values use the ``small`` preset (K = 4 IoTDs, M = 2 UAVs, N = 3 candidates, so S = 5):
power level i of P maps to ``-1 + 2 i / (P - 1)``, UAV move 0 stays and move j >= 1 is the
compass step at ``(j - 1) * 45 deg`` scaled so that its larger component is 1.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from satedge.envs import MllmOffloadEnv
from satedge.envs.wrappers import (
    ContinuousRelaxation,
    DiscretisedAction,
    FlatDiscrete,
    feasible_argmax,
    heads_to_action,
    relaxed_to_action,
)

SMALL = "small"
K, M, S = 4, 2, 5
MOVES_9 = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1],
                    [1, -1]], dtype=float)
"""The nine UAV moves of ``uav_directions=9`` written out by hand (stay, E, NE, N, ... SE)."""

checker_warnings = pytest.mark.filterwarnings(
    "error::UserWarning", "ignore:.*different from the unwrapped version")
"""Any warning of the checker fails the test, except that it is checking a wrapper."""


def _pair(overrides: tuple[str, ...] = ()) -> tuple[MllmOffloadEnv, MllmOffloadEnv]:
    return (MllmOffloadEnv(preset=SMALL, overrides=list(overrides)),
            MllmOffloadEnv(preset=SMALL, overrides=list(overrides)))


def _assert_same_step(wrapped: Any, action: Any, plain: MllmOffloadEnv,
                      expected: dict[str, Any]) -> dict[str, Any]:
    """Step the wrapper with ``action`` and the plain env with the hand-built ``expected``; both
    must give the same observation, reward and info."""
    obs_w, r_w, _, trunc_w, info_w = wrapped.step(action)
    obs_p, r_p, _, trunc_p, info_p = plain.step(expected)
    np.testing.assert_array_equal(obs_w, obs_p)
    assert r_w == r_p and trunc_w == trunc_p
    for key, value in info_p.items():
        np.testing.assert_array_equal(info_w[key], value, err_msg=key)
    return dict(info_w)


@checker_warnings
@pytest.mark.parametrize("make", [
    lambda: DiscretisedAction(MllmOffloadEnv(preset=SMALL)),
    lambda: FlatDiscrete(MllmOffloadEnv(preset=SMALL, overrides=["n_iotds=3"])),
    lambda: ContinuousRelaxation(MllmOffloadEnv(preset=SMALL)),
], ids=["discretised", "flat", "relaxation"])
def test_gymnasium_env_checker_passes(make: Any) -> None:
    check_env(make(), skip_render_check=True)


def test_spaces() -> None:
    d = DiscretisedAction(MllmOffloadEnv(preset=SMALL), power_levels=3, uav_directions=5)
    assert d.action_space.nvec.tolist() == [S] * K + [3] * K + [5] * M
    f = FlatDiscrete(MllmOffloadEnv(preset=SMALL), power_levels=2, uav_directions=1)
    assert f.action_space.n == S**K * 2**K == 10_000
    c = ContinuousRelaxation(MllmOffloadEnv(preset=SMALL))
    assert c.action_space.shape == (K * S + K + 2 * M,) == (28,)
    assert np.all(c.action_space.low == -1) and np.all(c.action_space.high == 1)


def test_discretised_maps_heads_by_hand() -> None:
    heads = np.array([0, 4, 1, 2, 0, 1, 2, 4, 3, 2])
    env = DiscretisedAction(MllmOffloadEnv(preset=SMALL))  # power_levels=5, uav_directions=9
    out = env.action(heads)
    np.testing.assert_array_equal(out["offload"], [0, 4, 1, 2])
    np.testing.assert_allclose(out["power"], [-1.0, -0.5, 0.0, 1.0])
    np.testing.assert_allclose(out["uav"], [MOVES_9[3], MOVES_9[2]])  # north, north-east
    np.testing.assert_allclose(out["uav"], [[0, 1], [1, 1]])


def test_discretised_steps_like_the_hand_built_action_and_keeps_infeasible_servers() -> None:
    wrapped, plain = _pair()
    env = DiscretisedAction(wrapped, power_levels=3, uav_directions=9)
    _, info = env.reset(seed=5)
    plain.reset(seed=5)
    rng = np.random.default_rng(0)
    infeasible_sent = failed = 0
    for _ in range(12):
        mask = info["action_mask"]
        server = rng.integers(0, S, K)
        if (~mask).any():  # deliberately send one task to a masked server
            k, s = np.argwhere(~mask)[0]
            server[k] = s
            infeasible_sent += int(info_is_active(plain, k))
        p_idx, u_idx = rng.integers(0, 3, K), rng.integers(0, 9, M)
        expected = {"offload": server, "power": (-1.0 + p_idx).astype(np.float32),
                    "uav": MOVES_9[u_idx].astype(np.float32)}
        info = _assert_same_step(env, np.concatenate([server, p_idx, u_idx]), plain, expected)
        failed += info["n_infeasible"]
    assert failed >= infeasible_sent > 0  # masked choices were passed on, and failed


def info_is_active(env: MllmOffloadEnv, k: int) -> bool:
    """Whether IoTD k has a task in the current slot (a masked choice then fails it)."""
    assert env.state is not None
    return bool(env.state.tasks.active[0, k])


def test_discretised_action_masks_layout() -> None:
    env = DiscretisedAction(MllmOffloadEnv(preset=SMALL), power_levels=2, uav_directions=3)
    _, info = env.reset(seed=1)
    flat = env.action_masks()
    assert flat.shape == (K * S + K * 2 + M * 3,)
    np.testing.assert_array_equal(flat[: K * S], info["action_mask"].ravel())
    assert flat[K * S :].all()


def test_flat_index_mapping_by_hand() -> None:
    env = FlatDiscrete(MllmOffloadEnv(preset=SMALL, overrides=["n_iotds=3"]))  # P = 2, D = 1
    # head sizes (5, 5, 5, 2, 2, 2, 1, 1): radix weights 200, 40, 8, 4, 2, 1, 1, 1
    assert env.action_space.n == 1000
    np.testing.assert_array_equal(env.heads(0), [0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(env.heads(999), [4, 4, 4, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(env.heads(341), [1, 3, 2, 1, 0, 1, 0, 0])  # 200+120+16+4+1
    out = env.action(np.int64(341))
    np.testing.assert_array_equal(out["offload"], [1, 3, 2])
    np.testing.assert_allclose(out["power"], [1.0, -1.0, 1.0])
    np.testing.assert_array_equal(out["uav"], np.zeros((M, 2)))
    every = np.arange(1000)
    np.testing.assert_array_equal(env.index(env.heads(every)), every)
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        env.heads(1000)


def test_flat_steps_like_the_hand_built_action() -> None:
    wrapped, plain = _pair(("n_iotds=3",))
    env = FlatDiscrete(wrapped)
    env.reset(seed=2)
    plain.reset(seed=2)
    for index in (0, 341, 999, 517):
        h = env.heads(index)
        expected = {"offload": h[:3], "power": np.where(h[3:6] == 1, 1.0, -1.0),
                    "uav": np.zeros((M, 2))}
        _assert_same_step(env, np.int64(index), plain, expected)


def test_flat_refuses_a_joint_set_over_the_cap() -> None:
    with pytest.raises(ValueError, match=r"1,099,511,627,776 actions"):  # 8^10 x 2^10
        FlatDiscrete(MllmOffloadEnv())
    with pytest.raises(ValueError, match="max_actions=999"):
        FlatDiscrete(MllmOffloadEnv(preset=SMALL, overrides=["n_iotds=3"]), max_actions=999)


def test_feasible_argmax_by_hand() -> None:
    scores = np.array([[[0.9, 0.5, -0.2], [0.1, 0.7, 0.7], [0.3, -0.4, 0.2]]])
    mask = np.array([[[False, True, True], [True, True, True], [False, False, False]]])
    # row 0: the best score is masked -> 0.5; row 1: tie -> lowest index; row 2: none feasible
    # -> argmax over all servers
    np.testing.assert_array_equal(feasible_argmax(scores, mask), [[1, 1, 0]])


def test_relaxation_picks_the_best_feasible_server_and_passes_the_rest() -> None:
    wrapped, plain = _pair()
    env = ContinuousRelaxation(wrapped)
    _, info = env.reset(seed=7)
    plain.reset(seed=7)
    rng = np.random.default_rng(1)
    picked_second_best = 0
    for _ in range(12):
        mask = info["action_mask"]
        scores = rng.uniform(-1, 1, (K, S)).astype(np.float32)
        rest = rng.uniform(-1, 1, K + 2 * M).astype(np.float32)
        # by hand: the highest score among feasible servers (among all if none is feasible)
        server = np.array([int(np.argmax(np.where(row if row.any() else True, sc, -9.0)))
                           for sc, row in zip(scores, mask, strict=True)])
        picked_second_best += int(np.sum(server != scores.argmax(-1)))
        expected = {"offload": server, "power": rest[:K], "uav": rest[K:].reshape(M, 2)}
        info = _assert_same_step(env, np.concatenate([scores.ravel(), rest]), plain, expected)
        assert info["n_infeasible"] == 0
    assert picked_second_best > 0  # the mask did change some choices


def test_relaxation_needs_reset() -> None:
    env = ContinuousRelaxation(MllmOffloadEnv(preset=SMALL))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(28, np.float32))


def test_heads_to_action_rejects_bad_heads() -> None:
    spec = DiscretisedAction(MllmOffloadEnv(preset=SMALL)).action_spec
    with pytest.raises(ValueError, match=r"expected \(B, 10\)"):
        heads_to_action(spec, np.zeros((1, 9), np.int64))
    bad = np.zeros((1, 10), np.int64)
    bad[0, 4] = 5  # power head of size 5
    with pytest.raises(ValueError, match="sizes"):
        heads_to_action(spec, bad)


def test_wrappers_need_a_satedge_env() -> None:
    import gymnasium as gym

    with pytest.raises(TypeError, match="not a satedge environment"):
        DiscretisedAction(gym.make("CartPole-v1"))


def test_wrappers_do_not_import_torch() -> None:
    code = ("import sys, satedge.envs.wrappers; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_batched_mappings_equal_the_wrappers_row_by_row() -> None:
    """The batched functions (what an evaluation of a trained learner on the vector env uses)
    map every row exactly as the single-env wrapper maps it during training."""
    rng = np.random.default_rng(3)
    disc = DiscretisedAction(MllmOffloadEnv(preset=SMALL), power_levels=3, uav_directions=5)
    heads = np.stack([rng.integers(0, n, 6) for n in disc.action_space.nvec], axis=-1)
    batched = heads_to_action(disc.action_spec, heads)
    relax = ContinuousRelaxation(MllmOffloadEnv(preset=SMALL))
    _, info = relax.reset(seed=0)
    acts = rng.uniform(-1, 1, (6, 28)).astype(np.float32)
    masks = np.repeat(info["action_mask"][None], 6, axis=0)
    relaxed = relaxed_to_action(K, S, M, acts, masks)
    for i in range(6):
        for key, value in disc.action(heads[i]).items():
            np.testing.assert_array_equal(batched[key][i], value)
        for key, value in relax.action(acts[i]).items():
            np.testing.assert_array_equal(relaxed[key][i], value)
