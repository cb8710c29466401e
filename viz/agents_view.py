"""The agents themselves: who is loyal, who went over to IS-K, and a sample of their ties.

Colour is the origin group; a paler dot is a less loyal member; IS-K members are black
(recruiters red) and sit in the central disc, in the sector facing the group they came
from; members who defected since the last picture carry a red ring. The figure and its
artists are built once per model; each frame changes only the dots' and ties' data and
redraws just them (see viz/blit.py), a few tens of milliseconds at ~2,000 agents.
"""

from __future__ import annotations

import textwrap

import numpy as np
import solara
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from mesa.visualization.utils import update_counter

from model import DefectionModel
from model.groups import GROUP_NAMES, ISK
from model.population import IN_ISK, REMOVED
from viz.blit import BlitFigure
from viz.layout import ClusterLayout
from viz.style import GROUP_COLORS, ISK_COLOR, RECRUITER_COLOR, SHORT_LABELS

MAX_TIES = 1_200  # ties drawn; all ~10,000 would hide the agents and slow each frame
TIE_SEED = 7
WHITE = np.ones(4)
PALETTE = np.array([to_rgba(GROUP_COLORS[name]) for name in GROUP_NAMES] + [to_rgba(ISK_COLOR)])
SIZE, RECRUITER_SIZE = 9.0, 22.0
PALE, FULL = 0.3, 0.9  # loyalty drawn palest and in full colour (most members are in between)


class AgentsPicture:
    """A matplotlib figure of one model's agents, updated in place each frame."""

    def __init__(self, model: DefectionModel) -> None:
        self.layout = ClusterLayout.for_groups(model.population.group)
        self.figure = Figure(figsize=(6.0, 6.5), dpi=80)
        ax = self.figure.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_aspect("equal")
        limit = self.layout.extent * 1.22
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit * 1.17, limit * 0.98)
        self._draw_discs(ax)
        self.ties = LineCollection([], colors=[(0.45, 0.45, 0.45, 0.12)], linewidths=0.5)
        ax.add_collection(self.ties)
        self.dots = ax.scatter([], [], s=SIZE, linewidths=0)
        self.week = ax.text(-limit * 0.97, limit * 0.97, "", va="top", fontsize=11)
        ax.legend(handles=_legend_handles(), loc="lower center", ncols=2, fontsize=8, frameon=False)
        self.frames = BlitFigure(self.figure, [self.ties, self.dots, self.week])
        self._ties: tuple[np.ndarray, np.ndarray] = (np.empty((2, 0)), np.empty((2, 0), int))
        self._allegiance = model.population.allegiance.copy()

    def _draw_discs(self, ax) -> None:
        layout = self.layout
        for code, name in enumerate(GROUP_NAMES):
            color = GROUP_COLORS[name]
            center, radius = layout.centers[code], layout.radii[code]
            ax.add_patch(Circle(center, radius * 1.08, color=color, alpha=0.08, lw=0))
            direction = center / np.linalg.norm(center)
            label_at = center + direction * (radius * 1.08 + 2.0)
            ax.text(
                *label_at,
                textwrap.fill(SHORT_LABELS[name], 12),
                ha="left" if direction[0] > 0.3 else "right" if direction[0] < -0.3 else "center",
                va="bottom" if direction[1] > 0.3 else "top" if direction[1] < -0.3 else "center",
                fontsize=8,
                color=color,
                fontweight="bold",
            )
        ax.add_patch(Circle((0, 0), layout.isk_radius * 1.05, color=ISK_COLOR, alpha=0.07, lw=0))
        ax.text(0, 0, "IS-K", ha="center", va="center", fontsize=10, alpha=0.35, weight="bold")

    def update(self, model: DefectionModel) -> None:
        """Move and recolour the dots and ties for the model's current week."""
        pop = model.population
        n = pop.n
        allegiance = pop.allegiance[:n]
        xy = self.layout.positions(pop.group[:n], allegiance)
        shown = allegiance != REMOVED
        in_isk = allegiance == IN_ISK
        recruiter = in_isk & pop.recruiter[:n]
        previous = np.full(n, IN_ISK, dtype=allegiance.dtype)
        previous[: len(self._allegiance)] = self._allegiance[:n]
        fresh = in_isk & (previous != IN_ISK) & (pop.group[:n] != ISK)
        self._allegiance = allegiance.copy()

        shade = 0.15 + 0.85 * np.clip((pop.loyalty[:n] - PALE) / (FULL - PALE), 0.0, 1.0)
        colors = WHITE + shade[:, None] * (PALETTE[pop.group[:n]] - WHITE)
        colors[in_isk] = to_rgba(ISK_COLOR)
        colors[recruiter] = to_rgba(RECRUITER_COLOR)
        sizes = np.where(recruiter, RECRUITER_SIZE, SIZE)
        order = np.flatnonzero(shown)
        self.dots.set_offsets(xy[order])
        self.dots.set_facecolors(colors[order])
        self.dots.set_sizes(np.where(fresh, 3 * SIZE, sizes)[order])
        self.dots.set_edgecolors(np.where(fresh[order, None], to_rgba(RECRUITER_COLOR), WHITE))
        self.dots.set_linewidths(np.where(fresh[order], 1.5, 0.0))
        ties = self._tie_sample(model.edges)
        ties = ties[:, shown[ties[0]] & shown[ties[1]]]
        self.ties.set_segments(np.stack([xy[ties[0]], xy[ties[1]]], axis=1))
        self.week.set_text(f"week {model.week} · {model.date:%d %b %Y}")

    def _tie_sample(self, edges: np.ndarray) -> np.ndarray:
        """A fixed random sample of ties, drawn again only when the network grows."""
        if self._ties[0] is not edges:
            rng = np.random.default_rng(TIE_SEED)
            k = min(MAX_TIES, edges.shape[1])
            self._ties = (edges, edges[:, np.sort(rng.choice(edges.shape[1], k, replace=False))])
        return self._ties[1]

    def png(self, model: DefectionModel) -> bytes:
        """The picture of ``model`` now, as PNG bytes."""
        self.update(model)
        return self.frames.png()


def _legend_handles() -> list[Line2D]:
    def dot(label: str, color: str, size: float, edge: str = "none") -> Line2D:
        return Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=size,
            mfc=color,
            mec=edge,
            mew=1.5,
            label=label,
        )

    return [
        dot("loyal member (paler = less loyal)", GROUP_COLORS["kandahar"], 4),
        dot("IS-K member", ISK_COLOR, 4),
        dot("IS-K recruiter", RECRUITER_COLOR, 6),
        dot("defected since last picture", ISK_COLOR, 6, RECRUITER_COLOR),
    ]


@solara.component
def AgentsView(model: DefectionModel) -> None:
    """The agents picture of ``model``, redrawn on every frame (Mesa's update counter)."""
    frame = update_counter.value
    picture = solara.use_memo(lambda: AgentsPicture(model), [model])
    png = solara.use_memo(lambda: picture.png(model), [model, frame])
    with solara.Card("Agents", margin=0):
        solara.Image(png, width="100%")
