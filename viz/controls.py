"""The page's controls: run the model, and move the leadership's levers while it runs.

:func:`RunControls` plays the role of Mesa's ``ModelController`` but checks what the
user typed before Reset (a bad seed or setting leaves the current run going and says
why) and paces frames (viz/player.py). :func:`PolicyControls` acts on the running
model through its live-control methods, so moving a lever never resets the run.
Every change that touches the model takes the session's lock, so it never lands in the
middle of a step taken by the play thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import solara
from mesa.visualization.utils import force_update, update_counter

from model import LEVERS, PRESETS, DefectionModel
from model.presets import PRESET_DESCRIPTIONS
from viz.player import play
from viz.session import (
    POPULATION_MAX,
    POPULATION_MIN,
    POPULATION_STEP,
    Settings,
    build_model,
    parse_seed,
)
from viz.style import LEVER_COLORS, LEVER_LABELS

DEFAULT_SPEED = 20  # steps (weeks) per second while playing
MAX_SPEED = 100
LEVER_STEP = 0.05
logger = logging.getLogger(__name__)


@solara.component
def RunControls(
    model: solara.Reactive[DefectionModel],
    lock: threading.Lock,
    error: solara.Reactive[str],
) -> None:
    """Play / pause / step / reset, speed, and the settings Reset applies."""
    playing = solara.use_reactive(False)
    speed = solara.use_reactive(DEFAULT_SPEED)
    defaults = Settings()
    seed_text = solara.use_reactive(str(defaults.seed))
    preset = solara.use_reactive(defaults.preset)
    population = solara.use_reactive(defaults.population)

    def run(cancel: threading.Event) -> None:
        if not playing.value:
            return
        current = model.value

        def step() -> None:
            with lock:
                current.step()

        try:
            play(
                step,
                lambda: speed.value,
                lambda: playing.value and not cancel.is_set(),
                force_update,
            )
        except Exception as exc:  # a failing step must stop the run, not the server
            logger.exception("the run stopped")
            playing.set(False)
            error.set(f"The run stopped at week {current.week}: {exc}")

    solara.use_thread(run, dependencies=[playing.value, model.value], intrusive_cancel=False)

    def do_step() -> None:
        attempt(lock, error, model.value.step)

    def do_reset() -> None:
        playing.set(False)
        try:
            settings = Settings(preset.value, population.value, parse_seed(seed_text.value))
            fresh = build_model(settings)
        except ValueError as exc:
            error.set(f"Reset refused, the current run goes on. {exc}")
            return
        error.set("")
        model.set(fresh)
        force_update()

    seed_error = _seed_error(seed_text.value)
    with solara.Card("Run", margin=0):
        with solara.Row(gap="8px"):
            solara.Button(
                "Pause" if playing.value else "Play",
                icon_name="mdi-pause" if playing.value else "mdi-play",
                color="primary",
                on_click=lambda: playing.set(not playing.value),
            )
            solara.Button(
                "Step", color="primary", outlined=True, on_click=do_step, disabled=playing.value
            )
            solara.Button("Reset", color="primary", outlined=True, on_click=do_reset)
        solara.SliderInt(f"Speed: {speed.value} weeks/s", value=speed, min=1, max=MAX_SPEED)
        solara.InputText("Seed", value=seed_text, continuous_update=True, error=seed_error or False)
        solara.Select("Scenario", values=list(PRESETS), value=preset)
        solara.Text(PRESET_DESCRIPTIONS[preset.value], style={"font-size": "12px"})
        solara.SliderInt(
            f"Population: {population.value:,} agents",
            value=population,
            min=POPULATION_MIN,
            max=POPULATION_MAX,
            step=POPULATION_STEP,
        )
        solara.Text(
            "Seed, scenario and population apply when you press Reset.", style={"font-size": "12px"}
        )


@solara.component
def PolicyControls(
    model: DefectionModel,
    lock: threading.Lock,
    error: solara.Reactive[str],
) -> None:
    """A slider per lever, a prisoner release and the adaptive rule, acting on the running run."""
    update_counter.get()

    pending_release = [
        m.week for m in model.policy.moves if m.lever == "prisoner_release" and m.week > model.week
    ]
    with solara.Card("Leadership's levers", margin=0):
        solara.Text(
            f"A move holds from week {model.week + 1} on; the run is not reset.",
            style={"font-size": "12px"},
        )
        for lever in LEVERS:
            LeverSlider(
                lever,
                lever_value(model, lever),
                lambda value, lever=lever: attempt(lock, error, model.move_lever, lever, value),
            )
        solara.Button(
            "Release prisoners",
            color="error",
            outlined=True,
            on_click=lambda: attempt(lock, error, model.release_prisoners),
        )
        if pending_release:
            solara.Text(
                f"Prisoner release scheduled for week {pending_release[-1]}.",
                style={"font-size": "12px"},
            )
        solara.Switch(
            label="Adaptive leadership (the rule sets the levers each week)",
            value=bool(model.p["adaptive_leadership"]),
            on_value=lambda on: attempt(lock, error, model.set_adaptive, on),
        )


@solara.component
def LeverSlider(name: str, value: float, on_move: Callable[[float], None]) -> None:
    """One lever's slider; a drag counts as one move, made when the thumb is released.

    Vuetify 3 reports a drag as ``start``, a stream of value updates and ``end``; a key
    press or a click on the track is a single update. Updates inside a drag are ignored.
    """
    dragging = solara.use_ref(False)

    def move(new: float) -> None:
        if abs(float(new) - value) > 1e-9:
            on_move(float(new))

    def on_value(new: float) -> None:
        if not dragging.current:
            move(new)

    def on_start(*_ignored) -> None:
        dragging.current = True

    def on_end(_widget, _event, new: float) -> None:
        dragging.current = False
        move(new)

    with solara.Column(gap="0px"):
        swatch = solara.v.Html(tag="span", children=["■ "], style_=f"color: {LEVER_COLORS[name]}")
        solara.v.Html(tag="div", children=[swatch, LEVER_LABELS[name]], style_="font-size: 13px")
        slider = solara.v.Slider(
            v_model=value,
            on_v_model=on_value,
            min=0.0,
            max=1.0,
            step=LEVER_STEP,
            label=f"{value:.2f}",
            thumb_label=True,
            hide_details=True,
            class_=f"lever-{name}",
        )
    solara.v.use_event(slider, "start", on_start)
    solara.v.use_event(slider, "end", on_end)


def attempt(lock: threading.Lock, error: solara.Reactive[str], change: Callable, *args) -> None:
    """Apply a user's change to the model under the lock; report a failure, never raise it.

    An exception escaping an event handler would take down the whole page of the session.
    """
    try:
        with lock:
            change(*args)
    except Exception as exc:
        logger.exception("a control failed")
        error.set(f"That did not work, the run goes on: {exc}")
    else:
        error.set("")
    force_update()


def lever_value(model: DefectionModel, lever: str) -> float:
    """The lever as the user sees it: a move waiting for next week, else the value in force."""
    pending = [m.value for m in model.policy.moves if m.lever == lever and m.week > model.week]
    return pending[-1] if pending else float(model.levers[lever])


def _seed_error(text: str) -> str:
    """What is wrong with the typed seed, shown under the field as the user types ("" if fine)."""
    try:
        parse_seed(text)
    except ValueError as exc:
        return str(exc)
    return ""
