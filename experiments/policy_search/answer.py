"""The report's answer to "when does moderation pay?", written from the numbers.

Nothing here is a hand-written verdict: every sentence is chosen and filled from the
dose-response, the stress test's lever-by-lever shares (with Wilson intervals), the
constraint-sensitivity table and scenario discovery. The lead paragraph comes first in
report.md (and alone in answer.md, for REPORT.md to quote); the sections after it give
the tables the paragraph draws on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.experiments.ensemble import Ensemble
from isk_defection.experiments.policy_search.dose_response import BAND, best_dose
from isk_defection.experiments.policy_search.moderation import WORDS, LeverAnswer
from isk_defection.experiments.policy_search.spec import Constraint, OptimizeSpec

PLAIN = {  # measures in a policy reader's words
    "isk_strength": "IS-K's strength after four years",
    "isk_peak": "IS-K's peak strength",
    "attacks": "IS-K's attacks",
    "resources": "international standing (aid, recognition)",
    "legitimacy": "the regime's legitimacy",
    "taliban_strength": "the Taliban's loyal strength",
    "regime_losses_isk": "the regime's losses to IS-K",
    "regime_losses_desertion": "desertion",
    "regime_losses": "the regime's losses",
}
SHORT = {"inclusion": "inclusion", "womens_rights": "women's rights"}
POINTS = ("share", "[0,1]")
ORDER = (
    "inclusion",
    "womens_rights",
    "moderation",
)  # Ali's recommendation first  # units whose changes read as percentage points


@dataclass(frozen=True)
class Findings:
    """Everything the answer draws on (tables may be empty when a part did not run)."""

    dose: pd.DataFrame | None
    answers: dict[str, LeverAnswer]
    other: np.ndarray  # per fresh scenario: a path using no moderation lever beats the actual
    sensitivity: pd.DataFrame | None
    regret: pd.DataFrame | None
    stress: pd.DataFrame
    scenarios_out: int
    seeded: list[str] = field(default_factory=list)  # the moderating paths of generation 1
    extra: dict[str, Any] = field(default_factory=dict)


def words(name: str) -> str:
    """A measure or lever in plain words."""
    return PLAIN.get(name, WORDS.get(name, name.replace("_", " ")))


def pct(value: float) -> str:
    """``37%``."""
    return "n/a" if not np.isfinite(value) else f"{100 * value:.0f}%"


def change(value: float, unit: str, relative: float | None = None) -> str:
    """A signed change: points for shares, percent of the actual policy's value otherwise."""
    if not np.isfinite(value):
        return "n/a"
    if unit in POINTS:
        return f"{100 * value:+.1f} points"
    if relative is not None and np.isfinite(relative):
        return f"{100 * relative:+.0f}%"
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    return f"{value:+.3g}"


def level_words(constraint: Constraint, bound: float | None) -> str:
    """A constraint level in words: ``no limit``, ``at most +2 points over the actual policy``."""
    if bound is None:
        return "no limit"
    side = "at most" if constraint.upper else "at least"
    unit = constraint.measure.unit
    amount = f"{100 * bound:+.0f} points" if unit in POINTS else f"{bound:+g}"
    if constraint.relative:
        return f"{side} {amount} over the actual policy"
    plain = f"{100 * bound:.0f}%" if unit in POINTS else f"{bound:g}"
    return f"{side} {plain}"


def how_often(answer: LeverAnswer) -> str:
    """``rarely (3 of 200 fresh scenarios, 2%; 95% interval 1%-4%)``."""
    k, n = int(answer.pays.sum()), answer.scenarios
    low, high = answer.interval
    numbers = f"{k} of {n} fresh scenarios, {pct(k / n)}; 95% interval {pct(low)}-{pct(high)}"
    share = k / n if n else float("nan")
    if n == 0:
        return "in no scenario (none was tested)"
    if k == 0:
        return f"in none of the {n} fresh scenarios tested (95% interval 0%-{pct(high)})"
    if k == n:
        return f"in every one of the {n} fresh scenarios (95% interval {pct(low)}-{pct(high)})"
    if share < 0.25:
        return f"rarely ({numbers})"
    if share < 0.5:
        return f"in a minority of scenarios ({numbers})"
    if share < 0.75:
        return f"in a majority of scenarios ({numbers})"
    return f"in most scenarios ({numbers})"


