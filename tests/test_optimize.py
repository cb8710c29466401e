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

[moderation]
levels = [0.5, 0.8]
timings = ["at_once", "late"]  # with 2 periods: "late" is the level in the second only
stress_paths = 2

[dose_response]
doses = [0.0, 0.8]

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
        ({"stress": {"target_shift": 0}}, "stress.target_shift"),
        ({"moderation": {"levels": [1.5]}}, "moderation.levels"),
        ({"moderation": {"levels": []}}, "moderation.levels"),
        ({"moderation": {"timings": ["soon"]}}, "moderation.timings"),
        ({"moderation": {"late_periods": 2}}, "moderation.late_periods"),
        ({"moderation": {"stress_paths": -1}}, "moderation.stress_paths"),
        # 3 levels x 2 timings do not fit beside the 2 references in a population of 6
        ({"moderation": {"levels": [0.3, 0.5, 0.8]}}, "moderation.levels"),
        ({"bounds": {"moderation": [0.0, 0.6]}}, "moderation.levels"),  # 0.8 out of bounds
        ({"dose_response": {"levers": ["nope"]}}, "dose_response.levers"),
        ({"dose_response": {"doses": [1.5]}}, "dose_response.doses"),
        ({"sensitivity": {"constraint": "nope"}}, "sensitivity.constraint"),
        ({"sensitivity": {"levels": [float("nan")]}}, "sensitivity.levels"),
        (
            {"constraints": {"regime_losses": {"max": 0.5, "max_vs_reference": 0.02}}},
            "constraints.regime_losses",
        ),
        (
            {
                "optimize": {"references": []},
                "constraints": {"regime_losses": {"max_vs_reference": 0.02}},
            },
            "constraints.regime_losses.max_vs_reference",
        ),
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
    # issue 21: the answer first, then each lever alone, constraints, lever by lever, regret
    sections = [
        "## Answer: when does moderation pay?",
        "### Conditions and uncertainty",
        "## What was searched",
        "## Each lever alone: dose-response before the search",
        "## Constraints: the answer under other limits",
        "## When does moderation pay? Lever by lever",
        "## Regret: which paths are never badly wrong",
        "## Stress test",
    ]
    places = [report.index(section) for section in sections]
    assert places == sorted(places)
    answer = (reference_run / "answer.md").read_text().strip()
    assert answer and "\n" not in answer and answer in report  # one paragraph, quoted
    assert "women's rights pays" in answer and "power sharing (inclusion) pays" in answer
    assert "Target: the median shift of each objective's robust statistic is at most 10%" in report
    for name in ("dose_response.csv", "constraint_sensitivity.csv", "regret.csv", "pays.csv"):
        assert (reference_run / name).is_file(), name
    for figure in ("dose_response.png", "regret.png"):
        assert (reference_run / figure).stat().st_size > 5_000, figure
    sensitivity = pd.read_csv(reference_run / "constraint_sensitivity.csv")
    assert sensitivity["level"].tolist() == ["none", "+1.2", "+0.6", "+0.3"]
    doses = pd.read_csv(reference_run / "dose_response.csv")
    assert set(doses["lever"]) == {"inclusion", "womens_rights"}
    assert len(doses) == 2 * (2 + 1) * 3  # levers x (doses and the actual policy) x measures
    assert (doses.loc[doses["actual"], ["effect_low", "effect_high"]] == 0).all().all()
    regret = pd.read_csv(reference_run / "regret.csv")
    assert {"baseline", "inclusive"} <= set(regret["policy"]) and (regret.filter(
        like="regret_") >= 0).all().all()  # fmt: skip
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
            "constraints": {"regime_losses": {"max_vs_reference": 0.05}},
        }
    )
    out = tmp_path / "posterior-run"
    optimize(spec, out, ensemble=load_ensemble(path), workers=2, progress=False)
    report = (out / "report.md").read_text()
    assert "no posterior given" not in report
    assert "posterior posterior.parquet (30 draws of 2 parameters" in report
    assert "cannot be answered yet" not in report
    assert "## When does moderation pay? Lever by lever" in report
    assert "minus the actual policy's in the same scenario) <= +0.05" in report
    pays = pd.read_csv(out / "pays.csv")
    assert len(pays) == 8 and {"pays_womens_rights", "pays_inclusion"} <= set(pays.columns)
    # the actual policy's stress runs recorded every calibration pattern
    from isk_defection.experiments.calibration.patterns import PATTERNS

    with np.load(out / "stress.npz") as stored:
        assert bool(stored["has_patterns"]) and stored["patterns"].shape == (8, len(PATTERNS))
        assert np.isfinite(stored["patterns"]).any(axis=0).sum() >= len(PATTERNS) // 2
    scenarios = pd.read_csv(out / "scenarios.csv")
    assert scenarios.loc[scenarios["sample"] == "out", "legitimacy_strength"].nunique() > 1
    # a parameter the posterior sets cannot also be fixed
    clash = load_optimize_spec(TINY | {"fixed": {"population": 200, "isk_size": 2_000}})
    with pytest.raises(ValueError, match="fixed.isk_size"):
        optimize(clash, tmp_path / "clash", ensemble=load_ensemble(path), progress=False)
    assert not (tmp_path / "clash").exists()


