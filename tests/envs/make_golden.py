"""Record the golden rollout that ``test_golden_rollout.py`` replays.

Run ``python tests/envs/make_golden.py`` from the repository root to (re)write
``tests/envs/data/golden_rollout.npz``. Do that only when the model is changed on purpose (and say
so in the commit); a pure refactor or speed-up must leave the file as it is and the test green.

What is recorded, for the default scenario:

- single environment: ``reset(seed=SINGLE_SEED)``, then ``STEPS`` steps of actions drawn from
  ``action_space.sample`` after ``action_space.seed(SINGLE_SEED)``;
- native vector environment with ``B = VECTOR_B``: ``reset(seed=VECTOR_SEED)``, then ``STEPS``
  steps of sampled actions (``action_space.seed(VECTOR_SEED)``).

The actions themselves are stored, so the replay does not depend on how Gymnasium samples spaces.
For each run the file holds the observations (reset and every step), rewards, truncations,
``info["action_mask"]`` and every numeric info value by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from satedge.envs import MllmOffloadEnv, MllmOffloadVectorEnv

GOLDEN_PATH = Path(__file__).resolve().parent / "data" / "golden_rollout.npz"
STEPS = 40
SINGLE_SEED = 2024
VECTOR_SEED = 7
VECTOR_B = 4
ACTION_KEYS = ("offload", "power", "uav")


def sample_actions(space: Any, seed: int, steps: int) -> dict[str, np.ndarray]:
    """``steps`` seeded samples of a Dict action space, stacked per key along axis 0."""
    space.seed(seed)
    samples = [space.sample() for _ in range(steps)]
    return {key: np.stack([np.asarray(a[key]) for a in samples]) for key in ACTION_KEYS}


def _record(reset_obs: np.ndarray, reset_mask: np.ndarray, env: Any,
            actions: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Step ``env`` through ``actions``; every recorded array is stacked along axis 0."""
    obs, rewards, truncs, masks = [reset_obs], [], [], [reset_mask]
    infos: dict[str, list[Any]] = {}
    for i in range(actions["offload"].shape[0]):
        o, r, _, trunc, info = env.step({key: actions[key][i] for key in ACTION_KEYS})
        obs.append(o)
        rewards.append(r)
        truncs.append(trunc)
        masks.append(info.pop("action_mask"))
        for key, value in info.items():
            infos.setdefault(key, []).append(value)
    out = {f"{prefix}/obs": np.stack(obs), f"{prefix}/reward": np.asarray(rewards),
           f"{prefix}/truncated": np.asarray(truncs), f"{prefix}/action_mask": np.stack(masks)}
    out.update({f"{prefix}/info/{key}": np.asarray(v) for key, v in infos.items()})
    out.update({f"{prefix}/action/{key}": value for key, value in actions.items()})
    return out


def single_rollout(actions: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The single-environment rollout (actions sampled unless given)."""
    env = MllmOffloadEnv(preset="default")
    obs, info = env.reset(seed=SINGLE_SEED)
    if actions is None:
        actions = sample_actions(env.action_space, SINGLE_SEED, STEPS)
    return _record(obs, info["action_mask"], env, actions, "single")


def vector_rollout(actions: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The B = ``VECTOR_B`` vector-environment rollout (actions sampled unless given)."""
    env = MllmOffloadVectorEnv(VECTOR_B, preset="default")
    obs, info = env.reset(seed=VECTOR_SEED)
    if actions is None:
        actions = sample_actions(env.action_space, VECTOR_SEED, STEPS)
    return _record(obs, info["action_mask"], env, actions, "vector")


def actions_of(data: Any, prefix: str) -> dict[str, np.ndarray]:
    """The recorded actions of one run of a loaded golden file."""
    return {key: np.asarray(data[f"{prefix}/action/{key}"]) for key in ACTION_KEYS}


def main() -> None:
    GOLDEN_PATH.parent.mkdir(parents=True, exist_ok=True)
    arrays = {**single_rollout(), **vector_rollout()}
    np.savez_compressed(GOLDEN_PATH, **arrays)  # type: ignore[arg-type]
    print(f"wrote {GOLDEN_PATH} ({GOLDEN_PATH.stat().st_size / 1024:.0f} KiB, "
          f"{len(arrays)} arrays)")


if __name__ == "__main__":
    main()
