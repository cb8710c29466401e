"""The contract every command keeps: workers that die cost no run, none outlives its command."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from isk_defection.experiments.spec import load_spec
from isk_defection.experiments.sweep import LocalPool, WorkerLostError, read_results, run_sweep

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _workers(pid: int) -> list[psutil.Process]:
    """Worker processes: descendants with no children (not a fork server), not the tracker."""
    found = []
    for child in _descendants(pid):
        try:
            if not child.children() and "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _pool_workers(pid: int) -> list[psutil.Process]:
    """The sweep's pool workers: with forkserver, the fork server's children."""
    return [p for p in _workers(pid) if p.ppid() != pid]


def test_a_run_that_kills_its_worker_fails_alone_and_spares_the_others():
    """``os._exit`` kills whichever worker runs it; the calls beside it are run again."""
    pool = LocalPool(2)
    try:
        calm = [pool.submit(time.sleep, 0.05) for _ in range(6)]
        poison = pool.submit(os._exit, 3)
        calm += [pool.submit(pow, 2, k) for k in range(6)]
        assert [f.result(timeout=120) for f in calm] == [None] * 6 + [2**k for k in range(6)]
        with pytest.raises(WorkerLostError, match="died 5 times running this run, 3 times alone"):
            poison.result(timeout=120)
        assert pool.submit(pow, 3, 2).result(timeout=60) == 9  # the pool still works
    finally:
        pool.stop()


KILLS_PER_SWEEP = 4  # the sweep below lasts several seconds on the compiled kernel
KILL_SPEC = (
    "[sweep]\nname='kills'\nsteps=300\nreplicates=80\nseed=5\n"
    "outputs=['isk_strength', 'cumulative_defections']\n[fixed]\npopulation=8000\n"
)


def test_worker_kills_at_random_moments_leave_identical_data(tmp_path):
    """Several workers killed at random moments of one sweep: exit 0, the same data."""
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(KILL_SPEC)
    reference = run_sweep(load_spec(spec_file), tmp_path / "reference", workers=2, progress=False)
    rng = random.Random(2026)
    kills = 0
    for attempt in range(2):  # several kills in each of two sweeps
        out = tmp_path / f"killed-{attempt}"
        command = [str(BIN / "defection"), "sweep", str(spec_file), "--out", str(out)]
        process = subprocess.Popen(
            [*command, "--workers", "2", "-q"], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        for _ in range(KILLS_PER_SWEEP):
            time.sleep(rng.uniform(0.2, 1.0))
            workers = _pool_workers(process.pid)
            while not workers and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
                workers = _pool_workers(process.pid)
            if process.poll() is not None:
                break
            try:
                rng.choice(workers).kill()
                kills += 1
            except psutil.NoSuchProcess:
                pass
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        pd.testing.assert_frame_equal(read_results(out), reference)
    assert kills >= 6, f"only {kills} workers killed: the sweep ended too soon to test"


def _kill_main_and_count_survivors(command: list[str], cwd: Path, workers_needed: int) -> int:
    """Start ``command``, SIGKILL its main process once it has workers; survivors after 10 s."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ | {"TQDM_DISABLE": "1"},
    )
    deadline = time.monotonic() + 240
    family: list[psutil.Process] = []
    while time.monotonic() < deadline and process.poll() is None:
        family = _descendants(process.pid)
        if len(_workers(process.pid)) >= workers_needed:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the command ended before its workers started"
    time.sleep(1.0)
    family = _descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(family, timeout=10)
    return sum(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in alive)


@pytest.mark.parametrize(
    "command",
    [
        ["sweep", "SPEC", "--out", "out", "--workers", "2"],
        ["optimize", str(ROOT / "experiments/specs/optimize_example.toml"), "--quick",
         "--out", "out", "--workers", "2"],
        ["calibrate", "--quick", "--out", "out", "--workers", "2"],
    ],
    ids=["sweep", "optimize", "calibrate"],
)  # fmt: skip
def test_killing_the_main_process_leaves_no_worker_behind(tmp_path, command):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(KILL_SPEC.replace("steps=40", "steps=400"))
    argv = [str(BIN / "defection"), *(str(spec_file) if a == "SPEC" else a for a in command)]
    assert _kill_main_and_count_survivors(argv, tmp_path, workers_needed=2) == 0


# ---- one folder contract for every command that writes ------------------------------
SWEEP_SPEC = "[sweep]\nsteps=1\n[fixed]\npopulation=50\n"
SENSITIVITY_SPEC = (
    "[sweep]\nsteps=1\n[fixed]\npopulation=50\n"
    "[sample]\nmethod='sobol'\nn=4\n[sample.ranges]\ncontagion_weight=[0.2, 0.8]\n"
)
WRITERS = {
    "run": ["run", "--steps", "1"],
    "sweep": ["sweep", "SWEEP"],
    "sensitivity": ["sensitivity", "SENSITIVITY"],
    "doses": ["doses", "--quick"],
    "reproduce": ["reproduce", "C1", "--quick"],
    "calibrate": ["calibrate", "--quick"],
    "optimize": ["optimize", str(ROOT / "experiments/specs/optimize_example.toml"), "--quick"],
}