def lead(spec: OptimizeSpec, ensemble: Ensemble, found: Findings) -> str:
    """One paragraph: the answer first, then what it rests on, in a policy reader's words."""
    sentences = []
    answers = found.answers
    if answers:
        answers = dict(sorted(answers.items(), key=lambda item: _rank(item[0])))
        parts = [f"{words(lever)} pays {how_often(a)}" for lever, a in answers.items()]
        sentences.append(
            "In this model, judged against the actual 2021-23 policy on every objective at once "
            "(a path pays in a scenario when it is no worse on any and better on one), "
            + _join(parts)
            + "."
        )
        for lever, a in answers.items():
            if a.paths == 0:
                sentences.append(
                    f"The search found no path that keeps {words(lever)} at "
                    f"{a.level:g} or more on average, so that share tests nothing."
                )
        if len(answers) > 1 and _together(spec):
            sentences.append(
                "The two levers were searched together (one lever, `moderation`), so the "
                "two answers come from the same paths."
            )
    else:
        sentences.append("No moderation lever was searched, so the search does not answer.")
    sentences += _dose_sentences(spec, found.dose)
    sentences += _constraint_sentences(spec, found.sensitivity)
    if ensemble.is_defaults:
        sentences.append(
            "All of this is at the default parameters only (no posterior given): seeds vary, "
            "parameters do not, so none of it is robust to what we do not know, and where in "
            "the parameter space moderation pays cannot be told."
        )
    else:
        sentences += _where_sentences(answers)
    return " ".join(sentences)


def _rank(lever: str) -> int:
    return ORDER.index(lever) if lever in ORDER else len(ORDER)


def _together(spec: OptimizeSpec) -> bool:
    return any(len(lever.targets) > 1 for lever in spec.levers if lever.name == "moderation")


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return "; ".join(parts[:-1]) + "; and " + parts[-1]


def _dose_sentences(spec: OptimizeSpec, table: pd.DataFrame | None) -> list[str]:
    """Each lever alone at its best moderating dose: how often it beats the actual policy."""
    if table is None or table.empty or not spec.objectives:
        return []
    first = spec.objectives[0].measure
    second = _cost_measure(spec)
    parts = []
    for lever in sorted(dict.fromkeys(table["lever"]), key=_rank):
        best = best_dose(table, lever, first.name, spec.moderation_level)
        if best is None:
            continue
        rows = table[(table["lever"] == lever) & (table["dose"] == best["dose"]) & ~table["actual"]]
        effects = []
        for measure in [first, *([second] if second is not None else [])]:
            row = rows[rows["measure"] == measure.name]
            if not row.empty:
                r = row.iloc[0]
                effects.append(
                    f"{words(measure.name)} by {effect_text(r.effect_median, r, measure.unit)} "
                    f"({pct(BAND[0])}-{pct(BAND[1])} of scenarios: "
                    f"{effect_text(r.effect_low, r, measure.unit)} to "
                    f"{effect_text(r.effect_high, r, measure.unit)})"
                )
        parts.append(
            f"{words(lever)} at {best['dose']:g} beats it in {pct(best['beats_share'])} of the "
            f"{int(best['scenarios'])} scenarios, changing {' and '.join(effects)}"
        )
    if not parts:
        return []
    return [
        "Each lever alone, held over the whole horizon at its best dose of at least "
        f"{spec.moderation_level:g} with everything else as in the actual policy (before any "
        "search, medians of the paired change): " + _join(parts) + "."
    ]


def effect_text(value: float, row: Any, unit: str) -> str:
    """A paired change: points for shares, else percent of the actual policy's median."""
    scale = abs(row.actual_median)
    return change(value, unit, value / scale if scale > 0 else None)


def _cost_measure(spec: OptimizeSpec) -> Any:
    """The measure a reader weighs against IS-K: the sensitivity constraint's, else objective 2."""
    for c in spec.constraints:
        if c.name == spec.sensitivity_constraint:
            return c.measure
    return spec.objectives[1].measure if len(spec.objectives) > 1 else None


