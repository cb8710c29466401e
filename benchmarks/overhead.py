"""Engine overhead: CPU time outside the model under the sweep engine, pyabc and the optimiser.

Usage:  python -m benchmarks.overhead [--baseline REV] [--cases sweep abc optimize]
        [--runs 60] [--particles 32] [--generations 3] [--workers 2]

Each case runs in a fresh interpreter (so it pays its own start, imports and fork server,
as a user's command does) with two local workers:

* ``sweep``: ``run_sweep`` of ``--runs`` baseline replicates, 230 weeks, 2,000 agents;
* ``abc``: ``experiments/calibration/abc.calibrate`` (ABC-SMC on pyabc, the seeded
  sampler on the local pool) of ``--particles`` particles for ``--generations``
  generations, with the inferred parameters and kernel of the committed screen;
* ``optimize``: ``defection optimize experiments/specs/optimize_example.toml --quick``
  (its ``optimize`` function: search, stress test, report and figures).

With ``--baseline REV`` each case also runs, just before, on the engine files
(``ENGINE_FILES``) as they were at REV and everything else as it is now (the same
model): before and after measured minutes apart, under the same load.

Total CPU is every process of the case: the main process, the fork server and each
worker (``psutil`` over the process tree; the parts below add up to it, "other" is the
rest). Model time is the CPU time spent inside ``DefectionModel`` (building it and its
steps, Mesa's scheduling included), metered in every process by wrapping the class.
The rest, by where it is spent:

* ``start``: the main process's interpreter start and imports, before the engine is called;
* ``fork server``: its preload of the model (once per command);
* ``worker start``: each worker's CPU from its fork to its first task (imports);
* ``kernel load``: each process's first model run beyond a typical one (numba loads the
  compiled kernel from its cache);
* ``in the call``: the simulate call's own work outside the model (pattern statistics,
  measures, rows);
* ``library per particle``: pyabc's work around each simulation in the worker (proposal,
  prior and kernel densities, distance, unpickling the simulate function);
* ``worker IPC``: a worker's CPU outside its tasks (unpickling tasks, pickling results);
* ``setup``: manifests, provenance, the memory check, pyabc's new database;
* ``main engine``: the main process while the engine runs (sampler, pyabc's generation
  bookkeeping, transitions and database; pymoo, checkpoints, journal; sweep chunks);
  the database writes are also shown on their own;
* ``assembly``: results after the runs (summary, posterior table; report and figures).

``overhead`` is (total - model) / model. ``per-simulation overhead`` leaves out what a
command pays once whatever its size (start, fork server, worker start, kernel loads,
setup, assembly); ``overhead at full size`` adds those once-per-command costs back, spread
over a full-size command: the full calibration's budget (``abc.FULL``), the example
spec's search and stress test without ``--quick``, a sweep of 10,000 runs. Times are CPU
seconds (a shared machine slows them less than it slows the clock); the load average is
recorded beside each case. Prints a Markdown table and writes
benchmarks/results/overhead.json (atomically).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "overhead.json"
METER_DIR = "ISK_OVERHEAD_METER_DIR"  # where every metered process writes its totals
CASE = "ISK_OVERHEAD_CASE"  # the case a worker serves
CASES = ("sweep", "abc", "optimize")
OPTIMIZE_SPEC = ROOT / "experiments" / "specs" / "optimize_example.toml"
AGENTS = 2_000
WEEKS = 230
ENGINE_FILES = (  # what --baseline takes from the older commit
    "experiments/calibration/abc.py",
    "experiments/policy_search/evaluate.py",
    "experiments/policy_search/robust.py",
    "experiments/sweep.py",
)

# ------------------------------------------------------------------ the meter (any process)

_SPANS: dict[str, float] = {}  # label -> CPU seconds inside it (inclusive)
_RUNS: list[float] = []  # model CPU seconds of each model built in this process
_CALLS: dict[str, int] = {}


def _cpu() -> float:
    return time.process_time()


def _add(label: str, seconds: float) -> None:
    _SPANS[label] = _SPANS.get(label, 0.0) + seconds
    _CALLS[label] = _CALLS.get(label, 0) + 1


def metered(label: str, function: Callable) -> Callable:
    """``function`` with its CPU time added to ``label`` (same name: it pickles as before)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = _cpu()
        try:
            return function(*args, **kwargs)
        finally:
            _add(label, _cpu() - started)

    wrapper.__wrapped_by_meter__ = True  # type: ignore[attr-defined]
    return wrapper


