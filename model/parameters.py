"""Every model parameter with its default, range, unit, meaning and source.

This registry is the single place parameters are defined: the model reads its
defaults from here, validation checks against it, presets override it, and the
ODD parameter table (``docs/ODD.md``) is generated from it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.groups import GROUPS, TRAITS, Group
from model.policy import LEVERS, Schedule, as_schedule


@dataclass(frozen=True)
class Parameter:
    """A model parameter: what it means, its default and the values it allows."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    unit: str = ""
    meaning: str = ""
    source: str = "assumption"
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        """The Python type of the parameter's values."""
        return Schedule if self.name in LEVERS else type(self.default)

    def allowed(self) -> str:
        """The allowed values, in words, for error messages and docs."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is Schedule:
            return "a lever schedule with values in [0, 1]"
        if self.kind is str:
            if self.name == "start_date":
                return f"a date YYYY-MM-DD from {FIRST_DATE} to {LAST_DATE}"
            return "text"
        if self.kind is int:
            return f"an integer in [{int(self.low):,}, {int(self.high):,}]"
        return f"a number in [{self.low:g}, {self.high:g}]"

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the parameter's type, or raise a one-line ValueError.

        Finiteness and range are checked before any conversion to an integer, so ``inf``,
        ``nan``, ``1e400`` or ``10**400`` end in this message, never in an OverflowError
        deep inside the model.
        """
        if self.kind is Schedule:
            return as_schedule(self.name, value)
        error = ValueError(f"{self.name}: must be {self.allowed()} (got {_shown(value)})")
        if self.kind is bool:
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise error
        if self.kind is str:
            return self._validate_text(value, error)
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise error
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float is out of every range
            raise error from None
        if not math.isfinite(number) or not (self.low <= number <= self.high):
            raise error
        if self.kind is int:
            if not number.is_integer():
                raise error
            return int(value)
        return number

    def _validate_text(self, value: Any, error: ValueError) -> str:
        if not isinstance(value, str):
            raise error
        if self.choices and value not in self.choices:
            raise error
        if self.name == "start_date":
            # YYYY-MM-DD only (fromisoformat also takes 20210815 or 2021-W33), and early
            # enough that the longest run (MAX_STEPS weeks) stays within the calendar
            if not _ISO_DATE.match(value):
                raise error
            try:
                date = dt.date.fromisoformat(value)
            except ValueError:
                raise error from None
            if not FIRST_DATE <= date <= LAST_DATE:
                raise error
        return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2200, 12, 31)
MAX_STEPS = 100_000  # weeks: LAST_DATE + MAX_STEPS weeks is still before year 9999


