"""How long one history-matching emulator takes to fit, and how well it validates, by size.

``python -m isk_defection.experiments.calibration.emulator_timing [--data FILE]`` runs a
Latin hypercube of the 30 priors through the model (2 seeds per point, 1,000 agents;
kept in ``--data`` and reused), then for each size fits the emulators of a few outputs
as a wave does (``Emulator.fit``: hyperparameters on a subsample of at most
``FIT_POINTS``, then conditioned on every point) and validates them (``validate``,
5-fold), and prints the seconds and the leave-out diagnostics. ``--full`` also times the
old fit (hyperparameters optimised on every point) at the sizes given to it, for
comparison; it grows as n^3 per optimiser step.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import qmc
from sklearn.gaussian_process import GaussianProcessRegressor

from isk_defection.experiments.calibration import history as hm
from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.priors import PRIORS

OUTPUTS = ("isk_june_2023", "attacks_2022", "attack_fall", "isk_2024")
AGENTS = 1_000


def _one(job: tuple[dict[str, float], int]) -> dict[str, float]:
    from isk_defection.experiments.calibration.abc import simulate_patterns

    try:
        return simulate_patterns(job[0], seed=job[1], agents=AGENTS)
    except Exception:  # noqa: BLE001 - a failed run is a missing value, as in a wave
        return {p.name: float("nan") for p in pat.PATTERNS}


def data(path: Path, points: int, workers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A design and its runs (2 seeds per point), made once and kept in ``path``."""
    space = hm.Space(tuple(PRIORS.values()))
    if path.exists():
        runs = pd.read_parquet(path)
        design = pd.read_parquet(path.with_suffix(".design.parquet"))
        return design, runs
    unit = qmc.LatinHypercube(d=len(space.names), seed=1).random(points)
    jobs = [(p, 1_000 * i + r) for i, p in enumerate(space.points(unit)) for r in range(2)]
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_one, jobs, chunksize=20))
    runs = pd.DataFrame(rows)
    runs.insert(0, "point", [i for i in range(points) for _ in range(2)])
    runs.insert(1, "replicate", [r for _ in range(points) for r in range(2)])
    design = pd.DataFrame(unit, columns=space.names)
    runs.to_parquet(path, index=False)
    design.to_parquet(path.with_suffix(".design.parquet"), index=False)
    return design, runs


def measure(
    design: pd.DataFrame, runs: pd.DataFrame, size: int, full: bool = False
) -> list[dict[str, Any]]:
    """Fit and validate each output's emulator on the first ``size`` points."""
    space = hm.Space(tuple(PRIORS[n] for n in design.columns))  # the data's parameters
    frame, runs = design.iloc[:size], runs[runs.point < size]
    rows = []
    for name in OUTPUTS:
        target = hm.Target.of(next(p for p in pat.CONSTRAINING if p.name == name))
        x, y, var_seed = hm.training(space, frame, runs, target)
        start = time.perf_counter()
        if full:
            gp = GaussianProcessRegressor(
                hm.kernel(x.shape[1]), normalize_y=True, random_state=0
            ).fit(x, y)
            emulator = hm.Emulator(name, gp, var_seed)
        else:
            emulator = hm.Emulator.fit(name, x, y, var_seed, seed=0)
        fitted = time.perf_counter() - start
        emulator.validate(x, y, seed=0)
        rows.append(
            {
                "output": name,
                "points": len(x),
                "fit": "all points" if full else f"subsample of {hm.FIT_POINTS}",
                "fit_seconds": round(fitted, 2),
                "validate_seconds": round(time.perf_counter() - start - fitted, 2),
                **{k: round(v, 3) for k, v in emulator.validation.items() if k != "points"},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    """Make or read the data, then time the emulators at each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("emulator_timing.parquet"))
    parser.add_argument("--sizes", default="200,1000,2000")
    parser.add_argument("--full", default="", help="sizes at which to time the old full fit")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full = [int(s) for s in args.full.split(",") if s]
    design, runs = data(args.data, max([*sizes, *full]), args.workers)
    for size in sizes:
        measure(design, runs, size)
    for size in full:
        measure(design, runs, size, full=True)


if __name__ == "__main__":
    main()
