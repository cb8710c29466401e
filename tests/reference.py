"""A per-agent reference model, transcribed from docs/ODD.md (model v2) in plain Mesa style.

It exists to test the fast, vectorised model (``model/``): the rules of ODD §3, §5, §7.2
to §7.11 and §7.13 are written again here, member by member, from the document. It does
not import the fast model's code: only the parameter registry and presets (``resolve``:
defaults, validation, the frozen ``Params`` object and the lever schedules that are the
model's input data, §6) and the groups table (names, and the lever that acts against
each group, §8). The lever names, the adaptive levers and the crackdowns' targets are
written out below as the ODD lists them (§7.1, §7.3, §7.11).

Two ways to start:

- ``ReferenceModel(seed, preset, **overrides)`` initialises itself (§5, §7.13) with its
  own random draws; compare it with the fast model through distributions over seeds.
- ``ReferenceModel.copy_of(fast)`` starts from a fast model's week-0 state (the same
  traits, ties and recruiters, read from its arrays; the people per agent computed
  here, §5.1); with every random draw of the weekly step switched off, both must then
  follow the same trajectory.

Members are Mesa agents run phase by phase with ``model.agents.shuffle_do``: every phase
reads the state the previous phase left, as ODD §3 says (updates are synchronous). Draws
the ODD makes "in slot order" are made here in a shuffled order: they are independent,
so only the fast model's reproducibility depends on their order. Caller actions (live
lever moves, released prisoners or leadership losses on demand) are interface, not
rules, and are not transcribed.
"""

from __future__ import annotations

import math
from typing import Any

import mesa

from isk_defection.model.groups import GROUPS, TALIBAN_FACTIONS
from isk_defection.model.parameters import resolve
from isk_defection.model.presets import preset as preset_overrides

ISK = "isk"
LOYAL, IN_ISK, REMOVED, DESERTED = "loyal", "isk", "removed", "deserted"  # §2
GROUP_NAMES = [g.name for g in GROUPS]
LEVER_AGAINST = {g.name: g.lever for g in GROUPS if g.lever}  # §7.3 repression P
GUESTS = (  # §7.3 fraternity F: (lever k, the group it targets, the affinity a^k)
    ("crackdown_ttp", "ttp", "ttp_affinity"),
    ("crackdown_uyghur", "uyghur", "uyghur_affinity"),
    ("crackdown_aq", "aq_imu", "aq_affinity"),
)
CROSS_PREFERENCE = {target: affinity for _, target, affinity in GUESTS}  # §7.13
LEVERS = (  # §2: eight levers (§7.1)
    "womens_rights",
    "inclusion",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
    "counter_isk",
    "witch_hunt",
)
ADAPTIVE = (  # §7.11, in the order the leadership weighs them
    "womens_rights",
    "inclusion",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
)
TOLERANCE = 1e-12  # §7.6, §7.11: equal up to rounding
BUDGET_TOLERANCE = 1e-9  # §7.6 screening: the running total fits B up to rounding
PIPELINE_WEEKS = 4  # §7.6: unused intake capacity is kept up to 3 further weekly budgets
TRAITS = (  # §2 per-agent traits
    "loyalty",
    "baseline_loyalty",
    "hardline",
    "uncertainty",
    "threshold",
    "hardship",
    "materialism",
    "pashtun",
    "ttp_affinity",
    "aq_affinity",
    "uyghur_affinity",
    "inclusion_stake",
)
FLOWS = ("defected", "deserted", "returned", "removed", "left_isk")  # §2 ledger


def clip(x: float) -> float:
    return min(1.0, max(0.0, x))


