"""Dose–response of every lever: ``defection doses``.

Each lever is held from week 0 at 0, 0.1, ..., 1 while the rest of the baseline timeline
runs as it did; every dose is run on the same seeds (common random numbers across doses
and levers). After two years (104 weeks) it reports, per lever and dose, the share of
each group lost to IS-K and to desertion, IS-K's strength, its peak, its fastest
four-week growth, and the largest weekly intake as a share of IS-K's absorptive capacity
(which must never exceed 1). Each lever is one resumable sweep through the sweep engine
(``OUT/sweeps/<lever>``), so it runs on local processes or a Dask cluster alike.

Output folder::

    OUT/doses.csv        lever, dose, outcome: mean and 95% bootstrap interval over seeds
    OUT/doses.png        lost to IS-K and to desertion by group, and IS-K strength, per lever
    OUT/ceiling.json     every lever at 1 at once: IS-K peak and fastest 4-week growth
    OUT/sweeps/<lever>/  the sweep of each lever (data, manifest, summary)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.experiments import console, folders
from isk_defection.experiments.options import add_engine_options
from isk_defection.experiments.spec import load_spec
from isk_defection.experiments.sweep import atomic_write, mean_interval, read_results, run_sweep
from isk_defection.model.groups import GROUP_LABELS, GROUP_NAMES
from isk_defection.model.policy import LEVERS

WEEKS = 104
DOSES = tuple(round(0.1 * i, 1) for i in range(11))
GROUP_RATES = [f"{g}_{kind}_rate" for g in GROUP_NAMES for kind in ("defection", "desertion")]
OUTPUTS = ["isk_strength", "isk_intake", "isk_capacity", "taliban_strength", *GROUP_RATES]
# Okabe–Ito (colour-blind safe) plus grey, one colour per origin group
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
    "#D55E00", "#CC79A7", "#000000", "#999999",
)  # fmt: skip


@dataclass(frozen=True)
class DoseDesign:
    """What the dose–response runs: agents, weeks, seeds per dose, master seed."""

    population: int = 2_000
    weeks: int = WEEKS
    replicates: int = 8
    seed: int = 20_211_015

    @classmethod
    def quick(cls) -> DoseDesign:
        """A smoke run for CI: fewer agents and seeds, one year."""
        return cls(population=600, weeks=52, replicates=2)


@dataclass(frozen=True)
class Ceiling:
    """IS-K with every lever at 1 at once: does it stay a clandestine organisation."""

    weeks: int
    seeds: int
    start_people: float
    peak_people_mean: float
    peak_people_max: float
    fastest_4_week_growth_mean: float
    fastest_4_week_growth_max: float
    max_intake_over_capacity: float


def lever_spec(lever: str, design: DoseDesign) -> Any:
    """The sweep of one lever over the doses, the rest of the baseline as it was."""
    return load_spec(
        {
            "sweep": {
                "name": f"doses-{lever}",
                "steps": design.weeks,
                "replicates": design.replicates,
                "seed": design.seed,
                "outputs": OUTPUTS,
            },
            "fixed": {"population": design.population},
            "grid": {lever: list(DOSES)},
        }
    )


def run_doses(
    out: Path,
    design: DoseDesign,
    engine: dict[str, Any],
    progress: bool | None = True,
    levers: tuple[str, ...] = LEVERS,
) -> pd.DataFrame:
    """Run (or resume) each lever's sweep; write and return the dose–response table."""
    tables = []
    for lever in levers:
        folder = out / "sweeps" / lever
        resume = engine.get("resume", False) or (folder / "manifest.json").exists()
        run_sweep(
            lever_spec(lever, design),
            folder,
            **(engine | {"resume": resume}),
            progress=progress,
        )
        tables.append(dose_table(lever, read_results(folder), design))
    table = pd.concat(tables, ignore_index=True)
    atomic_write(out / "doses.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table


AFTER_RELEASE = 4  # growth is measured from week 4, after the August 2021 prison release


def fastest_growth(strength: np.ndarray, window: int = 4) -> float:
    """The largest ratio of IS-K strength to its value ``window`` weeks before.

    Measured from week ``AFTER_RELEASE``, so that the release (a jump by input, §6) does
    not count as growth: this is how fast recruitment alone can grow IS-K.
    """
    strength = np.asarray(strength, dtype=float)[AFTER_RELEASE:]
    before, after = strength[:-window], strength[window:]
    ratios = np.divide(after, before, out=np.ones(len(after)), where=before > 0)
    return float(ratios.max(initial=1.0))


def per_run(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its last week's outcomes and its trajectory's extremes."""
    rows = []
    for run, data in results.groupby("run"):
        data = data.sort_values("step")
        last = data.iloc[-1]
        capacity = data.isk_capacity.to_numpy()
        ratio = np.divide(
            data.isk_intake.to_numpy(), capacity, out=np.zeros(len(data)), where=capacity > 0
        )
        rows.append(
            {
                "run": run,
                "point": last.point,
                "isk_strength": last.isk_strength,
                "isk_peak": data.isk_strength.max(),
                "isk_fastest_4_week_growth": fastest_growth(data.isk_strength.to_numpy()),
                "max_intake_over_capacity": ratio.max(initial=0.0),
                "taliban_strength": last.taliban_strength,
                **{rate: last[rate] for rate in GROUP_RATES},
            }
        )
    return pd.DataFrame(rows)


def dose_table(lever: str, results: pd.DataFrame, design: DoseDesign) -> pd.DataFrame:
    """Per dose: mean and 95% interval over seeds of every outcome (long format)."""
    runs = per_run(results)
    rows = []
    for point, group in runs.groupby("point"):
        for outcome in [c for c in runs.columns if c not in ("run", "point")]:
            stats = mean_interval("v", group[outcome].to_numpy(float), seed=design.seed + point)
            rows.append(
                {
                    "lever": lever,
                    "dose": DOSES[int(point)],
                    "outcome": outcome,
                    "mean": stats["v_mean"],
                    "low": stats["v_low"],
                    "high": stats["v_high"],
                    "seeds": len(group),
                }
            )
    return pd.DataFrame(rows)


def ceiling(design: DoseDesign, seeds: int = 8) -> Ceiling:
    """Every lever at 1 at once for ``design.weeks`` weeks: IS-K's peak and fastest growth."""
    from isk_defection.model import DefectionModel

    peaks, growths, ratios, start = [], [], [], 0.0
    every_lever_at_one: dict[str, Any] = dict.fromkeys(LEVERS, 1.0)
    for seed in range(seeds):
        model = DefectionModel(
            rng=design.seed + seed,
            population=design.population,
            collect_agent_data="off",
            **every_lever_at_one,
        )
        start = model.isk_strength
        for _ in range(design.weeks):
            model.step()
        history = model.datacollector.get_model_vars_dataframe()
        peaks.append(history.isk_strength.max())
        growths.append(fastest_growth(history.isk_strength.to_numpy()))
        capacity = history.isk_capacity.to_numpy()
        ratios.append(
            np.divide(history.isk_intake, capacity, out=np.zeros(len(capacity)), where=capacity > 0)
            .max()
            .item()
        )
    return Ceiling(
        weeks=design.weeks,
        seeds=seeds,
        start_people=start,
        peak_people_mean=float(np.mean(peaks)),
        peak_people_max=float(np.max(peaks)),
        fastest_4_week_growth_mean=float(np.mean(growths)),
        fastest_4_week_growth_max=float(np.max(growths)),
        max_intake_over_capacity=float(np.max(ratios)),
    )


def plot_doses(table: pd.DataFrame, path: Path) -> Path:
    """Rows: levers; columns: lost to IS-K, deserted (per group), IS-K strength."""
    from matplotlib.figure import Figure

    levers = list(dict.fromkeys(table.lever))
    fig = Figure(figsize=(15, 2.1 * len(levers)))
    axes = fig.subplots(len(levers), 4, squeeze=False)
    for row, lever in zip(axes, levers, strict=True):
        data = table[table.lever == lever]
        for kind, ax in zip(("defection", "desertion"), row[:2], strict=True):
            for colour, group in zip(PALETTE, GROUP_NAMES, strict=True):
                line = data[data.outcome == f"{group}_{kind}_rate"]
                ax.plot(line.dose, line["mean"], color=colour, label=GROUP_LABELS[group])
                ax.fill_between(line.dose, line.low, line.high, color=colour, alpha=0.15)
            ax.set_ylim(0, 1)
        for ax, outcome in zip(row[2:], ("isk_strength", "max_intake_over_capacity"), strict=True):
            line = data[data.outcome == outcome]
            ax.plot(line.dose, line["mean"], color="#D55E00")
            ax.fill_between(line.dose, line.low, line.high, color="#D55E00", alpha=0.2)
        row[3].axhline(1.0, color="#000000", linestyle="--", linewidth=0.8)
        row[3].set_ylim(0, 1.1)
        row[0].set_ylabel(lever, fontsize=9)
    for ax, title in zip(
        axes[0],
        (
            "share lost to IS-K",
            "share deserted",
            "IS-K strength (people)",
            "largest weekly intake / capacity",
        ),
        strict=True,
    ):
        ax.set_title(title, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("lever held from week 0 at")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(
        "Dose–response after two years (mean and 95% interval over seeds; other levers as in "
        "the baseline)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.035, 1, 0.98))
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return path


def add_parser(commands: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Register ``defection doses`` on the CLI's subcommand parsers."""
    parser = commands.add_parser(
        "doses",
        parents=[common] if common is not None else [],
        help="dose-response of every lever (0 to 1): losses to IS-K and desertion by group",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="results/doses", help="output folder (results/doses)")
    parser.add_argument("--quick", action="store_true", help="600 agents, one year, 2 seeds (CI)")
    add_engine_options(parser, what="dose-response")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the dose–response, write the table, the figure and the ceiling; print a digest."""
    design = DoseDesign.quick() if args.quick else DoseDesign()
    out = Path(args.out)
    progress = console.progress(args)
    engine = {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "local_cluster": args.local_cluster,
        "resume": args.resume,
    }
    with folders.claim(out, "doses"):
        table = run_doses(out, design, engine, progress=progress)
        plot = plot_doses(table, out / "doses.png")
        top = ceiling(design, seeds=design.replicates)
        text = json.dumps(asdict(top))
        atomic_write(out / "ceiling.json", lambda tmp: Path(tmp).write_text(text))
    worst = table[table.outcome == "max_intake_over_capacity"]["mean"].max()
    print(
        f"IS-K intake / absorptive capacity, largest weekly ratio at any lever and dose: "
        f"{worst:.2f} (never above 1)\n"
        f"every lever at 1 for {top.weeks} weeks: IS-K from {top.start_people:,.0f} to a peak "
        f"of {top.peak_people_mean:,.0f} people (max {top.peak_people_max:,.0f}); fastest "
        f"4-week growth x{top.fastest_4_week_growth_mean:.2f}\n"
        f"wrote {out / 'doses.csv'}, {plot} and {out / 'ceiling.json'}"
    )
    return 0
