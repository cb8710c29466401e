"""The browser front end without a browser: its pieces, and its Solara components rendered in-process."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara
from mesa.visualization import SolaraViz

from isk_defection.model import DefectionModel
from isk_defection.model.groups import GROUP_NAMES, ISK
from isk_defection.viz import assets, levers
from isk_defection.viz import columns as cols
from isk_defection.viz.app import Page
from isk_defection.viz.controls import parquet_bytes, recipe, run_table
from isk_defection.viz.frames import (
    ALLEGIANCE_SHIFT,
    FrameSource,
    agent_codes,
    chart_panels,
    history_rows,
    lever_plan,
    status_lines,
)
from isk_defection.viz.journal import (
    ADAPTIVE,
    RELEASE,
    Action,
    Settings,
    build_model,
    from_query,
    parse_seed,
    replay,
    to_query,
)
from isk_defection.viz.layout import ClusterLayout
from isk_defection.viz.levers import LeverWidget
from isk_defection.viz.live import AgentsView, ChartsView, LiveWidget, StatusCard
from isk_defection.viz.runner import IN_FLIGHT, SETTLE, PauseRules, Registry, Run
from isk_defection.viz.style import GROUP_COLORS, ISK_COLOR, LEVER_INK, lever_help, lever_label

SMALL = Settings(population=400, seed=3)


@pytest.fixture
def model():
    return build_model(SMALL)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def run():
    """A run with its own registry (cap 2) and hand-moved clock; closed after the test."""
    clock = Clock()
    r = Run(SMALL, registry=Registry(max_playing=2), clock=clock, threaded=False)
    r.test_clock = clock
    yield r
    r.close()


class Sink:
    """Collects what a run sends to the browser."""

    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.configs: list[dict] = []
        self.event = threading.Event()

    def frame(self, frame: dict) -> None:
        self.frames.append(frame)
        self.event.set()

    def config(self, config: dict) -> None:
        self.configs.append(config)

    def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            self.event.wait(0.05)
            self.event.clear()
        assert len(self.frames) >= count, f"{len(self.frames)} frames, expected {count}"


# ---- settings, links and replay --------------------------------------------------------------
def test_parse_seed_accepts_integers_and_explains_anything_else():
    assert parse_seed(" 42 ") == 42
    assert parse_seed("0") == 0
    for bad in ("abc", "4.2", "", "-1", "1e3"):
        with pytest.raises(ValueError, match=r"^seed: must be a whole number") as info:
            parse_seed(bad)
        assert "\n" not in str(info.value)


def test_build_model_uses_the_settings_and_refuses_bad_ones():
    model = build_model(Settings("inclusive", 500, 9))
    assert (model.preset, model.population.n, model.seed) == ("inclusive", 500, 9)
    with pytest.raises(ValueError, match="preset"):
        build_model(Settings("nope", 500, 9))
    with pytest.raises(ValueError, match="population"):
        build_model(Settings("baseline", 5, 9))


def test_a_scenario_that_fixes_its_population_keeps_it():
    """full_scale says 'one agent per person': Reset must not use the slider's 2,000."""
    full = Settings("full_scale", 2_000, 1)
    assert full.fixed_population is not None and full.fixed_population > 100_000
    assert full.agents == full.fixed_population
    assert Settings("baseline", 2_000, 1).agents == 2_000
    assert "population" not in to_query(full, [], 0)


def test_a_link_round_trips_settings_actions_and_week():
    settings = Settings("crackdown", 700, 11)
    actions = [Action(3, "crackdown_ttp", 0.8), Action(5, RELEASE), Action(6, ADAPTIVE, 0.0)]
    query = to_query(settings, actions, 9)
    assert from_query(query) == (settings, actions, 9)
    assert from_query("?" + query) == (settings, actions, 9)
    assert from_query("") == (Settings(), [], 0)


@pytest.mark.parametrize(
    "query, field",
    [
        ("scenario=nope", "preset"),
        ("seed=-3", "seed"),
        ("population=5", "population"),
        ("week=-1", "week"),
        ("actions=3:crackdown_ttp", "actions"),
        ("actions=0:crackdown_ttp:0.5", "actions"),
        ("actions=3:crackdown_ttp:7", "actions"),
        ("actions=3:nope:0.5", "actions"),
        ("actions=99999:crackdown_ttp:0.5", "actions"),
    ],
)
def test_a_bad_link_is_refused_with_one_line_naming_the_field(query, field):
    with pytest.raises(ValueError, match=rf"^link: .*{field}") as info:
        from_query(query)
    assert "\n" not in str(info.value)


