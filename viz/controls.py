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
import shlex
from collections.abc import Callable
from typing import Any, cast

import pandas as pd
import solara

from isk_defection.model import PRESETS
from isk_defection.model.groups import GROUP_NAMES
from isk_defection.model.presets import PRESET_DESCRIPTIONS
from isk_defection.viz import columns as cols
from isk_defection.viz.ensemble import MAX_MEMBERS
from isk_defection.viz.journal import (
    POPULATION_MAX,
    POPULATION_MIN,
    POPULATION_STEP,
    Settings,
    parse_overrides,
    parse_seed,
    run_command,
    to_query,
)
from isk_defection.viz.levers import LeverWidget
from isk_defection.viz.runner import (
    DEFAULT_PEOPLE,
    DEFAULT_SHARE,
    DEFAULT_WEEK,
    MAX_SPEED,
    PauseRules,
    Run,
)
from isk_defection.viz.style import group_label, plural

LEVER_STEP = 0.05
MODEL_INFO = """
Each agent is a fighter or official of one origin group (the Taliban's factions, allied
militants, former officials). Each week his loyalty changes with the regime's acts (the
levers), its legitimacy and resources, his contacts and IS-K's recruiters, and he may
defect to IS-K, desert, or be killed or captured. A scenario sets the levers' course; your moves
override it from the next week. Mechanisms, defaults and sources: `docs/ODD.md`
(`defection params` lists every parameter with its range, unit and source); what each
lever's levels mean as observable acts: its **?** button.

**Scale:** the groups' sizes are people; agents stand for them, a group's people
divided among its agents. Here one agent stands for about {people:,.0f} people on
average; counts on the page (the status bar, the charts, the pause rule) are people.
"""
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
    advanced = solara.use_reactive("\n".join(f"{n}={t}" for n, t in defaults.overrides))

    def do_reset() -> None:
        try:
            seed, overrides = parse_seed(seed_text.value), parse_overrides(advanced.value)
            settings = Settings(preset.value, population.value, seed, overrides)
            run.reset(settings)
        except ValueError as exc:
            run.error = f"Reset refused, the current run goes on. {exc}"
            run._changed("state")

    def set_speed(value: float) -> None:
        speed.set(int(value))
        run.set_speed(value)

    chosen = Settings(preset.value, population.value, defaults.seed)
    seed_error = _error(parse_seed, seed_text.value)
    with solara.Card("Run", margin=0, classes=["dv-controls-card"]):
        with solara.Row(gap="8px", style={"flex-wrap": "wrap"}, classes=["dv-runbar"]):
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
        ScenarioChoice("Scenario", preset)
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
        solara.InputTextArea(
            "Advanced parameters",
            value=advanced,
            continuous_update=True,
            rows=2,
            error=_error(parse_overrides, advanced.value) or False,
        )
        solara.Text(
            "One NAME=VALUE a line: any parameter `defection params` lists (for example "
            "release_week=-1), checked as `defection run --set` checks it.",
            style=SMALL,
        )
        solara.Text(
            "Seed, scenario, population and advanced parameters apply when you press Reset.",
            style=SMALL,
        )


@solara.component
def ScenarioChoice(label: str, value: solara.Reactive[str]) -> None:
    """The scenarios as named radio buttons: all in view, each one a named control.

    (Vuetify 3's select leaves its combobox without an accessible name.)
    """
    solara.v.Html(tag="div", children=[label], style_="font-size: 13px; margin-top: 6px")
    solara.v.RadioGroup(
        v_model=value.value,
        on_v_model=value.set,
        inline=True,
        hide_details=True,
        density="compact",
        class_="scenario-choice",
        children=[solara.v.Radio(label=name, value=name) for name in PRESETS],
    )


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
) -> None:
    """A labelled slider with an accessible name (the thumb's ``aria-label``)."""
    with solara.Column(gap="0px", classes=[f"slider-{css}"] if css else []):
        solara.v.Html(tag="div", children=[label], style_="font-size: 13px")
        solara.v.Slider(
            v_model=value,
            on_v_model=on_value,
            min=minimum,
            max=maximum,
            step=step,
            name=name,
            thumb_label=True,
            thumb_size=24,  # WCAG 2.2 target size
            hide_details=True,
            class_=css,
        )


