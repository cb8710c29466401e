"""Figure pieces shared by the experiments: bands over time, effect intervals, trends."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from isk_defection.experiments.claims.framework import (
    Arm,
    CheckResult,
    Difference,
    Finding,
)
from isk_defection.model.policy import LEVERS, as_schedule

COLORS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown")
PASS, FAIL = "tab:green", "tab:red"


def panels(count: int, title: str, finding: Finding, width: float = 5.2) -> tuple:
    """A row of ``count`` panels under a title that states the verdict."""
    fig = Figure(figsize=(width * count, 4.4))
    axes = fig.subplots(1, count, squeeze=False)
    fig.suptitle(f"{title} — verdict: {finding.verdict}", fontsize=11)
    return fig, list(axes[0])


def save(fig: Figure, path: Path) -> None:
    """Write the figure as PNG."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def bands(
    ax: Axes,
    data: pd.DataFrame,
    value: Callable[[pd.DataFrame], pd.Series],
    groups: dict[str, pd.Series],
    ylabel: str,
) -> None:
    """Median and 10-90% band over runs, per week, for each named group of rows."""
    for (label, mask), color in zip(groups.items(), COLORS, strict=False):
        rows = data[mask].assign(_value=lambda f: value(f).to_numpy())
        by_week = rows.groupby("date")["_value"]
        dates = pd.to_datetime(by_week.median().index)
        ax.plot(dates, by_week.median().to_numpy(), color=color, label=label)
        ax.fill_between(
            dates,
            by_week.quantile(0.1).to_numpy(),
            by_week.quantile(0.9).to_numpy(),
            color=color,
            alpha=0.2,
        )
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)


def effects(ax: Axes, checks: Sequence[CheckResult], xlabel: str = "effect") -> None:
    """Each check's estimate with its 95% interval; green if it held, red if not."""
    shown = [(c, c.measured) for c in checks if c.measured is not None]
    for i, (check, m) in enumerate(shown):
        color = PASS if check.passed else FAIL
        ax.errorbar(m.value, i, xerr=[[m.value - m.low], [m.high - m.value]], fmt="o", color=color)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(shown)), [c.label for c, _ in shown], fontsize=8)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_xlabel(f"{xlabel} (mean, 95% interval)")
    ax.set_title("effects (green: check held)", fontsize=9)


def mark_week(ax: Axes, data: pd.DataFrame, week: int, text: str) -> None:
    """A dashed vertical line at ``week`` (dates come from the data)."""
    dates = data.drop_duplicates("step").set_index("step")["date"]
    if week in dates.index:
        when = pd.to_datetime(dates[week])
        ax.axvline(when, color="grey", ls="--", lw=0.8)
        ax.annotate(text, (when, 0.97), xycoords=("data", "axes fraction"), fontsize=7, va="top")


def readable(name: str, value: object) -> str:
    """A parameter value in words: '0 -> 0.7 at week 26' rather than schedule syntax."""
    if name not in LEVERS:
        return f"{name} = {value}"
    schedule = as_schedule(name, value)
    weeks, values = schedule.weeks, schedule.values
    if len(set(values)) == 1:
        return f"{name} {values[0]:g}"
    if len(values) == 2 and not schedule.linear:
        return f"{name} {values[0]:g} -> {values[1]:g} at week {weeks[1]:g}"
    if len(values) == 2:
        return f"{name} {values[0]:g} -> {values[1]:g} over weeks {weeks[0]:g}-{weeks[1]:g}"
    return f"{name} " + ", ".join(f"{v:g} (week {w:g})" for w, v in zip(weeks, values, strict=True))


def _move_week(name: str, value: object) -> int | None:
    if name not in LEVERS:
        return None
    later = [w for w in as_schedule(name, value).weeks if w > 0]
    return int(later[0]) if later else None


def arm_label(arm: Arm) -> str:
    """An arm in words: its name and its overrides."""
    overrides = "; ".join(readable(k, v) for k, v in arm.fixed.items())
    return f"{arm.name}: {overrides}" if overrides else arm.name


