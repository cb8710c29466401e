"""Run named experiments, write their folders and the summary REPORT.md."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from experiments.claims import EXPERIMENTS
from experiments.claims.framework import Context
from experiments.claims.report import headline, load_result, summary, write

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
    progress: bool = True,
    root_report: Path | None = None,
) -> dict[str, str]:
    """Run each experiment (skipping finished ones under ``resume``); return verdicts.

    ``out/REPORT.md`` always summarises every experiment found in ``out``; with
    ``root_report`` the same table, links rewritten, is copied there.
    """
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
    (out / REPORT).write_text(summary(out, EXPERIMENTS))
    print(f"wrote {out / REPORT}")
    if root_report is not None:
        prefix = Path(os.path.relpath(out.resolve(), root_report.resolve().parent))
        text = summary(out, EXPERIMENTS, link_prefix=f"{prefix.as_posix()}/")
        staging = root_report.with_suffix(".md.tmp")
        staging.write_text(text)
        os.replace(staging, root_report)
        print(f"wrote {root_report}")
    return verdicts
