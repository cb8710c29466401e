"""Every claim's verdict across the posterior, not at one point.

For each claim, ``draws`` parameter sets are resampled by weight from the posterior
ensemble (``experiments.ensemble``: equally weighted after resampling). Each arm of the
claim runs once per draw (one seed per draw, the same in every arm: common random
numbers), over the claim's coarse (--quick) grid. The claim's own analysis decides its
checks *within each draw*; with one paired seed per draw a difference "holds" when it
has the claimed sign, a trend when Spearman's rho has the claimed sign with p < 0.05.
So the share of draws in which all primary checks hold is the posterior predictive
probability that the claim holds, model noise included.

Verdicts: REPRODUCED when the check holds in >= 90% of the posterior, NOT REPRODUCED
when in <= 10%, otherwise DEPENDS — and then scenario discovery (PRIM, Friedman &
Fisher 1999) finds the box of parameter space where it fails, stated in words. The
share carries a Wilson 95% Monte Carlo interval over the draws; the effect (the first
primary check's measure) its posterior median and 90% credible interval.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.claims import EXPERIMENTS
from isk_defection.experiments.claims.framework import (
    ClassicExperiment,
    Context,
    DosePath,
    Finding,
    SweepExperiment,
    Trend,
    Verdict,
)
from isk_defection.experiments.claims.report import path_record
from isk_defection.experiments.ensemble import draw, load_ensemble, sidecar_path
from isk_defection.experiments.stats import prim_box, spearman, wilson
from isk_defection.experiments.sweep import load_spec

HOLDS, FAILS = 0.9, 0.1
DEFAULT_DRAWS = 100
POSTERIOR_REPORT = "posterior.md"
POSTERIOR_RESULT = "posterior.json"

# What follows by construction and what is emergent, in a few words per claim (each
# claim's report has the full text).
NATURE = {
    "C1": "direction of loyalty built in; defection counts emergent",
    "C2": "loyalty falls by construction; defections and the rift emergent",
    "C3": "loyalty falls by construction; whether IS-K reaches them emergent",
    "C4": "loyalty falls by construction; net defections (aid offsets) emergent",
    "C5": "aid terms built in; the net IS-K trade-off emergent",
    "C6": "no joining without IS-K by construction; the share of the cost emergent",
    "C7": "benefits and costs of inclusion built in; which wins emergent",
    "C8": "loyalty falls by construction; IS-K's net gain emergent",
    "C9": "the jump is an input (+1,800); its persistence emergent",
    "C10": "fitted: the patterns constrain, they are not evidence of validity",
    "C11": "nothing built in: a burst can only come from thresholds and contagion",
    "G1": "submodel validation (no posterior parameters)",
    "G2": "submodel validation (no posterior parameters)",
    "G3": "submodel validation (no posterior parameters)",
}


@dataclass
class PosteriorFinding:
    """A claim across the posterior: per-draw outcomes and the summary verdict."""

    name: str
    draws: pd.DataFrame  # one row per draw: parameters, holds, each check, effect
    share: float
    low: float
    high: float
    effect_label: str
    effect: tuple[float, float, float]  # median, 5%, 95%
    verdict: str
    region: str
    seconds: float
    note: str = ""
    paths: list[dict[str, Any]] = field(default_factory=list)  # dose paths across the draws


def decide(share: float) -> str:
    """REPRODUCED, NOT REPRODUCED or DEPENDS from the posterior share."""
    if share >= HOLDS:
        return "REPRODUCED"
    if share <= FAILS:
        return "NOT REPRODUCED"
    return "DEPENDS"


def prim(x: pd.DataFrame, fails: np.ndarray) -> str:
    """Scenario discovery (EMA Workbench's PRIM): the box where the claim fails, in words.

    The box is the densest on PRIM's peeling trajectory that still covers half the
    failures; its limits that moved are stated, with its coverage (share of all failures
    inside) and density (share of the draws inside that fail).
    """
    fails = np.asarray(fails, bool)
    if fails.sum() == 0 or len(fails) < 10:
        return "too few failures for scenario discovery"
    restricted, numbers = prim_box(x, fails)
    if not restricted:
        return "no parameter region separates failures (PRIM found no box)"
    limits = []
    for r in restricted:
        lower = r["low"] > r["range"][0] + 1e-12
        upper = r["high"] < r["range"][1] - 1e-12
        bounds = [f"> {r['low']:.3g}"] * lower + [f"< {r['high']:.3g}"] * upper
        limits.append(f"`{r['parameter']}` " + " and ".join(bounds))
    return (
        "fails when "
        + ", ".join(limits)
        + f" (PRIM box: {numbers['coverage']:.0%} of the failures, "
        + f"{numbers['density']:.0%} of the draws inside fail)"
    )


def _arms_points(
    experiment: SweepExperiment, draws: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per arm, the explicit design: draw-major, the arm's coarse grid within each draw."""
    import itertools

    designs = {}
    for arm in experiment.arms_for(True):
        grid = arm.grid_for(True)
        combos = [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]
        combos = combos or [{}]
        designs[arm.name] = [d | c for d in draws for c in combos]
    return designs


def _run_arms(
    experiment: SweepExperiment, ctx: Context, draws: list[dict[str, Any]]
) -> pd.DataFrame:
    """Run every arm once per draw (same seeds across arms) and tag each run with its draw."""
    frames = []
    for arm in experiment.arms_for(True):
        points = _arms_points(experiment, draws)[arm.name]
        per_draw = len(points) // len(draws)
        spec = experiment.spec(arm, quick=True)
        spec["sweep"]["replicates"] = 1
        spec["sweep"]["seed"] = experiment.seed
        spec["sweep"]["name"] += "-posterior"
        spec["grid"] = {}
        spec.pop("sample", None)
        loaded = load_spec(spec).with_points(points)
        frame = ctx.sweep(f"posterior-{arm.name}", loaded)
        frames.append(frame.assign(arm=arm.name, draw=frame["point"] // per_draw))
    return pd.concat(frames, ignore_index=True)


def _effect(finding: Finding, runs: pd.DataFrame, experiment: SweepExperiment) -> float:
    """The first primary check's measure in this draw (rho for a trend)."""
    primary = [c for c in finding.checks if c.primary]
    if not primary:
        return float("nan")
    first = primary[0]
    if first.measured is not None:
        return float(first.measured.value)
    for check in experiment.checks:
        if isinstance(check, Trend) and check.label == first.label:
            rho, _ = spearman(runs[check.factor].astype(float), runs[check.outcome])
            return float(rho)
    return float("nan")


def paths_over_draws(
    experiment: SweepExperiment, runs: pd.DataFrame, table: pd.DataFrame
) -> list[dict[str, Any]]:
    """Each dose-path outcome across the draws: its shape, and every dose's effect.

    The shape is read on the draws as replicates (each dose's mean over draws, paired by
    draw, with bootstrap intervals over draws); each dose's effect against the first dose
    also gets its posterior median and 90% credible interval over the draws, and the share
    of draws whose own path (one seed) has each shape is given beside it.
    """
    found: dict[str, dict[str, Any]] = {}
    for check in experiment.checks:
        if not isinstance(check, DosePath) or check.outcome in found:
            continue
        reading = check.read(runs, key="draw")
        by_draw = runs.pivot_table(index="draw", columns="dose", values=check.outcome)
        effects = by_draw.sub(by_draw[by_draw.columns.min()], axis=0)
        quantiles = effects.quantile([0.5, 0.05, 0.95])
        shapes = table.get(f"shape: {check.outcome}", pd.Series(dtype=str))
        record = path_record(reading)
        for dose in record["doses"]:  # the draws' own spread, beside the mean's interval
            effect = quantiles[dose["dose"]]
            dose |= {
                "effect_median": float(effect[0.5]),
                "effect_5": float(effect[0.05]),
                "effect_95": float(effect[0.95]),
            }
        record["shares"] = {
            str(k): float(v) for k, v in shapes.value_counts(normalize=True).items()
        }
        found[check.outcome] = record
    return list(found.values())


def _path_lines(paths: list[dict[str, Any]]) -> list[str]:
    """posterior.md's dose-path section."""
    lines: list[str] = []
    for p in paths:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in p["shares"].items())
        lines += [
            f"**Dose path across the draws: {p['text']}.** Shape of the draws' mean path: "
            f"{p['kind']} (bootstrap over draws, paired by draw); each draw's own path "
            f"(one seed): {shares or 'n/a'}.",
            "",
            "| dose | mean over draws (95% interval) | effect vs first dose: mean (95% "
            "interval) | effect: posterior median [90% CrI] |",
            "| --- | --- | --- | --- |",
            *[
                f"| {d['dose']:g} | {d['mean']:.3g} [{d['low']:.3g}, {d['high']:.3g}] | "
                f"{d['effect']:.3g} [{d['effect_low']:.3g}, {d['effect_high']:.3g}] | "
                f"{d['effect_median']:.3g} [{d['effect_5']:.3g}, {d['effect_95']:.3g}] |"
                for d in p["doses"]
            ],
            "",
        ]
    return lines


def _decide_draw(experiment: SweepExperiment, data: pd.DataFrame, runs: pd.DataFrame) -> Finding:
    if experiment.analyse is not None:
        return experiment.analyse(experiment, data, runs)
    return Finding([c.evaluate(runs) for c in experiment.checks], data, runs)


def _calibration_draws(experiment, ctx: Context, draws: list[dict[str, Any]]) -> pd.DataFrame:
    """C10 across the posterior: the baseline at each draw, every pattern checked."""
    spec = {
        "sweep": {
            "name": "C10-posterior",
            "preset": "baseline",
            "steps": pat.STEPS,
            "replicates": 1,
            "seed": experiment.seed,
            "outputs": pat.COLUMNS,
        },
        "fixed": {"collect_agent_data": "off"},
        "grid": {},
    }
    frame = ctx.sweep("posterior-baseline", load_spec(spec).with_points(draws))
    rows = []
    for point, run in frame.groupby("point"):
        values = pat.pattern_values(pd.DataFrame([pat.measure(run)])).iloc[0]
        inside = {p.name: bool(p.low <= values[p.name] <= p.high) for p in pat.CONSTRAINING}
        rows.append(
            {"draw": int(point), "holds": all(inside.values()), "effect": sum(inside.values())}
            | {f"check: {k}": v for k, v in inside.items()}
        )
    return pd.DataFrame(rows)


def run_claim(
    experiment: SweepExperiment | ClassicExperiment,
    ctx: Context,
    draws: list[dict[str, Any]],
) -> PosteriorFinding:
    """One claim across the posterior draws."""
    started = time.perf_counter()
    params = pd.DataFrame(draws)
    paths: list[dict[str, Any]] = []
    if isinstance(experiment, ClassicExperiment):
        # no posterior parameter enters a submodel run alone: its full-mode verdict stands
        # for every draw
        finding = experiment.run(dataclasses.replace(ctx, quick=False))
        holds = finding.verdict == Verdict.REPRODUCED
        table = params.assign(holds=holds, effect=float("nan"))
        label = "(submodel in full mode: no posterior parameters enter it)"
    elif experiment.name == "C10":
        table = params.join(_calibration_draws(experiment, ctx, draws).drop(columns="draw"))
        label = "constraining bands met (of 12)"
    else:
        data = _run_arms(experiment, ctx, draws)
        runs = experiment.measure(data.drop(columns=["draw"]))
        runs["draw"] = data.groupby(["arm", "run"], sort=False)["draw"].first().to_numpy()
        records = []
        for d, group in runs.groupby("draw"):
            chunk = data[data["draw"] == d]
            finding = _decide_draw(experiment, chunk, group.drop(columns="draw"))
            record: dict[str, Any] = {
                "draw": int(d),
                "holds": finding.verdict == Verdict.REPRODUCED,
            }
            record |= {f"check: {c.label}": c.passed for c in finding.checks if c.primary}
            record |= {f"shape: {r.outcome}": r.whole.kind for r in finding.paths}
            record["effect"] = _effect(finding, group, experiment)
            records.append(record)
        table = params.join(pd.DataFrame(records).set_index("draw"), how="left")
        primary = [c for c in table.columns if c.startswith("check: ")]
        label = primary[0].removeprefix("check: ") if primary else "effect"
        paths = paths_over_draws(experiment, runs, table)
    n, held = len(table), int(table["holds"].sum())
    share = held / n
    low, high = wilson(held, n)
    effects = table["effect"].to_numpy(float)
    finite = effects[np.isfinite(effects)]
    median, low5, high95 = (
        (float(v) for v in np.quantile(finite, [0.5, 0.05, 0.95]))
        if len(finite)
        else (float("nan"),) * 3
    )
    effect = (median, low5, high95)
    verdict = decide(share)
    region = ""
    varying = [c for c in params.columns if params[c].nunique() > 1]
    if verdict == "DEPENDS" and varying:
        region = prim(params[varying], ~table["holds"].to_numpy(bool))
    return PosteriorFinding(
        experiment.name,
        table,
        share,
        low,
        high,
        label,
        effect,
        verdict,
        region,
        time.perf_counter() - started,
        paths=paths,
    )


def write_claim(finding: PosteriorFinding, folder: Path, source: str) -> None:
    """posterior.json and posterior.md (and the per-draw table) in the claim's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    finding.draws.to_csv(folder / "posterior_draws.csv", index=False)
    checks = {
        c.removeprefix("check: "): float(finding.draws[c].mean())
        for c in finding.draws.columns
        if c.startswith("check: ")
    }
    result = {
        "name": finding.name,
        "verdict": finding.verdict,
        "share": finding.share,
        "share_interval": [finding.low, finding.high],
        "draws": len(finding.draws),
        "effect_label": finding.effect_label,
        "effect": list(finding.effect),
        "checks": checks,
        "region": finding.region,
        "paths": finding.paths,
        "seconds": round(finding.seconds, 1),
        "posterior": source,
    }
    (folder / POSTERIOR_RESULT).write_text(json.dumps(result, indent=2, default=float))
    lines = [
        f"# {finding.name} across the posterior",
        "",
        f"**Verdict: {finding.verdict}** — the claim's primary checks all hold in "
        f"{finding.share:.0%} of {len(finding.draws)} posterior draws (Wilson 95% Monte Carlo "
        f"interval {finding.low:.0%}-{finding.high:.0%}). Posterior: `{source}`.",
        "",
        f"Effect ({finding.effect_label}): posterior median {finding.effect[0]:.3g}, 90% "
        f"credible interval [{finding.effect[1]:.3g}, {finding.effect[2]:.3g}].",
        "",
        "| check | share of draws where it holds |",
        "| --- | --- |",
        *[f"| {k} | {v:.0%} |" for k, v in checks.items()],
        "",
        (f"**Where it fails.** {finding.region}." if finding.region else ""),
        "",
        *_path_lines(finding.paths),
        "Per-draw outcomes: `posterior_draws.csv`.",
        "",
    ]
    (folder / POSTERIOR_REPORT).write_text("\n".join(lines))


def load_claim(folder: Path) -> dict[str, Any] | None:
    """A claim's posterior result, if any."""
    path = folder / POSTERIOR_RESULT
    return json.loads(path.read_text()) if path.exists() else None


def summary_table(out: Path, names: list[str], link_prefix: str = "") -> str:
    """The REPORT.md section: one row per claim with a posterior result."""
    loaded = [(n, load_claim(out / n)) for n in names]
    rows = [(n, r) for n, r in loaded if r is not None]
    if not rows:
        return ""
    source = rows[0][1]["posterior"]
    lines = [
        "## Verdicts across the posterior",
        "",
        f"Posterior `{source}`; each claim at its number of resampled draws (one seed per "
        "draw, shared by the arms). Share = draws in which every primary check holds (Wilson "
        "95% Monte Carlo interval); REPRODUCED >= 90%, NOT REPRODUCED <= 10%, otherwise "
        "DEPENDS with the failing region found by PRIM. Effect = the first primary check's "
        "measure: posterior median [90% credible interval].",
        "",
        "| claim | draws | share where the check holds [95% MC] | effect: median [90% CrI] "
        "| verdict | where it fails (PRIM) | by construction / emergent |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows:
        title = EXPERIMENTS[name].title
        med, lo, hi = r["effect"]
        effect = (
            f"{r['effect_label']}: {med:.3g} [{lo:.3g}, {hi:.3g}]"
            if med == med
            else r["effect_label"]
        )
        lines.append(
            f"| [{name}]({link_prefix}{name}/{POSTERIOR_REPORT}) {title} | {r['draws']} | "
            f"{r['share']:.0%} [{r['share_interval'][0]:.0%}, {r['share_interval'][1]:.0%}] | "
            f"{effect.replace('|', '/')} | **{r['verdict']}**{borderline(r['share_interval'])} | "
            f"{r['region'] or '—'} | "
            f"{NATURE.get(name, '')} |"
        )
    return "\n".join([*lines, "", caveats(Path(source))]) + "\n"


def borderline(interval: tuple[float, float] | list[float]) -> str:
    """A mark for a verdict whose Monte Carlo interval spans a threshold: more draws could flip it."""
    low, high = interval
    spans = any(low < threshold <= high for threshold in (HOLDS, FAILS))
    return " (borderline: the interval spans a threshold)" if spans else ""


def caveats(posterior: Path) -> str:
    """What the posterior behind the table is, from its sidecar: how far the fit got."""
    tail = (
        "Claims run on their coarse (--quick) grids with one seed per draw; a difference "
        "'holds' in a draw when it has the claimed sign. See docs/ODD.md section 9."
    )
    try:
        meta = json.loads(sidecar_path(posterior).read_text())
        if "description" in meta:  # history matching writes its own one-line account
            return f"**Caveats.** The posterior (`{posterior}`) comes from {meta['description']}. {tail}"
        fit = (
            f"ABC-SMC ({meta['mode']} mode): {len(meta['generations'])} generations, "
            f"{meta['simulations']:,} simulations, final tolerance {meta['final_epsilon']:.3g} "
            "(0 = every band met; the tolerance is the norm of the misses in band widths), "
            f"effective sample size {meta['effective_sample_size']:.0f} of "
            f"{meta['particles']} weighted draws"
        )
    except (OSError, ValueError, KeyError, TypeError):
        fit = "a calibration whose sidecar could not be read"
    return f"**Caveats.** The posterior (`{posterior}`) comes from {fit}. {tail}"


def reproduce_posterior(
    names: list[str],
    out: Path,
    posterior: Path,
    *,
    draws: int = DEFAULT_DRAWS,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    resume: bool = False,
    progress: bool | None = True,
    seed: int = 2_024,
) -> dict[str, str]:
    """Every named claim across ``draws`` posterior draws; per-claim files and verdicts."""
    ensemble = load_ensemble(posterior)
    sample = [d.params for d in draw(ensemble, draws, np.random.default_rng(seed))]
    verdicts = {}
    for name in names:
        folder = out / name
        done = load_claim(folder)
        if resume and done and done["draws"] == draws and done["posterior"] == str(posterior):
            verdicts[name] = done["verdict"]
            print(f"{name}: {done['verdict']} across the posterior (kept)")
            continue
        ctx = Context(folder, True, workers, scheduler, local_cluster, resume, progress)
        finding = run_claim(EXPERIMENTS[name], ctx, sample)
        write_claim(finding, folder, str(posterior))
        verdicts[name] = finding.verdict
        print(
            f"{name}: {finding.verdict} across the posterior — holds in {finding.share:.0%} "
            f"[{finding.low:.0%}, {finding.high:.0%}] of {draws} draws, "
            f"{finding.seconds:.0f} s"
        )
    return verdicts
