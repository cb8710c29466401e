"""DefectionModel: Taliban factions and allied militants under policy moves, IS-K poaching.

One step is one week. Per-agent state lives in NumPy arrays (``model.population``) and
is updated vectorised; Mesa agents are views onto it, created when ``model.agents`` (or
``agents_by_type``, ``agent_at``) is first used. An agent keeps its ``unique_id`` for
life: when its member defects, deserts or returns, the same agent changes allegiance. A
run nobody inspects per agent (a sweep, a 1:1-scale run) never builds them. See
docs/ODD.md for the full rules; :data:`SUBMODELS` is the ODD §7 table of contents.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import mesa
import numpy as np

from isk_defection.agents import KINDS, Fighter, ISKMember
from isk_defection.model import defection, influence, isk, loyalty, network, regime
from isk_defection.model.groups import GROUP_INDEX, GROUPS, ISK, TALIBAN_FACTIONS
from isk_defection.model.leadership import ADAPTIVE_LEVERS, choose_levers
from isk_defection.model.parameters import Params, collects_agent_data, expand_aliases, resolve
from isk_defection.model.policy import LEVERS, Policy
from isk_defection.model.population import (
    DESERTED,
    IN_ISK,
    LOYAL,
    REMOVED,
    Population,
    agent_counts,
    draw_agents,
)
from isk_defection.model.presets import preset as preset_overrides
from isk_defection.model.reporters import LEDGER, make_datacollector, statistics

SUBMODELS = (  # ODD §7: (section, what, where)
    ("7.1", "policy: lever schedules, live moves, events", "model/policy.py"),
    ("7.2", "resources", "regime.next_resources"),
    ("7.3", "target loyalty (one term per mechanism)", "loyalty.TERMS"),
    ("7.4", "loyalty drift", "DefectionModel._update_loyalty"),
    ("7.5", "peer influence: relative agreement", "model/influence.py"),
    ("7.6", "ways out: IS-K (reach, screened intake), desertion, return", "DefectionModel._decide"),
    ("7.7", "counter-IS-K operations within the regime's capacity", "DefectionModel._counter_isk"),
    ("7.8", "IS-K cells: coalescence and fragmentation", "isk.Cells"),
    ("7.9", "IS-K leadership, operations abroad, attacks, legitimacy", "DefectionModel._attacks"),
    ("7.10", "prisoner release", "DefectionModel._release"),
    ("7.11", "adaptive leadership", "model/leadership.py"),
    ("7.12", "observation", "model/reporters.py"),
    ("7.13", "network", "model/network.py"),
)


def _seed(rng: Any) -> int | None:
    """A non-negative integer seed from an int or a whole-number string (Solara's InputText)."""
    if isinstance(rng, str) and rng.strip().isdigit():
        rng = int(rng.strip())
    if rng is not None and (
        isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0
    ):
        raise ValueError(f"rng: must be a non-negative integer seed (got {rng!r})")
    return None if rng is None else int(rng)


class DefectionModel(mesa.Model):
    """Members update loyalty weekly; the disaffected join IS-K if it takes them, or desert."""

    taliban_factions = TALIBAN_FACTIONS

    def __init__(
        self,
        preset: str = "baseline",
        population: int | None = None,
        rng: int | None = None,
        scenario: mesa.experimental.scenarios.Scenario | None = None,
        **overrides: Any,
    ) -> None:
        if scenario is not None:  # Mesa's SolaraViz passes one on Reset: its values are ours
            values = {k: v for k, v in vars(scenario).items() if not k.startswith("_")}
            scenario_rng = values.pop("rng", None)
            rng = scenario_rng if rng is None else rng
            overrides = values | overrides
        seed = _seed(rng)
        if population is not None:
            overrides["population"] = population
        self.p: Params = resolve(preset_overrides(preset) | expand_aliases(overrides))
        super().__init__(rng=seed)
        self.preset = preset
        self.seed = seed
        self.adaptive = self.p.adaptive_leadership
        self.policy = Policy({name: getattr(self.p, name) for name in LEVERS})
        if self.p.release_week >= 0:
            self.policy.event_weeks["prisoner_release"] = [self.p.release_week]
        if self.p.decapitation_week >= 0:
            self.policy.event_weeks["decapitation"] = [self.p.decapitation_week]
        self.levers = self.policy.levers_at(0)
        self.resources = self.p.resources_initial
        self.legitimacy = self.p.legitimacy_initial
        self.leadership, self.external_share, self.carried_capacity = 1.0, 0.0, 0.0
        self.attacks = self.attacks_on_taliban = self.severity = 0
        self.effort = self.capacity = 0.0
        self._populate()
        self.datacollector = make_datacollector(collects_agent_data(self.p))
        self.stats = statistics(self)
        self.datacollector.collect(self)

    # ---- set-up -------------------------------------------------------------------
    def _populate(self) -> None:
        counts, self.people_per_agent = agent_counts(self.p)
        self.population = Population()
        draws = [
            draw_agents(code, int(k), self.people_per_agent[code], self.p, self.rng)
            for code, k in enumerate(counts)
        ]
        self.population.append(
            {
                f: np.concatenate([d.get(f, np.zeros(len(d["group"]))) for d in draws])
                for f in Population.FIELDS
            }
        )
        isk_slots = np.flatnonzero(self.population.group == ISK)
        recruiters = isk_slots[self.rng.random(len(isk_slots)) < isk.recruiter_chance(self.p)]
        self.population.recruiter[recruiters] = True
        self.former_isk = np.zeros(self.population.n, dtype=bool)  # left IS-K: out for good
        if self.p.network == "complete":
            self.network = network.complete_network(self.population.n)
        else:
            self.network = network.clustered_network(self.population, recruiters, self.p, self.rng)
        self.edges = network.edge_list(self.network)
        self.cells = isk.Cells(len(isk_slots), active=self.p.cells)
        self.ledger = {k: np.zeros(len(GROUPS) + 1) for k in LEDGER}
        self.ledger["start"][:] = self.population.people_in(LOYAL) + self.population.people_in(
            IN_ISK
        )
        self.week_flows = {k: np.zeros(len(GROUPS) + 1) for k in LEDGER if k != "start"}
        taliban = [GROUP_INDEX[f] for f in TALIBAN_FACTIONS]
        self.taliban_codes = np.array(taliban)
        self.taliban_start = float(self.ledger["start"][taliban].sum())
        self._views: list[Fighter | None] | None = None  # built on first use

    # ---- Mesa agents: views onto the arrays, built on first use -------------------
    @property
    def agents(self) -> mesa.agentset.AgentSet:
        """Mesa's set of all agents in the model (not removed)."""
        self._build_views()
        return super().agents

    @property
    def agents_by_type(self) -> dict[type, mesa.agentset.AgentSet]:
        """Mesa's agent sets by agent class."""
        self._build_views()
        return super().agents_by_type

    @property
    def agent_types(self) -> list[type]:
        """The agent classes present in the model."""
        self._build_views()
        return super().agent_types

    @property
    def agent_at(self) -> list[Fighter | None]:
        """The Mesa agent showing each slot (None once removed)."""
        self._build_views()
        return self._views

    def _build_views(self) -> None:
        """Create the Mesa agents once, in slot order (about 5 µs and 0.25 kB each)."""
        if self._views is None:
            self._views = []
            self._add_views(np.arange(self.population.n))

    def _add_views(self, slots: np.ndarray) -> None:
        if self._views is not None:
            self._views.extend(self._view(int(slot)) for slot in slots)

    def _drop_views(self, slots: np.ndarray) -> None:
        """Removed members leave Mesa's agent set (their agent objects keep their ids)."""
        if self._views is None:
            return
        for slot in slots:
            self._views[slot].remove()
            self._views[slot] = None

    def _view(self, slot: int) -> Fighter | None:
        """The Mesa agent that shows ``slot``: its kind follows its origin group."""
        pop = self.population
        if pop.allegiance[slot] == REMOVED:
            return None
        if pop.group[slot] == ISK:
            return ISKMember(self, slot)
        return KINDS[GROUPS[pop.group[slot]].kind](self, slot)

    # ---- public helpers -----------------------------------------------------------
    @staticmethod
    def group_name(code: int) -> str:
        """Name of group ``code`` ('isk' for original IS-K members)."""
        return "isk" if code == ISK else GROUPS[code].name

    @property
    def week(self) -> int:
        """Weeks since the start (equal to Mesa's ``steps``)."""
        return self.steps

    @property
    def date(self) -> dt.date:
        """Calendar date of the current week."""
        return dt.date.fromisoformat(self.p.start_date) + dt.timedelta(weeks=self.steps)

    def move_lever(self, lever: str, value: float) -> None:
        """Set a lever from the next step on, without resetting the run (live control)."""
        self.policy.move(lever, value, self.steps + 1)

    def release_prisoners(self) -> None:
        """Schedule a prisoner release for the next step."""
        self.policy.trigger("prisoner_release", self.steps + 1)

    def kill_isk_leader(self) -> None:
        """Schedule an IS-K leadership loss for the next step."""
        self.policy.trigger("decapitation", self.steps + 1)

    def set_adaptive(self, on: bool) -> None:
        """Switch the adaptive leadership rule on or off from the next step."""
        self.adaptive = bool(on)

    # ---- one week -----------------------------------------------------------------
    def step(self) -> None:
        """One week (ODD §3): policy, regime, loyalty, ways out, IS-K operations, data."""
        self.levers = self._levers_for(self.steps)
        events = self.policy.events_at(self.steps)
        if "prisoner_release" in events:
            self._release()
        self.resources = regime.next_resources(self.resources, self.levers, self.p)
        self.week_flows = {k: np.zeros(len(GROUPS) + 1) for k in self.week_flows}
        contacts = self._contacts()
        deciding = np.flatnonzero(self._deciding())
        self._update_loyalty(deciding, contacts[0][deciding])
        self._decide(deciding, *(c[deciding] for c in contacts))
        self._counter_isk()
        self._attacks(events.count("decapitation"))
        self.stats = statistics(self)
        self.datacollector.collect(self)

    def _levers_for(self, week: int) -> dict[str, float]:
        levers = self.policy.levers_at(week)
        if not self.adaptive:
            return levers
        current = {name: self.levers[name] for name in ADAPTIVE_LEVERS}
        current |= {m.lever: m.value for m in self.policy.moves if m.week == week}
        return choose_levers(levers | current, self._defection_risk, self.p)

    def _deciding(self) -> np.ndarray:
        """Members who weigh their allegiance this week: the loyal and the deserters.

        Those who left IS-K are out of the fight for good and decide nothing.
        """
        pop = self.population
        return (pop.allegiance == LOYAL) | ((pop.allegiance == DESERTED) & ~self.former_isk)

    def _contacts(self) -> tuple[np.ndarray, ...]:
        """Per agent: recruiters, IS-K members and leavers among contacts, and degree."""
        pop = self.population
        members = np.flatnonzero(pop.allegiance == IN_ISK)
        recruiting = members[pop.recruiter[members]]
        leavers = np.flatnonzero((pop.allegiance == IN_ISK) | (pop.allegiance == DESERTED))
        return (
            network.neighbour_counts(self.network, recruiting),
            network.neighbour_counts(self.network, members),
            network.neighbour_counts(self.network, leavers),
            np.diff(self.network.indptr),
        )

    def _conditions(self, recruiter_contacts: np.ndarray, levers=None, resources=None):
        return loyalty.Conditions(
            levers=self.levers if levers is None else levers,
            resources=self.resources if resources is None else resources,
            legitimacy=self.legitimacy,
            recruiter_contacts=recruiter_contacts,
        )

    def _update_loyalty(self, deciding: np.ndarray, recruiter_contacts: np.ndarray) -> None:
        """Drift toward target loyalty, then relative-agreement encounters among the loyal."""
        pop = self.population
        target = loyalty.target_loyalty(pop, deciding, self._conditions(recruiter_contacts), self.p)
        pop.loyalty[deciding] += self.p.loyalty_adjustment * (target - pop.loyalty[deciding])
        if self.p.peer_influence:
            loyal = pop.allegiance == LOYAL
            influence.influence_round(
                pop.loyalty,
                pop.uncertainty,
                self.edges,
                int(round(self.p.peer_interactions * np.count_nonzero(loyal) / 2)),
                loyal,
                self.p.influence_rate,
                self.rng,
            )

    def _left_share(self, leaver_contacts: np.ndarray, degree: np.ndarray) -> np.ndarray:
        if not self.p.cascade:
            return np.zeros(len(leaver_contacts))
        return np.divide(
            leaver_contacts, degree, out=np.zeros(len(leaver_contacts)), where=degree > 0
        )

    def _defection_risk(self, levers: dict[str, float]) -> float:
        """Share of loyal people whose settled pressure under ``levers`` reaches threshold."""
        pop = self.population
        loyal = np.flatnonzero(pop.allegiance == LOYAL)
        if len(loyal) == 0:
            return 0.0
        recruiters, _, leavers, degree = (c[loyal] for c in self._contacts())
        c = self._conditions(recruiters, levers, regime.target_resources(levers, self.p))
        settled = loyalty.target_loyalty(pop, loyal, c, self.p)
        push = defection.pressure(
            settled, self._left_share(leavers, degree), self.p.contagion_weight
        )
        crossing = defection.crosses_threshold(push, pop.threshold[loyal])
        return float(pop.people[loyal][crossing].sum() / pop.people[loyal].sum())

    def _decide(self, deciding, recruiter_contacts, isk_contacts, leaver_contacts, degree) -> None:
        """Ways out (ODD §7.6): IS-K, if it reaches and takes them, else desertion.

        Deserters no longer disaffected may return.
        """
        pop, p = self.population, self.p
        push = defection.pressure(
            pop.loyalty[deciding], self._left_share(leaver_contacts, degree), p.contagion_weight
        )
        disaffected = defection.crosses_threshold(push, pop.threshold[deciding])
        applying = disaffected.copy() if p.isk_destination else np.zeros_like(disaffected)
        if p.reach and applying.any():  # draws for the disaffected only: the rest never apply
            chance = isk.reach_chance(self.isk_strength, p)
            applying[applying] = defection.reached(
                recruiter_contacts[applying], isk_contacts[applying], chance, self.rng
            )
        joined = applying  # of the deciding: those IS-K takes
        self.capacity = float("inf")
        if p.absorption:
            self.capacity = isk.absorptive_budget(self.isk_strength, self.carried_capacity, p)
            joined = np.zeros_like(applying)
            joined[applying] = isk.screen(pop.people[deciding[applying]], self.capacity, self.rng)
            self.carried_capacity = self.capacity - float(pop.people[deciding[joined]].sum())
        was_deserted = pop.allegiance[deciding] == DESERTED
        self.join_isk(deciding[joined])
        if not p.desertion:
            return
        leaving = deciding[disaffected & ~joined & ~was_deserted]
        self.desert(leaving[self.rng.random(len(leaving)) < p.desertion_rate])
        returning = deciding[~disaffected & was_deserted]
        self.rejoin(returning[self.rng.random(len(returning)) < p.return_rate])
        self._isk_desertion()

    def _move(self, slots: np.ndarray, allegiance: int, flow: str) -> None:
        """Change the allegiance of ``slots`` and log the flow per origin group, in people."""
        pop = self.population
        people = np.bincount(pop.group[slots], weights=pop.people[slots], minlength=len(GROUPS) + 1)
        self.week_flows[flow] += people
        self.ledger[flow] += people
        pop.allegiance[slots] = allegiance

    def join_isk(self, slots: np.ndarray) -> None:
        """Members join IS-K: new singleton cells; a share become recruiters."""
        if len(slots) == 0:
            return
        pop = self.population
        self._move(slots, IN_ISK, "defected")
        pop.loyalty[slots] = 0.0
        pop.recruiter[slots] = self.rng.random(len(slots)) < isk.recruiter_chance(self.p)
        self.cells.add(len(slots))

    def desert(self, slots: np.ndarray) -> None:
        """Members leave the fight: home, abroad or to the armed opposition."""
        self._move(slots, DESERTED, "deserted")

    def rejoin(self, slots: np.ndarray) -> None:
        """Deserters come back to the Taliban-led camp."""
        self._move(slots, LOYAL, "returned")

    def _isk_desertion(self) -> None:
        """IS-K members desert or surrender; they are out of the fight for good."""
        pop = self.population
        members = np.flatnonzero(pop.allegiance == IN_ISK)
        leaving = members[self.rng.random(len(members)) < self.p.isk_desertion]
        if len(leaving):
            self._move(leaving, DESERTED, "left_isk")
            pop.recruiter[leaving] = False
            self.former_isk[leaving] = True
            self.cells.remove(len(leaving), self.rng)

    @property
    def regime_strength_share(self) -> float:
        """The Taliban factions' loyal people as a share of their August 2021 strength."""
        loyal = self.population.people_in(LOYAL)[self.taliban_codes].sum()
        return float(loyal / self.taliban_start) if self.taliban_start > 0 else 1.0

    def _counter_isk(self) -> None:
        """Counter-IS-K operations within the regime's capacity; cells evolve (§7.7-7.8)."""
        pop, p = self.population, self.p
        self.effort = regime.counter_isk_effort(
            self.levers, self.resources, self.regime_strength_share, p
        )
        members = np.flatnonzero(pop.allegiance == IN_ISK)
        if p.attrition and len(members):
            risk = isk.attrition_risk(self.effort, pop.recruiter[members], p)
            caught = members[self.rng.random(len(members)) < risk]
            if len(caught):
                self._move(caught, REMOVED, "removed")
                pop.recruiter[caught] = False
                self.cells.remove(len(caught), self.rng)
                self._drop_views(caught)
        events = int(round(p.cell_events * self.cells.fighters))
        nu = min(p.fragmentation + p.fragmentation_ops * self.effort, 1.0)
        self.cells.evolve(events, nu, self.rng)

    def _attacks(self, dated_losses: int) -> None:
        """IS-K's leadership, its shift abroad and its attacks at home (ODD §7.9).

        Attacks erode legitimacy, which recovers toward a reference that inclusion raises.
        """
        p = self.p
        losses = isk.leadership_losses(dated_losses, self.effort, p, self.rng)
        self.leadership = isk.next_leadership(self.leadership, losses, p)
        self.external_share = isk.next_external_share(self.external_share, self.effort, p)
        strength = self.isk_strength
        rate = isk.attack_rate(
            strength,
            self.effort,
            self.leadership,
            self.external_share,
            isk.courting(self.levers),
            p,
        )
        self.attacks = int(self.rng.poisson(rate)) if strength > 0 else 0
        self.attacks_on_taliban = int(self.rng.binomial(self.attacks, p.taliban_target_share))
        severities = self.cells.attack_severities(self.attacks, self.rng)
        typical = self.cells.typical_severity
        self.severity = int(severities.sum())
        reference = regime.reference_legitimacy(self.levers, p)
        self.legitimacy = regime.next_legitimacy(self.legitimacy, reference, severities, typical, p)

    def _release(self) -> None:
        """A prisoner release: IS-K fighters and TTP prisoners walk free this week."""
        arrivals = {ISK: self.p.release_isk, GROUP_INDEX["ttp"]: self.p.release_ttp}
        pop = self.population
        for code, people in arrivals.items():
            scale = self.people_per_agent[code]
            k = int(round(people / scale)) if scale > 0 else 0
            if k == 0:
                continue
            members = np.flatnonzero(pop.group == code)
            slots = pop.append(draw_agents(code, k, scale, self.p, self.rng))
            self.former_isk = np.concatenate([self.former_isk, np.zeros(k, dtype=bool)])
            edges = [
                network.ties_within(
                    slots, np.concatenate([members, slots]), self.p.ties_within, self.rng
                )
            ]
            self.network = network.grow(self.network, pop.n, edges)
            self.ledger["joined"][code] += k * scale
            if code == ISK:
                self.cells.add(k)
            self._add_views(slots)
        self.edges = network.edge_list(self.network)

    # ---- aggregates -----------------------------------------------------------------
    @property
    def isk_members(self) -> int:
        """IS-K members (agents) in the model now."""
        return int(np.count_nonzero(self.population.allegiance == IN_ISK))

    @property
    def isk_strength(self) -> float:
        """IS-K members in people."""
        return self.population.strength(IN_ISK)
