"""Calibration as inference: patterns, distance, priors, ABC-SMC plumbing, posterior verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from isk_defection.experiments.calibration import abc, diagnostics
from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.priors import PRIORS, sample
from isk_defection.experiments.claims import posterior as verdicts
from isk_defection.experiments.claims.framework import DoseResponse
from isk_defection.experiments.ensemble import load_ensemble
from isk_defection.model.parameters import PARAMETERS, STUDY_POPULATION


def test_every_pattern_has_a_source_and_a_role():
    assert len(pat.CONSTRAINING) == 12
    for p in pat.PATTERNS:
        assert p.source and p.reported and p.low < p.high
        assert p.constraining or p.construction  # by construction says why


def test_miss_is_zero_inside_and_grows_outside_in_band_widths():
    p = next(p for p in pat.PATTERNS if p.name == "attacks_2022")  # [120, 208]
    misses = p.miss(np.array([150.0, 120.0, 208.0, 296.0, 32.0, np.nan]))
    assert misses[:3].tolist() == [0, 0, 0]
    assert misses[3] == pytest.approx(1.0) and misses[4] == pytest.approx(1.0)
    assert np.isinf(misses[5])
    open_band = next(p for p in pat.PATTERNS if p.name == "former_ratio")  # >= 1
    assert open_band.miss(np.array([1e6, 0.5])).tolist() == [0.0, 0.5]


def test_band_distance_is_zero_only_when_every_band_is_met():
    bands = abc.Bands.reported()
    inside = {p.name: (p.low + min(p.high, p.low + p.unit)) / 2 for p in pat.CONSTRAINING}
    distance = abc.BandDistance(bands)
    assert distance(inside) == 0.0
    assert distance(inside | {"attack_fall": 0.36}) == pytest.approx(1.0)  # one width above
    assert distance(inside | {"isk_2024": float("nan")}) == float("inf")


def test_synthetic_bands_are_centred_on_the_synthetic_values():
    values = {p.name: 2 * p.low + 1 for p in pat.CONSTRAINING}
    bands = abc.Bands.around(values)
    assert abc.BandDistance(bands)(values) == 0.0
    p = pat.CONSTRAINING[1]
    assert bands.high[p.name] - bands.low[p.name] == pytest.approx(p.unit)


def test_priors_lie_within_the_registry_and_sample_inside():
    for prior in PRIORS.values():
        registry = PARAMETERS[prior.name]
        assert registry.low <= prior.low < prior.high <= registry.high and prior.why
    draws = sample(500, np.random.default_rng(0), ["attack_rate", "isk_reach"])
    assert draws[:, 0].min() >= 20 and draws[:, 0].max() <= 100
    assert draws[:, 1].min() >= 0.005 and draws[:, 1].max() <= 0.1


def test_wilson_interval_stays_in_unit_interval_and_covers():
    assert verdicts.wilson(0, 10)[0] == 0.0 and verdicts.wilson(10, 10)[1] == pytest.approx(1.0)
    low, high = verdicts.wilson(30, 100)
    assert 0.2 < low < 0.3 < high < 0.41


def test_verdict_thresholds():
    assert verdicts.decide(0.9) == "REPRODUCED"
    assert verdicts.decide(0.1) == "NOT REPRODUCED"
    assert verdicts.decide(0.5) == "DEPENDS"


def test_prim_finds_the_region_where_a_claim_fails():
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.random(400), "b": rng.random(400)})
    fails = x["a"].to_numpy() > 0.7
    text = verdicts.prim(x, fails)
    assert "`a` >" in text and "`b`" not in text
    cut = float(text.split("`a` >")[1].split()[0])
    assert 0.6 < cut < 0.8


def test_dose_response_reports_the_onset_dose_and_decides_on_the_top_dose():
    rng = np.random.default_rng(2)
    rows = [
        {"dose": d, "y": (1.0 if d >= 0.5 else 0.0) + rng.normal(0, 0.05)}
        for d in (0.0, 0.25, 0.5, 1.0)
        for _ in range(10)
    ]
    result = DoseResponse("rises", "y", "dose").evaluate(pd.DataFrame(rows))
    assert result.passed and "appears at dose 0.5" in result.rule
    falling = DoseResponse("falls", "y", "dose", direction=-1).evaluate(pd.DataFrame(rows))
    assert not falling.passed


def test_identifiability_words_follow_the_credible_interval_width():
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {"attack_rate": rng.uniform(20, 100, 400), "isk_reach": rng.normal(0.05, 0.002, 400)}
    )
    ident = diagnostics.identifiability(table, np.full(400, 1 / 400)).set_index("parameter")
    assert ident.loc["attack_rate", "identified"].startswith("not identified")
    assert ident.loc["isk_reach", "identified"] == "identified"


def test_abc_smc_runs_and_writes_a_loadable_posterior(tmp_path):
    """Plumbing at a toy budget (300 agents): pyabc runs, the ensemble file loads."""
    from isk_defection.experiments.calibration.command import write_posterior

    budget = abc.Budget(particles=4, generations=1, simulations=12, minutes=3, agents=300)
    fit = abc.calibrate(tmp_path, ["attack_rate", "attrition_rate"], budget, progress=False)
    assert len(fit["table"]) == 4 and fit["simulations"] >= 4
    assert fit["weights"].sum() == pytest.approx(1.0)
    assert (tmp_path / abc.DB).exists()
    kept = {"fixed": {}, "method": "test", "rule": "test"}
    path = write_posterior(tmp_path, fit, ["attack_rate", "attrition_rate"], kept, budget, True)
    ensemble = load_ensemble(path)
    assert ensemble.parameters == ["attack_rate", "attrition_rate"]
    assert ensemble.meta["fitted_to"] == [p.name for p in pat.CONSTRAINING]
    assert ensemble.table["attack_rate"].between(20, 100).all()
    # --resume with the budget spent only re-reads; with a larger one it goes on
    names = ["attack_rate", "attrition_rate"]
    same = abc.calibrate(tmp_path, names, budget, resume=True, progress=False)
    assert len(same["generations"]) == 1 and same["simulations"] == fit["simulations"]
    larger = dataclasses.replace(budget, generations=2, simulations=400)  # room for one more
    more = abc.calibrate(tmp_path, names, larger, resume=True, progress=False)
    assert len(more["generations"]) == 2 and more["simulations"] > fit["simulations"]


def test_run_takes_a_posterior_draw_and_refuses_draw_without_posterior(tmp_path, capsys):
    import json

    from isk_defection.experiments.cli import main
    from isk_defection.experiments.ensemble import write_ensemble

    table = pd.DataFrame({"draw": [0, 1], "weight": [0.5, 0.5], "attack_rate": [30.0, 70.0]})
    path = write_ensemble(
        table, tmp_path / "post.parquet", model_version="test", fitted_to=["isk_release"]
    )
    out = tmp_path / "run"
    assert main(["run", "--steps", "2", "--posterior", str(path), "--draw", "1",
                 "--out", str(out), "-q"]) == 0  # fmt: skip
    assert json.loads((out / "run.json").read_text())["parameters"]["attack_rate"] == 70.0
    assert main(["run", "--steps", "2", "--draw", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--draw: only with --posterior" in capsys.readouterr().err


def test_reproduce_across_a_posterior_writes_shares_and_the_report_table(tmp_path):
    import json

    from isk_defection.experiments.claims.runner import reproduce
    from isk_defection.experiments.ensemble import write_ensemble

    table = pd.DataFrame({"draw": [0, 1], "weight": [0.5, 0.5], "attack_rate": [30.0, 70.0]})
    path = write_ensemble(
        table, tmp_path / "post.parquet", model_version="test", fitted_to=["isk_release"]
    )
    out = tmp_path / "reproduce"
    verdicts_ = reproduce(["C9", "G1"], out, posterior=path, draws=3, workers=2, progress=False)
    result = json.loads((out / "C9" / "posterior.json").read_text())
    assert result["draws"] == 3 and 0 <= result["share"] <= 1
    assert result["share_interval"][0] <= result["share"] <= result["share_interval"][1]
    assert verdicts_["C9"] == result["verdict"] == verdicts.decide(result["share"])
    draws = pd.read_csv(out / "C9" / "posterior_draws.csv")
    assert set(draws.attack_rate) <= {30.0, 70.0} and len(draws) == 3
    report = (out / "REPORT.md").read_text()
    assert "## Verdicts across the posterior" in report and "| [C9](C9/posterior.md)" in report


def test_the_proposal_keeps_every_importance_weight_bounded_and_redraws_weak_parameters():
    """prior / proposal <= 1 / DEFENSIVE_SHARE anywhere in the prior: no weight collapse."""
    from isk_defection.experiments.calibration.priors import PRIORS

    names, kernel = ["attack_rate", "attrition_rate", "isk_reach"], ["attack_rate"]
    rng = np.random.default_rng(3)
    population = pd.DataFrame(  # a population piled up in one corner of the prior
        {n: PRIORS[n].low + PRIORS[n].width * rng.uniform(0, 0.05, 50) for n in names}
    )
    proposal = abc.transitions(names, kernel)
    proposal.fit(population, np.full(50, 1 / 50))
    np.random.seed(4)  # pyabc draws from NumPy's global generator
    draws = pd.DataFrame([dict(proposal.rvs_single()) for _ in range(2_000)])
    prior = np.prod([1 / PRIORS[n].width for n in names])
    weights = prior / proposal.pdf(draws[names])
    assert weights.max() <= 1 / abc.DEFENSIVE_SHARE + 1e-9
    # the kernel stays near the population; the weak parameters spread over their prior
    corner = PRIORS["attack_rate"].low + 0.2 * PRIORS["attack_rate"].width
    assert (draws.attack_rate < corner).mean() > 0.7
    isk = (draws.isk_reach - PRIORS["isk_reach"].low) / PRIORS["isk_reach"].width
    assert 0.4 < isk.mean() < 0.6 and isk.between(0, 1).all()
    # and a point far from the population is still proposed with the prior's share
    far = pd.DataFrame([{n: PRIORS[n].high - 1e-9 for n in names}])
    assert proposal.pdf(far)[0] >= abc.DEFENSIVE_SHARE * prior * (1 - 1e-9)


def test_coverage_only_needs_a_finished_calibration(tmp_path, capsys):
    from isk_defection.experiments.cli import main

    out = tmp_path / "empty"
    args = ["calibrate", "--method", "abc", "--coverage", "2", "--coverage-only", "--out"]
    assert main([*args, str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "error: --out: no finished calibration" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_the_default_point_check_counts_bands_and_names_the_ones_missed():
    from isk_defection.experiments.calibration.command import points_section

    points = pd.DataFrame(
        {
            "point": ["defaults"] * 2 + ["posterior median"] * 2,
            "bands_met": [2, 1, 0, 1],
            "isk_release": [True, True, False, True],
            "attack_fall": [True, False, False, False],
        }
    )
    text = "\n".join(points_section(points))
    assert "| defaults | 1.5 [1, 2] | none |" in text  # attack_fall met in half: not most
    assert "| posterior median | 0.5 [0, 1] | attack_fall |" in text
    assert "Bands met (of 2)" in text and "2 seeds each" in text


def test_a_verdict_whose_interval_spans_a_threshold_is_marked_borderline():
    from isk_defection.experiments.claims.posterior import borderline

    assert borderline((0.83, 0.94)) and borderline((0.05, 0.16))  # 90% / 10% inside
    assert borderline((0.96, 1.0)) == "" and borderline((0.0, 0.04)) == ""
    assert borderline((0.55, 0.74)) == ""  # DEPENDS either way


# ---- history matching through the command line (--method history, the default) ----------
def _calibrate(args, capsys):
    from isk_defection.experiments.cli import main

    code = main(["calibrate", *args])
    captured = capsys.readouterr()
    _calibrate.out = captured.out
    return code, captured.err.strip()


@pytest.mark.parametrize(
    ("args", "field", "hint"),
    [
        (["--hold-out", "nope"], "--hold-out", "isk_release, isk_june_2023"),
        (["--hold-out", "isk_2024,"], "--hold-out", "comma list"),
        (["--hold-out", "taliban_share"], "--hold-out", "by construction"),
        (["--hold-out", "isk_2O24"], "--hold-out", "did you mean isk_2024"),
        (["--hold-out", ",".join(p.name for p in pat.CONSTRAINING)], "--hold-out", "leave"),
        (["--seeds", "1"], "--seeds", "[2, 1,000]"),
        (["--method", "bayes"], "--method", "history, abc"),
        (["--particles", "20"], "--particles", "only with --method abc"),
        (["--rescreen"], "--rescreen", "only with --method abc"),
        (["--method", "abc", "--hold-out", "isk_2024"], "--hold-out", "only with --method history"),
        (["--method", "abc", "--waves", "3"], "--waves", "only with --method history"),
        (["--simulations", "100"], "--simulations", "at least 240"),
    ],
)
def test_calibrate_refuses_bad_history_options_in_one_line_writing_nothing(
    tmp_path, capsys, args, field, hint
):
    out = tmp_path / "out"
    code, err = _calibrate(["--quick", "--out", str(out), *args], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"defection: error: {field}") and hint in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_method_option_chooses_the_calibration(monkeypatch, tmp_path):
    from isk_defection.experiments.calibration import command, matching
    from isk_defection.experiments.cli import main

    called = []
    monkeypatch.setattr(command, "run", lambda out, budget, **kw: called.append((budget, kw)))
    monkeypatch.setattr(matching, "calibrate", lambda *a, **kw: pytest.fail("not via run"))
    assert main(["calibrate", "--out", str(tmp_path / "a"), "--hold-out", "isk_2024,cohesion"]) == 0
    budget, kw = called[-1]
    assert budget == matching.FULL  # history matching, the default
    assert budget.population == matching.CALIBRATION_POPULATION == STUDY_POPULATION
    assert kw["held_out"] == ("cohesion", "isk_2024") and kw["seed"] == command.SEED
    main(["calibrate", "--quick", "--out", str(tmp_path / "b"), "--waves", "3", "--points",
          "40", "--seeds", "3", "--population", "500", "--simulations", "900"])  # fmt: skip
    budget = called[-1][0]
    assert isinstance(budget, matching.HistoryBudget)
    assert (budget.waves_max, budget.points_per_wave, budget.seeds_per_point) == (3, 40, 3)
    assert (budget.population, budget.simulations) == (500, 900)
    assert budget.posterior_points == matching.QUICK.posterior_points
    assert main(["calibrate", "--method", "abc", "--quick", "--out", str(tmp_path / "c"),
                 "--population", "300", "--particles", "8"]) == 0  # fmt: skip
    budget = called[-1][0]
    assert isinstance(budget, abc.Budget) and (budget.agents, budget.particles) == (300, 8)


def test_a_quick_history_calibration_writes_a_posterior_the_ensemble_reads(tmp_path, capsys):
    """End to end at a toy size: waves through the sweep engine, posterior, predictive
    check on fresh seeds, hold-out scored against persistence, calibration.md."""
    import json

    from isk_defection.experiments import ensemble

    out = tmp_path / "hm"
    args = ["--quick", "--out", str(out), "--workers", "2", "--population", "200",
            "--points", "20", "--waves", "1", "--simulations", "400",
            "--hold-out", "isk_2024,cohesion"]  # fmt: skip
    code, err = _calibrate(args, capsys)
    assert code == 0, err
    assert (
        "wave 1: volume" in _calibrate.out and "predictive check on fresh seeds" in _calibrate.out
    )
    posterior = ensemble.load_posterior(out / "posterior.parquet")
    assert len(posterior.table) >= 1 and posterior.table["weight"].sum() == pytest.approx(1.0)
    assert set(posterior.parameters) == set(PRIORS)
    assert posterior.table["draw"].is_unique and len(posterior.varying()) == len(PRIORS)
    meta = posterior.meta
    assert meta["held_out"] == ["cohesion", "isk_2024"] and meta["agents"] == 200
    assert "isk_2024" not in meta["history_matched_to"] and meta["mode"] == "quick"
    assert set(meta["fitted_to"]) <= set(meta["history_matched_to"])
    assert ensemble.draw(posterior, 3, np.random.default_rng(0))[0].params.keys() == set(PRIORS)
    wave = json.loads((out / "wave-01" / "wave.json").read_text())
    assert wave["runs"] == 40 and set(wave["validation"]) == set(meta["history_matched_to"])
    predictive = pd.read_csv(out / "predictive.csv")
    accepted = pd.read_parquet(out / "posterior_runs.parquet").query("accepted")
    assert not set(predictive["seed"]) & set(accepted["seed"])  # fresh seeds
    assert len(predictive) == 2 * min(len(posterior.table), 15)
    held = pd.read_csv(out / "holdout.csv").set_index("pattern")
    assert list(held.index) == ["cohesion", "isk_2024"]
    assert held.loc["isk_2024", "persistence_inside"] == pytest.approx(2_600 / 3_500)
    report = (out / "calibration.md").read_text()
    for heading in ("## Waves", "## Emulator validation", "## Attainable and unattainable",
                    "## Posterior predictive check on fresh seeds",
                    "## Hold-out forecast against persistence", "## Identification"):  # fmt: skip
        assert heading in report, heading
    assert "meet every attainable band" in report
    # a second run into the same folder continues only with --resume (the waves' resume
    # is test_history_matching's); refused, it writes nothing
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code, err = _calibrate(args, capsys)
    assert code == 2 and "--out:" in err and "add --resume" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_held_out_forecast_is_scored_against_its_band_and_persistence():
    from isk_defection.experiments.calibration import holdout
    from isk_defection.experiments.calibration.patterns import Pattern

    level = Pattern("level", "level", lambda r: r["level"], 10.0, 20.0, "", "")
    ratio = Pattern("ratio", "ratio", lambda r: r["ratio"], 0.1, 0.3, "", "")
    count = Pattern("count", "count", lambda r: r["count"], 0.0, 5.0, "", "")
    persistence = {
        "level": holdout.Persistence("last level carried", 15.0, 35.0),  # a quarter inside
        "ratio": holdout.Persistence("no change: ratio 1", 1.0, 1.0),  # outside
        "count": "none: no earlier figure",
    }
    values = pd.DataFrame(
        {
            "level": [12.0] * 10 + [25.0] * 90,  # 10% inside: worse than 25%
            "ratio": [0.2] * 80 + [0.9] * 20,  # 80% inside: beats 0%
            "count": [1.0] * 100,
        }
    )
    table = holdout.score(values, ["level", "ratio", "count"], (level, ratio, count), persistence)
    table = table.set_index("pattern")
    assert table.loc["level", "model_inside"] == pytest.approx(0.10)
    assert table.loc["level", "persistence_inside"] == pytest.approx(0.25)
    assert table.loc["level", "persistence_point_miss"] == pytest.approx(0.5)  # 25: 5 past 20
    assert table.loc["level", "verdict"] == "worse than persistence"
    assert table.loc["ratio", "persistence_inside"] == 0.0
    assert table.loc["ratio", "skill"] == pytest.approx(0.8)
    assert table.loc["ratio", "verdict"] == "beats persistence"
    assert table.loc["count", "verdict"] == "no persistence analogue"
    assert np.isnan(table.loc["count", "skill"]) and table.loc["count", "model_inside"] == 1.0
    # with few runs the interval is wide and the same shares are no different
    few = holdout.score(values.iloc[[0, 10, 11, 12]], ["level"], (level,), persistence)
    assert few.loc[0, "verdict"] == "no different from persistence"


def test_every_constraining_pattern_has_a_persistence_rule_or_says_why_not():
    from isk_defection.experiments.calibration import holdout

    assert set(holdout.PERSISTENCE) == set(holdout.HOLDABLE) == {p.name for p in pat.CONSTRAINING}
    for name, forecast in holdout.PERSISTENCE.items():
        if isinstance(forecast, str):
            assert forecast.startswith("none: "), name
        else:
            assert forecast.rule and forecast.low <= forecast.high, name
    # IS-K in 2024: the June 2023 level (band 3,400-6,900) carried forward
    isk_2024 = holdout.PERSISTENCE["isk_2024"]
    assert isinstance(isk_2024, holdout.Persistence)
    assert (isk_2024.low, isk_2024.high) == (3_400, 6_900)
    assert holdout.parse(" isk_2024 ,cohesion") == ("cohesion", "isk_2024")


# ---------------------------------------------------------------- the simulate path's speed-ups


def _same_floats(a: dict[str, float], b: dict[str, float]) -> bool:
    return list(a) == list(b) and all(
        a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])) for k in a
    )


def test_patterns_from_arrays_are_the_floats_pandas_gives():
    """The simulate path measures outcomes and patterns without pandas: the same floats."""
    rng = np.random.default_rng(8)
    params = {n: PRIORS[n].low + rng.random() * PRIORS[n].width for n in PRIORS}
    frame = abc.simulate_frame(params, 3, agents=300)
    columns = abc.simulate_columns(params, 3, agents=300)
    assert list(columns) == list(frame.columns) == ["step", *pat.COLUMNS]
    outcomes = pat.measure(frame)
    assert _same_floats(abc.measure(columns), outcomes)
    assert _same_floats(abc.measure(frame), outcomes)
    table = pat.pattern_values(pd.DataFrame([outcomes])).iloc[0]
    expected = {k: float(v) for k, v in table.items()}
    assert _same_floats(abc.simulate_patterns(params, seed=3, agents=300), expected)
    # random weekly values, missing and infinite ones, zeros to divide by: still the same
    for trial in range(20):
        noisy = frame.copy()
        for c in pat.COLUMNS:
            noisy[c] = rng.standard_normal(len(noisy)) * 10.0 ** rng.integers(-3, 4)
        noisy.loc[rng.integers(0, len(noisy), 15), rng.choice(pat.COLUMNS, 3, replace=False)] = (
            np.nan
        )
        noisy.loc[rng.integers(0, len(noisy), 2), rng.choice(pat.COLUMNS, 2, replace=False)] = (
            np.inf
        )
        outcomes = pat.measure(noisy)
        assert _same_floats(abc.measure(noisy), outcomes), trial
        if trial % 4 == 0:
            outcomes |= {k: 0.0 for k in rng.choice(list(outcomes), 4, replace=False)}
        table = pat.pattern_values(pd.DataFrame([outcomes])).iloc[0]
        assert _same_floats(abc.pattern_statistics(outcomes), dict(table.items())), trial


def test_outcomes_and_patterns_the_fast_path_does_not_cover_are_left_to_pandas(monkeypatch):
    from isk_defection.experiments.calibration.outcome import Outcome

    frame = abc.simulate_frame({}, 4, agents=300)
    burst = Outcome("burst", "attacks, peak of 4-week sums", {"attacks": 1.0}, "peak", rolling=4)
    monkeypatch.setattr(pat, "OUTCOMES", (*pat.OUTCOMES, burst))
    assert abc.measure(frame)["burst"] == burst.measure(frame)
    shuffled = frame.sample(frac=1.0, random_state=1)  # weeks out of order
    assert _same_floats(abc.measure(shuffled), pat.measure(shuffled))
    odd = dataclasses.replace(pat.PATTERNS[0], statistic=lambda runs: runs["isk_release"].abs())
    monkeypatch.setattr(pat, "PATTERNS", (odd,))  # a pandas method the columns do not have
    outcomes = {"isk_release": -3.0}
    assert abc.pattern_statistics(outcomes) == {odd.name: 3.0}


def test_the_prior_density_is_scipys_uniform_density_in_pyabcs_order():
    import pyabc

    names = list(PRIORS)
    fast = abc.pyabc_prior(names)
    scipy_prior = pyabc.Distribution(
        **{n: pyabc.RV("uniform", PRIORS[n].low, PRIORS[n].high - PRIORS[n].low) for n in names}
    )
    rng = np.random.default_rng(9)
    points = [{n: PRIORS[n].low + rng.uniform(-0.1, 1.1) * PRIORS[n].width for n in names}
              for _ in range(300)]  # fmt: skip
    points += [{n: PRIORS[n].low + rng.random() * PRIORS[n].width for n in names}]
    points += [{n: (PRIORS[n].low, PRIORS[n].high)[i % 2] for i, n in enumerate(names)}]
    points += [points[-1] | {names[2]: float("nan")}]
    for point in points:
        order = list(rng.permutation(names))
        x = pyabc.Parameter({n: point[n] for n in order})
        got, want = fast.pdf(x), scipy_prior.pdf(x)
        assert type(got) is type(want) and (got == want or (np.isnan(got) and np.isnan(want)))
    assert fast.pdf(points[-2]) > 0 and fast.copy().pdf(points[-2]) == fast.pdf(points[-2])
    with pytest.raises(Exception, match="parameter mismatch"):
        fast.pdf({"attack_rate": 50.0})


def test_the_redrawn_priors_density_of_one_particle_is_the_tables():
    names = ["attack_rate", "attrition_rate", "isk_reach"]
    redraw = abc.prior_redraw(names)
    rng = np.random.default_rng(10)
    table = pd.DataFrame(
        [
            {n: PRIORS[n].low + rng.uniform(-0.2, 1.2) * PRIORS[n].width for n in names}
            for _ in range(200)
        ]  # fmt: skip
    )
    densities = redraw.pdf(table)
    assert 0 < (densities > 0).sum() < len(table)
    for (_, row), density in zip(table.iterrows(), densities, strict=True):
        assert redraw.pdf(row) == redraw.pdf(dict(row)) == density


def test_a_seeded_calibration_is_the_same_on_one_worker_and_on_two(tmp_path):
    """Every particle from its seed, whichever worker (and cached simulate function) runs it."""
    names = ["attack_rate", "attrition_rate", "isk_reach"]
    budget = abc.Budget(particles=6, generations=3, simulations=200, minutes=5, agents=300)
    fits = [
        abc.calibrate(tmp_path / f"w{w}", names, budget, progress=False, seed=12, workers=w)
        for w in (1, 2)
    ]
    one, two = (f["history"] for f in fits)
    assert fits[0]["simulations"] == fits[1]["simulations"]
    assert one.max_t == two.max_t == 2
    for t in range(one.max_t + 1):
        (a, wa), (b, wb) = one.get_distribution(m=0, t=t), two.get_distribution(m=0, t=t)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
        np.testing.assert_array_equal(wa, wb)
    assert one.get_weighted_distances().equals(two.get_weighted_distances())


def test_a_worker_unpickles_the_simulate_function_once_per_generation(monkeypatch):
    import pickle

    loads, read = [], pickle.loads
    monkeypatch.setattr(abc, "_UNPICKLED", None)
    monkeypatch.setattr(abc.pickle, "loads", lambda b: loads.append(b) or read(b))
    first, second = pickle.dumps(("generation", 1)), pickle.dumps(("generation", 2))
    assert abc._simulate_function(first) == ("generation", 1)
    assert abc._simulate_function(bytes(first)) is abc._simulate_function(first)
    assert abc._simulate_function(second) == ("generation", 2)
    assert loads == [first, second]
