"""The dose–response study: cliffs counted right, common seeds, prior draws, the command."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from isk_defection.experiments import doses
from isk_defection.experiments.calibration.priors import PRIORS
from isk_defection.experiments.doses import (
    DOSES,
    LOST,
    DoseDesign,
    cliffs,
    cliffs_markdown,
    fastest_growth,
    lever_spec,
    overrun_agents,
    prior_draws,
    run_doses,
    run_seeds,
    study_spec,
)
from isk_defection.experiments.stats import wilson
from isk_defection.experiments.sweep import read_results
from isk_defection.model.groups import GROUP_NAMES

# ---- the cliff share on a table whose answer is known ----------------------------------
FLAT = dict.fromkeys(DOSES, 0.0)


def _curve(jumps: dict[float, float]) -> dict[float, float]:
    """A lost-share curve: 0 until each dose in ``jumps``, where it moves by that much."""
    level, curve = 0.0, {}
    for dose in DOSES:
        level += jumps.get(dose, 0.0)
        curve[dose] = level
    return curve


def _rows(lever: str, kind: str, member: int, curves: dict[str, dict[float, float]]) -> list:
    rows = []
    for dose in DOSES:
        row = {"lever": lever, "dose": dose, "kind": kind, "member": member}
        row |= {f"{g}_lost": curves.get(g, FLAT)[dose] for g in GROUP_NAMES}
        row |= {f"{g}_agents": 100 for g in GROUP_NAMES}
        rows.append(row)
    return rows


def hand_built_runs() -> pd.DataFrame:
    """Lever ``a``: cliffs in draws 0, 1, 3, 4, 5 of 6 complete draws; lever ``b``: none."""
    a = {
        0: {"kandahar": _curve({0.5: 0.3})},  # 0.4 -> 0.5 moves it 30 points: a cliff
        1: {"kandahar": _curve({0.5: 0.15}), "ttp": _curve({0.8: 0.25})},  # ttp's is one
        2: {"uzbek": {d: d * 0.9 for d in DOSES}},  # 9 points a step: gradual
        3: {"kandahar": _curve({0.7: 0.2}), "kabul": _curve({0.3: 0.25, 0.4: -0.25})},
        4: {"former": _curve({0.0: 0.5, 1.0: -0.3})},  # a fall counts too
        5: {"kandahar": _curve({0.5: 0.3}), "haqqani": _curve({0.5: 0.1})},
        6: {"kandahar": _curve({0.5: 0.9})},  # a run failed: left out
    }
    rows = []
    for member, curves in a.items():
        rows += _rows("a", "draw", member, curves)
    rows = [r for r in rows if not (r["member"] == 6 and r["dose"] == 0.3)]
    rows += _rows("a", "defaults", 0, {"kandahar": _curve({0.6: 0.2})})
    rows += _rows("a", "defaults", 1, {})
    for member in range(3):
        rows += _rows("b", "draw", member, {"kabul": {d: d * 0.1 for d in DOSES}})
    rows += _rows("b", "defaults", 0, {})
    return pd.DataFrame(rows)


def test_cliff_share_on_a_hand_built_table():
    table = cliffs(hand_built_runs())
    a = table[table.lever == "a"].set_index("group")
    assert (a.draws == 6).all() and (a.cliff_draws == 5).all()
    assert a.cliff_share.iloc[0] == pytest.approx(5 / 6)
    assert (a.cliff_low.iloc[0], a.cliff_high.iloc[0]) == pytest.approx(wilson(5, 6))
    # draw 3: kandahar's step of exactly 20 points is none; kabul's up and back is a cliff
    assert (a.taliban_cliff_draws == 3).all()  # kandahar's (0, 5), kabul's (3); not ttp, former
    assert (a.reversing_draws == 1).all() and a.loc["kabul", "group_reversing_draws"] == 1
    assert a.loc["kandahar", "group_reversing_draws"] == 0
    assert (a.taliban_cliff_low.iloc[0], a.taliban_cliff_high.iloc[0]) == pytest.approx(
        wilson(3, 6)
    )
    # over the five cliff draws the largest move is kandahar's (0, 5), ttp's, kabul's, former's
    assert a.most_often_group.iloc[0] == "kandahar" and a.most_often_group_draws.iloc[0] == 2
    assert a.most_often_step_from.iloc[0] == 0.4 and a.most_often_step_draws.iloc[0] == 2
    assert a.loc["kandahar", "group_cliff_draws"] == 2
    assert a.loc["ttp", "group_cliff_draws"] == 1 and a.loc["former", "group_cliff_draws"] == 1
    assert a.loc["uzbek", "group_cliff_draws"] == 0 and a.loc["haqqani", "group_cliff_draws"] == 0
    # kandahar's largest steps over the six draws: .3 .15 0 .2 0 .3, from .4 .4 0 .6 0 .4
    assert a.loc["kandahar", "largest_step_median"] == pytest.approx(0.175)
    assert a.loc["kandahar", "largest_step_max"] == pytest.approx(0.3)
    assert a.loc["kandahar", "step_from_median"] == pytest.approx(0.4)
    assert a.loc["former", "largest_step_max"] == pytest.approx(0.3)
    # at the defaults: the mean of a 20-point step and none is a 10-point step at 0.6
    assert a.loc["kandahar", "default_largest_step"] == pytest.approx(0.1)
    assert a.loc["kandahar", "default_step_from"] == pytest.approx(0.5)
    b = table[table.lever == "b"]
    assert (b.cliff_draws == 0).all() and (b.draws == 3).all()
    assert (b.cliff_low.iloc[0], b.cliff_high.iloc[0]) == pytest.approx(wilson(0, 3))
    text = cliffs_markdown(table, DoseDesign())
    row_a = next(line for line in text.splitlines() if line.startswith("| `a`"))
    low, high = wilson(5, 6)
    assert f"| 83% [{low:.0%}, {high:.0%}] (5 of 6) |" in row_a
    low, high = wilson(3, 6)
    assert f"| 50% [{low:.0%}, {high:.0%}] (3 of 6) | 1 of 6 |" in row_a
    assert "0.4 → 0.5 (2 of 5)" in row_a and "kandahar [100]: 2" in row_a
    row_b = next(line for line in text.splitlines() if line.startswith("| `b`"))
    assert "| 0% [0%, " in row_b and "(0 of 3)" in row_b


def test_overrun_is_counted_beyond_a_budget_never_below_zero_in_agents():
    intake = np.array([0.0, 100.0, 250.0, 50.0, 400.0])
    budget = np.array([0.0, 100.0, 200.0, -30.0, np.inf])  # a debt; no screening (inf)
    assert overrun_agents(intake, budget, largest_agent=80.0) == pytest.approx(50 / 80)
    assert overrun_agents(intake[:2], budget[:2], largest_agent=80.0) == 0.0


def test_fastest_growth_ignores_the_release_and_reads_four_week_ratios():
    strength = [2200, 4000, 4000, 4000, 4000, 4000, 4400, 4400, 4400, 4840]
    assert fastest_growth(strength) == 4840 / 4000


# ---- the design: prior draws and common seeds --------------------------------------------
def test_prior_draws_lie_within_the_priors_and_cover_them():
    draws = prior_draws(100, seed=11)
    assert all(set(d) == set(PRIORS) for d in draws)
    for name, prior in PRIORS.items():
        values = np.array([d[name] for d in draws])
        assert ((values >= prior.low) & (values <= prior.high)).all(), name
        assert values.min() < prior.low + 0.1 * prior.width, name  # not stuck at a default
        assert values.max() > prior.high - 0.1 * prior.width, name
    assert prior_draws(5, seed=11) == draws[:5]  # a smaller study is the larger one's start
    assert prior_draws(5, seed=12) != draws[:5]
    design = DoseDesign(prior_draws=100)
    lever_spec("womens_rights", 0.5, design, draws)  # every draw resolves to valid parameters


def _children(seed: int, n: int) -> list[int]:
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, np.uint32)[0]) for c in children]


def test_every_dose_and_lever_of_a_draw_runs_on_the_same_seed():
    design = DoseDesign(replicates=3, prior_draws=4, seed=99)
    draws = prior_draws(4, seed=99)
    specs = [lever_spec(lever, dose, design, draws) for lever in ("inclusion", "witch_hunt")
             for dose in (0.0, 0.3, 1.0)]  # fmt: skip
    specs.append(study_spec("ceiling", {"witch_hunt": 1.0}, design, draws, weeks=230))
    seeds = [[run.seed for run in spec.runs()] for spec in specs]
    assert all(s == seeds[0] for s in seeds)
    assert seeds[0] == _children(99, 7)  # the SeedSequence children of the design seed
    assert len(set(seeds[0])) == 7
    assert run_seeds(design) == (seeds[0][:3], seeds[0][3:])
    for spec in specs[:-1]:  # the lever at its dose at every point; then each draw's values
        lever, dose = spec.name.split("-")[1], float(spec.name.split("-")[2])
        assert all(p == {lever: dose} for p in spec.points[:3])
        assert all(p[lever] == dose for p in spec.points[3:])
        assert [{k: p[k] for k in PRIORS} for p in spec.points[3:]] == draws


def test_the_runs_share_seeds_across_doses_and_levers_and_keep_within_bounds(tmp_path):
    design = DoseDesign(
        population=400, weeks=30, replicates=2, prior_draws=2, seed=5,
        doses=(0.0, 0.5, 1.0), levers=("witch_hunt", "womens_rights"),
    )  # fmt: skip
    runs = run_doses(tmp_path, design, {"workers": 2}, progress=False)
    assert len(runs) == 2 * 3 * 4 and runs.attrs["failed"] == 0
    by_member = runs.groupby(["kind", "member"]).seed
    assert (by_member.nunique() == 1).all() and runs.seed.nunique() == 4
    assert sorted(runs.seed.unique()) == sorted(_children(5, 4))
    assert (runs.max_overrun_agents <= 1.0 + 1e-9).all()
    assert ((runs[LOST] >= 0) & (runs[LOST] <= 1 + 1e-9)).all().all()
    assert (runs.isk_peak >= runs.isk_strength).all()
    # the draw's values reached the model: the sweep records them per run
    results = read_results(tmp_path / "sweeps" / "witch_hunt" / "dose-0.5")
    drawn = pd.read_csv(tmp_path / "draws.csv")
    for draw in range(2):
        rows = results[results.point == design.replicates + draw]
        name = next(iter(PRIORS))
        assert rows[name].unique() == pytest.approx([drawn.loc[draw, name]])
    defaults = runs[(runs.kind == "defaults") & (runs.lever == "witch_hunt")]
    former = defaults.groupby("dose").former_lost.mean()
    assert former[1.0] > former[0.0] + 0.1  # a full witch-hunt drives former officials out
    assert pd.read_csv(tmp_path / "runs.csv").shape == runs.shape


# ---- the command -----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "10001", "abc", "1.5", "", "1e3"])
def test_bad_prior_draws_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, value):
    from isk_defection.experiments.cli import main

    out = tmp_path / "out"
    assert main(["doses", "--quick", "--prior-draws", value, "--out", str(out)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("defection: error: --prior-draws: ")
    assert "must be an integer in [1, 10,000]" in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_prior_draws_overrides_the_design(monkeypatch, tmp_path):
    from isk_defection.experiments.cli import main

    seen = []

    def capture(out, design, engine, progress):
        seen.append(design)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(doses, "run_doses", capture)
    out = str(tmp_path / "out")
    assert main(["doses", "--quick", "--prior-draws", "7", "--out", out, "-q"]) == 130
    assert main(["doses", "--out", out, "-q", "--resume"]) == 130
    assert seen[0] == dataclasses.replace(DoseDesign.quick(), prior_draws=7)
    assert seen[1] == DoseDesign() and seen[1].prior_draws == 100 and seen[1].weeks == 208


def test_quick_mode_end_to_end(monkeypatch, tmp_path, capsys):
    """``--quick`` as CI runs it, on one lever (every lever takes ~1 s of pool start a dose)."""
    from isk_defection.experiments.cli import main

    quick = DoseDesign.quick()
    monkeypatch.setattr(DoseDesign, "quick", classmethod(lambda cls: dataclasses.replace(
        quick, levers=("womens_rights",))))  # fmt: skip
    out = tmp_path / "out"
    assert main(["doses", "--quick", "--workers", "2", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "womens_rights:" in printed and "of the largest agent's people" in printed
    written = ("doses.csv", "runs.csv", "draws.csv", "design.json", "cliffs.csv", "cliffs.md")
    for name in (*written, "doses.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "doses.csv")
    assert set(table.dose) == set(DOSES) and (table.seeds == 2).all() and (table.draws == 2).all()
    lost = table[table.outcome.isin([f"{g}_lost" for g in GROUP_NAMES])]
    assert (lost.prior_p05 <= lost.prior_median + 1e-12).all()
    assert (lost.prior_median <= lost.prior_p95 + 1e-12).all()
    cliff = pd.read_csv(out / "cliffs.csv")
    assert set(cliff.group) == set(GROUP_NAMES) and (cliff.draws == 2).all()
    assert "| `womens_rights` |" in (out / "cliffs.md").read_text()
    top = json.loads((out / "ceiling.json").read_text())
    assert top["weeks"] == 52 and top["seeds"] == 2 and top["prior_draws"] == 2
    assert "max_intake_over_capacity" not in top and 0 <= top["max_overrun_agents"] <= 1
    assert top["peak_people_median"] <= top["peak_people_p90"] <= top["peak_people_max"]
    assert top["prior_peak_people_median"] <= top["prior_peak_people_max"]
    assert top["peak_people_max"] >= top["start_people"] > 0


def test_a_folder_of_another_design_is_refused_and_left_as_it_was(tmp_path, capsys):
    from isk_defection.experiments import folders
    from isk_defection.experiments.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / folders.MARKER).write_text('{"kind": "doses"}')
    doses.keep_design(out, DoseDesign())  # a full study of 100 draws lives here
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir() if p.name != folders.LOCK)
    assert main(["doses", "--quick", "--out", str(out)]) == 2
    assert main(["doses", "--prior-draws", "7", "--out", str(out)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith("defection: error: --quick: ") and "population" in errors[0]
    assert errors[1].startswith("defection: error: --prior-draws: ") and "100" in errors[1]
    after = sorted((p.name, p.read_bytes()) for p in out.iterdir() if p.name != folders.LOCK)
    assert after == before
    doses.keep_design(out, DoseDesign())  # the same design continues
