"""The actor groups of the model and the per-group traits that make them differ.

Every agent belongs to one origin group. Taliban factions, allied militants and
former officials obey the same rules; they differ only in the trait values below
(share the rule, vary the parameters). Each trait becomes a model parameter named
``{group}_{trait}`` so that it can be swept, calibrated and documented like any other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """One origin group and its default traits (group means of per-agent values)."""

    name: str
    label: str
    kind: str  # the agent class that represents its members
    size: int  # people, August 2021
    hardline: float  # mean ideological hardness, 0 = pragmatist, 1 = IS-K-like
    loyalty: float  # mean initial loyalty to the Taliban-led camp
    threshold: float  # mean defection threshold (Granovetter)
    pashtun: float  # share of Pashtuns (Pashtunwali obligations to guests)
    ttp_affinity: float  # mean tie to the TTP (the pro-TTP lobby)
    aq_affinity: float  # mean tie to Al-Qaeda / IMU
    uyghur_affinity: float  # mean tie to the Uyghur militants (ETIM/TIP)
    materialism: float  # mean weight of pay and resources in loyalty
    inclusion_stake: float  # standing a power-sharing government gives (+) or takes (-)
    lever: str | None  # the policy lever that acts against this group directly
    source: str


TALIBAN_FACTIONS = ("kandahar", "kabul", "haqqani", "tajik", "uzbek")

# fmt: off
GROUPS: tuple[Group, ...] = (
    Group(
        "kandahar", "Kandahar leadership core", "TalibanMember", 60_000,
        0.75, 0.85, 0.70, 0.97, 0.5, 0.3, 0.05, 0.3, -0.5, None,
        "[Ali, Moderation Dilemma] hardline core around Akhundzada; size share assumption",
    ),
    Group(
        "kabul", "Kabul pragmatists", "TalibanMember", 30_000,
        0.25, 0.80, 0.70, 0.90, 0.3, 0.1, 0.05, 0.6, 0.2, None,
        "[Ali, Moderation Dilemma; Conclusion] favour girls' education; size share assumption",
    ),
    Group(
        "haqqani", "Haqqani network", "TalibanMember", 37_500,
        0.70, 0.80, 0.65, 0.98, 0.8, 0.7, 0.05, 0.4, -0.2, None,
        "[Pereira] 'ideologically closer to the Islamic State'; TTP and Al-Qaeda ties [Ali]; "
        "share assumption",
    ),
    Group(
        "tajik", "Tajik Taliban", "TalibanMember", 15_000,
        0.55, 0.70, 0.65, 0.00, 0.3, 0.1, 0.1, 0.5, 0.6, None,
        "[Ali, Moderation Dilemma] tensions and IS-K links 2023-24; size share assumption",
    ),
    Group(
        "uzbek", "Uzbek commanders", "TalibanMember", 7_500,
        0.55, 0.65, 0.65, 0.00, 0.3, 0.2, 0.1, 0.5, 0.6, None,
        "[Ali, Moderation Dilemma] Qari Hekmatullah poached by IS-K; size share assumption",
    ),
    Group(
        "ttp", "TTP (in Afghanistan)", "TTPMilitant", 4_000,
        0.80, 0.80, 0.75, 0.95, 1.0, 0.5, 0.1, 0.3, 0.0, "crackdown_ttp",
        "UN 1988 Monitoring Team 2024: 6,000-6,500 incl. >2,300 released [Ali]",
    ),
    Group(
        "uyghur", "Uyghur militants (ETIM/TIP)", "UyghurMilitant", 500,
        0.80, 0.75, 0.65, 0.00, 0.1, 0.3, 1.0, 0.2, 0.0, "crackdown_uyghur",
        "UN Monitoring Team: about 500 fighters; drawn to IS-K by control [Ali]",
    ),
    Group(
        "aq_imu", "Al-Qaeda / IMU", "AlQaedaMilitant", 700,
        0.85, 0.80, 0.70, 0.00, 0.5, 1.0, 0.3, 0.2, 0.0, "crackdown_aq",
        "UN Monitoring Team: Al-Qaeda 400-600; IMU remnant assumption",
    ),
    Group(
        "former", "Former republic security personnel", "FormerOfficial", 5_000,
        0.10, 0.65, 0.70, 0.45, 0.0, 0.0, 0.0, 0.9, 0.8, "witch_hunt",
        "[Pereira] 'joining ISIS-K in droves'; at-risk pool size assumption",
    ),
)
# fmt: on

GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in GROUPS)
GROUP_INDEX: dict[str, int] = {name: i for i, name in enumerate(GROUP_NAMES)}
ISK = len(GROUPS)  # group code of original IS-K members
GROUP_LABELS: dict[str, str] = {g.name: g.label for g in GROUPS} | {"isk": "IS-K"}

TRAITS: dict[str, tuple[float, float, str, str]] = {
    # trait: (low, high, unit, meaning)
    "size": (0, 10_000_000, "people", "members in August 2021"),
    "hardline": (
        0.0,
        1.0,
        "[0,1]",
        "mean hardline-ness (tolerance of women's rights = 1 - hardline)",
    ),
    "loyalty": (0.0, 1.0, "[0,1]", "mean initial loyalty to the Taliban-led camp"),
    "threshold": (0.0, 1.0, "[0,1]", "mean defection threshold (Granovetter)"),
    "pashtun": (0.0, 1.0, "share", "share of Pashtuns (Pashtunwali duty to guests)"),
    "ttp_affinity": (0.0, 1.0, "[0,1]", "mean tie to the TTP (pro-TTP lobby)"),
    "aq_affinity": (0.0, 1.0, "[0,1]", "mean tie to Al-Qaeda / IMU"),
    "uyghur_affinity": (0.0, 1.0, "[0,1]", "mean tie to the Uyghur militants"),
    "materialism": (0.0, 1.0, "[0,1]", "mean weight of pay/resources in loyalty"),
    "inclusion_stake": (
        -1.0,
        1.0,
        "[-1,1]",
        "standing a power-sharing government gives (+) or takes (-)",
    ),
}

# The group trait each crackdown lever offends (the ties to the targeted group, [Ali]).
AFFINITY_TO: dict[str, str] = {
    "ttp": "ttp_affinity",
    "aq_imu": "aq_affinity",
    "uyghur": "uyghur_affinity",
}
