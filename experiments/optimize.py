"""``defection optimize``: many-objective robust search over lever paths (issue 11).

Which lever paths keep the regime together, contain IS-K and win standing — judged across
what we do not know (posterior draws x seeds), not at one parameter point? The search
(NSGA-II/III from pymoo) proposes lever paths, piecewise-constant over periods from
August 2021; every path is run in the same scenarios through the sweep engine's
executors (local processes, ``--scheduler``, ``--local-cluster``); each objective is a
robustness statistic over the scenarios. After the search: the Pareto set over every
path evaluated, the actual policy and Ali's inclusive government placed against it, a
stress test on fresh draws and seeds, and scenario discovery of when moderation pays.

Output folder::

    pareto.parquet     one row per Pareto path: levers by period, robust objectives,
                       per-measure statistics in sample and out of sample (``_out``)
    archive.parquet    every distinct path evaluated, with its generation and objectives
    references.csv     the reference policies' objectives and placement
    stress.csv         how each objective moved out of sample
    convergence.csv    hypervolume and feasible share per generation
    scenarios.csv      the in-sample and stress scenarios (draw, seed, parameters)
    *.png, report.md   figures and the report
    manifest.json      spec, hash, seeds, ensemble, versions, engine, timings
    checkpoint.pkl     the search state after the last finished generation (--resume)
    runs.jsonl         every finished model run's measures, appended as it finishes, so
                       that --resume repeats none of them
    stress.npz         the stress test's measures (kept for --resume)

Bad input (spec, posterior, options) stops with one line naming the field, exit status
2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isk_defection.experiments.options import add_engine_options

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep that light
    import numpy as np
    import pandas as pd

    from isk_defection.experiments.ensemble import Ensemble
    from isk_defection.experiments.spec import OptimizeSpec

MANIFEST = "manifest.json"
STRESS = "stress.npz"


@dataclass(frozen=True)
class OptimizeOutcome:
    """What a finished optimisation produced (the files are in ``folder``)."""

    folder: Path
    pareto: pd.DataFrame
    references: pd.DataFrame
    hypervolume: list[float]
    runs: int
    seconds: float
    label: str


def add_parser(commands: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Register ``defection optimize`` on the CLI's subcommand parsers.

    ``common`` is the CLI's parent parser of options every command takes (-q, --debug).
    """
    parser = commands.add_parser(
        "optimize",
        parents=[common] if common is not None else [],
        help="robust many-objective search over lever paths (NSGA-II/III, pymoo)",
        description=(__doc__ or "").split("Output folder::")[0].strip(),
        epilog="spec keys: see experiments/specs/optimize_example.toml (every key explained)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", help="the optimisation spec (TOML)")
    parser.add_argument("--out", help="output folder (default results/optimize/NAME[-quick])")
    parser.add_argument(
        "--quick", action="store_true", help="apply the spec's [quick] tables (a smoke run, CI)"
    )
    parser.add_argument(
        "--posterior",
        help="posterior ensemble (Parquet + JSON sidecar, see experiments/ensemble.py); "
        "without it: the defaults only, NOT robust across the posterior",
    )
    add_engine_options(parser, what="optimisation (from its last checkpoint)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """The subcommand: validate everything, run, print where the results are; exit status."""
    from isk_defection.experiments.console import progress
    from isk_defection.experiments.ensemble import defaults_ensemble, load_posterior
    from isk_defection.experiments.spec import load_optimize_spec

    spec = load_optimize_spec(args.spec, quick=args.quick)
    ensemble = load_posterior(args.posterior) if args.posterior else defaults_ensemble()
    suffix = "-quick" if args.quick else ""
    out = Path(args.out or Path("results/optimize") / f"{spec.name}{suffix}")
    outcome = optimize(
        spec,
        out,
        ensemble=ensemble,
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.local_cluster,
        resume=args.resume,
        progress=progress(args),
        argv=getattr(args, "argv", None),
    )
    if getattr(args, "quiet", False):
        return 0
    print(
        f"{spec.name}: {len(outcome.pareto)} Pareto paths from {outcome.runs:,} model runs in "
        f"{outcome.seconds / 60:.1f} min; hypervolume {outcome.hypervolume[-1]:.3f}"
    )
    if ensemble.is_defaults:
        print(f"NOTE: {ensemble.label}")
    print(f"wrote {out / 'report.md'}, {out / 'pareto.parquet'} and figures in {out}")
    return 0


def check(spec: OptimizeSpec, ensemble: Ensemble, out: Path, workers: int | None, resume: bool):
    """Refuse bad combinations before anything is written; return the run's hash."""
    from isk_defection.experiments import folders

    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"--workers: must be a positive integer (got {workers})")
    clash = sorted(set(spec.fixed) & set(ensemble.parameters))
    if clash:
        raise ValueError(f"fixed.{clash[0]}: also set by the posterior's draws; drop one")
    digest = f"{spec.digest}-{ensemble.digest}"
    manifest = out / MANIFEST
    folders.check(out, "optimize")  # a file, or another command's output: refused by name
    if manifest.exists():
        earlier = json.loads(manifest.read_text()).get("hash")
        if earlier != digest:
            raise ValueError(
                f"--out: {out} holds another optimisation (hash {earlier}); use another folder"
            )
        if not resume:
            raise ValueError(f"--out: {out} already holds this optimisation; add --resume")
    return digest


