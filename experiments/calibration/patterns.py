"""The reported patterns the model is fitted to: each a band on a statistic of one run.

Weeks count from 15 August 2021 (week 0): week 4 = 12 Sep 2021, weeks 1-19 = the rest
of 2021, 20-71 = 2022, 72-124 = 2023, 96 = 18 June 2023, 150-202 = 2024, 229 = the end
of 2025. Every pattern says where its band comes from and whether it constrains the
parameters (``constraining``) or holds by construction (an input sets it); only
constraining patterns enter a fit. ``MODEL_BRIEF.md``, "Patterns for calibration".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from isk_defection.experiments.calibration.outcome import Outcome
from isk_defection.model.groups import GROUPS, TALIBAN_FACTIONS

RELEASE, JUNE_2023, END_2021, END_2022, END_2023 = 4, 96, 19, 71, 124
YEAR_2024 = (150, 202)
END = 229  # the last week read (end of 2025); runs are STEPS weeks long
STEPS = END + 1
_SIZE = {g.name: float(g.size) for g in GROUPS}


@dataclass(frozen=True)
class Pattern:
    """A reported fact as a band ``[low, high]`` on a statistic of one run.

    ``scale`` is the distance that counts as one unit of misfit (the band's width unless
    the band is open on one side); ``constraining`` is False when an input sets the
    statistic, so that the band holds by construction and is only reported.
    """

    name: str
    label: str
    statistic: Callable[[pd.DataFrame], pd.Series]  # outcomes table -> value per run
    low: float
    high: float
    reported: str
    source: str
    constraining: bool = True
    construction: str = ""
    scale: float | None = None

    @property
    def unit(self) -> float:
        """One unit of misfit: the band's width, or ``scale`` for an open band."""
        if self.scale is not None:
            return self.scale
        return self.high - self.low

    def miss(self, value: np.ndarray) -> np.ndarray:
        """Distance outside the band, in units of misfit (0 inside)."""
        value = np.asarray(value, float)
        outside = np.maximum(self.low - value, 0) + np.maximum(value - self.high, 0)
        return np.where(np.isfinite(value), outside / self.unit, np.inf)

    def band(self) -> str:
        """The band in words."""
        if np.isinf(self.high):
            return f">= {self.low:g}"
        if self.low <= 0 and self.name == "ttp_loyal":
            return f"<= {self.high:g}"
        return f"[{self.low:g}, {self.high:g}]"


def _column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda runs: runs[name]


def _ratio(top: str, bottom: str, floor: float = 1.0) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda runs: runs[top] / runs[bottom].clip(lower=floor)


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "isk_release",
        "IS-K after the releases (week 4, people)",
        _column("isk_release"),
        3_400,
        4_600,
        "about 2,200 -> approaching 4,000; band 4,000 +-15%",
        "UN Secretary-General report, early 2022",
        construction="the start (2,200) and the release (+1,800) are inputs set from this "
        "figure; it constrains only the first month's flows",
    ),
    Pattern(
        "isk_june_2023",
        "IS-K in June 2023 (week 96, people)",
        _column("isk_june_2023"),
        3_400,
        6_900,
        "4,000-6,000; band -15% / +15%",
        "[Ali, Moderation Dilemma], citing the UN Security Council (June 2023)",
    ),
    Pattern(
        "isk_growth",
        "IS-K growth, week 4 -> June 2023 (ratio)",
        _ratio("isk_june_2023", "isk_release"),
        1.0,
        1.73,
        "'grown from 4,000 to 6,000': grows, at most 1.5 +15%",
        "[Ali, Moderation Dilemma]",
    ),
    Pattern(
        "attacks_2021",
        "IS-K attacks, weeks 1-19 (late 2021)",
        _column("attacks_2021"),
        116,
        365,
        "136 in the first four months (-15%) up to 365 claimed for all 2021",
        "[Ali, Introduction]; Meir Amit Center",
    ),
    Pattern(
        "attacks_2022",
        "IS-K attacks in 2022 (weeks 20-71)",
        _column("attacks_2022"),
        120,
        208,
        "141 (Global Terrorism Index) to 181 (claims); band +-15%",
        "[Ali]; Meir Amit Center",
    ),
    Pattern(
        "attack_fall",
        "attacks 2023 / attacks 2022",
        _ratio("attacks_2023", "attacks_2022"),
        0.14,
        0.25,
        "a fall of 75-86% in 2023",
        "Meir Amit Center; BBC Monitoring (145 -> 20)",
    ),
    Pattern(
        "isk_removed",
        "IS-K killed or captured by the end of 2022 (week 71, people)",
        _column("isk_removed"),
        100,
        1_500,
        "'hundreds' killed, 'several' captured: hundreds to about 1,500",
        "[Ali, Moderation Dilemma]; [Pereira]",
    ),
    Pattern(
        "taliban_to_isk",
        "Taliban factions' people who joined IS-K by the end of 2023 (week 124)",
        _column("taliban_to_isk"),
        200,
        3_000,
        "hundreds to low thousands (named commanders; IS-K's whole inflow a few thousand)",
        "[Ali]; [Pereira]; the IS-K stock and loss figures",
    ),
    Pattern(
        "cohesion",
        "Taliban loyal strength, end of 2025 / August 2021",
        _ratio("taliban_end", "taliban_start"),
        0.9,
        1.0,
        "no faction broke away through 2025; loyal strength near its 2021 level (>= 0.9)",
        "UN 1988 Monitoring Team reports 2023-25 (order of magnitude)",
        scale=0.1,
    ),
    Pattern(
        "isk_2024",
        "IS-K in 2024 (mean over weeks 150-202, people)",
        _column("isk_2024"),
        2_000,
        6_000,
        "2,000-6,000 (member states split 4,000-6,000 vs 2,000-3,500)",
        "UN 1988 Monitoring Team, 34th report (2024)",
    ),
    Pattern(
        "ttp_loyal",
        "TTP defection rate by the end of 2023 (week 124)",
        _column("ttp_defection"),
        0.0,
        0.05,
        "largely loyal while sheltered: at most 5% defect",
        "UN 1988 Monitoring Team, 15th report (2024)",
    ),
    Pattern(
        "former_ratio",
        "former officials' defection rate / Taliban factions' (week 124)",
        _ratio("former_defection", "taliban_defection", floor=1e-9),
        1.0,
        np.inf,
        "joined IS-K 'in droves' in late 2021: their rate above the Taliban factions'",
        "[Pereira]",
        scale=1.0,
    ),
    Pattern(
        "taliban_share",
        "share of IS-K attacks aimed at the Taliban",
        _ratio("on_taliban", "attacks_all"),
        0.60,
        0.83,
        "96 of 136 (71%) and > 72% of 170; band +-15%",
        "[Ali]",
        constraining=False,
        construction="set directly by taliban_target_share = 0.72",
    ),
)
CONSTRAINING = tuple(p for p in PATTERNS if p.constraining)


