"""What the model records each week: aggregates the step kernel computes in its pass.

The kernel (``model/kernel.py``) writes every model column into one row per week; the
model's DataCollector (:class:`WeeklyRecords`) keeps the rows, all columns or only those a
caller asks for, and reads them back as Mesa's DataCollector does. ``model.stats`` is
the current week's row by name. Reporters are partials of one function and agent
reporters attribute getters (no lambdas or closures), so a model pickles.

Units: every count of members is in **people** (an agent stands for ``people`` persons,
its group's size shared among its agents); columns counted in agents end in ``_agents``.
Lever values are recorded as ``lever_<name>``, apart from the lever's input (a schedule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from isk_defection.agents.fighters import ALLEGIANCES
from isk_defection.model.groups import GROUP_NAMES, TALIBAN_FACTIONS
from isk_defection.model.policy import LEVERS

if TYPE_CHECKING:
    from isk_defection.model.model import DefectionModel

# Flows per origin group, in people, kept since week 0 (``model.ledger``) and per week.
LEDGER = ("start", "joined", "defected", "deserted", "returned", "removed", "left_isk")

GROUP_COLUMNS = (
    "members",  # loyal people now
    "people_per_agent",
    "defections",  # people who joined IS-K this week
    "desertions",  # people who deserted this week
    "returns",  # deserters who came back this week
    "removed",  # members of IS-K from this group killed or captured this week
    "left_isk",  # members of IS-K from this group who deserted or surrendered this week
    "defection_rate",  # share of everyone ever in the group who joined IS-K
    "desertion_rate",  # share of everyone ever in the group who is deserted now
    "loyal_share",  # share of everyone ever in the group who is loyal now
    "loyalty",  # mean loyalty of the loyal
    "loyalty_all",  # mean loyalty over everyone ever in the group (0 for those gone)
)
MODEL_COLUMNS = (
    "week",
    "date",
    "isk_strength",
    "isk_agents",
    "isk_recruiters",
    "isk_cells",
    "isk_largest_cell",
    "isk_intake",
    "isk_capacity",
    "isk_removed",
    "isk_deserted",
    "isk_leadership",
    "isk_external_share",
    "attacks",
    "attacks_on_taliban",
    "attack_severity",
    "legitimacy",
    "resources",
    "counter_isk_effort",
    "taliban_strength",
    "taliban_loyalty",
    "deserters",
    "defections",
    "desertions",
    "returns",
    "cumulative_defections",
    "cumulative_desertions",
    "cumulative_isk_removed",
    "defection_rate",
    "desertion_rate",
    "prisoner_release",
)
AGENT_COLUMNS = ("loyalty", "group", "faction", "allegiance", "people")  # agent_records' order
_GROUP_LABELS = np.array([*GROUP_NAMES, "isk"], dtype=object)
_FACTION_LABELS = np.array([g if g in TALIBAN_FACTIONS else None for g in _GROUP_LABELS])
_ALLEGIANCE_LABELS = np.array(ALLEGIANCES, dtype=object)


def lever_column(name: str) -> str:
    """The column that records lever ``name``'s value each week."""
    return f"lever_{name}"


def columns() -> list[str]:
    """Every model-level column, in order."""
    per_group = [f"{g}_{c}" for g in GROUP_NAMES for c in GROUP_COLUMNS]
    return [*MODEL_COLUMNS, *per_group, *map(lever_column, LEVERS)]


INTEGER_COLUMNS = frozenset(
    {"week", "isk_agents", "isk_cells", "isk_largest_cell", "attacks", "attacks_on_taliban"}
    | {"attack_severity", "prisoner_release"}
)


def stat(key: str, model: DefectionModel) -> Any:
    """One entry of ``model.stats``; bound with ``partial`` it is a picklable reporter."""
    return model.stats[key]


def _value(name: str, value: float, start: dt.date) -> Any:
    """A recorded number as its column's type: integers, the date as ISO text."""
    if name == "date":
        return (start + dt.timedelta(weeks=int(value))).isoformat()
    return int(value) if name in INTEGER_COLUMNS else float(value)


