"""Core behaviour: determinism, accounting invariants, Granovetter, Mesa integration."""

from __future__ import annotations

import math

import mesa
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isk_defection.agents import FormerOfficial, ISKMember, TalibanMember
from isk_defection.model import LEVERS, DefectionModel, Schedule, kernel, loyalty
from isk_defection.model.groups import GROUP_NAMES, GROUPS, ISK
from isk_defection.model.parameters import MECHANISMS, resolve
from isk_defection.model.population import DESERTED, IN_ISK, LOYAL, REMOVED
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
        [
            (a.unique_id, a.loyalty, a.group, a.faction, a.allegiance, a.people)
            for a in model.agents
        ],
        columns=["AgentID", "loyalty", "group", "faction", "allegiance", "people"],
    ).set_index("AgentID")
    assert {"loyal", "isk", "deserted"} <= set(shown.allegiance)
    assert len(shown) < model.population.n
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
            "contagion_weight": strength,
            "material_strength": strength,
            "inclusion_strength": strength,
            "desertion_rate": lever,
            "return_rate": lever,
            "isk_desertion": st.floats(0.0, 0.2),
            "absorptive_capacity": st.floats(0.0, 0.5),
            "isk_reach": st.floats(0.0, 5.0),
        }
    ),
    switches=st.fixed_dictionaries(
        {"peer_influence": st.booleans(), "cells": st.booleans(), "absorption": st.booleans()}
    ),
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
        pop, ledger = model.population, model.ledger
        assert np.all((pop.loyalty >= 0) & (pop.loyalty <= 1))
        everyone = sum(pop.people_in(a) for a in (LOYAL, IN_ISK, DESERTED, REMOVED))
        np.testing.assert_allclose(everyone, ledger["start"] + ledger["joined"])
        # whoever joined IS-K is in it, removed, or left it for good
        in_isk, removed = pop.people_in(IN_ISK), pop.people_in(REMOVED)
        left = np.bincount(
            pop.group[model.former_isk], pop.people[model.former_isk], len(GROUPS) + 1
        )
        gone = (in_isk + removed + left)[:ISK]
        np.testing.assert_allclose(gone, ledger["defected"][:ISK])
        assert model.cells.fighters == model.isk_members
        assert len(model.agents) == np.count_nonzero(pop.allegiance != REMOVED)
        for group in GROUP_NAMES:  # shares of everyone ever in the group: within [0, 1]
            shares = [model.stats[f"{group}_{s}"] for s in ("defection_rate", "desertion_rate")]
            shares.append(model.stats[f"{group}_loyal_share"])
            assert all(0 <= s <= 1 for s in shares) and sum(shares) <= 1 + 1e-9
        if switches["absorption"]:  # the margin: one applicant beyond the budget at most
            overrun = model.stats["isk_intake"] - max(model.stats["isk_capacity"], 0.0)
            assert overrun <= pop.people.max() + 1e-6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    levers=st.fixed_dictionaries({name: lever for name in LEVERS}),
    capacity=st.floats(0.0, 0.1),
    reach=st.floats(0.0, 10.0),
    contagion=st.floats(0.0, 2.0),
)
def test_isk_intake_never_exceeds_its_absorptive_capacity(seed, levers, capacity, reach, contagion):
    """Over any run, intake <= the weekly budgets c x S plus one agent's people (§7.6)."""
    model = DefectionModel(
        rng=seed,
        population=1_500,
        collect_agent_data=False,
        absorptive_capacity=capacity,
        isk_reach=reach,
        contagion_weight=contagion,
        release_week=-1,  # no release: IS-K's size at screening is last week's
        **levers,
    )
    weekly, budgets = [], []
    largest = float(model.population.people.max())
    for _ in range(30):
        budgets.append(model.isk_strength * capacity)
        model.step()
        intake, allowed = model.stats["isk_intake"], model.stats["isk_capacity"]
        assert allowed <= 4 * budgets[-1] + 1e-6  # the pipeline holds at most 4 weeks
        assert intake <= max(allowed, 0.0) + largest + 1e-6
        weekly.append(intake)
        assert sum(weekly) <= sum(budgets) + largest + 1e-6
    assert capacity > 0 or sum(weekly) == 0


