"""The largest 0.1 step of each lever's dose-response at the defaults (ODD §4).

Usage:  python benchmarks/dose_steps.py OUT.json

Each lever is held from week 0 at 0, 0.1, ..., 1 (the rest of the baseline as it was),
four years (208 weeks), 8,000 agents, the mean of seeds 11 and 12 (the same at every
dose); per lever it writes the largest change of a Taliban faction's lost share (to
IS-K + deserted) over one 0.1 step, the faction and the dose it starts from, and the
same over every group. Model v2's figures in docs/ODD.md §4 come from this script run
against a checkout of commit 4dbbd2c (its folders linked as ``isk_defection`` on
PYTHONPATH, as .ci/typecheck lays them out); model v3's from the current code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from isk_defection.model import LEVERS, DefectionModel
from isk_defection.model.groups import GROUP_NAMES, TALIBAN_FACTIONS

SEEDS, WEEKS, AGENTS = (11, 12), 208, 8_000
DOSES = np.round(np.arange(0.0, 1.01, 0.1), 1)


def lost(seed: int, **levers: float) -> np.ndarray:
    """Every group's lost share after WEEKS weeks."""
    model = DefectionModel(rng=seed, population=AGENTS, collect_agent_data="off", **levers)
    for _ in range(WEEKS):
        model.step()
    row = model.stats
    return np.array(
        [row[f"{g}_defection_rate"] + row[f"{g}_desertion_rate"] for g in GROUP_NAMES], float
    )


def largest_steps(lever: str) -> dict[str, object]:
    """The lever's largest 0.1 step: Taliban factions and any group."""
    curve = np.array(
        [np.mean([lost(s, **{lever: float(d)}) for s in SEEDS], axis=0) for d in DOSES]
    )
    steps = np.abs(np.diff(curve, axis=0))
    taliban = [GROUP_NAMES.index(g) for g in TALIBAN_FACTIONS]
    group = taliban[int(steps[:, taliban].max(axis=0).argmax())]
    return {
        "taliban_largest_step": float(steps[:, taliban].max()),
        "group": GROUP_NAMES[group],
        "from_dose": float(DOSES[int(steps[:, group].argmax())]),
        "any_group_largest_step": float(steps.max()),
        "any_group": GROUP_NAMES[int(steps.max(axis=0).argmax())],
    }


def main() -> None:
    """Every lever; print and write OUT.json."""
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = {}
    for lever in LEVERS:
        results[lever] = largest_steps(lever)
        print(lever, results[lever], flush=True)
    Path(sys.argv[1]).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
