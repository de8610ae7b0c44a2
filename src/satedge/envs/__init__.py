"""The Gymnasium seam: spaces, observation encoding, reward, masks, vector env and rendering.

Importing this package (or ``satedge``) registers ``satedge/MllmOffload-v0``; it loads no torch.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from satedge.envs.offload import MllmOffloadEnv
from satedge.envs.vector import MllmOffloadVectorEnv, spawn_seeds

__all__ = ["ENV_ID", "MllmOffloadEnv", "MllmOffloadVectorEnv", "spawn_seeds"]

ENV_ID = "satedge/MllmOffload-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="satedge.envs.offload:MllmOffloadEnv",
        vector_entry_point="satedge.envs.vector:MllmOffloadVectorEnv",
        disable_env_checker=False,
    )