def patch(owner: Any, name: str, label: str) -> None:
    """Meter ``owner.name`` (a module function or a class method) under ``label``."""
    function = getattr(owner, name)
    if not getattr(function, "__wrapped_by_meter__", False):
        setattr(owner, name, metered(label, function))


def meter_model() -> None:
    """Meter every ``DefectionModel``: its construction and each step (Mesa's wrapper too)."""
    from isk_defection.model import DefectionModel

    if getattr(DefectionModel.__init__, "__wrapped_by_meter__", False):
        return
    build = DefectionModel.__init__

    @functools.wraps(build)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        started = _cpu()
        build(self, *args, **kwargs)
        index = len(_RUNS)
        _RUNS.append(_cpu() - started)
        step = self.step  # Mesa's wrapped step (set in its __init__)

        def timed_step() -> None:
            begun = _cpu()
            step()
            _RUNS[index] += _cpu() - begun

        self.step = timed_step

    init.__wrapped_by_meter__ = True  # type: ignore[attr-defined]
    DefectionModel.__init__ = init  # type: ignore[method-assign]


def worker_meters() -> None:
    """The meters a worker needs: the model, and the task functions of every case."""
    from isk_defection.experiments import sweep
    from isk_defection.experiments.calibration import abc
    from isk_defection.experiments.policy_search import evaluate

    meter_model()
    if os.environ.get(CASE) == "abc":  # unpickling pyabc's objects imports it: at the start
        import pyabc  # noqa: F401
    patch(sweep, "attempt", "task")
    patch(abc, "_one_particle", "task")
    patch(abc, "simulate_patterns", "call")
    patch(evaluate, "run_task", "task")


def flush() -> None:
    """Write this process's totals to the meter folder (one file per process)."""
    folder = os.environ.get(METER_DIR)
    if not folder:
        return
    record = {
        "pid": os.getpid(),
        "cpu": _cpu(),
        "runs": _RUNS,
        "spans": _SPANS,
        "calls": _CALLS,
    }
    path = Path(folder) / f"process-{os.getpid()}.json"
    path.write_text(json.dumps(record))


def metered_worker_setup() -> None:
    """The pool's worker initializer, then the meters; totals written when the worker ends."""
    from isk_defection.experiments import sweep

    original = sweep._worker_setup  # a worker's own copy of the module: not replaced
    (_ORIGINAL_SETUP if original is metered_worker_setup else original)()
    worker_meters()
    _SPANS["worker start"] = _cpu()  # since the fork: the initializer and the imports
    multiprocessing.util.Finalize(None, flush, exitpriority=100)


_ORIGINAL_SETUP: Callable[[], None] = lambda: None  # noqa: E731 - set by install()


def install(folder: Path) -> None:
    """Meter this process and every local worker the engines start from now on."""
    global _ORIGINAL_SETUP
    from isk_defection.experiments import sweep

    os.environ[METER_DIR] = str(folder)
    if sweep._worker_setup is not metered_worker_setup:
        _ORIGINAL_SETUP = sweep._worker_setup
        sweep._worker_setup = metered_worker_setup
    meter_model()


# ------------------------------------------------------------------ process CPU


def tree_cpu() -> dict[str, float]:
    """CPU of this process, its reaped children and every live descendant (psutil)."""
    import psutil

    me = psutil.Process()
    own = me.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    parts = {"main": own.user + own.system}
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
        parts[f"{child.pid}"] = times.user + times.system
    return {"total": total} | parts


