"""Core behaviour: determinism, accounting invariants, Granovetter, Mesa integration."""

from __future__ import annotations

import math

import mesa
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import FormerOfficial, ISKMember, ISKRecruiter, TalibanMember
from model import LEVERS, DefectionModel, Schedule
from model.groups import GROUP_NAMES, GROUPS, ISK
from model.parameters import MECHANISMS
from model.population import IN_ISK, LOYAL
from tests.conftest import run


def series(seed: int, weeks: int = 30, **kw) -> pd.DataFrame:
    model = DefectionModel(rng=seed, population=800, **kw)
    for _ in range(weeks):
        model.step()
    return model.datacollector.get_model_vars_dataframe()


def test_same_seed_same_series_different_seed_differs():
    a, b, c = series(11), series(11), series(12)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert a["cumulative_defections"].iloc[-1] > 0


def test_same_seed_same_agent_series():
    def agents(seed):
        model = DefectionModel(rng=seed, population=300)
        for _ in range(10):
            model.step()
        return model.datacollector.get_agent_vars_dataframe()

    pd.testing.assert_frame_equal(agents(5), agents(5))


def test_agent_reporters_read_what_the_agents_show():
    model = DefectionModel(rng=2, population=400, moderation=0.8, counter_isk=1.0)
    for _ in range(30):
        model.step()
    recorded = model.datacollector.get_agent_vars_dataframe().xs(30, level="Step")
    shown = pd.DataFrame(
        [(a.unique_id, a.loyalty, a.group, a.faction, a.allegiance) for a in model.agents],
        columns=["AgentID", "loyalty", "group", "faction", "allegiance"],
    ).set_index("AgentID")
    assert {"loyal", "isk"} <= set(shown.allegiance) and len(shown) < model.population.n
    pd.testing.assert_frame_equal(recorded.sort_index(), shown.sort_index())


# ---- invariants over random parameter sets ----------------------------------------
lever = st.floats(0.0, 1.0)
strength = st.floats(0.0, 3.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    population=st.integers(50, 600),
    levers=st.fixed_dictionaries({name: lever for name in LEVERS}),
    strengths=st.fixed_dictionaries(
        {
            "outbidding_strength": strength,
            "repression_strength": strength,
            "recruitment_strength": strength,
            "cascade_strength": strength,
            "material_strength": strength,
        }
    ),
    switches=st.fixed_dictionaries({"peer_influence": st.booleans(), "cells": st.booleans()}),
    release_week=st.integers(-1, 8),
)
def test_invariants_hold_for_any_parameters(
    seed, population, levers, strengths, switches, release_week
):
    model = DefectionModel(
        rng=seed,
        population=population,
        release_week=release_week,
        collect_agent_data=False,
        **levers,
        **strengths,
        **switches,
    )
    for _ in range(12):
        model.step()
        pop = model.population
        assert np.all((pop.loyalty[: pop.n] >= 0) & (pop.loyalty[: pop.n] <= 1))
        ledger = model.ledger
        members = np.bincount(pop.group[pop.allegiance == LOYAL], minlength=len(GROUPS) + 1)
        for code in range(len(GROUPS)):
            start_plus_recruits = ledger["start"][code] + ledger["joined"][code]
            assert start_plus_recruits == members[code] + ledger["defected"][code]
        isk_now = np.count_nonzero(pop.allegiance == IN_ISK)
        assert ledger["start"][ISK] + ledger["joined"][ISK] == isk_now + ledger["removed"].sum()
        assert model.cells.fighters == isk_now
        assert len(model.agents) == np.count_nonzero(pop.allegiance != 2)


# ---- Granovetter (1978) --------------------------------------------------------------
def granovetter_crowd(thresholds: np.ndarray) -> DefectionModel:
    """Granovetter's riot: one crowd, everyone sees everyone, only thresholds matter."""
    sizes = {f"{g.name}_size": 0 for g in GROUPS} | {"kandahar_size": 100, "isk_size": 0}
    off = {name: False for name in MECHANISMS if name != "cascade"}
    model = DefectionModel(
        population=len(thresholds),
        rng=0,
        network="complete",
        release_week=-1,
        kandahar_loyalty=1.0,
        cascade_strength=1.0,
        min_group_agents=0,
        **sizes,
        **off,
    )
    model.population.threshold[:] = thresholds / (len(thresholds) - 1)
    return model


def riot_size(thresholds: np.ndarray) -> int:
    model = granovetter_crowd(thresholds)
    for _ in range(len(thresholds) + 1):
        model.step()
    return model.stats["cumulative_defections"]


def test_granovetter_uniform_thresholds_all_riot():
    assert riot_size(np.arange(100.0)) == 100


