"""The dose–response experiment: every dose run, intake within capacity, effects visible."""

from __future__ import annotations

import pandas as pd

from isk_defection.experiments.doses import DOSES, DoseDesign, fastest_growth, run_doses


def test_dose_response_reports_every_dose_and_keeps_intake_within_capacity(tmp_path):
    design = DoseDesign(population=400, weeks=30, replicates=2, seed=5)
    table = run_doses(tmp_path, design, {"workers": 1}, progress=False, levers=("witch_hunt",))
    assert set(table.dose) == set(DOSES)
    assert (table.seeds == 2).all()
    ratio = table[table.outcome == "max_intake_over_capacity"]
    assert (ratio["high"] <= 1.0 + 1e-9).all()
    rates = table[table.outcome.str.endswith("_rate")]
    assert ((rates.low >= 0) & (rates.high <= 1)).all()
    former = table[table.outcome.isin(["former_defection_rate", "former_desertion_rate"])]
    lost = former.groupby("dose")["mean"].sum()
    assert lost[1.0] > lost[0.0] + 0.1  # a full witch-hunt drives former officials out
    assert pd.read_csv(tmp_path / "doses.csv").shape == table.shape


def test_fastest_growth_ignores_the_release_and_reads_four_week_ratios():
    strength = [2200, 4000, 4000, 4000, 4000, 4000, 4400, 4400, 4400, 4840]
    assert fastest_growth(strength) == 4840 / 4000
