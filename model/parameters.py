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
from pathlib import Path
from typing import Any, Literal

import numpy as np

from isk_defection.model.groups import GROUPS, TRAITS, Group
from isk_defection.model.policy import LEVERS, Schedule, as_schedule


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
        low, high = self.bounds()
        if self.kind is int:
            return f"an integer in [{int(low):,}, {int(high):,}]"
        return f"a number in [{low:g}, {high:g}]"

    def bounds(self) -> tuple[float, float]:
        """The range of a numeric parameter (every numeric entry of the registry has one)."""
        if self.low is None or self.high is None:
            raise TypeError(f"{self.name}: not a numeric parameter")
        return self.low, self.high

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the parameter's type, or raise a one-line ValueError.

        Finiteness and range are checked before any conversion to an integer, so ``inf``,
        ``nan``, ``1e400`` or ``10**400`` end in this message, never in an OverflowError
        deep inside the model.
        """
        if self.kind is Schedule:
            if isinstance(value, np.ndarray) and value.ndim > 1:  # a weekly list is flat
                raise ValueError(
                    f"{self.name}: must be {self.allowed()}; a weekly list is one-dimensional "
                    f"(got an array of shape {value.shape})"
                )
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
        low, high = self.bounds()
        if not math.isfinite(number) or not (low <= number <= high):
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


def _p(
    name: str,
    default: Any,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    meaning: str = "",
    source: str = "assumption",
    choices: tuple[str, ...] = (),
) -> Parameter:
    return Parameter(name, default, low, high, unit, meaning, source, choices)


AGENT_DATA_LIMIT = 10_000  # agents: agent reporters on by default up to this size
# agents: the resolution calibrate, reproduce and optimize run at (ODD §7.15)
STUDY_POPULATION = 8_000

# fmt: off
_GLOBAL = [
    _p("population", 2_000, 10, 5_000_000, "agents",
       "agents at the start (all groups); each group's people are shared among its agents", "—"),
    _p("start_date", "2021-08-15", unit="date", meaning="calendar date of week 0",
       source="Taliban take Kabul, 15 August 2021 [Ali, Introduction]"),
    _p("min_group_agents", 10, 0, 1_000, "agents",
       "smallest number of agents for a group with non-zero size (keeps small groups visible; "
       "their agents then stand for fewer people, so totals in people are not inflated)"),
    _p("network", "clustered", unit="", meaning="social network: factions as clusters, "
       "or complete (everyone tied to everyone; for isolated tests)",
       choices=("clustered", "complete")),
    # network structure
    _p("ties_within", 8, 0, 100, "ties", "mean ties to members of one's own group",
       "assumption (factions are clusters [Pereira: 'patchwork of several factions'])"),
    _p("ties_between", 2, 0, 100, "ties", "mean ties to other groups (TTP, Al-Qaeda and Uyghur "
       "militants tie to members in proportion to their affinity to them)",
       "assumption; TTP and Al-Qaeda ties [Ali]"),
    _p("recruiter_ties", 15, 0, 1_000, "ties", "ties each IS-K recruiter has into other groups",
       "[Ali] Khadim's cell drew fighters from Baghram, Nawzad, Musa; size assumption"),
    # individual heterogeneity
    _p("trait_spread", 0.1, 0.0, 0.5, "sd", "within-group s.d. of loyalty, "
       "affinities and materialism", "assumption (heterogeneous tolerance, mechanism 2)"),
    _p("tolerance_spread", 0.2, 0.0, 0.3, "sd",
       "within-group s.d. of hardline-ness (tolerance of women's rights = 1 - hardline), "
       "drawn from a Beta distribution with the group's mean",
       "assumption (model v3): members of one faction differ by age, rank, district and "
       "patronage (Giustozzi 2019); Granovetter (1978): a narrow spread is the knife-edge "
       "case (prior 0.1-0.3)"),
    _p("threshold_spread", 0.12, 0.0, 0.5, "sd", "within-group s.d. of defection thresholds",
       "assumption; Granovetter (1978) normal thresholds"),
    # loyalty dynamics
    _p("loyalty_adjustment", 0.10, 0.0, 1.0, "1/week",
       "share of the gap to target loyalty closed each week"),
    _p("outbidding_strength", 1.0, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit of women's rights beyond one's tolerance (1 - hardline)",
       "[Ali, Moderation Dilemma] doctrinal concession -> hardliners defect; size assumption "
       "(prior 0.25-2)"),
    _p("fraternity_strength", 0.25, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit crackdown on an allied group, times one's affinity to that group",
       "[Ali, Counter-Terrorism Dilemma] pro-TTP lobby, 'jihadist fraternity'; size assumption "
       "(prior 0.05-1)"),
    _p("repression_strength", 0.3, 0.0, 5.0, "loyalty/lever",
       "loyalty lost by the members of a group the regime acts against",
       "[Ali] crackdown pushes TTP/Uyghurs to IS-K; [Pereira] witch-hunt; size assumption "
       "(prior 0.1-1)"),
    _p("propaganda_strength", 0.4, 0.0, 5.0, "loyalty/lever",
       "loyalty lost per unit foreign CT cooperation, times hardline-ness",
       "[Ali] IS-K propaganda of 'collaborating with foreign infidels'; size assumption "
       "(prior 0.1-1)"),
    _p("pashtunwali_strength", 0.5, 0.0, 5.0, "multiplier",
       "extra offence among Pashtuns when the regime acts against guests",
       "[Ali, Counter-Terrorism Dilemma] Pashtunwali code; size assumption (prior 0-1)"),
    _p("material_strength", 0.5, 0.0, 5.0, "loyalty/resource",
       "loyalty gained per unit of resources above the reference, times materialism",
       "[Ali, Conclusion] aid and economy sustain the regime; size assumption (prior 0.1-1)"),
    _p("legitimacy_strength", 0.3, 0.0, 5.0, "loyalty",
       "loyalty lost per unit grievance = hardship x (legitimacy below its reference)",
       "Epstein (2002); [Pereira] attacks 'bringing down the credibility'; size assumption "
       "(prior 0.1-1)"),
    _p("inclusion_strength", 0.3, 0.0, 5.0, "loyalty/lever",
       "loyalty gained (or lost) per unit inclusion, times one's group's inclusion stake",
       "[Ali, Conclusion] inclusive government; brief 'Model v2' (wins Tajik and Uzbek members, "
       "costs the Kandahar core its monopoly); size assumption (prior 0-1)"),
    _p("recruitment_strength", 0.28, 0.0, 5.0, "loyalty",
       "loyalty lost at full exposure to IS-K recruiters", "[Ali] IS-K encourages cadres to "
       "switch loyalties; value fitted within the range 0-0.3 (ODD §9.1)"),
    _p("contagion_weight", 0.25, 0.0, 5.0, "pressure/share",
       "defection pressure per share of one's contacts who have already left (to IS-K or "
       "deserted)", "assumption (prior 0-1): Granovetter (1978) thresholds act on the share "
       "who have acted; this weight on it is the model's own"),
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
    # ways out: IS-K's reach and intake, desertion, return
    _p("isk_reach", 0.048, 0.0, 10.0, "1/week per 1,000 IS-K",
       "presence: a member without IS-K contacts meets IS-K with chance "
       "1 - exp(-isk_reach x IS-K people / 1,000) a week",
       "[Ali] sleeper cells in at least 13 provinces (a stock: reach grows with IS-K's size); "
       "value fitted within 0.005-0.1 (ODD §9.1)"),
    _p("recruiter_share", 0.093, 0.0, 1.0, "share",
       "share of IS-K members (and of new recruits) who act as recruiters",
       "value fitted within 0.05-0.2 (ODD §9.1)"),
    _p("absorptive_capacity", 0.018, 0.0, 1.0, "people/person/week",
       "recruits IS-K can vet and absorb per week, per IS-K member (it screens recruits)",
       "brief 'Model v2' (a bounded, clandestine organisation); UN figures 4,000 -> 6,000 in "
       "two years imply an intake of a few thousand; value fitted within 0.005-0.03 (ODD §9.1)"),
    _p("isk_ceiling", 12_000.0, 1.0, 10_000_000.0, "people",
       "size at which IS-K stops admitting recruits: its weekly intake per member falls "
       "linearly with its size, to 0 here (switch security)",
       "Shapiro (2013) security-efficiency trade-off (a larger clandestine group is easier to "
       "penetrate and harder to control); order of magnitude: IS-K reported at about 2,000 "
       "to 6,000 since 2015 (UN Monitoring Team reports); level assumption, twice the "
       "largest reported strength (prior 6,000-24,000)"),
    _p("desertion_rate", 0.1, 0.0, 1.0, "1/week",
       "chance a disaffected member whom IS-K does not take deserts (goes home, abroad or to "
       "the armed opposition)",
       "brief 'Model v2' (part-time and seasonal fighters; NRF [Ali, Introduction]); Seymour "
       "(2014); size assumption (prior 0.02-0.3)"),
    _p("return_rate", 0.05, 0.0, 1.0, "1/week",
       "chance a deserter whose pressure is back below his threshold returns",
       "Christia (2012) factions realign by relative power; size assumption (prior 0-0.2)"),
    _p("isk_desertion", 0.002, 0.0, 1.0, "1/week",
       "chance an IS-K member deserts or surrenders each week",
       "brief 'Model v2'; size assumption (prior 0-0.01)"),
    # regime state
    _p("resources_initial", 0.3, 0.0, 1.0, "[0,1]", "regime resources at week 0 (aid, revenue)",
       "[Ali] 18.4 M people in need of aid (2021)"),
    _p("resources_base", 0.2, 0.0, 1.0, "[0,1]", "resources without aid-winning policies",
       "[Ali] aid need 18.4 -> 24.4 -> 28.3 M"),
    _p("aid_womens_rights", 0.3, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit women's rights", "[Ali, Conclusion]; donors' conditions"),
    _p("aid_inclusion", 0.2, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit inclusion (recognition)", "[Ali, Conclusion] engage the "
       "international community"),
    _p("aid_crackdown", 0.2, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit mean crackdown on allies", "[Ali] neighbours and donors"),
    _p("aid_cooperation", 0.1, 0.0, 1.0, "[0,1]/lever",
       "resources won per unit foreign CT cooperation"),
    _p("resource_adjustment", 0.05, 0.0, 1.0, "1/week",
       "share of the gap to target resources closed each week"),
    _p("legitimacy_initial", 0.5, 0.0, 1.0, "[0,1]", "regime legitimacy at week 0"),
    _p("legitimacy_inclusion", 0.2, 0.0, 0.5, "[0,1]/lever",
       "rise of the legitimacy the regime recovers toward, per unit inclusion",
       "[Ali, Conclusion] inclusion gives 'more space to attain political legitimacy'; "
       "size assumption (prior 0-0.3)"),
    _p("legitimacy_hit", 0.002, 0.0, 0.1, "per attack",
       "legitimacy lost per IS-K attack of mean severity", "[Pereira] attacks erode credibility"),
    _p("legitimacy_recovery", 0.05, 0.0, 1.0, "1/week",
       "share of the gap to the reference legitimacy closed each week"),
    # IS-K
    _p("isk_size", 2_200, 0, 1_000_000, "people", "IS-K members at week 0",
       "UN Secretary-General report, early 2022: about 2,200 before the releases"),
    _p("release_week", 1, -1, 10_000, "week", "week of the prisoner release (-1: none)",
       "[Pereira] thousands of IS-K fighters freed in August 2021"),
    _p("release_isk", 1_800, 0, 1_000_000, "people", "IS-K fighters freed by a release",
       "UN SG report: about 2,200 -> approaching 4,000"),
    _p("release_ttp", 2_300, 0, 1_000_000, "people", "TTP prisoners freed by a release",
       "[Ali] more than 2,300 TTP prisoners released"),
    _p("attrition_rate", 0.003, 0.0, 1.0, "1/week",
       "chance an IS-K member is killed or captured per week at full counter-IS-K effort",
       "[Ali] operations killed 'hundreds' of IS-K militants by end 2022; value fitted "
       "within 0.001-0.01 (ODD §9.1)"),
    _p("recruiter_attrition", 1.5, 0.0, 10.0, "multiplier",
       "how much more exposed recruiters are to counter-IS-K operations"),
    _p("aid_dependence", 0.5, 0.0, 1.0, "share",
       "share of counter-IS-K capacity funded by resources (aid)", "[Ali, Conclusion]"),
    _p("capacity_inclusion", 0.5, 0.0, 2.0, "capacity/lever",
       "extra counter-IS-K capacity per unit inclusion (local intelligence, cooperation)",
       "[Ali, Conclusion] inclusion would 'enable the Taliban to tackle the IS-K'; size "
       "assumption (prior 0-1)"),
    _p("attack_rate", 48.0, 0.0, 100.0, "attacks/week/1000",
       "IS-K attacks per week per 1,000 members at full leadership, all effort at home, no "
       "counter-IS-K pressure", "fitted (ODD §9.1) to 136 attacks in the first four months and "
       "141-181 in 2022 [Ali] (prior 20-100)"),
    _p("attack_suppression", 5.6, 0.0, 20.0, "1/lever",
       "exponential fall of the attack rate with effective counter-IS-K effort",
       "fitted with attack_rate (ODD §9.1; prior 1-10)"),
    _p("provocation_strength", 0.5, 0.0, 5.0, "1/lever",
       "relative rise of IS-K's attacks per unit of the Taliban courting the West (mean of "
       "women's rights and foreign cooperation)",
       "[Pereira] courting the West 'will only further infuriate Daesh and lead to the group "
       "staging more attacks'; size assumption (prior 0-1)"),
    _p("taliban_target_share", 0.72, 0.0, 1.0, "share", "share of IS-K attacks aimed at the "
       "Taliban", "[Ali] >72% of 170 attacks in 2022; 96 of 136"),
    _p("decapitation_week", 78, -1, 10_000, "week",
       "week IS-K loses a leader to a dated event (-1: none)",
       "[Ali] Qari Fateh, intelligence and operations chief, killed February 2023 (week 78)"),
    _p("decapitation_hazard", 0.005, 0.0, 1.0, "1/week/lever",
       "further chance per week, per unit effective counter-IS-K effort, of a leadership loss",
       "Jordan (2009) decapitation; size assumption (prior 0-0.02)"),
    _p("decapitation_loss", 0.5, 0.0, 1.0, "share",
       "share of attack capacity a leadership loss removes",
       "Jordan (2009): effects depend on age, size and type; size assumption (prior 0.1-0.8)"),
    _p("leadership_recovery", 0.02, 0.0, 1.0, "1/week",
       "share of lost attack capacity IS-K rebuilds each week", "assumption (prior 0.005-0.1)"),
    _p("external_max", 0.63, 0.0, 1.0, "share",
       "largest share of IS-K's attack effort spent abroad (Iran, Russia, Central Asia, "
       "Pakistan), reached at full counter-IS-K effort",
       "[Ali] strikes in Uzbekistan, Tajikistan, Iran (2022), Bajaur (2023), Moscow (2024); "
       "value fitted within 0-0.8 (ODD §9.1)"),
    _p("external_adjustment", 0.03, 0.0, 1.0, "1/week",
       "share of the gap to its target external share IS-K closes each week",
       "assumption (prior 0.01-0.1)"),
    _p("attack_concentration", 1.5, 0.0, 10.0, "1/share",
       "tactics: as IS-K turns to operations abroad it stages fewer, larger attacks at home; "
       "attacks at home are divided, and each attack's severity multiplied, by "
       "1 + attack_concentration x its external share (switch tactics)",
       "UN Monitoring Team (2024): fewer attacks inside Afghanistan, more and larger ones "
       "abroad (Kerman, January 2024; Moscow, March 2024) while IS-K's strength held; size "
       "assumption (prior 0-3)"),
    _p("cell_events", 0.2, 0.0, 10.0, "1/member/week",
       "coalescence-fragmentation events per IS-K member per week", "Bohorquez et al. (2009)"),
    _p("fragmentation", 0.01, 0.0, 1.0, "probability",
       "chance an event shatters a cell rather than merging it", "Bohorquez et al. (2009) nu"),
    _p("fragmentation_ops", 0.05, 0.0, 1.0, "probability/lever",
       "extra shattering chance per unit effective counter-IS-K effort"),
    # adaptive leadership
    _p("adaptive_leadership", False, unit="switch",
       meaning="the leadership sets women's rights, inclusion, crackdowns and cooperation "
       "each week"),
    _p("adaptive_step", 0.05, 0.0, 1.0, "lever/week", "largest weekly lever change it makes"),
    _p("risk_aversion", 5.0, 0.0, 100.0, "aid/defection",
       "weight of defection risk against resources in the leadership's choice"),
    # data
    _p("collect_agent_data", "auto", unit="switch",
       meaning="record agent reporters (loyalty, group, faction, allegiance, people) each week; "
       f"auto: on up to {AGENT_DATA_LIMIT:,} agents at the start (about 0.5 µs and 60 bytes "
       "per agent per week)", choices=("auto", "on", "off")),
]
# fmt: on

MECHANISMS: dict[str, str] = {
    "outbidding": "women's rights beyond tolerance and foreign cooperation offend hardliners (1)",
    "heterogeneity": "members differ in traits within their group (2)",
    "recruitment": "IS-K recruiters expose and reach their contacts; recruits recruit (3)",
    "peer_influence": "relative-agreement influence on loyalty over the network (4)",
    "cascade": "contacts who have left add defection pressure (Granovetter) (4)",
    "material": "resources above the reference raise loyalty (5)",
    "legitimacy": "IS-K attacks erode legitimacy, and grievance then lowers loyalty (6)",
    "pashtunwali": "acting against guests costs more among Pashtuns (7)",
    "attrition": "counter-IS-K operations remove IS-K members, within the regime's capacity (8)",
    "fraternity": "crackdowns offend the members tied to the targeted group",
    "repression": "crackdowns and the witch-hunt push their targets away",
    "reach": "a member can only join IS-K when IS-K reaches him (contacts or presence)",
    "cells": "IS-K cells coalesce and fragment; attack severity = cell size",
    "inclusion_benefits": "inclusion raises legitimacy, recognition (aid), counter-IS-K "
    "capacity and the standing of the groups it includes (off: only its cost to the core)",
    "desertion": "disaffected members whom IS-K does not take desert; deserters may return",
    "absorption": "IS-K's intake is limited by its absorptive capacity",
    "isk_destination": "IS-K takes defectors (off: discontent can only lead to desertion)",
    "provocation": "IS-K attacks more when the Taliban court the West [Pereira]",
    "decapitation": "leadership losses cut IS-K's attack capacity for a time",
    "external_operations": "IS-K shifts attack effort abroad under counter-IS-K pressure",
    "security": "IS-K admits fewer recruits as it grows, none beyond its ceiling (Shapiro 2013)",
    "tactics": "with effort abroad, IS-K stages fewer, larger attacks at home",
}

_SWITCHES = [
    _p(name, True, unit="switch", meaning=f"mechanism on: {text}", source="[brief, mechanisms]")
    for name, text in MECHANISMS.items()
]

LEVER_MEANING = {
    "womens_rights": "women's rights and girls' education (a doctrinal concession) "
    "[Ali, Moderation Dilemma]",
    "inclusion": "power sharing with non-Pashtun groups and the political opposition "
    "[Ali, Conclusion]",
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
        f"{LEVER_MEANING[name]}; observable acts per level in ODD §7.1; presets set timelines",
        "policy lever",
    )
    for name in LEVERS
]

CALIBRATED_TRAITS = {"ttp_threshold"}  # fitted to the TTP staying loyal (docs/ODD.md §9.1)


def _trait_source(group: Group, trait: str) -> str:
    if f"{group.name}_{trait}" in CALIBRATED_TRAITS:
        return "calibrated (C10): the TTP largely loyal while sheltered (UN 1988 Monitoring Team)"
    if trait in ("ttp_affinity", "aq_affinity", "uyghur_affinity"):
        return (
            "[Ali, Counter-Terrorism Dilemma] (pro-TTP lobby crosses cleavages; Al-Qaeda via "
            "the Haqqanis); level assumption"
        )
    if trait == "inclusion_stake":
        return "brief 'Model v2' [Ali, Conclusion] (sign); level assumption"
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

# Names of earlier versions: each maps to the parameters it now sets (docs/ODD.md §8).
ALIASES: dict[str, tuple[str, ...]] = {"moderation": ("womens_rights", "inclusion")}
RENAMED: dict[str, str] = {"cascade_strength": "contagion_weight", "walk_in": "isk_reach"}


class _ParamsBase:
    """Methods of the frozen parameter object (its fields are generated below)."""

    __slots__ = ()

    def trait(self, group: str, trait: str) -> Any:
        """A group's trait mean, e.g. ``p.trait('kabul', 'hardline')``."""
        return getattr(self, f"{group}_{trait}")

    def as_dict(self) -> dict[str, Any]:
        """Every parameter by name (for records and provenance)."""
        return {name: getattr(self, name) for name in PARAMETERS}

    def replace(self, **changes: Any) -> Params:
        """A copy with ``changes`` validated and applied."""
        return resolve(self.as_dict() | changes)

    @staticmethod
    def describe(name: str) -> Parameter:
        """A field's unit, range, meaning and source (its entry in the registry)."""
        return PARAMETERS[name]


