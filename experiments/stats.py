"""The statistics that decide verdicts, and scenario discovery (EMA Workbench's PRIM).

Bootstrap intervals, rank trends, proportions and power-law fits, shared by the claims,
the calibration and the policy search (one of each tool). Every resampling uses its own
seeded generator, so a verdict is a function of the data.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from isk_defection.experiments.extras import require

RESAMPLES = 4_000
LEVEL = 0.95
_BOOTSTRAP_SEED = 20_021_115


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float

    def excludes_zero(self, direction: int) -> bool:
        """Whether the interval lies wholly on the ``direction`` side of zero."""
        return self.low > 0 if direction > 0 else self.high < 0

    def text(self, digits: int = 3) -> str:
        """``value [low, high]`` rounded to ``digits`` significant figures."""
        return f"{_round(self.value, digits)} [{_round(self.low, digits)}, {_round(self.high, digits)}]"


def _round(x: float, digits: int) -> str:
    return f"{x:.{digits}g}" if np.isfinite(x) else "n/a"


def _bootstrap(data: tuple[np.ndarray, ...], statistic, paired: bool, value: float) -> Estimate:
    """scipy.stats.bootstrap (percentile, seeded) of ``statistic``; a point if it cannot vary.

    With one observation per sample (one run, as in a posterior draw) or constant data,
    every resample gives the same value, so the interval is that value.
    """
    if min(len(d) for d in data) < 2 or all(np.ptp(d) == 0 for d in data):
        return Estimate(float(value), float(value), float(value))
    result = stats.bootstrap(
        data,
        statistic,
        paired=paired,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        rng=np.random.default_rng(_BOOTSTRAP_SEED),
    )
    low, high = result.confidence_interval
    return Estimate(float(value), float(low), float(high))


def bootstrap_mean(values: np.ndarray) -> Estimate:
    """Mean with a percentile-bootstrap 95% interval (scipy.stats.bootstrap)."""
    values = np.asarray(values, float)
    return _bootstrap((values,), lambda x, axis=-1: np.mean(x, axis=axis), False, values.mean())


def bootstrap_difference(
    treatment: np.ndarray, control: np.ndarray, paired: bool = False
) -> Estimate:
    """Mean of treatment minus mean of control, with a bootstrap 95% interval.

    Paired (common random numbers: the same seed in both arms) resamples the
    per-seed differences; otherwise each arm is resampled on its own
    (scipy.stats.bootstrap with independent samples).
    """
    treatment, control = np.asarray(treatment, float), np.asarray(control, float)
    if paired:
        return bootstrap_mean(treatment - control)

    def difference(t, c, axis=-1):
        return np.mean(t, axis=axis) - np.mean(c, axis=axis)

    return _bootstrap(
        (treatment, control), difference, False, float(treatment.mean() - control.mean())
    )


def bootstrap_ratio(
    numerator: tuple[np.ndarray, np.ndarray], denominator: tuple[np.ndarray, np.ndarray]
) -> Estimate:
    """1 - (effect in the numerator pair) / (effect in the denominator pair), paired by row.

    Each pair is (treatment, control) per seed; used for "the share of an effect that a
    mechanism accounts for" (an ablation). Rows are resampled together
    (scipy.stats.bootstrap, paired).
    """
    a_t, a_c = (np.asarray(v, float) for v in numerator)
    b_t, b_c = (np.asarray(v, float) for v in denominator)

    def share(at, ac, bt, bc, axis=-1):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - np.mean(at - ac, axis=axis) / np.mean(bt - bc, axis=axis)

    value = float(share(a_t, a_c, b_t, b_c))
    if not np.isfinite(value):
        return Estimate(value, float("nan"), float("nan"))
    return _bootstrap((a_t, a_c, b_t, b_c), share, True, value)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rank correlation and its two-sided p-value (nan if y is constant)."""
    if np.ptp(np.asarray(y, float)) == 0:
        return float("nan"), 1.0
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class PowerLaw:
    """A discrete power law p(x) ~ x^-alpha for x >= xmin, fitted by maximum likelihood."""

    alpha: float
    xmin: int
    n_tail: int
    ks: float


def _alpha_mle(tail: np.ndarray, xmin: int) -> float:
    log_sum = np.log(tail).sum()

    def negative_log_likelihood(alpha: float) -> float:
        return len(tail) * np.log(special.zeta(alpha, xmin)) + alpha * log_sum

    return float(
        optimize.minimize_scalar(negative_log_likelihood, bounds=(1.05, 6.0), method="bounded").x
    )


def _ks_distance(tail: np.ndarray, xmin: int, alpha: float) -> float:
    support = np.arange(xmin, tail.max() + 1)
    model_cdf = np.cumsum(support ** (-alpha)) / special.zeta(alpha, xmin)
    data_cdf = np.searchsorted(np.sort(tail), support, side="right") / len(tail)
    return float(np.max(np.abs(data_cdf - model_cdf)))


def fit_power_law(sizes: np.ndarray, min_tail: int = 50) -> PowerLaw:
    """Clauset, Shalizi & Newman (2009): discrete MLE of alpha, xmin minimising KS distance."""
    sizes = np.asarray(sizes, dtype=np.int64)
    best: PowerLaw | None = None
    for xmin in np.unique(sizes):
        tail = sizes[sizes >= xmin]
        if len(tail) < min_tail:
            break
        alpha = _alpha_mle(tail, int(xmin))
        fit = PowerLaw(alpha, int(xmin), len(tail), _ks_distance(tail, int(xmin), alpha))
        if best is None or fit.ks < best.ks:
            best = fit
    if best is None:
        raise ValueError(f"power law: fewer than {min_tail} observations")
    return best


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy; stays within [0, 1]; nan when n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    interval = stats.binomtest(successes, n).proportion_ci(level, method="wilson")
    return float(interval.low), float(interval.high)


def prim_box(x: pd.DataFrame, y: np.ndarray) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """PRIM (EMA Workbench): the densest box on the peeling trajectory covering half the cases.

    Returns its restricted parameters with their limits and whole range, and its coverage,
    density and mass. Needs the [analysis] extra (or [optimize]).
    """
    require("analysis", "scenario discovery (PRIM)")
    with warnings.catch_warnings():  # the library's own deprecation notices, not ours
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim  # optional: the [analysis] extra

        logging.getLogger("EMA").setLevel(logging.WARNING)
        finder = prim.Prim(x, y.astype(bool), peel_alpha=0.1, mass_min=0.05)
        box = finder.find_box()
        trajectory = box.peeling_trajectory
        eligible = trajectory[trajectory["coverage"] >= 0.5]
        choice = int(eligible["density"].idxmax()) if len(eligible) else len(trajectory) - 1
        box.select(choice)
    limits = box.box_lims[choice]
    restricted = []
    for name in x.columns:
        low, high = float(limits[name].iloc[0]), float(limits[name].iloc[1])
        whole = (float(x[name].min()), float(x[name].max()))
        if low > whole[0] + 1e-12 or high < whole[1] - 1e-12:
            restricted.append({"parameter": name, "low": low, "high": high, "range": whole})
    row = trajectory.loc[choice]
    numbers = {
        "coverage": float(row["coverage"]),
        "density": float(row["density"]),
        "mass": float(row["mass"]),
        "base_rate": float(y.mean()),
    }
    return restricted, numbers
