"""Run named experiments, write their folders and the summary REPORT.md."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from isk_defection.experiments import folders
from isk_defection.experiments.claims import EXPERIMENTS
from isk_defection.experiments.claims.framework import Context
from isk_defection.experiments.claims.report import headline, load_result, summary, write

REPORT = "REPORT.md"


def resolve_names(names: Sequence[str]) -> list[str]:
    """Experiment names in canonical order; unknown names are refused in one line."""
    unknown = [n for n in names if n.upper() not in EXPERIMENTS]
    if unknown:
        raise ValueError(
            f"experiment: must be one of {', '.join(EXPERIMENTS)} or --all (got {unknown[0]!r})"
        )
    wanted = {n.upper() for n in names}
    return [n for n in EXPERIMENTS if n in wanted]


def reproduce(
    names: Sequence[str],
    out: Path,
    *,
    quick: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    resume: bool = False,
    progress: bool | None = True,
    root_report: Path | None = None,
    posterior: Path | None = None,
    draws: int | None = None,
) -> dict[str, str]:
    """Run each experiment (skipping finished ones under ``resume``); return verdicts.

    ``out/REPORT.md`` always summarises every experiment found in ``out``; with
    ``root_report`` the same table, links rewritten, is copied there. With ``posterior``
    (an ensemble file) every claim is read across ``draws`` posterior draws instead
    (``experiments.claims.posterior``) and REPORT.md gains that table. The folder is
    claimed as ``reproduce`` output (``experiments.folders``) for the whole time.
    """
    with folders.claim(Path(out), "reproduce"):
        return _reproduce(
            names, Path(out), quick=quick, workers=workers, scheduler=scheduler,
            local_cluster=local_cluster, resume=resume, progress=progress,
            root_report=root_report, posterior=posterior, draws=draws,
        )  # fmt: skip


def _reproduce(
    names: Sequence[str],
    out: Path,
    *,
    quick: bool,
    workers: int | None,
    scheduler: str | None,
    local_cluster: bool,
    resume: bool,
    progress: bool | None,
    root_report: Path | None,
    posterior: Path | None,
    draws: int | None,
) -> dict[str, str]:
    if posterior is not None:
        from isk_defection.experiments.claims.posterior import (
            DEFAULT_DRAWS,
            reproduce_posterior,
        )

        verdicts = reproduce_posterior(
            resolve_names(names),
            out,
            Path(posterior),
            draws=draws or DEFAULT_DRAWS,
            workers=workers,
            scheduler=scheduler,
            local_cluster=local_cluster,
            resume=resume,
            progress=progress,
        )
        _write_reports(out, root_report)
        return verdicts
    mode = "quick" if quick else "full"
    verdicts = {}
    for name in resolve_names(names):
        experiment, folder = EXPERIMENTS[name], out / name
        done = load_result(folder)
        if resume and done and done["mode"] == mode:
            verdicts[name] = done["verdict"]
            print(f"{name}: {done['verdict']} (kept from an earlier {mode} run)")
            continue
        started = time.perf_counter()
        ctx = Context(folder, quick, workers, scheduler, local_cluster, resume, progress)
        finding = experiment.run(ctx)
        seconds = time.perf_counter() - started
        write(experiment, finding, folder, quick, seconds)
        verdicts[name] = str(finding.verdict)
        print(f"{name}: {finding.verdict} in {seconds:.0f} s — {headline(finding)}")
    _write_reports(out, root_report)
    return verdicts


def _write_reports(out: Path, root_report: Path | None) -> None:
    """out/REPORT.md (point verdicts, then posterior verdicts if any) and its root copy."""
    from isk_defection.experiments.claims.posterior import summary_table

    names = list(EXPERIMENTS)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(summary(out, names) + "\n" + summary_table(out, names))
    print(f"wrote {out / REPORT}")
    if root_report is not None:
        prefix = Path(os.path.relpath(out.resolve(), root_report.resolve().parent)).as_posix()
        text = summary(out, names, link_prefix=f"{prefix}/") + "\n"
        text += summary_table(out, names, link_prefix=f"{prefix}/")
        staging = root_report.with_suffix(".md.tmp")
        staging.write_text(text)
        os.replace(staging, root_report)
        print(f"wrote {root_report}")
