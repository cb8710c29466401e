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

from typing import Any

import numpy as np
from numba import njit
from numba.extending import register_jitable

from isk_defection.model.draws import below, permutation, uniform
from isk_defection.model.parameters import Params

ABSORPTION_WEEKS = 4  # unused intake capacity is kept this long (a vetting pipeline)


class Cells:
    """IS-K's cell structure as a list of cell sizes (coalescence-fragmentation).

    The sizes live in a buffer the step kernel updates in place (``sizes`` is a view of
    its first ``count`` entries); the rules are the compiled functions below. With
    ``active`` False (the ``cells`` switch off) cells never evolve and every attack has
    severity 1: the switch acts here (and in the kernel's reading of it) only.
    """

    def __init__(self, fighters: int = 0, active: bool = True, capacity: int = 0) -> None:
        self.buffer = np.ones(max(fighters, capacity, 1), dtype=np.int64)  # cells <= fighters
        self.count = fighters
        self.active = active

    @property
    def sizes(self) -> np.ndarray:
        """The cells' sizes (a view: the kernel's changes show through)."""
        return self.buffer[: self.count]

    @sizes.setter
    def sizes(self, sizes: np.ndarray) -> None:
        sizes = np.asarray(sizes, dtype=np.int64)
        self.buffer = np.ones(max(int(sizes.sum()), 1), dtype=np.int64)  # room to shatter
        self.buffer[: len(sizes)] = sizes
        self.count = len(sizes)

    def reserve(self, cells: int) -> None:
        """Room for ``cells`` cells (at most one per IS-K member): grown before a release."""
        if len(self.buffer) < cells:
            grown = np.ones(cells, dtype=np.int64)
            grown[: self.count] = self.sizes
            self.buffer = grown

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
        return float(self.sizes.mean()) if self.count else 1.0

    def add(self, fighters: int) -> None:
        """Newcomers (defectors, freed prisoners) start as singletons."""
        self.reserve(self.count + fighters)
        self.count = add_singletons(self.buffer, self.count, fighters)

    def remove(self, fighters: int, rng: np.random.Generator) -> None:
        """Remove random fighters: each cell loses in proportion to its size."""
        self.count = remove_fighters(self.buffer, self.count, fighters, rng)

    def evolve(self, events: int, fragmentation: float, rng: np.random.Generator) -> None:
        """Run ``events`` coalescence-fragmentation events (``coalesce_fragment``)."""
        if self.active:
            self.count = coalesce_fragment(self.buffer, self.count, events, fragmentation, rng)

    def attack_severities(self, attacks: int, rng: np.random.Generator) -> np.ndarray:
        """Severities of ``attacks`` attacks, each by a cell chosen uniformly (1 if inactive)."""
        if not self.active:
            return np.ones(attacks, dtype=np.int64)
        if attacks == 0 or self.count == 0:
            return np.zeros(0, dtype=np.int64)
        return self.sizes[rng.integers(0, self.count, attacks)]


@njit(cache=True)
def add_singletons(sizes: np.ndarray, count: int, fighters: int) -> int:
    """Append ``fighters`` cells of one; return the new number of cells."""
    sizes[count : count + fighters] = 1
    return count + fighters


@njit(cache=True)
def remove_fighters(sizes: np.ndarray, count: int, fighters: int, rng: Any) -> int:
    """Remove ``fighters`` fighters picked uniformly without replacement; drop empty cells.

    One fighter at a time, each cell hit in proportion to its current size: a draw from
    the multivariate hypergeometric distribution. Returns the new number of cells.
    """
    total = 0
    for c in range(count):
        total += sizes[c]
    for _ in range(min(fighters, total)):
        pick = below(rng, total)
        c = 0
        while pick >= sizes[c]:
            pick -= sizes[c]
            c += 1
        sizes[c] -= 1
        total -= 1
    return _nonempty(sizes, count, sizes)


@njit(cache=True)
def _nonempty(source: np.ndarray, count: int, sizes: np.ndarray) -> int:
    """Copy the non-empty cells among ``source[:count]`` to the front of ``sizes``."""
    kept = 0
    for c in range(count):
        if source[c] > 0:
            sizes[kept] = source[c]
            kept += 1
    return kept


