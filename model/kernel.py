"""The compiled weekly step: every per-member rule of ODD §3 steps 3-9 in one numba pass.

Python keeps what happens once a week (the levers' schedules and live moves, events,
prisoner releases, the adaptive leadership's choice, resources) and the Mesa views; this
kernel runs the rest over the population arrays: contacts over the CSR network, loyalty
drift toward its target (``loyalty.TERMS``), relative-agreement encounters, threshold
decisions, reach, screening and intake, desertion and return, IS-K desertion, counter-IS-K
attrition, the cells' coalescence-fragmentation, leadership and attacks, and the week's
tallies, written straight into the model's record row (``reporters.columns()`` order).

Each rule is the module's own compiled function (``loyalty.outbidding``,
``defection.pressure``, ``influence.influence_round``, ``isk.coalesce_fragment``, ...);
the scalar rules of ``isk`` and ``regime`` are compiled here from their one definition,
reading the parameters from :class:`KernelParams` (the same names as ``Params``). Random
draws come from numba's generator, seeded each week from the model's own
``numpy.random.Generator`` (``model/draws.py``), so a run is reproducible from its seed.
Compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import hashlib
import os
from collections import namedtuple
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
from numba import njit

from isk_defection.model import isk, regime
from isk_defection.model.defection import crosses_threshold, pressure, reached
from isk_defection.model.draws import below, binomial, poisson, uniform
from isk_defection.model.groups import GROUPS, TALIBAN_FACTIONS
from isk_defection.model.influence import influence_round
from isk_defection.model.isk import (
    add_singletons,
    coalesce_fragment,
    concentration,
    remove_fighters,
    screen,
)
from isk_defection.model.loyalty import ALLY_CRACKDOWNS, Conditions, Traits, target_loyalty
from isk_defection.model.population import AFFINITIES, DESERTED, IN_ISK, LOYAL, REMOVED
from isk_defection.model.reporters import GROUP_COLUMNS, LEDGER, MODEL_COLUMNS

# Parameters the kernel reads, as in ``Params``: rates and strengths, then switches.
RATES = (
    "loyalty_adjustment",
    "outbidding_strength",
    "propaganda_strength",
    "fraternity_strength",
    "pashtunwali_strength",
    "repression_strength",
    "material_strength",
    "resources_initial",
    "inclusion_strength",
    "legitimacy_strength",
    "legitimacy_initial",
    "recruitment_strength",
    "peer_interactions",
    "influence_rate",
    "contagion_weight",
    "isk_reach",
    "absorptive_capacity",
    "isk_ceiling",
    "recruiter_share",
    "desertion_rate",
    "return_rate",
    "isk_desertion",
    "aid_dependence",
    "capacity_inclusion",
    "attrition_rate",
    "recruiter_attrition",
    "cell_events",
    "fragmentation",
    "fragmentation_ops",
    "decapitation_hazard",
    "decapitation_loss",
    "leadership_recovery",
    "external_max",
    "external_adjustment",
    "attack_rate",
    "attack_suppression",
    "attack_concentration",
    "provocation_strength",
    "taliban_target_share",
    "legitimacy_hit",
    "legitimacy_recovery",
)
SWITCHES = (
    "outbidding",
    "fraternity",
    "repression",
    "material",
    "pashtunwali",
    "recruitment",
    "peer_influence",
    "cascade",
    "reach",
    "isk_destination",
    "absorption",
    "desertion",
    "attrition",
    "cells",
    "decapitation",
    "external_operations",
    "provocation",
    "legitimacy",
    "security",
    "tactics",
)
INDICES = (  # groups the kernel needs: fixed by the tables, not by Params
    "crackdown_target",  # the groups ALLY_CRACKDOWNS target, in order
    "taliban",  # group codes of the Taliban factions
)
# built from the names above (a class mypy cannot see through, hence Any)
KernelParams: Any = cast(Any, namedtuple)("KernelParams", RATES + SWITCHES + INDICES)


def kernel_params(p: Any) -> Any:
    """The parameters as the kernel reads them (a typed tuple: one compiled signature).

    Tuples, not arrays: passing a tuple of plain values to a compiled function copies no
    reference counts, so the per-member rules can take it at no cost.
    """
    return KernelParams(
        *(float(getattr(p, name)) for name in RATES),
        *(bool(getattr(p, name)) for name in SWITCHES),
        tuple(target for _, target, _ in ALLY_CRACKDOWNS),
        tuple(g for g, group in enumerate(GROUPS) if group.name in TALIBAN_FACTIONS),
    )


class Members(NamedTuple):
    """The population arrays the kernel reads and writes (views: no copies)."""

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
    affinity: tuple[np.ndarray, np.ndarray, np.ndarray]  # ALLY_CRACKDOWNS' affinities
    inclusion_stake: np.ndarray
    former_isk: np.ndarray  # left IS-K: out of the fight for good


def members(pop: Any, former_isk: np.ndarray) -> Members:
    """The kernel's view of ``pop`` (rebuilt when the arrays grow, at a release).

    The compiled entry points (``step``, ``defection_risk``, ``move``, ``record_start``)
    take it, the parameters and the conditions as plain tuples (``tuple(members(...))``)
    and name their fields inside: numba types a plain tuple in C at each call, a named
    one in Python (about 0.4 ms a call here).
    """
    by_name = {name: getattr(pop, name) for name in AFFINITIES}
    affinity = tuple(by_name[name] for _, _, name in ALLY_CRACKDOWNS)
    fields = {name: getattr(pop, name) for name in Members._fields if hasattr(pop, name)}
    return Members(**(fields | {"affinity": affinity, "former_isk": former_isk}))


class Week(NamedTuple):
    """What the kernel carries from week to week besides the arrays (IS-K's and the regime's)."""

    carried: float  # unused intake capacity (the vetting pipeline)
    leadership: float
    external_share: float
    legitimacy: float
    cells: int  # number of IS-K cells in the cells' buffer


class Outcome(NamedTuple):
    """The week's results the model keeps as attributes."""

    carried: float
    capacity: float
    effort: float
    leadership: float
    external_share: float
    legitimacy: float
    cells: int
    attacks: int
    attacks_on_taliban: int
    severity: int


