"""The pieces pymoo needs: the problem's shape, a rounding repair, reference directions.

Module-level classes, so that the algorithm pickles into a checkpoint.
"""

from __future__ import annotations

from math import comb

import numpy as np
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.util.ref_dirs import get_reference_directions


class LeverProblem(Problem):
    """Bounds and sizes only: candidates are evaluated outside pymoo (ask and tell)."""

    def __init__(self, n_var: int, n_obj: int, n_ieq_constr: int, xl: np.ndarray, xu: np.ndarray):
        super().__init__(n_var=n_var, n_obj=n_obj, n_ieq_constr=n_ieq_constr, xl=xl, xu=xu)


class Rounding(Repair):
    """Lever levels on a grid (e.g. 0.05).

    Levels one can name as observable acts, and duplicate paths that the search
    recognises instead of re-running.
    """

    def __init__(self, resolution: float) -> None:
        super().__init__()
        self.resolution = resolution

    def _do(self, problem, X, **kwargs):  # noqa: N803 — pymoo's signature
        x = np.asarray(X, dtype=float)
        if self.resolution > 0:
            x = np.round(x / self.resolution) * self.resolution
        return np.clip(np.round(x, 10), problem.xl, problem.xu)


def cv_then_random(pop, P, random_state=None, **kwargs):  # noqa: N803 — pymoo's signature
    """NSGA-III's tournament (constraint violation, then a seeded coin), picklable.

    pymoo's own comparison is wrapped by a decorator that pickle cannot name, and the
    algorithm must pickle into the checkpoint; this module-level function delegates to it.
    """
    from pymoo.algorithms.moo.nsga3 import comp_by_cv_then_random

    return comp_by_cv_then_random(pop, P, random_state=random_state, **kwargs)


def reference_directions(objectives: int, population: int) -> np.ndarray:
    """Das-Dennis directions, as many partitions as fit in the population (at least one)."""
    partitions = 1
    while comb(objectives + partitions, partitions + 1) <= population:
        partitions += 1
    return get_reference_directions("das-dennis", objectives, n_partitions=partitions)