def _constraint_sentences(spec: OptimizeSpec, table: pd.DataFrame | None) -> list[str]:
    if table is None or table.empty or spec.sensitivity_constraint is None:
        return []
    constraint = next(c for c in spec.constraints if c.name == spec.sensitivity_constraint)
    targets = [t for t in spec.moderation_targets if f"{t}_on_front" in table.columns]
    parts = []
    for row in table.itertuples():
        bound = None if row.level == "none" else float(row.bound)
        each = ", ".join(
            f"{SHORT.get(t, t)} {getattr(row, f'{t}_on_front')}" for t in sorted(targets, key=_rank)
        )
        parts.append(
            f"{level_words(constraint, bound)}: {row.moderating_on_front} of the front's "
            f"{row.front} paths moderate" + (f" (using {each})" if len(targets) > 1 else "")
        )
    return [
        f"On the limit to {words(constraint.measure.name)} (fronts filtered from the one "
        "search's archive, not new searches): " + "; ".join(parts) + "."
    ]


def _where_sentences(answers: dict[str, LeverAnswer]) -> list[str]:
    out = []
    for lever, a in answers.items():
        if not a.answerable:
            continue
        if a.box:
            limits = " and ".join(
                f"`{b['parameter']}` is between {_num(b['low'])} and {_num(b['high'])}"
                for b in a.box
            )
            out.append(
                f"Across the posterior, {words(lever)} pays mostly when {limits} (this region "
                f"holds {pct(a.box_stats['coverage'])} of the scenarios where it pays, and it "
                f"pays in {pct(a.box_stats['density'])} of the scenarios in it)."
            )
    reasons = {a.reason for a in answers.values() if not a.answerable and a.reason}
    if reasons:
        out.append(
            f"Where in the parameter space it pays cannot be told yet: {'; '.join(sorted(reasons))}."
        )
    return out


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def conditions(spec: OptimizeSpec, ensemble: Ensemble, found: Findings) -> list[str]:
    """The bullets after the lead paragraph: definitions, scenarios, targets, caveats."""
    lines = [
        f"- **Pays** means: beats the actual 2021-23 policy (preset `{spec.references[0]}`) on "
        "every objective's measure in the same scenario (common random numbers). A path "
        f"**uses** a lever when the lever averages at least {spec.moderation_level:g} over "
        "the periods. The paths asked are the stress-tested ones: the Pareto paths and, per "
        f"lever, up to {spec.moderation_stress_paths} of the archive's best paths that use it."
        if spec.references
        else "- No reference policy: nothing is compared with the actual policy.",
        f"- **Scenarios:** {spec.scenarios} in sample per candidate ({spec.draws} draws x "
        f"{spec.seeds} seeds) and {found.scenarios_out} fresh ones out of sample; "
        f"{ensemble.label}.",
    ]
    if found.seeded:
        lines.append(
            f"- **Moderation searched, not only sampled:** generation 1 held "
            f"{len(found.seeded)} structured moderating paths ({_seeded_summary(spec)}), the "
            "other levers at the actual policy."
        )
    if not found.stress.empty:
        met = found.stress["target_met"].astype(bool)
        names = ", ".join(found.stress.loc[~met, "objective"])
        verdict = (
            "met for every objective"
            if met.all()
            else f"met for {int(met.sum())} of {len(met)} objectives (not for {names})"
        )
        lines.append(
            f"- **Enough scenarios?** Target: the median in-sample to out-of-sample shift of "
            f"each objective's robust statistic is at most {pct(spec.target_shift)}: {verdict}."
        )
    counts = {lever: a.paths for lever, a in found.answers.items()}
    if counts:
        lines.append(
            "- **Paths that use each lever in the stress test:** "
            + ", ".join(
                f"{words(lever)} {count} ({found.answers[lever].feasible_paths} meeting the "
                "constraints)"
                for lever, count in counts.items()
            )
            + f"; a path using neither beats the actual policy in {int(found.other.sum())} of "
            f"{len(found.other)} fresh scenarios."
        )
    return lines


def _seeded_summary(spec: OptimizeSpec) -> str:
    levers = sorted({" + ".join(p.levers) for p in spec.moderation_paths})
    levels = sorted({p.level for p in spec.moderation_paths})
    timings = list(dict.fromkeys(p.timing.replace("_", " ") for p in spec.moderation_paths))
    return f"{', '.join(levers)} at {', '.join(f'{v:g}' for v in levels)}; {', '.join(timings)}"
