"""Time and waiting, through the host, so that a replay sees what the
recording saw."""

from wit_world.imports import clock as _wit

from ._core import Instant, sleep_milliseconds


def now() -> Instant:
    """The current time, as the host reports it. Use this, never `time.time()`
    or `datetime.now()` (WASI's clock gives the run's virtual time): the host
    records it, so a replay sees the time the recording saw."""
    raw = _wit.now()
    return Instant(raw.seconds, raw.nanoseconds)


def sleep(seconds: float) -> None:
    """Wait `seconds` (rounded down to milliseconds, at most 2**32-1 ms), e.g.
    before reading again what IAM has not caught up with. The host records the
    wait, replays it instantly, and counts it against the run's deadline: a
    wait past the deadline stops the run there. In a runbook, `time.sleep` is
    this function."""
    _wit.sleep(sleep_milliseconds(seconds))
