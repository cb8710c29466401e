"""Claims about single policy moves (C1-C4, C8, C9, C11): one lever against a control.

Every design keeps the baseline preset (the Taliban's actual 2021-23 timeline) and
changes one lever, so a difference between the arms is the effect of that move. Control
and treatment are separate sweeps of one point under the same master seed, so the
engine gives them the same seeds: common random numbers, compared pairwise.
"""

from __future__ import annotations

from typing import Any

from isk_defection.experiments.claims.framework import (
    Arm,
    Difference,
    DoseResponse,
    Outcome,
    SweepExperiment,
    Trend,
)
from isk_defection.experiments.claims.plots import contrast_figure, trend_figure
from isk_defection.model.groups import GROUPS, TALIBAN_FACTIONS
from isk_defection.model.presets import preset

ALI = "[Ali] (S. Ali, The Resurgence of IS-K in Afghanistan; docs/ODD.md References)"
PEREIRA = "[Pereira] (A. Pereira, 1 Dec 2021; docs/ODD.md References)"
MOVE_WEEK = 26  # February 2022: six months into the regime
_SIZE = {g.name: g.size for g in GROUPS}
_BASELINE = preset("baseline")


def weighted(groups: tuple[str, ...], column: str) -> dict[str, float]:
    """Columns ``{group}_{column}`` weighted by the groups' sizes (people, Aug 2021)."""
    return {f"{g}_{column}": float(_SIZE[g]) for g in groups}


def baseline_text(lever: str) -> str:
    """The baseline preset's schedule of ``lever`` as schedule text."""
    return _BASELINE[lever].describe()


def contrast(control: dict[str, Any], treatment: dict[str, Any]) -> tuple[Arm, Arm]:
    """A control arm and a treatment arm, each the baseline with these overrides."""
    return Arm("control", fixed=control), Arm("treatment", fixed=treatment)


HARDLINE = ("kandahar", "haqqani")
TALIBAN = tuple(TALIBAN_FACTIONS)
EFFECT_WINDOW = "two years (104 weeks)"

C1 = SweepExperiment(
    name="C1",
    title="moderation dilemma",
    claim="More moderation (the doctrinal concession: women's rights and girls' education) "
    "brings more hardline defection to IS-K, while the pragmatists' loyalty rises.",
    source=f"{ALI}, 'Taliban's Moderation Dilemma'; {PEREIRA}, on women's rights and "
    "disgruntled extremists",
    design="Sweep: the baseline timeline with womens_rights held at 0, 0.2, ..., 1 from "
    "August 2021 (inclusion on its baseline timeline); outcomes after 104 weeks.",
    expected="Dose-response from women's rights 0 to 1: the hardline (Kandahar + Haqqani) "
    "defection rate is higher at 1 than at 0, and Kabul pragmatists' mean loyalty too; the "
    "dose where each effect appears is reported. Secondary: a monotone trend (Spearman).",
    construction="By construction: women's rights beyond a member's tolerance (1 - hardline) "
    "lower his target loyalty (outbidding) and the aid they win raises the loyalty of "
    "the materially motivated, who are mostly pragmatists; IS-K attacks more when the "
    "Taliban court the West (provocation). Emergent: how many actually defect rather than "
    "desert (thresholds, IS-K's reach and bounded intake, contagion through ties) and "
    "whether the response is smooth or has a tipping level.",
    arms=(
        Arm(
            "womens_rights",
            grid={"womens_rights": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]},
            quick_grid={"womens_rights": [0.0, 0.5, 1.0]},
        ),
    ),
    outcomes=(
        Outcome(
            "hardline_defection",
            "hardline defection rate (Kandahar + Haqqani)",
            weighted(HARDLINE, "defection_rate"),
        ),
        Outcome("kabul_loyalty", "Kabul pragmatists' mean loyalty", {"kabul_loyalty": 1.0}),
    ),
    checks=(
        DoseResponse("hardline defection rises", "hardline_defection", "womens_rights", +1),
        DoseResponse("pragmatists' loyalty rises", "kabul_loyalty", "womens_rights", +1),
        Trend(
            "hardline defection monotone",
            "hardline_defection",
            "womens_rights",
            +1,
            primary=False,
        ),
    ),
    plot=trend_figure,
    seed=101,
)

