"""Peer influence on loyalty by relative agreement (Deffuant, Amblard, Weisbuch & Faure 2002).

Opinions live in [-1, 1] (opinion = 2 loyalty - 1). Confident members (small
uncertainty: the hardliners) sway others more than they are swayed: the paper's
"extremists". Pairs are drawn from the network's ties as a matching, so each member
takes part in at most one encounter per round and the vectorised update equals the
paper's pair-by-pair rule.
"""

from __future__ import annotations

import numpy as np


def relative_agreement(
    opinion: np.ndarray, uncertainty: np.ndarray, i: np.ndarray, j: np.ndarray, mu: float
) -> None:
    """Apply the relative-agreement update to the disjoint pairs (i, j), in place.

    With overlap h = min(x_i+u_i, x_j+u_j) - max(x_i-u_i, x_j-u_j), if h > u_i then
    x_j += mu (h/u_i - 1)(x_i - x_j) and u_j += mu (h/u_i - 1)(u_i - u_j), and
    symmetrically for i.
    """
    xi, xj, ui, uj = opinion[i], opinion[j], uncertainty[i], uncertainty[j]
    overlap = np.minimum(xi + ui, xj + uj) - np.maximum(xi - ui, xj - uj)
    weight_on_j = np.where(overlap > ui, mu * (overlap / ui - 1.0), 0.0)
    weight_on_i = np.where(overlap > uj, mu * (overlap / uj - 1.0), 0.0)
    opinion[j] = xj + weight_on_j * (xi - xj)
    uncertainty[j] = uj + weight_on_j * (ui - uj)
    opinion[i] = xi + weight_on_i * (xj - xi)
    uncertainty[i] = ui + weight_on_i * (uj - ui)


def random_matching(
    edges: np.ndarray, encounters: int, eligible: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``encounters`` random ties between eligible members, no member twice."""
    if edges.shape[1] == 0 or encounters <= 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # two 1-D gathers: edges[:, draws] (a fancy index along axis 1) is ~15x slower
    draws = rng.integers(0, edges.shape[1], encounters)
    i, j = edges[0].take(draws), edges[1].take(draws)
    eligible_pair = eligible[i] & eligible[j]
    i, j = i.compress(eligible_pair), j.compress(eligible_pair)
    # keep a tie only if it is the first draw to use either of its ends
    order = np.arange(len(i))
    first_draw = np.full(len(eligible), len(i))
    np.minimum.at(first_draw, i, order)
    np.minimum.at(first_draw, j, order)
    keep = (first_draw[i] == order) & (first_draw[j] == order)
    return i.compress(keep), j.compress(keep)


def influence_round(
    loyalty: np.ndarray,
    uncertainty: np.ndarray,
    edges: np.ndarray,
    encounters: int,
    eligible: np.ndarray,
    mu: float,
    rng: np.random.Generator,
) -> None:
    """One week of peer encounters: loyalty and uncertainty updated in place."""
    i, j = random_matching(edges, encounters, eligible, rng)
    if len(i) == 0:
        return
    opinion = 2.0 * loyalty - 1.0
    relative_agreement(opinion, uncertainty, i, j, mu)
    touched = np.concatenate([i, j])
    loyalty[touched] = np.clip((opinion[touched] + 1.0) / 2.0, 0.0, 1.0)
