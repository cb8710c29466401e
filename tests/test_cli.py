"""The ``defection`` command: analysis-ready outputs with provenance, and its conventions."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from isk_defection.experiments import provenance
from isk_defection.experiments.cli import main
from isk_defection.experiments.console import progress as _progress
from isk_defection.experiments.run import check_memory, records_agents
from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.reporters import columns

ROOT = Path(__file__).resolve().parents[1]
DEFECTION = Path(sys.executable).parent / "defection"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True).stdout.strip()


def test_run_writes_analysis_ready_outputs_with_provenance(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--steps", "12", "--seed", "3", "--set", "population=400",
            "--set", "moderation=ramp(0.1,0.6,2,8)", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Kandahar leadership core" in printed and "killed or captured" in printed
    csv = pd.read_csv(out / "timeseries.csv")
    parquet = pd.read_parquet(out / "timeseries.parquet")
    assert len(csv) == len(parquet) == 13
    # every model column, with the run's identity in front
    assert list(parquet.columns[:2]) == ["seed", "preset"]
    assert set(columns()) <= set(parquet.columns)
    assert (parquet["seed"] == 3).all() and (parquet["preset"] == "baseline").all()
    # dates as dates: ISO text in CSV, date32 in Parquet
    assert str(pq.read_schema(out / "timeseries.parquet").field("date").type) == "date32[day]"
    assert parquet["date"].iloc[1] == dt.date(2021, 8, 22)
    assert csv["date"].iloc[1] == "2021-08-22"
    # the lever's state under its own column, apart from its input (a schedule)
    assert csv["lever_womens_rights"].iloc[-1] == pytest.approx(0.6)
    assert csv["lever_inclusion"].iloc[-1] == pytest.approx(0.6)
    for name in ("defection_rate", "isk_removed", "kandahar_people_per_agent"):
        assert name in csv
    assert csv["defection_rate"].between(0, 1).all()
    assert (out / "defection.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(out / "summary.csv")
    assert {"agents", "people_per_agent", "start_people", "defected_people"} <= set(summary)
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 3 and record["parameters"]["population"] == 400
    assert record["parameters"]["womens_rights"] == "piecewise(2:0.1,8:0.6)"
    origin = record["provenance"]
    assert origin["commit"] == git("rev-parse", "HEAD")
    assert origin["version"] == provenance.package_version() != "unknown"
    assert origin["python"] == ".".join(map(str, sys.version_info[:3]))
    assert origin["command"].startswith("defection run --steps 12 --seed 3")
    assert not list(out.glob(".staging-*"))


def test_agent_records_are_written_when_affordable(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-q", "--steps", "3", "--set", "population=200", "--out", str(out)]) == 0
    agents = pd.read_parquet(out / "agents.parquet")
    assert {"seed", "step", "agent_id", "loyalty", "group", "allegiance"} <= set(agents)
    assert sorted(agents["step"].unique()) == [0, 1, 2, 3]
    off = tmp_path / "off"
    argv = ["run", "-q", "--steps", "3", "--set", "population=200", "--set"]
    assert main([*argv, "collect_agent_data=off", "--out", str(off)]) == 0
    assert not (off / "agents.parquet").exists()


def test_agent_records_are_not_kept_by_default_for_a_large_run(tmp_path, capsys):
    out = tmp_path / "big"
    assert main(["run", "--steps", "1", "--set", "population=12000", "--out", str(out)]) == 0
    assert not (out / "agents.parquet").exists()
    assert "collect_agent_data=on keeps them" in capsys.readouterr().out


def test_agent_recording_rule_and_memory_check():
    values = {name: p.default for name, p in PARAMETERS.items()}
    assert records_agents(values | {"population": 2_000})  # default: on where affordable
    assert not records_agents(values | {"population": 1_000_000})
    check_memory(values | {"population": 1_000_000}, 100)  # off: nothing to check
    with pytest.raises(ValueError, match="collect_agent_data.*GB"):
        check_memory(values | {"population": 5_000_000, "collect_agent_data": "on"}, 100_000)


def test_a_second_run_into_its_own_folder_replaces_it(tmp_path):
    out = tmp_path / "run"
    base = ["run", "-q", "--steps", "2", "--set", "population=200", "--out", str(out)]
    assert main([*base, "--seed", "1"]) == 0
    assert main([*base, "--seed", "2"]) == 0
    assert json.loads((out / "run.json").read_text())["seed"] == 2


def test_logs_get_no_progress_lines(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [str(DEFECTION), "run", "--steps", "5", "--set", "population=200", "--out", str(out)],
        capture_output=True,
        text=True,
        env=os.environ | {"TQDM_DISABLE": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\r" not in result.stdout  # not a terminal: no bar
    assert "Kandahar" in result.stdout


def test_quiet_prints_nothing(tmp_path, capsys):
    argv = ["run", "-q", "--steps", "2", "--set", "population=200", "--out", str(tmp_path / "q")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_setting(monkeypatch):
    class Args:
        quiet = False

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert _progress(Args()) is None  # a bar only on a terminal
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert _progress(Args()) is False
    monkeypatch.delenv("TQDM_DISABLE")
    Args.quiet = True
    assert _progress(Args()) is False


def test_version(capsys):
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"defection {provenance.package_version()}")
    assert git("rev-parse", "HEAD")[:12] in line


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown"])
def test_params_formats(fmt, capsys):
    assert main(["params", "--format", fmt]) == 0
    text = capsys.readouterr().out
    if fmt == "csv":
        from io import StringIO

        table = pd.read_csv(StringIO(text))
        assert list(table["name"]) == list(PARAMETERS)
    elif fmt == "json":
        rows = json.loads(text)
        assert [r["name"] for r in rows] == list(PARAMETERS)
        assert rows[0]["allowed"] == PARAMETERS[rows[0]["name"]].allowed()
    elif fmt == "markdown":
        assert text.startswith("| name | default |")
    else:
        assert text.split()[:3] == ["name", "default", "allowed"]
        assert len(text.strip().splitlines()) == len(PARAMETERS) + 1


def test_params_piped_into_head_ends_quietly():
    pipeline = subprocess.run(
        f"set -o pipefail; '{DEFECTION}' params --format csv | head -n 2",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
    )
    assert pipeline.stdout.startswith("name,default")
    assert "BrokenPipe" not in pipeline.stderr and "Traceback" not in pipeline.stderr
    assert pipeline.stderr == ""


def test_app_refuses_a_busy_port_before_announcing_it(capsys):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert "open http" not in captured.out
    assert f"--port: {port}" in captured.err


def test_model_imports_nothing_from_experiments_or_viz():
    for path in (ROOT / "model").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("experiments", "viz"), f"{path.name}: {name}"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, model; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] in ('experiments', 'viz')))"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert loaded.stdout.strip() == "[]"


def test_the_script_entry_point_is_the_experiments_cli():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'defection = "isk_defection.experiments.cli:entry"' in text
    assert not (ROOT / "model" / "cli.py").exists()


def test_commit_is_this_projects_not_an_enclosing_repositorys(tmp_path, monkeypatch):
    outer = tmp_path / "their-repo"
    inner = outer / "vendor" / "isk-defection"
    inner.mkdir(parents=True)
    git("init", "-q", cwd=outer)
    (outer / "x").write_text("x")
    git("add", "x", cwd=outer)
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x", cwd=outer)
    assert git("rev-parse", "HEAD", cwd=outer)
    monkeypatch.setattr(provenance, "ROOT", inner)
    provenance.git_state.cache_clear()
    try:
        state = provenance.git_state()
    finally:
        provenance.git_state.cache_clear()
    assert state["commit"] != git("rev-parse", "HEAD", cwd=outer)