C2 = SweepExperiment(
    name="C2",
    title="TTP crackdown",
    claim="Acting against the TTP drives TTP fighters to IS-K and opens an intra-Taliban rift: "
    "the pro-TTP lobby's loyalty falls.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma'",
    design=f"Scripted policy against a control: crackdown_ttp 0 (control) vs 0 -> 0.7 at week "
    f"{MOVE_WEEK} (treatment), the rest of the baseline timeline unchanged; {EFFECT_WINDOW}.",
    expected="TTP defection rate higher; Haqqani network (the pro-TTP lobby, TTP affinity "
    "0.8) loyalty lower.",
    construction="By construction: a crackdown lowers the target loyalty of its target "
    "(repression) and of members tied to the TTP (fraternity, weighted by Pashtunwali). "
    "Emergent: whether the lower loyalty turns into defections (threshold, reach) and "
    "cascades via TTP ties into Haqqani and Kandahar ranks.",
    arms=contrast({"crackdown_ttp": 0.0}, {"crackdown_ttp": f"step(0,0.7,{MOVE_WEEK})"}),
    outcomes=(
        Outcome("ttp_defection", "TTP defection rate", {"ttp_defection_rate": 1.0}),
        Outcome("lobby_loyalty", "Haqqani (pro-TTP lobby) mean loyalty", {"haqqani_loyalty": 1}),
        Outcome(
            "taliban_defection",
            "Taliban factions' defection rate",
            weighted(TALIBAN, "defection_rate"),
        ),
    ),
    checks=(
        Difference("TTP defect", "ttp_defection"),
        Difference("pro-TTP lobby loyalty falls", "lobby_loyalty", direction=-1),
        Difference("Taliban factions defect", "taliban_defection", primary=False),
    ),
    plot=contrast_figure,
    seed=102,
)

_UYGHUR_CONTROL = baseline_text("crackdown_uyghur")
_UYGHUR_MOVE = f"step(0.15,0.8,{MOVE_WEEK})"
C3 = SweepExperiment(
    name="C3",
    title="Uyghur control",
    claim="Controlling Uyghur militants (ETIM/TIP) draws them to IS-K.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma' (attempts to control Uyghur "
    "militants 'have drawn these militants closer to the IS-K')",
    design=f"Scripted policy against a control: crackdown_uyghur at its baseline 0.15 vs "
    f"0.15 -> 0.8 at week {MOVE_WEEK}; {EFFECT_WINDOW}.",
    expected="Uyghur defection rate higher under control.",
    construction="By construction: the crackdown lowers Uyghur militants' target loyalty "
    "(repression). Emergent: whether IS-K reaches this small, weakly tied group (about 500 "
    "fighters, 10 agents at the default scale) so that lower loyalty becomes defection.",
    arms=contrast({"crackdown_uyghur": _UYGHUR_CONTROL}, {"crackdown_uyghur": _UYGHUR_MOVE}),
    outcomes=(
        Outcome(
            "uyghur_defection", "Uyghur (ETIM/TIP) defection rate", {"uyghur_defection_rate": 1}
        ),
    ),
    checks=(Difference("Uyghurs defect", "uyghur_defection"),),
    plot=contrast_figure,
    seed=103,
)

