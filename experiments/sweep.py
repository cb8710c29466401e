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
import multiprocessing.context
import os
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from isk_defection.experiments import folders
from isk_defection.experiments.lifeline import die_with_parent
from isk_defection.experiments.memory import check_need
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
SUSPECT_DEATHS = 2  # a run lost this often with the pool runs alone from then on
SOLO_DEATHS = 3  # a run whose worker dies this often while it runs alone has failed
CONNECT_SECONDS = 10  # time to reach a Dask scheduler before giving up
SUBMIT_TRIES = 3  # fresh pools tried for one submission before it fails


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
    die_with_parent()  # on the fork server's death, which ends with the sweep's process
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True)
        watch.start()


def _exit_when_ready(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class WorkerLostError(RuntimeError):
    """A task whose worker process died every time it ran, the last time alone."""


@dataclass
class _Task:
    """A submitted call, the future its caller holds, and how often its worker died."""

    fn: Any
    args: tuple[Any, ...]
    outer: Future
    deaths: int = 0  # with the pool, whoever was to blame
    solo_deaths: int = 0  # while it ran alone: its own doing
    generation: int = -1  # the pool it was last sent to


class LocalPool:
    """A forkserver process pool that survives its workers' deaths, invisibly to callers.

    ``submit`` returns a future that outlives the pool it first ran on: when a worker dies
    (the OOM killer, a segfault, ``kill``), every call in flight on the broken pool is
    sent again to a fresh one, and a submission that meets a broken pool rebuilds it. A
    call lost twice is a suspect: it runs alone, on a fresh pool, so a death can only be
    its own doing (or an outside kill's), and one that kills its worker alone three times
    ends with ``WorkerLostError``, without charging the calls that shared the pool. Only
    as many calls as workers are sent at a time, so a death is charged only to the calls
    that were running, never to those queued behind them.

    Workers start from a clean server that has already imported the model, so a run costs
    no import time and no state leaks between sweeps.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.RLock()
        self._generation = 0
        self._flying: dict[Future, _Task] = {}
        self._held: deque[_Task] = deque()  # waiting while a suspect runs alone
        self._suspects: deque[_Task] = deque()
        self._closed = False
        self._lost: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self.pool = self._start()
        threading.Thread(target=self._mend, daemon=True, name="pool-mender").start()

    def _start(self) -> ProcessPoolExecutor:
        if "forkserver" in multiprocessing.get_all_start_methods():
            context: multiprocessing.context.BaseContext = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(
                ["isk_defection.model", "isk_defection.experiments.sweep"]
            )
        else:  # Windows: no fork server; spawned workers import the model themselves
            context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_worker_setup
        )

    def submit(self, fn: Any, *args: Any) -> Future:
        """Run ``fn(*args)`` on a worker; the future survives worker deaths."""
        task = _Task(fn, args, Future())
        task.outer.add_done_callback(lambda outer: self._cancelled(task, outer))
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a stopped pool")
            self._send(task)
        return task.outer

    def _send(self, task: _Task) -> None:
        """Send ``task`` to the current pool if a worker is free for it, else hold it."""
        if not self._may_send(task):
            (self._suspects if task.deaths >= SUSPECT_DEATHS else self._held).append(task)
            return
        for tries in range(SUBMIT_TRIES):
            try:
                inner = self.pool.submit(task.fn, *task.args)
                break
            except (BrokenProcessPool, RuntimeError, EOFError, OSError) as error:
                # a death not yet noticed, or the fork server itself killed: start afresh
                if tries == SUBMIT_TRIES - 1:
                    _fail(task.outer, error)
                    return
                self._rebuild()
        task.generation = self._generation
        self._flying[inner] = task
        inner.add_done_callback(self._finished)

    def _finished(self, inner: Future) -> None:
        """A call ended: pass its result on, or hand it to the mender if its worker died.

        This runs on the executor's own thread, which holds the executor's lock while it
        fails the calls of a broken pool: rebuilding here would deadlock, so the mender
        thread rebuilds and sends again.
        """
        with self._lock:
            task = self._flying.pop(inner, None)
            if task is None or task.outer.done():  # cancelled by its caller
                self._lost.put(None)  # the mender sends what this one held back
                return
            if inner.cancelled() or isinstance(inner.exception(), BrokenProcessPool):
                self._lost.put(task)
                return
            _settle(task.outer, inner)
            self._release()

    def _mend(self) -> None:
        """The mender thread: rebuild a broken pool once, send its lost calls again."""
        while True:
            task = self._lost.get()
            with self._lock:
                if self._closed:
                    return
                if task is not None and not task.outer.done():
                    if task.generation == self._generation:
                        self._rebuild()
                    task.solo_deaths += task.deaths >= SUSPECT_DEATHS
                    task.deaths += 1
                    if task.solo_deaths >= SOLO_DEATHS:
                        _fail(task.outer, WorkerLostError(_death_message(task)))
                    else:
                        self._send(task)
                self._release()

    def _may_send(self, task: _Task) -> bool:
        """Whether ``task`` may go now: one call per worker, a suspect alone.

        One per worker, so that a death is charged only to the calls that were running.
        """
        if task.deaths >= SUSPECT_DEATHS:
            return not self._flying
        if self._suspects or any(t.deaths >= SUSPECT_DEATHS for t in self._flying.values()):
            return False
        return len(self._flying) < self.workers

    def _release(self) -> None:
        """Send held calls once nothing blocks them: suspects alone, one at a time, first."""
        if self._closed:
            return
        while self._suspects and not self._flying:
            self._rebuild()  # a fresh pool: one worker, so only its own death can count
            self._send(self._suspects.popleft())
        while self._held and self._may_send(self._held[0]):
            self._send(self._held.popleft())

    def _cancelled(self, task: _Task, outer: Future) -> None:
        if not outer.cancelled():
            return
        with self._lock:
            for inner, flying in list(self._flying.items()):
                if flying is task:
                    inner.cancel()

    def rebuild(self) -> None:
        """Replace the pool by a fresh one (the calls in flight are sent again)."""
        with self._lock:
            self._rebuild()

    def _rebuild(self) -> None:
        self._generation += 1
        broken, self.pool = self.pool, self._start()
        broken.shutdown(wait=False, cancel_futures=True)

    def stop(self, now: bool = False) -> None:
        """Shut down; ``now`` (Ctrl-C) drops queued runs and stops busy workers at once."""
        with self._lock:
            self._closed = True
            for task in (*self._held, *self._suspects):
                task.outer.cancel()
            self._held.clear()
            self._suspects.clear()
            pool = self.pool
        self._lost.put(None)  # ends the mender
        if now:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=not now, cancel_futures=True)


def _settle(outer: Future, inner: Future) -> None:
    """Give the caller's future the inner one's result or exception."""
    try:
        error = inner.exception()
        if error is None:
            outer.set_result(inner.result())
        else:
            outer.set_exception(error)
    except InvalidStateError:  # cancelled by the caller meanwhile
        pass


def _fail(outer: Future, error: BaseException) -> None:
    with suppress(InvalidStateError):  # cancelled by the caller meanwhile
        outer.set_exception(error)


def _death_message(task: _Task) -> str:
    return (
        f"the worker process died {task.deaths} times running this run, {task.solo_deaths} "
        "times alone "
        "(killed, out of memory, or crashed)"
    )


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
    """Write via a temporary file in the same folder, then rename into place.

    A write that fails (a full disk, Ctrl-C) leaves neither the file nor its temporary.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    from isk_defection.experiments.run import MODEL_BYTES_PER_AGENT, _as_dict
    from isk_defection.model.parameters import resolve
    from isk_defection.model.presets import preset

    if not local or not spec.points:
        return
    default = int(_as_dict(resolve(preset(spec.preset) | expand(spec.fixed)))["population"])
    agents = max(int(point.get("population", default)) for point in spec.points)
    check_need(
        agents * MODEL_BYTES_PER_AGENT,
        f"a run of {agents:,} agents",
        "--workers",
        "use fewer --workers or agents",
        processes=workers,
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
    """Run ``pending`` with a bounded number in flight; every outcome becomes a record.

    The local pool sends again the runs a dying worker took with it (``LocalPool``); a
    run that kills its worker every time, and a run a Dask cluster gives up on
    (``KilledWorker``), is recorded as failed with the reason.
    """
    workers = getattr(pool, "workers", None)
    limit = IN_FLIGHT_PER_WORKER * workers if workers else _dask_slots(pool)
    flying: dict[Future, Run] = {}

    def top_up() -> None:
        while len(flying) < limit:
            run = next(pending, None)
            if run is None:
                return
            flying[pool.submit(attempt, slim, run)] = run

    top_up()
    while flying:
        finished_now, _ = wait(flying, return_when=FIRST_COMPLETED)
        for future in finished_now:
            run = flying.pop(future)
            try:
                outcome = future.result()
            except WorkerLostError as lost:
                outcome = (run.run, [], str(lost), 0.0)
            except Exception as failure:  # noqa: BLE001 — e.g. Dask's KilledWorker: data
                error = "".join(traceback.format_exception_only(failure)).strip()
                outcome = (run.run, [], f"the engine lost this run: {error}", 0.0)
            record(*outcome)  # a full disk here stops the sweep: it is not the run's fault
        top_up()


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
