"""The page: watch factions fracture while you move the Taliban leadership's levers.

Run it with ``defection app`` or ``solara run viz/app.py``; in Jupyter, display
``Page()`` (or ``page``). Each browser session gets its own model, lock and controls:
they live in the :func:`Page` component's state, never at module level, so visitors of
one server never see or drive each other's runs.
"""

from __future__ import annotations

import threading

import solara

from viz.agents_view import AgentsView
from viz.charts import ChartsView
from viz.controls import PolicyControls, RunControls
from viz.session import Settings, build_model
from viz.status import StatusCard

TITLE = "Taliban factions and IS-K: defection under policy moves"


@solara.component
def Page() -> None:
    """One session's page: controls on the left, status, agents and charts on the right."""
    first = solara.use_memo(lambda: build_model(Settings()), [])
    model = solara.use_reactive(first)
    lock = solara.use_memo(threading.Lock, [])
    error = solara.use_reactive("")
    solara.Title(TITLE)
    with solara.Columns([1, 3.6], style={"min-width": "1000px", "padding": "4px 16px"}):
        with solara.Column(gap="12px", style={"max-width": "340px"}):
            RunControls(model, lock, error)
            PolicyControls(model.value, lock, error)
        with solara.Column(gap="12px"):
            solara.v.Html(tag="h2", children=[TITLE], style_="font-weight: 400")
            if error.value:
                solara.Error(error.value, classes=["run-error"])
            StatusCard(model.value)
            with solara.Columns([3, 4]):
                AgentsView(model.value)
                ChartsView(model.value)


page = Page()
