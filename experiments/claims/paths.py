"""Dose paths: a response read at every dose, its shape, where it appears and where it turns.

A dose-response claim runs one arm per dose of its lever under one master seed, so every
dose sees the same seeds (common random numbers) and two doses are compared pairwise
(across a posterior, the draws pair them instead). A *move* between two doses is a
difference of means whose bootstrap 95% interval excludes 0 and whose size is at least
the claim's declared negligible change; smaller or uncertain differences are flat within
noise. The legs of the path come from a zigzag over the doses in order: a leg starts at
the reference (lowest) dose or at a turning point, runs to the most extreme dose in its
direction, and ends when a later dose moves back from that extreme. So the shape is flat
(no leg), a rise or a fall (one leg), an inverted U or a U (two), or a zigzag; the dose
where the response first moves from the reference is where the effect *appears*, and the
end of the first leg, when another follows, is where it *reverses* (the peak or trough).

What a claim tests is declared with its checks, before the runs, as a ``PathPart``: the
doses it reads (say the low-dose part, 0 to 0.5) and what it expects there (a monotone
move, a net move, or a turn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from isk_defection.experiments.stats import Estimate, bootstrap_difference, bootstrap_mean

_TOLERANCE = 1e-9  # dose comparisons (doses are decimals such as 0.1 + 0.2)


class Expect(StrEnum):
    """What a check expects of the part of the path it tests."""

    MONOTONE = "monotone"  # moves only in the expected direction, and the end beyond the start
    NET = "net"  # the end beyond the start, whatever happens between (shape not decisive)
    TURN = "turn"  # moves in the expected direction, then back: one turning point


@dataclass(frozen=True)
class PathPart:
    """Which part of a dose path a check tests, and what it expects there."""

    low: float = 0.0
    high: float = 1.0
    expect: Expect = Expect.MONOTONE
    name: str = "the whole path"

    def contains(self, dose: float) -> bool:
        """Whether ``dose`` lies in this part (ends included)."""
        return self.low - _TOLERANCE <= dose <= self.high + _TOLERANCE

    def short(self, direction: int) -> str:
        """'the whole path, 0 to 1, for a monotone rise'."""
        rise, fall = ("rise", "fall") if direction > 0 else ("fall", "rise")
        wants = {
            Expect.MONOTONE: f"a monotone {rise}",
            Expect.NET: f"a net {rise}",
            Expect.TURN: f"a {rise} then a {fall}",
        }[self.expect]
        return f"{self.name}, {self.low:g} to {self.high:g}, for {wants}"

    def describe(self, direction: int) -> str:
        """The part and the expectation in words: 'the whole path, 0 to 1: a monotone rise'."""
        rise, fall = ("rise", "fall") if direction > 0 else ("fall", "rise")
        wants = {
            Expect.MONOTONE: f"a monotone {rise} (no significant {fall} anywhere)",
            Expect.NET: f"a net {rise} from its first dose to its last (the shape between "
            "is reported, not decisive)",
            Expect.TURN: f"a {rise}, then a {fall} (one turning point)",
        }[self.expect]
        return f"{self.name}, {self.low:g} to {self.high:g}: {wants}"


@dataclass(frozen=True)
class Leg:
    """A stretch of the path moving one way: from a dose to the most extreme dose after it."""

    start: float
    end: float
    sign: int  # +1 rises, -1 falls


@dataclass(frozen=True)
class DoseLevel:
    """The response at one dose: its mean and its effect against the reference dose."""

    dose: float
    level: Estimate  # mean outcome, 95% interval
    effect: Estimate  # minus the reference dose's mean (paired when the keys match)
    runs: int


@dataclass(frozen=True)
class Response:
    """A dose path read: the outcome at every dose, its legs, where it appears and turns."""

    levels: tuple[DoseLevel, ...]
    legs: tuple[Leg, ...]
    onset: float | None  # first dose that moves away from the reference
    onset_sign: int
    negligible: float
    plateau: float | None = None  # where the last leg levels off, if before the last dose

    @property
    def doses(self) -> tuple[float, ...]:
        """The doses in order; the first is the reference."""
        return tuple(level.dose for level in self.levels)

    @property
    def reversal(self) -> float | None:
        """The first turning dose (peak or trough), if the path reverses."""
        return self.legs[0].end if len(self.legs) > 1 else None

    @property
    def net(self) -> Estimate:
        """The last dose minus the reference dose."""
        return self.levels[-1].effect

    @property
    def kind(self) -> str:
        """flat, rises, falls, inverted U, U, or zigzag."""
        signs = tuple(leg.sign for leg in self.legs)
        kinds = {(): "flat", (1,): "rises", (-1,): "falls", (1, -1): "inverted U", (-1, 1): "U"}
        return kinds.get(signs, "zigzag")

    def mean_at(self, dose: float) -> float:
        """The mean outcome at ``dose``."""
        return next(lv.level.value for lv in self.levels if abs(lv.dose - dose) < _TOLERANCE)

    def shape(self) -> str:
        """The path in words: 'rises to 0.5, then falls'."""
        if not self.legs:
            return "is flat within noise"
        words = [f"{'rises' if leg.sign > 0 else 'falls'} to {leg.end:g}" for leg in self.legs]
        words[-1] = words[-1].split(" to ")[0]
        if self.plateau is not None:
            words[-1] += f" to {self.plateau:g}"
            words.append("levels off")
        if len(words) == 1:
            return words[0]
        return ", ".join(words[:-1]) + ", then " + words[-1]

    def text(self, subject: str = "the response") -> str:
        """One line: the shape, the means at its corners, and where the effect appears."""
        corners = [self.doses[0], *(leg.end for leg in self.legs[:-1])]
        corners += [d for d in (self.plateau, self.doses[-1]) if d is not None]
        values = ", ".join(f"{self.mean_at(d):.3g} at {d:g}" for d in corners)
        appears = (
            f"appears at dose {self.onset:g}" if self.onset is not None else "no dose moves it"
        )
        return f"{subject} {self.shape()} ({values}; {appears})"

    def passes(self, expect: Expect, direction: int) -> bool:
        """Whether this path meets the expectation in the expected direction."""
        signs = [leg.sign for leg in self.legs]
        net = moved(self.net, self.negligible) == direction
        if expect is Expect.MONOTONE:
            return signs == [direction] and net
        if expect is Expect.NET:
            return net
        return signs == [direction, -direction]

    def partly(self, direction: int) -> bool:
        """Whether some leg moves in the expected direction (a failed check that is half right)."""
        return any(leg.sign == direction for leg in self.legs)


def moved(difference: Estimate, negligible: float = 0.0) -> int:
    """+1 or -1 when the interval excludes 0 and the change is not negligible, else 0."""
    if abs(difference.value) < negligible or not np.isfinite(difference.value):
        return 0
    if difference.excludes_zero(+1):
        return 1
    return -1 if difference.excludes_zero(-1) else 0


def compare(before: pd.Series, after: pd.Series) -> Estimate:
    """Mean of ``after`` minus mean of ``before``: paired when both have the same unique keys."""
    paired = (
        before.index.is_unique and after.index.is_unique and set(before.index) == set(after.index)
    )
    if paired:
        return bootstrap_difference(after.loc[before.index].to_numpy(), before.to_numpy(), True)
    return bootstrap_difference(after.to_numpy(), before.to_numpy())


def samples(runs: pd.DataFrame, outcome: str, dose: str = "dose", key: str = "seed") -> dict:
    """The outcome at each dose as a Series indexed by the pairing key (seed or draw)."""
    doses = runs[dose].astype(float)
    return {
        float(level): runs.loc[doses == level].set_index(key)[outcome].astype(float)
        for level in sorted(doses.unique())
    }


def legs(doses: Sequence[float], values: Sequence[pd.Series], negligible: float = 0.0) -> list[Leg]:
    """The zigzag over the doses in order (see the module's docstring)."""
    means = [float(v.mean()) for v in values]
    found: list[Leg] = []
    anchor, extreme, sign = 0, 0, 0
    for i in range(1, len(doses)):
        if sign == 0:
            sign = moved(compare(values[anchor], values[i]), negligible)
            extreme = i
            continue
        if (means[i] - means[extreme]) * sign >= 0:
            extreme = i
        elif moved(compare(values[extreme], values[i]), negligible) == -sign:
            found.append(Leg(doses[anchor], doses[extreme], sign))
            between = range(extreme + 1, i + 1)  # the new leg's extreme so far
            anchor, sign = extreme, -sign
            extreme = max(between, key=lambda j: means[j] * sign)
    if sign != 0:
        found.append(Leg(doses[anchor], doses[extreme], sign))
    return found


def dose_path(by_dose: Mapping[float, pd.Series], negligible: float = 0.0) -> Response:
    """Read a dose path: ``by_dose`` maps each dose to its outcomes (indexed by pairing key)."""
    doses = sorted(by_dose)
    if len(doses) < 2:
        raise ValueError("a dose path needs at least two doses")
    values = [by_dose[d] for d in doses]
    reference = values[0]
    levels = tuple(
        DoseLevel(d, bootstrap_mean(v.to_numpy()), compare(reference, v), len(v))
        for d, v in zip(doses, values, strict=True)
    )
    onset, onset_sign = None, 0
    for level in levels[1:]:
        if sign := moved(level.effect, negligible):
            onset, onset_sign = level.dose, sign
            break
    found = legs(doses, values, negligible)
    plateau = _plateau(doses, values, found, negligible)
    return Response(levels, tuple(found), onset, onset_sign, negligible, plateau)


def _plateau(
    doses: Sequence[float], values: Sequence[pd.Series], found: Sequence[Leg], negligible: float
) -> float | None:
    """Where the last leg levels off (None if it does not before the last dose).

    Only a leg whose most extreme mean comes before the last dose levels off (a leg still
    at its extreme at the last dose rises, or falls, to the end: no evidence of a plateau
    in a move that is merely uncertain); it levels off at the first dose from which no
    later dose differs from that extreme.
    """
    if not found:
        return None
    start, extreme = doses.index(found[-1].start), doses.index(found[-1].end)
    if extreme == len(doses) - 1:
        return None
    for j in range(start + 1, len(doses)):
        rest = [k for k in range(j, len(doses)) if k != extreme]
        if all(moved(compare(values[extreme], values[k]), negligible) == 0 for k in rest):
            return doses[j] if j < len(doses) - 1 else None
    return None
