"""Run a sweep on local processes or a Dask cluster, in durable chunks that resume.

Layout of an output folder:
    data/chunk-NNNNN.parquet    rows of finished runs (one row per run per recorded step)
    status/chunk-NNNNN.json     the runs a chunk holds, ok or failed (with the error)
    manifest.json               spec, hash, versions, commit, seeds, times, status per run
    summary.csv                 per point: mean and 95% interval of the key outcomes

Each file is written to a temporary name and renamed into place. A chunk counts once
its status file exists (it is written after its data), so a sweep killed at any moment
resumes with exactly the runs that are missing.

Runs are submitted in bounded batches (a few per worker), so a sweep of a million runs
holds a few dozen in memory at a time. A local worker that dies (the OOM killer, a
segfault) breaks the process pool: the pool is rebuilt and the lost runs are run again;
a run that keeps killing its worker is run alone and then recorded as failed. A run that
raises is recorded as failed with its error; ``--retry-failed`` runs failed runs again.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from isk_defection.experiments import folders
from isk_defection.experiments.provenance import provenance
from isk_defection.experiments.spec import Run, SweepSpec, expand, load_spec
from isk_defection.model import DefectionModel
from isk_defection.model.groups import GROUP_NAMES

__all__ = ["load_spec", "read_results", "run_sweep", "simulate_run"]
KEY_OUTCOMES = (
    "isk_strength",
    "defection_rate",
    *(f"{g}_defection_rate" for g in GROUP_NAMES),
)
CHUNK_RUNS = 20  # runs per chunk file
CHUNK_SECONDS = 30.0  # or this long since the last chunk
IN_FLIGHT_PER_WORKER = 4  # runs submitted ahead per worker (bounds memory, keeps them busy)
WORKER_DEATHS = 3  # a run whose worker dies this often (run alone at the end) has failed
CONNECT_SECONDS = 10  # time to reach a Dask scheduler before giving up


def simulate_run(spec: SweepSpec, run: Run) -> list[dict[str, Any]]:
    """One run: the model's outputs at week 0, every ``record_every`` weeks and the last."""
    model = DefectionModel(
        preset=spec.preset,
        rng=run.seed,
        **(expand(spec.fixed | run.values) | {"collect_agent_data": _OFF}),
    )
    meta = {"run": run.run, "point": run.point, "replicate": run.replicate, "seed": run.seed}
    meta |= {"preset": spec.preset} | {k: spec.cell(k, v) for k, v in run.values.items()}
    rows = []
    for step in range(spec.steps + 1):
        if step:
            model.step()
        if step % spec.record_every == 0 or step == spec.steps:
            stats = model.stats
            rows.append(
                meta
                | {"step": step, "date": _date(stats["date"])}
                | {k: stats[k] for k in spec.outputs}
            )
    return rows


def _agent_data_off() -> Any:
    """The registry's 'off' value for ``collect_agent_data`` (False, or 'off' in model v2)."""
    from isk_defection.model.parameters import PARAMETERS

    choices = getattr(PARAMETERS["collect_agent_data"], "choices", ())
    return "off" if "off" in choices else False


_OFF = _agent_data_off()


