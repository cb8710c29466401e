"""The search: NSGA-II/III (pymoo) over lever paths, each candidate judged across scenarios.

Why pymoo: its ask-and-tell interface leaves evaluation to us, so candidates run on the
sweep engine's executors (local processes or Dask) and the whole state — the algorithm
with its own NumPy ``Generator`` — pickles into a checkpoint after every generation; a
run killed at any moment resumes from the last one and ends with the same front.
NSGA-III (reference directions) keeps a spread front for four or more objectives, where
NSGA-II's crowding distance loses selection pressure; NSGA-II is used for up to three.
EMA Workbench's ε-NSGA-II (through Platypus) runs its own evaluators and archive and
needs an ε per objective chosen in advance; it offers no per-generation checkpoint.

Common random numbers: the scenarios (posterior draws x seeds) are drawn once from the
master seed, and every candidate meets the same ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.evaluator import Evaluator
from pymoo.indicators.hv import HV
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.problems.static import StaticProblem
from scipy.stats import qmc

from isk_defection.experiments.ensemble import Ensemble, draw
from isk_defection.experiments.policy_search.evaluate import RunTask, Scenario, run_task
from isk_defection.experiments.policy_search.pymoo_parts import (
    LeverProblem,
    Rounding,
    cv_then_random,
    reference_directions,
)
from isk_defection.experiments.policy_search.robust import (
    constraint_violations,
    non_dominated,
    objective_losses,
)
from isk_defection.experiments.policy_search.spec import ModeratingPath, OptimizeSpec
from isk_defection.model import DefectionModel
from isk_defection.model.policy import Schedule

CHECKPOINT = "checkpoint.pkl"
JOURNAL = "runs.jsonl"  # every finished run, appended as it finishes
HV_MARGIN = 0.1  # reference point: 10% beyond the final front's nadir (scaled)


@dataclass(frozen=True)
class Policy:
    """A policy to evaluate: a preset's own lever timelines, or lever paths searched."""

    name: str
    preset: str
    levers: dict[str, Schedule]


@dataclass
class SearchState:
    """Everything the search needs to continue: written whole after every generation."""

    digest: str
    algorithm: Any  # the pymoo algorithm, with its random Generator
    generation: int = 0
    archive_x: list[np.ndarray] = field(default_factory=list)  # per generation (n, vars)
    archive_values: list[np.ndarray] = field(default_factory=list)  # (n, scenarios, measures)
    reference_values: np.ndarray | None = None  # (references, scenarios, measures)
    archive_losses: list[np.ndarray] = field(default_factory=list)  # robust objectives
    archive_feasible: list[np.ndarray] = field(default_factory=list)
    hypervolume: list[float] = field(default_factory=list)
    feasible: list[float] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds of the model runs


@dataclass(frozen=True)
class SearchResult:
    """The archive of every evaluated candidate and the convergence record."""

    x: np.ndarray  # (candidates, variables)
    values: np.ndarray  # (candidates, scenarios, measures)
    generation: np.ndarray  # generation each candidate was first evaluated in
    reference_values: np.ndarray  # (references, scenarios, measures)
    hypervolume: list[float]
    feasible: list[float]
    runs: int
    seconds: float
    cpu: float


# ---------------------------------------------------------------- seeds and scenarios


def seed_streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent seed streams for the algorithm, in-sample and out-of-sample scenarios."""
    algorithm, in_sample, stress = np.random.SeedSequence(seed).spawn(3)
    return {"algorithm": algorithm, "in_sample": in_sample, "stress": stress}


def scenarios(
    ensemble: Ensemble, draws: int, seeds: int, stream: np.random.SeedSequence
) -> list[Scenario]:
    """``draws`` weighted posterior draws x ``seeds`` run seeds, draw-major, all from ``stream``.

    Run seeds are the children of the stream, as in the sweep engine: scenario i's seed is
    the i-th child, whatever engine runs it.
    """
    pick, runs = stream.spawn(2)
    chosen = draw(ensemble, draws, np.random.default_rng(pick))
    children = runs.spawn(draws * seeds)
    return [
        Scenario(
            k * seeds + j,
            chosen[k].draw,
            int(children[k * seeds + j].generate_state(1, np.uint32)[0]),
            chosen[k].params,
        )
        for k in range(draws)
        for j in range(seeds)
    ]


# ---------------------------------------------------------------- policies


def schedules(spec: OptimizeSpec, x: np.ndarray) -> dict[str, Schedule]:
    """A decision vector as lever schedules: each lever held over each period."""
    weeks = tuple(float(w) for w in spec.period_starts)
    out = {}
    for i, lever in enumerate(spec.levers):
        values = tuple(float(v) for v in x[i * spec.periods : (i + 1) * spec.periods])
        for target in lever.targets:
            out[target] = Schedule(weeks, values, linear=False)
    return out


def candidate(spec: OptimizeSpec, x: np.ndarray, name: str = "") -> Policy:
    """A searched path as a policy on the spec's preset."""
    return Policy(name, spec.preset, schedules(spec, x))


