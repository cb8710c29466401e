"""Colours and short labels shared by the agents view and the charts.

One colour per origin group, in both views, so a reader matches a cluster to its line.
Red and black are kept for IS-K.
"""

from __future__ import annotations

GROUP_COLORS: dict[str, str] = {
    "kandahar": "#1f77b4",
    "kabul": "#17becf",
    "haqqani": "#2ca02c",
    "tajik": "#bcbd22",
    "uzbek": "#9467bd",
    "ttp": "#ff7f0e",
    "uyghur": "#e377c2",
    "aq_imu": "#8c564b",
    "former": "#7f7f7f",
}
ISK_COLOR = "#222222"
RECRUITER_COLOR = "#d62728"

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
}

LEVER_COLORS: dict[str, str] = {
    "moderation": "#1f77b4",
    "crackdown_ttp": "#ff7f0e",
    "crackdown_uyghur": "#e377c2",
    "crackdown_aq": "#8c564b",
    "foreign_cooperation": "#2ca02c",
    "counter_isk": "#222222",
    "witch_hunt": "#7f7f7f",
}
RELEASE_COLOR = "#d62728"

LEVER_LABELS: dict[str, str] = {
    "moderation": "Moderation (girls' schools, inclusion)",
    "crackdown_ttp": "Crackdown on the TTP",
    "crackdown_uyghur": "Crackdown on Uyghur militants",
    "crackdown_aq": "Crackdown on Al-Qaeda / IMU",
    "foreign_cooperation": "Foreign counter-terrorism cooperation",
    "counter_isk": "Counter-IS-K operations",
    "witch_hunt": "Witch-hunt of former officials",
}
