"""Resolution study: every calibration pattern and the main outputs against the number of
agents, from 1,000 agents to 1:1 (one agent per person).

Usage:  python benchmarks/resolution.py [--seeds 20] [--full-seeds 10] [--sizes 1000 ...]

Baseline runs of the calibration's length (``patterns.STEPS`` weeks), each size with its
own seeds (SeedSequence children of one root, so sizes share nothing). For each statistic
and size: the mean, the seed-to-seed standard deviation and the standard error of the
mean; each mean is compared with the 1:1 mean (z = difference / combined standard error;
|z| > 3 is flagged: with about 20 statistics and 5 sizes, one flag in a hundred
comparisons is expected by chance at |z| > 2.6, so 3 is a conservative line). The
spread ratio sd(size) / sd(1:1) shows how much of the seed-to-seed spread is the agents'
granularity rather than the process. Prints Markdown tables and writes
benchmarks/results/resolution.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 2_000, 4_000, 8_000, 16_000)
FULL = 0  # marks the 1:1 run (the full_scale preset)
MAIN = {  # main outputs beyond the patterns: column -> how it is read
    "isk_strength": "final",
    "cumulative_defections": "final",
    "cumulative_desertions": "final",
    "taliban_loyalty": "final",
    "attacks": "total",
}
FLAG = 3.0  # |z| above which a mean is flagged as disagreeing with the 1:1 mean


def one_run(agents: int, seed: int) -> dict[str, float]:
    """Pattern statistics and main outputs of one baseline run at ``agents`` (0: 1:1)."""
    from isk_defection.experiments.calibration import patterns as pat
    from isk_defection.model import DefectionModel

    size = {"preset": "full_scale"} if agents == FULL else {"population": agents}
    columns = ["week", *dict.fromkeys([*pat.COLUMNS, *MAIN])]
    model = DefectionModel(rng=seed, collect_agent_data=False, columns=columns, **size)
    for _ in range(pat.STEPS):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    outcomes = pd.DataFrame([pat.measure(frame.rename(columns={"week": "step"}))])
    row = {k: float(v) for k, v in pat.pattern_values(outcomes).iloc[0].items()}
    for name, how in MAIN.items():
        row[name] = float(frame[name].iloc[-1] if how == "final" else frame[name].sum())
    return row


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd, standard error, z against 1:1 and spread ratio per statistic and size."""
    rows = []
    reference = runs[runs.agents == FULL] if (runs.agents == FULL).any() else None
    for (agents, statistic), values in runs.melt(
        id_vars=["agents", "seed"], var_name="statistic"
    ).groupby(["agents", "statistic"])["value"]:
        v = values.dropna().to_numpy()
        mean, sd = float(v.mean()), float(v.std(ddof=1))
        row = {"agents": agents, "statistic": statistic, "runs": len(v), "mean": mean, "sd": sd}
        row["se"] = sd / math.sqrt(len(v))
        if reference is not None:
            ref = reference[statistic].dropna().to_numpy()
            ref_se = ref.std(ddof=1) / math.sqrt(len(ref))
            combined = math.hypot(row["se"], ref_se)
            row["z_vs_full"] = (mean - ref.mean()) / combined if combined > 0 else 0.0
            row["sd_over_full"] = sd / ref.std(ddof=1) if ref.std(ddof=1) > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def label(agents: int) -> str:
    return "1:1" if agents == FULL else f"{agents:,}"


def markdown(summary: pd.DataFrame) -> str:
    """Mean ± sd per statistic (rows) and size (columns); a flagged mean gets a dagger."""
    sizes = sorted(summary.agents.unique(), key=lambda a: math.inf if a == FULL else a)
    lines = [
        "| statistic | " + " | ".join(label(a) for a in sizes) + " |",
        "| --- |" + " --- |" * len(sizes),
    ]
    for statistic, rows in summary.groupby("statistic", sort=False):
        cells = []
        for agents in sizes:
            r = rows[rows.agents == agents].iloc[0]
            flag = " †" if abs(r.get("z_vs_full", 0.0)) > FLAG else ""
            cells.append(f"{_g(r['mean'])} ± {_g(r['sd'])}{flag}")
        lines.append(f"| {statistic} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _g(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def main() -> None:
    """Run every size and seed, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per size below 1:1")
    parser.add_argument("--full-seeds", type=int, default=10, help="seeds at 1:1 (0: none)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    if args.seeds < 2 or args.full_seeds < 0 or min(args.sizes) < 100:
        sys.exit("seeds: at least 2; full-seeds: at least 0; sizes: at least 100 agents")
    plan = [(a, args.seeds) for a in args.sizes] + (
        [(FULL, args.full_seeds)] * bool(args.full_seeds)
    )
    root = np.random.SeedSequence(2026_18)
    rows, costs, start = [], {}, time.process_time()
    for (agents, seeds), child in zip(plan, root.spawn(len(plan)), strict=True):
        began = time.process_time()
        for seed in child.generate_state(seeds, dtype=np.uint32).tolist():
            rows.append({"agents": agents, "seed": seed, **one_run(agents, seed)})
        costs[label(agents)] = (time.process_time() - began) / seeds
        if sys.stderr.isatty():
            print(f"{label(agents)} agents: {seeds} runs done", file=sys.stderr)
    runs = pd.DataFrame(rows)
    summary = summarise(runs)
    table = markdown(summary)
    print(table)
    flagged = summary[summary.get("z_vs_full", pd.Series(0.0, summary.index)).abs() > FLAG]
    print(f"\nmeans disagreeing with 1:1 (|z| > {FLAG}): {len(flagged)}")
    print(flagged[["agents", "statistic", "mean", "z_vs_full"]].to_string(index=False))
    print("CPU-s per run:", ", ".join(f"{k}: {v:.3f}" for k, v in costs.items()))
    out = Path(__file__).with_name("results") / "resolution.json"
    payload = {
        "command": "python benchmarks/resolution.py " + " ".join(sys.argv[1:]),
        "cpu_s": time.process_time() - start,
        "cpu_s_per_run": costs,
        "load_average": os.getloadavg(),
        "runs": rows,
        "summary": summary.to_dict(orient="records"),
        "table_markdown": table,
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out)


if __name__ == "__main__":
    main()
