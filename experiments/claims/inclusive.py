"""C7, Ali's recommendation: an inclusive government and IS-K in the long run.

The inclusive preset (inclusion 0.8, women's rights 0.5, counter-IS-K 0.8, some foreign
cooperation, no witch-hunt) is swept over its inclusion level and over the share of counter-IS-K
capacity that aid funds (``aid_dependence``), and read at four horizons. IS-K is
*contained* at a horizon when its strength is below its level just after the August
2021 release (week 4), with the 95% interval of the change wholly below zero; it
*fails* when the interval is wholly above zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import SymLogNorm

from isk_defection.experiments.claims.framework import (
    Arm,
    CheckResult,
    Finding,
    Outcome,
    SweepExperiment,
    align,
)
from isk_defection.experiments.claims.plots import panels
from isk_defection.experiments.claims.policy import ALI
from isk_defection.experiments.stats import bootstrap_difference, bootstrap_mean
from isk_defection.model.parameters import PARAMETERS

HORIZONS = (52, 104, 156, 208)
INCLUSION = (0.2, 0.5, 0.8, 1.0)
AID_DEPENDENCE = (0.0, 0.25, 0.5, 0.75, 1.0)
PRESET_POINT = (0.8, PARAMETERS["aid_dependence"].default)  # the inclusive preset's own
QUICK_AID = [0.0, PRESET_POINT[1]]


def _state(estimate) -> str:
    if estimate.high < 0:
        return "contains"
    return "fails" if estimate.low > 0 else "unclear"


def analyse(experiment: SweepExperiment, data: pd.DataFrame, runs: pd.DataFrame) -> Finding:
    """Containment per (inclusion, aid_dependence, horizon); the preset's point decides."""
    runs = runs.assign(aid_dependence=runs["aid_dependence"].astype(float))
    inclusive = runs[runs.arm == "inclusive"].assign(inclusion=lambda f: f.inclusion.astype(float))
    hardline = runs[runs.arm == "hardline"]
    cells = []
    for (m, a), group in inclusive.groupby(["inclusion", "aid_dependence"]):
        for h in HORIZONS:
            change = bootstrap_mean(group[f"change_{h}"])
            cells.append(
                {
                    "inclusion": m,
                    "aid_dependence": a,
                    "horizon": h,
                    "change": change.value,
                    "low": change.low,
                    "high": change.high,
                    "state": _state(change),
                }
            )
    region = pd.DataFrame(cells)
    m0, a0 = PRESET_POINT
    own = inclusive[(inclusive.inclusion == m0) & (inclusive.aid_dependence == a0)]
    long_run = bootstrap_mean(own[f"change_{HORIZONS[-1]}"])
    versus = bootstrap_difference(
        *align(own, hardline[hardline.aid_dependence == a0], f"strength_{HORIZONS[-1]}")
    )
    checks = [
        CheckResult(
            "contains IS-K (preset point, 4 years)",
            "IS-K strength at week 208 below its post-release level",
            long_run,
            long_run.high < 0,
            "bootstrap 95% interval of the change (week 4 -> 208, people) wholly below 0",
        ),
        CheckResult(
            "better than the hardline stance",
            "IS-K weaker at week 208 than under the baseline (hardline) timeline",
            versus,
            versus.excludes_zero(-1),
            "bootstrap 95% interval of inclusive - hardline strength excludes 0",
        ),
    ]
    last = region[region.horizon == HORIZONS[-1]]
    counts = last.state.value_counts().to_dict()
    notes = [
        f"**Region at {HORIZONS[-1]} weeks** ({len(last)} points of inclusion x "
        f"aid_dependence): contains {counts.get('contains', 0)}, fails "
        f"{counts.get('fails', 0)}, unclear {counts.get('unclear', 0)}.",
        "**Containment by horizon** (points where IS-K is below its post-release level):\n\n"
        + "\n".join(f"- {h} weeks: " + _region_text(region[region.horizon == h]) for h in HORIZONS),
    ]
    extra = {"region": region, "hardline": hardline}
    return Finding(checks, data, runs, notes, extra)


def _region_text(cells: pd.DataFrame) -> str:
    held = cells[cells.state == "contains"]
    if held.empty:
        return "nowhere"
    parts = [
        f"inclusion {m:g}: aid_dependence "
        + ", ".join(f"{a:g}" for a in sorted(group.aid_dependence))
        for m, group in held.groupby("inclusion")
    ]
    return "; ".join(parts)


