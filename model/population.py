"""Per-agent state held in NumPy arrays, one slot per agent, and its initialisation.

The arrays are the model's truth; Mesa agents (``agents/``) are views onto one slot.
Slots are never reused: a removed agent keeps its slot with allegiance ``REMOVED``. An
agent stands for ``people`` persons: its group's real size shared among its agents, so a
small group kept visible by ``min_group_agents`` is not inflated in any total.
"""

from __future__ import annotations

import numpy as np

from isk_defection.agents.fighters import ALLEGIANCES
from isk_defection.model.groups import GROUPS, ISK

# Allegiance codes: positions in the agents' ALLEGIANCES, so names and codes never drift.
LOYAL, IN_ISK, REMOVED, DESERTED = map(ALLEGIANCES.index, ("loyal", "isk", "removed", "deserted"))
AFFINITIES = ("ttp_affinity", "aq_affinity", "uyghur_affinity")


class Population:
    """Per-agent arrays (group, allegiance, loyalty, traits) that grow for new arrivals."""

    FIELDS: dict[str, type] = {
        "group": np.int8,  # origin group code (ISK for original IS-K members)
        "allegiance": np.int8,  # LOYAL, IN_ISK, REMOVED or DESERTED
        "people": np.float64,  # persons this agent stands for
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
        "aq_affinity": np.float64,  # tie to Al-Qaeda / IMU, [0, 1]
        "uyghur_affinity": np.float64,  # tie to the Uyghur militants, [0, 1]
        "inclusion_stake": np.float64,  # standing power sharing gives (+) or takes (-)
    }

    # the FIELDS arrays (set by name below), declared for type checkers
    group: np.ndarray
    allegiance: np.ndarray
    people: np.ndarray
    recruiter: np.ndarray
    loyalty: np.ndarray
    baseline_loyalty: np.ndarray
    hardline: np.ndarray
    uncertainty: np.ndarray
    threshold: np.ndarray
    hardship: np.ndarray
    materialism: np.ndarray
    pashtun: np.ndarray
    ttp_affinity: np.ndarray
    aq_affinity: np.ndarray
    uyghur_affinity: np.ndarray
    inclusion_stake: np.ndarray

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

    def tally(self) -> np.ndarray:
        """People by allegiance (rows, by code) and origin group (columns; last IS-K).

        One pass over the arrays: cheaper than one masked count per allegiance.
        """
        groups = len(GROUPS) + 1
        cells = self.allegiance.astype(np.int64) * groups + self.group
        counts = np.bincount(cells, weights=self.people, minlength=len(ALLEGIANCES) * groups)
        return counts.reshape(len(ALLEGIANCES), groups)

    def people_in(self, allegiance: int) -> np.ndarray:
        """People by origin group (last entry IS-K) whose allegiance is ``allegiance``."""
        return self.tally()[allegiance]

    def strength(self, allegiance: int) -> float:
        """All people whose allegiance is ``allegiance`` (a small group: a masked sum)."""
        return float(self.people[self.allegiance == allegiance].sum())


def group_sizes(p) -> np.ndarray:
    """Real sizes in people by group code (last entry IS-K)."""
    return np.array([p.trait(g.name, "size") for g in GROUPS] + [p.isk_size], float)


def agent_counts(p) -> tuple[np.ndarray, np.ndarray]:
    """Agents per group (last entry IS-K) summing to ``population``, and people per agent.

    Real sizes are scaled by largest remainders; a non-empty group gets at least
    ``min_group_agents`` (taken from the largest groups) so that it stays observable; each
    group's agents then share its real size, so every total in people is right.
    """
    sizes = group_sizes(p)
    population = p.population
    if sizes.sum() <= 0:
        raise ValueError("group sizes: at least one *_size or isk_size must be positive")
    ideal = sizes / sizes.sum() * population
    counts = np.floor(ideal).astype(int)
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[: population - counts.sum()]] += 1
    floor = np.where(sizes > 0, min(p.min_group_agents, population // len(sizes)), 0)
    while np.any(counts < floor):
        short = int(np.argmax(floor - counts))
        counts[short] += 1
        counts[int(np.argmax(counts - floor))] -= 1
    scale = np.divide(sizes, counts, out=np.zeros(len(sizes)), where=counts > 0)
    return counts, scale


def beta_shape(mean: float, sd: float) -> tuple[float, float]:
    """Beta(a, b) with this mean and s.d., the s.d. capped where a + b would fall below 1.

    Hardline-ness lives in [0, 1]; a Beta keeps the whole spread inside it (a clipped
    normal would pile members at 0 and 1, a faction's own knife edge).
    """
    concentration = max(mean * (1.0 - mean) / sd**2 - 1.0, 1.0)
    return mean * concentration, (1.0 - mean) * concentration


def spread_beta(mean: float, sd: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` hardline values around ``mean`` (ODD §5.2): Beta-distributed, all equal if sd 0."""
    if sd <= 0 or mean <= 0.0 or mean >= 1.0:
        return np.full(k, mean)
    return rng.beta(*beta_shape(mean, sd), k)


def draw_agents(
    group: int, k: int, people: float, p, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Field values for ``k`` new members of ``group`` drawn around the group's means."""
    codes = np.full(k, group, dtype=np.int8)
    if group == ISK:
        return {
            "group": codes,
            "allegiance": np.full(k, IN_ISK),
            "people": np.full(k, people),
            "hardline": np.ones(k),
            "uncertainty": np.full(k, p.extremist_uncertainty),
            "threshold": np.ones(k),
            "hardship": np.full(k, 0.5),
        }
    name = GROUPS[group].name
    spread = p.trait_spread if p.heterogeneity else 0.0

    def trait(mean: float, sd: float) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, k), 0.0, 1.0) if sd > 0 else np.full(k, mean)

    tolerance = p.tolerance_spread if p.heterogeneity else 0.0
    hardline = spread_beta(p.trait(name, "hardline"), tolerance, k, rng)
    loyalty = trait(p.trait(name, "loyalty"), spread)
    confident = hardline >= p.extremist_hardline
    values = {
        "group": codes,
        "allegiance": np.full(k, LOYAL),
        "people": np.full(k, people),
        "loyalty": loyalty,
        "baseline_loyalty": loyalty.copy(),
        "hardline": hardline,
        "uncertainty": np.where(confident, p.extremist_uncertainty, p.uncertainty),
        "threshold": trait(p.trait(name, "threshold"), p.threshold_spread),
        "hardship": rng.uniform(0.0, 1.0, k) if p.heterogeneity else np.full(k, 0.5),
        "materialism": trait(p.trait(name, "materialism"), spread),
        "pashtun": rng.random(k) < p.trait(name, "pashtun"),
    }
    for affinity in AFFINITIES:
        values[affinity] = trait(p.trait(name, affinity), spread)
    values["inclusion_stake"] = np.full(k, p.trait(name, "inclusion_stake"))
    return values
