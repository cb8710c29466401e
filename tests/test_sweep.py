"""Sweeps: local and Dask engines agree, resume after SIGKILL, failures recorded, bad specs refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from filelock import FileLock

from isk_defection.experiments import sweep as engine
from isk_defection.experiments.cli import main
from isk_defection.experiments.sensitivity import sensitivity
from isk_defection.experiments.spec import load_spec
from isk_defection.experiments.sweep import read_results, run_sweep

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "sweep": {
        "name": "test",
        "steps": 6,
        "replicates": 2,
        "seed": 11,
        "record_every": 3,
        "outputs": ["isk_strength", "kandahar_defection_rate", "cumulative_defections"],
    },
    "fixed": {"population": 200},
    "grid": {"womens_rights": [0.0, 0.9]},
    "sample": {"method": "lhs", "n": 2, "ranges": {"contagion_weight": [0.2, 0.8]}},
}


def test_local_sweep_writes_tidy_results_manifest_and_summary(tmp_path):
    spec = load_spec(SPEC)
    results = run_sweep(spec, tmp_path, workers=2, progress=False)
    assert results["run"].nunique() == 8  # 2 grid x 2 sampled points x 2 replicates
    assert sorted(results["step"].unique()) == [0, 3, 6]
    identity = {"point", "replicate", "seed", "preset", "womens_rights", "contagion_weight"}
    assert identity <= set(results.columns) and "date" in results
    assert isinstance(results["date"].iloc[0], dt.date)  # Parquet date32, not text
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["hash"] == spec.digest and len(manifest["seeds"]) == 8
    assert {r["status"] for r in manifest["runs"]} == {"ok"}
    assert manifest["provenance"]["commit"] and manifest["provenance"]["command"]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 4 and (summary["runs_ok"] == 2).all()
    assert (summary["isk_strength_low"] <= summary["isk_strength_mean"]).all()
    rate = summary[["kandahar_defection_rate_low", "kandahar_defection_rate_high"]]
    assert ((rate >= 0) & (rate <= 1)).all().all()  # bootstrap intervals stay in [0, 1]
    # the same spec gives the same numbers with one worker, in another folder
    again = run_sweep(spec, tmp_path / "again", workers=1, progress=False)
    pd.testing.assert_frame_equal(results, again)
    with pytest.raises(ValueError, match="--resume"):  # never mixed into a finished sweep
        run_sweep(spec, tmp_path, workers=1, progress=False)


def test_a_folder_in_use_by_another_sweep_is_refused(tmp_path):
    busy = pytest.raises(ValueError, match="in use by another running command")
    with FileLock(tmp_path / ".lock"), busy:  # what a running sweep holds
        run_sweep(load_spec(SPEC), tmp_path, workers=1, progress=False)
    assert not (tmp_path / "data").exists()
    assert run_sweep(load_spec(SPEC), tmp_path, workers=1, progress=False).run.nunique() == 8


def test_example_spec_is_valid():
    spec = load_spec(ROOT / "experiments/specs/example.toml")
    assert len(spec.points) == 4 * 3 * 2 and spec.varied[:2] == ["womens_rights", "crackdown_ttp"]


def test_spec_to_plot_in_three_commands(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        "[sweep]\nname='cli'\nsteps=4\nreplicates=2\nseed=5\n[fixed]\npopulation=200\n"
        "[grid]\nmoderation=[0.0,0.9]\ncrackdown_ttp=[0.0,1.0]\n"
    )  # moderation: the alias that sets womens_rights and inclusion
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out), "--workers", "2"]) == 0
    assert len(pd.read_csv(out / "summary.csv")) == 4
    assert main(["plot", str(out), "--x", "moderation"]) == 0
    heatmap = ["plot", str(out), "--x", "moderation", "--y", "crackdown_ttp"]
    assert main([*heatmap, "--outcome", "kandahar_defection_rate"]) == 0
    assert (out / "isk_strength_by_moderation.png").stat().st_size > 0
    assert (out / "kandahar_defection_rate_by_moderation_crackdown_ttp.png").stat().st_size > 0
    assert main(["plot", str(out), "--x", "isk_reach"]) == 2  # not a swept parameter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster():
    """A real scheduler and two workers, each its own process on loopback."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [
                    BIN / "dask",
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from dask.distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def test_dask_cluster_gives_the_same_results_as_local_processes(tmp_path, dask_cluster):
    spec = load_spec(SPEC)
    local = run_sweep(spec, tmp_path / "local", workers=2, progress=False)
    distributed = run_sweep(spec, tmp_path / "dask", scheduler=dask_cluster, progress=False)
    pd.testing.assert_frame_equal(local, distributed)
    throwaway = run_sweep(spec, tmp_path / "lc", workers=2, local_cluster=True, progress=False)
    pd.testing.assert_frame_equal(local, throwaway)