def _date(value: Any) -> dt.date:
    """A date as a date (Parquet date32), whether the model gives text or a date."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def attempt(spec: SweepSpec, run: Run) -> tuple[int, list[dict[str, Any]], str | None, float]:
    """Run safely: a failure becomes data (its error), never an exception in the engine."""
    started = time.perf_counter()
    try:
        rows, error = simulate_run(spec, run), None
    except Exception as failure:  # noqa: BLE001 — any model error is recorded, not raised
        rows = []
        error = "".join(traceback.format_exception_only(failure)).strip()
    return run.run, rows, error, time.perf_counter() - started


def cores() -> int:
    """The cores this process may run on (fewer than the machine's under taskset or cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _worker_setup() -> None:
    """Worker initializer: leave Ctrl-C to the sweep, and end with the sweep's process.

    SIGINT reaches the whole process group; if workers took it too, each would die with a
    traceback mid-run and the pool could hang while the sweep shuts it down. The sweep
    handles Ctrl-C itself (it stops the workers). A watcher thread ends the worker when
    the sweep's process dies, even by SIGKILL: otherwise an idle worker waits forever for
    work that will not come, holding its memory until someone kills it by hand.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True)
        watch.start()


def _exit_when_ready(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class LocalPool:
    """A forkserver process pool that can be rebuilt when a worker dies.

    Workers start from a clean server that has already imported the model, so a run costs
    no import time and no state leaks between sweeps.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(
                ["isk_defection.model", "isk_defection.experiments.sweep"]
            )
        else:  # Windows: no fork server; spawned workers import the model themselves
            context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_worker_setup
        )

    def submit(self, *args: Any) -> Future:
        """Submit to the current pool."""
        return self.pool.submit(*args)

    def rebuild(self) -> None:
        """Replace a broken pool (a worker died) by a fresh one."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._start()

    def stop(self, now: bool = False) -> None:
        """Shut down; ``now`` (Ctrl-C) drops queued runs and stops busy workers at once."""
        if now:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=not now, cancel_futures=True)


@contextmanager
def executor(workers: int | None, scheduler: str | None, local_cluster: bool) -> Iterator[Any]:
    """Local processes, an existing Dask scheduler, or a throw-away Dask LocalCluster.

    A scheduler that cannot be reached within ``CONNECT_SECONDS`` is refused with one line
    before the output folder is touched.
    """
    if scheduler or local_cluster:
        from dask.distributed import Client, LocalCluster

        cluster = None
        if local_cluster:
            cluster = LocalCluster(
                n_workers=workers or cores(), threads_per_worker=1, dashboard_address=None
            )
        try:
            client = Client(scheduler or cluster, timeout=f"{CONNECT_SECONDS}s")
        except (OSError, ValueError, TypeError) as error:
            if cluster is not None:
                cluster.close()
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"--scheduler: cannot use {scheduler!r} ({reason})") from None
        try:
            yield client.get_executor()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        pool = LocalPool(workers or cores())
        interrupted = False
        try:
            yield pool
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:  # after Ctrl-C, drop the queued runs and stop the busy ones
            pool.stop(now=interrupted)


class ChunkWriter:
    """Buffers finished runs and writes them as atomic data + status chunk files."""

    def __init__(self, out: Path) -> None:
        self.data, self.status = out / "data", out / "status"
        self.data.mkdir(parents=True, exist_ok=True)
        self.status.mkdir(parents=True, exist_ok=True)
        self.number = 1 + max(
            (int(p.stem.split("-")[1]) for p in self.status.glob("*.json")), default=-1
        )
        self.rows: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.since = time.monotonic()

    def add(self, run: int, rows: list[dict[str, Any]], error: str | None, seconds: float) -> None:
        """Keep one run's outcome; flush when the chunk is full or old enough."""
        self.rows += rows
        status = "failed" if error else "ok"
        self.records.append({"run": run, "status": status, "error": error, "seconds": seconds})
        if len(self.records) >= CHUNK_RUNS or time.monotonic() - self.since > CHUNK_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered runs: data first, then the status that makes them count."""
        if not self.records:
            return
        name = f"chunk-{self.number:05d}"
        if self.rows:
            atomic_write(self.data / f"{name}.parquet", pd.DataFrame(self.rows).to_parquet)
        atomic_write(self.status / f"{name}.json", _text(json.dumps(self.records)))
        self.number += 1
        self.rows, self.records, self.since = [], [], time.monotonic()


def _text(content: str):
    return lambda path: Path(path).write_text(content)


def atomic_write(path: Path, write) -> None:
    """Write via a temporary file in the same folder, then rename into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def finished(out: Path) -> dict[int, dict[str, Any]]:
    """Runs recorded in committed chunks; stray files of an interrupted write are removed."""
    records = {}
    committed = set()
    for status in sorted((out / "status").glob("chunk-*.json")):
        committed.add(status.stem)
        for record in json.loads(status.read_text()):
            records[record["run"]] = record
    for stray in [*(out / "data").glob("chunk-*.parquet"), *out.rglob(".*.tmp")]:
        if stray.suffix == ".tmp" or stray.stem not in committed:
            stray.unlink()
    return records


