"""What the model records each week: aggregates computed once from the arrays.

Reporters read a ``model.stats`` dictionary that :func:`statistics` fills in one
vectorised pass, so data collection costs a few array reductions, not a Python call
per agent. Reporters are partials of one function and agent reporters attribute getters
(no lambdas or closures), so a model pickles and can be sent to worker processes.

Units: every count of members is in **people** (an agent stands for ``people`` persons,
its group's size shared among its agents); columns counted in agents end in ``_agents``.
Lever values are recorded as ``lever_<name>``, apart from the lever's input (a schedule).
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from isk_defection.agents.fighters import ALLEGIANCES
from isk_defection.model.groups import GROUP_NAMES, GROUPS, TALIBAN_FACTIONS
from isk_defection.model.policy import LEVERS
from isk_defection.model.population import DESERTED, IN_ISK, LOYAL

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


def stat(key: str, model: DefectionModel) -> Any:
    """One entry of ``model.stats``; bound with ``partial`` it is a picklable reporter."""
    return model.stats[key]


class StatsCollector(mesa.DataCollector):
    """Mesa's DataCollector, fed from the arrays: no deep copies, no call per agent.

    Mesa copies each model value so that a mutable one cannot change after it was
    recorded; here every value is an immutable scalar of the week's new ``model.stats``,
    so the copies only cost time (a fifth of a 2,000-agent step). The agent reporters
    are read from the arrays column by column into the records Mesa keeps, instead of
    five property calls per agent; ``get_agent_vars_dataframe`` is Mesa's own.
    """

    def collect(self, model: DefectionModel) -> None:
        """Record this week's model columns and, if any, the agent reporters."""
        self._collection_steps.append(model.time)
        for name, reporter in self.model_reporters.items():
            self.model_vars[name].append(reporter(model))
        if self.agent_reporters:
            self._agent_records[model.time] = agent_records(model)


def agent_records(model: DefectionModel) -> list[tuple]:
    """(time, unique_id, loyalty, group, faction, allegiance, people) of every agent."""
    views = model.agent_at
    slots = [slot for slot, agent in enumerate(views) if agent is not None]
    pop = model.population
    group = _GROUP_LABELS[pop.group[slots]].tolist()
    faction = _FACTION_LABELS[pop.group[slots]].tolist()
    allegiance = _ALLEGIANCE_LABELS[pop.allegiance[slots]].tolist()
    return list(
        zip(
            [model.time] * len(slots),
            [views[slot].unique_id for slot in slots],
            pop.loyalty[slots].tolist(),
            group,
            faction,
            allegiance,
            pop.people[slots].tolist(),
            strict=True,
        )
    )


def make_datacollector(collect_agents: bool) -> mesa.DataCollector:
    """A DataCollector for every model column and, optionally, the agent reporters."""
    agent_reporters = {name: attrgetter(name) for name in AGENT_COLUMNS} if collect_agents else None
    return StatsCollector(
        model_reporters={name: partial(stat, name) for name in columns()},
        agent_reporters=agent_reporters,
    )


def statistics(model: DefectionModel) -> dict[str, Any]:
    """Every model-level column for the current week, from the population arrays."""
    pop, ledger, flows = model.population, model.ledger, model.week_flows
    size = len(GROUPS) + 1
    loyal = pop.allegiance == LOYAL
    in_isk = pop.allegiance == IN_ISK
    tally = pop.tally()
    members = tally[LOYAL]
    loyalty_sum = np.bincount(
        pop.group[loyal], weights=pop.loyalty[loyal] * pop.people[loyal], minlength=size
    )
    ever = ledger["start"] + ledger["joined"]
    # deserted now, from the camp (those who left IS-K count as having joined it)
    away = np.bincount(
        pop.group[(pop.allegiance == DESERTED) & ~model.former_isk],
        weights=pop.people[(pop.allegiance == DESERTED) & ~model.former_isk],
        minlength=size,
    )
    fighters = ever[:-1].sum()  # everyone ever in a group other than IS-K
    factions = model.taliban_codes
    stats: dict[str, Any] = {
        "week": model.steps,
        "date": model.date.isoformat(),
        "isk_strength": float(pop.people[in_isk].sum()),
        "isk_agents": int(in_isk.sum()),
        "isk_recruiters": float(pop.people[in_isk & pop.recruiter].sum()),
        "isk_cells": len(model.cells.sizes),
        "isk_largest_cell": int(model.cells.sizes.max(initial=0)),
        "isk_intake": float(flows["defected"].sum()),
        "isk_capacity": float(model.capacity),
        "isk_removed": float(flows["removed"].sum()),
        "isk_deserted": float(flows["left_isk"].sum()),
        "isk_leadership": model.leadership,
        "isk_external_share": model.external_share,
        "attacks": model.attacks,
        "attacks_on_taliban": model.attacks_on_taliban,
        "attack_severity": model.severity,
        "legitimacy": model.legitimacy,
        "resources": model.resources,
        "counter_isk_effort": model.effort,
        "taliban_strength": float(members[factions].sum()),
        "taliban_loyalty": _mean(loyalty_sum[factions].sum(), members[factions].sum()),
        "deserters": float(tally[DESERTED].sum()),
        "defections": float(flows["defected"].sum()),
        "desertions": float(flows["deserted"].sum()),
        "returns": float(flows["returned"].sum()),
        "cumulative_defections": float(ledger["defected"].sum()),
        "cumulative_desertions": float(ledger["deserted"].sum()),
        "cumulative_isk_removed": float(ledger["removed"].sum()),
        "defection_rate": _share(ledger["defected"][:-1].sum(), fighters),
        "desertion_rate": _share(away[:-1].sum(), fighters),
        "prisoner_release": int("prisoner_release" in model.policy.events_at(model.steps)),
    }
    for code, name in enumerate(GROUP_NAMES):
        stats[f"{name}_members"] = float(members[code])
        stats[f"{name}_people_per_agent"] = float(model.people_per_agent[code])
        stats[f"{name}_defections"] = float(flows["defected"][code])
        stats[f"{name}_desertions"] = float(flows["deserted"][code])
        stats[f"{name}_returns"] = float(flows["returned"][code])
        stats[f"{name}_removed"] = float(flows["removed"][code])
        stats[f"{name}_left_isk"] = float(flows["left_isk"][code])
        stats[f"{name}_defection_rate"] = _share(ledger["defected"][code], ever[code])
        stats[f"{name}_desertion_rate"] = _share(away[code], ever[code])
        stats[f"{name}_loyal_share"] = _share(members[code], ever[code])
        stats[f"{name}_loyalty"] = _mean(loyalty_sum[code], members[code])
        stats[f"{name}_loyalty_all"] = _mean(loyalty_sum[code], ever[code])
    stats |= {lever_column(name): float(model.levers[name]) for name in LEVERS}
    return stats


def _mean(total: float, count: float) -> float:
    return float(total / count) if count else float("nan")


def _share(part: float, whole: float) -> float:
    """A share in [0, 1]: ``part`` of ``whole`` people (sums of weights round in the last bit)."""
    return min(_mean(part, whole), 1.0)
