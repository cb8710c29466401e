"""The reproduction experiments: every one completes in --quick mode and yields a verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isk_defection.experiments.claims import EXPERIMENTS
from isk_defection.experiments.claims.framework import Verdict
from isk_defection.experiments.claims.runner import reproduce
from isk_defection.experiments.cli import main
from isk_defection.experiments.stats import bootstrap_difference, fit_power_law

VERDICTS = {str(v) for v in Verdict}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    verdicts = reproduce(list(EXPERIMENTS), out, quick=True, workers=2, progress=False)
    return out, verdicts


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_completes_with_verdict_data_figure_and_report(quick_run, name):
    out, verdicts = quick_run
    assert verdicts[name] in VERDICTS
    folder = out / name
    result = json.loads((folder / "result.json").read_text())
    assert result["verdict"] == verdicts[name] and result["mode"] == "quick"
    assert result["checks"] and all(isinstance(c["passed"], bool) for c in result["checks"])
    for check in result["checks"]:  # numbers as numbers beside the text
        if check["value"] is not None:
            assert isinstance(check["value"], (int, float))
            assert check["low"] <= check["high"]
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_parquet(folder / "data.parquet")) > 0
    report = (folder / "report.md").read_text()
    assert f"**Verdict: {verdicts[name]}**" in report and "By construction" in report


def test_summary_has_one_row_per_experiment_with_links(quick_run):
    out, verdicts = quick_run
    table = (out / "REPORT.md").read_text()
    for name, verdict in verdicts.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| [{name}]("))
        assert f"**{verdict}**" in row and f"({name}/figure.png)" in row


def test_resume_keeps_finished_experiments(quick_run, capsys):
    out, verdicts = quick_run
    again = reproduce(["G1"], out, quick=True, resume=True, progress=False)
    assert again == {"G1": verdicts["G1"]} and "kept from an earlier quick run" in (
        capsys.readouterr().out
    )


def test_granovetter_exact_cases_hold(quick_run):
    out, _ = quick_run
    checks = json.loads((out / "G1" / "result.json").read_text())["checks"]
    assert checks[0]["passed"] and checks[1]["passed"]


def test_cli_refuses_unknown_experiment(capsys):
    assert main(["reproduce", "C99", "--quick"]) == 2
    assert "must be one of C1" in capsys.readouterr().err


def test_power_law_fit_recovers_exponent():
    sample = stats.zipf.rvs(2.5, size=20_000, random_state=np.random.default_rng(3))
    assert fit_power_law(sample).alpha == pytest.approx(2.5, abs=0.08)


def test_paired_bootstrap_is_tighter_than_unpaired_under_common_seeds():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 5, 30)
    control, treatment = seed_effect, seed_effect + 1 + rng.normal(0, 0.1, 30)
    paired = bootstrap_difference(treatment, control, paired=True)
    unpaired = bootstrap_difference(treatment, control)
    assert paired.low > 0.9 and paired.high - paired.low < unpaired.high - unpaired.low


def test_report_links_the_policy_search_and_says_what_it_was_judged_across(tmp_path):
    from isk_defection.experiments.claims.report import policy_analysis

    folder = tmp_path / "robust-levers"
    before = policy_analysis(folder=folder)
    assert "--posterior results/posterior/posterior.parquet" in before  # how to make it
    folder.mkdir()
    (folder / "report.md").write_text("# report\n")
    label = "posterior posterior.parquet (64 draws of 25 parameters)"
    (folder / "manifest.json").write_text(json.dumps({"ensemble": {"label": label}}))
    after = policy_analysis("results/reproduce/", folder=folder)
    assert f"](results/reproduce/../../{folder.as_posix()}/report.md)" in after
    assert f"Judged across: {label}." in after


def test_posterior_caveats_state_how_far_the_fit_got(tmp_path):
    from isk_defection.experiments.claims.posterior import caveats
    from isk_defection.experiments.ensemble import write_ensemble

    path = tmp_path / "posterior.parquet"
    table = pd.DataFrame({"draw": [0, 1], "weight": [0.25, 0.75], "isk_reach": [0.03, 0.05]})
    write_ensemble(
        table,
        path,
        model_version="test",
        fitted_to=["isk_2024"],
        mode="full",
        generations=[{"t": 0}, {"t": 1}, {"t": 2}],
        simulations=4321,
        final_epsilon=1.234,
        effective_sample_size=57.4,
        particles=200,
    )
    text = caveats(path)
    assert "3 generations, 4,321 simulations, final tolerance 1.23" in text
    assert "effective sample size 57 of 200" in text
    assert "could not be read" in caveats(tmp_path / "missing.parquet")


# Dose paths (issue 19): hand-built paths with a known shape, read as a claim reads them.

TENTHS = [round(0.1 * i, 1) for i in range(11)]


def path_runs(response, doses=TENTHS, seeds=8, noise=0.002, outcome="y", key="seed"):
    """Runs along a dose path: each seed has its own level (common random numbers)."""
    rng = np.random.default_rng(11)
    offsets = rng.normal(0, 0.05, seeds)
    return pd.DataFrame(
        [
            {"dose": d, key: s, outcome: response(d) + offsets[s] + rng.normal(0, noise)}
            for d in doses
            for s in range(seeds)
        ]
    )


def inverted_u(d):  # C1's pragmatists' loyalty in v2: 0.756 -> 0.782 at 0.5 -> 0.570 at 1
    return 0.756 + 0.052 * d if d <= 0.5 else 0.782 - 0.424 * (d - 0.5)


SHAPES = {
    "rises": (lambda d: 0.2 * d, "rises", 0.1, None),
    "falls": (lambda d: 0.5 - 0.3 * d, "falls", 0.1, None),
    "inverted U": (inverted_u, "inverted U", 0.3, 0.5),
    "U": (lambda d: (d - 0.6) ** 2, "U", 0.1, 0.6),
    "flat": (lambda d: 0.3 + 0.001 * np.sin(9 * d), "flat", None, None),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_dose_path_is_read_with_its_shape_onset_and_reversal(name):
    from isk_defection.experiments.claims.paths import dose_path, samples

    response, kind, onset, reversal = SHAPES[name]
    path = dose_path(samples(path_runs(response), "y"), negligible=0.01)
    assert path.kind == kind
    assert path.onset == onset and path.reversal == reversal
    assert path.doses == tuple(TENTHS) and path.levels[0].effect.value == 0


def test_the_shape_sentence_names_where_the_path_turns_and_levels_off():
    from isk_defection.experiments.claims.paths import dose_path, samples

    peak = dose_path(samples(path_runs(inverted_u), "y"), 0.01)
    assert peak.shape() == "rises to 0.5, then falls"
    text = peak.text("pragmatists' loyalty")
    assert text.startswith("pragmatists' loyalty rises to 0.5, then falls (")
    assert "appears at dose 0.3" in text

    def saturates(d):  # up to 0.4, then a drift too small to count (0.003 by dose 1)
        return min(d, 0.4) - 0.005 * max(d - 0.4, 0)

    saturating = dose_path(samples(path_runs(saturates), "y"), 0.01)
    assert saturating.kind == "rises" and saturating.shape() == "rises to 0.4, then levels off"
    uncertain = path_runs(lambda d: d, noise=0.3)  # rising, though no step is significant
    assert dose_path(samples(uncertain, "y"), 0.01).shape() == "rises"  # not "levels off"
    zig = dict(zip(TENTHS, [0, 0.1, 0.2, 0.1, 0, -0.1, 0, 0.1, 0.2, 0.3, 0.4], strict=True))
    zigzag = dose_path(samples(path_runs(zig.get), "y"), 0.01)
    assert zigzag.kind == "zigzag" and zigzag.shape() == "rises to 0.2, falls to 0.5, then rises"
    assert zigzag.reversal == 0.2


def test_moves_below_the_declared_negligible_change_are_flat_however_narrow():
    from isk_defection.experiments.claims.paths import dose_path, samples

    runs = path_runs(lambda d: 0.005 * d, noise=1e-5)  # significant, but half a point
    assert dose_path(samples(runs, "y")).kind == "rises"
    flat = dose_path(samples(runs, "y"), negligible=0.01)
    assert flat.kind == "flat" and flat.onset is None


def test_the_declared_part_of_the_path_is_what_decides_the_check():
    from isk_defection.experiments.claims.framework import DosePath
    from isk_defection.experiments.claims.paths import Expect, PathPart

    runs = path_runs(inverted_u)
    low = PathPart(0.0, 0.5, Expect.MONOTONE, "the low-dose part")

    def check(part, direction=+1):
        return DosePath("loyalty rises", "y", direction, part, 0.01, "loyalty").evaluate(runs)

    rise_low, rise_whole = check(low), check(PathPart())
    assert rise_low.passed and not rise_whole.passed
    assert rise_low.measured.value == pytest.approx(0.026, abs=0.003)  # 0.5 minus 0
    assert rise_whole.measured.value == pytest.approx(-0.186, abs=0.003)  # 1 minus 0
    assert "the low-dose part, 0 to 0.5" in rise_low.expected
    assert "PARTLY: loyalty rises to 0.5, then falls" in rise_whole.explain()
    assert "tests the whole path, 0 to 1, for a monotone rise" in rise_whole.explain()
    assert check(PathPart(expect=Expect.TURN)).passed  # an inverted U declared as such
    assert not check(PathPart(expect=Expect.NET)).passed  # it ends below where it starts
    assert check(PathPart(0.5, 1.0), direction=-1).passed  # the high-dose fall
    assert not check(PathPart(expect=Expect.TURN), direction=-1).passed  # not a U
    assert (
        check(PathPart(), direction=-1)
        .explain()
        .endswith("PARTLY: loyalty rises to 0.5, then falls")
    )  # a fall expected: half right (it falls after 0.5)
    flat = DosePath("y rises", "y", +1, PathPart(), 0.01).evaluate(path_runs(lambda d: 0.3))
    assert not flat.passed and "NO: y is flat within noise" in flat.explain()


def test_with_one_run_per_dose_the_sign_decides_and_draws_pair_the_doses():
    from isk_defection.experiments.claims.paths import dose_path, samples

    runs = path_runs(inverted_u, seeds=1, noise=0.0, key="draw")
    path = dose_path(samples(runs, "y", key="draw"), 0.01)
    assert path.kind == "inverted U" and path.reversal == 0.5
    assert all(lv.effect.low == lv.effect.high == lv.effect.value for lv in path.levels)


def test_dose_response_claims_run_one_arm_per_dose_and_declare_what_they_test():
    from isk_defection.experiments.claims.framework import DosePath
    from isk_defection.experiments.claims.paths import Expect

    claims = [e for e in EXPERIMENTS.values() if getattr(e, "doses", None)]
    assert [e.name for e in claims] == ["C1", "C2", "C3", "C4", "C8"]
    for claim in claims:
        for quick in (True, False):
            doses = claim.doses.levels_for(quick)
            arms = claim.arms_for(quick)
            assert [claim.doses.dose_of(a.name) for a in arms] == list(doses)
            specs = [claim.spec(arm, quick)["sweep"] for arm in arms]
            assert {s["seed"] for s in specs} == {claim.seed}  # common random numbers
            assert all(not claim.spec(arm, quick)["grid"] for arm in arms)
            assert doses == tuple(sorted(doses)) and len(doses) >= 5
        reference = claim.doses.arms(False)[0].fixed[claim.doses.lever]
        assert isinstance(reference, float)  # the first dose is the control: no move
        checks = [c for c in claim.checks if isinstance(c, DosePath)]
        assert checks == list(claim.checks) and any(c.primary for c in checks)
        for check in checks:  # each tested part lies on the path
            doses = claim.doses.levels_for(False)
            assert doses[0] <= check.tests.low < check.tests.high <= doses[-1]
            assert check.negligible > 0 and check.subject
    c1 = EXPERIMENTS["C1"]
    primary = [c.tests for c in c1.checks if c.primary]
    assert all((p.low, p.high, p.expect) == (0, 1, Expect.MONOTONE) for p in primary)
    assert {c.tests.high for c in c1.checks if not c.primary} == {0.5}
    assert c1.doses.levels_for(False) == tuple(TENTHS)


def test_a_dose_path_claim_writes_the_path_in_its_report_result_and_figure(tmp_path):
    from isk_defection.experiments.claims.framework import Finding
    from isk_defection.experiments.claims.report import write

    c1 = EXPERIMENTS["C1"]
    hardline = path_runs(lambda d: 0.1 * d, outcome="hardline_defection")
    runs = hardline.assign(kabul_loyalty=path_runs(inverted_u)["y"].to_numpy())
    runs["arm"] = [c1.doses.arm_name(d) for d in runs.dose]
    finding = Finding([c.evaluate(runs) for c in c1.checks], runs, runs)
    assert finding.verdict == Verdict.PARTIAL
    write(c1, finding, tmp_path, quick=True, seconds=0)
    report = (tmp_path / "report.md").read_text()
    verdict = report.splitlines()[2]
    assert verdict.startswith("**Verdict: PARTIAL** — hardline defection rises (tests the whole")
    assert "PARTLY: pragmatists' loyalty rises to 0.5, then falls" in verdict
    assert "| 0.5 | 0.7" in report and "reverses at 0.5" in report
    result = json.loads((tmp_path / "result.json").read_text())
    loyalty = next(p for p in result["paths"] if p["outcome"] == "kabul_loyalty")
    assert (loyalty["kind"], loyalty["onset"], loyalty["reversal"]) == ("inverted U", 0.3, 0.5)
    assert [d["dose"] for d in loyalty["doses"]] == TENTHS
    assert all(d["low"] <= d["mean"] <= d["high"] for d in loyalty["doses"])
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_a_dose_path_across_posterior_draws_has_per_dose_credible_intervals():
    from isk_defection.experiments.claims.posterior import paths_over_draws

    c1 = EXPERIMENTS["C1"]
    runs = path_runs(inverted_u, outcome="kabul_loyalty", key="draw").assign(seed=1)
    runs["hardline_defection"] = 0.1 * runs.dose
    table = pd.DataFrame({"shape: kabul_loyalty": ["inverted U"] * 6 + ["zigzag"] * 2})
    paths = {p["outcome"]: p for p in paths_over_draws(c1, runs, table)}
    loyalty = paths["kabul_loyalty"]
    assert loyalty["kind"] == "inverted U" and loyalty["reversal"] == 0.5
    assert loyalty["shares"] == {"inverted U": 0.75, "zigzag": 0.25}
    top = loyalty["doses"][-1]
    assert top["effect_5"] <= top["effect_median"] <= top["effect_95"] < 0
    assert top["runs"] == 8 and set(paths) == {"kabul_loyalty", "hardline_defection"}


def test_report_policy_analysis_quotes_the_search_answer(tmp_path):
    """REPORT.md's Policy analysis section quotes the search report's generated answer."""
    from isk_defection.experiments.claims.report import policy_analysis

    folder = tmp_path / "robust-levers"
    folder.mkdir()
    assert "answer" not in policy_analysis(folder=folder)  # nothing run yet: how to run it
    (folder / "report.md").write_text("# report\n")
    (folder / "manifest.json").write_text('{"ensemble": {"label": "40 draws"}}')
    (folder / "answer.md").write_text(
        "Inclusion pays in 60% of scenarios.\nWomen's rights in none.\n"
    )
    text = policy_analysis(folder=folder)
    assert "Judged across: 40 draws" in text
    assert "> Inclusion pays in 60% of scenarios.\n> Women's rights in none." in text


def test_posterior_caveats_describe_a_history_matching_posterior(tmp_path):
    from isk_defection.experiments.claims.posterior import caveats

    posterior = tmp_path / "posterior.parquet"
    sidecar = tmp_path / "posterior.json"
    sidecar.write_text('{"description": "history matching (full mode): 4 waves"}')
    assert "comes from history matching (full mode): 4 waves." in caveats(posterior)
    sidecar.write_text("{}")
    assert "could not be read" in caveats(posterior)