def test_replay_reproduces_a_run_driven_by_hand_number_for_number():
    by_hand = build_model(SMALL)
    actions = []
    for week in range(12):
        if week == 3:
            by_hand.move_lever("crackdown_ttp", 0.9)
            actions.append(Action(4, "crackdown_ttp", 0.9))
        if week == 6:
            by_hand.release_prisoners()
            actions.append(Action(7, RELEASE))
        by_hand.step()
    again = replay(SMALL, actions, 12)
    first, second = by_hand.datacollector.model_vars, again.datacollector.model_vars
    assert first.keys() == second.keys()
    for column in first:
        assert first[column] == pytest.approx(second[column], nan_ok=True), column
    without = replay(SMALL, actions[1:], 12).datacollector.model_vars
    lever = cols.lever_column("crackdown_ttp", first)
    assert without[lever][:4] == first[lever][:4] and without[lever][4] != first[lever][4]


# ---- reading the model by name ------------------------------------------------------------------
def test_columns_are_found_under_either_name_and_missing_ones_are_none():
    assert cols.lever_column("counter_isk", ["lever_counter_isk", "week"]) == "lever_counter_isk"
    assert cols.lever_column("counter_isk", {"counter_isk": 1}) == "counter_isk"
    assert cols.lever_column("counter_isk", ["week"]) is None
    assert cols.stat({"a": 1, "b": 2}, "x", "b") == 2
    assert cols.number(float("nan")) is None and cols.number("x") is None
    assert cols.number(np.float32(0.5)) == 0.5


def test_levers_and_allegiances_come_from_the_model(model):
    from isk_defection.agents.fighters import ALLEGIANCES

    assert cols.levers(model) == tuple(model.policy.schedules)
    assert cols.allegiances() == tuple(ALLEGIANCES)
    assert cols.allegiance_code("isk") == ALLEGIANCES.index("isk")
    assert cols.allegiance_code("no-such-state") is None
    for lever in cols.levers(model):  # every lever the model has gets a label and its levels
        assert lever_label(lever) and len(lever_help(lever)) >= 3
    assert lever_label("new_lever") == "New lever"  # a lever added later still reads well
    assert [level for level, _ in lever_help("new_lever")] == [0.0, 0.5, 1.0]


def test_lever_explanations_follow_the_odd_table():
    """The page's "?" texts are docs/ODD.md §7.1's "Levers as observable acts", word for word."""
    import re
    from pathlib import Path

    from isk_defection.viz.style import LEVER_HELP

    odd = (Path(__file__).resolve().parents[1] / "docs" / "ODD.md").read_text()
    table = odd[odd.index("**Levers as observable acts.**") :]
    table = table[: table.index("\n#")]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", table, re.M)
    assert rows, "the ODD's lever table was not found"
    for name, quarter, half, full in rows:
        assert LEVER_HELP[name] == {0.25: quarter.strip(), 0.5: half.strip(), 1.0: full.strip()}


def test_charts_show_the_columns_the_model_has_and_skip_the_rest(model):
    panels = chart_panels(model)
    keys = {s.key for p in panels for s in p.series}
    history = cols.history(model)
    assert keys <= set(history)
    assert {f"{g}_defection_rate" for g in GROUP_NAMES} <= keys
    fake = SimpleNamespace(
        datacollector=SimpleNamespace(model_vars={"week": [0], "isk_strength": [5.0]}),
    )
    only = chart_panels(fake)
    assert [p.id for p in only] == ["strength"]
    assert [s.key for s in only[0].series] == ["isk_strength"]


# ---- colours -----------------------------------------------------------------------------------
MACHADO = {  # Machado, Oliveira & Fernandes (2009), severity 1, on linear RGB
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
    "normal vision": np.eye(3),
}  # fmt: skip


def _lab(hex_color: str, matrix) -> np.ndarray:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(np.asarray(matrix) @ linear, 0, 1)
    to_xyz = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    xyz = np.asarray(to_xyz) @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", list(MACHADO))
def test_group_colours_stay_apart_under_colour_vision_deficiency(vision):
    """The old palette had ΔE ≤ 7 between Tajik/TTP, Haqqani/TTP, Kandahar/Uzbek."""
    colours = GROUP_COLORS | {"isk": ISK_COLOR}
    assert set(GROUP_COLORS) == set(GROUP_NAMES)
    worst = min(
        (float(np.linalg.norm(_lab(colours[a], MACHADO[vision]) - _lab(colours[b], MACHADO[vision]))), a, b)
        for a, b in itertools.combinations(colours, 2)
    )  # fmt: skip
    assert worst[0] >= 15, worst


def test_levers_are_not_drawn_in_group_colours():
    assert LEVER_INK not in GROUP_COLORS.values() and LEVER_INK != ISK_COLOR


# ---- frames ------------------------------------------------------------------------------------
def _apply(state: dict, frame: dict) -> None:
    """What the browser does with a frame's agents: apply the change to its copy."""
    agents = frame["agents"]
    if agents["full"]:
        state.clear()
    for slot, code in zip(agents["slots"], agents["codes"], strict=True):
        state[slot] = code


