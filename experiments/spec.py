"""Spec files, one schema for all: sweeps and optimisations.

Sweeps are read by ``defection sweep`` and ``sensitivity``, optimisations by ``optimize``.

A spec (TOML or a dict) is validated in full before any run starts. Its tables, keys,
types and bounds are declared once, as pydantic models (``SweepFile``, ``OptimizeFile``);
what depends on the model (parameter names and ranges, presets, columns, levers) is
checked against the model's registry. Either way a problem is one line naming the field
as typed (``grid.womens_rights: ...``, ``algorithm.population: ...``) and what is allowed.
Run seeds come from the master seed by ``SeedSequence.spawn``, in run-id order, so they
never depend on which engine runs them or when runs finish.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy.stats import qmc

from isk_defection.experiments.policy_search.measures import Measure, measure_for
from isk_defection.model import parameters as registry
from isk_defection.model.parameters import PARAMETERS, Parameter, resolve
from isk_defection.model.policy import LEVERS, Schedule
from isk_defection.model.presets import preset as preset_overrides
from isk_defection.model.reporters import columns

# Sizes beyond these are refused up front: planning alone would take minutes and the
# manifest (one record per run) hundreds of megabytes, long before any run finished.
MAX_POINTS = 100_000
MAX_RUNS = 1_000_000
MAX_STEPS = 100_000


# ---- the schema: every spec file's tables, keys, types and bounds (pydantic) ---------
MAX_SEED = 2**63 - 1
MAX_POPULATION = 10_000  # an optimisation's candidates per generation
MAX_GENERATIONS = 10_000
MAX_DRAWS = 100_000  # posterior draws per candidate or in the stress test
MAX_SEEDS = 1_000  # seeds per draw


class _Table(BaseModel):
    """A TOML table: no unknown keys, no silent conversions, finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _count(low: int, high: int, text: str | None = None) -> Any:
    return Field(ge=low, le=high, description=text)


class SweepTable(_Table):
    """``[sweep]``: what every run of a sweep shares."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")] = "sweep"
    preset: str = "baseline"
    steps: Annotated[int, _count(0, MAX_STEPS)] = 100
    replicates: Annotated[int, _count(1, MAX_RUNS)] = 1
    seed: Annotated[int, _count(0, MAX_SEED)] = 0
    record_every: Annotated[int, _count(1, MAX_STEPS)] = 1
    outputs: Annotated[
        list[str] | None, Field(min_length=1, description="a non-empty list of model columns")
    ] = None


class SampleTable(_Table):
    """``[sample]``: a Latin-hypercube or Sobol' sample over ``[sample.ranges]``."""

    method: Literal["lhs", "sobol"] | None = None
    n: Annotated[int, _count(0, MAX_POINTS)] = 0
    ranges: dict[str, Any] = {}


Levels = Annotated[
    list[Any], Field(min_length=1, max_length=MAX_POINTS, description="a non-empty list of values")
]


class SweepFile(_Table):
    """A sweep spec file (``defection sweep``, ``defection sensitivity``)."""

    sweep: SweepTable = SweepTable()
    fixed: dict[str, Any] = {}
    grid: dict[str, Levels] = {}
    sample: SampleTable = SampleTable()


Name = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
               description="letters, digits, - _ .")
]  # fmt: skip
Names = Annotated[list[str], Field(description="a list of names")]


class OptimizeTable(_Table):
    """``[optimize]``: the search space and the runs' length."""

    name: Name = "optimize"
    preset: str = "baseline"
    steps: Annotated[int, _count(1, MAX_STEPS)] = 208
    seed: Annotated[int, _count(0, MAX_SEED)] = 0
    periods: Annotated[int, _count(1, MAX_STEPS)] = 4
    period_weeks: Annotated[int, _count(1, MAX_STEPS)] = 26
    resolution: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05
    levers: Annotated[Names | None, Field(min_length=1)] = None
    references: Names = ["baseline", "inclusive"]
    moderation_level: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class RobustnessTable(_Table):
    """``[robustness]`` and ``[stress]``: posterior draws x seeds per candidate."""

    draws: Annotated[int, _count(1, MAX_DRAWS)] = 8
    seeds: Annotated[int, _count(1, MAX_SEEDS)] = 2


class StressTable(RobustnessTable):
    """``[stress]``: fresh draws and seeds for the out-of-sample test, and its target."""

    draws: Annotated[int, _count(1, MAX_DRAWS)] = 100
    seeds: Annotated[int, _count(1, MAX_SEEDS)] = 1
    target_shift: Annotated[float, Field(gt=0.0, le=10.0)] = 0.10


