"""The browser front end without a browser: its pieces, and its Solara components rendered in-process."""

from __future__ import annotations

import threading
import time

import ipyvuetify as v
import ipywidgets
import numpy as np
import pytest
import solara
from mesa.visualization import SolaraViz

from model import LEVERS, PRESETS, DefectionModel
from model.groups import GROUP_NAMES, ISK
from model.policy import Move
from model.population import IN_ISK
from model.reporters import statistics
from viz import assets
from viz.agents_view import AgentsPicture, AgentsView
from viz.app import Page
from viz.charts import MAX_POINTS, PANELS, ChartsPicture, ChartsView, nice_ceiling, thin, y_limits
from viz.controls import PolicyControls, RunControls, lever_value
from viz.layout import ClusterLayout
from viz.player import FramePacer, play
from viz.session import Settings, build_model, parse_seed
from viz.status import StatusCard, status_lines
from viz.style import GROUP_COLORS, LEVER_COLORS, LEVER_LABELS, SHORT_LABELS

SMALL = Settings(population=400, seed=3)


@pytest.fixture
def model():
    return build_model(SMALL)


def status(rc, entry: str) -> str:
    """The value shown by the status card's entry ``entry`` (its CSS class is status-<entry>)."""
    sheet = rc.find(v.Sheet, class_=f"d-flex ma-0 status-{entry}").widget
    return sheet.children[-1].children[0]


def button(rc, label: str):
    """The one button whose text is ``label`` (an icon may come with it)."""
    found = [w for w in rc.find(v.Btn).widgets if label in w.children]
    assert len(found) == 1, f"{label!r} buttons: {len(found)}"
    return found[0]


# ---- pure pieces -----------------------------------------------------------------------
def test_parse_seed_accepts_integers_and_explains_anything_else():
    assert parse_seed(" 42 ") == 42
    assert parse_seed("0") == 0
    for bad in ("abc", "4.2", "", "-1", "1e3"):
        with pytest.raises(ValueError, match=r"^seed: must be a whole number") as info:
            parse_seed(bad)
        assert "\n" not in str(info.value)


def test_build_model_uses_the_settings_and_refuses_bad_ones():
    model = build_model(Settings("crackdown", 500, 9))
    assert (model.preset, model.population.n, model.seed) == ("crackdown", 500, 9)
    assert model.p["collect_agent_data"] is False
    with pytest.raises(ValueError, match="preset"):
        build_model(Settings("nope", 500, 9))
    with pytest.raises(ValueError, match="population"):
        build_model(Settings("baseline", 5, 9))


def test_colours_and_labels_cover_every_group_and_lever():
    assert set(GROUP_COLORS) == set(SHORT_LABELS) == set(GROUP_NAMES)
    assert set(LEVER_COLORS) == set(LEVER_LABELS) == set(LEVERS)


def test_layout_is_deterministic_and_puts_isk_members_in_the_middle(model):
    pop = model.population
    first = ClusterLayout.for_groups(pop.group)
    again = ClusterLayout.for_groups(pop.group)
    np.testing.assert_array_equal(first.home, again.home)
    home = first.positions(pop.group, pop.allegiance)
    radius = np.linalg.norm(home, axis=1)
    original_isk = pop.group == ISK
    assert radius[original_isk].max() <= first.isk_core + 1e-9
    for code in range(len(GROUP_NAMES)):  # members sit inside their own group's disc
        members = home[pop.group == code]
        distance = np.linalg.norm(members - first.centers[code], axis=1)
        assert distance.max() <= first.radii[code] + 1e-9
    defected = pop.allegiance.copy()
    defected[pop.group == 0] = IN_ISK
    moved = np.linalg.norm(first.positions(pop.group, defected)[pop.group == 0], axis=1)
    assert moved.max() <= first.isk_radius + 1e-9