def read_results(out: Path | str) -> pd.DataFrame:
    """Every recorded row of the successful runs of a sweep, sorted by run and step."""
    out = Path(out)
    committed = {p.stem for p in (out / "status").glob("chunk-*.json")}
    parts = [p for p in sorted((out / "data").glob("chunk-*.parquet")) if p.stem in committed]
    if not parts:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame.sort_values(["run", "step"]).reset_index(drop=True)


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool | None = True,
    argv: list[str] | None = None,
) -> pd.DataFrame:
    """Run every planned run not yet recorded in ``out``; return the tidy results.

    The returned frame's ``attrs`` hold ``runs`` (planned), ``ok`` and ``failed`` (the
    manifest has each failed run's error). ``retry_failed`` (with ``resume``) runs the
    failed runs of an earlier attempt again. The engine is reached before the folder is
    touched, so an unreachable scheduler leaves nothing behind.
    """
    out = Path(out)
    if workers is not None and (isinstance(workers, bool) or not 1 <= workers <= 1024):
        raise ValueError(f"--workers: must be an integer in [1, 1024] (got {workers})")
    if retry_failed and not resume:
        raise ValueError("--retry-failed: only with --resume (it re-runs a sweep's failed runs)")
    folders.check(out, "sweep")
    _check_folder(out, spec, resume)
    _check_memory(spec, workers or cores(), local=not (scheduler or local_cluster))
    with executor(workers, scheduler, local_cluster) as pool, folders.claim(out, "sweep"):
        _check_folder(out, spec, resume)  # again, now that the folder is ours
        engine = _engine_name(workers, scheduler, local_cluster)
        return _run_pending(spec, out, pool, engine, resume, retry_failed, progress, argv)


def _check_memory(spec: SweepSpec, workers: int, local: bool) -> None:
    """Refuse a sweep whose largest run, once per local worker, cannot fit in memory."""
    from isk_defection.experiments.run import MODEL_BYTES_PER_AGENT, _as_dict, available_memory
    from isk_defection.model.parameters import resolve
    from isk_defection.model.presets import preset

    if not local or not spec.points:
        return
    default = int(_as_dict(resolve(preset(spec.preset) | expand(spec.fixed)))["population"])
    agents = max(int(point.get("population", default)) for point in spec.points)
    need, have = agents * MODEL_BYTES_PER_AGENT * workers, available_memory()
    if have is not None and need > 0.8 * have:
        raise ValueError(
            f"--workers: {workers} runs of {agents:,} agents at once need about "
            f"{need / 1e9:,.1f} GB, {have / 1e9:,.1f} GB available; use fewer --workers"
        )


def _engine_name(workers: int | None, scheduler: str | None, local_cluster: bool) -> str:
    processes = f"{workers or cores()} processes"
    return scheduler or (f"Dask LocalCluster, {processes}" if local_cluster else processes)


