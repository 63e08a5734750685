"""Attack: allocate without bound, 1 MiB at a time, every byte written. The
host must cap the guest's memory and stop the run when it hits the cap,
without itself running out of memory. (CPython raises `MemoryError` when its
allocator is refused; that escapes `run`, so the run traps either way.)"""

from runbook_sdk import Outcome, Params

CHUNK = 1024 * 1024


def run(params: Params) -> Outcome:
    """Hoard 1 MiB chunks of 0xa5 until stopped."""
    hoard: list[bytes] = []
    while True:
        # Non-zero, so every page is written, not just reserved.
        hoard.append(b"\xa5" * CHUNK)
