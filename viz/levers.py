"""The lever controls, drawn and held by the browser (viz/levers.vue).

Why not Solara sliders: a Solara slider is re-rendered from the server, and a lever the
scenario moves week by week changes its value twice a second while the run plays; a
re-render under a dragging pointer snapped the thumb back and lost the move. Here the
server only *sends* the levers' state as a message; the browser shows it except on a
lever the pointer holds or whose move the server has not yet confirmed. A drag sends
one value when the thumb is released (the range input's ``change``), a key press one
value per press, which the run merges into one move (viz/runner.py, ``SETTLE``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import ipyvuetify as v

logger = logging.getLogger(__name__)


class LeverWidget(v.VuetifyTemplate):
    """The browser side of the lever controls: it shows what it is sent and reports moves."""

    template_file = (__file__, "levers.vue")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_move: Callable[[str, float], None] = lambda name, value: None
        self.on_release: Callable[[], None] = lambda: None
        self.on_kill: Callable[[], None] = lambda: None
        self.on_adaptive: Callable[[bool], None] = lambda on: None
        self.on_hello: Callable[[], None] = lambda: None
        self._send_lock = threading.Lock()

    def show(self, state: dict[str, Any]) -> None:
        """Send the levers' state: values, who sets them, pending events, the adaptive switch."""
        with self._send_lock:
            if self.comm is not None:
                self.send({"method": "state", "args": [state]})

    def vue_hello(self, _data: Any = None) -> None:
        """The browser (re)started the controls: send the state."""
        self.on_hello()

    def vue_move(self, data: Any) -> None:
        """A lever moved: ``{"name": lever, "value": v}``."""
        self.on_move(str(data["name"]), float(data["value"]))

    def vue_release_prisoners(self, _data: Any = None) -> None:
        """Free prisoners next week."""
        self.on_release()

    def vue_kill_leader(self, _data: Any = None) -> None:
        """An IS-K leader is killed next week."""
        self.on_kill()

    def vue_set_adaptive(self, data: Any) -> None:
        """The adaptive rule on (true) or off (false) from next week."""
        self.on_adaptive(bool(data))
