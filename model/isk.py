"""IS-K as an organisation: cells that coalesce and fragment, attacks, and attrition.

Cells follow Bohorquez, Gourley, Dixon, Spagat & Johnson (2009): at each event a
fighter is picked at random; with probability nu his cell shatters into singletons,
otherwise it merges with the cell of another random fighter. Attack severity is the
size of the attacking cell. Only cell sizes are tracked (a multiset), which is all the
rule and the severities need.
"""

from __future__ import annotations

import numpy as np


class Cells:
    """IS-K's cell structure as a list of cell sizes (coalescence-fragmentation)."""

    def __init__(self, fighters: int = 0) -> None:
        self.sizes = np.ones(fighters, dtype=np.int64)

    @property
    def fighters(self) -> int:
        """Fighters in all cells."""
        return int(self.sizes.sum())

    @property
    def mean_size(self) -> float:
        """Mean cell size: the severity of a typical attack."""
        return float(self.sizes.mean()) if len(self.sizes) else 1.0

    def add(self, fighters: int) -> None:
        """Newcomers (defectors, freed prisoners) start as singletons."""
        self.sizes = np.concatenate([self.sizes, np.ones(fighters, dtype=np.int64)])

    def remove(self, fighters: int, rng: np.random.Generator) -> None:
        """Remove random fighters: each cell loses in proportion to its size."""
        fighters = min(fighters, self.fighters)
        if fighters <= 0:
            return
        self.sizes = self.sizes - rng.multivariate_hypergeometric(self.sizes, fighters)
        self.sizes = self.sizes[self.sizes > 0]

    def evolve(self, events: int, fragmentation: float, rng: np.random.Generator) -> None:
        """Run ``events`` coalescence-fragmentation events.

        Fighters hold positions 0..fighters-1, cell by cell; ``cell_of`` maps a position
        to its cell, so picking a fighter uniformly (a cell in proportion to its size)
        is one lookup. A merge relabels the smaller cell's fighters, a shattering the
        cell's own, so no event scans all cells. A cell's list of positions is built
        only when an event first needs it (until then it is a contiguous range). All
        draws are made at once: events do not change the number of fighters.
        """
        total = self.fighters
        if total < 2 or events <= 0:
            return
        picks = rng.integers(0, total, size=(events, 2))
        shatters = (rng.random(events) < fragmentation).tolist()
        sizes = self.sizes.tolist()
        starts = (np.cumsum(self.sizes) - self.sizes).tolist()
        cell_of = np.repeat(np.arange(len(sizes)), self.sizes).tolist()
        members: list[list[int] | None] = [None] * len(sizes)
        for first, second, shatter in zip(
            picks[:, 0].tolist(), picks[:, 1].tolist(), shatters, strict=True
        ):
            cell = cell_of[first]
            if shatter:
                for fighter in _positions(cell, members, starts, sizes)[1:]:
                    cell_of[fighter] = len(sizes)
                    members.append(None)
                    starts.append(fighter)
                    sizes.append(1)
                del members[cell][1:]
                sizes[cell] = 1
                continue
            other = cell_of[second]
            if other == cell:
                continue
            if sizes[cell] < sizes[other]:
                cell, other = other, cell
            moving = _positions(other, members, starts, sizes)
            for fighter in moving:
                cell_of[fighter] = cell
            _positions(cell, members, starts, sizes).extend(moving)
            sizes[cell] += sizes[other]
            sizes[other] = 0
        merged = np.array(sizes, dtype=np.int64)
        self.sizes = merged[merged > 0]

    def attack_severities(self, attacks: int, rng: np.random.Generator) -> np.ndarray:
        """Severities of ``attacks`` attacks, each by a cell chosen uniformly."""
        if attacks == 0 or len(self.sizes) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.sizes[rng.integers(0, len(self.sizes), attacks)]


def _positions(
    cell: int, members: list[list[int] | None], starts: list[int], sizes: list[int]
) -> list[int]:
    """The positions of ``cell``'s fighters, built from its range on first use."""
    if members[cell] is None:
        members[cell] = list(range(starts[cell], starts[cell] + sizes[cell]))
    return members[cell]


def attack_rate(strength: float, effort: float, rate: float, suppression: float) -> float:
    """Expected attacks per week: grows with IS-K's strength, falls with effective effort."""
    return rate * strength / 1_000.0 * np.exp(-suppression * effort)


def counter_isk_effort(counter_isk: float, resources: float, p: dict) -> float:
    """Counter-IS-K lever times capacity, part of which aid (resources) funds."""
    funded = resources / p["resources_initial"] if p["resources_initial"] > 0 else 1.0
    return counter_isk * ((1.0 - p["aid_dependence"]) + p["aid_dependence"] * funded)
