"""A per-agent reference model, transcribed from docs/ODD.md in plain Mesa style.

It exists to test the fast, vectorised model: every rule of ODD §3 and §7 is written
again here, agent by agent, without importing the fast model's rule functions. To
compare the dynamics (not two initialisations), it starts from the fast model's week-0
state: each agent copies its slot's traits, and ties are copied from its network. The
adaptive leadership and prisoner releases are not transcribed: compare with
``adaptive_leadership=False`` and ``release_week=-1``.
"""

from __future__ import annotations

import math

import mesa

from model import DefectionModel

GROUP_LEVER = {
    "ttp": "crackdown_ttp",
    "uyghur": "crackdown_uyghur",
    "aq_imu": "crackdown_aq",
    "former": "witch_hunt",
}
GUESTS = (
    ("crackdown_ttp", "ttp", "ttp_affinity"),
    ("crackdown_uyghur", "uyghur", "hardline"),
    ("crackdown_aq", "aq_imu", "hardline"),
)


class Member(mesa.Agent):
    """A member who drifts toward his target loyalty and defects past his threshold (ODD §7)."""

    def __init__(self, model: ReferenceModel, slot: int, fast: DefectionModel) -> None:
        super().__init__(model)
        pop = fast.population
        self.group = fast.group_name(int(pop.group[slot]))
        self.in_isk = bool(pop.allegiance[slot] == 1)
        self.recruiter = bool(pop.recruiter[slot])
        for name in (
            "loyalty",
            "baseline_loyalty",
            "hardline",
            "uncertainty",
            "threshold",
            "hardship",
            "materialism",
            "ttp_affinity",
        ):
            setattr(self, name, float(getattr(pop, name)[slot]))
        self.pashtun = bool(pop.pashtun[slot])
        self.contacts: list[Member] = []
        self.defects = False
        self.removed = False  # killed or captured

    def target(self) -> float:
        """ODD §7.3: baseline minus outbidding, fraternity, repression, grievance, exposure."""
        p, m = self.model.p, self.model
        lever = m.levers
        total = self.baseline_loyalty
        if p["outbidding"]:
            total -= p["outbidding_strength"] * max(0.0, lever["moderation"] - (1 - self.hardline))
            total -= p["propaganda_strength"] * lever["foreign_cooperation"] * self.hardline
        if p["fraternity"]:
            duty = 1 + p["pashtunwali_strength"] * self.pashtun if p["pashtunwali"] else 1
            offence = sum(lever[k] * getattr(self, aff) for k, g, aff in GUESTS if self.group != g)
            total -= p["fraternity_strength"] * duty * offence
        if p["repression"] and self.group in GROUP_LEVER:
            total -= p["repression_strength"] * lever[GROUP_LEVER[self.group]]
        if p["material"]:
            total += (
                p["material_strength"] * self.materialism * (m.resources - p["resources_initial"])
            )
        if p["legitimacy"]:
            total -= (
                p["legitimacy_strength"] * self.hardship * (p["legitimacy_initial"] - m.legitimacy)
            )
        if p["recruitment"]:
            total -= p["recruitment_strength"] * (1 - math.exp(-self.recruiters_seen))
        return min(1.0, max(0.0, total))

    def sense(self) -> None:
        """ODD §3 step 3: count recruiters and IS-K members among contacts."""
        in_isk = [c for c in self.contacts if c.in_isk and not c.removed]
        self.isk_seen = len(in_isk)
        self.recruiters_seen = sum(c.recruiter for c in in_isk)
        if not self.model.p["recruitment"]:
            self.recruiters_seen = 0

    def drift(self) -> None:
        """ODD §7.4."""
        if not self.in_isk:
            self.loyalty += self.model.p["loyalty_adjustment"] * (self.target() - self.loyalty)

    def decide(self) -> None:
        """ODD §7.6: pressure against threshold, if IS-K reaches him."""
        p = self.model.p
        share = self.isk_seen / len(self.contacts) if self.contacts and p["cascade"] else 0.0
        pressure = (1 - self.loyalty) + p["cascade_strength"] * share
        reached = (
            self.recruiters_seen > 0 or self.isk_seen > 0 or self.random.random() < p["walk_in"]
        )
        self.defects = (
            not self.in_isk and pressure >= self.threshold and (reached or not p["reach"])
        )

    def apply(self) -> None:
        """Join IS-K: loyalty 0, maybe a recruiter, a singleton cell."""
        if self.defects:
            p = self.model.p
            self.in_isk, self.loyalty = True, 0.0
            self.recruiter = p["recruitment"] and self.random.random() < p["recruiter_share"]
            self.model.cells.append(1)
            self.model.defections += 1


