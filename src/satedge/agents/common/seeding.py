"""The one seeding entry point of a training run.

``make_seeds(seed)`` derives every random stream of a run from one integer through
``numpy.random.SeedSequence(seed).spawn(5)`` (never ``seed + k``: neighbouring seeds would give
overlapping or correlated streams; numpy "Parallel random number generation" guide). Children, in a
fixed order that must only ever be appended to (old runs stay reproducible):

====  ========  ===============================================================================
idx   name      use
====  ========  ===============================================================================
0     env       int seed for the training vector env's ``reset(seed=...)``
1     eval      tuple of held-out evaluation env seeds (one per evaluation episode)
2     torch     int for ``torch.manual_seed`` (network initialisation)
3     buffer    ``numpy.random.Generator`` for replay / minibatch sampling
4     policy    ``torch.Generator`` for action sampling
====  ========  ===============================================================================

Evaluation seeds are disjoint from the training seed by construction: the training env seed lies in
``[2^62, 2^63)`` and evaluation seeds in ``[0, 2^62)`` (all seeds fit a signed 64-bit integer). Each
is expanded by ``SeedSequence`` inside the environment, so training and evaluation episodes come
from different entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Generator as TorchGenerator

__all__ = ["RunSeeds", "make_seeds", "torch_generator"]

_HALF = 1 << 62  # split point between evaluation [0, 2^62) and training [2^62, 2^63) env seeds
_STREAMS = ("env", "eval", "torch", "buffer", "policy")


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (global RNG untouched)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


@dataclass(frozen=True)
class RunSeeds:
    """All seeds of one run (see the module table). ``buffer`` and ``policy`` are live generators
    built from ``buffer_seed`` and ``policy_seed``; they advance as they are used."""

    seed: int
    env: int
    eval: tuple[int, ...]
    torch: int
    buffer_seed: int
    policy_seed: int
    buffer: np.random.Generator = field(repr=False, compare=False)
    policy: TorchGenerator = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The integer seeds, JSON-able, for the run record."""
        return {"seed": self.seed, "env": self.env, "eval": list(self.eval),
                "torch": self.torch, "buffer": self.buffer_seed, "policy": self.policy_seed}


def _int63(child: np.random.SeedSequence) -> int:
    """A uniform integer in [0, 2^63) from one child sequence."""
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def make_seeds(seed: int, n_eval: int = 10, device: torch.device | str = "cpu") -> RunSeeds:
    """Derive a run's seeds from ``seed`` (a non-negative integer).

    Args:
        seed: the run seed (experiment configuration).
        n_eval: number of distinct evaluation env seeds.
        device: device of the policy ``torch.Generator`` (where actions are sampled).
    """
    if seed < 0:
        raise ValueError(f"seed={seed} must be non-negative")
    if n_eval < 1:
        raise ValueError(f"n_eval={n_eval} must be at least 1")
    children = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS)),
                        strict=True))
    env = _HALF | (_int63(children["env"]) % _HALF)
    eval_rng = np.random.default_rng(children["eval"])
    eval_seeds: list[int] = []
    while len(eval_seeds) < n_eval:  # distinct; a repeat is astronomically rare but excluded
        s = int(eval_rng.integers(0, _HALF))
        if s not in eval_seeds:
            eval_seeds.append(s)
    buffer_seed, policy_seed = _int63(children["buffer"]), _int63(children["policy"])
    return RunSeeds(seed=seed, env=env, eval=tuple(eval_seeds), torch=_int63(children["torch"]),
                    buffer_seed=buffer_seed, policy_seed=policy_seed,
                    buffer=np.random.default_rng(buffer_seed),
                    policy=torch_generator(policy_seed, device))
