"""The fast model agrees with the per-agent reference transcribed from docs/ODD.md.

Both start from the same week-0 state; their random draws differ, so the test compares
distributions of outcomes over many seeds with two-sample Kolmogorov-Smirnov tests, and
checks that the same test does reject when one mechanism's strength differs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.conftest import run
from tests.reference import run_reference

WEEKS, SEEDS = 30, range(100, 140)
SETTING = dict(population=400, moderation=0.6, witch_hunt=0.5, crackdown_ttp=0.3)


def outcomes(model) -> dict[str, float]:
    if hasattr(model, "members"):  # the reference
        loyal = [m.loyalty for m in model.members if not m.in_isk]
        return {
            "isk": model.isk_members,
            "defections": model.defections,
            "legitimacy": model.legitimacy,
            "loyalty": float(np.mean(loyal)),
        }
    loyal = model.population.loyalty[model.population.allegiance == 0]
    return {
        "isk": model.isk_members,
        "defections": int(model.ledger["defected"].sum()),
        "legitimacy": model.legitimacy,
        "loyalty": float(loyal.mean()),
    }


def sample(build, **overrides) -> dict[str, np.ndarray]:
    rows = [outcomes(build(seed, **overrides)) for seed in SEEDS]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def fast():
    return sample(lambda s, **kw: run(WEEKS, s, release_week=-1, **SETTING, **kw))


def reference(**overrides):
    return sample(lambda s, **kw: run_reference(WEEKS, s, **SETTING, **kw), **overrides)


def test_fast_model_matches_the_reference(fast):
    ref = reference()
    assert fast["defections"].mean() > 5, "the setting must produce defections to compare"
    for outcome in fast:
        p = stats.ks_2samp(fast[outcome], ref[outcome]).pvalue
        assert p > 0.01, f"{outcome}: fast and reference differ (KS p = {p:.3g})"


def test_the_comparison_catches_a_real_difference(fast):
    ref = reference(outbidding_strength=2.0)
    p = stats.ks_2samp(fast["defections"], ref["defections"]).pvalue
    assert p < 0.01
