"""The fast model agrees with the per-agent reference transcribed from docs/ODD.md.

Three comparisons, each with a check that it would catch a real difference:

1. Identical trajectories. With every random draw of the weekly step switched off (no
   peer encounters, walk-in, recruiter lottery, attrition, cell events or attacks; no
   release), the reference starts from the fast model's week-0 state and both must make
   the same members defect in the same week, with the same loyalties and levers.
2. Equal distributions, everything on. Each model initialises itself with its own draws;
   over 50 seeds, two-sample Kolmogorov-Smirnov tests on IS-K members, defections,
   recruiters, attacks, legitimacy, loyalty and cells must not reject (Bonferroni,
   family-wise 1 %), while the same rule rejects when one mechanism's strength is 25-120 %
   off.
3. The stochastic parts the first test switches off, in isolation, where the second is
   not sensitive enough: relative-agreement encounters (loyalty and uncertainty moved),
   reach (weekly defections with walk-in) and coalescence-fragmentation (the exact
   distribution of cell partitions, by chi-square).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

from model import DefectionModel
from model.isk import Cells
from tests.conftest import run
from tests.reference import ReferenceModel, run_reference

ALPHA = 0.01  # family-wise false-alarm rate of each comparison
ALLEGIANCE = {"loyal": 0, "isk": 1, "removed": 2}


def differs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Outcomes whose KS test rejects at ALPHA over all outcomes (Bonferroni): name -> p."""
    pvalues = {k: stats.ks_2samp(a[k], b[k]).pvalue for k in a}
    return {k: p for k, p in pvalues.items() if p < ALPHA / len(pvalues)}


def sample(outcomes, build, seeds) -> dict[str, np.ndarray]:
    rows = [outcomes(build(seed)) for seed in seeds]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


# ---- 1. identical trajectories -------------------------------------------------------
NO_DRAWS = dict(
    peer_influence=False,
    walk_in=0.0,
    recruiter_share=1.0,
    attrition=False,
    cells=False,
    attack_rate=0.0,
    release_week=-1,
    collect_agent_data=False,
)
ALL_LEVERS = dict(
    moderation="ramp(0.1,0.8,0,30)",
    witch_hunt=0.6,
    crackdown_ttp=0.4,
    crackdown_uyghur=0.5,
    crackdown_aq=0.3,
    foreign_cooperation=0.4,
)


@pytest.mark.parametrize(
    "setting",
    [ALL_LEVERS, {"preset": "crackdown"}, {"adaptive_leadership": True, "risk_aversion": 0.3}],
    ids=["all-levers", "crackdown", "adaptive"],
)
def test_identical_trajectories_when_the_step_draws_nothing(setting):
    fast = DefectionModel(rng=3, population=500, **NO_DRAWS, **setting)
    reference = ReferenceModel.copy_of(fast)
    levers_seen = set()
    for week in range(1, 41):
        fast.step()
        reference.step()
        allegiance = np.array([ALLEGIANCE[m.allegiance] for m in reference.members])
        loyalty = np.array([m.loyalty for m in reference.members])
        assert np.array_equal(allegiance, fast.population.allegiance), f"week {week}"
        assert np.abs(loyalty - fast.population.loyalty).max() < 1e-9, f"week {week}"
        assert reference.levers == fast.levers, f"week {week}"
        assert reference.resources == pytest.approx(fast.resources, abs=1e-12)
        levers_seen.add(tuple(fast.levers.values()))
    assert reference.cumulative_defections == fast.stats["cumulative_defections"] > 40
    assert len(levers_seen) > 5, "the levers must move for the comparison to mean something"


# ---- 2. distributions, every mechanism on --------------------------------------------
WEEKS, SEEDS = 30, range(50)
SETTING = dict(population=600, moderation=0.4, witch_hunt=0.5, crackdown_ttp=0.3)


def weekly_outcomes(model) -> dict[str, float]:
    """End-of-run outcomes from the DataCollector (the two models share these columns)."""
    frame = model.datacollector.get_model_vars_dataframe()
    final = frame.iloc[-1]
    return {
        "isk_members": final["isk_members"],
        "recruiter_share": final["isk_recruiters"] / max(final["isk_members"], 1),
        "cumulative_defections": final["cumulative_defections"],
        "attacks": frame["attacks"].sum(),
        "legitimacy": final["legitimacy"],
        "taliban_loyalty": final["taliban_loyalty"],
        "isk_cells": final["isk_cells"],
    }


@pytest.fixture(scope="module")
def reference_runs():
    return sample(weekly_outcomes, lambda s: run_reference(WEEKS, s, **SETTING), SEEDS)


def fast_runs(**change):
    seeds = range(1_000, 1_000 + len(SEEDS))  # not the reference's: nothing is shared
    return sample(weekly_outcomes, lambda s: run(WEEKS, s, **SETTING, **change), seeds)


def test_distributions_agree_with_every_mechanism_on(reference_runs):
    fast = fast_runs()
    assert fast["cumulative_defections"].mean() > 50, "the setting must produce defections"
    assert not differs(fast, reference_runs)


