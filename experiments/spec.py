"""Sweep specifications: what to vary, how often to run it, and the seed of every run.

A spec (TOML or a dict) is validated in full before any run starts: unknown sections or
keys, unknown parameters, out-of-range values and unknown outputs are refused with one
line naming the field. Run seeds come from the master seed by ``SeedSequence.spawn``, in
run-id order, so they never depend on which engine runs them or when runs finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from isk_defection.model import parameters as registry
from isk_defection.model.parameters import PARAMETERS, Parameter, resolve
from isk_defection.model.policy import Schedule
from isk_defection.model.presets import preset as preset_overrides
from isk_defection.model.reporters import columns

SECTIONS: dict[str, set[str]] = {
    "sweep": {"name", "preset", "steps", "replicates", "seed", "record_every", "outputs"},
    "fixed": set(),  # any parameter
    "grid": set(),  # any parameter
    "sample": {"method", "n", "ranges"},
}
SAMPLERS = ("lhs", "sobol")
# Sizes beyond these are refused up front: planning alone would take minutes and the
# manifest (one record per run) hundreds of megabytes, long before any run finished.
MAX_POINTS = 100_000
MAX_RUNS = 1_000_000
MAX_STEPS = 100_000


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

    def with_points(self, points: list[dict[str, Any]]) -> SweepSpec:
        """The same sweep over an explicit design (used by the sensitivity analysis)."""
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
    for section, keys in raw.items():
        if section not in SECTIONS:
            raise ValueError(f"spec: unknown section [{section}] (allowed: {', '.join(SECTIONS)})")
        if not isinstance(keys, dict):
            raise ValueError(f"spec: [{section}] must be a table of keys")
        unknown = set(keys) - SECTIONS[section] if SECTIONS[section] else set()
        if unknown:
            allowed = ", ".join(sorted(SECTIONS[section]))
            raise ValueError(
                f"spec: unknown key {section}.{sorted(unknown)[0]} (allowed: {allowed})"
            )
    sweep, sample = raw.get("sweep", {}), raw.get("sample", {})
    spec = SweepSpec(
        name=_name(sweep.get("name", "sweep")),
        preset=_preset(sweep.get("preset", "baseline")),
        steps=_count("sweep.steps", sweep.get("steps", 100), minimum=0, maximum=MAX_STEPS),
        replicates=_count(
            "sweep.replicates", sweep.get("replicates", 1), minimum=1, maximum=MAX_RUNS
        ),
        seed=_count("sweep.seed", sweep.get("seed", 0), minimum=0, maximum=2**63 - 1),
        record_every=_count(
            "sweep.record_every", sweep.get("record_every", 1), minimum=1, maximum=MAX_STEPS
        ),
        outputs=_outputs(sweep.get("outputs")),
        fixed=_parameters("fixed", raw.get("fixed", {})),
        grid=_grid(raw.get("grid", {})),
        method=_method(sample),
        n=_count("sample.n", sample.get("n", 0), minimum=0, maximum=MAX_POINTS),
        ranges=_ranges(sample.get("ranges", {})),
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
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"spec: no such file {str(path)!r}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"spec: {path} is not valid TOML ({error})") from None


def _count(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValueError(
            f"{name}: must be an integer in [{minimum:,}, {maximum:,}] (got {_shown(value)})"
        )
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(value: Any) -> str:
    """A sweep's name: text that can label a progress bar and a folder listing."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValueError(f"sweep.name: must be non-empty text (got {_shown(value)})")
    return value


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


def _preset(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"sweep.preset: must be a preset name (got {_shown(name)})")
    try:
        preset_overrides(name)
    except ValueError as error:
        raise ValueError(f"sweep.{error}") from None
    return name


def _outputs(names: Any) -> tuple[str, ...]:
    allowed = columns()
    if names is None:
        return tuple(allowed)
    if not isinstance(names, list) or not names:
        raise ValueError("sweep.outputs: must be a non-empty list of model columns")
    for name in names:
        if not isinstance(name, str) or name not in allowed:
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
        if not isinstance(levels, list) or not levels:
            raise ValueError(f"grid.{name}: must be a non-empty list of values")
        if len(levels) > MAX_POINTS:
            raise ValueError(f"grid.{name}: at most {MAX_POINTS:,} values")
        grid[name] = [_parameters("grid", {name: v})[name] for v in levels]
    return grid


def _method(sample: dict[str, Any]) -> str | None:
    method = sample.get("method")
    if method is not None and (not isinstance(method, str) or method not in SAMPLERS):
        raise ValueError(f"sample.method: must be one of {', '.join(SAMPLERS)} (got {method!r})")
    return method


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
