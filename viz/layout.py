"""Where each agent is drawn: origin groups as discs on a ring, IS-K in the middle.

A force-directed network layout of ~2,000 agents is slow and moves every frame; this
one is computed once per agent from a seeded generator, so it is fast, stable between
frames and the same for every run. Each agent has two spots: a home in its group's
disc and a spot in the central IS-K disc, in the sector that faces its group. When a
member defects he jumps from home to that sector, so a defection is seen as it happens
and the IS-K disc shows where its defectors came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from isk_defection.model.groups import GROUPS, ISK
from isk_defection.model.population import IN_ISK

LAYOUT_SEED = 20210815
GAP = 3.0  # space between neighbouring discs, in the units of one agent's area (1)
ISK_ROOM = 0.2  # the IS-K disc is sized to hold this share of the population


@dataclass
class ClusterLayout:
    """Home and IS-K spots for every agent slot; grows when new agents arrive."""

    centers: np.ndarray  # (groups, 2) centre of each origin group's disc
    radii: np.ndarray  # (groups,) radius of each origin group's disc
    angles: np.ndarray  # (groups,) direction of each group seen from the centre
    isk_core: float  # radius of the core holding original IS-K members
    isk_radius: float  # radius of the whole IS-K disc
    home: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    isk_spot: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @classmethod
    def for_groups(cls, group: np.ndarray) -> ClusterLayout:
        """A layout sized for the initial members ``group`` (origin codes), with their spots."""
        counts = np.bincount(group, minlength=len(GROUPS) + 1).astype(float)
        radii = np.sqrt(np.maximum(counts[: len(GROUPS)], 1.0) / math.pi)
        isk_radius = math.sqrt(max(ISK_ROOM * len(group), counts[ISK], 1.0) / math.pi)
        isk_core = math.sqrt(max(counts[ISK], 1.0) / math.pi)
        spans = 2 * radii + GAP
        ring = max(spans.sum() / (2 * math.pi), isk_radius + radii.max() + GAP)
        angles = 2 * math.pi * (np.cumsum(spans) - spans / 2) / spans.sum() + math.pi / 2
        centers = ring * np.column_stack([np.cos(angles), np.sin(angles)])
        layout = cls(centers, radii, angles, isk_core, isk_radius)
        layout.extend(group)
        return layout

    @property
    def extent(self) -> float:
        """Half the width of a square that holds every disc."""
        return float(np.max(np.linalg.norm(self.centers, axis=1) + self.radii))

    def extend(self, group: np.ndarray) -> None:
        """Give spots to the slots of ``group`` not placed yet (new arrivals)."""
        first = len(self.home)
        new = np.asarray(group[first:], dtype=np.int64)
        if len(new) == 0:
            return
        rng = np.random.default_rng([LAYOUT_SEED, first])
        u, v, w = rng.random((3, len(new)))
        is_isk = new == ISK
        origin = np.where(is_isk, 0, new)
        # Home: uniform in the group's disc (original IS-K members: in the IS-K core).
        radius = np.where(is_isk, self.isk_core, self.radii[origin]) * np.sqrt(u)
        center = np.where(is_isk[:, None], 0.0, self.centers[origin])
        home = center + radius[:, None] * _unit(2 * math.pi * v)
        # IS-K spot: the ring between core and rim, in the sector facing the home group.
        sector = math.pi / len(GROUPS)
        angle = self.angles[origin] + sector * (2 * w - 1)
        ring = np.sqrt(self.isk_core**2 + u * (self.isk_radius**2 - self.isk_core**2))
        spot = np.where(is_isk[:, None], home, ring[:, None] * _unit(angle))
        self.home = np.vstack([self.home, home])
        self.isk_spot = np.vstack([self.isk_spot, spot])

    def positions(self, group: np.ndarray, allegiance: np.ndarray) -> np.ndarray:
        """Where each slot is drawn now: its IS-K spot once in IS-K, else its home."""
        self.extend(group)
        n = len(allegiance)
        in_isk = (allegiance == IN_ISK)[:, None]
        return np.where(in_isk, self.isk_spot[:n], self.home[:n])


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.column_stack([np.cos(angle), np.sin(angle)])
