"""Run a sweep on local processes or a Dask cluster, in durable chunks that resume.

Layout of an output folder:
    data/chunk-NNNNN.parquet    rows of finished runs (one row per run per recorded step)
    status/chunk-NNNNN.json     the runs a chunk holds, ok or failed (with the error)
    manifest.json               spec, hash, versions, commit, seeds, times, status per run
    summary.csv                 per point: mean and 95% interval of the key outcomes

Each file is written to a temporary name and renamed into place. A chunk counts once
its status file exists (it is written after its data), so a sweep killed at any moment
resumes with exactly the runs that are missing.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import multiprocessing.connection
import os
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from experiments.spec import Run, SweepSpec, load_spec
from model import DefectionModel
from model.groups import GROUP_NAMES

__all__ = ["load_spec", "read_results", "run_sweep", "simulate_run"]
KEY_OUTCOMES = ("isk_strength", *(f"{g}_defection_rate" for g in GROUP_NAMES))
CHUNK_RUNS = 20  # runs per chunk file
CHUNK_SECONDS = 30.0  # or this long since the last chunk


def simulate_run(spec: SweepSpec, run: Run) -> list[dict[str, Any]]:
    """One run: the model's outputs at week 0, every ``record_every`` weeks and the last."""
    model = DefectionModel(
        preset=spec.preset,
        rng=run.seed,
        **(spec.fixed | run.values | {"collect_agent_data": False}),
    )
    meta = {"run": run.run, "point": run.point, "replicate": run.replicate, "seed": run.seed}
    meta |= {k: spec.cell(k, v) for k, v in run.values.items()}
    rows = []
    for step in range(spec.steps + 1):
        if step:
            model.step()
        if step % spec.record_every == 0 or step == spec.steps:
            stats = model.stats
            rows.append(
                meta | {"step": step, "date": stats["date"]} | {k: stats[k] for k in spec.outputs}
            )
    return rows


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


def _exit_with_parent() -> None:
    """Worker initializer: end the worker when the sweep's process dies, even by SIGKILL.

    Otherwise an idle worker waits forever for work that will not come (the pool's queues
    keep their own pipes open), holding its memory until someone kills it by hand.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True)
        watch.start()


def _exit_when_ready(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


@contextmanager
def executor(workers: int | None, scheduler: str | None, local_cluster: bool) -> Iterator[Executor]:
    """Local processes, an existing Dask scheduler, or a throw-away Dask LocalCluster."""
    if scheduler or local_cluster:
        from dask.distributed import Client, LocalCluster

        cluster = None
        if local_cluster:
            cluster = LocalCluster(
                n_workers=workers or cores(), threads_per_worker=1, dashboard_address=None
            )
        client = Client(scheduler or cluster)
        try:
            yield client.get_executor()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        # forkserver: workers start from a clean server that has already imported the model
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["model", "experiments.sweep"])
        pool = ProcessPoolExecutor(
            max_workers=workers or cores(), mp_context=context, initializer=_exit_with_parent
        )
        try:
            yield pool
        finally:  # after Ctrl-C, drop the queued runs instead of finishing them first
            pool.shutdown(wait=True, cancel_futures=True)


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
    progress: bool = True,
) -> pd.DataFrame:
    """Run every planned run not yet recorded in ``out``; return the tidy results."""
    out = Path(out)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: must be a positive integer (got {workers})")
    _check_folder(out, spec, resume)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        return _run_pending(spec, out, workers, scheduler, local_cluster, resume, progress)


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` so that two sweeps never write one folder (the OS frees it on a kill)."""
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"--out: {out} is in use by another running sweep") from None
        yield