_GENERATED = (
    "# --- generated from PARAMETERS by `make params`; do not edit ---\n",
    "# --- end of generated code ---\n",
)


def params_class_source() -> str:
    """The source of :class:`Params`: one typed field per registry entry, unit and range beside it.

    Generated rather than built at run time (``make_dataclass``) so that type checkers
    see every field; ``tests/test_types.py`` checks that the committed class is current.
    """
    lines = [
        "@dataclass(frozen=True, slots=True)",
        "class Params(_ParamsBase):",
        '    """Every model parameter as a typed, frozen attribute (a typo is an AttributeError).',
        "",
        "    Built by :func:`resolve`; each field's unit, range, meaning and source are in",
        "    ``PARAMETERS`` (``Params.describe(name)``) and in docs/ODD.md.",
        '    """',
        "",
    ]
    for p in PARAMETERS.values():
        if p.choices:
            kind = "Literal[" + ", ".join(f'"{c}"' for c in p.choices) + "]"
        else:
            kind = p.kind.__name__
        note = "; ".join(part for part in (p.unit, p.allowed()) if part)
        lines.append(f"    {p.name}: {kind}  # {note}")
    return "\n".join(lines) + "\n"


def write_params_class(path: Path = Path(__file__)) -> bool:
    """Rewrite the generated :class:`Params` in ``path``; whether anything changed."""
    text = path.read_text()
    start, end = (text.index(marker) + len(marker) for marker in _GENERATED)
    head, tail = text[:start], text[end - len(_GENERATED[1]) :]
    new = head + "\n\n" + params_class_source() + "\n\n" + tail
    if new == text:
        return False
    path.write_text(new)
    return True


