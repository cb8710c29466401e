"""Claims about single policy moves (C1-C4, C8, C9, C11): one lever against a control.

Every design keeps the baseline preset (the Taliban's actual 2021-23 timeline) and
changes one lever, so a difference between the arms is the effect of that move. Arms
are separate sweeps of one point under the same master seed, so the engine gives them
the same seeds: common random numbers, compared pairwise.

The dose-response claims (C1-C4, C8) run their lever along a whole dose path, one arm
per dose (``Doses``), and each check declares which part of the path it tests and what
it expects there (``PathPart``), before the runs; the report gives the effect at every
dose, the dose where it appears and the dose where it reverses (``experiments.claims.
paths``). C9 (an event) and C11 (two ways to make one move) stay contrasts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from isk_defection.experiments.claims.framework import (
    Arm,
    Difference,
    DosePath,
    Doses,
    Outcome,
    SweepExperiment,
)
from isk_defection.experiments.claims.paths import Expect, PathPart
from isk_defection.experiments.claims.plots import contrast_figure, path_figure
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

# The smallest changes of interest along a dose path: a move between two doses smaller
# than these is flat, however narrow its interval (a defection rate: one percentage point
# of the group; a mean loyalty: 0.01 on its 0-1 scale; IS-K: 100 people).
RATE_STEP = 0.01
LOYALTY_STEP = 0.01
PEOPLE_STEP = 100.0
TENTHS = tuple(round(0.1 * i, 1) for i in range(11))  # 0, 0.1, ..., 1
QUARTERS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the quick path
PATH_WORDS = (
    "one arm per dose under one master seed, so every dose runs the same seeds and doses "
    "are compared pairwise"
)


def moved_to(start: float) -> Callable[[float], Any]:
    """Doses as a move at week MOVE_WEEK from ``start`` to the dose (``start`` itself: no move)."""

    def schedule(dose: float) -> Any:
        return start if abs(dose - start) < 1e-9 else f"step({start:g},{dose:g},{MOVE_WEEK})"

    return schedule


def whole(low: float = 0.0, high: float = 1.0) -> PathPart:
    """The whole path, a monotone move expected: what 'more X brings more Y' claims."""
    return PathPart(low, high, Expect.MONOTONE, "the whole path")


# C1's tested parts, declared before the runs (issue 19). The sources claim a monotone
# response ("more moderation brings more ..."), so the primary checks test the whole path
# for a monotone rise. The low-dose part (0 to 0.5) was named after the v2 quick run
# showed the pragmatists' loyalty peaking at 0.5, so its checks are secondary: reported,
# never deciding.
C1_LOW = PathPart(0.0, 0.5, Expect.MONOTONE, "the low-dose part")
C1 = SweepExperiment(
    name="C1",
    title="moderation dilemma",
    claim="More moderation (the doctrinal concession: women's rights and girls' education) "
    "brings more hardline defection to IS-K, while the pragmatists' loyalty rises.",
    source=f"{ALI}, 'Taliban's Moderation Dilemma'; {PEREIRA}, on women's rights and "
    "disgruntled extremists",
    design="Dose path: the baseline timeline with womens_rights held at 0, 0.1, ..., 1 from "
    "August 2021 (quick: 0, 0.25, ..., 1; inclusion on its baseline timeline), "
    f"{PATH_WORDS}; outcomes after 104 weeks.",
    expected="Along the whole path, 0 to 1: the hardline (Kandahar + Haqqani) defection rate "
    "rises monotonically, and so does Kabul pragmatists' mean loyalty (primary). Reported at "
    "every dose with its interval, with the dose where each effect appears and where it "
    "reverses. Secondary: the same rises over the low-dose part, 0 to 0.5.",
    construction="By construction: women's rights beyond a member's tolerance (1 - hardline) "
    "lower his target loyalty (outbidding) and the aid they win raises the loyalty of "
    "the materially motivated, who are mostly pragmatists; IS-K attacks more when the "
    "Taliban court the West (provocation). Emergent: how many actually defect rather than "
    "desert (thresholds, IS-K's reach and bounded intake, contagion through ties), whether "
    "the response is smooth or has a tipping level, and which of aid and outbidding wins "
    "at each dose (where the response turns).",
    doses=Doses("womens_rights", TENTHS, QUARTERS),
    outcomes=(
        Outcome(
            "hardline_defection",
            "hardline defection rate (Kandahar + Haqqani)",
            weighted(HARDLINE, "defection_rate"),
        ),
        Outcome("kabul_loyalty", "Kabul pragmatists' mean loyalty", {"kabul_loyalty": 1.0}),
    ),
    checks=(
        DosePath(
            "hardline defection rises",
            "hardline_defection",
            +1,
            whole(),
            RATE_STEP,
            "hardline defection",
        ),
        DosePath(
            "pragmatists' loyalty rises",
            "kabul_loyalty",
            +1,
            whole(),
            LOYALTY_STEP,
            "pragmatists' loyalty",
        ),
        DosePath(
            "hardline defection rises at low doses",
            "hardline_defection",
            +1,
            C1_LOW,
            RATE_STEP,
            "hardline defection",
            primary=False,
        ),
        DosePath(
            "pragmatists' loyalty rises at low doses",
            "kabul_loyalty",
            +1,
            C1_LOW,
            LOYALTY_STEP,
            "pragmatists' loyalty",
            primary=False,
        ),
    ),
    plot=path_figure,
    seed=101,
)

C2 = SweepExperiment(
    name="C2",
    title="TTP crackdown",
    claim="Acting against the TTP drives TTP fighters to IS-K and opens an intra-Taliban rift: "
    "the pro-TTP lobby's loyalty falls.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma'",
    design=f"Dose path: crackdown_ttp 0 until week {MOVE_WEEK}, then the dose 0, 0.1, ..., 1 "
    f"(quick: 0, 0.25, ..., 1; dose 0 is the baseline's no crackdown), the rest of the baseline "
    f"timeline unchanged, {PATH_WORDS}; {EFFECT_WINDOW}.",
    expected="Along the whole path, 0 to 1: the TTP defection rate rises monotonically and "
    "the Haqqani network's (the pro-TTP lobby, TTP affinity 0.8) loyalty falls "
    "monotonically. Secondary: the Taliban factions' defection rate rises.",
    construction="By construction: a crackdown lowers the target loyalty of its target "
    "(repression) and of members tied to the TTP (fraternity, weighted by Pashtunwali). "
    "Emergent: whether the lower loyalty turns into defections (threshold, reach) and "
    "cascades via TTP ties into Haqqani and Kandahar ranks, and at which dose.",
    doses=Doses("crackdown_ttp", TENTHS, QUARTERS, moved_to(0.0)),
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
        DosePath("TTP defect", "ttp_defection", +1, whole(), RATE_STEP, "TTP defection"),
        DosePath(
            "pro-TTP lobby loyalty falls",
            "lobby_loyalty",
            -1,
            whole(),
            LOYALTY_STEP,
            "the pro-TTP lobby's loyalty",
        ),
        DosePath(
            "Taliban factions defect",
            "taliban_defection",
            +1,
            whole(),
            RATE_STEP,
            "Taliban factions' defection",
            primary=False,
        ),
    ),
    plot=path_figure,
    seed=102,
)

_UYGHUR = float(baseline_text("crackdown_uyghur"))  # the baseline holds it constant
C3 = SweepExperiment(
    name="C3",
    title="Uyghur control",
    claim="Controlling Uyghur militants (ETIM/TIP) draws them to IS-K.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma' (attempts to control Uyghur "
    "militants 'have drawn these militants closer to the IS-K')",
    design=f"Dose path: crackdown_uyghur at its baseline {_UYGHUR:g} until week {MOVE_WEEK}, "
    f"then the dose {_UYGHUR:g} (the baseline: no move), 0.2, 0.3, ..., 1 (quick: "
    f"{_UYGHUR:g}, 0.3, 0.5, 0.75, 1), {PATH_WORDS}; {EFFECT_WINDOW}.",
    expected=f"Along the whole path, {_UYGHUR:g} to 1: the Uyghur defection rate rises "
    "monotonically with control.",
    construction="By construction: the crackdown lowers Uyghur militants' target loyalty "
    "(repression). Emergent: whether IS-K reaches this small, weakly tied group (about 500 "
    "fighters, 10 agents at the default scale) so that lower loyalty becomes defection.",
    doses=Doses(
        "crackdown_uyghur", (_UYGHUR, *TENTHS[2:]), (_UYGHUR, 0.3, *QUARTERS[2:]), moved_to(_UYGHUR)
    ),
    outcomes=(
        Outcome(
            "uyghur_defection", "Uyghur (ETIM/TIP) defection rate", {"uyghur_defection_rate": 1}
        ),
    ),
    checks=(
        DosePath(
            "Uyghurs defect",
            "uyghur_defection",
            +1,
            whole(_UYGHUR),
            RATE_STEP,
            "Uyghur defection",
        ),
    ),
    plot=path_figure,
    seed=103,
)

_COOPERATION = 0.05  # the baseline's level until week 52 (piecewise(0:0.05,52:0.15))
C4 = SweepExperiment(
    name="C4",
    title="foreign cooperation",
    claim="Counter-terrorism cooperation with foreign powers brings defections through IS-K's "
    "propaganda of 'collaborating with foreign infidels'.",
    source=f"{ALI}, 'Taliban's Counter-Terrorism Dilemma'",
    design=f"Dose path: foreign_cooperation at the baseline's {_COOPERATION:g} until week "
    f"{MOVE_WEEK}, then the dose {_COOPERATION:g} (no move; the baseline's rise to 0.15 at "
    f"week 52 is left out so that every dose is one move), 0.1, ..., 1 (quick: "
    f"{_COOPERATION:g}, 0.25, ..., 1), {PATH_WORDS}; {EFFECT_WINDOW}.",
    expected=f"Along the whole path, {_COOPERATION:g} to 1: the Taliban factions' defection "
    "rate rises monotonically (primary); Kandahar core's loyalty falls (secondary).",
    construction="By construction: cooperation lowers target loyalty in proportion to "
    "hardline-ness (propaganda). Emergent: the defections that follow, and the offset from "
    "the aid that cooperation brings (resources raise the loyalty of the paid), which may "
    "win at some doses and lose at others.",
    doses=Doses(
        "foreign_cooperation",
        (_COOPERATION, *TENTHS[1:]),
        (_COOPERATION, *QUARTERS[1:]),
        moved_to(_COOPERATION),
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
        DosePath(
            "Taliban factions defect",
            "taliban_defection",
            +1,
            whole(_COOPERATION),
            RATE_STEP,
            "Taliban factions' defection",
        ),
        DosePath(
            "Kandahar loyalty falls",
            "kandahar_loyalty",
            -1,
            whole(_COOPERATION),
            LOYALTY_STEP,
            "Kandahar's loyalty",
            primary=False,
        ),
    ),
    plot=path_figure,
    seed=104,
)

_WITCH_HUNT = baseline_text("witch_hunt")


def witch_hunt(dose: float) -> Any:
    """A witch-hunt of intensity ``dose`` with the baseline's shape: halved at week 26."""
    return 0.0 if dose == 0 else f"piecewise(0:{dose:g},{MOVE_WEEK}:{dose / 2:g})"


