"""Dose–response of every lever, at the defaults and across the priors: ``defection doses``.

Each lever is held from week 0 at 0, 0.1, ..., 1 while the rest of the baseline timeline
runs as it did, at the default parameters (``replicates`` seeds) and at each of
``--prior-draws`` draws from the priors (``experiments/calibration/priors.py``: a draw
sets every parameter that has a prior; one seed per draw). Common random numbers: run
seeds are the children of the design seed (``numpy.random.SeedSequence``), child r for
the defaults' seed r and child ``replicates + d`` for draw d, the same at every dose of
every lever and in the ceiling. After four years (208 weeks) it records per run each
group's lost share (to IS-K and to desertion), IS-K's strength and its peak.

The **cliff share** of a lever is the share of draws in which some 0.1 step of it moves
any group's lost share by more than 20 points, with its Wilson 95% interval. The
**ceiling** is every lever at 1 at once for 230 weeks: IS-K's peak at the defaults and
across the draws. Every (lever, dose) is one resumable sweep through the sweep engine
(``OUT/sweeps/<lever>/dose-<d>``; the ceiling ``OUT/sweeps/ceiling``), so it runs on local
processes or a Dask cluster alike, with the same numbers, and continues after an
interruption (the same command again). Local processes start afresh for each of the 89
sweeps, and each worker's first run loads the compiled kernel (about a second);
``--local-cluster`` starts one Dask cluster for all of them, whose workers stay warm
(``--quick``: 30 s instead of 2.5 min on 2 cores).

Output folder::

    OUT/doses.csv    lever, dose, outcome: mean and 95% bootstrap interval over the default
                     seeds; median and 5-95% band over the prior draws
    OUT/runs.csv     one row per run: lever, dose, defaults or draw, seed, outcomes
    OUT/draws.csv    the prior draws (draw, run seed, one column per parameter)
    OUT/design.json  agents, weeks, seeds, draws, doses, levers: one design per folder
    OUT/cliffs.csv   per lever and group: cliff share [interval], largest step and its dose
    OUT/cliffs.md    per lever: cliff share [interval], which group and step most often
    OUT/doses.png    lost share by group, and IS-K strength, per lever (prior band shaded)
    OUT/ceiling.json every lever at 1 at once: IS-K's peak (defaults and draws)
    OUT/sweeps/      the sweeps (data, manifest, summary)
"""

from __future__ import annotations

import argparse
import functools
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.experiments import console, folders
from isk_defection.experiments.calibration import priors
from isk_defection.experiments.errors import RunsFailedError
from isk_defection.experiments.options import add_engine_options, integer
from isk_defection.experiments.spec import SweepSpec, run_seed
from isk_defection.experiments.stats import wilson
from isk_defection.experiments.sweep import (
    atomic_write,
    load_spec,
    mean_interval,
    read_results,
    run_sweep,
)
from isk_defection.model.groups import GROUP_LABELS, GROUP_NAMES, TALIBAN_FACTIONS
from isk_defection.model.parameters import STUDY_POPULATION
from isk_defection.model.policy import LEVERS

WEEKS = 208  # four years: the dose-response is read at the end
CEILING_WEEKS = 230  # every lever at 1: August 2021 to the end of 2025
DOSES = tuple(round(0.1 * i, 1) for i in range(11))
CLIFF = 0.20  # a 0.1 step that moves a group's lost share by more than this is a cliff
MAX_PRIOR_DRAWS = 10_000
FEW_AGENTS = 10  # cliffs.md names the groups where a cliff takes fewer agents than this
DRAW_STREAM = 0xD05E  # spawn key of the draws' parameter values (apart from the run seeds)
GROUP_RATES = [f"{g}_{kind}_rate" for g in GROUP_NAMES for kind in ("defection", "desertion")]
LOST = [f"{g}_lost" for g in GROUP_NAMES]  # defection rate + desertion rate
PEOPLE = [f"{g}_people_per_agent" for g in GROUP_NAMES]
MEMBERS = [f"{g}_members" for g in GROUP_NAMES]
AGENTS = [f"{g}_agents" for g in GROUP_NAMES]  # at week 0: one agent moves 1/agents of a share
OUTPUTS = [
    "isk_strength",
    "isk_intake",
    "isk_capacity",
    "taliban_strength",
    *GROUP_RATES,
    *PEOPLE,
    *MEMBERS,
]
RUN_OUTCOMES = [
    *LOST,
    "isk_strength",
    "isk_peak",
    "isk_fastest_4_week_growth",
    "max_overrun_agents",
    "taliban_strength",
    *GROUP_RATES,
]
# Okabe–Ito (colour-blind safe) plus grey, one colour per origin group
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
    "#D55E00", "#CC79A7", "#000000", "#999999",
)  # fmt: skip
COLOUR = dict(zip(GROUP_NAMES, PALETTE, strict=True))
ISK_COLOUR = "#882255"  # apart from every group's (Tol's wine)