def test_frames_send_everything_once_then_only_what_changed(model):
    source = FrameSource(model)
    first = source.frame([])
    assert first["base"] == 0 and first["agents"]["full"]
    assert first["agents"]["n"] == model.population.n == len(first["agents"]["slots"])
    assert len(first["agents"]["home"]) == 2 * model.population.n
    assert first["rows"]["start"] == 0 and first["rows"]["weeks"] == [0]
    browser: dict[int, int] = {}
    _apply(browser, first)
    for _ in range(4):
        model.step()
        frame = source.frame([])
        assert frame["base"] == frame["seq"] - 1 and not frame["agents"]["full"]
        assert len(frame["agents"]["slots"]) < model.population.n  # a change, not everything
        _apply(browser, frame)
    codes = agent_codes(model)
    assert [browser[i] for i in range(model.population.n)] == codes.tolist()
    assert frame["rows"]["weeks"] == [4] and frame["rows"]["start"] == 4
    source.reset()
    assert source.frame([])["agents"]["full"]


def test_a_frame_carries_one_week_for_status_agents_and_charts(model):
    source = FrameSource(model)
    source.frame([])
    for _ in range(3):
        model.step()
    frame = source.frame([])  # three weeks since the last frame: all their rows come along
    assert frame["week"] == model.week == frame["status"]["week"] == frame["rows"]["weeks"][-1]
    assert frame["rows"]["weeks"] == [1, 2, 3]
    assert all(len(values) == 3 for values in frame["rows"]["values"].values())
    json.dumps(frame, allow_nan=False)  # NaN is sent as null, never as invalid JSON


