"""C6, the rivalry is the cause: the same policy moves with IS-K removed as a destination.

Each move is run against its control twice, with IS-K taking defectors and without
(``isk_destination`` on/off: a 2 x 2 ablation, seeds shared). Without IS-K the
discontented can still desert (go home, abroad or to the armed opposition), so a move
may still cost the regime members. A move's cost is the extra people out of their
groups by week 104 (joined IS-K or deserted and not returned), treatment minus control;
the share of it that the rivalry accounts for is 1 - cost(off) / cost(on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from isk_defection.experiments.claims.plots import FAIL, PASS, panels, save
from isk_defection.experiments.claims.policy import ALI, MOVE_WEEK, baseline_text
from isk_defection.experiments.stats import bootstrap_difference, bootstrap_ratio

EQUIVALENCE = 0.25  # "no longer costs": the ablated cost is below a quarter of the full one
MOVES = {  # move: (lever, control, treatment)
    "womens_rights": (
        "womens_rights",
        baseline_text("womens_rights"),
        f"step(0.05,0.6,{MOVE_WEEK})",
    ),
    "crackdown": ("crackdown_ttp", 0.0, f"step(0,0.7,{MOVE_WEEK})"),
}
SWITCH = {"on": True, "off": False}  # IS-K as a destination (isk_destination)


def arms() -> tuple[Arm, ...]:
    """Per move, IS-K destination on/off x control/move; every arm one point, same seeds."""
    return tuple(
        Arm(f"{move}-{switch}-{role}", fixed={"isk_destination": on, lever: value})
        for move, (lever, control, treatment) in MOVES.items()
        for switch, on in SWITCH.items()
        for role, value in (("control", control), ("move", treatment))
    )


def _cost(runs: pd.DataFrame, move: str, switch: str) -> tuple[np.ndarray, np.ndarray, bool]:
    return align(
        runs[runs.arm == f"{move}-{switch}-move"],
        runs[runs.arm == f"{move}-{switch}-control"],
        "lost",
    )


def analyse(experiment: SweepExperiment, data: pd.DataFrame, runs: pd.DataFrame) -> Finding:
    """Per move: its cost with and without IS-K, and the share the rivalry explains."""
    checks: list[CheckResult] = []
    table: list[dict[str, Any]] = []
    for move in MOVES:
        on_t, on_c, paired_on = _cost(runs, move, "on")
        off_t, off_c, paired_off = _cost(runs, move, "off")
        on = bootstrap_difference(on_t, on_c, paired_on)
        off = bootstrap_difference(off_t, off_c, paired_off)
        share = bootstrap_ratio((off_t, off_c), (on_t, on_c))
        table.append({"move": move, "on": on, "off": off, "share": share})
        checks.append(
            CheckResult(
                f"{move}: costs members with the rivalry",
                "cost > 0 with IS-K as a destination",
                on,
                on.excludes_zero(+1),
                f"{'paired' if paired_on else 'unpaired'} bootstrap 95% interval of "
                "move - control excludes 0",
                primary=False,
            )
        )
        checks.append(
            CheckResult(
                f"{move}: no cost without IS-K",
                f"cost without IS-K as a destination < {EQUIVALENCE:.0%} of the cost with it",
                off,
                bool(on.value > 0 and off.high < EQUIVALENCE * on.value),
                f"equivalence: upper bound of the 95% interval of the ablated cost below "
                f"{EQUIVALENCE:.0%} of the full cost",
            )
        )
    notes = [
        "**Share of each move's cost (people out of their groups by week 104) that the "
        "rivalry accounts for** (1 - cost without IS-K as a destination / cost with it; "
        "95% interval):\n\n"
        + "\n".join(
            f"- {r['move']}: cost {r['on'].text()} people with IS-K, {r['off'].text()} "
            f"without (desertion only); share explained {r['share'].text(2)}"
            for r in table
        ),
        "Switching `isk_destination` off removes IS-K as a place to go: nobody joins it "
        "after week 0, and members whose pressure crosses their threshold can only desert "
        "(and may return). IS-K still exists, attacks and erodes legitimacy. What remains "
        "of a move's cost is the part that does not need the rival: desertion.",
    ]
    return Finding(checks, data, runs, notes, {"table": table})


def plot(experiment: SweepExperiment, finding: Finding, path: Path) -> None:
    """Each move's defection cost with recruitment on and off, with 95% intervals."""
    table = finding.extra["table"]
    fig, (ax,) = panels(1, f"{experiment.name} {experiment.title}", finding, width=8)
    y = np.arange(len(table))
    for offset, key, label, color in (
        (0.15, "on", "IS-K a destination", "tab:blue"),
        (-0.15, "off", "IS-K removed (desertion only)", "tab:grey"),
    ):
        values = [r[key] for r in table]
        ax.errorbar(
            [v.value for v in values],
            y + offset,
            xerr=np.array([[v.value - v.low, v.high - v.value] for v in values]).T,
            fmt="o",
            color=color,
            label=label,
            capsize=3,
        )
    for i, r in enumerate(table):
        held = r["off"].high < EQUIVALENCE * r["on"].value
        ax.annotate(
            f"rivalry explains {r['share'].value:.0%} [{r['share'].low:.0%}, "
            f"{r['share'].high:.0%}]",
            (r["on"].value, i + 0.3),
            fontsize=8,
            color=PASS if held else FAIL,
        )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [f"{r['move']} move" for r in table])
    ax.set_ylim(-0.6, len(table) - 0.2)
    ax.set_xlabel("extra people out of their groups by week 104 (mean, 95% interval)")
    ax.legend(fontsize=8)
    save(fig, path)


C6 = SweepExperiment(
    name="C6",
    title="the rivalry is the cause",
    claim="Without IS-K as a destination, moderation and crackdowns no longer cost the "
    "regime members.",
    source=f"{ALI}, thesis (Abstract; Conclusion: 'IS-K-Taliban rivalry is a major factor "
    "which is preventing the Taliban from moderating'), as an ablation",
    design=f"Ablation, 2 x 2 per move: IS-K as a destination on/off (isk_destination) x "
    f"control/move. Moves: women's rights baseline vs 0.05 -> 0.6 at week {MOVE_WEEK}; "
    f"crackdown_ttp 0 vs 0 -> 0.7 at week {MOVE_WEEK}; 104 weeks. Cost = extra people out "
    "of their groups (joined IS-K, or deserted and not returned).",
    expected="Each move's cost falls to (near) zero without IS-K; the share of it the "
    "rivalry explains is reported either way.",
    construction="By construction: isk_destination=False stops all joining of IS-K, so "
    "defections to it vanish; the discontented may still desert. Emergent: how much of a "
    "move's cost was the rivalry's rather than desertion's, which the ablation measures.",
    arms=arms(),
    outcomes=(
        Outcome(
            "lost",
            "people out of their groups (joined IS-K or deserted)",
            {"cumulative_defections": 1.0, "deserters": 1.0},
            add=True,
        ),
    ),
    series=("cumulative_defections", "deserters"),
    analyse=analyse,
    plot=plot,
    seed=106,
)
