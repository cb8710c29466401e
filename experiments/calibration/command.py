"""``defection calibrate``: fit a posterior to the reported patterns, with its diagnostics.

Two methods (``--method``):

``history`` (the default; ``experiments/calibration/matching.py``)
    history matching with Gaussian-process emulators in waves over every parameter with
    a prior, then rejection at distance 0 inside the final non-implausible region; the
    posterior is re-run on fresh seeds, and ``--hold-out PATTERNS`` fits without some
    patterns and scores their forecast against a persistence forecast. Writes the waves
    (``wave-NN/``), the posterior, ``predictive.csv`` and ``calibration.md``.
``abc`` (kept for comparison)
    a Morris screen, then ABC-SMC (pyabc) over the influential parameters. Writes into
    ``--out``:

    * ``screen.json``, ``screen.csv``, ``screen.png`` — Morris screening and the inferred
      set (kept and reused unless ``--rescreen``: screening is the costly first step);
    * ``abc.db`` — pyabc's database of every generation (``--resume`` continues from it);
    * ``predictive.csv``, ``predictive.png``, ``marginals.png``, ``pairs.png``,
      ``identifiability.csv`` and ``calibration.md`` — the diagnostics in figures and words;
    * ``coverage.csv`` (with ``--coverage N``) — the synthetic-data coverage check.

Both write ``posterior.parquet`` + ``posterior.json``, the draws in the format of
``experiments.ensemble`` (model version, patterns fitted, method, budget), which
``--posterior`` reads everywhere.

``--quick`` (CI) runs a small calibration into ``--out`` in about two minutes (history:
1,000 agents, 2 waves of 60 points; abc: a tiny screen if none is kept, a two-generation
ABC with 16 particles).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line imports this module; the work imports the rest
    import pandas as pd

    from isk_defection.experiments.calibration.abc import Budget

from isk_defection.experiments.calibration import matching
from isk_defection.experiments.options import add_engine_options, choice, integer, number

MAX_PARTICLES = 100_000  # per generation
MAX_SIMULATIONS = 100_000_000
MAX_MINUTES = 60 * 24 * 7  # a week
MAX_COVERAGE = 10_000  # synthetic data sets
SAFETY_MINUTES = {False: 240, True: 30}  # wall-time stop (full, quick): not the budget
SEED = 2021
PREDICTIVE = {False: 60, True: 8}  # posterior predictive simulations (full, quick)
POINT_SEEDS = {False: 8, True: 2}  # seeds per point in the defaults-vs-median check
TRAJECTORIES = {False: 6, True: 1}  # Morris trajectories (full, quick)
POPULATION_ABC = 2_000  # abc.POPULATION (not imported here: the command line stays light)
METHODS = ("history", "abc")
MAX_WAVES = 100
MAX_POINTS = 100_000  # design points per wave
MAX_SEEDS = 1_000  # seeds per design point
MAX_POPULATION = 5_000_000  # agents per run (the model's own bound)
ABC_ONLY = ("particles", "minutes", "rescreen", "coverage", "coverage_only")
HISTORY_ONLY = ("waves", "points", "seeds", "hold_out")


def hold_out(text: str) -> tuple[str, ...]:
    """``--hold-out``'s converter: constraining pattern names (one-line error otherwise)."""
    from isk_defection.experiments.calibration import holdout

    try:
        return holdout.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``defection calibrate``."""
    full, quick = matching.FULL, matching.QUICK
    cal = commands.add_parser(
        "calibrate",
        parents=[common],
        help="fit a posterior to the reported patterns (history matching; ABC-SMC with "
        "--method abc)",
        description="Fits the model's uncertain parameters to the reported pattern bands and "
        "writes the posterior ensemble and its diagnostics to OUT (see docs/ODD.md section "
        "9). The default method is history matching with Gaussian-process emulators in "
        "waves, then rejection inside the non-implausible region; --method abc runs the "
        "Morris screen and ABC-SMC (pyabc) instead, for comparison.",
    )
    cal.add_argument(
        "--method",
        type=choice("method", METHODS),
        default="history",
        metavar="{history,abc}",
        help="history matching (default) or ABC-SMC",
    )
    cal.add_argument("--quick", action="store_true", help="a CI-sized run (about 2 minutes)")
    cal.add_argument(
        "--out", default="results/posterior", help="output folder (default results/posterior)"
    )
    history = cal.add_argument_group("history matching (--method history)")
    history.add_argument(
        "--waves",
        type=integer(1, MAX_WAVES),
        help=f"most waves (default {full.waves_max}, quick {quick.waves_max}); they stop "
        "earlier when the non-implausible volume stops shrinking",
    )
    history.add_argument(
        "--points",
        type=integer(10, MAX_POINTS),
        help=f"design points per wave (default {full.points_per_wave:,}, quick "
        f"{quick.points_per_wave})",
    )
    history.add_argument(
        "--seeds",
        type=integer(2, MAX_SEEDS),
        help=f"seeds per design point, at least 2 (default {full.seeds_per_point})",
    )
    history.add_argument(
        "--hold-out",
        type=hold_out,
        metavar="PATTERNS",
        help="calibrate without these patterns (comma list of constraining pattern names) "
        "and score their forecast against the bands and a persistence forecast",
    )
    cal.add_argument(
        "--population",
        type=integer(10, MAX_POPULATION),
        help=f"agents per run (history: default {full.population:,}, quick "
        f"{quick.population:,}; abc: default {POPULATION_ABC:,})",
    )
    abc = cal.add_argument_group("ABC-SMC (--method abc)")
    abc.add_argument("--rescreen", action="store_true", help="redo the Morris screening")
    abc.add_argument(
        "--coverage",
        type=integer(1, MAX_COVERAGE),
        metavar="N",
        help="also check coverage: N synthetic data sets calibrated in quick mode",
    )
    abc.add_argument(
        "--coverage-only",
        action="store_true",
        help="with --coverage N: skip the fit; check coverage for the screen in --out and "
        "add its table to --out/calibration.md",
    )
    abc.add_argument(
        "--particles",
        type=integer(2, MAX_PARTICLES),
        help="particles per generation (default 200)",
    )
    cal.add_argument(
        "--simulations",
        type=integer(1, MAX_SIMULATIONS),
        help=f"simulation budget (history: default {full.simulations:,}, quick "
        f"{quick.simulations:,}, the waves and the posterior; abc: default 12,000)",
    )
    abc.add_argument(
        "--minutes",
        type=number(0, MAX_MINUTES, open_low=True),
        help="wall-time safety stop of the ABC in minutes (default: 4 h, quick 30 min); the "
        "generations and simulations are the budget, so a resumed calibration ends where "
        "an uninterrupted one does",
    )
    cal.add_argument(
        "--seed",
        type=integer(0, 2**63 - 1),
        default=SEED,
        help=f"seed of the whole calibration (default {SEED})",
    )
    add_engine_options(cal, what="calibration")
    cal.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command (every option checked before anything is written)."""
    from isk_defection.experiments.console import progress

    wrong = ABC_ONLY if args.method == "history" else HISTORY_ONLY
    for name in wrong:
        if getattr(args, name) not in (None, False):
            other = "abc" if args.method == "history" else "history"
            raise ValueError(
                f"--{name.replace('_', '-')}: only with --method {other} (this is "
                f"--method {args.method})"
            )
    if args.method == "history":
        return handle_history(args, progress(args))
    return handle_abc(args, progress(args))


