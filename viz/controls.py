"""The page's controls: run, levers, pause rules, comparison, downloads.

They act on a :class:`viz.runner.Run` through its thread-safe methods and re-render
only when what they show changes (the run tells them), never per frame, so a click is
handled at once whatever the speed. Every control has an accessible name; sliders get
theirs through Vuetify's ``name`` (their ``aria-label``).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import solara

from isk_defection.model import PRESETS
from isk_defection.model.presets import PRESET_DESCRIPTIONS
from isk_defection.viz import columns as cols
from isk_defection.viz.journal import (
    DECAPITATION,
    POPULATION_MAX,
    POPULATION_MIN,
    POPULATION_STEP,
    Settings,
    parse_seed,
    to_query,
)
from isk_defection.viz.runner import MAX_SPEED, PauseRules, Run
from isk_defection.viz.style import lever_help, lever_label, plural

LEVER_STEP = 0.05
FORK, OTHER = "Fork this run", "Other scenario"
SMALL = {"font-size": "12px", "color": "#444", "display": "block"}
logger = logging.getLogger(__name__)


def attempt(run: Run, change: Callable, *args) -> None:
    """Apply a user's change; report a failure on the page, never raise it.

    An exception escaping an event handler would take down the session's page. The run
    tells the controls what changed; here only the error banner is looked after.
    """
    try:
        change(*args)
    except Exception as exc:
        logger.exception("a control failed")
        run.error = f"That did not work, the run goes on: {exc}"
        run._changed("state")
    else:
        if run.error:
            run.error = ""
            run._changed("state")


@solara.component
def RunControls(run: Run, version: int = 0) -> None:
    """Play / Pause / Step / Reset, speed, and the settings Reset applies."""
    defaults = run.settings
    seed_text = solara.use_reactive(str(defaults.seed))
    preset = solara.use_reactive(defaults.preset)
    population = solara.use_reactive(defaults.population)
    speed = solara.use_reactive(run.speed)

    def do_reset() -> None:
        try:
            settings = Settings(preset.value, population.value, parse_seed(seed_text.value))
            run.reset(settings)
        except ValueError as exc:
            run.error = f"Reset refused, the current run goes on. {exc}"
            run._changed("state")

    def set_speed(value: float) -> None:
        speed.set(int(value))
        run.set_speed(value)

    chosen = Settings(preset.value, population.value, defaults.seed)
    seed_error = _seed_error(seed_text.value)
    with solara.Card("Run", margin=0, classes=["dv-controls-card"]):
        with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
            solara.Button(
                "Pause" if run.playing else "Play",
                icon_name="mdi-pause" if run.playing else "mdi-play",
                color="primary",
                on_click=lambda: attempt(run, run.toggle),
            )
            solara.Button(
                "Step",
                color="primary",
                outlined=True,
                on_click=lambda: attempt(run, run.step),
                disabled=run.playing,
            )
            solara.Button("Reset", color="primary", outlined=True, on_click=do_reset)
        solara.Text("Keys: Space plays or pauses, → steps one week.", style=SMALL)
        NamedSlider(
            f"Speed: {plural(speed.value, 'week')}/s",
            "Speed in weeks per second",
            speed.value,
            set_speed,
            minimum=1,
            maximum=MAX_SPEED,
            step=1,
            css="speed",
        )
        solara.InputText("Seed", value=seed_text, continuous_update=True, error=seed_error or False)
        solara.Select("Scenario", values=list(PRESETS), value=preset)
        solara.Text(PRESET_DESCRIPTIONS.get(preset.value, ""), style=SMALL)
        fixed = chosen.fixed_population
        if fixed:
            solara.Text(
                f"This scenario sets the population itself: {fixed:,} agents (one per person).",
                style=SMALL,
                classes=["population-fixed"],
            )
        else:
            NamedSlider(
                f"Population: {population.value:,} agents",
                "Population in agents",
                population.value,
                lambda value: population.set(int(value)),
                minimum=POPULATION_MIN,
                maximum=POPULATION_MAX,
                step=POPULATION_STEP,
                css="population",
            )
        solara.Text("Seed, scenario and population apply when you press Reset.", style=SMALL)


@solara.component
def NamedSlider(
    label: str,
    name: str,
    value: float,
    on_value: Callable[[float], None],
    minimum: float = 0.0,
    maximum: float = 1.0,
    step: float = LEVER_STEP,
    css: str = "",
    on_start: Callable[[], None] | None = None,
    on_end: Callable[[float], None] | None = None,
) -> None:
    """A labelled slider with an accessible name (the thumb's ``aria-label``)."""
    with solara.Column(gap="0px", classes=[f"slider-{css}"] if css else []):
        solara.v.Html(tag="div", children=[label], style_="font-size: 13px")
        slider = solara.v.Slider(
            v_model=value,
            on_v_model=on_value,
            min=minimum,
            max=maximum,
            step=step,
            name=name,
            thumb_label=True,
            hide_details=True,
            class_=css,
        )
    solara.v.use_event(slider, "start", lambda *_: on_start and on_start())
    solara.v.use_event(slider, "end", lambda _w, _e, new: on_end and on_end(float(new)))


@solara.component
def PolicyControls(run: Run, version: int = 0) -> None:
    """A slider per lever, a prisoner release and the adaptive rule, acting on the run."""
    adaptive = run.adaptive_shown()
    with solara.Card("Leadership's levers", margin=0, classes=["dv-controls-card"]):
        solara.Text(
            "A move holds from next week on; the run is not reset. "
            "Dotted lines in the lever chart show each lever's course ahead.",
            style=SMALL,
        )
        for lever in cols.levers(run.model):
            LeverSlider(run, lever, run.lever_value(lever), run.lever_source(lever))
        solara.Button(
            "Release prisoners",
            color="error",
            outlined=True,
            disabled=run.release_pending(),
            on_click=lambda: attempt(run, run.release_prisoners),
        )
        if run.release_pending():
            solara.Text("Prisoner release set for next week.", style=SMALL)
        if run.can_kill_isk_leader():
            solara.Button(
                "Kill an IS-K leader",
                outlined=True,
                disabled=run.event_pending(DECAPITATION),
                on_click=lambda: attempt(run, run.kill_isk_leader),
            )
            if run.event_pending(DECAPITATION):
                solara.Text("An IS-K leader is killed next week.", style=SMALL)
        with solara.Row(gap="6px", style={"align-items": "center"}):
            solara.Switch(
                label="Adaptive leadership",
                value=adaptive,
                on_value=lambda on: attempt(run, run.set_adaptive, on),
                color="success",
            )
            solara.v.Chip(
                children=["ON: the rule sets the levers" if adaptive else "OFF: levers as set"],
                color="success" if adaptive else None,
                small=True,
                class_="adaptive-state",
            )
        solara.Text(
            "When on, the leadership rule weighs aid against defection risk each week and sets "
            "the levers marked 'set each week by the adaptive rule'; the switch is marked in the "
            "charts.",
            style=SMALL,
        )


@solara.component
def LeverSlider(run: Run, name: str, value: float, source: str) -> None:
    """One lever's slider; a drag is one move, made when the thumb is released.

    Vuetify reports a drag as ``start``, a stream of values and ``end``; a key press or a
    click on the track is a single value. Values inside a drag are ignored; the run
    turns a burst of key presses into one move (it waits for the value to settle).
    """
    dragging = solara.use_ref(False)
    show_help = solara.use_reactive(False)

    def move(new: float) -> None:
        if abs(float(new) - value) > 1e-9:
            attempt(run, run.move_lever, name, float(new))

    def on_value(new: float) -> None:
        if not dragging.current:
            move(new)

    def on_start() -> None:
        dragging.current = True

    def on_end(new: float) -> None:
        dragging.current = False
        move(new)

    label = lever_label(name)
    with solara.Column(gap="0px", classes=[f"lever-{name}", "lever"]):
        with solara.Row(gap="4px", style={"align-items": "baseline", "flex-wrap": "wrap"}):
            solara.v.Html(tag="span", children=[label], style_="font-size: 13px")
            solara.v.Html(
                tag="span",
                children=[f"{value:.2f}"],
                class_="lever-value",
                style_="font-size: 13px; font-weight: 600",
            )
            solara.Button(
                "?",
                text=True,
                small=True,
                on_click=lambda: show_help.set(not show_help.value),
                attributes={"aria-label": f"What the levels of {label} mean"},
                style={"min-width": "24px", "padding": "0 4px"},
            )
        slider = solara.v.Slider(
            v_model=value,
            on_v_model=on_value,
            min=0.0,
            max=1.0,
            step=LEVER_STEP,
            name=label,
            thumb_label=True,
            hide_details=True,
            class_=f"lever-slider-{name}",
        )
        solara.v.Html(
            tag="div",
            children=[source],
            class_="lever-source",
            style_="font-size: 11px; color: #555",
        )
        if show_help.value:
            with solara.v.Html(
                tag="ul", class_="lever-help", style_="font-size: 11px; margin: 0 0 4px 14px"
            ):
                for level, text in lever_help(name):
                    solara.v.Html(tag="li", children=[f"{level:g}: {text}"])
    solara.v.use_event(slider, "start", lambda *_: on_start())
    solara.v.use_event(slider, "end", lambda _w, _e, new: on_end(float(new)))


@solara.component
def PauseControls(run: Run, version: int = 0) -> None:
    """Pause on an event: many defections in one week, or a group passing a share."""
    on_defections = solara.use_reactive(run.rules.defections is not None)
    defections = solara.use_reactive(run.rules.defections or 20)
    on_share = solara.use_reactive(run.rules.share is not None)
    share = solara.use_reactive(int(round((run.rules.share or 0.10) * 100)))

    def apply() -> None:
        run.set_rules(
            PauseRules(
                defections=int(defections.value) if on_defections.value else None,
                share=share.value / 100 if on_share.value else None,
            )
        )

    solara.use_effect(apply, [on_defections.value, defections.value, on_share.value, share.value])
    with solara.Card("Pause on an event", margin=0, classes=["dv-controls-card"]):
        solara.Checkbox(label="more defections in one week than", value=on_defections)
        solara.InputInt("Defections in one week", value=defections, continuous_update=True)
        solara.Checkbox(label="a group's defected share passes", value=on_share)
        solara.InputInt("Share of a group, in percent", value=share, continuous_update=True)


@solara.component
def CompareControls(run: Run, version: object = 0) -> None:
    """A second run beside this one: without some of your actions, or another scenario."""
    mode = solara.use_reactive(FORK)
    dropped = solara.use_reactive([])
    other = solara.use_reactive("inclusive" if run.settings.preset != "inclusive" else "baseline")
    choices = {a.describe(): i for i, a in enumerate(run.actions)}
    with solara.Card("Compare", margin=0, classes=["dv-controls-card"]):
        if run.compare is not None:
            solara.Text(f"Comparing with: {run.compare.label} (dashed lines).", style=SMALL)
            solara.Button(
                "Stop comparing", outlined=True, on_click=lambda: attempt(run, run.stop_compare)
            )
            return
        if run.building:
            solara.Text(f"Building the comparison run ({run.building})…", style=SMALL)
            return
        solara.ToggleButtonsSingle(value=mode, values=[FORK, OTHER])
        if mode.value == FORK:
            solara.Text(
                "A copy of this run, minus the actions you tick (what if I had not made this "
                "move?). Moves you make from now on act on this run only.",
                style=SMALL,
            )
            if choices:
                solara.Text("Leave out:", style=SMALL)
            with solara.Column(gap="0px", style={"max-height": "180px", "overflow-y": "auto"}):
                for label in choices:
                    solara.Checkbox(
                        label=label,
                        value=label in dropped.value,
                        on_value=lambda on, label=label: dropped.set(
                            [d for d in dropped.value if d != label] + ([label] if on else [])
                        ),
                    )
            solara.Button(
                "Start comparison",
                color="primary",
                outlined=True,
                on_click=lambda: attempt(
                    run, run.start_compare, [choices[d] for d in dropped.value if d in choices]
                ),
            )
        else:
            solara.Select("Scenario to compare", values=list(PRESETS), value=other)
            solara.Text("Same seed and population, from week 0.", style=SMALL)
            solara.Button(
                "Start comparison",
                color="primary",
                outlined=True,
                on_click=lambda: attempt(run, run.start_compare, None, other.value),
            )


def run_table(run: Run) -> pd.DataFrame:
    """The run's weekly data, one row per week, with the actions that took effect that week."""
    with run.lock:
        record = {k: list(values) for k, values in cols.history(run.model).items()}
        actions = list(run.actions)
    table = pd.DataFrame(record)
    by_week: dict[int, list[str]] = {}
    for a in actions:
        by_week.setdefault(a.week, []).append(f"{a.name}={a.value:g}")
    table["actions"] = [";".join(by_week.get(int(w), [])) for w in table["week"]]
    return table


def recipe(run: Run) -> dict[str, Any]:
    """What reproduces this run: settings, actions and the week, plus the link's query."""
    with run.lock:
        settings, actions, week = run.settings, list(run.actions), run.model.week
    return {
        "scenario": settings.preset,
        "population": settings.agents,
        "seed": settings.seed,
        "week": week,
        "actions": [{"week": a.week, "name": a.name, "value": a.value} for a in actions],
        "link_query": to_query(settings, actions, week),
    }


def parquet_bytes(run: Run) -> bytes:
    """The weekly table as Parquet, with the run's recipe in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(run_table(run), preserve_index=False)
    meta = dict(table.schema.metadata or {}) | {b"defection_run": json.dumps(recipe(run)).encode()}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buffer)
    return buffer.getvalue()


@solara.component
def DownloadControls(run: Run, version: int = 0) -> None:
    """The run's data (CSV, Parquet, the recipe as JSON); figures download from each chart."""
    stem = f"defection-{run.settings.preset}-seed{run.settings.seed}"
    with solara.Card("Download", margin=0, classes=["dv-controls-card"]):
        with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
            solara.FileDownload(
                lambda: run_table(run).to_csv(index=False),
                filename=f"{stem}.csv",
                label="Data (CSV)",
                mime_type="text/csv",
            )
            solara.FileDownload(
                lambda: parquet_bytes(run), filename=f"{stem}.parquet", label="Data (Parquet)"
            )
            solara.FileDownload(
                lambda: json.dumps(recipe(run), indent=2),
                filename=f"{stem}.json",
                label="Run settings and moves (JSON)",
                mime_type="application/json",
            )
        solara.Text(
            "One row per week; the 'actions' column lists your moves that took effect that "
            "week. Each chart has PNG and SVG buttons.",
            style=SMALL,
        )


def _seed_error(text: str) -> str:
    """What is wrong with the typed seed, shown under the field as the user types ("" if fine)."""
    try:
        parse_seed(text)
    except ValueError as exc:
        return str(exc)
    return ""
