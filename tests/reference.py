"""A per-agent reference model, transcribed from docs/ODD.md in plain Mesa style.

It exists to test the fast, vectorised model (``model/``): the rules of ODD §3, §5, §7.2
to §7.11 and §7.13 are written again here, member by member, from the document. It does
not import the fast model's code: only the parameter registry and presets (``resolve``:
defaults, validation, the lever schedules that are the model's input data, §6) and the
groups table (names, and the lever that acts against each group, §8).

Two ways to start:

- ``ReferenceModel(seed, preset, **overrides)`` initialises itself (§5, §7.13) with its
  own random draws; compare it with the fast model through distributions over seeds.
- ``ReferenceModel.copy_of(fast)`` starts from a fast model's week-0 state (the same
  traits, ties and recruiters, read from its arrays); with every random draw of the
  weekly step switched off, both must then follow the same trajectory.

Members are Mesa agents run phase by phase with ``model.agents.shuffle_do``: every phase
reads the state the previous phase left, as ODD §3 says (updates are synchronous).
Caller actions (live lever moves, released prisoners on demand) are interface, not
rules, and are not transcribed.
"""

from __future__ import annotations

import math
from typing import Any

import mesa

from model.groups import GROUPS, TALIBAN_FACTIONS
from model.parameters import resolve
from model.presets import preset as preset_overrides

ISK = "isk"
GROUP_NAMES = [g.name for g in GROUPS]
LEVER_AGAINST = {g.name: g.lever for g in GROUPS if g.lever}  # §7.3 repression
GUESTS = (  # §7.3 fraternity: (lever, group it targets, the affinity that resents it)
    ("crackdown_ttp", "ttp", "ttp_affinity"),
    ("crackdown_uyghur", "uyghur", "hardline"),
    ("crackdown_aq", "aq_imu", "hardline"),
)
CROSS_PREFERENCE = {"ttp": "ttp_affinity", "aq_imu": "hardline", "uyghur": "hardline"}  # §7.13
LEVERS = (
    "moderation",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
    "counter_isk",
    "witch_hunt",
)
ADAPTIVE = (
    "moderation",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
)
TOLERANCE = 1e-12  # §7.6: pressure reaches the threshold up to rounding
TRAITS = (
    "loyalty",
    "baseline_loyalty",
    "hardline",
    "uncertainty",
    "threshold",
    "hardship",
    "materialism",
    "ttp_affinity",
    "pashtun",
)


def clip(x: float) -> float:
    return min(1.0, max(0.0, x))


