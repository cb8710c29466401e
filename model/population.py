"""Per-agent state held in NumPy arrays, one slot per person, and its initialisation.

The arrays are the model's truth; Mesa agents (``agents/``) are views onto one slot.
Slots are never reused: a removed agent keeps its slot with allegiance ``REMOVED``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model.groups import GROUPS, ISK

LOYAL, IN_ISK, REMOVED = 0, 1, 2
ALLEGIANCE_NAMES = ("loyal", "isk", "removed")


class Population:
    """Per-agent arrays (group, allegiance, loyalty, traits) that grow for new arrivals."""

    FIELDS: dict[str, type] = {
        "group": np.int8,  # origin group code (ISK for original IS-K members)
        "allegiance": np.int8,  # LOYAL, IN_ISK or REMOVED
        "recruiter": np.bool_,  # acts as an IS-K recruiter
        "loyalty": np.float64,  # loyalty to the Taliban-led camp, [0, 1]
        "baseline_loyalty": np.float64,  # loyalty under neutral conditions, [0, 1]
        "hardline": np.float64,  # ideological hardness, [0, 1]
        "uncertainty": np.float64,  # relative-agreement uncertainty (opinion units)
        "threshold": np.float64,  # defection threshold (Granovetter), [0, 1]
        "hardship": np.float64,  # individual hardship (Epstein), [0, 1]
        "materialism": np.float64,  # weight of pay and resources, [0, 1]
        "pashtun": np.bool_,  # bound by Pashtunwali to protect guests
        "ttp_affinity": np.float64,  # tie to the TTP, [0, 1]
    }

    def __init__(self) -> None:
        self.n = 0
        for name, dtype in self.FIELDS.items():
            setattr(self, name, np.zeros(0, dtype=dtype))

    def append(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Add agents with the given field values; return their new slots."""
        k = len(values["group"])
        for name, dtype in self.FIELDS.items():
            column = np.asarray(values.get(name, np.zeros(k)), dtype=dtype)
            setattr(self, name, np.concatenate([getattr(self, name)[: self.n], column]))
        slots = np.arange(self.n, self.n + k)
        self.n += k
        return slots

    def active_in(self, allegiance: int) -> np.ndarray:
        """Boolean mask of agents with ``allegiance``."""
        return self.allegiance == allegiance


def agent_counts(params: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Agents per group (last entry IS-K) summing to ``population``, and people per agent.

    Real sizes are scaled by largest remainders; a non-empty group gets at least
    ``min_group_agents`` (taken from the largest groups) so that it stays observable.
    """
    sizes = np.array([params[f"{g.name}_size"] for g in GROUPS] + [params["isk_size"]], float)
    population = params["population"]
    if sizes.sum() <= 0:
        raise ValueError("group sizes: at least one *_size or isk_size must be positive")
    ideal = sizes / sizes.sum() * population
    counts = np.floor(ideal).astype(int)
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[: population - counts.sum()]] += 1
    floor = np.where(sizes > 0, min(params["min_group_agents"], population // len(sizes)), 0)
    while np.any(counts < floor):
        short = int(np.argmax(floor - counts))
        counts[short] += 1
        counts[int(np.argmax(counts - floor))] -= 1
    return counts, float(sizes.sum() / population)


def draw_agents(
    group: int, k: int, params: dict[str, Any], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Field values for ``k`` new members of ``group`` drawn around the group's means."""
    codes = np.full(k, group, dtype=np.int8)
    if group == ISK:
        return {
            "group": codes,
            "allegiance": np.full(k, IN_ISK),
            "hardline": np.ones(k),
            "uncertainty": np.full(k, params["extremist_uncertainty"]),
            "threshold": np.ones(k),
            "hardship": np.full(k, 0.5),
        }
    name = GROUPS[group].name
    spread = params["trait_spread"] if params["heterogeneity"] else 0.0

    def trait(mean: float, sd: float) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, k), 0.0, 1.0) if sd > 0 else np.full(k, mean)

    hardline = trait(params[f"{name}_hardline"], spread)
    loyalty = trait(params[f"{name}_loyalty"], spread)
    confident = hardline >= params["extremist_hardline"]
    return {
        "group": codes,
        "allegiance": np.full(k, LOYAL),
        "loyalty": loyalty,
        "baseline_loyalty": loyalty.copy(),
        "hardline": hardline,
        "uncertainty": np.where(confident, params["extremist_uncertainty"], params["uncertainty"]),
        "threshold": trait(params[f"{name}_threshold"], params["threshold_spread"]),
        "hardship": rng.uniform(0.0, 1.0, k) if params["heterogeneity"] else np.full(k, 0.5),
        "materialism": trait(params[f"{name}_materialism"], spread),
        "pashtun": rng.random(k) < params[f"{name}_pashtun"],
        "ttp_affinity": trait(params[f"{name}_ttp_affinity"], spread),
    }