def _weighted(groups: tuple[str, ...], column: str) -> dict[str, float]:
    return {f"{g}_{column}": _SIZE[g] for g in groups}


OUTCOMES: tuple[Outcome, ...] = (
    Outcome("isk_release", "IS-K week 4", {"isk_strength": 1.0}, "final", (0, RELEASE)),
    Outcome("isk_june_2023", "IS-K week 96", {"isk_strength": 1.0}, "final", (0, JUNE_2023)),
    Outcome("isk_2024", "IS-K 2024 mean", {"isk_strength": 1.0}, "mean", YEAR_2024),
    Outcome("attacks_2021", "attacks weeks 1-19", {"attacks": 1.0}, "total", (1, END_2021)),
    Outcome("attacks_2022", "attacks 2022", {"attacks": 1.0}, "total", (END_2021 + 1, END_2022)),
    Outcome("attacks_2023", "attacks 2023", {"attacks": 1.0}, "total", (END_2022 + 1, END_2023)),
    Outcome("attacks_all", "attacks", {"attacks": 1.0}, "total"),
    Outcome("on_taliban", "attacks on the Taliban", {"attacks_on_taliban": 1.0}, "total"),
    Outcome(
        "isk_removed",
        "IS-K removed by week 71",
        {"cumulative_isk_removed": 1.0},
        "final",
        (0, END_2022),
    ),
    Outcome(
        "taliban_to_isk",
        "Taliban factions' people to IS-K by week 124",
        dict.fromkeys((f"{g}_defections" for g in TALIBAN_FACTIONS), 1.0),
        "total",
        (0, END_2023),
        add=True,
    ),
    Outcome(
        "taliban_start", "Taliban loyal strength week 0", {"taliban_strength": 1.0}, "final", (0, 0)
    ),
    Outcome(
        "taliban_end",
        "Taliban loyal strength week 229",
        {"taliban_strength": 1.0},
        "final",
        (0, END),
    ),
    Outcome(
        "ttp_defection",
        "TTP defection rate week 124",
        {"ttp_defection_rate": 1.0},
        "final",
        (0, END_2023),
    ),
    Outcome(
        "former_defection",
        "former officials' defection rate week 124",
        {"former_defection_rate": 1.0},
        "final",
        (0, END_2023),
    ),
    Outcome(
        "taliban_defection",
        "Taliban factions' defection rate week 124",
        _weighted(TALIBAN_FACTIONS, "defection_rate"),
        "final",
        (0, END_2023),
    ),
)
COLUMNS = sorted({c for o in OUTCOMES for c in o.columns})


def measure(frame: pd.DataFrame) -> dict[str, float]:
    """Every outcome of one run from its weekly model columns (a ``step`` column)."""
    return {o.name: o.measure(frame) for o in OUTCOMES}


def pattern_values(runs: pd.DataFrame) -> pd.DataFrame:
    """Each pattern's statistic per run (rows of outcomes)."""
    return pd.DataFrame({p.name: p.statistic(runs).to_numpy() for p in PATTERNS}, runs.index)


def misses(values: pd.DataFrame, patterns: tuple[Pattern, ...] = CONSTRAINING) -> np.ndarray:
    """Distance outside each band, in units of misfit (rows: runs, columns: patterns)."""
    return np.column_stack([p.miss(values[p.name].to_numpy()) for p in patterns])


def table_markdown() -> str:
    """The patterns as a Markdown table: band, reported, source, role."""
    lines = [
        "| pattern | band | reported | source | role |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in PATTERNS:
        role = "constraining" if p.constraining else f"by construction ({p.construction})"
        lines.append(f"| {p.label} | {p.band()} | {p.reported} | {p.source} | {role} |")
    return "\n".join(lines)