def test_scenario_discovery_finds_where_moderation_pays():
    """Synthetic stress results: the moderating path beats the actual policy exactly when
    legitimacy_strength > 0.3; PRIM must find that box (the EMA Workbench path), and the
    pattern that tracks legitimacy_strength must be named as the one that would move it."""
    pytest.importorskip("ema_workbench")
    from isk_defection.experiments.ensemble import Ensemble
    from isk_defection.experiments.policy_search.evaluate import Scenario
    from isk_defection.experiments.policy_search.moderation import lever_answers

    spec = load_optimize_spec(TINY)
    rng = np.random.default_rng(1)
    n = 80
    table = pd.DataFrame(
        {"draw": np.arange(n), "weight": np.full(n, 1 / n), "legitimacy_strength": rng.random(n)}
    )
    ensemble = Ensemble(table, {"model_version": "test"}, Path("synthetic.parquet"), "x")
    strength = table["legitimacy_strength"].to_numpy()
    fresh = [Scenario(i, i, i, {"legitimacy_strength": v}) for i, v in enumerate(strength)]
    x = np.zeros((2, len(spec.variables)))
    x[0, :2] = 0.8  # moderation_p1, moderation_p2: the moderating path
    actual = np.tile([1_000.0, 0.1, 0.3], (n, 1))  # isk_strength, regime_losses, resources
    pays = strength > 0.3
    moderating = np.where(pays[:, None], [900.0, 0.05, 0.4], [1_100.0, 0.2, 0.4])
    other = np.tile([1_100.0, 0.2, 0.2], (n, 1))
    patterns = pd.DataFrame(
        {"cohesion": rng.random(n), "isk_growth": 1.0 + strength + rng.normal(0, 0.05, n)}
    )
    answers, others = lever_answers(
        spec, ensemble, x, np.array([True, True]), np.stack([moderating, other]), actual, fresh,
        patterns,
    )  # fmt: skip
    assert set(answers) == {"womens_rights", "inclusion"} and not others.any()
    answer = answers["inclusion"]  # the alias moderation sets both levers
    assert answer.answerable and answer.paths == 1 and answer.feasible_paths == 1
    assert answer.pays.tolist() == pays.tolist()
    assert answer.interval[0] < answer.share < answer.interval[1]
    assert [b["parameter"] for b in answer.box] == ["legitimacy_strength"]
    assert answer.box[0]["low"] == pytest.approx(0.3, abs=0.05)
    assert answer.box_stats["density"] > 0.9
    assert answer.links == [
        {
            "parameter": "legitimacy_strength",
            "pattern": "isk_growth",
            "rho": pytest.approx(1, abs=0.05),
        }
    ]


