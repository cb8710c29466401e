"""The play loop: step at the chosen speed and redraw only as often as drawing allows.

Mesa's controller redraws after every step (or every k steps, fixed by the user), so a
slow frame slows the run. Here stepping follows the wall clock at the chosen speed, and
a frame is drawn only when the previous one is at least as old as it took to draw
(and at least ``MIN_FRAME`` seconds): drawing never takes more than about half the
time, so the run keeps its speed however long a frame takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_FRAME = 0.1  # seconds between frames at most 10 frames per second
MAX_BACKLOG = 0.5  # seconds of missed steps made up after a stall; older ones are dropped


@dataclass
class FramePacer:
    """Decides when a playing run redraws."""

    min_interval: float = MIN_FRAME
    next_frame: float = 0.0

    def due(self, now: float) -> bool:
        """Whether a frame should be drawn at time ``now``."""
        return now >= self.next_frame

    def drawn(self, started: float, finished: float) -> None:
        """Record a frame drawn between ``started`` and ``finished``."""
        self.next_frame = max(started + self.min_interval, finished + (finished - started))


def play(
    step: Callable[[], None],
    speed: Callable[[], float],
    keep_going: Callable[[], bool],
    draw: Callable[[], None],
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Step ``speed()`` times a second until ``keep_going()`` is false; return the steps taken.

    The last state is always drawn before returning.
    """
    pacer = FramePacer()
    steps = 0
    next_step = clock()
    while keep_going():
        step()
        steps += 1
        now = clock()
        if pacer.due(now):
            draw()
            pacer.drawn(now, clock())
        now = clock()
        next_step = max(next_step + 1.0 / speed(), now - MAX_BACKLOG)
        if next_step > now:
            sleep(next_step - now)
    draw()
    return steps