def test_a_large_run_draws_one_agent_in_k(model, monkeypatch):
    from isk_defection.viz import frames

    monkeypatch.setattr(frames, "MAX_DRAWN", 150)
    source = FrameSource(model)
    stride = source.stride
    assert stride == -(-model.population.n // 150) and source.config()["stride"] == stride
    first = source.frame([])
    assert first["agents"]["slots"] == list(range(0, model.population.n, stride))
    browser: dict[int, int] = {}
    _apply(browser, first)
    for _ in range(3):
        model.step()
        _apply(browser, source.frame([]))
    codes = agent_codes(model)
    assert browser == {slot: int(codes[slot]) for slot in range(0, model.population.n, stride)}


def test_agent_codes_encode_allegiance_recruiter_and_loyalty(model):
    pop = model.population
    member = int(np.flatnonzero(pop.group == 0)[0])
    pop.loyalty[member] = 0.5
    codes = agent_codes(model)
    assert codes[member] == pop.allegiance[member] * ALLEGIANCE_SHIFT + 10
    model.join_isk(np.array([member]))
    assert agent_codes(model)[member] >> 6 == cols.allegiance_code("isk")


def test_new_arrivals_get_their_spots_in_the_next_frame(model):
    source = FrameSource(model)
    source.frame([])
    before = model.population.n
    model.release_prisoners()
    model.step()
    frame = source.frame([])
    agents = frame["agents"]
    assert model.population.n > before and agents["new"] == list(range(before, model.population.n))
    assert len(agents["group"]) == model.population.n - before
    assert len(agents["home"]) == 2 * (model.population.n - before)
    assert set(range(before, model.population.n)) <= set(agents["slots"])


def test_lever_plan_shows_the_scenario_timeline_and_a_move_ahead(model):
    lever = "witch_hunt"
    plan = lever_plan(model, 0, 156)
    schedule = model.policy.schedules[lever]
    points = dict((w, v) for w, v in plan["levers"][lever])
    assert points[0] == pytest.approx(schedule.at(0)) and points[156] == pytest.approx(
        schedule.at(156)
    )
    model.move_lever(lever, 0.95)
    moved = lever_plan(model, 0, 156)["levers"][lever]
    assert moved[-1] == [156, 0.95] and [1, 0.95] in moved
    model.set_adaptive(True)
    assert set(lever_plan(model, 0, 156)["adaptive"]) == set(cols.adaptive_levers())


def test_status_totals_are_people_from_the_model_and_agents_count_arrivals_apart(model):
    lines = status_lines(model)
    assert lines["Week"] == "0" and lines["Date"] == "15 Aug 2021"
    assert lines["Largest defecting group this week"] == "none"
    assert lines["IS-K strength"] == f"{model.stats['isk_strength']:,.0f} people"
    assert lines["Agents"] == f"{model.population.n:,}"
    start = model.population.n
    model.release_prisoners()
    model.step()
    lines = status_lines(model)
    assert lines["Agents"] == f"{start:,} + {model.population.n - start:,} freed prisoners"
    assert lines["Defections so far"] == f"{model.stats['cumulative_defections']:,.0f} people"


def test_history_rows_convert_nan_to_null(model):
    rows = history_rows(model, chart_panels(model), 0)
    assert rows["weeks"] == [0]
    assert any(v == [None] for v in rows["values"].values()) or all(
        isinstance(v[0], float) for v in rows["values"].values()
    )
    json.dumps(rows, allow_nan=False)


def test_layout_is_deterministic_and_puts_isk_members_in_the_middle(model):
    pop = model.population
    first = ClusterLayout.for_groups(pop.group)
    again = ClusterLayout.for_groups(pop.group)
    np.testing.assert_array_equal(first.home, again.home)
    home = first.positions(pop.group, pop.allegiance)
    radius = np.linalg.norm(home, axis=1)
    assert radius[pop.group == ISK].max() <= first.isk_core + 1e-9
    for code in range(len(GROUP_NAMES)):  # members sit inside their own group's disc
        distance = np.linalg.norm(home[pop.group == code] - first.centers[code], axis=1)
        assert distance.max() <= first.radii[code] + 1e-9
    assert np.linalg.norm(first.isk_spot[pop.group == 0], axis=1).max() <= first.isk_radius + 1e-9


# ---- the run: actions, pacing, cap, watchdog ----------------------------------------------------
def test_moves_within_one_week_are_one_move(run):
    for value in (0.55, 0.6, 0.65, 0.7):  # four key presses on a slider
        run.move_lever("crackdown_ttp", value)
    assert run.lever_value("crackdown_ttp") == 0.7 and run.actions == []
    run.step()
    assert run.actions == [Action(1, "crackdown_ttp", 0.7)]
    assert run.model.levers["crackdown_ttp"] == pytest.approx(0.7)
    assert run.lever_source("crackdown_ttp") == "set by you in week 1"


def test_while_playing_a_slider_value_becomes_a_move_once_it_settles(run):
    run.playing = True  # as the loop sees it; no thread steps here
    run.move_lever("witch_hunt", 0.1)
    run._advance()  # the same instant: the value has not settled yet
    assert run.actions == [] and "witch_hunt" in run._pending
    run.test_clock.now += SETTLE + 0.01
    run._advance()
    assert run.actions == [Action(2, "witch_hunt", 0.1)]
    column = cols.lever_column("witch_hunt", cols.history(run.model))
    assert cols.history(run.model)[column][-1] == pytest.approx(0.1)
    run.playing = False


def test_release_and_adaptive_switch_are_journalled_for_the_next_week(run):
    run.release_prisoners()
    run.set_adaptive(True)
    assert run.release_pending() and run.adaptive_shown() and not run.adaptive
    before = run.model.population.n
    run.step()
    assert run.actions == [Action(1, RELEASE), Action(1, ADAPTIVE, 1.0)]
    assert run.model.population.n > before and run.adaptive
    assert "adaptive rule" in run.lever_source(cols.adaptive_levers()[0])
    run.set_adaptive(False)
    run.set_adaptive(True)  # switched back before the week ended: nothing to do
    run.step()
    assert len(run.actions) == 2


def test_frames_wait_for_the_browser_instead_of_queueing(run):
    clock = run.test_clock
    run._sender, run._config_sender = (lambda f: None), (lambda c: None)
    run.playing, run._full, run._dirty = True, False, True
    run._sent_seq, run._acked_seq, run._sent_at = 5, 5, clock.now
    assert run._due(clock.now) == pytest.approx(0.1)  # at most ten frames a second
    assert run._due(clock.now + 0.1) == 0
    run._sent_seq = 5 + IN_FLIGHT  # the browser has not drawn the frames in flight
    assert run._due(clock.now + 0.5) > 0  # so none is sent...
    assert run._due(clock.now + 1.0) == 0  # ...until it answers or a second has passed
    run.acked(5 + IN_FLIGHT)
    assert run._due(clock.now + 0.1) == 0
    run._dirty = False
    assert run._due(clock.now + 5) == float("inf")  # nothing new: nothing sent
    run.playing = False


def test_a_step_by_hand_is_sent_at_once_and_the_browser_can_start_over():
    run = Run(SMALL, registry=Registry(max_playing=2))
    sink = Sink()
    run.attach(sink.frame, sink.config)
    sink.wait(1)
    assert sink.configs and sink.frames[0]["base"] == 0 and sink.frames[0]["week"] == 0
    run.step()
    sink.wait(2)
    assert sink.frames[1]["week"] == 1 and sink.frames[1]["base"] == sink.frames[0]["seq"]
    run.resync()
    sink.wait(3)
    assert sink.frames[2]["base"] == 0 and len(sink.configs) == 2
    assert "week=1" in sink.frames[2]["query"]
    run.close()


def test_play_steps_and_pause_stops():
    run = Run(SMALL, registry=Registry(max_playing=2))
    sink = Sink()
    run.attach(sink.frame, sink.config)
    run.set_speed(50)
    assert run.play()
    deadline = time.monotonic() + 10
    while run.model.week < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    run.pause()
    stopped = run.model.week
    time.sleep(0.3)
    assert stopped >= 10 and run.model.week == stopped
    assert not run.registry.playing() and len(sink.frames) >= 2
    run.close()


def test_the_server_caps_how_many_runs_play_at_once():
    registry = Registry(max_playing=1)
    first, second = Run(SMALL, registry=registry), Run(SMALL, registry=registry)
    try:
        assert first.play()
        assert not second.play() and not second.playing
        assert "already playing 1 runs" in second.message
        first.pause()
        assert second.play()
    finally:
        first.close()
        second.close()


def test_pause_rules_stop_the_run_and_say_why():
    run = Run(Settings(population=2_000, seed=42), registry=Registry(2), threaded=False)
    run.set_rules(PauseRules(people=0))
    run.playing = True
    run.registry.claim(run)
    for _ in range(30):
        run._advance()
        if not run.playing:
            break
    assert not run.playing and run.model.stats["defections"] > 0
    people = round(run.model.stats["defections"])
    assert run.message == (
        f"Paused at week {run.model.week}: {people:,} people defected this week, more than 0."
    )
    # in people, not agents: a week's defections are counted as the status bar counts them
    assert PauseRules(people=people).check(run.model, {}) == ""
    assert (
        PauseRules(people=people - 1)
        .check(run.model, {})
        .endswith(f"{people:,} people defected this week, more than {people - 1:,}.")
    )
    rules = PauseRules(share=0.0001)
    before = {f"{g}_defection_rate": 0.0 for g in GROUP_NAMES}
    assert "passing 0%" in rules.check(run.model, before)
    assert rules.check(run.model, run.model.stats) == ""  # passed before: no new pause
    run.close()


class FakeContext:
    """Solara's kernel context as the watchdog reads it."""

    def __init__(self) -> None:
        self.page_status = {"page": SimpleNamespace(value="connected")}
        self.closed_event = threading.Event()

    def on_close(self, callback) -> None:
        self.callback = callback

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def test_a_run_whose_page_has_gone_is_paused_then_closed():
    context = FakeContext()
    registry = Registry(max_playing=3)
    run = Run(SMALL, registry=registry, context=context)
    try:
        assert run.play()
        registry.sweep(now=100.0)
        assert run.playing  # connected
        context.page_status["page"] = SimpleNamespace(value="disconnected")
        registry.sweep(now=101.0)
        assert run.playing  # a reconnect may follow within the grace period
        registry.sweep(now=200.0)
        assert not run.playing and "disconnected" in run.message
        assert registry.playing() == []
        context.closed_event.set()
        registry.sweep(now=201.0)
        assert run.closed and run not in registry.runs()
        run._thread.join(5)
        assert not run._thread.is_alive()
    finally:
        run.close()


def test_compare_forks_without_a_move_sharing_the_weeks_before_it(run):
    run.playing = False
    for _ in range(3):
        run.step()
    run.move_lever("crackdown_ttp", 1.0)
    for _ in range(4):
        run.step()
    run.start_compare(leave_out=[0])
    deadline = time.monotonic() + 20
    while run.compare is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.compare is not None and run.compare.model.week == run.model.week
    assert run.compare.fork_week == 4
    run.step()
    a, b = cols.history(run.model), cols.history(run.compare.model)
    lever = cols.lever_column("crackdown_ttp", a)
    assert a[lever][:4] == b[lever][:4] and a[lever][4:] != b[lever][4:]
    assert a["isk_strength"][:4] == b["isk_strength"][:4]
    frame = run.frame()
    assert frame["compare"]["rows"]["weeks"][-1] == run.model.week
    run.stop_compare()
    assert run.compare is None


def test_compare_another_scenario_with_the_same_seed(run):
    run.step()
    run.start_compare(preset="inclusive")
    deadline = time.monotonic() + 20
    while run.compare is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.compare.settings == Settings("inclusive", SMALL.population, SMALL.seed)
    assert run.compare.model.week == run.model.week == 1


def test_reset_with_bad_settings_keeps_the_run(run):
    run.step()
    with pytest.raises(ValueError, match="preset"):
        run.reset(Settings("nope", 400, 1))
    assert run.model.week == 1
    run.reset(Settings("inclusive", 300, 5))
    assert (run.model.week, run.model.preset, run.model.seed) == (0, "inclusive", 5)
    assert run.actions == []


def test_downloads_hold_the_weekly_data_and_the_moves(run):
    run.move_lever("counter_isk", 0.9)
    for _ in range(3):
        run.step()
    table = pd.read_csv(io.StringIO(run_table(run).to_csv(index=False)))
    assert list(table["week"]) == [0, 1, 2, 3]
    assert "isk_strength" in table and cols.lever_column("counter_isk", table.columns) in table
    assert table.loc[table["week"] == 1, "actions"].item() == "counter_isk=0.9"
    parquet = pd.read_parquet(io.BytesIO(parquet_bytes(run)))
    assert list(parquet.columns) == list(table.columns) and len(parquet) == 4
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(io.BytesIO(parquet_bytes(run))).metadata[b"defection_run"])
    assert meta == recipe(run)
    assert from_query(meta["link_query"]) == (run.settings, run.actions, 3)