def test_resume_after_sigkill_yields_exactly_the_planned_runs(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        "[sweep]\nname='kill'\nsteps=5\nreplicates=30\nseed=3\n"
        "outputs=['isk_strength']\n[fixed]\npopulation=200\n[grid]\nwomens_rights=[0.1,0.5]\n"
    )
    out = tmp_path / "out"
    command = [str(BIN / "defection"), "sweep", str(spec_file), "--out", str(out), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / "status").glob("chunk-*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)  # the pool does not outlive the sweep
    assert all(p.status() == psutil.STATUS_ZOMBIE for p in alive if p.is_running())
    partial = read_results(out)
    assert 0 < partial["run"].nunique() < 60, "the kill should interrupt the sweep"
    assert main(["sweep", str(spec_file), "--out", str(out), "--resume", "--workers", "2"]) == 0
    results = read_results(out)
    per_run = results.groupby("run").size()
    assert sorted(per_run.index) == list(range(60))
    assert (per_run == 6).all()  # weeks 0 to 5, no duplicates
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["status"] for r in manifest["runs"]} == {"ok"} and len(manifest["resumed"]) == 1
    fresh = run_sweep(load_spec(spec_file), tmp_path / "fresh", workers=2, progress=False)
    pd.testing.assert_frame_equal(results, fresh)


def failing_spec(tmp_path: Path) -> Path:
    """Two points: one runs, one fails in every run (a complete network of 6,000 agents)."""
    spec_file = tmp_path / "failing.toml"
    spec_file.write_text(
        "[sweep]\nname='fail'\nsteps=2\nreplicates=2\nseed=1\noutputs=['isk_strength']\n"
        "[fixed]\nnetwork='complete'\n[grid]\npopulation=[100,6000]\n"
    )
    return spec_file


def test_failed_runs_are_recorded_reported_and_retried(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(failing_spec(tmp_path)), "--out", str(out), "--workers", "2"]) == 1
    assert "2 of 4 runs failed" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    failed = [r for r in manifest["runs"] if r["status"] == "failed"]
    assert len(failed) == 2 and all("at most 5,000" in r["error"] for r in failed)
    assert read_results(out)["run"].nunique() == 2
    summary = pd.read_csv(out / "summary.csv")  # the failed point does not vanish
    assert list(summary["runs_ok"]) == [2, 0] and list(summary["runs_failed"]) == [0, 2]
    assert summary["isk_strength_mean"].isna().tolist() == [False, True]
    # --resume alone keeps the failures; --retry-failed runs them again (and they fail again)
    resumed = ["sweep", str(failing_spec(tmp_path)), "--out", str(out), "--resume"]
    assert main(resumed) == 1
    assert len(json.loads((out / "manifest.json").read_text())["resumed"]) == 1
    assert main([*resumed, "--retry-failed", "--workers", "1"]) == 1
    statuses = [r["status"] for r in json.loads((out / "manifest.json").read_text())["runs"]]
    assert statuses.count("failed") == 2 and statuses.count("ok") == 2


def test_a_sweep_where_every_run_fails_exits_non_zero(tmp_path, capsys):
    spec_file = tmp_path / "all.toml"
    spec_file.write_text(
        "[sweep]\nsteps=1\nreplicates=3\n[fixed]\nnetwork='complete'\npopulation=6000\n"
    )
    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "o"), "--workers", "1"]) == 1
    assert "3 of 3 runs failed" in capsys.readouterr().err


def pool_workers(pid: int) -> list[psutil.Process]:
    """The sweep's pool workers: with forkserver, children of the fork server (a child)."""
    found = []
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return found
    for child in children:
        try:
            found += child.children()
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_killed_local_worker_costs_no_run(tmp_path):
    """The OOM killer or a segfault takes one worker: the lost runs are run again."""
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        # long enough (about 0.3 s a run, 16 runs on 2 workers) that a worker dies mid-sweep
        "[sweep]\nname='oom'\nsteps=150\nreplicates=16\nseed=2\noutputs=['isk_strength']\n"
        "[fixed]\npopulation=2000\n"
    )
    out = tmp_path / "out"
    command = [str(BIN / "defection"), "sweep", str(spec_file), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    deadline = time.monotonic() + 120
    while not killed and time.monotonic() < deadline and process.poll() is None:
        workers = pool_workers(process.pid)
        if workers:
            time.sleep(0.3)  # let it start a run
            try:
                workers[0].kill()
                killed = process.poll() is None
            except psutil.NoSuchProcess:
                continue  # it ended on its own: pick another
        time.sleep(0.05)
    assert killed, "no worker was killed while the sweep ran"
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["status"] for r in manifest["runs"]} == {"ok"}
    fresh = run_sweep(load_spec(spec_file), tmp_path / "fresh", workers=2, progress=False)
    pd.testing.assert_frame_equal(read_results(out), fresh)


