import numpy as np
import pytest

from satedge.agents.common.discretise import DiscreteActionSpec


def test_heads_and_round_trip():
    spec = DiscreteActionSpec(n_iotds=3, n_uavs=2, n_servers=4, power_levels=5, uav_directions=9)
    assert spec.head_sizes == (4, 4, 4, 5, 5, 5, 9, 9)
    assert spec.n_heads == 8 and spec.max_head_size == 9 and spec.continuous_dim == 7
    np.testing.assert_allclose(spec.power_values(), [-1, -0.5, 0, 0.5, 1])
    moves = spec.uav_moves()
    np.testing.assert_allclose(moves[0], [0, 0])
    np.testing.assert_allclose(moves[1], [1, 0])  # east
    np.testing.assert_allclose(moves[2], [1, 1])  # north-east reaches the corner
    np.testing.assert_allclose(moves[3], [0, 1])
    heads = np.array([[0, 1, 3, 0, 2, 4, 0, 5]])
    srv, p, u = spec.split(heads)
    cont = spec.to_continuous(p, u)
    np.testing.assert_allclose(cont, [[-1, 0, 1, 0, 0, -1, 0]])
    np.testing.assert_array_equal(spec.from_continuous(cont), np.c_[p, u])
    np.testing.assert_array_equal(srv, [[0, 1, 3]])


def test_head_mask():
    spec = DiscreteActionSpec(n_iotds=2, n_uavs=1, n_servers=3, power_levels=2, uav_directions=5)
    server_mask = np.array([[[True, False, True], [False, True, False]]])
    hm = spec.head_mask(server_mask)
    assert hm.shape == (1, 5, 5)
    np.testing.assert_array_equal(hm[0, 0], [True, False, True, False, False])
    np.testing.assert_array_equal(hm[0, 2], [True, True, False, False, False])
    np.testing.assert_array_equal(hm[0, 4], [True] * 5)


def test_bad_values():
    with pytest.raises(ValueError, match="power_levels"):
        DiscreteActionSpec(1, 1, 2, power_levels=1)