Timing = Literal["at_once", "ramped", "late"]
TIMINGS: tuple[str, ...] = get_args(Timing)
Dose = Annotated[float, Field(ge=0.0, le=1.0)]


class ModerationTable(_Table):
    """``[moderation]``: the structured moderating paths seeded into generation 1."""

    levels: Annotated[
        list[Annotated[float, Field(gt=0.0, le=1.0)]] | None,
        Field(min_length=1, max_length=20, description="a list of 1-20 levels in (0, 1]"),
    ] = None
    timings: Annotated[
        list[Timing] | None,
        Field(min_length=1, max_length=3, description=f"a list of {', '.join(TIMINGS)}"),
    ] = None
    late_periods: Annotated[int | None, _count(1, MAX_STEPS)] = None
    seed: bool = True
    stress_paths: Annotated[int, _count(0, 1_000)] = 4


class DoseResponseTable(_Table):
    """``[dose_response]``: each lever alone at each dose, the rest at the actual policy."""

    levers: Annotated[list[str] | None, Field(description="a list of model levers")] = None
    doses: Annotated[
        list[Dose] | None,
        Field(min_length=1, max_length=101, description="a list of 1-101 doses in [0, 1]"),
    ] = None


class SensitivityTable(_Table):
    """``[sensitivity]``: the answer under other levels of one constraint (same archive)."""

    constraint: str | None = None
    levels: Annotated[
        list[float] | None,
        Field(min_length=1, max_length=20, description="a list of 1-20 finite numbers"),
    ] = None


class AlgorithmTable(_Table):
    """``[algorithm]``: NSGA-II/III and its budget."""

    name: Literal["auto", "nsga2", "nsga3"] = "auto"
    population: Annotated[int, _count(4, MAX_POPULATION)] = 40
    generations: Annotated[int, _count(1, MAX_GENERATIONS)] = 25
    pareto_max: Annotated[int | None, _count(1, MAX_POINTS)] = None
    seed_population: bool = True


Statistic = Literal["mean", "p90", "regret"]


class ObjectiveTable(_Table):
    """``[objectives.NAME]``: a measure, its direction and its robustness statistic."""

    measure: str | None = None
    sense: Literal["min", "max"] | None = None
    statistic: Statistic = "p90"
    label: str | None = None


class ConstraintTable(_Table):
    """``[constraints.NAME]``: a bound (max or min) on a robust statistic of a measure."""

    measure: str | None = None
    statistic: Statistic = "mean"
    max: float | None = None
    min: float | None = None
    max_vs_reference: float | None = None  # paired: the policy minus the actual policy
    min_vs_reference: float | None = None


class _OptimizeTables(_Table):
    optimize: OptimizeTable = OptimizeTable()
    fixed: dict[str, Any] = {}
    bounds: dict[str, Any] = {}
    robustness: RobustnessTable = RobustnessTable()
    algorithm: AlgorithmTable = AlgorithmTable()
    objectives: dict[str, ObjectiveTable] = {}
    constraints: dict[str, ConstraintTable] = {}
    stress: StressTable = StressTable()
    moderation: ModerationTable = ModerationTable()
    dose_response: DoseResponseTable = DoseResponseTable()
    sensitivity: SensitivityTable = SensitivityTable()


class OptimizeFile(_OptimizeTables):
    """An optimisation spec file (``defection optimize``); ``[quick]`` holds the same tables."""

    quick: _OptimizeTables = _OptimizeTables()


