"""A run as a recipe: settings plus the user's dated actions, which replay it exactly.

The model is deterministic given its seed, so a run is fully described by the settings
Reset used (scenario, population, seed) and every action the user took, each dated by
the week from which it holds: a lever move, a prisoner release, an IS-K leader killed,
the adaptive rule switched on or off. That recipe is what a shareable link carries (:func:`to_query`,
:func:`from_query`), what a comparison run leaves out an action of, and what
:func:`replay` runs again to the same week with identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from isk_defection.model import PRESETS, DefectionModel
from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.policy import LEVERS, Schedule, parse_schedule
from isk_defection.model.presets import preset as preset_overrides

POPULATION_MIN, POPULATION_MAX, POPULATION_STEP = 200, 10_000, 100
DEFAULT_POPULATION = 2_000
RELEASE, ADAPTIVE, DECAPITATION = "prisoner_release", "adaptive", "decapitation"
EVENTS = (RELEASE, ADAPTIVE, DECAPITATION)
# A run pauses after 200 years, so a session's history is bounded; a link may ask for no
# more than Play itself allows.
MAX_WEEKS = 10_400


@dataclass(frozen=True)
class Settings:
    """The choices that define a run: they take effect when the user presses Reset."""

    preset: str = "baseline"
    population: int = DEFAULT_POPULATION
    seed: int = 42
    overrides: tuple[tuple[str, str], ...] = ()  # advanced parameters: (name, value as typed)

    @property
    def fixed_population(self) -> int | None:
        """The population the scenario itself sets (``full_scale``), which Reset must use."""
        value = PRESETS.get(self.preset, {}).get("population")
        return int(value) if value is not None else None

    @property
    def agents(self) -> int:
        """The number of agents the run starts with."""
        return self.fixed_population or self.population


@dataclass(frozen=True)
class Action:
    """One user action, holding from ``week`` on: a lever move, a release, the adaptive switch."""

    week: int
    name: str  # a lever, or one of EVENTS
    value: float = 1.0

    def describe(self) -> str:
        """The action in a few words, for marks and menus."""
        from isk_defection.viz.style import lever_label

        if self.name == RELEASE:
            return f"week {self.week}: prisoner release"
        if self.name == ADAPTIVE:
            return f"week {self.week}: adaptive rule {'on' if self.value else 'off'}"
        if self.name == DECAPITATION:
            return f"week {self.week}: IS-K leader killed"
        return f"week {self.week}: {lever_label(self.name)} → {self.value:.2f}"


def parse_seed(text: str) -> int:
    """The seed typed in the page as an integer (Mesa 3.5.1 would pass the raw string, #3516)."""
    try:
        seed = int(str(text).strip())
    except ValueError:
        seed = -1
    if seed < 0:
        raise ValueError(f"seed: must be a whole number, 0 or more, such as 42 (got {text!r})")
    return seed


def build_model(settings: Settings) -> DefectionModel:
    """A model for the page; raises ValueError (one line) on a bad setting.

    Agent-level history is off: the page never reads it, and it would grow by one row
    per agent every week of a long-running session. A scenario that fixes its own
    population (``full_scale``) keeps it.
    """
    preset_overrides(settings.preset)  # a clear error for an unknown scenario
    return DefectionModel(
        preset=settings.preset,
        population=settings.agents,
        rng=settings.seed,
        collect_agent_data=False,
        **{name: typed(name, text) for name, text in settings.overrides},
    )


def parse_overrides(text: str) -> tuple[tuple[str, str], ...]:
    """Advanced parameters typed on the page: ``NAME=VALUE`` a line, checked as ``--set`` is.

    Any parameter ``defection params`` lists, but the population (the slider's, bounded)
    and the seed (its own field); the model checks each value against its range when
    Reset builds the run. ValueError: one line naming the parameter.
    """
    chosen: dict[str, str] = {}
    for line in text.replace(";", "\n").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = (part.strip() for part in line.partition("="))
        if not sep or not name or not raw:
            raise ValueError(f"advanced parameters: each line must be NAME=VALUE (got {line!r})")
        if name not in PARAMETERS:
            raise ValueError(f"{name}: not a parameter (`defection params` lists them)")
        if name in ("population", "seed"):
            raise ValueError(f"{name}: set it with its own control above")
        typed(name, raw)
        chosen[name] = raw
    return tuple(chosen.items())


def typed(name: str, text: str) -> Any:
    """A parameter's value typed as text, converted to the parameter's kind (as ``--set`` does)."""
    parameter = PARAMETERS[name]
    kind = parameter.kind
    try:
        if kind is Schedule:
            return parse_schedule(name, text)
        if kind is bool:
            if text.lower() not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "on", "yes", "1")
        return text if kind is str else kind(text)
    except ValueError as exc:
        if str(exc).startswith(f"{name}:"):
            raise
        raise ValueError(f"{name}: must be {parameter.allowed()} (got {text!r})") from None


def apply(model: DefectionModel, action: Action) -> None:
    """Apply ``action`` to ``model``, which must be at week ``action.week - 1``."""
    if model.week != action.week - 1:
        raise ValueError(f"{action.describe()}: the model is at week {model.week}")
    if action.name == RELEASE:
        model.release_prisoners()
    elif action.name == ADAPTIVE:
        model.set_adaptive(bool(action.value))
    elif action.name == DECAPITATION:
        model.kill_isk_leader()
    else:
        model.move_lever(action.name, float(action.value))