def test_layout_extends_when_prisoners_arrive(model):
    layout = ClusterLayout.for_groups(model.population.group)
    before = layout.home.copy()
    model.release_prisoners()
    model.step()
    assert model.population.n > len(before)
    xy = layout.positions(model.population.group, model.population.allegiance)
    assert len(xy) == model.population.n
    np.testing.assert_array_equal(layout.home[: len(before)], before)  # nobody jumps


def test_frame_pacer_keeps_drawing_below_half_the_time():
    pacer = FramePacer(min_interval=0.1)
    assert pacer.due(0.0)
    pacer.drawn(0.0, 0.02)  # a quick frame: wait for the minimum interval
    assert not pacer.due(0.09) and pacer.due(0.1)
    pacer.drawn(1.0, 1.3)  # a slow frame: wait as long as it took
    assert not pacer.due(1.59) and pacer.due(1.6)


def test_play_steps_at_the_chosen_speed_and_draws_the_last_state():
    clock = {"now": 0.0}
    steps, frames = [], []

    def sleep(seconds):
        clock["now"] += seconds

    def step():
        clock["now"] += 0.001
        steps.append(clock["now"])

    def draw():
        clock["now"] += 0.05  # a slow-ish frame
        frames.append(len(steps))

    taken = play(step, lambda: 20.0, lambda: clock["now"] < 5.0, draw, lambda: clock["now"], sleep)
    assert taken == len(steps)
    assert 95 <= taken <= 101  # 20 steps a second for 5 seconds, frames included
    assert frames[-1] == taken  # the final state is drawn
    assert 20 <= len(frames) <= 51  # not after every step, yet about ten a second


def test_charts_thin_long_series_and_use_round_limits():
    assert len(thin(100)) == 100
    kept = thin(100_000)
    assert len(kept) <= MAX_POINTS and kept[0] == 0 and kept[-1] == 99_999
    assert [nice_ceiling(x) for x in (7, 10, 11, 101, 0.013)] == [8, 10, 15, 150, 0.015]
    assert y_limits("unit", np.array([0.2])) == (-0.03, 1.03)
    assert y_limits("share", np.array([0.0, 0.99])) == (0.0, 1.0)
    assert y_limits("log", np.array([2_000.0, 150_000.0])) == (1_000.0, 1_000_000.0)
    assert y_limits("band", np.array([0.62, 0.84])) == (0.5, 0.9)


def test_chart_lines_follow_the_history_and_mark_moves(model):
    picture = ChartsPicture()
    for _ in range(3):
        model.step()
    model.move_lever("moderation", 0.7)
    model.step()
    model.step()
    assert picture.png(model)[:4] == b"\x89PNG"
    moderation = picture.lines[-1][LEVERS.index("moderation")]
    weeks, values = moderation.get_data()
    assert list(weeks) == [0, 1, 2, 3, 4, 5]
    assert values[-1] == pytest.approx(0.7) and values[3] != pytest.approx(0.7)
    marker_weeks = [line.get_xdata()[0] for line in picture.axes[0].lines[len(PANELS[0].series) :]]
    assert marker_weeks == [4]  # the move holds from week 4: one dashed line there


def test_chart_frame_cost_does_not_grow_with_the_run(model):
    picture = ChartsPicture()
    for _ in range(1_500):
        model.step()
    picture.png(model)
    line = picture.lines[0][0]
    assert len(line.get_xdata()) <= MAX_POINTS


def test_agents_picture_shows_a_defection_as_it_happens(model):
    picture = AgentsPicture(model)
    picture.png(model)
    member = int(np.flatnonzero(model.population.group == 0)[0])
    model.defect_to_isk(np.array([member]))
    assert picture.png(model)[:4] == b"\x89PNG"
    offsets = picture.dots.get_offsets()
    shown = np.flatnonzero(model.population.allegiance != 2)
    row = int(np.flatnonzero(shown == member)[0])
    assert np.linalg.norm(offsets[row]) <= picture.layout.isk_radius + 1e-9  # jumped to IS-K
    assert picture.dots.get_linewidths()[row] > 0  # ringed as a fresh defector
    assert picture.png(model) and picture.dots.get_linewidths()[row] == 0  # ring gone next frame


