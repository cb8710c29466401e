"""The public Python interface, the EMA Workbench helpers, and the executed examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isk_defection.experiments.api import (
    DEFAULT_OUTCOMES,
    ema_model,
    ema_parameters,
    outcome_names,
    run,
    salib_problem,
)
from isk_defection.experiments.calibration.priors import PRIORS
from isk_defection.model import DefectionModel
from isk_defection.model.policy import LEVERS

ROOT = Path(__file__).resolve().parents[1]


def test_run_returns_named_outcomes_reproducibly():
    first = run({"population": 300}, steps=8, outcomes=["isk_strength", "defection_rate"], seed=4)
    assert set(first) == {"isk_strength", "defection_rate"}
    assert all(isinstance(v, float) for v in first.values())
    assert run({"population": 300}, 8, ["isk_strength", "defection_rate"], seed=4) == first
    model = DefectionModel(population=300, rng=4, collect_agent_data="off")
    for _ in range(8):
        model.step()
    assert first["isk_strength"] == model.stats["isk_strength"]


def test_run_defaults_reductions_and_aliases():
    default = run({"population": 200}, steps=3)
    assert set(default) == set(DEFAULT_OUTCOMES)
    series = run({"population": 200}, 3, ["lever_counter_isk"], reduce="series")
    assert isinstance(series["lever_counter_isk"], np.ndarray)
    assert series["lever_counter_isk"].shape == (4,)  # weeks 0 to 3
    ramped = run(
        {"population": 200, "counter_isk": "ramp(0,1,0,3)"}, 3, ["lever_counter_isk"], reduce="sum"
    )
    assert ramped["lever_counter_isk"] == pytest.approx(0 + 1 / 3 + 2 / 3 + 1)
    alias = run(
        {"population": 200, "moderation": 0.7}, 1, ["lever_womens_rights", "lever_inclusion"]
    )
    assert alias == {"lever_womens_rights": 0.7, "lever_inclusion": 0.7}
    assert "isk_strength" in outcome_names() and "date" not in outcome_names()


def test_run_refuses_what_is_not_a_mapping_of_parameters_in_one_line():
    for bad, shown in (([("population", 300)], "list [('population', 300)]"), (None, "None")):
        with pytest.raises(ValueError) as error:
            run(bad)  # type: ignore[arg-type]
        assert str(error.value).startswith("parameters: must be a mapping") and shown in str(
            error.value
        )
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^moderation: .*one-dimensional .*shape \(1, 2\)\)$"):
        DefectionModel(population=100, moderation=np.array([[0.1, 0.2]]))


def test_salib_problem_uses_registry_ranges_narrowed_ranges_or_the_priors():
    problem = salib_problem(["counter_isk", "population"])
    assert problem["names"] == ["counter_isk", "population"]
    assert problem["bounds"] == [[0.0, 1.0], [10.0, 5_000_000.0]]
    narrowed = salib_problem(ranges={"recruitment_strength": (0.05, 0.2)})
    assert narrowed["bounds"] == [[0.05, 0.2]] and narrowed["num_vars"] == 1
    calibrated = salib_problem()
    assert calibrated["names"] == list(PRIORS)
    assert calibrated["bounds"] == [[p.low, p.high] for p in PRIORS.values()]
    with pytest.raises(ValueError, match="nosuch"):
        salib_problem(["nosuch"])
    with pytest.raises(ValueError, match=r"^ranges.counter_isk: must be \(low, high\) within"):
        salib_problem(ranges={"counter_isk": (0.2, 1.4)})


def test_ema_uncertainties_default_to_the_calibrated_priors_and_levers_are_levers():
    ema = pytest.importorskip("ema_workbench")
    every = {p.name: p for p in ema_parameters()}
    assert list(every) == list(PRIORS) and "population" not in every
    for name, prior in PRIORS.items():
        assert (every[name].lower_bound, every[name].upper_bound) == (prior.low, prior.high)
    made = {p.name: p for p in ema_parameters(["population", "recruitment_strength"])}
    assert isinstance(made["population"], ema.IntegerParameter)
    assert isinstance(made["recruitment_strength"], ema.RealParameter)
    narrowed = ema_parameters([], ranges={"recruitment_strength": (0.1, 0.2)})
    assert (narrowed[0].lower_bound, narrowed[0].upper_bound) == (0.1, 0.2)
    with pytest.raises(ValueError, match="^womens_rights: a policy lever"):
        ema_parameters(["womens_rights"])
    with pytest.raises(ValueError, match="^network: has no numeric range"):
        ema_parameters(["network"])
    model = ema_model(steps=2)
    assert [lever.name for lever in model.levers] == list(LEVERS)
    assert [u.name for u in model.uncertainties] == list(PRIORS)


def test_ema_policies_by_scenarios_replicated_over_seeds_with_weekly_series():
    ema = pytest.importorskip("ema_workbench")
    model = ema_model(
        {"recruitment_strength": (0.0, 0.3)},
        levers=["counter_isk"],
        outcomes=["isk_strength"],
        steps=4,
        replications=2,
        constants={"population": 200},
    )
    experiments, outcomes = ema.perform_experiments(model, scenarios=2, policies=2)
    assert len(experiments) == 4  # every policy in every scenario
    assert experiments["policy"].nunique() == 2 and experiments["scenario"].nunique() == 2
    series = outcomes["isk_strength"]
    assert series.shape == (4, 2, 5)  # experiments, replications, weeks 0 to 4
    assert not np.array_equal(series[:, 0], series[:, 1])  # the seeds differ
    seeds = [r["seed"] for r in model.replications]
    first = experiments.iloc[0]
    again = run(
        {
            "population": 200,
            "recruitment_strength": first["recruitment_strength"],
            "counter_isk": first["counter_isk"],
        },
        4,
        ["isk_strength"],
        seed=seeds[1],
        reduce="series",
    )
    assert np.allclose(series[0, 1], again["isk_strength"])


def test_the_ema_prim_example_runs():
    pytest.importorskip("ema_workbench")
    example = ROOT / "docs" / "examples" / "ema_prim.py"
    result = subprocess.run(
        [sys.executable, str(example), "--scenarios", "12", "--steps", "6", "--population", "200"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PRIM box" in result.stdout and "Sobol'" in result.stdout
    assert "3 policies x 12 scenarios, 2 seeds each" in result.stdout


def test_the_quickstart_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = ROOT / "docs" / "examples" / "quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots


def test_a_command_without_its_extra_says_which_to_install(monkeypatch, tmp_path, capsys):
    from isk_defection.experiments import extras
    from isk_defection.experiments.cli import main

    real = extras.importlib.util.find_spec
    monkeypatch.setattr(
        extras.importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "SALib" else real(name, *rest),
    )
    assert extras.missing("analysis") == ["SALib"] and extras.missing("optimize") == []
    spec = ROOT / "experiments" / "specs" / "example.toml"
    out = tmp_path / "sens"
    assert main(["sensitivity", str(spec), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "defection: error: defection sensitivity: needs the [analysis] extra "
        "(SALib not installed): pip install 'isk-defection[analysis]'"
    )
    assert not out.exists()  # refused before anything was written
    assert main(["calibrate", "--quick", "--out", str(out)]) == 2  # screening uses SALib
    assert "[calibrate]" in capsys.readouterr().err and not out.exists()
