"""One simulation from start to files: time series (CSV, Parquet), figure, summary table.

The files are made for analysis without cleaning: dates are dates (ISO text in CSV,
``date32`` in Parquet), every time-series row carries the run's seed and preset, columns
in agents and in people are named as such and the people-per-agent scale is in the file,
and ``run.json`` records the parameters and the provenance (package version, commit of
this project, Python, platform, command line).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from tqdm import tqdm

from isk_defection.experiments.memory import check_need
from isk_defection.experiments.provenance import provenance
from isk_defection.model import DefectionModel
from isk_defection.model import parameters as registry
from isk_defection.model.groups import GROUP_LABELS, GROUP_NAMES
from isk_defection.model.policy import Schedule

MAX_STEPS = registry.MAX_STEPS
# Mesa keeps one record per agent per week; measured at about 60 bytes each (tuples of
# shared strings and a float), plus the DataFrame built from them when written.
AGENT_RECORD_BYTES = 120
# The model itself (arrays, network, a step's temporaries): 818 MB at 1,000,000 agents in
# benchmarks/scale.py, with a margin.
MODEL_BYTES_PER_AGENT = 1_000
IDENTITY = ("seed", "preset")  # columns put in front of every time-series row


def check_steps(steps: Any, option: str = "--steps") -> int:
    """Weeks to simulate: a whole number from 0 to MAX_STEPS (so dates stay in the calendar)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"{option}: must be an integer in [0, {MAX_STEPS:,}] (got {steps!r})")
    return steps


def check_seed(seed: Any, option: str = "--seed") -> int | None:
    """A seed: a non-negative whole number (or None for a fresh random run)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"{option}: must be an integer in [0, 2**63) (got {seed!r})")
    return seed


def records_agents(values: Any) -> bool:
    """Whether a run with these resolved parameters records agent reporters.

    The registry's ``collect_agent_data`` is a switch (True/False) or, in model v2,
    ``auto``/``on``/``off`` where ``auto`` records up to ``AGENT_DATA_LIMIT`` agents.
    """
    values = _as_dict(values)
    setting = values.get("collect_agent_data", False)
    if setting == "auto":
        limit = getattr(registry, "AGENT_DATA_LIMIT", 10_000)
        return int(values.get("population", 0)) <= limit
    return setting in (True, "on")


def check_memory(values: Any, steps: int, option: str = "--set") -> None:
    """Refuse, before it starts, a run that cannot fit in memory (the model or its records).

    Every limit counts: physical memory, a container's cap, ``ulimit -v`` (``memory``).
    """
    values = _as_dict(values)
    agents = int(values.get("population", 0))
    model = agents * MODEL_BYTES_PER_AGENT
    check_need(model, f"{agents:,} agents", f"{option} population", "use fewer agents")
    if records_agents(values):
        check_need(
            model + agents * (steps + 1) * AGENT_RECORD_BYTES,
            f"recording {agents:,} agents for {steps + 1:,} weeks",
            f"{option} collect_agent_data",
            "use --set collect_agent_data=off (or fewer agents or weeks)",
        )


def simulate(
    steps: int,
    preset: str = "baseline",
    seed: int | None = None,
    progress: bool | None = True,
    **overrides: Any,
) -> DefectionModel:
    """Build the model (validating every input first) and run it for ``steps`` weeks.

    ``progress=None`` shows the bar only on a terminal (and never with TQDM_DISABLE).
    """
    check_steps(steps, "steps")
    model = DefectionModel(preset=preset, rng=check_seed(seed, "seed"), **overrides)
    disable = None if progress is None else not progress
    for _ in tqdm(range(steps), desc="weeks", unit="wk", disable=disable, leave=False):
        model.step()
    return model


def parameter_values(model: DefectionModel) -> dict[str, Any]:
    """The model's resolved parameters as a plain dict (a mapping or a dataclass)."""
    return _as_dict(model.p)


def _as_dict(p: Any) -> dict[str, Any]:
    """Resolved parameters as a dict, whether the registry gives a mapping or a dataclass."""
    if isinstance(p, Mapping):
        return dict(p.items())
    if dataclasses.is_dataclass(p):
        return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    return dict(vars(p))


def _people_per_agent(model: DefectionModel, code: int, name: str) -> float:
    """People per agent in a group: per group in model v2, one scale for all before."""
    if f"{name}_people_per_agent" in model.stats:
        return float(model.stats[f"{name}_people_per_agent"])
    scale: Any = getattr(model, "people_per_agent", getattr(model, "scale", 1.0))
    return float(scale[code]) if hasattr(scale, "__len__") else float(scale)


def _agents_by_group(model: DefectionModel) -> list[int]:
    """Agents per origin group at the end (any allegiance), IS-K last."""
    import numpy as np

    return np.bincount(model.population.group, minlength=len(GROUP_NAMES) + 1).tolist()