def optimize(
    spec: OptimizeSpec,
    out: Path | str,
    *,
    ensemble: Ensemble | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    resume: bool = False,
    progress: bool | None = True,
    argv: list[str] | None = None,
) -> OptimizeOutcome:
    """Search, analyse and report; the same spec, ensemble and seed give the same files."""
    from tqdm import tqdm

    from isk_defection.experiments.ensemble import defaults_ensemble
    from isk_defection.experiments.folders import claim
    from isk_defection.experiments.sweep import atomic_write, cores, executor

    out = Path(out)
    ensemble = ensemble or defaults_ensemble()
    digest = check(spec, ensemble, out, workers, resume)
    processes = f"{workers or cores()} processes"
    engine = scheduler or (f"Dask LocalCluster, {processes}" if local_cluster else processes)
    # the engine starts before the manifest is written: an unreachable scheduler leaves
    # no folder behind
    with claim(out, "optimize"), executor(workers, scheduler, local_cluster) as pool:
        manifest = _manifest(spec, ensemble, digest, out, engine, argv)
        atomic_write(out / MANIFEST, _text(json.dumps(manifest, indent=2, default=str)))
        started = time.perf_counter()
        total = spec.scenarios * (len(spec.references) + spec.population * spec.generations)
        total += spec.dose_runs + (spec.scenarios if spec.dose_runs else 0)  # + the actual
        disable = None if progress is None else not progress  # None: only on a terminal
        bar = tqdm(total=total, disable=disable, unit="run", desc=f"{spec.name} search")
        try:
            found = _search_and_stress(spec, ensemble, out, pool, digest, resume, bar)
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        outcome = _write_outputs(spec, ensemble, out, found, manifest, engine, seconds)
    return outcome


def _text(content: str):
    return lambda path: Path(path).write_text(content)


