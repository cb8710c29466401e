"""What the model records each week: aggregates computed once from the arrays.

Reporters read a ``model.stats`` dictionary that :func:`statistics` fills in one
vectorised pass, so data collection costs a few array reductions, not a Python call
per agent. Reporters are partials of one function (no lambdas), so a model can be sent
to worker processes.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from agents.fighters import ALLEGIANCES
from model.groups import GROUP_NAMES, GROUPS, TALIBAN_FACTIONS
from model.policy import LEVERS
from model.population import IN_ISK, LOYAL

if TYPE_CHECKING:
    from model.model import DefectionModel

GROUP_COLUMNS = ("members", "defections", "defection_rate", "loyalty")
MODEL_COLUMNS = (
    "week",
    "date",
    "isk_members",
    "isk_strength",
    "isk_recruiters",
    "isk_cells",
    "isk_largest_cell",
    "attacks",
    "attacks_on_taliban",
    "attack_severity",
    "legitimacy",
    "resources",
    "counter_isk_effort",
    "taliban_members",
    "taliban_loyalty",
    "defections",
    "cumulative_defections",
    "prisoner_release",
)
AGENT_COLUMNS = ("loyalty", "group", "faction", "allegiance")  # agent_records' order
_GROUP_LABELS = np.array([*GROUP_NAMES, "isk"], dtype=object)
_FACTION_LABELS = np.array([g if g in TALIBAN_FACTIONS else None for g in _GROUP_LABELS])
_ALLEGIANCE_LABELS = np.array(ALLEGIANCES, dtype=object)


def columns() -> list[str]:
    """Every model-level column, in order."""
    per_group = [f"{g}_{c}" for g in GROUP_NAMES for c in GROUP_COLUMNS]
    return [*MODEL_COLUMNS, *per_group, *LEVERS]


def stat(key: str, model: DefectionModel) -> Any:
    """One entry of ``model.stats``; bound with ``partial`` it is a picklable reporter."""
    return model.stats[key]


class StatsCollector(mesa.DataCollector):
    """Mesa's DataCollector, fed from the arrays: no deep copies, no call per agent.

    Mesa copies each model value so that a mutable one cannot change after it was
    recorded; here every value is an immutable scalar of the week's new ``model.stats``,
    so the copies only cost time (a fifth of a 2,000-agent step). The agent reporters
    (loyalty, group, faction, allegiance) are read from the arrays column by column into
    the records Mesa keeps, instead of four property calls per agent (a sixth of the
    cost); ``get_agent_vars_dataframe`` is Mesa's own.
    """

    def collect(self, model: DefectionModel) -> None:
        """Record this week's model columns and, if any, the agent reporters."""
        self._collection_steps.append(model.time)
        for name, reporter in self.model_reporters.items():
            self.model_vars[name].append(reporter(model))
        if self.agent_reporters:
            self._agent_records[model.time] = agent_records(model)


def agent_records(model: DefectionModel) -> list[tuple]:
    """(time, unique_id, loyalty, group, faction, allegiance) of every agent, slot order."""
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
            strict=True,
        )
    )


def make_datacollector(collect_agents: bool) -> mesa.DataCollector:
    """A DataCollector for every model column and, optionally, the agent reporters."""
    agent_reporters = {name: name for name in AGENT_COLUMNS} if collect_agents else None
    return StatsCollector(
        model_reporters={name: partial(stat, name) for name in columns()},
        agent_reporters=agent_reporters,
    )


def statistics(model: DefectionModel) -> dict[str, Any]:
    """Every model-level column for the current week, from the population arrays."""
    pop = model.population
    size = len(GROUPS) + 1
    loyal = pop.allegiance == LOYAL
    in_isk = pop.allegiance == IN_ISK
    members = np.bincount(pop.group[loyal], minlength=size)
    loyalty_sum = np.bincount(pop.group[loyal], weights=pop.loyalty[loyal], minlength=size)
    ever = model.ledger["start"] + model.ledger["joined"]
    stats: dict[str, Any] = {
        "week": model.steps,
        "date": model.date.isoformat(),
        "isk_members": int(in_isk.sum()),
        "isk_strength": float(in_isk.sum() * model.scale),
        "isk_recruiters": int((in_isk & pop.recruiter).sum()),
        "isk_cells": len(model.cells.sizes),
        "isk_largest_cell": int(model.cells.sizes.max(initial=0)),
        "attacks": model.attacks,
        "attacks_on_taliban": model.attacks_on_taliban,
        "attack_severity": model.severity,
        "legitimacy": model.legitimacy,
        "resources": model.resources,
        "counter_isk_effort": model.effort,
        "defections": int(model.defections_now.sum()),
        "cumulative_defections": int(model.ledger["defected"].sum()),
        "prisoner_release": int("prisoner_release" in model.policy.events_at(model.steps)),
    }
    factions = [GROUP_NAMES.index(f) for f in TALIBAN_FACTIONS]
    stats["taliban_members"] = int(members[factions].sum())
    stats["taliban_loyalty"] = _mean(loyalty_sum[factions].sum(), members[factions].sum())
    for code, name in enumerate(GROUP_NAMES):
        stats[f"{name}_members"] = int(members[code])
        stats[f"{name}_defections"] = int(model.defections_now[code])
        stats[f"{name}_defection_rate"] = _mean(model.ledger["defected"][code], ever[code])
        stats[f"{name}_loyalty"] = _mean(loyalty_sum[code], members[code])
    stats |= {name: float(model.levers[name]) for name in LEVERS}
    return stats


def _mean(total: float, count: float) -> float:
    return float(total / count) if count else float("nan")
