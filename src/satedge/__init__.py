"""satedge: accuracy-aware offloading of multimodal-LLM inference in UAV-assisted LEO-satellite
edge computing.

``import satedge`` registers the Gymnasium environment ``satedge/MllmOffload-v0``. The simulator
(:mod:`satedge.sim`) and the environments (:mod:`satedge.envs`) never import torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from satedge import envs as envs

try:
    __version__ = version("satedge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "envs"]
