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

from isk_defection.model.groups import TALIBAN_FACTIONS
from isk_defection.model.reporters import columns

HOWS = ("final", "mean", "total", "peak")


@dataclass(frozen=True)
class Measure:
    """A per-run number: ``how`` over ``column``, or a size-weighted share of the factions.

    ``kind`` is ``column`` (one model column) or ``factions``: for each Taliban faction the
    sum of its ``<faction>_<suffix>`` shares over ``suffixes``, taken at the last week
    (``how = "final"``) or averaged over the weeks (``"mean"``), optionally as its
    ``complement`` (1 - share), then weighted by the factions' real sizes in people. When
    the model does not record those columns, ``fallback`` (another measure) stands in.
    """

    name: str
    label: str
    sense: str
    unit: str
    kind: str = "column"
    column: str = ""
    how: str = "final"
    suffixes: tuple[str, ...] = ()
    complement: bool = False
    fallback: Measure | None = None

    def resolved(self, available: set[str] | None = None) -> Measure:
        """The measure itself, or its fallback when the model lacks its columns."""
        available = set(columns()) if available is None else available
        if self.fallback is not None and any(c not in available for c in self._own()):
            return self.fallback.resolved(available)
        return self

    def _own(self) -> list[str]:
        if self.kind == "column":
            return [self.column]
        return [f"{f}_{s}" for s in self.suffixes for f in TALIBAN_FACTIONS]

    def needs(self, available: set[str] | None = None) -> list[str]:
        """The model columns this measure reads."""
        return self.resolved(available)._own()

    def missing(self) -> list[str]:
        """Required columns the current model does not record."""
        have = set(columns())
        return [c for c in self.needs(have) if c not in have]

    def compute(self, series: dict[str, np.ndarray], sizes: dict[str, float]) -> float:
        """The measure of one run from its weekly values (week 0 first) and faction sizes."""
        measure = self.resolved(set(series))
        if measure is not self:
            return measure.compute(series, sizes)
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
        for faction in TALIBAN_FACTIONS:
            shares = sum(
                np.nan_to_num(np.asarray(series[f"{faction}_{s}"], dtype=float))
                for s in self.suffixes
            )
            shares = 1.0 - shares if self.complement else shares
            weeks = shares[1:] if len(shares) > 1 else shares
            share += sizes[faction] * float(shares[-1] if self.how == "final" else np.mean(weeks))
        return share / total if total else float("nan")


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
        Measure("regime_losses_isk", "share of the Taliban factions' people who joined IS-K",
                "min", "share", kind="factions", suffixes=("defection_rate",)),
        Measure("regime_losses_desertion", "share of the Taliban factions' people away as "
                "deserters, on average over the horizon", "min", "share", kind="factions",
                suffixes=("desertion_rate",), how="mean"),
        Measure("regime_losses", "share of the Taliban factions' people not loyal at the end "
                "(in IS-K, deserted, killed or captured)", "min", "share", kind="factions",
                suffixes=("loyal_share",), complement=True,
                fallback=Measure("regime_losses", "share of the Taliban factions lost to IS-K",
                                 "min", "share", kind="factions", suffixes=("defection_rate",))),
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
