"""The Taliban leadership's policy: lever schedules, live moves and one-off events.

A lever is a number in [0, 1]. Its course over the weeks is a :class:`Schedule`
(constant, step change, ramp, piecewise-linear or an explicit weekly list). A caller
(the browser, a script) may move a lever between steps; the move holds from the next
step on and is logged so that charts can mark it.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

LEVERS: tuple[str, ...] = (
    "womens_rights",
    "inclusion",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
    "counter_isk",
    "witch_hunt",
)
EVENTS: tuple[str, ...] = ("prisoner_release", "decapitation")


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
        """The lever's value in ``week`` (linear: as ``numpy.interp``, in plain Python)."""
        i = bisect_right(self.weeks, week) - 1
        if i < 0:
            return self.values[0]
        if not self.linear or i == len(self.weeks) - 1:
            return self.values[i]
        (w0, w1), (v0, v1) = self.weeks[i : i + 2], self.values[i : i + 2]
        return (v1 - v0) / (w1 - w0) * (week - w0) + v0

    def describe(self) -> str:
        """A compact text form that :func:`parse_schedule` reads back to an equal Schedule.

        Numbers are written in their shortest exact form, so nothing is lost on the way
        to a file (run.json, a manifest, a sweep table) and back.
        """
        if self.weeks == (0.0,):
            return _text(self.values[0])
        kind = "piecewise" if self.linear else "hold"
        knots = ",".join(
            f"{_text(w)}:{_text(v)}" for w, v in zip(self.weeks, self.values, strict=True)
        )
        return f"{kind}({knots})"


def _text(number: float) -> str:
    """The shortest text that reads back as exactly ``number`` (``0.1``, not ``0.1000``)."""
    short = f"{number:g}"
    return short if float(short) == number else repr(float(number))


# A small grammar: anything it does not match in full is refused, never half-read.
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_CALL = re.compile(r"^(\w+)\((.*)\)$", re.DOTALL)
MAX_WEEK = 1_000_000  # weeks in a schedule: about 19,000 years, far beyond any run
SCHEDULE_FORMS = (
    "a number in [0, 1], step(before,after,week), ramp(start,end,first_week,last_week), "
    "[v0,v1,...] or piecewise(week:value,...)"
)


def parse_schedule(field_name: str, text: str) -> Schedule:
    """Read a lever schedule from text, refusing anything it does not fully understand.

    Accepts ``0.4``, ``step(0.1,0.6,20)``, ``ramp(0.1,0.6,10,30)``, ``[0.1,0.2,0.3]``,
    ``piecewise(0:0.3,31:0.15)`` (linear) or ``hold(0:0.3,31:0.15)`` (held). Spaces
    around items are allowed; empty items, extra fields, ``nan``/``inf``, weeks that are
    negative, fractional where a whole week is needed, decreasing or beyond
    ``MAX_WEEK``, and values outside [0, 1] are refused with one line naming the field.
    A silently half-read schedule would change the policy the user asked for.
    """
    if not isinstance(text, str):
        raise ValueError(f"{field_name}: must be {SCHEDULE_FORMS} (got {text!r})")
    body = text.strip()
    try:
        schedule = _parse(body)
    except _NotAScheduleError as refused:
        detail = f": {refused}" if str(refused) else ""
        raise ValueError(f"{field_name}: must be {SCHEDULE_FORMS}{detail} (got {text!r})") from None
    _check_values(field_name, schedule)
    return schedule


class _NotAScheduleError(Exception):
    """Text that is not a schedule (the message, if any, says which part)."""


def _parse(body: str) -> Schedule:
    if _NUMBER_RE.match(body):
        return Schedule.constant(_finite(body))
    if body.startswith("[") and body.endswith("]"):
        return Schedule.series([_finite(item) for item in _items(body[1:-1])])
    match = _CALL.match(body)
    if not match:
        raise _NotAScheduleError()
    name, args = match.group(1), _items(match.group(2))
    if name in ("piecewise", "hold"):
        knots = [_knot(item) for item in args]
        weeks = [w for w, _ in knots]
        if any(b < a for a, b in zip(weeks, weeks[1:], strict=False)):
            raise _NotAScheduleError("weeks must not decrease")
        return Schedule(tuple(weeks), tuple(v for _, v in knots), name == "piecewise")
    if name == "step":
        if len(args) != 3:
            raise _NotAScheduleError("step takes 3 numbers")
        return Schedule.step(_finite(args[0]), _finite(args[1]), _whole_week(args[2]))
    if name == "ramp":
        if len(args) != 4:
            raise _NotAScheduleError("ramp takes 4 numbers")
        first, last = _whole_week(args[2]), _whole_week(args[3])
        if last < first:
            raise _NotAScheduleError("last_week must not be before first_week")
        return Schedule.ramp(_finite(args[0]), _finite(args[1]), first, last)
    raise _NotAScheduleError(f"unknown form {name!r}")


def _items(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise _NotAScheduleError("empty item")
    return items


def _finite(item: str) -> float:
    if not _NUMBER_RE.match(item):
        raise _NotAScheduleError(f"{item!r} is not a number")
    value = float(item)
    if not math.isfinite(value):
        raise _NotAScheduleError(f"{item!r} is out of range")
    return value


def _week(item: str) -> float:
    week = _finite(item)
    if not 0 <= week <= MAX_WEEK:
        raise _NotAScheduleError(f"weeks must be in [0, {MAX_WEEK:,}]")
    return week


def _whole_week(item: str) -> int:
    """A week that must be a whole number (a step's or a ramp's week)."""
    week = _week(item)
    if not week.is_integer():
        raise _NotAScheduleError("weeks must be whole numbers")
    return int(week)


def _knot(item: str) -> tuple[float, float]:
    parts = item.split(":")
    if len(parts) != 2:
        raise _NotAScheduleError(f"knot {item!r} must be week:value")
    return _week(parts[0].strip()), _finite(parts[1].strip())


def _check_values(field_name: str, schedule: Schedule) -> None:
    for v in schedule.values:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{field_name}: lever values must be numbers in [0, 1] (got {v:g})")


def as_schedule(field_name: str, value: object) -> Schedule:
    """Accept a Schedule, a number, a list of weekly values or schedule text."""
    if isinstance(value, Schedule):
        schedule = value
        if not all(math.isfinite(w) and 0 <= w <= MAX_WEEK for w in schedule.weeks):
            raise ValueError(f"{field_name}: schedule weeks must be in [0, {MAX_WEEK:,}]")
    elif isinstance(value, str):
        schedule = parse_schedule(field_name, value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        values = (
            list(np.asarray(value, dtype=object).ravel())
            if isinstance(value, np.ndarray)
            else value
        )
        if len(values) == 0:
            raise ValueError(f"{field_name}: a weekly list needs at least one value")
        schedule = Schedule.series([_number(field_name, v) for v in values])
    else:
        schedule = Schedule.constant(_number(field_name, value))
    _check_values(field_name, schedule)
    return schedule


def _number(field_name: str, value: object) -> float:
    """A lever value given as a number (not text, not a bool), finite, in [0, 1]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"{field_name}: must be {SCHEDULE_FORMS} (got {value!r})")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"{field_name}: must be a number in [0, 1] (got {value!r})")
    return number


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