@solara.component
def PolicyControls(run: Run) -> None:
    """The levers, a prisoner release, an IS-K leader killed and the adaptive rule.

    Drawn by the browser (viz/levers.py): the server sends the levers' state when it
    changes and never re-renders these controls, so no move is lost under the pointer.
    """
    with solara.Card("Leadership's levers", margin=0, classes=["dv-controls-card"]):
        element = LeverWidget.element()

    def connect():
        widget: LeverWidget = solara.get_widget(element)
        widget.on_move = lambda name, value: attempt(run, run.move_lever, name, value)
        widget.on_release = lambda: attempt(run, run.release_prisoners)
        widget.on_kill = lambda: attempt(run, run.kill_isk_leader)
        widget.on_adaptive = lambda on: attempt(run, run.set_adaptive, on)
        widget.on_hello = lambda: widget.show(run.lever_state())

        def changed(topics: set[str]) -> None:
            if "levers" in topics:
                widget.show(run.lever_state())

        return run.subscribe(changed)

    solara.use_effect(connect, [run])


@solara.component
def PauseControls(run: Run) -> None:
    """Pause on an event: more people defecting in a week than N, a group passing a share, week N.

    The rules live in the run alone; the controls keep their own state from the first
    render on (never re-read from the run), so every click lands.
    """
    initial = run.rules
    chosen = solara.use_ref(
        {
            "on_people": initial.people is not None,
            "people": initial.people or DEFAULT_PEOPLE,
            "on_share": initial.share is not None,
            "share": round((initial.share or DEFAULT_SHARE) * 100),
            "on_week": initial.week is not None,
            "week": initial.week or DEFAULT_WEEK,
        }
    ).current  # the latest choices, whatever render a handler's closure came from
    _, set_version = solara.use_state(0)

    def update(**changes: Any) -> None:
        chosen.update(changes)
        run.set_rules(
            PauseRules(
                people=max(0, int(chosen["people"])) if chosen["on_people"] else None,
                share=min(max(chosen["share"], 0), 100) / 100 if chosen["on_share"] else None,
                week=max(0, int(chosen["week"])) if chosen["on_week"] else None,
            )
        )
        set_version(lambda n: n + 1)

    with solara.Card("Pause on an event", margin=0, classes=["dv-controls-card"]):
        rules = (
            ("more people defecting in one week than", "on_people",
             "People defecting in one week", "people"),
            ("a group's defected share passes", "on_share",
             "Share of a group, in percent", "share"),
            ("the run reaches week", "on_week", "Week to pause at", "week"),
        )  # fmt: skip
        for label, switch, field, key in rules:
            solara.Checkbox(
                label=label, value=bool(chosen[switch]), on_value=_setter(update, switch, bool)
            )
            solara.InputInt(
                field, value=int(chosen[key]), on_value=_setter(update, key, int),
                continuous_update=True,
            )  # fmt: skip
        solara.Text(
            f"One agent stands for about {run.people_per_agent():,.0f} people in this run.",
            style=SMALL,
        )


@solara.component
def ModelInfo(run: Run, version: object = 0) -> None:
    """What the model is, and the scale: how many people one agent stands for, per group."""
    with run.lock:
        model = run.model
        per_agent = [float(x) for x in getattr(model, "people_per_agent", [])]
        start = getattr(model, "ledger", {}).get("start")
    rows = [
        f"{group_label(name)}: {people:,.0f} people, one agent for {scale:,.0f}"
        for name, people, scale in zip(
            [*GROUP_NAMES, "isk"], [] if start is None else start, per_agent, strict=False
        )
        if scale > 0
    ]
    with solara.Details("About the model and its scale", expand=False):
        solara.Markdown(MODEL_INFO.format(people=run.people_per_agent()), style=SMALL)
        with solara.v.Html(tag="ul", class_="model-scale", style_="font-size: 12px"):
            for row in rows:
                solara.v.Html(tag="li", children=[row])


@solara.component
def CompareControls(run: Run, version: object = 0) -> None:
    """A second run beside this one: without some of your actions, or another scenario."""
    mode = solara.use_reactive(FORK)
    dropped = solara.use_reactive(cast(list[str], []))
    other = solara.use_reactive("inclusive" if run.settings.preset != "inclusive" else "baseline")
    choices = {a.describe(): i for i, a in enumerate(run.actions)}
    with solara.Card("Compare", margin=0, classes=["dv-controls-card"]):
        running = f"Comparing with: {run.compare.label} (dashed lines)." if run.compare else None
        building = f"the comparison run ({run.building})" if run.building else ""
        if _side_run(run, running, building, "Stop comparing", run.stop_compare):
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
                        on_value=_leave_out(dropped, label),
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
            ScenarioChoice("Scenario to compare", other)
            solara.Text("Same seed and population, from week 0.", style=SMALL)
            solara.Button(
                "Start comparison",
                color="primary",
                outlined=True,
                on_click=lambda: attempt(run, run.start_compare, None, other.value),
            )


