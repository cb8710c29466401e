"""Charts over time, read straight from the model's weekly history.

Mesa's plot component rebuilds the whole DataFrame and a new Figure every frame (Mesa
#2701), so it slows down as a run gets longer. Here the figure and its lines are built
once per model; each frame sets the lines' data from the DataCollector's per-column
lists (no DataFrame), thins long series to a fixed number of points and redraws only the
lines over a kept background (viz/blit.py), so a frame costs the same in week 20 and
week 2,000. Every lever move and prisoner release the
user made is marked by a dashed vertical line in its lever's colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import solara
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter
from mesa.visualization.utils import update_counter

from model import LEVERS, DefectionModel
from model.groups import GROUP_NAMES, TALIBAN_FACTIONS
from viz.blit import BlitFigure
from viz.style import GROUP_COLORS, ISK_COLOR, LEVER_COLORS, RELEASE_COLOR, SHORT_LABELS

MAX_POINTS = 600  # points per line; longer histories are thinned to this many
NICE = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclass(frozen=True)
class Series:
    """One line: the history column it shows, its label and colour, and how to scale it."""

    column: str
    label: str
    color: str
    per_agent: bool = False  # multiply by people per agent (agents -> people)
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart: a title, its lines, its y scale and where its legend goes.

    ``scale`` is ``unit`` (fixed [0, 1]), ``zero`` (from 0 to a rounded maximum),
    ``share`` (the same, at most 1), ``band`` (rounded to tenths around the data) or ``log``.
    """

    title: str
    series: tuple[Series, ...]
    scale: str = "zero"
    legend: bool = True  # False: the colours are explained elsewhere (group legend, sliders)


def _group(name: str, column: str) -> Series:
    return Series(f"{name}_{column}", SHORT_LABELS[name], GROUP_COLORS[name])


PANELS: tuple[Panel, ...] = (
    Panel(
        "Defected so far (share of each group)",
        tuple(_group(name, "defection_rate") for name in GROUP_NAMES),
        scale="share",
        legend=False,
    ),
    Panel(
        "IS-K vs Taliban strength (people, log scale)",
        (
            Series("taliban_members", "Taliban (loyal)", GROUP_COLORS["kandahar"], per_agent=True),
            Series("isk_strength", "IS-K", ISK_COLOR),
        ),
        scale="log",
    ),
    Panel(
        "Mean loyalty per Taliban faction",
        tuple(_group(name, "loyalty") for name in TALIBAN_FACTIONS),
        scale="band",
        legend=False,
    ),
    Panel(
        "Regime legitimacy and resources",
        (
            Series("legitimacy", "legitimacy", "#6a3d9a"),
            Series("resources", "resources", "#b15928", dashed=True),
        ),
        scale="unit",
    ),
    Panel(
        "Defections and IS-K attacks per week",
        (
            Series("defections", "defections (agents)", RELEASE_COLOR),
            Series("attacks", "IS-K attacks", ISK_COLOR, dashed=True),
        ),
    ),
    Panel(
        "Policy levers",
        tuple(Series(lever, lever.replace("_", " "), LEVER_COLORS[lever]) for lever in LEVERS),
        scale="unit",
        legend=False,
    ),
)


