"""Sweeps: local and Dask engines agree, resume after SIGKILL, failures recorded, bad specs refused."""

from __future__ import annotations

import fcntl
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from experiments.sensitivity import sensitivity
from experiments.spec import load_spec
from experiments.sweep import read_results, run_sweep
from experiments.cli import main

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
    "grid": {"moderation": [0.0, 0.9]},
    "sample": {"method": "lhs", "n": 2, "ranges": {"cascade_strength": [0.2, 0.8]}},
}


def test_local_sweep_writes_tidy_results_manifest_and_summary(tmp_path):
    spec = load_spec(SPEC)
    results = run_sweep(spec, tmp_path, workers=2, progress=False)
    assert results["run"].nunique() == 8  # 2 grid x 2 sampled points x 2 replicates
    assert sorted(results["step"].unique()) == [0, 3, 6]
    identity = {"point", "replicate", "seed", "moderation", "cascade_strength", "date"}
    assert identity <= set(results.columns)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["hash"] == spec.digest and len(manifest["seeds"]) == 8
    assert {r["status"] for r in manifest["runs"]} == {"ok"}
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 4
    assert (summary["isk_strength_low"] <= summary["isk_strength_mean"]).all()
    # the same spec gives the same numbers with one worker, in another folder
    again = run_sweep(spec, tmp_path / "again", workers=1, progress=False)
    pd.testing.assert_frame_equal(results, again)
    with pytest.raises(ValueError, match="--resume"):  # never mixed into a finished sweep
        run_sweep(spec, tmp_path, workers=1, progress=False)


def test_a_folder_in_use_by_another_sweep_is_refused(tmp_path):
    with open(tmp_path / ".lock", "w") as lock:  # what a running sweep holds
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="in use by another running sweep"):
            run_sweep(load_spec(SPEC), tmp_path, workers=1, progress=False)
    assert not (tmp_path / "data").exists()
    assert run_sweep(load_spec(SPEC), tmp_path, workers=1, progress=False).run.nunique() == 8


def test_example_spec_is_valid():
    spec = load_spec(ROOT / "experiments/specs/example.toml")
    assert len(spec.points) == 4 * 3 * 2 and spec.varied[:2] == ["moderation", "crackdown_ttp"]


def test_spec_to_plot_in_three_commands(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        "[sweep]\nname='cli'\nsteps=4\nreplicates=2\nseed=5\n[fixed]\npopulation=200\n"
        "[grid]\nmoderation=[0.0,0.9]\ncrackdown_ttp=[0.0,1.0]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out), "--workers", "2"]) == 0
    assert len(pd.read_csv(out / "summary.csv")) == 4
    assert main(["plot", str(out), "--x", "moderation"]) == 0
    heatmap = ["plot", str(out), "--x", "moderation", "--y", "crackdown_ttp"]
    assert main([*heatmap, "--outcome", "kandahar_defection_rate"]) == 0
    assert (out / "isk_strength_by_moderation.png").stat().st_size > 0
    assert (out / "kandahar_defection_rate_by_moderation_crackdown_ttp.png").stat().st_size > 0
    assert main(["plot", str(out), "--x", "walk_in"]) == 2  # not a swept parameter


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
        "outputs=['isk_strength']\n[fixed]\npopulation=200\n[grid]\nmoderation=[0.1,0.5]\n"
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


def test_a_failing_run_is_recorded_and_the_rest_complete(tmp_path):
    spec = dict(SPEC, grid={"population": [100, 6000]}, fixed={"network": "complete"})
    spec["sample"] = {}
    results = run_sweep(load_spec(spec), tmp_path, workers=2, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    failed = [r for r in manifest["runs"] if r["status"] == "failed"]
    assert len(failed) == 2 and all("at most 5,000" in r["error"] for r in failed)
    assert results["run"].nunique() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fixed": {"no_such_parameter": 1}}, "no_such_parameter"),
        ({"grid": {"moderation": [0.1, 1.5]}}, "moderation"),
        ({"sample": {"method": "lhs", "n": 2, "ranges": {"walk_in": [0.0, 2.0]}}}, "walk_in"),
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
            "sweep": {"name": "sens", "steps": 2, "seed": 1, "outputs": ["moderation"]},
            "fixed": {"population": 100},
            "sample": {
                "method": "sobol",
                "n": 16,
                "ranges": {"moderation": [0.0, 1.0], "cascade_strength": [0.0, 1.0]},
            },
        }
    )
    table = sensitivity(spec, tmp_path, ["moderation"], workers=2, progress=False)
    by_name = table.set_index("parameter")
    assert by_name.loc["moderation", "S1"] == pytest.approx(1.0, abs=0.15)
    assert abs(by_name.loc["cascade_strength", "ST"]) < 0.05
    assert (tmp_path / "sobol.png").exists()
