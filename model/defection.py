"""The defection decision: a threshold rule (Granovetter 1978) gated by IS-K's reach.

A loyal member defects when his defection pressure reaches his threshold,

    pressure = (1 - loyalty) + cascade_strength * share of contacts already in IS-K,

and IS-K can reach him: a recruiter or an IS-K member among his contacts, or IS-K's
local presence (``walk_in``). With loyalty fixed at 1 and reach switched off this is
Granovetter's riot model exactly.
"""

from __future__ import annotations

import numpy as np


def pressure(loyalty: np.ndarray, isk_share: np.ndarray, cascade_strength: float) -> np.ndarray:
    """Defection pressure: disloyalty plus the pull of contacts who already defected."""
    return (1.0 - loyalty) + cascade_strength * isk_share


def crosses_threshold(pressure: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Granovetter's rule: act once pressure reaches the threshold."""
    return pressure >= threshold - 1e-12


def reached(
    recruiter_contacts: np.ndarray,
    isk_contacts: np.ndarray,
    walk_in: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Whether IS-K can reach each member this week."""
    return (recruiter_contacts > 0) | (isk_contacts > 0) | (rng.random(len(isk_contacts)) < walk_in)