def test_asset_list_names_the_pinned_front_end_packages(tmp_path):
    names = assets.required()
    assert any(name.startswith("requirejs@") for name in names)
    assert any("solara-vuetify" in name for name in names)
    assert assets.missing(tmp_path) == names


# ---- components rendered without a browser --------------------------------------------------
def button(rc, label: str):
    """The one button whose text is ``label`` (an icon may come with it)."""
    found = [w for w in rc.find(v.Btn).widgets if label in w.children]
    assert len(found) == 1, f"{label!r} buttons: {len(found)}"
    return found[0]


def slider(rc, css: str):
    return rc.find(v.Slider, class_=css).widget


def page_run(rc) -> Run:
    widget = rc.find(LiveWidget).widget
    return widget.on_resync.__self__


def test_page_renders_controls_with_accessible_names_and_the_live_view():
    box, rc = solara.render(Page(), handle_error=False)
    run = page_run(rc)
    try:
        for label in ("Play", "Step", "Reset", "Start comparison"):
            assert button(rc, label)
        state = run.lever_state()
        assert [item["label"] for item in state["levers"]] == [
            lever_label(lever) for lever in cols.levers(run.model)
        ]
        template = Path(levers.__file__).with_name("levers.vue").read_text()
        assert ':aria-label="l.label"' in template and 'type="range"' in template
        assert rc.find(LeverWidget).widget  # the levers are drawn by the browser
        assert slider(rc, "speed").name == "Speed in weeks per second"
        assert slider(rc, "population").name == "Population in agents"
        assert rc.find(v.TextField, label="Seed").widget.v_model == "42"
        live = rc.find(LiveWidget).widget
        assert live.keyboard and live.parts == ["status", "agents", "charts"]
        deadline = time.monotonic() + 10
        while "frame" not in live.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.sent[:2] == ["config", "frame"]
    finally:
        rc.close()
        run.close()


