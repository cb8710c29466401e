"""Mesa agents: each a readable view onto one slot of the model's population arrays.

The model updates the arrays in bulk each week; an agent reads its own state
through properties, so ``model.agents``, ``AgentSet.select/groupby/agg``, agent
reporters and the browser all see the current state without a per-agent step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from isk_defection.model.model import DefectionModel

ALLEGIANCES = ("loyal", "isk", "removed", "deserted")  # codes 0-3 of model.population


class Fighter(mesa.Agent):
    """A member of an armed group: one agent for life, whatever his allegiance.

    Summary of rule (ODD §7.3-7.6): each week his loyalty drifts toward a target set by
    the leadership's levers, resources, legitimacy and IS-K recruiters among his contacts,
    and moves with his peers'. When his pressure (disloyalty plus the pull of contacts who
    have left) reaches his threshold he is disaffected: he joins IS-K if it reaches him
    and takes him (its intake is bounded), otherwise he may desert; a deserter whose
    pressure falls below his threshold may return.
    """

    model: DefectionModel

    def __init__(self, model: DefectionModel, slot: int) -> None:
        super().__init__(model)
        self.slot = slot

    @property
    def loyalty(self) -> float:
        """Loyalty to the Taliban-led camp in [0, 1] (0 once in IS-K)."""
        return float(self.model.population.loyalty[self.slot])

    @property
    def hardline(self) -> float:
        """Ideological hardness in [0, 1]; tolerance of moderation is 1 - hardline."""
        return float(self.model.population.hardline[self.slot])

    @property
    def threshold(self) -> float:
        """Defection threshold (Granovetter)."""
        return float(self.model.population.threshold[self.slot])

    @property
    def group(self) -> str:
        """Origin group: a Taliban faction, ttp, uyghur, aq_imu, former, or isk."""
        return self.model.group_name(int(self.model.population.group[self.slot]))

    @property
    def faction(self) -> str | None:
        """The Taliban faction of origin, or None for non-Taliban members."""
        return self.group if self.group in self.model.taliban_factions else None

    @property
    def allegiance(self) -> str:
        """'loyal' to the Taliban-led camp, 'isk', 'deserted' (left the fight) or 'removed'."""
        return ALLEGIANCES[int(self.model.population.allegiance[self.slot])]

    @property
    def people(self) -> float:
        """How many persons this agent stands for (his group's size over its agents)."""
        return float(self.model.population.people[self.slot])

    @property
    def recruiter(self) -> bool:
        """Whether this IS-K member recruits."""
        return bool(self.model.population.recruiter[self.slot])


class TalibanMember(Fighter):
    """A Taliban fighter of one faction; moderation beyond his tolerance offends him."""


class TTPMilitant(Fighter):
    """A TTP militant sheltered in Afghanistan; a crackdown on the TTP pushes him to IS-K."""


class UyghurMilitant(Fighter):
    """An ETIM/TIP militant; Taliban control of Uyghur militants pushes him to IS-K."""


class AlQaedaMilitant(Fighter):
    """An Al-Qaeda or IMU militant; a crackdown on his group pushes him to IS-K."""


class FormerOfficial(Fighter):
    """A former republic security or intelligence officer; the witch-hunt pushes him to IS-K."""


class ISKMember(Fighter):
    """An original IS-K fighter or freed prisoner; removed by counter-IS-K operations.

    Members who defect to IS-K keep their own kind and show allegiance 'isk'; any IS-K
    member may be a recruiter (``recruiter``), who wears down the loyalty of his contacts.
    """


KINDS: dict[str, type[Fighter]] = {
    cls.__name__: cls
    for cls in (TalibanMember, TTPMilitant, UyghurMilitant, AlQaedaMilitant, FormerOfficial)
}