# --- generated from PARAMETERS by `make params`; do not edit ---


@dataclass(frozen=True, slots=True)
class Params(_ParamsBase):
    """Every model parameter as a typed, frozen attribute (a typo is an AttributeError).

    Built by :func:`resolve`; each field's unit, range, meaning and source are in
    ``PARAMETERS`` (``Params.describe(name)``) and in docs/ODD.md.
    """

    population: int  # agents; an integer in [10, 5,000,000]
    start_date: str  # date; a date YYYY-MM-DD from 1900-01-01 to 2200-12-31
    min_group_agents: int  # agents; an integer in [0, 1,000]
    network: Literal["clustered", "complete"]  # one of clustered, complete
    ties_within: int  # ties; an integer in [0, 100]
    ties_between: int  # ties; an integer in [0, 100]
    recruiter_ties: int  # ties; an integer in [0, 1,000]
    trait_spread: float  # sd; a number in [0, 0.5]
    tolerance_spread: float  # sd; a number in [0, 0.3]
    threshold_spread: float  # sd; a number in [0, 0.5]
    loyalty_adjustment: float  # 1/week; a number in [0, 1]
    outbidding_strength: float  # loyalty/lever; a number in [0, 5]
    fraternity_strength: float  # loyalty/lever; a number in [0, 5]
    repression_strength: float  # loyalty/lever; a number in [0, 5]
    propaganda_strength: float  # loyalty/lever; a number in [0, 5]
    pashtunwali_strength: float  # multiplier; a number in [0, 5]
    material_strength: float  # loyalty/resource; a number in [0, 5]
    legitimacy_strength: float  # loyalty; a number in [0, 5]
    inclusion_strength: float  # loyalty/lever; a number in [0, 5]
    recruitment_strength: float  # loyalty; a number in [0, 5]
    contagion_weight: float  # pressure/share; a number in [0, 5]
    peer_interactions: float  # 1/week; a number in [0, 20]
    influence_rate: float  # mu; a number in [0, 0.5]
    uncertainty: float  # opinion units; a number in [0.01, 2]
    extremist_uncertainty: float  # opinion units; a number in [0.01, 2]
    extremist_hardline: float  # [0,1]; a number in [0, 1]
    isk_reach: float  # 1/week per 1,000 IS-K; a number in [0, 10]
    recruiter_share: float  # share; a number in [0, 1]
    absorptive_capacity: float  # people/person/week; a number in [0, 1]
    isk_ceiling: float  # people; a number in [1, 1e+07]
    desertion_rate: float  # 1/week; a number in [0, 1]
    return_rate: float  # 1/week; a number in [0, 1]
    isk_desertion: float  # 1/week; a number in [0, 1]
    resources_initial: float  # [0,1]; a number in [0, 1]
    resources_base: float  # [0,1]; a number in [0, 1]
    aid_womens_rights: float  # [0,1]/lever; a number in [0, 1]
    aid_inclusion: float  # [0,1]/lever; a number in [0, 1]
    aid_crackdown: float  # [0,1]/lever; a number in [0, 1]
    aid_cooperation: float  # [0,1]/lever; a number in [0, 1]
    resource_adjustment: float  # 1/week; a number in [0, 1]
    legitimacy_initial: float  # [0,1]; a number in [0, 1]
    legitimacy_inclusion: float  # [0,1]/lever; a number in [0, 0.5]
    legitimacy_hit: float  # per attack; a number in [0, 0.1]
    legitimacy_recovery: float  # 1/week; a number in [0, 1]
    isk_size: int  # people; an integer in [0, 1,000,000]
    release_week: int  # week; an integer in [-1, 10,000]
    release_isk: int  # people; an integer in [0, 1,000,000]
    release_ttp: int  # people; an integer in [0, 1,000,000]
    attrition_rate: float  # 1/week; a number in [0, 1]
    recruiter_attrition: float  # multiplier; a number in [0, 10]
    aid_dependence: float  # share; a number in [0, 1]
    capacity_inclusion: float  # capacity/lever; a number in [0, 2]
    attack_rate: float  # attacks/week/1000; a number in [0, 100]
    attack_suppression: float  # 1/lever; a number in [0, 20]
    provocation_strength: float  # 1/lever; a number in [0, 5]
    taliban_target_share: float  # share; a number in [0, 1]
    decapitation_week: int  # week; an integer in [-1, 10,000]
    decapitation_hazard: float  # 1/week/lever; a number in [0, 1]
    decapitation_loss: float  # share; a number in [0, 1]
    leadership_recovery: float  # 1/week; a number in [0, 1]
    external_max: float  # share; a number in [0, 1]
    external_adjustment: float  # 1/week; a number in [0, 1]
    attack_concentration: float  # 1/share; a number in [0, 10]
    cell_events: float  # 1/member/week; a number in [0, 10]
    fragmentation: float  # probability; a number in [0, 1]
    fragmentation_ops: float  # probability/lever; a number in [0, 1]
    adaptive_leadership: bool  # switch; true or false
    adaptive_step: float  # lever/week; a number in [0, 1]
    risk_aversion: float  # aid/defection; a number in [0, 100]
    collect_agent_data: Literal["auto", "on", "off"]  # switch; one of auto, on, off
    outbidding: bool  # switch; true or false
    heterogeneity: bool  # switch; true or false
    recruitment: bool  # switch; true or false
    peer_influence: bool  # switch; true or false
    cascade: bool  # switch; true or false
    material: bool  # switch; true or false
    legitimacy: bool  # switch; true or false
    pashtunwali: bool  # switch; true or false
    attrition: bool  # switch; true or false
    fraternity: bool  # switch; true or false
    repression: bool  # switch; true or false
    reach: bool  # switch; true or false
    cells: bool  # switch; true or false
    inclusion_benefits: bool  # switch; true or false
    desertion: bool  # switch; true or false
    absorption: bool  # switch; true or false
    isk_destination: bool  # switch; true or false
    provocation: bool  # switch; true or false
    decapitation: bool  # switch; true or false
    external_operations: bool  # switch; true or false
    security: bool  # switch; true or false
    tactics: bool  # switch; true or false
    womens_rights: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    inclusion: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    crackdown_ttp: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    crackdown_uyghur: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    crackdown_aq: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    foreign_cooperation: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    counter_isk: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    witch_hunt: Schedule  # [0,1]; a lever schedule with values in [0, 1]
    kandahar_size: int  # people; an integer in [0, 10,000,000]
    kandahar_hardline: float  # [0,1]; a number in [0, 1]
    kandahar_loyalty: float  # [0,1]; a number in [0, 1]
    kandahar_threshold: float  # [0,1]; a number in [0, 1]
    kandahar_pashtun: float  # share; a number in [0, 1]
    kandahar_ttp_affinity: float  # [0,1]; a number in [0, 1]
    kandahar_aq_affinity: float  # [0,1]; a number in [0, 1]
    kandahar_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    kandahar_materialism: float  # [0,1]; a number in [0, 1]
    kandahar_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    kabul_size: int  # people; an integer in [0, 10,000,000]
    kabul_hardline: float  # [0,1]; a number in [0, 1]
    kabul_loyalty: float  # [0,1]; a number in [0, 1]
    kabul_threshold: float  # [0,1]; a number in [0, 1]
    kabul_pashtun: float  # share; a number in [0, 1]
    kabul_ttp_affinity: float  # [0,1]; a number in [0, 1]
    kabul_aq_affinity: float  # [0,1]; a number in [0, 1]
    kabul_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    kabul_materialism: float  # [0,1]; a number in [0, 1]
    kabul_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    haqqani_size: int  # people; an integer in [0, 10,000,000]
    haqqani_hardline: float  # [0,1]; a number in [0, 1]
    haqqani_loyalty: float  # [0,1]; a number in [0, 1]
    haqqani_threshold: float  # [0,1]; a number in [0, 1]
    haqqani_pashtun: float  # share; a number in [0, 1]
    haqqani_ttp_affinity: float  # [0,1]; a number in [0, 1]
    haqqani_aq_affinity: float  # [0,1]; a number in [0, 1]
    haqqani_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    haqqani_materialism: float  # [0,1]; a number in [0, 1]
    haqqani_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    tajik_size: int  # people; an integer in [0, 10,000,000]
    tajik_hardline: float  # [0,1]; a number in [0, 1]
    tajik_loyalty: float  # [0,1]; a number in [0, 1]
    tajik_threshold: float  # [0,1]; a number in [0, 1]
    tajik_pashtun: float  # share; a number in [0, 1]
    tajik_ttp_affinity: float  # [0,1]; a number in [0, 1]
    tajik_aq_affinity: float  # [0,1]; a number in [0, 1]
    tajik_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    tajik_materialism: float  # [0,1]; a number in [0, 1]
    tajik_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    uzbek_size: int  # people; an integer in [0, 10,000,000]
    uzbek_hardline: float  # [0,1]; a number in [0, 1]
    uzbek_loyalty: float  # [0,1]; a number in [0, 1]
    uzbek_threshold: float  # [0,1]; a number in [0, 1]
    uzbek_pashtun: float  # share; a number in [0, 1]
    uzbek_ttp_affinity: float  # [0,1]; a number in [0, 1]
    uzbek_aq_affinity: float  # [0,1]; a number in [0, 1]
    uzbek_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    uzbek_materialism: float  # [0,1]; a number in [0, 1]
    uzbek_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    ttp_size: int  # people; an integer in [0, 10,000,000]
    ttp_hardline: float  # [0,1]; a number in [0, 1]
    ttp_loyalty: float  # [0,1]; a number in [0, 1]
    ttp_threshold: float  # [0,1]; a number in [0, 1]
    ttp_pashtun: float  # share; a number in [0, 1]
    ttp_ttp_affinity: float  # [0,1]; a number in [0, 1]
    ttp_aq_affinity: float  # [0,1]; a number in [0, 1]
    ttp_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    ttp_materialism: float  # [0,1]; a number in [0, 1]
    ttp_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    uyghur_size: int  # people; an integer in [0, 10,000,000]
    uyghur_hardline: float  # [0,1]; a number in [0, 1]
    uyghur_loyalty: float  # [0,1]; a number in [0, 1]
    uyghur_threshold: float  # [0,1]; a number in [0, 1]
    uyghur_pashtun: float  # share; a number in [0, 1]
    uyghur_ttp_affinity: float  # [0,1]; a number in [0, 1]
    uyghur_aq_affinity: float  # [0,1]; a number in [0, 1]
    uyghur_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    uyghur_materialism: float  # [0,1]; a number in [0, 1]
    uyghur_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    aq_imu_size: int  # people; an integer in [0, 10,000,000]
    aq_imu_hardline: float  # [0,1]; a number in [0, 1]
    aq_imu_loyalty: float  # [0,1]; a number in [0, 1]
    aq_imu_threshold: float  # [0,1]; a number in [0, 1]
    aq_imu_pashtun: float  # share; a number in [0, 1]
    aq_imu_ttp_affinity: float  # [0,1]; a number in [0, 1]
    aq_imu_aq_affinity: float  # [0,1]; a number in [0, 1]
    aq_imu_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    aq_imu_materialism: float  # [0,1]; a number in [0, 1]
    aq_imu_inclusion_stake: float  # [-1,1]; a number in [-1, 1]
    former_size: int  # people; an integer in [0, 10,000,000]
    former_hardline: float  # [0,1]; a number in [0, 1]
    former_loyalty: float  # [0,1]; a number in [0, 1]
    former_threshold: float  # [0,1]; a number in [0, 1]
    former_pashtun: float  # share; a number in [0, 1]
    former_ttp_affinity: float  # [0,1]; a number in [0, 1]
    former_aq_affinity: float  # [0,1]; a number in [0, 1]
    former_uyghur_affinity: float  # [0,1]; a number in [0, 1]
    former_materialism: float  # [0,1]; a number in [0, 1]
    former_inclusion_stake: float  # [-1,1]; a number in [-1, 1]