def test_a_run_with_patterns_measures_the_same_and_records_every_pattern():
    """Going on to the patterns' last week does not change the measures of the first weeks."""
    from isk_defection.experiments.calibration.patterns import PATTERNS
    from isk_defection.experiments.policy_search.evaluate import RunTask, run_task

    spec = load_optimize_spec(TINY)
    task = RunTask(0, 0, "baseline", 20, 7, spec.fixed, spec.measures)
    plain = run_task(task)
    both = run_task(RunTask(0, 0, "baseline", 20, 7, spec.fixed, spec.measures, patterns=True))
    assert plain.error is None and both.error is None
    assert both.values == plain.values and plain.patterns is None
    assert both.patterns is not None and len(both.patterns) == len(PATTERNS)
    assert np.isfinite(both.patterns[0])  # isk_release, week 4


# ---------------------------------------------------------------- issue 21: moderation tested


def test_seeded_moderating_paths_are_in_generation_1_with_their_levels_and_timings(
    reference_run,
):
    """Every declared (level, timing) of the moderation lever was run in generation 1, the
    other levers at the actual policy's own path."""
    from isk_defection.experiments.policy_search.search import project

    spec = load_optimize_spec(TINY)
    assert [p.text() for p in spec.moderation_paths] == [
        "moderation 0.5 at once",
        "moderation 0.5 late",
        "moderation 0.8 at once",
        "moderation 0.8 late",
    ]
    archive = _tables(reference_run)["archive"]
    actual = dict(zip(spec.variables, project(spec, "baseline"), strict=True))
    for path in spec.moderation_paths:
        rows = archive[archive["seeded"] == path.text()]
        assert len(rows) == 1 and rows["generation"].iloc[0] == 1, path.text()
        row = rows.iloc[0]
        assert row["moderation_p2"] == pytest.approx(path.level)  # 2 periods, late = the last
        first = path.level if path.timing == "at_once" else actual["moderation_p1"]
        assert row["moderation_p1"] == pytest.approx(first)
        for name in spec.variables:  # every other lever as in the actual policy
            if not name.startswith("moderation"):
                assert row[name] == pytest.approx(actual[name]), (path.text(), name)
    assert (archive["seeded"] != "").sum() == len(spec.moderation_paths)


def test_moderating_paths_each_lever_alone_and_together_at_every_timing():
    from isk_defection.experiments.policy_search.search import initial_population, project

    spec = load_optimize_spec(
        TINY
        | {
            "optimize": TINY["optimize"]
            | {"periods": 4, "period_weeks": 5, "levers": ["womens_rights", "inclusion"]},
            "algorithm": {"population": 12, "generations": 1},
            "moderation": {"levels": [0.8], "timings": ["at_once", "ramped", "late"]},
        }
    )
    assert spec.late_periods == 2  # half the periods by default
    population = initial_population(spec, np.random.default_rng(0))
    assert len(population) == spec.population
    actual = project(spec, "baseline")
    wr, inc = slice(0, 4), slice(4, 8)
    expected = []
    for timing in ("at_once", "ramped", "late"):
        for levers in (("womens_rights",), ("inclusion",), ("womens_rights", "inclusion")):
            row = actual.copy()
            for name in levers:
                block = wr if name == "womens_rights" else inc
                start = actual[block][0]
                row[block] = {
                    "at_once": [0.8] * 4,
                    "ramped": [start + (0.8 - start) * k / 4 for k in (1, 2, 3, 4)],
                    "late": [*actual[block][:2], 0.8, 0.8],
                }[timing]
            expected.append(np.round(row / 0.1) * 0.1)  # TINY's grid
    # generation 1: the two references, then the nine moderating paths in declared order
    assert len(spec.moderation_paths) == 9
    np.testing.assert_allclose(population[2:11], np.array(expected), atol=1e-9)
    assert population[2 + 1][wr].tolist() == actual[wr].tolist()  # inclusion alone


