"""The live view: status, agents and charts drawn by the browser from frames of data.

:class:`LiveWidget` is a Vue template (viz/live.vue) that draws on HTML canvases scaled
to the screen's pixel density, through a small painter that can also write SVG (the
figure downloads). Why not a charting library: ECharts (Solara's ``FigureEcharts``) took
50–170 ms per update for the page's ~50 series in headless Chromium on this 2-core
machine, which caps a page at a few updates a second, growing with the run's length;
drawing thinned polylines (at most two points per pixel column) takes a few
milliseconds at any length. Nothing is loaded from outside. The server sends frames as custom
widget messages (never as synced traits, which Vue could coalesce and the widget layer
would deep-copy); the browser applies each change, draws on the next animation frame,
and confirms with :meth:`vue_frame_drawn` — the run sends no new frame until then, so a slow
browser gets fewer frames instead of a backlog. The page also sends a heartbeat and
its keyboard shortcuts (Space: play/pause, →: step) through the same channel.

:func:`LiveView` shows a :class:`viz.runner.Run`; :func:`AgentsView`, :func:`ChartsView`
and :func:`StatusCard` show a bare model and plug into Mesa's ``SolaraViz``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import ipyvuetify as v
import solara
import traitlets

from isk_defection.model import DefectionModel
from isk_defection.viz.frames import FrameSource

logger = logging.getLogger(__name__)
PARTS = ("status", "agents", "charts")


class LiveWidget(v.VuetifyTemplate):
    """The browser side of a run: it draws what it is sent and reports back."""

    template_file = (__file__, "live.vue")

    parts = traitlets.List(list(PARTS)).tag(sync=True)
    keyboard = traitlets.Bool(False).tag(sync=True)  # Space / → act on the run
    cdn = traitlets.Unicode(None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_ack: Callable[[int], None] = lambda seq: None
        self.on_resync: Callable[[], None] = lambda: None
        self.on_heartbeat: Callable[[], None] = lambda: None
        self.on_key: Callable[[str], None] = lambda key: None
        self.frames_drawn = 0  # as reported by the browser
        self.sent: list[str] = []  # kinds of messages sent (config / frame), for tests
        self._send_lock = threading.Lock()

    @traitlets.default("cdn")
    def _cdn(self) -> str | None:
        import solara.settings

        return None if solara.settings.assets.proxy else solara.settings.assets.cdn

    def send_config(self, config: dict) -> None:
        """Describe the run (groups, charts, levers); the next frame must be a full one."""
        self._message("config", config)

    def send_frame(self, frame: dict) -> None:
        """A frame: one week's data as a change since the previous frame."""
        self._message("frame", frame)

    def _message(self, method: str, payload: dict) -> None:
        with self._send_lock:
            self.sent.append(method)
            del self.sent[:-50]
            if self.comm is not None:
                self.send({"method": method, "args": [payload]})

    def vue_frame_drawn(self, data: Any) -> None:
        """The browser drew a frame: ``{"seq": n, "drawn": frames drawn so far}``."""
        data = data or {}
        self.frames_drawn = int(data.get("drawn", self.frames_drawn))
        self.on_ack(int(data.get("seq", 0)))

    def vue_resync(self, _data: Any = None) -> None:
        """The browser (re)started or missed a frame: send everything again."""
        self.on_resync()

    def vue_heartbeat(self, _data: Any = None) -> None:
        """The page is still open."""
        self.on_heartbeat()

    def vue_shortcut(self, data: Any) -> None:
        """A keyboard shortcut: ``"toggle"`` (Space) or ``"step"`` (→)."""
        self.on_key(str(data))


@solara.component
def LiveView(run, parts: tuple[str, ...] = PARTS) -> None:
    """The status, agents and charts of a :class:`viz.runner.Run`, with its keyboard shortcuts."""
    element = LiveWidget.element(parts=list(parts), keyboard=True)

    def connect():
        widget: LiveWidget = solara.get_widget(element)
        widget.on_ack = run.acked
        widget.on_resync = run.resync
        widget.on_heartbeat = run.heartbeat

        def key(name: str) -> None:
            try:
                if name == "toggle":
                    run.toggle()
                elif name == "step":
                    run.step()
            except Exception:  # a key press must never take the page down
                logger.exception("keyboard shortcut")

        widget.on_key = key
        run.attach(widget.send_frame, widget.send_config)
        return lambda: run.detach(widget.send_frame)

    solara.use_effect(connect, [run])


class ModelFeed:
    """Frames for a view of a bare model (Mesa's SolaraViz steps it; no Run, no loop)."""

    def __init__(self, model: DefectionModel) -> None:
        self.source = FrameSource(model)
        self.widget: LiveWidget | None = None
        self.full = True

    def resync(self) -> None:
        """Start over with the config and a full frame."""
        self.full = True
        self.push()

    def push(self) -> None:
        """Send the model's current week."""
        if self.widget is None:
            return
        if self.full:
            self.source.reset()
            self.widget.send_config(self.source.config())
            self.full = False
        self.widget.send_frame(self.source.frame([]))


def _model_view(model: DefectionModel, parts: tuple[str, ...]) -> None:
    # Imported here: mesa.visualization loads matplotlib, which the page itself never needs.
    from mesa.visualization.utils import update_counter

    frame = update_counter.value
    feed = solara.use_memo(lambda: ModelFeed(model), [model])
    element = LiveWidget.element(parts=list(parts))

    def connect():
        widget: LiveWidget = solara.get_widget(element)
        feed.widget = widget
        widget.on_resync = feed.resync
        feed.resync()

    solara.use_effect(connect, [feed])
    solara.use_effect(feed.push, [feed, frame])


@solara.component
def AgentsView(model: DefectionModel) -> None:
    """The agents of ``model`` (a Mesa component: ``SolaraViz(model, components=[AgentsView])``)."""
    _model_view(model, ("agents",))


@solara.component
def ChartsView(model: DefectionModel) -> None:
    """The charts of ``model`` over time (a Mesa component)."""
    _model_view(model, ("charts",))


@solara.component
def StatusCard(model: DefectionModel) -> None:
    """The current week's status of ``model`` (a Mesa component)."""
    _model_view(model, ("status",))
