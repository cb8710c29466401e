"""G1, Granovetter (1978): the threshold model of collective behaviour, with the model's rule.

The two exact riot examples run through the full ``DefectionModel`` with everything
but the threshold rule switched off (one crowd of 100, a complete network, loyalty
fixed at 1, so pressure is the share of others who already defected). The normal-
threshold sweep runs the rule itself (``defection.pressure`` / ``crosses_threshold``)
on a large crowd, where sampling noise vanishes and Granovetter's equilibrium
r = N F(r) is what the cascade reaches; a crowd of 100 is shown beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from isk_defection.experiments.claims.framework import CheckResult, ClassicExperiment, Finding
from isk_defection.experiments.claims.plots import panels, save
from isk_defection.model import LEVERS, DefectionModel
from isk_defection.model.defection import crosses_threshold, pressure
from isk_defection.model.groups import GROUPS
from isk_defection.model.parameters import MECHANISMS

CROWD = 100
MEAN = 0.25  # thresholds ~ Normal(0.25 N, sigma N)
CRITICAL = (0.115, 0.13)  # published critical sigma (Granovetter: 12.2 on N = 100)
BELOW, ABOVE = 0.07, 0.95
KEPT = ("cascade", "isk_destination")


def riot(thresholds: np.ndarray) -> pd.DataFrame:
    """Defectors week by week in Granovetter's crowd, run by the full model."""
    sizes = {f"{g.name}_size": 0 for g in GROUPS} | {"kandahar_size": len(thresholds)}
    overrides: dict[str, Any] = dict(
        network="complete",
        isk_size=0,
        release_week=-1,
        kandahar_loyalty=1.0,
        trait_spread=0.0,
        contagion_weight=1.0,
        min_group_agents=0,
        collect_agent_data=False,
        **sizes,
        # every mechanism off but the threshold cascade; IS-K stays a destination, with
        # no reach or intake limit, so whoever crosses his threshold defects
        **dict.fromkeys((m for m in MECHANISMS if m not in KEPT), False),
        **dict.fromkeys(LEVERS, 0.0),  # no policy (inclusion's cost to the core is always on)
    )
    model = DefectionModel(population=len(thresholds), rng=0, **overrides)
    model.population.threshold[:] = thresholds / (len(thresholds) - 1)
    for _ in range(len(thresholds) + 1):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    return frame[["week", "cumulative_defections"]]


# numba compiles the model's scalar rules for whole arrays too: every crowd at once
_pressure = cast("Callable[..., np.ndarray]", pressure)
_crosses = cast("Callable[..., np.ndarray]", crosses_threshold)


def cascade_share(thresholds: np.ndarray) -> np.ndarray:
    """Final share acting, per crowd (rows), by iterating the model's threshold rule.

    Thresholds are fractions of the crowd; the pressure on everyone is the share who act.
    """
    crowds, n = thresholds.shape
    acting = np.zeros(crowds)
    while True:
        push = _pressure(np.ones((crowds, 1)), acting[:, None], 1.0)
        now = _crosses(push, thresholds).mean(axis=1)
        if np.array_equal(now, acting):
            return now
        acting = now