class Member(mesa.Agent):
    """A member of one origin group (ODD §2): traits, allegiance, people and contacts."""

    model: ReferenceModel

    def __init__(
        self, model: ReferenceModel, group: str, traits: dict[str, Any], people: float
    ) -> None:
        super().__init__(model)
        self.group = group
        self.slot = len(model.members)
        self.people = people
        self.allegiance = IN_ISK if group == ISK else LOYAL
        self.former_isk = False  # left IS-K: out of the fight for good
        self.recruiter = False
        for name in TRAITS:
            setattr(self, name, traits[name])
        self.contacts: set[Member] = set()
        self.r = self.k = self.q = self.d = 0  # §3 step 3
        self.decides = self.was_deserted = self.disaffected = self.applies = False
        self.taken = False
        model.members.append(self)

    @property
    def deciding(self) -> bool:
        """§3 step 4: the loyal, and deserters who never were in IS-K."""
        return self.allegiance == LOYAL or (self.allegiance == DESERTED and not self.former_isk)

    # §3 step 3
    def sense(self) -> None:
        """Count recruiters r, IS-K members k and leavers q among my contacts; degree d."""
        self.r = self.k = self.q = 0
        for contact in self.contacts:
            if contact.allegiance == IN_ISK:
                self.k += 1
                self.r += contact.recruiter
            if contact.allegiance in (IN_ISK, DESERTED):
                self.q += 1
        self.d = len(self.contacts)

    # §7.3
    def target(self, levers: dict[str, float], resources: float) -> float:
        """The loyalty I drift toward: ℓ⁰ − O − F − P + M + I − G − E."""
        p, lever = self.model.p, levers
        total = self.baseline_loyalty
        if p.outbidding:  # O
            total -= p.outbidding_strength * max(0.0, lever["womens_rights"] - (1 - self.hardline))
            total -= p.propaganda_strength * lever["foreign_cooperation"] * self.hardline
        if p.fraternity:  # F
            duty = 1 + p.pashtunwali_strength * self.pashtun if p.pashtunwali else 1
            resented = sum(
                lever[name] * getattr(self, affinity)
                for name, target, affinity in GUESTS
                if self.group != target
            )
            total -= p.fraternity_strength * duty * resented
        if p.repression and self.group in LEVER_AGAINST:  # P
            total -= p.repression_strength * lever[LEVER_AGAINST[self.group]]
        if p.material:  # M
            total += p.material_strength * self.materialism * (resources - p.resources_initial)
        # I: the core's cost follows the lever, the included groups' gain its benefit
        stake, benefit = self.inclusion_stake, self.model.inclusion_benefit(lever)
        total += p.inclusion_strength * (
            lever["inclusion"] * min(stake, 0.0) + benefit * max(stake, 0.0)
        )
        # G (the legitimacy switch acts on the erosion, §7.9) and E (no recruiters, r = 0,
        # when recruitment is off) have no switch here
        total -= (
            p.legitimacy_strength * self.hardship * (p.legitimacy_initial - self.model.legitimacy)
        )
        total -= p.recruitment_strength * (1 - math.exp(-self.r))
        return clip(total)

    # §7.6
    def pressure(self, loyalty: float) -> float:
        """Disloyalty plus the pull of contacts who have left (IS-K or deserted)."""
        p = self.model.p
        share = self.q / self.d if p.cascade and self.d else 0.0
        return (1 - loyalty) + p.contagion_weight * share

    def crosses(self, loyalty: float) -> bool:
        """Granovetter's rule, up to rounding."""
        return self.pressure(loyalty) >= self.threshold - TOLERANCE

    # §7.4
    def drift(self) -> None:
        """A deciding member closes part of the gap to his target loyalty."""
        if self.deciding:
            goal = self.target(self.model.levers, self.model.resources)
            self.loyalty += self.model.p.loyalty_adjustment * (goal - self.loyalty)

    # §7.6 steps 1 (applying) and 3 (who was what at the start of the step)
    def decide(self) -> None:
        """Disaffected or not; if disaffected and IS-K reaches me, I apply to it."""
        p = self.model.p
        self.decides, self.taken = self.deciding, False
        self.was_deserted = self.allegiance == DESERTED
        self.disaffected = self.applies = False
        if not self.decides:
            return
        self.disaffected = self.crosses(self.loyalty)
        presence = self.random.random() < self.model.presence  # one draw per deciding member
        reached = not p.reach or self.r > 0 or self.k > 0 or presence
        self.applies = p.isk_destination and self.disaffected and reached

    # §7.6 step 3
    def desert_or_return(self) -> None:
        """Disaffected loyal members IS-K did not take may desert; settled deserters return."""
        p = self.model.p
        if not (p.desertion and self.decides):
            return
        deserts = self.random.random() < p.desertion_rate
        returns = self.random.random() < p.return_rate
        if self.disaffected and not self.was_deserted and not self.taken and deserts:
            self.model.move(self, DESERTED, "deserted")
        elif self.was_deserted and not self.disaffected and returns:
            self.model.move(self, LOYAL, "returned")

    # §7.6 step 4
    def leave_isk(self) -> None:
        """An IS-K member may desert or surrender: out of the fight for good."""
        p = self.model.p
        if self.allegiance == IN_ISK and self.random.random() < p.isk_desertion:
            self.model.move(self, DESERTED, "left_isk")
            self.recruiter, self.former_isk = False, True
            self.model.leave_cell()

    # §7.7
    def face_operations(self, effort: float) -> None:
        """An IS-K member may be killed or captured (recruiters are more exposed)."""
        p = self.model.p
        if self.allegiance != IN_ISK:
            return
        exposure = p.recruiter_attrition if self.recruiter else 1.0
        if self.random.random() < min(1.0, p.attrition_rate * effort * exposure):
            self.model.move(self, REMOVED, "removed")
            self.recruiter = False
            self.model.leave_cell()
            self.remove()