def _run_pending(
    spec: SweepSpec,
    out: Path,
    pool: Any,
    engine: str,
    resume: bool,
    retry_failed: bool,
    progress: bool | None,
    argv: list[str] | None,
) -> pd.DataFrame:
    done = finished(out) if resume else {}
    if retry_failed:
        done = {k: v for k, v in done.items() if v["status"] == "ok"}
    planned = len(spec.points) * spec.replicates
    manifest = _manifest(spec, done, out, argv) | {"engine": engine}
    atomic_write(out / "manifest.json", _text(json.dumps(manifest, indent=2)))
    writer = ChunkWriter(out)
    failures = sum(r["status"] == "failed" for r in done.values())
    bar = tqdm(
        total=planned,
        initial=len(done),
        disable=None if progress is None else not progress,
        unit="run",
        desc=spec.name,
    )
    bar.set_postfix(failed=failures)

    def record(run: int, rows: list, error: str | None, seconds: float) -> None:
        nonlocal failures
        writer.add(run, rows, error, seconds)
        failures += error is not None
        bar.update()
        bar.set_postfix(failed=failures)

    try:
        pending = (r for r in spec.runs() if r.run not in done)
        _dispatch(pool, spec.for_workers(), pending, record)
    finally:
        writer.flush()
        bar.close()
    results = read_results(out)
    records = finished(out)
    manifest |= {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "runs": [_run_record(r, records.get(r.run)) for r in spec.runs()],
    }
    atomic_write(out / "manifest.json", _text(json.dumps(manifest, indent=2)))
    summary = summarise(results, spec, records)
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    statuses = [r["status"] for r in records.values()]
    results.attrs.update(
        runs=planned, ok=statuses.count("ok"), failed=statuses.count("failed"), folder=str(out)
    )
    return results


def _dispatch(pool: Any, slim: SweepSpec, pending: Iterator[Run], record) -> None:
    """Run ``pending`` with a bounded number in flight; survive dying local workers.

    When a local worker dies, every run in flight on the pool is lost (BrokenProcessPool):
    the pool is rebuilt and those runs go back in the queue. A run lost twice is kept
    aside and finally run alone, so that a run that kills its worker every time is
    recorded as failed without charging the runs that happened to share the pool.
    """
    workers = getattr(pool, "workers", None)
    limit = IN_FLIGHT_PER_WORKER * workers if workers else _dask_slots(pool)
    retry: deque[Run] = deque()
    suspects: list[Run] = []
    deaths: dict[int, int] = {}
    flying: dict[Future, Run] = {}

    def top_up() -> None:
        while len(flying) < limit:
            run = retry.popleft() if retry else next(pending, None)
            if run is None:
                return
            flying[pool.submit(attempt, slim, run)] = run

    top_up()
    while flying:
        finished_now, _ = wait(flying, return_when=FIRST_COMPLETED)
        broken = False
        for future in finished_now:
            run = flying.pop(future)
            try:
                record(*future.result())
            except BrokenProcessPool:
                broken = True
                deaths[run.run] = deaths.get(run.run, 0) + 1
                (suspects if deaths[run.run] >= 2 else retry).append(run)
            except Exception as failure:  # noqa: BLE001 — e.g. Dask's KilledWorker: data
                error = "".join(traceback.format_exception_only(failure)).strip()
                record(run.run, [], f"the engine lost this run: {error}", 0.0)
        if broken:
            for run in list(flying.values()):  # lost with the pool as well
                deaths[run.run] = deaths.get(run.run, 0) + 1
                (suspects if deaths[run.run] >= 2 else retry).append(run)
            flying.clear()
            pool.rebuild()
        top_up()
    for run in suspects:  # alone now: a death can only be this run's doing
        while True:
            try:
                record(*pool.submit(attempt, slim, run).result())
                break
            except BrokenProcessPool:
                pool.rebuild()
                deaths[run.run] += 1
                if deaths[run.run] >= WORKER_DEATHS:
                    error = (
                        f"the worker process died {deaths[run.run]} times running this run "
                        "(killed, out of memory, or crashed)"
                    )
                    record(run.run, [], error, 0.0)
                    break


def _dask_slots(pool: Any) -> int:
    """Runs to keep in flight on a Dask cluster: a few per worker thread."""
    client = getattr(pool, "_client", None)
    try:
        threads = sum(client.nthreads().values()) if client is not None else 0
    except Exception:  # noqa: BLE001 — only a sizing hint
        threads = 0
    return IN_FLIGHT_PER_WORKER * max(threads, cores())


