"""defection optimize: spec checks, robust statistics, a truly non-dominated Pareto set, the
same front on every engine, SIGKILL + --resume, and the report's labels.

The searches are tiny (200 agents, 20 weeks, 6 paths x 4 generations) so that the file
runs in about a minute; what they check does not depend on size.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isk_defection.experiments.cli import main
from isk_defection.experiments.ensemble import load_ensemble, write_ensemble
from isk_defection.experiments.optimize import optimize
from isk_defection.experiments.policy_search.robust import (
    additive_epsilon,
    dominates,
    non_dominated,
    statistic,
)
from isk_defection.experiments.policy_search.search import CHECKPOINT
from isk_defection.experiments.spec import lever_targets, load_optimize_spec
from isk_defection.model.policy import LEVERS

ROOT = Path(__file__).absolute().parents[1]
TINY_TOML = """
[optimize]
name = "tiny"
steps = 20
periods = 2
period_weeks = 8
seed = 5
resolution = 0.1
levers = ["moderation", "crackdown_ttp", "counter_isk"]

[fixed]
population = 200

[robustness]
draws = 1
seeds = 2

[algorithm]
population = 6
generations = 4
pareto_max = 50  # no trimming: the set is every non-dominated path found

[objectives.isk_strength]
statistic = "p90"

[objectives.regime_losses]
statistic = "mean"

[objectives.resources]
statistic = "p90"

[constraints.regime_losses]
max = 0.6

[stress]
draws = 2
seeds = 1

[quick.algorithm]
generations = 2
"""
TINY = tomllib.loads(TINY_TOML)
SENSES = {"isk_strength": "min", "regime_losses": "min", "resources": "max"}
OBJECTIVES = list(SENSES)


def _losses(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([frame[o] * (1 if s == "min" else -1) for o, s in SENSES.items()])


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        "pareto": pd.read_parquet(folder / "pareto.parquet"),
        "archive": pd.read_parquet(folder / "archive.parquet"),
        "convergence": pd.read_csv(folder / "convergence.csv"),
        "references": pd.read_csv(folder / "references.csv"),
    }


def _same(a: Path, b: Path) -> None:
    left, right = _tables(a), _tables(b)
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The tiny search on one local worker: the result every other engine must match."""
    out = tmp_path_factory.mktemp("optimize") / "one"
    optimize(load_optimize_spec(TINY), out, workers=1, progress=False)
    return out


