"""Scale benchmark: the fast model from 1,000 to 1,000,000 agents, the per-agent reference,
and whole 100-week runs at 1:1 scale.

Usage:  python benchmarks/scale.py [--quick] [--repeats 5] [--sizes 1000 10000 ...]

Every measurement runs in a fresh interpreter, so its peak memory (ru_maxrss, which
includes Python and the imports: see the "idle" row) is its own. The model-level
DataCollector is on everywhere; agent reporters are off except in the rows marked "agent
data" (they cost a Python call per agent per step and are meant for small, watched
runs). Steps are timed after one warm-up step (week 1 holds the prisoner release), in
``--repeats`` blocks; the table gives the best and the median block, because other
processes share the machine. Prints a table and writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000, 1_000_000)
REFERENCE_SIZES = (1_000, 10_000)


def peak_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def idle() -> dict:
    """The interpreter with the model and the reference imported, no model built."""
    import isk_defection.model  # noqa: F401
    import tests.reference  # noqa: F401

    return {}


def timed_blocks(model, steps: int, repeats: int) -> list[float]:
    """Seconds per block of ``steps`` steps, after one warm-up step."""
    model.step()
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.step()
        blocks.append(time.perf_counter() - start)
    return blocks


def fast(population: int, steps: int, repeats: int, agent_data: bool) -> dict:
    """Build time and step times of the vectorised model."""
    from isk_defection.model import DefectionModel

    start = time.perf_counter()
    model = DefectionModel(population=population, rng=1, collect_agent_data=agent_data)
    build = time.perf_counter() - start
    return {"build_s": build, "blocks_s": timed_blocks(model, steps, repeats)}


def reference(population: int, steps: int, repeats: int) -> dict:
    """Build time and step times of the per-agent reference (tests/reference.py)."""
    from tests.reference import ReferenceModel

    start = time.perf_counter()
    model = ReferenceModel(1, population=population)
    build = time.perf_counter() - start
    return {"build_s": build, "blocks_s": timed_blocks(model, steps, repeats)}


def full_scale(runs: int) -> dict:
    """Seconds per whole 100-week run of the full_scale preset, construction included."""
    from isk_defection.model import DefectionModel

    seconds = []
    for seed in range(runs):
        start = time.perf_counter()
        model = DefectionModel(preset="full_scale", rng=seed)
        for _ in range(100):
            model.step()
        seconds.append(time.perf_counter() - start)
    return {"runs_s": seconds, "agents": model.population.n, "start_agents": model.p.population}


def measure(kind: str, *args) -> dict:
    """Run ``kind(*args)`` in a fresh interpreter; add its peak memory."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from benchmarks.scale import {kind}, peak_mb; r = {kind}(*{args!r}); "
        "r['peak_mb'] = peak_mb(); print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stepping_row(model: str, agents: int, agent_data: bool, steps: int, result: dict) -> dict:
    """One table row: steps per second (best and median block) and agent-steps per second."""
    rates = [steps / s for s in result["blocks_s"]]
    best, median = max(rates), statistics.median(rates)
    return {
        "model": model,
        "agents": agents,
        "agent_data": agent_data,
        "build_s": result["build_s"],
        "steps_per_s_best": best,
        "steps_per_s_median": median,
        "agent_steps_per_s_best": best * agents,
        "agent_steps_per_s_median": median * agents,
        "peak_mb": result["peak_mb"],
        "blocks_s": result["blocks_s"],
        "steps_per_block": steps,
    }


def print_table(rows: list[dict], idle_mb: float) -> None:
    print(
        f"{'model':<10}{'agents':>11}{'agent data':>12}{'build s':>9}{'steps/s':>9}"
        f"{'median':>9}{'agent-steps/s':>15}{'peak MB':>9}"
    )
    print(f"{'idle':<10}{'':>11}{'':>12}{'':>9}{'':>9}{'':>9}{'':>15}{idle_mb:>9.0f}")
    for r in rows:
        print(
            f"{r['model']:<10}{r['agents']:>11,}{'on' if r['agent_data'] else 'off':>12}"
            f"{r['build_s']:>9.2f}{r['steps_per_s_best']:>9.1f}{r['steps_per_s_median']:>9.1f}"
            f"{r['agent_steps_per_s_best']:>15,.0f}{r['peak_mb']:>9.0f}"
        )


def steps_for(agents: int, quick: bool) -> int:
    """Steps per timed block: about 0.2-1 s of work per block."""
    steps = {1_000: 100, 10_000: 50, 100_000: 20, 1_000_000: 4}.get(agents, 10)
    return max(steps // 4, 2) if quick else steps


def main() -> None:
    """Measure everything, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and runs (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    load_before = os.getloadavg()
    idle_mb = measure("idle")["peak_mb"]
    rows = []
    for size in args.sizes:
        steps = steps_for(size, args.quick)
        rows.append(
            stepping_row("fast", size, False, steps, measure("fast", size, steps, repeats, False))
        )
        if size <= 10_000:
            result = measure("fast", size, steps, repeats, True)
            rows.append(stepping_row("fast", size, True, steps, result))
    for size in (s for s in REFERENCE_SIZES if s in args.sizes):
        steps = max(steps_for(size, args.quick) // 10, 2)
        rows.append(
            stepping_row(
                "reference", size, False, steps, measure("reference", size, steps, repeats)
            )
        )
    print_table(rows, idle_mb)
    speed = {(r["model"], r["agents"], r["agent_data"]): r for r in rows}
    ratios = {
        size: speed[("fast", size, False)]["agent_steps_per_s_median"]
        / speed[("reference", size, False)]["agent_steps_per_s_median"]
        for size in REFERENCE_SIZES
        if ("reference", size, False) in speed and ("fast", size, False) in speed
    }
    for size, ratio in ratios.items():
        print(f"fast / reference agent-steps per second at {size:,} agents (medians): {ratio:.0f}x")
    scale = measure("full_scale", 2 if args.quick else args.repeats)
    median_run = statistics.median(scale["runs_s"])
    print(
        f"100-week 1:1 run ({scale['start_agents']:,} agents, {scale['agents']:,} after the "
        f"release): best {min(scale['runs_s']):.2f} s, median {median_run:.2f} s "
        f"including construction = {60 / median_run:.0f} runs/min on one core; "
        f"peak {scale['peak_mb']:.0f} MB"
    )
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (2 cores)")
    results = {
        "command": "python benchmarks/scale.py" + (" --quick" if args.quick else ""),
        "idle_peak_mb": idle_mb,
        "rows": rows,
        "fast_over_reference": {str(k): v for k, v in ratios.items()},
        "full_scale": scale | {"median_s_per_run": median_run, "runs_per_min": 60 / median_run},
        "load_average": {"before": load_before, "after": load_after},
    }
    out = Path(__file__).with_name("results") / "scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
