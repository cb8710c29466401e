"""One directional test per mechanism: raise its lever or switch it off, and compare.

Each compares seed-averaged outcomes of two arms that differ in one parameter only.
"""

from __future__ import annotations

import numpy as np

from isk_defection.model import LEVERS, isk, kernel, loyalty, regime
from isk_defection.model.groups import GROUP_INDEX, TALIBAN_FACTIONS
from isk_defection.model.loyalty import guest_duty
from isk_defection.model.parameters import resolve
from tests.conftest import mean_outcome, run

HARDLINE = ("kandahar", "haqqani")


def defected(*groups):
    """Members of ``groups`` who defected so far."""
    return lambda m: sum(m.ledger["defected"][GROUP_INDEX[g]] for g in groups)


def loyalty_of(group):
    """Mean loyalty of the group's loyal members."""
    return lambda m: m.stats[f"{group}_loyalty"]


def test_outbidding_womens_rights_split_hardliners_from_pragmatists():
    calm = dict(womens_rights=0.0, population=3000)
    moderate = dict(womens_rights=0.6, population=3000)
    assert mean_outcome(defected(*HARDLINE), **moderate) > mean_outcome(defected(*HARDLINE), **calm)
    assert mean_outcome(loyalty_of("kabul"), **moderate) > mean_outcome(loyalty_of("kabul"), **calm)
    switched_off = mean_outcome(defected(*HARDLINE), outbidding=False, **moderate)
    assert switched_off < mean_outcome(defected(*HARDLINE), **moderate)


def test_foreign_cooperation_offends_hardliners():
    low = mean_outcome(loyalty_of("kandahar"), foreign_cooperation=0.0, weeks=30)
    high = mean_outcome(loyalty_of("kandahar"), foreign_cooperation=1.0, weeks=30)
    assert high < low - 0.05


def test_heterogeneity_splits_a_faction_under_the_same_move():
    def spread(model):
        members = (model.population.group == GROUP_INDEX["kandahar"]) & (
            model.population.allegiance == 0
        )
        return float(np.std(model.population.loyalty[members]))

    uniform = mean_outcome(spread, weeks=20, heterogeneity=False, womens_rights=0.5)
    varied = mean_outcome(spread, weeks=20, heterogeneity=True, womens_rights=0.5)
    assert uniform < 0.05 < varied


def test_recruitment_drives_defection():
    on = mean_outcome(lambda m: m.ledger["defected"].sum(), recruiter_ties=40)
    off = mean_outcome(lambda m: m.ledger["defected"].sum(), recruitment=False)
    assert off < on


def test_peer_influence_pulls_loyalty_together():
    def spread(model):
        loyal = model.population.allegiance == 0
        return float(np.std(model.population.loyalty[loyal]))

    with_peers = mean_outcome(spread, weeks=30, peer_interactions=5.0)
    alone = mean_outcome(spread, weeks=30, peer_influence=False)
    assert with_peers < alone


def test_contagion_weight_raises_leaving():
    def left(m):
        return m.ledger["defected"].sum() + m.ledger["deserted"].sum()

    weak = mean_outcome(left, contagion_weight=0.0, witch_hunt=0.6)
    strong = mean_outcome(left, contagion_weight=1.5, witch_hunt=0.6)
    assert strong > weak


def test_material_incentives_buy_loyalty_of_the_paid():
    rich = dict(resources_base=0.9, weeks=40)
    assert mean_outcome(loyalty_of("kabul"), **rich) > mean_outcome(
        loyalty_of("kabul"), material=False, **rich
    )


def test_attacks_erode_legitimacy_and_loyalty():
    fragile = dict(legitimacy_hit=0.02, weeks=40, inclusion=0.0)
    assert mean_outcome(lambda m: m.legitimacy, **fragile) < 0.4
    assert mean_outcome(lambda m: m.legitimacy, legitimacy=False, **fragile) == 0.5
    assert mean_outcome(lambda m: m.stats["taliban_loyalty"], **fragile) < mean_outcome(
        lambda m: m.stats["taliban_loyalty"], legitimacy=False, **fragile
    )


