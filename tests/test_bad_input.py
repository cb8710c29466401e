"""Every bad input is refused the same way: one line, the field as typed, what is allowed,
exit status 2, nothing written.

The table is the issue's reliability test kept as a regression test: command-line options,
``--set`` values, lever schedules, sweep specs, output folders, plot folders and the
Python API. Rows run in-process through ``main([...])`` (fast); a few also run as real
subprocesses of the installed ``defection`` command.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from isk_defection.experiments.calibration.holdout import HOLDABLE
from isk_defection.experiments.cli import main
from isk_defection.model.policy import LEVERS

HINTS = (
    "must be",
    "allowed",
    "one of",
    "expected",
    "use ",
    "at most",
    "did you mean",
    "renamed to",
    "give ",
    "choose",
    "needs",
    "or use --all",
    "add --resume",
    "only with",
    "is a file",
    "does not exist",
    "not a sweep",
    "no such file",
    "not valid TOML",
    "no successful runs",
    "in use",
    "cannot",
    "required",
    "unrecognized",
    "invalid choice",
    "was not recorded",
    "a table",
)


@dataclass
class Case:
    """One bad input: the command line, the name the message must show, an optional spec."""

    args: list[str]
    field: str
    spec: str | None = None
    setup: str | None = None  # how to prepare OUT before the command (see prepare)
    id: str = ""


def run_case(*args: str) -> list[str]:
    return ["run", "--steps", "2", "--out", "{out}", *args]


def setting(name_value: str, field_name: str | None = None) -> Case:
    return Case(run_case("--set", name_value), field_name or name_value.partition("=")[0])


VALID_SPEC = """
[sweep]
name = "t"
steps = 2
[fixed]
population = 100
[grid]
womens_rights = [0.0, 0.5]
"""


def spec_case(text: str, field_name: str, *extra: str) -> Case:
    return Case(["sweep", "{spec}", "--out", "{out}", *extra], field_name, spec=text)


def with_section(section: str, body: str) -> str:
    return f"[sweep]\nname = 't'\nsteps = 2\n[fixed]\npopulation = 100\n[{section}]\n{body}\n"


def sweep_key(body: str) -> str:
    name = "" if body.startswith("name") else "name = 't'\n"
    return f"[sweep]\n{name}{body}\n[fixed]\npopulation = 100\n"


CASES: list[Case] = [
    # ---- --set: numbers, integers, infinities, NaN, overflow ---------------------------
    *(
        setting(f"population={v}", "population")
        for v in (
            "inf",
            "-inf",
            "nan",
            "1e400",
            "-5",
            "0",
            "9",
            "5000001",
            "5.5",
            "abc",
            "1" + "0" * 400,
            "true",
        )
    ),
    *(
        setting(f"start_date={v}", "start_date")
        for v in (
            "9990-01-01",
            "20210815",
            "2021-13-01",
            "2021-02-30",
            "1800-01-01",
            "x",
            "2021-W33-1",
        )
    ),
    *(
        setting(f"moderation={v}", "moderation")
        for v in (
            "1.5",
            "-0.1",
            "nan",
            "inf",
            "[0.1,,0.3]",
            "piecewise(0:0.1:9,5:0.2)",
            "piecewise(nan:0.1,5:0.2)",
            "step(0.1,0.6,1e400)",
            "step(0.1,0.6)",
            "ramp(0.1,0.6,5,2)",
            "foo(1)",
            "[]",
            "piecewise()",
            "step(0.1,0.6,2.5)",
            "step(0.1,0.6,-1)",
            "[0.1,0.2",
            "0x1",
            "1_0",
            "piecewise(5:0.1,2:0.3)",
            "hold(0:2)",
            "[0.1,inf]",
            "ramp(0.1,0.6,10)",
            "step(0.1,0.6,3,4)",
            "piecewise(0:0.1,,5:0.2)",
            "piecewise(0;0.1)",
            "(0.3)",
            "0.3)",
            "step(,0.6,3)",
        )  # fmt: skip
    ),
    *(setting(f"{lever}=2", lever) for lever in LEVERS),
    *(setting(f"{lever}=step(0.1,2,3)", lever) for lever in LEVERS),
    *(setting(f"{lever}=[0.1,,0.2]", lever) for lever in LEVERS),
    setting("walk_in=0.5", "walk_in"),
    setting("cascade_strength=0.5", "cascade_strength"),
    setting("recruitment=maybe", "recruitment"),
    setting("cascade=2", "cascade"),
    setting("outbidding=yes-please", "outbidding"),
    setting("collect_agent_data=maybe", "collect_agent_data"),
    setting("network=ring", "network"),
    setting("attack_rate=101", "attack_rate"),
    setting("attack_rate=-1", "attack_rate"),
    setting("attack_rate=nan", "attack_rate"),
    setting("trait_spread=0.6", "trait_spread"),
    setting("loyalty_adjustment=inf", "loyalty_adjustment"),
    setting("influence_rate=0.51", "influence_rate"),
    setting("ties_within=1.5", "ties_within"),
    setting("ties_within=101", "ties_within"),
    setting("release_week=-2", "release_week"),
    setting("min_group_agents=1e400", "min_group_agents"),
    setting("isk_size=-1", "isk_size"),
    setting("kandahar_size=-1", "kandahar_size"),
    setting("ttp_hardline=1.1", "ttp_hardline"),
    setting("former_loyalty=nan", "former_loyalty"),
    setting("uyghur_threshold=abc", "uyghur_threshold"),
    # ---- --set: malformed -----------------------------------------------------------
    Case(run_case("--set", "moderation"), "--set"),
    Case(run_case("--set", "=0.3"), "--set"),
    Case(run_case("--set", "moderation="), "--set"),
    Case(run_case("--set", "nosuch=1"), "--set"),
    Case(run_case("--set", "populaton=500"), "--set"),
    Case(run_case("--set", "population==5"), "population"),
    Case(run_case("--set", "moderation=0.5", "--set", "womens_rights=0.2"), "moderation"),
    Case(run_case("--set"), "--set"),
    # ---- run options ---------------------------------------------------------------------
    *(
        Case(["run", "--steps", v, "--out", "{out}"], "--steps")
        for v in ("-1", "abc", "1e400", "100001", "1.5", "")
    ),
    *(
        Case(["run", "--steps", "2", "--seed", v, "--out", "{out}"], "--seed")
        for v in ("-1", "abc", "1.5", str(2**63), "")
    ),
    Case(["run", "--steps", "2", "--preset", "utopia", "--out", "{out}"], "--preset"),
    Case(["run", "--steps", "2", "--preset", "", "--out", "{out}"], "--preset"),
    Case(["run", "--steps", "2", "--preset", "Baseline", "--out", "{out}"], "--preset"),
    Case(["run", "--sed", "3", "--out", "{out}"], "--sed"),
    Case(["runn", "--out", "{out}"], "runn"),
    Case([], "COMMAND"),
    Case(["--steps", "3"], "COMMAND"),
    Case(
        run_case(
            "--set", "population=5000000", "--set", "collect_agent_data=on", "--steps", "100000"
        ),
        "collect_agent_data",
    ),  # fmt: skip
    # ---- run --out ---------------------------------------------------------------------
    Case(run_case(), "--out", setup="file"),
    Case(["run", "--steps", "2", "--out", "{out}/below"], "--out", setup="file"),
    Case(run_case(), "--out", setup="sweep"),
    Case(run_case(), "--out", setup="foreign"),
    Case(run_case(), "--out", setup="busy"),
    Case(run_case(), "--out", setup="bad-marker"),
    # ---- params, app ----------------------------------------------------------------------
    Case(["params", "--format", "xml"], "--format"),
    Case(["params", "--format", ""], "--format"),
    Case(["params", "--colour"], "--colour"),
    *(Case(["app", "--port", v], "--port") for v in ("0", "70000", "abc", "-1", "")),
    Case(["app", "--port", "{busy_port}"], "--port"),
    Case(["app", "--host", "no such host !", "--port", "{free_port}"], "--host"),
    # ---- reproduce --------------------------------------------------------------------------
    Case(["reproduce", "--out", "{out}"], "reproduce"),
    Case(["reproduce", "C99", "--out", "{out}"], "NAME"),
    Case(["reproduce", "c2", "--out", "{out}"], "NAME"),
    Case(["reproduce", "C2", "--out", "{out}"], "--out", setup="file"),
    Case(["reproduce", "C2", "--workers", "0", "--out", "{out}"], "--workers"),
    # ---- plot ------------------------------------------------------------------------------
    Case(["plot", "{out}"], "FOLDER"),
    Case(["plot", "{out}"], "FOLDER", setup="empty"),
    Case(["plot", "{out}"], "FOLDER", setup="file"),
    Case(["plot", "{out}"], "FOLDER", setup="run"),
    Case(["plot", "{out}"], "FOLDER", setup="foreign"),
    Case(["plot", "{out}"], "FOLDER", setup="empty-sweep"),
    Case(["plot", "{out}"], "FOLDER", setup="damaged-sweep"),
    Case(["plot"], "folder"),
    # ---- sweep: the spec file ------------------------------------------------------------
    Case(["sweep", "{out}/none.toml", "--out", "{out}"], "spec"),
    spec_case("this is = = not toml", "spec"),
    spec_case("sweep = 5\n", "sweep"),
    spec_case(VALID_SPEC + "[colour]\nred = 1\n", "colour"),
    spec_case(sweep_key("replicate = 2"), "sweep.replicate"),
    *(
        spec_case(sweep_key(f"steps = {v}"), "sweep.steps")
        for v in ("-1", '"10"', "inf", "nan", "100001", "1.5", "true")
    ),
    *(
        spec_case(sweep_key(f"replicates = {v}"), "sweep.replicates")
        for v in ("0", "1000000000000", "true", "-3")
    ),
    *(spec_case(sweep_key(f"seed = {v}"), "sweep.seed") for v in ("-1", '"x"', "1.5")),
    *(spec_case(sweep_key(f"record_every = {v}"), "sweep.record_every") for v in ("0", "-2")),
    *(spec_case(sweep_key(f"name = {v}"), "sweep.name") for v in ('""', "5", "[1]")),
    *(spec_case(sweep_key(f"preset = {v}"), "sweep.preset") for v in ('"utopia"', "5")),
    *(
        spec_case(sweep_key(f"outputs = {v}"), "sweep.outputs")
        for v in ("[]", '"isk_strength"', '["nope"]', "[1]")
    ),
    spec_case(
        with_section("grid", "womens_rights = [0.1]").replace("population = 100", "no_such = 1"),
        "fixed.no_such",
    ),
    *(
        spec_case(
            sweep_key("steps = 2").replace("population = 100", f"population = {v}"),
            "fixed.population",
        )
        for v in ("inf", "nan", "1e400", "5.5", '"many"', "-1")
    ),
    spec_case(sweep_key("steps = 2") + 'moderation = "[0.1,,0.3]"\n', "fixed.moderation"),
    spec_case(
        sweep_key("steps = 2") + 'womens_rights = "piecewise(0:0.1:9,5:0.2)"\n',
        "fixed.womens_rights",
    ),
    spec_case(
        sweep_key("steps = 2") + 'counter_isk = "step(0.1,0.6,1e400)"\n', "fixed.counter_isk"
    ),
    spec_case(sweep_key("steps = 2") + 'start_date = "9990-01-01"\n', "fixed.start_date"),
    spec_case(sweep_key("steps = 2") + "walk_in = 0.3\n", "fixed.walk_in"),
    spec_case(with_section("grid", "womens_rights = []"), "grid.womens_rights"),
    spec_case(with_section("grid", "womens_rights = 0.5"), "grid.womens_rights"),
    spec_case(with_section("grid", "womens_rights = [0.1, 1.5]"), "grid.womens_rights"),
    spec_case(with_section("grid", "ties_within = [1, 5.5]"), "grid.ties_within"),
    spec_case(with_section("grid", "nosuch = [1, 2]"), "grid.nosuch"),
    spec_case(with_section("grid", "population = [100, 200]"), "population"),
    spec_case(with_section("grid", "a = 1\n[grid.b]\nc = 2"), "grid"),
    spec_case(
        with_section(
            "grid",
            f"womens_rights = {[i / 1000 for i in range(1000)]}\n"
            f"counter_isk = {[i / 1000 for i in range(1000)]}",
        ),
        "grid/sample",
    ),  # fmt: skip
    spec_case(
        with_section("grid", f"womens_rights = {[i / 1000 for i in range(1000)]}").replace(
            "steps = 2", "steps = 2\nreplicates = 10000"
        ),
        "sweep.replicates",
    ),  # fmt: skip
    spec_case(
        with_section("sample", 'method = "grid"\nn = 2\n[sample.ranges]\nwomens_rights = [0, 1]'),
        "sample.method",
    ),  # fmt: skip
    spec_case(
        with_section("sample", 'method = "lhs"\nn = -1\n[sample.ranges]\nwomens_rights = [0, 1]'),
        "sample.n",
    ),  # fmt: skip
    spec_case(
        with_section(
            "sample", 'method = "lhs"\nn = 10000000000\n[sample.ranges]\nwomens_rights = [0, 1]'
        ),
        "sample.n",
    ),  # fmt: skip
    spec_case(with_section("sample", 'method = "lhs"\nn = 2\nsize = 3'), "sample.size"),
    spec_case(with_section("sample", "n = 2\n[sample.ranges]\nwomens_rights = [0, 1]"), "sample"),
    *(
        spec_case(
            with_section("sample", f'method = "lhs"\nn = 2\n[sample.ranges]\n{body}'), field_name
        )
        for body, field_name in (
            ('x = ["a", 1]', "sample.ranges.x"),
            ('womens_rights = ["a", 1]', "sample.ranges.womens_rights"),
            ("womens_rights = [1]", "sample.ranges.womens_rights"),
            ("womens_rights = [0.5, 0.2]", "sample.ranges.womens_rights"),
            ("womens_rights = [0, 2]", "sample.ranges.womens_rights"),
            ("womens_rights = [0, nan]", "sample.ranges.womens_rights"),
            ("womens_rights = 0.5", "sample.ranges.womens_rights"),
            ('network = ["a", "b"]', "sample.ranges.network"),
            ("recruitment = [0, 1]", "sample.ranges.recruitment"),
            ("population = [10, inf]", "sample.ranges.population"),
            ("walk_in = [0, 1]", "sample.ranges.walk_in"),
        )
    ),
    spec_case(
        VALID_SPEC.replace("population = 100", "population = 100\nwomens_rights = 0.3"),
        "womens_rights",
    ),
    spec_case(
        VALID_SPEC.replace("population = 100", "population = 100\nmoderation = 0.3"),
        "womens_rights",
    ),
    # ---- sweep: options and folders ------------------------------------------------------
    *(spec_case(VALID_SPEC, "--workers", "--workers", v) for v in ("0", "-1", "abc", "2000")),
    spec_case(VALID_SPEC, "--retry-failed", "--retry-failed"),
    spec_case(
        VALID_SPEC.replace("population = 100", "population = 5000000"),
        "--workers",
        "--workers",
        "1024",
    ),  # fmt: skip
    spec_case(VALID_SPEC, "--scheduler", "--scheduler", "not-an-address"),
    Case(["sweep", "{spec}", "--out", "{out}"], "--out", spec=VALID_SPEC, setup="file"),
    Case(["sweep", "{spec}", "--out", "{out}"], "--out", spec=VALID_SPEC, setup="foreign"),
    Case(["sweep", "{spec}", "--out", "{out}"], "--out", spec=VALID_SPEC, setup="run"),
    Case(["sweep", "{spec}", "--out", "{out}"], "--out", spec=VALID_SPEC, setup="other-sweep"),
    Case(["sweep", "{spec}", "--out", "{out}"], "--out", spec=VALID_SPEC, setup="busy-sweep"),
    Case(["sweep", "{spec}"], "--out", spec=VALID_SPEC),
    # ---- sensitivity ---------------------------------------------------------------------
    Case(
        ["sensitivity", "{spec}", "--out", "{out}"],
        "grid",
        spec=VALID_SPEC
        + '[sample]\nmethod = "sobol"\nn = 2\n[sample.ranges]\ncounter_isk = [0, 1]\n',
    ),
    Case(["sensitivity", "{spec}", "--out", "{out}"], "sample.ranges", spec=sweep_key("steps = 2")),
    Case(
        ["sensitivity", "{spec}", "--out", "{out}", "--outcome", "nope"],
        "--outcome",
        spec=with_section(
            "sample", 'method = "sobol"\nn = 2\n[sample.ranges]\nwomens_rights = [0, 1]'
        ),
    ),  # fmt: skip
]


# ---- every command's engine options, and options that exclude each other --------------
ENGINE_COMMANDS = {
    "sweep": ["sweep", "{spec}", "--out", "{out}"],
    "sensitivity": ["sensitivity", "{spec}", "--out", "{out}"],
    "reproduce": ["reproduce", "C1", "--quick", "--out", "{out}"],
    "doses": ["doses", "--quick", "--out", "{out}"],
    "optimize": ["optimize", "{spec}", "--quick", "--out", "{out}"],
    "calibrate": ["calibrate", "--quick", "--out", "{out}"],
}
SENSITIVITY_SPEC = (
    with_section(
        "sample", 'method = "sobol"\nn = 2\n[sample.ranges]\ncontagion_weight = [0.2, 0.8]'
    )
    .replace("[fixed]", "[fixed]")
    .replace("[grid]", "")
)
OPTIMIZE_BASE: dict[str, dict] = {
    "optimize": {"steps": 20, "periods": 2, "period_weeks": 5, "levers": ["womens_rights"]},
    "fixed": {"population": 100},
    "algorithm": {"population": 8, "generations": 2},
    "objectives.isk_strength": {"statistic": "p90"},
    "constraints.regime_losses": {"statistic": "mean", "max": 0.05},
}


def toml_value(value: object) -> str:
    """A Python value as TOML (enough for the cases here: no nested tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and abs(value) == float("inf"):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def optimize_spec(table: str = "", key: str = "", value: object = None, drop: str = "") -> str:
    """The small valid optimisation spec above with one key changed (or a table dropped)."""
    tables = {name: dict(keys) for name, keys in OPTIMIZE_BASE.items() if name != drop}
    if table:
        tables.setdefault(table, {})[key] = value
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
        for name, keys in tables.items()
    )


