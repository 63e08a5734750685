"""Attack: spin forever without calling the host, so no host function ever
gets the chance to stop it. The host must interrupt it (epoch deadline or
fuel) and report the run as timed out."""

from runbook_sdk import Outcome, Params


def run(params: Params) -> Outcome:
    """Count forever; call nothing."""
    n = 0
    while True:
        n = (n + 1) & 0xFFFF_FFFF_FFFF_FFFF
