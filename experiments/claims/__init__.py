"""Named reproduction experiments: the published claims C1-C11 and classics G1-G3.

``EXPERIMENTS`` maps each name to its declaration; ``experiments.claims.runner`` runs
them and writes ``results/reproduce/NAME/`` and the summary ``REPORT.md``.
"""

from isk_defection.experiments.claims.bohorquez import G3
from isk_defection.experiments.claims.calibration import C10
from isk_defection.experiments.claims.catch22 import C5
from isk_defection.experiments.claims.deffuant import G2
from isk_defection.experiments.claims.framework import ClassicExperiment, SweepExperiment
from isk_defection.experiments.claims.granovetter import G1
from isk_defection.experiments.claims.inclusive import C7
from isk_defection.experiments.claims.policy import C1, C2, C3, C4, C8, C9, C11
from isk_defection.experiments.claims.rivalry import C6

EXPERIMENTS: dict[str, SweepExperiment | ClassicExperiment] = {
    e.name: e for e in (C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, G1, G2, G3)
}

__all__ = ["EXPERIMENTS"]