def summary(model: DefectionModel) -> pd.DataFrame:
    """Per group, in people (and the agents that stand for them): at the start and since.

    The ledger counts people (each agent stands for its group's ``people_per_agent``);
    ``start_people`` includes arrivals such as freed prisoners.
    """
    ledger = model.ledger
    agents = _agents_by_group(model)
    rows = []
    for code, name in enumerate(GROUP_NAMES):
        start = float(ledger["start"][code] + ledger["joined"][code])
        defected = float(ledger["defected"][code])
        deserted = float(ledger["deserted"][code]) if "deserted" in ledger else 0.0
        rows.append(
            {
                "group": GROUP_LABELS[name],
                "agents": int(agents[code]),
                "people_per_agent": _people_per_agent(model, code, name),
                "start_people": start,
                "loyal_people": float(model.stats[f"{name}_members"]),
                "defected_people": defected,
                "deserted_people": deserted,
                "defection_rate": defected / start if start else float("nan"),
                "desertion_rate": deserted / start if start else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def format_summary(table: pd.DataFrame, model: DefectionModel) -> str:
    """A readable text table in people, then IS-K's balance and the date."""
    head = f"{'group (people)':<36}{'start':>9}{'loyal':>9}{'to IS-K':>9}{'deserted':>9}{'rate':>7}"
    lines = [head]
    for row in table.itertuples():
        rate = "" if pd.isna(row.defection_rate) else f"{row.defection_rate:.1%}"
        lines.append(
            f"{row.group:<36}{row.start_people:>9,.0f}{row.loyal_people:>9,.0f}"
            f"{row.defected_people:>9,.0f}{row.deserted_people:>9,.0f}{rate:>7}"
        )
    stats = model.stats
    removed = stats.get("cumulative_isk_removed", float(model.ledger["removed"].sum()))
    lines.append(
        f"IS-K: {stats['isk_strength']:,.0f} people in {model.isk_members:,} agents; "
        f"{stats['cumulative_defections']:,.0f} defectors joined, {removed:,.0f} killed or "
        "captured so far"
    )
    lines.append(
        f"week {model.steps} ({model.date}); overall defection rate "
        f"{stats.get('defection_rate', float('nan')):.1%}; legitimacy {model.legitimacy:.2f}; "
        f"resources {model.resources:.2f}"
    )
    return "\n".join(lines)


def timeseries(model: DefectionModel) -> pd.DataFrame:
    """One row per week: seed and preset, then every model column; dates as dates."""
    frame = model.datacollector.get_model_vars_dataframe().copy()
    if "date" in frame:
        frame["date"] = [
            d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in frame["date"]
        ]
    frame.insert(0, "preset", model.preset)
    frame.insert(0, "seed", pd.array([model.seed] * len(frame), dtype="Int64"))
    return frame


def plot_defection(frame: pd.DataFrame, path: Path, title: str) -> None:
    """Cumulative defection rate per group, and IS-K strength with weekly attacks."""
    dates = pd.to_datetime(frame["date"])
    fig = Figure(figsize=(10, 8))
    top, bottom = fig.subplots(2, 1, sharex=True)
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


def _plain(value: Any) -> Any:
    """A parameter value as JSON: schedules as their text, NumPy scalars as numbers."""
    if isinstance(value, Schedule):
        return value.describe()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def run_record(
    model: DefectionModel,
    steps: int,
    argv: list[str] | None = None,
    posterior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What is needed to reproduce the run: preset, seed, steps, parameters, provenance.

    ``posterior``: the posterior file and draw the parameters came from, and which of its
    values ``--set`` overrode.
    """
    params = {k: _plain(v) for k, v in parameter_values(model).items()}
    extra = {} if posterior is None else {"posterior": posterior}
    return extra | {
        "preset": model.preset,
        "seed": model.seed,
        "steps": steps,
        "parameters": params,
        "moves": [{k: _plain(v) for k, v in vars(m).items()} for m in model.policy.moves],
        "provenance": provenance(argv),
    }


def agent_frame(model: DefectionModel) -> pd.DataFrame | None:
    """Mesa's agent records (one row per agent per week), or None when not recorded."""
    if not getattr(model.datacollector, "agent_reporters", None):
        return None
    frame = model.datacollector.get_agent_vars_dataframe().reset_index()
    frame = frame.rename(columns={"Step": "step", "AgentID": "agent_id"})
    frame["step"] = frame["step"].astype("int64")
    frame.insert(0, "seed", pd.array([model.seed] * len(frame), dtype="Int64"))
    return frame


def write_outputs(
    model: DefectionModel,
    steps: int,
    out: Path,
    argv: list[str] | None = None,
    posterior: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the run's files into ``out`` atomically: all of them appear, or none."""
    frame = timeseries(model)
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], object]] = {
        "timeseries.csv": lambda p: frame.to_csv(p, index=False),
        "timeseries.parquet": lambda p: frame.to_parquet(p, index=False),
        "summary.csv": lambda p: summary(model).to_csv(p, index=False),
        "run.json": lambda p: p.write_text(
            json.dumps(run_record(model, steps, argv, posterior), indent=2, default=str)
        ),
        "defection.png": lambda p: plot_defection(
            frame, p, f"Defection to IS-K — preset {model.preset}, seed {model.seed}"
        ),
    }
    agents = agent_frame(model)
    if agents is not None:
        writers["agents.parquet"] = lambda p: agents.to_parquet(p, index=False)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in writers:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in writers]