def project(spec: OptimizeSpec, preset: str) -> np.ndarray:
    """A preset's lever timelines as a decision vector: each lever's mean over each period.

    The last period runs to the end of the horizon, as the searched paths hold their last
    value. Used to seed the first generation and to draw the references beside the front;
    the references themselves are always evaluated with their exact timelines.
    """
    model = DefectionModel(
        preset=preset, rng=0, **(spec.fixed | {"population": 50, "collect_agent_data": False})
    )
    bounds = [*spec.period_starts, spec.steps + 1]
    x = []
    for lever in spec.levers:
        for k in range(spec.periods):
            weeks = range(bounds[k], max(bounds[k + 1], bounds[k] + 1))
            values = [np.mean([model.policy.levers_at(w)[t] for t in lever.targets]) for w in weeks]
            x.append(float(np.clip(np.mean(values), lever.low, lever.high)))
    return round_to(spec, np.array(x))


def round_to(spec: OptimizeSpec, x: np.ndarray) -> np.ndarray:
    """Decision values on the spec's resolution grid, within the bounds."""
    lows, highs = bounds(spec)
    if spec.resolution > 0:
        x = np.round(np.asarray(x) / spec.resolution) * spec.resolution
    return np.clip(np.round(x, 10), lows, highs)


def bounds(spec: OptimizeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of every decision variable."""
    lows = np.repeat([lever.low for lever in spec.levers], spec.periods)
    highs = np.repeat([lever.high for lever in spec.levers], spec.periods)
    return lows.astype(float), highs.astype(float)


# ---------------------------------------------------------------- evaluation


class Evaluations:
    """Runs policies x scenarios on an executor and returns their measures by position.

    With a ``journal`` file every finished run is appended to it at once (one JSON line:
    a key naming the run's content, its measures, its CPU time), and runs already there
    are not run again: a search killed in the middle of a generation or of the stress
    test loses no finished run. Runs are deterministic, so a journalled result is exactly
    what running it again would give (floats round-trip through JSON exactly).
    """

    def __init__(
        self,
        spec: OptimizeSpec,
        pool: Executor,
        progress: Callable[[int], None] | None = None,
        journal: Path | None = None,
    ) -> None:
        self.spec, self.pool, self.progress, self.journal = spec, pool, progress, journal
        self.runs = 0
        self.cpu = 0.0
        self.patterns: dict[str, list[float]] = {}  # pattern values of runs that record them
        self.done: dict[str, tuple[list[float], float]] = _read_journal(journal, self.patterns)

    def key(self, policy: Policy, scene: Scenario, patterns: bool = False) -> str:
        """What determines a run's result, hashed: preset, levers, seed, parameters, measures."""
        content = [
            policy.preset,
            sorted((name, s.describe()) for name, s in policy.levers.items()),
            scene.seed,
            sorted((k, repr(v)) for k, v in (self.spec.fixed | scene.params).items()),
            self.spec.steps,
            [m.name for m in self.spec.measures],
        ]
        if patterns:  # the same run, also read for the calibration patterns
            content.append("patterns")
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:24]

    def pattern_values(self, policy: Policy, scenes: Sequence[Scenario]) -> np.ndarray:
        """The calibration patterns' values ``(scenarios, patterns)`` of runs made with them."""
        return np.array([self.patterns[self.key(policy, s, True)] for s in scenes], dtype=float)

    def values(
        self, policies: Sequence[Policy], scenes: Sequence[Scenario], patterns: bool = False
    ) -> np.ndarray:
        """Measures ``(policies, scenarios, measures)``; a failed run stops the search.

        With ``patterns`` every run also yields the calibration patterns' values
        (:meth:`pattern_values`).
        """
        measures = self.spec.measures
        out = np.full((len(policies), len(scenes), len(measures)), np.nan)
        keys = {}
        for p, policy in enumerate(policies):
            for s, scene in enumerate(scenes):
                key = keys[p, s] = self.key(policy, scene, patterns)
                if key in self.done:
                    out[p, s] = self.done[key][0]
                    self._count(self.done[key][1])
        futures = [
            self.pool.submit(
                run_task,
                RunTask(
                    p,
                    s,
                    policy.preset,
                    self.spec.steps,
                    scene.seed,
                    self.spec.fixed | scene.params | policy.levers,
                    measures,
                    patterns,
                ),
            )
            for p, policy in enumerate(policies)
            for s, scene in enumerate(scenes)
            if keys[p, s] not in self.done
        ]
        journal = open(self.journal, "a") if self.journal else None  # noqa: SIM115
        try:
            for future in _completed(futures):
                result = future.result()
                if result.error is not None:
                    policy = policies[result.policy]
                    raise RuntimeError(
                        f"a model run failed (policy {policy.name or result.policy}, scenario "
                        f"{result.scenario}): {result.error}"
                    )
                out[result.policy, result.scenario] = result.values
                key = keys[result.policy, result.scenario]
                self.done[key] = (list(result.values), result.cpu)
                line = {"key": key, "values": list(result.values), "cpu": result.cpu}
                if result.patterns is not None:
                    self.patterns[key] = line["patterns"] = list(result.patterns)
                if journal is not None:
                    journal.write(json.dumps(line) + "\n")
                    journal.flush()
                self._count(result.cpu)
        finally:
            for future in futures:
                future.cancel()
            if journal is not None:
                journal.close()
        return out

    def _count(self, cpu: float) -> None:
        self.runs += 1
        self.cpu += cpu
        if self.progress:
            self.progress(1)


def _read_journal(
    path: Path | None, patterns: dict[str, list[float]]
) -> dict[str, tuple[list[float], float]]:
    """Finished runs from a journal (their pattern values into ``patterns``).

    A line cut short by a kill is ignored.
    """
    done: dict[str, tuple[list[float], float]] = {}
    if path is None or not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            values = ([float(v) for v in record["values"]], float(record["cpu"]))
            if "patterns" in record:
                patterns[record["key"]] = [float(v) for v in record["patterns"]]
            done[record["key"]] = values
        except (ValueError, KeyError, TypeError):
            continue
    return done


def _completed(futures: list) -> Any:
    """Futures as they finish (works for concurrent.futures and Dask's executor alike)."""
    from concurrent.futures import as_completed

    return as_completed(futures)


# ---------------------------------------------------------------- the algorithm


def make_algorithm(spec: OptimizeSpec, initial: np.ndarray) -> Any:
    """NSGA-II or NSGA-III with the initial population given, rounding repair, no duplicates."""
    common = {
        "pop_size": spec.population,
        "sampling": initial,
        "repair": Rounding(spec.resolution),
        "eliminate_duplicates": True,
    }
    if spec.algorithm == "nsga3":
        return NSGA3(
            ref_dirs=reference_directions(len(spec.objectives), spec.population),
            selection=TournamentSelection(func_comp=cv_then_random),
            **common,
        )
    return NSGA2(**common)


def moderating_rows(spec: OptimizeSpec) -> list[tuple[ModeratingPath, np.ndarray]]:
    """The spec's structured moderating paths as decision vectors, in the declared order.

    Every lever starts from the actual policy's path (the first reference, each lever's
    mean over each period); the path's moderation levers then take its level ``at_once``
    (every period), ``ramped`` (from the actual level in the first period up in even
    steps to the level in the last) or ``late`` (the actual level, then the level in the
    last ``late_periods`` periods). On the spec's grid, within the bounds.
    """
    if not spec.moderation_paths:
        return []
    actual = project(spec, spec.references[0] if spec.references else spec.preset)
    names = [lever.name for lever in spec.levers]
    periods = spec.periods
    rows = []
    for path in spec.moderation_paths:
        x = actual.copy()
        for name in path.levers:
            block = slice(names.index(name) * periods, (names.index(name) + 1) * periods)
            start = x[block].copy()
            if path.timing == "at_once":
                x[block] = path.level
            elif path.timing == "ramped":
                steps = np.arange(1, periods + 1) / periods
                x[block] = start[0] + (path.level - start[0]) * steps
            else:  # late
                x[block] = np.concatenate(
                    [start[: periods - spec.late_periods], np.full(spec.late_periods, path.level)]
                )
        rows.append((path, round_to(spec, x)))
    return rows


def initial_population(spec: OptimizeSpec, rng: np.random.Generator) -> np.ndarray:
    """Generation 1: the references, the structured moderating paths, then a Latin hypercube.

    With ``seed_population`` the references' own paths come first; then the spec's
    moderating paths (:func:`moderating_rows`: women's rights and inclusion alone and
    together, at each level and timing, the rest at the actual policy), so that the search
    compares moderating paths from the start instead of waiting for random ones; then
    half of the rest are perturbations of the references (each level moved by a normal
    step of 0.15, on the grid): random paths alone rarely meet a tight constraint such as
    "regime losses <= 5%", while paths near the policies actually chosen usually do, so
    the search starts with feasible parents and widens from there.
    """
    lows, highs = bounds(spec)
    rows: list[np.ndarray] = []
    parents: list[np.ndarray] = []
    if spec.seed_population:
        for name in spec.references:
            row = project(spec, name)
            if not any(np.array_equal(row, r) for r in rows):
                rows.append(row)
        rows = rows[: spec.population]
        parents = list(rows)
    for _, row in moderating_rows(spec):
        if len(rows) < spec.population and not any(np.array_equal(row, r) for r in rows):
            rows.append(row)
    if spec.seed_population:
        wanted = (spec.population - len(rows)) // 2
        for attempt in range(100 * spec.population):  # bounded: duplicates are skipped
            if not parents or wanted == 0:
                break
            parent = parents[attempt % len(parents)]
            child = round_to(spec, parent + rng.normal(0.0, 0.15, len(parent)))
            if not any(np.array_equal(child, r) for r in rows):
                rows.append(child)
                wanted -= 1
    n = spec.population - len(rows)
    if n:
        sample = qmc.LatinHypercube(d=len(lows), seed=rng).random(n)
        rows += list(round_to(spec, qmc.scale(sample, lows, highs)))
    return np.array(rows)


def run_search(
    spec: OptimizeSpec,
    ensemble: Ensemble,
    out: Path,
    pool: Executor,
    *,
    digest: str,
    resume: bool,
    on_generation: Callable[[SearchState], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """Evaluate the references, then every generation; checkpoint after each one."""
    streams = seed_streams(spec.seed)
    scenes = scenarios(ensemble, spec.draws, spec.seeds, streams["in_sample"])
    evaluations = Evaluations(spec, pool, progress, out / JOURNAL)
    state = load_checkpoint(out, digest) if resume else None
    if state is None:
        first, operators = streams["algorithm"].spawn(2)  # generation 1; pymoo's own stream
        algorithm = make_algorithm(spec, initial_population(spec, np.random.default_rng(first)))
        lows, highs = bounds(spec)
        problem = LeverProblem(len(lows), len(spec.objectives), len(spec.constraints), lows, highs)
        algorithm_seed = int(operators.generate_state(1, np.uint32)[0])
        algorithm.setup(problem, seed=algorithm_seed, termination=("n_gen", spec.generations))
        state = SearchState(digest, algorithm)
    started = time.perf_counter()
    if state.reference_values is None:
        references = [Policy(name, name, {}) for name in spec.references]
        state.reference_values = evaluations.values(references, scenes)
    reference = state.reference_values[0] if len(spec.references) else None
    cache = {
        x.tobytes(): v
        for xs, vs in zip(state.archive_x, state.archive_values, strict=True)
        for x, v in zip(xs, vs, strict=True)
    }
    while state.generation < spec.generations:
        population = state.algorithm.ask()
        x = round_to(spec, population.get("X"))
        population.set("X", x)
        todo = [i for i, row in enumerate(x) if row.tobytes() not in cache]
        if todo:
            fresh = evaluations.values([candidate(spec, x[i]) for i in todo], scenes)
            for i, values in zip(todo, fresh, strict=True):
                cache[x[i].tobytes()] = values
        values = np.stack([cache[row.tobytes()] for row in x])
        losses = objective_losses(spec, values, reference)
        violations = constraint_violations(spec, values, reference)
        answers = {"F": losses} | ({"G": violations} if spec.constraints else {})
        Evaluator().eval(StaticProblem(state.algorithm.problem, **answers), population)
        state.algorithm.tell(infills=population)
        state.archive_x.append(x)
        state.archive_values.append(values)
        state.archive_losses.append(losses)
        state.archive_feasible.append(
            np.all(violations <= 0, axis=1) if violations.size else np.ones(len(x), bool)
        )
        state.generation += 1
        _convergence(state, losses, violations)
        state.runs += evaluations.runs
        state.cpu += evaluations.cpu
        evaluations.runs, evaluations.cpu = 0, 0.0
        state.seconds += time.perf_counter() - started
        started = time.perf_counter()
        save_checkpoint(out, state)
        if on_generation:
            on_generation(state)
    return _result(state)


def _result(state: SearchState) -> SearchResult:
    assert state.reference_values is not None  # search() evaluates the references first
    x = np.concatenate(state.archive_x)
    values = np.concatenate(state.archive_values)
    generation = np.concatenate([np.full(len(xs), g + 1) for g, xs in enumerate(state.archive_x)])
    # keep each path once, at its first evaluation (identical paths give identical values)
    _, first = np.unique(x, axis=0, return_index=True)
    keep = np.sort(first)
    return SearchResult(
        x[keep],
        values[keep],
        generation[keep],
        state.reference_values,
        list(state.hypervolume),
        list(state.feasible),
        state.runs,
        state.seconds,
        state.cpu,
    )


def _convergence(state: SearchState, losses: np.ndarray, violations: np.ndarray) -> None:
    """Record the generation's feasible share and the hypervolume of the front found so far."""
    feasible = np.all(violations <= 0, axis=1) if violations.size else np.ones(len(losses), bool)
    state.feasible.append(float(feasible.mean()))
    state.hypervolume = hypervolumes(state.archive_losses, state.archive_feasible)


def hypervolumes(losses: list[np.ndarray], feasible: list[np.ndarray]) -> list[float]:
    """Per generation, the hypervolume of the feasible non-dominated set found up to it.

    Objectives are scaled so that the best value found (over all generations) is 0 and the
    worst on the final front is 1; the reference point is 1.1 in each. With one scaling
    for every generation, the curve rises as the front advances and flattens as the
    search converges.
    """
    if not losses:
        return []
    every = np.concatenate(losses)
    ok = np.concatenate(feasible)
    if not ok.any():
        return [0.0] * len(losses)
    pool = every[ok]
    front = pool[non_dominated(pool)]
    ideal, nadir = pool.min(axis=0), front.max(axis=0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    indicator = HV(ref_point=np.full(every.shape[1], 1.0 + HV_MARGIN))
    values, seen = [], 0
    for block in losses:
        seen += len(block)
        upto = every[:seen][ok[:seen]]
        if len(upto) == 0:
            values.append(0.0)
            continue
        best = upto[non_dominated(upto)]
        values.append(float(indicator((best - ideal) / span)))
    return values


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(out: Path, state: SearchState) -> None:
    """Write the state by atomic rename: a kill leaves the previous checkpoint or this one."""
    staging = out / f".{CHECKPOINT}.tmp"
    with open(staging, "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, out / CHECKPOINT)


def load_checkpoint(out: Path, digest: str) -> SearchState | None:
    """The last checkpoint of this spec in ``out``, if any."""
    path = out / CHECKPOINT
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        state = pickle.load(handle)  # noqa: S301 — our own file, in the user's output folder
    if state.digest != digest:
        raise ValueError(f"--out: {out} holds a checkpoint of another spec; use another folder")
    return state
