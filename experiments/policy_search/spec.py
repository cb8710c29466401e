"""Optimisation specs live in ``experiments.spec``, the one schema of every spec file.

This name stays importable for the policy-search modules that read an ``OptimizeSpec``.
"""

from isk_defection.experiments.spec import (
    Constraint,
    ModeratingPath,
    Objective,
    OptimizeSpec,
    SearchLever,
    lever_targets,
    load_optimize_spec,
)

__all__ = [
    "Constraint",
    "ModeratingPath",
    "Objective",
    "OptimizeSpec",
    "SearchLever",
    "lever_targets",
    "load_optimize_spec",
]
