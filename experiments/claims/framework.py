"""What every reproduction experiment is made of: a claim, runs, outcomes, checks, a verdict.

An experiment is declared as data: the claim in one sentence, its source, the design
(arms, each one sweep-engine spec: a scripted policy against a control, a sweep over
levers, an ablation), replicates, the outcomes measured on each run and the checks
that decide. Runs go through the sweep engine (``experiments.sweep``) so that they use
every core, resume and run on Dask. The submodel validations (G1-G3) instead run the
model's own rules in isolation and supply their own ``compute``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from isk_defection.experiments.calibration.outcome import Outcome
from isk_defection.experiments.claims.paths import PathPart, Response, dose_path, samples
from isk_defection.experiments.spec import SweepSpec
from isk_defection.experiments.stats import Estimate, bootstrap_difference, spearman
from isk_defection.model.parameters import STUDY_POPULATION

# Agents per run: the study resolution (ODD §7.15) in full runs, the model's default
# (2,000) in --quick runs (CI), unless an arm fixes its own. Below ~1,000 agents an agent
# stands for more people than IS-K absorbs in a week, so quick runs stay at 2,000.
QUICK_POPULATION = 2_000


def population_for(quick: bool) -> int:
    """Agents per run in this mode."""
    return QUICK_POPULATION if quick else STUDY_POPULATION


class Verdict(StrEnum):
    """The outcome of an experiment."""

    REPRODUCED = "REPRODUCED"
    PARTIAL = "PARTIAL"
    NOT_REPRODUCED = "NOT REPRODUCED"


@dataclass(frozen=True)
class CheckResult:
    """One decided check: what was expected, what was measured, and whether it held."""

    label: str
    expected: str
    measured: Estimate | None
    passed: bool
    rule: str
    primary: bool = True
    text: str = ""  # measured value in words, when an Estimate does not say it
    path: PathReading | None = None  # a dose-path check's reading of the path

    def measured_text(self) -> str:
        """The measured value with its interval, for tables."""
        return self.text or (self.measured.text() if self.measured else "n/a")

    def explain(self) -> str:
        """The check's outcome in one clause, naming what it tests (for the verdict line)."""
        if self.path is None:
            return f"{self.label}: {'held' if self.passed else 'not held'}"
        tests = self.path.tests.short(self.path.direction)
        return f"{self.label} (tests {tests}): {self.path.word()}"


@dataclass
class Finding:
    """What an experiment found: decided checks, tidy data, and notes for its report."""

    checks: list[CheckResult]
    data: pd.DataFrame
    runs: pd.DataFrame | None = None  # one row per run with its outcomes, if any
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # what the figure needs besides data

    @property
    def verdict(self) -> Verdict:
        """REPRODUCED if every primary check holds, NOT REPRODUCED if none, else PARTIAL."""
        passed = [c.passed for c in self.checks if c.primary]
        if all(passed):
            return Verdict.REPRODUCED
        return Verdict.PARTIAL if any(passed) else Verdict.NOT_REPRODUCED

    @property
    def paths(self) -> list[PathReading]:
        """The dose-path readings of the checks, one per checked outcome (first check's)."""
        first: dict[str, PathReading] = {}
        for check in self.checks:
            if check.path is not None:
                first.setdefault(check.path.outcome, check.path)
        return list(first.values())

    def explanation(self) -> str:
        """What decided the verdict: each primary dose-path check, the part it tests, the shape."""
        return "; ".join(c.explain() for c in self.checks if c.primary and c.path is not None)


