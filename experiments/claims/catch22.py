"""C5, the catch-22: a map of moderation x crackdown, standing against IS-K growth.

Standing is the regime's resources (aid, revenue: what moderation and crackdowns win
from donors and neighbours); IS-K growth is its strength two years on minus its strength
just after the August 2021 release. The claim holds if every point that wins clearly
more standing than the hardline stance (no moderation, no crackdown) also grows IS-K
more: no point achieves both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from isk_defection.experiments.claims.framework import (
    Arm,
    CheckResult,
    Finding,
    Outcome,
    SweepExperiment,
    align,
)
from isk_defection.experiments.claims.plots import panels, save
from isk_defection.experiments.claims.policy import PEREIRA
from isk_defection.experiments.stats import bootstrap_difference, spearman

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
QUICK_LEVELS = (0.0, 0.5, 1.0)
STANDING_MARGIN = 0.1  # "clearly more standing": a third of the August 2021 level (0.3)
CRACKDOWNS = ("crackdown_ttp", "crackdown_uyghur", "crackdown_aq")


ACTUAL = "actual"  # the Taliban's actual timeline (the baseline preset as it is)


def _arm_name(level: float) -> str:
    return f"crackdown_{level:.2f}"


def analyse(experiment: SweepExperiment, data: pd.DataFrame, runs: pd.DataFrame) -> Finding:
    """Point means, the hardline reference, points achieving both, and the trade-off."""
    crackdown = {_arm_name(c): c for c in LEVELS}
    runs = runs.assign(
        crackdown=runs["arm"].map(crackdown), moderation=runs["moderation"].astype(float)
    )
    actual = runs[runs.arm == ACTUAL]
    runs = runs[runs.arm != ACTUAL]
    reference = runs[(runs.moderation == 0) & (runs.crackdown == 0)]
    points = []
    for (m, c), group in runs.groupby(["moderation", "crackdown"]):
        more = bootstrap_difference(*align(group, reference, "standing"))
        growth = bootstrap_difference(*align(group, reference, "isk_growth"))
        gain = bootstrap_difference(*align(group, actual, "standing"))
        worse = bootstrap_difference(*align(group, actual, "isk_growth"))
        dominates = (gain.value >= 0 and worse.value <= 0) and (gain.low > 0 or worse.high < 0)
        points.append(
            {
                "moderation": m,
                "crackdown": c,
                "standing": group.standing.mean(),
                "isk_growth": group.isk_growth.mean(),
                "standing_gain": more.value,
                "growth_excess": growth.value,
                "growth_excess_low": growth.low,
                "growth_excess_high": growth.high,
                "both": more.value >= STANDING_MARGIN and growth.low <= 0,
                "vs_actual_standing": gain.value,
                "vs_actual_growth": worse.value,
                "dominates": dominates,
            }
        )
    table = pd.DataFrame(points)
    winners = table[table.both]
    rho, p = spearman(table.standing, table.isk_growth)
    dominating = table[table.dominates]
    checks = [
        CheckResult(
            "no lever setting dominates the actual policy",
            "no setting at least as good as the actual policy on standing and on IS-K growth "
            "and better on one",
            None,
            dominating.empty,
            "per setting, bootstrap 95% intervals of standing and IS-K growth minus the "
            "actual policy's (baseline timeline): dominates when both point differences are "
            "no worse and one interval excludes 0 in the better direction",
            text=f"{len(dominating)} of {len(table)} settings dominate the actual policy",
        ),
        CheckResult(
            "no point achieves both (vs the hardline stance)",
            f"no point with standing >= hardline + {STANDING_MARGIN} and IS-K growth not "
            "above the hardline stance's",
            None,
            winners.empty,
            "per point, paired bootstrap 95% interval of IS-K growth minus the hardline "
            "stance's: 'not above' when its lower bound <= 0",
            text=f"{len(winners)} of {len(table)} points achieve both",
            primary=False,
        ),
        CheckResult(
            "trade-off frontier",
            "Spearman rho(standing, IS-K growth) > 0 across points",
            None,
            bool(rho > 0 and p < 0.05),
            f"Spearman rank correlation over the {len(table)} point means, p < 0.05",
            primary=False,
            text=f"rho = {rho:.2f} (p = {p:.2g})",
        ),
    ]
    notes = [
        "**Point means** (standing = mean resources in weeks 52-104; IS-K growth = "
        "strength at week 104 minus week 4, people):\n\n" + _point_table(table),
    ]
    if not winners.empty:
        best = winners.sort_values("standing", ascending=False).iloc[0]
        notes.append(
            f"Points achieving both exist, e.g. moderation {best.moderation:g}, crackdown "
            f"{best.crackdown:g}: standing {best.standing:.2f} (hardline "
            f"{reference.standing.mean():.2f}), IS-K growth {best.isk_growth:,.0f} (hardline "
            f"{reference.isk_growth.mean():,.0f}). In the model, aid funds counter-IS-K "
            "capacity (aid_dependence), which can offset the defections moderation causes."
        )
    return Finding(checks, data, runs, notes, {"points": table, "reference": reference})


def _point_table(table: pd.DataFrame) -> str:
    lines = [
        "| moderation | crackdown | standing | IS-K growth | growth vs hardline (95% CI) | both |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.moderation:g} | {r.crackdown:g} | {r.standing:.3f} | {r.isk_growth:,.0f} | "
            f"{r.growth_excess:,.0f} [{r.growth_excess_low:,.0f}, {r.growth_excess_high:,.0f}] "
            f"| {'yes' if r.both else ''} |"
        )
    return "\n".join(lines)


def plot(experiment: SweepExperiment, finding: Finding, path: Path) -> None:
    """The trade-off in the plane, and both outcomes as maps over the lever space."""
    table = finding.extra["points"]
    reference = finding.extra["reference"]
    fig, (plane, left, right) = panels(3, f"{experiment.name} {experiment.title}", finding)
    ref_standing, ref_growth = reference.standing.mean(), reference.isk_growth.mean()
    plane.axvspan(ref_standing + STANDING_MARGIN, table.standing.max() + 0.02, alpha=0.08)
    plane.axhline(ref_growth, color="grey", lw=0.8, ls="--")
    dots = plane.scatter(
        table.standing,
        table.isk_growth,
        c=table.moderation,
        s=30 + 120 * table.crackdown,
        cmap="viridis",
        edgecolor=np.where(table.both, "red", "black"),
    )
    plane.scatter([ref_standing], [ref_growth], marker="*", s=200, color="black")
    plane.annotate("hardline stance", (ref_standing, ref_growth), fontsize=8)
    plane.set_xlabel("international standing: mean resources, weeks 52-104")
    plane.set_ylabel("IS-K growth, week 4 -> 104 (people)")
    plane.set_title(
        "shaded: clearly more standing; below dashed: no more IS-K growth\n"
        "(colour: moderation; size: crackdown; red edge: achieves both)",
        fontsize=8,
    )
    fig.colorbar(dots, ax=plane, label="moderation")
    for ax, column, label in (
        (left, "standing", "standing (resources)"),
        (right, "isk_growth", "IS-K growth (people)"),
    ):
        grid = table.pivot(index="crackdown", columns="moderation", values=column)
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_xticks(range(len(grid.columns)), [f"{v:g}" for v in grid.columns])
        ax.set_yticks(range(len(grid.index)), [f"{v:g}" for v in grid.index])
        ax.set_xlabel("moderation")
        ax.set_ylabel("crackdown on TTP, Uyghurs, Al-Qaeda/IMU")
        ax.set_title(label, fontsize=9)
        fig.colorbar(image, ax=ax)
    save(fig, path)


C5 = SweepExperiment(
    name="C5",
    title="catch-22",
    claim="No policy in the lever space achieves both high international standing (aid) and "
    "low IS-K growth: there is a trade-off frontier.",
    source=f"{PEREIRA} ('any stance it takes will inevitably lead to a confrontation: either "
    "with the international community or the Islamic State')",
    design="Map: moderation 0, 0.25, ..., 1 x crackdown intensity 0, 0.25, ..., 1 (the same "
    "value on the TTP, Uyghur and Al-Qaeda/IMU levers), each held from August 2021 on the "
    "baseline timeline; 104 weeks. The hardline stance (0, 0) is the reference.",
    expected="A frontier: no lever setting is at least as good as the actual policy (the "
    "baseline timeline) on standing and on IS-K growth and better on one. Secondary: no "
    "point with clearly more standing (+0.1) than the hardline stance without more IS-K "
    "growth; standing and IS-K growth positively rank-correlated across the map.",
    construction="By construction: moderation and crackdowns raise resources (aid terms) and "
    "lower the loyalty of hardliners and allies. Emergent: the net effect on IS-K, since "
    "resources also raise the loyalty of the paid and fund counter-IS-K capacity "
    "(aid_dependence), while defectors feed recruitment cascades and attacks erode "
    "legitimacy. Whether a frontier exists is therefore not built in.",
    arms=tuple(
        Arm(
            _arm_name(c),
            fixed=dict.fromkeys(CRACKDOWNS, c),
            grid={"moderation": list(LEVELS)},
            quick_grid={"moderation": list(QUICK_LEVELS)},
        )
        for c in LEVELS
    )
    + (Arm(ACTUAL),),
    outcomes=(
        Outcome("standing", "mean resources, weeks 52-104", {"resources": 1.0}, "mean", (52, 104)),
        Outcome(
            "isk_growth", "IS-K growth, week 4 -> 104", {"isk_strength": 1.0}, "change", (4, 104)
        ),
    ),
    analyse=analyse,
    plot=plot,
    replicates=(8, 2),
    seed=105,
)