def fork_server_pid() -> int | None:
    """The pid of multiprocessing's fork server, if this process started one."""
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)


# ------------------------------------------------------------------ the cases


def run_case_sweep(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A sweep of ``runs`` baseline replicates (the sweep benchmark's design, 230 weeks)."""
    from isk_defection.experiments import sweep
    from isk_defection.experiments.spec import load_spec

    spec = load_spec(
        {
            "sweep": {
                "name": "overhead",
                "steps": WEEKS,
                "replicates": args.runs,
                "seed": 1,
                "record_every": 4,
            },
            "fixed": {"population": AGENTS},
        }
    )
    patch(sweep.ChunkWriter, "flush", "database")
    patch(sweep, "provenance", "setup")
    patch(sweep, "_check_memory", "setup")
    patch(sweep, "summarise", "assembly")
    patch(sweep, "read_results", "assembly")
    mark = _cpu()
    frame = sweep.run_sweep(spec, out / "sweep", workers=args.workers, progress=False)
    return {
        "simulations": int(frame.attrs["ok"]),
        "start": mark,
        "engine_main": _cpu() - mark,
        "full_size": 10_000,  # a large sweep
        "code": sweep.__file__,
    }


def run_case_abc(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """ABC-SMC through ``abc.calibrate`` on the local pool (seeded sampler)."""
    import pyabc  # noqa: F401 - imported before the engine: part of the start

    from isk_defection.experiments.calibration import abc, screen
    from isk_defection.experiments.calibration.priors import PRIORS

    kept = screen.load(abc.POSTERIOR.parent) or {}
    inferred = kept.get("inferred") or sorted(PRIORS)
    kernel = kept.get("kernel", inferred)
    budget = abc.Budget(
        particles=args.particles,
        generations=args.generations,
        simulations=10 * args.particles * args.generations,
        minutes=60,
    )
    history_class = pyabc.storage.History
    for name in ("append_population", "store_initial_data", "store_pre_population", "done",
                 "update_after_calibration"):  # fmt: skip
        if hasattr(history_class, name):
            patch(history_class, name, "database")
    patch(abc, "summarise", "assembly")
    patch(pyabc.ABCSMC, "new", "setup")
    mark = _cpu()
    fit = abc.calibrate(
        out / "abc", inferred, budget, kernel=kernel, workers=args.workers, progress=False, seed=1
    )
    return {
        "simulations": int(fit["simulations"]),
        "start": mark,
        "engine_main": _cpu() - mark,
        "generations": len(fit["generations"]),
        "particles": args.particles,
        "inferred": len(inferred),
        "full_size": abc.FULL.simulations,  # the full calibration's budget
        "code": abc.__file__,
    }


def run_case_optimize(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``defection optimize experiments/specs/optimize_example.toml --quick``."""
    import pymoo  # noqa: F401 - imported before the engine: part of the start

    from isk_defection.experiments import optimize as command
    from isk_defection.experiments.policy_search import evaluate, search
    from isk_defection.experiments.spec import load_optimize_spec

    spec = load_optimize_spec(OPTIMIZE_SPEC, quick=True)
    from isk_defection.experiments import provenance

    patch(command, "_write_outputs", "assembly")
    patch(provenance, "provenance", "setup")
    patch(search, "save_checkpoint", "database")
    mark = _cpu()
    outcome = command.optimize(spec, out / "optimize", workers=args.workers, progress=False)
    full = load_optimize_spec(OPTIMIZE_SPEC)  # without --quick: the most runs it may make
    references = len(full.references)
    searched = full.scenarios * (references + full.population * full.generations)
    stress = (full.pareto_max + references) * full.stress_draws * full.stress_seeds
    return {
        "simulations": int(outcome.runs),
        "start": mark,
        "engine_main": _cpu() - mark,
        "full_size": searched + stress,
        "code": evaluate.__file__,
    }


RUNNERS = {"sweep": run_case_sweep, "abc": run_case_abc, "optimize": run_case_optimize}


def case(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in this process (a fresh interpreter) and account for its CPU."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        meters = Path(folder) / "meters"
        meters.mkdir()
        os.environ[CASE] = name
        install(meters)
        figures = RUNNERS[name](Path(folder), args)
        server = fork_server_pid()
        server_cpu = 0.0
        tree = tree_cpu()
        if server is not None:
            import psutil

            times = psutil.Process(server).cpu_times()
            server_cpu = times.user + times.system
        flush()
        processes = [json.loads(p.read_text()) for p in sorted(meters.glob("process-*.json"))]
    main_pid = os.getpid()
    workers = [p for p in processes if p["pid"] != main_pid]
    main = next(p for p in processes if p["pid"] == main_pid)
    return account(name, figures, main, workers, server_cpu, tree, load_before)


def account(
    name: str,
    figures: dict[str, Any],
    main: dict[str, Any],
    workers: list[dict[str, Any]],
    server_cpu: float,
    tree: dict[str, float],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    """The breakdown of one case's CPU seconds."""
    runs = [r for p in [main, *workers] for r in p["runs"]]
    typical = statistics.median(runs) if runs else 0.0
    kernel_load = sum(
        max(p["runs"][0] - typical, 0.0) for p in [main, *workers] if len(p["runs"]) > 0
    )
    model = sum(runs) - kernel_load

    def span(process: dict[str, Any], label: str) -> float:
        return float(process["spans"].get(label, 0.0))

    worker_cpu = sum(p["cpu"] for p in workers)
    worker_start = sum(span(p, "worker start") for p in workers)
    task = sum(span(p, "task") for p in workers)
    call = sum(span(p, "call") for p in workers)
    worker_model = sum(sum(p["runs"]) for p in workers)
    if call:  # abc: the simulate call inside pyabc's per-particle work
        in_call, library = call - worker_model, task - call
    else:
        in_call, library = task - worker_model, 0.0
    main_model = sum(main["runs"])
    assembly = span(main, "assembly")
    database = span(main, "database")
    setup = span(main, "setup")
    start = figures.pop("start")  # the main process's start and imports, before the engine
    engine_main = figures.pop("engine_main") - assembly - setup - main_model
    parts = {
        "model": model,
        "start": start,
        "fork server": server_cpu,
        "worker start": worker_start,
        "kernel load": kernel_load,
        "in the call": in_call,
        "library per particle": library,
        "worker IPC": worker_cpu - worker_start - task,
        "setup": setup,
        "main engine": engine_main,
        "database": database,  # inside "main engine"
        "assembly": assembly,
    }
    summed = sum(v for k, v in parts.items() if k != "database")
    main_other = tree["main"] - start - setup - engine_main - assembly - main_model
    parts["other"] = max(tree["total"] - summed, 0.0)
    once = start + server_cpu + worker_start + kernel_load + setup + assembly
    total = tree["total"]
    simulations = figures["simulations"]
    return {
        "case": name,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "simulations": simulations,
        "model_cpu_per_simulation": model / simulations if simulations else float("nan"),
        "total_cpu": total,
        "parts_sum": summed,
        "main_unaccounted": main_other,
        "parts": parts,
        "overhead": (total - model) / model,
        "per_simulation_overhead": (total - once - model) / model,
        "once": once,
        "overhead_at_full_size": (total - once - model) / model
        + once / (figures["full_size"] * model / simulations),
    } | figures


# ------------------------------------------------------------------ before and after


def overlay(rev: str, folder: Path) -> Path:
    """A tree that is this one but for ``ENGINE_FILES`` as they were at ``rev``.

    ``isk_defection`` found first on ``PYTHONPATH``: ``model/``, ``agents/`` and ``viz/``
    are this tree's own (the same compiled kernel, its numba cache included), ``experiments/``
    a copy with the engine files of ``rev``. Both codes then run the same model, on
    the same machine, minutes apart.
    """
    package = folder / "isk_defection"
    package.mkdir(parents=True)
    for name in ("model", "agents", "viz"):
        (package / name).symlink_to(ROOT / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "experiments", package / "experiments", ignore=ignore)
    for path in ENGINE_FILES:
        old = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        (package / path).write_text(old.stdout)
    return folder


def run_child(name: str, args: argparse.Namespace, tree: Path | None) -> dict[str, Any]:
    """One case in a fresh interpreter (on ``tree`` if given); its figures."""
    command = [sys.executable, "-m", "benchmarks.overhead", "--case", name]
    command += ["--runs", str(args.runs), "--particles", str(args.particles)]
    command += ["--generations", str(args.generations), "--workers", str(args.workers)]
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"case {name} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["reaped_children_cpu"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    return result


# ------------------------------------------------------------------ the table


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown table: one column per case, CPU seconds and shares of model time."""
    labels = list(results[0]["parts"])
    lines = [
        "| CPU seconds (share of model time) | " + " | ".join(r["label"] for r in results) + " |",
        "| --- |" + " ---: |" * len(results),
    ]

    def cell(value: float, model: float) -> str:
        return f"{value:.2f} ({value / model:.0%})"

    lines.append("| simulations | " + " | ".join(str(r["simulations"]) for r in results) + " |")
    for label in labels:
        name = "&nbsp;&nbsp;of which database" if label == "database" else label
        lines.append(
            f"| {name} | "
            + " | ".join(cell(r["parts"][label], r["parts"]["model"]) for r in results)
            + " |"
        )
    rows = {
        "total (process tree)": lambda r: f"{r['total_cpu']:.2f}",
        "model CPU per simulation": lambda r: f"{r['model_cpu_per_simulation'] * 1000:.1f} ms",
        "**overhead** (total - model) / model": lambda r: f"{r['overhead']:.0%}",
        "**per-simulation overhead** (without once-per-command)": lambda r: (
            f"{r['per_simulation_overhead']:.0%}"
        ),
        "overhead at full size (simulations)": lambda r: (
            f"{r['overhead_at_full_size']:.0%} ({r['full_size']:,})"
        ),
        "load before / after (1 min)": lambda r: (
            f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}"
        ),
    }
    for label, text in rows.items():
        lines.append(f"| {label} | " + " | ".join(text(r) for r in results) + " |")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` by atomic rename (a kill leaves the old file or the new one)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2))
    os.replace(temporary, path)


def main() -> None:
    """Run the cases (each in a fresh interpreter), print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--runs", type=int, default=60, help="sweep runs [60]")
    parser.add_argument("--particles", type=int, default=32, help="ABC particles [32]")
    parser.add_argument("--generations", type=int, default=3, help="ABC generations [3]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the engine files as they were at REV, each case just before",
    )
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # a child's case
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file [%(default)s]")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args)))
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        tree = overlay(args.baseline, Path(folder)) if args.baseline else None
        for name in args.cases:
            for label, where in ([(f"{name} @ {args.baseline}", tree)] if tree else []) + [
                (name, None)
            ]:
                result = run_child(name, args, where) | {"label": label}
                results.append(result)
                print(f"{label}: overhead {result['overhead']:.0%}", file=sys.stderr)
    text = table(results)
    print(text)
    from isk_defection.experiments.provenance import git_state, package_version

    payload = {
        "command": "python -m benchmarks.overhead " + " ".join(sys.argv[1:]),
        "version": package_version(),
        "commit": git_state().get("commit"),
        "cores": os.cpu_count(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "baseline": args.baseline,
        "engine_files": list(ENGINE_FILES),
        "cases": results,
        "table": text,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, payload)


if __name__ == "__main__":
    from benchmarks.overhead import main as run  # this module by its name: workers import it

    run()