def engine_case(command: str, *extra: str, field: str) -> Case:
    spec = {"sweep": VALID_SPEC, "sensitivity": SENSITIVITY_SPEC}.get(command)
    spec = optimize_spec() if command == "optimize" else spec
    return Case([*ENGINE_COMMANDS[command], *extra], field, spec=spec)


def optimize_case(table: str, key: str, value: object, field: str | None = None) -> Case:
    spec = optimize_spec(table, key, value)
    return Case(["optimize", "{spec}", "--out", "{out}"], field or f"{table}.{key}", spec=spec)


CASES += [
    *(
        engine_case(command, "--workers", value, field="--workers")
        for command in ENGINE_COMMANDS
        for value in ("0", "-1", "1025", "abc", "1.5", "", "1e3")
    ),
    *(
        engine_case(
            command, "--local-cluster", "--scheduler", "tcp://127.0.0.1:9", field="--local-cluster"
        )
        for command in ENGINE_COMMANDS
    ),  # fmt: skip
    *(engine_case(c, "--retry-failed", field="--retry-failed") for c in ("sweep", "sensitivity")),
    # ---- calibrate: budgets finite, positive and capped ---------------------------------
    *(
        engine_case("calibrate", "--minutes", value, field="--minutes")
        for value in ("nan", "inf", "-inf", "0", "-1", "abc", "1e9", "100000", "")
    ),
    *(
        engine_case("calibrate", "--particles", value, field="--particles")
        for value in ("0", "1", "-1", "1000000000000", "abc", "2.5", "nan", "inf")
    ),
    *(
        engine_case("calibrate", "--simulations", value, field="--simulations")
        for value in ("0", "-1", "1000000000000", "abc", "1.5", "inf")
    ),
    *(
        engine_case("calibrate", "--coverage", value, field="--coverage")
        for value in ("0", "-1", "abc", "100000000", "2.5")
    ),
    engine_case("calibrate", "--coverage-only", field="--coverage-only"),
    engine_case("calibrate", "--rescreen", "--resume", field="--rescreen"),
    # ---- calibrate by history matching (the default method) and what goes with what ----
    *(engine_case("calibrate", "--method", v, field="--method") for v in ("bayes", "", "ABC")),
    *(engine_case("calibrate", "--waves", v, field="--waves") for v in ("0", "-1", "1.5", "x")),
    *(engine_case("calibrate", "--points", v, field="--points") for v in ("5", "0", "1e9", "x")),
    *(engine_case("calibrate", "--seeds", v, field="--seeds") for v in ("1", "0", "2.5", "x")),
    *(
        engine_case("calibrate", "--population", v, field="--population")
        for v in ("0", "9", "inf", "nan", "1e12", "x")
    ),
    *(
        engine_case("calibrate", "--hold-out", v, field="--hold-out")
        for v in ("nope", "", "isk_2024,", "taliban_share", ",".join(HOLDABLE))
    ),
    engine_case("calibrate", "--simulations", "100", field="--simulations"),
    *(
        engine_case("calibrate", option, value, field=option)
        for option, value in (("--particles", "20"), ("--minutes", "5"), ("--coverage", "2"))
    ),
    *(
        engine_case("calibrate", "--method", "abc", option, value, field=option)
        for option, value in (
            ("--waves", "2"),
            ("--points", "50"),
            ("--seeds", "3"),
            ("--hold-out", "isk_2024"),
        )
    ),
    # ---- reproduce, run, sweep: what goes with what --------------------------------------
    Case(["reproduce", "C2", "--all", "--out", "{out}"], "--all"),
    Case(["reproduce", "C2", "--draws", "5", "--out", "{out}"], "--draws"),
    *(Case(["reproduce", "C2", "--draws", v, "--out", "{out}"], "--draws") for v in ("0", "x")),
    *(Case(run_case("--draw", v), "--draw") for v in ("-1", "x", "1.5", str(2**63))),
    Case(run_case("--draw", "3"), "--draw"),
    *(spec_case(VALID_SPEC, "--draws", "--draws", v) for v in ("0", "-5", "100001", "many")),
    spec_case(VALID_SPEC, "--draws", "--draws", "5"),
    # ---- optimize: every table and key of the spec -----------------------------------------
    *(
        optimize_case("optimize", "steps", v)
        for v in (0, -1, 100_001, 1_000_000_000, 1.5, "20", True, float("nan"))
    ),
    *(optimize_case("optimize", "periods", v) for v in (0, -1, 1.5, "2", 1000)),
    *(optimize_case("optimize", "period_weeks", v) for v in (0, -3, 2.5, 100_001)),
    *(
        optimize_case("optimize", "resolution", v)
        for v in (-0.1, 0.6, float("nan"), float("inf"), "0.1", True)
    ),
    *(optimize_case("optimize", "seed", v) for v in (-1, 1.5, "x")),
    *(optimize_case("optimize", "name", v) for v in ("a b", "", "x/y", 5)),
    *(optimize_case("optimize", "preset", v) for v in ("utopia", 5)),
    *(
        optimize_case("optimize", "levers", v)
        for v in ([], ["nope"], "womens_rights", ["womens_rights", "womens_rights"], [1])
    ),
    *(optimize_case("optimize", "references", v) for v in (["utopia"], "baseline", [5])),
    *(
        optimize_case("optimize", "moderation_level", v)
        for v in (2, -1, float("nan"), float("inf"), "high")
    ),
    optimize_case("optimize", "colour", "red", "optimize.colour"),
    *(
        optimize_case("algorithm", "population", v)
        for v in (3, 0, -1, 100_000_000, 1.5, "8", float("inf"))
    ),
    *(
        optimize_case("algorithm", "generations", v)
        for v in (0, -1, 1_000_000_000, 2.5, "3", False)
    ),
    *(optimize_case("algorithm", "pareto_max", v) for v in (0, -1, 1.5, 10**9)),
    *(optimize_case("algorithm", "name", v) for v in ("ga", 2, "NSGA2")),
    *(optimize_case("algorithm", "seed_population", v) for v in ("yes", 1, 0.0)),
    *(
        optimize_case(table, key, v)
        for table in ("robustness", "stress")
        for key in ("draws", "seeds")
        for v in (0, -1, 1.5, 10**9, "2")
    ),
    *(
        optimize_case("objectives.isk_strength", key, v)
        for key, values in (
            ("statistic", ("median", 1)),
            ("sense", ("up", True)),
            ("measure", ("nope", 3)),
            ("colour", ("red",)),
        )
        for v in values
    ),
    *(
        optimize_case("constraints.regime_losses", key, v)
        for key, values in (
            ("max", (float("nan"), float("inf"), "x", True)),
            ("statistic", ("median",)),
            ("measure", ("nope",)),
        )
        for v in values
    ),
    *(
        optimize_case("bounds", "womens_rights", v)
        for v in ([0.5, 0.2], [0, 2], "x", [0.1], [float("nan"), 1], [-1, 0.5])
    ),
    optimize_case("bounds", "counter_isk", [0.1, 0.2]),
    optimize_case("constraints.regime_losses", "min", 0.1, "constraints.regime_losses"),
    *(optimize_case("fixed", "population", v) for v in (-1, "x", 1.5, float("inf"))),
    optimize_case("fixed", "nosuch", 1),
    optimize_case("fixed", "womens_rights", 0.5),
    optimize_case("colour", "red", 1, "colour"),
    optimize_case("quick.algorithm", "population", 1, "quick.algorithm.population"),
    optimize_case("quick.quick", "x", 1, "quick.quick"),
    optimize_case("quick.stress", "draws", 0, "quick.stress.draws"),
    # ---- optimize: moderation seeded, per-lever doses, relative constraints (issue 21) --
    *(optimize_case("moderation", "levels", v) for v in ([0], [1.5], [], "0.5", [True])),
    optimize_case("moderation", "levels", [0.1 * k for k in range(1, 10)]),  # 27 paths, room for 6
    *(optimize_case("moderation", "timings", v) for v in (["soon"], "late", [], [1])),
    *(optimize_case("moderation", "late_periods", v) for v in (0, 2, 1.5, "1")),
    *(optimize_case("moderation", "seed", v) for v in ("yes", 1)),
    *(optimize_case("moderation", "stress_paths", v) for v in (-1, 1.5, 10**6)),
    optimize_case("moderation", "colour", 1),
    *(optimize_case("dose_response", "levers", v) for v in (["nope"], "inclusion", [1])),
    *(optimize_case("dose_response", "doses", v) for v in ([2], [-0.1], [], "x", [float("nan")])),
    *(optimize_case("sensitivity", "constraint", v) for v in ("nope", 3)),
    *(optimize_case("sensitivity", "levels", v) for v in ([], "x", [float("nan")], [True])),
    *(optimize_case("stress", "target_shift", v) for v in (0, -0.1, 11, "x", float("inf"))),
    *(
        optimize_case("constraints.regime_losses", key, v)
        for key in ("max_vs_reference", "min_vs_reference")
        for v in (float("nan"), "x", True)
    ),
    optimize_case(
        "constraints.regime_losses", "max_vs_reference", 0.02, "constraints.regime_losses"
    ),
    Case(
        ["optimize", "{spec}", "--out", "{out}"],
        "objectives",
        spec=optimize_spec(drop="objectives.isk_strength"),
    ),
    Case(
        ["optimize", "{spec}", "--out", "{out}"],
        "algorithm.generations",
        spec=optimize_spec("algorithm", "generations", 10_000).replace(
            "population = 8", "population = 10000"
        ),
    ),
    Case(["optimize", "{out}/none.toml", "--out", "{out}"], "spec"),
    Case(["optimize", "{spec}", "--out", "{out}"], "spec", spec="not = = toml"),
]