def test_pashtunwali_makes_acting_against_guests_costlier_for_pashtuns():
    crackdown = dict(crackdown_ttp=0.5, crackdown_aq=0.5, weeks=30)
    with_code = mean_outcome(loyalty_of("kandahar"), **crackdown)
    without = mean_outcome(loyalty_of("kandahar"), pashtunwali=False, **crackdown)
    assert with_code < without - 0.02
    # directly, the code weighs on Pashtuns only
    model = run(0, 1, crackdown_ttp=0.5)
    pashtun = model.population.pashtun[: model.population.n]
    p = kernel.kernel_params(model.p)
    duty = np.array(
        [
            guest_duty(loyalty.Traits(0, 0.0, 0.0, bool(s), (0.0, 0.0, 0.0), 0.0, 0.0, 0.0), p)
            for s in pashtun
        ]
    )
    assert np.all(duty[~pashtun] == 1.0) and np.all(duty[pashtun] == 1.5)


def test_fraternity_crackdown_on_ttp_costs_the_pro_ttp_lobby():
    def haqqani_rate(m):
        return m.stats["haqqani_defection_rate"]

    on = mean_outcome(haqqani_rate, crackdown_ttp=0.6)
    off = mean_outcome(haqqani_rate, crackdown_ttp=0.0)
    assert on > off
    ablated = mean_outcome(haqqani_rate, crackdown_ttp=0.6, fraternity=False)
    assert ablated < on
    lobby = mean_outcome(loyalty_of("haqqani"), crackdown_ttp=0.3, weeks=30)
    assert lobby < mean_outcome(loyalty_of("haqqani"), crackdown_ttp=0.0, weeks=30) - 0.03


def test_repression_pushes_targets_to_isk():
    rate = lambda g: lambda m: m.stats[f"{g}_defection_rate"]  # noqa: E731
    assert mean_outcome(rate("ttp"), crackdown_ttp=1.0) > mean_outcome(
        rate("ttp"), crackdown_ttp=0.0
    )
    assert mean_outcome(rate("former"), witch_hunt=1.0) > mean_outcome(
        rate("former"), witch_hunt=0.0
    )


def test_counter_isk_operations_remove_members():
    def removed(m):
        return m.ledger["removed"].sum()

    assert mean_outcome(removed, counter_isk=1.0) > mean_outcome(removed, counter_isk=0.2)
    assert mean_outcome(removed, counter_isk=1.0, attrition=False) == 0
    assert mean_outcome(lambda m: m.isk_members, counter_isk=1.0) < mean_outcome(
        lambda m: m.isk_members, counter_isk=0.0
    )


def test_reach_gates_defection_and_grows_with_isk_presence():
    gated = mean_outcome(lambda m: m.ledger["defected"].sum(), isk_reach=0.0)
    open_door = mean_outcome(lambda m: m.ledger["defected"].sum(), reach=False)
    assert gated < open_door
    small = dict(isk_size=200, release_week=-1, absorption=False, recruitment=False)
    large = dict(isk_size=8_000, release_week=-1, absorption=False, recruitment=False)
    assert mean_outcome(defected("former"), witch_hunt=0.8, **small) < mean_outcome(
        defected("former"), witch_hunt=0.8, **large
    )


def test_cells_coalesce_and_set_attack_severity():
    model = run(40, 1, attack_rate=20.0)
    assert model.cells.sizes.max() > 1
    assert model.cells.fighters == model.isk_members
    flat = run(40, 1, attack_rate=20.0, cells=False)
    assert flat.cells.sizes.max() == 1
    assert flat.stats["attack_severity"] == flat.stats["attacks"]


def test_prisoner_release_jumps_isk():
    released = run(3, 5, release_week=2)
    history = released.datacollector.get_model_vars_dataframe()["isk_strength"]
    assert history[2] - history[1] >= 1800 * 0.9
    kept = run(3, 5, release_week=-1)
    assert kept.datacollector.get_model_vars_dataframe()["isk_strength"][2] < history[2]


