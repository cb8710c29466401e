"""Target loyalty: what each member's loyalty drifts toward under the current policy.

Each mechanism of the brief is one term; a switched-off mechanism contributes zero.
All terms are vectorised over the members given by ``idx``. Every term is zero in
the reference conditions (every lever at 0, resources and legitimacy at their August
2021 levels, no recruiter in sight), so ``baseline_loyalty`` is loyalty in those
conditions and each term measures what a policy or event changes (ODD §7.3).

    target = baseline - outbidding - fraternity - repression + material + inclusion
             - grievance - exposure
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isk_defection.model.groups import AFFINITY_TO, GROUP_INDEX, GROUPS
from isk_defection.model.parameters import Params
from isk_defection.model.population import Population
from isk_defection.model.regime import inclusion_benefit

# Crackdowns on allied groups ("guests"): the lever, its target group and the affinity
# (ties to the target) that makes other members resent it [Ali, Counter-Terrorism Dilemma].
ALLY_CRACKDOWNS: tuple[tuple[str, int, str], ...] = tuple(
    (f"crackdown_{lever}", GROUP_INDEX[group], AFFINITY_TO[group])
    for lever, group in (("ttp", "ttp"), ("uyghur", "uyghur"), ("aq", "aq_imu"))
)


@dataclass(frozen=True)
class Conditions:
    """What a member's loyalty responds to this week, besides his own traits."""

    levers: dict[str, float]
    resources: float
    legitimacy: float
    recruiter_contacts: np.ndarray  # per member in idx


def outbidding(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Women's rights beyond one's tolerance, and collusion with foreign powers, offend hardliners."""
    h = pop.hardline[idx]
    beyond_tolerance = np.maximum(0.0, c.levers["womens_rights"] - (1.0 - h))
    collusion = c.levers["foreign_cooperation"] * h
    return p.outbidding_strength * beyond_tolerance + p.propaganda_strength * collusion


def guest_duty(pop: Population, idx: np.ndarray, p: Params) -> np.ndarray:
    """Pashtunwali: acting against guests weighs more on Pashtuns."""
    if not p.pashtunwali:
        return np.ones(len(idx))
    return 1.0 + p.pashtunwali_strength * pop.pashtun[idx]


def fraternity(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """A crackdown offends the members tied to the targeted group (not the targets)."""
    offence = np.zeros(len(idx))
    group = pop.group[idx]
    for lever, target, affinity in ALLY_CRACKDOWNS:
        if c.levers[lever] > 0:  # a lever at 0 offends no one: skip its gathers
            offence += c.levers[lever] * getattr(pop, affinity)[idx] * (group != target)
    return p.fraternity_strength * offence * guest_duty(pop, idx, p)


def repression(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Acting against a group (crackdown, witch-hunt) pushes its own members away."""
    pressure_by_group = np.zeros(len(GROUPS) + 1)
    for code, group in enumerate(GROUPS):
        if group.lever:
            pressure_by_group[code] = c.levers[group.lever]
    return p.repression_strength * pressure_by_group[pop.group[idx]]


def material(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Resources above the expected level buy loyalty from the materially motivated."""
    surplus = c.resources - p.resources_initial
    return p.material_strength * pop.materialism[idx] * surplus


def inclusion(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Power sharing raises the standing of the groups it includes and lowers the core's.

    The loss (a negative stake) follows the lever; the gain follows its benefit, which the
    ``inclusion_benefits`` switch removes (``regime.inclusion_benefit``).
    """
    stake = pop.inclusion_stake[idx]
    benefit = inclusion_benefit(c.levers, p)
    return p.inclusion_strength * (
        c.levers["inclusion"] * np.minimum(stake, 0.0) + benefit * np.maximum(stake, 0.0)
    )


def grievance(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Epstein's grievance, hardship x (1 - legitimacy), beyond its August 2021 level."""
    return p.legitimacy_strength * pop.hardship[idx] * (p.legitimacy_initial - c.legitimacy)


def exposure(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """Recruiters among one's contacts wear loyalty down, saturating with their number."""
    exposed = c.recruiter_contacts > 0  # few are: exp only where it is not 0
    wear = np.zeros(len(exposed))
    wear[exposed] = 1.0 - np.exp(-c.recruiter_contacts[exposed])
    return p.recruitment_strength * wear


TERMS = (  # (mechanism switch, term, sign): ODD §7.3, in its order. A term without a
    # switch here has it where the mechanism acts: inclusion's benefits in
    # regime.inclusion_benefit, legitimacy's erosion in regime.next_legitimacy, recruitment
    # in isk.recruiter_chance (without recruiters nobody is exposed).
    ("outbidding", outbidding, -1.0),
    ("fraternity", fraternity, -1.0),
    ("repression", repression, -1.0),
    ("material", material, +1.0),
    (None, inclusion, +1.0),
    (None, grievance, -1.0),
    (None, exposure, -1.0),
)


def target_loyalty(pop: Population, idx: np.ndarray, c: Conditions, p: Params) -> np.ndarray:
    """The loyalty each member in ``idx`` would settle at if conditions stayed as they are."""
    target = pop.baseline_loyalty[idx].copy()
    for switch, term, sign in TERMS:
        if switch is None or getattr(p, switch):
            target += sign * term(pop, idx, c, p)
    return np.clip(target, 0.0, 1.0)
