"""The public Python interface: run one simulation and get named outcomes back.

``run(parameters, steps, outcomes) -> dict`` is the one function an exploratory-modelling
tool needs: EMA Workbench, SALib, an optimiser or a notebook call it with a dict of
parameter values and read a dict of numbers. Inputs are checked like the command line's
(one-line ``ValueError`` naming the parameter), so a bad sample fails before it runs.

``ema_parameters`` and ``ema_model`` turn the parameter registry into EMA Workbench
uncertainties and a ready ``Model``; ``salib_problem`` gives SALib's problem dict. EMA
Workbench is an optional extra (``pip install -e ".[ema]"``); nothing here imports it
until asked.

    >>> from experiments.api import run
    >>> run({"population": 300, "womens_rights": 0.6}, steps=10, outcomes=["isk_strength"])
    {'isk_strength': ...}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from isk_defection.experiments.run import check_seed, check_steps
from isk_defection.experiments.spec import expand, parameter
from isk_defection.model import DefectionModel
from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.policy import LEVERS, Schedule
from isk_defection.model.presets import PRESETS
from isk_defection.model.reporters import columns

__all__ = ["DEFAULT_OUTCOMES", "ema_model", "ema_parameters", "run", "salib_problem"]

DEFAULT_OUTCOMES = ("isk_strength", "defection_rate", "desertion_rate", "attacks", "legitimacy")
REDUCTIONS = ("final", "mean", "max", "min", "sum", "series")


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
    parameters: Mapping[str, Any] | None = None,
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
    parameters = dict(parameters or {})
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
    off = "off" if "off" in getattr(PARAMETERS["collect_agent_data"], "choices", ()) else False
    overrides = {"collect_agent_data": off} | expand(parameters)
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


def _registry_names(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return [
            name
            for name, p in PARAMETERS.items()
            if p.low is not None and p.high is not None and p.low < p.high
        ]
    chosen = list(names)
    for name in chosen:
        parameter(name, name)
    return chosen


def salib_problem(names: Iterable[str]) -> dict[str, Any]:
    """SALib's problem dict for ``names`` with each parameter's registry range as bounds."""
    chosen = _registry_names(names)
    bounds = []
    for name in chosen:
        rules = parameter(name, name)
        if rules.low is None or rules.high is None:
            raise ValueError(f"{name}: has no numeric range ({rules.allowed()})")
        bounds.append([float(rules.low), float(rules.high)])
    return {"num_vars": len(chosen), "names": chosen, "bounds": bounds}


def ema_parameters(
    names: Iterable[str] | None = None, ranges: Mapping[str, tuple[float, float]] | None = None
) -> list[Any]:
    """EMA Workbench parameters for ``names`` (default: every numeric parameter).

    Integers become ``IntegerParameter``, numbers and levers (constant over the run)
    ``RealParameter`` over the registry's range unless ``ranges`` narrows it, switches
    ``BooleanParameter``, named choices ``CategoricalParameter``. Each carries its
    default, so EMA's reference scenario is the model's default run.
    """
    import ema_workbench as ema

    ranges = dict(ranges or {})
    chosen = _registry_names(names if names is not None else None)
    for name in ranges:
        if name not in chosen:
            chosen.append(name)
    made = []
    for name in chosen:
        rules = parameter(name, name)
        default = rules.default.values[0] if isinstance(rules.default, Schedule) else rules.default
        if rules.choices:
            made.append(ema.CategoricalParameter(name, list(rules.choices), default=default))
        elif rules.kind is bool:
            made.append(ema.BooleanParameter(name, default=bool(default)))
        elif rules.kind is str:
            raise ValueError(f"{name}: text parameters cannot be explored ({rules.allowed()})")
        else:
            low, high = ranges.get(name, (rules.low, rules.high))
            if not (rules.low <= low < high <= rules.high):
                raise ValueError(
                    f"ranges.{name}: must be (low, high) within {rules.allowed()} "
                    f"(got {(low, high)!r})"
                )
            default = min(max(default, low), high)
            if rules.kind is int:
                made.append(ema.IntegerParameter(name, int(low), int(high), default=int(default)))
            else:
                made.append(ema.RealParameter(name, float(low), float(high), default=default))
    return made


def ema_model(
    uncertainties: Iterable[str] | Mapping[str, tuple[float, float]],
    outcomes: Sequence[str] = ("isk_strength", "defection_rate"),
    *,
    steps: int = 100,
    preset: str = "baseline",
    seed: int = 0,
    constants: Mapping[str, Any] | None = None,
    name: str = "defection",
) -> Any:
    """An EMA Workbench ``Model`` of this simulation, ready for ``perform_experiments``.

    ``uncertainties`` names parameters (their registry ranges) or maps them to
    ``(low, high)``; ``outcomes`` become ``ScalarOutcome``s of the final week;
    ``constants`` are held (e.g. ``{"population": 500}``). Every experiment runs with the
    same ``seed``, so differences between experiments come from the parameters alone.
    """
    import ema_workbench as ema

    if isinstance(uncertainties, Mapping):
        made = ema_parameters(list(uncertainties), ranges=uncertainties)
    else:
        made = ema_parameters(list(uncertainties))
    _outcome_columns(outcomes)
    check_steps(steps, "steps")
    fixed = dict(constants or {})
    for key in fixed:
        parameter(key, f"constants.{key}")
    model = ema.Model(name, function=_EMAFunction(list(outcomes), steps, preset, seed))
    model.uncertainties = made
    model.outcomes = [ema.ScalarOutcome(o) for o in outcomes]
    model.constants = [ema.Constant(k, v) for k, v in fixed.items()]
    return model


class _EMAFunction:
    """The callable EMA Workbench calls with one experiment's values as keywords.

    A class rather than a closure so that EMA's multiprocessing evaluator can pickle it.
    """

    def __init__(self, outcomes: list[str], steps: int, preset: str, seed: int) -> None:
        self.outcomes, self.steps, self.preset, self.seed = outcomes, steps, preset, seed

    def __call__(self, **values: Any) -> dict[str, float]:
        plain = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}
        for name in LEVERS:  # EMA gives levers as numbers: constant schedules
            if name in plain:
                plain[name] = float(plain[name])
        return run(plain, self.steps, self.outcomes, preset=self.preset, seed=self.seed)
