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


@dataclass(frozen=True)
class RunResult:
    """The measures of one run, or the error that stopped it."""

    policy: int
    scenario: int
    values: tuple[float, ...] | None
    error: str | None
    seconds: float
    cpu: float = 0.0  # CPU seconds of the run in its worker (wall time depends on the load)


def run_task(task: RunTask) -> RunResult:
    """Run the model for ``task.steps`` weeks and reduce it to the task's measures.

    A model error is returned as data (its one-line message), as in the sweep engine.
    """
    started, cpu = time.perf_counter(), time.process_time()
    try:
        values, error = _simulate(task), None
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
    )


def _simulate(task: RunTask) -> tuple[float, ...]:
    """The task's measures from one run that records only the columns they read."""
    needed = sorted({c for m in task.measures for c in m.needs()})
    model = DefectionModel(
        preset=task.preset,
        rng=task.seed,
        columns=needed,
        **(task.params | {"collect_agent_data": False}),
    )
    for _ in range(task.steps):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()  # weeks 0 to steps
    weekly = {c: frame[c].to_numpy(float) for c in needed}
    sizes = faction_sizes(model.p)
    return tuple(
        m.compute({c: weekly[c] for c in m.needs(set(needed))}, sizes) for m in task.measures
    )
