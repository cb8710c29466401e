"""The page server's limits: settings checked at start, links bounded, replays capped, doors closed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from isk_defection.viz.journal import MAX_WEEKS, Settings, from_query
from isk_defection.viz.runner import Registry, Run
from isk_defection.viz.server import ConfigError, Limits, is_local, read_limits
from tests.test_viz_components import FakeContext

SMALL = Settings(population=300, seed=5)


def test_limits_default_and_read_from_the_environment():
    assert read_limits({}) == Limits()
    chosen = read_limits({"DEFECTION_MAX_PLAYING": "3", "DEFECTION_SESSION_CULL": "30"})
    assert (chosen.max_playing, chosen.session_cull) == (3, 30.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("DEFECTION_DISCONNECT_GRACE", "abc"),
        ("DEFECTION_MAX_PLAYING", "0"),
        ("DEFECTION_MAX_PLAYING", "2.5"),
        ("DEFECTION_HEARTBEAT_TIMEOUT", "-1"),
        ("DEFECTION_SESSION_CULL", "1e9"),
    ],
)
def test_a_bad_setting_is_refused_with_one_line_naming_it(name, value):
    with pytest.raises(ConfigError, match=rf"^{name}: must be .* \(got '{value}'\)$"):
        read_limits({name: value})


def test_the_app_stops_at_start_on_a_bad_setting_with_one_line():
    env = os.environ | {"DEFECTION_DISCONNECT_GRACE": "abc"}
    out = subprocess.run(
        [sys.executable, "-c", "import isk_defection.viz.app"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "defection app: DEFECTION_DISCONNECT_GRACE: must be a number of seconds in 0.5-3600 "
        "(got 'abc')"
    ]


@pytest.mark.parametrize(
    "query",
    [
        f"week={MAX_WEEKS + 1}",
        "week=20000",
        "population=10001",
        "population=160000",
        "scenario=full_scale&week=20",  # its own population is past the slider's maximum
    ],
)
def test_a_link_asks_for_no_more_than_play_allows(query):
    with pytest.raises(ValueError, match=r"^link: (week|population): (must be in|scenario)"):
        from_query(query)
    assert from_query(f"week={MAX_WEEKS}")[2] == MAX_WEEKS


def wait(condition, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_link_replays_in_the_background_counted_against_the_cap():
    registry = Registry(max_playing=1, limits=Limits(disconnect_grace=1.0))
    busy = Run(SMALL, registry=registry)
    assert busy.play()  # the only slot
    link = Run(SMALL, week=40, registry=registry)
    try:
        wait(lambda: link.message.startswith("Waiting to replay the link"))
        assert link.model.week == 0 and registry.playing() == [busy]
        busy.pause()
        wait(lambda: not link.replaying)
        assert link.model.week == 40 and link.message == "" and registry.playing() == []
        assert link.play()  # the slot is free again once the replay is done
    finally:
        busy.close()
        link.close()


def test_a_replay_stops_when_its_page_has_gone():
    registry = Registry(max_playing=2, limits=Limits(disconnect_grace=0.5))
    gone = FakeContext()
    gone.page_status["page"] = SimpleNamespace(value="disconnected")
    run = Run(Settings(population=2_000, seed=1), week=MAX_WEEKS, registry=registry, context=gone)
    try:
        wait(lambda: run.model.week > 0)
        registry.sweep(now=time.monotonic())
        registry.sweep(now=time.monotonic() + 1.0)
        assert not run.replaying and registry.playing() == []
        stopped = run.model.week
        time.sleep(0.3)
        assert run.model.week == stopped < MAX_WEEKS
    finally:
        run.close()


def test_is_local_knows_the_loopback_addresses():
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost")
    assert not is_local("10.0.0.7") and not is_local(None) and not is_local("testclient")


def test_the_spread_can_draw_its_parameters_from_a_posterior_file(tmp_path):
    import pandas as pd

    from isk_defection.experiments.ensemble import write_ensemble
    from isk_defection.viz.ensemble import member_settings
    from isk_defection.viz.journal import build_model

    table = pd.DataFrame(
        {"draw": [0, 1], "weight": [0.5, 0.5], "release_isk": [1_000.0, 3_000.0],
         "decapitation_loss": [0.25, 0.75]}
    )  # fmt: skip
    path = write_ensemble(table, tmp_path / "post.parquet", model_version="test", fitted_to="none")
    assert read_limits({"DEFECTION_POSTERIOR": str(path)}).posterior == str(path)
    with pytest.raises(ConfigError, match=r"^DEFECTION_POSTERIOR: posterior: no such file"):
        read_limits({"DEFECTION_POSTERIOR": str(tmp_path / "nope.parquet")})
    mine = Settings(population=300, seed=5, overrides=(("decapitation_loss", "0.5"),))
    members = member_settings(mine, 6, str(path))
    assert [m.seed for m in members] == list(range(6, 12))
    for member in members:
        chosen = dict(member.overrides)
        assert chosen["decapitation_loss"] == "0.5"  # the user's own value wins
        assert float(chosen["release_isk"]) in (1_000.0, 3_000.0)
        assert build_model(member).p.release_isk == float(chosen["release_isk"])
    assert member_settings(mine, 6, str(path)) == members  # seeded by the run's seed
