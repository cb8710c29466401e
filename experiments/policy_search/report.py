"""Figures and report.md of a policy search.

The report leads with the answer to "when does moderation pay?" (generated from the
numbers, ``answer``), then says what was searched, each moderation lever's dose-response,
the front, where the actual policy and Ali's inclusive government stand, the answer's
sensitivity to the constraint, when moderation pays lever by lever, the regret view, and
how the Pareto set fares out of sample.
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
    ParetoSet,
    Placement,
    moderation_level,
)
from isk_defection.experiments.policy_search.answer import (
    Findings,
    change,
    conditions,
    effect_text,
    how_often,
    lead,
    level_words,
    pct,
    words,
)
from isk_defection.experiments.policy_search.dose_response import BAND
from isk_defection.experiments.policy_search.robust import natural
from isk_defection.experiments.policy_search.search import SearchResult
from isk_defection.experiments.policy_search.spec import OptimizeSpec

FIGURES = {
    "convergence": "convergence.png",
    "parallel": "parallel.png",
    "tradeoffs": "tradeoffs.png",
    "levers": "levers.png",
    "dose_response": "dose_response.png",
    "regret": "regret.png",
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


def plot_dose_response(path: Path, spec: OptimizeSpec, table: pd.DataFrame, ens: Ensemble) -> None:
    """Per measure, each lever's effect against the actual policy by dose: median, 5-95% band.

    The actual policy's own mean level of each lever is marked at 0 (its effect).
    """
    measures = list(dict.fromkeys(table["measure"]))
    cols = min(3, len(measures))
    rows = int(np.ceil(len(measures) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.3 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    colours = dict(
        zip(dict.fromkeys(table["lever"]), ("tab:blue", "tab:red", "tab:green"), strict=False)
    )
    units = {m.name: m.unit for m in spec.measures}
    for ax, measure in zip(grid.flat, measures, strict=False):
        scale = 100.0 if units.get(measure) in ("share", "[0,1]") else 1.0
        for lever, colour in colours.items():
            rows_ = table[(table["lever"] == lever) & (table["measure"] == measure)]
            doses = rows_[~rows_["actual"]].sort_values("dose")
            ax.fill_between(
                doses["dose"], scale * doses["effect_low"], scale * doses["effect_high"],
                color=colour, alpha=0.15, lw=0,
            )  # fmt: skip
            ax.plot(doses["dose"], scale * doses["effect_median"], color=colour, marker="o",
                    ms=3, label=words(lever))  # fmt: skip
            actual = rows_[rows_["actual"]]
            ax.plot(actual["dose"], [0.0] * len(actual), marker="s", mfc="none", color=colour,
                    ls="none")  # fmt: skip
        ax.axhline(0.0, color="black", lw=0.8)
        sense = rows_["sense"].iloc[0] if len(rows_) else "min"
        unit = " (points)" if scale == 100.0 else ""
        ax.set_title(f"{measure} ({sense}){unit}", fontsize=8)
        ax.set_xlabel("dose, held over the horizon", fontsize=8)
        ax.set_ylabel("minus the actual policy", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(grid.flat)[len(measures) :]:
        ax.axis("off")
    grid.flat[0].legend(fontsize=7)
    fig.suptitle(
        _title(spec, ens, f"each lever alone: median effect, {pct(BAND[0])}-{pct(BAND[1])} "
               "of scenarios (squares: the actual policy)"),
        fontsize=9,
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")


def plot_regret(path: Path, spec: OptimizeSpec, table: pd.DataFrame, ens: Ensemble) -> None:
    """p90 regret per policy and objective, scaled by the spread between policies (heat map)."""
    columns = [f"scaled_{o.name}" for o in spec.objectives]
    data = table[columns].to_numpy(float)
    fig = Figure(figsize=(1.3 * len(columns) + 3.5, 0.28 * len(table) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(data, cmap="magma_r", vmin=0, vmax=max(1.0, float(np.nanmax(data))),
                      aspect="auto")  # fmt: skip
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                color="white" if value > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(columns)), [o.name for o in spec.objectives], fontsize=7, rotation=20)
    ax.set_yticks(range(len(table)), [f"{p} ({k})" for p, k in zip(table["policy"], table["kind"],
                  strict=True)], fontsize=6)  # fmt: skip
    fig.colorbar(image, ax=ax, label="p90 regret / median spread between policies")
    ax.set_title(_title(spec, ens, "regret against the best policy in each scenario"), fontsize=9)
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
    found: Findings,
    stress: pd.DataFrame,
    survivors: np.ndarray,
    reference_out: dict[str, np.ndarray],
    pareto: pd.DataFrame,
    meta: dict[str, Any],
) -> None:
    """report.md: the answer first, then the findings in words with numbers, and the method."""
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
    lines += answer_section(spec, ensemble, found)
    lines += _design(spec, ensemble, result, meta)
    lines += _dose_section(spec, found.dose)
    lines += _front(spec, front, result)
    lines += _placements(spec, placements, front)
    lines += _sensitivity_section(spec, found.sensitivity, result)
    lines += _moderation(spec, found, front)
    lines += _regret_section(spec, found.regret)
    lines += _stress(spec, stress, survivors, reference_out)
    lines += [
        "## Figures",
        "",
        f"- Convergence (hypervolume per generation): ![convergence]({FIGURES['convergence']})",
        f"- Pareto paths across the objectives: ![parallel]({FIGURES['parallel']})",
        f"- Trade-offs between pairs of objectives: ![trade-offs]({FIGURES['tradeoffs']})",
        f"- Lever paths by period: ![levers]({FIGURES['levers']})",
    ]
    if found.dose is not None:
        lines.append(f"- Each lever alone, by dose: ![dose-response]({FIGURES['dose_response']})")
    if found.regret is not None:
        lines.append(
            f"- Regret against the best policy per scenario: ![regret]({FIGURES['regret']})"
        )
    lines += [
        "",
        "## Files",
        "",
        "`pareto.parquet` (one row per Pareto path: levers by period `<lever>_pK`, the robust "
        "objectives, each measure's mean, p10, p50 and p90 in sample and `_out` of sample), "
        "`archive.parquet` (every evaluated path; `seeded` names generation 1's structured "
        "moderating paths), `references.csv`, `stress.csv`, `convergence.csv`, "
        "`dose_response.csv` (each lever alone by dose), `constraint_sensitivity.csv`, "
        "`pays.csv` (per fresh scenario, whether a path using each lever pays), `regret.csv`, "
        "`answer.md` (the lead paragraph alone), `manifest.json` (spec, hash, seeds, ensemble, "
        "versions, timings).",
        "",
    ]
    for note in spec.notes:
        lines.insert(2, f"> Note: {note}.\n")
    path.write_text("\n".join(lines))


def answer_section(spec: OptimizeSpec, ensemble: Ensemble, found: Findings) -> list[str]:
    """The lead: the answer in one paragraph, then its conditions and uncertainty."""
    return [
        "## Answer: when does moderation pay?",
        "",
        lead(spec, ensemble, found),
        "",
        "### Conditions and uncertainty",
        "",
        *conditions(spec, ensemble, found),
        "",
    ]


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


def _moderation(spec: OptimizeSpec, found: Findings, front: ParetoSet) -> list[str]:
    lines = ["## When does moderation pay? Lever by lever", ""]
    if not spec.moderation_levers:
        return [*lines, "No moderation lever was searched, so the question is not asked.", ""]
    lines += _moderation_on_the_front(spec, front)
    if not found.answers:
        return [*lines, "No reference policy: nothing to beat.", ""]
    lines += [
        "A lever *pays* in a fresh scenario when a stress-tested path that uses it (its mean "
        f"over the periods at least {spec.moderation_level:g}) beats the actual 2021-23 "
        "policy there on every objective's measure (no worse anywhere, better somewhere).",
        "",
        "| lever | paths using it (meeting the constraints) | pays in | region where it pays "
        "(PRIM) | coverage | density | pattern that would move the box's parameters |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lever, a in found.answers.items():
        if a.box:
            region = "; ".join(
                f"`{b['parameter']}` in [{_fmt(b['low'])}, {_fmt(b['high'])}] (posterior "
                f"{_fmt(b['range'][0])}-{_fmt(b['range'][1])})"
                for b in a.box
            )
            cover, dense = _pct(a.box_stats["coverage"]), _pct(a.box_stats["density"])
        elif a.answerable:
            region = "every scenario" if a.pays.all() else "no scenario: nothing to discover"
            cover = dense = "n/a"
        else:
            region = f"not asked: {a.reason}"
            cover = dense = "n/a"
        links = "; ".join(f"`{link['parameter']}`: {_link(link)}" for link in a.links) or (
            "n/a" if not a.box else ""
        )
        lines.append(
            f"| {words(lever)} | {a.paths} ({a.feasible_paths}) | {how_often(a)} | {region} | "
            f"{cover} | {dense} | {links} |"
        )
    n = len(found.other)
    lines += [
        "",
        f"A stress-tested path that uses neither lever beats the actual policy in "
        f"{int(found.other.sum())} of {n} fresh scenarios.",
        "",
        "Intervals: Wilson, 95%. PRIM (EMA Workbench, `experiments/stats.prim_box`) on the "
        "fresh scenarios' posterior parameters; the box is the densest on the peeling "
        "trajectory that still covers half of the scenarios where the lever pays (coverage: "
        "the share of those inside the box; density: the share of the box's scenarios where "
        "it pays). The pattern named for a box parameter is the calibration pattern "
        "(`experiments/calibration/patterns.py`) whose simulated value in the actual "
        "policy's run correlates most with the parameter over these scenarios (Spearman's "
        "rho): measuring it better is what would move that parameter, and so the box.",
        "",
    ]
    if not any(a.answerable for a in found.answers.values()):
        lines += [
            "**Where in the posterior it pays cannot be answered yet: "
            f"{next(iter(found.answers.values())).reason}.** The fresh scenarios differ only in "
            "their random seeds, so the shares say how often chance alone lets a lever win at "
            "the default parameters, not under which conditions it does. Scenario discovery "
            "runs as soon as `--posterior FILE` is given; the actual policy's stress runs then "
            "go on to week 229 and record every calibration pattern, whose correlation with "
            "each box parameter names the pattern that would move it.",
            "",
        ]
    return lines


def _link(link: dict[str, Any]) -> str:
    if link["pattern"] is None:
        return (
            "patterns not recorded (run the actual policy in these scenarios to week 229 "
            "and correlate `patterns.pattern_values` with the parameter)"
        )
    return f"`{link['pattern']}` (rho {link['rho']:+.2f})"


def _moderation_on_the_front(spec: OptimizeSpec, front: ParetoSet) -> list[str]:
    """What the moderating Pareto paths buy and cost, against the other Pareto paths."""
    level, levers = spec.moderation_level, spec.moderation_levers
    moderating = moderation_level(spec, front.x) >= level - 1e-9
    if not moderating.any() or moderating.all():
        which = "every" if moderating.all() else "no"
        return [
            f"On the front, {which} Pareto path keeps {' or '.join(levers)} at "
            f"{level:g} or more on average, so the front itself does not compare "
            "moderating and non-moderating paths.",
            "",
        ]
    lines = [
        f"On the front, {int(moderating.sum())} of {len(moderating)} Pareto paths moderate "
        f"({' or '.join(levers)} >= {level:g} on average). Their median "
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


def _dose_section(spec: OptimizeSpec, table: pd.DataFrame | None) -> list[str]:
    """Each moderation lever alone, dose by dose, before any search."""
    if table is None or table.empty:
        return []
    measures = list(dict.fromkeys(table["measure"]))
    units = {m.name: m.unit for m in spec.measures}
    scenarios = int(table["scenarios"].iloc[0])
    lines = [
        "## Each lever alone: dose-response before the search",
        "",
        f"Each lever held at each dose over the whole horizon, every other lever and "
        f"parameter as in the actual policy (preset `{spec.references[0]}`), in the search's "
        f"own {scenarios} scenarios (common random numbers). Cells: the median over the "
        f"scenarios of the dose's value minus the actual policy's in the same scenario, and "
        f"in brackets its {pct(BAND[0])}-{pct(BAND[1])} band over the scenarios (posterior "
        "draws and seeds); shares and [0, 1] measures in points, counts in % of the actual "
        "policy's median. *Beats* is the share of scenarios in which the dose is no worse on "
        "any objective and better on one. The row *actual* is the actual policy itself at "
        "its mean level of the lever.",
        "",
        "| lever | dose | beats | "
        + " | ".join(f"{m} ({table.loc[table['measure'] == m, 'sense'].iloc[0]})" for m in measures)
        + " |",
        "|" + " --- |" * (3 + len(measures)),
    ]
    for (lever, dose, actual), rows in table.groupby(["lever", "dose", "actual"], sort=False):
        cells = []
        for m in measures:
            r = rows[rows["measure"] == m].iloc[0]
            unit = units.get(m, "")
            cells.append(
                f"{effect_text(r.effect_median, r, unit)} "
                f"[{effect_text(r.effect_low, r, unit)}, {effect_text(r.effect_high, r, unit)}]"
            )
        label = f"actual ({dose:.2f})" if actual else f"{dose:g}"
        beats = "—" if actual else pct(rows["beats_share"].iloc[0])
        lines.append(f"| {words(str(lever))} | {label} | {beats} | " + " | ".join(cells) + " |")
    lines += ["", f"![dose-response]({FIGURES['dose_response']})", ""]
    return lines


def _sensitivity_section(
    spec: OptimizeSpec, table: pd.DataFrame | None, result: SearchResult
) -> list[str]:
    """The front under other levels of one constraint, filtered from the one archive."""
    if table is None or table.empty or spec.sensitivity_constraint is None:
        return []
    constraint = next(c for c in spec.constraints if c.name == spec.sensitivity_constraint)
    targets = [c[: -len("_on_front")] for c in table.columns if c.endswith("_on_front")]
    targets = [t for t in targets if t != "moderating"]
    lines = [
        "## Constraints: the answer under other limits",
        "",
        f"The constraint varied: {constraint.text()} (the search ran under this one). For "
        "each level the archive of every path the one search evaluated "
        f"({len(result.x)} paths) is filtered to those that meet it (and every other "
        "constraint), and the front is recomputed by pymoo's non-dominated sorting; no "
        "search is rerun. A search run under another level could find paths this archive "
        "lacks (a looser one especially, since the search was steered away from the paths "
        "only it allows), so a looser level's front is a lower bound on what it allows. "
        "*Best moderating path*: the moderating front path nearest to dominating the actual "
        "policy (smallest additive ε); its objectives minus the actual policy's (in sample; "
        "for a quantity to maximise, positive is better).",
        "",
        "| limit | paths meeting it | front | moderating on the front | "
        + " | ".join(f"... using {words(t)}" for t in targets)
        + " | actual policy meets it | actual dominated | "
        + " | ".join(f"Δ {o.name} ({o.statistic}, {o.sense})" for o in spec.objectives)
        + " |",
        "|" + " --- |" * (6 + len(targets) + len(spec.objectives)),
    ]
    for row in table.itertuples():
        bound = None if row.level == "none" else float(row.bound)
        deltas = []
        for o in spec.objectives:
            value = getattr(row, f"delta_{o.name}")
            deltas.append(change(value, o.measure.unit) if np.isfinite(value) else "—")
        lines.append(
            f"| {level_words(constraint, bound)} | {row.feasible_paths} | {row.front} | "
            f"{row.moderating_on_front} | "
            + " | ".join(str(getattr(row, f"{t}_on_front")) for t in targets)
            + f" | {'yes' if row.actual_feasible else 'no'} | "
            f"{'yes' if row.actual_dominated else 'no'} | " + " | ".join(deltas) + " |"
        )
    return [*lines, ""]


def _regret_section(spec: OptimizeSpec, table: pd.DataFrame | None) -> list[str]:
    """Each stress-tested policy's p90 regret against the best policy in each scenario."""
    if table is None or table.empty:
        return []
    lines = [
        "## Regret: which paths are never badly wrong",
        "",
        "Out of sample, for each objective's measure and fresh scenario: the policy's value "
        "minus the best value any stress-tested policy reaches there (MORDM regret, >= 0), "
        "then its 90th percentile over the scenarios. *Worst scaled*: the largest of them, "
        "each divided by the median spread between the best and the worst policy in a "
        "scenario; rows from the never-badly-wrong up. Kinds: `pareto` (the front), "
        "`best <lever>` (the archive's best paths using it), `reference`.",
        "",
        "| policy | kind | "
        + " | ".join(f"{o.name} p90 regret" for o in spec.objectives)
        + " | worst scaled |",
        "|" + " --- |" * (3 + len(spec.objectives)),
    ]
    for row in table.itertuples():
        cells = [_fmt(getattr(row, f"regret_{o.name}")) for o in spec.objectives]
        lines.append(
            f"| {row.policy} | {row.kind} | " + " | ".join(cells) + f" | {row.worst_scaled:.2f} |"
        )
    lines += ["", f"![regret]({FIGURES['regret']})", ""]
    return lines


