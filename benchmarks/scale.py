"""Scale benchmark: the compiled kernel beside the previous NumPy kernel, from 2,000 to
1,000,000 agents, calibration-size runs per CPU-second, 1:1 runs and the compile time.

Usage:  python benchmarks/scale.py [--quick] [--repeats 5] [--sizes 2000 100000 ...]

The previous kernel (vectorised NumPy, commit ``NUMPY_KERNEL``) is extracted from git
into a temporary folder and imported in place of this tree's ``model/`` and ``agents/``,
so both engines are measured in the same benchmark run, alternately, on the same
machine and load. Every measurement runs in a fresh interpreter, so its peak memory
(ru_maxrss, including Python and the imports) is its own. Times are CPU seconds of that
process (``time.process_time``: other processes on a shared machine slow it less than
they slow the wall clock), steps timed after one warm-up step in ``--repeats`` blocks;
the table gives the best and the median block. The load average is printed and saved.
Writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMPY_KERNEL = "94d1392dbbaa68812ebd208090b48de835562fc7"  # the last NumPy-kernel commit
SIZES = (2_000, 100_000, 1_000_000)
CALIBRATION = dict(population=2_000, weeks=230)  # baseline, agent records off
ENGINES = ("numba", "numpy")


def peak_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_blocks(model, steps: int, repeats: int) -> list[float]:
    """CPU seconds per block of ``steps`` steps, after one warm-up step."""
    model.step()
    blocks = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(steps):
            model.step()
        blocks.append(time.process_time() - start)
    return blocks


def stepping(population: int, steps: int, repeats: int) -> dict:
    """Build time and step times at ``population`` agents (agent records off)."""
    from isk_defection.model import DefectionModel

    start = time.process_time()
    model = DefectionModel(population=population, rng=1, collect_agent_data=False)
    build = time.process_time() - start
    return {"build_s": build, "blocks_s": timed_blocks(model, steps, repeats)}


def calibration_runs(runs: int, columns: list[str], select: bool) -> dict:
    """CPU seconds per calibration-size run, construction to the patterns' columns.

    ``select``: the model records only ``columns`` (the compiled kernel's ``columns=``);
    otherwise it records every column and the columns are read from its frame.
    """
    from isk_defection.model import DefectionModel

    seconds = []
    for seed in range(runs):
        start = time.process_time()
        kept = {"columns": columns} if select else {}
        model = DefectionModel(
            rng=seed, population=CALIBRATION["population"], collect_agent_data=False, **kept
        )
        for _ in range(CALIBRATION["weeks"]):
            model.step()
        frame = model.datacollector.get_model_vars_dataframe()[columns]
        seconds.append(time.process_time() - start)
    return {"runs_s": seconds, "rows": len(frame)}


def full_scale(runs: int, weeks: int) -> dict:
    """CPU and wall seconds per whole run of the full_scale preset, construction included."""
    from isk_defection.model import DefectionModel

    cpu, wall = [], []
    for seed in range(runs):
        start, clock = time.process_time(), time.perf_counter()
        model = DefectionModel(preset="full_scale", rng=seed)
        for _ in range(weeks):
            model.step()
        cpu.append(time.process_time() - start)
        wall.append(time.perf_counter() - clock)
    return {"cpu_s": cpu, "wall_s": wall, "agents": model.population.n}


def first_call() -> dict:
    """Seconds from import to the end of a first step (compiling or loading the cache)."""
    start = time.perf_counter()
    from isk_defection.model import DefectionModel

    imported = time.perf_counter()
    model = DefectionModel(population=200, rng=1)
    model.step()
    return {"import_s": imported - start, "first_step_s": time.perf_counter() - imported}


def numpy_kernel_tree(folder: Path) -> Path:
    """The previous kernel's model/ and agents/ as an ``isk_defection`` package in ``folder``."""
    package = folder / "isk_defection"
    package.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", NUMPY_KERNEL, "model", "agents"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    (package / "__init__.py").write_text("")
    return folder


def measure(kind: str, *args, engine: str = "numba", env: dict | None = None) -> dict:
    """Run ``kind(*args)`` in a fresh interpreter of ``engine``; add its peak memory."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from benchmarks.scale import {kind}, peak_mb; r = {kind}(*{args!r}); "
        "r['peak_mb'] = peak_mb(); print(json.dumps(r))"
    )
    environment = os.environ | (env or {})
    if engine == "numpy":
        environment["PYTHONPATH"] = str(OLD_TREE)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def stepping_row(engine: str, agents: int, steps: int, result: dict) -> dict:
    """One table row: steps per CPU-second (best and median block)."""
    rates = [steps / s for s in result["blocks_s"]]
    return {
        "engine": engine,
        "agents": agents,
        "build_s": result["build_s"],
        "steps_per_s_best": max(rates),
        "steps_per_s_median": statistics.median(rates),
        "ms_per_step_median": 1_000 / statistics.median(rates),
        "peak_mb": result["peak_mb"],
        "blocks_s": result["blocks_s"],
        "steps_per_block": steps,
    }


def steps_for(agents: int, quick: bool) -> int:
    """Steps per timed block: about 0.2-1 s of work per block."""
    steps = {2_000: 200, 100_000: 10, 1_000_000: 2}.get(agents, 10)
    return max(steps // 4, 2) if quick else steps


def pattern_columns() -> list[str]:
    """The columns the calibration's patterns read (experiments/calibration/patterns.py)."""
    from isk_defection.experiments.calibration import patterns

    return ["week", *patterns.COLUMNS]


OLD_TREE = Path()


def main() -> None:
    """Measure both engines, print the comparison, write the JSON."""
    global OLD_TREE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and runs (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        OLD_TREE = numpy_kernel_tree(Path(folder))
        results = run_all(args.sizes, repeats, args.quick)
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["command"] = "python benchmarks/scale.py" + (" --quick" if args.quick else "")
    print(f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (2 cores)")
    out = Path(__file__).with_name("results") / "scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def run_all(sizes: list[int], repeats: int, quick: bool) -> dict:
    """Every measurement, engines alternating; prints as it goes."""
    with tempfile.TemporaryDirectory() as cache:  # an empty numba cache: a first compile
        compile_run = measure("first_call", env={"NUMBA_CACHE_DIR": cache})
        cached_run = measure("first_call", env={"NUMBA_CACHE_DIR": cache})
    print(
        f"first call (import, then build and step 200 agents): compiling "
        f"{compile_run['first_step_s']:.1f} s, from the cache {cached_run['first_step_s']:.2f} s"
    )
    rows = []
    for size in sizes:
        steps = steps_for(size, quick)
        for engine in ENGINES if size <= 100_000 else ENGINES[:1]:
            row = stepping_row(
                engine, size, steps, measure("stepping", size, steps, repeats, engine=engine)
            )
            rows.append(row)
            print(
                f"{engine:<6}{size:>11,} agents: {row['steps_per_s_median']:>9.1f} steps/s "
                f"(best {row['steps_per_s_best']:.1f}), {row['ms_per_step_median']:.3f} ms/step, "
                f"peak {row['peak_mb']:.0f} MB"
            )
    speedups = {str(size): speed(rows, size) for size in sizes if size <= 100_000}
    for size, ratio in speedups.items():
        print(f"numba / numpy steps per CPU-second at {int(size):,} agents (medians): {ratio:.1f}x")
    columns, runs = pattern_columns(), 3 if quick else 10
    calibration = {
        "numba": measure("calibration_runs", runs, columns, True),
        "numpy": measure("calibration_runs", runs, columns, False, engine="numpy"),
    }
    for engine, result in calibration.items():
        result["runs_per_cpu_s"] = 1 / statistics.median(result["runs_s"])
        print(
            f"{engine:<6} calibration-size run (2,000 agents, 230 weeks, {len(columns)} columns): "
            f"{statistics.median(result['runs_s']):.3f} CPU-s = "
            f"{result['runs_per_cpu_s']:.1f} runs per CPU-second"
        )
    scale = measure("full_scale", 1 if quick else 3, 230)
    print(
        f"230-week 1:1 run ({scale['agents']:,} agents at the end): median "
        f"{statistics.median(scale['cpu_s']):.2f} CPU-s, {statistics.median(scale['wall_s']):.2f} "
        f"s wall, construction included; peak {scale['peak_mb']:.0f} MB"
    )
    return {
        "numpy_kernel_commit": NUMPY_KERNEL,
        "first_call": {"compiling": compile_run, "cached": cached_run},
        "rows": rows,
        "numba_over_numpy_steps_per_s": speedups,
        "calibration": calibration
        | {
            "ratio": calibration["numba"]["runs_per_cpu_s"] / calibration["numpy"]["runs_per_cpu_s"]
        },
        "full_scale_230_weeks": scale,
    }


def speed(rows: list[dict], size: int) -> float:
    """The compiled kernel's median steps per CPU-second over the NumPy kernel's."""
    rate = {r["engine"]: r["steps_per_s_median"] for r in rows if r["agents"] == size}
    return rate["numba"] / rate["numpy"]


if __name__ == "__main__":
    main()