def plot(experiment: SweepExperiment, finding: Finding, path: Path) -> None:
    """Maps of IS-K's change since the release at each horizon; hatched where it grows."""
    region = finding.extra["region"]
    fig, axes = panels(len(HORIZONS), f"{experiment.name} {experiment.title}", finding, 4.6)
    limit = np.nanmax(np.abs(region.change)) or 1.0
    norm = SymLogNorm(linthresh=500, vmin=-limit, vmax=limit)  # small changes stay visible
    for ax, h in zip(axes, HORIZONS, strict=True):
        cells = region[region.horizon == h]
        grid = cells.pivot(index="aid_dependence", columns="inclusion", values="change")
        state = cells.pivot(index="aid_dependence", columns="inclusion", values="state")
        image = ax.imshow(grid.to_numpy(), origin="lower", cmap="RdBu_r", norm=norm)
        for (i, j), s in np.ndenumerate(state.to_numpy()):
            ax.text(j, i, {"contains": "C", "fails": "F"}.get(s, "?"), ha="center", va="center")
        ax.set_xticks(range(len(grid.columns)), [f"{v:g}" for v in grid.columns])
        ax.set_yticks(range(len(grid.index)), [f"{v:g}" for v in grid.index])
        ax.set_xlabel("inclusion (inclusive preset)")
        if ax is axes[0]:
            ax.set_ylabel("aid_dependence of counter-IS-K capacity")
        ax.set_title(
            f"{h} weeks: IS-K change since week 4\nC contains, F fails, ? unclear", fontsize=8
        )
    fig.colorbar(image, ax=axes, label="IS-K strength change (people)", shrink=0.8)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the colorbar spans all panels


C7 = SweepExperiment(
    name="C7",
    title="inclusive government",
    claim="An inclusive government (power sharing, some women's rights, aid-funded "
    "counter-IS-K capacity) contains IS-K in the long run.",
    source=f"{ALI}, 'Conclusion' ('An inclusive national government will also enable the "
    "Taliban to tackle the IS-K')",
    design="Region map: the inclusive preset (women's rights 0.5) with inclusion 0.2, 0.5, "
    "0.8, 1 x aid_dependence 0, 0.25, ..., 1, read at 52, 104, 156 and 208 weeks; the "
    "baseline (hardline) timeline at each aid_dependence as the comparison. Inclusion's "
    "benefits are modelled (inclusion_benefits on: legitimacy, recognition, counter-IS-K "
    "capacity, and the standing of the groups it includes).",
    expected="At the preset's own point (inclusion 0.8, aid_dependence default) IS-K at four "
    "years is below its post-release level and below the hardline timeline's.",
    construction="By construction: inclusion raises legitimacy, aid and counter-IS-K "
    "capacity and wins the groups it includes, while costing the Kandahar core its "
    "monopoly; women's rights win aid and offend hardliners; aid_dependence makes "
    "counter-IS-K effort grow with resources. Emergent: which wins, at which horizon (aid "
    "arrives slowly, defections come first), and where the boundary of containment lies.",
    arms=(
        Arm(
            "inclusive",
            preset="inclusive",
            grid={"inclusion": list(INCLUSION), "aid_dependence": list(AID_DEPENDENCE)},
            quick_grid={"inclusion": [0.2, PRESET_POINT[0]], "aid_dependence": QUICK_AID},
        ),
        Arm(
            "hardline",
            grid={"aid_dependence": list(AID_DEPENDENCE)},
            quick_grid={"aid_dependence": QUICK_AID},
        ),
    ),
    outcomes=tuple(
        Outcome(
            f"change_{h}", f"IS-K change, week 4 -> {h}", {"isk_strength": 1.0}, "change", (4, h)
        )
        for h in HORIZONS
    )
    + tuple(
        Outcome(f"strength_{h}", f"IS-K strength, week {h}", {"isk_strength": 1.0}, "final", (0, h))
        for h in HORIZONS
    ),
    analyse=analyse,
    plot=plot,
    steps=HORIZONS[-1],
    record_every=4,
    replicates=(8, 2),
    seed=107,
)
