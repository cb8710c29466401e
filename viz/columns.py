"""What the page reads from the model, looked up by name so it follows the model as it changes.

The model's levers, allegiances and weekly columns are read from the model itself
(``model.policy.schedules``, ``agents.fighters.ALLEGIANCES``, the DataCollector's
columns), never listed here: a new lever gets a slider and a strip, a renamed column is
found under either name (``lever_<name>`` or ``<name>``), and a column the model does not
have is simply not drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from isk_defection.model import DefectionModel


def levers(model: DefectionModel) -> tuple[str, ...]:
    """The model's levers, in its own order."""
    return tuple(model.policy.schedules)


def allegiances() -> tuple[str, ...]:
    """Allegiance names in code order (code i is ``allegiances()[i]``)."""
    from isk_defection.agents.fighters import ALLEGIANCES

    return tuple(ALLEGIANCES)


def allegiance_code(name: str) -> int | None:
    """The code of allegiance ``name``, or None if the model has no such allegiance."""
    names = allegiances()
    return names.index(name) if name in names else None


def history(model: DefectionModel) -> Mapping[str, Sequence[Any]]:
    """The model's weekly records, column -> list (one entry per recorded week)."""
    return model.datacollector.model_vars


def lever_column(name: str, columns: Sequence[str] | Mapping[str, Any]) -> str | None:
    """The column holding lever ``name``'s weekly value: ``lever_<name>``, else ``<name>``."""
    for key in (f"lever_{name}", name):
        if key in columns:
            return key
    return None


def people_per_agent(model: DefectionModel) -> float | None:
    """People one agent stands for, when all agents stand for the same number (else None)."""
    scale = getattr(model, "scale", None)
    return float(scale) if isinstance(scale, (int, float, np.number)) else None


def stat(stats: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` present in ``stats``."""
    for key in keys:
        if key in stats:
            return stats[key]
    return default


def number(value: Any) -> float | None:
    """``value`` as a finite float, else None (NaN and missing values become gaps in JSON)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def is_adaptive(model: DefectionModel) -> bool:
    """Whether the adaptive leadership rule is in force (``model.adaptive``, else the parameter)."""
    flag = getattr(model, "adaptive", None)
    if flag is None:
        flag = model.p.adaptive_leadership
    return bool(flag)


def adaptive_levers() -> tuple[str, ...]:
    """The levers the adaptive rule sets."""
    from isk_defection.model.leadership import ADAPTIVE_LEVERS

    return tuple(ADAPTIVE_LEVERS)