def _ids(cases: list[Case]) -> list[str]:
    return [
        f"{i:03d}-{' '.join(c.args)[:60]}{'-' + c.setup if c.setup else ''}"
        for i, c in enumerate(cases)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(case: Case, tmp: Path, out: Path) -> list:
    """Make OUT what the case needs; return things to keep alive (locks, sockets)."""
    keep: list = []
    setup = case.setup
    if setup == "file":
        out.write_text("not a folder")
    elif setup in ("empty",):
        out.mkdir()
    elif setup == "foreign":
        out.mkdir()
        (out / "thesis.tex").write_text("mine")
    elif setup == "run":
        out.mkdir()
        (out / ".defection.json").write_text('{"kind": "run"}')
        (out / "run.json").write_text("{}")
    elif setup in ("sweep", "empty-sweep", "other-sweep"):
        out.mkdir()
        (out / ".defection.json").write_text('{"kind": "sweep"}')
        (out / "manifest.json").write_text(json.dumps({"hash": "0" * 16, "varied": []}))
    elif setup == "damaged-sweep":
        out.mkdir()
        (out / "manifest.json").write_text("{not json")
    elif setup == "bad-marker":
        out.mkdir()
        (out / ".defection.json").write_text("garbage")
    elif setup in ("busy", "busy-sweep"):
        out.mkdir()
        kind = "run" if setup == "busy" else "sweep"
        (out / ".defection.json").write_text(json.dumps({"kind": kind}))
        lock = FileLock(out / ".lock")
        lock.acquire()
        keep.append(lock)
    return keep


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def substitute(case: Case, tmp: Path, out: Path, spec: Path, keep: list) -> list[str]:
    args = []
    for arg in case.args:
        if "{busy_port}" in arg:
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            keep.append(holder)
            arg = arg.replace("{busy_port}", str(holder.getsockname()[1]))
        arg = arg.replace("{free_port}", str(free_port()))
        args.append(arg.replace("{out}", str(out)).replace("{spec}", str(spec)))
    return args


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default --out (results/run) would land here
    out, spec = tmp_path / "out", tmp_path / "spec.toml"
    if case.spec is not None:
        spec.write_text(case.spec)
    keep = prepare(case, tmp_path, out)
    args = substitute(case, tmp_path, out, spec, keep)
    before = snapshot(tmp_path)
    try:
        code = main(args)
    finally:
        for thing in keep:
            (thing.release if hasattr(thing, "release") else thing.close)()
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    message = lines[0]
    assert message.startswith("defection: error: "), message
    assert case.field in message, f"{case.field!r} not named in: {message}"
    assert any(hint in message for hint in HINTS), f"allowed values not said: {message}"
    assert "Traceback" not in captured.err
    assert snapshot(tmp_path) == before, "a refused command wrote files"


def test_the_table_is_large_enough():
    assert len(CASES) >= 400


@pytest.mark.parametrize(
    ("args", "field_name"),
    [
        (["run", "--set", "population=inf"], "population"),
        (["run", "--set", "moderation=[0.1,,0.3]"], "moderation"),
        (["sweep", "missing.toml", "--out", "x"], "spec"),
    ],
)
def test_the_installed_command_refuses_bad_input_the_same_way(tmp_path, args, field_name):
    command = Path(sys.executable).parent / "defection"
    result = subprocess.run(
        [str(command), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field_name in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path, capsys):
    code = main(["run", "--debug", "--set", "population=inf", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("defection: error:")


API_CASES = [
    ({"population": float("inf")}, {}, "population"),
    ({"population": 1e400}, {}, "population"),
    ({"population": 10**400}, {}, "population"),
    ({"population": "500"}, {}, "population"),
    ({"womens_rights": "[0.1,,0.3]"}, {}, "womens_rights"),
    ({"womens_rights": [0.1, float("nan")]}, {}, "womens_rights"),
    ({"womens_rights": []}, {}, "womens_rights"),
    ({"counter_isk": "step(0.1,0.6,1e400)"}, {}, "counter_isk"),
    ({"start_date": "9990-01-01"}, {}, "start_date"),
    ({"walk_in": 0.1}, {}, "walk_in"),
    ({"nosuch": 1}, {}, "nosuch"),
    ({"seed": 3}, {}, "seed"),
    ({}, {"steps": -1}, "steps"),
    ({}, {"steps": 1e400}, "steps"),
    ({}, {"seed": -1}, "seed"),
    ({}, {"seed": "abc"}, "seed"),
    ({}, {"preset": "utopia"}, "preset"),
    ({}, {"outcomes": ["nope"]}, "outcomes"),
    ({}, {"outcomes": "isk_strength"}, "outcomes"),
    ({}, {"reduce": "median"}, "reduce"),
]


@pytest.mark.parametrize(("parameters", "options", "field_name"), API_CASES)
def test_the_api_refuses_bad_input_with_one_line_naming_the_field(parameters, options, field_name):
    from isk_defection.experiments.api import run

    options = {"steps": 1} | options
    with pytest.raises(ValueError) as caught:
        run(parameters, **options)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(field_name) or f"{field_name}" in message
    assert any(hint in message for hint in HINTS), message
