"""Sweep throughput: runs per minute with 1 and 2 local workers, and the engine's overhead.

Usage:  python benchmarks/sweep_benchmark.py [--runs 40] [--population 2000] [--steps 100]
Prints a table and writes benchmarks/results/sweep.json. Parallel efficiency is
(runs/min with 2 workers) / (2 x runs/min with 1 worker); overhead per run compares the
1-worker sweep with calling the model directly in this process.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from experiments.spec import load_spec
from experiments.sweep import run_sweep, simulate_run


def spec(runs: int, population: int, steps: int):
    """A sweep of ``runs`` replicates of the baseline, recording every 4th week."""
    return load_spec(
        {
            "sweep": {
                "name": "bench",
                "steps": steps,
                "replicates": runs,
                "seed": 1,
                "record_every": 4,
            },
            "fixed": {"population": population},
        }
    )


def timed_sweep(sweep, workers: int) -> float:
    """Seconds for the whole sweep with ``workers`` local processes (pool start included)."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_sweep(sweep, Path(folder), workers=workers, progress=False)
        return time.perf_counter() - start


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--population", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    sweep = spec(args.runs, args.population, args.steps)
    direct_start = time.perf_counter()
    for run in sweep.runs()[: max(args.runs // 4, 2)]:
        simulate_run(sweep, run)
    direct = (time.perf_counter() - direct_start) / max(args.runs // 4, 2)
    one, two = timed_sweep(sweep, 1), timed_sweep(sweep, 2)
    figures = {
        "runs": args.runs,
        "population": args.population,
        "steps": args.steps,
        "direct_s_per_run": direct,
        "runs_per_min_1_worker": 60 * args.runs / one,
        "runs_per_min_2_workers": 60 * args.runs / two,
        "parallel_efficiency": one / (2 * two),
        "overhead_s_per_run": one / args.runs - direct,
    }
    print(f"direct model call        {direct:8.3f} s/run")
    print(f"sweep, 1 worker          {figures['runs_per_min_1_worker']:8.1f} runs/min")
    print(f"sweep, 2 workers         {figures['runs_per_min_2_workers']:8.1f} runs/min")
    print(f"parallel efficiency      {figures['parallel_efficiency']:8.0%}")
    print(f"overhead per run         {figures['overhead_s_per_run'] * 1000:8.1f} ms")
    out = Path(__file__).with_name("results") / "sweep.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
