"""The regime: resources (aid, revenue), legitimacy and its capacity against IS-K, in [0, 1]."""

from __future__ import annotations

from isk_defection.model.parameters import Params


def inclusion_benefit(levers: dict[str, float], p: Params) -> float:
    """The level of inclusion that brings its benefits.

    Recognition (aid), legitimacy, capacity against IS-K and the standing of the included
    groups; 0 with the ``inclusion_benefits`` switch off, so inclusion keeps only its cost
    (the Kandahar core's lost monopoly). The switch acts here only.
    """
    return levers["inclusion"] if p.inclusion_benefits else 0.0


def target_resources(levers: dict[str, float], p: Params) -> float:
    """Resources the current policy would bring: aid rewards concessions and crackdowns."""
    crackdown = (levers["crackdown_ttp"] + levers["crackdown_uyghur"] + levers["crackdown_aq"]) / 3
    aid = (
        p.aid_womens_rights * levers["womens_rights"]
        + p.aid_inclusion * inclusion_benefit(levers, p)
        + p.aid_crackdown * crackdown
        + p.aid_cooperation * levers["foreign_cooperation"]
    )
    return float(min(max(p.resources_base + aid, 0.0), 1.0))


def next_resources(resources: float, levers: dict[str, float], p: Params) -> float:
    """Resources move part of the way toward what the policy brings (aid arrives slowly)."""
    return resources + p.resource_adjustment * (target_resources(levers, p) - resources)


def reference_legitimacy(levers: dict[str, float], p: Params) -> float:
    """The legitimacy the regime recovers toward: higher with an inclusive government."""
    gain = p.legitimacy_inclusion * inclusion_benefit(levers, p)
    return float(min(p.legitimacy_initial + gain, 1.0))


def next_legitimacy(
    legitimacy: float, reference: float, severity: float, typical_severity: float, p: Params
) -> float:
    """Attacks erode legitimacy by their total ``severity`` relative to a typical cell.

    It recovers slowly toward ``reference``; with the ``legitimacy`` switch off attacks
    do not erode it (the switch acts here only). The step kernel compiles it.
    """
    recovered = legitimacy + p.legitimacy_recovery * (reference - legitimacy)
    if p.legitimacy and severity > 0:
        recovered -= p.legitimacy_hit * severity / typical_severity
    return min(max(recovered, 0.0), 1.0)


def counter_isk_effort(
    levers: dict[str, float], resources: float, strength_share: float, p: Params
) -> float:
    """Effective counter-IS-K effort: the lever times the regime's capacity (ODD §7.7)."""
    benefit = inclusion_benefit(levers, p)
    return levers["counter_isk"] * capacity(resources, strength_share, benefit, p)


def capacity(resources: float, strength_share: float, benefit: float, p: Params) -> float:
    """The regime's capacity against IS-K, per unit of the counter-IS-K lever.

    Partly funded by aid, it scales with the regime's loyal fighting strength
    (``strength_share`` of its August 2021 level, at most 1) and grows with inclusion's
    ``benefit`` (``inclusion_benefit``). The step kernel compiles it.
    """
    funded = resources / p.resources_initial if p.resources_initial > 0 else 1.0
    scale = ((1.0 - p.aid_dependence) + p.aid_dependence * funded) * min(strength_share, 1.0)
    return scale * (1.0 + p.capacity_inclusion * benefit)
