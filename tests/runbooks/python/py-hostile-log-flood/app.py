"""Attack: log 1 KiB lines forever, to fill the journal and the operator's
screen. The host must cap what it records and stop the run."""

from runbook_sdk import Outcome, Params, log


def run(params: Params) -> Outcome:
    """Log the same 1 KiB line forever."""
    line = "x" * 1024
    while True:
        log.info(line)