def history_budget(args: argparse.Namespace) -> matching.HistoryBudget:
    """The history-matching budget: quick or full, with the options given."""
    import dataclasses

    budget = matching.QUICK if args.quick else matching.FULL
    changes = {
        k: v
        for k, v in (
            ("waves_max", args.waves),
            ("points_per_wave", args.points),
            ("seeds_per_point", args.seeds),
            ("simulations", args.simulations),
            ("population", args.population),
        )
        if v is not None
    }
    budget = dataclasses.replace(budget, **changes)
    least = budget.points_per_wave * budget.seeds_per_point + budget.posterior_points
    if budget.simulations < least:
        raise ValueError(
            f"--simulations: must be at least {least:,} for one wave of "
            f"{budget.points_per_wave:,} points x {budget.seeds_per_point} seeds and a "
            f"posterior batch of {budget.posterior_points:,} (got {budget.simulations:,})"
        )
    return budget


def handle_history(args: argparse.Namespace, shown: bool | None) -> int:
    """``--method history``: history matching, posterior, predictive check, calibration.md."""
    run(
        Path(args.out),
        history_budget(args),
        held_out=args.hold_out or (),
        seed=args.seed,
        quick=args.quick,
        resume=args.resume,
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.local_cluster,
        progress=shown,
        quiet=getattr(args, "quiet", False),
    )
    return 0


