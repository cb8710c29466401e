"""Scale benchmark: the fast model from 1,000 to 1,000,000 agents, the per-agent reference,
and 100-week runs at 1:1 scale.

Usage:  python benchmarks/scale.py [--quick]
Each measurement runs in a fresh subprocess so that peak memory (ru_maxrss) is its own.
Model-level data collection is on everywhere; agent reporters are off (they are for
small, watched runs). Prints a table and writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fast(population: int, steps: int) -> dict:
    """Steps per second of the vectorised model (after one warm-up step)."""
    from model import DefectionModel

    model = DefectionModel(population=population, rng=1, collect_agent_data=False)
    model.step()
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    return {"seconds": time.perf_counter() - start, "steps": steps}


def reference(population: int, steps: int) -> dict:
    """Steps per second of the per-agent reference (tests/reference.py)."""
    sys.path.insert(0, str(ROOT))
    from tests.reference import run_reference

    model = run_reference(0, 1, population=population)
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    return {"seconds": time.perf_counter() - start, "steps": steps}


def full_scale(runs: int) -> dict:
    """Wall time of whole 100-week runs of the full_scale preset, construction included."""
    from model import DefectionModel

    start = time.perf_counter()
    for seed in range(runs):
        model = DefectionModel(preset="full_scale", rng=seed)
        for _ in range(100):
            model.step()
    return {"seconds": time.perf_counter() - start, "runs": runs, "agents": model.population.n}


def measure(kind: str, *args: int) -> dict:
    """Run one measurement in a fresh interpreter; add its peak memory."""
    code = (
        f"import json, resource, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from benchmarks.scale import {kind}; r = {kind}(*{args!r}); "
        "r['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure everything and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args()
    steps = 5 if args.quick else 20
    rows = []
    for size in (1_000, 10_000, 100_000, 1_000_000):
        r = measure("fast", size, steps if size < 1_000_000 else max(steps // 2, 3))
        rows.append({"model": "fast", "agents": size} | r)
    for size in (1_000, 10_000):
        r = measure("reference", size, max(steps // 4, 2))
        rows.append({"model": "reference", "agents": size} | r)
    print(f"{'model':<10}{'agents':>11}{'steps/s':>10}{'agent-steps/s':>15}{'peak MB':>9}")
    for row in rows:
        row["steps_per_s"] = row["steps"] / row["seconds"]
        row["agent_steps_per_s"] = row["steps_per_s"] * row["agents"]
        print(
            f"{row['model']:<10}{row['agents']:>11,}{row['steps_per_s']:>10.1f}"
            f"{row['agent_steps_per_s']:>15,.0f}{row['peak_mb']:>9.0f}"
        )
    speed = {(r["model"], r["agents"]): r["agent_steps_per_s"] for r in rows}
    ratio = speed[("fast", 10_000)] / speed[("reference", 10_000)]
    print(f"fast / reference at 10,000 agents: {ratio:.0f}x")
    scale = measure("full_scale", 1 if args.quick else 3)
    per_run = scale["seconds"] / scale["runs"]
    print(
        f"100-week 1:1 run ({scale['agents']:,} agents): {per_run:.1f} s, "
        f"{60 / per_run:.1f} runs/min, peak {scale['peak_mb']:.0f} MB"
    )
    results = {"rows": rows, "ratio_at_10k": ratio, "full_scale": scale | {"s_per_run": per_run}}
    out = Path(__file__).with_name("results") / "scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
