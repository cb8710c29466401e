"""The adaptive leadership rule: weigh the aid a policy brings against defection risk.

Each week the leadership nudges each adaptive lever by at most ``adaptive_step``,
one lever at a time, to maximise  aid(levers) - risk_aversion * risk(levers),  where
risk is the share of loyal members whose pressure would reach their threshold if
loyalty settled at its target under those levers (a myopic, one-step look-ahead).
"""

from __future__ import annotations

from collections.abc import Callable

from isk_defection.model.parameters import Params
from isk_defection.model.regime import target_resources

SCORE_TIE = 1e-12  # scores closer than this are equal (rounding), ODD §7.11

ADAPTIVE_LEVERS: tuple[str, ...] = (
    "womens_rights",
    "inclusion",
    "crackdown_ttp",
    "crackdown_uyghur",
    "crackdown_aq",
    "foreign_cooperation",
)


def choose_levers(
    levers: dict[str, float], risk: Callable[[dict[str, float]], float], p: Params
) -> dict[str, float]:
    """Levers after one week of coordinate-wise improvement (ties keep the current value)."""
    chosen = dict(levers)
    step = p.adaptive_step
    for name in ADAPTIVE_LEVERS:
        candidates = [chosen[name], max(chosen[name] - step, 0.0), min(chosen[name] + step, 1.0)]
        scores = [
            target_resources(chosen | {name: v}, p) - p.risk_aversion * risk(chosen | {name: v})
            for v in candidates
        ]
        chosen[name] = candidates[first_best(scores)]
    return chosen


def first_best(scores: list[float]) -> int:
    """Index of the first score within rounding (1e-12) of the best.

    Scores equal in exact arithmetic can differ in the last bit with the order of the sums;
    without the tolerance, which candidate wins would depend on how the sums are written.
    """
    best = max(scores)
    return next(i for i, s in enumerate(scores) if s >= best - SCORE_TIE)