def fresh_cache() -> None:
    """Drop numba's cached machine code of model/ if any source it was compiled from changed.

    Numba checks a cached function against its own file only, but the kernel's machine
    code includes rules and constants from other modules (loyalty.py, isk.py, the column
    positions of reporters.py, the allegiance codes of agents/fighters.py): after an edit
    there, the cache would run the old code. Called before the first model of a process
    is built; a stamp of every source in model/ and agents/ decides. Skipped if numba's
    cache lives elsewhere (NUMBA_CACHE_DIR) or the folder is not writable.
    """
    global _CACHE_CHECKED
    if _CACHE_CHECKED or os.environ.get("NUMBA_CACHE_DIR"):
        return
    _CACHE_CHECKED = True
    here = Path(__file__).resolve().parent
    sources = sorted([*here.glob("*.py"), *(here.parent / "agents").glob("*.py")])
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()
    cache, stamp = here / "__pycache__", here / "__pycache__" / "kernel-sources.sha256"
    try:
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for compiled in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            compiled.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # read-only: numba then compiles in memory
        return


_CACHE_CHECKED = False

# the scalar rules, compiled from their one definition in isk.py and regime.py
_reach_chance = njit(cache=True)(isk.reach_chance)
_absorptive_budget = njit(cache=True)(isk.absorptive_budget)
_recruiter_chance = njit(cache=True)(isk.recruiter_chance)
_attrition_risk = njit(cache=True, inline="always")(isk.attrition_risk)  # per member
_leadership_losses = njit(cache=True)(isk.leadership_losses)
_next_leadership = njit(cache=True)(isk.next_leadership)
_next_external_share = njit(cache=True)(isk.next_external_share)
_attack_rate = njit(cache=True)(isk.attack_rate)
_capacity = njit(cache=True)(regime.capacity)
_next_legitimacy = njit(cache=True)(regime.next_legitimacy)