@dataclass(frozen=True)
class Context:
    """Where an experiment writes and how its sweeps run."""

    out: Path
    quick: bool = False
    workers: int | None = None
    scheduler: str | None = None
    local_cluster: bool = False
    resume: bool = False
    progress: bool | None = True

    def sweep(self, name: str, spec: dict[str, Any] | SweepSpec) -> pd.DataFrame:
        """Run one spec through the sweep engine into ``out/sweeps/name``; all runs must succeed.

        Without ``resume``, or when the folder holds another spec (say a quick run), the
        folder is cleared first: the engine refuses to mix sweeps.
        """
        from isk_defection.experiments.sweep import load_spec, run_sweep

        loaded = spec if isinstance(spec, SweepSpec) else load_spec(spec)
        folder = self.out / "sweeps" / name
        manifest = folder / "manifest.json"
        same = manifest.exists() and json.loads(manifest.read_text()).get("hash") == loaded.digest
        if folder.exists() and not (self.resume and same):
            shutil.rmtree(folder)
        frame = run_sweep(
            loaded,
            folder,
            workers=self.workers,
            scheduler=self.scheduler,
            local_cluster=self.local_cluster,
            resume=self.resume and same,
            progress=self.progress,
        )
        expected = len(loaded.points) * loaded.replicates
        if frame.empty or frame["run"].nunique() < expected:
            missing = expected - (0 if frame.empty else frame["run"].nunique())
            raise RuntimeError(f"{name}: {missing} of {expected} runs failed; see {manifest}")
        return frame


@dataclass(frozen=True)
class Arm:
    """One sweep-engine spec: a preset, fixed overrides, a grid, optionally a sample.

    ``sample`` gives Latin-hypercube ranges and ``samples`` their number (full, quick);
    ``replicates`` (full, quick) and ``seed`` override the experiment's for this arm;
    ``quick_grid`` replaces grid levels in --quick mode (a coarser design for CI).
    """

    name: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    preset: str = "baseline"
    sample: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    samples: tuple[int, int] = (0, 0)
    replicates: tuple[int, int] | None = None
    seed: int | None = None
    quick_grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def grid_for(self, quick: bool) -> dict[str, list[Any]]:
        """The grid in this mode."""
        grid = dict(self.grid) | (dict(self.quick_grid) if quick else {})
        return {name: list(values) for name, values in grid.items()}


class Check(Protocol):
    """A statistical check on the table of runs (one row per run, outcomes as columns)."""

    def evaluate(self, runs: pd.DataFrame) -> CheckResult:
        """Decide the check."""
        ...


