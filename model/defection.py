"""The defection decision: a threshold rule (Granovetter 1978) and the ways out.

A member is disaffected when his defection pressure reaches his threshold,

    pressure = (1 - loyalty) + contagion_weight * share of contacts who have left,

where "left" means joined IS-K or deserted. With loyalty fixed at 1 and the ways out
reduced to one, this is Granovetter's riot model exactly. A disaffected member whom
IS-K reaches applies to it; whom IS-K does not take may desert (ODD §7.6).
"""

from __future__ import annotations

import numpy as np


def pressure(loyalty: np.ndarray, left_share: np.ndarray, contagion_weight: float) -> np.ndarray:
    """Defection pressure: disloyalty plus the pull of contacts who have already left."""
    return (1.0 - loyalty) + contagion_weight * left_share


def crosses_threshold(pressure: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Granovetter's rule: act once pressure reaches the threshold."""
    return pressure >= threshold - 1e-12


def reached(
    recruiter_contacts: np.ndarray,
    isk_contacts: np.ndarray,
    presence_chance: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Whether IS-K reaches each member this week: a contact in it, or its local presence."""
    chance = rng.random(len(isk_contacts)) < presence_chance
    return (recruiter_contacts > 0) | (isk_contacts > 0) | chance
