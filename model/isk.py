"""IS-K as a bounded, clandestine organisation: reach, intake, cells, attacks, losses.

Its reach grows with its presence, its intake is screened and bounded, its leadership
and its operations abroad set its attacks at home, and counter-IS-K operations remove
its members (ODD §7.6-7.9).

Cells follow Bohorquez, Gourley, Dixon, Spagat & Johnson (2009): at each event a
fighter is picked at random; with probability nu his cell shatters into singletons,
otherwise it merges with the cell of another random fighter. Attack severity is the
size of the attacking cell. Only cell sizes are tracked (a multiset), which is all the
rule and the severities need.
"""

from __future__ import annotations

import numpy as np

from isk_defection.model.parameters import Params

ABSORPTION_WEEKS = 4  # unused intake capacity is kept this long (a vetting pipeline)


class Cells:
    """IS-K's cell structure as a list of cell sizes (coalescence-fragmentation).

    With ``active`` False (the ``cells`` switch off) cells never evolve and every attack
    has severity 1: the switch acts here only.
    """

    def __init__(self, fighters: int = 0, active: bool = True) -> None:
        self.sizes = np.ones(fighters, dtype=np.int64)
        self.active = active

    @property
    def fighters(self) -> int:
        """Fighters in all cells."""
        return int(self.sizes.sum())

    @property
    def typical_severity(self) -> float:
        """The severity of a typical attack: the mean cell size (1 if inactive)."""
        return self.mean_size if self.active else 1.0

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
        cell's own, so no event scans all cells. A cell's positions are its contiguous
        range plus the fighters merged into it since (``_Positions``): absorbing a small
        cell never lists a large one. All draws are made at once: events do not change
        the number of fighters.
        """
        total = self.fighters
        if not self.active or total < 2 or events <= 0:
            return
        picks = rng.integers(0, total, size=(events, 2))
        shatters = (rng.random(events) < fragmentation).tolist()
        sizes = self.sizes.tolist()
        cell_of = np.repeat(np.arange(len(sizes)), self.sizes).tolist()
        where = _Positions((np.cumsum(self.sizes) - self.sizes).tolist(), list(sizes))
        for first, second, shatter in zip(
            picks[:, 0].tolist(), picks[:, 1].tolist(), shatters, strict=True
        ):
            cell = cell_of[first]
            if shatter:
                kept, *freed = where.of(cell)
                for fighter in freed:
                    cell_of[fighter] = len(sizes)
                    where.add(fighter)
                    sizes.append(1)
                where.reset(cell, kept)
                sizes[cell] = 1
                continue
            other = cell_of[second]
            if other == cell:
                continue
            if sizes[cell] < sizes[other]:
                cell, other = other, cell
            moving = where.of(other)
            for fighter in moving:
                cell_of[fighter] = cell
            where.absorb(cell, other, moving)
            sizes[cell] += sizes[other]
            sizes[other] = 0
        merged = np.array(sizes, dtype=np.int64)
        self.sizes = merged[merged > 0]

    def attack_severities(self, attacks: int, rng: np.random.Generator) -> np.ndarray:
        """Severities of ``attacks`` attacks, each by a cell chosen uniformly (1 if inactive)."""
        if not self.active:
            return np.ones(attacks, dtype=np.int64)
        if attacks == 0 or len(self.sizes) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.sizes[rng.integers(0, len(self.sizes), attacks)]


class _Positions:
    """Where each cell's fighters sit: a contiguous range, plus those merged in since."""

    def __init__(self, starts: list[int], spans: list[int]) -> None:
        self.starts, self.spans = starts, spans
        self.merged: list[list[int] | None] = [None] * len(starts)

    def of(self, cell: int) -> list[int]:
        """Every position of ``cell``, range first, in the order fighters joined it."""
        own = list(range(self.starts[cell], self.starts[cell] + self.spans[cell]))
        return own + self.merged[cell] if self.merged[cell] else own

    def add(self, fighter: int) -> None:
        """A new singleton cell at ``fighter``'s position."""
        self.starts.append(fighter)
        self.spans.append(1)
        self.merged.append(None)

    def reset(self, cell: int, fighter: int) -> None:
        """``cell`` now holds ``fighter`` alone."""
        self.starts[cell], self.spans[cell], self.merged[cell] = fighter, 1, None

    def absorb(self, cell: int, other: int, moving: list[int]) -> None:
        """``other``'s fighters (``moving``) join ``cell``; ``other`` is empty."""
        if self.merged[cell] is None:
            self.merged[cell] = []
        self.merged[cell].extend(moving)
        self.spans[other], self.merged[other] = 0, None


