"""Frames for the browser: the data of one week, sent as a change since the last frame.

The server never draws. For each session it keeps what it last sent and sends only what
changed since: the new weeks' rows of the charts, the agents whose drawn state changed
(allegiance, recruiter, loyalty rounded to a twentieth) and the spots of new arrivals.
A frame carries the status, the agents and the charts of one and the same week, so
the page can never show them out of step. A full frame (``base`` 0) is sent first, on
Reset, and whenever the browser asks to start over (a reload, a missed frame).

Everything is read by name from the model (viz/columns.py): charts show the columns the
model has, lever strips the levers it has, agents the allegiances it has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isk_defection.model import DefectionModel
from isk_defection.model.groups import GROUP_NAMES, ISK, TALIBAN_FACTIONS
from isk_defection.viz import columns as cols
from isk_defection.viz.layout import ClusterLayout
from isk_defection.viz.style import (
    GROUP_DASHES,
    ISK_COLOR,
    LEVER_INK,
    RECRUITER_COLOR,
    allegiance_label,
    group_color,
    group_label,
    lever_help,
    lever_label,
)

SHADES = 20  # loyalty is drawn in this many steps (a change smaller than 0.05 is not sent)
RECRUITER_BIT, ALLEGIANCE_SHIFT = 32, 64  # agent code = allegiance * 64 + recruiter * 32 + shade
PLAN_WEEKS = 156
MAX_DRAWN = 20_000  # agents drawn at most; larger runs draw one slot in every k  # the scenario's planned lever course is shown this far ahead
NEUTRAL = "#4d4d4d"


@dataclass(frozen=True)
class Series:
    """One line of a chart: the model column it shows, how it is labelled and drawn."""

    key: str
    label: str
    color: str
    dash: str = "solid"
    per_agent: bool = False  # agents -> people (times people per agent)
    width: float = 1.6

    def spec(self) -> dict[str, Any]:
        """The series as the browser needs it."""
        return {"key": self.key, "label": self.label, "color": self.color, "dash": self.dash,
                "width": self.width}  # fmt: skip


@dataclass(frozen=True)
class Panel:
    """One chart: a title, its y axis (``percent``, ``log``, ``unit`` or ``count``), its lines."""

    id: str
    title: str
    axis: str
    series: tuple[Series, ...]
    note: str = ""

    def spec(self) -> dict[str, Any]:
        """The chart as the browser needs it."""
        return {"id": self.id, "title": self.title, "axis": self.axis, "note": self.note,
                "series": [s.spec() for s in self.series]}  # fmt: skip


def _groups(names: Sequence[str], column: str, present: Mapping[str, Any]) -> tuple[Series, ...]:
    return tuple(
        Series(f"{name}_{column}", group_label(name), group_color(name, i), GROUP_DASHES.get(name, "solid"))
        for i, name in enumerate(names)
        if f"{name}_{column}" in present
    )  # fmt: skip


def chart_panels(model: DefectionModel) -> list[Panel]:
    """The charts this model's columns allow, in reading order (levers come separately)."""
    present = cols.history(model)
    per_agent = cols.people_per_agent(model) is not None

    def line(key: str, label: str, color: str, dash: str = "solid", **kw) -> tuple[Series, ...]:
        return (Series(key, label, color, dash, **kw),) if key in present else ()

    taliban = (
        line("taliban_strength", "Taliban (loyal)", NEUTRAL, width=2.2)
        or line("taliban_members", "Taliban (loyal)", NEUTRAL, per_agent=per_agent, width=2.2)
    )  # fmt: skip
    panels = [
        Panel("defected", "Defected to IS-K so far (share of each group)", "percent",
              _groups(GROUP_NAMES, "defection_rate", present)),
        Panel("deserted", "Deserted now (share of each group; deserters may return)", "percent",
              _groups(GROUP_NAMES, "desertion_rate", present)),
        Panel("strength", "IS-K vs Taliban strength (people, log scale)", "log",
              taliban + line("isk_strength", "IS-K", ISK_COLOR, "dashed", width=2.2)),
        Panel("loyalty", "Mean loyalty per Taliban faction", "band",
              _groups(TALIBAN_FACTIONS, "loyalty", present)),
        Panel("regime", "Regime legitimacy and resources", "unit",
              line("legitimacy", "legitimacy", NEUTRAL)
              + line("resources", "resources", NEUTRAL, "dashed")),
        Panel("weekly", "Per week: defections, desertions, IS-K attacks", "count",
              line("defections", "defections", ISK_COLOR, width=1.8)
              + line("desertions", "desertions", NEUTRAL, "dashed")
              + line("attacks", "IS-K attacks", ISK_COLOR, "dotted")),
    ]  # fmt: skip
    return [panel for panel in panels if panel.series]


