"""Shared helpers: run the model quickly over several seeds and average outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from isk_defection.model import DefectionModel

SEEDS = (1, 2, 3, 4)


def run(weeks: int, seed: int, **overrides) -> DefectionModel:
    """A model run for ``weeks`` without agent data (fast)."""
    overrides.setdefault("collect_agent_data", False)
    model = DefectionModel(rng=seed, **overrides)
    for _ in range(weeks):
        model.step()
    return model


def mean_outcome(outcome, weeks: int = 52, seeds=SEEDS, **overrides) -> float:
    """Mean over seeds of ``outcome(model)`` after ``weeks``."""
    return float(np.mean([outcome(run(weeks, s, **overrides)) for s in seeds]))


@pytest.fixture
def small_model() -> DefectionModel:
    """A small baseline model with agent data, at week 0."""
    return DefectionModel(population=500, rng=7)
