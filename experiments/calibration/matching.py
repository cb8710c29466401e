"""``defection calibrate`` by history matching (the default ``--method history``).

Runs the waves of ``history.history_match`` through the sweep engine, then:

* ``posterior.parquet`` + ``posterior.json`` — the accepted draws (every attainable band
  met on a fresh run), equally weighted, in the format of ``experiments.ensemble``, so
  ``--posterior`` reads them everywhere;
* ``predictive.csv`` — the posterior-predictive check: posterior draws re-run on fresh
  seeds (not the seeds that accepted them), every pattern's statistic per run;
* ``predictive.png``, ``marginals.png``, ``pairs.png``, ``identifiability.csv``,
  ``holdout.csv`` (with ``--hold-out``), ``calibration.md`` and ``calibration.json``.

The waves' own files (``settings.json``, ``wave-NN/``, ``posterior/batch-NN/``,
``posterior_runs.parquet``, ``history.json``) are what ``--resume`` continues from.

This module is imported by the command line, so it imports nothing heavy at the top.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from isk_defection.experiments.calibration.history import HistoryResult

from isk_defection.model.parameters import STUDY_POPULATION

# agents per calibration run: the model's study resolution (ODD §7.15, model v3: every
# mean agrees with 1:1 at every size; from 8,000 agents the seed spread is within about
# twice the process's own, and 16,000 does not narrow it further)
CALIBRATION_POPULATION = STUDY_POPULATION
_PREDICTIVE = 10_002  # spawn key of the predictive check's seeds (history.key_seed)


@dataclass(frozen=True)
class HistoryBudget:
    """How big a history-matching calibration is.

    ``simulations`` bounds the waves and the posterior's rejection runs together; the
    predictive check (``predictive_draws`` x ``predictive_seeds`` fresh runs) comes on top.
    """

    waves_max: int
    points_per_wave: int
    seeds_per_point: int
    simulations: int
    posterior_points: int  # fresh draws per posterior batch
    posterior_accepted: int  # batches go on until this many meet every attainable band
    predictive_draws: int
    predictive_seeds: int
    population: int
    volume_sample: int


FULL = HistoryBudget(8, 1_000, 2, 30_000, 1_000, 500, 250, 2, CALIBRATION_POPULATION, 20_000)
QUICK = HistoryBudget(2, 60, 2, 600, 120, 30, 15, 2, 1_000, 5_000)


def refuse_restart(out: Path, resume: bool) -> None:
    """A folder holding a history-matching calibration continues only with ``--resume``."""
    if not resume and (Path(out) / "settings.json").is_file():
        raise ValueError(
            f"--out: {out} already holds a history-matching calibration; add --resume to "
            "continue it, or use another folder"
        )


def calibrate(
    out: Path,
    budget: HistoryBudget,
    *,
    held_out: tuple[str, ...] = (),
    seed: int,
    quick: bool = False,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    progress: bool | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """History-match into ``out``, write the posterior, check it on fresh seeds, report."""
    from isk_defection.experiments import folders

    out = Path(out)
    refuse_restart(out, resume)
    with folders.claim(out, "calibrate"):
        return _calibrate(
            out, budget, held_out=held_out, seed=seed, quick=quick, workers=workers,
            scheduler=scheduler, local_cluster=local_cluster, progress=progress, quiet=quiet,
        )  # fmt: skip


def _calibrate(
    out: Path,
    budget: HistoryBudget,
    *,
    held_out: tuple[str, ...],
    seed: int,
    quick: bool,
    workers: int | None,
    scheduler: str | None,
    local_cluster: bool,
    progress: bool | None,
    quiet: bool,
) -> dict[str, Any]:
    from isk_defection.experiments.calibration import history as hm
    from isk_defection.experiments.calibration import patterns as pat
    from isk_defection.experiments.errors import RunsFailedError

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    fitted = tuple(p for p in pat.CONSTRAINING if p.name not in held_out)
    simulate = hm.SweepSimulator(budget.population, workers, progress, scheduler, local_cluster)
    say(
        f"history matching: {len(fitted)} patterns"
        + (f" ({', '.join(held_out)} held out)" if held_out else "")
        + f", {budget.population:,} agents per run, at most {budget.waves_max} waves of "
        f"{budget.points_per_wave:,} points x {budget.seeds_per_point} seeds, "
        f"{budget.simulations:,} simulations"
    )
    start = time.perf_counter()
    result = hm.history_match(
        out,
        seed=seed,
        waves_max=budget.waves_max,
        points_per_wave=budget.points_per_wave,
        seeds_per_point=budget.seeds_per_point,
        simulations=budget.simulations,
        posterior_points=budget.posterior_points,
        posterior_accepted=budget.posterior_accepted,
        patterns=fitted,
        simulate=simulate,
        population=budget.population,
        volume_sample=budget.volume_sample,
        progress=not quiet,
    )
    seconds = {"waves_and_posterior": time.perf_counter() - start}
    say(
        f"{len(result.waves)} waves, {result.simulations:,} simulations, stopped by: "
        f"{result.stopped_by}; {len(result.posterior)} posterior draws meet every attainable "
        f"band ({len(result.attainable)} of {len(fitted)})"
    )
    names = result.space.names
    report: dict[str, Any] = {
        "result": result,
        "budget": budget,
        "held_out": held_out,
        "fitted": [p.name for p in fitted],
        "quick": quick,
        "seed": seed,
        "seconds": seconds,
    }
    if result.posterior.empty:
        write_report(out, report)
        raise RunsFailedError(
            "no posterior draw met every attainable band within the simulation budget; "
            f"posterior.parquet not written ({out / 'calibration.md'} says what was found)"
        )
    path = write_posterior(out, result, report)
    say(f"wrote {path} ({len(result.posterior)} equally weighted draws of {len(names)} parameters)")
    start = time.perf_counter()
    report |= predictive_check(out, result, budget, simulate, seed)
    seconds["predictive"] = time.perf_counter() - start
    if held_out:
        from isk_defection.experiments.calibration import holdout

        report["holdout"] = holdout.score(report["values"], held_out)
        report["holdout"].to_csv(out / "holdout.csv", index=False)
    start = time.perf_counter()
    report |= identification(out, result)
    seconds["diagnostics"] = time.perf_counter() - start
    write_report(out, report)
    say(
        f"predictive check on fresh seeds: {report['meeting_all']:.0%} of "
        f"{len(report['values'])} runs meet every attainable band; wrote {out / 'calibration.md'}"
    )
    return report


def write_posterior(out: Path, result: HistoryResult, report: dict[str, Any]) -> Path:
    """The accepted draws, equally weighted, in the format of ``experiments.ensemble``."""
    import numpy as np

    from isk_defection.experiments.calibration import patterns as pat
    from isk_defection.experiments.calibration.abc import model_version
    from isk_defection.experiments.calibration.priors import PRIORS
    from isk_defection.experiments.ensemble import write_ensemble

    names = result.space.names
    table = result.posterior[names].copy()
    table.insert(0, "weight", np.full(len(table), 1 / len(table)))
    table.insert(0, "draw", np.arange(len(table)))
    budget: HistoryBudget = report["budget"]
    unattainable = [f["pattern"] for f in result.unattainable]
    mode = "quick" if report["quick"] else "full"
    description = (
        f"history matching ({mode} mode): {len(result.waves)} waves, "
        f"{result.simulations:,} simulations, final non-implausible volume "
        f"{result.waves[-1]['volume']:.3g} of the prior; {len(table)} draws meet every "
        f"attainable band ({len(result.attainable)} of {len(report['fitted'])} fitted"
        + (f"; unattainable: {', '.join(unattainable)}" if unattainable else "")
        + ")"
    )
    return write_ensemble(
        table,
        out / "posterior.parquet",
        model_version=model_version(),
        fitted_to=result.attainable,
        method="history matching (GP emulators, implausibility cut, waves), then rejection "
        "at distance 0: fresh draws in the final non-implausible region, one fresh run "
        "each, kept when every attainable band is met",
        mode=mode,
        description=description,
        agents=budget.population,
        weeks=pat.STEPS,
        budget=asdict(budget),
        seed=report["seed"],
        waves=len(result.waves),
        volumes=[w["volume"] for w in result.waves],
        simulations=result.simulations,
        stopped_by=result.stopped_by,
        history_matched_to=report["fitted"],
        held_out=list(report["held_out"]),
        attainable=result.attainable,
        unattainable=result.unattainable,
        cut=result.cut,
        cut_rank=result.rank,
        inferred=names,
        fixed={},
        priors={n: [PRIORS[n].low, PRIORS[n].high, PRIORS[n].shape] for n in names},
        bands={p.name: [p.low, p.high, p.source] for p in pat.PATTERNS},
        defaults_note="parameters not in the table keep the registry defaults",
    )


def predictive_check(
    out: Path, result: HistoryResult, budget: HistoryBudget, simulate: Any, seed: int
) -> dict[str, Any]:
    """Posterior draws re-run on fresh seeds; which bands the runs meet."""
    import numpy as np
    import pandas as pd

    from isk_defection.experiments.calibration import diagnostics
    from isk_defection.experiments.calibration import history as hm
    from isk_defection.experiments.calibration import patterns as pat

    names = result.space.names
    draws = result.posterior[names].iloc[: budget.predictive_draws].reset_index(drop=True)
    points = [{n: float(v) for n, v in row.items()} for row in draws.to_dict("records")]
    runs = simulate(
        points,
        budget.predictive_seeds,
        hm.key_seed(seed, _PREDICTIVE, 0),
        out / "predictive" / "runs",
    )
    values = pd.concat(
        [
            draws.loc[runs["point"].to_numpy()].reset_index(drop=True),
            runs.reset_index(drop=True),
        ],
        axis=1,
    )
    values.to_csv(out / "predictive.csv", index=False)
    attainable = tuple(p for p in pat.CONSTRAINING if p.name in result.attainable)
    met = pat.misses(values, attainable) == 0 if len(values) else np.zeros((0, len(attainable)))
    summary = diagnostics.predictive_summary(values)
    diagnostics.predictive_figure(
        values,
        out / "predictive.png",
        f"posterior predictive check: {len(values)} runs on fresh seeds at "
        f"{len(draws)} posterior draws; green: reported band",
    )
    return {
        "values": values,
        "predictive": summary,
        "predictive_draws": len(draws),
        "meeting_all": float(met.all(axis=1).mean()) if len(values) else float("nan"),
        "meeting_count": int(met.all(axis=1).sum()),
        "bands_met": float(met.sum(axis=1).mean()) if len(values) else float("nan"),
        "attainable_count": len(attainable),
    }


def identification(out: Path, result: HistoryResult) -> dict[str, Any]:
    """Each parameter's posterior width against its prior's, and the pairs that trade off."""
    import numpy as np

    from isk_defection.experiments.calibration import diagnostics

    table = result.posterior[result.space.names]
    weights = np.full(len(table), 1 / len(table))
    ident = diagnostics.identifiability(table, weights)
    ident.to_csv(out / "identifiability.csv", index=False)
    diagnostics.marginals_figure(table, weights, out / "marginals.png")
    shown = ident.sort_values("width_share").parameter.head(8).tolist()
    diagnostics.pairs_figure(table[shown], weights, out / "pairs.png")
    return {
        "identifiability": ident,
        "correlations": diagnostics.correlations(table, weights, top=8),
    }


# ---- calibration.md --------------------------------------------------------------------
def _f(x: float) -> str:
    return f"{x:.3g}" if x == x and abs(x) != float("inf") else "n/a"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x == x else "n/a"


def waves_section(result: HistoryResult) -> list[str]:
    """Each wave's design, runs, non-implausible volume, emulators used and stop decision."""
    lines = [
        "## Waves",
        "",
        "Volume: the share of one fixed sample of prior points that no wave has ruled out "
        "(1 = the whole prior). Emulators used: those that passed leave-out validation "
        "and so may rule points out.",
        "",
        "| wave | design points (candidates drawn) | runs | simulations so far | "
        "non-implausible volume | shrink | emulators used | stop |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in result.waves:
        before, volume = w.get("volume_before", float("nan")), w["volume"]
        shrink = (before - volume) / before if before == before and before > 0 else float("nan")
        design = w.get("design", {})
        lines.append(
            f"| {w['wave']} | {w['points']:,} ({design.get('candidates', 0):,}) | "
            f"{w['runs']:,} | {w['simulations_total']:,} | {_f(volume)} | {_pct(shrink)} | "
            f"{len(w.get('used', []))} of {len(w.get('validation', {}))} | "
            f"{w['stop'] or 'go on'} |"
        )
    return [*lines, ""]


def validation_section(result: HistoryResult) -> list[str]:
    """Leave-out diagnostics of every emulator in every wave."""
    waves = [w for w in result.waves if w.get("validation")]
    if not waves:
        return []
    outputs = list(waves[0]["validation"])
    header = " | ".join(f"wave {w['wave']}" for w in waves)
    lines = [
        "## Emulator validation (5-fold leave-out)",
        "",
        "Each cell: the share of held-out points whose standardized error |z| is at most 3 "
        "(an emulator below 90% rules nothing out in its wave: marked *not used*), the "
        "coverage of the 95% predictive interval, and the held-out error over the output's "
        "spread (0 perfect, 1 no better than its mean). Hyperparameters were fitted on at "
        "most 300 points of the wave and the emulator conditioned on all of them "
        "(`history.FIT_POINTS`); the folds keep those hyperparameters.",
        "",
        f"| output | {header} |",
        "| --- | " + " | ".join("---" for _ in waves) + " |",
    ]
    for name in outputs:
        cells = []
        for w in waves:
            v = w["validation"].get(name, {})
            used = name in w.get("used", [])
            cells.append(
                f"{_pct(v.get('within_3', float('nan')))} / "
                f"{_pct(v.get('coverage_95', float('nan')))} / {_f(v.get('rmse_over_sd', 0))}"
                + ("" if used else " *not used*")
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def bands_section(result: HistoryResult, fitted: list[str]) -> list[str]:
    """The attainable bands, and each unattainable one with its best value and trade-off."""
    from isk_defection.experiments.calibration import patterns as pat

    by_name = {p.name: p for p in pat.PATTERNS}
    lines = [
        "## Attainable and unattainable bands",
        "",
        f"Attainable ({len(result.attainable)} of {len(fitted)} fitted): some run of the "
        "waves or the posterior meets all of them together: "
        + ", ".join(f"`{n}`" for n in result.attainable)
        + ".",
        "",
    ]
    if not result.unattainable:
        return [*lines, "Unattainable: none; every fitted band is met together by some run.", ""]
    lines += [
        "Unattainable: no run meets these together with the attainable bands. They are a "
        "finding about the model, not widened or dropped to pass; the posterior meets the "
        "attainable bands only.",
        "",
        "| band | reported | best value among runs meeting the attainable bands | "
        "outside by (band units) | runs meeting it | trade-off |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in result.unattainable:
        p = by_name[f["pattern"]]
        other = f.get("trades_off_against")
        share = f.get("share_of_its_runs_meeting_that", float("nan"))
        if not other:
            trade = "no run meets it"
        elif share == 0:
            trade = f"met only where `{other}` is missed (no run meeting it meets `{other}`)"
        else:
            trade = f"against `{other}`: only {_pct(share)} of the runs meeting it meet `{other}`"
        lines.append(
            f"| `{p.name}` | {p.band()} | {_f(f['best_value'])} | {_f(f['best_miss'])} | "
            f"{f['runs_meeting_it']:,} | {trade} |"
        )
    return [*lines, ""]


def predictive_section(report: dict[str, Any]) -> list[str]:
    """The posterior-predictive check on fresh seeds, pattern by pattern."""
    from isk_defection.experiments.stats import wilson

    result: HistoryResult = report["result"]
    values, pred = report["values"], report["predictive"]
    unattainable = {f["pattern"] for f in result.unattainable}
    low, high = wilson(report["meeting_count"], len(values))
    roles = {}
    for r in pred.itertuples():
        if r.role != "constraining":
            roles[r.pattern] = "by construction"
        elif r.pattern in report["held_out"]:
            roles[r.pattern] = "held out"
        elif r.pattern in unattainable:
            roles[r.pattern] = "unattainable"
        else:
            roles[r.pattern] = "fitted"
    budget: HistoryBudget = report["budget"]
    return [
        "## Posterior predictive check on fresh seeds",
        "",
        f"{report['predictive_draws']} posterior draws, each re-run on {budget.predictive_seeds} "
        f"fresh seeds (never the seeds that accepted them): {len(values)} runs. "
        f"**{report['meeting_count']} of {len(values)} ({_pct(report['meeting_all'])}; Wilson "
        f"95% [{_pct(low)}, {_pct(high)}]) meet every attainable band**; on average "
        f"{_f(report['bands_met'])} of the {report['attainable_count']} attainable bands.",
        "",
        "| pattern | band | role | predictive median [90%] | share inside |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {r.pattern} | {r.band} | {roles[r.pattern]} | {_f(r.median)} [{_f(r.low)}, "
            f"{_f(r.high)}] | {_pct(r.inside)} |"
            for r in pred.itertuples()
        ],
        "",
        "![predictive](predictive.png)",
        "",
    ]


def holdout_section(table: pd.DataFrame) -> list[str]:
    """The held-out patterns' forecast against their bands and against persistence."""
    lines = [
        "## Hold-out forecast against persistence",
        "",
        "The calibration did not see these patterns. Model: the share of the predictive "
        "runs (fresh seeds) inside the band, with its Wilson 95% interval. Persistence: the "
        "last level the record gives before the pattern's period, carried forward "
        "unchanged (uniform over that level's band; a point when the level is exact), read "
        "from the reported record, not from the model; its share is the part of it inside "
        "the band. The model beats persistence when its interval lies above persistence's "
        "share, and is worse when it lies below.",
        "",
        "| pattern | band | model: median [90%] | model: share inside [95%] | persistence "
        "forecast | persistence: share inside | skill (model - persistence) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.itertuples():
        lines.append(
            f"| `{r.pattern}` | {r.band} | {_f(r.model_median)} [{_f(r.model_q5)}, "
            f"{_f(r.model_q95)}] | {_pct(r.model_inside)} [{_pct(r.model_low)}, "
            f"{_pct(r.model_high)}] | {r.persistence} | {_pct(r.persistence_inside)} | "
            f"{_f(r.skill)} | {r.verdict} |"
        )
    return [*lines, ""]


def identification_section(report: dict[str, Any]) -> list[str]:
    """Each parameter's identification in words, and the pairs that trade off."""
    ident = report["identifiability"]
    words = {
        w: ident[ident.identified.str.startswith(w)].parameter.tolist()
        for w in ("identified", "weakly", "not")
    }

    def named(key: str) -> str:
        return ", ".join(f"`{n}`" for n in words[key]) or "none"

    draws = len(report["result"].posterior)
    caution = (
        f" With only {draws} draws these widths and correlations are rough (a quick run "
        "checks the plumbing, not the fit)."
        if draws < 100
        else ""
    )
    return [
        "## Identification",
        "",
        "Width: the posterior's central 90% interval over the prior's central 90% (1: the "
        "posterior is as wide as the prior). Identified below 0.5, weakly identified "
        f"below 0.8, otherwise not identified.{caution}",
        "",
        f"Identified: {named('identified')}. Weakly identified: {named('weakly')}. Not "
        f"identified (posterior close to the prior): {named('not')}.",
        "",
        "| parameter | prior | posterior median [90%] | width | in words |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| `{r.parameter}` | {r.prior} | {_f(r.median)} [{_f(r.low)}, {_f(r.high)}] | "
            f"{r.width_share:.2f} | {r.identified} |"
            for r in ident.itertuples()
        ],
        "",
        "A parameter close to its prior alone may still be tied to others: the bands can be "
        "met by several combinations. The strongest posterior correlations (pairs that "
        "trade off: a positive r means the two rise together along the fitting set, a "
        "negative r that one makes up for the other): "
        + ("; ".join(report["correlations"]) or "none")
        + ".",
        "",
        "![marginals](marginals.png)",
        "",
        "![pairs](pairs.png)",
        "",
    ]


def write_report(out: Path, report: dict[str, Any]) -> None:
    """calibration.md (waves, validation, bands, predictive check, hold-out, identification)."""
    from isk_defection.experiments.calibration import patterns as pat

    result: HistoryResult = report["result"]
    budget: HistoryBudget = report["budget"]
    seconds = report["seconds"]
    held = report["held_out"]
    accepted = len(result.posterior)
    lines = [
        "# Calibration: history matching of the baseline against the reported patterns",
        "",
        f"Mode {'quick' if report['quick'] else 'full'}; seed {report['seed']}. "
        f"{len(result.space.names)} parameters with a prior, none fixed; "
        f"{len(report['fitted'])} constraining patterns fitted"
        + (f", {len(held)} held out ({', '.join(f'`{n}`' for n in held)})" if held else "")
        + f". Each run: {budget.population:,} agents, {pat.STEPS} weeks. Each design point "
        f"runs with {budget.seeds_per_point} seeds. A point is ruled out when the "
        f"{'largest' if result.rank == 1 else 'second-largest'} implausibility exceeds "
        f"{result.cut:g} (docs/ODD.md §9.9 gives the method).",
        "",
        f"**Budget.** {result.simulations:,} simulations in {len(result.waves)} waves and "
        f"the posterior (budget {budget.simulations:,}; at most {budget.waves_max} waves "
        f"of {budget.points_per_wave:,} points), stopped by: {result.stopped_by}; "
        f"{seconds.get('waves_and_posterior', 0) / 60:.1f} min"
        + (
            f", then {seconds['predictive'] / 60:.1f} min of predictive check and "
            f"{seconds.get('diagnostics', 0) / 60:.1f} min of diagnostics"
            if "predictive" in seconds
            else ""
        )
        + " (this invocation's wall time: a resumed calibration counts only its own).",
        "",
    ]
    lines += waves_section(result)
    lines += validation_section(result)
    lines += bands_section(result, report["fitted"])
    runs = _posterior_runs(out)
    lines += [
        "## Posterior",
        "",
        f"Rejection at distance 0 inside the final non-implausible region: {runs:,} fresh "
        f"draws, one fresh run each; **{accepted:,} met every attainable band** "
        f"({_pct(accepted / runs) if runs else 'n/a'}) and are the posterior "
        "(`posterior.parquet`, equal weights).",
        "",
    ]
    if "values" in report:
        lines += predictive_section(report)
    if "holdout" in report:
        lines += holdout_section(report["holdout"])
    if "identifiability" in report:
        lines += identification_section(report)
    (out / "calibration.md").write_text("\n".join(lines))
    summary = {
        "method": "history",
        "mode": "quick" if report["quick"] else "full",
        "budget": asdict(budget),
        "held_out": list(held),
        "waves": len(result.waves),
        "volumes": [w["volume"] for w in result.waves],
        "simulations": result.simulations,
        "stopped_by": result.stopped_by,
        "attainable": result.attainable,
        "unattainable": [f["pattern"] for f in result.unattainable],
        "posterior_draws": accepted,
        "predictive_runs": len(report.get("values", [])),
        "predictive_meeting_all": report.get("meeting_all"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    (out / "calibration.json").write_text(json.dumps(summary, indent=2, default=float))


def _posterior_runs(out: Path) -> int:
    import pandas as pd

    path = out / "posterior_runs.parquet"
    return len(pd.read_parquet(path, columns=["batch"])) if path.exists() else 0
