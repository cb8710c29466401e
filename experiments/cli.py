"""The ``defection`` command line: run, params, app, sweep, sensitivity, plot, reproduce.

Bad input ends with one line naming the field and what is allowed, exit status 2,
and no output written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from model.parameters import PARAMETERS
from model.policy import parse_schedule
from model.presets import PRESET_DESCRIPTIONS

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_assignment(text: str) -> tuple[str, Any]:
    """Read ``NAME=VALUE`` into a typed parameter value (validated later by the model)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise ValueError(f"--set: expected NAME=VALUE (got {text!r})")
    if name not in PARAMETERS:
        raise ValueError(f"unknown parameter {name!r} (see docs/ODD.md, Parameters)")
    parameter = PARAMETERS[name]
    kind = parameter.kind
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{name}: must be {parameter.allowed()} (got {raw!r})")
        return name, raw.lower() in _TRUE
    if kind is str:
        return name, raw
    if kind.__name__ == "Schedule":
        return name, parse_schedule(name, raw)
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{name}: must be {parameter.allowed()} (got {raw!r})") from None
    return name, int(number) if kind is int and number.is_integer() else number


def _run(args: argparse.Namespace) -> None:
    from experiments.run import format_summary, simulate, summary, write_outputs

    overrides = dict(parse_assignment(text) for text in args.set)
    model = simulate(args.steps, preset=args.preset, seed=args.seed, **overrides)
    print(format_summary(summary(model), model))
    for path in write_outputs(model, args.steps, Path(args.out)):
        print(f"wrote {path}")


def _params(args: argparse.Namespace) -> None:
    from model.parameters import markdown_table

    print(markdown_table())


def _reproduce(args: argparse.Namespace) -> None:
    from experiments.claims import EXPERIMENTS
    from experiments.claims.runner import reproduce

    if not args.names and not args.all:
        raise ValueError("reproduce: name experiments (C1 ... C11, G1 ... G3) or use --all")
    root = Path(__file__).resolve().parents[1] / "REPORT.md"
    reproduce(
        list(EXPERIMENTS) if args.all else args.names,
        Path(args.out),
        quick=args.quick,
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.local_cluster,
        resume=args.resume,
        root_report=root if args.all and not args.quick else None,
    )


def _add_reproduce(commands: Any) -> None:
    """``defection reproduce``: the published claims and classic experiments, with verdicts."""
    reproduce = commands.add_parser(
        "reproduce",
        help="reproduce the published claims C1-C11 and classics G1-G3 with verdicts",
        description="Runs named experiments through the sweep engine and writes OUT/NAME/ "
        "(tidy data, figure, report.md) and OUT/REPORT.md; a full --all run also copies "
        "REPORT.md to the repository root.",
    )
    reproduce.add_argument("names", nargs="*", metavar="NAME", help="experiments, e.g. C2 G1")
    reproduce.add_argument("--all", action="store_true", help="every experiment")
    reproduce.add_argument(
        "--quick", action="store_true", help="few replicates, 500 agents (a smoke test)"
    )
    reproduce.add_argument(
        "--out", default="results/reproduce", help="output folder (default results/reproduce)"
    )
    _add_engine_options(reproduce)
    reproduce.set_defaults(handler=_reproduce)