def test_granovetter_one_changed_threshold_stops_the_riot():
    thresholds = np.arange(100.0)
    thresholds[1] = 2.0
    assert riot_size(thresholds) == 1


# ---- Mesa integration -----------------------------------------------------------------
def test_mesa_batch_run_returns_rows():
    rows = mesa.batch_run(
        DefectionModel,
        parameters={"population": 200, "moderation": [0.0, 0.5], "collect_agent_data": False},
        rng=[1, 2],
        max_steps=10,
        number_processes=1,
        display_progress=False,
    )
    frame = pd.DataFrame(rows)
    assert len(frame) == 4
    assert {"isk_members", "moderation", "kandahar_defection_rate"} <= set(frame.columns)
    assert set(frame["moderation"]) == {0.0, 0.5}


def test_agents_are_views_onto_the_arrays(small_model):
    model = small_model
    taliban = model.agents_by_type[TalibanMember]
    assert len(taliban) == np.isin(model.population.group, range(5)).sum()
    counts = model.agents.groupby("group").count()
    assert set(counts) == set(GROUP_NAMES) | {"isk"}
    assert model.agents.select(lambda a: a.faction == "kabul").agg("loyalty", min) >= 0
    agent = model.agent_at[0]
    model.population.loyalty[0] = 0.123
    assert agent.loyalty == 0.123
    recruiting = DefectionModel(population=500, rng=7, recruiter_share=0.5)
    recruiters = recruiting.agents_by_type[ISKRecruiter]
    assert len(recruiters) == recruiting.population.recruiter.sum() > 0
    assert all(a.recruiter and a.allegiance == "isk" for a in recruiters)


def test_defection_turns_the_agent_into_an_isk_member(small_model):
    model = small_model
    slot = int(np.flatnonzero(model.population.group == GROUP_NAMES.index("former"))[0])
    assert isinstance(model.agent_at[slot], FormerOfficial)
    model.defect_to_isk(np.array([slot]))
    agent = model.agent_at[slot]
    assert isinstance(agent, ISKMember)
    assert (agent.group, agent.allegiance, agent.loyalty) == ("former", "isk", 0.0)
    assert model.ledger["defected"][GROUP_NAMES.index("former")] == 1


def test_date_and_week_advance():
    model = DefectionModel(population=100, rng=1)
    model.step()
    model.step()
    assert model.week == 2
    assert model.stats["date"] == "2021-08-29"


# ---- policy ----------------------------------------------------------------------------
def test_schedules():
    assert Schedule.constant(0.4).at(99) == 0.4
    step = Schedule.step(0.1, 0.6, 20)
    assert (step.at(19), step.at(20)) == (0.1, 0.6)
    ramp = Schedule.ramp(0.0, 1.0, 10, 20)
    assert (ramp.at(5), ramp.at(15), ramp.at(30)) == (0.0, 0.5, 1.0)
    assert Schedule.series([0.1, 0.2]).at(7) == 0.2


def test_lever_schedule_drives_the_model():
    model = run(25, 1, moderation="step(0.1,0.6,20)", population=200)
    frame = model.datacollector.get_model_vars_dataframe()
    assert frame["moderation"][19] == 0.1
    assert frame["moderation"][20] == 0.6


def test_moving_a_lever_takes_effect_next_step_without_reset():
    model = run(5, 3, population=300, collect_agent_data=True)
    defections = model.stats["cumulative_defections"]
    model.move_lever("moderation", 0.9)
    assert model.levers["moderation"] != 0.9
    model.step()
    assert model.week == 6
    assert model.levers["moderation"] == 0.9
    assert model.stats["cumulative_defections"] >= defections
    assert [(m.week, m.lever, m.value) for m in model.policy.moves] == [(6, "moderation", 0.9)]


def test_release_button_adds_prisoners_next_step():
    model = run(3, 2, population=400, release_week=-1)
    before = model.isk_members
    model.release_prisoners()
    model.step()
    assert model.isk_members >= before + round(1800 / model.scale) - 5
    assert model.stats["prisoner_release"] == 1


# ---- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"population": -5}, "population"),
        ({"population": 2.5}, "population"),
        ({"moderation": 1.5}, "moderation"),
        ({"moderation": math.nan}, "moderation"),
        ({"moderation": "lots"}, "moderation"),
        ({"walk_in": math.nan}, "walk_in"),
        ({"walk_in": "0.1"}, "walk_in"),
        ({"recruitment": 1}, "recruitment"),
        ({"start_date": "15/08/2021"}, "start_date"),
        ({"network": "ring"}, "network"),
        ({"no_such_thing": 1}, "no_such_thing"),
        ({"preset": "utopia"}, "preset"),
        ({"rng": "seven"}, "rng"),
        ({"rng": -1}, "rng"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field) as error:
        DefectionModel(**kwargs)
    assert "\n" not in str(error.value)
