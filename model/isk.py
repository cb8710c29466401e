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

        Sizes live in a buffer as long as the number of fighters (the most cells there
        can be); a merged-away cell is replaced by the last one, so no event copies the
        array. The random draws for all events are made at once.
        """
        total = self.fighters
        if total < 2 or events <= 0:
            return
        buffer = np.zeros(total, dtype=np.int64)
        count = len(self.sizes)
        buffer[:count] = self.sizes
        picks = rng.integers(0, total, size=(events, 2))
        shatters = rng.random(events) < fragmentation
        for (first, second), shatter in zip(picks, shatters, strict=True):
            cumulative = np.cumsum(buffer[:count])
            cell = int(cumulative.searchsorted(first, "right"))
            if shatter:
                size = int(buffer[cell])
                buffer[cell] = 1
                buffer[count : count + size - 1] = 1
                count += size - 1
                continue
            other = int(cumulative.searchsorted(second, "right"))
            if other != cell:
                buffer[cell] += buffer[other]
                count -= 1
                buffer[other] = buffer[count]
        self.sizes = buffer[:count].copy()

    def attack_severities(self, attacks: int, rng: np.random.Generator) -> np.ndarray:
        """Severities of ``attacks`` attacks, each by a cell chosen uniformly."""
        if attacks == 0 or len(self.sizes) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.sizes[rng.integers(0, len(self.sizes), attacks)]


def attack_rate(strength: float, effort: float, rate: float, suppression: float) -> float:
    """Expected attacks per week: grows with IS-K's strength, falls with effective effort."""
    return rate * strength / 1_000.0 * np.exp(-suppression * effort)


def counter_isk_effort(counter_isk: float, resources: float, p: dict) -> float:
    """Counter-IS-K lever times capacity, part of which aid (resources) funds."""
    funded = resources / p["resources_initial"] if p["resources_initial"] > 0 else 1.0
    return counter_isk * ((1.0 - p["aid_dependence"]) + p["aid_dependence"] * funded)