def align(
    treatment: pd.DataFrame, control: pd.DataFrame, outcome: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Outcome values of two sets of runs, aligned by seed when both used the same seeds.

    Arms of one experiment run the same design under the same master seed, so the
    engine gives them the same seeds: common random numbers, compared pairwise.
    """
    t = treatment.set_index("seed")[outcome]
    c = control.set_index("seed")[outcome]
    if len(t) == 0 or len(c) == 0:
        raise ValueError(f"{outcome}: a compared condition has no runs")
    paired = t.index.is_unique and c.index.is_unique and set(t.index) == set(c.index)
    if paired:
        c = c.loc[t.index]
    return t.to_numpy(), c.to_numpy(), paired


@dataclass(frozen=True)
class Difference:
    """Treatment arm minus control arm: the bootstrap 95% interval must exclude zero."""

    label: str
    outcome: str
    direction: int = +1
    control: str = "control"
    treatment: str = "treatment"
    primary: bool = True

    def evaluate(self, runs: pd.DataFrame) -> CheckResult:
        """Bootstrap the difference of means (paired by seed when possible)."""
        t, c, paired = align(
            runs[runs.arm == self.treatment], runs[runs.arm == self.control], self.outcome
        )
        effect = bootstrap_difference(t, c, paired)
        sign = "> 0" if self.direction > 0 else "< 0"
        return CheckResult(
            self.label,
            f"{self.treatment} - {self.control} {sign}",
            effect,
            effect.excludes_zero(self.direction),
            f"{'paired' if paired else 'unpaired'} bootstrap 95% interval of the difference "
            f"of means excludes 0 ({len(t)} vs {len(c)} runs)",
            self.primary,
        )


@dataclass(frozen=True)
class Trend:
    """Monotone response to a lever: Spearman rho with the expected sign and p < 0.05."""

    label: str
    outcome: str
    factor: str
    direction: int = +1
    primary: bool = True

    def evaluate(self, runs: pd.DataFrame) -> CheckResult:
        """Rank-correlate the outcome with the lever level over all runs."""
        rho, p = spearman(runs[self.factor].astype(float), runs[self.outcome])
        passed = bool(np.isfinite(rho) and np.sign(rho) == self.direction and p < 0.05)
        sign = "> 0" if self.direction > 0 else "< 0"
        return CheckResult(
            self.label,
            f"Spearman rho {sign}",
            None,
            passed,
            f"Spearman rank correlation over {len(runs)} runs, two-sided p < 0.05",
            self.primary,
            text=f"rho = {rho:.2f} (p = {p:.2g})",
        )


@dataclass(frozen=True)
class DoseResponse:
    """A lever's dose-response, 0 -> 1: the effect at the top dose, and where it appears.

    The check holds when the mean outcome at the highest dose differs from the mean at
    dose 0 in the expected direction, with the bootstrap 95% interval of the difference
    excluding 0 (with one run per dose, as in one posterior draw, the interval is the
    difference itself, so the sign decides). The onset dose is the lowest dose whose
    difference from dose 0 already excludes 0 in that direction: the dose where the
    effect appears, reported beside the verdict rather than one dose chosen past a cliff.
    """

    label: str
    outcome: str
    factor: str
    direction: int = +1
    primary: bool = True

    def evaluate(self, runs: pd.DataFrame) -> CheckResult:
        """Compare each dose with dose 0; decide on the highest dose."""
        doses = runs[self.factor].astype(float)
        levels = sorted(doses.unique())
        base = runs.loc[doses == levels[0], self.outcome].to_numpy(float)
        effects = {
            level: bootstrap_difference(runs.loc[doses == level, self.outcome], base)
            for level in levels[1:]
        }
        onset = next((lv for lv, e in effects.items() if e.excludes_zero(self.direction)), None)
        top = effects[levels[-1]]
        sign = "> 0" if self.direction > 0 else "< 0"
        where = f"appears at dose {onset:g}" if onset is not None else "does not appear"
        return CheckResult(
            self.label,
            f"outcome at {self.factor} = {levels[-1]:g} minus at {levels[0]:g} {sign}",
            top,
            top.excludes_zero(self.direction),
            f"bootstrap 95% interval of the difference of means, dose {levels[-1]:g} vs "
            f"{levels[0]:g}, excludes 0; the effect {where} (doses {', '.join(map(str, levels))})",
            self.primary,
        )


@dataclass(frozen=True)
class PathReading:
    """A dose path as one check read it: the whole path, and the part the check tests."""

    outcome: str
    subject: str
    direction: int
    tests: PathPart
    whole: Response
    part: Response
    passed: bool

    def word(self) -> str:
        """'YES: ... rises', 'PARTLY: ... rises to 0.5, then falls' or 'NO: ... is flat'."""
        half = "PARTLY" if self.part.partly(self.direction) else "NO"
        answer = "YES" if self.passed else half
        return f"{answer}: {self.subject} {self.part.shape()}"


@dataclass(frozen=True)
class DosePath:
    """A dose-response check along the whole dose path, deciding on a pre-declared part.

    ``tests`` says which part of the path decides and what it must show there (declared
    with the claim, before the runs); the whole path, its shape, the dose where the
    effect appears and the dose where it reverses are reported whatever the part. A move
    is a paired bootstrap 95% interval between two doses that excludes 0 and is at least
    ``negligible`` (the smallest change of interest, in the outcome's units); with one run
    per dose (one posterior draw) the interval is the difference itself. Runs carry their
    dose in the ``dose`` column and are paired across doses by ``key``.
    """

    label: str
    outcome: str
    direction: int = +1
    tests: PathPart = PathPart()
    negligible: float = 0.0
    subject: str = ""  # the outcome in words, for the shape sentence
    primary: bool = True

    def read(self, runs: pd.DataFrame, key: str = "seed") -> PathReading:
        """Read the whole path and the tested part."""
        by_dose = samples(runs, self.outcome, key=key)
        whole = dose_path(by_dose, self.negligible)
        inside = {d: v for d, v in by_dose.items() if self.tests.contains(d)}
        part = dose_path(inside, self.negligible)
        passed = part.passes(self.tests.expect, self.direction)
        subject = self.subject or self.outcome.replace("_", " ")
        return PathReading(self.outcome, subject, self.direction, self.tests, whole, part, passed)

    def evaluate(self, runs: pd.DataFrame) -> CheckResult:
        """Decide on the declared part; measure the part's net effect; describe the path."""
        reading = self.read(runs)
        part, whole = reading.part, reading.whole
        shown = whole.text(reading.subject)
        if part.doses != whole.doses:
            shown += f"; over {part.doses[0]:g} to {part.doses[-1]:g} it {part.shape()}"
        size = f" and at least {self.negligible:g}" if self.negligible else ""
        return CheckResult(
            self.label,
            f"tests {self.tests.describe(self.direction)}",
            part.net,
            reading.passed,
            f"paired bootstrap 95% intervals between doses; a move excludes 0{size}; "
            f"{part.levels[0].runs} runs per dose at {', '.join(f'{d:g}' for d in whole.doses)}; "
            f"measured: dose {part.doses[-1]:g} minus {part.doses[0]:g}",
            self.primary,
            text=f"{part.net.text()}; {shown}",
            path=reading,
        )


def held(dose: float) -> float:
    """A dose held from August 2021: the lever's value is the dose itself."""
    return dose


@dataclass(frozen=True)
class Doses:
    """A lever's dose path as the design: one arm per dose, all under the same master seed.

    Every dose is its own one-point sweep, so the engine gives every dose the same seeds
    (common random numbers) and doses are compared pairwise. ``schedule`` turns a dose
    into the lever's value (a level held from August 2021, or a move at some week);
    ``quick`` is the coarser path of --quick runs and of posterior reads.
    """

    lever: str
    levels: tuple[float, ...]
    quick: tuple[float, ...]
    schedule: Callable[[float], Any] = held

    def levels_for(self, quick: bool) -> tuple[float, ...]:
        """The doses in this mode."""
        return self.quick if quick else self.levels

    def arm_name(self, dose: float) -> str:
        """The arm of one dose: ``lever=dose``."""
        return f"{self.lever}={dose:g}"

    def arms(self, quick: bool) -> tuple[Arm, ...]:
        """One arm per dose."""
        return tuple(
            Arm(self.arm_name(d), fixed={self.lever: self.schedule(d)})
            for d in self.levels_for(quick)
        )

    def dose_of(self, arm: str) -> float:
        """The dose of an arm (NaN for an arm outside the path)."""
        lever, _, dose = arm.partition("=")
        return float(dose) if lever == self.lever and dose else float("nan")


Analysis = Callable[["SweepExperiment", pd.DataFrame, pd.DataFrame], Finding]


@dataclass(frozen=True, kw_only=True)
class Claim:
    """The text every experiment declares: what is claimed, where, and how it is judged."""

    name: str
    title: str
    claim: str
    source: str
    design: str
    expected: str
    construction: str  # what follows by construction, what is emergent
    plot: Callable[[Any, Finding, Path], None]  # (experiment, finding, png path)


@dataclass(frozen=True, kw_only=True)
class SweepExperiment(Claim):
    """A claim tested with model runs through the sweep engine."""

    arms: tuple[Arm, ...] = ()
    doses: Doses | None = None  # a dose path: one more arm per dose
    outcomes: tuple[Outcome, ...] = ()
    checks: tuple[Check, ...] = ()
    analyse: Analysis | None = None  # replaces the plain checks when set
    steps: int = 104
    replicates: tuple[int, int] = (20, 3)  # full, quick
    seed: int = 1
    record_every: int = 1
    series: tuple[str, ...] = ()  # extra columns to record (for figures)

    def replicates_for(self, quick: bool, arm: Arm | None = None) -> int:
        """Replicates (seeds) per condition in this mode (an arm may set its own)."""
        replicates = arm.replicates if arm and arm.replicates else self.replicates
        return replicates[1 if quick else 0]

    def arms_for(self, quick: bool) -> tuple[Arm, ...]:
        """The arms run in this mode: the declared ones, then one per dose of the path."""
        return self.arms + (self.doses.arms(quick) if self.doses else ())

    def measure(self, data: pd.DataFrame) -> pd.DataFrame:
        """One row per run with its outcomes (and its dose, on a dose path)."""
        runs = measure_runs(data, self.outcomes, self.outputs())
        if self.doses is not None:
            runs["dose"] = runs["arm"].map(self.doses.dose_of)
        return runs

    def outputs(self) -> list[str]:
        """Model columns the sweeps must record."""
        needed = {c for o in self.outcomes for c in o.columns} | set(self.series)
        return ["date", *sorted(needed)]

    def spec(self, arm: Arm, quick: bool) -> dict[str, Any]:
        """The sweep-engine spec of one arm."""
        fixed = {"population": population_for(quick)} | dict(arm.fixed)
        spec: dict[str, Any] = {
            "sweep": {
                "name": f"{self.name}-{arm.name}",
                "preset": arm.preset,
                "steps": self.steps,
                "replicates": self.replicates_for(quick, arm),
                "seed": self.seed if arm.seed is None else arm.seed,
                "record_every": self.record_every,
                "outputs": self.outputs(),
            },
            "fixed": fixed,
            "grid": arm.grid_for(quick),
        }
        if arm.sample:
            spec["sample"] = {
                "method": "lhs",
                "n": arm.samples[1 if quick else 0],
                "ranges": {name: list(bounds) for name, bounds in arm.sample.items()},
            }
        return spec

    def run(self, ctx: Context) -> Finding:
        """Run every arm, measure every run, decide the checks."""
        frames = []
        for arm in self.arms_for(ctx.quick):
            frame = ctx.sweep(arm.name, self.spec(arm, ctx.quick))
            frames.append(frame.assign(arm=arm.name))
        data = pd.concat(frames, ignore_index=True)
        runs = self.measure(data)
        if self.analyse is not None:
            return self.analyse(self, data, runs)
        notes = list(
            dict.fromkeys(
                level_means(runs, c.factor, c.outcome)
                for c in self.checks
                if isinstance(c, Trend | DoseResponse)
            )
        )
        return Finding([check.evaluate(runs) for check in self.checks], data, runs, notes)


def level_means(runs: pd.DataFrame, factor: str, outcome: str) -> str:
    """The mean outcome at each level of a swept lever, as one report line."""
    means = runs.groupby(runs[factor].astype(float))[outcome].mean()
    levels = ", ".join(f"{level:g}: {value:.3g}" for level, value in means.items())
    return f"Mean `{outcome}` by `{factor}`: {levels}."


def measure_runs(
    data: pd.DataFrame, outcomes: Sequence[Outcome], outputs: Sequence[str]
) -> pd.DataFrame:
    """One row per run: its identity and varied parameters, then each outcome."""
    keys = [c for c in data.columns if c not in {*outputs, "step", "date"}]
    rows = []
    for _, run in data.groupby(["arm", "run"], sort=False):
        identity = run.iloc[0][keys].to_dict()
        rows.append(identity | {o.name: o.measure(run) for o in outcomes})
    return pd.DataFrame(rows)


@dataclass(frozen=True, kw_only=True)
class ClassicExperiment(Claim):
    """A published experiment on one submodel, run with the model's own rule in isolation."""

    compute: Callable[[bool], Finding]  # quick -> finding

    def run(self, ctx: Context) -> Finding:
        """Compute in-process (these runs are small and need no sweep engine)."""
        return self.compute(ctx.quick)


Experiment = SweepExperiment | ClassicExperiment