def _check_folder(out: Path, spec: SweepSpec, resume: bool) -> None:
    manifest = out / "manifest.json"
    if not manifest.exists():
        return
    earlier = json.loads(manifest.read_text()).get("hash")
    if earlier != spec.digest:
        raise ValueError(
            f"--out: {out} holds a different sweep (hash {earlier}); use another folder"
        )
    if not resume:
        raise ValueError(f"--out: {out} already holds this sweep; add --resume to continue it")


def _manifest(spec: SweepSpec, done: dict, out: Path, argv: list[str] | None) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    previous = out / "manifest.json"  # only ever this sweep's: see _check_folder
    earlier = json.loads(previous.read_text()) if previous.exists() else {}
    resumed = earlier.get("resumed", []) + ([{"at": now, "runs_done": len(done)}] if done else [])
    origin = provenance(argv)
    return {
        "name": spec.name,
        "hash": spec.digest,
        "spec": spec.source,
        "preset": spec.preset,
        "varied": spec.varied,
        "points": len(spec.points),
        "replicates": spec.replicates,
        "seeds": [r.seed for r in spec.runs()],
        "provenance": origin,
        "versions": origin["versions"],
        "commit": origin["commit"],
        "uncommitted_changes": origin["uncommitted_changes"],
        "started": earlier.get("started", now),
        "resumed": resumed,
        "folder": str(out),
    }


def _run_record(run: Run, record: dict[str, Any] | None) -> dict[str, Any]:
    base = {"run": run.run, "point": run.point, "replicate": run.replicate, "seed": run.seed}
    if record is None:
        return base | {"status": "not run"}
    return base | {k: record[k] for k in ("status", "error", "seconds")}


def summarise(
    results: pd.DataFrame, spec: SweepSpec, records: dict[int, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Per point, at the last step: runs that succeeded and failed, mean and 95% interval.

    Every point of the design has a row, so a point whose runs all failed shows as
    ``runs_ok = 0`` with empty outcomes instead of vanishing. Intervals are percentile
    bootstrap intervals of the mean (``scipy.stats.bootstrap``), so they stay within the
    observed values: a rate's interval stays within [0, 1].
    """
    outcomes = [c for c in KEY_OUTCOMES if c in spec.outputs]
    failed = dict.fromkeys(range(len(spec.points)), 0)
    if records:
        point_of = {r.run: r.point for r in spec.runs()}
        for run, record in records.items():
            if record["status"] == "failed" and run in point_of:
                failed[point_of[run]] += 1
    final = results[results["step"] == spec.steps] if not results.empty else results
    groups = dict(iter(final.groupby("point"))) if not final.empty else {}
    rows = []
    for point, values in enumerate(spec.points):
        group = groups.get(point)
        row = {"point": point} | {k: spec.cell(k, v) for k, v in values.items()}
        row |= {"runs_ok": 0 if group is None else len(group), "runs_failed": failed[point]}
        for outcome in outcomes:
            data = np.array([]) if group is None else group[outcome].to_numpy(float)
            row |= mean_interval(outcome, data, seed=spec.seed + point)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_interval(name: str, values: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean and 95% percentile-bootstrap interval of the mean (NaN values left out)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        nan = float("nan")
        return {f"{name}_mean": nan, f"{name}_low": nan, f"{name}_high": nan}
    mean = float(values.mean())
    if len(values) < 2 or np.ptp(values) == 0:
        return {f"{name}_mean": mean, f"{name}_low": mean, f"{name}_high": mean}
    interval = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=1999,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    low, high = float(interval.low), float(interval.high)
    return {f"{name}_mean": mean, f"{name}_low": min(low, mean), f"{name}_high": max(high, mean)}