class WeekStats(Mapping[str, Any]):
    """Every model column for one week, read from a copy of the week's record row."""

    def __init__(self, row: np.ndarray, index: Mapping[str, int], start: dt.date) -> None:
        self._row, self._index, self._start = row, index, start

    def __getitem__(self, name: str) -> Any:
        return _value(name, self._row[self._index[name]], self._start)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class WeeklyRecords:
    """The model's DataCollector: Mesa's reading interface over arrays the kernel fills.

    The step kernel writes each week's model columns into ``row`` (``columns()`` order,
    the date held as its week); :meth:`collect` keeps the recorded ones, all of them or
    only those asked for (a calibration run keeps the patterns' few), in a growing array.
    ``model_vars``, ``get_model_vars_dataframe`` and ``get_agent_vars_dataframe`` read as
    Mesa's do (step-indexed rows; agent rows indexed by Step and AgentID), and
    ``model_reporters`` / ``agent_reporters`` name what is recorded.
    """

    def __init__(
        self, start: dt.date, collect_agents: bool, recorded: Sequence[str] | None = None
    ) -> None:
        every = columns()
        self.index = column_index()
        unknown = sorted(set(recorded or ()) - set(every))
        if unknown:
            raise ValueError(f"columns: no model column {unknown[0]!r} (see reporters.columns())")
        self.recorded = list(every if recorded is None else dict.fromkeys(recorded))
        self._keep = np.array([self.index[name] for name in self.recorded], dtype=np.int64)
        self.start = start
        self.row = np.full(len(every), np.nan)
        self._values = np.empty((64, len(self.recorded)))
        self._weeks = 0
        self.model_reporters = {name: partial(stat, name) for name in self.recorded}
        self.agent_reporters = (
            {name: attrgetter(name) for name in AGENT_COLUMNS} if collect_agents else {}
        )
        self._steps: list[float] = []
        self._agent_rows: dict[float, list[tuple]] = {}

    def stats(self) -> WeekStats:
        """The current week's columns (all of them, recorded or not)."""
        return WeekStats(self.row.copy(), self.index, self.start)

    def collect(self, model: DefectionModel) -> None:
        """Keep this week's recorded columns and, if any, the agent reporters."""
        if self._weeks == len(self._values):
            self._values = np.concatenate([self._values, np.empty_like(self._values)])
        self._values[self._weeks] = self.row[self._keep]
        self._weeks += 1
        self._steps.append(model.time)
        if self.agent_reporters:
            self._agent_rows[model.time] = agent_records(model)

    @property
    def model_vars(self) -> dict[str, list[Any]]:
        """Column -> its value in every recorded week (Mesa's ``model_vars``)."""
        values = self._values[: self._weeks]
        return {
            name: [_value(name, v, self.start) for v in values[:, k].tolist()]
            for k, name in enumerate(self.recorded)
        }

    def get_model_vars_dataframe(self) -> pd.DataFrame:
        """One row per recorded week, one column per recorded model column."""
        frame = pd.DataFrame(self._values[: self._weeks], columns=self.recorded)
        for name in INTEGER_COLUMNS.intersection(self.recorded):
            frame[name] = frame[name].astype(np.int64)
        if "date" in frame:
            frame["date"] = [_value("date", v, self.start) for v in frame["date"]]
        return frame

    def get_agent_vars_dataframe(self) -> pd.DataFrame:
        """The agent reporters every week, indexed by (Step, AgentID) as Mesa's."""
        if not self.agent_reporters:
            raise UserWarning("No agent reporters: run with collect_agent_data='on'.")
        return pd.DataFrame.from_records(
            data=[row for rows in self._agent_rows.values() for row in rows],
            columns=["Step", "AgentID", *self.agent_reporters],
            index=["Step", "AgentID"],
        )

    # mesa.batch_run reads these three (as it reads Mesa's own DataCollector): read-only views
    @property
    def _collection_steps(self) -> list[float]:
        return self._steps

    @property
    def _agent_records(self) -> dict[float, list[tuple]]:
        return self._agent_rows

    @property
    def _agenttype_records(self) -> dict:
        return {}


def agent_records(model: DefectionModel) -> list[tuple]:
    """(time, unique_id, loyalty, group, faction, allegiance, people) of every agent."""
    shown = [(slot, agent) for slot, agent in enumerate(model.agent_at) if agent is not None]
    slots = [slot for slot, _ in shown]
    pop = model.population
    return list(
        zip(
            [model.time] * len(slots),
            [agent.unique_id for _, agent in shown],
            pop.loyalty[slots].tolist(),
            _GROUP_LABELS[pop.group[slots]].tolist(),
            _FACTION_LABELS[pop.group[slots]].tolist(),
            _ALLEGIANCE_LABELS[pop.allegiance[slots]].tolist(),
            pop.people[slots].tolist(),
            strict=True,
        )
    )


def column_index() -> dict[str, int]:
    """Each model column's position in a record row."""
    return {name: i for i, name in enumerate(columns())}
