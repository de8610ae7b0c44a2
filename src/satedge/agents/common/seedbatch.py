"""Seed batching: several seeds of one configuration trained in one process, as one set of
stacked networks (issue 7; docs/performance.md, "Seed-batched training").

S agents built separately (each with its own seed, so their initial weights are those of S
separate runs) are stacked: every ``nn.Linear`` of the same place in the S networks becomes one
:class:`BatchedLinear` holding the S weight matrices, applied with one batched matrix product
(``torch.baddbmm``). A batch of rows then holds the S seeds one after another (``[S * B, ...]``,
seed outermost), so code written for one agent, row by row, runs unchanged on all S; what is not
row-wise (means over the batch, temperatures and dual variables) is per seed in the agent
(:class:`satedge.agents.adsac.AdSac` with ``n_seeds > 1``).

Independence. Every seed keeps its own generators: :class:`SeedGenerators` draws each seed's
slice of a random tensor from that seed's ``torch.Generator``, with the shape a separate run
would draw, so seed s sees exactly the random numbers of its separate run. Adam is element-wise,
so one Adam over stacked parameters is S independent Adams. What differs from separate runs is
floating-point rounding (batched against plain matrix products, sums over S B rows), so batched
and separate runs agree to rounding at first and drift apart as any two runs of a chaotic
learner do; ``tests/agents/test_seedbatch.py`` states the tolerances.

State dicts convert both ways (:func:`stack_state`, :func:`unstack_state`): a batched agent's
seed s is saved as an ordinary checkpoint of a separate run, and S ordinary checkpoints load
into a batched agent.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["BatchedLinear", "Generator", "SeedGenerators", "seed_axis", "seeded_rand",
           "seeded_randn", "stack_modules", "stack_state", "unstack_state"]


class BatchedLinear(nn.Module):
    """S linear layers applied to S blocks of rows: ``y[s] = x[s] W[s]^T + b[s]``.

    ``weight`` [S, out, in] and ``bias`` [S, out] are named as in ``nn.Linear``, so the state of
    seed s is ``{name: value[s]}`` of an ``nn.Linear``'s. The input's first dimension holds the S
    seeds one after another (``[S * R, ..., in]``); the output has the input's shape with ``out``
    features.
    """

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.n_seeds = len(layers)
        self.in_features, self.out_features = layers[0].in_features, layers[0].out_features
        with torch.no_grad():
            self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in layers]))
            self.bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in layers]))

    def forward(self, x: Tensor) -> Tensor:
        s = self.n_seeds
        rows = x.reshape(s, -1, self.in_features)
        y = torch.baddbmm(self.bias.unsqueeze(1), rows, self.weight.transpose(1, 2))
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"seeds={self.n_seeds}, in={self.in_features}, out={self.out_features}"


def stack_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """One module running ``modules`` (same architecture) on S blocks of rows.

    Every ``nn.Linear`` is replaced by a :class:`BatchedLinear` of the S corresponding layers;
    modules without parameters (activations) are shared. Other parameterised layers are refused.
    """
    if not modules:
        raise ValueError("stack_modules needs at least one module")
    out = copy.deepcopy(modules[0])
    names = [n for n, m in out.named_modules() if isinstance(m, nn.Linear)]
    for name, m in out.named_modules():
        if not isinstance(m, nn.Linear) and any(True for _ in m.parameters(recurse=False)):
            raise TypeError(f"cannot seed-batch {type(m).__name__} at {name!r}: only nn.Linear "
                            "layers carry parameters in batched agents")
    for name in names:
        layers = [m.get_submodule(name) for m in modules]
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, BatchedLinear(layers))  # type: ignore[arg-type]
    return out


class SeedGenerators:
    """S ``torch.Generator`` s, one per seed; random tensors are drawn slice by slice.

    ``axis`` is the dimension of a drawn tensor that holds the S seeds one after another (0 for
    ``[S * B, ...]`` rows; 1 for ``[N, S * B, ...]`` samples per state).
    """

    def __init__(self, generators: Sequence[torch.Generator], axis: int = 0) -> None:
        self.generators = list(generators)
        self.axis = axis

    def __len__(self) -> int:
        return len(self.generators)

    def along(self, axis: int) -> SeedGenerators:
        """The same generators, drawing with the seeds along ``axis``."""
        return SeedGenerators(self.generators, axis)

    def draw(self, fn: Any, shape: Sequence[int], **kwargs: Any) -> Tensor:
        """``fn(shape_s, generator=g_s, **kwargs)`` per seed, concatenated along ``axis``."""
        s, shape = len(self.generators), list(shape)
        if shape[self.axis] % s:
            raise ValueError(f"dimension {self.axis} of {tuple(shape)} is not a multiple of "
                             f"{s} seeds")
        shape[self.axis] //= s
        return torch.cat([fn(shape, generator=g, **kwargs) for g in self.generators],
                         dim=self.axis)

    def get_state(self) -> list[Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states: Sequence[Tensor]) -> None:
        for g, st in zip(self.generators, states, strict=True):
            g.set_state(st)


Generator = torch.Generator | SeedGenerators | None


def seed_axis(generator: Generator, axis: int) -> Generator:
    """``generator`` drawing along ``axis`` if it is a :class:`SeedGenerators`; else itself."""
    return generator.along(axis) if isinstance(generator, SeedGenerators) else generator


def seeded_rand(shape: Sequence[int], generator: Generator, **kwargs: Any) -> Tensor:
    """``torch.rand`` from one generator, or per seed from :class:`SeedGenerators`."""
    if isinstance(generator, SeedGenerators):
        return generator.draw(torch.rand, shape, **kwargs)
    return torch.rand(shape, generator=generator, **kwargs)


def seeded_randn(shape: Sequence[int], generator: Generator, **kwargs: Any) -> Tensor:
    """``torch.randn`` from one generator, or per seed from :class:`SeedGenerators`."""
    if isinstance(generator, SeedGenerators):
        return generator.draw(torch.randn, shape, **kwargs)
    return torch.randn(shape, generator=generator, **kwargs)


# -- state dicts --------------------------------------------------------------------------------
_SHARED_KEYS = frozenset({"step", "param_groups", "config"})
"""Entries equal across seeds (Adam's step count, optimiser settings, the agent's config)."""


def stack_state(states: Sequence[Any], key: str = "") -> Any:
    """Stack S per-seed state dicts (nested dicts of tensors) into one batched state.

    Tensors are stacked on a new first dimension, except Adam's ``step`` and settings, which
    must agree; ``generator`` entries become a list (one torch generator state per seed).
    """
    first = states[0]
    if key == "generator":
        return list(states)
    if isinstance(first, dict):
        if any(set(s) != set(first) for s in states):
            raise ValueError(f"state dicts differ in their keys at {key or 'the top'}")
        return {k: stack_state([s[k] for s in states], k) for k in first}
    if isinstance(first, Tensor):
        if key in _SHARED_KEYS:
            if any(not torch.equal(s, first) for s in states):
                raise ValueError(f"{key!r} differs between seeds; they must advance in step")
            return first
        return torch.stack(list(states))
    if any(s != first for s in states):
        raise ValueError(f"{key!r} differs between seeds: {states[:2]!r}")
    return first


def unstack_state(state: Any, seed: int, key: str = "") -> Any:
    """Seed ``seed``'s state dict from a batched one (the inverse of :func:`stack_state`)."""
    if key == "generator":
        return state[seed]
    if isinstance(state, dict):
        return {k: unstack_state(v, seed, k) for k, v in state.items()}
    if isinstance(state, Tensor):
        return state if key in _SHARED_KEYS else state[seed].clone()
    return state
