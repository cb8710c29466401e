"""Colours, labels and lever explanations shared by every part of the page.

Groups and levers are told apart by *different encodings*, never by the same colours:
each origin group has a colour of the Okabe–Ito palette (safe for the common colour-vision
deficiencies; two of Paul Tol's fill the places it lacks) and a line dash, while levers are
drawn in one neutral ink, each on its own labelled strip. Black is kept for IS-K.

Everything here is keyed by name with a fallback, so a group, lever or allegiance the
model adds later still gets a readable label and a colour (see :func:`group_color`).
"""

from __future__ import annotations

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

GROUP_COLORS: dict[str, str] = {
    "kandahar": OKABE_ITO["blue"],
    "kabul": OKABE_ITO["sky_blue"],
    "haqqani": OKABE_ITO["bluish_green"],
    "tajik": OKABE_ITO["yellow"],
    "uzbek": OKABE_ITO["reddish_purple"],
    "ttp": OKABE_ITO["orange"],
    # The palette has eight colours and black is IS-K's: two come from Paul Tol's
    # colour-blind-safe schemes, chosen so that every pair of groups stays at least
    # 16 CIELAB units apart under simulated protan-, deutan- and tritanopia.
    "uyghur": "#882255",  # wine
    "aq_imu": "#332288",  # indigo
    "former": OKABE_ITO["vermillion"],
}
# Line dash per group: a second, colour-free cue in the line charts.
GROUP_DASHES: dict[str, str] = {
    "kandahar": "solid",
    "kabul": "dashed",
    "haqqani": "solid",
    "tajik": "solid",
    "uzbek": "dashed",
    "ttp": "solid",
    "uyghur": "dotted",
    "aq_imu": "dashed",
    "former": "dotted",
}
FALLBACK_COLORS = ("#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499")
ISK_COLOR = OKABE_ITO["black"]
RECRUITER_COLOR = ISK_COLOR  # IS-K recruiters: black diamonds (shape, not a colour a group has)
LEVER_INK = "#3b4b5c"  # every lever strip: one neutral ink (levers are told apart by row)
MARK_INK = "#6b6b6b"  # vertical marks for moves, releases, the adaptive switch, a fork
COMPARE_NOTE = "dashed, paler: the comparison run"

SHORT_LABELS: dict[str, str] = {
    "kandahar": "Kandahar core",
    "kabul": "Kabul pragmatists",
    "haqqani": "Haqqani network",
    "tajik": "Tajik Taliban",
    "uzbek": "Uzbek commanders",
    "ttp": "TTP",
    "uyghur": "Uyghur (ETIM/TIP)",
    "aq_imu": "Al-Qaeda / IMU",
    "former": "Former officials",
    "isk": "IS-K",
}

ALLEGIANCE_LABELS: dict[str, str] = {
    "loyal": "loyal to the Taliban-led camp",
    "isk": "in IS-K",
    "removed": "killed or captured",
    "deserted": "deserted (gone home, abroad or to the armed opposition)",
}

LEVER_LABELS: dict[str, str] = {
    "womens_rights": "Women's rights and girls' education",
    "inclusion": "Inclusive government (power sharing)",
    "crackdown_ttp": "Crackdown on the TTP",
    "crackdown_uyghur": "Crackdown on Uyghur militants",
    "crackdown_aq": "Crackdown on Al-Qaeda / IMU",
    "foreign_cooperation": "Foreign counter-terrorism cooperation",
    "counter_isk": "Counter-IS-K operations",
    "witch_hunt": "Witch-hunt of former officials",
}

# What a lever's levels mean as acts one could observe: the table of docs/ODD.md §7.1
# ("Levers as observable acts"), which tests/test_viz_components.py keeps this in step with.
LEVER_HELP: dict[str, dict[float, str]] = {
    "womens_rights": {
        0.25: "primary schooling and some health work for women and girls tolerated",
        0.5: "girls' secondary schools reopened, women allowed in most paid work",
        1.0: "secondary and university education and public life open to women as before 2021",
    },
    "inclusion": {
        0.25: "a few non-Pashtun Taliban and technocrats in posts (as in the 2021 interim cabinet)",
        0.5: "non-Pashtun commanders and some former politicians in ministries and governorships",
        1.0: 'a negotiated national government with the opposition (the "inclusive government" of [Ali, Conclusion])',
    },
    "crackdown_ttp": {
        0.25: "pressing the TTP to stop attacks in Pakistan (mediation)",
        0.5: "moving its fighters and families away from the border, restricting movement",
        1.0: "arresting its commanders, expelling or handing them over to Pakistan",
    },
    "crackdown_uyghur": {
        0.25: "relocating Uyghur militants away from the Chinese border (late 2021)",
        0.5: "disarming and confining them",
        1.0: "handing them over to China",
    },
    "crackdown_aq": {
        0.25: "restraining Al-Qaeda/IMU from external plotting",
        0.5: "expelling their leaders from safe houses",
        1.0: "arresting or handing them over",
    },
    "foreign_cooperation": {
        0.25: "diplomatic contacts on security with neighbours",
        0.5: "intelligence sharing with China, Pakistan, Russia or Central Asia",
        1.0: "joint counter-terrorism operations with foreign powers, the US included",
    },
    "counter_isk": {
        0.25: "raids after attacks",
        0.5: "sustained provincial operations (Nangarhar, Kunar)",
        1.0: "a nationwide campaign with the regime's full security apparatus",
    },
    "witch_hunt": {
        0.25: "sporadic reprisals",
        0.5: "systematic searches and detentions of former officials",
        1.0: "mass killings and detentions of former security personnel",
    },
}


def group_color(name: str, index: int = 0) -> str:
    """A group's colour; a group the model adds later gets one from a colour-blind-safe spare."""
    return GROUP_COLORS.get(name, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])


def group_label(name: str) -> str:
    """A group's short label, or its name made readable."""
    return SHORT_LABELS.get(name, name.replace("_", " ").capitalize())


def lever_label(name: str) -> str:
    """A lever's label, or its name made readable."""
    return LEVER_LABELS.get(name, name.replace("_", " ").capitalize())


def allegiance_label(name: str) -> str:
    """An allegiance in words, or its name."""
    return ALLEGIANCE_LABELS.get(name, name.replace("_", " "))


def lever_help(name: str) -> list[tuple[float, str]]:
    """``(level, observable act)`` pairs for a lever; a generic scale if none is written."""
    levels = LEVER_HELP.get(name)
    if not levels:
        return [(0.0, "not used"), (0.5, "applied in part"), (1.0, "applied in full")]
    return [(0.0, "not used at all"), *sorted(levels.items())]


def plural(n: float, noun: str) -> str:
    """``1 week`` / ``2 weeks`` (no "1 weeks/s")."""
    return f"{n:,.0f} {noun}" if n == 1 else f"{n:,.0f} {noun}s"
