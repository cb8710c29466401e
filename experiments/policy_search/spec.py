"""Optimisation specs: which levers to search, over which periods, judged by what, how robustly.

A spec is TOML (``experiments/specs/optimize_example.toml`` explains every key) or a dict.
It is validated in full before anything runs or is written; a bad value raises a
one-line ``ValueError`` naming the field (``defection optimize`` exits with status 2).
``--quick`` merges the spec's ``[quick]`` tables over the rest, so the quick and the full
run are the same experiment at two sizes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isk_defection.experiments.policy_search.measures import Measure, measure_for
from isk_defection.model.parameters import PARAMETERS, resolve
from isk_defection.model.policy import LEVERS, Schedule
from isk_defection.model.presets import preset as preset_overrides

SECTIONS: dict[str, set[str] | None] = {
    "optimize": {
        "name",
        "preset",
        "steps",
        "seed",
        "periods",
        "period_weeks",
        "resolution",
        "levers",
        "references",
        "moderation_level",
    },
    "fixed": None,  # any model parameter
    "bounds": None,  # any searched lever
    "robustness": {"draws", "seeds"},
    "algorithm": {"name", "population", "generations", "pareto_max", "seed_population"},
    "objectives": None,  # tables, one per objective
    "constraints": None,  # tables, one per constraint
    "stress": {"draws", "seeds"},
    "quick": None,  # the same sections again
}
OBJECTIVE_KEYS = {"measure", "sense", "statistic", "label"}
CONSTRAINT_KEYS = {"measure", "statistic", "max", "min"}
STATISTICS = ("mean", "p90", "regret")
ALGORITHMS = ("auto", "nsga2", "nsga3")
MODERATION = ("womens_rights", "inclusion", "moderation")  # levers that count as moderation


@dataclass(frozen=True)
class SearchLever:
    """A searched lever: its name, the model levers it sets (an alias may set two), bounds."""

    name: str
    targets: tuple[str, ...]
    low: float
    high: float


@dataclass(frozen=True)
class Objective:
    """A robust objective: a per-run measure, its direction and the statistic over scenarios.

    ``mean`` averages over the scenarios; ``p90`` is the 90th percentile of the loss (for a
    quantity to maximise, its 10th percentile: the worst decile); ``regret`` is the 90th
    percentile of the loss relative to the first reference policy (the actual one) in the
    same scenario — paired, thanks to common random numbers.
    """

    name: str
    measure: Measure
    sense: str
    statistic: str
    label: str


@dataclass(frozen=True)
class Constraint:
    """A bound on a robust statistic of a measure, e.g. mean regime losses to IS-K <= 5%."""

    name: str
    measure: Measure
    statistic: str
    bound: float
    upper: bool  # True: statistic <= bound; False: statistic >= bound

    def text(self) -> str:
        """The constraint in words."""
        return (
            f"{self.statistic} of {self.measure.name} {'<=' if self.upper else '>='} {self.bound:g}"
        )


@dataclass(frozen=True)
class OptimizeSpec:
    """A validated optimisation: the search space, objectives, robustness and budgets."""

    name: str
    preset: str
    steps: int
    seed: int
    periods: int
    period_weeks: int
    resolution: float
    levers: tuple[SearchLever, ...]
    references: tuple[str, ...]
    moderation_level: float
    fixed: dict[str, Any]
    draws: int
    seeds: int
    algorithm: str
    population: int
    generations: int
    pareto_max: int
    seed_population: bool
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    stress_draws: int
    stress_seeds: int
    quick: bool
    source: dict[str, Any]
    notes: tuple[str, ...] = ()  # what was left out because this model version lacks it

    @property
    def digest(self) -> str:
        """Hash of the effective spec (after ``--quick``): equal hashes, same experiment."""
        text = json.dumps([self.source, self.quick], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def scenarios(self) -> int:
        """In-sample scenarios per candidate: posterior draws x seeds."""
        return self.draws * self.seeds

    @property
    def variables(self) -> list[str]:
        """Decision-variable names, lever-major: ``<lever>_p1 ... <lever>_pP``."""
        return [f"{lever.name}_p{k + 1}" for lever in self.levers for k in range(self.periods)]

    @property
    def measures(self) -> tuple[Measure, ...]:
        """Every measure an objective or constraint needs, once, in a fixed order."""
        seen: dict[str, Measure] = {}
        for item in (*self.objectives, *self.constraints):
            seen.setdefault(item.measure.name, item.measure)
        return tuple(seen.values())

    @property
    def period_starts(self) -> list[int]:
        """The week each period starts (week 0 is 15 August 2021)."""
        return [k * self.period_weeks for k in range(self.periods)]

    @property
    def moderation_levers(self) -> list[str]:
        """Searched levers that stand for moderation (women's rights, inclusion)."""
        return [lever.name for lever in self.levers if lever.name in MODERATION]


def load_optimize_spec(source: str | Path | dict[str, Any], quick: bool = False) -> OptimizeSpec:
    """Read and validate a spec; with ``quick``, the ``[quick]`` tables override the rest."""
    raw = _read(source)
    _check_sections(raw, "")
    quick_tables = raw.get("quick", {})
    _check_sections(quick_tables, "quick.")
    if "quick" in quick_tables:
        raise ValueError("spec: quick.quick: [quick] cannot nest")
    effective = {k: v for k, v in raw.items() if k != "quick"}
    if quick:
        effective = _merge(effective, quick_tables)
    return _build(effective, quick)


def _read(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(source, dict):
        return copy.deepcopy(source)
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"spec: no such file {str(path)!r}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"spec: {path} is not valid TOML ({error})") from None


def _check_sections(raw: dict[str, Any], prefix: str) -> None:
    for section, keys in raw.items():
        if section not in SECTIONS:
            allowed = ", ".join(SECTIONS)
            raise ValueError(f"spec: unknown section [{prefix}{section}] (allowed: {allowed})")
        if not isinstance(keys, dict):
            raise ValueError(f"spec: [{prefix}{section}] must be a table of keys")
        allowed_keys = SECTIONS[section]
        if allowed_keys is not None:
            unknown = sorted(set(keys) - allowed_keys)
            if unknown:
                raise ValueError(
                    f"spec: unknown key {prefix}{section}.{unknown[0]} "
                    f"(allowed: {', '.join(sorted(allowed_keys))})"
                )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(raw: dict[str, Any], quick: bool) -> OptimizeSpec:
    opt = raw.get("optimize", {})
    preset = str(opt.get("preset", "baseline"))
    preset_overrides(preset)  # an unknown preset raises, naming the field
    steps = _integer("optimize.steps", opt.get("steps", 208), 1)
    periods = _integer("optimize.periods", opt.get("periods", 4), 1)
    period_weeks = _integer("optimize.period_weeks", opt.get("period_weeks", 26), 1)
    if periods * period_weeks > steps:
        raise ValueError(
            f"optimize.periods: {periods} periods of {period_weeks} weeks exceed "
            f"optimize.steps ({steps})"
        )
    resolution = _number("optimize.resolution", opt.get("resolution", 0.05), 0.0, 0.5)
    fixed = _fixed(raw.get("fixed", {}))
    levers = _levers(opt.get("levers"), raw.get("bounds", {}), fixed)
    references = tuple(_references(opt.get("references", ["baseline", "inclusive"])))
    algo = raw.get("algorithm", {})
    population = _integer("algorithm.population", algo.get("population", 40), 4)
    notes: list[str] = []
    objectives = _objectives(raw.get("objectives", {}), references, notes)
    name = str(algo.get("name", "auto"))
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm.name: must be one of {', '.join(ALGORITHMS)} (got {name!r})")
    if name == "auto":
        name = "nsga3" if len(objectives) >= 4 else "nsga2"
    robustness, stress = raw.get("robustness", {}), raw.get("stress", {})
    spec = OptimizeSpec(
        name=_name(opt.get("name", "optimize")),
        preset=preset,
        steps=steps,
        seed=_integer("optimize.seed", opt.get("seed", 0), 0),
        periods=periods,
        period_weeks=period_weeks,
        resolution=resolution,
        levers=levers,
        references=references,
        moderation_level=_number(
            "optimize.moderation_level", opt.get("moderation_level", 0.5), 0.0, 1.0
        ),
        fixed=fixed,
        draws=_integer("robustness.draws", robustness.get("draws", 8), 1),
        seeds=_integer("robustness.seeds", robustness.get("seeds", 2), 1),
        algorithm=name,
        population=population,
        generations=_integer("algorithm.generations", algo.get("generations", 25), 1),
        pareto_max=_integer("algorithm.pareto_max", algo.get("pareto_max", 2 * population), 1),
        seed_population=_flag("algorithm.seed_population", algo.get("seed_population", True)),
        objectives=objectives,
        constraints=_constraints(raw.get("constraints", {}), references, notes),
        stress_draws=_integer("stress.draws", stress.get("draws", 100), 1),
        stress_seeds=_integer("stress.seeds", stress.get("seeds", 1), 1),
        quick=quick,
        source=raw,
        notes=tuple(notes),
    )
    _check_runs(spec)
    return spec


def _name(value: Any) -> str:
    text = str(value)
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError(f"optimize.name: must be letters, digits, - _ . (got {value!r})")
    return text


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum} (got {value!r})")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name}: must be a number in [{low:g}, {high:g}] (got {value!r})")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false (got {value!r})")
    return value