_COOPERATION_CONTROL = baseline_text("foreign_cooperation")
_COOPERATION_MOVE = f"step(0.05,0.8,{MOVE_WEEK})"
C4 = SweepExperiment(
    name="C4",
    title="foreign cooperation",
    claim="Counter-terrorism cooperation with foreign powers brings defections through IS-K's "
    "propaganda of 'collaborating with foreign infidels'.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma'",
    design=f"Scripted policy against a control: foreign_cooperation on its baseline timeline "
    f"(0.05 -> 0.15) vs 0.05 -> 0.8 at week {MOVE_WEEK}; {EFFECT_WINDOW}.",
    expected="Taliban factions' defection rate higher; Kandahar core's loyalty lower.",
    construction="By construction: cooperation lowers target loyalty in proportion to "
    "hardline-ness (propaganda). Emergent: the defections that follow, and the offset from "
    "the aid that cooperation brings (resources raise the loyalty of the paid).",
    arms=contrast(
        {"foreign_cooperation": _COOPERATION_CONTROL}, {"foreign_cooperation": _COOPERATION_MOVE}
    ),
    outcomes=(
        Outcome(
            "taliban_defection",
            "Taliban factions' defection rate",
            weighted(TALIBAN, "defection_rate"),
        ),
        Outcome("kandahar_loyalty", "Kandahar core mean loyalty", {"kandahar_loyalty": 1.0}),
    ),
    checks=(
        Difference("Taliban factions defect", "taliban_defection"),
        Difference("Kandahar loyalty falls", "kandahar_loyalty", direction=-1, primary=False),
    ),
    plot=contrast_figure,
    seed=104,
)

_WITCH_HUNT = baseline_text("witch_hunt")
# Power calculation, declared before the run (issue 10, item 7). Primary outcome: former
# officials' defection rate to IS-K at week 104 ("feeds IS-K": the people it sends).
# Smallest effect of interest: 0.03 (150 of 5,000 former officials: "hundreds"). The
# quick run (3 seeds per arm) gave a s.d. of the per-seed difference of about 0.06, so a
# paired two-sided test at alpha 0.05 with power 0.8 needs n = ((1.96 + 0.84) x 0.06 /
# 0.03)^2 = 31.4 -> 32 seeds. IS-K's total strength (s.d. about 700 people) would need
# about 170 seeds to resolve +150 people, which is not affordable: it is reported as a
# secondary, underpowered check.
C8_POWER: dict[str, float] = {
    "effect": 0.03,
    "sd": 0.06,
    "alpha": 0.05,
    "power": 0.8,
    "replicates": 32,
}
C8 = SweepExperiment(
    name="C8",
    title="witch-hunt",
    claim="Persecution of former republic officials feeds IS-K.",
    source=f"{PEREIRA} (former officials 'joining ISIS-K in droves' because of the witch-hunt)",
    design=f"Scripted policy against a control: no witch-hunt (0) vs the baseline witch-hunt "
    f"({_WITCH_HUNT}); {EFFECT_WINDOW}. Powered: 32 seeds per arm, from a power calculation "
    "for a 0.03 rise in the pre-declared outcome (former officials' defection rate), s.d. "
    "0.06, alpha 0.05, power 0.8.",
    expected="Former officials' defection rate higher (primary, pre-declared); IS-K strength "
    "higher (secondary: underpowered, about 170 seeds would be needed for +150 people).",
    construction="By construction: the witch-hunt lowers former officials' target loyalty "
    "(repression). Emergent: whether their defection adds to IS-K's strength net of "
    "counter-IS-K attrition, and any recruitment it seeds among other groups.",
    arms=contrast({"witch_hunt": 0.0}, {"witch_hunt": _WITCH_HUNT}),
    outcomes=(
        Outcome(
            "former_defection", "former officials' defection rate", {"former_defection_rate": 1}
        ),
        Outcome("isk_strength", "IS-K strength (people)", {"isk_strength": 1.0}),
    ),
    checks=(
        Difference("former officials defect", "former_defection"),
        Difference("IS-K stronger", "isk_strength", primary=False),
    ),
    plot=contrast_figure,
    replicates=(int(C8_POWER["replicates"]), 3),
    seed=108,
)