def test_adaptive_leadership_weighs_aid_against_risk():
    greedy = run(20, 1, adaptive_leadership=True, risk_aversion=0.0, womens_rights=0.3)
    fearful = run(20, 1, adaptive_leadership=True, risk_aversion=100.0, womens_rights=0.3)
    assert greedy.levers["womens_rights"] == 1.0  # +0.05 a week while aid is all that counts
    assert fearful.levers["womens_rights"] <= 0.3


def test_taliban_factions_are_the_five_named():
    assert set(TALIBAN_FACTIONS) == {"kandahar", "kabul", "haqqani", "tajik", "uzbek"}


# ---- model v2: ways out, a bounded IS-K, both sides of the argument -------------------
def left_fight(group):
    """People of ``group`` who deserted so far."""
    return lambda m: m.ledger["deserted"][GROUP_INDEX[group]]


def test_with_isk_closed_a_witch_hunt_still_costs_desertion():
    closed = dict(isk_destination=False, witch_hunt=0.9)
    assert mean_outcome(defected("former"), **closed) == 0
    assert mean_outcome(left_fight("former"), **closed) > mean_outcome(
        left_fight("former"), isk_destination=False, witch_hunt=0.0
    )
    assert mean_outcome(left_fight("former"), desertion=False, **closed) == 0


def test_deserters_return_when_the_pressure_eases():
    eased = dict(witch_hunt="step(0.9,0.0,20)", isk_destination=False, weeks=80)
    returned = mean_outcome(lambda m: m.ledger["returned"].sum(), **eased)
    assert returned > 0
    assert mean_outcome(lambda m: m.ledger["returned"].sum(), return_rate=0.0, **eased) == 0


def test_absorptive_capacity_bounds_isk_growth_under_every_lever():
    everything = dict.fromkeys(
        ["womens_rights", "crackdown_ttp", "crackdown_uyghur", "crackdown_aq", "witch_hunt"], 1.0
    )
    bounded = mean_outcome(lambda m: m.isk_strength, weeks=52, **everything)
    unbounded = mean_outcome(lambda m: m.isk_strength, weeks=52, absorption=False, **everything)
    assert bounded < unbounded
    model = run(52, 1, **everything)
    history = model.datacollector.get_model_vars_dataframe()
    overrun = history.isk_intake - history.isk_capacity.clip(lower=0)
    assert (overrun <= model.population.people.max() + 1e-6).all()  # the margin: one agent


def test_isk_members_desert_and_never_decide_again():
    model = run(30, 1, isk_desertion=0.05)
    assert model.ledger["left_isk"].sum() > 0
    former = model.former_isk
    members = kernel.members(model.population, former)
    assert not kernel.deciding(members)[former].any()
    assert mean_outcome(lambda m: m.ledger["left_isk"].sum(), isk_desertion=0.0) == 0


def test_inclusion_wins_tajik_and_uzbek_members_and_costs_the_kandahar_core():
    shared = dict(inclusion=0.8, weeks=30)
    for group in ("tajik", "uzbek"):
        assert mean_outcome(loyalty_of(group), **shared) > mean_outcome(
            loyalty_of(group), inclusion=0.0, weeks=30
        )
    assert mean_outcome(loyalty_of("kandahar"), **shared) < mean_outcome(
        loyalty_of("kandahar"), inclusion=0.0, weeks=30
    )
    off = mean_outcome(loyalty_of("tajik"), inclusion_benefits=False, **shared)
    assert off < mean_outcome(loyalty_of("tajik"), **shared)
    # without its benefits, inclusion keeps its cost: the core still resents it
    core_off = mean_outcome(loyalty_of("kandahar"), inclusion_benefits=False, **shared)
    assert core_off < mean_outcome(
        loyalty_of("kandahar"), inclusion_benefits=False, inclusion=0.0, weeks=30
    )


