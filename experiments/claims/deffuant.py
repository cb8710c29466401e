"""G2, Deffuant, Amblard, Weisbuch & Faure (2002): relative agreement with extremists.

Runs the model's own peer-influence rule (``influence.relative_agreement`` on pairs
from ``influence.random_matching`` over a complete network) with the paper's set-up:
N = 200 opinions uniform in [-1, 1]; the pe N most extreme agents (half at each end,
delta = 0) are extremists with uncertainty u_e = 0.1, the others have U; mu = 0.2.
The indicator y = p'+^2 + p'-^2 (shares of initially moderate agents ending in the
extreme regions |x| > 0.8) is read only after convergence, as Deffuant (2013) asked in
reply to Meadows & Cliff (2012), who had stopped early.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from isk_defection.experiments.claims.framework import CheckResult, ClassicExperiment, Finding
from isk_defection.experiments.claims.plots import panels, save
from isk_defection.experiments.stats import bootstrap_mean
from isk_defection.model.influence import random_matching, relative_agreement
from isk_defection.model.network import complete_network, edge_list

N, MU, U_EXTREMIST, EXTREME = 200, 0.2, 0.1, 0.8
CASES = {  # name: (U, pe, attractor y)
    "central": (0.4, 0.2, 0.0),
    "both extremes": (1.4, 0.2, 0.5),
    "single extreme": (1.4, 0.05, 1.0),
}
CHUNK, TOLERANCE, MAX_ROUNDS, EARLY = 500, 1e-4, 200_000, 100


def band(target: float) -> tuple[float, float]:
    """Values of y nearer ``target`` than the other attractors (0, 0.5, 1)."""
    return max(target - 0.25, 0.0), min(target + 0.25, 1.0)


def indicator(opinion: np.ndarray, moderate: np.ndarray) -> float:
    """Y = p'+^2 + p'-^2 over the initially moderate agents."""
    plus = np.mean(opinion[moderate] > EXTREME)
    minus = np.mean(opinion[moderate] < -EXTREME)
    return float(plus**2 + minus**2)


def simulate(u: float, pe: float, seed: int, trace: bool = False) -> dict:
    """One run to convergence: no opinion moves more than TOLERANCE over CHUNK rounds."""
    rng = np.random.default_rng(seed)
    opinion = rng.uniform(-1.0, 1.0, N)
    order = np.argsort(opinion)
    k = int(round(pe * N / 2))
    extremist = np.zeros(N, dtype=bool)
    extremist[order[:k]] = extremist[order[N - k :]] = True
    uncertainty = np.where(extremist, U_EXTREMIST, u)
    edges, everyone = edge_list(complete_network(N)), np.ones(N, dtype=bool)
    rounds, early, snapshots = 0, float("nan"), []
    while rounds < MAX_ROUNDS:
        before = opinion.copy()
        for _ in range(CHUNK):
            i, j = random_matching(edges, N // 2, everyone, rng)
            relative_agreement(opinion, uncertainty, i, j, MU)
            rounds += 1
            if rounds == EARLY:
                early = indicator(opinion, ~extremist)
            if trace and rounds % 25 == 0:
                snapshots.append(opinion.copy())
        if np.max(np.abs(opinion - before)) < TOLERANCE:
            break
    return {
        "y": indicator(opinion, ~extremist),
        "y_early": early,
        "rounds": rounds,
        "converged": rounds < MAX_ROUNDS,
        "trace": np.array(snapshots),
        "extremist": extremist,
    }


def compute(quick: bool) -> Finding:
    """Replicated runs per case; y's mean and interval against the attractor's band."""
    replicates = 4 if quick else 50  # 50: as in Deffuant (2013)
    rows, traces = [], {}
    for c, (name, (u, pe, target)) in enumerate(CASES.items()):
        for r in range(replicates):
            run = simulate(u, pe, seed=2002 + 1000 * c + r, trace=name not in traces)
            low, high = band(target)
            if name not in traces and (low <= run["y"] <= high or r == replicates - 1):
                traces[name] = (run["trace"], run["extremist"], run["y"])  # first typical run
            rows.append(
                {"case": name, "U": u, "pe": pe, "replicate": r}
                | {k: run[k] for k in ("y", "y_early", "rounds", "converged")}
            )
    data = pd.DataFrame(rows)
    checks = []
    for name, (u, pe, target) in CASES.items():
        runs = data[data.case == name]
        y = bootstrap_mean(runs.y)
        low, high = band(target)
        checks.append(
            CheckResult(
                f"{name} (U={u}, pe={pe})",
                f"y near {target:g}: in [{low:g}, {high:g}]",
                y,
                bool(low <= y.low and y.high <= high and runs.converged.all()),
                f"bootstrap 95% interval of mean y over {len(runs)} converged runs inside "
                "the band of values nearer this attractor than the others",
            )
        )
    early = data.groupby("case").y_early.mean()
    kinds = pd.cut(data.y, [-0.01, 0.25, 0.75, 1.0], labels=["central", "both", "single"])
    outcomes = pd.crosstab(data.case, kinds).reindex(list(CASES))
    notes = [
        "Runs by the attractor they reached (y < 0.25 central, 0.25-0.75 both extremes, "
        "> 0.75 single extreme): "
        + "; ".join(
            f"{case}: " + ", ".join(f"{k} {v}" for k, v in row.items())
            for case, row in outcomes.iterrows()
        )
        + ". A run that ends central although single-extreme drift was expected has frozen: "
        "the moderates' uncertainty shrank below the reach of the extremists (their "
        "segments overlap by less than u_e) before the symmetry broke.",
        "Converged runs: "
        + ", ".join(
            f"{name} {int(g.converged.sum())}/{len(g)} (median {int(g.rounds.median()):,} rounds "
            f"of up to {N // 2} disjoint pairs)"
            for name, g in data.groupby("case", sort=False)
        )
        + ".",
        f"Read too early (after {EARLY} rounds) mean y would be: "
        + ", ".join(f"{k} {v:.2f}" for k, v in early.items())
        + " — the trap Meadows & Cliff (2012) fell into.",
        f"The extreme regions are |x| > {EXTREME} (1 - 2 u_e); the paper's text does not fix "
        "them numerically, so this is our reading.",
    ]
    return Finding(checks, data, None, notes, {"traces": traces})


def plot(experiment: ClassicExperiment, finding: Finding, path: Path) -> None:
    """Opinion trajectories of one run per case, and y per run against the bands."""
    fig, axes = panels(4, f"{experiment.name} {experiment.title}", finding, width=4.3)
    for ax, (name, (trace, extremist, y)) in zip(
        axes, finding.extra["traces"].items(), strict=False
    ):
        rounds = np.arange(1, len(trace) + 1) * 25
        ax.plot(rounds, trace[:, ~extremist], color="tab:blue", lw=0.3, alpha=0.5)
        ax.plot(rounds, trace[:, extremist], color="tab:red", lw=0.5)
        ax.set_title(f"{name}: example run, y = {y:.2f} (red: extremists)", fontsize=9)
        ax.set_xlabel("rounds")
        ax.set_ylabel("opinion")
    ax = axes[-1]
    for i, (name, (_, _, target)) in enumerate(CASES.items()):
        runs = finding.data[finding.data.case == name]
        ax.axhspan(*band(target), xmin=i / 3, xmax=(i + 1) / 3, color="gold", alpha=0.3)
        ax.scatter(np.full(len(runs), i) + np.linspace(-0.2, 0.2, len(runs)), runs.y, s=10)
        ax.plot([i - 0.3, i + 0.3], [runs.y.mean()] * 2, color="black")
    ax.set_xlim(-0.5, 2.5)
    ax.set_xticks(range(3), list(CASES), fontsize=8)
    ax.set_ylabel("y after convergence (gold: band of the expected attractor)")
    save(fig, path)


G2 = ClassicExperiment(
    name="G2",
    title="relative agreement with extremists",
    claim="y = p'+^2 + p'-^2 is near 0 (central convergence) for U = 0.4, pe = 0.2; near 0.5 "
    "(both extremes) for U = 1.4, pe = 0.2; near 1 (single extreme) for U = 1.4, pe = 0.05 "
    "(N = 200, mu = 0.2, u_e = 0.1, delta = 0).",
    source="Deffuant, Amblard, Weisbuch & Faure (2002), JASSS 5(4) 1; Deffuant (2013) on "
    "measuring after convergence (MODEL_BRIEF.md, G2)",
    design="The model's relative-agreement update on disjoint random pairs of a complete "
    "network, run until no opinion moves more than 1e-4 in 500 rounds; replicated seeds.",
    expected="Mean y in [0, 0.25], [0.25, 0.75] and [0.75, 1] respectively.",
    construction="A validation of the peer-influence rule: the three regimes are emergent "
    "properties of the published rule, reproduced if the model implements it faithfully.",
    compute=compute,
    plot=plot,
)
