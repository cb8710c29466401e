"""Mesa agents: each a view onto one slot of the model's population arrays.

The model updates the arrays in bulk each week; an agent reads its own state
through properties, so ``model.agents``, ``AgentSet.select/groupby/agg``, agent
reporters and the browser all see the current state without a per-agent step.
A Mesa user may set an agent's traits (``agent.loyalty = 0.3``): the value is
checked and written to the arrays the next week's update reads. What the weekly
rules decide (allegiance, recruiting) and what a run is built from (group, people)
refuse assignment with a one-line reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from isk_defection.model.model import DefectionModel

ALLEGIANCES = ("loyal", "isk", "removed", "deserted")  # codes 0-3 of model.population
DECIDED = {  # read-only attributes, and why
    "group": "fixed at creation (it sets his traits' means and the agent's Mesa class)",
    "faction": "follows from his group, which is fixed at creation",
    "allegiance": "decided by the weekly rules (threshold, IS-K's reach and intake, "
    "desertion); change their parameters or levers instead",
    "people": "his group's size over its agents, fixed at creation",
    "recruiter": "decided by IS-K (recruiter_share) when he joins it",
}


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

    def __setattr__(self, name: str, value: object) -> None:
        if name in DECIDED:
            raise AttributeError(f"{name}: cannot be set on an agent: {DECIDED[name]}")
        super().__setattr__(name, value)

    def _write(self, trait: str, value: float) -> None:
        """Check a trait in [0, 1] and write it to the arrays the weekly update reads."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{trait}: must be a number in [0, 1] (got {value!r})")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{trait}: must be a number in [0, 1] (got {value!r})")
        getattr(self.model.population, trait)[self.slot] = float(value)

    def step(self) -> None:
        """Agents have no step of their own: the weekly update is synchronous (ODD §3).

        Every agent's loyalty, pressure and choice are computed together from last week's
        state, so stepping agents one by one in random order (``model.agents.shuffle_do
        ("step")``) would be a different model; ``model.step()`` runs the week.
        """
        raise NotImplementedError(
            "Fighter.step: agents are updated together each week from last week's state "
            "(synchronous update, ODD §3); call model.step() instead of stepping agents"
        )

    @property
    def loyalty(self) -> float:
        """Loyalty to the Taliban-led camp in [0, 1] (0 once in IS-K)."""
        return float(self.model.population.loyalty[self.slot])

    @loyalty.setter
    def loyalty(self, value: float) -> None:
        self._write("loyalty", value)

    @property
    def hardline(self) -> float:
        """Ideological hardness in [0, 1]; tolerance of moderation is 1 - hardline."""
        return float(self.model.population.hardline[self.slot])

    @hardline.setter
    def hardline(self, value: float) -> None:
        self._write("hardline", value)

    @property
    def threshold(self) -> float:
        """Defection threshold (Granovetter)."""
        return float(self.model.population.threshold[self.slot])

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._write("threshold", value)

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
