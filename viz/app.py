"""The page: watch factions fracture while you move the Taliban leadership's levers.

Run it with ``defection app`` or ``solara run viz/app.py``; in Jupyter, display
``Page()`` (or ``page``). Each browser session gets its own :class:`viz.runner.Run`
(model, lock, play loop), created in the :func:`Page` component's state, never at module
level, so visitors of one server never see or drive each other's runs. A link's query
string (``?scenario=…&seed=…&week=…&actions=…``) replays that run on opening.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import solara

from isk_defection.viz.controls import (
    CompareControls,
    DownloadControls,
    ModelInfo,
    PauseControls,
    PolicyControls,
    RunControls,
    SpreadControls,
)
from isk_defection.viz.journal import from_query
from isk_defection.viz.live import LiveView
from isk_defection.viz.runner import Run
from isk_defection.viz.server import ConfigError, limits, lock_down

TITLE = "Taliban factions and IS-K: defection under policy moves"
logger = logging.getLogger(__name__)

CSS = """
.dv-page { display: grid; grid-template-columns: minmax(280px, 340px) minmax(0, 1fr);
           gap: 12px; padding: 4px 12px; max-width: 1800px; }
.dv-side { display: flex; flex-direction: column; gap: 10px; min-width: 0; }
.dv-main { min-width: 0; }
.dv-page h1 { font-size: 22px; font-weight: 400; margin: 4px 0 8px; }
.dv-controls-card .v-card-title { font-size: 15px; padding-bottom: 0; white-space: normal; }
.dv-page .v-btn { min-height: 32px; }
.dv-page .v-btn__content { white-space: normal; }
.dv-page .v-btn-group, .dv-page .v-btn-toggle { flex-wrap: wrap; height: auto; }
.dv-page .v-slider.v-input { --v-slider-thumb-size: 24px; min-height: 32px; }
.dv-page :focus-visible, .dv-page .v-btn:focus-visible, .dv-page input:focus-visible {
  outline: 3px solid #0072B2 !important; outline-offset: 2px; }
.dv-runbar { background: #fff; }
@media (max-width: 860px) {
  .dv-page { grid-template-columns: minmax(0, 1fr); padding: 4px 6px 72px; }
  .dv-main { order: -1; }
  /* on a phone the run's buttons stay on screen, under the picture as it scrolls */
  .dv-runbar { position: fixed; left: 0; right: 0; bottom: 0; z-index: 20; padding: 8px 12px;
               margin: 0 !important; box-shadow: 0 -2px 6px rgba(0, 0, 0, 0.2); }
}
"""


def _context():
    """The Solara kernel context of this session (None outside a Solara server)."""
    with contextlib.suppress(Exception):
        from solara.server import kernel_context

        return kernel_context.get_current_context()
    return None


def _query() -> str:
    with contextlib.suppress(Exception):
        return solara.use_router().search or ""
    return ""


def _new_run(query: str) -> tuple[Run, str]:
    context = _context()
    if query:
        try:
            settings, actions, week = from_query(query)
            return Run(settings, actions, week, context=context), ""
        except Exception as exc:  # a bad link opens the default run and says why
            logger.info("bad link %r: %s", query, exc)
            return Run(
                context=context
            ), f"This link could not be replayed ({exc}); a new run starts."
    return Run(context=context), ""


@solara.component
def Page() -> None:
    """One session's page: controls beside (or, on a phone, below) the live view."""
    query = _query()
    run, problem = solara.use_memo(lambda: _new_run(query), [])
    state = solara.use_reactive(0)
    actions = solara.use_reactive(0)
    versions = {"state": state, "actions": actions}  # the lever controls update themselves

    def subscribe():
        def changed(topics: set[str]) -> None:
            for topic in topics & versions.keys():
                versions[topic].set(versions[topic].value + 1)

        unsubscribe = run.subscribe(changed)

        def cleanup() -> None:
            unsubscribe()
            run.pause()

        return cleanup

    solara.use_effect(subscribe, [run])
    solara.Title(TITLE)
    solara.Style(CSS)
    with solara.v.Html(tag="div", class_="dv-page"):
        with solara.v.Html(tag="div", class_="dv-side"):
            RunControls(run, state.value)
            PolicyControls(run)
            PauseControls(run)
            CompareControls(run, (state.value, actions.value))
            SpreadControls(run, state.value)
            DownloadControls(run)

        with solara.v.Html(tag="div", class_="dv-main"):
            solara.v.Html(tag="h1", children=[TITLE])
            ModelInfo(run, state.value)
            with solara.Column(gap="4px"):  # its own box: a message never moves the live view
                if problem:
                    solara.Warning(problem, classes=["link-error"])
                if run.error:
                    solara.Error(run.error, classes=["run-error"])
                if run.message:
                    solara.Info(run.message, classes=["run-message"])
            LiveView(run)


def _start_server() -> None:
    """Check the server's settings (one line and exit 2 on a bad one) and close Solara's open doors."""
    try:
        limits()
    except ConfigError as exc:
        print(f"defection app: {exc}", file=sys.stderr, flush=True)
        os._exit(2)  # before the server takes any request; a traceback would hide the line
    lock_down()


_start_server()  # this module is the server's entry point (`solara run`, `defection app`)
page = Page()