# --- end of generated code ---


def expand_aliases(overrides: dict[str, Any]) -> dict[str, Any]:
    """Map names of earlier versions to the parameters they now set (one-line errors)."""
    expanded = dict(overrides)
    for old, new in RENAMED.items():
        if old in expanded:
            raise ValueError(f"{old}: renamed to {new} in model v2 (see docs/ODD.md §8)")
    for alias, targets in ALIASES.items():
        if alias not in expanded:
            continue
        clash = [t for t in targets if t in overrides]
        if clash:
            raise ValueError(f"{alias}: sets {' and '.join(targets)}; give either it or them")
        try:  # validated under the name the user typed
            value = PARAMETERS[targets[0]].validate(expanded.pop(alias))
        except ValueError as error:
            raise ValueError(str(error).replace(targets[0], alias, 1)) from None
        expanded |= dict.fromkeys(targets, value)
    if isinstance(expanded.get("collect_agent_data"), (bool, np.bool_)):
        expanded["collect_agent_data"] = "on" if expanded["collect_agent_data"] else "off"
    return expanded


def resolve(overrides: dict[str, Any]) -> Params:
    """Defaults updated with validated ``overrides``; unknown names are refused."""
    values = {name: p.default for name, p in PARAMETERS.items()}
    for name, value in expand_aliases(overrides).items():
        if name not in PARAMETERS:
            raise ValueError(f"unknown parameter {name!r} (see docs/ODD.md, Parameters)")
        values[name] = PARAMETERS[name].validate(value)
    return Params(**values)


def collects_agent_data(p: Params) -> bool:
    """Whether agent reporters are recorded: 'auto' means up to AGENT_DATA_LIMIT agents."""
    if p.collect_agent_data == "auto":
        return p.population <= AGENT_DATA_LIMIT
    return p.collect_agent_data == "on"


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