def replay(
    settings: Settings,
    actions: list[Action],
    week: int,
    stop: Callable[[], bool] = lambda: False,
) -> DefectionModel:
    """The run of ``settings`` with ``actions``, stepped to ``week`` (or until ``stop()``)."""
    if not 0 <= week <= MAX_WEEKS:
        raise ValueError(f"week: must be in 0-{MAX_WEEKS} (got {week})")
    model = build_model(settings)
    due = sorted(actions, key=lambda a: a.week)
    i = 0
    while model.week < week and not stop():
        while i < len(due) and due[i].week <= model.week + 1:
            if due[i].week == model.week + 1:
                apply(model, due[i])
            i += 1
        model.step()
    return model


def to_query(settings: Settings, actions: list[Action], week: int) -> str:
    """The query string of a link that replays this run to ``week``."""
    fields: dict[str, object] = {"scenario": settings.preset, "seed": settings.seed, "week": week}
    if settings.fixed_population is None:
        fields["population"] = settings.population
    if settings.overrides:
        fields["set"] = ";".join(f"{name}={text}" for name, text in settings.overrides)
    if actions:
        fields["actions"] = ",".join(f"{a.week}:{a.name}:{a.value:g}" for a in actions)
    return urlencode(fields, safe=":,")


def from_query(query: str) -> tuple[Settings, list[Action], int]:
    """Settings, actions and week from a link's query string; ValueError says what is wrong."""
    fields = {k: v[-1] for k, v in parse_qs(query.lstrip("?"), keep_blank_values=True).items()}
    settings = Settings()
    try:
        if "scenario" in fields:
            preset_overrides(fields["scenario"])
            settings = replace(settings, preset=fields["scenario"])
            if settings.agents > POPULATION_MAX:  # a link asks no more than the slider allows
                raise ValueError(
                    f"population: scenario {settings.preset} sets {settings.agents:,} agents, "
                    f"more than a link may replay ({POPULATION_MAX:,}); choose it on the page "
                    "and press Reset"
                )
        if "seed" in fields:
            settings = replace(settings, seed=parse_seed(fields["seed"]))
        if "population" in fields:
            population = int(fields["population"])
            if not POPULATION_MIN <= population <= POPULATION_MAX:
                raise ValueError(
                    f"population: must be in {POPULATION_MIN}-{POPULATION_MAX} (got {population})"
                )
            settings = replace(settings, population=population)
        if "set" in fields:
            settings = replace(settings, overrides=parse_overrides(fields["set"]))
        week = int(fields.get("week", 0))
        if not 0 <= week <= MAX_WEEKS:
            raise ValueError(f"week: must be in 0-{MAX_WEEKS} (got {week})")
        actions = [_action(text) for text in fields.get("actions", "").split(",") if text]
    except ValueError as exc:
        raise ValueError(f"link: {exc}") from None
    return settings, actions, week


def _action(text: str) -> Action:
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"actions: each must be week:name:value (got {text!r})")
    week, name, value = int(parts[0]), parts[1], float(parts[2])
    if not 1 <= week <= MAX_WEEKS:
        raise ValueError(f"actions: the week must be in 1-{MAX_WEEKS} (got {text!r})")
    if name not in LEVERS and name not in EVENTS:
        raise ValueError(f"actions: {name!r} is not a lever or an event (got {text!r})")
    if name not in EVENTS and not 0.0 <= value <= 1.0:
        raise ValueError(f"actions: a lever value must be in [0, 1] (got {text!r})")
    return Action(week, name, value)


def run_command(settings: Settings, actions: list[Action], week: int) -> list[str] | None:
    """The ``defection run`` arguments that reproduce this run, or None if no command can.

    A lever move holds from its week on, so a lever's course is its scenario schedule up
    to the move and the moved value after: written as one schedule (``--set``) it gives
    the same lever every week, hence the same run. Prisoner releases, IS-K leaders killed
    and the adaptive switch thrown mid-run have no ``--set`` form: such a run is
    reproduced by its link instead.
    """
    if any(a.name in EVENTS for a in actions):
        return None
    schedules = build_model(settings).policy.schedules
    command = ["defection", "run", "--preset", settings.preset, "--seed", str(settings.seed)]
    command += ["--steps", str(week)]
    if settings.fixed_population is None:
        command += ["--set", f"population={settings.population}"]
    moved = {a.name for a in actions}
    for name, text in settings.overrides:
        if name not in moved:
            command += ["--set", f"{name}={text}"]
    for lever in sorted(moved):
        moves = [(a.week, a.value) for a in actions if a.name == lever]
        command += ["--set", f"{lever}={_moved(schedules[lever], moves).describe()}"]
    return command


def _moved(schedule: Schedule, moves: list[tuple[int, float]]) -> Schedule:
    """``schedule`` until the first move, then each moved value from its week on.

    Written as a held schedule whose knots are the scenario's own values at each week
    before the move where it changes (the model reads levers at whole weeks), so every
    week's value is the very number the page's run had, not a re-interpolation of it.
    """
    knots: list[tuple[float, float]] = []
    for week in range(moves[0][0]):
        value = schedule.at(week)
        if not knots or value != knots[-1][1]:
            knots.append((float(week), value))
    knots += [(float(week), float(value)) for week, value in moves]
    return Schedule(tuple(w for w, _ in knots), tuple(v for _, v in knots), linear=False)
