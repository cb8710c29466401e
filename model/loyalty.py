"""Target loyalty: what each member's loyalty drifts toward under the current policy.

Each mechanism of the brief is one term; a switched-off mechanism contributes zero.
Every term is a compiled function of one member (slot ``i``) that the step kernel
(``model/kernel.py``) calls in its loop over the deciding members. Every term is zero in
the reference conditions (every lever at 0, resources and legitimacy at their August
2021 levels, no recruiter in sight), so ``baseline_loyalty`` is loyalty in those
conditions and each term measures what a policy or event changes (ODD §7.3).

    target = baseline - outbidding - fraternity - repression + material + inclusion
             - grievance - exposure

Terms read the member's traits from ``pop`` (``kernel.Members``), the week's
``Conditions`` and the kernel's copy of the parameters ``p`` (``kernel.KernelParams``,
same names as ``Params``); ``recruiters`` is the member's recruiter contacts.
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
def outbidding(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Women's rights beyond one's tolerance, and collusion with foreign powers, offend hardliners."""
    h = pop.hardline[i]
    beyond_tolerance = max(0.0, c.levers[p.womens_rights_lever] - (1.0 - h))
    collusion = c.levers[p.foreign_cooperation_lever] * h
    return p.outbidding_strength * beyond_tolerance + p.propaganda_strength * collusion


@njit(cache=True)
def guest_duty(i: int, pop: Any, p: Any) -> float:
    """Pashtunwali: acting against guests weighs more on Pashtuns."""
    if not p.pashtunwali:
        return 1.0
    return 1.0 + p.pashtunwali_strength * pop.pashtun[i]


@njit(cache=True)
def fraternity(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """A crackdown offends the members tied to the targeted group (not the targets).

    One ``resentment`` per crackdown of ALLY_CRACKDOWNS, in order (written out: a loop
    over the tuple of affinity arrays would copy it at every member).
    """
    g, levels, lever, target, ties = (
        pop.group[i],
        c.levers,
        p.crackdown_lever,
        p.crackdown_target,
        pop.affinity,
    )
    offence = (
        resentment(levels[lever[0]], target[0], ties[0][i], g)
        + resentment(levels[lever[1]], target[1], ties[1][i], g)
        + resentment(levels[lever[2]], target[2], ties[2][i], g)
    )
    return p.fraternity_strength * offence * guest_duty(i, pop, p)


@njit(cache=True)
def resentment(level: float, target: int, affinity: float, group: int) -> float:
    """One crackdown's offence to a member of ``group`` tied to its target by ``affinity``."""
    return level * affinity if level > 0.0 and group != target else 0.0


@njit(cache=True)
def repression(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Acting against a group (crackdown, witch-hunt) pushes its own members away."""
    lever = p.lever_against[pop.group[i]]
    return p.repression_strength * c.levers[lever] if lever >= 0 else 0.0


@njit(cache=True)
def material(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Resources above the expected level buy loyalty from the materially motivated."""
    surplus = c.resources - p.resources_initial
    return p.material_strength * pop.materialism[i] * surplus


@njit(cache=True)
def inclusion(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Power sharing raises the standing of the groups it includes and lowers the core's.

    The loss (a negative stake) follows the lever; the gain follows its benefit, which the
    ``inclusion_benefits`` switch removes (``regime.inclusion_benefit``).
    """
    stake = pop.inclusion_stake[i]
    lever = c.levers[p.inclusion_lever]
    return p.inclusion_strength * (lever * min(stake, 0.0) + c.benefit * max(stake, 0.0))


@njit(cache=True)
def grievance(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Epstein's grievance, hardship x (1 - legitimacy), beyond its August 2021 level."""
    return p.legitimacy_strength * pop.hardship[i] * (p.legitimacy_initial - c.legitimacy)


@njit(cache=True)
def exposure(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """Recruiters among one's contacts wear loyalty down, saturating with their number."""
    if recruiters == 0:
        return 0.0
    return p.recruitment_strength * (1.0 - np.exp(-recruiters))


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
def target_loyalty(i: int, pop: Any, c: Conditions, p: Any, recruiters: int) -> float:
    """The loyalty member ``i`` would settle at if conditions stayed as they are (TERMS)."""
    target = pop.baseline_loyalty[i]
    if p.outbidding:
        target -= outbidding(i, pop, c, p, recruiters)
    if p.fraternity:
        target -= fraternity(i, pop, c, p, recruiters)
    if p.repression:
        target -= repression(i, pop, c, p, recruiters)
    if p.material:
        target += material(i, pop, c, p, recruiters)
    target += inclusion(i, pop, c, p, recruiters)
    target -= grievance(i, pop, c, p, recruiters)
    target -= exposure(i, pop, c, p, recruiters)
    return min(max(target, 0.0), 1.0)
