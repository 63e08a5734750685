"""Log lines, recorded in the journal and shown to the operator.

(`print` works too: the host records a runbook's stdout and stderr as log
lines. These say how much a line matters.)
"""

from wit_world.imports.log import Level
from wit_world.imports.log import log as _log

__all__ = ["debug", "error", "info", "warn"]


def debug(message: str) -> None:
    """Detail for whoever debugs the runbook."""
    _log(Level.DEBUG, message)


def info(message: str) -> None:
    """Progress the operator should see."""
    _log(Level.INFO, message)


def warn(message: str) -> None:
    """Something the operator must act on or look at."""
    _log(Level.WARN, message)


def error(message: str) -> None:
    """A failure."""
    _log(Level.ERROR, message)
