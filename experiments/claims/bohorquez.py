"""G3, Bohorquez, Gourley, Dixon, Spagat & Johnson (2009): coalescence and fragmentation.

Runs the model's own cell structure (``isk.Cells``) in isolation: N fighters, each event
picks a fighter at random; with probability nu his cell shatters into singletons,
otherwise it merges with the cell of another random fighter. After a burn-in, cell sizes
are pooled over snapshots and the power-law exponent is fitted by discrete maximum
likelihood with xmin chosen by the Kolmogorov-Smirnov distance (Clauset, Shalizi &
Newman 2009). Attack severity in the model is the size of a uniformly chosen cell, so
severities follow the same distribution as cell sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from isk_defection.experiments.claims.framework import CheckResult, ClassicExperiment, Finding
from isk_defection.experiments.claims.plots import panels, save
from isk_defection.experiments.stats import bootstrap_mean, fit_power_law
from isk_defection.model.isk import Cells
from isk_defection.model.parameters import PARAMETERS

ALPHA, TOLERANCE = 2.5, 0.2
# IS-K at the scale the model runs: about 4,000-6,000 people at ~81 people per agent at
# the default 2,000 agents, i.e. about 50-75 agents (cells are made of agents).
MODEL_FIGHTERS = 60


def compare_lognormal(sizes: np.ndarray, xmin: int) -> tuple[float, float]:
    """Loglikelihood ratio R (power law vs lognormal, > 0 favours the power law) and its p.

    The ``powerlaw`` package (Alstott, Bullmore & Plenz 2014), the comparison of Clauset,
    Shalizi & Newman (2009) section 5, on the tail above the fitted xmin.
    """
    import warnings

    import powerlaw

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(sizes, discrete=True, xmin=xmin, verbose=False)
        ratio, p = fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
    return float(ratio), float(p)


NU = PARAMETERS["fragmentation"].default  # the model's own nu


def steady_sizes(fighters: int, seed: int, snapshots: int = 100) -> np.ndarray:
    """Cell sizes pooled over snapshots after a burn-in of 20 events per fighter."""
    rng = np.random.default_rng(seed)
    cells = Cells(fighters)
    cells.evolve(20 * fighters, NU, rng)
    pooled = []
    for _ in range(snapshots):
        cells.evolve(fighters // 5, NU, rng)
        pooled.append(cells.sizes.copy())
    return np.concatenate(pooled)


def compute(quick: bool) -> Finding:
    """Fit alpha per replicate; the mean's interval must lie within 2.5 +- 0.2."""
    fighters, replicates = (1_000, 3) if quick else (5_000, 8)
    rows, fits, example = [], [], None
    for r in range(replicates):
        sizes = steady_sizes(fighters, seed=2009 + r)
        fit = fit_power_law(sizes)
        ratio, p_value = compare_lognormal(sizes, fit.xmin)
        fits.append(
            {
                "replicate": r,
                "alpha": fit.alpha,
                "xmin": fit.xmin,
                "n_tail": fit.n_tail,
                "ks": fit.ks,
                "vs_lognormal_R": ratio,
                "vs_lognormal_p": p_value,
            }
        )
        counts = np.bincount(sizes)
        size = np.flatnonzero(counts)
        rows.append(pd.DataFrame({"replicate": r, "size": size, "cells": counts[size]}))
        if r == 0:
            example = (sizes, fit)
    data = pd.concat(rows, ignore_index=True)
    table = pd.DataFrame(fits)
    alpha = bootstrap_mean(table.alpha)
    small = steady_sizes(MODEL_FIGHTERS, seed=2009)
    small_fit = fit_power_law(small)
    small_ratio, small_p = compare_lognormal(small, small_fit.xmin)
    lognormal_preferred = int(((table.vs_lognormal_R < 0) & (table.vs_lognormal_p < 0.1)).sum())
    low, high = ALPHA - TOLERANCE, ALPHA + TOLERANCE
    checks = [
        CheckResult(
            "power-law exponent of cell sizes",
            f"alpha ~ {ALPHA} (within +- {TOLERANCE})",
            alpha,
            bool(low <= alpha.low and alpha.high <= high),
            f"bootstrap 95% interval of the mean MLE alpha over {replicates} runs inside "
            f"[{low:g}, {high:g}]",
        ),
        CheckResult(
            "power law not worse than a lognormal",
            "no run where a lognormal fits the tail significantly better",
            None,
            lognormal_preferred == 0,
            "loglikelihood ratio test (powerlaw package; Clauset et al. 2009): lognormal "
            "preferred when R < 0 with p < 0.1",
            primary=False,
            text=f"lognormal preferred in {lognormal_preferred} of {replicates} runs; R = "
            + ", ".join(f"{v:.2f}" for v in table.vs_lognormal_R),
        ),
        CheckResult(
            f"at the model's IS-K size ({MODEL_FIGHTERS} agents)",
            f"alpha ~ {ALPHA} (within +- {TOLERANCE})",
            None,
            bool(low <= small_fit.alpha <= high),
            "one pooled run at the number of IS-K agents the model has at its default scale",
            primary=False,
            text=f"alpha {small_fit.alpha:.2f} (xmin {small_fit.xmin}); vs lognormal R = "
            f"{small_ratio:.2f}, p = {small_p:.2g}",
        ),
    ]
    notes = [
        f"{fighters:,} fighters, nu = {NU} (the model's `fragmentation` default), burn-in "
        f"{20 * fighters:,} events, then 100 snapshots {fighters // 5:,} events apart.",
        "Fits per run: "
        + ", ".join(
            f"alpha {f.alpha:.2f} (xmin {f.xmin}, {f.n_tail:,} cells)" for f in table.itertuples()
        )
        + ".",
        "Finite N: a giant cell forms and shatters repeatedly, so the tail beyond a few "
        "hundred is carried by few cells; alpha is estimated on the pooled snapshots.",
        f"At the model's own IS-K size ({MODEL_FIGHTERS} agents, about 4,000-6,000 people at "
        "the default scale) the cell sizes span barely two decades: "
        + (
            f"a lognormal fits their tail better than a power law (R = {small_ratio:.2f}, p = "
            f"{small_p:.2g}), so the published power law is a property of the rule at scale, "
            "not something the model's 2,000-agent runs show."
            if small_ratio < 0 and small_p < 0.1
            else f"a power law and a lognormal cannot be told apart (R = {small_ratio:.2f}, p "
            f"= {small_p:.2g})."
        ),
    ]
    return Finding(checks, data, None, notes, {"table": table, "example": example})


