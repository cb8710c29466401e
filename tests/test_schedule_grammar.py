"""Lever schedules: a small grammar read in full or refused, and an exact text round trip.

A schedule that is half-read silently changes the policy a user asked for (``[0.1,,0.3]``
became ``[0.1,0.3]``; ``piecewise(0:0.1:9,5:0.2)`` dropped ``:9``). Property tests check
that ``describe`` and ``parse_schedule`` are inverse on every schedule, and that text
damaged by one character is either refused or read as exactly what it says.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isk_defection.model.policy import MAX_WEEK, Schedule, as_schedule, parse_schedule

values = st.floats(0.0, 1.0, allow_nan=False)
weeks = st.integers(0, 2_000)
fractional_weeks = st.floats(0.0, 2_000.0, allow_nan=False)


@st.composite
def schedules(draw) -> Schedule:
    kind = draw(st.sampled_from(["constant", "step", "ramp", "series", "piecewise", "hold"]))
    if kind == "constant":
        return Schedule.constant(draw(values))
    if kind == "step":
        return Schedule.step(draw(values), draw(values), draw(weeks))
    if kind == "ramp":
        first = draw(weeks)
        return Schedule.ramp(draw(values), draw(values), first, first + draw(weeks))
    if kind == "series":
        return Schedule.series(draw(st.lists(values, min_size=1, max_size=20)))
    knots = sorted(draw(st.lists(fractional_weeks, min_size=1, max_size=8)))
    levels = draw(st.lists(values, min_size=len(knots), max_size=len(knots)))
    return Schedule(tuple(knots), tuple(levels), kind == "piecewise")


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_describe_and_parse_are_inverse(schedule):
    text = schedule.describe()
    again = parse_schedule("lever", text)
    assert again.describe() == text
    for week in (0, 1, 2.5, 10, 100, 5_000):
        assert again.at(week) == schedule.at(week)
    if len(schedule.values) > 1 or schedule.weeks != (0.0,):
        assert again == schedule


@settings(max_examples=300, deadline=None)
@given(schedules(), st.data())
def test_damaged_text_is_refused_or_read_exactly(schedule, data):
    text = schedule.describe()
    where = data.draw(st.integers(0, len(text)))
    damage = data.draw(st.sampled_from([",", ":", "(", ")", "[", "]", " ", "", "nan", "x"]))
    cut = data.draw(st.booleans())
    damaged = text[:where] + damage + text[where + (1 if cut else 0) :]
    try:
        read = parse_schedule("lever", damaged)
    except ValueError as error:
        assert str(error).startswith("lever: ") and "\n" not in str(error)
        return
    # accepted: then the text means exactly what was read (its own round trip holds)
    assert parse_schedule("lever", read.describe()) == read
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in read.values)
    assert damaged.count(",") == read.describe().count(",") or damaged.strip().startswith("[")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.4", Schedule.constant(0.4)),
        (" 0.4 ", Schedule.constant(0.4)),
        ("step(0.1,0.6,20)", Schedule.step(0.1, 0.6, 20)),
        ("step( 0.1 , 0.6 , 20 )", Schedule.step(0.1, 0.6, 20)),
        ("ramp(0.1,0.6,10,30)", Schedule.ramp(0.1, 0.6, 10, 30)),
        ("[0.1,0.2,0.3]", Schedule.series([0.1, 0.2, 0.3])),
        ("piecewise(0:0.3,31:0.15)", Schedule.piecewise([(0, 0.3), (31, 0.15)])),
        ("hold(0:0.3,31:0.15)", Schedule((0.0, 31.0), (0.3, 0.15), linear=False)),
        ("1e-3", Schedule.constant(0.001)),
    ],
)
def test_the_documented_forms(text, expected):
    assert parse_schedule("lever", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[0.1,,0.3]",  # was read as [0.1, 0.3]
        "piecewise(0:0.1:9,5:0.2)",  # was read without :9
        "piecewise(nan:0.1,5:0.2)",  # failed mid-run
        "step(0.1,0.6,1e400)",  # OverflowError
        f"step(0.1,0.6,{MAX_WEEK + 1})",
        "[0.1,0.2,]",
        "piecewise(0:0.1,)",
        "step(0.1,0.6,2.5)",
        "ramp(0.1,0.6,30,10)",
        "piecewise(5:0.1,2:0.2)",
        "nan",
        "inf",
        "1.5",
        "-0.1",
        "0x1",
        "1_0",
        "",
        "step(0.1;0.6;3)",
    ],
)
def test_malformed_schedules_are_refused_naming_the_lever(text):
    with pytest.raises(ValueError, match=r"^counter_isk: ") as caught:
        parse_schedule("counter_isk", text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 1.5, -1, 10**400, True, None, [], [0.1, "x"], "a"]
)
def test_values_other_than_text_are_checked_too(value):
    with pytest.raises(ValueError, match=r"^counter_isk: "):
        as_schedule("counter_isk", value)