def _argv(tmp_path: Path, command: str, out: Path, *extra: str) -> list[str]:
    specs = {"SWEEP": SWEEP_SPEC, "SENSITIVITY": SENSITIVITY_SPEC}
    argv = []
    for word in WRITERS[command]:
        if word in specs:
            path = tmp_path / f"{word.lower()}.toml"
            path.write_text(specs[word])
            word = str(path)
        argv.append(word)
    return [*argv, "--out", str(out), "-q", *extra]


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("command", list(WRITERS))
def test_a_folder_of_another_commands_output_is_refused_by_name(tmp_path, capsys, command, writer):
    from isk_defection.experiments import folders
    from isk_defection.experiments.cli import main

    if command == writer:
        pytest.skip("a command's own output: its --resume rules apply")
    out = tmp_path / "out"
    out.mkdir()
    (out / folders.MARKER).write_text(f'{{"kind": "{writer}"}}')
    (out / "result.csv").write_text("kept\n")
    before = _listing(out)
    for extra in ([], ["--resume"]) if "--resume" in _options(command) else ([],):
        assert main(_argv(tmp_path, command, out, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert f"holds the output of `defection {writer}`" in err and "\n" not in err, err
        assert _listing(out) == before


def _options(command: str) -> str:
    from isk_defection.experiments.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001
    return " ".join(o for a in sub._actions for o in a.option_strings)  # noqa: SLF001


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_folder_held_by_a_running_command_is_refused(tmp_path, capsys, command):
    from filelock import FileLock

    from isk_defection.experiments import folders
    from isk_defection.experiments.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / folders.MARKER).write_text(f'{{"kind": "{command}"}}')
    with FileLock(out / folders.LOCK):  # what the running command holds
        before = _listing(out)
        assert main(_argv(tmp_path, command, out)) == 2
    err = capsys.readouterr().err.strip()
    assert "in use by another running command" in err and "\n" not in err, err
    assert _listing(out) == before


# ---- memory checks that see the real limit -------------------------------------------
def test_a_run_over_the_address_space_limit_is_refused_with_the_size_needed(tmp_path):
    """Under ``ulimit -v`` a run that fits the machine but not the limit is refused up front."""
    import resource

    limit = 3 * 2**30

    def lower_the_limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [str(BIN / "defection"), "run", "--steps", "1", "--out", str(tmp_path / "out")]
    result = subprocess.run(
        [*command, "--set", "population=3000000"],
        capture_output=True,
        text=True,
        preexec_fn=lower_the_limit,
        timeout=300,
        env=os.environ | {"OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "population: 3,000,000 agents needs about 3.0 GB" in lines[0]
    assert "address-space limit (ulimit -v)" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("files", "room"),
    [
        ({"memory.max": "1000000000", "memory.current": "400000000",
          "memory.stat": "anon 1\ninactive_file 100000000\n"}, 700_000_000),
        ({"memory.limit_in_bytes": "2000000000", "memory.usage_in_bytes": "500000000",
          "memory.stat": "total_inactive_file 0\n"}, 1_500_000_000),
        ({"memory.max": "max", "memory.current": "5"}, None),
        ({"memory.limit_in_bytes": "9223372036854771712"}, None),
    ],
    ids=["v2", "v1", "v2-unlimited", "v1-unlimited"],
)  # fmt: skip
def test_a_containers_memory_limit_is_read_in_cgroup_v1_and_v2(tmp_path, monkeypatch, files, room):
    from isk_defection.experiments import memory

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(memory, "_cgroup_folders", lambda: [tmp_path])
    monkeypatch.setattr(memory, "_meminfo", lambda: 10**12)
    assert memory._cgroup_room() == room
    if room is not None:
        with pytest.raises(ValueError, match="the container's memory limit") as caught:
            memory.check_need(room, "this run", "--set population", "use fewer agents")
        assert "\n" not in str(caught.value)
        memory.check_need(room // 2, "this run", "--set population", "use fewer agents")


# ---- exit codes, temporary files, notes ----------------------------------------------
def test_a_full_disk_exits_3_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    import errno

    from isk_defection.experiments import sweep as engine
    from isk_defection.experiments.cli import main

    def half_written(path: Path) -> None:
        Path(path).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        engine.atomic_write(tmp_path / "summary.csv", half_written)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary

    real = engine.atomic_write
    calls = []

    def fill_the_disk_at_the_third_write(path, write):
        calls.append(path)
        real(path, half_written if len(calls) == 3 else write)

    monkeypatch.setattr(engine, "atomic_write", fill_the_disk_at_the_third_write)
    spec = tmp_path / "spec.toml"
    spec.write_text("[sweep]\nsteps=1\nreplicates=2\n[fixed]\npopulation=50\n")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "-q"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("defection: error: out of disk space:") and "\n" not in err
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(engine, "atomic_write", real)  # the disk has room again
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--workers", "1", "-q"]) == 0
    assert read_results(out)["run"].nunique() == 2


def test_out_of_memory_exits_3(tmp_path, monkeypatch, capsys):
    from isk_defection.experiments import run as single
    from isk_defection.experiments.cli import main

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(single, "simulate", no_memory)
    assert main(["run", "--steps", "1", "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err.strip()
    assert "out of memory" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


POSTERIOR = ROOT / "results/posterior/posterior.parquet"


@pytest.mark.skipif(not POSTERIOR.exists(), reason="no committed posterior")
def test_a_set_value_that_overrides_a_posterior_draw_says_so_and_is_recorded(tmp_path, capsys):
    import json

    from isk_defection.experiments.cli import main
    from isk_defection.experiments.ensemble import load_posterior

    name = load_posterior(POSTERIOR).parameters[0]
    out = tmp_path / "out"
    argv = ["run", "--steps", "1", "--posterior", str(POSTERIOR), "--draw", "3", "-q"]
    assert main([*argv, "--set", "population=200", "--set", f"{name}=0.5", "--out", str(out)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and f"--set {name}: overrides" in notes[0] and "draw 3" in notes[0]
    record = json.loads((out / "run.json").read_text())["posterior"]
    assert record["draw"] == 3 and record["overridden_by_set"][name][1] == 0.5
    assert main([*argv, "--set", "population=200", "--out", str(tmp_path / "plain")]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main([*argv[:-3], "--draw", "200", "--out", str(tmp_path / "no")]) == 2
    assert "--draw: must be a draw id" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["doses", "calibrate"])
def test_tqdm_disable_and_quiet_turn_bars_off_in_every_command(monkeypatch, command):
    """calibrate and doses printed bars to a pipe; they follow -q and TQDM_DISABLE now."""
    from isk_defection.experiments import doses
    from isk_defection.experiments.calibration import command as calibrate
    from isk_defection.experiments.cli import main

    seen = []

    def capture(*args, **kwargs):
        seen.append(kwargs["progress"])
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(doses, "run_doses", capture)
    monkeypatch.setattr(calibrate, "run", capture)
    out = ["--out", "unused-folder-never-written"]
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main([command, "--quick", *out]) == 130
    monkeypatch.delenv("TQDM_DISABLE")
    assert main([command, "--quick", "-q", *out]) == 130
    assert main([command, "--quick", *out]) == 130
    assert seen == [False, False, None]  # None: a bar only on a terminal


# ---- budgets in work: a calibration killed and resumed ends where one uninterrupted does
CALIBRATE = """
import sys
from pathlib import Path
from isk_defection.experiments.calibration import abc
out, resume = Path(sys.argv[1]), sys.argv[2] == "resume"
budget = abc.Budget(particles=6, generations=3, simulations=400, minutes=30, agents=300)
fit = abc.calibrate(out, ["attack_rate", "attrition_rate"], budget, resume=resume,
                    progress=False, seed=7, workers=2)
fit["table"].assign(weight=fit["weights"]).to_csv(out / "final.csv", index=False)
print(len(fit["generations"]), fit["simulations"], fit["stopped_by"])
"""


def _generations_done(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT COUNT(*) FROM populations WHERE t >= 0").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_calibration_killed_and_resumed_ends_with_the_same_posterior(tmp_path):
    """Seeded particles and a budget in generations: SIGKILL and --resume change nothing."""
    python = [sys.executable, "-c", CALIBRATE]
    whole = subprocess.run(
        [*python, str(tmp_path / "whole"), "fresh"], capture_output=True, text=True, timeout=600
    )
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.split()[-1] == "generations"  # the work bound it, not the clock
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*python, str(killed), "fresh"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while _generations_done(killed / "abc.db") < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the calibration ended before it could be killed"
    family = _descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    psutil.wait_procs(family, timeout=10)
    assert 1 <= _generations_done(killed / "abc.db") < 3
    resumed = subprocess.run(
        [*python, str(killed), "resume"], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split()[-3:] == whole.stdout.split()[-3:]  # generations, simulations
    expected = (tmp_path / "whole" / "final.csv").read_text()
    assert (killed / "final.csv").read_text() == expected
