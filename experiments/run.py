"""One simulation from start to files: time series (CSV, Parquet), figure, summary table."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from model import DefectionModel  # noqa: E402
from model.groups import GROUP_LABELS, GROUP_NAMES  # noqa: E402
from model.policy import Schedule  # noqa: E402


def simulate(
    steps: int,
    preset: str = "baseline",
    seed: int | None = None,
    progress: bool = True,
    **overrides: Any,
) -> DefectionModel:
    """Build the model (validating every input first) and run it for ``steps`` weeks."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: must be a non-negative integer (got {steps!r})")
    model = DefectionModel(preset=preset, rng=seed, **overrides)
    for _ in tqdm(range(steps), desc="weeks", unit="wk", disable=not progress, leave=False):
        model.step()
    return model


def summary(model: DefectionModel) -> pd.DataFrame:
    """Per group: members at the start (incl. freed prisoners), at the end, defected, rate."""
    ledger = model.ledger
    rows = []
    for code, name in enumerate(GROUP_NAMES):
        start = int(ledger["start"][code] + ledger["joined"][code])
        rows.append(
            {
                "group": GROUP_LABELS[name],
                "start": start,
                "end": model.stats[f"{name}_members"],
                "defected": int(ledger["defected"][code]),
                "rate": ledger["defected"][code] / start if start else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def format_summary(table: pd.DataFrame, model: DefectionModel) -> str:
    """A readable text table, then IS-K's balance and the scale."""
    lines = [f"{'group':<36}{'start':>8}{'end':>8}{'defected':>10}{'rate':>8}"]
    for row in table.itertuples():
        rate = "" if pd.isna(row.rate) else f"{row.rate:.1%}"
        lines.append(f"{row.group:<36}{row.start:>8}{row.end:>8}{row.defected:>10}{rate:>8}")
    ledger = model.ledger
    freed = int(ledger["joined"][-1] - ledger["defected"].sum())
    lines.append(
        f"IS-K: {ledger['start'][-1]} at start + {freed} freed + {ledger['defected'].sum()} "
        f"defectors - {ledger['removed'].sum()} killed or captured = {model.isk_members} "
        f"agents ({model.isk_strength:,.0f} people)"
    )
    lines.append(
        f"week {model.steps} ({model.date}); 1 agent = {model.scale:.1f} people; "
        f"legitimacy {model.legitimacy:.2f}; resources {model.resources:.2f}"
    )
    return "\n".join(lines)


def plot_defection(frame: pd.DataFrame, path: Path, title: str) -> None:
    """Cumulative defection rate per group, and IS-K strength with weekly attacks."""
    dates = pd.to_datetime(frame["date"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    for name in GROUP_NAMES:
        top.plot(dates, 100 * frame[f"{name}_defection_rate"], label=GROUP_LABELS[name])
    top.set_ylabel("defected to IS-K (% of group)")
    top.set_title(title)
    top.legend(fontsize=8, ncol=2)
    bottom.plot(dates, frame["isk_strength"], color="black", label="IS-K strength (people)")
    bottom.set_ylabel("IS-K members (people)")
    attacks = bottom.twinx()
    attacks.bar(dates, frame["attacks"], width=5, color="tab:red", alpha=0.4, label="attacks")
    attacks.set_ylabel("IS-K attacks per week", color="tab:red")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_record(model: DefectionModel, steps: int) -> dict[str, Any]:
    """What is needed to reproduce the run: preset, seed, steps, parameters, versions."""
    params = {k: v.describe() if isinstance(v, Schedule) else v for k, v in model.p.items()}
    return {
        "preset": model.preset,
        "seed": model.seed,
        "steps": steps,
        "parameters": params,
        "moves": [vars(m) for m in model.policy.moves],
        "versions": {pkg: version(pkg) for pkg in ("mesa", "numpy", "pandas", "isk-defection")},
    }


def write_outputs(model: DefectionModel, steps: int, out: Path) -> list[Path]:
    """Write the run's files into ``out`` atomically: all of them appear, or none."""
    frame = model.datacollector.get_model_vars_dataframe()
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], None]] = {
        "timeseries.csv": lambda p: frame.to_csv(p, index=False),
        "timeseries.parquet": lambda p: frame.to_parquet(p, index=False),
        "summary.csv": lambda p: summary(model).to_csv(p, index=False),
        "run.json": lambda p: p.write_text(json.dumps(run_record(model, steps), indent=2)),
        "defection.png": lambda p: plot_defection(
            frame, p, f"Defection to IS-K — preset {model.preset}, seed {model.seed}"
        ),
    }
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in writers:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in writers]
