"""Named parameter sets: the actual 2021-23 stance and counterfactual stances.

Weeks count from 15 August 2021. Lever timelines are the model's reading of the
seeds (documented in docs/ODD.md, Input data); their levels are assumptions.
"""

from __future__ import annotations

from typing import Any

from isk_defection.model.groups import GROUPS
from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.policy import Schedule

_BASELINE_LEVERS: dict[str, Schedule] = {
    # Promises of women's rights (Aug 2021); the secondary-school ban (23 Mar 2022, week 31);
    # the university and NGO-work bans (Dec 2022, week 71); the law on the propagation of
    # virtue and prevention of vice (21 Aug 2024, week 157).
    "womens_rights": Schedule.piecewise([(0, 0.3), (31, 0.15), (71, 0.05), (157, 0.0)]),
    # Promises of an inclusive government, then the all-Taliban interim cabinet (7 Sep 2021,
    # week 3) with a few Tajik and Uzbek members (Qari Fasihuddin, Abdul Salam Hanafi).
    "inclusion": Schedule.piecewise([(0, 0.3), (3, 0.1)]),
    # Thousands deployed against IS-K from autumn 2021; kept up through 2025 [Ali].
    "counter_isk": Schedule.piecewise([(0, 0.3), (10, 0.6), (80, 0.8)]),
    # No action against the TTP or Al-Qaeda, through 2025 (UN 1988 Monitoring Team);
    # Uyghur militants relocated away from the Chinese border (late 2021) [Ali].
    "crackdown_ttp": Schedule.constant(0.0),
    "crackdown_aq": Schedule.constant(0.0),
    "crackdown_uyghur": Schedule.constant(0.15),
    # Limited engagement with China, Russia and Pakistan.
    "foreign_cooperation": Schedule.piecewise([(0, 0.05), (52, 0.15)]),
    # Reprisals against former officials in 2021, easing in 2022 [Pereira].
    "witch_hunt": Schedule.piecewise([(0, 0.6), (26, 0.3)]),
}

_SIZED = [*(g.name for g in GROUPS), "isk"]

PRESETS: dict[str, dict[str, Any]] = {
    "baseline": dict(_BASELINE_LEVERS),
    "inclusive": _BASELINE_LEVERS
    | {
        # [Ali, Conclusion] recommends the inclusive national government (inclusion);
        # every other level here is an assumption (ODD §6): some women's rights, the
        # baseline's 2023 counter-IS-K effort from the start, engagement, no witch-hunt.
        "inclusion": Schedule.constant(0.8),  # [Ali, Conclusion]
        "womens_rights": Schedule.constant(0.5),  # assumption
        "counter_isk": Schedule.constant(0.8),  # assumption ("aid-funded")
        "foreign_cooperation": Schedule.constant(0.3),  # assumption
        "witch_hunt": Schedule.constant(0.0),  # assumption
    },
    "crackdown": _BASELINE_LEVERS
    | {
        # What Pakistan, China and donors ask: act against the allied jihadist groups.
        "crackdown_ttp": Schedule.constant(0.7),
        "crackdown_uyghur": Schedule.constant(0.7),
        "crackdown_aq": Schedule.constant(0.7),
        "foreign_cooperation": Schedule.constant(0.5),
    },
    "no_release": dict(_BASELINE_LEVERS) | {"release_week": -1},
    "adaptive": dict(_BASELINE_LEVERS) | {"adaptive_leadership": True},
    "full_scale": dict(_BASELINE_LEVERS)
    | {
        # 1:1 scale: one agent per fighter, official, or IS-K member (default sizes).
        "population": sum(PARAMETERS[f"{name}_size"].default for name in _SIZED),
    },
}

PRESET_DESCRIPTIONS: dict[str, str] = {
    "baseline": "the Taliban's actual stance and policy timeline from August 2021",
    "inclusive": "an inclusive government (Ali's advice), with assumed levels of women's "
    "rights, counter-IS-K effort and engagement, and no witch-hunt (ODD §6)",
    "crackdown": "crackdowns on TTP, Uyghur and Al-Qaeda/IMU with foreign cooperation",
    "no_release": "baseline without the August 2021 prisoner release",
    "adaptive": "baseline levers chosen each week by the adaptive leadership rule",
    "full_scale": "baseline at 1:1 scale (one agent per person, about 162,000 agents)",
}


def preset(name: str) -> dict[str, Any]:
    """The parameter overrides of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)} (got {name!r})")
    return dict(PRESETS[name])
