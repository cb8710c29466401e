"""A Mesa user's tools work on DefectionModel: SolaraViz with Reset, pickle, batch_run.

These use Mesa's own machinery, not this project's front end: ``SolaraViz`` with
``make_plot_component`` and ``model_params`` (Reset rebuilds the model from the inputs,
passing Mesa 3.5's ``scenario=`` and a seed typed into an ``InputText`` as text),
``pickle`` (checkpoints, Dask, multiprocessing) and ``mesa.batch_run`` (a lever's input
schedule and its weekly value kept apart).
"""

from __future__ import annotations

import pickle

import ipyvuetify as v
import ipywidgets as widgets
import mesa
import numpy as np
import pandas as pd
import pytest
import solara
from mesa.visualization import SolaraViz, make_plot_component
from mesa.visualization.solara_viz import ModelController, ModelCreator
from mesa.visualization.user_param import Slider

from isk_defection.model import DefectionModel

MODEL_PARAMS = {
    "rng": {"type": "InputText", "value": "7", "label": "Seed"},
    "population": Slider("Agents", 300, 100, 1000, 100),
    "preset": {
        "type": "Select",
        "value": "inclusive",
        "values": ["baseline", "inclusive"],
        "label": "Scenario",
    },
    "recruitment": {"type": "Checkbox", "value": True, "label": "IS-K recruiters"},
}


def test_mesa_solaraviz_renders_the_model_with_plot_components():
    model = solara.reactive(DefectionModel(population=200, rng=1))
    page = SolaraViz(
        model,
        components=[make_plot_component("isk_strength"), make_plot_component("defection_rate")],
        model_params=MODEL_PARAMS,
        name="Defection",
    )
    _, rc = solara.render(page, handle_error=False)
    plots = [bytes(image.value) for image in rc.find(widgets.Image).widgets]
    assert len(plots) == 2  # one figure per plot component, drawn from the model's data
    assert all(plot.startswith(b"\x89PNG") and len(plot) > 1_000 for plot in plots)
    assert plots[0] != plots[1]  # two measures, two different pictures


def test_mesa_reset_rebuilds_the_model_from_the_inputs_and_steps_it():
    """Reset: Mesa passes scenario=..., the InputText seed as text, the slider's value."""
    model = solara.reactive(DefectionModel(population=200, rng=1))

    @solara.component
    def Controls():  # noqa: N802 — the sidebar SolaraViz builds: controller and inputs
        chosen = solara.use_reactive({})
        ModelController(  # as SolaraViz passes them: reactives, not plain values
            model,
            model_parameters=chosen,
            play_interval=solara.use_reactive(100),
            render_interval=solara.use_reactive(1),
            use_threads=solara.use_reactive(False),
        )
        ModelCreator(model, MODEL_PARAMS, model_parameters=chosen)

    _, rc = solara.render(Controls(), handle_error=False)
    first = model.value
    rc.find(v.Btn, children=["Reset"]).widget.click()
    rebuilt = model.value
    assert rebuilt is not first
    assert rebuilt.seed == 7 and rebuilt.p.population == 300 and rebuilt.preset == "inclusive"
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert model.value.steps == 1
    again = DefectionModel(preset="inclusive", population=300, rng=7)
    again.step()
    assert model.value.stats["isk_strength"] == again.stats["isk_strength"]


def test_a_seed_typed_as_text_is_the_same_seed():
    a, b = DefectionModel(population=200, rng="11"), DefectionModel(population=200, rng=11)
    a.step()
    b.step()
    assert a.seed == b.seed == 11 and a.stats == b.stats


@pytest.mark.parametrize("collect", ["on", "off"])
def test_a_model_pickles_and_continues_identically(collect):
    model = DefectionModel(population=300, rng=5, collect_agent_data=collect)
    for _ in range(3):
        model.step()
    _ = model.agents  # the Mesa views exist too
    copy = pickle.loads(pickle.dumps(model))
    for _ in range(4):
        model.step()
        copy.step()
    frame = model.datacollector.get_model_vars_dataframe()
    pd.testing.assert_frame_equal(frame, copy.datacollector.get_model_vars_dataframe())
    assert len(copy.agents) == len(model.agents)


def test_batch_run_keeps_lever_inputs_and_weekly_values_apart():
    rows = mesa.batch_run(
        DefectionModel,
        parameters={
            "population": 200,
            "counter_isk": ["step(0.1,0.8,3)", 0.5],
            "collect_agent_data": "off",
        },
        rng=[1],
        max_steps=5,
        number_processes=1,
        data_collection_period=1,
        display_progress=False,
    )
    frame = pd.DataFrame(rows)
    scheduled = frame[frame["counter_isk"] == "step(0.1,0.8,3)"].sort_values("Step")
    assert len(scheduled) == 6  # weeks 0 to 5, one row per week (no agent rows)
    assert scheduled["counter_isk"].nunique() == 1  # the input, unchanged
    weekly = scheduled["lever_counter_isk"].to_numpy()
    assert np.allclose(weekly, [0.1, 0.1, 0.1, 0.8, 0.8, 0.8])  # the state, week by week
    constant = frame[frame["counter_isk"] == 0.5]
    assert np.allclose(constant["lever_counter_isk"], 0.5)


def test_setting_an_agent_trait_writes_through_to_the_week_that_follows():
    changed, same = DefectionModel(population=300, rng=9), DefectionModel(population=300, rng=9)
    kandahar = [a for a in changed.agents if a.group == "kandahar"]
    for agent in kandahar:
        agent.loyalty = 0.0
    assert all(changed.population.loyalty[a.slot] == 0.0 == a.loyalty for a in kandahar)
    changed.step()
    same.step()
    for reported in ("kandahar_loyalty", "kandahar_loyal_share"):  # the step read the writes
        assert changed.stats[reported] < same.stats[reported]
    agent = kandahar[0]
    allegiance = agent.allegiance
    with pytest.raises(ValueError, match=r"^loyalty: must be a number in \[0, 1\] \(got 1.5\)$"):
        agent.loyalty = 1.5
    with pytest.raises(AttributeError, match="^allegiance: cannot be set on an agent: decided"):
        agent.allegiance = "isk"
    assert agent.allegiance == allegiance


def test_shuffle_do_step_says_why_agents_do_not_step_alone():
    model = DefectionModel(population=200, rng=2)
    before = model.population.loyalty.copy()
    with pytest.raises(NotImplementedError, match=r"synchronous update.*call model.step\(\)"):
        model.agents.shuffle_do("step")
    assert np.array_equal(model.population.loyalty, before) and model.steps == 0
