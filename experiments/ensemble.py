"""Parameter ensembles: the posterior draws a calibration writes and robust analyses read.

An ensemble is what we believe about the model's uncertain parameters, as weighted
draws. The calibration (``defection calibrate``) writes one; ``defection optimize``
(and later ``run``, ``sweep`` and ``reproduce``) read it with ``--posterior FILE``.

File format (the interface between the two):

``NAME.parquet``
    one row per draw: ``draw`` (integer, unique), ``weight`` (float >= 0, summing to 1)
    and one column per model parameter that the draw sets (names as in
    ``defection params``; levers are decisions, not uncertainties, and are refused).
    Parameters without a column keep their defaults.
``NAME.json`` (the sidecar, same folder and stem)
    ``model_version`` (text: the package version, and commit if known, the model was
    fitted with), ``model_source`` (optional: :func:`model_source` when it was written;
    commands that read the file warn when the model has changed since), ``fitted_to`` (the patterns or data fitted, a list of names or a text),
    ``created`` (ISO 8601 date-time). Other keys (method, simulations, acceptance rate)
    are kept as they are.

Without a posterior, :func:`defaults_ensemble` stands in: one draw of the default
parameters with weight 1. Every analysis that uses it must say so, because nothing
it reports is robust to what we do not know about the parameters: it is labelled
:data:`DEFAULTS_LABEL`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.policy import LEVERS

__all__ = [
    "DEFAULTS_LABEL",
    "Draw",
    "Ensemble",
    "defaults_ensemble",
    "draw",
    "load_ensemble",
    "load_posterior",
    "model_source",
    "stale_warning",
    "write_ensemble",
]

DEFAULTS_LABEL = "not robust across the posterior: no posterior given (default parameters only)"
SIDECAR_KEYS = ("model_version", "fitted_to", "created")
RESERVED = ("draw", "weight")
WEIGHT_TOLERANCE = 1e-6
# levers under any name the model accepts (today's and the model-v2 names); "moderation"
# stays an input alias for women's rights and inclusion
_LEVER_NAMES = frozenset(LEVERS) | {"moderation", "womens_rights", "inclusion"}


@dataclass(frozen=True)
class Draw:
    """One parameter set drawn from an ensemble: its row id and the parameters it sets."""

    draw: int
    params: dict[str, Any]


@dataclass(frozen=True)
class Ensemble:
    """Weighted parameter draws and where they came from.

    ``table`` has the columns ``draw``, ``weight`` and one per parameter; ``meta`` holds the
    sidecar; ``source`` is the file (``None`` for the defaults-only stand-in).
    """

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    digest: str = "defaults"

    @property
    def is_defaults(self) -> bool:
        """True for the defaults-only stand-in used when no posterior is given."""
        return self.source is None

    @property
    def parameters(self) -> list[str]:
        """The parameters the draws set."""
        return [c for c in self.table.columns if c not in RESERVED]

    @property
    def label(self) -> str:
        """What the ensemble is, in words, for every output and report that uses it."""
        if self.source is None:  # the defaults-only stand-in
            return DEFAULTS_LABEL
        fitted = self.meta.get("fitted_to")
        fitted = ", ".join(map(str, fitted)) if isinstance(fitted, list) else str(fitted)
        return (
            f"posterior {self.source.name} ({len(self.table)} draws of "
            f"{len(self.parameters)} parameters; model {self.meta.get('model_version')}; "
            f"fitted to {fitted}; created {self.meta.get('created')})"
        )

    def varying(self) -> list[str]:
        """The parameters that take more than one value across the draws."""
        return [p for p in self.parameters if self.table[p].nunique(dropna=False) > 1]


def model_source() -> str:
    """A fingerprint of the model's source (``model/`` and ``agents/``): 16 hex digits.

    A posterior is only a posterior of the model it was fitted to; any change to a
    mechanism, default or reporter changes this, where the package version would not.
    """
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for file in sorted([*root.glob("model/**/*.py"), *root.glob("agents/**/*.py")]):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def stale_warning(ensemble: Ensemble) -> str | None:
    """A line saying the posterior was fitted to another model's source, or None."""
    fitted = ensemble.meta.get("model_source")
    if ensemble.is_defaults or fitted is None or fitted == model_source():
        return None
    return (
        f"warning: posterior {ensemble.source}: fitted to another version of the model "
        f"(source {fitted}, now {model_source()}); its draws may no longer fit the patterns "
        "- refit with defection calibrate"
    )


def load_posterior(path: Path | str) -> Ensemble:
    """:func:`load_ensemble` for commands: also says on stderr if the model changed since."""
    ensemble = load_ensemble(path)
    if warning := stale_warning(ensemble):
        print(warning, file=sys.stderr)
    return ensemble


def defaults_ensemble() -> Ensemble:
    """The stand-in without a posterior: one draw of the defaults, weight 1 (see module doc)."""
    table = pd.DataFrame({"draw": [0], "weight": [1.0]})
    return Ensemble(table, {"model_version": "defaults", "fitted_to": "nothing"}, None)


def sidecar_path(path: Path | str) -> Path:
    """The sidecar JSON of an ensemble file: same folder and stem, suffix ``.json``."""
    return Path(path).with_suffix(".json")


