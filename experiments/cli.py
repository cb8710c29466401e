"""The ``defection`` command line: run, params, app, sweep, sensitivity, plot, reproduce.

Conventions, the same for every command, because the tool is meant to be scripted:

- Bad input ends with one line on stderr that names the option or field as the user
  typed it (``--seed``, ``--set population``, ``grid.moderation``) and what is allowed,
  exit status 2, and nothing written. ``--debug`` adds the traceback.
- Everything is checked before any computing starts, including the output folder
  (``experiments.folders``: a file, unwritable, another command's output or in use by a
  running command: refused; ``--resume`` continues only the same command's output).
- Exit status: 0 done, 1 runs failed (it says how many) or an internal error, 2 bad
  input, 3 out of disk space or memory, 130 interrupted (Ctrl-C). No temporary file is
  left behind; finished work is kept for ``--resume``.
- No worker outlives its command, even one killed by SIGKILL; a worker that dies costs
  no run.
- Progress bars only on a terminal; ``-q`` or ``TQDM_DISABLE=1`` turn them off, and no
  carriage-return progress lines reach a log file. Output piped into ``head`` ends quietly.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import socket
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from isk_defection.experiments.console import progress, say
from isk_defection.experiments.options import (
    add_engine_options,
    check_engine,
    choice,
    integer,
    suggest,
)
from isk_defection.model.parameters import MAX_STEPS, PARAMETERS
from isk_defection.model.policy import SCHEDULE_FORMS, Schedule, parse_schedule
from isk_defection.model.presets import PRESET_DESCRIPTIONS, PRESETS

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
EXIT_BAD_INPUT, EXIT_FAILED_RUNS, EXIT_NO_ROOM, EXIT_INTERRUPTED = 2, 1, 3, 130


class InputError(ValueError):
    """Bad input found by the command line itself (an option's value)."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the option (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``defection: error: --option: message`` and exit with status 2."""
        if message.startswith("argument "):
            option, _, rest = message[len("argument ") :].partition(": ")
            message = f"{option.split('/')[-1]}: {rest}"
        hint = f" (see {self.prog} --help)"
        print(f"defection: error: {message}{hint}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def note(text: str) -> None:
    """A one-line note on stderr (not silenced by -q: it says what the results mean)."""
    print(f"defection: note: {text}", file=sys.stderr, flush=True)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Read ``NAME=VALUE`` into a typed parameter value (validated later by the model)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise InputError(f"--set: expected NAME=VALUE (got {text!r})")
    from isk_defection.experiments.spec import aliases, renamed

    if name in renamed():
        raise InputError(f"--set {name}: renamed to {renamed()[name]} (see defection params)")
    if name not in PARAMETERS and name not in aliases():
        raise InputError(
            f"--set: unknown parameter {name!r}; must be one that `defection params` lists"
            f"{suggest(name, [*PARAMETERS, *aliases()])}"
        )
    parameter = PARAMETERS[aliases().get(name, (name,))[0]]
    kind = parameter.kind
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise InputError(f"{name}: must be {parameter.allowed()} (got {raw!r})")
        return name, raw.lower() in _TRUE
    if kind is str:
        return name, raw
    if kind is Schedule:
        return name, parse_schedule(name, raw)
    try:
        number = float(raw)
    except ValueError:
        raise InputError(f"{name}: must be {parameter.allowed()} (got {raw!r})") from None
    if kind is int and number == number and abs(number) != float("inf"):
        return name, int(number) if number.is_integer() else number
    return name, number


# ---- run ------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from isk_defection.experiments import folders
    from isk_defection.experiments.run import (
        check_memory,
        format_summary,
        records_agents,
        simulate,
        summary,
        write_outputs,
    )
    from isk_defection.experiments.spec import expand
    from isk_defection.model.parameters import resolve
    from isk_defection.model.presets import preset

    overrides = expand(dict(parse_assignment(text) for text in args.set))
    if args.draw is not None and not args.posterior:
        raise InputError("--draw: only with --posterior FILE")
    posterior = None
    if args.posterior:  # a posterior draw's parameters; --set still overrides them
        draw_id, drawn = _posterior_draw(args.posterior, args.draw)
        clash = {
            name: [drawn[name], overrides[name]] for name in sorted(set(drawn) & set(overrides))
        }
        if clash:
            note(f"--set {', '.join(clash)}: overrides the value{'s' * (len(clash) > 1)} of "
                 f"posterior draw {draw_id} (recorded in run.json)")  # fmt: skip
        posterior = {"file": args.posterior, "draw": draw_id, "overridden_by_set": clash}
        overrides = drawn | overrides
    values = resolve(preset(args.preset) | overrides)
    check_memory(values, args.steps)
    out = Path(args.out)
    with folders.claim(out, "run"):
        model = simulate(
            args.steps, preset=args.preset, seed=args.seed, progress=progress(args), **overrides
        )
        paths = write_outputs(model, args.steps, out, argv=args.argv, posterior=posterior)
    say(args, format_summary(summary(model), model))
    for path in paths:
        say(args, f"wrote {path}")
    if not records_agents(values) and _setting(values, "collect_agent_data") == "auto":
        say(
            args,
            f"agent records not kept ({_setting(values, 'population'):,} agents is over the "
            "automatic limit); --set collect_agent_data=on keeps them",
        )
    return 0


def _setting(values: Any, name: str) -> Any:
    """One resolved parameter, whether the registry gives a mapping or a frozen object."""
    return values[name] if isinstance(values, dict) else getattr(values, name)


def _posterior_draw(path: str, k: int | None) -> tuple[int, dict[str, Any]]:
    """Draw ``k`` of a posterior ensemble (default: its first draw): its id and parameters."""
    from isk_defection.experiments.ensemble import load_posterior

    ensemble = load_posterior(path)
    table = ensemble.table
    ids = table["draw"].tolist()
    k = ids[0] if k is None else k
    if k not in ids:
        raise InputError(f"--draw: must be a draw id of {path} ({min(ids)}-{max(ids)}; got {k})")
    row = table[table["draw"] == k].iloc[0]
    return int(k), {name: row[name].item() if hasattr(row[name], "item") else row[name]
                    for name in ensemble.parameters}  # fmt: skip


def _posterior_points(spec: Any, path: str, draws: int | None) -> Any:
    """The spec's design crossed with ``draws`` posterior draws (the spec wins on clashes).

    A parameter the spec sets (``[fixed]`` or varied) overrides the posterior's draws of
    it: said in one line, and recorded in the manifest's spec (``posterior``).
    """
    import dataclasses

    import numpy as np

    from isk_defection.experiments.ensemble import draw, load_posterior
    from isk_defection.experiments.spec import expand

    ensemble = load_posterior(path)
    sample = draw(ensemble, draws or 20, np.random.default_rng(spec.seed))
    given = {f"fixed.{n}": n for n in expand(spec.fixed)}
    given |= {f"{'grid' if n in spec.grid else 'sample.ranges'}.{n}": n for n in spec.varied}
    clash = sorted(field for field, name in given.items() if name in ensemble.parameters)
    if clash:
        note(f"{', '.join(clash)}: override{'s' * (len(clash) == 1)} the posterior's draws "
             "of the same parameter (recorded in manifest.json)")  # fmt: skip
    held = set(expand(spec.fixed))
    points = [
        {k: v for k, v in d.params.items() if k not in held} | dict(point)
        for point in spec.points
        for d in sample
    ]
    widened = spec.with_points(points)
    record = {"file": path, "draws": draws or 20, "overridden_by_spec": clash}
    return dataclasses.replace(widened, source=widened.source | {"posterior": record})


# ---- params ---------------------------------------------------------------------------
PARAM_FIELDS = ("name", "default", "allowed", "unit", "meaning", "source")


def parameter_rows() -> list[dict[str, Any]]:
    """Every parameter as a row: name, default (schedules as text), allowed values, ..."""
    rows = []
    for p in PARAMETERS.values():
        default = p.default.describe() if isinstance(p.default, Schedule) else p.default
        rows.append(dict(zip(PARAM_FIELDS, (p.name, default, p.allowed(), p.unit, p.meaning,
                                            p.source), strict=True)))  # fmt: skip
    return rows


def _params(args: argparse.Namespace) -> int:
    import csv

    rows = parameter_rows()
    if args.format == "json":
        text = json.dumps(rows, indent=2, ensure_ascii=False)
    elif args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=PARAM_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue().rstrip("\n")
    elif args.format == "markdown":
        from isk_defection.model.parameters import markdown_table

        text = markdown_table()
    else:
        text = _text_table(rows)
    print(text)
    return 0


def _text_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns for a terminal: name, default, allowed, unit, meaning."""
    shown = ("name", "default", "allowed", "unit", "meaning")
    cells = [[str(row[k]) for k in shown] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(shown[:-1])]
    lines = []
    for line in [list(shown), *cells]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
        )
    return "\n".join(line.rstrip() for line in lines)


# ---- reproduce ------------------------------------------------------------------------
def _reproduce(args: argparse.Namespace) -> int:
    from isk_defection.experiments.claims import EXPERIMENTS
    from isk_defection.experiments.claims.runner import reproduce

    if not args.names and not args.all:
        raise InputError("reproduce: name experiments (C1 ... C11, G1 ... G3) or use --all")
    if args.names and args.all:
        raise InputError(f"--all: give experiment names ({args.names[0]} ...) or --all, not both")
    if args.draws is not None and not args.posterior:
        raise InputError("--draws: only with --posterior FILE")
    if args.posterior:
        from isk_defection.experiments.ensemble import load_posterior

        load_posterior(args.posterior)  # a bad file ends here, in one line, before any run
    for name in args.names:
        if name not in EXPERIMENTS:
            raise InputError(
                f"NAME: must be one of {', '.join(EXPERIMENTS)} (got {name!r})"
                f"{suggest(name, list(EXPERIMENTS))}"
            )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file, not a folder")
    root = Path.cwd() / "REPORT.md"  # never into the installed package
    reproduce(
        list(EXPERIMENTS) if args.all else args.names,
        out,
        quick=args.quick,
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.local_cluster,
        resume=args.resume,
        progress=progress(args),  # None: a bar only on a terminal
        root_report=root if args.all and (not args.quick or args.posterior) else None,
        posterior=Path(args.posterior) if args.posterior else None,
        draws=args.draws,
    )
    return 0


def _add_reproduce(commands: Any, common: argparse.ArgumentParser) -> None:
    """``defection reproduce``: the published claims and classic experiments, with verdicts."""
    reproduce = commands.add_parser(
        "reproduce",
        parents=[common],
        help="reproduce the published claims C1-C11 and classics G1-G3 with verdicts",
        description="Runs named experiments through the sweep engine and writes OUT/NAME/ "
        "(tidy data, figure, report.md) and OUT/REPORT.md; a full --all run also copies "
        "REPORT.md to the current folder (the repository root when run from a clone).",
    )
    reproduce.add_argument("names", nargs="*", metavar="NAME", help="experiments, e.g. C2 G1")
    reproduce.add_argument("--all", action="store_true", help="every experiment")
    reproduce.add_argument(
        "--quick", action="store_true", help="few replicates, coarse grids (a smoke test)"
    )
    reproduce.add_argument(
        "--posterior",
        metavar="FILE",
        help="read every claim across a posterior ensemble (e.g. results/posterior/"
        "posterior.parquet) instead of at the defaults",
    )
    reproduce.add_argument(
        "--draws",
        type=integer(1, 100_000),
        help="posterior draws per claim with --posterior (default 100)",
    )
    reproduce.add_argument(
        "--out", default="results/reproduce", help="output folder (default results/reproduce)"
    )
    add_engine_options(reproduce, what="reproduction")
    reproduce.set_defaults(handler=_reproduce)


# ---- app ------------------------------------------------------------------------------
def _app(args: argparse.Namespace) -> int:
    import importlib.util

    from isk_defection.viz.assets import cache_dir, missing

    _check_port(args.host, args.port)
    if missing(cache_dir()):
        print(
            "defection: the page's browser files are missing: run python -m isk_defection.viz.assets",
            file=sys.stderr,
        )
    spec = importlib.util.find_spec("isk_defection.viz.app")
    assert spec is not None and spec.origin is not None  # part of this package
    app = spec.origin
    command = [sys.executable, "-m", "solara", "run", app, "--host", args.host]
    command += ["--port", str(args.port), "--production", "--no-open"]
    print(f"open http://{args.host}:{args.port} in a browser", flush=True)
    # The server replaces this process, so Ctrl-C and a stop signal reach it directly.
    os.execve(sys.executable, command, os.environ | {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false"})
    return 0  # not reached


def _check_port(host: str, port: int) -> None:
    """Refuse a host that does not resolve or a port another program holds, before starting."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as error:
        raise InputError(f"--host: cannot listen on {host!r} ({error})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as error:
            what = "is in use" if error.errno == 98 else f"cannot be used ({error.strerror})"
            raise InputError(
                f"--port: {port} on {host} {what}; choose another with --port"
            ) from None


def _add_app(commands: Any, common: argparse.ArgumentParser) -> None:
    """``defection app``: the browser front end (viz/app.py) on a local Solara server."""
    app = commands.add_parser(
        "app", parents=[common], help="watch a run in the browser and move the levers live"
    )
    app.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    app.add_argument(
        "--port", type=integer(1, 65535), default=8765, help="port, 1-65535 (default 8765)"
    )
    app.set_defaults(handler=_app)


# ---- sweep, sensitivity, plot ---------------------------------------------------------
def _engine(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "local_cluster": args.local_cluster,
        "resume": args.resume,
        "retry_failed": getattr(args, "retry_failed", False),
        "progress": progress(args),
    }


SPEC_KEYS = """\
spec keys (TOML; experiments/specs/example.toml is a commented example):
  [sweep]          name          label for the progress bar and manifest (default "sweep")
                   preset        parameter preset the runs start from (default "baseline")
                   steps         weeks per run (default 100)
                   replicates    seeded runs per design point (default 1)
                   seed          master seed: run i's seed is SeedSequence(seed).spawn(n)[i]
                   record_every  record every Nth week; week 0 and the last always (default 1)
                   outputs       model columns to record, a list (default: all columns)
  [fixed]          NAME = value  held in every run; levers also take schedules such as
                                 "step(0.1,0.6,20)"; population = N sets the agents
  [grid]           NAME = [v1, v2, ...]  full factorial over these lists
  [sample]         method        "lhs" (Latin hypercube) or "sobol" (scrambled Sobol')
                   n             sampled points (sensitivity: Saltelli's base sample size)
  [sample.ranges]  NAME = [low, high]    continuous range; integer parameters are rounded
Grid and sample points are crossed. `defection params` lists parameters and their ranges;
the whole spec is checked before any run starts. At most 100,000 points and 1,000,000 runs.
Exit status: 0 all runs succeeded, 1 some failed (see manifest.json), 2 bad input,
3 out of disk space or memory, 130 interrupted."""


def _report_failures(results: Any, out: str) -> int:
    failed, planned = results.attrs.get("failed", 0), results.attrs.get("runs", 0)
    if not failed:
        return 0
    print(
        f"defection: {failed} of {planned} runs failed (errors in {out}/manifest.json); "
        "run them again with --resume --retry-failed",
        file=sys.stderr,
    )
    return EXIT_FAILED_RUNS


def _sweep(args: argparse.Namespace) -> int:
    from isk_defection.experiments.sweep import load_spec, run_sweep

    spec = load_spec(args.spec)
    if args.draws is not None and not args.posterior:
        raise InputError("--draws: only with --posterior FILE")
    if args.posterior:
        spec = _posterior_points(spec, args.posterior, args.draws)
    results = run_sweep(spec, Path(args.out), argv=args.argv, **_engine(args))
    ok = results.attrs.get("ok", 0)
    say(
        args,
        f"{spec.name}: {ok} of {results.attrs.get('runs', 0)} runs succeeded, "
        f"{len(results)} rows in {args.out}/data; summary in {args.out}/summary.csv",
    )
    return _report_failures(results, args.out)


def _sensitivity(args: argparse.Namespace) -> int:
    from isk_defection.experiments.sensitivity import sensitivity
    from isk_defection.experiments.sweep import load_spec

    spec = load_spec(args.spec)
    out = Path(args.out or Path("results/sensitivity") / spec.name)
    table = sensitivity(spec, out, args.outcome, argv=args.argv, **_engine(args))
    print(table.to_string(index=False, float_format="%.3f"))
    say(args, f"wrote {out / 'sobol.csv'} and {out / 'sobol.png'}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from isk_defection.experiments.plots import plot_sweep

    path = plot_sweep(Path(args.folder), args.x, args.y, args.outcome)
    say(args, f"wrote {path}")
    return 0


def _add_sweep(commands: Any, common: argparse.ArgumentParser) -> None:
    """``defection sweep``: many seeded runs from a TOML spec, resumable, on any engine."""
    sweep = commands.add_parser(
        "sweep",
        parents=[common],
        help="run a parameter sweep from a TOML spec (see experiments/specs/example.toml)",
        description="Runs every point of the spec x replicates and writes\n"
        "  OUT/data/*.parquet  one row per run per recorded week (read_results reads it)\n"
        "  OUT/manifest.json   spec, hash, provenance, seeds, status and error of every run\n"
        "  OUT/summary.csv     per point: runs ok/failed, mean and 95% interval of outcomes",
        epilog=SPEC_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("spec", help="the sweep spec (TOML)")
    sweep.add_argument("--out", required=True, help="output folder")
    sweep.add_argument(
        "--posterior",
        metavar="FILE",
        help="run every point at posterior draws of the uncertain parameters (see --draws)",
    )
    sweep.add_argument(
        "--draws",
        type=integer(1, 100_000),
        help="with --posterior: draws per point, resampled by weight (default 20)",
    )
    add_engine_options(sweep, retry=True)
    sweep.set_defaults(handler=_sweep)


def _add_sensitivity(commands: Any, common: argparse.ArgumentParser) -> None:
    """``defection sensitivity``: Sobol' indices over the spec's ranges, via the sweep engine."""
    sens = commands.add_parser(
        "sensitivity",
        parents=[common],
        help="Sobol' indices (SALib) of outcomes over the spec's [sample.ranges]",
        description="Runs Saltelli's design (n x (2d + 2) points, n = sample.n) over\n"
        "[sample.ranges] through the sweep engine and writes Sobol' first-order and total\n"
        "indices with 95% confidence intervals to OUT/sobol.csv, and OUT/sobol.png.",
        epilog=SPEC_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sens.add_argument("spec", help="the sweep spec (TOML); no [grid]")
    sens.add_argument("--out", help="output folder (default results/sensitivity/NAME)")
    sens.add_argument(
        "--outcome",
        action="append",
        help="model column, repeatable (default isk_strength and cumulative_defections)",
    )
    add_engine_options(sens, what="sensitivity analysis", retry=True)
    sens.set_defaults(handler=_sensitivity)


def _add_plot(commands: Any, common: argparse.ArgumentParser) -> None:
    """``defection plot``: a sweep's outcome against one or two swept parameters."""
    plot = commands.add_parser(
        "plot",
        parents=[common],
        help="draw a sweep's outcome against swept parameters",
        description="One parameter: mean at the last week with its 95% interval; two: a "
        "heatmap of the mean. Writes a PNG into the sweep's folder.",
    )
    plot.add_argument("folder", help="a sweep's output folder")
    plot.add_argument("--x", help="swept parameter on the x axis (default: the first)")
    plot.add_argument("--y", help="second swept parameter: draws a heatmap")
    plot.add_argument(
        "--outcome", default="isk_strength", help="model column (default isk_strength)"
    )
    plot.set_defaults(handler=_plot)


class _Version(argparse.Action):
    """``--version``: computed only when asked (it runs git), then exit 0."""

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        from isk_defection.experiments.provenance import version_line

        print(version_line())
        raise SystemExit(0)


def _common() -> Parser:
    """Options every subcommand takes (also accepted after the subcommand's name)."""
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or informational lines"
    )
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    common = _common()
    parser = Parser(
        prog="defection",
        description="Agent-based model of factional defection from the Taliban to IS-K.",
        epilog="Exit status: 0 done, 1 runs failed or an internal error, 2 bad input (nothing "
        "written), 3 out of disk space or memory, 130 interrupted.",
        parents=[common],
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version and commit, and exit"
    )
    parser.set_defaults(quiet=False, debug=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        parents=[common],
        help="run one simulation and write its time series, summary and figure",
        epilog="presets: " + "; ".join(f"{k}: {v}" for k, v in PRESET_DESCRIPTIONS.items()),
    )
    run.add_argument(
        "--steps",
        type=integer(0, MAX_STEPS),
        default=100,
        help="weeks to simulate (default 100)",
    )
    run.add_argument(
        "--seed", type=integer(0, 2**63 - 1), default=42, help="random seed (default 42)"
    )
    run.add_argument(
        "--preset",
        type=choice("preset", list(PRESETS)),
        default="baseline",
        help=f"parameter preset: {', '.join(PRESETS)} (default baseline)",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override a parameter, repeatable; levers take {SCHEDULE_FORMS}",
    )
    run.add_argument("--out", default="results/run", help="output folder (default results/run)")
    run.add_argument(
        "--posterior",
        metavar="FILE",
        help="take the uncertain parameters from a posterior ensemble (with --draw K)",
    )
    run.add_argument(
        "--draw",
        type=integer(0, 2**63 - 1),
        help="with --posterior: the draw id to run (default: the file's first draw)",
    )
    run.set_defaults(handler=_run)
    params = commands.add_parser(
        "params",
        parents=[common],
        help="print every parameter (default, range, unit, meaning, source)",
    )
    params.add_argument(
        "--format",
        type=choice("format", ["table", "csv", "json", "markdown"]),
        default="table",
        help="table (default), csv, json or markdown",
    )
    params.set_defaults(handler=_params)
    _add_reproduce(commands, common)
    _add_app(commands, common)
    _add_sweep(commands, common)
    _add_sensitivity(commands, common)
    _add_plot(commands, common)
    from isk_defection.experiments.calibration.command import add_parser as add_calibrate
    from isk_defection.experiments.doses import add_parser as add_doses
    from isk_defection.experiments.optimize import add_parser as add_optimize

    add_optimize(commands, common)
    add_doses(commands, common)
    add_calibrate(commands, common)
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``defection`` command; returns the exit status."""
    from isk_defection.experiments.errors import RunsFailedError
    from isk_defection.experiments.extras import check_command
    from isk_defection.experiments.lifeline import forks_die_with_parent

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad option (already printed)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_BAD_INPUT
    args.argv = argv
    forks_die_with_parent()  # no worker outlives the command, even killed by SIGKILL
    try:
        check_command(args)  # a missing optional extra: one line, exit 2
        check_engine(args)  # options that exclude each other
        return args.handler(args)
    except ValueError as error:
        _print_error(args, error, "")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("defection: interrupted (finished work is kept: --resume continues)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(
            "defection: error: out of memory (use fewer agents or --workers; finished work is "
            "kept: --resume continues)",
            file=sys.stderr,
        )
        return EXIT_NO_ROOM
    except RunsFailedError as error:  # the input was fine; some runs failed
        _print_error(args, error, "")
        return EXIT_FAILED_RUNS
    except BrokenPipeError:  # e.g. `defection params | head`: the reader left, nothing wrong
        _silence_stdout()
        return 0
    except OSError as error:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)
        _print_error(args, error, "out of disk space: " if full else "")
        return EXIT_NO_ROOM if full else EXIT_FAILED_RUNS
    except Exception as error:  # noqa: BLE001 — one line, the traceback on request
        _print_error(args, error, f"internal error ({type(error).__name__}): ")
        return EXIT_FAILED_RUNS


def _print_error(args: argparse.Namespace, error: BaseException, prefix: str) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(error, file=sys.stderr)
    hint = "" if getattr(args, "debug", False) or not prefix else " (--debug shows where)"
    print(f"defection: error: {prefix}{_one_line(error)}{hint}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    """Console-script entry point: exit with main's status, even when stdout has gone."""
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C outside the command's own handler (start-up, exit)
        print("defection: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)


if __name__ == "__main__":
    entry()