def test_relative_constraint_accepts_and_rejects_by_the_paired_difference():
    from isk_defection.experiments.policy_search.robust import (
        constraint_values,
        constraint_violations,
    )

    spec = load_optimize_spec(TINY | {"constraints": {"regime_losses": {"max_vs_reference": 0.02}}})
    (constraint,) = spec.constraints
    assert constraint.relative and constraint.upper and constraint.bound == 0.02
    column = [m.name for m in spec.measures].index("regime_losses")
    actual = np.zeros((3, len(spec.measures)))
    actual[:, column] = [0.30, 0.05, 0.10]  # the actual policy's losses, scenario by scenario
    paths = np.repeat(actual[None], 3, axis=0)
    paths[0, :, column] += [0.01, 0.01, 0.01]  # +1 point on average: accepted
    paths[1, :, column] += [0.00, 0.03, 0.06]  # +3 points on average: rejected
    paths[2, :, column] = [0.29, 0.04, 0.09]  # better than the actual policy everywhere
    np.testing.assert_allclose(constraint_values(spec, paths, actual)[:, 0], [0.01, 0.03, -0.01])
    violations = constraint_violations(spec, paths, actual)[:, 0]
    assert (violations <= 0).tolist() == [True, False, True]
    # an absolute 5% limit would reject all three (the actual policy itself loses 15%)
    absolute = load_optimize_spec(TINY | {"constraints": {"regime_losses": {"max": 0.05}}})
    assert not (constraint_violations(absolute, paths, actual)[:, 0] <= 0).any()
    # p90 of the paired difference
    p90 = load_optimize_spec(
        TINY | {"constraints": {"regime_losses": {"statistic": "p90", "max_vs_reference": 0.05}}}
    )
    expected = np.quantile([0.00, 0.03, 0.06], 0.9)
    assert constraint_values(p90, paths[1:2], actual)[0, 0] == pytest.approx(expected)


def test_constraint_sensitivity_filters_the_archive_and_recomputes_the_front():
    """A hand-built archive whose fronts under each limit are known."""
    from isk_defection.experiments.policy_search.sensitivity import sensitivity_table

    spec = load_optimize_spec(
        TINY
        | {
            "constraints": {"regime_losses": {"max_vs_reference": 0.02}},
            "sensitivity": {"levels": [0.05, 0.0]},
        }
    )
    assert spec.sensitivity_levels == (0.05, 0.0)  # loose to tight
    x = np.zeros((5, len(spec.variables)))
    x[0, :2] = 0.8  # moderation_p1, moderation_p2
    x[3, :2] = 0.6
    # losses (isk_strength, regime_losses, -resources); the actual policy at (2, 2, -2)
    losses = np.array(
        [[1, 1, -3], [2, 2, -2], [3, 1.5, -1], [0.5, 3, -1], [2.5, 2.5, -1.5]], dtype=float
    )
    # the constraint's statistic: regime losses minus the actual policy's
    values = np.array([[0.04], [0.0], [-0.01], [0.10], [0.0]])
    table = sensitivity_table(spec, x, losses, values, np.array([2.0, 2.0, -2.0]), np.zeros(1))
    assert table["level"].tolist() == ["none", "+0.05", "+0"]
    assert table["feasible_paths"].tolist() == [5, 4, 3]
    assert table["front"].tolist() == [2, 1, 2]  # {0, 3}; {0}; {1, 2}
    assert table["moderating_on_front"].tolist() == [2, 1, 0]
    assert table["inclusion_on_front"].tolist() == [2, 1, 0]  # the alias sets both levers
    assert table["actual_feasible"].all()
    assert table["actual_dominated"].tolist() == [True, True, False]  # path 1 only ties it
    assert table["best_moderating_path"].tolist() == [0, 0, -1]
    first = table.iloc[0]
    assert (first["delta_isk_strength"], first["delta_regime_losses"]) == (-1.0, -1.0)
    assert first["delta_resources"] == 1.0  # to maximise: +1 is better
    assert np.isnan(table.iloc[2]["delta_isk_strength"])