def test_status_lines_name_week_date_isk_and_largest_defecting_group(model):
    lines = status_lines(model)
    assert lines["Week"] == "0" and lines["Date"] == "15 Aug 2021"
    assert lines["Largest defecting group this week"] == "none"
    haqqani = np.flatnonzero(
        (model.population.group == GROUP_NAMES.index("haqqani"))
        & (model.population.allegiance == 0)
    )
    model.defect_to_isk(haqqani[:3])
    model.stats = statistics(model)
    lines = status_lines(model)
    assert lines["Largest defecting group this week"] == "Haqqani network (3)"
    assert lines["IS-K members"].startswith(f"{model.isk_strength:,.0f} people")
    assert lines["Defections so far"].startswith("3 agents")


def test_asset_list_names_the_pinned_front_end_packages(tmp_path):
    names = assets.required()
    assert any(name.startswith("requirejs@") for name in names)
    assert any("solara-vuetify" in name for name in names)
    assert assets.missing(tmp_path) == names


# ---- components rendered without a browser -----------------------------------------------
def test_page_renders_controls_levers_status_and_both_pictures():
    box, rc = solara.render(Page(), handle_error=False)
    for label in ("Play", "Step", "Reset"):
        assert button(rc, label)
    for lever in LEVERS:
        assert rc.find(v.Slider, class_=f"lever-{lever}").widget
    assert rc.find(v.Select, label="Scenario").widget.items == list(PRESETS)
    assert rc.find(v.TextField, label="Seed").widget.v_model == "42"
    assert status(rc, "week") == "0" and status(rc, "date") == "15 Aug 2021"
    pngs = [bytes(w.value) for w in rc.find(ipywidgets.Image).widgets]
    assert len(pngs) == 2 and all(png[:4] == b"\x89PNG" for png in pngs)
    rc.close()


def controls(model):
    """RunControls and PolicyControls around a model the test holds."""
    reactive = solara.reactive(model)
    error = solara.reactive("")
    lock = threading.Lock()

    @solara.component
    def Both():  # noqa: N802
        RunControls(reactive, lock, error)
        PolicyControls(reactive.value, lock, error)
        StatusCard(reactive.value)

    box, rc = solara.render(Both(), handle_error=False)
    return reactive, error, rc


def test_step_advances_the_model_and_the_status_card(model):
    reactive, error, rc = controls(model)
    button(rc, "Step").click()
    button(rc, "Step").click()
    assert reactive.value is model and model.week == 2
    assert status(rc, "week") == "2"
    rc.close()


def test_play_runs_and_pause_stops(model):
    reactive, error, rc = controls(model)
    button(rc, "Play").click()
    deadline = time.time() + 10
    while model.week < 5 and time.time() < deadline:
        time.sleep(0.05)
    button(rc, "Pause").click()
    time.sleep(0.5)
    stopped_at = model.week
    time.sleep(0.5)
    assert stopped_at >= 5 and model.week == stopped_at
    assert button(rc, "Play") and error.value == ""
    rc.close()


def test_reset_with_a_bad_seed_keeps_the_run_and_says_why(model):
    reactive, error, rc = controls(model)
    button(rc, "Step").click()
    seed = rc.find(v.TextField, label="Seed").widget
    seed.v_model = "abc"
    assert seed.error and "seed: must be a whole number" in seed.messages[0]
    button(rc, "Reset").click()
    assert reactive.value is model and model.week == 1  # the run goes on
    assert error.value.startswith("Reset refused") and "seed" in error.value
    button(rc, "Step").click()
    assert model.week == 2
    seed.v_model = "7"
    rc.find(v.Select, label="Scenario").widget.v_model = "inclusive"
    button(rc, "Reset").click()
    assert reactive.value is not model and error.value == ""
    assert (reactive.value.week, reactive.value.seed, reactive.value.preset) == (0, 7, "inclusive")
    rc.close()