def _fixed(values: dict[str, Any]) -> dict[str, Any]:
    checked = {}
    for name, value in values.items():
        if name == "moderation" and name not in PARAMETERS:
            raise ValueError("fixed.moderation: set womens_rights and inclusion instead")
        if name not in PARAMETERS:
            raise ValueError(f"fixed.{name}: unknown parameter (see defection params)")
        try:
            checked[name] = PARAMETERS[name].validate(value)
        except ValueError as error:
            raise ValueError(f"fixed.{error}") from None
    return checked


def lever_targets(name: str) -> tuple[str, ...]:
    """The model levers a searched lever sets.

    Itself, or for the alias ``moderation`` once the model has split it, both women's
    rights and inclusion, held equal.
    """
    if name in LEVERS:
        return (name,)
    if name == "moderation" and {"womens_rights", "inclusion"} <= set(LEVERS):
        return ("womens_rights", "inclusion")
    raise ValueError(f"optimize.levers: unknown lever {name!r} (levers: {', '.join(LEVERS)})")


def _levers(names: Any, bounds: dict[str, Any], fixed: dict[str, Any]) -> tuple[SearchLever, ...]:
    if names is None:
        names = list(LEVERS)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("optimize.levers: must be a non-empty list of lever names")
    if len(set(names)) != len(names):
        raise ValueError("optimize.levers: a lever is listed twice")
    levers, covered = [], set()
    for name in names:
        targets = lever_targets(name)
        if covered & set(targets):
            raise ValueError(f"optimize.levers: {name} overlaps another searched lever")
        covered |= set(targets)
        held = set(targets) & set(fixed)
        if held:
            raise ValueError(f"fixed.{sorted(held)[0]}: is searched (optimize.levers); drop one")
        low, high = (
            bounds.get(name, [0.0, 1.0])
            if isinstance(bounds.get(name, []), list)
            else (
                None,
                None,
            )
        )
        ok = all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (low, high))
        if not ok or not 0.0 <= low < high <= 1.0:
            raise ValueError(f"bounds.{name}: must be [low, high] with 0 <= low < high <= 1")
        levers.append(SearchLever(name, targets, float(low), float(high)))
    extra = sorted(set(bounds) - set(names))
    if extra:
        raise ValueError(f"bounds.{extra[0]}: not a searched lever (optimize.levers)")
    return tuple(levers)


