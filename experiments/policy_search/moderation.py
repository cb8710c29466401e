"""When does moderation pay, lever by lever: which paths use it, where in the posterior it pays.

Women's rights and inclusion are asked about separately. A path *uses* a lever when the
lever's mean over the periods is at least ``moderation_level``; it *pays* in a scenario
when a stress-tested path that uses it beats the actual policy there on every
objective's measure (no worse anywhere, better somewhere; the same scenario, common
random numbers). The stress test holds the Pareto paths and, per lever, the best paths
of the whole archive that use it (so that a lever the front leaves out is still tested).
Over the posterior's parameters, PRIM (EMA Workbench, ``experiments.stats.prim_box``)
finds the box where it pays; each parameter the box restricts is linked to the
calibration pattern whose simulated value (the actual policy's run in the same scenario)
correlates most with it: the pattern whose measurement would move that parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from isk_defection.experiments.ensemble import Ensemble
from isk_defection.experiments.policy_search.analysis import crowding, per_scenario_losses
from isk_defection.experiments.policy_search.evaluate import Scenario
from isk_defection.experiments.policy_search.robust import dominates, non_dominated
from isk_defection.experiments.policy_search.spec import OptimizeSpec
from isk_defection.experiments.stats import prim_box, wilson

WORDS = {
    "inclusion": "power sharing (inclusion)",
    "womens_rights": "women's rights",
    "moderation": "moderation (women's rights and inclusion together)",
}


@dataclass(frozen=True)
class LeverAnswer:
    """Whether, how often and where paths that use one moderation lever beat the actual policy."""

    lever: str
    level: float
    pays: np.ndarray  # per out-of-sample scenario
    paths: int  # stress-tested paths that use the lever
    feasible_paths: int  # ... of which meet the constraints in sample
    answerable: bool  # False without a posterior: no scenario discovery
    reason: str = ""
    box: list[dict[str, Any]] = field(default_factory=list)
    box_stats: dict[str, float] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)  # box parameter -> pattern

    @property
    def scenarios(self) -> int:
        """Out-of-sample scenarios asked."""
        return len(self.pays)

    @property
    def share(self) -> float:
        """Share of scenarios in which it pays."""
        return float(self.pays.mean()) if len(self.pays) else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the share."""
        return wilson(int(self.pays.sum()), len(self.pays))


def lever_use(spec: OptimizeSpec, x: np.ndarray, target: str) -> np.ndarray:
    """Per path: the mean over the periods of the searched lever that sets ``target`` (a model lever).

    0 when no searched lever sets it (the path leaves it to the preset).
    """
    x = np.atleast_2d(x)
    for i, lever in enumerate(spec.levers):
        if target in lever.targets:
            return x[:, i * spec.periods : (i + 1) * spec.periods].mean(axis=1)
    return np.zeros(len(x))


def uses(spec: OptimizeSpec, x: np.ndarray, target: str) -> np.ndarray:
    """Per path: whether it uses ``target`` (mean level at least ``moderation_level``)."""
    return lever_use(spec, x, target) >= spec.moderation_level - 1e-9


def champions(
    spec: OptimizeSpec, x: np.ndarray, losses: np.ndarray, feasible: np.ndarray, target: str
) -> np.ndarray:
    """Indices of the archive's best paths that use ``target``, at most ``moderation_stress_paths``.

    The non-dominated set (robust objectives, in sample) of the feasible paths that use it,
    or of all that use it when none is feasible; trimmed by crowding distance.
    """
    using = uses(spec, x, target)
    pool = np.flatnonzero(using & feasible)
    if not len(pool):
        pool = np.flatnonzero(using)
    if not len(pool) or spec.moderation_stress_paths == 0:
        return np.zeros(0, dtype=int)
    best = pool[non_dominated(losses[pool])]
    while len(best) > spec.moderation_stress_paths:
        best = np.delete(best, int(np.argmin(crowding(losses[best]))))
    return best


