"""Sobol' sensitivity indices (SALib) of sweep outcomes over the spec's sampled ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import sobol as sobol_sample

from isk_defection.experiments import folders
from isk_defection.experiments.errors import RunsFailedError
from isk_defection.experiments.spec import SweepSpec, parameter
from isk_defection.experiments.sweep import atomic_write, run_sweep

DEFAULT_OUTCOMES = ("isk_strength", "cumulative_defections")


def problem(spec: SweepSpec) -> dict:
    """SALib's problem definition from the spec's ``[sample.ranges]``."""
    if not spec.ranges:
        raise ValueError("sample.ranges: sensitivity analysis needs at least one range")
    if spec.grid:
        raise ValueError(
            "grid: must be empty for sensitivity analysis (it varies only [sample.ranges]); "
            "move grid parameters to [fixed]"
        )
    return {
        "num_vars": len(spec.ranges),
        "names": list(spec.ranges),
        "bounds": [list(b) for b in spec.ranges.values()],
    }


def design(spec: SweepSpec) -> list[dict]:
    """Saltelli's design for Sobol' indices: n x (2d + 2) points, seeded by the master seed."""
    definition = problem(spec)
    matrix = sobol_sample.sample(definition, max(spec.n, 2), seed=spec.seed)
    return [
        {
            name: int(round(x)) if parameter(name, name).kind is int else float(x)
            for name, x in zip(definition["names"], row, strict=True)
        }
        for row in matrix
    ]


def sobol_indices(spec: SweepSpec, results: pd.DataFrame, outcomes: list[str]) -> pd.DataFrame:
    """First-order and total indices with 95% confidence half-widths, per outcome."""
    definition = problem(spec)
    if results.empty:  # every run failed
        final = pd.DataFrame(index=range(len(spec.points)), columns=outcomes, dtype=float)
    else:
        final = results[results["step"] == spec.steps].groupby("point")[outcomes].mean()
        final = final.reindex(range(len(spec.points)))
    if final.isna().any().any():
        missing = int(final.isna().any(axis=1).sum())
        raise RunsFailedError(
            f"sensitivity: {missing} of {len(final)} design points have no successful run "
            f"(errors in {results.attrs.get('folder', 'the folder')}/manifest.json); run them "
            "again with --resume --retry-failed"
        )
    rows = []
    for outcome in outcomes:
        indices = sobol_analyze.analyze(
            definition, final[outcome].to_numpy(float), seed=spec.seed, print_to_console=False
        )
        for i, name in enumerate(definition["names"]):
            rows.append(
                {
                    "outcome": outcome,
                    "parameter": name,
                    "S1": indices["S1"][i],
                    "S1_conf": indices["S1_conf"][i],
                    "ST": indices["ST"][i],
                    "ST_conf": indices["ST_conf"][i],
                }
            )
    return pd.DataFrame(rows)


def plot_indices(table: pd.DataFrame, path: Path) -> None:
    """One panel per outcome: first-order and total index per parameter, with intervals."""
    outcomes = list(dict.fromkeys(table["outcome"]))
    fig = Figure(figsize=(5 * len(outcomes), 4))
    axes = fig.subplots(1, len(outcomes), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        part = table[table["outcome"] == outcome]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["S1"], 0.4, yerr=part["S1_conf"], label="first order S1")
        ax.bar(x + 0.2, part["ST"], 0.4, yerr=part["ST_conf"], label="total ST")
        ax.set_xticks(x, part["parameter"], rotation=30, ha="right")
        ax.set_title(outcome)
        ax.set_ylabel("Sobol' index")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))


def sensitivity(
    spec: SweepSpec, out: Path, outcomes: list[str] | None = None, **engine
) -> pd.DataFrame:
    """Run Saltelli's design through the sweep engine; write sobol.csv and sobol.png."""
    outcomes = list(outcomes or [o for o in DEFAULT_OUTCOMES if o in spec.outputs])
    for outcome in outcomes:
        if outcome not in spec.outputs:
            raise ValueError(
                f"--outcome: must be one of the spec's outputs ({', '.join(spec.outputs[:8])}"
                f"{', ...' if len(spec.outputs) > 8 else ''}) (got {outcome!r})"
            )
    saltelli = spec.with_points(design(spec), field="sample.n")
    with folders.claim(Path(out), "sensitivity"):  # the sweep inside runs in it
        results = run_sweep(saltelli, Path(out), **engine)
        table = sobol_indices(saltelli, results, outcomes)
        atomic_write(Path(out) / "sobol.csv", lambda p: table.to_csv(p, index=False))
        plot_indices(table, Path(out) / "sobol.png")
    return table
