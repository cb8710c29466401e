"""The spread over seeds: N runs of the same scenario and moves beside the watched one.

"What range could this policy produce?" One run is one draw of the model's chance; the
same settings and moves with other seeds show how far the outcome could be from the
one on screen. The members are built off the interactive thread (a replay to the
watched run's week, cancelled if the page goes), then step in lockstep with the watched
run and take every move the user makes; the charts draw their 5-95 % and 25-75 %
ranges and their median as a fan behind the watched run's lines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from isk_defection.model import DefectionModel
from isk_defection.viz.frames import Panel, history_rows
from isk_defection.viz.journal import Action, Settings, apply

MAX_MEMBERS = 20  # seeds run beside one watched run, at most
FAN_PANELS = ("strength", "weekly", "defected")  # the charts that draw the fan
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def member_settings(settings: Settings, members: int, posterior: str = "") -> list[Settings]:
    """The settings of each member: the watched run's, with the next ``members`` seeds.

    With a ``posterior`` file each member also takes one draw of the uncertain parameters
    (resampled by weight, seeded by the run's seed); parameters the user set under
    *Advanced parameters* keep the user's values.
    """
    if not 2 <= members <= MAX_MEMBERS:
        raise ValueError(f"seeds: must be a whole number in 2-{MAX_MEMBERS} (got {members})")
    chosen = [replace(settings, seed=settings.seed + k) for k in range(1, members + 1)]
    if not posterior:
        return chosen
    from isk_defection.experiments.ensemble import draw, load_ensemble

    mine = {name for name, _ in settings.overrides}
    draws = draw(load_ensemble(posterior), members, np.random.default_rng(settings.seed))
    return [
        replace(
            member,
            overrides=member.overrides
            + tuple(
                (name, _text(value)) for name, value in sorted(d.params.items()) if name not in mine
            ),
        )  # fmt: skip
        for member, d in zip(chosen, draws, strict=True)
    ]


def _text(value: object) -> str:
    """A parameter value as the text ``--set`` reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass
class Ensemble:
    """Members stepping in lockstep with the watched run; what of their fan was sent."""

    label: str
    models: list[DefectionModel]
    sent_rows: int = 0

    def step(self, due: list[Action]) -> None:
        """One week for every member, with the moves the watched run makes this week."""
        for model in self.models:
            for action in due:
                apply(model, action)
            model.step()

    def rows(self, panels: list[Panel], start: int) -> dict:
        """The fan from history row ``start`` on: per series, per week, the quantiles."""
        shown = [p for p in panels if p.id in FAN_PANELS]
        each = [history_rows(model, shown, start) for model in self.models]
        values: dict[str, list[list[float] | None]] = {}
        for key in each[0]["values"]:
            if key.startswith("lever:"):
                continue
            table = np.array(
                [[np.nan if v is None else v for v in member["values"][key]] for member in each],
                dtype=float,
            )
            if table.size == 0:
                values[key] = []
                continue
            with np.errstate(all="ignore"):
                q = np.nanquantile(table, QUANTILES, axis=0)
            values[key] = [
                None if np.isnan(column).any() else np.round(column, 6).tolist() for column in q.T
            ]
        return {"start": start, "weeks": each[0]["weeks"], "values": values}