class ReferenceModel(mesa.Model):
    """The ODD's weekly schedule (§3) run member by member."""

    def __init__(
        self,
        seed: int,
        preset: str = "baseline",
        start: Any = None,
        **overrides: Any,
    ) -> None:
        super().__init__(rng=seed)
        self.p = start.p if start is not None else resolve(preset_overrides(preset) | overrides)
        self.members: list[Member] = []  # everyone ever, by slot (removed ones too)
        self.ties: list[tuple[Member, Member]] = []
        self.cells: list[int] = []
        self.people_per_agent: dict[str, float] = {}
        self.resources = self.p.resources_initial  # §5 step 4
        self.legitimacy = self.p.legitimacy_initial
        self.leadership, self.external_share, self.carried = 1.0, 0.0, 0.0
        self.levers = {name: getattr(self.p, name).at(0) for name in LEVERS}
        self.presence = 0.0
        self.effort = 0.0
        self.budget = math.inf
        self.attacks = self.attacks_on_taliban = 0
        self.ledger = {flow: dict.fromkeys([*GROUP_NAMES, ISK], 0.0) for flow in FLOWS}
        self.flows = dict.fromkeys(FLOWS, 0.0)  # this week's flows, in people
        if start is None:
            self.populate()
        else:
            self.copy_state(start)
        self.taliban_start = self.taliban_strength  # T₀ (§7.7)
        self.datacollector = mesa.DataCollector(model_reporters={name: name for name in REPORTED})
        self.datacollector.collect(self)

    @classmethod
    def copy_of(cls, fast: Any) -> ReferenceModel:
        """A reference that starts from ``fast``'s week-0 state (its seed, traits, ties)."""
        return cls(fast.seed, start=fast)

    # ---- §5 initialisation -----------------------------------------------------------
    def agent_counts(self) -> dict[str, int]:
        """§5.1: real sizes scaled by largest remainders, small groups topped up."""
        p = self.p
        names = [*GROUP_NAMES, ISK]
        sizes = [p.isk_size if name == ISK else p.trait(name, "size") for name in names]
        n = p.population
        ideal = [size / sum(sizes) * n for size in sizes]
        counts = [math.floor(x) for x in ideal]
        by_remainder = sorted(range(len(names)), key=lambda g: -(ideal[g] - counts[g]))
        for g in by_remainder[: n - sum(counts)]:
            counts[g] += 1
        floor = [min(p.min_group_agents, n // len(names)) if s > 0 else 0 for s in sizes]
        while any(c < f for c, f in zip(counts, floor, strict=True)):
            short = max(range(len(names)), key=lambda g: floor[g] - counts[g])
            counts[short] += 1
            donor = max(range(len(names)), key=lambda g: counts[g] - floor[g])
            counts[donor] -= 1
        self.people_per_agent = {  # N_g / n_g
            name: size / count if count else 0.0
            for name, size, count in zip(names, sizes, counts, strict=True)
        }
        return dict(zip(names, counts, strict=True))

    def draw_traits(self, group: str) -> dict[str, Any]:
        """§5.2: one member's traits, drawn around his group's means."""
        p = self.p
        if group == ISK:  # h = 1, loyalty 0, θ = 1, confident; other traits are never read
            return dict.fromkeys(TRAITS, 0.0) | {
                "hardline": 1.0,
                "uncertainty": p.extremist_uncertainty,
                "threshold": 1.0,
                "pashtun": False,
            }
        spread = p.trait_spread if p.heterogeneity else 0.0

        def trait(name: str, sd: float) -> float:
            mean = p.trait(group, name)
            return clip(self.random.gauss(mean, sd)) if sd > 0 else mean

        hardline = p.trait(group, "hardline")
        tolerance = p.tolerance_spread if p.heterogeneity else 0.0
        if tolerance > 0 and 0 < hardline < 1:  # Beta with the group's mean and this sd
            concentration = max(hardline * (1 - hardline) / tolerance**2 - 1, 1.0)
            a, b = hardline * concentration, (1 - hardline) * concentration
            hardline = self.random.betavariate(a, b)
        loyalty = trait("loyalty", spread)
        traits = {
            "hardline": hardline,
            "loyalty": loyalty,
            "baseline_loyalty": loyalty,
            "threshold": trait("threshold", p.threshold_spread),
            "hardship": self.random.random() if p.heterogeneity else 0.5,
            "materialism": trait("materialism", spread),
            "pashtun": self.random.random() < p.trait(group, "pashtun"),
        }
        for _, _, affinity in GUESTS:
            traits[affinity] = trait(affinity, spread)
        confident = hardline >= p.extremist_hardline
        return traits | {
            "inclusion_stake": p.trait(group, "inclusion_stake"),
            "uncertainty": p.extremist_uncertainty if confident else p.uncertainty,
        }

    def populate(self) -> None:
        """§5: members, recruiters, IS-K's singleton cells and the network (§7.13)."""
        p = self.p
        for group, count in self.agent_counts().items():
            for _ in range(count):
                member = Member(self, group, self.draw_traits(group), self.people_per_agent[group])
                if group == ISK:
                    member.recruiter = p.recruitment and self.random.random() < p.recruiter_share
                    self.cells.append(1)
        self.build_network()

    def build_network(self) -> None:
        """§7.13, 'clustered' (the 'complete' network is for isolated tests only)."""
        p = self.p
        if p.network != "clustered":
            raise ValueError("the reference builds only the clustered network")
        by_group: dict[str, list[Member]] = {}
        for m in self.members:
            by_group.setdefault(m.group, []).append(m)
        for group, members in by_group.items():
            for m in members:
                for _ in range(round(p.ties_within / 2)):
                    self.tie(m, self.random.choice(members))
            if group == ISK:
                continue
            others = [o for o in self.members if o.group not in (group, ISK)]
            weights = (
                [getattr(o, CROSS_PREFERENCE[group]) for o in others]
                if group in CROSS_PREFERENCE
                else None
            )
            if weights is not None and sum(weights) <= 0:
                weights = None
            for m in members:
                for _ in range(round(p.ties_between / 2)):
                    if others:
                        self.tie(m, self.random.choices(others, weights)[0])
        loyal = [m for m in self.members if m.allegiance == LOYAL]
        for recruiter in (m for m in self.members if m.recruiter):
            for _ in range(p.recruiter_ties):
                if loyal:
                    self.tie(recruiter, self.random.choice(loyal))

    def tie(self, a: Member, b: Member) -> None:
        """An undirected tie, without self-ties or duplicates."""
        if a is not b and b not in a.contacts:
            a.contacts.add(b)
            b.contacts.add(a)
            self.ties.append((a, b))

    def copy_state(self, fast: Any) -> None:
        """Members, recruiters, ties and cells as in ``fast`` at week 0 (its arrays, read).

        People per agent are not read: they follow from the agent counts (§5.1).
        """
        pop, names = fast.population, [*GROUP_NAMES, ISK]
        self.agent_counts()
        for slot in range(pop.n):
            group = names[pop.group[slot]]
            traits = {name: getattr(pop, name)[slot].item() for name in TRAITS}
            member = Member(self, group, traits, self.people_per_agent[group])
            member.recruiter = bool(pop.recruiter[slot])
            if member.group == ISK:
                self.cells.append(1)
        indptr, indices = fast.network.indptr, fast.network.indices
        for i, member in enumerate(self.members):
            for j in indices[indptr[i] : indptr[i + 1]]:
                if i < j:
                    self.tie(member, self.members[j])

    # ---- one week, §3 ------------------------------------------------------------------
    def step(self) -> None:
        """ODD §3, in order."""
        p = self.p
        self.flows = dict.fromkeys(FLOWS, 0.0)
        # 1. policy and this week's events
        self.levers = self.choose_levers(self.steps)
        if self.steps == p.release_week:
            self.release()
        dated_losses = int(p.decapitation and self.steps == p.decapitation_week)
        # 2. resources
        self.resources += p.resource_adjustment * (
            self.target_resources(self.levers) - self.resources
        )
        # 3. contacts
        self.agents.shuffle_do("sense")
        # 4. loyalty: drift, then encounters
        self.agents.shuffle_do("drift")
        if p.peer_influence:
            self.encounters()
        # 5. ways out
        self.presence = 1 - math.exp(-p.isk_reach * self.isk_strength / 1000)
        self.agents.shuffle_do("decide")
        self.screen()
        self.agents.shuffle_do("desert_or_return")
        # 6. IS-K desertion
        if p.desertion:
            self.agents.shuffle_do("leave_isk")
        # 7. counter-IS-K operations, cells
        self.effort = self.regime_effort()
        if p.attrition:
            self.agents.shuffle_do("face_operations", self.effort)
        if p.cells:
            self.cell_events(min(1.0, p.fragmentation + p.fragmentation_ops * self.effort))
        # 8. leadership, operations abroad, attacks, legitimacy
        self.isk_operations(dated_losses)
        # 9. observation
        self.datacollector.collect(self)

    # §7.1, §7.11
    def choose_levers(self, week: int) -> dict[str, float]:
        """The schedules' levers; with the adaptive leadership, its choice of six of them."""
        p = self.p
        levers = {name: getattr(p, name).at(week) for name in LEVERS}
        if not p.adaptive_leadership:
            return levers
        self.agents.shuffle_do("sense")  # this week's contacts
        chosen = levers | {name: self.levers[name] for name in ADAPTIVE}
        step = p.adaptive_step
        for name in ADAPTIVE:
            v = chosen[name]
            candidates = (v, max(v - step, 0.0), min(v + step, 1.0))
            scores = [
                self.target_resources(chosen | {name: c})
                - p.risk_aversion * self.risk(chosen | {name: c})
                for c in candidates
            ]
            best = max(scores)
            chosen[name] = next(
                c for c, s in zip(candidates, scores, strict=True) if s >= best - TOLERANCE
            )
        return chosen

    def risk(self, levers: dict[str, float]) -> float:
        """§7.11: share of loyal people whose settled pressure would reach their threshold."""
        loyal = [m for m in self.agents if m.allegiance == LOYAL]
        if not loyal:
            return 0.0
        resources = self.target_resources(levers)
        crossing = sum(m.people for m in loyal if m.crosses(m.target(levers, resources)))
        return crossing / sum(m.people for m in loyal)

    # §7.2
    def inclusion_benefit(self, levers: dict[str, float]) -> float:
        """B_inclusion: the inclusion that brings its benefits (0 with the switch off)."""
        return levers["inclusion"] if self.p.inclusion_benefits else 0.0

    def target_resources(self, levers: dict[str, float]) -> float:
        """R*(L): what the policy brings in aid and revenue."""
        p = self.p
        crackdown = (
            levers["crackdown_ttp"] + levers["crackdown_uyghur"] + levers["crackdown_aq"]
        ) / 3
        return clip(
            p.resources_base
            + p.aid_womens_rights * levers["womens_rights"]
            + p.aid_inclusion * self.inclusion_benefit(levers)
            + p.aid_crackdown * crackdown
            + p.aid_cooperation * levers["foreign_cooperation"]
        )

    # §7.5
    def encounters(self) -> None:
        """A random matching of loyal-loyal ties, then relative agreement pair by pair."""
        loyal = sum(m.allegiance == LOYAL for m in self.agents)
        used: set[Member] = set()
        for _ in range(round(self.p.peer_interactions * loyal / 2)):
            a, b = self.ties[self.random.randrange(len(self.ties))]
            if a.allegiance != LOYAL or b.allegiance != LOYAL:
                continue
            if a not in used and b not in used:
                self.agree(a, b)
            used |= {a, b}

    def agree(self, a: Member, b: Member) -> None:
        """Deffuant et al. (2002) on opinions x = 2 loyalty - 1, from pre-encounter values."""
        mu = self.p.influence_rate
        xa, xb, ua, ub = 2 * a.loyalty - 1, 2 * b.loyalty - 1, a.uncertainty, b.uncertainty
        overlap = min(xa + ua, xb + ub) - max(xa - ua, xb - ub)
        on_b = mu * (overlap / ua - 1) if overlap > ua else 0.0  # a sways b
        on_a = mu * (overlap / ub - 1) if overlap > ub else 0.0  # b sways a
        a.loyalty, a.uncertainty = clip((xa + on_a * (xb - xa) + 1) / 2), ua + on_a * (ub - ua)
        b.loyalty, b.uncertainty = clip((xb + on_b * (xa - xb) + 1) / 2), ub + on_b * (ua - ub)

    # §7.6 step 2
    def screen(self) -> None:
        """IS-K takes applicants in a random order while their people fit its budget B."""
        p = self.p
        applicants = [m for m in self.members if m.applies]
        if p.absorption:
            c, strength = p.absorptive_capacity, self.isk_strength
            if p.security:  # §7.6: fewer per member as IS-K grows, none at its ceiling
                c *= max(0.0, 1 - strength / p.isk_ceiling)
            self.budget = c * strength + min(self.carried, (PIPELINE_WEEKS - 1) * c * strength)
            taken = self.take(applicants)
            self.carried = self.budget - sum(m.people for m in taken)
        else:
            self.budget, taken = math.inf, applicants
        for m in taken:
            self.join_isk(m)

    def take(self, applicants: list[Any]) -> list[Any]:
        """One random order; the first applicant who would exceed B is taken with chance
        (B - taken so far) / his people, and IS-K stops there."""
        order = list(applicants)
        self.random.shuffle(order)
        taken, total = [], 0.0
        for m in order:
            if total + m.people > self.budget + BUDGET_TOLERANCE:
                room = self.budget - total
                if room > 0 and self.random.random() * m.people < room:
                    taken.append(m)
                break
            total += m.people
            taken.append(m)
        return taken

    def join_isk(self, member: Member) -> None:
        """A recruit: IS-K, loyalty 0, perhaps a recruiter, a singleton cell; ties stay."""
        p = self.p
        self.move(member, IN_ISK, "defected")
        member.taken, member.loyalty = True, 0.0
        member.recruiter = p.recruitment and self.random.random() < p.recruiter_share
        self.cells.append(1)

    def move(self, member: Member, allegiance: str, flow: str) -> None:
        """A change of allegiance, logged in people for the member's origin group."""
        member.allegiance = allegiance
        self.ledger[flow][member.group] += member.people
        self.flows[flow] += member.people

    # §7.7
    def regime_effort(self) -> float:
        """e: the lever times the regime's capacity (funding, loyal strength, inclusion)."""
        p = self.p
        funded = self.resources / p.resources_initial if p.resources_initial > 0 else 1.0
        d = p.aid_dependence
        strength = self.taliban_strength / self.taliban_start if self.taliban_start > 0 else 1.0
        inclusion = 1 + p.capacity_inclusion * self.inclusion_benefit(self.levers)
        return self.levers["counter_isk"] * ((1 - d) + d * funded) * min(1.0, strength) * inclusion

    def fighter_cell(self) -> int:
        """The cell of a fighter picked uniformly (a cell in proportion to its size)."""
        pick = self.random.randrange(sum(self.cells))
        for index, size in enumerate(self.cells):
            pick -= size
            if pick < 0:
                return index
        raise AssertionError("unreachable")

    def leave_cell(self) -> None:
        """A random fighter leaves his cell (one at a time: a hypergeometric draw)."""
        cell = self.fighter_cell()
        self.cells[cell] -= 1
        if self.cells[cell] == 0:
            del self.cells[cell]

    # §7.8
    def cell_events(self, nu: float) -> None:
        """Coalescence and fragmentation (Bohorquez et al. 2009)."""
        for _ in range(round(self.p.cell_events * sum(self.cells))):
            cell = self.fighter_cell()
            if self.random.random() < nu:
                self.cells += [1] * (self.cells[cell] - 1)
                self.cells[cell] = 1
                continue
            other = self.fighter_cell()
            if other != cell:
                self.cells[cell] += self.cells[other]
                del self.cells[other]

    # §7.9
    def isk_operations(self, dated_losses: int) -> None:
        """Leadership, the shift abroad, Poisson attacks at home, legitimacy."""
        p, e, levers = self.p, self.effort, self.levers
        if p.decapitation:
            losses = dated_losses + (self.random.random() < min(1.0, p.decapitation_hazard * e))
            recovered = self.leadership + p.leadership_recovery * (1 - self.leadership)
            self.leadership = recovered * (1 - p.decapitation_loss) ** losses
        if p.external_operations:
            target = p.external_max * min(e, 1.0)
            self.external_share += p.external_adjustment * (target - self.external_share)
        courting = (levers["womens_rights"] + levers["foreign_cooperation"]) / 2
        provoked = 1 + p.provocation_strength * courting if p.provocation else 1.0
        strength = self.isk_strength
        rate = (
            p.attack_rate
            * strength
            / 1000
            * self.leadership
            * (1 - self.external_share)
            * math.exp(-p.attack_suppression * e)
            * provoked
        )
        # §7.9 tactics: fewer, larger attacks at home as effort moves abroad
        larger = 1 + p.attack_concentration * self.external_share if p.tactics else 1.0
        rate /= larger
        self.attacks = int(self.rng.poisson(rate)) if strength > 0 else 0
        share = p.taliban_target_share
        self.attacks_on_taliban = sum(self.random.random() < share for _ in range(self.attacks))
        if p.cells:
            severities = [self.random.choice(self.cells) for _ in range(self.attacks)]
            typical = sum(self.cells) / len(self.cells) if self.cells else 1.0
        else:
            severities, typical = [1] * self.attacks, 1.0
        benefit = self.inclusion_benefit(levers)
        reference = min(1.0, p.legitimacy_initial + p.legitimacy_inclusion * benefit)
        legitimacy = self.legitimacy + p.legitimacy_recovery * (reference - self.legitimacy)
        self.severity = round(sum(severities) * larger)
        if p.legitimacy and severities:
            legitimacy -= p.legitimacy_hit * self.severity / typical
        self.legitimacy = clip(legitimacy)

    # §7.10
    def release(self) -> None:
        """Freed IS-K fighters and TTP prisoners join, each with ties into his own group."""
        p = self.p
        for group, people in ((ISK, p.release_isk), ("ttp", p.release_ttp)):
            w = self.people_per_agent[group]
            if w <= 0:
                continue
            whole = math.floor(people / w)  # rounded up with chance the fraction
            k = whole + (self.random.random() < people / w - whole)
            newcomers = [Member(self, group, self.draw_traits(group), w) for _ in range(k)]
            if group == ISK:
                self.cells += [1] * len(newcomers)
            everyone = [m for m in self.members if m.group == group]  # whatever their allegiance
            for m in newcomers:
                for _ in range(round(p.ties_within / 2)):
                    self.tie(m, self.random.choice(everyone))

    # ---- §7.12 observation (in people unless the name ends in _agents) -----------------
    def people(self, allegiance: str, groups: Any = None) -> float:
        return sum(
            m.people
            for m in self.members
            if m.allegiance == allegiance and (groups is None or m.group in groups)
        )

    @property
    def isk_strength(self) -> float:
        """S: IS-K members in people."""
        return self.people(IN_ISK)

    @property
    def isk_agents(self) -> int:
        return sum(m.allegiance == IN_ISK for m in self.members)

    @property
    def isk_recruiters(self) -> float:
        return sum(m.people for m in self.members if m.allegiance == IN_ISK and m.recruiter)

    @property
    def isk_cells(self) -> int:
        return len(self.cells)

    @property
    def taliban_strength(self) -> float:
        """T: the Taliban factions' loyal people."""
        return self.people(LOYAL, TALIBAN_FACTIONS)

    @property
    def taliban_loyalty(self) -> float:
        """Mean loyalty of the Taliban factions' loyal people."""
        loyal = [m for m in self.members if m.allegiance == LOYAL and m.group in TALIBAN_FACTIONS]
        people = sum(m.people for m in loyal)
        return sum(m.loyalty * m.people for m in loyal) / people if people else math.nan

    @property
    def deserters(self) -> float:
        return self.people(DESERTED)

    def cumulative(self, flow: str) -> float:
        return sum(self.ledger[flow].values())

    isk_intake = property(lambda self: self.flows["defected"])
    isk_capacity = property(lambda self: self.budget)
    isk_removed = property(lambda self: self.flows["removed"])
    isk_deserted = property(lambda self: self.flows["left_isk"])
    isk_leadership = property(lambda self: self.leadership)
    isk_external_share = property(lambda self: self.external_share)
    counter_isk_effort = property(lambda self: self.effort)
    defections = property(lambda self: self.flows["defected"])
    desertions = property(lambda self: self.flows["deserted"])
    returns = property(lambda self: self.flows["returned"])
    cumulative_defections = property(lambda self: self.cumulative("defected"))
    cumulative_desertions = property(lambda self: self.cumulative("deserted"))
    cumulative_returns = property(lambda self: self.cumulative("returned"))
    cumulative_isk_removed = property(lambda self: self.cumulative("removed"))


REPORTED = (  # the fast model's column names (§7.12) for what both record
    "isk_strength",
    "isk_agents",
    "isk_recruiters",
    "isk_cells",
    "isk_intake",
    "isk_capacity",
    "isk_removed",
    "isk_deserted",
    "isk_leadership",
    "isk_external_share",
    "attacks",
    "attacks_on_taliban",
    "legitimacy",
    "resources",
    "counter_isk_effort",
    "taliban_strength",
    "taliban_loyalty",
    "deserters",
    "defections",
    "desertions",
    "returns",
    "cumulative_defections",
    "cumulative_desertions",
    "cumulative_isk_removed",
)


def run_reference(weeks: int, seed: int, **overrides: Any) -> ReferenceModel:
    """A reference model (its own initialisation) run for ``weeks``."""
    model = ReferenceModel(seed, **overrides)
    for _ in range(weeks):
        model.step()
    return model