def plot(experiment: ClassicExperiment, finding: Finding, path: Path) -> None:
    """Complementary CDF of cell sizes (log-log) with the fitted law, and alpha per run."""
    sizes, fit = finding.extra["example"]
    table = finding.extra["table"]
    fig, (left, right) = panels(2, f"{experiment.name} {experiment.title}", finding)
    values = np.sort(sizes)
    ccdf = 1.0 - np.arange(len(values)) / len(values)
    left.loglog(values, ccdf, ".", ms=2, label="model cells (run 0, pooled)")
    tail = values >= fit.xmin
    anchor = ccdf[np.argmax(tail)]
    support = np.unique(values[tail]).astype(float)
    left.loglog(
        support,
        anchor * (support / fit.xmin) ** (1 - fit.alpha),
        "r-",
        label=f"fit alpha = {fit.alpha:.2f}",
    )
    left.loglog(
        support,
        anchor * (support / fit.xmin) ** (1 - ALPHA),
        "k--",
        label=f"alpha = {ALPHA} (Bohorquez et al.)",
    )
    left.set_xlabel("cell size (fighters) = attack severity")
    left.set_ylabel("P(size >= s)")
    left.legend(fontsize=8)
    right.axhspan(ALPHA - TOLERANCE, ALPHA + TOLERANCE, color="gold", alpha=0.3, label="2.5 +- 0.2")
    right.plot(table.replicate, table.alpha, "o")
    right.axhline(table.alpha.mean(), color="black", label="mean")
    right.set_xlabel("replicate")
    right.set_ylabel("MLE alpha")
    right.legend(fontsize=8)
    save(fig, path)


G3 = ClassicExperiment(
    name="G3",
    title="coalescence-fragmentation of cells",
    claim="Steady-state cell sizes (and attack severities) follow a power law with exponent "
    "alpha of about 2.5.",
    source="Bohorquez, Gourley, Dixon, Spagat & Johnson (2009), Nature 462:911 "
    "(MODEL_BRIEF.md, G3)",
    design="The model's Cells in isolation with its own nu; pooled steady-state snapshots; "
    "discrete power-law MLE with KS-chosen xmin per replicate.",
    expected=f"Mean alpha within {ALPHA} +- {TOLERANCE}.",
    construction="A validation of the cell submodel: the exponent is an emergent property of "
    "the published rule, reproduced if the model implements it faithfully.",
    compute=compute,
    plot=plot,
)
