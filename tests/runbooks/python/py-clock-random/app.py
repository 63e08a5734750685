"""Reads what a Python runbook can of time and chance, and reports it.

WASI's clocks are the run's virtual time (starting at the instant the journal
header records, moving only when the runbook waits) and its randomness comes
from the seed the header records, so a replay of this run reports exactly what
the live run did. The hour-long wait through WASI's own clock (a `select`
with a timeout and nothing to wait for: `time.sleep` is the sdk's recorded
wait) must not block the host: it moves virtual time at once.
"""

import os
import random
import select
import time

from runbook_sdk import Outcome, Params, iam, now, sleep


def run(params: Params) -> Outcome:
    user = params.require("user")
    wall_start = time.time_ns()
    mono_start = time.monotonic_ns()
    chance = random.random()
    urandom = os.urandom(8).hex()

    sleep(0.05)  # the host's recorded wait: virtual time moves with it
    after_recorded = time.time_ns() - wall_start

    select.select([], [], [], 3600)  # WASI's own wait: never blocks, moves virtual time
    after_wasi = time.monotonic_ns() - mono_start

    host_now = now()
    devices = iam.list_mfa_devices(user)
    return Outcome(
        f"wall_start={wall_start} mono_start={mono_start} random={chance!r} "
        f"urandom={urandom} after_recorded_wait={after_recorded} "
        f"after_wasi_wait={after_wasi} host_now_after_start={host_now.seconds * 10**9 >= wall_start - 10**9} "
        f"devices={len(devices)}"
    )
