"""Outcome of a sweep against one swept parameter (line with 95% interval) or two (heatmap)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from isk_defection.experiments.sweep import atomic_write, mean_interval, read_results


def final_outcomes(out: Path) -> tuple[pd.DataFrame, list[str]]:
    """Each run's last recorded row, and the names of the swept parameters.

    A folder that is missing, is not a sweep's, or has no finished run is refused with
    one line naming FOLDER, before anything is drawn.
    """
    if not out.exists():
        raise ValueError(f"FOLDER: {out} does not exist (give a sweep's --out folder)")
    if not out.is_dir():
        raise ValueError(f"FOLDER: {out} is a file, not a sweep's folder")
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        varied = list(manifest["varied"])
    except FileNotFoundError:
        raise ValueError(
            f"FOLDER: {out} is not a sweep's folder (no manifest.json; "
            "`defection sweep SPEC --out FOLDER` makes one)"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"FOLDER: {out}/manifest.json is damaged (not a sweep manifest)") from None
    results = read_results(out)
    if results.empty:
        failed = sum(r.get("status") == "failed" for r in manifest.get("runs", []))
        why = f"all {failed} finished runs failed (see manifest.json)" if failed else "yet"
        raise ValueError(f"FOLDER: {out} has no successful runs {why}")
    last = results.loc[results.groupby("run")["step"].idxmax()]
    return last, varied


def plot_sweep(
    out: Path,
    x: str | None = None,
    y: str | None = None,
    outcome: str = "isk_strength",
    path: Path | None = None,
) -> Path:
    """Draw ``outcome`` against ``x`` (and ``y``) at the end of the runs; return the PNG."""
    out = Path(out)
    last, varied = final_outcomes(out)
    x = x or (varied[0] if varied else None)
    for name, role in ((x, "--x"), (y, "--y")):
        if name is not None and name not in varied:
            raise ValueError(
                f"{role}: must be a swept parameter ({', '.join(varied)}) (got {name!r})"
            )
    if x is None:
        raise ValueError("--x: the sweep varies no parameter")
    recorded = [c for c in last.columns if c not in ("run", "point", "replicate", "seed", "step")]
    if outcome not in recorded:
        raise ValueError(
            f"--outcome: {outcome!r} was not recorded (recorded: {', '.join(recorded[:12])}"
            f"{', ...' if len(recorded) > 12 else ''})"
        )
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    if y is None:
        rows = [
            mean_interval(outcome, g[outcome].to_numpy(float), seed=i) | {x: v}
            for i, (v, g) in enumerate(last.groupby(x))
        ]
        line = pd.DataFrame(rows).sort_values(x)
        ax.plot(line[x], line[f"{outcome}_mean"], marker="o")
        ax.fill_between(
            line[x],
            line[f"{outcome}_low"],
            line[f"{outcome}_high"],
            alpha=0.3,
            label="95% interval of the mean",
        )
        ax.set_xlabel(x)
        ax.set_ylabel(outcome)
        ax.legend()
    else:
        grid = last.pivot_table(index=y, columns=x, values=outcome, aggfunc="mean")
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(grid.columns)), [_label(c) for c in grid.columns], rotation=45)
        ax.set_yticks(range(len(grid.index)), [_label(r) for r in grid.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        fig.colorbar(image, ax=ax, label=f"mean {outcome}")
    others = [name for name in varied if name not in (x, y)]
    pooled = f"\npooled over {', '.join(others)}" if others else ""
    ax.set_title(f"{outcome} at the last week, {len(last)} runs{pooled}", fontsize=10)
    fig.tight_layout()
    path = Path(path or out / f"{outcome}_by_{x}{'_' + y if y else ''}.png")
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    return path


def _label(value: object) -> str:
    """A tick label: numbers to three digits, scheduled levers as their schedule text."""
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)
