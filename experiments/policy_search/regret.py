"""The regret view (MORDM): how far each path falls behind the best path, scenario by scenario.

For each objective's measure and scenario, a policy's regret is its loss minus the
smallest loss any of the compared policies reaches in that scenario (0 for the best,
never negative). Over the scenarios, the 90th percentile says how badly wrong the policy
can be in all but the worst tenth of the futures; a policy whose p90 regret is small on
every objective is never badly wrong, whatever the scenario turns out to be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from isk_defection.experiments.policy_search.robust import QUANTILE, loss, measure_index
from isk_defection.experiments.policy_search.spec import OptimizeSpec


def regret(losses: np.ndarray) -> np.ndarray:
    """``(policies, scenarios, k)`` losses -> regret against the best policy per scenario."""
    return losses - losses.min(axis=0, keepdims=True)


def regret_table(
    spec: OptimizeSpec, names: list[str], kinds: list[str], values: np.ndarray
) -> pd.DataFrame:
    """regret.csv: per policy, each objective's p90 regret (natural units, >= 0).

    ``values`` are the measures ``(policies, scenarios, measures)`` of the compared
    policies in the same scenarios. ``scaled_<objective>`` divides the p90 regret by the
    median over the scenarios of the spread between the best and the worst policy there;
    ``worst_scaled`` is the largest of them: rows are sorted by it, the never-badly-wrong
    paths first.
    """
    index = measure_index(spec)
    table = pd.DataFrame({"policy": names, "kind": kinds})
    scaled = []
    for o in spec.objectives:
        losses = loss(values[..., index[o.measure.name]], o.sense)[..., None]
        regrets = regret(losses)[..., 0]
        p90 = np.quantile(regrets, QUANTILE, axis=1)
        spread = float(np.median(np.ptp(losses[..., 0], axis=0)))
        table[f"regret_{o.name}"] = p90
        table[f"scaled_{o.name}"] = p90 / spread if spread > 0 else np.zeros(len(p90))
        scaled.append(table[f"scaled_{o.name}"].to_numpy())
    table["worst_scaled"] = np.max(scaled, axis=0) if scaled else 0.0
    return table.sort_values("worst_scaled", kind="stable").reset_index(drop=True)