def test_ctrl_c_stops_a_sweep_promptly_and_it_resumes(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        # long enough (about 0.3 s a run, 40 runs on 2 workers) that Ctrl-C lands mid-sweep
        "[sweep]\nname='int'\nsteps=150\nreplicates=40\nseed=4\noutputs=['isk_strength']\n"
        "[fixed]\npopulation=2000\n"
    )
    out = tmp_path / "out"
    command = [str(BIN / "defection"), "sweep", str(spec_file), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # until workers are busy
        if len(pool_workers(process.pid)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - started < 20, "Ctrl-C took too long"
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert main(["sweep", str(spec_file), "--out", str(out), "--resume", "--workers", "2"]) == 0
    assert read_results(out)["run"].nunique() == 40


def test_an_unreachable_scheduler_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(engine, "CONNECT_SECONDS", 1)
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text("[sweep]\nsteps=1\n")
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["sweep", str(spec_file), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and time.monotonic() - started < 15
    err = capsys.readouterr().err.strip()
    assert err.startswith("defection: error: --scheduler:") and "\n" not in err
    assert not out.exists()  # so a retry needs no --resume


def test_runs_are_submitted_in_bounded_batches(tmp_path, monkeypatch):
    """A huge sweep keeps only a few runs per worker in flight (memory stays flat)."""
    from concurrent.futures import ThreadPoolExecutor

    class CountingPool:
        workers = 2

        def __init__(self):
            self.pool = ThreadPoolExecutor(2)
            self.outstanding = self.most = 0

        def submit(self, *args):
            self.outstanding += 1
            self.most = max(self.most, self.outstanding)
            future = self.pool.submit(*args)
            future.add_done_callback(lambda _: setattr(self, "outstanding", self.outstanding - 1))
            return future

    spec = load_spec(
        {"sweep": {"steps": 1, "replicates": 60, "outputs": ["isk_strength"]},
         "fixed": {"population": 50}}
    )  # fmt: skip
    pool = CountingPool()
    seen = []
    engine._dispatch(pool, spec.for_workers(), spec.runs(), lambda *r: seen.append(r[0]))
    pool.pool.shutdown()
    assert sorted(seen) == list(range(60))
    assert pool.most <= engine.IN_FLIGHT_PER_WORKER * 2


def test_absurd_sizes_are_refused_before_planning():
    started = time.monotonic()
    for change in ({"replicates": 10**12}, {}):
        raw = {"sweep": {"steps": 1} | change}
        if not change:
            raw["sample"] = {"method": "lhs", "n": 10**10, "ranges": {"counter_isk": [0, 1]}}
        with pytest.raises(ValueError, match=r"at most|must be an integer in"):
            load_spec(raw)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fixed": {"no_such_parameter": 1}}, "no_such_parameter"),
        ({"grid": {"womens_rights": [0.1, 1.5]}}, "womens_rights"),
        ({"sample": {"method": "lhs", "n": 2, "ranges": {"isk_reach": [0.0, 20.0]}}}, "isk_reach"),
        ({"sweep": {"steps": 5, "replicate": 2}}, "sweep.replicate"),
        ({"colour": {}}, "colour"),
        ({"sweep": {"steps": 5, "outputs": ["nope"]}}, "outputs"),
    ],
)
def test_bad_specs_are_refused_before_any_run(tmp_path, change, message, capsys):
    spec_file = tmp_path / "bad.toml"
    raw = SPEC | change
    spec_file.write_text(to_toml(raw))
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not out.exists()


def to_toml(raw: dict) -> str:
    def value(v):
        return json.dumps(v) if not isinstance(v, dict) else None

    lines = []
    for section, keys in raw.items():
        lines.append(f"[{section}]")
        nested = {k: v for k, v in keys.items() if isinstance(v, dict)}
        lines += [f"{k} = {value(v)}" for k, v in keys.items() if k not in nested]
        for name, table in nested.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_sensitivity_finds_the_parameter_that_drives_the_outcome(tmp_path):
    spec = load_spec(
        {
            "sweep": {"name": "sens", "steps": 2, "seed": 1, "outputs": ["lever_counter_isk"]},
            "fixed": {"population": 100},
            "sample": {
                "method": "sobol",
                "n": 16,
                "ranges": {"counter_isk": [0.0, 1.0], "contagion_weight": [0.0, 1.0]},
            },
        }
    )
    table = sensitivity(spec, tmp_path, ["lever_counter_isk"], workers=2, progress=False)
    by_name = table.set_index("parameter")
    assert by_name.loc["counter_isk", "S1"] == pytest.approx(1.0, abs=0.15)
    assert abs(by_name.loc["contagion_weight", "ST"]) < 0.05
    assert (tmp_path / "sobol.png").exists()


def test_sensitivity_with_failed_points_exits_1_not_2(tmp_path, capsys):
    spec_file = tmp_path / "sens.toml"
    spec_file.write_text(
        "[sweep]\nsteps=1\noutputs=['isk_strength']\n[fixed]\nnetwork='complete'\n"
        "[sample]\nmethod='sobol'\nn=2\n[sample.ranges]\npopulation=[5001,6000]\n"
    )
    argv = ["sensitivity", str(spec_file), "--out", str(tmp_path / "o"), "--workers", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "design points have no successful run" in err and "--retry-failed" in err
