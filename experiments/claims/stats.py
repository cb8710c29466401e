"""The statistics that decide verdicts: bootstrap intervals, rank trends, power-law fits.

Every resampling uses its own seeded generator, so a verdict is a function of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

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


def _interval(draws: np.ndarray, value: float) -> Estimate:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(float(value), float(low), float(high))


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