def _shown(value: Any) -> str:
    """The offending value, shortened so that an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _p(name, default, low=None, high=None, unit="", meaning="", source="assumption", **kw):
    return Parameter(name, default, low, high, unit, meaning, source, **kw)


# fmt: off
_GLOBAL = [
    _p("population", 2_000, 10, 5_000_000, "agents",
       "agents at the start (all groups); real sizes are scaled to it", "—"),
    _p("start_date", "2021-08-15", unit="date", meaning="calendar date of week 0",
       source="Taliban take Kabul, 15 August 2021 [Ali, Introduction]"),
    _p("min_group_agents", 10, 0, 1_000, "agents",
       "smallest number of agents for a group with non-zero size (keeps small groups visible)"),
    _p("network", "clustered", unit="", meaning="social network: factions as clusters, "
       "or complete (everyone tied to everyone; for isolated tests)",
       choices=("clustered", "complete")),
    # network structure
    _p("ties_within", 8, 0, 100, "ties", "mean ties to members of one's own group",
       "assumption (factions are clusters [Pereira: 'patchwork of several factions'])"),
    _p("ties_between", 2, 0, 100, "ties", "mean ties to other groups (TTP to Haqqani and "
       "pro-TTP members, weighted by TTP affinity)", "assumption; TTP ties [Ali]"),
    _p("recruiter_ties", 15, 0, 1_000, "ties", "ties each IS-K recruiter has into other groups",
       "[Ali] Khadim's cell drew fighters from Baghram, Nawzad, Musa; size assumption"),
    # individual heterogeneity
    _p("trait_spread", 0.1, 0.0, 0.5, "sd", "within-group s.d. of hardline-ness, loyalty, "
       "TTP affinity and materialism", "assumption (heterogeneous tolerance, mechanism 2)"),
    _p("threshold_spread", 0.12, 0.0, 0.5, "sd", "within-group s.d. of defection thresholds",
       "assumption; Granovetter (1978) normal thresholds"),
    # loyalty dynamics
    _p("loyalty_adjustment", 0.10, 0.0, 1.0, "1/week",
       "share of the gap to target loyalty closed each week"),
    _p("outbidding_strength", 1.0, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit of moderation beyond one's tolerance (1 - hardline)",
       "[Ali, Moderation Dilemma] concession on doctrinal purity -> hardliners defect"),
    _p("fraternity_strength", 0.25, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit crackdown on an allied group, times affinity to it",
       "[Ali, Counter-Terrorism Dilemma] pro-TTP lobby, 'jihadist fraternity'"),
    _p("repression_strength", 0.3, 0.0, 5.0, "loyalty/lever",
       "loyalty lost by the members of a group the regime acts against",
       "[Ali] crackdown pushes TTP/Uyghurs to IS-K; [Pereira] witch-hunt"),
    _p("propaganda_strength", 0.4, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit foreign CT cooperation, times hardline-ness",
       "[Ali] IS-K propaganda of 'collaborating with foreign infidels'"),
    _p("pashtunwali_strength", 0.5, 0.0, 5.0, "multiplier",
       "extra offence among Pashtuns when the regime acts against guests",
       "[Ali, Counter-Terrorism Dilemma] Pashtunwali code"),
    _p("material_strength", 0.5, 0.0, 5.0, "loyalty/resource",
       "loyalty gained per unit of resources above the reference, times materialism",
       "[Ali, Conclusion] aid and economy sustain the regime"),
    _p("legitimacy_strength", 0.3, 0.0, 5.0, "loyalty",
       "loyalty lost per unit grievance = hardship x (legitimacy fall since week 0)",
       "Epstein (2002); [Pereira] attacks 'bringing down the credibility'"),
    _p("recruitment_strength", 0.079, 0.0, 5.0, "loyalty",
       "loyalty lost at full exposure to IS-K recruiters", "[Ali] IS-K encourages cadres to "
       "switch loyalties; value calibrated (C10)"),
    _p("cascade_strength", 0.5, 0.0, 5.0, "pressure/share",
       "defection pressure per share of one's contacts already in IS-K", "Granovetter (1978)"),
    # relative agreement (peer influence)
    _p("peer_interactions", 1.0, 0.0, 20.0, "1/week",
       "relative-agreement encounters per agent per week", "Deffuant et al. (2002)"),
    _p("influence_rate", 0.2, 0.0, 0.5, "mu", "convergence parameter mu of relative agreement",
       "Deffuant et al. (2002) use mu = 0.2"),
    _p("uncertainty", 1.0, 0.01, 2.0, "opinion units", "uncertainty U of ordinary members "
       "(opinion = 2 loyalty - 1 in [-1, 1])", "Deffuant et al. (2002) U"),
    _p("extremist_uncertainty", 0.1, 0.01, 2.0, "opinion units",
       "uncertainty of hardliners (confident extremists)", "Deffuant et al. (2002) u_e = 0.1"),
    _p("extremist_hardline", 0.8, 0.0, 1.0, "[0,1]",
       "hardline-ness from which a member is a confident extremist"),
    # reach and defection
    _p("walk_in", 0.13, 0.0, 1.0, "1/week", "chance a member finds IS-K without a contact "
       "in it (sleeper cells in >= 13 provinces)", "[Ali] strongholds in at least 13 provinces; "
       "value calibrated (C10)"),
    _p("recruiter_share", 0.098, 0.0, 1.0, "share",
       "share of IS-K members (and of new defectors) who act as recruiters",
       "calibrated (C10)"),
    # regime state
    _p("resources_initial", 0.3, 0.0, 1.0, "[0,1]", "regime resources at week 0 (aid, revenue)",
       "[Ali] 18.4 M people in need of aid (2021)"),
    _p("resources_base", 0.2, 0.0, 1.0, "[0,1]", "resources without aid-winning policies",
       "[Ali] aid need 18.4 -> 24.4 -> 28.3 M"),
    _p("aid_moderation", 0.5, 0.0, 1.0, "[0,1]/lever", "resources won per unit moderation",
       "[Ali, Conclusion] moderation brings aid"),
    _p("aid_crackdown", 0.2, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit mean crackdown on allies", "[Ali] neighbours and donors"),
    _p("aid_cooperation", 0.1, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit foreign CT cooperation"),
    _p("resource_adjustment", 0.05, 0.0, 1.0, "1/week",
       "share of the gap to target resources closed each week"),
    _p("legitimacy_initial", 0.5, 0.0, 1.0, "[0,1]", "regime legitimacy at week 0"),
    _p("legitimacy_hit", 0.002, 0.0, 0.1, "per attack",
       "legitimacy lost per IS-K attack of mean severity", "[Pereira] attacks erode credibility"),
    _p("legitimacy_recovery", 0.05, 0.0, 1.0, "1/week",
       "share of the legitimacy deficit recovered each week"),
    # IS-K
    _p("isk_size", 2_200, 0, 1_000_000, "people", "IS-K members at week 0",
       "UN Secretary-General report, early 2022: about 2,200 before the releases"),
    _p("release_week", 1, -1, 10_000, "week", "week of the prisoner release (-1: none)",
       "[Pereira] thousands of IS-K fighters freed in August 2021"),
    _p("release_isk", 1_800, 0, 1_000_000, "people", "IS-K fighters freed by a release",
       "UN SG report: about 2,200 -> approaching 4,000"),
    _p("release_ttp", 2_300, 0, 1_000_000, "people", "TTP prisoners freed by a release",
       "[Ali] more than 2,300 TTP prisoners released"),
    _p("attrition_rate", 0.0073, 0.0, 1.0, "1/week",
       "chance an IS-K member is killed or captured per week at full counter-IS-K effort",
       "[Ali] operations killed hundreds of IS-K militants; value calibrated (C10)"),
    _p("recruiter_attrition", 1.5, 0.0, 10.0, "multiplier",
       "how much more exposed recruiters are to counter-IS-K operations"),
    _p("aid_dependence", 0.5, 0.0, 1.0, "share",
       "share of counter-IS-K capacity funded by resources (aid)", "[Ali, Conclusion]"),
    _p("attack_rate", 82.0, 0.0, 100.0, "attacks/week/1000",
       "IS-K attacks per week per 1,000 members without counter-IS-K pressure",
       "calibrated (C10) to 136 attacks in the first four months and 141-181 in 2022 [Ali]"),
    _p("attack_suppression", 7.1, 0.0, 20.0, "1/lever",
       "exponential fall of the attack rate with effective counter-IS-K effort",
       "calibrated (C10); the 2023 fall of 75-86% (Meir Amit, BBC Monitoring) is not met"),
    _p("taliban_target_share", 0.72, 0.0, 1.0, "share", "share of IS-K attacks aimed at the "
       "Taliban", "[Ali] >72% of 170 attacks in 2022; 96 of 136"),
    _p("cell_events", 0.2, 0.0, 10.0, "1/member/week",
       "coalescence-fragmentation events per IS-K member per week", "Bohorquez et al. (2009)"),
    _p("fragmentation", 0.01, 0.0, 1.0, "probability",
       "chance an event shatters a cell rather than merging it", "Bohorquez et al. (2009) nu"),
    _p("fragmentation_ops", 0.05, 0.0, 1.0, "probability/lever",
       "extra shattering chance per unit effective counter-IS-K effort"),
    # adaptive leadership
    _p("adaptive_leadership", False, unit="switch",
       meaning="the leadership sets moderation, crackdowns and cooperation each week"),
    _p("adaptive_step", 0.05, 0.0, 1.0, "lever/week", "largest weekly lever change it makes"),
    _p("risk_aversion", 5.0, 0.0, 100.0, "aid/defection",
       "weight of defection risk against resources in the leadership's choice"),
    # data
    _p("collect_agent_data", True, unit="switch",
       meaning="record agent reporters (loyalty, group, faction, allegiance) each step"),
]
# fmt: on

MECHANISMS: dict[str, str] = {
    "outbidding": "moderation beyond tolerance and foreign cooperation offend hardliners (1)",
    "heterogeneity": "members differ in traits within their group (2)",
    "recruitment": "IS-K recruiters expose and reach their contacts; recruits recruit (3)",
    "peer_influence": "relative-agreement influence on loyalty over the network (4)",
    "cascade": "contacts already in IS-K add defection pressure (Granovetter) (4)",
    "material": "resources above the reference raise loyalty (5)",
    "legitimacy": "IS-K attacks erode legitimacy; grievance lowers loyalty (6)",
    "pashtunwali": "acting against guests costs more among Pashtuns (7)",
    "attrition": "counter-IS-K operations remove IS-K members and recruiters (8)",
    "fraternity": "crackdowns on allies offend members tied to them",
    "repression": "crackdowns and the witch-hunt push their targets toward IS-K",
    "reach": "a member can only defect when IS-K reaches him",
    "cells": "IS-K cells coalesce and fragment; attack severity = cell size",
}

_SWITCHES = [
    _p(name, True, unit="switch", meaning=f"mechanism on: {text}", source="[brief, mechanisms]")
    for name, text in MECHANISMS.items()
]

_LEVER_MEANING = {
    "moderation": "women's rights, girls' education, inclusive government [Ali]",
    "crackdown_ttp": "action against the TTP [Ali, Counter-Terrorism Dilemma]",
    "crackdown_uyghur": "control/relocation of Uyghur militants [Ali]",
    "crackdown_aq": "action against Al-Qaeda / IMU [Ali]",
    "foreign_cooperation": "counter-terrorism cooperation with foreign powers [Ali]",
    "counter_isk": "operations against IS-K [Ali]",
    "witch_hunt": "persecution of former republic officials [Pereira]",
}
_LEVERS = [
    _p(
        name,
        Schedule.constant(0.0),
        0.0,
        1.0,
        "[0,1]",
        f"{_LEVER_MEANING[name]}; presets set timelines (ODD, Input data)",
        "policy lever",
    )
    for name in LEVERS
]

CALIBRATED_TRAITS = {"ttp_threshold"}  # fitted by experiment C10 (docs/ODD.md §9.1)


def _trait_source(group: Group, trait: str) -> str:
    if f"{group.name}_{trait}" in CALIBRATED_TRAITS:
        return "calibrated (C10): the TTP largely loyal while sheltered (UN 1988 Monitoring Team)"
    return group.source if trait == "size" else "assumption"


_TRAIT_PARAMS = [
    _p(
        f"{g.name}_{trait}",
        getattr(g, trait),
        low,
        high,
        unit,
        f"{g.label}: {meaning}",
        _trait_source(g, trait),
    )
    for g in GROUPS
    for trait, (low, high, unit, meaning) in TRAITS.items()
]

PARAMETERS: dict[str, Parameter] = {
    p.name: p for p in [*_GLOBAL, *_SWITCHES, *_LEVERS, *_TRAIT_PARAMS]
}


def resolve(overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with validated ``overrides``; unknown names are refused."""
    values = {name: p.default for name, p in PARAMETERS.items()}
    for name, value in overrides.items():
        if name not in PARAMETERS:
            raise ValueError(f"unknown parameter {name!r} (see docs/ODD.md, Parameters)")
        values[name] = PARAMETERS[name].validate(value)
    return values


def markdown_table() -> str:
    """The parameter table of docs/ODD.md: name, default, range, unit, meaning, source."""
    lines = [
        "| name | default | allowed | unit | meaning | source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in PARAMETERS.values():
        default = p.default.describe() if isinstance(p.default, Schedule) else p.default
        cells = [f"`{p.name}`", f"`{default}`", p.allowed(), p.unit, p.meaning, p.source]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def group_table() -> str:
    """Rows of the ODD group-trait table from the current defaults."""
    rows = []
    for g in GROUPS:
        traits = [PARAMETERS[f"{g.name}_{t}"].default for t in TRAITS]
        cells = [f"{g.label} (`{g.name}`)", f"{traits[0]:,}", *map(str, traits[1:]), g.lever or "—"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