def _references(names: Any) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("optimize.references: must be a list of preset names")
    for name in names:
        try:
            preset_overrides(name)
        except ValueError as error:
            raise ValueError(f"optimize.references: {error}") from None
    return names


def _left_out(where: str, measure: Measure, notes: list[str]) -> bool:
    """True (and a note) when this model version does not record what ``measure`` needs."""
    missing = measure.missing()
    if missing:
        notes.append(
            f"{where} ({measure.name}) left out: this model version does not record {missing[0]}"
        )
    return bool(missing)


def _objectives(
    tables: dict[str, Any], references: tuple[str, ...], notes: list[str]
) -> tuple[Objective, ...]:
    if not tables:
        raise ValueError("objectives: at least one [objectives.NAME] table is needed")
    objectives = []
    for name, table in tables.items():
        where = f"objectives.{name}"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: must be a table (measure, sense, statistic)")
        unknown = sorted(set(table) - OBJECTIVE_KEYS)
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key ({', '.join(sorted(OBJECTIVE_KEYS))})"
            )
        measure = measure_for(f"{where}.measure", table.get("measure", name))
        sense = table.get("sense", measure.sense)
        if sense not in ("min", "max"):
            raise ValueError(f"{where}.sense: must be 'min' or 'max' (got {sense!r})")
        statistic = _statistic(f"{where}.statistic", table.get("statistic", "p90"), references)
        label = str(table.get("label", measure.label))
        if not _left_out(where, measure, notes):
            objectives.append(Objective(name, measure, sense, statistic, label))
    if not objectives:
        raise ValueError("objectives: none of them can be measured by this model version")
    return tuple(objectives)


def _statistic(where: str, value: Any, references: tuple[str, ...]) -> str:
    if value not in STATISTICS:
        raise ValueError(f"{where}: must be one of {', '.join(STATISTICS)} (got {value!r})")
    if value == "regret" and not references:
        raise ValueError(f"{where}: regret needs a reference policy (optimize.references)")
    return value


def _constraints(
    tables: dict[str, Any], references: tuple[str, ...], notes: list[str]
) -> tuple[Constraint, ...]:
    constraints = []
    for name, table in tables.items():
        where = f"constraints.{name}"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: must be a table (measure, statistic, max or min)")
        unknown = sorted(set(table) - CONSTRAINT_KEYS)
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key ({', '.join(sorted(CONSTRAINT_KEYS))})"
            )
        measure = measure_for(f"{where}.measure", table.get("measure", name))
        statistic = _statistic(f"{where}.statistic", table.get("statistic", "mean"), references)
        if ("max" in table) == ("min" in table):
            raise ValueError(f"{where}: give exactly one of max or min")
        key = "max" if "max" in table else "min"
        bound = table[key]
        if (
            isinstance(bound, bool)
            or not isinstance(bound, (int, float))
            or not math.isfinite(bound)
        ):
            raise ValueError(f"{where}.{key}: must be a finite number (got {bound!r})")
        if not _left_out(where, measure, notes):
            constraints.append(Constraint(name, measure, statistic, float(bound), key == "max"))
    return tuple(constraints)


def _check_runs(spec: OptimizeSpec) -> None:
    """Resolve one run's full parameter set now, so that no run fails on a bad combination."""
    levers = {t: Schedule.constant(lever.low) for lever in spec.levers for t in lever.targets}
    try:
        resolve(preset_overrides(spec.preset) | spec.fixed | levers)
    except ValueError as error:
        raise ValueError(f"fixed: {error}") from None