def _run_pending(
    spec: SweepSpec,
    out: Path,
    workers: int | None,
    scheduler: str | None,
    local_cluster: bool,
    resume: bool,
    progress: bool,
) -> pd.DataFrame:
    runs = spec.runs()
    done = finished(out) if resume else {}
    pending = [r for r in runs if r.run not in done]
    processes = f"{workers or cores()} processes"
    engine = scheduler or (f"Dask LocalCluster, {processes}" if local_cluster else processes)
    manifest = _manifest(spec, runs, done, out) | {"engine": engine}
    atomic_write(out / "manifest.json", _text(json.dumps(manifest, indent=2)))
    writer = ChunkWriter(out)
    failures = sum(r["status"] == "failed" for r in done.values())
    bar = tqdm(total=len(runs), initial=len(done), disable=not progress, unit="run", desc=spec.name)
    bar.set_postfix(failed=failures)
    try:
        if pending:
            with executor(workers, scheduler, local_cluster) as pool:
                slim = spec.for_workers()
                # no list of the futures is kept: a written run's rows are freed at once
                for future in as_completed([pool.submit(attempt, slim, r) for r in pending]):
                    run, rows, error, seconds = future.result()
                    writer.add(run, rows, error, seconds)
                    failures += error is not None
                    bar.update()
                    bar.set_postfix(failed=failures)
    finally:
        writer.flush()
        bar.close()
    results = read_results(out)
    records = finished(out)
    manifest |= {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "runs": [_run_record(r, records.get(r.run)) for r in runs],
    }
    atomic_write(out / "manifest.json", _text(json.dumps(manifest, indent=2)))
    summary = summarise(results, spec)
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    return results


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


def _manifest(spec: SweepSpec, runs: list[Run], done: dict, out: Path) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    previous = out / "manifest.json"  # only ever this sweep's: see _check_folder
    earlier = json.loads(previous.read_text()) if previous.exists() else {}
    resumed = earlier.get("resumed", []) + ([{"at": now, "runs_done": len(done)}] if done else [])
    return {
        "name": spec.name,
        "hash": spec.digest,
        "spec": spec.source,
        "varied": spec.varied,
        "points": len(spec.points),
        "replicates": spec.replicates,
        "seeds": [r.seed for r in runs],
        "versions": _versions(),
        **_git_state(),
        "started": earlier.get("started", now),
        "resumed": resumed,
        "folder": str(out),
    }


def _versions() -> dict[str, str]:
    packages = ("isk-defection", "mesa", "numpy", "scipy", "pandas", "pyarrow", "distributed")
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # Dask is optional on a workstation
            continue
    return found


def _run_record(run: Run, record: dict[str, Any] | None) -> dict[str, Any]:
    base = {"run": run.run, "point": run.point, "replicate": run.replicate, "seed": run.seed}
    if record is None:
        return base | {"status": "not run"}
    return base | {k: record[k] for k in ("status", "error", "seconds")}


def _git_state() -> dict[str, Any]:
    """The commit of the code, and whether tracked files differ from it (then it is not enough)."""
    try:
        commit = _git("rev-parse", "HEAD")
        changes = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None}
    return {"commit": commit, "uncommitted_changes": bool(changes)}


def _git(*args: str) -> str:
    folder = Path(__file__).resolve().parent
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=folder)
    return done.stdout.strip()


def summarise(results: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """Per point, at the last step: mean and 95% t-interval of the key outcomes."""
    outcomes = [c for c in KEY_OUTCOMES if c in spec.outputs]
    if results.empty or not outcomes:
        return pd.DataFrame()
    final = results[results["step"] == spec.steps]
    rows = []
    for point, group in final.groupby("point"):
        row = {"point": point, "runs": len(group)} | {k: group[k].iloc[0] for k in spec.varied}
        for outcome in outcomes:
            values = group[outcome].dropna().to_numpy(float)
            row |= mean_interval(outcome, values)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_interval(name: str, values: np.ndarray) -> dict[str, float]:
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return {f"{name}_mean": mean, f"{name}_low": mean, f"{name}_high": mean}
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return {f"{name}_mean": mean, f"{name}_low": mean - half, f"{name}_high": mean + half}