def beats_actual(spec: OptimizeSpec, values: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """``(paths, scenarios)``: the path beats the actual policy on every objective's measure."""
    paths = per_scenario_losses(spec, values)
    reference = per_scenario_losses(spec, actual[None])[0]
    return np.array(
        [
            [dominates(paths[p, s], reference[s]) for s in range(paths.shape[1])]
            for p in range(paths.shape[0])
        ],
        dtype=bool,
    ).reshape(paths.shape[0], paths.shape[1])


def lever_answers(
    spec: OptimizeSpec,
    ensemble: Ensemble,
    x: np.ndarray,
    feasible: np.ndarray,
    values: np.ndarray,
    actual: np.ndarray,
    fresh: list[Scenario],
    patterns: pd.DataFrame | None = None,
) -> tuple[dict[str, LeverAnswer], np.ndarray]:
    """Per moderation lever, its answer; and per scenario, whether a path using none beats it.

    ``x``, ``feasible`` and ``values`` describe the stress-tested paths (decision vectors,
    in-sample feasibility, out-of-sample measures ``(paths, scenarios, measures)``);
    ``actual`` the actual policy's measures in the same scenarios; ``patterns`` (scenarios x
    patterns) its calibration patterns' values there, if they were recorded.
    """
    beats = beats_actual(spec, values, actual) if len(x) else np.zeros((0, len(fresh)), bool)
    varying = ensemble.varying()
    reason = ""
    if ensemble.is_defaults or not varying:
        reason = (
            "no posterior given" if ensemble.is_defaults else "the posterior's draws do not vary"
        )
    parameters = pd.DataFrame([{p: s.params[p] for p in varying} for s in fresh]).astype(float)
    answers = {}
    moderating = np.zeros(len(x), dtype=bool)
    for target in spec.moderation_targets:
        using = uses(spec, x, target)
        moderating |= using
        pays = beats[using].any(axis=0) if using.any() else np.zeros(len(fresh), bool)
        answer = LeverAnswer(
            target,
            spec.moderation_level,
            pays,
            int(using.sum()),
            int((using & feasible).sum()),
            answerable=not reason,
            reason=reason,
        )
        if not reason and pays.any() and not pays.all():
            box, numbers = prim_box(parameters, pays)
            links = pattern_links(parameters, [b["parameter"] for b in box], patterns)
            answer = LeverAnswer(
                target, answer.level, pays, answer.paths, answer.feasible_paths, True, "",
                box, numbers, links,
            )  # fmt: skip
        answers[target] = answer
    other = beats[~moderating].any(axis=0) if (~moderating).any() else np.zeros(len(fresh), bool)
    return answers, other


def pattern_links(
    parameters: pd.DataFrame, names: list[str], patterns: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Per parameter, the calibration pattern whose simulated value correlates most with it.

    Spearman's rank correlation over the scenarios between the parameter's value and the
    pattern's value in the actual policy's run there; the pattern with the largest
    absolute correlation is the one whose measurement would move the parameter most.
    Without the patterns' values, the link says how to get them.
    """
    links = []
    for name in names:
        if patterns is None or patterns.empty:
            links.append({"parameter": name, "pattern": None, "rho": float("nan")})
            continue
        best, rho = None, 0.0
        x = parameters[name].to_numpy(float)
        for pattern in patterns.columns:
            y = patterns[pattern].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
                continue
            r = float(stats.spearmanr(x[ok], y[ok]).statistic)
            if np.isfinite(r) and abs(r) > abs(rho):
                best, rho = pattern, r
        links.append({"parameter": name, "pattern": best, "rho": rho if best else float("nan")})
    return links


def pays_table(answers: dict[str, LeverAnswer], fresh: list[Scenario]) -> pd.DataFrame:
    """pays.csv: per out-of-sample scenario and lever, whether a path using it pays."""
    table = pd.DataFrame({"scenario": [s.index for s in fresh], "draw": [s.draw for s in fresh]})
    for lever, answer in answers.items():
        table[f"pays_{lever}"] = answer.pays
    return table
