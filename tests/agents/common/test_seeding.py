"""The seeding entry point: deterministic, independent streams, held-out evaluation seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from satedge.agents.common.seeding import make_seeds, torch_generator

torch.set_num_threads(1)


def test_same_seed_same_streams() -> None:
    a, b = make_seeds(42), make_seeds(42)
    assert a == b and a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(a.buffer.random(8), b.buffer.random(8))
    assert torch.equal(torch.rand(8, generator=a.policy), torch.rand(8, generator=b.policy))
    rebuilt = np.random.default_rng(a.to_dict()["buffer"])  # the record suffices to rebuild
    np.testing.assert_array_equal(rebuilt.random(8), make_seeds(42).buffer.random(8))


def test_streams_are_spawned_not_offset() -> None:
    s = make_seeds(7)
    children = np.random.SeedSequence(7).spawn(5)
    expected_torch = int(children[2].generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert s.torch == expected_torch  # child 2 of SeedSequence(7), documented order
    ints = [s.env, s.torch, s.buffer_seed, s.policy_seed, *s.eval]
    assert len(set(ints)) == len(ints)  # different children differ
    assert s.torch not in (7, 8, 9)
    other = make_seeds(8)  # neighbouring run seeds share nothing
    assert not set(ints) & {other.env, other.torch, other.buffer_seed, other.policy_seed,
                            *other.eval}
    # the buffer and policy streams are not the same numbers in disguise
    x = s.buffer.random(1000)
    y = torch.rand(1000, generator=s.policy, dtype=torch.float64).numpy()
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.15


def test_eval_seeds_are_held_out_by_construction() -> None:
    for seed in range(200):
        s = make_seeds(seed, n_eval=20)
        assert s.env >= 2**62 and all(0 <= e < 2**62 for e in s.eval)
        assert s.env not in s.eval and len(set(s.eval)) == 20
        assert all(v < 2**63 for v in (s.env, s.torch, s.buffer_seed, s.policy_seed))
    assert make_seeds(3, n_eval=5).eval == make_seeds(3, n_eval=20).eval[:5]


def test_record_is_json_and_inputs_are_validated() -> None:
    record = make_seeds(0).to_dict()
    assert json.loads(json.dumps(record)) == record
    assert set(record) == {"seed", "env", "eval", "torch", "buffer", "policy"}
    with pytest.raises(ValueError):
        make_seeds(-1)
    with pytest.raises(ValueError):
        make_seeds(0, n_eval=0)


def test_torch_generator_is_local() -> None:
    before = torch.get_rng_state()
    g1, g2 = torch_generator(5), torch_generator(5)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert torch.equal(torch.get_rng_state(), before)