def _search_and_stress(spec, ensemble, out, pool, digest, resume, bar) -> dict[str, Any]:
    """Dose-response, search, then the stress test of the Pareto and the moderating paths."""
    import numpy as np

    from isk_defection.experiments.policy_search.analysis import pareto_set
    from isk_defection.experiments.policy_search.dose_response import run_dose_response
    from isk_defection.experiments.policy_search.search import (
        JOURNAL,
        Evaluations,
        Policy,
        candidate,
        run_search,
        scenarios,
        seed_streams,
    )

    def generation(state) -> None:
        bar.set_postfix(
            gen=f"{state.generation}/{spec.generations}", hv=f"{state.hypervolume[-1]:.3f}"
        )

    streams = seed_streams(spec.seed)
    in_sample = scenarios(ensemble, spec.draws, spec.seeds, streams["in_sample"])
    started = time.perf_counter()
    if spec.dose_levers:
        bar.set_description(f"{spec.name} dose-response")
    dose = run_dose_response(spec, in_sample, pool, out, bar.update)
    dose_seconds = time.perf_counter() - started
    bar.set_description(f"{spec.name} search")
    result = run_search(
        spec, ensemble, out, pool, digest=digest, resume=resume, on_generation=generation,
        progress=bar.update,
    )  # fmt: skip
    front = pareto_set(spec, result)
    stressed = _stress_set(spec, result, front)
    fresh = scenarios(ensemble, spec.stress_draws, spec.stress_seeds, streams["stress"])
    policies = [
        candidate(spec, x, name) for x, name in zip(stressed["x"], stressed["names"], strict=True)
    ]
    references = [Policy(name, name, {}) for name in spec.references]
    # with a posterior, the actual policy's stress runs also record the calibration
    # patterns: which pattern would move the parameters where moderation pays
    patterns = bool(spec.references) and not ensemble.is_defaults and bool(ensemble.varying())
    stored = _load_stress(out, digest, stressed["x"]) if resume else None
    if stored is None:
        bar.set_description(f"{spec.name} stress test")
        bar.total = bar.n + (len(policies) + len(references)) * len(fresh)
        bar.refresh()
        started = time.perf_counter()
        evaluator = Evaluations(spec, pool, bar.update, out / JOURNAL)
        values = evaluator.values(policies, fresh)
        pattern_values = None
        if references:
            actual = evaluator.values(references[:1], fresh, patterns=patterns)
            others = evaluator.values(references[1:], fresh)
            values = np.concatenate([values, actual, others])
            if patterns:
                pattern_values = evaluator.pattern_values(references[0], fresh)
        seconds = time.perf_counter() - started
        cpu = evaluator.cpu
        _save_stress(out, digest, stressed["x"], values, seconds, cpu, pattern_values)
    else:
        values, seconds, cpu, pattern_values = stored
    return {
        "result": result,
        "front": front,
        "stressed": stressed,
        "fresh": fresh,
        "dose": dose,
        "dose_seconds": dose_seconds,
        "stress_values": values,
        "stress_patterns": pattern_values,
        "stress_seconds": seconds,
        "stress_cpu": cpu,
    }


def _stress_set(spec, result, front) -> dict[str, Any]:
    """The Pareto paths, then per moderation lever the archive's best paths that use it."""
    import numpy as np

    from isk_defection.experiments.policy_search.moderation import champions
    from isk_defection.experiments.policy_search.robust import (
        constraint_violations,
        objective_losses,
    )

    actual = result.reference_values[0] if spec.references else None
    losses = objective_losses(spec, result.values, actual)
    violations = constraint_violations(spec, result.values, actual)
    feasible = np.all(violations <= 0, axis=1)
    rows = [np.asarray(x) for x in front.x]
    names = [f"path {i}" for i in range(len(front.x))]
    kinds = ["pareto"] * len(front.x)
    ok = [bool(np.all(v <= 0)) for v in front.violations]
    seen = {x.tobytes() for x in rows}
    for target in spec.moderation_targets:
        for k, i in enumerate(champions(spec, result.x, losses, feasible, target)):
            x = result.x[i]
            if x.tobytes() in seen:
                continue
            seen.add(x.tobytes())
            rows.append(x)
            names.append(f"{target} {k}")
            kinds.append(f"best {target}")
            ok.append(bool(feasible[i]))
    shape = (0, len(spec.variables))
    return {
        "x": np.array(rows) if rows else np.zeros(shape),
        "names": names,
        "kinds": kinds,
        "feasible": np.array(ok, dtype=bool),
    }


