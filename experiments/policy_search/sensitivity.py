"""The answer's sensitivity to a constraint, from the one search's archive.

Under each level of one constraint (none, then the spec's levels from loose to tight),
the archive of every evaluated path is filtered to the paths that meet it (and every
other constraint) and the front recomputed by pymoo's non-dominated sorting: does a
moderating path enter it, and what does the best one cost and buy against the actual
policy? No search is rerun: the archive holds every path the one search evaluated
(under the spec's own constraint), so the fronts under other levels are those among the
paths it evaluated; a search run under a looser level could find paths this archive
lacks, where the spec's constraint steered the search away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isk_defection.experiments.policy_search.moderation import uses
from isk_defection.experiments.policy_search.robust import (
    additive_epsilon,
    dominates,
    natural,
    non_dominated,
)
from isk_defection.experiments.policy_search.spec import OptimizeSpec


@dataclass(frozen=True)
class Level:
    """One row of the table: the constraint at ``bound`` (None: dropped), its front."""

    bound: float | None
    feasible: np.ndarray  # per archive path
    front: np.ndarray  # indices into the archive


def levels(
    spec: OptimizeSpec, constraint_values: np.ndarray, actual_values: np.ndarray | None = None
) -> tuple[list[Level], np.ndarray]:
    """Each level's feasible paths and front; and whether the actual policy meets each.

    ``constraint_values`` ``(paths, constraints)`` are the constraints' statistics in
    natural units (:func:`robust.constraint_values`); fronts are filled by :func:`fronts`.
    """
    names = [c.name for c in spec.constraints]
    j = names.index(spec.sensitivity_constraint) if spec.sensitivity_constraint else None
    others = np.ones(len(constraint_values), dtype=bool)
    for k, c in enumerate(spec.constraints):
        if k != j:
            others &= c.holds(constraint_values[:, k])
    rows, actual_ok = [], []
    for bound in [None, *spec.sensitivity_levels]:
        ok = others.copy()
        actual = True
        if bound is not None and j is not None:
            ok &= spec.constraints[j].holds(constraint_values[:, j], bound)
            if actual_values is not None:
                actual = bool(spec.constraints[j].holds(actual_values[j], bound))
        if actual_values is not None:
            actual = actual and all(
                bool(c.holds(actual_values[k])) for k, c in enumerate(spec.constraints) if k != j
            )
        rows.append(Level(bound, ok, np.zeros(0, dtype=int)))
        actual_ok.append(actual)
    return rows, np.array(actual_ok, dtype=bool)


def fronts(losses: np.ndarray, rows: list[Level]) -> list[Level]:
    """Each level's front: the non-dominated feasible paths (pymoo), by archive index."""
    out = []
    for row in rows:
        pool = np.flatnonzero(row.feasible)
        front = pool[non_dominated(losses[pool])] if len(pool) else pool
        out.append(Level(row.bound, row.feasible, front))
    return out


def sensitivity_table(
    spec: OptimizeSpec,
    x: np.ndarray,
    losses: np.ndarray,
    constraint_values: np.ndarray,
    actual_losses: np.ndarray,
    actual_values: np.ndarray,
) -> pd.DataFrame:
    """constraint_sensitivity.csv: per level, the front and its moderating paths.

    ``x``, ``losses`` (robust objectives, loss form) and ``constraint_values`` describe
    the archive; ``actual_*`` the actual policy in the same scenarios. Per level: how many
    paths meet it, the front's size, how many front paths use each moderation lever,
    whether the actual policy meets it and is dominated by the front, and the moderating
    front path nearest to dominating the actual policy (smallest additive epsilon), with
    its objectives minus the actual policy's (natural units).
    """
    rows, actual_ok = levels(spec, constraint_values, actual_values)
    rows = fronts(losses, rows)
    moderating = np.zeros(len(x), dtype=bool)
    using = {t: uses(spec, x, t) for t in spec.moderation_targets}
    for column in using.values():
        moderating |= column
    records = []
    for row, ok in zip(rows, actual_ok, strict=True):
        front = row.front
        record: dict[str, object] = {
            "level": "none" if row.bound is None else f"{row.bound:+g}",
            "bound": np.nan if row.bound is None else row.bound,
            "feasible_paths": int(row.feasible.sum()),
            "front": len(front),
            "moderating_on_front": int(moderating[front].sum()),
        }
        for target, column in using.items():
            record[f"{target}_on_front"] = int(column[front].sum())
        record["actual_feasible"] = bool(ok)
        record["actual_dominated"] = any(dominates(losses[i], actual_losses) for i in front)
        chosen = front[moderating[front]]
        record["best_moderating_path"] = -1
        record["best_epsilon"] = np.nan
        if len(chosen):
            combined = np.vstack([losses[front], actual_losses[None]])
            scale = np.ptp(combined, axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            epsilons = [additive_epsilon(losses[[i]], actual_losses, scale) for i in chosen]
            best = int(chosen[int(np.argmin(epsilons))])
            record["best_moderating_path"] = best
            record["best_epsilon"] = float(np.min(epsilons))
        for k, o in enumerate(spec.objectives):
            delta = np.nan
            if len(chosen):
                delta = float(natural(losses[best, k] - actual_losses[k], o.sense))
            record[f"delta_{o.name}"] = delta
        records.append(record)
    return pd.DataFrame(records)
