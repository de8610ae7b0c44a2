"""+Grid ISL topology, candidate tables and path lengths (SPEC section 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satedge.sim.isl import (
    candidate_table,
    nearest_cross_plane_offset,
    path_length_m,
    plus_grid_adjacency,
)
from satedge.sim.orbits import WalkerDelta, default_walker, orbital_period_s

H_M = 500e3  # SPEC section 1


def _twisted_torus_hops(planes: int, n_slots: int, phasing: int, a: int, b: int) -> int:
    """Closed-form hop count on the +Grid: in-plane and cross-plane moves commute, so a path is
    |m| cross-plane moves (net plane displacement m, each seam crossing shifts the slot by +-F)
    plus the cyclic in-plane distance that remains."""
    (p1, s1), (p2, s2) = divmod(a, n_slots), divmod(b, n_slots)
    best = math.inf
    for winding in range(-2, 3):
        m = p2 - p1 + winding * planes
        seam_crossings = (p1 + m) // planes  # floor: negative when going backwards past plane 0
        ds = (s2 - s1 - phasing * seam_crossings) % n_slots
        best = min(best, abs(m) + min(ds, n_slots - ds))
    return int(best)


def _orbit_positions(w: WalkerDelta, samples: int = 120) -> np.ndarray:
    t = np.linspace(0.0, float(orbital_period_s(w.altitude_m)), samples, endpoint=False)
    return w.positions_ecef_m(t)


# --- topology -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planes", "n_slots", "phasing"), [(12, 15, 0), (20, 10, 5), (3, 3, 2), (6, 4, 1)]
)
def test_plus_grid_degree_four_symmetric_binary(planes: int, n_slots: int, phasing: int) -> None:
    adj = plus_grid_adjacency(planes, n_slots, phasing)
    dense = adj.toarray()
    assert dense.shape == (planes * n_slots,) * 2
    np.testing.assert_array_equal(dense, dense.T)
    assert set(np.unique(dense)) <= {0, 1}
    assert np.all(np.diag(dense) == 0)
    np.testing.assert_array_equal(dense.sum(axis=1), 4)


def test_plus_grid_links_follow_the_spec_rule() -> None:
    planes, n_slots, phasing = 4, 5, 3
    dense = plus_grid_adjacency(planes, n_slots, phasing).toarray()

    def idx(p: int, s: int) -> int:
        return p * n_slots + s % n_slots

    assert dense[idx(1, 2), idx(1, 3)] and dense[idx(1, 0), idx(1, 4)]  # in-plane ring
    assert dense[idx(1, 2), idx(2, 2)] and dense[idx(1, 2), idx(0, 2)]  # same slot
    for s in range(n_slots):  # seam: (P-1, s) <-> (0, s + F)
        assert dense[idx(3, s), idx(0, s + phasing)]
        assert not dense[idx(3, s), idx(0, s)]


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="phasing"):
        plus_grid_adjacency(4, 5, 4)
    with pytest.raises(ValueError, match="planes"):
        plus_grid_adjacency(0, 5, 0)
    adj = plus_grid_adjacency(4, 5, 1)
    for bad in (0, 21):
        with pytest.raises(ValueError, match="n_candidates"):
            candidate_table(adj, bad)


@settings(max_examples=25, deadline=None)
@given(planes=st.integers(2, 7), n_slots=st.integers(3, 8), data=st.data())
def test_hop_counts_match_twisted_torus_formula(
    planes: int, n_slots: int, data: st.DataObject
) -> None:
    phasing = data.draw(st.integers(0, planes - 1))
    table = candidate_table(plus_grid_adjacency(planes, n_slots, phasing), planes * n_slots)
    total = planes * n_slots
    expected = np.array(
        [
            [_twisted_torus_hops(planes, n_slots, phasing, a, b) for b in range(total)]
            for a in range(total)
        ]
    )
    got = np.empty_like(expected)
    np.put_along_axis(got, table.sats, table.hops, axis=1)
    np.testing.assert_array_equal(got, expected)


def test_hop_counts_known_small_grid() -> None:
    # 4 planes x 4 slots, F = 0: a 4 x 4 torus; the farthest satellite is 2 + 2 = 4 hops away.
    table = candidate_table(plus_grid_adjacency(4, 4, 0), 16)
    row = dict(zip(table.sats[0].tolist(), table.hops[0].tolist(), strict=True))
    assert row[0] == 0 and row[1] == 1 and row[3] == 1 and row[4] == 1 and row[12] == 1
    assert row[2] == 2 and row[5] == 2 and row[10] == 4
    # 3 planes x 4 slots, F = 1: the seam maps (2, 0) next to (0, 1), so 8 -> 1 is one hop
    table = candidate_table(plus_grid_adjacency(3, 4, 1), 12)
    assert dict(zip(table.sats[8].tolist(), table.hops[8].tolist(), strict=True))[1] == 1


# --- seam geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(53.0, 180, 12, 0), (53.0, 200, 20, 5), (53.0, 120, 10, 3), (86.4, 66, 6, 2)]
)
def test_seam_link_is_geometrically_like_every_cross_plane_link(shape: tuple) -> None:
    # Rotating the shell by 2 pi / P about z maps plane p to p + 1 and advances the phase by
    # 2 pi F / T (a time shift), so with the +F seam shift each seam pair has the distance history
    # of an interior same-slot pair, shifted in time: equal orbit mean, min and max. Any other
    # shift changes them by hundreds of km.
    w = WalkerDelta(shape[0], shape[1], shape[2], shape[3], H_M)
    planes, n_slots, phasing = w.planes, w.sats_per_plane, w.phasing
    pos = _orbit_positions(w, samples=2000).reshape(-1, planes, n_slots, 3)
    interior = np.linalg.norm(pos[:, 1] - pos[:, 0], axis=-1)[:, 0]  # pair (0, 0)-(1, 0)
    stats = np.array([interior.mean(), interior.min(), interior.max()])
    for shift in range(n_slots):
        seam = np.linalg.norm(np.roll(pos[:, 0], -shift, axis=1) - pos[:, planes - 1], axis=-1)
        seam_stats = np.stack([seam.mean(0), seam.min(0), seam.max(0)], axis=-1)  # [S, 3]
        same = np.allclose(seam_stats, stats, atol=1e3)  # within 1 km
        assert same == (shift == phasing), shift


@pytest.mark.parametrize(
    "shape", [(53.0, 180, 12, 0), (53.0, 200, 20, 5), (53.0, 120, 10, 8), (86.4, 66, 6, 2)]
)
def test_seam_neighbour_is_the_nearest_plane0_satellite(shape: tuple) -> None:
    # Orbit-averaged distance from every plane P-1 satellite to every plane-0 satellite: the
    # +Grid seam neighbour (built with the nearest cross-plane offset) is the nearest one.
    w = WalkerDelta(shape[0], shape[1], shape[2], shape[3], H_M)
    planes, n_slots = w.planes, w.sats_per_plane
    pos = _orbit_positions(w)
    k = nearest_cross_plane_offset(pos, planes, n_slots)
    dense = plus_grid_adjacency(planes, n_slots, w.phasing, cross_plane_offset=k).toarray()
    grid = pos.reshape(-1, planes, n_slots, 3)
    mean_d = np.linalg.norm(grid[:, -1, :, None] - grid[:, 0, None, :], axis=-1).mean(axis=0)
    seam_block = dense[(planes - 1) * n_slots :, :n_slots]  # plane P-1 rows, plane 0 columns
    np.testing.assert_array_equal(seam_block.sum(axis=1), 1)  # exactly one seam link each
    np.testing.assert_array_equal(seam_block.argmax(axis=1), mean_d.argmin(axis=1))
    # and interior planes: plane 0 -> plane 1 neighbour is the nearest plane-1 satellite
    mean_01 = np.linalg.norm(grid[:, 0, :, None] - grid[:, 1, None, :], axis=-1).mean(axis=0)
    np.testing.assert_array_equal(
        dense[:n_slots, n_slots : 2 * n_slots].argmax(axis=1), mean_01.argmin(axis=1)
    )


def test_nearest_offset_depends_on_inclination() -> None:
    # Adjacent prograde planes cross where the eastern satellite lags by
    # 2 atan(cos i tan(dOmega/2)) = 18.3 deg at 53 deg, 30 deg RAAN spacing: the lagging slot
    # (k = -1, 24 deg behind) beats the same slot. Near-polar (Iridium-like) shells keep k = 0.
    assert nearest_cross_plane_offset(_orbit_positions(default_walker()), 12, 15) == -1
    iridium_like = WalkerDelta(86.4, 66, 6, 2, H_M)
    assert nearest_cross_plane_offset(_orbit_positions(iridium_like), 6, 11) == 0


# --- candidate table and paths ----------------------------------------------------------------


def test_candidate_table_n5_is_access_plus_grid_neighbours() -> None:
    w = default_walker()
    adj = plus_grid_adjacency(w.planes, w.sats_per_plane, w.phasing)
    table = candidate_table(adj, 5)
    assert table.n_candidates == 5
    np.testing.assert_array_equal(table.sats[:, 0], np.arange(w.total))
    np.testing.assert_array_equal(table.hops, np.tile([0, 1, 1, 1, 1], (w.total, 1)))
    dense = adj.toarray()
    for a in range(w.total):
        assert set(table.sats[a, 1:].tolist()) == set(np.flatnonzero(dense[a]).tolist())
        # tie-break: in-plane neighbours first
        np.testing.assert_array_equal(w.plane_index[table.sats[a, 1:3]], w.plane_index[a])
        assert np.all(w.plane_index[table.sats[a, 3:]] != w.plane_index[a])
    explicit = candidate_table(adj, 5, sats_per_plane=w.sats_per_plane)
    np.testing.assert_array_equal(np.sort(explicit.sats[:, 1:3]), np.sort(table.sats[:, 1:3]))
    np.testing.assert_array_equal(np.sort(explicit.sats[:, 1:3]), explicit.sats[:, 1:3])


def test_candidate_paths_are_valid_shortest_paths() -> None:
    adj = plus_grid_adjacency(6, 8, 5, cross_plane_offset=-1)
    dense = adj.toarray()
    table = candidate_table(adj, 20, sats_per_plane=8)
    assert np.all(np.diff(table.hops, axis=1) >= 0)
    max_hops = table.hops.max()
    assert table.paths.shape == (48, 20, max_hops + 1)
    np.testing.assert_array_equal(
        table.paths[:, :, 0], np.broadcast_to(np.arange(48)[:, None], (48, 20))
    )
    np.testing.assert_array_equal(table.paths[:, :, -1], table.sats)
    for a in range(48):
        for n in range(20):
            path = table.paths[a, n]
            h = table.hops[a, n]
            assert all(dense[path[j], path[j + 1]] for j in range(h))
            assert np.all(path[h:] == table.sats[a, n])
    # in-plane before cross-plane among 1-hop neighbours, with an explicit plane count
    plane = np.arange(48) // 8
    for a in range(48):
        np.testing.assert_array_equal(plane[table.sats[a, 1:3]], plane[a])


@pytest.mark.parametrize(("shape", "n"), [((12, 15, 0), 5), ((6, 8, 5), 13), ((6, 8, 5), 20)])
def test_path_columns_index_every_path_node_among_the_candidates(shape: tuple, n: int) -> None:
    # Every node of a hop-shortest path is itself a candidate (fewer hops away), so the network
    # can take path lengths from the N candidates' positions alone.
    table = candidate_table(plus_grid_adjacency(*shape), n)
    cols = table.path_columns
    assert cols.shape == table.paths.shape and cols.min() >= 0 and cols.max() < n
    np.testing.assert_array_equal(np.take_along_axis(table.sats[:, None, :], cols, axis=-1),
                                  table.paths)
    np.testing.assert_array_equal(cols[:, :, 0], 0)  # column 0: the access satellite


def test_path_length_equals_sum_of_link_distances() -> None:
    w = WalkerDelta(53.0, 48, 6, 5, H_M)
    table = candidate_table(plus_grid_adjacency(6, 8, 5), 13)
    t = np.array([0.0, 1234.0])
    pos = w.positions_ecef_m(t)  # [2, T, 3]
    got = path_length_m(pos, table.paths[7])  # one access row for both instants
    assert got.shape == (2, 13)
    for b in range(2):
        for n in range(13):
            nodes = table.paths[7, n, : table.hops[7, n] + 1]
            ref = sum(
                np.linalg.norm(pos[b, nodes[j + 1]] - pos[b, nodes[j]])
                for j in range(nodes.size - 1)
            )
            assert got[b, n] == pytest.approx(ref, rel=1e-12, abs=1e-6)
    assert got[0, 0] == 0.0  # 0 hops
    # batched rows: access satellite 7 at t0 and 30 at t1
    both = path_length_m(pos, table.paths[[7, 30]])
    np.testing.assert_allclose(both[0], got[0])
    np.testing.assert_allclose(both[1], path_length_m(pos[1], table.paths[30]))


def test_one_hop_lengths_are_plausible_for_default_shell() -> None:
    # In-plane neighbours of the 180/12/0 shell sit 24 deg apart on a 6871 km circle:
    # chord 2 a sin(12 deg) = 2857 km at all times.
    w = default_walker()
    table = candidate_table(plus_grid_adjacency(w.planes, w.sats_per_plane, w.phasing), 5)
    pos = w.positions_ecef_m(np.array([0.0, 999.0]))[:, None]  # [2, 1, T, 3]
    lengths = path_length_m(pos, table.paths)  # [2, T, 5]
    chord = 2 * w.radius_m * math.sin(math.pi / w.sats_per_plane)
    np.testing.assert_allclose(lengths[..., 1:3], chord, rtol=1e-9)
    assert np.all(lengths[..., 3:] > 1000e3) and np.all(lengths[..., 3:] < 4000e3)
