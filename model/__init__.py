"""The factional-defection model: ``from model import DefectionModel``."""

from model.model import DefectionModel
from model.parameters import PARAMETERS
from model.policy import LEVERS, Schedule
from model.presets import PRESETS

__all__ = ["LEVERS", "PARAMETERS", "PRESETS", "DefectionModel", "Schedule"]
