"""The public Python interface: run one simulation and get named outcomes back.

``run(parameters, steps, outcomes) -> dict`` is the one function an exploratory-modelling
tool needs: EMA Workbench, SALib, an optimiser or a notebook call it with a dict of
parameter values and read a dict of numbers. Inputs are checked like the command line's
(one-line ``ValueError`` naming the parameter), so a bad sample fails before it runs.

For EMA Workbench (the [analysis] extra, ``pip install 'isk-defection[analysis]'``),
``ema_model`` is a ``ReplicatorModel`` as its users expect: the policy levers are its
``levers`` (so ``perform_experiments(model, scenarios=..., policies=...)`` crosses
policies with scenarios), the uncertainties default to the calibrated parameters over
their prior ranges, every experiment is replicated over seeds, and the outcomes are
weekly time series. ``salib_problem`` gives SALib's problem dict over the same ranges.

    >>> from isk_defection.experiments.api import run
    >>> run({"population": 300, "womens_rights": 0.6}, steps=10, outcomes=["isk_strength"])
    {'isk_strength': ...}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from isk_defection.experiments.calibration.priors import PRIORS
from isk_defection.experiments.extras import require
from isk_defection.experiments.run import check_seed, check_steps
from isk_defection.experiments.spec import expand, parameter
from isk_defection.model import DefectionModel
from isk_defection.model.parameters import PARAMETERS, Parameter
from isk_defection.model.policy import LEVERS
from isk_defection.model.presets import PRESETS
from isk_defection.model.reporters import columns

__all__ = [
    "DEFAULT_OUTCOMES",
    "calibrated_ranges",
    "ema_levers",
    "ema_model",
    "ema_parameters",
    "outcome_names",
    "run",
    "salib_problem",
]

DEFAULT_OUTCOMES = ("isk_strength", "defection_rate", "desertion_rate", "attacks", "legitimacy")
REDUCTIONS = ("final", "mean", "max", "min", "sum", "series")
NO_PARAMETERS: Mapping[str, Any] = MappingProxyType({})


def _outcome_columns(outcomes: Iterable[str] | None) -> list[str]:
    known = columns()
    chosen = list(DEFAULT_OUTCOMES if outcomes is None else outcomes)
    if isinstance(outcomes, str):
        raise ValueError(f"outcomes: must be a list of model columns (got {outcomes!r})")
    if not chosen:
        raise ValueError("outcomes: name at least one model column")
    for name in chosen:
        if not isinstance(name, str) or name not in known:
            raise ValueError(
                f"outcomes: unknown column {name!r}; must be one that "
                "experiments.api.outcome_names() lists"
            )
    return chosen


def outcome_names() -> list[str]:
    """Every model column ``run`` can return (``model.reporters.columns()``)."""
    return [c for c in columns() if c != "date"]


def run(
    parameters: Mapping[str, Any] = NO_PARAMETERS,
    steps: int = 100,
    outcomes: Sequence[str] | None = None,
    *,
    preset: str = "baseline",
    seed: int | None = 0,
    reduce: str = "final",
) -> dict[str, Any]:
    """Run one simulation and return ``{outcome: value}``.

    ``parameters`` are any registry parameters (``defection params``) or aliases such as
    ``moderation``; levers take numbers or schedule text. ``outcomes`` are model columns
    (default ``DEFAULT_OUTCOMES``); ``reduce`` turns each weekly series into one number:
    ``final`` (the last week, default), ``mean``, ``max``, ``min``, ``sum``, or
    ``series`` for the whole NumPy array (week 0 to ``steps``). The same ``seed`` gives
    the same numbers on every machine; ``seed=None`` draws a fresh one.
    """
    if not isinstance(parameters, Mapping):
        raise ValueError(
            "parameters: must be a mapping of parameter names to values, e.g. "
            f"{{'population': 300}} (got {type(parameters).__name__} {_shown(parameters)})"
        )
    parameters = dict(parameters)
    for name in ("rng", "seed", "preset"):
        if name in parameters:
            raise ValueError(
                f"parameters: {name!r} is an argument of run(), not a parameter; give it as "
                f"run(..., {'seed' if name == 'rng' else name}=...)"
            )
    check_steps(steps, "steps")
    check_seed(seed, "seed")
    if preset not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)} (got {preset!r})")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce: must be one of {', '.join(REDUCTIONS)} (got {reduce!r})")
    chosen = _outcome_columns(outcomes)
    for name in parameters:
        if not isinstance(name, str):
            raise ValueError(f"parameters: names must be text (got {name!r})")
        parameter(name, name)  # unknown or renamed: one line naming it
    overrides = {"collect_agent_data": "off"} | expand(parameters)
    model = DefectionModel(preset=preset, rng=seed, **overrides)
    series: dict[str, list[Any]] = {name: [model.stats[name]] for name in chosen}
    for _ in range(steps):
        model.step()
        for name in chosen:
            series[name].append(model.stats[name])
    return {
        name: _reduce(np.asarray(values, dtype=float), reduce) for name, values in series.items()
    }


def _reduce(values: np.ndarray, how: str) -> Any:
    if how == "series":
        return values
    if how == "final":
        return float(values[-1])
    return float(getattr(np, f"nan{how}")(values))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def calibrated_ranges() -> dict[str, tuple[float, float]]:
    """The calibrated parameters and their prior ranges (``experiments.calibration.priors``)."""
    return {name: (prior.low, prior.high) for name, prior in PRIORS.items()}


def _numeric(name: str, field_name: str) -> Parameter:
    rules = parameter(name, field_name)
    if rules.choices or rules.kind in (bool, str):
        raise ValueError(f"{field_name}: has no numeric range ({rules.allowed()})")
    return rules


def _ranges(
    names: Iterable[str] | None, ranges: Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float]]:
    """Each name's range: ``ranges`` where given (within the registry's), else the registry's.

    With neither ``names`` nor ``ranges``: the calibrated parameters over their priors.
    """
    if isinstance(names, str):
        raise ValueError(f"names: must be a list of parameter names (got {names!r})")
    if names is None and ranges is None:
        return calibrated_ranges()
    chosen = list(names or [])
    narrowed = dict(ranges or {})
    chosen += [name for name in narrowed if name not in chosen]
    made = {}
    for name in chosen:
        rules = _numeric(name, name)
        low, high = rules.bounds()
        if name in narrowed:
            given = narrowed[name]
            if (
                not isinstance(given, (tuple, list))
                or len(given) != 2
                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in given)
                or not low <= given[0] < given[1] <= high
            ):
                raise ValueError(
                    f"ranges.{name}: must be (low, high) within {rules.allowed()} (got {given!r})"
                )
            low, high = given
        made[name] = (float(low), float(high))
    return made


def salib_problem(
    names: Iterable[str] | None = None, ranges: Mapping[str, tuple[float, float]] | None = None
) -> dict[str, Any]:
    """SALib's problem dict: ``names`` over the registry's ranges, ``ranges`` as narrowed.

    With neither: the calibrated parameters over their prior ranges.
    """
    chosen = _ranges(names, ranges)
    return {
        "num_vars": len(chosen),
        "names": list(chosen),
        "bounds": [list(bounds) for bounds in chosen.values()],
    }


def ema_parameters(
    names: Iterable[str] | None = None, ranges: Mapping[str, tuple[float, float]] | None = None
) -> list[Any]:
    """EMA Workbench uncertainties: by default the calibrated parameters over their priors.

    ``names`` take the registry's ranges and ``ranges`` narrow them. Integers become
    ``IntegerParameter``, numbers ``RealParameter``; each carries its default (clipped to
    the range), so EMA's reference scenario is the model's default run. Levers are not
    uncertainties here: they are the model's ``levers`` (``ema_levers``).
    """
    require("analysis", "experiments.api.ema_parameters")
    import ema_workbench as ema  # the [analysis] extra

    made = []
    for name, (low, high) in _ranges(names, ranges).items():
        rules = PARAMETERS[name] if name in PARAMETERS else _numeric(name, name)
        if name in LEVERS:
            raise ValueError(f"{name}: a policy lever; give it to ema_model(levers=...)")
        default = min(max(rules.default, low), high)
        if rules.kind is int:
            made.append(ema.IntegerParameter(name, int(low), int(high), default=int(default)))
        else:
            made.append(ema.RealParameter(name, low, high, default=float(default)))
    return made


def ema_levers(
    names: Iterable[str] = LEVERS, ranges: Mapping[str, tuple[float, float]] | None = None
) -> list[Any]:
    """EMA Workbench levers: the policy levers, each constant over a run, in [0, 1]."""
    require("analysis", "experiments.api.ema_levers")
    import ema_workbench as ema  # the [analysis] extra

    made = []
    for name, (low, high) in _ranges(list(names), ranges).items():
        if name not in LEVERS:
            raise ValueError(f"levers: {name!r} is not a policy lever (one of {', '.join(LEVERS)})")
        made.append(ema.RealParameter(name, low, high, default=low))
    return made


def ema_model(
    uncertainties: Iterable[str] | Mapping[str, tuple[float, float]] | None = None,
    levers: Iterable[str] | Mapping[str, tuple[float, float]] = LEVERS,
    outcomes: Sequence[str] = ("isk_strength", "defection_rate"),
    *,
    steps: int = 104,
    replications: int = 5,
    seed: int = 0,
    preset: str = "baseline",
    constants: Mapping[str, Any] | None = None,
    name: str = "defection",
) -> Any:
    """An EMA Workbench ``ReplicatorModel`` of this simulation, for ``perform_experiments``.

    ``uncertainties`` names parameters (their registry ranges) or maps them to
    ``(low, high)``; by default the calibrated parameters over their prior ranges.
    ``levers`` are the policy levers, constant over a run (``policies=`` samples them).
    Each experiment runs ``replications`` times, with seeds spawned from ``seed`` (the
    same seeds in every experiment: common random numbers); ``outcomes`` are weekly
    time series, so each comes back as an array (experiments, replications, steps + 1).
    ``constants`` are held (e.g. ``{"population": 500}``).
    """
    require("analysis", "experiments.api.ema_model")
    import ema_workbench as ema  # the [analysis] extra

    def split(given: Any) -> tuple[list[str] | None, Mapping[str, tuple[float, float]] | None]:
        if given is None:
            return None, None
        if isinstance(given, Mapping):
            return [], given
        return list(given), None

    made = ema_parameters(*split(uncertainties))
    lever_names, lever_ranges = split(levers)
    policy = ema_levers(lever_names or [], lever_ranges)
    _outcome_columns(outcomes)
    check_steps(steps, "steps")
    check_seed(seed, "seed")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications: must be a whole number >= 1 (got {replications!r})")
    if preset not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)} (got {preset!r})")
    fixed = dict(constants or {})
    for key in fixed:
        parameter(key, f"constants.{key}")
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(replications)]
    model = ema.ReplicatorModel(name, function=_EMAFunction(list(outcomes), steps, preset))
    model.uncertainties = made
    model.levers = policy
    model.replications = [{"seed": s} for s in seeds]
    model.outcomes = [ema.TimeSeriesOutcome(o) for o in outcomes]
    model.constants = [ema.Constant(k, v) for k, v in fixed.items()]
    return model


class _EMAFunction:
    """The callable EMA Workbench calls with one experiment's values and seed as keywords.

    A class rather than a closure so that EMA's multiprocessing evaluator can pickle it.
    """

    def __init__(self, outcomes: list[str], steps: int, preset: str) -> None:
        self.outcomes, self.steps, self.preset = outcomes, steps, preset

    def __call__(self, seed: int, **values: Any) -> dict[str, Any]:
        plain = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}
        return run(
            plain, self.steps, self.outcomes, preset=self.preset, seed=int(seed), reduce="series"
        )
