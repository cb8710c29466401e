"""Errors the command line tells apart by exit status (kept light: no heavy imports).

A ``ValueError`` is bad input (exit 2, nothing written); ``RunsFailedError`` means the
input was fine but runs failed so that a result could not be computed (exit 1).
"""


class RunsFailedError(RuntimeError):
    """Runs failed so that a result cannot be computed (the command exits 1, not 2)."""
