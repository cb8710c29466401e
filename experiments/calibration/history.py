"""History matching with Gaussian-process emulators, then a posterior by rejection.

Waves rule out where the model cannot meet the record; the posterior is sampled inside
what remains.

The targets are bands, not point data, so the question asked of a parameter point is
"could a run here plausibly meet the bands?", not "how likely are the data?" (Vernon,
Goldstein & Bower 2010; Andrianakis et al. 2015). Each wave

1. draws a space-filling design over every parameter with a prior, in the prior's own
   scale (the emulators see each parameter through its prior's CDF, so a log-uniform
   prior is sampled and emulated on the log scale), inside the region no earlier wave
   ruled out (Latin hypercube candidates kept by rejection against every earlier wave's
   emulators, at most ``CANDIDATES_PER_POINT`` candidates per design point, then a
   greedy maximin choice among the kept ones);
2. runs each point with ``seeds_per_point`` seeds (all seeds spawned by
   ``SeedSequence`` from the one calibration seed, so a wave is reproducible);
3. fits one emulator per constraining pattern (scikit-learn's Gaussian process, a
   constant times an anisotropic Matern-5/2 kernel plus a white-noise term) to the
   points' mean over seeds of the pattern's statistic, transformed (``Target``);
   estimates the seed-to-seed variance from the replicates; validates each emulator
   by k-fold leave-out (standardized errors); an emulator that fails validation is
   not used to rule anything out in its wave. Large waves stay affordable: the
   hyperparameters are fitted on a subsample of at most ``FIT_POINTS`` points with an
   exact likelihood gradient that needs no n x n x d tensor (``log_likelihood``), and
   the process is then conditioned on every point (``Emulator.fit`` has the measured
   times: 1-3 s per output at 1,000 points with its validation, where scikit-learn's
   own fit took 702 s);
4. rules out points whose implausibility

       I = |E[f(x)] - target| / sqrt(V_emulator + V_seed + V_band + V_discrepancy)

   exceeds ``CUT`` on the ``CUT_RANK``-th largest output (``Target.implausibility``);
5. estimates the non-implausible volume (the share of one fixed prior sample no wave has
   ruled out) and stops when it shrinks by less than ``SHRINK_MIN`` in a wave, when the
   emulators' variance is small against the other variances, when the simulation budget
   would not leave room for the next wave and the posterior, or after ``waves_max``.

The posterior is then rejection at distance 0: fresh points drawn inside the final
region, one fresh simulation each, kept when every *attainable* band is met (every
fresh run with its statistics and whether it was kept: ``posterior_runs.parquet``;
``matching`` writes the accepted draws as the ensemble file ``posterior.parquet``). A band no
simulation meets together with the others is reported with the best value reached and
what it trades off against (``attainability``); it is never widened or dropped silently.

Every wave is written to ``OUT/wave-NN/`` (design, runs, emulators, and last the
``wave.json`` that marks it complete); a killed calibration resumes at the first
incomplete wave with identical results, because the emulators are rebuilt from their
stored hyperparameters and training data, not refitted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.stats import qmc
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.patterns import Pattern
from isk_defection.experiments.sweep import atomic_write
from isk_defection.model.parameters import STUDY_POPULATION

CUT = 3.0  # Pukelsheim's three-sigma rule: any unimodal distribution has >95% within 3 sd
CUT_RANK = 2  # the cut is on the second-largest implausibility (1 = the largest)
BAND_SD = "two_sd"  # a band's half-width is 2 sd of the target ("uniform": half / sqrt 3)
DISCREPANCY = 0.1  # model-discrepancy sd as a share of the band's half-width (an assumption)
LOG_OFFSET = 0.1  # statistics >= 0 are emulated as log(value + LOG_OFFSET x band width)
OPEN_CAP = 10.0  # an open band's statistic is clipped this many band units past its edge
FOLDS = 5  # leave-out validation folds
VALID_SHARE = 0.9  # an emulator rules out points only if this share of |z| <= 3
VOLUME_SAMPLE = 20_000  # prior points on which the non-implausible volume is measured
SHRINK_MIN = 0.1  # stop when a wave shrinks the volume by less than this share
EMULATOR_SHARE = 0.1  # stop when every emulator's median variance is below this share
CANDIDATES_PER_POINT = 500  # rejection budget: candidates drawn per design point at most
POOL_PER_POINT = 10  # kept candidates per design point before the maximin choice
FIT_POINTS = 300  # an emulator's hyperparameters are fitted on at most this many points
PREDICT_ENTRIES = 2_000_000  # cross-covariance entries per prediction block (16 MB)
_VOLUME, _POSTERIOR = 10_000, 10_001  # spawn keys of the volume sample and the posterior


class PriorLike(Protocol):
    """What the machinery needs of a prior: a name and a scipy distribution."""

    @property
    def name(self) -> str:
        """The parameter's registry name."""
        ...

    def scipy(self) -> Any:
        """The prior as a frozen scipy distribution (``ppf`` is used)."""
        ...


# (points, replicates, seed, folder) -> one row per finished run with columns point,
# replicate, seed and each pattern's statistic; run i (point-major) has seed run_seed(seed, i)
Simulate = Callable[[list[dict[str, float]], int, int, Path], pd.DataFrame]


