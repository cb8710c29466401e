"""Peer influence on loyalty by relative agreement (Deffuant, Amblard, Weisbuch & Faure 2002).

Opinions live in [-1, 1] (opinion = 2 loyalty - 1). Confident members (small
uncertainty: the hardliners) sway others more than they are swayed: the paper's
"extremists". Pairs are drawn from the network's ties as a matching, so each member
takes part in at most one encounter per round and the pairs can be updated in any order.
Compiled: the step kernel calls these in its loop (``model/kernel.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from isk_defection.model.draws import below


@njit(cache=True, inline="always")
def agree(
    xi: float, xj: float, ui: float, uj: float, mu: float
) -> tuple[float, float, float, float]:
    """One encounter: (x_i, x_j, u_i, u_j) after the relative-agreement update.

    With overlap h = min(x_i+u_i, x_j+u_j) - max(x_i-u_i, x_j-u_j), if h > u_i then
    x_j += mu (h/u_i - 1)(x_i - x_j) and u_j += mu (h/u_i - 1)(u_i - u_j), and
    symmetrically for i; both from the values before the encounter.
    """
    overlap = min(xi + ui, xj + uj) - max(xi - ui, xj - uj)
    on_j = mu * (overlap / ui - 1.0) if overlap > ui else 0.0
    on_i = mu * (overlap / uj - 1.0) if overlap > uj else 0.0
    return (
        xi + on_i * (xj - xi),
        xj + on_j * (xi - xj),
        ui + on_i * (uj - ui),
        uj + on_j * (ui - uj),
    )


@njit(cache=True)
def relative_agreement(
    opinion: np.ndarray, uncertainty: np.ndarray, i: np.ndarray, j: np.ndarray, mu: float
) -> None:
    """Apply the relative-agreement update to the disjoint pairs (i, j), in place."""
    for k in range(len(i)):
        a, b = i[k], j[k]
        opinion[a], opinion[b], uncertainty[a], uncertainty[b] = agree(
            opinion[a], opinion[b], uncertainty[a], uncertainty[b], mu
        )


@njit(cache=True)
def random_matching(
    edges: np.ndarray, encounters: int, eligible: np.ndarray, rng: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``encounters`` random ties between eligible members, no member twice.

    Ties are drawn with replacement; an eligible tie is kept if neither end was in an
    earlier eligible draw (a drawn tie uses its ends even when it is not kept).
    """
    draws = max(encounters, 0)
    ties = edges.shape[1]
    if ties == 0:
        draws = 0
    # first every draw and both ends of each drawn tie (independent reads, which the CPU
    # overlaps: at 100,000 agents the ties do not fit in its caches), then the matching
    first = np.empty(draws, dtype=np.int64)
    second = np.empty(draws, dtype=np.int64)
    for k in range(draws):
        e = below(rng, ties)
        first[k], second[k] = edges[0, e], edges[1, e]
    used = np.zeros(len(eligible), dtype=np.bool_)
    kept = 0
    for k in range(draws):
        a, b = first[k], second[k]
        if not (eligible[a] and eligible[b]):
            continue
        if not (used[a] or used[b]):
            first[kept], second[kept] = a, b
            kept += 1
        used[a] = used[b] = True
    return first[:kept], second[:kept]


@njit(cache=True)
def influence_round(
    loyalty: np.ndarray,
    uncertainty: np.ndarray,
    edges: np.ndarray,
    encounters: int,
    eligible: np.ndarray,
    mu: float,
    rng: Any,
) -> None:
    """One week of peer encounters: loyalty and uncertainty updated in place."""
    i, j = random_matching(edges, encounters, eligible, rng)
    for k in range(len(i)):
        a, b = i[k], j[k]
        xa, xb, ua, ub = agree(
            2.0 * loyalty[a] - 1.0, 2.0 * loyalty[b] - 1.0, uncertainty[a], uncertainty[b], mu
        )
        loyalty[a] = min(max((xa + 1.0) / 2.0, 0.0), 1.0)
        loyalty[b] = min(max((xb + 1.0) / 2.0, 0.0), 1.0)
        uncertainty[a], uncertainty[b] = ua, ub
