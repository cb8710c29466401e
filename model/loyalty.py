"""Target loyalty: what each member's loyalty drifts toward under the current policy.

Each mechanism of the brief is one term; a switched-off mechanism contributes zero.
Every term is a compiled function over the members given by ``idx`` that the step kernel
(``model/kernel.py``) calls once a week for the deciding members. Every term is zero in
the reference conditions (every lever at 0, resources and legitimacy at their August
2021 levels, no recruiter in sight), so ``baseline_loyalty`` is loyalty in those
conditions and each term measures what a policy or event changes (ODD §7.3).

    target = baseline - outbidding - fraternity - repression + material + inclusion
             - grievance - exposure

Terms read the members' traits from ``pop`` (``kernel.Members``), the week's
``Conditions`` and the kernel's copy of the parameters ``p`` (``kernel.KernelParams``,
same names as ``Params``); ``recruiters`` holds each member's recruiter contacts. (A term
per member would be called per member with ``pop``, and each such call copies the
reference counts of its arrays: several times the cost of the term.)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit

from isk_defection.model.groups import AFFINITY_TO, GROUP_INDEX

# Crackdowns on allied groups ("guests"): the lever, its target group and the affinity
# (ties to the target) that makes other members resent it [Ali, Counter-Terrorism Dilemma].
# ``kernel.Members.affinity`` and ``KernelParams.crackdown_*`` follow this order.
ALLY_CRACKDOWNS: tuple[tuple[str, int, str], ...] = tuple(
    (f"crackdown_{lever}", GROUP_INDEX[group], AFFINITY_TO[group])
    for lever, group in (("ttp", "ttp"), ("uyghur", "uyghur"), ("aq", "aq_imu"))
)


class Conditions(NamedTuple):
    """What a member's loyalty responds to this week, besides his own traits."""

    levers: np.ndarray  # lever values in ``policy.LEVERS`` order
    benefit: float  # regime.inclusion_benefit: the inclusion that brings its benefits
    resources: float
    legitimacy: float


@njit(cache=True)
def outbidding(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Women's rights beyond one's tolerance, and collusion with foreign powers, offend hardliners."""
    h = pop.hardline[idx]
    beyond_tolerance = np.maximum(0.0, c.levers[p.womens_rights_lever] - (1.0 - h))
    collusion = c.levers[p.foreign_cooperation_lever] * h
    return p.outbidding_strength * beyond_tolerance + p.propaganda_strength * collusion


@njit(cache=True)
def guest_duty(pop: Any, idx: np.ndarray, p: Any) -> np.ndarray:
    """Pashtunwali: acting against guests weighs more on Pashtuns."""
    if not p.pashtunwali:
        return np.ones(len(idx))
    return 1.0 + p.pashtunwali_strength * pop.pashtun[idx]


@njit(cache=True)
def fraternity(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """A crackdown offends the members tied to the targeted group (not the targets).

    One term per crackdown of ALLY_CRACKDOWNS, in order; a lever at 0 offends no one.
    """
    offence = np.zeros(len(idx))
    group = pop.group[idx]
    for k in range(len(p.crackdown_lever)):
        level = c.levers[p.crackdown_lever[k]]
        if level > 0.0:
            offence += level * pop.affinity[k][idx] * (group != p.crackdown_target[k])
    return p.fraternity_strength * offence * guest_duty(pop, idx, p)


@njit(cache=True)
def repression(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Acting against a group (crackdown, witch-hunt) pushes its own members away."""
    pressure_by_group = np.zeros(len(p.lever_against))
    for g in range(len(p.lever_against)):
        if p.lever_against[g] >= 0:
            pressure_by_group[g] = c.levers[p.lever_against[g]]
    return p.repression_strength * pressure_by_group[pop.group[idx]]


@njit(cache=True)
def material(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Resources above the expected level buy loyalty from the materially motivated."""
    surplus = c.resources - p.resources_initial
    return p.material_strength * pop.materialism[idx] * surplus


@njit(cache=True)
def inclusion(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Power sharing raises the standing of the groups it includes and lowers the core's.

    The loss (a negative stake) follows the lever; the gain follows its benefit, which the
    ``inclusion_benefits`` switch removes (``regime.inclusion_benefit``).
    """
    stake = pop.inclusion_stake[idx]
    lever = c.levers[p.inclusion_lever]
    return p.inclusion_strength * (
        lever * np.minimum(stake, 0.0) + c.benefit * np.maximum(stake, 0.0)
    )


@njit(cache=True)
def grievance(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Epstein's grievance, hardship x (1 - legitimacy), beyond its August 2021 level."""
    return p.legitimacy_strength * pop.hardship[idx] * (p.legitimacy_initial - c.legitimacy)


@njit(cache=True)
def exposure(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Recruiters among one's contacts wear loyalty down, saturating with their number."""
    wear = np.zeros(len(idx))
    for k in range(len(idx)):
        if recruiters[k] > 0:  # few are: exp only where it is not 0
            wear[k] = 1.0 - np.exp(-recruiters[k])
    return p.recruitment_strength * wear


TERMS = (  # (mechanism switch, term, sign): ODD §7.3, in its order. A term without a
    # switch here has it where the mechanism acts: inclusion's benefits in
    # regime.inclusion_benefit, legitimacy's erosion in regime.next_legitimacy, recruitment
    # in isk.recruiter_chance (without recruiters nobody is exposed). target_loyalty
    # applies this table term by term (tests/test_model.py checks it against the table).
    ("outbidding", outbidding, -1.0),
    ("fraternity", fraternity, -1.0),
    ("repression", repression, -1.0),
    ("material", material, +1.0),
    (None, inclusion, +1.0),
    (None, grievance, -1.0),
    (None, exposure, -1.0),
)


@njit(cache=True)
def target_loyalty(
    pop: Any, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """The loyalty each member in ``idx`` would settle at if conditions stayed (TERMS).

    ``recruiters``: each one's recruiter contacts. Each switch acts here, on its term.
    """
    target = pop.baseline_loyalty[idx]
    if p.outbidding:
        target -= outbidding(pop, idx, c, p, recruiters)
    if p.fraternity:
        target -= fraternity(pop, idx, c, p, recruiters)
    if p.repression:
        target -= repression(pop, idx, c, p, recruiters)
    if p.material:
        target += material(pop, idx, c, p, recruiters)
    target += inclusion(pop, idx, c, p, recruiters)
    target -= grievance(pop, idx, c, p, recruiters)
    target -= exposure(pop, idx, c, p, recruiters)
    return np.minimum(np.maximum(target, 0.0), 1.0)