def compute(quick: bool) -> Finding:
    """The two exact examples, then the sweep over sigma (large crowd and crowd of 100)."""
    uniform = np.arange(CROWD, dtype=float)
    perturbed = uniform.copy()
    perturbed[1] = 2.0
    series = {"uniform 0..99": riot(uniform), "threshold 1 -> 2": riot(perturbed)}
    finals = {k: int(v.cumulative_defections.iloc[-1]) for k, v in series.items()}

    rng = np.random.default_rng(1978)
    step = 0.005 if quick else 0.0025
    sigmas = np.round(np.arange(0.08, 0.16 + step / 2, step), 4)
    large, replicates = (20_000, 30) if quick else (200_000, 200)
    rows = []
    for sigma in sigmas:
        big = cascade_share(rng.normal(MEAN, sigma, (1, large)))
        small = cascade_share(rng.normal(MEAN * CROWD, sigma * CROWD, (replicates, CROWD)) / CROWD)
        rows.append(
            {
                "case": "normal",
                "crowd": large,
                "sigma": sigma,
                "replicate": 0,
                "final_share": float(big[0]),
            }
        )
        rows += [
            {
                "case": "normal",
                "crowd": CROWD,
                "sigma": sigma,
                "replicate": r,
                "final_share": float(s),
            }
            for r, s in enumerate(small)
        ]
    data = pd.DataFrame(rows)
    for name, frame in series.items():
        data = pd.concat(
            [data, frame.rename(columns={"cumulative_defections": "defectors"}).assign(case=name)],
            ignore_index=True,
        )
    curve = data[(data.case == "normal") & (data.crowd == large)].set_index("sigma").final_share
    jump = np.flatnonzero(curve.to_numpy() > ABOVE)
    critical = float(curve.index[jump[0]]) if len(jump) else float("nan")
    before = float(curve.iloc[jump[0] - 1]) if len(jump) and jump[0] > 0 else float("nan")
    after = float(curve.iloc[jump[0]]) if len(jump) else float("nan")
    checks = [
        CheckResult(
            "uniform thresholds: all riot",
            "100 of 100",
            None,
            finals["uniform 0..99"] == CROWD,
            "exact equality",
            text=f"{finals['uniform 0..99']} of 100",
        ),
        CheckResult(
            "one threshold 1 -> 2: one riots",
            "1 of 100",
            None,
            finals["threshold 1 -> 2"] == 1,
            "exact equality",
            text=f"{finals['threshold 1 -> 2']} of 100",
        ),
        CheckResult(
            "normal thresholds: critical sigma",
            f"share jumps from < {BELOW} to > {ABOVE} at sigma in [{CRITICAL[0]}, {CRITICAL[1]}]",
            None,
            bool(CRITICAL[0] <= critical <= CRITICAL[1] and before < BELOW and after > ABOVE),
            f"first sigma on a {step} grid with final share > {ABOVE} (crowd of {large:,}); "
            f"the share one grid step below must be < {BELOW}",
            text=f"sigma* = {critical:.4g}: share {before:.3f} -> {after:.3f}",
        ),
    ]
    small = data[(data.case == "normal") & (data.crowd == CROWD)].groupby("sigma").final_share
    crossing = small.mean()[small.mean() > 0.5]
    notes = [
        f"In a crowd of {CROWD} with freshly drawn thresholds the jump is smeared by sampling: "
        f"the mean final share first exceeds 0.5 at sigma = "
        f"{crossing.index[0] if len(crossing) else float('nan'):.4g} "
        f"({replicates} crowds per sigma). Granovetter's 12.2 is the equilibrium of the "
        "expected distribution, which the large crowd reproduces."
    ]
    return Finding(checks, data, None, notes, {"large": large, "series": series})


def plot(experiment: ClassicExperiment, finding: Finding, path: Path) -> None:
    """The final share against sigma, and the two exact riots week by week."""
    data, large = finding.data, finding.extra["large"]
    fig, (left, right) = panels(2, f"{experiment.name} {experiment.title}", finding)
    normal = data[data.case == "normal"]
    big = normal[normal.crowd == large]
    small = normal[normal.crowd == CROWD].groupby("sigma").final_share
    left.axvspan(*CRITICAL, color="gold", alpha=0.3, label="published critical sigma")
    left.plot(big.sigma, big.final_share, "o-", ms=3, label=f"crowd of {large:,}")
    left.plot(
        small.mean().index, small.mean(), color="tab:orange", label=f"crowd of {CROWD} (mean)"
    )
    left.fill_between(
        small.mean().index,
        small.quantile(0.25),
        small.quantile(0.75),
        color="tab:orange",
        alpha=0.2,
        label="crowd of 100 (IQR)",
    )
    for level in (BELOW, ABOVE):
        left.axhline(level, color="grey", ls=":", lw=0.8)
    left.set_xlabel("sigma (threshold s.d. / N); mean threshold 0.25 N")
    left.set_ylabel("final share defecting")
    left.legend(fontsize=8)
    for name, frame in finding.extra["series"].items():
        right.step(frame.week, frame.cumulative_defections, where="post", label=name)
    right.set_xlabel("week")
    right.set_ylabel("defectors (of 100)")
    right.set_title("Granovetter's riot in the full model", fontsize=9)
    right.legend(fontsize=8)
    save(fig, path)


G1 = ClassicExperiment(
    name="G1",
    title="Granovetter threshold cascade",
    claim="Thresholds 0..99 on 100 agents make all 100 defect, changing threshold 1 to 2 "
    "stops the cascade at 1; with Normal(0.25 N, sigma N) thresholds the final share "
    "jumps from < 0.07 to > 0.95 at a critical sigma of about 0.12.",
    source="Granovetter, M. (1978), Threshold models of collective behavior, AJS 83(6) "
    "(MODEL_BRIEF.md, G1)",
    design="The full model with every mechanism but the cascade off, one crowd of 100, a "
    "complete network and loyalty fixed at 1 (exact cases); the model's threshold rule on "
    "a large crowd over a grid of sigma (jump).",
    expected="100 and 1 exactly; critical sigma in [0.115, 0.13].",
    construction="A validation of the defection rule: with loyalty fixed at 1 the model's "
    "rule is Granovetter's, so agreement is expected by construction if the rule and the "
    "model's step are implemented correctly; the cascade itself is emergent.",
    compute=compute,
    plot=plot,
)
