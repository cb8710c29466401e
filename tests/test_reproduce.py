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