def settled_week(run, quiet: float = 0.3, limit: float = 10.0) -> int:
    """The run's week once no step has landed for ``quiet`` seconds (after a pause)."""
    deadline = time.monotonic() + limit
    week = run.model.week
    while time.monotonic() < deadline:
        time.sleep(quiet)
        with run.lock:
            now = run.model.week
        if now == week:
            return week
        week = now
    raise AssertionError("the run kept stepping after Pause")


def test_step_button_keys_and_reset_drive_the_page_run():
    box, rc = solara.render(Page(), handle_error=False)
    run = page_run(rc)
    live = rc.find(LiveWidget).widget
    try:
        button(rc, "Step").click()
        live.vue_shortcut("step")  # the → key
        assert run.model.week == 2
        live.vue_shortcut("toggle")  # Space
        assert run.playing and button(rc, "Pause")
        live.vue_shortcut("toggle")
        assert not run.playing
        # A step already under way when Pause came may finish, and its re-render runs on the
        # play thread: let it land first, so the typed seed is rendered on this thread.
        week = settled_week(run)
        seed = rc.find(v.TextField, label="Seed").widget
        seed.v_model = "abc"
        assert seed.error and "seed: must be a whole number" in seed.messages[0]
        button(rc, "Reset").click()
        assert run.model.week == week and run.error.startswith("Reset refused")
        assert rc.find(v.Alert).widgets  # the refusal is on the page
        seed.v_model = "7"
        rc.find(v.RadioGroup, class_="scenario-choice").widget.v_model = "inclusive"
        button(rc, "Reset").click()
        assert (run.model.week, run.model.seed, run.model.preset) == (0, 7, "inclusive")
        assert run.error == ""
    finally:
        rc.close()
        run.close()


def test_choosing_full_scale_shows_its_own_population_instead_of_the_slider():
    box, rc = solara.render(Page(), handle_error=False)
    run = page_run(rc)
    try:
        rc.find(v.RadioGroup, class_="scenario-choice").widget.v_model = "full_scale"
        assert not rc.find(v.Slider, class_="population").widgets
        fixed = Settings("full_scale").fixed_population
        note = rc.find(v.Html, class_="population-fixed").widget
        assert f"{fixed:,} agents" in note.children[0]
    finally:
        rc.close()
        run.close()


