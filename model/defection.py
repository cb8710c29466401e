"""The defection decision: a threshold rule (Granovetter 1978) and the ways out.

A member is disaffected when his defection pressure reaches his threshold,

    pressure = (1 - loyalty) + contagion_weight * share of contacts who have left,

where "left" means joined IS-K or deserted. With loyalty fixed at 1 and the ways out
reduced to one, this is Granovetter's riot model exactly. A disaffected member whom
IS-K reaches applies to it; whom IS-K does not take may desert (ODD §7.6). Each rule
is a compiled function of one member, called from the step kernel (``model/kernel.py``).
"""

from __future__ import annotations

from typing import Any

from numba import njit

from isk_defection.model.draws import uniform


@njit(cache=True, inline="always")
def pressure(loyalty: float, left_share: float, contagion_weight: float) -> float:
    """Defection pressure: disloyalty plus the pull of contacts who have already left."""
    return (1.0 - loyalty) + contagion_weight * left_share


@njit(cache=True, inline="always")
def crosses_threshold(pressure: float, threshold: float) -> bool:
    """Granovetter's rule: act once pressure reaches the threshold."""
    return pressure >= threshold - 1e-12


@njit(cache=True, inline="always")
def reached(recruiter_contacts: int, isk_contacts: int, presence_chance: float, rng: Any) -> bool:
    """Whether IS-K reaches a member this week: a contact in it, or its local presence.

    The presence draw is made only for a member with no contact in IS-K.
    """
    return recruiter_contacts > 0 or isk_contacts > 0 or uniform(rng) < presence_chance
