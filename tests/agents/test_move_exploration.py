"""The off-policy loop's move exploration: a share of the environment steps fly uniform UAV moves
instead of the agent's (``move_exploration``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from satedge.agents.common.offpolicy import OffPolicyConfig, explore_moves
from satedge.agents.common.protocol import AgentAction
from tests.agents.train_resume import check_resume_and_identity

K, M, B = 4, 2, 6


def _action() -> AgentAction:
    rng = np.random.default_rng(0)
    return AgentAction(rng.integers(0, 5, (2 * B, K)),
                       rng.uniform(-0.1, 0.1, (2 * B, K + 2 * M)).astype(np.float32))


def test_moves_are_replaced_with_probability_p_and_nothing_else_changes() -> None:
    act = _action()
    blocks = [slice(0, B), slice(B, 2 * B)]
    for p, share in ((0.0, 0.0), (1.0, 1.0)):
        out = explore_moves(act, K, p, [np.random.default_rng(s) for s in (1, 2)], blocks)
        assert np.array_equal(out.discrete, act.discrete)
        assert np.array_equal(out.continuous[:, :K], act.continuous[:, :K])
        changed = (out.continuous[:, K:] != act.continuous[:, K:]).all(-1)
        assert changed.mean() == share
        assert np.abs(out.continuous).max() <= 1.0
    many = explore_moves(AgentAction(np.zeros((4000, K), np.int64),
                                     np.zeros((4000, K + 2 * M), np.float32)),
                         K, 0.3, [np.random.default_rng(3)], [slice(None)])
    assert abs((many.continuous[:, K:] != 0).all(-1).mean() - 0.3) < 0.03
    # seed blocks draw from their own generators, as separate runs would
    both = explore_moves(act, K, 0.5, [np.random.default_rng(s) for s in (1, 2)], blocks)
    for s, rows in zip((1, 2), blocks, strict=True):
        alone = explore_moves(AgentAction(act.discrete[rows], act.continuous[rows]), K, 0.5,
                              [np.random.default_rng(s)], [slice(None)])
        assert np.array_equal(both.continuous[rows], alone.continuous)


def test_config_error_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"move_exploration=1\.5"):
        OffPolicyConfig(episodes=4, move_exploration=1.5)


def test_runs_resume_exactly_and_the_default_stays_out_of_the_identity(tmp_path) -> None:
    whole = check_resume_and_identity(tmp_path, "adsac-exact-geo-ar", "adsac-exact-geo-ar",
                                      "move_exploration", ("actor_c", "critics"),
                                      {"move_exploration": 0.5}, part="loop")
    assert whole.cfg.discrete_actor == "autoregressive"
    loop = json.loads((tmp_path / "whole" / "run.json").read_text())["identity"]["loop"]
    assert loop["move_exploration"] == 0.5
