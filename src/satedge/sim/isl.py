"""Inter-satellite links: +Grid topology, candidate compute satellites and path lengths.

SPEC section 2. Satellites are indexed ``p * S + s`` (plane p, slot s) as in
:class:`satedge.sim.orbits.WalkerDelta`; a :class:`~satedge.sim.tle.TleConstellation` with equal
planes is reordered to the same convention, so both feed :func:`plus_grid_adjacency` directly.
Hop counts come from breadth-first shortest paths (``scipy.sparse.csgraph``); geometric lengths
from the propagated positions (:func:`path_length_m`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import shortest_path

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def plus_grid_adjacency(
    planes: int, sats_per_plane: int, phasing: int, cross_plane_offset: int = 0
) -> csr_matrix:
    r"""+Grid ISL adjacency of a Walker-delta shell ``T/P/F`` [choice, SPEC section 2].

    Satellite (p, s) links to its in-plane neighbours (p, s +- 1 mod S) and to slot
    ``s + k`` of plane p + 1 (k = ``cross_plane_offset``, SPEC: k = 0, "same slot"), hence to
    ``s - k`` of plane p - 1. Across the seam plane P-1 links to plane 0 with the slot shifted by
    +F:

    .. math:: (P-1, s) \leftrightarrow (0, (s + F + k) mod S)

    Why +F: from :math:`u_{p,s} = 2\pi s/S + 2\pi F p/T`, a fictitious plane P (RAAN
    :math:`2\pi`, i.e. plane 0) has :math:`u_{P,s} = 2\pi (s + F)/S = u_{0,s+F}`. So the seam pair
    has the same phase offset :math:`2\pi (F/T + k/S)` and, by the shell's rotational symmetry,
    the same distance at every instant as every other cross-plane pair (tested on positions).

    Same slot (k = 0) is the nearest cross-plane satellite only for near-polar shells: adjacent
    prograde planes cross near the top of the orbit, where a satellite meets the neighbour that
    *lags* it by about :math:`2 rctan(\cos i 	an(\Delta\Omega / 2))` in phase. For the
    default 53 deg: 180/12/0 shell the orbit-averaged nearest is k = -1 (1974 km vs 2893 km for
    k = 0); :func:`nearest_cross_plane_offset` finds it from positions.

    Input: ``planes`` P >= 1, ``sats_per_plane`` S >= 1, ``phasing`` F in [0, P-1],
    ``cross_plane_offset`` k (any int, taken mod S).
    Output: [T, T] symmetric 0/1 ``csr_matrix`` (int8), no self loops. Degree is 4 when
    P >= 3 and S >= 3 (smaller grids merge duplicate links).
    """
    if planes < 1 or sats_per_plane < 1:
        raise ValueError(f"planes and sats_per_plane must be >= 1 (got {planes}, {sats_per_plane})")
    if not 0 <= phasing < planes:
        raise ValueError(f"phasing must be in [0, {planes - 1}] (got {phasing})")
    n_sats = planes * sats_per_plane
    p, s = np.divmod(np.arange(n_sats), sats_per_plane)
    in_plane = p * sats_per_plane + (s + 1) % sats_per_plane
    shift = np.where(p == planes - 1, phasing, 0) + cross_plane_offset
    cross = ((p + 1) % planes) * sats_per_plane + (s + shift) % sats_per_plane
    rows = np.concatenate([np.arange(n_sats)] * 2)
    cols = np.concatenate([in_plane, cross])
    keep = rows != cols
    both_r = np.concatenate([rows[keep], cols[keep]])
    both_c = np.concatenate([cols[keep], rows[keep]])
    adj = coo_matrix((np.ones(both_r.size, np.int8), (both_r, both_c)), shape=(n_sats, n_sats))
    adj = adj.tocsr()
    adj.sum_duplicates()
    adj.data[:] = 1
    return adj


def nearest_cross_plane_offset(
    positions_ecef_m: ArrayLike, planes: int, sats_per_plane: int
) -> int:
    """Slot offset k in (-S/2, S/2] of the nearest plane-1 satellite to satellite (0, 0).

    "Nearest" is the mean distance over the given instants (sample one orbit). By the shell's
    symmetry the same k holds for every satellite and across the seam (with +F).

    Input: ``positions_ecef_m`` [K, T, 3] (m), satellites numbered ``p * S + s``.
    Output: k for :func:`plus_grid_adjacency`.
    """
    pos = np.asarray(positions_ecef_m, dtype=float)
    if pos.ndim != 3 or planes < 2:
        raise ValueError("need positions [K, T, 3] and at least two planes")
    plane1 = pos[:, sats_per_plane : 2 * sats_per_plane]
    mean_m = np.linalg.norm(plane1 - pos[:, :1], axis=-1).mean(axis=0)  # [S]
    k = int(np.argmin(mean_m))
    return k - sats_per_plane if k > sats_per_plane // 2 else k


@dataclass(frozen=True)
class CandidateTable:
    """Candidate compute satellites for every possible access satellite (SPEC section 2).

    Attributes: ``sats`` [T, N] int: row a lists the candidates when ``a`` is the access
    satellite, column 0 is ``a`` itself; ``hops`` [T, N] int ISL hop counts; ``paths``
    [T, N, H+1] int node sequence of a hop-shortest path from ``a`` to the candidate, padded with
    the candidate (H = largest hop count in the table).
    """

    sats: IntArray
    hops: IntArray
    paths: IntArray

    @property
    def n_candidates(self) -> int:
        """N, candidates per access satellite."""
        return int(self.sats.shape[1])

    @cached_property
    def path_columns(self) -> IntArray:
        """[T, N, H+1] column of every path node within its row of ``sats``.

        Every node of a hop-shortest path to a candidate is itself a candidate (it is fewer hops
        from the access satellite, and candidates are taken in hop order), so path lengths can be
        computed from the positions of the N candidates alone.
        """
        match = self.paths[..., None] == self.sats[:, None, None, :]  # [T, N, H+1, N]
        if not np.all(np.any(match, axis=-1)):
            raise ValueError("a path node is not among the candidates of its access satellite")
        return np.asarray(np.argmax(match, axis=-1), dtype=np.int64)


def candidate_table(
    adjacency: csr_matrix, n_candidates: int, sats_per_plane: int | None = None
) -> CandidateTable:
    """The ``n_candidates`` nearest satellites by ISL hop count for every access satellite.

    Ordering [choice]: by hop count; ties by the (cyclic) number of planes between the two
    satellites, so in-plane neighbours come before cross-plane ones, then by lower index. Planes
    are ``index // sats_per_plane``. Without ``sats_per_plane`` the index distance ``|b - a|``
    stands in for the plane gap: for the SPEC grid (offset 0, P >= 3) in-plane neighbours are 1
    or S-1 away and cross-plane ones S or more, so in-plane still come first. With N = 5 a row is
    ``[a, two in-plane neighbours, two cross-plane neighbours]``. Paths are those of scipy's
    breadth-first search (``shortest_path(unweighted=True, return_predecessors=True)``),
    deterministic for a given matrix.

    Input: ``adjacency`` [T, T] sparse 0/1 (connected); ``n_candidates`` N in [1, T];
    ``sats_per_plane`` S (optional).
    Output: :class:`CandidateTable`.
    """
    n_sats = adjacency.shape[0]
    if not 1 <= n_candidates <= n_sats:
        raise ValueError(f"n_candidates must be in [1, T={n_sats}] (got {n_candidates})")
    dist, pred = shortest_path(adjacency, unweighted=True, return_predecessors=True)
    if not np.isfinite(dist).all():
        raise ValueError("the ISL graph is disconnected; every satellite must reach every other")
    index = np.broadcast_to(np.arange(n_sats), (n_sats, n_sats))
    if sats_per_plane is None:
        gap = np.abs(index - index.T)
    else:
        plane = index // sats_per_plane
        gap = np.abs(plane - plane.T)
        gap = np.minimum(gap, n_sats // sats_per_plane - gap)
    order = np.lexsort((index, gap, dist), axis=1)[:, :n_candidates].astype(np.int64)
    hops = np.take_along_axis(dist, order, axis=1).astype(np.int64)
    paths = _paths_from_predecessors(pred, order, hops)
    return CandidateTable(sats=order, hops=hops, paths=paths)


def _paths_from_predecessors(
    pred: NDArray[np.int32], targets: IntArray, hops: IntArray
) -> IntArray:
    """[T, N, H+1] node sequences source -> target, padded with the target."""
    n_sats = pred.shape[0]
    max_hops = int(hops.max())
    source = np.broadcast_to(np.arange(n_sats)[:, None], targets.shape)
    back = np.empty((*targets.shape, max_hops + 1), dtype=np.int64)
    back[..., 0] = targets
    for k in range(1, max_hops + 1):  # walk back towards the source; pred[a, a] < 0
        prev = back[..., k - 1]
        step = pred[source, prev]
        back[..., k] = np.where(step < 0, prev, step)
    position = np.clip(hops[..., None] - np.arange(max_hops + 1), 0, None)
    return np.take_along_axis(back, position, axis=-1)


def path_length_m(positions_ecef_m: ArrayLike, paths: ArrayLike) -> FloatArray:
    r"""Geometric length of ISL paths, the sum of their hop lengths.

    .. math:: \ell = \sum_{h=1}^{H} |\mathbf{r}_{n_h} - \mathbf{r}_{n_{h-1}}|

    Padding repeats the last node, so padded hops add 0; a 0-hop path has length 0.

    Input: ``positions_ecef_m`` [..., T, 3] (m); ``paths`` [..., N, H+1] int, leading dims
    broadcast.
    Output: [..., N] path length (m).
    """
    pos = np.asarray(positions_ecef_m, dtype=float)
    idx = np.asarray(paths, dtype=np.int64)
    lead = np.broadcast_shapes(pos.shape[:-2], idx.shape[:-2])
    pos = np.broadcast_to(pos, (*lead, *pos.shape[-2:]))
    idx = np.broadcast_to(idx, (*lead, *idx.shape[-2:]))
    flat = idx.reshape(*lead, -1, 1)
    nodes = np.take_along_axis(pos, flat, axis=-2).reshape(*idx.shape, 3)
    return np.linalg.norm(np.diff(nodes, axis=-2), axis=-1).sum(axis=-1)
