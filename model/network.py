"""The seeded social network: factions as clusters, TTP tied to pro-TTP members.

The network is a symmetric 0/1 sparse (CSR) matrix over agent slots, so that "how many
of my contacts are in IS-K" is read from IS-K members' rows alone each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from isk_defection.model.groups import AFFINITY_TO, GROUP_INDEX, ISK

# Whom a group's members prefer when they tie to other groups (default: anyone alike):
# the TTP the pro-TTP lobby, Al-Qaeda the Haqqanis, the Uyghurs the few tied to them [Ali].
CROSS_TIE_PREFERENCE: dict[int, str] = {
    GROUP_INDEX[group]: affinity for group, affinity in AFFINITY_TO.items()
}


def ties_within(
    newcomers: np.ndarray, members: np.ndarray, mean_ties: int, rng: np.random.Generator
) -> np.ndarray:
    """Each newcomer draws ``mean_ties / 2`` partners among ``members`` (undirected)."""
    draws = max(int(round(mean_ties / 2)), 0)
    if draws == 0 or len(members) < 2 or len(newcomers) == 0:
        return np.empty((2, 0), dtype=np.int64)
    sources = np.repeat(newcomers, draws)
    return np.vstack([sources, members[rng.integers(0, len(members), len(sources))]])


def ties_across(
    sources: np.ndarray,
    candidates: np.ndarray,
    weights: np.ndarray | None,
    draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each source draws ``draws`` partners among ``candidates``, in proportion to ``weights``."""
    if draws == 0 or len(candidates) == 0 or len(sources) == 0:
        return np.empty((2, 0), dtype=np.int64)
    p = None
    if weights is not None and weights.sum() > 0:
        p = weights / weights.sum()
    partners = rng.choice(candidates, size=len(sources) * draws, p=p)
    return np.vstack([np.repeat(sources, draws), partners])


def to_adjacency(edges: list[np.ndarray], n: int) -> sp.csr_matrix:
    """A symmetric 0/1 CSR matrix from (2, k) edge arrays, without self-ties."""
    pairs = np.hstack(edges) if edges else np.empty((2, 0), dtype=np.int64)
    pairs = pairs[:, pairs[0] != pairs[1]]
    rows = np.concatenate([pairs[0], pairs[1]])
    cols = np.concatenate([pairs[1], pairs[0]])
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    matrix.data[:] = 1.0  # duplicates were summed
    return matrix


def clustered_network(
    pop: Any, recruiters: np.ndarray, params: Any, rng: np.random.Generator
) -> sp.csr_matrix:
    """Ties within each group, a few across groups, and recruiters' ties into other groups.

    IS-K's original members tie only to each other; its recruiters reach out.
    """
    slots = np.arange(pop.n)
    edges = []
    for code in np.unique(pop.group[: pop.n]):
        members = slots[pop.group[: pop.n] == code]
        edges.append(ties_within(members, members, params.ties_within, rng))
        if code == ISK:
            continue
        others = slots[(pop.group[: pop.n] != code) & (pop.group[: pop.n] != ISK)]
        preference = CROSS_TIE_PREFERENCE.get(int(code))
        weights = getattr(pop, preference)[others] if preference else None
        draws = max(int(round(params.ties_between / 2)), 0)
        edges.append(ties_across(members, others, weights, draws, rng))
    loyal = slots[pop.allegiance[: pop.n] == 0]
    edges.append(ties_across(recruiters, loyal, None, params.recruiter_ties, rng))
    return to_adjacency(edges, pop.n)


def complete_network(n: int) -> sp.csr_matrix:
    """Everyone tied to everyone (Granovetter's crowd, Deffuant's well-mixed population)."""
    if n > 5_000:
        raise ValueError(f"network: 'complete' allows at most 5,000 agents (got {n})")
    matrix = sp.csr_matrix(np.ones((n, n), np.float32))
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    return matrix


def grow(adjacency: sp.csr_matrix, n: int, edges: list[np.ndarray]) -> sp.csr_matrix:
    """The network enlarged to ``n`` slots with the new ``edges`` added."""
    old = adjacency.shape[0]
    # new rows are empty: repeat the last row pointer (sp.block_diag copies via COO)
    tail = np.full(n - old, adjacency.indptr[-1], dtype=adjacency.indptr.dtype)
    indptr = np.concatenate([adjacency.indptr, tail])
    padded = sp.csr_matrix((adjacency.data, adjacency.indices, indptr), shape=(n, n))
    merged = (padded + to_adjacency(edges, n)).tocsr()
    merged.data[:] = 1.0
    return merged


def neighbour_counts(adjacency: sp.csr_matrix, sources: np.ndarray) -> np.ndarray:
    """How many of ``sources`` each agent is tied to.

    Reads only the sources' rows (the matrix is symmetric), so the cost grows with IS-K's
    ties, not with the whole network.
    """
    n = adjacency.shape[0]
    starts = adjacency.indptr[sources]
    lengths = adjacency.indptr[sources + 1] - starts
    # the sources' rows laid end to end, read straight from the CSR arrays: scipy's
    # row indexing (adjacency[sources]) builds a matrix and costs ~0.1 ms per call
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    ends = adjacency.indices[shift + np.arange(lengths.sum())]
    return np.bincount(ends, minlength=n)


def edge_list(adjacency: sp.csr_matrix) -> np.ndarray:
    """The (2, k) array of undirected ties, each once."""
    upper = sp.triu(adjacency, k=1).tocoo()
    return np.vstack([upper.row, upper.col]).astype(np.int64)
