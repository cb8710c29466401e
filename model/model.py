"""DefectionModel: Taliban factions and allied militants under policy moves, IS-K poaching.

One step is one week. Per-agent state lives in NumPy arrays (``model.population``) and
is updated vectorised; Mesa agents are views onto it, created when ``model.agents`` (or
``agents_by_type``, ``agent_at``) is first used and then kept in step with events (a
defection, a removal, an arrival). A run nobody inspects per agent (a sweep, a 1:1-scale
run) never builds them. See docs/ODD.md for the full rules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import mesa
import numpy as np

from agents import KINDS, Fighter, ISKMember, ISKRecruiter
from model import defection, influence, isk, loyalty, network, regime
from model.groups import GROUP_INDEX, GROUP_NAMES, GROUPS, ISK, TALIBAN_FACTIONS
from model.leadership import ADAPTIVE_LEVERS, choose_levers
from model.parameters import resolve
from model.policy import LEVERS, Policy
from model.population import IN_ISK, LOYAL, REMOVED, Population, agent_counts, draw_agents
from model.presets import preset as preset_overrides
from model.reporters import make_datacollector, statistics


class DefectionModel(mesa.Model):
    """Members update loyalty weekly and defect to IS-K when pressure reaches their threshold."""

    taliban_factions = TALIBAN_FACTIONS

    def __init__(
        self,
        preset: str = "baseline",
        population: int | None = None,
        rng: int | None = None,
        **overrides: Any,
    ) -> None:
        if rng is not None and (
            isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0
        ):
            raise ValueError(f"rng: must be a non-negative integer seed (got {rng!r})")
        if population is not None:
            overrides["population"] = population
        self.p: dict[str, Any] = resolve(preset_overrides(preset) | overrides)
        super().__init__(rng=None if rng is None else int(rng))
        self.preset = preset
        self.seed = rng
        self.policy = Policy({name: self.p[name] for name in LEVERS})
        if self.p["release_week"] >= 0:
            self.policy.event_weeks["prisoner_release"] = [self.p["release_week"]]
        self.levers = self.policy.levers_at(0)
        self.resources = self.p["resources_initial"]
        self.legitimacy = self.p["legitimacy_initial"]
        self.attacks = self.attacks_on_taliban = self.severity = 0
        self.effort = 0.0
        self._populate()
        self.datacollector = make_datacollector(self.p["collect_agent_data"])
        self.stats = statistics(self)
        self.datacollector.collect(self)

    # ---- set-up -------------------------------------------------------------------
    def _populate(self) -> None:
        counts, self.scale = agent_counts(self.p)
        self.population = Population()
        draws = [draw_agents(code, int(k), self.p, self.rng) for code, k in enumerate(counts)]
        self.population.append(
            {
                f: np.concatenate([d.get(f, np.zeros(len(d["group"]))) for d in draws])
                for f in Population.FIELDS
            }
        )
        isk_slots = np.flatnonzero(self.population.group == ISK)
        share = self.p["recruiter_share"] if self.p["recruitment"] else 0.0
        recruiters = isk_slots[self.rng.random(len(isk_slots)) < share]
        self.population.recruiter[recruiters] = True
        if self.p["network"] == "complete":
            self.network = network.complete_network(self.population.n)
        else:
            self.network = network.clustered_network(self.population, recruiters, self.p, self.rng)
        self.edges = network.edge_list(self.network)
        self.cells = isk.Cells(len(isk_slots))
        self.ledger = {
            k: np.zeros(len(GROUPS) + 1, dtype=np.int64)
            for k in ("start", "joined", "defected", "removed")
        }
        self.ledger["start"][:] = np.bincount(self.population.group, minlength=len(GROUPS) + 1)
        self.defections_now = np.zeros(len(GROUPS) + 1, dtype=np.int64)
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

    def _replace_views(self, slots: np.ndarray) -> None:
        """Swap the views of ``slots`` for ones of their new kind (None once removed)."""
        if self._views is None:
            return
        for slot in slots:
            self._views[slot].remove()
            self._views[slot] = self._view(int(slot))

    def _view(self, slot: int) -> Fighter | None:
        """The Mesa agent that shows ``slot``: its kind follows its current allegiance."""
        pop = self.population
        if pop.allegiance[slot] == REMOVED:
            return None
        if pop.allegiance[slot] == IN_ISK:
            return (ISKRecruiter if pop.recruiter[slot] else ISKMember)(self, slot)
        return KINDS[GROUPS[pop.group[slot]].kind](self, slot)

    # ---- public helpers -----------------------------------------------------------
    @staticmethod
    def group_name(code: int) -> str:
        """Name of group ``code`` ('isk' for original IS-K members)."""
        return "isk" if code == ISK else GROUP_NAMES[code]

    @property
    def week(self) -> int:
        """Weeks since the start (equal to Mesa's ``steps``)."""
        return self.steps

    @property
    def date(self) -> dt.date:
        """Calendar date of the current week."""
        return dt.date.fromisoformat(self.p["start_date"]) + dt.timedelta(weeks=self.steps)

    def move_lever(self, lever: str, value: float) -> None:
        """Set a lever from the next step on, without resetting the run (live control)."""
        self.policy.move(lever, value, self.steps + 1)

    def release_prisoners(self) -> None:
        """Schedule a prisoner release for the next step."""
        self.policy.trigger("prisoner_release", self.steps + 1)

    def set_adaptive(self, on: bool) -> None:
        """Switch the adaptive leadership rule on or off from the next step."""
        self.p["adaptive_leadership"] = bool(on)

    # ---- one week -----------------------------------------------------------------
    def step(self) -> None:
        """One week: policy, regime, loyalty, defection, IS-K operations, data."""
        self.levers = self._levers_for(self.steps)
        for _event in self.policy.events_at(self.steps):
            self._release()
        self.resources = regime.next_resources(self.resources, self.levers, self.p)
        recruiter_contacts, isk_contacts, degree = self._contacts()
        loyal = np.flatnonzero(self.population.allegiance == LOYAL)
        self._update_loyalty(loyal, recruiter_contacts[loyal])
        self._defect(loyal, recruiter_contacts[loyal], isk_contacts[loyal], degree[loyal])
        self._counter_isk()
        self._attacks()
        self.stats = statistics(self)
        self.datacollector.collect(self)

    def _levers_for(self, week: int) -> dict[str, float]:
        levers = self.policy.levers_at(week)
        if not self.p["adaptive_leadership"]:
            return levers
        current = {name: self.levers[name] for name in ADAPTIVE_LEVERS}
        current |= {m.lever: m.value for m in self.policy.moves if m.week == week}
        return choose_levers(levers | current, self._defection_risk, self.p)

    def _contacts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per agent: recruiters among contacts, IS-K members among contacts, degree."""
        pop = self.population
        members = np.flatnonzero(pop.allegiance == IN_ISK)
        recruiting = members[pop.recruiter[members]] if self.p["recruitment"] else members[:0]
        isk_contacts = network.neighbour_counts(self.network, members)
        recruiter_contacts = network.neighbour_counts(self.network, recruiting)
        return recruiter_contacts, isk_contacts, np.diff(self.network.indptr)

    def _conditions(self, recruiter_contacts: np.ndarray, levers=None, resources=None):
        return loyalty.Conditions(
            levers=self.levers if levers is None else levers,
            resources=self.resources if resources is None else resources,
            legitimacy=self.legitimacy,
            recruiter_contacts=recruiter_contacts,
        )

    def _update_loyalty(self, loyal: np.ndarray, recruiter_contacts: np.ndarray) -> None:
        """Drift toward target loyalty, then relative-agreement encounters with peers."""
        pop = self.population
        target = loyalty.target_loyalty(pop, loyal, self._conditions(recruiter_contacts), self.p)
        pop.loyalty[loyal] += self.p["loyalty_adjustment"] * (target - pop.loyalty[loyal])
        if self.p["peer_influence"]:
            encounters = int(round(self.p["peer_interactions"] * len(loyal) / 2))
            influence.influence_round(
                pop.loyalty,
                pop.uncertainty,
                self.edges,
                encounters,
                pop.allegiance == LOYAL,
                self.p["influence_rate"],
                self.rng,
            )

    def _isk_share(self, isk_contacts: np.ndarray, degree: np.ndarray) -> np.ndarray:
        if not self.p["cascade"]:
            return np.zeros(len(isk_contacts))
        return np.divide(isk_contacts, degree, out=np.zeros(len(isk_contacts)), where=degree > 0)

    def _defection_risk(self, levers: dict[str, float]) -> float:
        """Share of loyal members whose settled pressure under ``levers`` reaches threshold."""
        pop = self.population
        loyal = np.flatnonzero(pop.allegiance == LOYAL)
        if len(loyal) == 0:
            return 0.0
        recruiter_contacts, isk_contacts, degree = (c[loyal] for c in self._contacts())
        c = self._conditions(recruiter_contacts, levers, regime.target_resources(levers, self.p))
        settled = loyalty.target_loyalty(pop, loyal, c, self.p)
        push = defection.pressure(
            settled, self._isk_share(isk_contacts, degree), self.p["cascade_strength"]
        )
        return float(np.mean(defection.crosses_threshold(push, pop.threshold[loyal])))

    def _defect(self, loyal, recruiter_contacts, isk_contacts, degree) -> None:
        """Members whose pressure reaches their threshold and whom IS-K reaches defect."""
        pop = self.population
        push = defection.pressure(
            pop.loyalty[loyal], self._isk_share(isk_contacts, degree), self.p["cascade_strength"]
        )
        ready = defection.crosses_threshold(push, pop.threshold[loyal])
        if self.p["reach"]:
            ready &= defection.reached(
                recruiter_contacts, isk_contacts, self.p["walk_in"], self.rng
            )
        self.defect_to_isk(loyal[ready])

    def defect_to_isk(self, slots: np.ndarray) -> None:
        """Move members to IS-K: new singleton cells; a share become recruiters."""
        pop = self.population
        self.defections_now = np.bincount(pop.group[slots], minlength=len(GROUPS) + 1)
        if len(slots) == 0:
            return
        self.ledger["defected"] += self.defections_now
        self.ledger["joined"][ISK] += len(slots)
        pop.allegiance[slots] = IN_ISK
        pop.loyalty[slots] = 0.0
        share = self.p["recruiter_share"] if self.p["recruitment"] else 0.0
        pop.recruiter[slots] = self.rng.random(len(slots)) < share
        self.cells.add(len(slots))
        self._replace_views(slots)

    def _counter_isk(self) -> None:
        """Counter-IS-K operations kill or capture members; cells coalesce and fragment."""
        pop = self.population
        effort = isk.counter_isk_effort(self.levers["counter_isk"], self.resources, self.p)
        self.effort = effort
        members = np.flatnonzero(pop.allegiance == IN_ISK)
        if self.p["attrition"] and len(members):
            risk = (
                self.p["attrition_rate"]
                * effort
                * np.where(pop.recruiter[members], self.p["recruiter_attrition"], 1.0)
            )
            caught = members[self.rng.random(len(members)) < np.minimum(risk, 1.0)]
            self._remove(caught)
        if self.p["cells"]:
            events = int(round(self.p["cell_events"] * self.cells.fighters))
            nu = min(self.p["fragmentation"] + self.p["fragmentation_ops"] * effort, 1.0)
            self.cells.evolve(events, nu, self.rng)

    def _remove(self, slots: np.ndarray) -> None:
        pop = self.population
        pop.allegiance[slots] = REMOVED
        pop.recruiter[slots] = False
        self.ledger["removed"] += np.bincount(pop.group[slots], minlength=len(GROUPS) + 1)
        self.cells.remove(len(slots), self.rng)
        self._replace_views(slots)

    def _attacks(self) -> None:
        """IS-K attacks at a rate growing with its strength; attacks erode legitimacy."""
        strength = self.isk_strength
        rate = isk.attack_rate(
            strength, self.effort, self.p["attack_rate"], self.p["attack_suppression"]
        )
        self.attacks = int(self.rng.poisson(rate)) if strength > 0 else 0
        self.attacks_on_taliban = int(
            self.rng.binomial(self.attacks, self.p["taliban_target_share"])
        )
        if self.p["cells"]:
            severities = self.cells.attack_severities(self.attacks, self.rng)
            typical = self.cells.mean_size
        else:
            severities, typical = np.ones(self.attacks), 1.0
        self.severity = int(severities.sum())
        self.legitimacy = regime.next_legitimacy(self.legitimacy, severities, typical, self.p)

    def _release(self) -> None:
        """A prisoner release: IS-K fighters and TTP prisoners walk free this week."""
        arrivals = {ISK: self.p["release_isk"], GROUP_INDEX["ttp"]: self.p["release_ttp"]}
        pop = self.population
        for code, people in arrivals.items():
            k = int(round(people / self.scale))
            if k == 0:
                continue
            members = np.flatnonzero(pop.group == code)
            slots = pop.append(draw_agents(code, k, self.p, self.rng))
            edges = [
                network.ties_within(
                    slots, np.concatenate([members, slots]), self.p["ties_within"], self.rng
                )
            ]
            self.network = network.grow(self.network, pop.n, edges)
            self.ledger["joined"][code] += k
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
        """IS-K members in people (agents times people per agent)."""
        return self.isk_members * self.scale
