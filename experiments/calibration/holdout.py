"""Held-out patterns: what may be held out, the persistence forecast of each, and the score.

``defection calibrate --hold-out PATTERNS`` fits the model without the named patterns;
their bands are then a forecast test. A forecast is worth something only against a
naive one, so each held-out pattern is scored twice against its band: the model's
posterior-predictive runs on fresh seeds (the share inside the band), and a
**persistence forecast** — the last level the record gives before the pattern's
period, carried forward unchanged. Persistence is read from the reported record, not
from model runs: it is the forecast a reader could make with no model at all. Where
that earlier level is itself a band, the forecast is uniform over it and its share
inside the target band is the overlap (a point forecast is inside or not).

Some patterns have no persistence analogue: the first observation of a quantity (the
start is an input, and nothing earlier is reported), or a cumulative count or ratio
with no earlier figure. They can still be held out; their score is the model's alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.patterns import Pattern
from isk_defection.experiments.stats import wilson

_BAND = {p.name: p for p in pat.PATTERNS}
_WEEKS_2021, _WEEKS_2022 = pat.END_2021, pat.END_2022 - pat.END_2021  # 19 and 52 weeks


@dataclass(frozen=True)
class Persistence:
    """A persistence forecast: uniform over ``[low, high]`` (a point when they are equal)."""

    rule: str
    low: float
    high: float

    def share_inside(self, pattern: Pattern) -> float:
        """The share of this forecast inside the pattern's band."""
        if self.high == self.low:
            return float(pattern.low <= self.low <= pattern.high)
        overlap = min(self.high, pattern.high) - max(self.low, pattern.low)
        return max(overlap, 0.0) / (self.high - self.low)

    @property
    def point(self) -> float:
        """The forecast's centre."""
        return (self.low + self.high) / 2


def _carried(name: str, rule: str, factor: float = 1.0) -> Persistence:
    band = _BAND[name]
    return Persistence(rule, band.low * factor, band.high * factor)


# pattern -> its persistence forecast, or why it has none
PERSISTENCE: dict[str, Persistence | str] = {
    "isk_release": "none: the first IS-K figure after the start, and the start (2,200) and "
    "the release are inputs set from it",
    "isk_june_2023": _carried(
        "isk_release",
        "IS-K's level after the releases (week 4 band, 3,400-4,600) carried to June 2023",
    ),
    "isk_growth": Persistence(
        "no growth: IS-K's week-4 level carried to June 2023 (ratio 1)", 1.0, 1.0
    ),
    "attacks_2021": "none: the first attack count; nothing earlier is reported",
    "attacks_2022": _carried(
        "attacks_2021",
        f"the late-2021 attack rate (116-365 in {_WEEKS_2021} weeks) carried through the "
        f"{_WEEKS_2022} weeks of 2022",
        _WEEKS_2022 / _WEEKS_2021,
    ),
    "attack_fall": Persistence("2022's attack count carried into 2023 (ratio 1)", 1.0, 1.0),
    "isk_removed": "none: a cumulative count with no earlier figure",
    "taliban_to_isk": "none: a cumulative count with no earlier figure",
    "cohesion": Persistence(
        "the Taliban's loyal strength of August 2021 carried to the end of 2025 (ratio 1)",
        1.0,
        1.0,
    ),
    "isk_2024": _carried(
        "isk_june_2023",
        "IS-K's June 2023 level (band 3,400-6,900) carried through 2024",
    ),
    "ttp_loyal": Persistence(
        "the TTP's defection rate at the start (0) carried to the end of 2023", 0.0, 0.0
    ),
    "former_ratio": "none: a ratio of defection rates first observed in late 2021, with no "
    "earlier figure",
}
HOLDABLE = tuple(p.name for p in pat.CONSTRAINING)  # what a calibration may leave out


def parse(text: str) -> tuple[str, ...]:
    """``--hold-out``'s comma list: constraining pattern names, each once, in pattern order.

    Raises ``ValueError`` with ``must be ...`` (the command line names the option).
    """
    from isk_defection.experiments.options import suggest

    names = [n.strip() for n in text.split(",")]
    allowed = ", ".join(HOLDABLE)
    if not text.strip() or any(not n for n in names):
        raise ValueError(f"must be a comma list of pattern names, one or more of {allowed}")
    for name in names:
        if name not in HOLDABLE:
            why = " (it holds by construction and is not fitted)" if name in _BAND else ""
            raise ValueError(
                f"must be pattern names from {allowed} (got {name!r}{why}){suggest(name, HOLDABLE)}"
            )
    if len(set(names)) == len(HOLDABLE):
        raise ValueError(f"cannot hold out every pattern: leave at least one of {allowed}")
    return tuple(n for n in HOLDABLE if n in names)


def score(
    values: pd.DataFrame,
    held_out: Sequence[str],
    patterns: Sequence[Pattern] = pat.PATTERNS,
    persistence: Mapping[str, Persistence | str] = PERSISTENCE,
) -> pd.DataFrame:
    """Per held-out pattern: the model's predictive share inside its band, and persistence's.

    ``values`` has one row per posterior-predictive run and a column per pattern. The
    verdict compares persistence's share with the model's Wilson 95% interval: the model
    *beats* persistence when the interval lies above it, is *worse* when below, and is
    *no different* otherwise.
    """
    by_name = {p.name: p for p in patterns}
    rows = []
    for name in held_out:
        p = by_name[name]
        data = values[name].to_numpy(float)
        inside = int(np.sum((data >= p.low) & (data <= p.high)))
        runs = len(data)
        low, high = wilson(inside, runs) if runs else (np.nan, np.nan)
        finite = data[np.isfinite(data)]
        q5, median, q95 = np.quantile(finite, [0.05, 0.5, 0.95]) if len(finite) else [np.nan] * 3
        forecast = persistence.get(name, "none")
        model_inside = inside / runs if runs else np.nan
        row: dict[str, object] = {
            "pattern": name,
            "band": p.band(),
            "runs": runs,
            "model_inside": model_inside,
            "model_low": low,
            "model_high": high,
            "model_median": median,
            "model_q5": q5,
            "model_q95": q95,
        }
        if isinstance(forecast, Persistence):
            share = forecast.share_inside(p)
            if runs and low > share:
                verdict = "beats persistence"
            elif runs and high < share:
                verdict = "worse than persistence"
            else:
                verdict = "no different from persistence"
            row |= {
                "persistence": forecast.rule,
                "persistence_inside": share,
                "persistence_point": forecast.point,
                "persistence_point_miss": float(p.miss(np.array([forecast.point]))[0]),
                "skill": model_inside - share,
                "verdict": verdict,
            }
        else:
            row |= {
                "persistence": str(forecast),
                "persistence_inside": np.nan,
                "persistence_point": np.nan,
                "persistence_point_miss": np.nan,
                "skill": np.nan,
                "verdict": "no persistence analogue",
            }
        rows.append(row)
    return pd.DataFrame(rows)