def courting(levers: dict[str, float]) -> float:
    """How far the Taliban court the West: women's rights and foreign cooperation [Pereira]."""
    return (levers["womens_rights"] + levers["foreign_cooperation"]) / 2.0


def attack_rate(
    strength: float,
    effort: float,
    leadership: float,
    external_share: float,
    courting_level: float,
    p: Params,
) -> float:
    """Expected attacks inside Afghanistan per week (ODD §7.9).

    They grow with IS-K's strength and its leadership's capacity, fall with effective
    counter-IS-K effort and with the share of effort IS-K spends abroad, and rise when the
    Taliban court the West (Pereira's provocation).
    """
    provoked = 1.0 + (p.provocation_strength * courting_level if p.provocation else 0.0)
    at_home = 1.0 - external_share
    suppressed = np.exp(-p.attack_suppression * effort)
    return p.attack_rate * strength / 1_000.0 * leadership * at_home * suppressed * provoked


def reach_chance(strength: float, p: Params) -> float:
    """Chance a member with no IS-K contact meets IS-K this week: grows with its presence."""
    return float(1.0 - np.exp(-p.isk_reach * strength / 1_000.0))


def absorptive_budget(strength: float, carried: float, p: Params) -> float:
    """People IS-K can vet and absorb this week.

    A weekly intake per member plus what it left unused in the last weeks (a vetting
    pipeline of ``ABSORPTION_WEEKS`` weeks), so agents standing for many people can enter.
    """
    weekly = p.absorptive_capacity * strength
    return weekly + min(carried, (ABSORPTION_WEEKS - 1) * weekly)


def screen(people: np.ndarray, budget: float, rng: np.random.Generator) -> np.ndarray:
    """Which applicants IS-K takes: in random order while their people fit the budget.

    Returns a boolean mask over the applicants; the accepted people never exceed ``budget``.
    """
    order = rng.permutation(len(people))
    fits = np.cumsum(people[order]) <= budget + 1e-9
    accepted = np.zeros(len(people), dtype=bool)
    accepted[order[fits]] = True
    return accepted


def recruiter_chance(p: Params) -> float:
    """Chance a new IS-K member recruits.

    0 with the ``recruitment`` switch off: no recruiters, so nobody is exposed to one or
    reached through one (the switch acts here only).
    """
    return p.recruiter_share if p.recruitment else 0.0


def leadership_losses(dated: int, effort: float, p: Params, rng: np.random.Generator) -> int:
    """Leadership losses this week: the dated events and one with chance hazard x effort."""
    if not p.decapitation:
        return 0
    return dated + int(rng.random() < min(p.decapitation_hazard * effort, 1.0))


def attrition_risk(effort: float, recruiter: np.ndarray, p: Params) -> np.ndarray:
    """Weekly chance each IS-K member is killed or captured (ODD §7.7)."""
    exposure = np.where(recruiter, p.recruiter_attrition, 1.0)
    return np.minimum(p.attrition_rate * effort * exposure, 1.0)


def next_leadership(leadership: float, losses: int, p: Params) -> float:
    """Attack capacity after recovery and this week's leadership losses (Jordan 2009)."""
    recovered = leadership + p.leadership_recovery * (1.0 - leadership)
    return recovered * (1.0 - p.decapitation_loss) ** losses


def next_external_share(share: float, effort: float, p: Params) -> float:
    """IS-K moves attack effort abroad as counter-IS-K pressure at home rises."""
    if not p.external_operations:
        return 0.0
    target = p.external_max * min(effort, 1.0)
    return share + p.external_adjustment * (target - share)
