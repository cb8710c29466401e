"""The Taliban leadership's policy: lever schedules, live moves and one-off events.

A lever is a number in [0, 1]. Its course over the weeks is a :class:`Schedule`
(constant, step change, ramp, piecewise-linear or an explicit weekly list). A caller
(the browser, a script) may move a lever between steps; the move holds from the next
step on and is logged so that charts can mark it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

LEVERS: tuple[str, ...] = (
    "moderation",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
    "counter_isk",
    "witch_hunt",
)
EVENTS: tuple[str, ...] = ("prisoner_release",)


@dataclass(frozen=True)
class Schedule:
    """A lever's value by week: knots joined linearly, or held until the next knot."""

    weeks: tuple[float, ...]
    values: tuple[float, ...]
    linear: bool = True

    def __post_init__(self) -> None:
        if not self.weeks or len(self.weeks) != len(self.values):
            raise ValueError("schedule: needs as many weeks as values, at least one")
        if any(b < a for a, b in zip(self.weeks, self.weeks[1:], strict=False)):
            raise ValueError("schedule: weeks must not decrease")

    @classmethod
    def constant(cls, value: float) -> Schedule:
        """The same value every week."""
        return cls((0.0,), (float(value),))

    @classmethod
    def step(cls, before: float, after: float, week: int) -> Schedule:
        """``before`` until week ``week``, ``after`` from then on."""
        return cls((0.0, float(week)), (float(before), float(after)), linear=False)

    @classmethod
    def ramp(cls, start: float, end: float, first_week: int, last_week: int) -> Schedule:
        """Hold ``start``, move linearly to ``end`` between the two weeks, then hold."""
        return cls((float(first_week), float(last_week)), (float(start), float(end)))

    @classmethod
    def series(cls, values: list[float]) -> Schedule:
        """One value per week from week 0; the last one holds."""
        return cls(tuple(float(w) for w in range(len(values))), tuple(map(float, values)), False)

    @classmethod
    def piecewise(cls, knots: list[tuple[float, float]]) -> Schedule:
        """Linear interpolation between ``(week, value)`` knots."""
        return cls(tuple(float(w) for w, _ in knots), tuple(float(v) for _, v in knots))

    def at(self, week: float) -> float:
        """The lever's value in ``week``."""
        if self.linear:
            return float(np.interp(week, self.weeks, self.values))
        i = int(np.searchsorted(self.weeks, week, side="right")) - 1
        return self.values[max(i, 0)]

    def describe(self) -> str:
        """A compact text form that :func:`parse_schedule` reads back."""
        if len(self.values) == 1:
            return f"{self.values[0]:g}"
        kind = "piecewise" if self.linear else "hold"
        knots = ",".join(f"{w:g}:{v:g}" for w, v in zip(self.weeks, self.values, strict=True))
        return f"{kind}({knots})"


_CALL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


def parse_schedule(field_name: str, text: str) -> Schedule:
    """Read a lever schedule from text.

    Accepts ``0.4``, ``step(0.1,0.6,20)``, ``ramp(0.1,0.6,10,30)``, ``[0.1,0.2,0.3]``,
    ``piecewise(0:0.3,31:0.15)`` (linear) or ``hold(0:0.3,31:0.15)`` (held).
    """
    allowed = "a number, step(a,b,week), ramp(a,b,w1,w2), [v0,v1,...] or piecewise(w:v,...)"
    text = text.strip()
    try:
        if text.startswith("[") and text.endswith("]"):
            return Schedule.series([float(v) for v in text[1:-1].split(",") if v.strip()])
        match = _CALL.match(text)
        if not match:
            return Schedule.constant(float(text))
        name, args = match.group(1), [a for a in match.group(2).split(",") if a.strip()]
        if name in ("piecewise", "hold"):
            knots = [tuple(float(x) for x in a.split(":")) for a in args]
            return Schedule(tuple(k[0] for k in knots), tuple(k[1] for k in knots), name != "hold")
        numbers = [float(a) for a in args]
        if name == "step" and len(numbers) == 3:
            return Schedule.step(numbers[0], numbers[1], int(numbers[2]))
        if name == "ramp" and len(numbers) == 4:
            return Schedule.ramp(*numbers[:2], int(numbers[2]), int(numbers[3]))
    except (ValueError, IndexError):
        pass
    raise ValueError(f"{field_name}: must be {allowed} (got {text!r})")


def as_schedule(field_name: str, value: object) -> Schedule:
    """Accept a Schedule, a number, a list of weekly values or schedule text."""
    if isinstance(value, Schedule):
        schedule = value
    elif isinstance(value, str):
        schedule = parse_schedule(field_name, value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        schedule = Schedule.series([_number(field_name, v) for v in value])
    else:
        schedule = Schedule.constant(_number(field_name, value))
    for v in schedule.values:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{field_name}: lever values must be numbers in [0, 1] (got {v})")
    return schedule


def _number(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{field_name}: must be a number in [0, 1] (got {value!r})")
    return float(value)


@dataclass(frozen=True)
class Move:
    """A lever moved by a caller while the run goes on."""

    week: int
    lever: str
    value: float


@dataclass
class Policy:
    """The lever schedules in force, the caller's live moves and pending one-off events."""

    schedules: dict[str, Schedule]
    event_weeks: dict[str, list[int]] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    _overrides: dict[str, tuple[int, float]] = field(default_factory=dict)

    def levers_at(self, week: int) -> dict[str, float]:
        """Every lever's value in ``week``: the schedule, unless a caller moved it."""
        levers = {}
        for name, schedule in self.schedules.items():
            moved = self._overrides.get(name)
            levers[name] = moved[1] if moved and week >= moved[0] else schedule.at(week)
        return levers

    def move(self, lever: str, value: float, week: int) -> None:
        """Set ``lever`` to ``value`` from ``week`` on (the next step), keeping history."""
        if lever not in self.schedules:
            raise ValueError(f"lever: must be one of {', '.join(self.schedules)} (got {lever!r})")
        value = as_schedule(lever, value).values[0]
        self._overrides[lever] = (week, value)
        self.moves.append(Move(week, lever, value))

    def trigger(self, event: str, week: int) -> None:
        """Schedule a one-off ``event`` (e.g. a prisoner release) for ``week``."""
        if event not in EVENTS:
            raise ValueError(f"event: must be one of {', '.join(EVENTS)} (got {event!r})")
        self.event_weeks.setdefault(event, []).append(week)
        self.moves.append(Move(week, event, 1.0))

    def events_at(self, week: int) -> list[str]:
        """The one-off events that fall in ``week``."""
        return [name for name, weeks in self.event_weeks.items() if week in weeks]