@njit(cache=True)
def coalesce_fragment(
    sizes: np.ndarray, count: int, events: int, fragmentation: float, rng: Any
) -> int:
    """Run ``events`` coalescence-fragmentation events on the cells; return their number.

    At each event a fighter is picked uniformly (his cell in proportion to its size);
    with chance ``fragmentation`` his cell shatters into singletons, otherwise it merges
    with the cell of a second fighter picked uniformly (nothing if the same cell).
    Fighters hold positions 0..total-1; each cell is a linked list of positions, so a
    merge relabels the smaller cell's fighters and a shattering its own. A cell emptied by
    a merge gives its number to the next new cell: there are never more than ``total``.
    """
    total = 0
    for c in range(count):
        total += sizes[c]
    if total < 2 or events <= 0:
        return count
    size = np.zeros(total, dtype=np.int64)  # at most one cell per fighter
    cell_of = np.empty(total, dtype=np.int64)
    after = np.full(total, -1, dtype=np.int64)  # next position in the same cell
    head = np.empty(total, dtype=np.int64)
    tail = np.empty(total, dtype=np.int64)
    emptied = np.empty(total, dtype=np.int64)  # numbers of cells emptied by merges
    free = 0
    position = 0
    for c in range(count):
        size[c], head[c] = sizes[c], position
        for _ in range(sizes[c]):
            cell_of[position] = c
            after[position] = position + 1
            position += 1
        after[position - 1] = -1
        tail[c] = position - 1
    cells = count
    for _ in range(events):
        cell = cell_of[below(rng, total)]
        if uniform(rng) < fragmentation:
            freed = after[head[cell]]
            after[head[cell]], tail[cell], size[cell] = -1, head[cell], 1
            while freed != -1:
                following = after[freed]
                if free > 0:
                    free -= 1
                    new = emptied[free]
                else:
                    new = cells
                    cells += 1
                cell_of[freed], after[freed], size[new] = new, -1, 1
                head[new] = tail[new] = freed
                freed = following
            continue
        other = cell_of[below(rng, total)]
        if other == cell:
            continue
        if size[cell] < size[other]:
            cell, other = other, cell
        moving = head[other]
        while moving != -1:
            cell_of[moving] = cell
            moving = after[moving]
        after[tail[cell]], tail[cell] = head[other], tail[other]
        size[cell] += size[other]
        size[other] = 0
        emptied[free] = other
        free += 1
    return _nonempty(size, cells, sizes)


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
    fewer = concentration(external_share, p)
    return p.attack_rate * strength / 1_000.0 * leadership * at_home * suppressed * provoked / fewer


@register_jitable  # plain Python here; compiled into the kernel's callers
def concentration(external_share: float, p: Params) -> float:
    """How much larger, and so how much rarer, IS-K's attacks at home are (ODD §7.9).

    The turn to operations abroad (Kerman and Moscow, 2024) came with fewer, larger attacks
    inside Afghanistan while IS-K's strength held (UN Monitoring Team 2024): the attacks'
    number is divided and each one's severity multiplied by 1 + ``attack_concentration`` x
    the external share, so the harm at home falls only with the effort moved abroad. 1 with
    the ``tactics`` switch off (the switch acts here only).
    """
    if not p.tactics:
        return 1.0
    return 1.0 + p.attack_concentration * external_share


def reach_chance(strength: float, p: Params) -> float:
    """Chance a member with no IS-K contact meets IS-K this week: grows with its presence."""
    return float(1.0 - np.exp(-p.isk_reach * strength / 1_000.0))


def absorptive_budget(strength: float, carried: float, p: Params) -> float:
    """People IS-K can vet and absorb this week.

    A weekly intake per member plus what it left unused in the last weeks (a vetting
    pipeline of ``ABSORPTION_WEEKS`` weeks), less what it took beyond its budget at the
    margin (``carried`` < 0: ``screen``'s last applicant is owed to the next weeks).
    """
    weekly = p.absorptive_capacity * strength * room_to_grow(strength, p)
    return weekly + min(carried, (ABSORPTION_WEEKS - 1) * weekly)


@register_jitable  # plain Python here; compiled into the kernel's callers
def room_to_grow(strength: float, p: Params) -> float:
    """The share of its intake per member IS-K still accepts at its size (ODD §7.6).

    Shapiro's (2013) security-efficiency trade-off: every recruit of a larger clandestine
    group adds more risk of penetration and is harder to control, so IS-K admits fewer per
    member as it grows and none at ``isk_ceiling``; intake then grows IS-K logistically,
    and no sequence of policies takes it past the ceiling by recruitment (releases are
    inputs). 1 with the ``security`` switch off (the switch acts here only).
    """
    if not p.security:
        return 1.0
    return max(0.0, 1.0 - strength / p.isk_ceiling)


@njit(cache=True)
def screen(people: np.ndarray, budget: float, rng: Any) -> np.ndarray:
    """Which applicants IS-K takes: in one random order, while their people fit the budget.

    The first applicant whose people would take the running total above ``budget`` is
    taken with chance (room left) / (his people), and screening stops there. An agent
    stands for many people, so a budget smaller than one agent would otherwise admit
    nobody at a coarse resolution and IS-K's intake would depend on the number of agents
    (ODD §7.15); with this margin the expected intake is the budget itself whenever the
    applicants would fill it, at any resolution. What the last one takes beyond the
    budget is owed to the next weeks (``absorptive_budget`` carries it as a debt), so the
    intake over any run stays within the weekly budgets plus one agent's people.

    Returns a boolean mask over the applicants.
    """
    order = permutation(rng, len(people))
    accepted = np.zeros(len(people), dtype=np.bool_)
    total = 0.0
    for a in order:
        if total + people[a] > budget + 1e-9:
            room = budget - total
            accepted[a] = room > 0.0 and uniform(rng) * people[a] < room
            break
        total += people[a]
        accepted[a] = True
    return accepted


def recruiter_chance(p: Params) -> float:
    """Chance a new IS-K member recruits.

    0 with the ``recruitment`` switch off: no recruiters, so nobody is exposed to one or
    reached through one (the switch acts here only).
    """
    return p.recruiter_share if p.recruitment else 0.0


def leadership_losses(dated: int, effort: float, p: Params, rng: Any) -> int:
    """Leadership losses this week: the dated events and one with chance hazard x effort."""
    if not p.decapitation:
        return 0
    return dated + int(uniform(rng) < min(p.decapitation_hazard * effort, 1.0))


def attrition_risk(effort: float, recruiter: bool, p: Params) -> float:
    """Weekly chance an IS-K member is killed or captured (ODD §7.7)."""
    exposure = p.recruiter_attrition if recruiter else 1.0
    return min(p.attrition_rate * effort * exposure, 1.0)


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
