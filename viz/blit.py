"""Fast PNG frames from a matplotlib figure: draw what is static once, the rest each frame.

Text (titles, ticks, labels, legends) is most of what a matplotlib draw costs. A
:class:`BlitFigure` draws the figure without its moving artists once, keeps that
background, and for each frame pastes the background back and draws only the moving
artists (matplotlib's "blitting"), then encodes a PNG with light compression. The
owner calls :meth:`invalidate` when something static changes (axis limits, markers).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


class BlitFigure:
    """A figure rendered to PNG bytes by redrawing only its ``moving`` artists."""

    def __init__(self, figure: Figure, moving: Sequence[Artist]) -> None:
        self.figure = figure
        self.canvas = FigureCanvasAgg(figure)
        self.moving = list(moving)
        for artist in self.moving:
            artist.set_animated(True)
        self._background = None

    def invalidate(self) -> None:
        """Redraw the static parts on the next frame (after limits or markers changed)."""
        self._background = None

    def png(self) -> bytes:
        """The figure now, as PNG bytes."""
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        else:
            self.canvas.restore_region(self._background)
        for artist in self.moving:
            self.figure.draw_artist(artist)
        width, height = self.canvas.get_width_height()
        rgba = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw")
        buffer = io.BytesIO()
        rgba.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()
