"""A number measured on each run (shared by the claims and the calibration patterns)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Outcome:
    """A number measured on each run: a weighted mean of model columns, reduced over weeks.

    ``how`` is ``final`` (last recorded week in the window), ``peak``, ``total``,
    ``mean`` or ``change`` (last minus first) over the weeks ``window`` (first, last;
    inclusive); ``rolling`` first sums
    the series over that many recorded weeks (a burst is a peak of such sums).
    """

    name: str
    label: str
    columns: Mapping[str, float]
    how: str = "final"
    window: tuple[int, int] | None = None
    rolling: int = 1
    add: bool = False  # the weighted sum of the columns instead of their weighted mean

    def series(self, frame: pd.DataFrame) -> pd.Series:
        """The weighted combination of the columns, row by row."""
        weights = pd.Series(self.columns, dtype=float)
        total = frame[list(weights.index)].mul(weights).sum(axis=1)
        return total if self.add else total / weights.sum()

    def measure(self, run: pd.DataFrame) -> float:
        """The outcome of one run (its rows, one per recorded week)."""
        rows = run.sort_values("step")
        if self.window is not None:
            rows = rows[rows["step"].between(*self.window)]
        values = self.series(rows).rolling(self.rolling, min_periods=1).sum().to_numpy()
        reduce: dict[str, Callable[[np.ndarray], float]] = {
            "final": lambda v: v[-1],
            "peak": np.max,
            "total": np.sum,
            "mean": np.mean,
            "change": lambda v: v[-1] - v[0],
        }
        return float(reduce[self.how](values))


__all__ = ["Outcome"]
