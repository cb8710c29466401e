"""The regime's resources (aid, revenue) and legitimacy, both in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np


def target_resources(levers: dict[str, float], p: dict[str, Any]) -> float:
    """Resources the current policy would bring: aid rewards moderation and crackdowns."""
    crackdown = np.mean(
        [levers["crackdown_ttp"], levers["crackdown_uyghur"], levers["crackdown_aq"]]
    )
    aid = (
        p["aid_moderation"] * levers["moderation"]
        + p["aid_crackdown"] * crackdown
        + p["aid_cooperation"] * levers["foreign_cooperation"]
    )
    return float(np.clip(p["resources_base"] + aid, 0.0, 1.0))


def next_resources(resources: float, levers: dict[str, float], p: dict[str, Any]) -> float:
    """Resources move part of the way toward what the policy brings (aid arrives slowly)."""
    return resources + p["resource_adjustment"] * (target_resources(levers, p) - resources)


def next_legitimacy(
    legitimacy: float, severities: np.ndarray, typical_severity: float, p: dict[str, Any]
) -> float:
    """Attacks erode legitimacy by severity relative to a typical cell; it recovers slowly."""
    recovered = legitimacy + p["legitimacy_recovery"] * (p["legitimacy_initial"] - legitimacy)
    if not p["legitimacy"] or len(severities) == 0:
        return float(np.clip(recovered, 0.0, 1.0))
    hit = p["legitimacy_hit"] * severities.sum() / typical_severity
    return float(np.clip(recovered - hit, 0.0, 1.0))