# ---------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"optimize": {"steps": 0}}, "optimize.steps"),
        ({"optimize": {"periods": 3, "period_weeks": 8}}, "optimize.periods"),
        ({"optimize": {"levers": ["moderation", "no_lever"]}}, "optimize.levers"),
        ({"optimize": {"preset": "nonesuch"}}, "preset"),
        ({"optimize": {"references": ["nonesuch"]}}, "optimize.references"),
        ({"optimize": {"colour": 1}}, "optimize.colour"),
        ({"bounds": {"crackdown_ttp": [0.5, 0.2]}}, "bounds.crackdown_ttp"),
        ({"bounds": {"witch_hunt": [0.0, 0.5]}}, "bounds.witch_hunt"),
        ({"fixed": {"population": -3}}, "population"),
        ({"fixed": {"counter_isk": 0.5}}, "fixed.counter_isk"),
        ({"fixed": {"nonesuch": 1}}, "fixed.nonesuch"),
        ({"robustness": {"draws": 0}}, "robustness.draws"),
        ({"algorithm": {"name": "cmaes"}}, "algorithm.name"),
        ({"algorithm": {"population": 2}}, "algorithm.population"),
        ({"objectives": {"isk_strength": {"statistic": "p50"}}}, "objectives.isk_strength"),
        ({"objectives": {"isk_strength": {"measure": "happiness"}}}, "objectives.isk_strength"),
        ({"objectives": {"isk_strength": {"sense": "up"}}}, "objectives.isk_strength.sense"),
        ({"constraints": {"regime_losses": {"below": 0.1}}}, "constraints.regime_losses"),
        ({"constraints": {"regime_losses": {"max": 0.1, "min": 0.0}}}, "constraints.regime_losses"),
        ({"stress": {"draws": -1}}, "stress.draws"),
        ({"nonesuch": {}}, "nonesuch"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_field(change, field):
    spec = {k: dict(v) for k, v in TINY.items()}
    for section, values in change.items():
        spec[section] = spec.get(section, {}) | values
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as error:
        load_optimize_spec(spec)
    assert "\n" not in str(error.value)


def test_bad_spec_on_the_command_line_exits_2_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY_TOML.replace("seeds = 2", "seeds = 0"))
    out = tmp_path / "out"
    assert main(["optimize", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "robustness.seeds" in err
    assert not out.exists()
    bad_posterior = tmp_path / "posterior.parquet"
    bad_posterior.write_text("not parquet")
    spec.write_text(TINY_TOML)
    assert main(["optimize", str(spec), "--out", str(out), "--posterior", str(bad_posterior)]) == 2
    assert "posterior" in capsys.readouterr().err
    assert not out.exists()


def test_quick_merges_its_tables_and_changes_the_hash():
    full, quick = load_optimize_spec(TINY), load_optimize_spec(TINY, quick=True)
    assert (full.generations, quick.generations) == (4, 2)
    assert full.population == quick.population
    assert full.digest != quick.digest


def test_the_example_spec_loads_in_both_modes():
    example = ROOT / "experiments" / "specs" / "optimize_example.toml"
    full = load_optimize_spec(example)
    quick = load_optimize_spec(example, quick=True)
    assert full.steps == 208 and full.periods * full.period_weeks <= full.steps
    assert quick.population < full.population and quick.generations < full.generations
    assert full.references[0] == "baseline"  # the actual policy comes first
    assert {o.name for o in full.objectives} >= {"isk_strength", "resources", "attacks"}


def test_moderation_is_an_alias_when_the_model_splits_it():
    targets = lever_targets("moderation")
    if "moderation" in LEVERS:
        assert targets == ("moderation",)
    else:
        assert targets == ("womens_rights", "inclusion")


# ---------------------------------------------------------------- statistics and dominance


def test_robust_statistics():
    losses = np.arange(1.0, 11.0)  # ten scenarios
    assert statistic(losses, "mean") == pytest.approx(5.5)
    assert statistic(losses, "p90") == pytest.approx(np.quantile(losses, 0.9))
    # to maximise, the loss is the negated value: p90 of the loss is the 10th percentile
    values = np.arange(1.0, 11.0)
    assert -statistic(-values, "p90") == pytest.approx(np.quantile(values, 0.1))
    # regret: paired with the reference in the same scenario
    reference = losses - 1.0
    assert statistic(losses, "regret", reference) == pytest.approx(1.0)


def test_dominance_and_epsilon():
    a, b, c = np.array([1.0, 1.0]), np.array([2.0, 1.0]), np.array([0.0, 3.0])
    assert dominates(a, b) and not dominates(b, a) and not dominates(a, a)
    assert non_dominated(np.stack([a, b, c])).tolist() == [True, False, True]
    scale = np.ones(2)
    assert additive_epsilon(np.stack([a]), np.array([2.0, 3.0]), scale) == pytest.approx(-1.0)
    assert additive_epsilon(np.stack([a]), np.array([0.5, 3.0]), scale) == pytest.approx(0.5)


def test_a_run_records_only_what_its_measures_read_and_measures_every_week(monkeypatch):
    """The worker's run keeps only the measures' columns, and they are the weeks' own values.

    The oracle steps a model that records everything and reads each week's columns as
    they are reported (``model.stats``); the task's measures must be those exactly.
    """
    from isk_defection.experiments.policy_search.evaluate import RunTask, _simulate, run_task
    from isk_defection.experiments.policy_search.measures import faction_sizes
    from isk_defection.model import DefectionModel

    spec = load_optimize_spec(TINY)
    params = spec.fixed | {"crackdown_ttp": 0.7}
    task = RunTask(0, 0, "baseline", 15, 11, params, spec.measures)
    result = run_task(task)
    assert result.error is None and result.cpu > 0
    model = DefectionModel(preset="baseline", rng=11, **params, collect_agent_data=False)
    needed = sorted({c for m in spec.measures for c in m.needs()})
    weeks = [model.stats]
    for _ in range(15):
        model.step()
        weeks.append(model.stats)
    series = {c: np.array([float(w[c]) for w in weeks]) for c in needed}
    sizes = faction_sizes(model.p)
    expected = tuple(m.compute({c: series[c] for c in m.needs(set(needed))}, sizes)
                     for m in spec.measures)  # fmt: skip
    assert result.values == expected
    assert _simulate(task) == expected  # the same seed, the same run
    recorded = []
    original = DefectionModel.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        recorded.append(list(self.datacollector.model_reporters))

    monkeypatch.setattr(DefectionModel, "__init__", spy)
    _simulate(task)
    assert recorded == [needed]


# ---------------------------------------------------------------- the search


def test_pareto_set_is_truly_non_dominated(reference_run):
    tables = _tables(reference_run)
    pareto, archive = tables["pareto"], tables["archive"]
    assert len(pareto) >= 1 and pareto["feasible"].all()
    front = _losses(pareto)
    for i in range(len(front)):  # no member dominates another
        assert not any(dominates(front[j], front[i]) for j in range(len(front)) if j != i)
    feasible = _losses(archive[archive["feasible"]])
    for row in front:  # nothing evaluated and feasible dominates a member
        assert not any(dominates(other, row) for other in feasible)
    # and every feasible evaluated path not in the set is dominated or equal to a member
    levers = [c for c in pareto.columns if c.endswith(("_p1", "_p2"))]
    members = {tuple(r) for r in pareto[levers].to_numpy()}
    for path, row in zip(archive[archive["feasible"]][levers].to_numpy(), feasible, strict=True):
        if tuple(path) not in members:
            assert any(dominates(m, row) or np.array_equal(m, row) for m in front)


def test_outputs_and_labels(reference_run):
    for name in ("pareto.parquet", "archive.parquet", "report.md", "manifest.json"):
        assert (reference_run / name).is_file(), name
    for figure in ("convergence.png", "parallel.png", "tradeoffs.png", "levers.png"):
        assert (reference_run / figure).stat().st_size > 5_000, figure
    tables = _tables(reference_run)
    pareto = tables["pareto"]
    assert pareto["ensemble"].str.contains("no posterior given").all()
    assert {f"{o}_out" for o in OBJECTIVES} <= set(pareto.columns)  # stress test
    assert {"moderation_p1", "moderation_p2", "counter_isk_p2"} <= set(pareto.columns)
    assert len(tables["convergence"]) == 4
    hv = tables["convergence"]["hypervolume"].to_numpy()
    assert np.all(np.diff(hv) >= -1e-12)  # the front found so far never recedes
    assert list(tables["references"]["policy"]) == ["baseline", "inclusive"]
    report = (reference_run / "report.md").read_text()
    assert "Not robust across the posterior: no posterior given" in report
    assert "cannot be answered yet: no posterior given" in report
    assert "actual 2021-23 policy" in report and "inclusive government" in report
    manifest = json.loads((reference_run / "manifest.json").read_text())
    assert (
        manifest["status"] == "finished" and "no posterior given" in manifest["ensemble"]["label"]
    )


def test_same_front_on_two_workers_and_on_a_local_dask_cluster(reference_run, tmp_path):
    spec = load_optimize_spec(TINY)
    optimize(spec, tmp_path / "two", workers=2, progress=False)
    _same(reference_run, tmp_path / "two")
    pytest.importorskip("dask.distributed")
    optimize(spec, tmp_path / "dask", workers=2, local_cluster=True, progress=False)
    _same(reference_run, tmp_path / "dask")


def test_an_existing_folder_needs_resume_and_the_same_spec(reference_run, tmp_path):
    with pytest.raises(ValueError, match="--resume"):
        optimize(load_optimize_spec(TINY), reference_run, workers=1, progress=False)
    with pytest.raises(ValueError, match="another optimisation"):
        optimize(load_optimize_spec(TINY, quick=True), reference_run, resume=True, progress=False)


def _generation(out: Path) -> int:
    try:
        with open(out / CHECKPOINT, "rb") as handle:
            return pickle.load(handle).generation
    except (FileNotFoundError, EOFError, pickle.UnpicklingError):
        return 0


def test_sigkill_then_resume_gives_the_same_result(reference_run, tmp_path):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY_TOML)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "isk_defection.experiments.cli", "optimize", str(spec_file)]
    command += ["--out", str(out), "--workers", "1", "-q"]
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _generation(out) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, "finished before it could be killed"
            time.sleep(0.02)
        assert _generation(out) >= 2
        os.killpg(process.pid, signal.SIGKILL)  # the search and its worker, mid-generation
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not (out / "report.md").exists()
    killed_at = _generation(out)
    assert killed_at < 4
    journalled = len((out / "runs.jsonl").read_text().splitlines())
    optimize(load_optimize_spec(TINY), out, workers=1, resume=True, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed"], "the manifest records the resumption"
    _same(reference_run, out)
    # the runs finished before the kill were kept, not run again
    lines = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert journalled > 0 and len(lines) == len({line["key"] for line in lines})


def test_with_a_posterior_the_report_runs_scenario_discovery(tmp_path):
    pytest.importorskip("ema_workbench")
    rng = np.random.default_rng(0)
    n = 30
    table = pd.DataFrame(
        {
            "draw": np.arange(n),
            "weight": np.full(n, 1 / n),
            "legitimacy_strength": rng.uniform(0.05, 0.6, n),
            "isk_size": rng.integers(1_500, 3_000, n),
        }
    )
    path = tmp_path / "posterior.parquet"
    write_ensemble(table, path, model_version="test", fitted_to="synthetic draws")
    spec = load_optimize_spec(
        TINY
        | {
            "algorithm": {"population": 6, "generations": 2, "pareto_max": 4},
            "stress": {"draws": 8, "seeds": 1},
            "optimize": TINY["optimize"] | {"moderation_level": 0.3},
        }
    )
    out = tmp_path / "posterior-run"
    optimize(spec, out, ensemble=load_ensemble(path), workers=2, progress=False)
    report = (out / "report.md").read_text()
    assert "no posterior given" not in report
    assert "posterior posterior.parquet (30 draws of 2 parameters" in report
    assert "cannot be answered yet" not in report
    assert (
        ("Moderation pays" in report)
        or ("Moderation does not pay" in report)
        or ("no region to discover" in report)
    )
    scenarios = pd.read_csv(out / "scenarios.csv")
    assert scenarios.loc[scenarios["sample"] == "out", "legitimacy_strength"].nunique() > 1
    # a parameter the posterior sets cannot also be fixed
    clash = load_optimize_spec(TINY | {"fixed": {"population": 200, "isk_size": 2_000}})
    with pytest.raises(ValueError, match="fixed.isk_size"):
        optimize(clash, tmp_path / "clash", ensemble=load_ensemble(path), progress=False)
    assert not (tmp_path / "clash").exists()


def test_scenario_discovery_finds_where_moderation_pays():
    """Synthetic stress results: the moderating path beats the actual policy exactly when
    legitimacy_strength > 0.3; PRIM must find that box (the EMA Workbench path)."""
    pytest.importorskip("ema_workbench")
    from isk_defection.experiments.ensemble import Ensemble
    from isk_defection.experiments.policy_search.analysis import ParetoSet, moderation_pays
    from isk_defection.experiments.policy_search.evaluate import Scenario

    spec = load_optimize_spec(TINY)
    rng = np.random.default_rng(1)
    n = 80
    table = pd.DataFrame(
        {"draw": np.arange(n), "weight": np.full(n, 1 / n), "legitimacy_strength": rng.random(n)}
    )
    ensemble = Ensemble(table, {"model_version": "test"}, Path("synthetic.parquet"), "x")
    fresh = [Scenario(i, i, i, {"legitimacy_strength": v}) for i, v in enumerate(table.iloc[:, 2])]
    x = np.zeros((2, len(spec.variables)))
    x[0, :2] = 0.8  # moderation_p1, moderation_p2: the moderating path
    front = ParetoSet(x, np.zeros(0), np.zeros(0), np.zeros(0), True, 2, 2)
    actual = np.tile([1_000.0, 0.1, 0.3], (n, 1))  # isk_strength, regime_losses, resources
    pays = table["legitimacy_strength"].to_numpy() > 0.3
    moderating = np.where(pays[:, None], [900.0, 0.05, 0.4], [1_100.0, 0.2, 0.4])
    other = np.tile([1_100.0, 0.2, 0.2], (n, 1))
    answer = moderation_pays(spec, ensemble, front, np.stack([moderating, other]), actual, fresh)
    assert answer.answerable and answer.moderating_paths == 1
    assert answer.pays.tolist() == pays.tolist() and not answer.other.any()
    box = answer.boxes["pays"]
    assert [b["parameter"] for b in box] == ["legitimacy_strength"]
    assert box[0]["low"] == pytest.approx(0.3, abs=0.05)
    assert answer.box_stats["pays"]["density"] > 0.9
    assert answer.boxes["does_not_pay"][0]["high"] == pytest.approx(0.3, abs=0.05)
