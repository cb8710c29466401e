"""Target loyalty: what each member's loyalty drifts toward under the current policy.

Each mechanism of the brief is one term; a switched-off mechanism contributes zero.
All terms are vectorised over the members given by ``idx``. Every term is zero in
the reference conditions (every lever at 0, resources and legitimacy at their August
2021 levels, no recruiter in sight), so ``baseline_loyalty`` is loyalty in those
conditions and each term measures what a policy or event changes.

    target = baseline - outbidding - fraternity - repression + material - grievance - exposure
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.groups import GROUP_INDEX, GROUPS
from model.population import Population

# Crackdowns on allied groups ("guests"), their target group and the affinity that
# makes other members resent them.
ALLY_CRACKDOWNS: tuple[tuple[str, int, str], ...] = (
    ("crackdown_ttp", GROUP_INDEX["ttp"], "ttp_affinity"),
    ("crackdown_uyghur", GROUP_INDEX["uyghur"], "hardline"),
    ("crackdown_aq", GROUP_INDEX["aq_imu"], "hardline"),
)


@dataclass(frozen=True)
class Conditions:
    """What a member's loyalty responds to this week, besides his own traits."""

    levers: dict[str, float]
    resources: float
    legitimacy: float
    recruiter_contacts: np.ndarray  # per member in idx


def outbidding(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Concessions beyond one's tolerance, and collusion with foreign powers, offend hardliners."""
    h = pop.hardline[idx]
    beyond_tolerance = np.maximum(0.0, c.levers["moderation"] - (1.0 - h))
    collusion = c.levers["foreign_cooperation"] * h
    return p["outbidding_strength"] * beyond_tolerance + p["propaganda_strength"] * collusion


def guest_duty(pop: Population, idx: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Pashtunwali: acting against guests weighs more on Pashtuns."""
    if not p["pashtunwali"]:
        return np.ones(len(idx))
    return 1.0 + p["pashtunwali_strength"] * pop.pashtun[idx]


def fraternity(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Crackdowns on allied jihadists offend the members tied to them (not the targets)."""
    offence = np.zeros(len(idx))
    group = pop.group[idx]
    for lever, target, affinity in ALLY_CRACKDOWNS:
        if c.levers[lever] > 0:  # a lever at 0 offends no one: skip its gathers
            offence += c.levers[lever] * getattr(pop, affinity)[idx] * (group != target)
    return p["fraternity_strength"] * offence * guest_duty(pop, idx, p)


def repression(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Acting against a group (crackdown, witch-hunt) pushes its own members away."""
    pressure_by_group = np.zeros(len(GROUPS) + 1)
    for code, group in enumerate(GROUPS):
        if group.lever:
            pressure_by_group[code] = c.levers[group.lever]
    return p["repression_strength"] * pressure_by_group[pop.group[idx]]


def material(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Resources above the expected level buy loyalty from the materially motivated."""
    surplus = c.resources - p["resources_initial"]
    return p["material_strength"] * pop.materialism[idx] * surplus


def grievance(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Epstein's grievance, hardship x (1 - legitimacy), beyond its August 2021 level."""
    return p["legitimacy_strength"] * pop.hardship[idx] * (p["legitimacy_initial"] - c.legitimacy)


def exposure(pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]) -> np.ndarray:
    """Recruiters among one's contacts wear loyalty down, saturating with their number."""
    return p["recruitment_strength"] * (1.0 - np.exp(-c.recruiter_contacts))


TERMS = (  # (mechanism switch, term, sign)
    ("outbidding", outbidding, -1.0),
    ("fraternity", fraternity, -1.0),
    ("repression", repression, -1.0),
    ("material", material, +1.0),
    ("legitimacy", grievance, -1.0),
    ("recruitment", exposure, -1.0),
)


def target_loyalty(
    pop: Population, idx: np.ndarray, c: Conditions, p: dict[str, Any]
) -> np.ndarray:
    """The loyalty each member in ``idx`` would settle at if conditions stayed as they are."""
    target = pop.baseline_loyalty[idx].copy()
    for switch, term, sign in TERMS:
        if p[switch]:
            target += sign * term(pop, idx, c, p)
    return np.clip(target, 0.0, 1.0)