def test_screening_takes_the_budget_on_average_whatever_the_agents_size():
    """The margin makes the expected intake the budget, even below one agent's people."""
    from isk_defection.model.isk import screen

    rng = np.random.default_rng(5)
    people = np.full(50, 80.0)  # agents of 80 people, as at 2,000 agents
    for budget in (30.0, 130.0, 1_000.0):
        taken = [people[screen(people, budget, rng)].sum() for _ in range(4_000)]
        assert abs(np.mean(taken) - budget) < 4 * np.std(taken) / np.sqrt(len(taken))
        assert max(taken) <= budget + 80.0


def test_an_agent_keeps_its_id_when_it_defects_deserts_and_returns(small_model):
    model = small_model
    slot = int(np.flatnonzero(model.population.group == GROUP_NAMES.index("former"))[0])
    agent = model.agent_at[slot]
    uid = agent.unique_id
    model.desert(np.array([slot]))
    assert model.agent_at[slot] is agent and agent.allegiance == "deserted"
    model.rejoin(np.array([slot]))
    model.join_isk(np.array([slot]))
    assert model.agent_at[slot] is agent and agent.unique_id == uid
    assert isinstance(agent, FormerOfficial) and agent.allegiance == "isk"
    assert agent in model.agents


# ---- Granovetter (1978) --------------------------------------------------------------
def granovetter_crowd(thresholds: np.ndarray) -> DefectionModel:
    """Granovetter's riot: one crowd, everyone sees everyone, only thresholds matter."""
    sizes = {f"{g.name}_size": 0 for g in GROUPS} | {"kandahar_size": 100, "isk_size": 0}
    off = {name: False for name in MECHANISMS if name not in ("cascade", "isk_destination")}
    model = DefectionModel(
        population=len(thresholds),
        rng=0,
        network="complete",
        release_week=-1,
        kandahar_loyalty=1.0,
        contagion_weight=1.0,
        min_group_agents=0,
        **sizes,
        **off,
        **dict.fromkeys(LEVERS, 0.0),  # no policy: only thresholds matter
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
    assert {"isk_strength", "lever_womens_rights", "kandahar_defection_rate"} <= set(frame.columns)
    assert set(frame["moderation"]) == {0.0, 0.5}  # the input, as given
    assert set(frame["lever_inclusion"]) == {0.0, 0.5}  # the state


def test_mesa_batch_run_keeps_a_schedule_input_apart_from_the_lever_state():
    rows = mesa.batch_run(
        DefectionModel,
        parameters={
            "population": 200,
            "crackdown_ttp": "step(0.1,0.8,5)",
            "collect_agent_data": False,
        },
        rng=[1],
        max_steps=8,
        data_collection_period=1,
        number_processes=1,
        display_progress=False,
    )
    frame = pd.DataFrame(rows)
    assert set(frame["crackdown_ttp"]) == {"step(0.1,0.8,5)"}
    assert frame.set_index("Step")["lever_crackdown_ttp"][4] == 0.1
    assert frame.set_index("Step")["lever_crackdown_ttp"][8] == 0.8


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
    recruiters = recruiting.agents.select(lambda a: a.recruiter)
    assert len(recruiters) == recruiting.population.recruiter.sum() > 0
    assert all(isinstance(a, ISKMember) and a.allegiance == "isk" for a in recruiters)


def test_joining_isk_is_logged_in_people_by_origin_group(small_model):
    model = small_model
    former = GROUP_NAMES.index("former")
    slot = int(np.flatnonzero(model.population.group == former)[0])
    model.join_isk(np.array([slot]))
    assert model.ledger["defected"][former] == model.people_per_agent[former]
    assert model.population.loyalty[slot] == 0.0 and model.agent_at[slot].group == "former"


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
    assert frame["lever_womens_rights"][19] == 0.1
    assert frame["lever_inclusion"][20] == 0.6


def test_moving_a_lever_takes_effect_next_step_without_reset():
    model = run(5, 3, population=300, collect_agent_data=True)
    defections = model.stats["cumulative_defections"]
    model.move_lever("womens_rights", 0.9)
    assert model.levers["womens_rights"] != 0.9
    model.step()
    assert model.week == 6
    assert model.levers["womens_rights"] == 0.9
    assert model.stats["cumulative_defections"] >= defections
    assert [(m.week, m.lever, m.value) for m in model.policy.moves] == [(6, "womens_rights", 0.9)]


def test_release_button_adds_prisoners_next_step():
    model = run(3, 2, population=400, release_week=-1)
    before = model.isk_strength
    model.release_prisoners()
    model.step()
    scale = model.people_per_agent[ISK]
    assert abs(model.ledger["joined"][ISK] - 1800) <= scale / 2  # 1,800 people, whole agents
    assert model.isk_strength > before
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
        ({"moderation": 0.5, "inclusion": 0.2}, "moderation"),
        ({"isk_reach": math.nan}, "isk_reach"),
        ({"isk_reach": "0.1"}, "isk_reach"),
        ({"walk_in": 0.1}, "walk_in: renamed to isk_reach"),
        ({"cascade_strength": 0.5}, "contagion_weight"),
        ({"collect_agent_data": "sometimes"}, "collect_agent_data"),
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


# ---- the compiled kernel: its loyalty rule is the TERMS table; its records -------------
def test_target_loyalty_is_the_terms_table_term_by_term():
    """target_loyalty = clip(baseline + sum of sign x term over the switched-on TERMS)."""
    rng = np.random.default_rng(3)
    for trial in range(40):
        switches = {s: bool(rng.random() < 0.5) for s, _, _ in loyalty.TERMS if s}
        params = resolve(switches | {"pashtunwali": bool(trial % 2)})
        p = kernel.kernel_params(params)
        levers = {lever: float(rng.random()) for lever in LEVERS}
        c = loyalty.conditions(levers, rng.random(), rng.random(), params)
        member = loyalty.Traits(
            int(rng.integers(0, len(GROUPS) + 1)),
            *map(float, rng.random(2)),
            bool(rng.random() < 0.5),
            tuple(map(float, rng.random(3))),
            *map(float, rng.random(3) * [1, 2, 1] - [0, 1, 0]),
        )
        recruiters = int(rng.integers(0, 3))
        total = member.baseline_loyalty + sum(
            sign * term(member, c, p, recruiters)
            for switch, term, sign in loyalty.TERMS
            if switch is None or switches[switch]
        )
        assert loyalty.target_loyalty(member, c, p, recruiters) == pytest.approx(
            min(max(total, 0.0), 1.0), abs=1e-12
        )
        if switches["outbidding"] and c.womens_rights > 1 - member.hardline:
            assert loyalty.outbidding(member, c, p, recruiters) > 0


def test_a_run_can_record_only_the_columns_it_needs():
    """Asked for a few columns, the model records those, with the same values as all."""
    wanted = ["week", "isk_strength", "cumulative_defections", "legitimacy"]
    few = DefectionModel(rng=5, population=400, columns=wanted, collect_agent_data=False)
    every = DefectionModel(rng=5, population=400, collect_agent_data=False)
    for _ in range(12):
        few.step()
        every.step()
    frame = few.datacollector.get_model_vars_dataframe()
    assert list(frame.columns) == wanted and len(frame) == 13
    pd.testing.assert_frame_equal(frame, every.datacollector.get_model_vars_dataframe()[wanted])
    assert few.stats["taliban_loyalty"] == every.stats["taliban_loyalty"]  # stats: every column
    assert few.datacollector.model_vars["week"] == list(range(13))
    with pytest.raises(ValueError, match="columns: no model column 'isk_strenght'"):
        DefectionModel(rng=5, population=400, columns=["isk_strenght"])