def _stress(
    spec: OptimizeSpec,
    stress: pd.DataFrame,
    survivors: np.ndarray,
    reference_out: dict[str, np.ndarray],
) -> list[str]:
    lines = [
        "## Stress test: the Pareto set on fresh draws and seeds",
        "",
        f"Every Pareto path (and, per moderation lever, up to {spec.moderation_stress_paths} of "
        "the archive's best paths that use it: the regret table's `best` rows) re-run in "
        f"{spec.stress_draws * spec.stress_seeds} scenarios that the search never saw ({_n(spec.stress_draws, 'fresh draw')} x "
        f"{_n(spec.stress_seeds, 'seed')}). "
        f"{int(survivors.sum())} of {len(survivors)} paths stay non-dominated among the set "
        "and the references out of sample.",
        "",
        "| objective | statistic | median in sample | median out of sample | median change | "
        "median change / in-sample median | largest | rank correlation | target met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in stress.itertuples():
        lines.append(
            f"| {row.objective} | {row.statistic} | {_fmt(row.in_sample_median)} | "
            f"{_fmt(row.out_of_sample_median)} | {_fmt(row.median_change)} | "
            f"{_pct(row.median_relative_change)} | {_pct(row.largest_relative_change)} | "
            f"{_fmt(row.rank_correlation)} | {'yes' if row.target_met else 'no'} |"
        )
    if not stress.empty:
        met = stress["target_met"].astype(bool)
        lines += [
            "",
            f"**Target: the median shift of each objective's robust statistic is at most "
            f"{pct(spec.target_shift)} — "
            + ("met** for every objective." if met.all() else
               f"not met** for {', '.join(stress.loc[~met, 'objective'])} "
               f"({int(met.sum())} of {len(met)} objectives meet it): the in-sample scenarios "
               "are too few to judge those objectives; more draws or seeds per candidate "
               "(`[robustness]`) would narrow the shift."),
        ]  # fmt: skip
    if reference_out:
        lines += ["", "References out of sample: " + "; ".join(
            f"{name}: " + ", ".join(
                f"{o.name} {_fmt(natural(v[j], o.sense))}" for j, o in enumerate(spec.objectives)
            )
            for name, v in reference_out.items()
        ) + "."]  # fmt: skip
    return [*lines, ""]
