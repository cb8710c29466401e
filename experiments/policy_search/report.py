"""Figures and report.md of a policy search.

The report says what was searched, the front, where the actual policy and Ali's inclusive
government stand, when moderation pays, and how the Pareto set fares out of sample.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from isk_defection.experiments.ensemble import Ensemble
from isk_defection.experiments.policy_search.analysis import (
    ModerationAnswer,
    ParetoSet,
    Placement,
    moderation_level,
)
from isk_defection.experiments.policy_search.robust import natural
from isk_defection.experiments.policy_search.search import SearchResult
from isk_defection.experiments.policy_search.spec import OptimizeSpec
from isk_defection.experiments.stats import wilson

FIGURES = {
    "convergence": "convergence.png",
    "parallel": "parallel.png",
    "tradeoffs": "tradeoffs.png",
    "levers": "levers.png",
}
REFERENCE_STYLE = {0: ("black", "--", "s"), 1: ("tab:green", ":", "D")}
DESCRIBE = {
    "baseline": "the actual 2021-23 policy (preset `baseline`)",
    "inclusive": "Ali's inclusive government (preset `inclusive`)",
}


def _title(spec: OptimizeSpec, ensemble: Ensemble, what: str) -> str:
    tag = " — NOT robust: no posterior given" if ensemble.is_defaults else ""
    return f"{spec.name}: {what}{tag}"


def _style(i: int) -> tuple[str, str, str]:
    return REFERENCE_STYLE.get(i, ("tab:purple", "-.", "^"))


def plot_convergence(path: Path, spec: OptimizeSpec, result: SearchResult, ens: Ensemble) -> None:
    """Hypervolume per generation (normalised by generation 1) and the feasible share."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    generations = np.arange(1, len(result.hypervolume) + 1)
    ax.plot(generations, result.hypervolume, marker="o", color="tab:blue")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (objectives scaled by generation 1)", color="tab:blue")
    share = ax.twinx()
    share.plot(generations, result.feasible, color="tab:orange", alpha=0.7, label="feasible")
    share.set_ylim(-0.02, 1.02)
    share.set_ylabel("feasible share of the generation", color="tab:orange")
    ax.set_title(_title(spec, ens, "convergence"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def _normalised(values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    span = np.where(highs > lows, highs - lows, 1.0)
    return (values - lows) / span


def plot_parallel(
    path: Path,
    spec: OptimizeSpec,
    front: ParetoSet,
    references: list[Placement],
    moderation: np.ndarray,
    ens: Ensemble,
) -> None:
    """One line per Pareto path across the objectives, coloured by its moderation level.

    Each objective is scaled to 0 (best) to 1 (worst) over the paths and references shown;
    the references are drawn over the paths.
    """
    all_losses = np.vstack([front.losses, *[r.losses[None] for r in references]])
    lows, highs = all_losses.min(axis=0), all_losses.max(axis=0)
    fig = Figure(figsize=(max(6, 1.6 * len(spec.objectives) + 2), 4.5))
    ax = fig.subplots()
    axes = np.arange(len(spec.objectives))
    cmap = matplotlib.colormaps["viridis"]
    for row, level in zip(_normalised(front.losses, lows, highs), moderation, strict=True):
        ax.plot(axes, row, color=cmap(level), alpha=0.6, lw=1)
    for i, ref in enumerate(references):
        color, style, _ = _style(i)
        ax.plot(
            axes, _normalised(ref.losses, lows, highs), color=color, ls=style, lw=2.5,
            label=ref.name,
        )  # fmt: skip
    ax.set_xticks(axes, [f"{o.name}\n({o.statistic}, {o.sense})" for o in spec.objectives])
    ax.set_ylabel("scaled loss: 0 best, 1 worst")
    ax.set_ylim(-0.05, 1.05)
    scalar = ScalarMappable(cmap=cmap, norm=Normalize(0, 1))
    fig.colorbar(scalar, ax=ax, label="moderation (mean over periods)")
    if references:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title(_title(spec, ens, f"{len(front.x)} Pareto paths"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def plot_tradeoffs(
    path: Path,
    spec: OptimizeSpec,
    result: SearchResult,
    archive_losses: np.ndarray,
    front: ParetoSet,
    references: list[Placement],
    moderation: np.ndarray,
    ens: Ensemble,
) -> None:
    """Every pair of objectives: all evaluated paths (grey), the Pareto set, the references."""
    pairs = list(itertools.combinations(range(len(spec.objectives)), 2)) or [(0, 0)]
    cols = min(3, len(pairs))
    rows = int(np.ceil(len(pairs) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax, (a, b) in zip(grid.flat, pairs, strict=False):
        oa, ob = spec.objectives[a], spec.objectives[b]
        ax.scatter(
            natural(archive_losses[:, a], oa.sense), natural(archive_losses[:, b], ob.sense),
            s=6, color="0.8", label="evaluated",
        )  # fmt: skip
        ax.scatter(
            natural(front.losses[:, a], oa.sense), natural(front.losses[:, b], ob.sense),
            s=18, c=moderation, cmap="viridis", vmin=0, vmax=1, label="Pareto",
        )  # fmt: skip
        for i, ref in enumerate(references):
            color, _, marker = _style(i)
            ax.scatter(
                natural(ref.losses[a], oa.sense), natural(ref.losses[b], ob.sense),
                s=70, marker=marker, facecolor="none", edgecolor=color, lw=2, label=ref.name,
            )  # fmt: skip
        _zoom(ax, front.losses[:, [a, b]], [r.losses[[a, b]] for r in references], oa, ob)
        ax.set_xlabel(f"{oa.name} ({oa.statistic}, {oa.sense})", fontsize=8)
        ax.set_ylabel(f"{ob.name} ({ob.statistic}, {ob.sense})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(grid.flat)[len(pairs) :]:
        ax.axis("off")
    grid.flat[0].legend(fontsize=7)
    fig.suptitle(
        _title(spec, ens, "trade-offs (colour: moderation; axes around the front)"), fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")


def _zoom(ax: Any, front: np.ndarray, references: list[np.ndarray], oa: Any, ob: Any) -> None:
    """Axes around the front and the references, with a 20% margin.

    The far cloud of poor paths would otherwise squeeze the front into a corner.
    """
    points = np.vstack([front, *[r[None] for r in references]])
    points = np.column_stack([natural(points[:, 0], oa.sense), natural(points[:, 1], ob.sense)])
    for axis, (low, high) in zip(
        (ax.set_xlim, ax.set_ylim), zip(points.min(0), points.max(0), strict=True), strict=True
    ):
        margin = 0.2 * (high - low) if high > low else max(abs(high) * 0.1, 1e-6)
        axis(low - margin, high + margin)


def plot_levers(
    path: Path,
    spec: OptimizeSpec,
    front: ParetoSet,
    reference_paths: dict[str, np.ndarray],
    moderation: np.ndarray,
    ens: Ensemble,
) -> None:
    """Each lever's path over the periods: Pareto paths thin, references (projected) bold."""
    n = len(spec.levers)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(3.4 * cols, 2.6 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    periods = np.arange(spec.periods + 1)
    cmap = matplotlib.colormaps["viridis"]
    for i, (ax, lever) in enumerate(zip(grid.flat, spec.levers, strict=False)):
        block = slice(i * spec.periods, (i + 1) * spec.periods)
        for row, level in zip(front.x[:, block], moderation, strict=True):
            ax.step(periods, [*row, row[-1]], where="post", color=cmap(level), alpha=0.5, lw=1)
        for j, (name, x) in enumerate(reference_paths.items()):
            color, style, _ = _style(j)
            row = x[block]
            ax.step(periods, [*row, row[-1]], where="post", color=color, ls=style, lw=2, label=name)
        ax.set_title(lever.name, fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xticks(periods[:-1], [f"w{w}" for w in spec.period_starts], fontsize=7)
    for ax in list(grid.flat)[n:]:
        ax.axis("off")
    if reference_paths:
        grid.flat[0].legend(fontsize=7)
    fig.suptitle(_title(spec, ens, "lever paths by period (week 0 = 15 Aug 2021)"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")


# ---------------------------------------------------------------- report.md


def _fmt(value: float | np.ndarray | None) -> str:
    """A value (a number or a 0-d array) in as many digits as its size deserves."""
    if value is None or not np.isfinite(value):
        return "n/a"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _n(count: int, noun: str) -> str:
    """``3 seeds``, ``1 seed``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.0f}%"


def write_report(
    path: Path,
    spec: OptimizeSpec,
    ensemble: Ensemble,
    result: SearchResult,
    front: ParetoSet,
    placements: list[Placement],
    answer: ModerationAnswer,
    stress: pd.DataFrame,
    survivors: np.ndarray,
    reference_out: dict[str, np.ndarray],
    pareto: pd.DataFrame,
    meta: dict[str, Any],
) -> None:
    """report.md: the findings in words with numbers, and how they were obtained."""
    lines = [f"# Robust policy search: {spec.name}{' (quick)' if spec.quick else ''}", ""]
    if ensemble.is_defaults:
        lines += [
            "> **Not robust across the posterior: no posterior given.** Every candidate was "
            "judged at the default parameters only (seeds vary, parameters do not), so the "
            "front below is conditional on the defaults. Run again with `--posterior FILE` "
            "once the calibration has written one.",
            "",
        ]
    else:
        lines += [f"Parameter uncertainty: {ensemble.label}.", ""]
    lines += _design(spec, ensemble, result, meta)
    lines += _front(spec, front, result)
    lines += _placements(spec, placements, front)
    lines += _moderation(spec, ensemble, answer, front)
    lines += _stress(spec, stress, survivors, reference_out)
    lines += [
        "## Figures",
        "",
        f"- Convergence (hypervolume per generation): ![convergence]({FIGURES['convergence']})",
        f"- Pareto paths across the objectives: ![parallel]({FIGURES['parallel']})",
        f"- Trade-offs between pairs of objectives: ![trade-offs]({FIGURES['tradeoffs']})",
        f"- Lever paths by period: ![levers]({FIGURES['levers']})",
        "",
        "## Files",
        "",
        "`pareto.parquet` (one row per Pareto path: levers by period `<lever>_pK`, the robust "
        "objectives, each measure's mean, p10, p50 and p90 in sample and `_out` of sample), "
        "`archive.parquet` (every evaluated path), `references.csv`, `stress.csv`, "
        "`convergence.csv`, `manifest.json` (spec, hash, seeds, ensemble, versions, timings).",
        "",
    ]
    for note in spec.notes:
        lines.insert(2, f"> Note: {note}.\n")
    path.write_text("\n".join(lines))


def _design(spec: OptimizeSpec, ens: Ensemble, result: SearchResult, meta: dict) -> list[str]:
    objectives = "; ".join(
        f"{o.name} = {o.statistic} of {o.measure.name} ({o.sense})" for o in spec.objectives
    )
    constraints = "; ".join(c.text() for c in spec.constraints) or "none"
    levers = ", ".join(
        f"{lever.name}"
        + ("" if (lever.low, lever.high) == (0.0, 1.0) else f" [{lever.low:g}, {lever.high:g}]")
        for lever in spec.levers
    )
    minutes = meta.get("seconds", 0) / 60
    starts = ", ".join(map(str, spec.period_starts))
    return [
        "## What was searched",
        "",
        f"- **Lever paths:** {levers}; each held constant over {spec.periods} periods of "
        f"{spec.period_weeks} weeks from 15 August 2021 (weeks {starts}), "
        f"the last value held to week {spec.steps}; levels on a {spec.resolution:g} grid. "
        f"Other levers and parameters: preset `{spec.preset}`"
        + (f" with {', '.join(f'{k}={v}' for k, v in spec.fixed.items())}" if spec.fixed else "")
        + ".",
        f"- **Objectives** (after {spec.steps} weeks): {objectives}. p90 is the 90th "
        "percentile of the loss over the scenarios (for a quantity to maximise, its 10th "
        "percentile); regret is the 90th percentile of the loss minus the actual policy's "
        "in the same scenario.",
        f"- **Constraints:** {constraints}.",
        f"- **Robustness:** each candidate meets the same {spec.scenarios} scenarios "
        f"({_n(spec.draws, 'parameter draw')} x {_n(spec.seeds, 'seed')}; common random "
        "numbers) — "
        f"{ens.label}.",
        f"- **Algorithm:** {spec.algorithm.upper()} (pymoo), population {spec.population}, "
        f"{spec.generations} generations, master seed {spec.seed}; {len(result.x)} distinct "
        f"paths evaluated, {meta.get('runs', 0):,} model runs in {minutes:.1f} min on "
        f"{meta.get('engine', '?')} ({meta.get('cpu', 0) / 60:.1f} CPU-minutes of model runs).",
        "",
    ]


def _front(spec: OptimizeSpec, front: ParetoSet, result: SearchResult) -> list[str]:
    hv = result.hypervolume
    last = hv[-1] if hv else float("nan")
    gain = (hv[-1] - hv[-2]) / hv[-2] if len(hv) > 1 and hv[-2] > 0 else float("nan")
    trimmed = (
        f" (trimmed by crowding distance from {front.non_dominated_size})"
        if front.non_dominated_size > len(front.x)
        else ""
    )
    lines = [
        "## The front",
        "",
        f"{_n(len(front.x), 'Pareto path')}{trimmed}, non-dominated among all {front.archive_size} "
        f"evaluated paths"
        + (
            ""
            if front.feasible_found
            else " — **no path met the constraints**: these are the least infeasible"
        )
        + f". Hypervolume {last:.3f} in the last generation "
        f"({'+' if gain >= 0 else ''}{_pct(gain)} over the one before).",
        "",
        "| objective | best on the front | worst on the front |",
        "| --- | --- | --- |",
    ]
    for j, o in enumerate(spec.objectives):
        values = natural(front.losses[:, j], o.sense)
        best, worst = (
            (values.min(), values.max()) if o.sense == "min" else (values.max(), values.min())
        )
        lines.append(f"| {o.name} ({o.statistic}) | {_fmt(best)} | {_fmt(worst)} |")
    return [*lines, ""]


def _placements(spec: OptimizeSpec, placements: list[Placement], front: ParetoSet) -> list[str]:
    if not placements:
        return []
    lines = ["## The actual policy and the inclusive government against the front", ""]
    header = "| policy | feasible | dominated by | additive ε | " + " | ".join(
        f"{o.name} ({o.statistic})" for o in spec.objectives
    )
    lines += [header + " |", "|" + " --- |" * (4 + len(spec.objectives))]
    for p in placements:
        cells = [
            DESCRIBE.get(p.name, f"preset `{p.name}`"),
            "yes" if p.feasible else "no",
            f"{len(p.dominated_by)} of {len(front.x)} paths",
            f"{p.epsilon:+.3f}",
            *[_fmt(natural(p.losses[j], o.sense)) for j, o in enumerate(spec.objectives)],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for p in placements:
        who = DESCRIBE.get(p.name, f"preset `{p.name}`")
        if p.dominated_by:
            gains = ", ".join(
                f"{o.name} by up to {_fmt(p.best_gain[o.name])}"
                for o in spec.objectives
                if p.best_gain[o.name] > 0
            )
            count = len(p.dominated_by)
            lines.append(
                f"- **{who}** is dominated: {count} Pareto path{'s are' if count > 1 else ' is'} "
                f"at least as good on every objective and better on one ({gains})."
            )
        else:
            lines.append(
                f"- **{who}** is not dominated by the front: no path found is at least as "
                "good on every objective."
            )
    lines += [
        "",
        "Additive ε: the smallest shift, in units of each objective's range over the front "
        "and the policy, by which some Pareto path can be worsened on every objective and "
        "still match the policy. Negative: the policy is dominated with that margin on every "
        "objective; positive: it is not, and some objective is better than every path's "
        "by that much. The references are evaluated with their exact weekly timelines in "
        "the same scenarios as every candidate.",
        "",
    ]
    return lines


def _moderation(
    spec: OptimizeSpec, ens: Ensemble, answer: ModerationAnswer, front: ParetoSet
) -> list[str]:
    lines = ["## When does moderation pay?", ""]
    if not answer.levers:
        return [*lines, "No moderation lever was searched, so the question is not asked.", ""]
    lines += _moderation_on_the_front(spec, answer, front)
    n = answer.scenarios
    pays, other = int(answer.pays.sum()), int(answer.other.sum())
    low, high = wilson(pays, n)
    definition = (
        f"Moderation *pays* in a scenario when a Pareto path whose {' or '.join(answer.levers)} "
        f"averages at least {answer.level:g} over the periods beats the actual 2021-23 "
        "policy there on every objective's measure (no worse anywhere, better somewhere). "
        f"{answer.moderating_paths} of the Pareto paths moderate that much."
    )
    lines += [definition, ""]
    lines.append(
        f"Out of sample it pays in {pays} of {n} scenarios ({_pct(pays / n)}, 95% interval "
        f"{_pct(low)}-{_pct(high)}); a non-moderating Pareto path beats the actual policy "
        f"in {other} of {n} ({_pct(other / n)})."
    )
    lines.append("")
    if not answer.answerable:
        lines += [
            f"**Where in the posterior it pays cannot be answered yet: {answer.reason}.** "
            "The scenarios above differ only in their random seeds, so the share says how "
            "often chance alone lets moderation win at the default parameters, not under "
            "which conditions it does. Scenario discovery (PRIM over the posterior's "
            "parameters) runs as soon as `--posterior FILE` is given.",
            "",
        ]
        return lines
    for label, words in (("pays", "pays"), ("does_not_pay", "does not pay")):
        box = answer.boxes.get(label)
        if box is None:
            continue
        stats = answer.box_stats[label]
        limits = (
            "; ".join(
                f"{b['parameter']} in [{_fmt(b['low'])}, {_fmt(b['high'])}] "
                f"(posterior range {_fmt(b['range'][0])}-{_fmt(b['range'][1])})"
                for b in box
            )
            or "no restriction found"
        )
        lines.append(
            f"- **Moderation {words}** mostly when {limits}: this box holds "
            f"{_pct(stats['coverage'])} of such scenarios (coverage) and {_pct(stats['density'])} "
            f"of the scenarios in it are such (density; base rate {_pct(stats['base_rate'])})."
        )
    if not answer.boxes:
        lines.append(
            f"- It pays in {'all' if answer.pays.all() else 'none'} of the scenarios: there is "
            "no region to discover."
        )
    lines += [
        "",
        "PRIM (EMA Workbench) on the out-of-sample scenarios' posterior parameters; the box "
        "is the densest on the peeling trajectory that still covers half of the cases.",
        "",
    ]
    return lines


def _moderation_on_the_front(
    spec: OptimizeSpec, answer: ModerationAnswer, front: ParetoSet
) -> list[str]:
    """What the moderating Pareto paths buy and cost, against the other Pareto paths."""
    moderating = moderation_level(spec, front.x) >= answer.level - 1e-9
    if not moderating.any() or moderating.all():
        which = "every" if moderating.all() else "no"
        return [
            f"On the front, {which} Pareto path keeps {' or '.join(answer.levers)} at "
            f"{answer.level:g} or more on average, so the front itself does not compare "
            "moderating and non-moderating paths.",
            "",
        ]
    lines = [
        f"On the front, {int(moderating.sum())} of {len(moderating)} Pareto paths moderate "
        f"({' or '.join(answer.levers)} >= {answer.level:g} on average). Their median "
        "objectives against the other Pareto paths':",
        "",
        "| objective | moderating paths | other Pareto paths |",
        "| --- | --- | --- |",
    ]
    for j, o in enumerate(spec.objectives):
        values = natural(front.losses[:, j], o.sense)
        lines.append(
            f"| {o.name} ({o.statistic}) | {_fmt(float(np.median(values[moderating])))} | "
            f"{_fmt(float(np.median(values[~moderating])))} |"
        )
    return [*lines, ""]


def _stress(
    spec: OptimizeSpec,
    stress: pd.DataFrame,
    survivors: np.ndarray,
    reference_out: dict[str, np.ndarray],
) -> list[str]:
    lines = [
        "## Stress test: the Pareto set on fresh draws and seeds",
        "",
        f"Every Pareto path re-run in {spec.stress_draws * spec.stress_seeds} scenarios that "
        f"the search never saw ({_n(spec.stress_draws, 'fresh draw')} x "
        f"{_n(spec.stress_seeds, 'seed')}). "
        f"{int(survivors.sum())} of {len(survivors)} paths stay non-dominated among the set "
        "and the references out of sample.",
        "",
        "| objective | statistic | median in sample | median out of sample | median change | "
        "median change / in-sample median | largest | rank correlation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in stress.itertuples():
        lines.append(
            f"| {row.objective} | {row.statistic} | {_fmt(row.in_sample_median)} | "
            f"{_fmt(row.out_of_sample_median)} | {_fmt(row.median_change)} | "
            f"{_pct(row.median_relative_change)} | {_pct(row.largest_relative_change)} | "
            f"{_fmt(row.rank_correlation)} |"
        )
    if reference_out:
        lines += ["", "References out of sample: " + "; ".join(
            f"{name}: " + ", ".join(
                f"{o.name} {_fmt(natural(v[j], o.sense))}" for j, o in enumerate(spec.objectives)
            )
            for name, v in reference_out.items()
        ) + "."]  # fmt: skip
    return [*lines, ""]