# positions in the record row (reporters.columns(): model columns, then per group)
_at = MODEL_COLUMNS.index
ISK_STRENGTH, ISK_AGENTS, ISK_RECRUITERS = (
    _at("isk_strength"),
    _at("isk_agents"),
    _at("isk_recruiters"),
)
ISK_CELLS, ISK_LARGEST_CELL, ISK_INTAKE = (
    _at("isk_cells"),
    _at("isk_largest_cell"),
    _at("isk_intake"),
)
ISK_CAPACITY, ISK_REMOVED, ISK_DESERTED = (
    _at("isk_capacity"),
    _at("isk_removed"),
    _at("isk_deserted"),
)
ISK_LEADERSHIP, ISK_EXTERNAL = _at("isk_leadership"), _at("isk_external_share")
ATTACKS, ON_TALIBAN, SEVERITY = _at("attacks"), _at("attacks_on_taliban"), _at("attack_severity")
LEGITIMACY, RESOURCES, EFFORT = _at("legitimacy"), _at("resources"), _at("counter_isk_effort")
TALIBAN_STRENGTH, TALIBAN_LOYALTY = _at("taliban_strength"), _at("taliban_loyalty")
DESERTERS, DEFECTIONS, DESERTIONS = _at("deserters"), _at("defections"), _at("desertions")
RETURNS, CUM_DEFECTIONS = _at("returns"), _at("cumulative_defections")
CUM_DESERTIONS, CUM_REMOVED = _at("cumulative_desertions"), _at("cumulative_isk_removed")
DEFECTION_RATE, DESERTION_RATE = _at("defection_rate"), _at("desertion_rate")
GROUP_START, PER_GROUP = len(MODEL_COLUMNS), len(GROUP_COLUMNS)
_g = GROUP_COLUMNS.index
G_MEMBERS, G_DEFECTIONS, G_DESERTIONS = _g("members"), _g("defections"), _g("desertions")
G_RETURNS, G_REMOVED, G_LEFT_ISK = _g("returns"), _g("removed"), _g("left_isk")
G_DEFECTION_RATE, G_DESERTION_RATE = _g("defection_rate"), _g("desertion_rate")
G_LOYAL_SHARE, G_LOYALTY, G_LOYALTY_ALL = _g("loyal_share"), _g("loyalty"), _g("loyalty_all")
START, JOINED, DEFECTED, DESERTED_FLOW, RETURNED, REMOVED_FLOW, LEFT_ISK = (
    LEDGER.index(flow)
    for flow in ("start", "joined", "defected", "deserted", "returned", "removed", "left_isk")
)


@njit(cache=True)
def _move(
    pop: Members, i: int, allegiance: int, flow: int, ledger: np.ndarray, flows: np.ndarray
) -> None:
    """Member ``i`` changes allegiance; the flow is logged in people for his origin group.

    Called for the few who move: passing ``pop`` copies its arrays' reference counts.
    """
    pop.allegiance[i] = allegiance
    ledger[flow, pop.group[i]] += pop.people[i]
    flows[flow, pop.group[i]] += pop.people[i]


@njit(cache=True)
def move(
    members: tuple,
    slots: np.ndarray,
    allegiance: int,
    flow: int,
    ledger: np.ndarray,
    flows: np.ndarray,
) -> None:
    """Members ``slots`` change allegiance, outside the week's rules (a caller's action)."""
    pop = Members(*members)
    for i in slots:
        _move(pop, i, allegiance, flow, ledger, flows)


