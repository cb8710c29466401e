"""DefectionModel: Taliban factions and allied militants under policy moves, IS-K poaching.

One step is one week. Per-agent state lives in NumPy arrays (``model.population``) and
is updated by one compiled pass (``model/kernel.py``); Mesa agents are views onto it, created when ``model.agents`` (or
``agents_by_type``, ``agent_at``) is first used. An agent keeps its ``unique_id`` for
life: when its member defects, deserts or returns, the same agent changes allegiance. A
run nobody inspects per agent (a sweep, a 1:1-scale run) never builds them. See
docs/ODD.md for the full rules; :data:`SUBMODELS` is the ODD §7 table of contents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import mesa
import numpy as np

from isk_defection.agents import KINDS, Fighter, ISKMember
from isk_defection.model import isk, kernel, loyalty, network, regime
from isk_defection.model.groups import GROUP_INDEX, GROUP_NAMES, GROUPS, ISK, TALIBAN_FACTIONS
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
from isk_defection.model.reporters import LEDGER, WeeklyRecords, lever_column

SUBMODELS = (  # ODD §7: (section, what, where)
    ("7.1", "policy: lever schedules, live moves, events", "model/policy.py"),
    ("7.2", "resources", "regime.next_resources"),
    ("7.3", "target loyalty (one term per mechanism)", "loyalty.TERMS"),
    ("7.4", "loyalty drift", "kernel.step"),
    ("7.5", "peer influence: relative agreement", "model/influence.py"),
    ("7.6", "ways out: IS-K (reach, screened intake), desertion, return", "kernel.step"),
    ("7.7", "counter-IS-K operations within the regime's capacity", "kernel.step"),
    ("7.8", "IS-K cells: coalescence and fragmentation", "isk.coalesce_fragment"),
    ("7.9", "IS-K leadership, operations abroad, attacks, legitimacy", "kernel.step"),
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
        columns: Sequence[str] | None = None,
        **overrides: Any,
    ) -> None:
        """A model at week 0; ``columns`` records only those model columns (default all)."""
        if scenario is not None:  # Mesa's SolaraViz passes one on Reset: its values are ours
            values = {k: v for k, v in vars(scenario).items() if not k.startswith("_")}
            scenario_rng = values.pop("rng", None)
            rng = scenario_rng if rng is None else rng
            overrides = values | overrides
        seed = _seed(rng)
        kernel.fresh_cache()
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
        start = dt.date.fromisoformat(self.p.start_date)
        self.datacollector = WeeklyRecords(start, collects_agent_data(self.p), columns)
        self._record_week_zero()

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
        self.cells = isk.Cells(len(isk_slots), active=self.p.cells, capacity=self.population.n)
        self._ledger = np.zeros((len(LEDGER), len(GROUPS) + 1))  # flows since week 0
        self._flows = np.zeros_like(self._ledger)  # flows this week
        self.ledger = {k: self._ledger[i] for i, k in enumerate(LEDGER)}  # views
        self.week_flows = {k: self._flows[i] for i, k in enumerate(LEDGER) if k != "start"}
        self.ledger["start"][:] = self.population.people_in(LOYAL) + self.population.people_in(
            IN_ISK
        )
        taliban = [GROUP_INDEX[f] for f in TALIBAN_FACTIONS]
        self.taliban_codes = np.array(taliban)
        self.taliban_start = float(self.ledger["start"][taliban].sum())
        self._kernel_params = tuple(kernel.kernel_params(self.p))  # plain: see kernel.members
        self._arrays_changed()
        self._views: list[Fighter | None] | None = None  # built on first use

    def _arrays_changed(self) -> None:
        """The kernel's views of the arrays and the network (again after a release)."""
        self._members = tuple(kernel.members(self.population, self.former_isk))
        self._indptr = self.network.indptr.astype(np.int64)
        self._indices = self.network.indices.astype(np.int64)
        self.edges = network.edge_list(self.network)
        # the same (2, k) ties, each tie's two ends side by side in memory, in 32 bits: an
        # encounter's random draw reads one cache line from half the memory (§7.5)
        self._ties = np.asfortranarray(self.edges, dtype=np.int32)

    def _record_week_zero(self) -> None:
        """Week 0's columns: the same tally the kernel makes every week."""
        row, at = self.datacollector.row, self.datacollector.index
        for code, name in enumerate(GROUP_NAMES):
            row[at[f"{name}_people_per_agent"]] = self.people_per_agent[code]
        start = (0.0, 0.0, 0.0, 1.0, 0.0, float(self.legitimacy), self.cells.count, 0, 0, 0)
        kernel.record_start(
            self._members,
            self.cells.sizes,
            start,
            self.resources,
            self._kernel_params,
            self._ledger,
            self._flows,
            row,
        )
        self._lever_columns = np.array([at[lever_column(name)] for name in LEVERS])
        self._record(self.policy.events_at(0))

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
        assert self._views is not None  # built just above
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
        """One week (ODD §3): policy, regime, then the compiled kernel for the rest."""
        p = self.p
        self.levers = self._levers_for(self.steps)
        events = self.policy.events_at(self.steps)
        if "prisoner_release" in events:
            self._release()
        self.resources = regime.next_resources(self.resources, self.levers, p)
        conditions = self._conditions(self.levers, self.resources)
        state = (
            float(self.carried_capacity),
            float(self.leadership),
            float(self.external_share),
            float(self.legitimacy),
            self.cells.count,
        )
        week, removed = kernel.step(
            self._members,
            self._indptr,
            self._indices,
            self._ties,
            self.cells.buffer,
            conditions,
            self._kernel_params,
            state,
            float(self.levers["counter_isk"]),
            float(isk.courting(self.levers)),
            regime.reference_legitimacy(self.levers, p),
            events.count("decapitation"),
            self.taliban_start,
            int(self.rng.integers(2**32)),  # the week's draws (model/draws.py)
            self._ledger,
            self._flows,
            self.datacollector.row,
        )
        self.carried_capacity, self.capacity, self.effort = week.carried, week.capacity, week.effort
        self.leadership, self.external_share = week.leadership, week.external_share
        self.legitimacy, self.cells.count = week.legitimacy, week.cells
        self.attacks, self.attacks_on_taliban = week.attacks, week.attacks_on_taliban
        self.severity = week.severity
        self._drop_views(removed)
        self._record(events)

    def _record(self, events: list[str]) -> None:
        """The columns Python knows (week, date, levers, the release), then collect."""
        row, at = self.datacollector.row, self.datacollector.index
        row[at["week"]] = row[at["date"]] = self.steps  # the date is kept as its week
        row[at["prisoner_release"]] = "prisoner_release" in events
        row[self._lever_columns] = [self.levers[name] for name in LEVERS]
        self.datacollector.collect(self)

    @property
    def stats(self) -> Mapping[str, Any]:
        """The current week's model columns by name (all of them, recorded or not)."""
        return self.datacollector.stats()

    def _levers_for(self, week: int) -> dict[str, float]:
        levers = self.policy.levers_at(week)
        if not self.adaptive:
            return levers
        current = {name: self.levers[name] for name in ADAPTIVE_LEVERS}
        current |= {m.lever: m.value for m in self.policy.moves if m.week == week}
        return choose_levers(levers | current, self._defection_risk, self.p)

    def _conditions(self, levers: dict[str, float], resources: float) -> tuple:
        """What loyalty responds to under ``levers`` and ``resources`` (a plain Conditions)."""
        return tuple(loyalty.conditions(levers, resources, self.legitimacy, self.p))

    def _defection_risk(self, levers: dict[str, float]) -> float:
        """Share of loyal people whose settled pressure under ``levers`` reaches threshold."""
        settled = self._conditions(levers, regime.target_resources(levers, self.p))
        return kernel.defection_risk(
            self._members, self._indptr, self._indices, settled, self._kernel_params
        )

    # ---- a caller's moves (tests, the page): the same changes the kernel makes --------
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

    def _move(self, slots: np.ndarray, allegiance: int, flow: str) -> None:
        """Change the allegiance of ``slots``, logging the flow per origin group in people."""
        slots = np.asarray(slots, dtype=np.int64)
        kernel.move(self._members, slots, allegiance, LEDGER.index(flow), self._ledger, self._flows)

    @property
    def regime_strength_share(self) -> float:
        """The Taliban factions' loyal people as a share of their August 2021 strength."""
        loyal = self.population.people_in(LOYAL)[self.taliban_codes].sum()
        return float(loyal / self.taliban_start) if self.taliban_start > 0 else 1.0

    def _release(self) -> None:
        """A prisoner release: IS-K fighters and TTP prisoners walk free this week.

        The released people come as agents of their group's size, as many as they make
        rounded up or down at random (in expectation exactly the release at any resolution).
        """
        arrivals = {ISK: self.p.release_isk, GROUP_INDEX["ttp"]: self.p.release_ttp}
        pop = self.population
        for code, people in arrivals.items():
            scale = self.people_per_agent[code]
            k = stochastic_round(people / scale, self.rng) if scale > 0 else 0
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
            self.cells.reserve(pop.n)  # at most one cell per member
            if code == ISK:
                self.cells.add(k)
            self._add_views(slots)
        self._arrays_changed()

    # ---- aggregates -----------------------------------------------------------------
    @property
    def isk_members(self) -> int:
        """IS-K members (agents) in the model now."""
        return int(np.count_nonzero(self.population.allegiance == IN_ISK))

    @property
    def isk_strength(self) -> float:
        """IS-K members in people."""
        return self.population.strength(IN_ISK)


def stochastic_round(x: float, rng: np.random.Generator) -> int:
    """``x`` rounded down, or up with chance its fractional part: unbiased at any scale."""
    whole = np.floor(x)
    return int(whole) + int(rng.random() < x - whole)