def agent_codes(model: DefectionModel) -> np.ndarray:
    """Each slot's drawn state: allegiance, recruiter flag and loyalty in twentieths."""
    pop = model.population
    n = pop.n
    loyalty = np.nan_to_num(pop.loyalty[:n], nan=0.0)
    shade = np.rint(np.clip(loyalty, 0.0, 1.0) * SHADES).astype(np.int32)
    code = pop.allegiance[:n].astype(np.int32) * ALLEGIANCE_SHIFT + shade
    return code + pop.recruiter[:n].astype(np.int32) * RECRUITER_BIT


def _round(values: np.ndarray, digits: int = 2) -> list[float]:
    return np.round(values.astype(float), digits).tolist()


def _value(value: Any, scale: float) -> float | None:
    number = cols.number(value)
    return None if number is None else round(number * scale, 6)


@dataclass
class FrameSource:
    """Builds one model's frames; remembers what was sent so the next frame is a change."""

    model: DefectionModel
    layout: ClusterLayout = field(init=False)
    panels: list[Panel] = field(init=False)
    seq: int = 0
    _rows: int = 0
    _codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    _plan_key: tuple = ()

    def __post_init__(self) -> None:
        self.layout = ClusterLayout.for_groups(self.model.population.group)
        self.panels = chart_panels(self.model)
        self.stride = max(1, math.ceil(self.model.population.n / MAX_DRAWN))

    # ---- what does not change during a run ----------------------------------------------
    def config(self) -> dict[str, Any]:
        """The static description of the run: groups, allegiances, discs, charts, levers."""
        model, layout = self.model, self.layout
        names = [*GROUP_NAMES, "isk"]
        present = cols.history(model)
        return {
            "groups": [
                {"name": n, "label": group_label(n), "color": ISK_COLOR if n == "isk" else group_color(n, i)}
                for i, n in enumerate(names)
            ],
            "isk_group": ISK,
            "allegiances": [{"name": a, "label": allegiance_label(a)} for a in cols.allegiances()],
            "discs": [
                {"x": round(float(c[0]), 2), "y": round(float(c[1]), 2), "r": round(float(r), 2)}
                for c, r in zip(layout.centers, layout.radii, strict=True)
            ],
            "isk_radius": round(float(layout.isk_radius), 2),
            "extent": round(float(layout.extent), 2),
            "panels": [p.spec() for p in self.panels],
            "levers": [
                {"name": lever, "label": lever_label(lever), "column": cols.lever_column(lever, present),
                 "help": [[level, text] for level, text in lever_help(lever)]}
                for lever in cols.levers(model)
            ],
            "shades": SHADES,
            "stride": self.stride,
            "colors": {"isk": ISK_COLOR, "recruiter": RECRUITER_COLOR, "lever": LEVER_INK},
        }  # fmt: skip

    # ---- frames -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget what was sent: the next frame is a full one."""
        self._rows, self._codes, self._plan_key = 0, np.zeros(0, np.int32), ()

    def frame(
        self, marks: list[dict] | None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The model's current week as a change since the last frame (all of it after reset).

        Call under the session's lock: it reads the model.
        """
        model = self.model
        full = self._rows == 0
        base = 0 if full else self.seq
        self.seq += 1
        frame: dict[str, Any] = {"seq": self.seq, "base": base, "week": model.week}
        frame["rows"] = self.rows(self._rows)
        self._rows = len(cols.history(model)["week"]) if "week" in cols.history(model) else 0
        frame["agents"] = self._agents(full)
        frame["status"] = status(model)
        frame["marks"] = marks
        plan = self._plan()
        if plan is not None:
            frame["plan"] = plan
        if extra:
            frame |= extra
        return frame

    def rows(self, start: int) -> dict[str, Any]:
        """Chart rows from history row ``start`` on: weeks, each series, each lever."""
        return history_rows(self.model, self.panels, start)

    def _agents(self, full: bool) -> dict[str, Any]:
        """The drawn agents whose state changed (all after a reset), and new arrivals' spots.

        Slots are drawn one in :attr:`stride` (every slot up to :data:`MAX_DRAWN` agents),
        so a 1:1-scale run of 160,000 agents costs the browser what 20,000 do.
        """
        model = self.model
        pop = model.population
        drawn = np.arange(0, pop.n, self.stride)
        codes = agent_codes(model)[drawn]
        known = 0 if full else len(self._codes)
        if full:
            changed = np.arange(len(codes))
        else:
            changed = np.flatnonzero(codes[:known] != self._codes)
            changed = np.concatenate([changed, np.arange(known, len(codes))])
        out: dict[str, Any] = {"n": int(pop.n), "full": full, "stride": self.stride}
        if len(codes) > known:
            self.layout.extend(pop.group[: pop.n])
            new = drawn[known:]
            out["new"] = new.astype(int).tolist()
            out["group"] = pop.group[new].astype(int).tolist()
            out["home"] = _round(self.layout.home[new].ravel())
            out["spot"] = _round(self.layout.isk_spot[new].ravel())
        out["slots"] = drawn[changed].astype(int).tolist()
        out["codes"] = codes[changed].astype(int).tolist()
        self._codes = codes
        return out

    def _plan(self) -> dict[str, Any] | None:
        """The levers' course ahead (scenario timeline and user moves), when it changed."""
        model = self.model
        start = model.week - model.week % 52
        adaptive = cols.is_adaptive(model)
        key = (start, len(model.policy.moves), adaptive)
        if key == self._plan_key:
            return None
        self._plan_key = key
        return lever_plan(model, start, start + PLAN_WEEKS)


def history_rows(model: DefectionModel, panels: list[Panel], start: int) -> dict[str, Any]:
    """Rows ``start`` on of every charted series and lever, JSON-ready (NaN as null)."""
    record = cols.history(model)
    scale = cols.people_per_agent(model) or 1.0
    weeks = list(record.get("week", []))[start:]
    values: dict[str, list[float | None]] = {}
    for panel in panels:
        for s in panel.series:
            factor = scale if s.per_agent else 1.0
            values[s.key] = [_value(v, factor) for v in record[s.key][start:]]
    for lever in cols.levers(model):
        column = cols.lever_column(lever, record)
        if column is not None:
            values["lever:" + lever] = [_value(v, 1.0) for v in record[column][start:]]
    return {"start": start, "weeks": [int(w) for w in weeks], "values": values}


def lever_plan(model: DefectionModel, first: int, last: int) -> dict[str, Any]:
    """Each lever's planned course over weeks ``first``-``last``: [[week, value], ...].

    The plan is the scenario's timeline with the user's moves in force; levers the
    adaptive rule sets have no plan (the rule decides week by week).
    """
    policy = model.policy
    adaptive = set(cols.adaptive_levers()) if cols.is_adaptive(model) else set()
    knots = {first, last}
    for schedule in policy.schedules.values():
        knots.update(int(math.floor(w)) for w in schedule.weeks if first < w < last)
        knots.update(int(math.ceil(w)) for w in schedule.weeks if first < w < last)
    knots.update(m.week for m in policy.moves if first <= m.week <= last)
    knots.update(m.week - 1 for m in policy.moves if first < m.week <= last)
    weeks = sorted(knots)
    by_week = [policy.levers_at(w) for w in weeks]
    plan: dict[str, Any] = {
        "first": first,
        "last": last,
        "adaptive": sorted(adaptive),
        "levers": {},
    }
    for lever in cols.levers(model):
        if lever in adaptive:
            continue
        points = [[w, round(float(lv[lever]), 4)] for w, lv in zip(weeks, by_week, strict=True)]
        plan["levers"][lever] = _drop_collinear(points)
    return plan


def _drop_collinear(points: list[list[float]]) -> list[list[float]]:
    kept = points[:1]
    for i in range(1, len(points) - 1):
        (w0, v0), (w1, v1), (w2, v2) = kept[-1], points[i], points[i + 1]
        if abs((v1 - v0) * (w2 - w0) - (v2 - v0) * (w1 - w0)) > 1e-9:
            kept.append(points[i])
    return kept + points[-1:] if len(points) > 1 else kept


def status(model: DefectionModel) -> dict[str, Any]:
    """The current week's status: the entries of the status bar, label -> text, and a few numbers.

    Totals are the model's own figures in people (agents of different groups stand for
    different numbers of people); a model that counts agents is scaled by its people per
    agent when it has one.
    """
    stats = model.stats
    scale = cols.people_per_agent(model) or 1.0
    in_people = "isk_agents" in stats  # model v2 reports flows and totals in people

    def people(key: str) -> float:
        value = cols.number(stats.get(key)) or 0.0
        return value if in_people else value * scale

    weekly = {g: people(f"{g}_defections") for g in GROUP_NAMES}
    largest = max(weekly, key=weekly.__getitem__)
    isk = cols.number(stats.get("isk_strength")) or 0.0
    pop = model.population
    start = int(getattr(model, "initial_agents", 0) or 0) or _initial_agents(model)
    entries = {
        "Week": f"{model.week}",
        "Date": f"{model.date:%d %b %Y}",
        "IS-K strength": f"{isk:,.0f} people",
        "Defections so far": f"{people('cumulative_defections'):,.0f} people",
    }
    if "cumulative_desertions" in stats:
        entries["Desertions so far"] = f"{people('cumulative_desertions'):,.0f} people"
    entries["Largest defecting group this week"] = (
        f"{group_label(largest)} ({weekly[largest]:,.0f} people)" if weekly[largest] > 0 else "none"
    )
    arrived = pop.n - start
    entries["Agents"] = f"{start:,}" + (f" + {arrived:,} freed prisoners" if arrived > 0 else "")
    return {
        "entries": entries,
        "week": model.week,
        "isk": isk,
        "defections": people("cumulative_defections"),
    }


def _initial_agents(model: DefectionModel) -> int:
    """Agents the run started with (prisoners freed later are counted apart)."""
    ledger = getattr(model, "ledger", {})
    start = ledger.get("start") if isinstance(ledger, dict) else None
    per_agent = getattr(model, "people_per_agent", None)
    if start is not None and per_agent is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            agents = np.where(per_agent > 0, start / per_agent, 0.0)
        return int(np.rint(agents).sum())
    if start is not None:
        return int(np.sum(start))
    return int(model.population.n)


def people_per_agent(model: DefectionModel) -> float:
    """People one agent stands for on average at the start (1 if the model does not say)."""
    ledger = getattr(model, "ledger", {})
    start = ledger.get("start") if isinstance(ledger, dict) else None
    if start is None:
        return cols.people_per_agent(model) or 1.0
    return float(np.sum(start)) / max(_initial_agents(model), 1)


def status_lines(model: DefectionModel) -> dict[str, str]:
    """The status bar's entries, label -> text, for the model's current week."""
    return status(model)["entries"]
