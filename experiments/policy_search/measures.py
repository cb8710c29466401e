"""What a run is judged by: named measures computed from the model's weekly columns.

A measure reduces one run to a number: a model column at the last week, its mean, total
or peak over the weeks 1..steps, or a share of the Taliban factions' people (the groups
weighted by their real sizes, the ``<group>_size`` parameters). Column names come from
``model.reporters.columns()`` so that the same measure works before and after the model
renames or adds columns; a measure the running model cannot supply is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.groups import TALIBAN_FACTIONS
from model.reporters import columns

HOWS = ("final", "mean", "total", "peak")


@dataclass(frozen=True)
class Measure:
    """A per-run number: ``how`` over ``column``, or a size-weighted share of the factions.

    ``kind`` is ``column`` (one model column) or ``factions`` (the Taliban factions' final
    ``<faction>_<suffix>`` rates, summed over ``suffixes`` and weighted by faction size in
    people). ``optional_suffixes`` are added only where the model records them.
    """

    name: str
    label: str
    sense: str
    unit: str
    kind: str = "column"
    column: str = ""
    how: str = "final"
    suffixes: tuple[str, ...] = ()
    optional_suffixes: tuple[str, ...] = ()

    def needs(self, available: set[str] | None = None) -> list[str]:
        """The model columns this measure reads (optional ones only if ``available``)."""
        if self.kind == "column":
            return [self.column]
        available = set(columns()) if available is None else available
        suffixes = [*self.suffixes, *(s for s in self.optional_suffixes if _has(s, available))]
        return [f"{f}_{s}" for s in suffixes for f in TALIBAN_FACTIONS]

    def missing(self) -> list[str]:
        """Required columns the current model does not record."""
        have = set(columns())
        return [c for c in self.needs(have) if c not in have]

    def compute(self, series: dict[str, np.ndarray], sizes: dict[str, float]) -> float:
        """The measure of one run from its weekly values (week 0 first) and faction sizes."""
        if self.kind == "column":
            values = np.asarray(series[self.column], dtype=float)
            weeks = values[1:] if len(values) > 1 else values
            if self.how == "final":
                return float(values[-1])
            if self.how == "mean":
                return float(np.mean(weeks))
            if self.how == "total":
                return float(np.sum(weeks))
            return float(np.max(values))
        total = sum(sizes[f] for f in TALIBAN_FACTIONS)
        share = 0.0
        for name, values in series.items():
            faction = next((f for f in TALIBAN_FACTIONS if name.startswith(f"{f}_")), None)
            if faction is not None:
                final = float(values[-1])
                share += sizes[faction] * (0.0 if np.isnan(final) else final)
        return share / total if total else float("nan")


def _has(suffix: str, available: set[str]) -> bool:
    return all(f"{f}_{suffix}" in available for f in TALIBAN_FACTIONS)


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("isk_strength", "IS-K strength at the end (people)", "min", "people",
                column="isk_strength", how="final"),
        Measure("isk_peak", "IS-K peak strength (people)", "min", "people",
                column="isk_strength", how="peak"),
        Measure("attacks", "IS-K attacks in Afghanistan over the horizon", "min", "attacks",
                column="attacks", how="total"),
        Measure("resources", "international standing: mean resources (aid, recognition)",
                "max", "[0,1]", column="resources", how="mean"),
        Measure("legitimacy", "regime legitimacy, mean over the horizon", "max", "[0,1]",
                column="legitimacy", how="mean"),
        Measure("taliban_strength", "loyal Taliban strength at the end (people)", "max",
                "people", column="taliban_strength", how="final"),
        Measure("regime_losses_isk", "share of the Taliban factions lost to IS-K", "min",
                "share", kind="factions", suffixes=("defection_rate",)),
        Measure("regime_losses_desertion", "share of the Taliban factions lost to desertion",
                "min", "share", kind="factions", suffixes=("desertion_rate",)),
        Measure("regime_losses", "share of the Taliban factions lost to IS-K or desertion",
                "min", "share", kind="factions", suffixes=("defection_rate",),
                optional_suffixes=("desertion_rate",)),
    )
}  # fmt: skip


def measure_for(where: str, name: Any) -> Measure:
    """A named measure, or ``COLUMN:HOW`` for any model column (e.g. ``isk_recruiters:peak``)."""
    if not isinstance(name, str):
        raise ValueError(f"{where}: must be a measure name (got {name!r})")
    if name in MEASURES:
        return MEASURES[name]
    column, sep, how = name.partition(":")
    if sep and column in columns() and how in HOWS:
        return Measure(name, f"{column} ({how})", "min", "", column=column, how=how)
    if sep:
        raise ValueError(
            f"{where}: {name!r} needs a model column and one of {', '.join(HOWS)} "
            "(see model.reporters.columns())"
        )
    raise ValueError(
        f"{where}: unknown measure {name!r} (one of {', '.join(MEASURES)}, or COLUMN:HOW)"
    )


def faction_sizes(params: Any) -> dict[str, float]:
    """Each Taliban faction's real size in people, from the run's resolved parameters."""
    return {f: float(_get(params, f"{f}_size")) for f in TALIBAN_FACTIONS}


def _get(params: Any, name: str) -> Any:
    """A parameter from the model's parameter set, a dict today or an attribute object."""
    try:
        return params[name]
    except TypeError:
        return getattr(params, name)