def handle_abc(args: argparse.Namespace, shown: bool | None) -> int:
    """``--method abc``: Morris screen and ABC-SMC, as before history matching."""
    from isk_defection.experiments.calibration import abc

    budget = abc.QUICK if args.quick else abc.FULL
    changes = {
        k: v
        for k, v in (
            ("particles", args.particles),
            ("simulations", args.simulations),
            ("minutes", args.minutes),
            ("agents", args.population),
        )
        if v is not None
    }
    changes = {"minutes": SAFETY_MINUTES[args.quick]} | changes
    budget = abc.Budget(**(budget.__dict__ | changes))
    if args.coverage_only and args.coverage is None:
        raise ValueError("--coverage-only: only with --coverage N (N synthetic data sets)")
    if args.coverage_only:
        return coverage_only(Path(args.out), args.coverage, workers=args.workers)
    if args.rescreen and args.resume:
        raise ValueError(
            "--rescreen: cannot be used with --resume (a resumed calibration keeps its screen)"
        )
    run(
        Path(args.out),
        budget,
        quick=args.quick,
        rescreen=args.rescreen,
        coverage=args.coverage or 0,
        resume=args.resume,
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.local_cluster,
        progress=shown,
        seed=args.seed,
    )
    return 0


def run(
    out: Path,
    budget: Budget | matching.HistoryBudget,
    *,
    quick: bool = False,
    rescreen: bool = False,
    coverage: int = 0,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    progress: bool | None = True,
    seed: int = SEED,
    held_out: tuple[str, ...] = (),
    quiet: bool = False,
) -> dict[str, Any]:
    """Calibrate into ``out``: the method is the budget's.

    A ``matching.HistoryBudget`` runs history matching (``matching.calibrate``, with
    ``held_out`` patterns left out of the fit); an ``abc.Budget`` screens (or reuses
    the screen), runs ABC-SMC, and writes the posterior and its diagnostics.
    """
    from isk_defection.experiments import folders

    if isinstance(budget, matching.HistoryBudget):
        return matching.calibrate(
            out, budget, held_out=held_out, seed=seed, quick=quick, resume=resume,
            workers=workers, scheduler=scheduler, local_cluster=local_cluster,
            progress=progress, quiet=quiet,
        )  # fmt: skip

    with folders.claim(out, "calibrate"):
        return _run(
            out, budget, quick=quick, rescreen=rescreen, coverage=coverage, resume=resume,
            workers=workers, scheduler=scheduler, local_cluster=local_cluster,
            progress=progress, seed=seed,
        )  # fmt: skip