def _save_stress(
    out: Path,
    digest: str,
    x: np.ndarray,
    values: np.ndarray,
    seconds: float,
    cpu: float,
    patterns: np.ndarray | None,
) -> None:
    import numpy as np

    from isk_defection.experiments.sweep import atomic_write

    kept = np.zeros((0, 0)) if patterns is None else patterns

    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(
                handle, digest=np.array(digest), x=x, values=values, seconds=seconds, cpu=cpu,
                patterns=kept, has_patterns=patterns is not None,
            )  # fmt: skip

    atomic_write(out / STRESS, write)


def _load_stress(
    out: Path, digest: str, x: np.ndarray
) -> tuple[np.ndarray, float, float, np.ndarray | None] | None:
    import numpy as np

    path = out / STRESS
    if not path.exists():
        return None
    with np.load(path) as stored:
        if str(stored["digest"]) != digest or not np.array_equal(stored["x"], x):
            return None
        seconds = float(stored["seconds"]) if "seconds" in stored.files else 0.0
        cpu = float(stored["cpu"]) if "cpu" in stored.files else 0.0
        has = "has_patterns" in stored.files and bool(stored["has_patterns"])
        return stored["values"], seconds, cpu, stored["patterns"] if has else None


def _manifest(
    spec: OptimizeSpec,
    ensemble: Ensemble,
    digest: str,
    out: Path,
    engine: str,
    argv: list[str] | None,
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from isk_defection.experiments.provenance import provenance

    previous = out / MANIFEST
    earlier = json.loads(previous.read_text()) if previous.exists() else {}
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    resumed = earlier.get("resumed", []) + ([now] if earlier else [])
    origin = provenance(argv)
    for package in ("pymoo", "ema_workbench"):
        try:
            origin["versions"][package] = version(package)
        except PackageNotFoundError:  # scenario discovery's package is optional
            continue
    return {
        "name": spec.name,
        "hash": digest,
        "quick": spec.quick,
        "spec": spec.source,
        "seed": spec.seed,
        "ensemble": {
            "label": ensemble.label,
            "file": str(ensemble.source) if ensemble.source else None,
            "digest": ensemble.digest,
            "meta": ensemble.meta,
        },
        "notes": list(spec.notes),
        "engine": engine,
        "provenance": origin,
        "started": earlier.get("started", now),
        "resumed": resumed,
        "status": "running",
    }


def _write_outputs(spec, ensemble, out, found, manifest, engine, seconds) -> OptimizeOutcome:
    import numpy as np
    import pandas as pd

    from isk_defection.experiments.policy_search import analysis, moderation, report
    from isk_defection.experiments.policy_search.answer import Findings, lead
    from isk_defection.experiments.policy_search.dose_response import dose_table
    from isk_defection.experiments.policy_search.regret import regret_table
    from isk_defection.experiments.policy_search.robust import (
        constraint_values,
        constraint_violations,
        objective_losses,
    )
    from isk_defection.experiments.policy_search.search import moderating_rows, project
    from isk_defection.experiments.policy_search.sensitivity import sensitivity_table
    from isk_defection.experiments.sweep import atomic_write

    result, front, fresh, stressed = (
        found["result"],
        found["front"],
        found["fresh"],
        found["stressed"],
    )
    stress_values = found["stress_values"]
    n, paths = len(front.x), len(stressed["x"])
    path_values, ref_values = stress_values[:paths], stress_values[paths:]
    actual_in = result.reference_values[0] if spec.references else None
    actual_out = ref_values[0] if spec.references else None
    all_out_losses = objective_losses(spec, path_values, actual_out)
    out_losses = all_out_losses[:n]
    ref_out_losses = objective_losses(spec, ref_values, actual_out)
    ref_in_losses = objective_losses(spec, result.reference_values, actual_in)
    ref_in_violations = constraint_violations(spec, result.reference_values, actual_in)
    placements = [
        analysis.place(spec, front, name, ref_in_losses[i], ref_in_violations[i])
        for i, name in enumerate(spec.references)
    ]
    pareto = analysis.pareto_table(spec, front, ensemble, out_losses, path_values[:n])
    survivors = analysis.still_non_dominated(out_losses, ref_out_losses)
    pareto["non_dominated_out"] = survivors
    stress = analysis.stress_summary(spec, front.losses, out_losses)
    patterns = None
    if found["stress_patterns"] is not None:
        from isk_defection.experiments.calibration.patterns import PATTERNS

        patterns = pd.DataFrame(found["stress_patterns"], columns=[p.name for p in PATTERNS])
    answers: dict[str, Any] = {}
    other = np.zeros(len(fresh), dtype=bool)
    if spec.references:
        answers, other = moderation.lever_answers(
            spec, ensemble, stressed["x"], stressed["feasible"], path_values, ref_values[0],
            fresh, patterns,
        )  # fmt: skip
    archive_losses = objective_losses(spec, result.values, actual_in)
    archive = pd.DataFrame(result.x, columns=spec.variables)
    archive.insert(0, "generation", result.generation)
    for name, column in analysis.objective_columns(spec, archive_losses).items():
        archive[name] = column
    archive["feasible"] = np.all(constraint_violations(spec, result.values, actual_in) <= 0, axis=1)
    archive["seeded"] = _seeded_labels(spec, result, moderating_rows(spec))
    archive["ensemble"] = ensemble.label
    sensitivity = None
    if spec.references and spec.sensitivity_constraint is not None:
        sensitivity = sensitivity_table(
            spec, result.x, archive_losses, constraint_values(spec, result.values, actual_in),
            ref_in_losses[0], constraint_values(spec, result.reference_values[:1], actual_in)[0],
        )  # fmt: skip
    regret = None
    if len(stress_values):
        regret = regret_table(
            spec, [*stressed["names"], *spec.references],
            [*stressed["kinds"], *(["reference"] * len(spec.references))], stress_values,
        )  # fmt: skip
    doses = dose_table(spec, found["dose"]) if found["dose"] is not None else None
    findings = Findings(
        doses, answers, other, sensitivity, regret, stress, len(fresh),
        seeded=[p.text() for p in spec.moderation_paths],
    )  # fmt: skip
    references = _references_table(spec, placements, ref_out_losses, ensemble)
    convergence = pd.DataFrame(
        {
            "generation": np.arange(1, len(result.hypervolume) + 1),
            "hypervolume": result.hypervolume,
            "feasible_share": result.feasible,
        }
    )
    scenario_table = _scenario_table(spec, ensemble, fresh)
    moderation_levels = analysis.moderation_level(spec, front.x)
    reference_paths = {name: project(spec, name) for name in spec.references}
    writers = {
        "pareto.parquet": lambda p: pareto.to_parquet(p, index=False),
        "archive.parquet": lambda p: archive.to_parquet(p, index=False),
        "references.csv": lambda p: references.to_csv(p, index=False),
        "stress.csv": lambda p: stress.to_csv(p, index=False),
        "convergence.csv": lambda p: convergence.to_csv(p, index=False),
        "scenarios.csv": lambda p: scenario_table.to_csv(p, index=False),
        report.FIGURES["convergence"]: lambda p: report.plot_convergence(p, spec, result, ensemble),
        report.FIGURES["parallel"]: lambda p: report.plot_parallel(
            p, spec, front, placements, moderation_levels, ensemble
        ),
        report.FIGURES["tradeoffs"]: lambda p: report.plot_tradeoffs(
            p, spec, result, archive_losses, front, placements, moderation_levels, ensemble
        ),
        report.FIGURES["levers"]: lambda p: report.plot_levers(
            p, spec, front, reference_paths, moderation_levels, ensemble
        ),
    }
    if answers:
        table = moderation.pays_table(answers, fresh)
        writers["pays.csv"] = lambda p: table.to_csv(p, index=False)
    if doses is not None:
        writers["dose_response.csv"] = lambda p: doses.to_csv(p, index=False)
        writers[report.FIGURES["dose_response"]] = lambda p: report.plot_dose_response(
            p, spec, doses, ensemble
        )
    if sensitivity is not None:
        writers["constraint_sensitivity.csv"] = lambda p: sensitivity.to_csv(p, index=False)
    if regret is not None:
        writers["regret.csv"] = lambda p: regret.to_csv(p, index=False)
        writers[report.FIGURES["regret"]] = lambda p: report.plot_regret(p, spec, regret, ensemble)
    for name, write in writers.items():
        atomic_write(out / name, write)
    stress_runs = int(stress_values.shape[0] * stress_values.shape[1])
    dose_runs = spec.dose_runs if found["dose"] is not None else 0
    meta = {  # dose-response, search and stress test, over every session on this folder
        "seconds": result.seconds + found["stress_seconds"] + found["dose_seconds"],
        "runs": result.runs + stress_runs + dose_runs,
        "cpu": result.cpu + found["stress_cpu"] + (found["dose"].cpu if found["dose"] else 0.0),
        "engine": engine,
    }
    reference_out = {name: ref_out_losses[i] for i, name in enumerate(spec.references)}
    atomic_write(out / "answer.md", _text(lead(spec, ensemble, findings) + "\n"))
    atomic_write(
        out / "report.md",
        lambda p: report.write_report(
            p, spec, ensemble, result, front, placements, findings,
            stress, survivors, reference_out, pareto, meta,
        ),
    )  # fmt: skip
    manifest |= {
        "status": "finished",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "runs": meta["runs"],
        "dose_response_seconds": round(found["dose_seconds"], 1),
        "search_seconds": round(result.seconds, 1),
        "stress_seconds": round(found["stress_seconds"], 1),
        "this_session_seconds": round(seconds, 1),
        "model_run_cpu_seconds": round(meta["cpu"], 1),
        "pareto_paths": n,
        "stress_tested_paths": paths,
        "hypervolume": result.hypervolume,
    }
    atomic_write(out / MANIFEST, _text(json.dumps(manifest, indent=2, default=str)))
    return OptimizeOutcome(
        out, pareto, references, result.hypervolume, meta["runs"], meta["seconds"], ensemble.label
    )


def _seeded_labels(spec, result, rows) -> list[str]:
    """Per archive path: the structured moderating path it was seeded as, or ''."""
    names = {x.tobytes(): path.text() for path, x in reversed(rows)}
    return [
        names.get(x.tobytes(), "") if generation == 1 else ""
        for x, generation in zip(result.x, result.generation, strict=True)
    ]


def _references_table(spec, placements, out_losses, ensemble) -> pd.DataFrame:
    import pandas as pd

    from isk_defection.experiments.policy_search.robust import natural

    rows = []
    for i, p in enumerate(placements):
        row = {"policy": p.name, "feasible": p.feasible, "dominated_by": len(p.dominated_by)}
        row["epsilon"] = p.epsilon
        for j, o in enumerate(spec.objectives):
            row[o.name] = float(natural(p.losses[j], o.sense))
            row[f"{o.name}_out"] = float(natural(out_losses[i, j], o.sense))
            row[f"{o.name}_best_gain"] = p.best_gain[o.name]
        row["ensemble"] = ensemble.label
        rows.append(row)
    return pd.DataFrame(rows)


def _scenario_table(spec, ensemble, fresh) -> pd.DataFrame:
    import pandas as pd

    from isk_defection.experiments.policy_search.search import scenarios, seed_streams

    in_sample = scenarios(ensemble, spec.draws, spec.seeds, seed_streams(spec.seed)["in_sample"])
    rows = []
    for sample, scenes in (("in", in_sample), ("out", fresh)):
        for s in scenes:
            rows.append(
                {"sample": sample, "scenario": s.index, "draw": s.draw, "seed": s.seed} | s.params
            )
    return pd.DataFrame(rows)
