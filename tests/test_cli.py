"""The ``defection run`` command: outputs, summary table, and refusal of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from experiments.cli import main


def test_run_writes_series_summary_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--steps", "12", "--seed", "3", "--set", "population=400",
                 "--set", "moderation=ramp(0.1,0.6,2,8)", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Kandahar leadership core" in printed and "killed or captured" in printed
    csv = pd.read_csv(out / "timeseries.csv")
    parquet = pd.read_parquet(out / "timeseries.parquet")
    assert len(csv) == len(parquet) == 13
    assert csv["moderation"].iloc[-1] == pytest.approx(0.6)
    assert (out / "defection.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 3 and record["parameters"]["population"] == 400
    assert not list(out.glob(".staging-*"))


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "moderation=1.5"],
        ["--set", "moderation"],
        ["--set", "walk_in=nan"],
        ["--set", "population=-5"],
        ["--set", "unknown_lever=0.3"],
        ["--set", "recruitment=maybe"],
        ["--preset", "utopia"],
        ["--steps", "-1"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, args):
    out = tmp_path / "never"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--steps", "3", "--out", str(out), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("defection: error:")
    assert not out.exists()