def _run(
    out: Path,
    budget: Budget,
    *,
    quick: bool,
    rescreen: bool,
    coverage: int,
    resume: bool,
    workers: int | None,
    scheduler: str | None,
    local_cluster: bool,
    progress: bool | None,
    seed: int,
) -> dict[str, Any]:
    from isk_defection.experiments.calibration import abc, screen
    from isk_defection.experiments.calibration.priors import PRIORS

    engine: dict[str, Any] = {
        "workers": workers,
        "scheduler": scheduler,
        "local_cluster": local_cluster,
    }
    kept = None if rescreen else screen.load(out) or screen.load(abc.POSTERIOR.parent)
    if kept is None:
        print(f"screening {len(PRIORS)} priors (Morris, {TRAJECTORIES[quick]} trajectories)")
        kept = screen.run(out, TRAJECTORIES[quick], resume=resume, progress=progress, **engine)
    inferred = kept["inferred"]
    print(f"inferring {len(inferred)} parameters: {', '.join(inferred)}")
    kernel = kept.get("kernel", inferred)
    print(f"moved by the SMC kernel: {', '.join(kernel)}; the others redrawn from the prior")
    fit = abc.calibrate(
        out, inferred, budget, kernel=kernel, resume=resume, progress=progress is not False,
        seed=seed, **engine,
    )  # fmt: skip
    print(
        f"ABC-SMC: {len(fit['generations'])} generations, {fit['simulations']:,} simulations, "
        f"final tolerance {fit['final_epsilon']:.3g}, last acceptance rate "
        f"{fit['acceptance_rate']:.1%}, {fit['seconds'] / 60:.1f} min; stopped by its "
        f"{fit['stopped_by']} budget"
    )
    if fit["stopped_by"] == "wall time":
        print(
            f"the wall-time safety stop ({budget.minutes:g} min) ended the fit before its "
            "budget of generations and simulations: --resume continues it"
        )
    path = write_posterior(out, fit, inferred, kept, budget, quick)
    print(f"wrote {path} ({len(fit['table'])} weighted draws)")
    diagnosing = time.perf_counter()
    report = diagnose(out, fit, inferred, quick, workers)
    if coverage:
        report["coverage"] = coverage_check(out, inferred, coverage, kernel=kernel, workers=workers)
    write_report(out, fit, inferred, kept, budget, report, time.perf_counter() - diagnosing)
    print(f"wrote {out / 'calibration.md'}")
    return report


def write_posterior(
    out: Path,
    fit: dict[str, Any],
    inferred: list[str],
    kept: dict[str, Any],
    budget: Budget,
    quick: bool,
) -> Path:
    """The posterior ensemble in the format of ``experiments.ensemble``."""
    import numpy as np

    from isk_defection.experiments.calibration import abc
    from isk_defection.experiments.calibration import patterns as pat
    from isk_defection.experiments.calibration.priors import PRIORS
    from isk_defection.experiments.ensemble import write_ensemble

    table = fit["table"].copy()
    table.insert(0, "weight", fit["weights"])
    table.insert(0, "draw", np.arange(len(table)))
    return write_ensemble(
        table,
        out / "posterior.parquet",
        model_version=abc.model_version(),
        fitted_to=[p.name for p in pat.CONSTRAINING],
        method="ABC-SMC (pyabc), distance = norm of distances outside the pattern bands",
        mode="quick" if quick else "full",
        agents=budget.agents,
        weeks=pat.STEPS,
        particles=budget.particles,
        simulations=fit["simulations"],
        generations=fit["generations"],
        stopped_by=fit.get("stopped_by", "generations"),
        final_epsilon=fit["final_epsilon"],
        acceptance_rate=fit["acceptance_rate"],
        effective_sample_size=ess(fit["weights"]),
        inferred=inferred,
        kernel=kept.get("kernel", inferred),
        proposal=f"{abc.DEFENSIVE_SHARE:.0%} prior + {1 - abc.DEFENSIVE_SHARE:.0%} "
        "(multivariate normal kernel over the kernel set x prior over the other inferred)",
        fixed=kept["fixed"],
        priors={n: [PRIORS[n].low, PRIORS[n].high, PRIORS[n].shape] for n in inferred},
        bands={p.name: [p.low, p.high, p.source] for p in pat.PATTERNS},
        defaults_note="parameters not in the table keep the registry defaults",
    )


def resample(fit_table: pd.DataFrame, weights: Any, k: int, seed: int) -> pd.DataFrame:
    """``k`` draws resampled by weight (systematic), for predictive simulations."""
    import numpy as np

    rng = np.random.default_rng(seed)
    positions = (rng.random() + np.arange(k)) / k
    index = np.searchsorted(np.cumsum(weights), positions).clip(0, len(weights) - 1)
    return fit_table.iloc[index].reset_index(drop=True)


def simulate_many(draws: pd.DataFrame, workers: int | None, seed: int) -> pd.DataFrame:
    """Pattern statistics at each row of ``draws`` (one run each, seeds from ``seed``)."""
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    import pandas as pd

    from isk_defection.experiments.calibration import abc

    rows = draws.to_dict("records")
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(rows))]
    with ProcessPoolExecutor(max_workers=workers or 2) as pool:
        values = list(pool.map(abc.simulate_patterns, rows, seeds))
    return pd.DataFrame(values)


