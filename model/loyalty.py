"""Target loyalty: what each member's loyalty drifts toward under the current policy.

Each mechanism of the brief is one term; a switched-off mechanism contributes zero.
Every term is a compiled function of one member's ``Traits`` and the week's
``Conditions`` (plain numbers: the step kernel, ``model/kernel.py``, calls them for
every deciding member at no cost beyond the arithmetic). Every term is zero in the
reference conditions (every lever at 0, resources and legitimacy at their August 2021
levels, no recruiter in sight), so ``baseline_loyalty`` is loyalty in those conditions
and each term measures what a policy or event changes (ODD §7.3).

    target = baseline - outbidding - fraternity - repression + material + inclusion
             - grievance - exposure

``p`` is the kernel's copy of the parameters (``kernel.KernelParams``, the same names
as ``Params``); ``recruiters`` is the member's recruiter contacts.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit

from isk_defection.model.groups import AFFINITY_TO, GROUP_INDEX, GROUPS
from isk_defection.model.regime import inclusion_benefit

# Crackdowns on allied groups ("guests"): the lever, its target group and the affinity
# (ties to the target) that makes other members resent it [Ali, Counter-Terrorism Dilemma].
# ``Traits.affinity``, ``Conditions.crackdowns`` and ``KernelParams.crackdown_target``
# follow this order.
ALLY_CRACKDOWNS: tuple[tuple[str, int, str], ...] = tuple(
    (f"crackdown_{lever}", GROUP_INDEX[group], AFFINITY_TO[group])
    for lever, group in (("ttp", "ttp"), ("uyghur", "uyghur"), ("aq", "aq_imu"))
)


class Conditions(NamedTuple):
    """What a member's loyalty responds to this week, besides his own traits."""

    womens_rights: float
    foreign_cooperation: float
    inclusion: float  # the lever (its cost to the core)
    benefit: float  # regime.inclusion_benefit: the inclusion that brings its benefits
    crackdowns: tuple[float, ...]  # ALLY_CRACKDOWNS' levers, in order
    against: tuple[float, ...]  # per group code: the lever acting against it (0 if none)
    resources: float
    legitimacy: float


def conditions(levers: dict[str, float], resources: float, legitimacy: float, p: Any) -> Conditions:
    """The week's conditions from the levers (``Params`` for the inclusion switch)."""
    return Conditions(
        float(levers["womens_rights"]),
        float(levers["foreign_cooperation"]),
        float(levers["inclusion"]),
        float(inclusion_benefit(levers, p)),
        tuple(float(levers[name]) for name, _, _ in ALLY_CRACKDOWNS),
        tuple(float(levers[g.lever]) if g.lever else 0.0 for g in GROUPS) + (0.0,),  # IS-K
        float(resources),
        float(legitimacy),
    )


class Traits(NamedTuple):
    """One member's traits that his target loyalty reads (``population.Population``)."""

    group: int
    baseline_loyalty: float
    hardline: float
    pashtun: bool
    affinity: tuple[float, float, float]  # ALLY_CRACKDOWNS' affinities, in order
    materialism: float
    inclusion_stake: float
    hardship: float


@njit(cache=True)
def outbidding(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """Women's rights beyond one's tolerance, and collusion with foreign powers, offend hardliners."""
    beyond_tolerance = max(0.0, c.womens_rights - (1.0 - m.hardline))
    collusion = c.foreign_cooperation * m.hardline
    return p.outbidding_strength * beyond_tolerance + p.propaganda_strength * collusion


@njit(cache=True)
def guest_duty(m: Traits, p: Any) -> float:
    """Pashtunwali: acting against guests weighs more on Pashtuns."""
    if not p.pashtunwali:
        return 1.0
    return 1.0 + p.pashtunwali_strength * m.pashtun


@njit(cache=True)
def fraternity(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """A crackdown offends the members tied to the targeted group (not the targets)."""
    offence = 0.0
    for k in range(len(c.crackdowns)):  # ALLY_CRACKDOWNS, in order
        if m.group != p.crackdown_target[k]:
            offence += c.crackdowns[k] * m.affinity[k]
    return p.fraternity_strength * offence * guest_duty(m, p)


@njit(cache=True)
def repression(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """Acting against a group (crackdown, witch-hunt) pushes its own members away."""
    return p.repression_strength * c.against[m.group]


@njit(cache=True)
def material(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """Resources above the expected level buy loyalty from the materially motivated."""
    return p.material_strength * m.materialism * (c.resources - p.resources_initial)


@njit(cache=True)
def inclusion(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """Power sharing raises the standing of the groups it includes and lowers the core's.

    The loss (a negative stake) follows the lever; the gain follows its benefit, which the
    ``inclusion_benefits`` switch removes (``regime.inclusion_benefit``).
    """
    stake = m.inclusion_stake
    return p.inclusion_strength * (c.inclusion * min(stake, 0.0) + c.benefit * max(stake, 0.0))


@njit(cache=True)
def grievance(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """Epstein's grievance, hardship x (1 - legitimacy), beyond its August 2021 level."""
    return p.legitimacy_strength * m.hardship * (p.legitimacy_initial - c.legitimacy)


@njit(cache=True)
def exposure(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
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
def target_loyalty(m: Traits, c: Conditions, p: Any, recruiters: int) -> float:
    """The loyalty member ``m`` would settle at if conditions stayed as they are (TERMS)."""
    target = m.baseline_loyalty
    if p.outbidding:
        target -= outbidding(m, c, p, recruiters)
    if p.fraternity:
        target -= fraternity(m, c, p, recruiters)
    if p.repression:
        target -= repression(m, c, p, recruiters)
    if p.material:
        target += material(m, c, p, recruiters)
    target += inclusion(m, c, p, recruiters)
    target -= grievance(m, c, p, recruiters)
    target -= exposure(m, c, p, recruiters)
    return min(max(target, 0.0), 1.0)
