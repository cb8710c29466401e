"""Priors of the model's uncertain parameters: a documented range, a shape and a reason.

Every parameter here is a size the sources do not give (the model's own strengths and
rates) or a group mean that is an assumption. All priors are uniform over a plausible
range: the sources bound these quantities at best to an order of magnitude, and a flat
prior claims no more than that. The ranges are the ones stated in the registry's
sources ("prior a-b" in ``model/parameters.py``) or, for the parameters the v2 point fit
screened, that screen's ranges (docs/ODD.md §9). Screening (``screen``) decides which
of them the patterns can inform; the rest stay at their defaults, each with its reason
(``FIXED``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from isk_defection.model.parameters import PARAMETERS


@dataclass(frozen=True)
class Prior:
    """A uniform prior on ``[low, high]`` and why."""

    name: str
    low: float
    high: float
    why: str
    shape: str = "uniform"

    def __post_init__(self) -> None:
        low, high = PARAMETERS[self.name].bounds()
        if not (low <= self.low < self.high <= high):
            raise ValueError(f"prior {self.name}: [{self.low}, {self.high}] outside the registry")

    @property
    def default(self) -> float:
        """The registry's default (the v2 point fit or the modeller's guess)."""
        return float(PARAMETERS[self.name].default)

    @property
    def width(self) -> float:
        """The length of the prior's range (its density is 1 / width on it)."""
        return self.high - self.low

    def scipy(self) -> stats.rv_continuous:
        """The prior as a frozen scipy distribution."""
        return stats.uniform(self.low, self.high - self.low)

    def text(self) -> str:
        """The prior in words for tables."""
        return f"{self.shape}({self.low:g}, {self.high:g})"


_REG = "range stated in the registry's source (prior a-b): a size the seeds do not give"
_FIT = "the range the v2 point fit screened (ODD §9): a size the seeds do not give"

PRIORS: dict[str, Prior] = {
    p.name: p
    for p in (
        # loyalty terms: the sign comes from a source, the size from nowhere
        Prior("outbidding_strength", 0.25, 2.0, _REG + "; women's rights offend hardliners [Ali]"),
        Prior("fraternity_strength", 0.05, 1.0, _REG + "; the pro-TTP lobby [Ali]"),
        Prior("repression_strength", 0.1, 1.0, _REG + "; crackdowns push their targets [Ali]"),
        Prior("propaganda_strength", 0.1, 1.0, _REG + "; 'collaborating with infidels' [Ali]"),
        Prior("pashtunwali_strength", 0.0, 1.0, _REG + "; Pashtunwali duty to guests [Ali]"),
        Prior("material_strength", 0.1, 1.0, _REG + "; aid sustains the regime [Ali]"),
        Prior("legitimacy_strength", 0.1, 1.0, _REG + "; Epstein (2002) grievance"),
        Prior("inclusion_strength", 0.0, 1.0, _REG + "; inclusion wins its groups [Ali]"),
        Prior("recruitment_strength", 0.0, 0.3, _FIT + "; IS-K recruiters [Ali]"),
        Prior("contagion_weight", 0.0, 1.0, _REG + "; Granovetter thresholds, weight own"),
        # IS-K's reach and intake
        Prior("isk_reach", 0.005, 0.1, _FIT + "; sleeper cells in 13 provinces [Ali]"),
        Prior("recruiter_share", 0.05, 0.2, _FIT),
        Prior("absorptive_capacity", 0.005, 0.03, _FIT + "; UN 4,000 -> 6,000 in two years"),
        # ways out
        Prior("desertion_rate", 0.02, 0.3, _REG + "; part-time fighters, Seymour (2014)"),
        Prior("return_rate", 0.0, 0.2, _REG + "; Christia (2012) realignment"),
        Prior("isk_desertion", 0.0, 0.01, _REG),
        # regime and operations
        Prior("legitimacy_inclusion", 0.0, 0.3, _REG),
        Prior("capacity_inclusion", 0.0, 1.0, _REG),
        Prior("attrition_rate", 0.001, 0.01, _FIT + "; 'hundreds' killed by end 2022 [Ali]"),
        Prior("attack_rate", 20.0, 100.0, _FIT + "; attack counts 2021-22 [Ali]"),
        Prior("attack_suppression", 1.0, 10.0, _FIT),
        Prior("provocation_strength", 0.0, 1.0, _REG + "; courting the West [Pereira]"),
        Prior("decapitation_hazard", 0.0, 0.02, _REG + "; Jordan (2009)"),
        Prior("decapitation_loss", 0.1, 0.8, _REG + "; Jordan (2009)"),
        Prior("leadership_recovery", 0.005, 0.1, _REG),
        Prior("external_max", 0.0, 0.8, _FIT + "; strikes abroad 2022-24 [Ali]"),
        Prior("external_adjustment", 0.01, 0.1, _REG),
        Prior(
            "attack_concentration",
            0.0,
            3.0,
            "assumption (model v3): fewer, larger attacks at home with effort abroad "
            "(UN Monitoring Team 2024)",
        ),
        Prior(
            "isk_ceiling",
            6_000.0,
            24_000.0,
            "assumption (model v3): Shapiro (2013) security-efficiency trade-off; 1-4 times "
            "the largest strength reported since 2015 (about 6,000)",
        ),
        # group means that are assumptions and bear on patterns (TTP, former officials)
        Prior(
            "ttp_threshold",
            0.5,
            0.95,
            "assumption; the v1 fit's range for the TTP's "
            "threshold (the TTP largely loyal while sheltered)",
        ),
        Prior(
            "former_threshold",
            0.5,
            0.9,
            "assumption: former officials' mean threshold "
            "(default 0.7 +- 0.2; they joined IS-K 'in droves' [Pereira])",
        ),
        Prior(
            "tolerance_spread",
            0.1,
            0.3,
            "assumption (model v3): within-faction s.d. of hardline-ness (Giustozzi 2019: "
            "members differ by age, rank, district and patronage)",
        ),
        Prior(
            "threshold_spread",
            0.05,
            0.25,
            "assumption: within-group s.d. of thresholds "
            "(Granovetter 1978 uses normal thresholds; spread unknown)",
        ),
    )
}


def names() -> list[str]:
    """Every parameter with a prior."""
    return list(PRIORS)


def sample(n: int, rng: np.random.Generator, which: list[str] | None = None) -> np.ndarray:
    """``n`` draws from the priors of ``which`` (rows: draws, columns: parameters)."""
    which = which or names()
    return np.column_stack([PRIORS[w].scipy().rvs(n, random_state=rng) for w in which])


def table_markdown(inferred: list[str] | None = None) -> str:
    """The priors as a Markdown table (with whether each is inferred or fixed)."""
    lines = [
        "| parameter | default | prior | why | in the fit |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in PRIORS.values():
        role = "" if inferred is None else ("inferred" if p.name in inferred else "fixed")
        lines.append(f"| `{p.name}` | {p.default:g} | {p.text()} | {p.why} | {role} |")
    return "\n".join(lines)