@dataclass(frozen=True)
class DoseDesign:
    """What the study runs: agents, weeks, default seeds, prior draws, the master seed."""

    population: int = STUDY_POPULATION  # the study resolution (ODD §7.15)
    weeks: int = WEEKS
    replicates: int = 8  # seeds at the default parameters
    prior_draws: int = 100  # draws from the priors, one seed each
    ceiling_weeks: int = CEILING_WEEKS
    seed: int = 20_211_015
    doses: tuple[float, ...] = DOSES
    levers: tuple[str, ...] = LEVERS  # the levers whose doses are run (the ceiling: all)

    @classmethod
    def quick(cls) -> DoseDesign:
        """A smoke run for CI: 600 agents, one year, 2 seeds, 2 prior draws."""
        return cls(population=600, weeks=52, replicates=2, prior_draws=2, ceiling_weeks=52)


@dataclass(frozen=True)
class Ceiling:
    """IS-K with every lever at 1 at once: how large it grows, at the defaults and the priors.

    ``max_overrun_agents`` is the largest weekly intake beyond the screening budget,
    ``(intake - max(budget, 0))``, in units of the largest agent's people: screening takes
    the first applicant beyond the budget with chance room/people, so it is at most 1.
    The ``prior_`` fields are the same over the prior draws (one seed each).
    """

    weeks: int
    seeds: int
    start_people: float
    prior_draws: int
    peak_people_median: float
    peak_people_p90: float
    peak_people_mean: float
    peak_people_max: float
    fastest_4_week_growth_mean: float
    fastest_4_week_growth_max: float
    max_overrun_agents: float
    prior_peak_people_median: float
    prior_peak_people_p90: float
    prior_peak_people_mean: float
    prior_peak_people_max: float
    prior_fastest_4_week_growth_mean: float
    prior_fastest_4_week_growth_max: float
    prior_max_overrun_agents: float


# ---- the design: prior draws, run seeds, one sweep per (lever, dose) -----------------
def prior_draws(n: int, seed: int) -> list[dict[str, float]]:
    """``n`` draws from the priors (a value for every parameter that has one).

    Draw d comes from its own stream, ``SeedSequence(seed, spawn_key=(DRAW_STREAM, d))``,
    so the first n draws of a larger study are these.
    """
    return [dict(draw) for draw in _prior_draws(n, seed)]


@functools.lru_cache(maxsize=4)
def _prior_draws(n: int, seed: int) -> tuple[dict[str, float], ...]:
    names = priors.names()
    draws = []
    for d in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DRAW_STREAM, d)))
        row = priors.sample(1, rng, names)[0]
        draws.append({name: float(value) for name, value in zip(names, row, strict=True)})
    return tuple(draws)


def run_seeds(design: DoseDesign) -> tuple[list[int], list[int]]:
    """The run seeds: the defaults' (children 0..R-1) and the draws' (children R..R+N-1)."""
    seeds = [run_seed(design.seed, i) for i in range(design.replicates + design.prior_draws)]
    return seeds[: design.replicates], seeds[design.replicates :]


def study_spec(
    name: str,
    levers_at: dict[str, float],
    design: DoseDesign,
    draws: list[dict[str, float]],
    weeks: int | None = None,
) -> SweepSpec:
    """One sweep: the defaults ``replicates`` times, then each draw, with ``levers_at`` held.

    One run per point, so run i takes the i-th child of the design seed: the same seeds
    in every sweep of the study (common random numbers across doses and levers).
    """
    spec = load_spec(
        {
            "sweep": {
                "name": name,
                "steps": design.weeks if weeks is None else weeks,
                "replicates": 1,
                "seed": design.seed,
                "outputs": OUTPUTS,
            },
            "fixed": {"population": design.population},
            "grid": {},
        }
    )
    points = [dict(levers_at) for _ in range(design.replicates)]
    points += [draw | levers_at for draw in draws]
    return spec.with_points(points, field="--prior-draws")


def lever_spec(lever: str, dose: float, design: DoseDesign, draws: list[dict[str, float]]) -> Any:
    """The sweep of one lever at one dose (defaults and draws), the rest of the baseline."""
    return study_spec(f"doses-{lever}-{dose:.1f}", {lever: dose}, design, draws)


