"""A recorded rollout of the default scenario replays unchanged (a guard for refactors).

``data/golden_rollout.npz`` holds 40 seeded steps of the single environment and of a B = 4 vector
environment (observations, rewards, the action masks and every info value; see ``make_golden.py``
for what exactly). Speed-ups and refactors must reproduce it. When the *model* is changed on
purpose, regenerate it with ``python tests/envs/make_golden.py`` and say so in the commit.

Tolerance: float arrays are compared with ``rtol = 1e-9`` and ``atol = 0``. Reordering the same
float64 arithmetic moves a result by a few ulp (~1e-16 relative) per operation, and the deepest
chains in a slot (orbit -> slant range -> gain -> rate -> latency -> cost) are some tens of
operations, so an honest refactor stays below ~1e-13; any change to a formula, a constant or the
order of random draws moves results by far more than 1e-9. Observations are float32 casts of
float64 features; they are compared with the same relative tolerance, which in practice means
bit-for-bit. Integer, boolean and mask arrays must match exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.envs.make_golden import GOLDEN_PATH, actions_of, single_rollout, vector_rollout

RTOL = 1e-9


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_PATH) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize(("prefix", "rollout"), [("single", single_rollout),
                                                  ("vector", vector_rollout)])
def test_rollout_matches_golden(golden: dict[str, np.ndarray], prefix: str,
                                rollout: Callable[..., dict[str, np.ndarray]]) -> None:
    expected = {k: v for k, v in golden.items() if k.startswith(prefix + "/")}
    got = rollout(actions_of(golden, prefix))
    assert sorted(got) == sorted(expected), "recorded keys differ: info changed?"
    for key, want in expected.items():
        have = got[key]
        assert have.shape == want.shape and have.dtype == want.dtype, key
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(have, want, rtol=RTOL, atol=0.0, err_msg=key)
        else:
            np.testing.assert_array_equal(have, want, err_msg=key)


def test_golden_file_is_small_and_exercises_failures(golden: dict[str, np.ndarray]) -> None:
    assert GOLDEN_PATH.stat().st_size < 200 * 1024
    # the recording covers served, late, infeasible, visibility and dropped tasks and a handover
    for name in ("ok", "deadline", "infeasible", "visibility", "dropped"):
        assert golden[f"vector/info/n_{name}"].sum() > 0, name
    assert golden["vector/info/handover"].any()