# Power calculation, declared before the run (issue 10, item 7). Primary outcome: former
# officials' defection rate to IS-K at week 104 ("feeds IS-K": the people it sends).
# Smallest effect of interest: 0.03 (150 of 5,000 former officials: "hundreds"). The
# quick run (3 seeds per arm) gave a s.d. of the per-seed difference of about 0.06, so a
# paired two-sided test at alpha 0.05 with power 0.8 needs n = ((1.96 + 0.84) x 0.06 /
# 0.03)^2 = 31.4 -> 32 seeds. IS-K's total strength (s.d. about 700 people) would need
# about 170 seeds to resolve +150 people, which is not affordable: it is reported as a
# secondary, underpowered check. Along the dose path (issue 19) every dose gets the 32
# seeds, and each dose is compared with its neighbours as well as with dose 0.
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
    design="Dose path: a witch-hunt of intensity 0, 0.1, ..., 1 from August 2021, halved at "
    f"week {MOVE_WEEK} as in the baseline (dose 0.6 is the baseline's {_WITCH_HUNT}; quick: "
    f"0, 0.3, 0.6, 0.8, 1), {PATH_WORDS}; {EFFECT_WINDOW}. Powered: 32 seeds per dose, from a "
    "power calculation for a 0.03 rise in the pre-declared outcome (former officials' "
    "defection rate), s.d. 0.06, alpha 0.05, power 0.8.",
    expected="Along the whole path, 0 to 1: former officials' defection rate rises "
    "monotonically (primary, pre-declared); IS-K strength rises (secondary: underpowered, "
    "about 170 seeds would be needed for +150 people).",
    construction="By construction: the witch-hunt lowers former officials' target loyalty "
    "(repression). Emergent: whether their defection adds to IS-K's strength net of "
    "counter-IS-K attrition, and any recruitment it seeds among other groups.",
    doses=Doses("witch_hunt", TENTHS, (0.0, 0.3, 0.6, 0.8, 1.0), witch_hunt),
    outcomes=(
        Outcome(
            "former_defection", "former officials' defection rate", {"former_defection_rate": 1}
        ),
        Outcome("isk_strength", "IS-K strength (people)", {"isk_strength": 1.0}),
    ),
    checks=(
        DosePath(
            "former officials defect",
            "former_defection",
            +1,
            whole(),
            RATE_STEP,
            "former officials' defection",
        ),
        DosePath(
            "IS-K stronger",
            "isk_strength",
            +1,
            whole(),
            PEOPLE_STEP,
            "IS-K's strength",
            primary=False,
        ),
    ),
    plot=path_figure,
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