def thin(length: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` evenly spread points of a series, always with the last."""
    if length <= limit:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, limit).round().astype(int))


def nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.5, 2, 3, 4, 5, 6, 8 times a power of ten) >= value."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in NICE if m * power >= value * (1 - 1e-12))


def y_limits(scale: str, values: np.ndarray) -> tuple[float, float]:
    """Y limits for a panel: they hold the data and change only in round jumps.

    Round limits keep the drawn background (ticks, labels) valid for many frames.
    """
    finite = values[np.isfinite(values)]
    if scale == "unit" or len(finite) == 0:
        return (-0.03, 1.03) if scale == "unit" else (0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if scale == "log":
        low, high = max(low, 1.0), max(high, 1.0)
        return 10.0 ** math.floor(math.log10(low)), 10.0 ** (math.floor(math.log10(high)) + 1)
    if scale == "band":
        return max(math.floor(low * 10 - 0.5) / 10, 0.0), min(math.ceil(high * 10 + 0.5) / 10, 1.0)
    top = nice_ceiling(max(high * 1.05, 0.01 if high <= 1 else 5.0))
    return 0.0, min(top, 1.0) if scale == "share" else top


class ChartsPicture:
    """A matplotlib figure of one model's history, updated in place each frame."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(8.0, 6.6), dpi=80)
        self.figure.subplots_adjust(
            left=0.08, right=0.98, top=0.86, bottom=0.08, hspace=0.45, wspace=0.2
        )
        self.axes: list[Axes] = list(self.figure.subplots(3, 2, sharex=True).flat)
        self.lines: list[list[Line2D]] = []
        for ax, panel in zip(self.axes, PANELS, strict=True):
            ax.set_title(panel.title, fontsize=9.5, loc="left")
            ax.tick_params(labelsize=8.5)
            ax.grid(alpha=0.25)
            ax.set_yscale("log" if panel.scale == "log" else "linear")
            if panel.scale == "share":
                ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            self.lines.append(
                [
                    ax.plot(
                        [], [], color=s.color, ls="--" if s.dashed else "-", lw=1.4, label=s.label
                    )[0]
                    for s in panel.series
                ]
            )
            if panel.legend:
                ax.legend(loc="best", fontsize=8, framealpha=0.8)
        for ax in self.axes[-2:]:
            ax.set_xlabel("week", fontsize=8.5)
        self.figure.legend(
            handles=[
                Line2D([], [], color=GROUP_COLORS[n], lw=2, label=SHORT_LABELS[n])
                for n in GROUP_NAMES
            ],
            loc="upper left",
            bbox_to_anchor=(0.02, 1.0),
            ncols=3,
            fontsize=8.5,
            frameon=False,
        )
        self.frames = BlitFigure(self.figure, [line for lines in self.lines for line in lines])
        self._limits: list[tuple[float, float]] = []
        self._marked = 0

    def update(self, model: DefectionModel) -> None:
        """Set every line to the model's history; redraw the background if limits or moves changed."""
        history = model.datacollector.model_vars
        keep = thin(len(history["week"]))
        weeks = np.asarray(history["week"], dtype=float)[keep]
        limits: list[tuple[float, float]] = [(0.0, nice_ceiling(max(model.week, 10)))]
        for panel, lines in zip(PANELS, self.lines, strict=True):
            columns = []
            for series, line in zip(panel.series, lines, strict=True):
                values = np.asarray(history[series.column], dtype=float)[keep]
                if series.per_agent:
                    values = values * model.scale
                if panel.scale == "log":
                    values = np.where(values > 0, values, np.nan)
                line.set_data(weeks, values)
                columns.append(values)
            limits.append(y_limits(panel.scale, np.concatenate(columns)))
        if limits != self._limits or len(model.policy.moves) != self._marked:
            self._set_limits(limits)
            self._mark_moves(model)
            self.frames.invalidate()

    def _set_limits(self, limits: list[tuple[float, float]]) -> None:
        self._limits = limits
        self.axes[0].set_xlim(*limits[0])
        for ax, ylim in zip(self.axes, limits[1:], strict=True):
            ax.set_ylim(*ylim)

    def _mark_moves(self, model: DefectionModel) -> None:
        moves = model.policy.moves
        for move in moves[self._marked :]:
            color = LEVER_COLORS.get(move.lever, RELEASE_COLOR)
            for ax in self.axes:
                ax.axvline(move.week, color=color, ls="--", lw=1.0, alpha=0.8)
            if move.lever in LEVER_COLORS:
                self.axes[-1].plot([move.week], [move.value], "o", color=color, ms=4)
        self._marked = len(moves)

    def png(self, model: DefectionModel) -> bytes:
        """The charts of ``model`` now, as PNG bytes."""
        self.update(model)
        return self.frames.png()


@solara.component
def ChartsView(model: DefectionModel) -> None:
    """The charts of ``model``, redrawn on every frame (Mesa's update counter)."""
    frame = update_counter.value
    picture = solara.use_memo(ChartsPicture, [model])
    png = solara.use_memo(lambda: picture.png(model), [model, frame])
    with solara.Card("Over time", margin=0):
        solara.Image(png, width="100%")
        solara.Text(
            "Dashed vertical lines mark your lever moves (in the lever's colour, as next to "
            "its slider; red: a prisoner release). Group colours as in the agents picture."
        )
