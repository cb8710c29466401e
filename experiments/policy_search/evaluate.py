"""The worker side of the search: one model run of one policy in one scenario, reduced to measures.

Kept light (NumPy and the model only) because it is what the sweep engine's worker
processes or Dask workers import. A task carries everything a run needs, and its result
carries its place (policy, scenario), so results are assembled by position, never by the
order in which they finish: the same seed gives the same numbers on any engine.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from isk_defection.experiments.policy_search.measures import Measure, faction_sizes
from isk_defection.model import DefectionModel


@dataclass(frozen=True)
class Scenario:
    """One in-sample or out-of-sample condition: a posterior draw and a run seed.

    Every candidate policy meets the same scenarios (common random numbers), so
    differences between policies are not differences in luck.
    """

    index: int
    draw: int
    seed: int
    params: dict[str, Any]


@dataclass(frozen=True)
class RunTask:
    """One run: policy ``policy`` in scenario ``scenario`` (indices into the caller's lists)."""

    policy: int
    scenario: int
    preset: str
    steps: int
    seed: int
    params: dict[str, Any]  # fixed parameters | the draw's parameters | lever schedules
    measures: tuple[Measure, ...]
    # also the calibration patterns' simulated values (experiments/calibration/patterns.py):
    # the run goes on to the patterns' last week; the measures still read weeks 0..steps
    patterns: bool = False


@dataclass(frozen=True)
class RunResult:
    """The measures of one run, or the error that stopped it."""

    policy: int
    scenario: int
    values: tuple[float, ...] | None
    error: str | None
    seconds: float
    cpu: float = 0.0  # CPU seconds of the run in its worker (wall time depends on the load)
    patterns: tuple[float, ...] | None = None  # with ``task.patterns``: in PATTERNS' order


def run_task(task: RunTask) -> RunResult:
    """Run the model for ``task.steps`` weeks and reduce it to the task's measures.

    A model error is returned as data (its one-line message), as in the sweep engine.
    """
    started, cpu = time.perf_counter(), time.process_time()
    patterns = None
    try:
        if task.patterns:
            values, patterns = _simulate_with_patterns(task)
        else:
            values = _simulate(task)
        error = None
    except Exception as failure:  # noqa: BLE001 — reported by the caller, never swallowed
        values = None
        error = "".join(traceback.format_exception_only(failure)).strip()
    return RunResult(
        task.policy,
        task.scenario,
        values,
        error,
        time.perf_counter() - started,
        time.process_time() - cpu,
        patterns,
    )


def _simulate(task: RunTask) -> tuple[float, ...]:
    """The task's measures from one run that records only the columns they read."""
    return _run(task, task.steps, [])[0]


def _run(task: RunTask, steps: int, extra: list[str]) -> tuple[tuple[float, ...], Any]:
    """``steps`` weeks recording the measures' columns and ``extra``; measures to ``task.steps``."""
    needed = sorted({c for m in task.measures for c in m.needs()})
    model = DefectionModel(
        preset=task.preset,
        rng=task.seed,
        columns=sorted({*needed, *extra}),
        **(task.params | {"collect_agent_data": False}),
    )
    for _ in range(steps):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()  # weeks 0 to steps
    weekly = {c: frame[c].to_numpy(float)[: task.steps + 1] for c in needed}
    sizes = faction_sizes(model.p)
    values = tuple(
        m.compute({c: weekly[c] for c in m.needs(set(needed))}, sizes) for m in task.measures
    )
    return values, frame


def _simulate_with_patterns(task: RunTask) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The measures, and every calibration pattern's value in the same run (to its last week).

    Later weeks do not change earlier ones, so the measures are those of a run of
    ``task.steps`` weeks.
    """
    import pandas as pd

    from isk_defection.experiments.calibration import patterns as pat

    values, frame = _run(task, max(task.steps, pat.STEPS), list(pat.COLUMNS))
    frame = frame.rename(columns={"week": "step"})
    if "step" not in frame.columns:
        frame.insert(0, "step", np.arange(len(frame)))
    outcomes = pd.DataFrame([pat.measure(frame)])
    row = pat.pattern_values(outcomes).iloc[0]
    return values, tuple(float(row[p.name]) for p in pat.PATTERNS)