def load_ensemble(path: Path | str) -> Ensemble:
    """Read and validate an ensemble; a bad file raises a one-line ValueError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"posterior: no such file {str(path)!r}")
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 — any reader failure means "not a Parquet file"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"posterior: {path} is not a readable Parquet file ({reason})") from None
    table = _validate_table(table, f"posterior {path.name}")
    meta = _read_sidecar(sidecar_path(path))
    digest = hashlib.sha256(path.read_bytes() + json.dumps(meta).encode()).hexdigest()[:16]
    return Ensemble(table, meta, path, digest)


def _validate_table(table: pd.DataFrame, where: str) -> pd.DataFrame:
    for column in RESERVED:
        if column not in table.columns:
            raise ValueError(f"{where}: missing column {column!r}")
    if table.empty:
        raise ValueError(f"{where}: draw: the file has no rows")
    draws = table["draw"]
    integral = pd.api.types.is_integer_dtype(draws) or (
        pd.api.types.is_float_dtype(draws) and np.all(np.isfinite(draws) & (draws % 1 == 0))
    )
    if not integral:
        raise ValueError(f"{where}: draw: must be integers (got dtype {draws.dtype})")
    if not draws.is_unique:
        raise ValueError(f"{where}: draw: ids must be unique")
    weight = table["weight"]
    if not pd.api.types.is_numeric_dtype(weight) or pd.api.types.is_bool_dtype(weight):
        raise ValueError(f"{where}: weight: must be numbers (got dtype {weight.dtype})")
    values = weight.to_numpy(float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{where}: weight: must be finite and >= 0")
    if not math.isclose(values.sum(), 1.0, abs_tol=WEIGHT_TOLERANCE):
        raise ValueError(f"{where}: weight: must sum to 1 (sums to {values.sum():.6g})")
    checked = {"draw": draws.astype(np.int64).to_numpy(), "weight": values}
    for name in table.columns:
        if name in RESERVED:
            continue
        if name in _LEVER_NAMES:
            raise ValueError(
                f"{where}: {name}: is a lever (a decision), not an uncertain parameter"
            )
        if name not in PARAMETERS:
            raise ValueError(f"{where}: {name}: unknown parameter (see defection params)")
        checked[name] = [_value(PARAMETERS[name], v, where) for v in table[name].tolist()]
    return pd.DataFrame(checked)


def _value(parameter: Any, value: Any, where: str) -> Any:
    if parameter.kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return parameter.validate(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _read_sidecar(path: Path) -> dict[str, Any]:
    where = f"posterior sidecar {path.name}"
    if not path.is_file():
        raise ValueError(f"{where}: missing (the ensemble's JSON sidecar, {path})")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: must be a JSON object")
    for key in SIDECAR_KEYS:
        if key not in meta or meta[key] in (None, "", []):
            raise ValueError(f"{where}: {key}: missing")
    if not isinstance(meta["model_version"], str):
        raise ValueError(f"{where}: model_version: must be text")
    fitted = meta["fitted_to"]
    if not (isinstance(fitted, str) or (isinstance(fitted, list) and all(map(bool, fitted)))):
        raise ValueError(f"{where}: fitted_to: must be text or a list of pattern names")
    try:
        dt.datetime.fromisoformat(str(meta["created"]))
    except ValueError:
        raise ValueError(
            f"{where}: created: must be an ISO 8601 date-time (got {meta['created']!r})"
        ) from None
    return meta


def write_ensemble(
    table: pd.DataFrame,
    path: Path | str,
    *,
    model_version: str,
    fitted_to: str | list[str],
    created: str | None = None,
    **extra: Any,
) -> Path:
    """Validate and write an ensemble and its sidecar (each by atomic rename); return the path.

    This is what the calibration calls; ``extra`` keys (method, simulations, acceptance
    rate) go into the sidecar as they are.
    """
    path = Path(path)
    table = _validate_table(table.reset_index(drop=True), f"posterior {path.name}")
    created = created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta = {
        "model_version": model_version,
        "model_source": model_source(),
        "fitted_to": fitted_to,
        "created": created,
    } | extra
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = sidecar_path(path)
    staging = sidecar.with_name(f".{sidecar.name}.tmp")
    staging.write_text(json.dumps(meta, indent=2, default=str))
    _read_sidecar(staging)  # same rules as the reader
    os.replace(staging, sidecar)
    staging = path.with_name(f".{path.name}.tmp")
    table.to_parquet(staging, index=False)
    os.replace(staging, path)
    return path


def draw(ensemble: Ensemble, k: int, rng: np.random.Generator) -> list[Draw]:
    """``k`` draws resampled with replacement by weight (seeded by ``rng``), in draw order.

    Weighted resampling turns an importance-weighted posterior (ABC-SMC) into equally
    weighted draws, so every robustness statistic downstream is a plain average over them.
    The defaults-only stand-in gives ``k`` copies of the defaults.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"draws: must be a positive integer (got {k!r})")
    table = ensemble.table
    rows = rng.choice(len(table), size=k, replace=True, p=table["weight"].to_numpy(float))
    names = ensemble.parameters
    return [
        Draw(int(table["draw"].iat[i]), {n: _plain(table[n].iat[i]) for n in names}) for i in rows
    ]


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so parameter values print and hash the same everywhere."""
    return value.item() if isinstance(value, np.generic) else value