def diagnose(
    out: Path, fit: dict[str, Any], inferred: list[str], quick: bool, workers: int | None
) -> dict[str, Any]:
    """Posterior predictive check, marginals, pairs and identifiability."""
    import pandas as pd

    from isk_defection.experiments.calibration import diagnostics

    table, weights = fit["table"], fit["weights"]
    draws = resample(table, weights, PREDICTIVE[quick], seed=7)
    values = simulate_many(draws, workers, seed=8)
    pd.concat([draws, values], axis=1).to_csv(out / "predictive.csv", index=False)
    summary = diagnostics.predictive_summary(values)
    diagnostics.predictive_figure(
        values,
        out / "predictive.png",
        f"posterior predictive check: {len(values)} simulations at posterior draws; "
        "green: reported band",
    )
    diagnostics.marginals_figure(table, weights, out / "marginals.png")
    ident = diagnostics.identifiability(table, weights)
    shown = ident.sort_values("width_share").parameter.head(8).tolist()  # the most informed
    diagnostics.pairs_figure(table[shown], weights, out / "pairs.png")
    ident.to_csv(out / "identifiability.csv", index=False)
    points = point_check(ident, POINT_SEEDS[quick], workers)
    points.to_csv(out / "points.csv", index=False)
    return {
        "predictive": summary,
        "identifiability": ident,
        "correlations": diagnostics.correlations(table, weights),
        "points": points,
    }


def point_check(ident: pd.DataFrame, seeds: int, workers: int | None) -> pd.DataFrame:
    """Bands met at the registry defaults and at the posterior's marginal medians, per seed.

    Which point should be the model's default is an empirical question: the marginal
    medians of a posterior need not be a point that fits (each band can be met by other
    combinations), so both are run on the same seeds and the bands each meets counted.
    """
    import pandas as pd

    from isk_defection.experiments.calibration import patterns as pat

    median = dict(zip(ident.parameter, ident["median"], strict=True))
    values = pd.concat(  # the same seeds at both points (common random numbers)
        [simulate_many(pd.DataFrame([point] * seeds), workers, seed=9) for point in ({}, median)],
        ignore_index=True,
    )
    inside = pd.DataFrame(pat.misses(values) == 0, columns=[p.name for p in pat.CONSTRAINING])
    inside.insert(0, "point", ["defaults"] * seeds + ["posterior median"] * seeds)
    inside.insert(1, "bands_met", inside.drop(columns="point").sum(axis=1))
    return inside


def coverage_only(out: Path, n: int, *, workers: int | None = None) -> int:
    """``--coverage-only``: the coverage check for the screen of a finished calibration."""
    from isk_defection.experiments import folders
    from isk_defection.experiments.calibration import screen

    if n < 1:
        raise ValueError(f"--coverage: must be >= 1 with --coverage-only (got {n})")
    kept, report = screen.load(out), out / "calibration.md"
    if kept is None or not report.exists():
        raise ValueError(f"--out: no finished calibration in {out} (run defection calibrate)")
    with folders.claim(out, "calibrate"):
        table = coverage_check(out, kept["inferred"], n, kernel=kept.get("kernel"), workers=workers)
        add_coverage_section(report, table)
    print(f"wrote {out / 'coverage.csv'} and its table in {report}")
    return 0


def add_coverage_section(report: Path, table: pd.DataFrame) -> None:
    """Put the coverage table in calibration.md (replacing an earlier one)."""
    text = report.read_text().split("\n## Coverage on synthetic data")[0].rstrip("\n")
    report.write_text(text + "\n\n" + "\n".join(coverage_section(table)))