def test_moving_a_lever_acts_on_the_running_model_without_reset(model):
    reactive, error, rc = controls(model)
    for _ in range(3):
        button(rc, "Step").click()
    rc.find(v.Slider, class_="lever-moderation").widget.v_model = 0.7  # a key press or a click
    assert reactive.value is model and model.week == 3
    assert model.policy.moves == [Move(4, "moderation", 0.7)]
    assert lever_value(model, "moderation") == pytest.approx(0.7)
    assert rc.find(v.Slider, class_="lever-moderation").widget.v_model == pytest.approx(0.7)
    button(rc, "Step").click()
    assert model.levers["moderation"] == pytest.approx(0.7)
    assert model.datacollector.model_vars["moderation"][-1] == pytest.approx(0.7)
    rc.close()


def test_a_drag_is_one_move_made_on_release(model):
    reactive, error, rc = controls(model)
    slider = rc.find(v.Slider, class_="lever-witch_hunt").widget
    slider.fire_event("start", 0.6)
    for value in (0.5, 0.4, 0.3, 0.2):
        slider.v_model = value
    assert model.policy.moves == []
    slider.fire_event("end", 0.2)
    assert model.policy.moves == [Move(1, "witch_hunt", 0.2)]
    rc.close()


def test_schedule_changes_shown_by_a_slider_are_not_moves(model):
    reactive, error, rc = controls(model)
    for _ in range(40):  # the baseline schedule lowers moderation and the witch-hunt
        button(rc, "Step").click()
    shown = rc.find(v.Slider, class_="lever-moderation").widget.v_model
    assert shown == pytest.approx(model.levers["moderation"]) and model.policy.moves == []
    rc.close()


def test_release_button_and_adaptive_switch_reach_the_model(model):
    reactive, error, rc = controls(model)
    button(rc, "Release prisoners").click()
    assert model.policy.moves[-1] == Move(1, "prisoner_release", 1.0)
    rc.find(v.Switch).widget.v_model = True
    assert model.p["adaptive_leadership"] is True
    before = model.population.n
    button(rc, "Step").click()
    assert model.population.n > before and error.value == ""
    rc.close()


def test_the_module_exposes_the_page_for_solara_and_jupyter():
    import viz.app

    assert viz.app.Page is Page and viz.app.page.component.f is Page.f
    assert not any(isinstance(value, DefectionModel) for value in vars(viz.app).values())


def test_two_pages_have_their_own_models():
    _, first = solara.render(Page(), handle_error=False)
    _, second = solara.render(Page(), handle_error=False)
    button(first, "Step").click()
    button(first, "Step").click()
    assert (status(first, "week"), status(second, "week")) == ("2", "0")
    first.close()
    second.close()


def test_the_views_plug_into_mesas_solaraviz(model):
    """The agents, charts and status views are plain Mesa components: SolaraViz can show them."""
    page = SolaraViz(model, components=[AgentsView, ChartsView, StatusCard], name="defection")
    box, rc = solara.render(page, handle_error=False)
    assert len(rc.find(ipywidgets.Image).widgets) >= 1
    rc.close()


def test_defection_app_prints_the_address_and_starts_solara(monkeypatch, capsys):
    from model import cli

    started = {}
    monkeypatch.setattr("os.execve", lambda path, argv, env: started.update(argv=argv, env=env))
    assert cli.main(["app", "--port", "8899", "--host", "127.0.0.2"]) == 0
    assert "open http://127.0.0.2:8899 in a browser" in capsys.readouterr().out
    argv = started["argv"]
    assert argv[1:4] == ["-m", "solara", "run"] and argv[4].endswith("viz/app.py")
    assert argv[5:] == ["--host", "127.0.0.2", "--port", "8899", "--production", "--no-open"]
    assert started["env"]["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "false"
    assert cli.main(["app", "--port", "70000"]) == 2
    assert "--port: must be in 1-65535" in capsys.readouterr().err


def test_page_displays_inline_in_a_jupyter_kernel():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        request = client.execute("from viz.app import Page\nPage()")
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