def test_regret_against_the_best_policy_in_each_scenario():
    from isk_defection.experiments.policy_search.regret import regret_table

    spec = load_optimize_spec(TINY)
    names = [m.name for m in spec.measures]
    assert names == ["isk_strength", "regime_losses", "resources"]
    values = np.zeros((3, 4, 3))
    values[:, :, 0] = [[10, 20, 30, 40], [12, 18, 30, 50], [11, 25, 20, 45]]  # to minimise
    values[:, :, 2] = [[0.5] * 4, [0.6, 0.4, 0.5, 0.5], [0.5, 0.5, 0.7, 0.5]]  # to maximise
    table = regret_table(spec, ["A", "B", "C"], ["pareto"] * 3, values).set_index("policy")
    # regrets A [0, 2, 10, 0], B [2, 0, 10, 10], C [1, 7, 0, 5]: p90 (linear) 7.6, 10, 6.4
    assert table["regret_isk_strength"].to_dict() == pytest.approx({"A": 7.6, "B": 10, "C": 6.4})
    # resources: A [.1, 0, .2, 0], B [0, .1, .2, 0], C [.1, 0, 0, 0]
    assert table["regret_resources"].to_dict() == pytest.approx({"A": 0.17, "B": 0.17, "C": 0.07})
    assert (table["regret_regime_losses"] == 0).all()
    # scaled by the median spread (8.5 people, 0.1): C is never badly wrong, then A, B
    assert list(table.index) == ["C", "A", "B"]
    assert table.loc["C", "worst_scaled"] == pytest.approx(6.4 / 8.5)


def test_dose_response_table_and_no_effect_at_the_actual_policys_dose():
    """With the inclusive government as the actual policy (inclusion held at 0.8, women's
    rights at 0.5), the doses 0.8 and 0.5 are that policy exactly: in every scenario the
    same run, effect 0; another dose moves the measures."""
    from isk_defection.experiments.ensemble import defaults_ensemble
    from isk_defection.experiments.policy_search.dose_response import dose_table, run_dose_response
    from isk_defection.experiments.policy_search.search import scenarios
    from isk_defection.experiments.sweep import executor

    spec = load_optimize_spec(
        TINY
        | {
            "optimize": TINY["optimize"] | {"references": ["inclusive", "baseline"]},
            "dose_response": {"doses": [0.2, 0.5, 0.8]},
        }
    )
    assert spec.dose_levers == ("inclusion", "womens_rights")
    scenes = scenarios(defaults_ensemble(), 1, 2, np.random.SeedSequence(3))
    with executor(1, None, False) as pool:
        dose = run_dose_response(spec, scenes, pool, None)
    assert dose is not None and dose.values.shape == (2, 3, 2, len(spec.measures))
    table = dose_table(spec, dose)
    assert len(table) == 2 * (3 + 1) * len(spec.measures)  # levers x (doses, actual) x measures
    assert dose.actual_level == pytest.approx({"inclusion": 0.8, "womens_rights": 0.5})
    effects = ["effect_median", "effect_low", "effect_high"]
    for lever, at in (("inclusion", 0.8), ("womens_rights", 0.5)):
        same = table[(table["lever"] == lever) & np.isclose(table["dose"], at)]
        assert len(same) == 2 * len(spec.measures)  # the dose and the actual row
        assert (same[effects] == 0).all().all() and (same["beats_share"] == 0).all()
        other = table[(table["lever"] == lever) & (table["dose"] == 0.2)]
        assert (other["effect_median"] != 0).any()