def coverage_check(
    out: Path,
    inferred: list[str],
    n: int,
    *,
    kernel: list[str] | None = None,
    workers: int | None = None,
    seed: int = 99,
) -> pd.DataFrame:
    """Draw truths from the prior, simulate their patterns, calibrate quickly, count coverage."""
    import numpy as np
    import pandas as pd

    from isk_defection.experiments.calibration import abc, diagnostics
    from isk_defection.experiments.calibration.priors import sample

    rng = np.random.default_rng(seed)
    truths = pd.DataFrame(sample(n, rng, inferred), columns=inferred)
    records = []
    for i, truth in truths.iterrows():
        values = abc.simulate_patterns(truth.to_dict(), seed=int(rng.integers(2**31)))
        folder = out / "coverage" / f"truth_{i:02d}"
        fit = abc.calibrate(
            folder,
            inferred,
            abc.QUICK,
            kernel=kernel,
            bands=abc.Bands.around(values),
            workers=workers,
            progress=False,
            seed=seed * 10_000 + int(i),  # each synthetic fit its own particles' seeds
        )
        ident = diagnostics.identifiability(fit["table"], fit["weights"])
        for row in ident.itertuples():
            inside = bool(row.low <= truth[row.parameter] <= row.high)
            records.append(
                {
                    "truth": i,
                    "parameter": row.parameter,
                    "true": truth[row.parameter],
                    "low": row.low,
                    "high": row.high,
                    "inside": inside,
                    "width_share": row.width_share,
                }
            )
        print(f"coverage: synthetic data set {i + 1} of {n} done")
    pd.DataFrame(records).to_csv(out / "coverage_draws.csv", index=False)
    summary = diagnostics.coverage_summary(records)
    summary.to_csv(out / "coverage.csv", index=False)
    return summary


def points_section(points: pd.DataFrame) -> list[str]:
    """calibration.md's comparison of the defaults with the posterior's marginal medians."""
    met = points.groupby("point", sort=False)["bands_met"]
    shares = points.drop(columns="bands_met").groupby("point", sort=False).mean()
    n = len(points.columns) - 2
    return [
        "## Which point is the default",
        "",
        f"Bands met (of {n}) at the registry defaults and at the posterior's marginal "
        f"medians, {met.size().iloc[0]} seeds each, the same seeds at both:",
        "",
        "| point | bands met: mean [min, max] | bands missed in most seeds |",
        "| --- | --- | --- |",
        *[
            f"| {name} | {m.mean():.1f} [{m.min()}, {m.max()}] | "
            + (", ".join(c for c in shares.columns if shares.loc[name, c] < 0.5) or "none")
            + " |"
            for name, m in met
        ],
        "",
        "The defaults stay the v2 point fit when it meets more bands than the marginal "
        "medians, which need not be a point that fits at all (each band can be met by "
        "other combinations). Every verdict that matters is read across the posterior "
        "draws, not at either point.",
        "",
    ]


def coverage_section(cov: pd.DataFrame) -> list[str]:
    """calibration.md's coverage table, and how to read it."""
    from isk_defection.experiments.calibration import abc
    from isk_defection.experiments.stats import wilson

    covered, fits = int(cov.covered.sum()), int(cov.fits.sum())
    low, high = wilson(covered, fits)
    return [
        "## Coverage on synthetic data",
        "",
        f"{int(cov.fits.max())} parameter sets drawn from the prior; each one's patterns "
        "simulated, bands as wide as the reported ones centred on them, and a quick "
        f"calibration ({abc.QUICK.particles} particles, {abc.QUICK.generations} generations) "
        "fitted to them. Coverage = how often the true value fell inside the 90% credible "
        "interval: well below 90% means the method is over-confident; near 100% with a "
        "credible interval as wide as the prior's (last column near 1) means the quick fit "
        "learnt little, not that it is well calibrated.",
        "",
        f"Overall: the truth inside in {covered:,} of {fits:,} intervals ({covered / fits:.0%}; "
        f"Wilson 95% [{low:.0%}, {high:.0%}]) against the nominal 90%.",
        "",
        "| parameter | synthetic fits | true value in the 90% CrI | mean CrI / prior |",
        "| --- | --- | --- | --- |",
        *[
            f"| `{r.parameter}` | {r.fits} | {r.coverage:.0%} | {r.width:.2f} |"
            for r in cov.itertuples()
        ],
        "",
    ]


def ess(weights: Any) -> float:
    """Kish's effective sample size of normalised importance weights."""
    import numpy as np

    w = np.asarray(weights, float)
    return float(w.sum() ** 2 / (w**2).sum())


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x == x and abs(x) != float("inf") else "n/a"