def test_a_lever_move_from_the_browser_moves_the_running_model_without_reset():
    box, rc = solara.render(Page(), handle_error=False)
    run = page_run(rc)
    widget = rc.find(LeverWidget).widget
    shown: list[dict] = []
    widget.show = shown.append
    try:
        for _ in range(3):
            button(rc, "Step").click()
        model = run.model
        widget.vue_move({"name": "crackdown_ttp", "value": 0.7})  # a drag's release, or a key
        assert run.model is model and model.week == 3
        mine = {item["name"]: item for item in shown[-1]["levers"]}["crackdown_ttp"]
        assert mine["value"] == pytest.approx(0.7) and mine["source"].startswith("your move")
        button(rc, "Step").click()
        assert run.actions == [Action(4, "crackdown_ttp", 0.7)]
        assert model.levers["crackdown_ttp"] == pytest.approx(0.7)
        widget.vue_move({"name": "witch_hunt", "value": 7})  # refused on the page, not raised
        assert run.error.startswith("That did not work") and "witch_hunt" not in run._pending
    finally:
        rc.close()
        run.close()


def test_the_adaptive_switch_says_whether_it_is_on():
    box, rc = solara.render(Page(), handle_error=False)
    run = page_run(rc)
    widget = rc.find(LeverWidget).widget
    shown: list[dict] = []
    widget.show = shown.append
    try:
        assert run.lever_state()["adaptive"] is False
        widget.vue_set_adaptive(True)
        assert shown[-1]["adaptive"] is True and run.adaptive_shown()
        widget.vue_release_prisoners()
        assert shown[-1]["release"] is True
    finally:
        rc.close()
        run.close()


def wait_replayed(run: Run, limit: float = 60.0) -> None:
    """Wait until a link's replay (done by the run's loop) has reached its week."""
    deadline = time.monotonic() + limit
    while run.replaying and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not run.replaying, f"replay stuck at week {run.model.week}: {run.message!r}"


def test_a_shared_link_opens_the_same_run_at_the_same_week():
    settings, actions = Settings("baseline", 500, 8), [Action(2, "inclusion", 0.9)]
    query = to_query(settings, actions, 6)
    original = replay(settings, actions, 6)
    from isk_defection.viz import app

    opened, problem = app._new_run(query)
    try:
        wait_replayed(opened)
        assert problem == "" and opened.model.week == 6 and opened.actions == actions
        assert opened.model.stats == pytest.approx(original.stats, nan_ok=True)
    finally:
        opened.close()
    broken, problem = app._new_run("scenario=nope")
    broken.close()
    assert problem.startswith("This link could not be replayed (link: preset")


