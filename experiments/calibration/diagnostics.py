"""What a reviewer checks in a calibration: predictive fit, marginals, pairs, coverage.

* posterior predictive check: every pattern's band against the distribution of that
  statistic over simulations at posterior draws (one figure);
* marginal posteriors against their priors, and pairwise plots;
* identifiability in words: the 90% credible interval's width as a share of the
  prior's, and the strongest posterior correlations (parameters that trade off);
* coverage on synthetic data: parameters drawn from the prior, their simulated patterns
  taken as data (bands as wide as the reported ones, centred on them), calibrated in
  quick mode; how often the true value falls in the 90% credible interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.priors import PRIORS

LEVEL = 0.90


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float | np.ndarray):
    """Quantile(s) of weighted draws (inverse of the weighted empirical CDF, midpoints)."""
    order = np.argsort(values)
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cdf, v)


def credible(values: np.ndarray, weights: np.ndarray, level: float = LEVEL) -> tuple:
    """Median and the central ``level`` credible interval."""
    tail = (1 - level) / 2
    low, median, high = weighted_quantile(values, weights, np.array([tail, 0.5, 1 - tail]))
    return float(median), float(low), float(high)


def identifiability(table: pd.DataFrame, weights: np.ndarray) -> pd.DataFrame:
    """Per parameter: prior, posterior median and 90% CrI, and the CrI's share of the prior."""
    rows = []
    for name in table.columns:
        prior = PRIORS[name]
        median, low, high = credible(table[name].to_numpy(), weights)
        share = (high - low) / ((prior.high - prior.low) * LEVEL)
        if share < 0.5:
            word = "identified"
        elif share < 0.8:
            word = "weakly identified"
        else:
            word = "not identified (posterior close to the prior)"
        rows.append(
            {
                "parameter": name,
                "prior": prior.text(),
                "median": median,
                "low": low,
                "high": high,
                "width_share": share,
                "identified": word,
            }
        )
    return pd.DataFrame(rows)


def correlations(table: pd.DataFrame, weights: np.ndarray, top: int = 5) -> list[str]:
    """The strongest weighted posterior correlations, in words."""
    if table.shape[1] < 2:
        return []
    x = table.to_numpy(float)
    mean = np.average(x, axis=0, weights=weights)
    cov = np.cov((x - mean).T, aweights=weights)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    pairs = [
        (abs(corr[i, j]), corr[i, j], table.columns[i], table.columns[j])
        for i in range(len(sd))
        for j in range(i + 1, len(sd))
    ]
    pairs.sort(reverse=True)
    return [f"`{a}` and `{b}`: r = {r:+.2f}" for _, r, a, b in pairs[:top]]


def predictive_figure(values: pd.DataFrame, path: Path, title: str) -> None:
    """Every pattern's band (green) against its posterior predictive distribution."""
    shown = list(pat.PATTERNS)
    cols = 4
    rows = int(np.ceil(len(shown) / cols))
    fig = Figure(figsize=(4 * cols, 2.8 * rows))
    axes = fig.subplots(rows, cols)
    for ax, p in zip(axes.flat, shown, strict=False):
        data = values[p.name].to_numpy(float)
        data = data[np.isfinite(data)]
        high = p.high if np.isfinite(p.high) else max(p.low * 2, np.nanmax(data, initial=p.low))
        ax.hist(data, bins=20, color="tab:blue", alpha=0.7)
        ax.axvspan(p.low, high, color="green", alpha=0.15)
        inside = np.mean((data >= p.low) & (data <= p.high)) if len(data) else float("nan")
        role = "" if p.constraining else " (by construction)"
        ax.set_title(f"{p.name}{role}: {inside:.0%} inside", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def marginals_figure(table: pd.DataFrame, weights: np.ndarray, path: Path) -> None:
    """Weighted posterior histograms against the (uniform) prior density."""
    names = list(table.columns)
    cols = 4
    rows = max(int(np.ceil(len(names) / cols)), 1)
    fig = Figure(figsize=(4 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        prior = PRIORS[name]
        bins = np.linspace(prior.low, prior.high, 16)
        ax.hist(table[name], bins=bins, weights=weights, density=True, alpha=0.7)
        ax.axhline(1 / (prior.high - prior.low), color="black", ls="--", lw=1, label="prior")
        ax.axvline(prior.default, color="red", lw=1, label="v2 default")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("marginal posteriors (bars) against priors (dashed); red: v2 default", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def pairs_figure(table: pd.DataFrame, weights: np.ndarray, path: Path) -> None:
    """Pairwise scatter of posterior draws (size: weight) in prior coordinates."""
    names = list(table.columns)
    k = len(names)
    fig = Figure(figsize=(1.7 * k + 1, 1.7 * k + 1))
    axes = fig.subplots(k, k, squeeze=False)
    size = 4 + 60 * weights / weights.max()
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            pa, pb = PRIORS[a], PRIORS[b]
            if i == j:
                ax.hist(table[a], bins=12, range=(pa.low, pa.high), weights=weights)
            elif i > j:
                ax.scatter(table[b], table[a], s=size, alpha=0.4)
                ax.set_xlim(pb.low, pb.high)
                ax.set_ylim(pa.low, pa.high)
            else:
                ax.axis("off")
            if j == 0:
                ax.set_ylabel(a, fontsize=6, rotation=0, ha="right")
            if i == k - 1:
                ax.set_xlabel(b, fontsize=6, rotation=30, ha="right")
    fig.suptitle("pairwise posterior (axes span the prior ranges)", fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")


def predictive_summary(values: pd.DataFrame) -> pd.DataFrame:
    """Per pattern: predictive median, 90% interval and the share inside the band."""
    rows = []
    for p in pat.PATTERNS:
        data = values[p.name].to_numpy(float)
        finite = data[np.isfinite(data)]
        low, median, high = np.quantile(finite, [0.05, 0.5, 0.95]) if len(finite) else [np.nan] * 3
        rows.append(
            {
                "pattern": p.name,
                "band": p.band(),
                "role": "constraining" if p.constraining else "by construction",
                "median": median,
                "low": low,
                "high": high,
                "inside": float(np.mean((data >= p.low) & (data <= p.high))),
            }
        )
    return pd.DataFrame(rows)


def coverage_summary(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per parameter: how often the true value fell in the 90% CrI over synthetic fits."""
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    return (
        frame.groupby("parameter")
        .agg(fits=("inside", "size"), covered=("inside", "sum"), width=("width_share", "mean"))
        .assign(coverage=lambda f: f.covered / f.fits)
        .reset_index()
    )