@solara.component
def SpreadControls(run: Run, version: object = 0) -> None:
    """The spread over seeds: the same scenario and moves with N other seeds, drawn as a fan."""
    members = solara.use_reactive(8)
    posterior = solara.use_reactive(False)
    with solara.Card("Spread over seeds", margin=0, classes=["dv-controls-card"]):
        running = (
            f"Running {run.ensemble.label} beside this run, with your moves: the shaded bands "
            "hold 50 % and 90 % of them, the thin dotted line is their median."
            if run.ensemble
            else None
        )
        building = f"the spread ({run.building_ensemble})" if run.building_ensemble else ""
        if _side_run(run, running, building, "Stop the spread", run.stop_ensemble):
            return
        solara.Text(
            "What range could this policy produce? The same scenario and moves with other "
            f"seeds (2-{MAX_MEMBERS}) step beside this run, each week, and take your moves; "
            "playing slows in proportion.",
            style=SMALL,
        )
        solara.InputInt("Seeds", value=members, continuous_update=True)
        if run.registry.limits.posterior:
            solara.Checkbox(label="each with a draw of the posterior's parameters", value=posterior)
        solara.Button(
            "Run the seeds",
            color="primary",
            outlined=True,
            on_click=lambda: attempt(run, run.start_ensemble, members.value, posterior.value),
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
    command = run_command(settings, actions, week)
    return {
        "scenario": settings.preset,
        "population": settings.agents,
        "seed": settings.seed,
        "week": week,
        "actions": [{"week": a.week, "name": a.name, "value": a.value} for a in actions],
        "link_query": to_query(settings, actions, week),
        "defection_run": shlex.join(command) if command else None,
    }


def csv_text(run: Run) -> str:
    """The weekly table as CSV, its first lines ``#`` comments holding the recipe.

    Read it with ``pandas.read_csv(path, comment="#")``; the ``# defection run`` line is
    the command that reproduces the run (when its actions are lever moves only).
    """
    about = recipe(run)
    head = [
        f"# defection page run: scenario {about['scenario']}, seed {about['seed']}, "
        f"population {about['population']} agents, week {about['week']}",
        f"# recipe: {json.dumps(about)}",
        f"# reproduce: {about['defection_run'] or 'open the link ?' + about['link_query']}",
    ]
    return "\n".join(head) + "\n" + run_table(run).to_csv(index=False)


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
                lambda: csv_text(run),
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
                label="Settings and moves (JSON)",
                mime_type="application/json",
            )
        solara.Text(
            "One row per week; the 'actions' column lists your moves that took effect that "
            "week. The files carry the seed, scenario, population and moves (the CSV in its "
            "first '#' lines, with the `defection run` command that reproduces it; read it "
            "with pandas.read_csv(path, comment='#')). Each chart has PNG and SVG buttons.",
            style=SMALL,
        )


def _side_run(
    run: Run, running: str | None, building: str, stop_label: str, stop: Callable[[], None]
) -> bool:
    """A side run's state, if it has one: running (what it is, a stop button) or being built."""
    if running is not None:
        solara.Text(running, style=SMALL)
        solara.Button(stop_label, outlined=True, on_click=lambda: attempt(run, stop))
        return True
    if building:
        solara.Text(f"Building {building}…", style=SMALL)
        return True
    return False


def _setter(update: Callable[..., None], key: str, kind: type) -> Callable[[Any], None]:
    """A handler that sets one pause-rule field (a function, so each field keeps its own key)."""
    return lambda value: update(**{key: kind(value)})


def _leave_out(dropped: solara.Reactive[list[str]], label: str) -> Callable[[bool], None]:
    """A handler that ticks or unticks one action to leave out of a comparison."""
    return lambda on: dropped.set(
        [d for d in dropped.value if d != label] + ([label] if on else [])
    )


def _error(parse: Callable[[str], object], text: str) -> str:
    """What is wrong with a typed field, shown under it as the user types ("" if fine)."""
    try:
        parse(text)
    except ValueError as exc:
        return str(exc)
    return ""