# ---- running -------------------------------------------------------------------------
@contextmanager
def shared_engine(engine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The engine options for many sweeps: ``--local-cluster`` starts one cluster for all."""
    if not engine.get("local_cluster"):
        yield engine
        return
    from dask.distributed import LocalCluster

    from isk_defection.experiments.sweep import cores

    workers = engine.get("workers") or cores()
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
        yield engine | {"local_cluster": False, "scheduler": cluster.scheduler_address}


def _sweep(spec: SweepSpec, folder: Path, engine: dict[str, Any], progress: bool | None) -> Any:
    resume = engine.get("resume", False) or (folder / "manifest.json").exists()
    return run_sweep(spec, folder, **(engine | {"resume": resume}), progress=progress)


def run_doses(
    out: Path,
    design: DoseDesign,
    engine: dict[str, Any],
    progress: bool | None = True,
) -> pd.DataFrame:
    """Run (or resume) every (lever, dose) sweep; write and return the per-run table.

    Also writes ``draws.csv`` (the draws and their run seeds). The frame's ``attrs`` hold
    ``failed``: runs that failed (their errors are in the sweeps' manifests).
    """
    keep_design(out, design)
    draws = prior_draws(design.prior_draws, design.seed)
    _, seeds = run_seeds(design)
    table = pd.DataFrame(draws).assign(seed=seeds).rename_axis("draw").reset_index()
    atomic_write(out / "draws.csv", lambda tmp: table.to_csv(tmp, index=False))
    frames, failed = [], 0
    for lever in design.levers:
        for dose in design.doses:
            folder = out / "sweeps" / lever / f"dose-{dose:.1f}"
            results = _sweep(lever_spec(lever, dose, design, draws), folder, engine, progress)
            failed += int(results.attrs.get("failed", 0))
            frames.append(per_run(read_results(folder), design).assign(lever=lever, dose=dose))
    runs = pd.concat(frames, ignore_index=True)
    runs = runs[["lever", "dose", *[c for c in runs.columns if c not in ("lever", "dose")]]]
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False))
    runs.attrs["failed"] = failed
    return runs


def keep_design(out: Path, design: DoseDesign) -> None:
    """Write ``design.json``, or refuse (one line, nothing written) a different design.

    Every sweep of the folder belongs to one design: another one (more draws, ``--quick``
    into a full study's folder) would mix two studies, so it goes to another ``--out``.
    """
    path = out / "design.json"
    wanted = json.loads(json.dumps(asdict(design)))
    if path.is_file():
        held = json.loads(path.read_text())
        if held != wanted:
            name = next(k for k in wanted if held.get(k) != wanted[k])
            option = "--prior-draws" if name == "prior_draws" else "--quick"
            raise ValueError(
                f"{option}: {out} holds a study with {name} = {held.get(name)!r}, not "
                f"{wanted[name]!r}; continue it with the same options or use another --out"
            )
        return
    text = json.dumps(wanted, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


AFTER_RELEASE = 4  # growth is measured from week 4, after the August 2021 prison release


def fastest_growth(strength: np.ndarray, window: int = 4) -> float:
    """The largest ratio of IS-K strength to its value ``window`` weeks before.

    Measured from week ``AFTER_RELEASE``, so that the release (a jump by input, §6) does
    not count as growth: this is how fast recruitment alone can grow IS-K.
    """
    strength = np.asarray(strength, dtype=float)[AFTER_RELEASE:]
    before, after = strength[:-window], strength[window:]
    ratios = np.divide(after, before, out=np.ones(len(after)), where=before > 0)
    return float(ratios.max(initial=1.0))


def overrun_agents(intake: np.ndarray, budget: np.ndarray, largest_agent: float) -> float:
    """The largest weekly ``intake - max(budget, 0)`` in units of the largest agent's people.

    Screening takes the first applicant beyond the budget with chance room/people, so the
    intake exceeds the budget by less than one agent: the value is at most 1 (0 when the
    intake never exceeds the budget; weeks without a budget, ``inf``, never count).
    """
    intake, budget = np.asarray(intake, dtype=float), np.asarray(budget, dtype=float)
    excess = intake - np.maximum(budget, 0.0)
    excess = excess[np.isfinite(excess)]
    if largest_agent <= 0 or not len(excess):
        return 0.0
    return float(max(excess.max(), 0.0) / largest_agent)


def per_run(results: pd.DataFrame, design: DoseDesign) -> pd.DataFrame:
    """One row per run: its last week's outcomes and its trajectory's extremes.

    ``kind`` is ``defaults`` (``member`` = the seed's number) or ``draw`` (``member`` = the
    draw's number), from the point's place in ``study_spec``'s design.
    """
    rows = []
    for run, data in results.groupby("run"):
        data = data.sort_values("step")
        first, last = data.iloc[0], data.iloc[-1]
        point = int(last.point)
        draw = point >= design.replicates
        largest = float(data[PEOPLE].to_numpy(float).max())
        rows.append(
            {
                "kind": "draw" if draw else "defaults",
                "member": point - design.replicates if draw else point,
                "run": run,
                "seed": int(last.seed),
                "weeks": int(last.step),
                **{f"{g}_lost": last[f"{g}_defection_rate"] + last[f"{g}_desertion_rate"]
                   for g in GROUP_NAMES},
                "isk_start": first.isk_strength,
                "isk_strength": last.isk_strength,
                "isk_peak": data.isk_strength.max(),
                "isk_fastest_4_week_growth": fastest_growth(data.isk_strength.to_numpy()),
                "max_overrun_agents": overrun_agents(
                    data.isk_intake.to_numpy(), data.isk_capacity.to_numpy(), largest
                ),
                "taliban_strength": last.taliban_strength,
                **{rate: last[rate] for rate in GROUP_RATES},
                **{f"{g}_agents": round(first[f"{g}_members"] / first[f"{g}_people_per_agent"])
                   if first[f"{g}_people_per_agent"] > 0 else 0 for g in GROUP_NAMES},
            }
        )  # fmt: skip
    columns = ["kind", "member", "run", "seed", "weeks", "isk_start", *RUN_OUTCOMES, *AGENTS]
    return pd.DataFrame(rows, columns=columns)


# ---- summaries -----------------------------------------------------------------------
def dose_table(runs: pd.DataFrame, design: DoseDesign) -> pd.DataFrame:
    """Per lever, dose and outcome: the defaults' mean and interval, the draws' band.

    The mean over the default seeds with its 95% bootstrap interval, and the median and
    5-95% band over the prior draws (long format).
    """
    rows = []
    for (lever, dose), group in runs.groupby(["lever", "dose"], sort=False):
        defaults, draws = group[group.kind == "defaults"], group[group.kind == "draw"]
        index = design.doses.index(dose) if dose in design.doses else 0
        for outcome in RUN_OUTCOMES:
            stats = mean_interval("v", defaults[outcome].to_numpy(float), seed=design.seed + index)
            values = draws[outcome].to_numpy(float)
            values = values[np.isfinite(values)]
            band = np.quantile(values, [0.05, 0.5, 0.95]) if len(values) else [np.nan] * 3
            rows.append(
                {
                    "lever": lever,
                    "dose": dose,
                    "outcome": outcome,
                    "mean": stats["v_mean"],
                    "low": stats["v_low"],
                    "high": stats["v_high"],
                    "seeds": len(defaults),
                    "prior_median": band[1],
                    "prior_p05": band[0],
                    "prior_p95": band[2],
                    "draws": len(values),
                }
            )
    return pd.DataFrame(rows)


def _steps(curves: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's largest absolute 0.1 step and the dose it starts from."""
    doses = curves.columns.to_numpy(float)
    size = np.abs(np.diff(curves.to_numpy(float), axis=1))
    where = size.argmax(axis=1)
    return size[np.arange(len(size)), where], doses[:-1][where]


def cliffs(runs: pd.DataFrame, threshold: float = CLIFF) -> pd.DataFrame:
    """Per lever and group: how often, how large and where a 0.1 step moves the lost share.

    Over the prior draws that have every dose (a draw with a failed run is left out):
    ``cliff_share`` is the share of draws in which some step moves *any* group's lost share
    by more than ``threshold``, with its Wilson 95% interval (lever-wide, as are the
    ``most_often_*`` columns: over the draws with a cliff, the group and the step start
    that most often carry the draw's largest move); ``group_cliff_draws`` counts the draws
    in which this group's lost share moves that much; ``largest_step_median`` and ``_max``
    are the median and maximum over draws of this group's largest absolute step and
    ``step_from_median`` the median of the dose it starts from (0.5: the step 0.5 -> 0.6).
    ``taliban_cliff_*`` count only the Taliban factions' moves. ``reversing_draws`` counts
    the draws in which some group's lost share both rises and falls by more than
    ``threshold`` between neighbouring doses: a response that jumps up and back is seed
    noise or a bistable outcome (it tips in one run, not in the next), not a dose
    threshold (``group_reversing_draws``: this group's). ``default_*`` read the
    largest step off the defaults' mean curve, and ``seed_sd`` is the median over doses of
    the lost share's standard deviation over the default seeds: seed noise alone. A group
    of few agents moves in coarse steps, so a step of more than ``threshold`` can be noise
    there (``agents``: the group's agents at week 0).
    """
    rows = []
    for lever, data in runs.groupby("lever", sort=False):
        draws = data[data.kind == "draw"]
        curves = {
            name: draws.pivot_table(name, "member", "dose", dropna=False).sort_index(axis=1)
            for name in LOST
        }
        complete = pd.concat([c.notna().all(axis=1) for c in curves.values()], axis=1)
        members = complete.index[complete.all(axis=1)] if len(complete) else []
        n = len(members)
        sizes, starts = np.zeros((n, len(LOST))), np.zeros((n, len(LOST)))
        reverses = np.zeros((n, len(LOST)), dtype=bool)
        for j, name in enumerate(LOST):
            if n and curves[name].shape[1] > 1:
                sizes[:, j], starts[:, j] = _steps(curves[name].loc[members])
                signed = np.diff(curves[name].loc[members].to_numpy(float), axis=1)
                reverses[:, j] = (signed > threshold).any(axis=1) & (signed < -threshold).any(
                    axis=1
                )
        cliff = sizes > threshold
        k = int(cliff.any(axis=1).sum())
        low, high = wilson(k, n)
        taliban = [GROUP_NAMES.index(g) for g in TALIBAN_FACTIONS]
        k_taliban = int(cliff[:, taliban].any(axis=1).sum())
        low_taliban, high_taliban = wilson(k_taliban, n)
        often = _most_often(sizes, starts, cliff)
        defaults = data[data.kind == "defaults"]
        seed_sd = defaults.groupby("dose")[LOST].std().median()
        means = defaults.groupby("dose")[LOST].mean().T.sort_index(axis=1)
        default_size = default_start = np.full(len(LOST), np.nan)
        if means.shape[1] > 1:
            default_size, default_start = _steps(means.loc[LOST])
        for j, group in enumerate(GROUP_NAMES):
            rows.append(
                {
                    "lever": lever,
                    "group": group,
                    "agents": int(data[f"{group}_agents"].median()),
                    "draws": n,
                    "cliff_draws": k,
                    "cliff_share": k / n if n else np.nan,
                    "cliff_low": low,
                    "cliff_high": high,
                    "taliban_cliff_draws": k_taliban,
                    "taliban_cliff_share": k_taliban / n if n else np.nan,
                    "taliban_cliff_low": low_taliban,
                    "taliban_cliff_high": high_taliban,
                    "reversing_draws": int(reverses.any(axis=1).sum()),
                    **often,
                    "group_cliff_draws": int(cliff[:, j].sum()),
                    "group_reversing_draws": int(reverses[:, j].sum()),
                    "largest_step_median": float(np.median(sizes[:, j])) if n else np.nan,
                    "largest_step_max": float(sizes[:, j].max()) if n else np.nan,
                    "step_from_median": float(np.median(starts[:, j])) if n else np.nan,
                    "default_largest_step": float(default_size[j]),
                    "default_step_from": float(default_start[j]),
                    "seed_sd": float(seed_sd.get(f"{group}_lost", np.nan)),
                }
            )
    return pd.DataFrame(rows)


def _most_often(sizes: np.ndarray, starts: np.ndarray, cliff: np.ndarray) -> dict[str, Any]:
    """Over the draws with a cliff: the group and the step most often the largest move."""
    draws = np.flatnonzero(cliff.any(axis=1))
    if not len(draws):
        return {
            "most_often_group": "",
            "most_often_group_draws": 0,
            "most_often_step_from": np.nan,
            "most_often_step_draws": 0,
        }
    biggest = sizes[draws].argmax(axis=1)
    groups = Counter(GROUP_NAMES[j] for j in biggest)
    steps = Counter(round(float(starts[d, j]), 1) for d, j in zip(draws, biggest, strict=True))
    (group, in_group), (step, at_step) = groups.most_common(1)[0], steps.most_common(1)[0]
    return {
        "most_often_group": group,
        "most_often_group_draws": in_group,
        "most_often_step_from": step,
        "most_often_step_draws": at_step,
    }


def cliffs_markdown(table: pd.DataFrame, design: DoseDesign) -> str:
    """Per lever: cliff share [Wilson 95%], and which group and step most often carry it."""
    lines = [
        f"Cliff share per lever: the share of prior draws in which some 0.1 step of the lever "
        f"moves any group's lost share (to IS-K + deserted) by more than {CLIFF * 100:.0f} "
        f"points after {design.weeks} weeks ({design.population:,} agents; one seed per "
        "draw, the same at every dose and lever), with its Wilson 95% interval; and the same "
        "for the Taliban factions alone. *Up and back*: draws in which some group's lost share "
        "both rises and falls by more than that between neighbouring doses (seed noise or a "
        "bistable outcome that tips in one run and not the next, not a dose threshold). *Most "
        "often*: over the draws with a cliff, the group and the step carrying the draw's "
        "largest move. *Largest step*: the group whose "
        "largest step has the highest median over draws, and the median dose it starts "
        f"from. *At the defaults*: the largest step of the mean curve over {design.replicates} "
        "seeds.",
        "",
        "| lever | cliff share, any group | Taliban factions only | up and back "
        "| most often: group; step | groups with a cliff [agents]: draws "
        "| largest step, median over draws | at the defaults |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lever, data in table.groupby("lever", sort=False):
        first = data.iloc[0]
        n, k = int(first.draws), int(first.cliff_draws)
        if not n:
            lines.append(f"| `{lever}` | no complete draws | — | — | — | — | — | — |")
            continue
        share = f"{_share(k, n, first.cliff_low, first.cliff_high)}"
        taliban = _share(
            int(first.taliban_cliff_draws), n, first.taliban_cliff_low, first.taliban_cliff_high
        )
        often = "—"
        if k:
            often = (
                f"{GROUP_LABELS[first.most_often_group]} ({first.most_often_group_draws} of {k}); "
                f"{_step(float(first.most_often_step_from))} ({first.most_often_step_draws} of {k})"
            )
        which = data[data.group_cliff_draws > 0].sort_values("group_cliff_draws", ascending=False)
        groups = ", ".join(
            f"{r.group} [{r.agents}]: {r.group_cliff_draws}" for r in which.itertuples()
        )
        top = data.loc[data.largest_step_median.idxmax()]
        largest = (
            f"{top.largest_step_median * 100:.0f} points ({GROUP_LABELS[top.group]}, from "
            f"{top.step_from_median:.2f})"
        )
        at_default = "—"
        if data.default_largest_step.notna().any():
            row = data.loc[data.default_largest_step.idxmax()]
            at_default = (
                f"{row.default_largest_step * 100:.0f} points ({GROUP_LABELS[row.group]}, "
                f"{_step(float(row.default_step_from))})"
            )
        lines.append(
            f"| `{lever}` | {share} | {taliban} | {first.reversing_draws} of {n} | {often} "
            f"| {groups or '—'} | {largest} | {at_default} |"
        )
    groups_once = table.drop_duplicates("group")
    few = groups_once[groups_once.agents * CLIFF < FEW_AGENTS]
    if len(few):
        names = ", ".join(
            f"{r.group} ({r.agents} agents"
            + (f", seed s.d. {r.seed_sd * 100:.0f} points)" if np.isfinite(r.seed_sd) else ")")
            for r in few.itertuples()
        )
        lines += [
            "",
            f"A group of *a* agents moves in steps of 1/*a* of its members. In {names}, a "
            f"move of more than {CLIFF * 100:.0f} points takes fewer than {FEW_AGENTS} agents "
            "and can come from seed noise alone (seed s.d.: the lost share's standard "
            "deviation over the default seeds, median over doses).",
        ]
    return "\n".join(lines) + "\n"


def _share(k: int, n: int, low: float, high: float) -> str:
    if not n:
        return "no complete draws"
    return f"{k / n:.0%} [{low:.0%}, {high:.0%}] ({k} of {n})"


def _step(start: float) -> str:
    return f"{start:.1f} → {start + 0.1:.1f}"


def write_cliffs(out: Path, runs: pd.DataFrame, design: DoseDesign) -> pd.DataFrame:
    """``cliffs.csv`` and ``cliffs.md``, each written atomically."""
    table = cliffs(runs)
    text = cliffs_markdown(table, design)
    atomic_write(out / "cliffs.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(out / "cliffs.md", lambda tmp: Path(tmp).write_text(text))
    return table


# ---- the ceiling ---------------------------------------------------------------------
def run_ceiling(
    out: Path, design: DoseDesign, engine: dict[str, Any], progress: bool | None = True
) -> Ceiling:
    """Every lever at 1 at once for ``ceiling_weeks``: defaults (R seeds) and the draws."""
    draws = prior_draws(design.prior_draws, design.seed)
    every_lever_at_one = dict.fromkeys(LEVERS, 1.0)
    spec = study_spec("doses-ceiling", every_lever_at_one, design, draws, design.ceiling_weeks)
    folder = out / "sweeps" / "ceiling"
    results = _sweep(spec, folder, engine, progress)
    runs = per_run(read_results(folder), design)
    runs.attrs["failed"] = int(results.attrs.get("failed", 0))
    top = ceiling_of(runs, design)
    text = json.dumps(asdict(top), indent=2)
    atomic_write(out / "ceiling.json", lambda tmp: Path(tmp).write_text(text))
    return top


def ceiling_of(runs: pd.DataFrame, design: DoseDesign) -> Ceiling:
    """The ceiling's figures from its per-run table (``per_run`` of the ceiling sweep)."""
    defaults, draws = runs[runs.kind == "defaults"], runs[runs.kind == "draw"]
    return Ceiling(
        weeks=design.ceiling_weeks,
        seeds=len(defaults),
        start_people=_stat(defaults.isk_start, "mean"),
        prior_draws=len(draws),
        **_peaks(defaults, ""),
        **_peaks(draws, "prior_"),
    )


def _peaks(frame: pd.DataFrame, prefix: str) -> dict[str, float]:
    """IS-K's peak, fastest growth and largest overrun over a set of runs."""
    peak, growth = frame.isk_peak, frame.isk_fastest_4_week_growth
    return {
        f"{prefix}peak_people_median": _stat(peak, "median"),
        f"{prefix}peak_people_p90": _stat(peak, "p90"),
        f"{prefix}peak_people_mean": _stat(peak, "mean"),
        f"{prefix}peak_people_max": _stat(peak, "max"),
        f"{prefix}fastest_4_week_growth_mean": _stat(growth, "mean"),
        f"{prefix}fastest_4_week_growth_max": _stat(growth, "max"),
        f"{prefix}max_overrun_agents": _stat(frame.max_overrun_agents, "max"),
    }


def _stat(values: pd.Series, how: str) -> float:
    data = values.to_numpy(float)
    if not len(data):
        return float("nan")
    return float(np.quantile(data, 0.9) if how == "p90" else getattr(np, how)(data))


# ---- the figure ----------------------------------------------------------------------
def plot_doses(table: pd.DataFrame, path: Path, design: DoseDesign | None = None) -> Path:
    """Rows: levers; columns: lost share (Taliban factions, other groups), IS-K strength.

    Lines: the defaults' mean over seeds; shaded: the 5-95% band over the prior draws.
    """
    from matplotlib.figure import Figure

    design = design or DoseDesign()
    levers = list(dict.fromkeys(table.lever))
    others = [g for g in GROUP_NAMES if g not in TALIBAN_FACTIONS]
    fig = Figure(figsize=(13, 2.2 * len(levers) + 0.6))
    axes = fig.subplots(len(levers), 3, squeeze=False)
    for row, lever in zip(axes, levers, strict=True):
        data = table[table.lever == lever]
        for ax, groups in zip(row[:2], (TALIBAN_FACTIONS, others), strict=True):
            for group in groups:
                line = data[data.outcome == f"{group}_lost"]
                colour = COLOUR[group]
                ax.plot(line.dose, line["mean"], color=colour, label=GROUP_LABELS[group])
                ax.fill_between(line.dose, line.prior_p05, line.prior_p95, color=colour, alpha=0.12)
            ax.set_ylim(0, 1)
        line = data[data.outcome == "isk_strength"]
        row[2].plot(line.dose, line["mean"], color=ISK_COLOUR, label="defaults (mean)")
        row[2].plot(line.dose, line.prior_median, color=ISK_COLOUR, linestyle=":",
                    label="prior draws (median)")  # fmt: skip
        row[2].fill_between(
            line.dose, line.prior_p05, line.prior_p95, color=ISK_COLOUR, alpha=0.2,
            label="prior draws (5-95%)",
        )  # fmt: skip
        row[2].set_ylim(bottom=0)
        row[0].set_ylabel(lever, fontsize=9)
    titles = (
        "Taliban factions: share lost (to IS-K + deserted)",
        "other groups: share lost",
        "IS-K strength (people)",
    )
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("lever held from week 0 at")
    handles: list[Any] = []
    labels: list[str] = []
    for ax in (axes[0][0], axes[0][1], axes[0][2]):
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    seeds = int(table.seeds.max()) if len(table) else 0
    draws = int(table.draws.max()) if len(table) else 0
    fig.suptitle(
        f"Dose–response after {design.weeks} weeks: lines, the defaults (mean over {seeds} "
        f"seeds); shaded, 5–95% over {draws} prior draws; other levers as in the baseline",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.98))
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return path


# ---- the command ---------------------------------------------------------------------
def add_parser(commands: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Register ``defection doses`` on the CLI's subcommand parsers."""
    parser = commands.add_parser(
        "doses",
        parents=[common] if common is not None else [],
        help="dose-response of every lever (0 to 1) across the priors: cliffs, IS-K's ceiling",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="results/doses", help="output folder (results/doses)")
    parser.add_argument(
        "--quick", action="store_true", help="600 agents, one year, 2 seeds, 2 prior draws (CI)"
    )
    parser.add_argument(
        "--prior-draws",
        type=integer(1, MAX_PRIOR_DRAWS),
        metavar="N",
        help="draws from the priors, one seed each (default 100; 2 with --quick)",
    )
    add_engine_options(parser, what="dose-response", retry=True)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the study, write the tables, the cliffs, the figure and the ceiling; a digest."""
    design = DoseDesign.quick() if args.quick else DoseDesign()
    if args.prior_draws is not None:
        design = replace(design, prior_draws=args.prior_draws)
    out = Path(args.out)
    progress = console.progress(args)
    engine = {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "local_cluster": args.local_cluster,
        "resume": args.resume,
        "retry_failed": getattr(args, "retry_failed", False),
    }
    with folders.claim(out, "doses"), shared_engine(engine) as shared:
        runs = run_doses(out, design, shared, progress=progress)
        table = dose_table(runs, design)
        atomic_write(out / "doses.csv", lambda tmp: table.to_csv(tmp, index=False))
        cliff = write_cliffs(out, runs, design)
        plot = plot_doses(table, out / "doses.png", design)
        top = run_ceiling(out, design, shared, progress=progress)
    print(digest(runs, cliff, top, design, out, plot))
    failed = int(runs.attrs.get("failed", 0))
    if failed:
        raise RunsFailedError(
            f"doses: {failed} runs failed (errors in {out}/sweeps/*/*/manifest.json); the "
            "tables leave them out; run them again with --resume --retry-failed"
        )
    return 0


def digest(
    runs: pd.DataFrame,
    cliff: pd.DataFrame,
    top: Ceiling,
    design: DoseDesign,
    out: Path,
    plot: Path,
) -> str:
    """What the command prints: the design, the cliffs, the overrun check and the ceiling."""
    lines = [
        f"dose-response after {design.weeks} weeks, {design.population:,} agents: "
        f"{design.replicates} seeds at the defaults and {design.prior_draws} prior draws "
        "(the same seeds at every dose and lever)",
        f"cliff share (a 0.1 step moves some group's lost share by > {CLIFF * 100:.0f} points; "
        "share of draws [Wilson 95%]):",
    ]
    for lever, data in cliff.groupby("lever", sort=False):
        first = data.iloc[0]
        n = int(first.draws)
        anyone = _share(int(first.cliff_draws), n, first.cliff_low, first.cliff_high)
        taliban = _share(
            int(first.taliban_cliff_draws), n, first.taliban_cliff_low, first.taliban_cliff_high
        )
        lines.append(
            f"  {lever}: any group {anyone}; Taliban factions {taliban}; up and back in "
            f"{int(first.reversing_draws)} of {n}"
        )
    worst = max(runs.max_overrun_agents.max(), top.max_overrun_agents, top.prior_max_overrun_agents)
    verdict = (
        "at most one agent, as the margin allows"
        if worst <= 1.0 + 1e-9
        else "ABOVE ONE AGENT: screening took more than the margin allows"
    )
    lines += [
        f"largest weekly intake beyond IS-K's screening budget, at any lever, dose and run: "
        f"{worst:.3f} of the largest agent's people ({verdict})",
        f"every lever at 1 for {top.weeks} weeks: IS-K from {top.start_people:,.0f} to a peak "
        f"of {top.peak_people_median:,.0f} people at the defaults (median of {top.seeds} seeds; "
        f"max {top.peak_people_max:,.0f}); over {top.prior_draws} prior draws median "
        f"{top.prior_peak_people_median:,.0f}, 90th percentile {top.prior_peak_people_p90:,.0f}, "
        f"max {top.prior_peak_people_max:,.0f}",
        f"wrote {out / 'doses.csv'}, {out / 'runs.csv'}, {out / 'cliffs.csv'}, "
        f"{out / 'cliffs.md'}, {plot} and {out / 'ceiling.json'}",
    ]
    return "\n".join(lines)