C9 = SweepExperiment(
    name="C9",
    title="prisoner release",
    claim="A prisoner-release shock jumps IS-K's capacity.",
    source=f"{PEREIRA} ('thousands' of ISIS-K fighters among the freed prisoners)",
    design="Scripted event against a control: no release (release_week = -1) vs the "
    "baseline release in week 1 (1,800 IS-K fighters and 2,300 TTP prisoners freed); IS-K "
    "strength four weeks in, and strength and attacks over two years.",
    expected="IS-K strength higher four weeks in; (secondary) still higher after two years, "
    "with more attacks.",
    construction="By construction: the release adds 1,800 people to IS-K (the UN's 2,200 -> "
    "about 4,000). Emergent: whether the jump persists under counter-IS-K attrition and "
    "turns into attacks, legitimacy loss and further defection. Freed IS-K fighters never "
    "become recruiters and tie only to IS-K (model/model.py, _release).",
    arms=contrast({"release_week": -1}, {"release_week": 1}),
    outcomes=(
        Outcome(
            "isk_jump", "IS-K strength (people), week 4", {"isk_strength": 1.0}, "final", (0, 4)
        ),
        Outcome("isk_strength", "IS-K strength (people)", {"isk_strength": 1.0}),
        Outcome("attacks", "IS-K attacks, total over two years", {"attacks": 1.0}, "total"),
    ),
    checks=(
        Difference("IS-K jumps (week 4)", "isk_jump"),
        Difference("IS-K stronger (week 104)", "isk_strength", primary=False),
        Difference("more attacks", "attacks", primary=False),
    ),
    plot=contrast_figure,
    seed=109,
)

_SUDDEN = f"step(0.05,0.6,{MOVE_WEEK})"
_GRADUAL = f"ramp(0.05,0.6,{MOVE_WEEK},{MOVE_WEEK + 52})"
# Below the cliff: C1 finds hardline defection already up at women's rights 0.5, so a
# shift to 0.6 may only test the far side of a threshold; 0.3 tests below it.
_SUDDEN_LOW = f"step(0.05,0.3,{MOVE_WEEK})"
_GRADUAL_LOW = f"ramp(0.05,0.3,{MOVE_WEEK},{MOVE_WEEK + 52})"
C11 = SweepExperiment(
    name="C11",
    title="sudden vs gradual",
    claim="The same total policy shift made at once triggers a defection burst that a slow "
    "ramp does not (Epstein's 'Tocqueville effect').",
    source="MODEL_BRIEF.md C11 (an emergent prediction, after Epstein 2002); the shift is "
    f"women's rights, the doctrinal concession of {ALI}, 'Taliban's Moderation Dilemma'",
    design=f"Women's rights 0.05 until week {MOVE_WEEK}, then either a step to 0.6 (sudden) or a "
    f"linear ramp to 0.6 over 52 weeks (gradual); 130 weeks, the rest of the baseline "
    "timeline unchanged.",
    expected="Peak 4-week defections higher after the sudden move (a burst); reported either "
    "way. Secondary: total defections by week 130, and the same burst test for a smaller "
    "shift (0.05 -> 0.3), below the level where C1 finds hardline defection rising.",
    construction="Nothing here is built in: loyalty drifts toward its target at 10% of the "
    "gap a week under both paths, and both end at the same lever value. A burst, or a "
    "lasting excess, can only come from thresholds being crossed together and from "
    "cascades (contacts in IS-K add pressure; recruits recruit).",
    arms=(
        Arm("gradual", fixed={"womens_rights": _GRADUAL}),
        Arm("sudden", fixed={"womens_rights": _SUDDEN}),
        Arm("gradual_low", fixed={"womens_rights": _GRADUAL_LOW}),
        Arm("sudden_low", fixed={"womens_rights": _SUDDEN_LOW}),
    ),
    outcomes=(
        Outcome(
            "burst",
            "defections per 4 weeks, peak after the move",
            {"defections": 1.0},
            "peak",
            (MOVE_WEEK, 130),
            rolling=4,
        ),
        Outcome("total", "cumulative defections (people)", {"cumulative_defections": 1.0}),
    ),
    checks=(
        Difference(
            "burst (peak 4-week defections)", "burst", control="gradual", treatment="sudden"
        ),
        Difference(
            "lasting excess (total by week 130)",
            "total",
            control="gradual",
            treatment="sudden",
            primary=False,
        ),
        Difference(
            "burst below the cliff (shift to 0.3)",
            "burst",
            control="gradual_low",
            treatment="sudden_low",
            primary=False,
        ),
    ),
    plot=contrast_figure,
    steps=130,
    seed=111,
)

EXPERIMENTS = (C1, C2, C3, C4, C8, C9, C11)