def write_report(
    out: Path,
    fit: dict[str, Any],
    inferred: list[str],
    kept: dict[str, Any],
    budget: Budget,
    report: dict[str, Any],
    seconds: float,
) -> None:
    """Write calibration.md: method, budget, acceptance, fit, identifiability in words.

    ``seconds``: the diagnostics' time (the ABC's own is in ``fit``).
    """
    from isk_defection.experiments.calibration import abc
    from isk_defection.experiments.calibration import patterns as pat

    ident, pred = report["identifiability"], report["predictive"]
    gens = fit["generations"]
    lines = [
        "# Calibration: ABC-SMC posterior of the baseline against the reported patterns",
        "",
        f"Inferred ({len(inferred)}): {', '.join(f'`{n}`' for n in inferred)}. Screening: "
        f"{kept['method']}; {kept['rule']}. The other {len(kept['fixed'])} priors are fixed "
        "at their defaults (screen.json gives each reason).",
        "",
        f"**Proposal.** Each generation draws {abc.DEFENSIVE_SHARE:.0%} of its candidates "
        "from the prior and the rest from pyabc's multivariate normal kernel fitted to the "
        "last population over the strongly influential parameters "
        f"({', '.join(f'`{n}`' for n in kept.get('kernel', inferred))}; "
        f"{kept.get('kernel_rule', 'all inferred')}), the other inferred parameters "
        "redrawn from their prior. The prior share is a defensive mixture (Hesterberg 1995): "
        "it caps every importance weight at five times the prior's, where a kernel over all "
        "25 parameters had left an effective sample size of 7 of 200.",
        "",
        f"**Budget.** {budget.particles} particles per generation, {len(gens)} generations, "
        f"{fit['simulations']:,} simulations ({budget.agents:,} agents, {pat.STEPS} weeks "
        f"each), {fit['seconds'] / 60:.1f} min of ABC (its generations' own wall time), then "
        f"{seconds / 60:.1f} min of diagnostics. "
        f"Final tolerance {_fmt(fit['final_epsilon'])} (0 = every band met); acceptance "
        f"rate of the last generation {fit['acceptance_rate']:.1%}. Effective sample size of "
        f"the final weights {ess(fit['weights']):.1f} of {len(fit['weights'])} (1 / sum of "
        "squared weights): below about 50, every weighted summary below rests on few "
        "distinct particles and is itself uncertain.",
        "",
        "| generation | tolerance | simulations | acceptance rate |",
        "| --- | --- | --- | --- |",
        *[
            f"| {g['t']} | {_fmt(g['epsilon'])} | {g['simulations']:,} | {g['acceptance']:.1%} |"
            for g in gens
        ],
        "",
        "## Posterior predictive check",
        "",
        "| pattern | band | role | predictive median [90%] | share inside |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {r.pattern} | {r.band} | {r.role} | {_fmt(r.median)} [{_fmt(r.low)}, "
            f"{_fmt(r.high)}] | {r.inside:.0%} |"
            for r in pred.itertuples()
        ],
        "",
        "![predictive](predictive.png)",
        "",
        "## Marginals and identifiability",
        "",
        "| parameter | prior | posterior median [90% CrI] | CrI / prior's 90% | in words |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| `{r.parameter}` | {r.prior} | {_fmt(r.median)} [{_fmt(r.low)}, {_fmt(r.high)}] "
            f"| {r.width_share:.2f} | {r.identified} |"
            for r in ident.itertuples()
        ],
        "",
        "Pairwise plot: the 8 parameters with the narrowest credible intervals. Strongest "
        "posterior correlations (parameters that trade off against each other): "
        + ("; ".join(report["correlations"]) or "none")
        + ".",
        "",
        "![marginals](marginals.png)",
        "",
        "![pairs](pairs.png)",
        "",
    ]
    lines += points_section(report["points"])
    if "coverage" in report:
        lines += coverage_section(report["coverage"])
    (out / "calibration.md").write_text("\n".join(lines))
    (out / "calibration.json").write_text(
        json.dumps(
            {
                "inferred": inferred,
                "simulations": fit["simulations"],
                "generations": gens,
                "seconds": round(seconds, 1),
                "final_epsilon": fit["final_epsilon"],
            },
            indent=2,
            default=float,
        )
    )