def _app(args: argparse.Namespace) -> None:
    import importlib.util
    import os

    from viz.assets import cache_dir, missing

    if not 0 < args.port < 65536:
        raise ValueError(f"--port: must be in 1-65535 (got {args.port})")
    if missing(cache_dir()):
        print(
            "defection: the page's browser files are missing: run python -m viz.assets",
            file=sys.stderr,
        )
    app = importlib.util.find_spec("viz.app").origin
    command = [sys.executable, "-m", "solara", "run", app, "--host", args.host]
    command += ["--port", str(args.port), "--production", "--no-open"]
    print(f"open http://{args.host}:{args.port} in a browser", flush=True)
    # The server replaces this process, so Ctrl-C and a stop signal reach it directly.
    os.execve(sys.executable, command, os.environ | {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false"})


def _add_app(commands: Any) -> None:
    """``defection app``: the browser front end (viz/app.py) on a local Solara server."""
    app = commands.add_parser("app", help="watch a run in the browser and move the levers live")
    app.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    app.set_defaults(handler=_app)


def _engine(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "local_cluster": args.local_cluster,
        "resume": args.resume,
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
the whole spec is checked before any run starts."""


def _sweep(args: argparse.Namespace) -> None:
    from experiments.sweep import load_spec, run_sweep

    spec = load_spec(args.spec)
    results = run_sweep(spec, Path(args.out), **_engine(args))
    print(
        f"{spec.name}: {results['run'].nunique() if len(results) else 0} runs with data, "
        f"{len(results)} rows in {args.out}/data; summary in {args.out}/summary.csv"
    )


def _sensitivity(args: argparse.Namespace) -> None:
    from experiments.sensitivity import sensitivity
    from experiments.sweep import load_spec

    spec = load_spec(args.spec)
    out = Path(args.out or Path("results/sensitivity") / spec.name)
    table = sensitivity(spec, out, args.outcome, **_engine(args))
    print(table.to_string(index=False, float_format="%.3f"))
    print(f"wrote {out / 'sobol.csv'} and {out / 'sobol.png'}")


def _plot(args: argparse.Namespace) -> None:
    from experiments.plots import plot_sweep

    print(f"wrote {plot_sweep(Path(args.folder), args.x, args.y, args.outcome)}")


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes, local or --local-cluster (default: all cores)",
    )
    parser.add_argument("--scheduler", help="run on an existing Dask cluster: tcp://HOST:PORT")
    parser.add_argument("--local-cluster", action="store_true", help="start a Dask LocalCluster")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted sweep in the same --out"
    )


def _add_sweep(commands: Any) -> None:
    """``defection sweep``: many seeded runs from a TOML spec, resumable, on any engine."""
    sweep = commands.add_parser(
        "sweep",
        help="run a parameter sweep from a TOML spec (see experiments/specs/example.toml)",
        description="Runs every point of the spec x replicates and writes\n"
        "  OUT/data/*.parquet  one row per run per recorded week (read_results reads it)\n"
        "  OUT/manifest.json   spec, hash, versions, seeds, status and error of every run\n"
        "  OUT/summary.csv     per point: mean and 95% interval of the key outcomes",
        epilog=SPEC_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("spec", help="the sweep spec (TOML)")
    sweep.add_argument("--out", required=True, help="output folder")
    _add_engine_options(sweep)
    sweep.set_defaults(handler=_sweep)


def _add_sensitivity(commands: Any) -> None:
    """``defection sensitivity``: Sobol' indices over the spec's ranges, via the sweep engine."""
    sens = commands.add_parser(
        "sensitivity",
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
    _add_engine_options(sens)
    sens.set_defaults(handler=_sensitivity)


def _add_plot(commands: Any) -> None:
    """``defection plot``: a sweep's outcome against one or two swept parameters."""
    plot = commands.add_parser(
        "plot",
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="defection",
        description="Agent-based model of factional defection from the Taliban to IS-K.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run one simulation and write its time series, summary and figure",
        epilog="presets: " + "; ".join(f"{k}: {v}" for k, v in PRESET_DESCRIPTIONS.items()),
    )
    run.add_argument("--steps", type=int, default=100, help="weeks to simulate (default 100)")
    run.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    run.add_argument("--preset", default="baseline", help="parameter preset (default baseline)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter, repeatable; levers take 0.4, step(0.1,0.6,20), "
        "ramp(0.1,0.6,10,30), [v0,v1,...] or piecewise(w:v,...)",
    )
    run.add_argument("--out", default="results/run", help="output folder (default results/run)")
    run.set_defaults(handler=_run)
    params = commands.add_parser(
        "params", help="print every parameter (default, range, unit, meaning, source)"
    )
    params.set_defaults(handler=_params)
    _add_reproduce(commands)
    _add_app(commands)
    _add_sweep(commands)
    _add_sensitivity(commands)
    _add_plot(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``defection`` command."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ValueError as error:
        print(f"defection: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("defection: interrupted (a sweep keeps its finished runs: --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