@pytest.mark.parametrize(
    "change",
    [
        {"outbidding_strength": 1.25},
        {"cascade_strength": 0.75},
        {"legitimacy_hit": 0.003},
        {"material_strength": 1.0},
        {"attrition_rate": 0.02},
        {"recruiter_share": 0.17},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_comparison_detects_a_changed_mechanism(reference_runs, change):
    assert differs(fast_runs(**change), reference_runs)


# ---- 3a. relative agreement in isolation -----------------------------------------------
# No IS-K, no walk-in (nobody is reached, nobody defects) and no drift: only encounters
# move loyalty. Outcomes are measured against each member's own week-0 loyalty.
PEER_ONLY = dict(population=400, isk_size=0, release_week=-1, walk_in=0.0, loyalty_adjustment=0.0)


def opinion_outcomes(model) -> dict[str, float]:
    if isinstance(model, ReferenceModel):
        members = [m for m in model.agents if m.allegiance == "loyal"]
        assert len(members) == len(model.members), "someone left: not peer influence alone"
        loyalty = np.array([m.loyalty for m in members])
        start = np.array([m.baseline_loyalty for m in members])
        uncertainty = np.array([m.uncertainty for m in members])
    else:
        pop = model.population
        assert np.all(pop.allegiance == 0), "someone left: not peer influence alone"
        loyalty, start, uncertainty = pop.loyalty, pop.baseline_loyalty, pop.uncertainty
    return {
        "moved": np.abs(loyalty - start).mean(),
        "shift": (loyalty - start).mean(),
        "spread_ratio": loyalty.std() / start.std(),
        "uncertainty": uncertainty.mean(),
    }


@pytest.fixture(scope="module")
def reference_opinions():
    return sample(opinion_outcomes, lambda s: run_reference(10, s, **PEER_ONLY), range(40))


def fast_opinions(**change):
    build = lambda s: run(10, s, **PEER_ONLY, **change)  # noqa: E731
    return sample(opinion_outcomes, build, range(1_000, 1_040))


def test_relative_agreement_distributions_agree(reference_opinions):
    assert not differs(fast_opinions(), reference_opinions)


@pytest.mark.parametrize(
    "change",
    [{"influence_rate": 0.25}, {"peer_interactions": 1.25}, {"extremist_uncertainty": 0.15}],
    ids=lambda change: next(iter(change)),
)
def test_relative_agreement_comparison_detects_a_change(reference_opinions, change):
    assert differs(fast_opinions(**change), reference_opinions)


# ---- 3b. coalescence-fragmentation in isolation ----------------------------------------
START, EVENTS, NU, RUNS = (3, 2, 1, 1, 1), 4, 0.2, 4_000


def fast_partitions(nu: float) -> Counter:
    rng, seen = np.random.default_rng(1), Counter()
    for _ in range(RUNS):
        cells = Cells()
        cells.sizes = np.array(START, dtype=np.int64)
        cells.evolve(EVENTS, nu, rng)
        seen[tuple(sorted(cells.sizes.tolist()))] += 1
    return seen


def reference_partitions(nu: float) -> Counter:
    model, seen = ReferenceModel(2, population=10), Counter()
    model.p["cell_events"] = EVENTS / sum(START)
    for _ in range(RUNS):
        model.cells = list(START)
        model.cell_events(nu)
        seen[tuple(sorted(model.cells))] += 1
    return seen


def partitions_differ(a: Counter, b: Counter) -> bool:
    keys = sorted(set(a) | set(b))
    table = np.array([[a[k] for k in keys], [b[k] for k in keys]])
    table = table[:, table.sum(axis=0) >= 10]  # chi-square needs populated cells
    return stats.chi2_contingency(table).pvalue < ALPHA


def test_cell_partitions_have_the_same_distribution():
    reference = reference_partitions(NU)
    assert len(reference) > 5
    assert not partitions_differ(fast_partitions(NU), reference)
    assert partitions_differ(fast_partitions(1.5 * NU), reference)


# ---- 3c. reach in isolation --------------------------------------------------------------
# Loyalty jumps to its target (many members cross their threshold at once); no recruiters,
# no cascade, no encounters: who defects each week depends on reach alone (walk-in, then
# contacts who defected).
REACH_ONLY = dict(
    population=600,
    recruitment=False,
    cascade=False,
    peer_influence=False,
    moderation=0.8,
    loyalty_adjustment=1.0,
    release_week=-1,
)


def weekly_defections(model) -> dict[str, float]:
    frame = model.datacollector.get_model_vars_dataframe()
    return {f"week {w}": frame["defections"].iloc[w] for w in (1, 2, 3)}


def test_reach_distributions_agree():
    reference = sample(weekly_defections, lambda s: run_reference(3, s, **REACH_ONLY), range(40))

    def fast(**change):
        build = lambda s: run(3, s, **REACH_ONLY, **change)  # noqa: E731
        return sample(weekly_defections, build, range(1_000, 1_040))

    assert reference["week 1"].mean() > 20
    assert not differs(fast(), reference)
    assert differs(fast(walk_in=0.16), reference)