def test_inclusion_raises_legitimacy_and_counter_isk_capacity():
    p = resolve({})
    levers = {"inclusion": 0.0, "counter_isk": 0.5}
    assert regime.reference_legitimacy({"inclusion": 1.0}, p) > regime.reference_legitimacy(
        {"inclusion": 0.0}, p
    )
    plain = regime.counter_isk_effort(levers, p.resources_initial, 1.0, p)
    included = regime.counter_isk_effort(levers | {"inclusion": 1.0}, p.resources_initial, 1.0, p)
    assert included == plain * (1 + p.capacity_inclusion)
    off = resolve({"inclusion_benefits": False})
    assert regime.counter_isk_effort(
        levers | {"inclusion": 1.0}, off.resources_initial, 1, off
    ) == (regime.counter_isk_effort(levers, off.resources_initial, 1, off))


def test_counter_isk_capacity_falls_with_the_regimes_loyal_strength():
    p = resolve({})
    levers = {"inclusion": 0.0, "counter_isk": 1.0}
    full = regime.counter_isk_effort(levers, p.resources_initial, 1.0, p)
    assert regime.counter_isk_effort(levers, p.resources_initial, 0.25, p) == full * 0.25


def test_courting_the_west_provokes_more_attacks():
    p = resolve({})
    calm = isk.attack_rate(4000, 0.5, 1.0, 0.0, 0.0, p)
    assert isk.attack_rate(4000, 0.5, 1.0, 0.0, 0.8, p) == calm * (1 + 0.8 * p.provocation_strength)
    off = resolve({"provocation": False})
    assert isk.attack_rate(4000, 0.5, 1.0, 0.0, 0.8, off) == calm


def test_a_leadership_loss_cuts_attacks_for_a_time():
    def attacks_after(m):
        history = m.datacollector.get_model_vars_dataframe()
        return history.attacks[31:41].sum()

    hit = dict(decapitation_week=30, decapitation_loss=0.8, weeks=40, counter_isk=0.3)
    assert mean_outcome(attacks_after, **hit) < mean_outcome(
        attacks_after, **(hit | {"decapitation": False})
    )
    model = run(40, 1, **{k: v for k, v in hit.items() if k != "weeks"})
    assert model.leadership < 0.5


def test_isk_shifts_effort_abroad_under_pressure():
    pressed = mean_outcome(lambda m: m.external_share, counter_isk=1.0, weeks=60)
    left_alone = mean_outcome(lambda m: m.external_share, counter_isk=0.0, weeks=60)
    assert left_alone == 0.0 < pressed
    off = mean_outcome(lambda m: m.external_share, external_operations=False, counter_isk=1.0)
    assert off == 0.0


def test_offence_follows_ties_to_the_targeted_group():
    """Acting against Al-Qaeda offends the Haqqanis (its hosts) more than Kabul; acting
    against the few-tied Uyghurs costs the Taliban less than acting against the TTP."""

    def drop(group, lever):
        base = mean_outcome(loyalty_of(group), weeks=30)
        return base - mean_outcome(loyalty_of(group), weeks=30, **{lever: 0.6})

    assert drop("haqqani", "crackdown_aq") > drop("kabul", "crackdown_aq") + 0.02
    assert drop("kandahar", "crackdown_uyghur") < drop("kandahar", "crackdown_ttp")


# ---- model v3: a ceiling, heterogeneous tolerance, fewer and larger attacks -----------
EVERY_LEVER_AT_ONE = dict.fromkeys(LEVERS, 1.0)


def isk_peak(weeks: int, seed: int, **overrides) -> tuple[float, float]:
    """IS-K's peak in people over ``weeks`` and the largest agent's people."""
    model = run(weeks, seed, **overrides)
    peak = model.datacollector.get_model_vars_dataframe().isk_strength.max()
    return float(peak), float(model.population.people.max())


def test_isk_stays_under_its_ceiling_with_every_lever_at_one_for_230_weeks():
    """Recruitment never takes IS-K past ``isk_ceiling`` (plus the margin's one agent)."""
    p = resolve({})
    for seed in (1, 2):
        peak, agent = isk_peak(230, seed, population=2_000, **EVERY_LEVER_AT_ONE)
        assert p.release_isk + p.isk_size < peak <= p.isk_ceiling + agent
    unbounded, _ = isk_peak(230, 1, population=2_000, security=False, **EVERY_LEVER_AT_ONE)
    assert unbounded > 2 * p.isk_ceiling  # without the trade-off only the pool stops it