@njit(cache=True)
def contacts(
    pop: Members, indptr: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member: recruiters, IS-K members and leavers (IS-K or deserted) among contacts.

    Reads only the rows of IS-K members and deserters (the network is symmetric).
    """
    n = len(pop.group)
    recruiters = np.zeros(n, dtype=np.int64)
    in_isk = np.zeros(n, dtype=np.int64)
    left = np.zeros(n, dtype=np.int64)
    for s in range(n):
        a = pop.allegiance[s]
        if a != IN_ISK and a != DESERTED:
            continue
        for e in range(indptr[s], indptr[s + 1]):
            t = indices[e]
            left[t] += 1
            if a == IN_ISK:
                in_isk[t] += 1
                recruiters[t] += pop.recruiter[s]
    return recruiters, in_isk, left


@njit(cache=True)
def deciding(pop: Members) -> np.ndarray:
    """Members who weigh their allegiance this week: the loyal and the deserters.

    Those who left IS-K are out of the fight for good and decide nothing.
    """
    a = pop.allegiance
    return (a == LOYAL) | ((a == DESERTED) & ~pop.former_isk)


@njit(cache=True, inline="always")
def left_share(p: Any, left: int, degree: int) -> float:
    """Share of one's contacts who have left (0 with the ``cascade`` switch off)."""
    return left / degree if p.cascade and degree > 0 else 0.0


@njit(cache=True)
def settle(
    pop: Members, idx: np.ndarray, c: Conditions, p: Any, recruiters: np.ndarray
) -> np.ndarray:
    """Target loyalty (``loyalty.target_loyalty``) of each member in ``idx``."""
    target = np.empty(len(idx))
    for k in range(len(idx)):
        i = idx[k]
        traits = Traits(
            pop.group[i],
            pop.baseline_loyalty[i],
            pop.hardline[i],
            pop.pashtun[i],
            (pop.affinity[0][i], pop.affinity[1][i], pop.affinity[2][i]),  # ALLY_CRACKDOWNS
            pop.materialism[i],
            pop.inclusion_stake[i],
            pop.hardship[i],
        )
        target[k] = target_loyalty(traits, c, p, recruiters[i])
    return target


@njit(cache=True)
def strength(pop: Members, allegiance: int) -> float:
    """People whose allegiance is ``allegiance``."""
    total = 0.0
    for i in range(len(pop.group)):
        if pop.allegiance[i] == allegiance:
            total += pop.people[i]
    return total


@njit(cache=True)
def defection_risk(
    members: tuple, indptr: np.ndarray, indices: np.ndarray, conditions: tuple, params: tuple
) -> float:
    """Share of loyal people whose settled pressure under ``c`` reaches threshold (§7.11)."""
    pop, c, p = Members(*members), Conditions(*conditions), KernelParams(*params)
    return _risk(pop, indptr, indices, c, p)


@njit(cache=True)
def _risk(pop: Members, indptr: np.ndarray, indices: np.ndarray, c: Conditions, p: Any) -> float:
    """``defection_risk`` on named tuples received as arguments (see ``_week``)."""
    recruiters, _, left = contacts(pop, indptr, indices)
    loyal = np.flatnonzero(pop.allegiance == LOYAL)
    settled = settle(pop, loyal, c, p, recruiters)
    crossing = everyone = 0.0
    for k in range(len(loyal)):
        i = loyal[k]
        share = left_share(p, left[i], indptr[i + 1] - indptr[i])
        everyone += pop.people[i]
        if crosses_threshold(pressure(settled[k], share, p.contagion_weight), pop.threshold[i]):
            crossing += pop.people[i]
    return crossing / everyone if everyone > 0 else 0.0


@njit(cache=True)
def step(
    members: tuple,
    indptr: np.ndarray,
    indices: np.ndarray,
    edges: np.ndarray,
    cells: np.ndarray,
    conditions: tuple,
    params: tuple,
    carried: tuple,
    counter_isk: float,
    courting: float,
    reference: float,
    dated_losses: int,
    taliban_start: float,
    seed: int,
    ledger: np.ndarray,
    flows: np.ndarray,
    row: np.ndarray,
) -> tuple[Outcome, np.ndarray]:
    """One week, ODD §3 steps 3-9; returns the outcome and the slots removed this week.

    Draws come from numba's generator, seeded with ``seed`` (drawn from the model's).
    """
    np.random.seed(seed)
    pop, c, p = Members(*members), Conditions(*conditions), KernelParams(*params)
    return _week(
        pop,
        indptr,
        indices,
        edges,
        cells,
        c,
        p,
        Week(*carried),
        counter_isk,
        courting,
        reference,
        dated_losses,
        taliban_start,
        ledger,
        flows,
        row,
    )


@njit(cache=True)
def _week(
    pop: Members,
    indptr: np.ndarray,
    indices: np.ndarray,
    edges: np.ndarray,
    cells: np.ndarray,
    c: Conditions,
    p: Any,
    state: Week,
    counter_isk: float,
    courting: float,
    reference: float,
    dated_losses: int,
    taliban_start: float,
    ledger: np.ndarray,
    flows: np.ndarray,
    row: np.ndarray,
) -> tuple[Outcome, np.ndarray]:
    """The week's rules on named tuples received as arguments.

    As arguments, their arrays' reference counts stay out of the per-member loops.
    """
    rng = None  # the compiled rules draw from numba's generator (model/draws.py)
    n = len(pop.group)
    flows[:] = 0.0
    # 3. contacts (at the start of the week)
    recruiters, in_isk, left = contacts(pop, indptr, indices)
    decides = deciding(pop)
    # 4. loyalty: drift toward the target, then encounters among the loyal
    idx = np.flatnonzero(decides)
    goal = settle(pop, idx, c, p, recruiters)
    for k in range(len(idx)):
        pop.loyalty[idx[k]] += p.loyalty_adjustment * (goal[k] - pop.loyalty[idx[k]])
    if p.peer_influence:
        loyal = pop.allegiance == LOYAL
        encounters = int(round(p.peer_interactions * np.count_nonzero(loyal) / 2))
        influence_round(
            pop.loyalty, pop.uncertainty, edges, encounters, loyal, p.influence_rate, rng
        )
    # 5. ways out: disaffection, reach, screening and intake, desertion and return
    presence = _reach_chance(strength(pop, IN_ISK), p)
    disaffected = np.zeros(n, dtype=np.bool_)
    was_deserted = np.zeros(n, dtype=np.bool_)
    applicants = np.empty(n, dtype=np.int64)
    applying = 0
    for i in range(n):
        if not decides[i]:
            continue
        was_deserted[i] = pop.allegiance[i] == DESERTED
        share = left_share(p, left[i], indptr[i + 1] - indptr[i])
        push = pressure(pop.loyalty[i], share, p.contagion_weight)
        disaffected[i] = crosses_threshold(push, pop.threshold[i])
        if not (p.isk_destination and disaffected[i]):
            continue
        if not p.reach or reached(recruiters[i], in_isk[i], presence, rng):
            applicants[applying] = i
            applying += 1
    applicants = applicants[:applying]
    capacity, carried = np.inf, state.carried
    if p.absorption:
        capacity = _absorptive_budget(strength(pop, IN_ISK), state.carried, p)
        taken = screen(pop.people[applicants], capacity, rng)
        applicants = applicants[taken]
        carried = capacity - float(pop.people[applicants].sum())
    joined = np.zeros(n, dtype=np.bool_)
    for recruit in applicants:  # slot order
        joined[recruit] = True
        _move(pop, int(recruit), IN_ISK, DEFECTED, ledger, flows)
        pop.loyalty[recruit] = 0.0
        pop.recruiter[recruit] = uniform(rng) < _recruiter_chance(p)
    count = add_singletons(cells, state.cells, len(applicants))
    if p.desertion:
        for i in range(n):
            if not decides[i] or joined[i]:
                continue
            if disaffected[i] and not was_deserted[i] and uniform(rng) < p.desertion_rate:
                _move(pop, i, DESERTED, DESERTED_FLOW, ledger, flows)
            elif was_deserted[i] and not disaffected[i] and uniform(rng) < p.return_rate:
                _move(pop, i, LOYAL, RETURNED, ledger, flows)
        # 6. IS-K desertion: out of the fight for good
        leaving = 0
        for i in range(n):
            if pop.allegiance[i] == IN_ISK and uniform(rng) < p.isk_desertion:
                _move(pop, i, DESERTED, LEFT_ISK, ledger, flows)
                pop.recruiter[i], pop.former_isk[i] = False, True
                leaving += 1
        count = remove_fighters(cells, count, leaving, rng)
    # 7. counter-IS-K operations within the regime's capacity; cells evolve
    taliban = np.zeros(ledger.shape[1], dtype=np.bool_)
    for g in p.taliban:
        taliban[g] = True
    loyal_taliban = 0.0
    for i in range(n):
        if pop.allegiance[i] == LOYAL and taliban[pop.group[i]]:
            loyal_taliban += pop.people[i]
    share = loyal_taliban / taliban_start if taliban_start > 0 else 1.0
    effort = counter_isk * _capacity(c.resources, share, c.benefit, p)
    removed = np.empty(n, dtype=np.int64)
    caught = 0
    if p.attrition:
        for i in range(n):
            if pop.allegiance[i] != IN_ISK:
                continue
            if uniform(rng) < _attrition_risk(effort, pop.recruiter[i], p):
                _move(pop, i, REMOVED, REMOVED_FLOW, ledger, flows)
                pop.recruiter[i] = False
                removed[caught] = i
                caught += 1
        count = remove_fighters(cells, count, caught, rng)
    fighters = cells[:count].sum()
    if p.cells:
        events = int(round(p.cell_events * fighters))
        nu = min(p.fragmentation + p.fragmentation_ops * effort, 1.0)
        count = coalesce_fragment(cells, count, events, nu, rng)
    # 8. leadership, operations abroad, attacks at home, legitimacy
    losses = _leadership_losses(dated_losses, effort, p, rng)
    leadership = _next_leadership(state.leadership, losses, p)
    external = _next_external_share(state.external_share, effort, p)
    size = strength(pop, IN_ISK)
    rate = _attack_rate(size, effort, leadership, external, courting, p)
    attacks = poisson(rng, rate) if size > 0 else 0
    on_taliban = binomial(rng, attacks, p.taliban_target_share) if attacks > 0 else 0
    severity, typical = attacks, 1.0
    if p.cells:
        severity = 0
        if count > 0:
            typical = fighters / count
            for _ in range(attacks):
                severity += cells[below(rng, count)]
    severity = int(round(severity * concentration(external, p)))  # fewer, larger attacks
    legitimacy = _next_legitimacy(state.legitimacy, reference, severity, typical, p)
    outcome = Outcome(
        carried,
        capacity,
        effort,
        leadership,
        external,
        legitimacy,
        count,
        attacks,
        on_taliban,
        severity,
    )
    tally(pop, cells[:count], outcome, c.resources, p, ledger, flows, row)
    return outcome, removed[:caught]


@njit(cache=True)
def record_start(
    members: tuple,
    cells: np.ndarray,
    start: tuple,
    resources: float,
    params: tuple,
    ledger: np.ndarray,
    flows: np.ndarray,
    row: np.ndarray,
) -> None:
    """Week 0's columns, tallied as every week's (``start``: an ``Outcome`` at week 0)."""
    pop, p = Members(*members), KernelParams(*params)
    tally(pop, cells, Outcome(*start), resources, p, ledger, flows, row)


@njit(cache=True)
def tally(
    pop: Members,
    cells: np.ndarray,
    week: Outcome,
    resources: float,
    p: Any,
    ledger: np.ndarray,
    flows: np.ndarray,
    row: np.ndarray,
) -> None:
    """The week's model columns (ODD §7.12), in people, written into ``row``.

    One pass over the members; the per-group columns follow reporters.GROUP_COLUMNS.
    """
    groups = ledger.shape[1]
    members = np.zeros(groups)  # loyal people
    loyalty = np.zeros(groups)  # their loyalty, people-weighted
    away = np.zeros(groups)  # deserted from the camp (not those who left IS-K)
    deserters = isk_people = isk_recruiters = 0.0
    isk_agents = 0
    for i in range(len(pop.group)):
        g, a, w = pop.group[i], pop.allegiance[i], pop.people[i]
        if a == LOYAL:
            members[g] += w
            loyalty[g] += w * pop.loyalty[i]
        elif a == IN_ISK:
            isk_people += w
            isk_agents += 1
            if pop.recruiter[i]:
                isk_recruiters += w
        elif a == DESERTED:
            deserters += w
            if not pop.former_isk[i]:
                away[g] += w
    ever = ledger[START] + ledger[JOINED]
    taliban = _total(members, p.taliban)
    fighters = ever[:-1].sum()  # everyone ever in a group other than IS-K
    row[ISK_STRENGTH], row[ISK_AGENTS], row[ISK_RECRUITERS] = isk_people, isk_agents, isk_recruiters
    row[ISK_CELLS], row[ISK_LARGEST_CELL] = len(cells), cells.max() if len(cells) else 0
    row[ISK_INTAKE], row[ISK_CAPACITY] = flows[DEFECTED].sum(), week.capacity
    row[ISK_REMOVED], row[ISK_DESERTED] = flows[REMOVED_FLOW].sum(), flows[LEFT_ISK].sum()
    row[ISK_LEADERSHIP], row[ISK_EXTERNAL] = week.leadership, week.external_share
    row[ATTACKS], row[ON_TALIBAN], row[SEVERITY] = (
        week.attacks,
        week.attacks_on_taliban,
        week.severity,
    )
    row[LEGITIMACY], row[RESOURCES], row[EFFORT] = week.legitimacy, resources, week.effort
    row[TALIBAN_STRENGTH] = taliban
    row[TALIBAN_LOYALTY] = _mean(_total(loyalty, p.taliban), taliban)
    row[DESERTERS], row[DEFECTIONS] = deserters, flows[DEFECTED].sum()
    row[DESERTIONS], row[RETURNS] = flows[DESERTED_FLOW].sum(), flows[RETURNED].sum()
    row[CUM_DEFECTIONS], row[CUM_DESERTIONS] = ledger[DEFECTED].sum(), ledger[DESERTED_FLOW].sum()
    row[CUM_REMOVED] = ledger[REMOVED_FLOW].sum()
    row[DEFECTION_RATE] = _share(ledger[DEFECTED][:-1].sum(), fighters)
    row[DESERTION_RATE] = _share(away[:-1].sum(), fighters)
    for g in range(groups - 1):  # GROUP_COLUMNS, in order (people_per_agent set once)
        at = GROUP_START + g * PER_GROUP
        row[at + G_MEMBERS] = members[g]
        row[at + G_DEFECTIONS] = flows[DEFECTED, g]
        row[at + G_DESERTIONS] = flows[DESERTED_FLOW, g]
        row[at + G_RETURNS] = flows[RETURNED, g]
        row[at + G_REMOVED] = flows[REMOVED_FLOW, g]
        row[at + G_LEFT_ISK] = flows[LEFT_ISK, g]
        row[at + G_DEFECTION_RATE] = _share(ledger[DEFECTED, g], ever[g])
        row[at + G_DESERTION_RATE] = _share(away[g], ever[g])
        row[at + G_LOYAL_SHARE] = _share(members[g], ever[g])
        row[at + G_LOYALTY] = _mean(loyalty[g], members[g])
        row[at + G_LOYALTY_ALL] = _mean(loyalty[g], ever[g])


@njit(cache=True)
def _total(values: np.ndarray, codes: tuple) -> float:
    """The sum of ``values`` over the group ``codes``."""
    total = 0.0
    for g in codes:
        total += values[g]
    return total


@njit(cache=True, inline="always")
def _mean(total: float, count: float) -> float:
    return total / count if count else np.nan


@njit(cache=True, inline="always")
def _share(part: float, whole: float) -> float:
    """A share in [0, 1]: ``part`` of ``whole`` people (sums of weights round in the last bit)."""
    share = _mean(part, whole)
    return 1.0 if share > 1.0 else share  # NaN (nobody ever) stays NaN