class Member(mesa.Agent):
    """A member of one origin group (ODD §2): traits, allegiance and contacts."""

    model: ReferenceModel

    def __init__(self, model: ReferenceModel, group: str, traits: dict[str, Any]) -> None:
        super().__init__(model)
        self.group = group
        self.slot = len(model.members)
        self.allegiance = ISK if group == ISK else "loyal"
        self.recruiter = False
        for name in TRAITS:
            setattr(self, name, traits[name])
        self.contacts: set[Member] = set()
        self.seen_recruiters = self.seen_isk = self.degree = 0
        self.defects = False
        model.members.append(self)

    # §3 step 3
    def sense(self) -> None:
        """Count recruiters r, IS-K members k and contacts d around me."""
        isk = [c for c in self.contacts if c.allegiance == ISK]
        self.seen_isk = len(isk)
        self.seen_recruiters = sum(c.recruiter for c in isk) if self.model.p["recruitment"] else 0
        self.degree = len(self.contacts)

    # §7.3
    def target(self, levers: dict[str, float], resources: float) -> float:
        """The loyalty I drift toward: baseline minus O, F, P, G, E plus M."""
        p, lever = self.model.p, levers
        total = self.baseline_loyalty
        if p["outbidding"]:
            total -= p["outbidding_strength"] * max(0.0, lever["moderation"] - (1 - self.hardline))
            total -= p["propaganda_strength"] * lever["foreign_cooperation"] * self.hardline
        if p["fraternity"]:
            duty = 1 + p["pashtunwali_strength"] * self.pashtun if p["pashtunwali"] else 1
            resented = sum(
                lever[name] * getattr(self, affinity)
                for name, target, affinity in GUESTS
                if self.group != target
            )
            total -= p["fraternity_strength"] * duty * resented
        if p["repression"] and self.group in LEVER_AGAINST:
            total -= p["repression_strength"] * lever[LEVER_AGAINST[self.group]]
        if p["material"]:
            total += (
                p["material_strength"] * self.materialism * (resources - p["resources_initial"])
            )
        if p["legitimacy"]:
            grievance = self.hardship * (p["legitimacy_initial"] - self.model.legitimacy)
            total -= p["legitimacy_strength"] * grievance
        if p["recruitment"]:
            total -= p["recruitment_strength"] * (1 - math.exp(-self.seen_recruiters))
        return clip(total)

    # §7.6
    def pressure(self, loyalty: float) -> float:
        """Disloyalty plus the pull of contacts already in IS-K."""
        p = self.model.p
        share = self.seen_isk / self.degree if p["cascade"] and self.degree else 0.0
        return (1 - loyalty) + p["cascade_strength"] * share

    # §7.4
    def drift(self) -> None:
        """Close part of the gap to my target loyalty."""
        if self.allegiance == "loyal":
            goal = self.target(self.model.levers, self.model.resources)
            self.loyalty += self.model.p["loyalty_adjustment"] * (goal - self.loyalty)

    # §7.6
    def decide(self) -> None:
        """Defect if my pressure reaches my threshold and IS-K reaches me."""
        p = self.model.p
        self.defects = False
        if self.allegiance != "loyal":
            return
        reached = (
            not p["reach"]
            or self.seen_recruiters > 0
            or self.seen_isk > 0
            or self.random.random() < p["walk_in"]
        )
        self.defects = reached and self.pressure(self.loyalty) >= self.threshold - TOLERANCE

    def apply(self) -> None:
        """Carry out the decision taken in ``decide``."""
        if self.defects:
            self.model.join_isk(self)


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
        self.p = (
            dict(start.p) if start is not None else resolve(preset_overrides(preset) | overrides)
        )
        self.members: list[Member] = []  # everyone ever, by slot (removed ones too)
        self.ties: list[tuple[Member, Member]] = []
        self.cells: list[int] = []
        self.resources = self.p["resources_initial"]
        self.legitimacy = self.p["legitimacy_initial"]
        self.levers = {name: self.p[name].at(0) for name in LEVERS}
        self.defections = self.cumulative_defections = 0
        self.attacks = self.attacks_on_taliban = 0
        if start is None:
            self.populate()
        else:
            self.copy_state(start)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                name: name
                for name in (
                    "isk_members",
                    "isk_recruiters",
                    "defections",
                    "cumulative_defections",
                    "attacks",
                    "legitimacy",
                    "resources",
                    "taliban_loyalty",
                    "isk_cells",
                )
            }
        )
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
        sizes = [p[f"{name}_size"] for name in names]
        n = p["population"]
        ideal = [size / sum(sizes) * n for size in sizes]
        counts = [math.floor(x) for x in ideal]
        by_remainder = sorted(range(len(names)), key=lambda g: -(ideal[g] - counts[g]))
        for g in by_remainder[: n - sum(counts)]:
            counts[g] += 1
        floor = [min(p["min_group_agents"], n // len(names)) if s > 0 else 0 for s in sizes]
        while any(c < f for c, f in zip(counts, floor, strict=True)):
            short = max(range(len(names)), key=lambda g: floor[g] - counts[g])
            counts[short] += 1
            donor = max(range(len(names)), key=lambda g: counts[g] - floor[g])
            counts[donor] -= 1
        self.scale = sum(sizes) / n
        return dict(zip(names, counts, strict=True))

    def draw_traits(self, group: str) -> dict[str, Any]:
        """§5.2: one member's traits, drawn around his group's means."""
        p = self.p
        if group == ISK:  # h = 1, loyalty 0, confident; other traits are never read
            return dict.fromkeys(TRAITS, 0.0) | {
                "hardline": 1.0,
                "uncertainty": p["extremist_uncertainty"],
                "threshold": 1.0,
                "pashtun": False,
            }
        spread = p["trait_spread"] if p["heterogeneity"] else 0.0

        def trait(mean: float, sd: float) -> float:
            return clip(self.random.gauss(mean, sd)) if sd > 0 else mean

        hardline = trait(p[f"{group}_hardline"], spread)
        loyalty = trait(p[f"{group}_loyalty"], spread)
        confident = hardline >= p["extremist_hardline"]
        return {
            "hardline": hardline,
            "loyalty": loyalty,
            "baseline_loyalty": loyalty,
            "ttp_affinity": trait(p[f"{group}_ttp_affinity"], spread),
            "materialism": trait(p[f"{group}_materialism"], spread),
            "threshold": trait(p[f"{group}_threshold"], p["threshold_spread"]),
            "hardship": self.random.random() if p["heterogeneity"] else 0.5,
            "pashtun": self.random.random() < p[f"{group}_pashtun"],
            "uncertainty": p["extremist_uncertainty"] if confident else p["uncertainty"],
        }

    def populate(self) -> None:
        """§5: members, recruiters, IS-K's singleton cells and the network (§7.13)."""
        p = self.p
        for group, count in self.agent_counts().items():
            for _ in range(count):
                member = Member(self, group, self.draw_traits(group))
                if group == ISK:
                    member.recruiter = (
                        p["recruitment"] and self.random.random() < p["recruiter_share"]
                    )
                    self.cells.append(1)
        self.build_network()

    def build_network(self) -> None:
        """§7.13, 'clustered' (the 'complete' network is for isolated tests only)."""
        p = self.p
        if p["network"] != "clustered":
            raise ValueError("the reference builds only the clustered network")
        by_group: dict[str, list[Member]] = {}
        for m in self.members:
            by_group.setdefault(m.group, []).append(m)
        for group, members in by_group.items():
            for m in members:
                for _ in range(round(p["ties_within"] / 2)):
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
                for _ in range(round(p["ties_between"] / 2)):
                    if others:
                        self.tie(m, self.random.choices(others, weights)[0])
        loyal = [m for m in self.members if m.allegiance == "loyal"]
        for recruiter in (m for m in self.members if m.recruiter):
            for _ in range(p["recruiter_ties"]):
                if loyal:
                    self.tie(recruiter, self.random.choice(loyal))

    def tie(self, a: Member, b: Member) -> None:
        """An undirected tie, without self-ties or duplicates."""
        if a is not b and b not in a.contacts:
            a.contacts.add(b)
            b.contacts.add(a)
            self.ties.append((a, b))

    def copy_state(self, fast: Any) -> None:
        """Members, recruiters, ties and cells as in ``fast`` at week 0 (its arrays, read)."""
        pop, names = fast.population, [*GROUP_NAMES, ISK]
        self.scale = fast.scale
        for slot in range(pop.n):
            traits = {name: getattr(pop, name)[slot].item() for name in TRAITS}
            member = Member(self, names[pop.group[slot]], traits)
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
        self.levers = self.choose_levers(self.steps)
        if self.steps == p["release_week"]:
            self.release()
        self.resources += p["resource_adjustment"] * (
            self.target_resources(self.levers) - self.resources
        )
        self.agents.shuffle_do("sense")
        self.agents.shuffle_do("drift")
        if p["peer_influence"]:
            self.encounters()
        self.defections = 0
        self.agents.shuffle_do("decide")
        self.agents.shuffle_do("apply")
        effort = self.effort()
        if p["attrition"]:
            self.attrition(effort)
        if p["cells"]:
            self.cell_events(min(1.0, p["fragmentation"] + p["fragmentation_ops"] * effort))
        self.attack(effort)
        self.datacollector.collect(self)

    # §7.1, §7.11
    def choose_levers(self, week: int) -> dict[str, float]:
        """The schedules' levers; with the adaptive leadership, its choice of five of them."""
        p = self.p
        levers = {name: p[name].at(week) for name in LEVERS}
        if not p["adaptive_leadership"]:
            return levers
        for member in self.agents:
            member.sense()  # this week's contacts
        chosen = levers | {name: self.levers[name] for name in ADAPTIVE}
        step = p["adaptive_step"]
        for name in ADAPTIVE:
            v = chosen[name]
            best, best_score = v, -math.inf
            for candidate in (v, max(v - step, 0.0), min(v + step, 1.0)):
                trial = chosen | {name: candidate}
                score = self.target_resources(trial) - p["risk_aversion"] * self.risk(trial)
                if score > best_score + TOLERANCE:  # equal up to rounding: the earlier wins
                    best, best_score = candidate, score
            chosen[name] = best
        return chosen

    def risk(self, levers: dict[str, float]) -> float:
        """§7.11: share of loyal members whose settled pressure would reach their threshold."""
        loyal = [m for m in self.agents if m.allegiance == "loyal"]
        if not loyal:
            return 0.0
        resources = self.target_resources(levers)
        crossing = [
            m.pressure(m.target(levers, resources)) >= m.threshold - TOLERANCE for m in loyal
        ]
        return sum(crossing) / len(loyal)

    # §7.2
    def target_resources(self, levers: dict[str, float]) -> float:
        """R*(L): what the policy brings in aid and revenue."""
        p = self.p
        crackdown = (
            levers["crackdown_ttp"] + levers["crackdown_uyghur"] + levers["crackdown_aq"]
        ) / 3
        return clip(
            p["resources_base"]
            + p["aid_moderation"] * levers["moderation"]
            + p["aid_crackdown"] * crackdown
            + p["aid_cooperation"] * levers["foreign_cooperation"]
        )

    # §7.5
    def encounters(self) -> None:
        """A random matching of loyal-loyal ties, then relative agreement pair by pair."""
        loyal = sum(m.allegiance == "loyal" for m in self.agents)
        used: set[Member] = set()
        for _ in range(round(self.p["peer_interactions"] * loyal / 2)):
            a, b = self.ties[self.random.randrange(len(self.ties))]
            if a.allegiance != "loyal" or b.allegiance != "loyal":
                continue
            if a not in used and b not in used:
                self.agree(a, b)
            used |= {a, b}

    def agree(self, a: Member, b: Member) -> None:
        """Deffuant et al. (2002) on opinions x = 2 loyalty - 1, from pre-encounter values."""
        mu = self.p["influence_rate"]
        xa, xb, ua, ub = 2 * a.loyalty - 1, 2 * b.loyalty - 1, a.uncertainty, b.uncertainty
        overlap = min(xa + ua, xb + ub) - max(xa - ua, xb - ub)
        on_b = mu * (overlap / ua - 1) if overlap > ua else 0.0  # a sways b
        on_a = mu * (overlap / ub - 1) if overlap > ub else 0.0  # b sways a
        a.loyalty, a.uncertainty = clip((xa + on_a * (xb - xa) + 1) / 2), ua + on_a * (ub - ua)
        b.loyalty, b.uncertainty = clip((xb + on_b * (xa - xb) + 1) / 2), ub + on_b * (ua - ub)

    # §7.6
    def join_isk(self, member: Member) -> None:
        """A defector: IS-K, loyalty 0, perhaps a recruiter, a singleton cell."""
        p = self.p
        member.allegiance, member.loyalty = ISK, 0.0
        member.recruiter = p["recruitment"] and self.random.random() < p["recruiter_share"]
        self.cells.append(1)
        self.defections += 1
        self.cumulative_defections += 1

    # §7.7
    def effort(self) -> float:
        """Counter-IS-K lever times capacity, part of it funded by aid."""
        p = self.p
        funded = self.resources / p["resources_initial"] if p["resources_initial"] > 0 else 1.0
        d = p["aid_dependence"]
        return self.levers["counter_isk"] * ((1 - d) + d * funded)

    def attrition(self, effort: float) -> None:
        """Each IS-K member (this week's defectors too) may be killed or captured."""
        p = self.p
        for member in [m for m in self.agents if m.allegiance == ISK]:
            exposure = p["recruiter_attrition"] if member.recruiter else 1.0
            if self.random.random() < min(1.0, p["attrition_rate"] * effort * exposure):
                member.allegiance, member.recruiter = "removed", False
                member.remove()
                self.leave_cell()

    def fighter_cell(self) -> int:
        """The cell of a fighter picked uniformly (a cell in proportion to its size)."""
        pick = self.random.randrange(sum(self.cells))
        for index, size in enumerate(self.cells):
            pick -= size
            if pick < 0:
                return index
        raise AssertionError("unreachable")

    def leave_cell(self) -> None:
        """A random fighter leaves his cell."""
        cell = self.fighter_cell()
        self.cells[cell] -= 1
        if self.cells[cell] == 0:
            del self.cells[cell]

    # §7.8
    def cell_events(self, nu: float) -> None:
        """Coalescence and fragmentation (Bohorquez et al. 2009)."""
        for _ in range(round(self.p["cell_events"] * sum(self.cells))):
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
    def attack(self, effort: float) -> None:
        """Poisson attacks by uniformly chosen cells; legitimacy recovers and is eroded."""
        p = self.p
        strength = self.isk_members * self.scale
        rate = p["attack_rate"] * strength / 1000 * math.exp(-p["attack_suppression"] * effort)
        self.attacks = int(self.rng.poisson(rate)) if strength > 0 else 0
        share = p["taliban_target_share"]
        self.attacks_on_taliban = sum(self.random.random() < share for _ in range(self.attacks))
        if p["cells"]:
            severities = [self.random.choice(self.cells) for _ in range(self.attacks)]
            typical = sum(self.cells) / len(self.cells) if self.cells else 1.0
        else:
            severities, typical = [1] * self.attacks, 1.0
        legitimacy = self.legitimacy + p["legitimacy_recovery"] * (
            p["legitimacy_initial"] - self.legitimacy
        )
        if p["legitimacy"] and severities:
            legitimacy -= p["legitimacy_hit"] * sum(severities) / typical
        self.legitimacy = clip(legitimacy)

    # §7.10
    def release(self) -> None:
        """Freed IS-K fighters and TTP prisoners join, each with ties into his own group."""
        p = self.p
        for group, people in ((ISK, p["release_isk"]), ("ttp", p["release_ttp"])):
            newcomers = [
                Member(self, group, self.draw_traits(group))
                for _ in range(round(people / self.scale))
            ]
            if group == ISK:
                self.cells += [1] * len(newcomers)
            everyone = [m for m in self.members if m.group == group]  # whatever their allegiance
            for m in newcomers:
                for _ in range(round(p["ties_within"] / 2)):
                    self.tie(m, self.random.choice(everyone))

    # ---- §7.12 observation -------------------------------------------------------------
    @property
    def isk_members(self) -> int:
        """IS-K members now."""
        return sum(m.allegiance == ISK for m in self.agents)

    @property
    def isk_recruiters(self) -> int:
        """IS-K recruiters now."""
        return sum(m.allegiance == ISK and m.recruiter for m in self.agents)

    @property
    def isk_cells(self) -> int:
        """Number of IS-K cells."""
        return len(self.cells)

    @property
    def taliban_loyalty(self) -> float:
        """Mean loyalty of the Taliban factions' loyal members."""
        loyal = [
            m.loyalty
            for m in self.agents
            if m.allegiance == "loyal" and m.group in TALIBAN_FACTIONS
        ]
        return sum(loyal) / len(loyal) if loyal else math.nan


def run_reference(weeks: int, seed: int, **overrides: Any) -> ReferenceModel:
    """A reference model (its own initialisation) run for ``weeks``."""
    model = ReferenceModel(seed, **overrides)
    for _ in range(weeks):
        model.step()
    return model