def test_the_ceiling_holds_across_prior_draws_of_the_strengths():
    """With every lever at 1 for 230 weeks, for 100 draws of every prior (ODD §9.1)."""
    from isk_defection.experiments.calibration.priors import names, sample

    draws = sample(100, np.random.default_rng(19))
    for k, values in enumerate(draws):
        row = dict(zip(names(), values.tolist(), strict=True))
        peak, agent = isk_peak(230, k, population=600, **EVERY_LEVER_AT_ONE, **row)
        assert peak <= row["isk_ceiling"] + agent, (
            f"draw {k}: {peak:.0f} > {row['isk_ceiling']:.0f}"
        )


def test_room_to_grow_falls_linearly_to_zero_at_the_ceiling():
    p = resolve({"isk_ceiling": 10_000})
    assert [isk.room_to_grow(s, p) for s in (0, 5_000, 10_000, 20_000)] == [1.0, 0.5, 0.0, 0.0]
    assert isk.room_to_grow(20_000, resolve({"security": False})) == 1.0


def kandahar_lost_by_dose(**overrides) -> np.ndarray:
    """The Kandahar core's share lost (to IS-K or desertion) after 4 years, per women's rights."""

    def lost(m):
        return m.stats["kandahar_defection_rate"] + m.stats["kandahar_desertion_rate"]

    doses = np.round(np.arange(0.0, 1.01, 0.1), 1)
    return np.array(
        [mean_outcome(lost, weeks=208, womens_rights=float(d), **overrides) for d in doses]
    )


def test_heterogeneous_tolerance_makes_a_faction_respond_gradually():
    """Members' own response (the cascade off): no 0.1 step moves the core by a quarter, and
    a faction of one tolerance crosses together (a step half as large again)."""
    spread = kandahar_lost_by_dose(cascade=False)
    narrow = kandahar_lost_by_dose(cascade=False, tolerance_spread=0.0)
    assert spread[-1] - spread[0] > 0.6  # the response is there
    assert np.diff(spread).max() <= 0.25
    assert np.diff(narrow).max() > np.diff(spread).max() + 0.08


def test_tolerance_is_spread_within_each_faction_at_its_mean():
    model = run(0, 3, population=4_000)
    pop = model.population
    for group in ("kandahar", "kabul"):
        hardline = pop.hardline[pop.group == GROUP_INDEX[group]]
        mean = model.p.trait(group, "hardline")
        assert abs(hardline.mean() - mean) < 0.03
        assert abs(hardline.std() - model.p.tolerance_spread) < 0.03
        assert hardline.min() > 0.0 and hardline.max() < 1.0  # a Beta: nobody at the edges


def test_tactics_make_attacks_at_home_fewer_and_larger_as_effort_moves_abroad():
    p = resolve({})
    home = isk.attack_rate(4000, 0.5, 1.0, 0.5, 0.0, p)
    flat = isk.attack_rate(4000, 0.5, 1.0, 0.5, 0.0, resolve({"tactics": False}))
    assert home == flat / (1 + 0.5 * p.attack_concentration)
    assert isk.concentration(0.0, p) == 1.0 and isk.concentration(0.5, p) > 1.0

    def totals(m):
        history = m.datacollector.get_model_vars_dataframe()
        return history.attacks.sum(), history.attack_severity.sum()

    pressed = dict(counter_isk=1.0, external_adjustment=0.2, cells=False)  # severity 1 each
    fewer = [totals(run(60, s, **pressed)) for s in (1, 2, 3)]
    flat_runs = [totals(run(60, s, tactics=False, **pressed)) for s in (1, 2, 3)]
    attacks, severity = np.mean(fewer, axis=0)
    attacks_flat, severity_flat = np.mean(flat_runs, axis=0)
    assert attacks < 0.8 * attacks_flat  # fewer attacks
    assert severity / attacks > 1.2 * severity_flat / attacks_flat  # each one larger