# ---- the space ------------------------------------------------------------------------
@dataclass(frozen=True)
class Space:
    """The parameters with a prior, mapped to and from the unit cube by the priors' CDFs."""

    priors: tuple[PriorLike, ...]

    @property
    def names(self) -> list[str]:
        """The parameters, in design-column order."""
        return [p.name for p in self.priors]

    def values(self, unit: np.ndarray) -> np.ndarray:
        """Parameter values at unit-cube coordinates (each prior's quantile function)."""
        return np.column_stack([p.scipy().ppf(unit[:, i]) for i, p in enumerate(self.priors)])

    def points(self, unit: np.ndarray) -> list[dict[str, float]]:
        """Design rows as parameter dictionaries."""
        return [dict(zip(self.names, map(float, row), strict=True)) for row in self.values(unit)]


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream of the calibration seed (``SeedSequence`` spawn key)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def key_seed(seed: int, *key: int) -> int:
    """A 32-bit seed from the calibration seed's ``SeedSequence`` child at ``key``.

    Keys: (wave, 0) a wave's design stream, (wave, 1) its runs' master seed, (wave, 2, i)
    output i's emulator; (_POSTERIOR, batch, 0/1) a posterior batch's design and runs.
    """
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint32)[0])


# ---- targets and implausibility --------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A band on one output, in the space the output is emulated in.

    ``low``/``high`` are transformed band edges (-inf/+inf where the band is open: a
    statistic >= 0 whose band starts at 0 is open below). A closed band's target is its
    centre with ``sd_band`` = half-width / 2 (the band as +-2 sd; ``BAND_SD``); an open
    band's target is its edge, which is exact (``sd_band`` = 0). ``sd_discrepancy`` is
    ``DISCREPANCY`` of the half-width (for an open band, of half its misfit unit).
    """

    name: str
    low: float
    high: float
    sd_band: float
    sd_discrepancy: float
    log_offset: float | None = None  # None: emulated as is
    clip: tuple[float, float] = (-np.inf, np.inf)  # raw values clipped to this

    @classmethod
    def of(cls, pattern: Pattern, band_sd: str = BAND_SD) -> Target:
        """The target of a pattern: log scale when the band lies in [0, inf)."""
        offset = LOG_OFFSET * pattern.unit if pattern.low >= 0 else None

        def f(v: float) -> float:
            return float(np.log(v + offset)) if offset is not None else v

        open_low = not np.isfinite(pattern.low) or (offset is not None and pattern.low <= 0)
        open_high = not np.isfinite(pattern.high)
        low = -np.inf if open_low else f(pattern.low)
        high = np.inf if open_high else f(pattern.high)
        clip = (
            pattern.high - OPEN_CAP * pattern.unit if open_low and offset is None else -np.inf,
            pattern.low + OPEN_CAP * pattern.unit if open_high else np.inf,
        )
        if open_low or open_high:
            edge = pattern.high if open_low else pattern.low
            half = abs(f(edge + pattern.unit) - f(edge)) / 2
            return cls(pattern.name, low, high, 0.0, DISCREPANCY * half, offset, clip)
        half = (high - low) / 2
        sd = half / 2 if band_sd == "two_sd" else half / np.sqrt(3)
        return cls(pattern.name, low, high, sd, DISCREPANCY * half, offset, clip)

    @property
    def closed(self) -> bool:
        """Whether the band has two finite ends."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw statistics in the emulated space (non-finite stay NaN)."""
        raw = np.asarray(raw, float)
        value = np.clip(np.where(np.isnan(raw), np.nan, raw), *self.clip)
        if self.log_offset is not None:
            value = np.log(np.maximum(value, 0.0) + self.log_offset)
        return np.where(np.isfinite(value), value, np.nan)

    def implausibility(self, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """|E - target| / sqrt(variance + V_band + V_discrepancy); 0 inside an open band.

        ``variance`` is the emulator's plus the seed-to-seed variance of one run.
        """
        total = np.asarray(variance, float) + self.sd_band**2 + self.sd_discrepancy**2
        mean = np.asarray(mean, float)
        if self.closed:
            distance = np.abs(mean - (self.low + self.high) / 2)
        else:
            distance = np.maximum(self.low - mean, 0.0) + np.maximum(mean - self.high, 0.0)
        return distance / np.sqrt(total)


def ranked(implausibility: np.ndarray, rank: int = CUT_RANK) -> np.ndarray:
    """Per row, the ``rank``-th largest implausibility (0 when fewer outputs)."""
    if implausibility.shape[1] < rank:
        return np.zeros(len(implausibility))
    return -np.sort(-implausibility, axis=1)[:, rank - 1]


# ---- emulators -------------------------------------------------------------------------
def kernel(dimensions: int) -> Any:
    """Constant x anisotropic Matern-5/2 (ARD) + white noise for the seed noise of a mean."""
    return ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        np.full(dimensions, 0.5), (1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-2, (1e-8, 1e1))


def log_likelihood(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Log marginal likelihood of ``kernel`` at log-hyperparameters ``theta``, and its gradient.

    The same value and gradient as scikit-learn's ``log_marginal_likelihood`` for this
    kernel (``theta`` = log of constant, length scales, noise; ``y`` already normalised),
    computed without its n x n x d gradient tensor: the length scales' gradient
    0.5 sum_ij M_ij (x_ik - x_jk)^2 / l_k^2 (M = (alpha alpha' - K^-1) o dK/dr terms) is
    two matrix products, so an evaluation at 300 points and 30 inputs takes milliseconds
    where scikit-learn's took about 300 ms here.
    """
    n = len(y)
    constant, scales, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
    xs = x / scales
    sq = np.einsum("ij,ij->i", xs, xs)
    r2 = np.maximum(sq[:, None] + sq[None, :] - 2 * xs @ xs.T, 0.0)
    np.fill_diagonal(r2, 0.0)
    r = np.sqrt(5 * r2)
    decay = np.exp(-r)
    matern = (1 + r + r**2 / 3) * decay
    k = constant * matern
    k[np.diag_indices(n)] += noise
    try:
        factor = cho_factor(k, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return -np.inf, np.zeros_like(theta)
    alpha = cho_solve(factor, y, check_finite=False)
    value = -0.5 * y @ alpha - np.log(np.diag(factor[0])).sum() - n / 2 * np.log(2 * np.pi)
    inverse = cho_solve(factor, np.eye(n), check_finite=False)
    w = np.outer(alpha, alpha) - inverse
    m = w * (constant * 5.0 / 3.0 * (1 + r) * decay)
    row = m.sum(axis=1)
    scale_grad = (xs**2 * row[:, None]).sum(axis=0) - np.einsum("ik,ik->k", xs, m @ xs)
    gradient = np.concatenate(
        [[0.5 * np.sum(w * k) - 0.5 * noise * np.trace(w)], scale_grad, [0.5 * noise * np.trace(w)]]
    )
    return float(value), gradient


def fit_theta(base: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximum-likelihood log-hyperparameters of ``base`` (``kernel``) for ``y`` at ``x``.

    L-BFGS-B from the kernel's initial values within its bounds, as scikit-learn's own
    optimiser, on ``y`` normalised as ``normalize_y=True`` does.
    """
    std = float(np.std(y)) or 1.0
    normalised = (y - np.mean(y)) / std

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = log_likelihood(theta, x, normalised)
        return -value, -gradient

    found = minimize(objective, base.theta, jac=True, method="L-BFGS-B", bounds=base.bounds)
    return np.asarray(found.x, float)


@dataclass
class Emulator:
    """One output's Gaussian process, its seed variance and its leave-out validation."""

    name: str
    gp: GaussianProcessRegressor
    var_seed: float
    validation: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, name: str, x: np.ndarray, y: np.ndarray, var_seed: float, seed: int, theta=None
    ) -> Emulator:
        """Fit (or, given ``theta``, rebuild without optimising) on ``y`` at ``x``.

        The hyperparameters are fitted by maximum likelihood (``fit_theta``) on at most
        ``FIT_POINTS`` points, a seeded random subsample; then the process is conditioned
        on every point with them held fixed (scikit-learn, ``optimizer=None``). The
        optimisation is what costs: each of its 80-200 steps factorises the n x n
        covariance. Measured on this machine (2 cores, load 4-8 from other work; 30
        inputs, 1,000 agents, 2 seeds per point; ``emulator_timing``), per output:

        * scikit-learn's own fit on every point: 16 s at 200 points and 702 s at 1,000
          (the previous session); 8-40 s at 200 points today (the same optimum as
          ``fit_theta``, whose evaluations take milliseconds instead of 0.2-1 s);
        * this fit: 0.5-0.9 s at 200 points, 0.6-2.1 s at 1,000, 1.2-1.5 s at 2,000, plus
          the 5-fold validation: 0.02 s, 0.2-0.4 s and 1.1-1.4 s (its leave-out
          diagnostics at 2,000 points: |z| <= 3 for 96-97%, 95% coverage 90%);
        * on 1,000 fresh points (out of sample), hyperparameters from 300 of 1,000
          training points predict about as well as from all 1,000 (error / sd 0.30,
          0.15, 0.62, 0.32 against 0.29, 0.14, 0.52, 0.30 for IS-K June 2023, attacks
          2022, the attack fall, IS-K 2024; |z| <= 3 for 94-99% against 98-99%) at a
          tenth of the time (1-3 s against 19-37 s); from 150 points the stated
          variance is too small (|z| <= 3 for only 81-93%).
        """
        base = kernel(x.shape[1])
        if theta is None:
            sub = subsample(len(x), FIT_POINTS, seed)
            with threadpool_limits(1):  # BLAS threads on matrices this small only wait
                theta = fit_theta(base, x[sub], y[sub])
        gp = GaussianProcessRegressor(
            base.clone_with_theta(np.asarray(theta, float)), normalize_y=True, optimizer=None
        )
        with threadpool_limits(1):
            return cls(name, gp.fit(x, y), var_seed)

    @property
    def theta(self) -> list[float]:
        """The fitted hyperparameters (log scale), enough to rebuild the emulator."""
        return [float(t) for t in self.gp.kernel_.theta]

    @property
    def noise(self) -> float:
        """The fitted white-noise variance, in output units."""
        return float(self.gp.kernel_.k2.noise_level * self.gp._y_train_std**2)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """The emulated mean output at ``x`` (cheap: no variance)."""
        parts = [self._cross(b) @ self.gp.alpha_ for b in self._blocks(x)]
        return np.concatenate(parts or [np.empty(0)]) * self.gp._y_train_std + (
            self.gp._y_train_mean
        )

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the emulated mean output (the white noise left out).

        scikit-learn's ``predict(return_std=True)`` less its white noise, computed from
        the fitted process's own factor and weights; only the cross-covariance is built
        here (``_cross``), with a matrix product where scikit-learn's pairwise distances
        took most of the time of an implausibility cut.
        """
        means, variances = [], []
        for block in self._blocks(x):
            cross = self._cross(block)
            means.append(cross @ self.gp.alpha_)
            v = solve_triangular(self.gp.L_, cross.T, lower=True, check_finite=False)
            variances.append(self._constant - np.einsum("ij,ij->j", v, v))
        if not means:
            return np.empty(0), np.empty(0)
        scale = self.gp._y_train_std
        mean = np.concatenate(means) * scale + self.gp._y_train_mean
        return mean, np.maximum(np.concatenate(variances), 0.0) * scale**2

    @property
    def _constant(self) -> float:
        return float(self.gp.kernel_.k1.k1.constant_value)

    def _cross(self, x: np.ndarray) -> np.ndarray:
        """The covariance of ``x`` with the training points: constant x Matern-5/2 (ARD)."""
        scales = np.asarray(self.gp.kernel_.k1.k2.length_scale, float)
        train = self.gp.X_train_ / scales
        xs = np.asarray(x, float) / scales
        r2 = -2.0 * (xs @ train.T)
        r2 += np.einsum("ij,ij->i", xs, xs)[:, None]
        r2 += np.einsum("ij,ij->i", train, train)[None, :]
        np.maximum(r2, 0.0, out=r2)
        r2 *= 5.0
        r = np.sqrt(r2, out=r2)  # in place from here: one temporary, k
        k = r * r
        k *= 1.0 / 3.0
        k += r
        k += 1.0
        np.negative(r, out=r)
        k *= np.exp(r, out=r)
        k *= self._constant
        return k

    def exceeds(self, x: np.ndarray, target: Target, cut: float) -> np.ndarray:
        """Where the implausibility of this output exceeds ``cut`` (``Wave.keeps``' step).

        The variance is computed only where the implausibility without it, an upper
        bound, exceeds the cut, from the same cross-covariance as the mean.
        """
        over = np.zeros(len(x), bool)
        start = 0
        for block in self._blocks(x):
            cross = self._cross(block)
            mean = (cross @ self.gp.alpha_) * self.gp._y_train_std + self.gp._y_train_mean
            bound = target.implausibility(mean, np.full(len(block), self.var_seed))
            doubtful = np.flatnonzero(bound > cut)
            if len(doubtful):
                v = solve_triangular(self.gp.L_, cross[doubtful].T, lower=True, check_finite=False)
                var = np.maximum(self._constant - np.einsum("ij,ij->j", v, v), 0.0)
                var = var * self.gp._y_train_std**2 + self.var_seed
                over[start + doubtful] = target.implausibility(mean[doubtful], var) > cut
            start += len(block)
        return over

    def _blocks(self, x: np.ndarray) -> list[np.ndarray]:
        """``x`` in row blocks whose cross-covariance with the training points stays small."""
        rows = max(1, PREDICT_ENTRIES // max(len(self.gp.X_train_), 1))
        return [x[i : i + rows] for i in range(0, len(x), rows)]

    def validate(self, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
        """k-fold leave-out with the fitted hyperparameters: standardized errors.

        ``within_3`` is the share of held-out points with |z| <= 3, ``coverage_95`` the
        share inside the 95% predictive interval (|z| <= 1.96), ``rms_z`` the root mean
        square of z (about 1 when the stated variance is right) and ``rmse_over_sd`` the
        held-out error against the output's spread (0 perfect, 1 no better than its mean).
        """
        mean, z = np.empty(len(y)), np.empty(len(y))
        folds = KFold(min(FOLDS, len(y)), shuffle=True, random_state=seed).split(x)
        with threadpool_limits(1):  # see fit
            for train, test in folds:
                gp = GaussianProcessRegressor(self.gp.kernel_, normalize_y=True, optimizer=None)
                mean[test], sd = gp.fit(x[train], y[train]).predict(x[test], return_std=True)
                z[test] = (y[test] - mean[test]) / np.maximum(sd, 1e-12)
        self.validation = {
            "within_3": float(np.mean(np.abs(z) <= 3)),
            "coverage_95": float(np.mean(np.abs(z) <= 1.96)),
            "rms_z": float(np.sqrt(np.mean(z**2))),
            "rmse_over_sd": float(np.sqrt(np.mean((y - mean) ** 2)) / (np.std(y) or 1.0)),
            "points": float(len(y)),
        }
        return self.validation

    @property
    def usable(self) -> bool:
        """Whether the emulator passed validation (it may rule points out)."""
        return self.validation.get("within_3", 0.0) >= VALID_SHARE


def subsample(n: int, k: int, seed: int) -> np.ndarray:
    """``min(n, k)`` of ``range(n)``, a seeded random choice in increasing order."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def training(
    space: Space, design: pd.DataFrame, runs: pd.DataFrame, target: Target
) -> tuple[np.ndarray, np.ndarray, float]:
    """A wave's training data for one output: unit coordinates, mean over seeds, seed variance.

    The seed variance (of one run) is pooled over the points with two or more finite
    replicates; points with no finite replicate are left out.
    """
    values = runs.assign(_y=target.transform(runs[target.name].to_numpy(float)))
    grouped = values.groupby("point")["_y"]
    means, variances, counts = grouped.mean(), grouped.var(ddof=1), grouped.count()
    points = means.index[np.isfinite(means.to_numpy())]
    x = design.loc[points, space.names].to_numpy(float)
    replicated = counts.loc[points] >= 2
    var_seed = (
        float(
            np.average(
                variances.loc[points][replicated], weights=counts.loc[points][replicated] - 1
            )
        )
        if replicated.any()
        else 0.0
    )
    return x, means.loc[points].to_numpy(float), var_seed


@dataclass
class Wave:
    """One completed wave: its emulators (one per target) and what it measured."""

    number: int
    emulators: dict[str, Emulator]
    targets: dict[str, Target]
    record: dict[str, Any] = field(default_factory=dict)

    def implausibility(self, x: np.ndarray) -> pd.DataFrame:
        """Each usable emulator's implausibility at unit coordinates ``x``."""
        columns = {}
        for name, emulator in self.emulators.items():
            if emulator.usable:
                mean, var = emulator.predict(x)
                columns[name] = self.targets[name].implausibility(mean, var + emulator.var_seed)
        return pd.DataFrame(columns, index=range(len(x)))

    def keeps(self, x: np.ndarray, cut: float = CUT, rank: int = CUT_RANK) -> np.ndarray:
        """Which points this wave leaves non-implausible (``rank``-th largest I <= ``cut``).

        The same answer as ranking :meth:`implausibility`, for less work: a point leaves
        once ``rank`` outputs exceed the cut, the outputs that rule out most of the wave's
        own design are asked first (``order``), and an output's emulator variance is
        computed only where the implausibility without it (an upper bound) exceeds the cut.
        """
        over = np.zeros(len(x), int)  # outputs whose implausibility exceeds the cut
        for name in self.order(cut):
            emulator = self.emulators[name]
            alive = np.flatnonzero(over < rank)
            if not len(alive):
                break
            over[alive[emulator.exceeds(x[alive], self.targets[name], cut)]] += 1
        return over < rank

    def order(self, cut: float = CUT) -> list[str]:
        """The usable emulators, those whose outputs miss by more than ``cut`` most often first.

        Read from the wave's own training data (each design point's mean output against
        the target, with the seed, band and discrepancy variances), so a resumed
        calibration asks in the same order; the order changes no answer, only the work.
        """
        share = {}
        for name, e in self.emulators.items():
            if e.usable:
                y = e.gp.y_train_ * e.gp._y_train_std + e.gp._y_train_mean
                far = self.targets[name].implausibility(y, np.full(len(y), e.var_seed)) > cut
                share[name] = float(far.mean())
        return sorted(share, key=lambda n: -share[n])  # stable: ties in pattern order

    def variance_shares(self, x: np.ndarray) -> dict[str, float]:
        """Per emulator, median emulator variance / (seed + band + discrepancy variance)."""
        shares = {}
        for name, emulator in self.emulators.items():
            target = self.targets[name]
            other = emulator.var_seed + target.sd_band**2 + target.sd_discrepancy**2
            shares[name] = float(np.median(emulator.predict(x)[1]) / other) if len(x) else 0.0
        return shares


def region(waves: Sequence[Wave], x: np.ndarray, cut: float, rank: int) -> np.ndarray:
    """Which points no wave has ruled out (each wave only sees what earlier ones kept)."""
    kept = np.ones(len(x), bool)
    for wave in waves:
        inside = np.flatnonzero(kept)
        if len(inside):
            kept[inside] = wave.keeps(x[inside], cut, rank)
    return kept


@dataclass
class Volume:
    """The fixed prior sample the volume is measured on, and what each wave leaves of it.

    ``inside(waves)`` is ``region(waves, x, ...)``, kept wave by wave so that each new
    wave's emulators see only the points the earlier ones left (once per calibration).
    """

    x: np.ndarray
    cut: float
    rank: int
    masks: list[np.ndarray] = field(default_factory=list)

    def inside(self, waves: Sequence[Wave]) -> np.ndarray:
        """Which sample points no wave of ``waves`` (an extension of earlier calls) rules out."""
        if not self.masks:
            self.masks.append(np.ones(len(self.x), bool))
        while len(self.masks) <= len(waves):
            kept = self.masks[-1].copy()
            rows = np.flatnonzero(kept)
            if len(rows):
                kept[rows] = waves[len(self.masks) - 1].keeps(self.x[rows], self.cut, self.rank)
            self.masks.append(kept)
        return self.masks[len(waves)]


# ---- designs ---------------------------------------------------------------------------
def maximin(pool: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows of ``pool`` chosen greedily to keep them apart (pool order breaks ties)."""
    if len(pool) <= n:
        return pool
    chosen = [0]
    nearest = np.linalg.norm(pool - pool[0], axis=1)
    for _ in range(n - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[pick], axis=1))
    return pool[chosen]


def design(
    waves: Sequence[Wave], d: int, n: int, rng: np.random.Generator, cut: float, rank: int
) -> tuple[np.ndarray, dict[str, float]]:
    """A space-filling design of up to ``n`` points inside the non-implausible region.

    Latin hypercube batches are kept by rejection until ``POOL_PER_POINT`` x n are kept
    or ``CANDIDATES_PER_POINT`` x n have been drawn; then a maximin choice of n. Fewer
    than n points come back when the budget finds fewer (the record says so).
    """
    if not waves:
        return qmc.LatinHypercube(d=d, seed=rng).random(n), {"candidates": n, "accepted": n}
    kept: list[np.ndarray] = []
    drawn, found = 0, 0
    while found < POOL_PER_POINT * n and drawn < CANDIDATES_PER_POINT * n:
        batch = qmc.LatinHypercube(d=d, seed=rng).random(max(n, 1_000))
        inside = batch[region(waves, batch, cut, rank)]
        kept.append(inside)
        drawn, found = drawn + len(batch), found + len(inside)
    pool = np.concatenate(kept) if kept else np.empty((0, d))
    return maximin(pool, n), {"candidates": drawn, "accepted": found}


# ---- persistence -----------------------------------------------------------------------
def write_json(path: Path, content: Any) -> None:
    """Write JSON atomically (sorted keys, so equal content gives equal files)."""
    atomic_write(path, lambda p: p.write_text(json.dumps(content, indent=2, sort_keys=True)))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write Parquet atomically."""
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


# ---- the calibration -------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything that decides a calibration's results (stored; a resume must match)."""

    seed: int
    waves_max: int
    points_per_wave: int
    seeds_per_point: int
    simulations: int
    posterior_points: int
    posterior_accepted: int
    parameters: tuple[str, ...]
    patterns: tuple[str, ...]
    cut: float = CUT
    rank: int = CUT_RANK
    band_sd: str = BAND_SD
    discrepancy: float = DISCREPANCY
    volume_sample: int = VOLUME_SAMPLE
    population: int = STUDY_POPULATION  # agents per run of the default simulator


@dataclass
class HistoryResult:
    """What a calibration found: its waves, why it stopped, the posterior and the bands."""

    waves: list[dict[str, Any]]
    stopped_by: str
    simulations: int
    posterior: pd.DataFrame
    attainable: list[str]
    unattainable: list[dict[str, Any]]
    space: Space
    emulated: list[Wave]
    cut: float = CUT
    rank: int = CUT_RANK

    def non_implausible(self, values: pd.DataFrame) -> np.ndarray:
        """Whether each row of parameter values lies in the final non-implausible region."""
        unit = np.column_stack(
            [p.scipy().cdf(values[p.name].to_numpy(float)) for p in self.space.priors]
        )
        return region(self.emulated, unit, self.cut, self.rank)


def history_match(
    out: Path,
    *,
    seed: int,
    waves_max: int = 8,
    points_per_wave: int = 200,
    seeds_per_point: int = 2,
    simulations: int = 30_000,
    posterior_points: int = 1_000,
    posterior_accepted: int = 500,
    priors: Sequence[PriorLike] | None = None,
    patterns: Sequence[Pattern] = pat.CONSTRAINING,
    simulate: Simulate | None = None,
    population: int = STUDY_POPULATION,
    workers: int | None = None,
    progress: bool = False,
    volume_sample: int = VOLUME_SAMPLE,
    cut: float = CUT,
    rank: int = CUT_RANK,
) -> HistoryResult:
    """Calibrate by history matching into ``out``; resumes from its last complete wave.

    ``simulate`` runs a design (the default runs the baseline through the sweep engine
    with ``population`` agents on ``workers`` processes); ``simulations`` is the work
    budget: waves stop when the next one and a posterior batch would not fit in it; the
    posterior runs batches of ``posterior_points`` fresh draws until ``posterior_accepted``
    meet every attainable band or the budget is spent (at least one batch). ``rank``
    picks the implausibility cut at ``cut`` (2: the second-largest output, which lets
    one output's emulator be wrong without ruling out the truth; 1: the largest).
    """
    from isk_defection.experiments.calibration.priors import PRIORS

    space = Space(tuple(priors if priors is not None else PRIORS.values()))
    targets = {p.name: Target.of(p) for p in patterns}
    settings = Settings(
        seed,
        waves_max,
        points_per_wave,
        seeds_per_point,
        simulations,
        posterior_points,
        posterior_accepted,
        tuple(space.names),
        tuple(targets),
        cut=cut,
        rank=rank,
        volume_sample=volume_sample,
        population=population,
    )
    _check_settings(Path(out), settings)
    simulate = simulate or SweepSimulator(population, workers, progress)
    sample = Volume(stream(seed, _VOLUME).random((volume_sample, len(space.names))), cut, rank)
    waves: list[Wave] = []
    stopped_by, used = "", 0
    while not stopped_by:
        number = len(waves) + 1
        wave = _load_wave(out, number, space, targets, seed)
        if wave is None:
            wave = _run_wave(out, number, waves, space, targets, settings, simulate, sample, used)
        waves.append(wave)
        used = int(wave.record["simulations_total"])
        stopped_by = wave.record["stop"]
        if progress:
            share = wave.record["volume"]
            print(f"wave {number}: volume {share:.3g}, {used:,} runs, {stopped_by or 'go on'}")
    return _posterior(out, waves, space, targets, settings, simulate, patterns, used, stopped_by)


def _check_settings(out: Path, settings: Settings) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "settings.json"
    stored = asdict(settings) | {
        "parameters": list(settings.parameters),
        "patterns": list(settings.patterns),
    }
    if path.exists():
        if json.loads(path.read_text()) != stored:
            raise ValueError(
                f"--out: {out} holds a calibration with other settings; use another folder"
            )
        return
    write_json(path, stored)


def _folder(out: Path, number: int) -> Path:
    return out / f"wave-{number:02d}"


def _run_wave(
    out: Path,
    number: int,
    waves: list[Wave],
    space: Space,
    targets: dict[str, Target],
    settings: Settings,
    simulate: Simulate,
    volume: Volume,
    used: int,
) -> Wave:
    """Design, simulate, emulate, validate, measure and decide whether to go on."""
    folder = _folder(out, number)
    folder.mkdir(exist_ok=True)
    d = len(space.names)
    path = folder / "design.parquet"
    if path.exists():
        frame, found = pd.read_parquet(path), json.loads((folder / "design.json").read_text())
    else:
        rng = stream(settings.seed, number, 0)
        unit, found = design(waves, d, settings.points_per_wave, rng, settings.cut, settings.rank)
        frame = pd.DataFrame(unit, columns=space.names)
        write_json(folder / "design.json", found)
        write_parquet(path, frame)
    if frame.empty:
        return _empty_wave(folder, number, targets, used, found)
    runs = simulate(
        space.points(frame.to_numpy(float)),
        settings.seeds_per_point,
        key_seed(settings.seed, number, 1),
        folder / "runs",
    )
    write_parquet(folder / "runs.parquet", runs)
    wave = _emulate(number, space, frame, runs, targets, settings.seed)
    write_json(folder / "emulators.json", _emulators_json(wave))
    size = {"points": len(frame), "runs": len(runs), "simulations_total": used + len(runs)}
    wave.record = _measure(wave, waves, volume, settings, size, found)
    write_json(folder / "wave.json", wave.record)
    return wave


def _empty_wave(
    folder: Path, number: int, targets: dict[str, Target], used: int, found: dict
) -> Wave:
    record = {
        "wave": number,
        "points": 0,
        "runs": 0,
        "simulations_total": used,
        "volume": 0.0,
        "design": found,
        "validation": {},
        "stop": "no non-implausible point found within the rejection budget",
    }
    write_json(folder / "wave.json", record)
    return Wave(number, {}, targets, record)


def _emulate(
    number: int,
    space: Space,
    frame: pd.DataFrame,
    runs: pd.DataFrame,
    targets: dict[str, Target],
    seed: int,
    thetas: dict[str, list[float]] | None = None,
) -> Wave:
    """Fit (or rebuild from ``thetas``) and validate one emulator per target."""
    emulators = {}
    for i, (name, target) in enumerate(targets.items()):
        x, y, var_seed = training(space, frame, runs, target)
        fit_seed = key_seed(seed, number, 2, i)
        emulator = Emulator.fit(
            name, x, y, var_seed, fit_seed, None if thetas is None else thetas[name]
        )
        emulator.validate(x, y, fit_seed)
        emulators[name] = emulator
    return Wave(number, emulators, targets)


def _emulators_json(wave: Wave) -> dict[str, Any]:
    return {
        name: {
            "theta": e.theta,
            "var_seed": e.var_seed,
            "noise": e.noise,
            "kernel": str(e.gp.kernel_),
            "validation": e.validation,
            "usable": e.usable,
        }
        for name, e in wave.emulators.items()
    }


def _load_wave(
    out: Path, number: int, space: Space, targets: dict[str, Target], seed: int
) -> Wave | None:
    """A completed wave rebuilt from its files (None if it did not complete)."""
    folder = _folder(out, number)
    if not (folder / "wave.json").exists():
        return None
    record = json.loads((folder / "wave.json").read_text())
    if not record["points"]:
        return Wave(number, {}, targets, record)
    stored = json.loads((folder / "emulators.json").read_text())
    frame, runs = (
        pd.read_parquet(folder / "design.parquet"),
        pd.read_parquet(folder / "runs.parquet"),
    )
    wave = _emulate(
        number, space, frame, runs, targets, seed, {k: v["theta"] for k, v in stored.items()}
    )
    wave.record = record
    return wave


def _measure(
    wave: Wave,
    earlier: list[Wave],
    volume_sample: Volume,
    settings: Settings,
    size: dict[str, int],
    found: dict[str, float],
) -> dict[str, Any]:
    """The wave's record: volume, runs, validation, variance shares and the stop decision."""
    before = volume_sample.inside(earlier)
    after = volume_sample.inside([*earlier, wave])
    volume, previous = float(after.mean()), float(before.mean())
    shares = wave.variance_shares(volume_sample.x[after])
    runs_next = settings.points_per_wave * settings.seeds_per_point
    stop = ""
    if not after.any():
        stop = "no point of the volume sample is non-implausible"
    elif previous > 0 and earlier and (previous - volume) / previous < SHRINK_MIN:
        stop = f"the volume shrank by less than {SHRINK_MIN:.0%}"
    elif all(e.usable for e in wave.emulators.values()) and all(
        s < EMULATOR_SHARE for s in shares.values()
    ):
        stop = f"every emulator's variance is below {EMULATOR_SHARE:.0%} of the others"
    elif size["simulations_total"] + runs_next + settings.posterior_points > settings.simulations:
        stop = "simulation budget"
    elif wave.number >= settings.waves_max:
        stop = "waves_max"
    return {
        "wave": wave.number,
        **size,
        "volume": volume,
        "volume_before": previous,
        "design": found,
        "validation": {n: e.validation for n, e in wave.emulators.items()},
        "used": [n for n, e in wave.emulators.items() if e.usable],
        "variance_share": shares,
        "stop": stop,
    }


# ---- the posterior ---------------------------------------------------------------------
def attainability(
    values: pd.DataFrame, patterns: Sequence[Pattern]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Which bands some run meets together, and for each other band what stops it.

    While no run meets every band still in the set, the band whose removal lets the most
    runs meet the rest leaves it (ties: the later pattern); a band that left is taken
    back if some run meets it with the bands that stayed. Each band that left is a
    finding: the best value reached by a run meeting the bands that stay (and its misfit
    in band units), and the band most often missed by the runs that meet it.
    """
    values = values.reset_index(drop=True)
    misses = pd.DataFrame({p.name: p.miss(values[p.name].to_numpy(float)) for p in patterns})
    met = misses == 0
    kept, dropped = [p.name for p in patterns], []
    while kept and not met[kept].all(axis=1).any():
        counts = {j: int(met[[k for k in kept if k != j]].all(axis=1).sum()) for j in kept}
        worst = max(reversed(kept), key=lambda j: counts[j])
        kept.remove(worst)
        dropped.append(worst)
    for name in list(dropped):  # greedy can drop a band the final set admits: take it back
        if met[[*kept, name]].all(axis=1).any():
            kept.append(name)
            dropped.remove(name)
    kept = [p.name for p in patterns if p.name in kept]
    findings = []
    for name in dropped:
        others = [k for k in kept if k != name]
        rest = met[others].all(axis=1) if others else pd.Series(True, index=met.index)
        best = misses.loc[rest, name].idxmin() if rest.any() else misses[name].idxmin()
        meeting = met[name]
        trade = met.loc[meeting, others].mean().sort_values() if meeting.any() and others else None
        finding = {
            "pattern": name,
            "best_value": float(values.loc[best, name]),
            "best_miss": float(misses.loc[best, name]),
            "runs_meeting_it": int(meeting.sum()),
        }
        if trade is not None:
            finding["trades_off_against"] = str(trade.index[0])
            finding["share_of_its_runs_meeting_that"] = float(trade.iloc[0])
        findings.append(finding)
    return kept, findings


def _posterior(
    out: Path,
    waves: list[Wave],
    space: Space,
    targets: dict[str, Target],
    settings: Settings,
    simulate: Simulate,
    patterns: Sequence[Pattern],
    used: int,
    stopped_by: str,
) -> HistoryResult:
    """Batches of fresh draws in the final region, one run each; rejection at distance 0."""
    history = [
        pd.read_parquet(_folder(out, w.number) / "runs.parquet")
        for w in waves
        if w.record["points"]
    ]
    batches: list[pd.DataFrame] = []
    draws, accepted = pd.DataFrame(), np.zeros(0, bool)
    attainable = [p.name for p in patterns]
    unattainable: list[dict[str, Any]] = []
    while not batches or (
        accepted.sum() < settings.posterior_accepted
        and used + settings.posterior_points <= settings.simulations
    ):
        batch = _posterior_batch(out, len(batches) + 1, waves, space, settings, simulate)
        if batch.empty:
            break
        batches.append(batch)
        used += len(batch)
        draws = pd.concat(batches, ignore_index=True)
        attainable, unattainable = attainability(
            pd.concat([*history, draws], ignore_index=True), patterns
        )
        chosen = tuple(p for p in patterns if p.name in attainable)
        accepted = (pat.misses(draws, chosen) == 0).all(axis=1)
    if len(draws):
        draws["accepted"] = accepted
        write_parquet(out / "posterior_runs.parquet", draws)
    summary = {
        "waves": [w.record for w in waves],
        "stopped_by": stopped_by,
        "simulations": used,
        "posterior_runs": len(draws),
        "accepted": int(accepted.sum()),
        "attainable": attainable,
        "unattainable": unattainable,
        "method": {
            "cut": settings.cut,
            "rank": settings.rank,
            "band_sd": settings.band_sd,
            "discrepancy": settings.discrepancy,
            "log_offset": LOG_OFFSET,
            "targets": {k: asdict(t) for k, t in targets.items()},
        },
    }
    write_json(out / "history.json", json.loads(json.dumps(summary, default=float)))
    kept = draws[accepted].reset_index(drop=True) if len(draws) else draws
    return HistoryResult(
        [w.record for w in waves],
        stopped_by,
        used,
        kept,
        attainable,
        unattainable,
        space,
        waves,
        settings.cut,
        settings.rank,
    )


def _posterior_batch(
    out: Path, number: int, waves: list[Wave], space: Space, settings: Settings, simulate: Simulate
) -> pd.DataFrame:
    """One batch of posterior draws: parameter values, seed and statistics per fresh run."""
    folder = out / "posterior" / f"batch-{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "draws.parquet"
    if done.exists():
        return pd.read_parquet(done)
    rng = stream(settings.seed, _POSTERIOR, number, 0)
    unit = _region_sample(waves, len(space.names), settings, rng)
    if not len(unit):
        return pd.DataFrame()
    runs = simulate(
        space.points(unit), 1, key_seed(settings.seed, _POSTERIOR, number, 1), folder / "runs"
    )
    values = pd.DataFrame(space.values(unit), columns=space.names)
    draws = values.loc[runs["point"].to_numpy()].reset_index(drop=True)
    statistics = runs.drop(columns=["run", "point", "replicate"], errors="ignore")
    draws = pd.concat([draws, statistics.reset_index(drop=True)], axis=1).assign(batch=number)
    write_parquet(done, draws)
    return draws


def _region_sample(
    waves: list[Wave], d: int, settings: Settings, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``posterior_points`` uniform points of the final region (rejection, budgeted)."""
    n, drawn = settings.posterior_points, 0
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n and drawn < CANDIDATES_PER_POINT * n:
        batch = rng.random((max(n, 1_000), d))
        kept.append(batch[region(waves, batch, settings.cut, settings.rank)])
        drawn += len(batch)
    return np.concatenate(kept)[:n] if kept else np.empty((0, d))


# ---- the model through the sweep engine ------------------------------------------------
@dataclass(frozen=True)
class SweepSimulator:
    """Runs a design of the baseline through the sweep engine (resumable, any engine)."""

    population: int = STUDY_POPULATION
    workers: int | None = None
    progress: bool | None = False
    scheduler: str | None = None
    local_cluster: bool = False

    def __call__(
        self, points: list[dict[str, float]], replicates: int, seed: int, folder: Path
    ) -> pd.DataFrame:
        """Every pattern's statistic per finished run (point, replicate, seed, statistics)."""
        from isk_defection.experiments.sweep import load_spec, run_sweep

        spec = load_spec(
            {
                "sweep": {
                    "name": folder.parent.name,
                    "preset": "baseline",
                    "steps": pat.STEPS,
                    "replicates": replicates,
                    "seed": seed,
                    "outputs": pat.COLUMNS,
                },
                "fixed": {"population": self.population, "collect_agent_data": "off"},
                "grid": {},
            }
        ).with_points(points)
        frame = run_sweep(
            spec,
            folder,
            workers=self.workers,
            scheduler=self.scheduler,
            local_cluster=self.local_cluster,
            resume=(folder / "manifest.json").exists(),
            progress=self.progress,
        )
        keys = ["run", "point", "replicate", "seed"]
        if frame.empty:
            return pd.DataFrame(columns=[*keys, *(p.name for p in pat.PATTERNS)])
        outcomes = measure_runs(frame, keys)
        return pd.concat([outcomes[keys], pat.pattern_values(outcomes)], axis=1)


def measure_runs(frame: pd.DataFrame, keys: Sequence[str] = ("run",)) -> pd.DataFrame:
    """Every outcome of ``patterns.OUTCOMES`` for every run of a sweep's weekly frame.

    One row per run (ordered by ``run``) with ``keys`` and one column per outcome, each
    run read from NumPy slices by ``abc.measure`` (the same floats as ``patterns.measure``);
    run by run through pandas it took about 90 ms a run here, more than the run itself
    at small sizes.
    """
    from isk_defection.experiments.calibration.abc import measure

    frame = frame.sort_values(["run", "step"], kind="stable")
    run = frame["run"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, run[1:] != run[:-1], True])
    columns = {c: frame[c].to_numpy() for c in ("step", *pat.COLUMNS)}
    rows = [
        measure({c: v[a:b] for c, v in columns.items()})
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    result = frame.iloc[bounds[:-1]][list(keys)].reset_index(drop=True)
    return pd.concat([result, pd.DataFrame(rows)], axis=1)
