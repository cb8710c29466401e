"""Steps per second of the model at several population sizes (one process, one core).

Usage:  python benchmarks/steps_per_second.py [--sizes 1000 10000 100000] [--steps 50]
Model-level data collection is on in every run; agent reporters are off (they cost a
Python call per agent per step and are meant for small, watched runs).
"""

from __future__ import annotations

import argparse
import time

from model import DefectionModel


def measure(population: int, steps: int, seed: int = 1) -> dict[str, float]:
    """Build time, steps per second and agent-steps per second for one run."""
    start = time.perf_counter()
    model = DefectionModel(population=population, rng=seed, collect_agent_data=False)
    built = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    elapsed = time.perf_counter() - start
    return {
        "population": population,
        "build_s": built,
        "steps_per_s": steps / elapsed,
        "agent_steps_per_s": steps * population / elapsed,
    }


def main() -> None:
    """Print one row per population size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print(f"{'agents':>10} {'build s':>8} {'steps/s':>9} {'agent-steps/s':>14}")
    for size in args.sizes:
        row = measure(size, args.steps)
        print(
            f"{size:>10,} {row['build_s']:>8.2f} {row['steps_per_s']:>9.1f} "
            f"{row['agent_steps_per_s']:>14,.0f}"
        )


if __name__ == "__main__":
    main()
