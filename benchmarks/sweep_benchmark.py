"""Sweep throughput: runs per minute with 1 and 2 local workers, and the engine's overhead.

Usage:  python benchmarks/sweep_benchmark.py [--runs 120] [--population 2000] [--steps 100]
Prints a table and writes benchmarks/results/sweep.json. Parallel efficiency is
(runs/min with 2 workers) / (2 x runs/min with 1 worker); overhead per run compares the
1-worker sweep (pool start, transfer, Parquet chunks, manifest and summary included) with
calling the model directly in this process. The forkserver that preloads the model starts
once per process; a warm-up sweep pays for it so that both timings are alike, and it is
reported on its own. Each timing is the best of ``--repeat``, as other work on the machine
only ever slows a sweep down.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from isk_defection.experiments.spec import load_spec
from isk_defection.experiments.sweep import run_sweep, simulate_run


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
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--population", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sweep = spec(args.runs, args.population, args.steps)
    direct_runs = list(sweep.runs())[: max(args.runs // 4, 2)]
    direct = min(
        _seconds(lambda: [simulate_run(sweep, run) for run in direct_runs])
        for _ in range(args.repeat)
    ) / len(direct_runs)
    warm_up = timed_sweep(spec(2, args.population, 1), 2)
    one = min(timed_sweep(sweep, 1) for _ in range(args.repeat))
    two = min(timed_sweep(sweep, 2) for _ in range(args.repeat))
    figures = {
        "runs": args.runs,
        "population": args.population,
        "steps": args.steps,
        "repeat": args.repeat,
        "direct_s_per_run": direct,
        "forkserver_start_s": warm_up,
        "runs_per_min_1_worker": 60 * args.runs / one,
        "runs_per_min_2_workers": 60 * args.runs / two,
        "parallel_efficiency": one / (2 * two),
        "overhead_s_per_run": one / args.runs - direct,
    }
    print(f"direct model call        {direct:8.3f} s/run")
    print(f"forkserver start (once)  {warm_up:8.2f} s")
    print(f"sweep, 1 worker          {figures['runs_per_min_1_worker']:8.1f} runs/min")
    print(f"sweep, 2 workers         {figures['runs_per_min_2_workers']:8.1f} runs/min")
    print(f"parallel efficiency      {figures['parallel_efficiency']:8.0%}")
    print(f"overhead per run         {figures['overhead_s_per_run'] * 1000:8.1f} ms")
    out = Path(__file__).with_name("results") / "sweep.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
