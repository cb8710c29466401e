"""The factional-defection model: ``from model import DefectionModel``."""

from isk_defection.model.model import DefectionModel
from isk_defection.model.parameters import PARAMETERS
from isk_defection.model.policy import LEVERS, Schedule
from isk_defection.model.presets import PRESETS

__all__ = ["LEVERS", "PARAMETERS", "PRESETS", "DefectionModel", "Schedule"]