class ReferenceModel(mesa.Model):
    """The ODD's weekly schedule run agent by agent."""

    def __init__(self, fast: DefectionModel, seed: int) -> None:
        super().__init__(rng=seed)
        self.p, self.policy, self.scale = fast.p, fast.policy, fast.scale
        members = [Member(self, slot, fast) for slot in range(fast.population.n)]
        adjacency = fast.network
        for slot, member in enumerate(members):
            row = adjacency.indices[adjacency.indptr[slot] : adjacency.indptr[slot + 1]]
            member.contacts = [members[j] for j in row]
        self.members = members
        self.ties = [
            (i, int(j))
            for i, m in enumerate(members)
            for j in adjacency.indices[adjacency.indptr[i] : adjacency.indptr[i + 1]]
            if i < j
        ]
        self.cells = [1] * sum(m.in_isk for m in members)
        self.resources, self.legitimacy = self.p["resources_initial"], self.p["legitimacy_initial"]
        self.defections = self.removed = 0

    def step(self) -> None:
        """ODD §3, in order."""
        p = self.p
        self.levers = self.policy.levers_at(self.steps)
        crack = (
            self.levers["crackdown_ttp"]
            + self.levers["crackdown_uyghur"]
            + self.levers["crackdown_aq"]
        ) / 3
        goal = p["resources_base"] + p["aid_moderation"] * self.levers["moderation"]
        goal += (
            p["aid_crackdown"] * crack + p["aid_cooperation"] * self.levers["foreign_cooperation"]
        )
        self.resources += p["resource_adjustment"] * (min(1.0, max(0.0, goal)) - self.resources)
        self.agents.shuffle_do("sense")
        self.agents.shuffle_do("drift")
        if p["peer_influence"]:
            self.encounters()
        self.agents.shuffle_do("decide")
        self.agents.shuffle_do("apply")
        self.operations()
        self.attacks()

    def encounters(self) -> None:
        """ODD §7.5: a random matching of ties, then relative agreement pair by pair."""
        loyal = [m for m in self.members if not m.in_isk]
        used: set[int] = set()
        for _ in range(round(self.p["peer_interactions"] * len(loyal) / 2)):
            i, j = self.ties[self.random.randrange(len(self.ties))]
            a, b = self.members[i], self.members[j]
            if a.in_isk or b.in_isk:
                continue
            fresh = i not in used and j not in used
            used |= {i, j}
            if fresh:
                self.agree(a, b)

    def agree(self, a: Member, b: Member) -> None:
        """Deffuant et al. (2002) relative agreement on opinion x = 2 loyalty - 1."""
        mu = self.p["influence_rate"]
        xa, xb, ua, ub = 2 * a.loyalty - 1, 2 * b.loyalty - 1, a.uncertainty, b.uncertainty
        overlap = min(xa + ua, xb + ub) - max(xa - ua, xb - ub)
        if overlap > ua:
            weight = mu * (overlap / ua - 1)
            b.loyalty = min(1.0, max(0.0, (xb + weight * (xa - xb) + 1) / 2))
            b.uncertainty = ub + weight * (ua - ub)
        if overlap > ub:
            weight = mu * (overlap / ub - 1)
            a.loyalty = min(1.0, max(0.0, (xa + weight * (xb - xa) + 1) / 2))
            a.uncertainty = ua + weight * (ub - ua)

    def effort(self) -> float:
        """ODD §7.7: counter-IS-K lever times partly aid-funded capacity."""
        d = self.p["aid_dependence"]
        return self.levers["counter_isk"] * (
            (1 - d) + d * self.resources / self.p["resources_initial"]
        )

    def operations(self) -> None:
        """ODD §7.7 attrition and §7.8 coalescence-fragmentation."""
        p, e = self.p, self.effort()
        if p["attrition"]:
            for member in [m for m in self.members if m.in_isk and not m.removed]:
                risk = (
                    p["attrition_rate"] * e * (p["recruiter_attrition"] if member.recruiter else 1)
                )
                if self.random.random() < min(1.0, risk):
                    member.removed = True
                    member.remove()
                    self.removed += 1
                    self.leave_cell()
        if p["cells"]:
            nu = min(1.0, p["fragmentation"] + p["fragmentation_ops"] * e)
            for _ in range(round(p["cell_events"] * sum(self.cells))):
                if sum(self.cells) < 2:
                    break
                cell = self.fighter_cell()
                if self.random.random() < nu:
                    self.cells += [1] * (self.cells.pop(cell) - 1) + [1]
                else:
                    other = self.fighter_cell()
                    if other != cell:
                        self.cells[cell] += self.cells[other]
                        self.cells.pop(other)

    def fighter_cell(self) -> int:
        """The cell of a fighter picked uniformly at random."""
        pick = self.random.randrange(sum(self.cells))
        for index, size in enumerate(self.cells):
            pick -= size
            if pick < 0:
                return index
        raise AssertionError("unreachable")

    def leave_cell(self) -> None:
        cell = self.fighter_cell()
        self.cells[cell] -= 1
        if self.cells[cell] == 0:
            self.cells.pop(cell)

    def attacks(self) -> None:
        """ODD §7.9: Poisson attacks, severity = a uniformly chosen cell's size."""
        p = self.p
        strength = self.isk_members * self.scale
        rate = (
            p["attack_rate"] * strength / 1000 * math.exp(-p["attack_suppression"] * self.effort())
        )
        count = int(self.rng.poisson(rate)) if strength > 0 else 0
        if p["cells"]:
            severities = [self.cells[self.random.randrange(len(self.cells))] for _ in range(count)]
        else:
            severities = [1] * count
        recovered = self.legitimacy + p["legitimacy_recovery"] * (
            p["legitimacy_initial"] - self.legitimacy
        )
        if p["legitimacy"] and severities:
            typical = sum(self.cells) / len(self.cells) if p["cells"] else 1.0
            recovered -= p["legitimacy_hit"] * sum(severities) / typical
        self.legitimacy = min(1.0, max(0.0, recovered))

    @property
    def isk_members(self) -> int:
        """IS-K members now."""
        return sum(m.in_isk and not m.removed for m in self.members)


def run_reference(weeks: int, seed: int, **overrides) -> ReferenceModel:
    """Build the fast model's week-0 state with ``seed`` and run the reference on it."""
    fast = DefectionModel(rng=seed, release_week=-1, collect_agent_data=False, **overrides)
    reference = ReferenceModel(fast, seed)
    for _ in range(weeks):
        reference.step()
    return reference