def validated[T: BaseModel](model: type[T], raw: dict[str, Any]) -> T:
    """``raw`` checked against ``model``; the first problem as one line naming the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ValueError(_one_line(model, error.errors()[0])) from None


def _one_line(model: type[BaseModel], problem: Any) -> str:
    loc = [str(part) for part in problem["loc"] if not isinstance(part, int)]
    where, kind, given = ".".join(loc), problem["type"], problem.get("input")
    if kind == "extra_forbidden":
        parent = _annotation_at(model, loc[:-1])[0]
        keys = ", ".join(sorted(getattr(parent, "model_fields", {})))
        if len(loc) == 1 or loc[:-1] == ["quick"]:
            return f"spec: unknown section [{where}] (allowed: {keys})"
        return f"spec: unknown key {where} (allowed: {keys})"
    annotation, rules = _annotation_at(model, loc)
    if (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        or (get_origin(annotation) is dict and kind == "dict_type")
    ):
        return f"spec: [{where}] must be a table of keys (got {_shown(given)})"
    return f"{where}: must be {_allowed(annotation, rules)} (got {_shown(given)})"


def _annotation_at(model: type[BaseModel], loc: list[str]) -> tuple[Any, list[Any]]:
    """The type and constraints of the field at ``loc`` (a key of a dict takes its values')."""
    annotation: Any = model
    rules: list[Any] = []
    for part in loc:
        annotation = _optional(annotation)
        fields = getattr(annotation, "model_fields", None)
        if fields is not None and part in fields:
            field = fields[part]
            annotation, rules = field.annotation, [*field.metadata, field]
        elif get_origin(annotation) is dict:
            annotation, rules = _unwrap(get_args(annotation)[1])
        else:
            break
        annotation, more = _unwrap(annotation)
        rules += more
    return _optional(annotation), rules


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[X, ...]`` -> X and its constraints (FieldInfo and annotated-types)."""
    rules: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        for item in metadata:
            rules += [item, *getattr(item, "metadata", [])]
    return annotation, rules


def _optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _unwrap(args[0])[0]
    return annotation


def _allowed(annotation: Any, rules: list[Any]) -> str:
    """What a field allows, in words: from its description, else its type and bounds."""
    for rule in rules:
        if getattr(rule, "description", None):
            return rule.description
    low = next((r.ge for r in rules if getattr(r, "ge", None) is not None), None)
    high = next((r.le for r in rules if getattr(r, "le", None) is not None), None)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return f"an integer in [{low:,}, {high:,}]" if low is not None else "an integer"
    if annotation is float:
        return f"a finite number in [{low:g}, {high:g}]" if low is not None else "a finite number"
    if get_origin(annotation) is Literal:
        return f"one of {', '.join(map(str, get_args(annotation)))}"
    if annotation is str:
        return "text"
    return "a table" if get_origin(annotation) is dict else "a list"


# ---- sweeps ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One model run of a sweep: which point, which replicate, which seed."""

    run: int
    point: int
    replicate: int
    seed: int
    values: dict[str, Any]  # the varied parameters at this point


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: fixed parameters, the design points and how to run them."""

    name: str
    preset: str
    steps: int
    replicates: int
    seed: int
    record_every: int
    outputs: tuple[str, ...]
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    method: str | None
    n: int
    ranges: dict[str, tuple[float, float]]
    points: tuple[dict[str, Any], ...] = field(default=())
    source: dict[str, Any] = field(default_factory=dict)
    scheduled: frozenset[str] = frozenset()  # varied levers that take a non-constant schedule

    @property
    def varied(self) -> list[str]:
        """Names of the parameters that vary between points."""
        return [*self.grid, *self.ranges]

    @property
    def digest(self) -> str:
        """A hash of the spec and its design: two sweeps with equal hashes are the same."""
        text = json.dumps([self.source, _plain(self.points)], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def runs(self) -> Iterator[Run]:
        """Every run, point-major; run i's seed is the i-th child of the master seed.

        A generator: the i-th child of ``SeedSequence(seed).spawn(n)`` is
        ``SeedSequence(seed, spawn_key=(i,))``, so no run list is ever held in memory.
        """
        plan = itertools.product(enumerate(self.points), range(self.replicates))
        for i, ((point, values), replicate) in enumerate(plan):
            yield Run(i, point, replicate, run_seed(self.seed, i), values)

    def cell(self, name: str, value: Any) -> Any:
        """A varied value as a table cell: levers as numbers unless some point schedules them."""
        if isinstance(value, Schedule):
            return value.describe() if name in self.scheduled else value.values[0]
        return value

    def for_workers(self) -> SweepSpec:
        """What a run needs, without the design and source (kept small to send per run)."""
        return dataclasses.replace(self, points=(), source={}, grid={})

    def with_points(self, points: list[dict[str, Any]], field: str = "--draws") -> SweepSpec:
        """The same sweep over an explicit design (used by the sensitivity analysis)."""
        if len(points) > MAX_POINTS or len(points) * self.replicates > MAX_RUNS:
            raise ValueError(
                f"{field}: {len(points):,} design points x {self.replicates:,} replicates; at "
                f"most {MAX_POINTS:,} points and {MAX_RUNS:,} runs"
            )
        validated = tuple(_validate_point(self, p) for p in points)
        return dataclasses.replace(
            self, points=validated, source=self.source | {"design": "explicit"}
        )


def aliases() -> dict[str, tuple[str, ...]]:
    """Input names that set other parameters (model v2: moderation sets two levers)."""
    return dict(getattr(registry, "ALIASES", {}))


def renamed() -> dict[str, str]:
    """Parameter names of earlier model versions and their new names."""
    return dict(getattr(registry, "RENAMED", {}))


def parameter(name: str, field_name: str) -> Parameter:
    """The registry entry for ``name`` (an alias takes its first target's rules)."""
    if name in PARAMETERS:
        return PARAMETERS[name]
    if name in aliases():
        return PARAMETERS[aliases()[name][0]]
    if name in renamed():
        raise ValueError(f"{field_name}: renamed to {renamed()[name]} (see defection params)")
    import difflib

    close = difflib.get_close_matches(name, [*PARAMETERS, *aliases()], n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ValueError(
        f"{field_name}: unknown parameter; must be one that `defection params` lists{hint}"
    )


def expand(values: dict[str, Any]) -> dict[str, Any]:
    """Aliases replaced by the parameters they set, so that they override a preset's values.

    The model resolves ``preset | overrides`` and refuses an alias given together with one
    of its targets; a preset sets the targets (the levers), so a user's alias is expanded
    here, after the preset, where it simply wins.
    """
    table = aliases()
    for alias, targets in table.items():
        given = [t for t in targets if t in values]
        if alias in values and given:
            raise ValueError(
                f"{alias}: sets {' and '.join(targets)}; give either {alias} or {given[0]}, "
                "not both"
            )
    expanded: dict[str, Any] = {}
    for name, value in values.items():
        for target in table.get(name, (name,)):
            expanded[target] = value
    return expanded


def run_seed(master: int, i: int) -> int:
    """Run ``i``'s seed: the i-th child of the master seed, as a 32-bit integer."""
    child = np.random.SeedSequence(master, spawn_key=(i,))
    return int(child.generate_state(1, np.uint32)[0])


def _plain(points: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [
        {k: v.describe() if isinstance(v, Schedule) else v for k, v in p.items()} for p in points
    ]


def load_spec(source: str | Path | dict[str, Any]) -> SweepSpec:
    """Read and validate a spec from a TOML file or a dict; ValueError names the field."""
    raw = _read(source)
    tables = validated(SweepFile, raw)
    sweep, sample = tables.sweep, tables.sample
    spec = SweepSpec(
        name=sweep.name,
        preset=_preset(sweep.preset),
        steps=sweep.steps,
        replicates=sweep.replicates,
        seed=sweep.seed,
        record_every=sweep.record_every,
        outputs=_outputs(sweep.outputs),
        fixed=_parameters("fixed", tables.fixed),
        grid=_grid(tables.grid),
        method=sample.method,
        n=sample.n,
        ranges=_ranges(sample.ranges),
        source=raw,
    )
    fixed, grid = set(expand(spec.fixed)), set(expand(dict.fromkeys(spec.grid)))
    ranges = set(expand(dict.fromkeys(spec.ranges)))
    overlap = fixed & (grid | ranges) or grid & ranges
    if overlap:
        raise ValueError(
            f"spec: parameter {sorted(overlap)[0]} is both fixed and varied; give it in one "
            "section only"
        )
    if spec.ranges and (spec.method is None or spec.n < 1):
        raise ValueError("sample: [sample.ranges] needs method = 'lhs' or 'sobol' and n >= 1")
    _check_size(spec)
    design = [g | s for g in _grid_points(spec.grid) for s in _sample_points(spec)]
    points = tuple(_validate_point(spec, p) for p in design)
    return dataclasses.replace(spec, points=points, scheduled=_scheduled(points))


def _scheduled(points: tuple[dict[str, Any], ...]) -> frozenset[str]:
    return frozenset(
        name
        for point in points
        for name, value in point.items()
        if isinstance(value, Schedule) and len(value.values) > 1
    )


def _read(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The tables of a TOML file, or a dict given in code (copied: never changed here)."""
    if isinstance(source, dict):
        return copy.deepcopy(source)
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"spec: no such file {str(path)!r}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"spec: {path} is not valid TOML ({error})") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_size(spec: SweepSpec) -> None:
    """Refuse designs too large to plan, before any point is generated."""
    points = math.prod(len(levels) for levels in spec.grid.values()) * max(
        spec.n if spec.ranges else 1, 1
    )
    if points > MAX_POINTS:
        raise ValueError(
            f"grid/sample: {points:,} design points; at most {MAX_POINTS:,} (split the sweep)"
        )
    if points * spec.replicates > MAX_RUNS:
        raise ValueError(
            f"sweep.replicates: {points:,} points x {spec.replicates:,} replicates = "
            f"{points * spec.replicates:,} runs; at most {MAX_RUNS:,} (split the sweep)"
        )


def _preset(name: str) -> str:
    try:
        preset_overrides(name)
    except ValueError as error:
        raise ValueError(f"sweep.{error}") from None
    return name


def _outputs(names: list[str] | None) -> tuple[str, ...]:
    allowed = columns()
    if names is None:
        return tuple(allowed)
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"sweep.outputs: unknown column {name!r}; must be model columns "
                "(experiments.api.outcome_names() lists them)"
            )
    return tuple(names)


def _parameters(section: str, values: dict[str, Any]) -> dict[str, Any]:
    checked = {}
    for name, value in values.items():
        rules = parameter(name, f"{section}.{name}")
        try:
            checked[name] = rules.validate(value)
        except ValueError as error:
            raise ValueError(f"{section}.{name}: {str(error).partition(': ')[2]}") from None
    return checked


def _grid(values: dict[str, Any]) -> dict[str, list[Any]]:
    grid = {}
    for name, levels in values.items():
        grid[name] = [_parameters("grid", {name: v})[name] for v in levels]
    return grid


def _ranges(values: dict[str, Any]) -> dict[str, tuple[float, float]]:
    ranges = {}
    for name, bounds in values.items():
        rules = parameter(name, f"sample.ranges.{name}")
        if rules.kind in (bool, str):
            raise ValueError(
                f"sample.ranges.{name}: must be a numeric parameter (this one is "
                f"{rules.allowed()}); put it in [grid] instead"
            )
        numbers = isinstance(bounds, list) and len(bounds) == 2
        numbers = numbers and all(
            isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b)
            for b in bounds
        )
        if not numbers or not bounds[0] < bounds[1]:
            raise ValueError(
                f"sample.ranges.{name}: must be [low, high], two numbers with low < high "
                f"(got {_shown(bounds)})"
            )
        for bound in bounds:
            if not rules.low <= bound <= rules.high:
                raise ValueError(
                    f"sample.ranges.{name}: bounds must be within {rules.allowed()} "
                    f"(got {_shown(bounds)})"
                )
        ranges[name] = (float(bounds[0]), float(bounds[1]))
    return ranges


def _grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _sample_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Latin-hypercube or scrambled Sobol' points over the ranges, seeded by the master seed."""
    if not spec.ranges:
        return [{}]
    engine = qmc.LatinHypercube if spec.method == "lhs" else qmc.Sobol
    unit = engine(d=len(spec.ranges), seed=np.random.default_rng(spec.seed)).random(spec.n)
    lows, highs = zip(*spec.ranges.values(), strict=True)
    scaled = qmc.scale(unit, lows, highs)
    return [
        {name: _typed(name, x) for name, x in zip(spec.ranges, row, strict=True)} for row in scaled
    ]


def _typed(name: str, value: float) -> Any:
    return int(round(value)) if parameter(name, name).kind is int else float(value)


def _validate_point(spec: SweepSpec, point: dict[str, Any]) -> dict[str, Any]:
    """Resolve the point's full parameter set now, so that no run fails on a bad value."""
    resolve(preset_overrides(spec.preset) | expand(spec.fixed | point))
    return point


# ---- optimisations (defection optimize) ---------------------------------------------
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
    relative: bool = False  # on the paired difference from the actual policy (first reference)

    def text(self, bound: float | None = None) -> str:
        """The constraint in words (at ``bound`` instead of its own, if given)."""
        bound = self.bound if bound is None else bound
        sign = "<=" if self.upper else ">="
        if self.relative:
            return (
                f"{self.statistic} of ({self.measure.name} minus the actual policy's in the same "
                f"scenario) {sign} {bound:+g}"
            )
        return f"{self.statistic} of {self.measure.name} {sign} {bound:g}"

    def holds(self, value: np.ndarray, bound: float | None = None) -> np.ndarray:
        """Whether statistics ``value`` (natural units) meet the constraint (at ``bound``)."""
        bound = self.bound if bound is None else bound
        return np.asarray(value <= bound + 1e-12 if self.upper else value >= bound - 1e-12)


@dataclass(frozen=True)
class ModeratingPath:
    """A structured moderating path of generation 1: levers, level and timing.

    ``levers`` are searched levers (``womens_rights``, ``inclusion``, both, or the alias
    ``moderation``) held at ``level`` ``at_once`` (every period), ``ramped`` (from the
    actual policy's level in even steps to ``level`` in the last period) or ``late``
    (the actual policy's level, then ``level`` in the last ``late_periods`` periods);
    every other lever follows the actual policy (the first reference).
    """

    levers: tuple[str, ...]
    level: float
    timing: str

    def text(self) -> str:
        """``inclusion 0.5 ramped``."""
        return f"{' + '.join(self.levers)} {self.level:g} {self.timing.replace('_', ' ')}"


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
    # issue 21: moderation searched (seeded), analysed lever by lever, and its conditions
    moderation_paths: tuple[ModeratingPath, ...] = ()  # seeded into generation 1
    moderation_declared: int = 0  # how many the [moderation] table declares (before trimming)
    late_periods: int = 1
    moderation_stress_paths: int = 4  # per moderation lever, its best paths stress-tested
    dose_levers: tuple[str, ...] = ()  # model levers of the per-lever dose-response
    doses: tuple[float, ...] = ()
    sensitivity_constraint: str | None = None
    sensitivity_levels: tuple[float, ...] = ()  # besides none, loose to tight
    target_shift: float = 0.10  # the stress test's target: median shift at most this

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
        items: tuple[Objective | Constraint, ...] = (*self.objectives, *self.constraints)
        for item in items:
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

    @property
    def moderation_targets(self) -> list[str]:
        """The model's moderation levers the search sets (each asked about separately)."""
        targets = {t for lever in self.levers if lever.name in MODERATION for t in lever.targets}
        return [t for t in MODERATION if t in targets]

    @property
    def stress_size(self) -> int:
        """At most this many policies in the stress test: Pareto, moderating, references."""
        moderating = self.moderation_stress_paths * len(self.moderation_targets)
        return self.pareto_max + moderating + len(self.references)

    @property
    def dose_runs(self) -> int:
        """Model runs of the per-lever dose-response (every lever, dose and scenario)."""
        return len(self.dose_levers) * len(self.doses) * self.scenarios


def load_optimize_spec(source: str | Path | dict[str, Any], quick: bool = False) -> OptimizeSpec:
    """Read and validate a spec; with ``quick``, the ``[quick]`` tables override the rest."""
    raw = _read(source)
    validated(OptimizeFile, raw)  # the [quick] tables too, named quick.TABLE.KEY
    effective = {k: v for k, v in raw.items() if k != "quick"}
    if quick:
        effective = _merge(effective, raw.get("quick", {}))
    return _build(effective, quick)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(raw: dict[str, Any], quick: bool) -> OptimizeSpec:
    tables = validated(OptimizeFile, raw)
    opt, algo = tables.optimize, tables.algorithm
    try:
        preset_overrides(opt.preset)
    except ValueError as error:
        raise ValueError(f"optimize.{error}") from None
    if opt.periods * opt.period_weeks > opt.steps:
        raise ValueError(
            f"optimize.periods: {opt.periods} periods of {opt.period_weeks} weeks exceed "
            f"optimize.steps ({opt.steps}); must be at most {opt.steps // opt.period_weeks}"
        )
    # an optimisation runs at the study resolution unless the spec says otherwise
    fixed = {"population": registry.STUDY_POPULATION} | _fixed(tables.fixed)
    references = tuple(_references(opt.references))
    notes: list[str] = []
    objectives = _objectives(tables.objectives, references, notes)
    name = algo.name
    if name == "auto":
        name = "nsga3" if len(objectives) >= 4 else "nsga2"
    spec = OptimizeSpec(
        name=opt.name,
        preset=opt.preset,
        steps=opt.steps,
        seed=opt.seed,
        periods=opt.periods,
        period_weeks=opt.period_weeks,
        resolution=opt.resolution,
        levers=_levers(opt.levers, tables.bounds, fixed),
        references=references,
        moderation_level=opt.moderation_level,
        fixed=fixed,
        draws=tables.robustness.draws,
        seeds=tables.robustness.seeds,
        algorithm=name,
        population=algo.population,
        generations=algo.generations,
        pareto_max=algo.pareto_max or 2 * algo.population,
        seed_population=algo.seed_population,
        objectives=objectives,
        constraints=_constraints(tables.constraints, references, notes),
        stress_draws=tables.stress.draws,
        stress_seeds=tables.stress.seeds,
        quick=quick,
        source=raw,
        notes=tuple(notes),
        target_shift=tables.stress.target_shift,
    )
    spec = dataclasses.replace(
        spec,
        **_moderation(spec, tables.moderation, raw.get("moderation", {}), notes),
        **_dose_response(spec, tables.dose_response),
        **_sensitivity(spec, tables.sensitivity),
    )
    spec = dataclasses.replace(spec, notes=tuple(notes))
    _check_size_of_search(spec)
    _check_runs(spec)
    return spec


def _check_size_of_search(spec: OptimizeSpec) -> None:
    """Refuse a search whose model runs (search and stress test) exceed ``MAX_RUNS``."""
    search = spec.scenarios * (len(spec.references) + spec.population * spec.generations)
    search += spec.dose_runs
    stress = spec.stress_draws * spec.stress_seeds * spec.stress_size
    if search + stress > MAX_RUNS:
        raise ValueError(
            f"algorithm.generations: the search and stress test need {search + stress:,} model "
            f"runs; at most {MAX_RUNS:,} (fewer generations, population, draws or seeds)"
        )


def _fixed(values: dict[str, Any]) -> dict[str, Any]:
    """Parameters held in every run; an alias is refused (a lever it sets may be searched)."""
    for name in values:
        if name not in PARAMETERS and name in aliases():
            targets = " and ".join(aliases()[name])
            raise ValueError(f"fixed.{name}: sets {targets}; give those instead")
    return _parameters("fixed", values)


def lever_targets(name: str) -> tuple[str, ...]:
    """The model levers a searched lever sets.

    Itself, or for the alias ``moderation`` once the model has split it, both women's
    rights and inclusion, held equal.
    """
    if name in LEVERS:
        return (name,)
    if name == "moderation" and {"womens_rights", "inclusion"} <= set(LEVERS):
        return ("womens_rights", "inclusion")
    raise ValueError(f"optimize.levers: unknown lever {name!r}; must be one of {', '.join(LEVERS)}")


def _levers(
    names: list[str] | None, bounds: dict[str, Any], fixed: dict[str, Any]
) -> tuple[SearchLever, ...]:
    names = list(LEVERS) if names is None else names
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"optimize.levers: must be distinct levers ({twice} is listed twice)")
    levers, covered = [], set[str]()
    for name in names:
        targets = lever_targets(name)
        if covered & set(targets):
            raise ValueError(f"optimize.levers: {name} overlaps another searched lever")
        covered |= set(targets)
        held = set(targets) & set(fixed)
        if held:
            raise ValueError(
                f"fixed.{sorted(held)[0]}: is searched (optimize.levers); give it in one place"
            )
        low, high = _bounds(name, bounds.get(name, [0.0, 1.0]))
        levers.append(SearchLever(name, targets, low, high))
    extra = sorted(set(bounds) - set(names))
    if extra:
        raise ValueError(
            f"bounds.{extra[0]}: must be a searched lever (optimize.levers: {', '.join(names)})"
        )
    return tuple(levers)


def _bounds(name: str, value: Any) -> tuple[float, float]:
    """A searched lever's ``[low, high]``: two numbers with 0 <= low < high <= 1."""
    numbers = isinstance(value, list) and len(value) == 2
    numbers = numbers and all(
        isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in value
    )
    if not numbers or not 0.0 <= value[0] < value[1] <= 1.0:
        raise ValueError(
            f"bounds.{name}: must be [low, high] with 0 <= low < high <= 1 (got {_shown(value)})"
        )
    return float(value[0]), float(value[1])


def _references(names: list[str]) -> list[str]:
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
    tables: dict[str, ObjectiveTable], references: tuple[str, ...], notes: list[str]
) -> tuple[Objective, ...]:
    if not tables:
        raise ValueError("objectives: the spec needs at least one [objectives.NAME] table")
    objectives = []
    for name, table in tables.items():
        where = f"objectives.{name}"
        measure = measure_for(f"{where}.measure", table.measure or name)
        statistic = _statistic(f"{where}.statistic", table.statistic, references)
        label = table.label if table.label is not None else measure.label
        if not _left_out(where, measure, notes):
            sense = table.sense or measure.sense
            objectives.append(Objective(name, measure, sense, statistic, label))
    if not objectives:
        raise ValueError("objectives: none of them can be measured by this model version")
    return tuple(objectives)


def _statistic(where: str, value: str, references: tuple[str, ...]) -> str:
    if value == "regret" and not references:
        raise ValueError(f"{where}: regret needs a reference policy (optimize.references)")
    return value


def _constraints(
    tables: dict[str, ConstraintTable], references: tuple[str, ...], notes: list[str]
) -> tuple[Constraint, ...]:
    constraints = []
    for name, table in tables.items():
        where = f"constraints.{name}"
        measure = measure_for(f"{where}.measure", table.measure or name)
        statistic = _statistic(f"{where}.statistic", table.statistic, references)
        given = {
            key: value
            for key in ("max", "min", "max_vs_reference", "min_vs_reference")
            if (value := getattr(table, key)) is not None
        }
        if len(given) != 1:
            raise ValueError(
                f"{where}: give exactly one of max, min, max_vs_reference or min_vs_reference"
            )
        (key, bound), *_ = given.items()
        relative = key.endswith("_vs_reference")
        if relative and not references:
            raise ValueError(f"{where}.{key}: needs a reference policy (optimize.references)")
        upper = key.startswith("max")
        if not _left_out(where, measure, notes):
            constraints.append(
                Constraint(name, measure, statistic, float(bound), upper, relative=relative)
            )
    return tuple(constraints)


def _moderation(
    spec: OptimizeSpec, table: ModerationTable, raw: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """The structured moderating paths of generation 1, checked against the search space.

    Declared levels and timings that do not fit in the population are refused; the
    defaults (levels 0.3, 0.5, 0.8; every timing) are trimmed to fit, with a note.
    """
    late = table.late_periods if table.late_periods is not None else max(1, spec.periods // 2)
    if table.late_periods is not None and late >= spec.periods:
        raise ValueError(
            f"moderation.late_periods: must be fewer than optimize.periods ({spec.periods}) "
            f"(got {late})"
        )
    out: dict[str, Any] = {"late_periods": late, "moderation_stress_paths": table.stress_paths}
    searched = spec.moderation_levers
    if not table.seed or not searched:
        return out
    levels = tuple(table.levels or (0.3, 0.5, 0.8))
    timings = tuple(dict.fromkeys(table.timings or TIMINGS))
    bounds = {lever.name: (lever.low, lever.high) for lever in spec.levers}
    for level in levels:
        for name in searched:
            low, high = bounds[name]
            if not low - 1e-12 <= level <= high + 1e-12:
                raise ValueError(
                    f"moderation.levels: must be within bounds.{name} [{low:g}, {high:g}] "
                    f"(got {level:g})"
                )
    combos = [(name,) for name in searched] + ([tuple(searched)] if len(searched) > 1 else [])
    paths = tuple(
        ModeratingPath(levers, float(level), timing)
        for level in dict.fromkeys(levels)
        for timing in timings
        for levers in combos
    )
    room = spec.population - (len(spec.references) if spec.seed_population else 0)
    if len(paths) > room:
        if "levels" in raw or "timings" in raw:
            raise ValueError(
                f"moderation.levels: {len(paths)} moderating paths ({len(combos)} lever "
                f"combination{'s' * (len(combos) != 1)} x {len(levels)} levels x "
                f"{len(timings)} timings) do not fit: at most {max(room, 0)} fit in "
                f"algorithm.population ({spec.population}, {spec.population - room} taken by "
                "the references); declare fewer levels or timings"
            )
        notes.append(
            f"generation 1 seeds {max(room, 0)} of the {len(paths)} default moderating paths "
            f"(algorithm.population {spec.population}); declare [moderation] levels and "
            "timings to choose them"
        )
    out |= {"moderation_paths": paths[: max(room, 0)], "moderation_declared": len(paths)}
    return out


def _dose_response(spec: OptimizeSpec, table: DoseResponseTable) -> dict[str, Any]:
    """The per-lever analysis: model levers (default women's rights and inclusion), doses."""
    levers: tuple[str, ...]
    if table.levers is None:
        levers = tuple(name for name in ("inclusion", "womens_rights") if name in LEVERS)
        levers = levers if spec.references else ()
    else:
        if table.levers and not spec.references:
            raise ValueError("dose_response.levers: needs a reference policy (optimize.references)")
        for name in table.levers:
            if name not in LEVERS:
                raise ValueError(
                    f"dose_response.levers: unknown lever {name!r}; must be one of "
                    f"{', '.join(LEVERS)}"
                )
        levers = tuple(dict.fromkeys(table.levers))
    doses = table.doses if table.doses is not None else [k / 10 for k in range(11)]
    return {"dose_levers": levers, "doses": tuple(sorted({float(d) for d in doses}))}


def _sensitivity(spec: OptimizeSpec, table: SensitivityTable) -> dict[str, Any]:
    """Which constraint the sensitivity table varies, and its levels from loose to tight."""
    names = [c.name for c in spec.constraints]
    if table.constraint is not None and table.constraint not in names:
        allowed = ", ".join(names) or "none declared"
        raise ValueError(
            f"sensitivity.constraint: must be a declared constraint ({allowed}) "
            f"(got {table.constraint!r})"
        )
    if not spec.constraints:
        if table.levels is not None:
            raise ValueError("sensitivity.levels: needs a constraint ([constraints.NAME])")
        return {}
    constraint = spec.constraints[names.index(table.constraint or names[0])]
    bound = constraint.bound
    levels = table.levels if table.levels is not None else [2 * bound, bound, bound / 2]
    loose_first = sorted({float(v) for v in levels}, reverse=constraint.upper)
    return {"sensitivity_constraint": constraint.name, "sensitivity_levels": tuple(loose_first)}


def _check_runs(spec: OptimizeSpec) -> None:
    """Resolve one run's full parameter set now, so that no run fails on a bad combination."""
    levers = {t: Schedule.constant(lever.low) for lever in spec.levers for t in lever.targets}
    try:
        resolve(preset_overrides(spec.preset) | spec.fixed | levers)
    except ValueError as error:
        raise ValueError(f"fixed: {error}") from None
