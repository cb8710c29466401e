"""What a browser session needs to build its own model, and the checks on what users type.

`solara run` imports the app module once per server process, so a module-level model
(Mesa's usual ``app.py``) is shared by every visitor. The page instead builds a model per
session from :class:`Settings`; nothing here is module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass

from model import DefectionModel

POPULATION_MIN, POPULATION_MAX, POPULATION_STEP = 200, 10_000, 100


@dataclass(frozen=True)
class Settings:
    """The choices that define a run: they take effect when the user presses Reset."""

    preset: str = "baseline"
    population: int = 2_000
    seed: int = 42


def parse_seed(text: str) -> int:
    """The seed typed in the page as an integer (Mesa 3.5.1 would pass the raw string, #3516)."""
    try:
        seed = int(text.strip())
    except ValueError:
        seed = -1
    if seed < 0:
        raise ValueError(f"seed: must be a whole number, 0 or more, such as 42 (got {text!r})")
    return seed


def build_model(settings: Settings) -> DefectionModel:
    """A model for the page; raises ValueError (one line) on a bad setting.

    Agent-level history is off: the page never reads it, and it would grow by one row
    per agent every week of a long-running session.
    """
    return DefectionModel(
        preset=settings.preset,
        population=settings.population,
        rng=settings.seed,
        collect_agent_data=False,
    )
