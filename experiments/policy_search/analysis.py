"""From the archive to answers: the Pareto set, the references' place, stress, moderation.

The Pareto set is taken over every path evaluated; the references (the actual policy,
Ali's inclusive government) are placed against it by dominance and the additive epsilon
indicator; the stress test re-runs the set out of sample. When moderation pays, lever by
lever, is in ``moderation``; the constraint's sensitivity in ``sensitivity``; regret in
``regret``; the per-lever dose-response in ``dose_response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from isk_defection.experiments.ensemble import Ensemble
from isk_defection.experiments.policy_search.robust import (
    additive_epsilon,
    constraint_violations,
    dominance_matrix,
    dominates,
    loss,
    measure_index,
    natural,
    non_dominated,
    objective_losses,
)
from isk_defection.experiments.policy_search.search import SearchResult
from isk_defection.experiments.policy_search.spec import OptimizeSpec

QUANTILES = {"mean": None, "p10": 0.1, "p50": 0.5, "p90": 0.9}


@dataclass(frozen=True)
class ParetoSet:
    """The non-dominated feasible paths of the whole archive (trimmed by crowding if many)."""

    x: np.ndarray
    values: np.ndarray  # in-sample (paths, scenarios, measures)
    losses: np.ndarray  # robust objectives, loss form
    violations: np.ndarray
    feasible_found: bool  # False: no feasible path; the least infeasible ones instead
    archive_size: int
    non_dominated_size: int  # before trimming


@dataclass(frozen=True)
class Placement:
    """Where a reference policy stands against the front (in-sample robust objectives)."""

    name: str
    losses: np.ndarray
    feasible: bool
    dominated_by: list[int]  # Pareto path ids that dominate it
    epsilon: float  # additive epsilon in units of each objective's range (< 0: dominated)
    best_gain: dict[str, float]  # per objective, the largest improvement by a dominating path


def crowding(losses: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance (boundary points infinite)."""
    n, m = losses.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(losses[:, j], kind="stable")
        span = losses[order[-1], j] - losses[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            gaps = (losses[order[2:], j] - losses[order[:-2], j]) / span
            distance[order[1:-1]] += gaps
    return distance


def pareto_set(spec: OptimizeSpec, result: SearchResult) -> ParetoSet:
    """Non-dominated feasible paths among every candidate evaluated, at most ``pareto_max``.

    Taken over the whole archive, not the last population: NSGA can drop a non-dominated
    path when a front is full, and then a later path it dominates would pass for optimal.
    """
    reference = result.reference_values[0] if len(spec.references) else None
    losses = objective_losses(spec, result.values, reference)
    violations = constraint_violations(spec, result.values, reference)
    cv = np.clip(violations, 0, None).sum(axis=1)
    feasible = cv <= 0
    pool = np.flatnonzero(feasible) if feasible.any() else np.flatnonzero(cv == cv.min())
    front = pool[non_dominated(losses[pool])]
    size = len(front)
    while len(front) > spec.pareto_max:
        distance = crowding(losses[front])
        front = np.delete(front, int(np.argmin(distance)))
    order = front[np.lexsort(losses[front].T[::-1])]
    return ParetoSet(
        result.x[order],
        result.values[order],
        losses[order],
        violations[order],
        bool(feasible.any()),
        len(result.x),
        size,
    )


def moderation_level(spec: OptimizeSpec, x: np.ndarray) -> np.ndarray:
    """Per path: the larger of the moderation levers' means over the periods (0 if none)."""
    names = [lever.name for lever in spec.levers]
    levels = [
        x[:, names.index(n) * spec.periods : (names.index(n) + 1) * spec.periods].mean(axis=1)
        for n in spec.moderation_levers
    ]
    return np.max(levels, axis=0) if levels else np.zeros(len(x))


def summary_columns(spec: OptimizeSpec, values: np.ndarray, suffix: str = "") -> dict[str, Any]:
    """Per measure: mean and quantiles over the scenarios, natural units."""
    columns = {}
    for i, measure in enumerate(spec.measures):
        for name, q in QUANTILES.items():
            data = values[..., i]
            column = data.mean(axis=-1) if q is None else np.quantile(data, q, axis=-1)
            columns[f"{measure.name}_{name}{suffix}"] = column
    return columns


def objective_columns(spec: OptimizeSpec, losses: np.ndarray, suffix: str = "") -> dict[str, Any]:
    """The robust objectives in natural units."""
    return {
        f"{o.name}{suffix}": natural(losses[:, j], o.sense) for j, o in enumerate(spec.objectives)
    }


def pareto_table(
    spec: OptimizeSpec,
    front: ParetoSet,
    ensemble: Ensemble,
    stress_losses: np.ndarray | None,
    stress_values: np.ndarray | None,
) -> pd.DataFrame:
    """pareto.parquet: levers by period, robust objectives, statistics in and out of sample."""
    table = pd.DataFrame(front.x, columns=spec.variables)
    table.insert(0, "path", np.arange(len(front.x)))
    table["moderation"] = moderation_level(spec, front.x)
    for name, column in objective_columns(spec, front.losses).items():
        table[name] = column
    for name, column in summary_columns(spec, front.values).items():
        table[name] = column
    for j, constraint in enumerate(spec.constraints):
        table[f"constraint_{constraint.name}"] = front.violations[:, j]
    table["feasible"] = np.all(front.violations <= 0, axis=1)
    if stress_losses is not None and stress_values is not None:
        for name, column in objective_columns(spec, stress_losses, "_out").items():
            table[name] = column
        for name, column in summary_columns(spec, stress_values, "_out").items():
            table[name] = column
    table["ensemble"] = ensemble.label
    return table


def place(
    spec: OptimizeSpec, front: ParetoSet, name: str, losses: np.ndarray, violation: np.ndarray
) -> Placement:
    """Whether the reference is dominated, by which paths and by how much (additive epsilon)."""
    combined = np.vstack([front.losses, losses[None, :]])
    scale = combined.max(axis=0) - combined.min(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    by = [i for i, row in enumerate(front.losses) if dominates(row, losses)]
    gains = {}
    for j, objective in enumerate(spec.objectives):
        gain = max((losses[j] - front.losses[i, j] for i in by), default=0.0)
        gains[objective.name] = float(gain)
    return Placement(
        name,
        losses,
        bool(np.all(violation <= 0)),
        by,
        additive_epsilon(front.losses, losses, scale),
        gains,
    )


def per_scenario_losses(spec: OptimizeSpec, values: np.ndarray) -> np.ndarray:
    """Loss vectors per scenario on the objectives' measures (each measure once)."""
    index = measure_index(spec)
    seen, columns = set(), []
    for objective in spec.objectives:
        key = (objective.measure.name, objective.sense)
        if key not in seen:
            seen.add(key)
            columns.append(loss(values[..., index[objective.measure.name]], objective.sense))
    return np.stack(columns, axis=-1)


def stress_summary(
    spec: OptimizeSpec, in_losses: np.ndarray, out_losses: np.ndarray
) -> pd.DataFrame:
    """How each objective moves from in-sample to out-of-sample, across the Pareto paths.

    Relative changes are against the magnitude of the in-sample median, so that a path
    whose objective is near zero does not turn a small shift into a huge percentage.
    ``target_met``: the median relative shift is at most ``spec.target_shift`` (10%) in
    size, i.e. the in-sample scenarios were enough to judge this objective.
    """
    rows = []
    for j, objective in enumerate(spec.objectives):
        before = natural(in_losses[:, j], objective.sense)
        after = natural(out_losses[:, j], objective.sense)
        change = after - before
        scale = abs(float(np.median(before)))
        relative = change / scale if scale > 0 else np.full(len(change), np.nan)
        spread = len(before) > 2 and np.ptp(before) > 0 and np.ptp(after) > 0
        rho = float(stats.spearmanr(before, after).statistic) if spread else float("nan")
        rows.append(
            {
                "objective": objective.name,
                "statistic": objective.statistic,
                "in_sample_median": float(np.median(before)),
                "out_of_sample_median": float(np.median(after)),
                "median_change": float(np.median(change)),
                "median_relative_change": float(np.median(relative)),
                "largest_relative_change": float(np.max(np.abs(relative))),
                "rank_correlation": rho,
                "target_met": bool(abs(float(np.median(relative))) <= spec.target_shift),
            }
        )
    return pd.DataFrame(rows)


def still_non_dominated(out_losses: np.ndarray, reference_losses: np.ndarray) -> np.ndarray:
    """Out of sample, which Pareto paths no other path or reference dominates."""
    combined = np.vstack([out_losses, reference_losses])
    matrix = dominance_matrix(combined)
    return ~matrix[:, : len(out_losses)].any(axis=0)