def test_the_page_never_loads_matplotlib():
    """Matplotlib is not thread-safe: two sessions drawing with it could crash the server."""
    import subprocess
    import sys

    code = (
        "import sys, solara\n"
        "from isk_defection.viz.app import Page\n"
        "box, rc = solara.render(Page(), handle_error=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
        "rc.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_module_exposes_the_page_for_solara_and_jupyter():
    from isk_defection.viz import app

    assert app.Page is Page and app.page.component.f is Page.f
    assert not any(isinstance(value, (DefectionModel, Run)) for value in vars(app).values())


def test_two_pages_have_their_own_runs():
    _, first = solara.render(Page(), handle_error=False)
    _, second = solara.render(Page(), handle_error=False)
    runs = page_run(first), page_run(second)
    try:
        assert runs[0] is not runs[1] and runs[0].model is not runs[1].model
        button(first, "Step").click()
        button(first, "Step").click()
        assert (runs[0].model.week, runs[1].model.week) == (2, 0)
    finally:
        first.close()
        second.close()
        for r in runs:
            r.close()


def test_the_views_plug_into_mesas_solaraviz(model):
    """The agents, charts and status views are plain Mesa components: SolaraViz can show them."""
    page = SolaraViz(model, components=[AgentsView, ChartsView, StatusCard], name="defection")
    box, rc = solara.render(page, handle_error=False)
    widgets = rc.find(LiveWidget).widgets
    assert sorted(tuple(w.parts) for w in widgets) == [("agents",), ("charts",), ("status",)]
    assert all(w.sent[:2] == ["config", "frame"] for w in widgets)
    rc.close()


def test_defection_app_prints_the_address_and_starts_solara(monkeypatch, capsys):
    from isk_defection.experiments import cli

    started = {}
    monkeypatch.setattr("os.execve", lambda path, argv, env: started.update(argv=argv, env=env))
    assert cli.main(["app", "--port", "8899", "--host", "127.0.0.2"]) == 0
    assert "open http://127.0.0.2:8899 in a browser" in capsys.readouterr().out
    argv = started["argv"]
    assert argv[1:4] == ["-m", "solara", "run"] and argv[4].endswith("viz/app.py")
    assert started["env"]["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "false"


def test_page_displays_inline_in_a_jupyter_kernel():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        request = client.execute("from isk_defection.viz.app import Page\nPage()")
        shown, errors = [], []
        while True:
            message = client.get_iopub_msg(timeout=120)
            if message["parent_header"].get("msg_id") != request:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "display_data":
                shown += list(content["data"])
            elif kind == "error":
                errors.append(content["evalue"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        assert errors == [] and "application/vnd.jupyter.widget-view+json" in shown
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_the_run_command_gives_each_lever_the_course_the_page_gave_it():
    from isk_defection.viz.journal import run_command

    actions = [
        Action(4, "witch_hunt", 0.9),
        Action(10, "counter_isk", 0.2),
        Action(15, "witch_hunt", 0.1),
    ]
    command = run_command(SMALL, actions, 30)
    assert command[:8] == [
        "defection",
        "run",
        "--preset",
        "baseline",
        "--seed",
        "3",
        "--steps",
        "30",
    ]
    sets = dict(item.split("=", 1) for item in command[command.index("--set") + 1 :: 2])
    assert sets.pop("population") == "400"
    assert set(sets) == {"witch_hunt", "counter_isk"}
    by_command = DefectionModel(
        preset="baseline", population=400, rng=3, collect_agent_data=False, **sets
    )
    for _ in range(30):
        by_command.step()
    page = replay(SMALL, actions, 30).datacollector.model_vars
    for column in ("lever_witch_hunt", "lever_counter_isk", "isk_strength", "defections"):
        assert by_command.datacollector.model_vars[column] == page[column], column
    assert run_command(SMALL, [*actions, Action(12, RELEASE)], 30) is None  # no --set form


def test_advanced_parameters_are_checked_as_set_is_and_travel_with_the_run():
    from isk_defection.viz.journal import parse_overrides, run_command

    chosen = parse_overrides(
        "release_week=-1\n# a comment\nwitch_hunt=step(0.6,0.1,5); adaptive_leadership=on"
    )
    assert chosen == (("release_week", "-1"), ("witch_hunt", "step(0.6,0.1,5)"),
                      ("adaptive_leadership", "on"))  # fmt: skip
    settings = Settings("baseline", 400, 3, chosen)
    model = build_model(settings)
    assert model.p.release_week == -1 and model.p.adaptive_leadership is True
    assert from_query(to_query(settings, [], 4)) == (settings, [], 4)  # links carry them
    assert "--set" in run_command(settings, [], 4) and "release_week=-1" in run_command(
        settings, [], 4
    )
    for text, field in [("release_week=abc", "release_week"), ("nope=1", "nope"),
                        ("population=20000", "population"), ("witch_hunt=2", "witch_hunt"),
                        ("release_week", "advanced parameters")]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"^{field}: ") as info:
            parse_overrides(text)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^release_week: must be an integer in \[-1, 10,000\]"):
        build_model(Settings("baseline", 400, 3, (("release_week", "99999"),)))


def test_the_spread_over_seeds_steps_in_lockstep_takes_the_moves_and_sends_a_fan(run):
    for _ in range(3):
        run.step()
    with pytest.raises(ValueError, match=r"^seeds: must be a whole number in 2-20"):
        run.start_ensemble(50)
    run.start_ensemble(4)
    deadline = time.monotonic() + 30
    while run.ensemble is None and time.monotonic() < deadline:
        time.sleep(0.05)
    members = run.ensemble.models
    assert [m.week for m in members] == [3] * 4
    assert sorted(m.seed for m in members) == [SMALL.seed + k for k in range(1, 5)]
    run.move_lever("crackdown_ttp", 0.9)
    run.step()
    run.step()
    assert all(m.week == 5 and m.levers["crackdown_ttp"] == pytest.approx(0.9) for m in members)
    frame = run.frame(full=True)
    fan = frame["fan"]["rows"]
    assert fan["weeks"] == list(range(6)) and "isk_strength" in fan["values"]
    low, q25, median, q75, high = zip(*fan["values"]["isk_strength"], strict=True)
    assert all(
        a <= b <= c <= d <= e for a, b, c, d, e in zip(low, q25, median, q75, high, strict=True)
    )
    strengths = sorted(m.datacollector.model_vars["isk_strength"][-1] for m in members)
    assert low[-1] >= strengths[0] - 1e-6 and high[-1] <= strengths[-1] + 1e-6
    assert run.frame()["fan"]["rows"]["weeks"] == []  # sent already: nothing new
    run.stop_ensemble()
    assert run.frame()["fan"] is None