def contrast_figure(experiment, finding: Finding, path: Path) -> None:
    """Each compared outcome over time per arm, then the effects with intervals."""
    differences = [c for c in experiment.checks if isinstance(c, Difference)]
    outcomes = {o.name: o for o in experiment.outcomes}
    arms = {arm.name: arm for arm in experiment.arms}
    shown = list(dict.fromkeys(d.outcome for d in differences))
    fig, axes = panels(len(shown) + 1, f"{experiment.name} {experiment.title}", finding)
    data = finding.data
    for ax, name in zip(axes, shown, strict=False):
        check = next(d for d in differences if d.outcome == name)
        pair = (arms[check.control], arms[check.treatment])
        groups = {arm_label(arm): data.arm == arm.name for arm in pair}
        bands(ax, data, outcomes[name].series, groups, outcomes[name].label)
        ax.set_title(f"{outcomes[name].label} (median, 10-90% of runs)", fontsize=9)
        weeks = [_move_week(k, v) for k, v in pair[1].fixed.items()]
        for week in filter(None, weeks):
            mark_week(ax, data, week, " move")
    effects(axes[-1], finding.checks, "treatment - control")
    save(fig, path)


def dose_path(ax: Axes, finding: Finding, outcome: str, ylabel: str, lever: str) -> None:
    """One outcome along the dose path, with its tested parts shaded.

    Every run, the mean and its 95% interval at each dose, each check's part (green: it
    held), and the doses where the effect appears and where it turns.
    """
    checks = [c for c in finding.checks if c.path is not None and c.path.outcome == outcome]
    reading = checks[0].path
    assert reading is not None
    whole = reading.whole
    if finding.runs is not None and "dose" in finding.runs:
        runs = finding.runs.dropna(subset=["dose"])
        ax.scatter(runs["dose"], runs[outcome], s=8, color="grey", alpha=0.4, label="runs")
    means = [lv.level for lv in whole.levels]
    ax.errorbar(
        whole.doses,
        [m.value for m in means],
        yerr=np.array([[m.value - m.low, m.high - m.value] for m in means]).T,
        fmt="o-",
        color="tab:blue",
        capsize=3,
        label="mean, 95% interval",
    )
    ax.axhline(means[0].value, color="grey", ls=":", lw=0.8)
    for row, check in enumerate(checks):
        assert check.path is not None
        part = check.path.tests
        ax.axvspan(part.low, part.high, color=PASS if check.passed else FAIL, alpha=0.07)
        role = "" if check.primary else " (secondary)"
        ax.annotate(
            f"{part.name}{role}: {check.path.word()}",
            (0.01, 0.98 - 0.06 * row),
            xycoords="axes fraction",
            fontsize=7,
            va="top",
            color=PASS if check.passed else FAIL,
        )
    if whole.onset is not None:
        ax.axvline(whole.onset, color="tab:orange", ls="--", lw=0.8)
        ax.annotate(" appears", (whole.onset, 0.02), xycoords=("data", "axes fraction"), fontsize=7)
    if whole.reversal is not None:
        ax.axvline(whole.reversal, color="tab:purple", ls="--", lw=0.8)
        ax.annotate(
            " turns", (whole.reversal, 0.08), xycoords=("data", "axes fraction"), fontsize=7
        )
    ax.set_xlabel(lever.replace("_", " "))
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(whole.text(reading.subject), 70), fontsize=8)
    ax.legend(fontsize=7, loc="lower right")


def path_figure(experiment, finding: Finding, path: Path) -> None:
    """Each checked outcome along the whole dose path, with intervals and tested parts."""
    outcomes = {o.name: o for o in experiment.outcomes}
    shown = [r.outcome for r in finding.paths]
    fig, axes = panels(len(shown), f"{experiment.name} {experiment.title}", finding, 6.0)
    for ax, name in zip(axes, shown, strict=True):
        dose_path(ax, finding, name, outcomes[name].label, experiment.doses.lever)
    save(fig, path)
