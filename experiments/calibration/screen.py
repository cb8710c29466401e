"""Screening before inference: which uncertain parameters move the pattern misfits.

Morris elementary effects (SALib) over every prior's range, run through the sweep
engine (so they use every core, resume and run on Dask), measured on each constraining
pattern's distance outside its band. Rule, fixed before looking: a parameter is
*influential* — and inferred by the calibration — when, for at least one constraining
pattern, its Morris mu* is at least ``SHARE`` of the largest mu* for that pattern.
The others are fixed at their defaults, each with the reason "mu* below SHARE of the
largest for every pattern" (the patterns cannot inform it: a posterior would return
its prior).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from SALib.analyze import morris as morris_analyze
from SALib.sample import morris as morris_sample

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.priors import PRIORS
from isk_defection.experiments.sweep import load_spec, run_sweep

SHARE = 0.2  # inferred at all
KERNEL_SHARE = 0.4  # inferred and moved by the SMC kernel (the rest are redrawn from the prior)
LEVELS = 4
SEED = 2021


def problem() -> dict[str, Any]:
    """SALib's problem over every prior."""
    return {
        "num_vars": len(PRIORS),
        "names": list(PRIORS),
        "bounds": [[p.low, p.high] for p in PRIORS.values()],
    }


def design(trajectories: int) -> np.ndarray:
    """Morris trajectories: trajectories x (parameters + 1) points."""
    return morris_sample.sample(problem(), trajectories, num_levels=LEVELS, seed=SEED)


def run(
    out: Path,
    trajectories: int,
    *,
    agents: int = 2_000,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    resume: bool = False,
    progress: bool | None = True,
) -> dict[str, Any]:
    """Run the Morris design through the sweep engine; analyse; write screen.csv/json/png."""
    matrix = design(trajectories)
    names = list(PRIORS)
    spec = load_spec(
        {
            "sweep": {
                "name": "morris-screen",
                "preset": "baseline",
                "steps": pat.STEPS,
                "replicates": 1,
                "seed": SEED,
                "outputs": pat.COLUMNS,
            },
            "fixed": {"population": agents, "collect_agent_data": "off"},
            "grid": {},
        }
    )
    points = [dict(zip(names, map(float, row), strict=True)) for row in matrix]
    spec = spec.with_points(points)
    frame = run_sweep(
        spec,
        out / "screen-sweep",
        workers=workers,
        scheduler=scheduler,
        local_cluster=local_cluster,
        resume=resume,
        progress=progress,
    )
    values = _values(frame, len(points))
    return analyse(matrix, values, out)


def _values(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    rows = {}
    for point, run in frame.groupby("point"):
        rows[int(point)] = pat.measure(run)
    outcomes = pd.DataFrame.from_dict(rows, orient="index").reindex(range(n))
    if outcomes.isna().any().any():
        raise RuntimeError("screen: some Morris points have no successful run")
    return pat.pattern_values(outcomes)


def analyse(matrix: np.ndarray, values: pd.DataFrame, out: Path) -> dict[str, Any]:
    """mu* per parameter and pattern miss; the influential set by the stated rule."""
    missed = pd.DataFrame(pat.misses(values), columns=[p.name for p in pat.CONSTRAINING])
    missed["total"] = np.sqrt((missed**2).sum(axis=1))
    rows = []
    for column in missed.columns:
        y = missed[column].to_numpy(float)
        y = np.where(np.isfinite(y), y, np.nanmax(y[np.isfinite(y)], initial=0.0))
        result = morris_analyze.analyze(problem(), matrix, y, num_levels=LEVELS, seed=SEED)
        for name, mu_star, sigma in zip(
            result["names"], result["mu_star"], result["sigma"], strict=True
        ):
            rows.append({"pattern": column, "parameter": name, "mu_star": mu_star, "sigma": sigma})
    table = pd.DataFrame(rows)
    top = table.groupby("pattern")["mu_star"].transform("max")
    table["relative"] = np.where(top > 0, table.mu_star / top, 0.0)
    per_pattern = table[table.pattern != "total"]
    strongest = per_pattern.groupby("parameter")["relative"].max()
    inferred = [n for n in PRIORS if strongest.get(n, 0.0) >= SHARE]
    drivers = {
        n: per_pattern[
            (per_pattern.parameter == n) & (per_pattern.relative >= SHARE)
        ].pattern.tolist()
        for n in inferred
    }
    fixed = {
        n: f"Morris mu* at most {strongest.get(n, 0.0):.0%} of the largest for every pattern "
        f"(rule: < {SHARE:.0%}): the patterns cannot inform it; kept at its default"
        for n in PRIORS
        if n not in inferred
    }
    kernel = [n for n in inferred if strongest.get(n, 0.0) >= KERNEL_SHARE]
    summary = {
        "method": f"Morris elementary effects (SALib), {len(matrix)} runs "
        f"({len(matrix) // (len(PRIORS) + 1)} trajectories x {len(PRIORS) + 1}), {LEVELS} "
        f"levels, seed {SEED}; outcome: each constraining pattern's distance outside its band",
        "rule": f"inferred if mu* >= {SHARE:.0%} of the largest mu* for some pattern",
        "inferred": inferred,
        "kernel_rule": f"moved by the SMC kernel if mu* >= {KERNEL_SHARE:.0%} of the largest "
        "for some pattern; the other inferred parameters are redrawn from their prior",
        "kernel": kernel,
        "drivers": drivers,
        "fixed": fixed,
        "runs": len(matrix),
    }
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "screen.csv", index=False)
    (out / "screen.json").write_text(json.dumps(summary, indent=2))
    figure(table, inferred, out / "screen.png")
    return summary


def figure(table: pd.DataFrame, inferred: list[str], path: Path) -> None:
    """Heat map of relative mu* (parameter x pattern); inferred parameters in bold."""
    grid = table.pivot(index="parameter", columns="pattern", values="relative")
    grid = grid.reindex(index=list(PRIORS))
    fig = Figure(figsize=(12, 9))
    ax = fig.subplots()
    image = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(grid.index)), grid.index, fontsize=8)
    for label in ax.get_yticklabels():
        if label.get_text() in inferred:
            label.set_fontweight("bold")
    ax.set_title(
        f"Morris screening: mu* relative to the largest per pattern (bold: inferred, rule "
        f">= {SHARE:.0%})",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="mu* / max mu* for the pattern")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def load(out: Path) -> dict[str, Any] | None:
    """The screening summary of a folder, if any (with its kernel set, from screen.csv)."""
    path = out / "screen.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    if "kernel" not in summary:  # a screen written before the kernel split: same rule, same csv
        table = pd.read_csv(out / "screen.csv")
        strongest = table[table.pattern != "total"].groupby("parameter")["relative"].max()
        summary["kernel"] = [
            n for n in summary["inferred"] if strongest.get(n, 0.0) >= KERNEL_SHARE
        ]
    return summary
