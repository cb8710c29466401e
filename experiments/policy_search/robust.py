"""Robustness statistics over scenarios, and Pareto dominance (pymoo's).

Everything here works in *loss* form (smaller is better): a quantity to maximise enters
with its sign flipped. Values per policy come as arrays ``(scenarios, measures)``.
"""

from __future__ import annotations

import numpy as np
from pymoo.util.dominator import Dominator
from pymoo.util.nds.non_dominated_sorting import find_non_dominated

from isk_defection.experiments.policy_search.spec import OptimizeSpec

QUANTILE = 0.9


def loss(values: np.ndarray, sense: str) -> np.ndarray:
    """Values in loss form: as they are to minimise, negated to maximise."""
    return values if sense == "min" else -values


def statistic(losses: np.ndarray, kind: str, reference: np.ndarray | None = None) -> np.ndarray:
    """A robustness statistic over the last axis (scenarios) of ``losses``.

    ``mean``; ``p90``: the 90th percentile of the loss (the worst decile's edge);
    ``regret``: the 90th percentile of the loss minus the reference policy's loss in the
    same scenario (common random numbers make the difference paired).
    """
    if kind == "mean":
        return losses.mean(axis=-1)
    if kind == "p90":
        return np.quantile(losses, QUANTILE, axis=-1)
    if reference is None:
        raise ValueError("regret: needs the reference policy's losses")
    return np.quantile(losses - reference, QUANTILE, axis=-1)


def measure_index(spec: OptimizeSpec) -> dict[str, int]:
    """Column of each measure in the value arrays."""
    return {m.name: i for i, m in enumerate(spec.measures)}


def objective_losses(
    spec: OptimizeSpec, values: np.ndarray, reference: np.ndarray | None
) -> np.ndarray:
    """The objectives ``(policies, objectives)`` in loss form, from values ``(p, s, m)``."""
    index = measure_index(spec)
    columns = []
    for objective in spec.objectives:
        column = loss(values[..., index[objective.measure.name]], objective.sense)
        ref = None
        if reference is not None:
            ref = loss(reference[:, index[objective.measure.name]], objective.sense)
        columns.append(statistic(column, objective.statistic, ref))
    return np.stack(columns, axis=-1)


def constraint_values(
    spec: OptimizeSpec, values: np.ndarray, reference: np.ndarray | None
) -> np.ndarray:
    """Each constraint's statistic in natural units: ``(policies, constraints)``.

    A relative constraint (``max_vs_reference``, ``min_vs_reference``) takes the statistic
    of the paired difference from the actual policy (the first reference) in the same
    scenario: ``mean`` its mean, ``p90`` (and ``regret``) the 90th percentile of the loss,
    i.e. for an upper bound the 90th percentile of the difference.
    """
    index = measure_index(spec)
    columns = []
    for constraint in spec.constraints:
        raw = values[..., index[constraint.measure.name]]
        sense = "min" if constraint.upper else "max"
        kind = constraint.statistic
        ref = None
        if constraint.relative:
            if reference is None:
                raise ValueError(f"constraints.{constraint.name}: needs the actual policy's runs")
            raw = raw - reference[:, index[constraint.measure.name]]
            kind = "p90" if kind == "regret" else kind
        elif reference is not None:
            ref = loss(reference[:, index[constraint.measure.name]], sense)
        columns.append(natural(statistic(loss(raw, sense), kind, ref), sense))
    if not columns:
        return np.zeros((values.shape[0], 0))
    return np.stack(columns, axis=-1)


def constraint_violations(
    spec: OptimizeSpec, values: np.ndarray, reference: np.ndarray | None
) -> np.ndarray:
    """``G <= 0`` means satisfied: ``(policies, constraints)``."""
    value = constraint_values(spec, values, reference)
    if not spec.constraints:
        return value
    bound = np.array([c.bound for c in spec.constraints])
    upper = np.array([c.upper for c in spec.constraints])
    return np.where(upper, value - bound, bound - value)


def natural(losses: np.ndarray, sense: str) -> np.ndarray:
    """Back from loss form to the quantity's own sign."""
    return losses if sense == "min" else -losses


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Loss vector ``a`` is no worse than ``b`` everywhere and better somewhere (pymoo)."""
    return bool(Dominator.get_relation(a, b) == 1)


def dominance_matrix(losses: np.ndarray) -> np.ndarray:
    """``D[i, j]``: policy i dominates policy j (pymoo's Dominator)."""
    return np.asarray(Dominator.calc_domination_matrix(losses) == 1)


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (pymoo's non-dominated sorting)."""
    mask = np.zeros(len(losses), dtype=bool)
    if len(losses):
        mask[find_non_dominated(losses)] = True
    return mask


def additive_epsilon(front: np.ndarray, point: np.ndarray, scale: np.ndarray) -> float:
    """How far ``point`` is from being dominated by ``front``, in units of ``scale``.

    The smallest ε such that some front member, worsened by ε·scale in every objective,
    still weakly dominates the point. Negative: a front member is better on every
    objective by at least |ε| of each objective's range; positive: no member is.
    """
    gaps = (front - point) / scale
    return float(np.min(np.max(gaps, axis=1)))
