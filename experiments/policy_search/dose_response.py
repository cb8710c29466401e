"""Before the search: each moderation lever alone, dose by dose, across the scenarios.

Inclusion (power sharing) and women's rights (a doctrinal concession) are the two sides
of Ali's argument, so each is analysed on its own: the lever held at each dose over the
whole horizon, every other lever and parameter as in the actual policy (the first
reference), in the search's own scenarios (posterior draws x seeds, common random
numbers). The effect of a dose in a scenario is its measure minus the actual policy's in
that scenario; over the scenarios, its median and 5-95% band (a credible band across the
posterior and the seeds), and the share of scenarios in which the dose beats the actual
policy on every objective.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from isk_defection.experiments.policy_search.analysis import per_scenario_losses
from isk_defection.experiments.policy_search.evaluate import Scenario
from isk_defection.experiments.policy_search.robust import dominates, loss, measure_index
from isk_defection.experiments.policy_search.search import JOURNAL, Evaluations, Policy
from isk_defection.experiments.policy_search.spec import OptimizeSpec
from isk_defection.model import DefectionModel
from isk_defection.model.policy import Schedule

BAND = (0.05, 0.95)  # the credible band over scenarios


@dataclass(frozen=True)
class DoseResponse:
    """Every lever's runs at every dose, and the actual policy's, in the same scenarios."""

    levers: tuple[str, ...]
    doses: tuple[float, ...]
    values: np.ndarray  # (levers, doses, scenarios, measures)
    actual: np.ndarray  # (scenarios, measures): the actual policy
    actual_level: dict[str, float]  # each lever's mean level under the actual policy
    cpu: float = 0.0  # CPU seconds of the model runs


def dose_policies(spec: OptimizeSpec) -> list[Policy]:
    """Lever-major: each lever held at each dose, the rest as in the actual policy."""
    actual = spec.references[0]
    return [
        Policy(f"{lever}={dose:g}", actual, {lever: Schedule.constant(dose)})
        for lever in spec.dose_levers
        for dose in spec.doses
    ]


def actual_levels(spec: OptimizeSpec) -> dict[str, float]:
    """Each dose lever's mean level over weeks 0..steps under the actual policy."""
    model = DefectionModel(
        preset=spec.references[0],
        rng=0,
        **(spec.fixed | {"population": 50, "collect_agent_data": False}),
    )
    weeks = range(spec.steps + 1)
    return {
        lever: float(np.mean([model.policy.levers_at(w)[lever] for w in weeks]))
        for lever in spec.dose_levers
    }


def run_dose_response(
    spec: OptimizeSpec,
    scenes: list[Scenario],
    pool: Executor,
    out: Path | None,
    progress: Callable[[int], None] | None = None,
) -> DoseResponse | None:
    """Run every lever at every dose (and the actual policy) in ``scenes``; journalled."""
    if not spec.dose_levers or not spec.references:
        return None
    evaluations = Evaluations(spec, pool, progress, out / JOURNAL if out else None)
    actual = Policy(spec.references[0], spec.references[0], {})
    values = evaluations.values([actual, *dose_policies(spec)], scenes)
    shape = (len(spec.dose_levers), len(spec.doses), len(scenes), len(spec.measures))
    return DoseResponse(
        spec.dose_levers,
        spec.doses,
        values[1:].reshape(shape),
        values[0],
        actual_levels(spec),
        evaluations.cpu,
    )


def dose_table(spec: OptimizeSpec, dose: DoseResponse) -> pd.DataFrame:
    """One row per lever, dose and measure: the effect against the actual policy.

    ``effect_*`` are paired differences (dose minus actual, natural units) over the
    scenarios: median and the 5-95% band; ``better_share`` the share of scenarios in which
    the dose is better on this measure; ``beats_share`` (the same for every measure of a
    row's dose) the share in which it is no worse on every objective's measure and better
    on one. Each lever also has a row ``actual = True`` at the actual policy's mean level:
    the actual policy itself, effect 0 by definition.
    """
    index = measure_index(spec)
    senses = {m.name: m.sense for m in spec.measures}
    for o in spec.objectives:  # an objective's own direction wins
        senses[o.measure.name] = o.sense
    actual_losses = per_scenario_losses(spec, dose.actual[None])[0]
    rows = []
    for i, lever in enumerate(dose.levers):
        cases = [(d, dose.values[i, k], False) for k, d in enumerate(dose.doses)]
        cases.append((dose.actual_level[lever], dose.actual, True))
        for level, values, is_actual in cases:
            losses = per_scenario_losses(spec, values[None])[0]
            beats = np.mean([dominates(losses[s], actual_losses[s]) for s in range(len(losses))])
            for measure in spec.measures:
                j = index[measure.name]
                effect = values[:, j] - dose.actual[:, j]
                gain = -loss(effect, senses[measure.name])
                scale = abs(float(np.median(dose.actual[:, j])))
                rows.append(
                    {
                        "lever": lever,
                        "dose": float(level),
                        "actual": is_actual,
                        "measure": measure.name,
                        "sense": senses[measure.name],
                        "value_median": float(np.median(values[:, j])),
                        "actual_median": float(np.median(dose.actual[:, j])),
                        "effect_median": float(np.median(effect)),
                        "effect_low": float(np.quantile(effect, BAND[0])),
                        "effect_high": float(np.quantile(effect, BAND[1])),
                        "relative_median": float(np.median(effect)) / scale
                        if scale > 0
                        else float("nan"),
                        "better_share": float(np.mean(gain > 0)),
                        "beats_share": float(beats),
                        "scenarios": len(values),
                    }
                )
    return pd.DataFrame(rows)


def best_dose(
    table: pd.DataFrame, lever: str, first_measure: str, at_least: float = 0.0
) -> pd.Series | None:
    """The lever's dose (not the actual row) that beats the actual policy most often.

    Among the doses of at least ``at_least`` (the moderation level: a dose that uses the
    lever) if there are any; ties go to the larger median gain on ``first_measure`` (the
    first objective's).
    """
    rows = table[(table["lever"] == lever) & ~table["actual"] & (table["measure"] == first_measure)]
    if (rows["dose"] >= at_least - 1e-9).any():
        rows = rows[rows["dose"] >= at_least - 1e-9]
    if rows.empty:
        return None
    gain = np.where(rows["sense"] == "min", -rows["effect_median"], rows["effect_median"])
    order = np.lexsort((-gain, -rows["beats_share"].to_numpy()))
    return rows.iloc[int(order[0])]
