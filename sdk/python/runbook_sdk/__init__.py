"""The runbook sdk for Python: what a runbook author writes against.

A runbook is a reviewed procedure that the `runbook` host runs as a sandboxed
WebAssembly component. This package hides the bindings generated from
`sdk/wit/runbook.wit` (the one contract shared with the host) behind a small
API in which a runbook reads like the procedure it implements. A runbook is a
directory with a manifest, `runbook.toml`, and an `app.py` defining `run`:

    from runbook_sdk import Outcome, Params, iam, log


    def run(params: Params) -> Outcome:
        user = params.require("user")
        devices = iam.list_mfa_devices(user)
        log.info(f"{user} has {len(devices)} MFA device(s)")
        return Outcome(f"looked at {user}")

The manifest declares the runbook's name, its parameters and the IAM actions
it needs; the host embeds it in the component it builds and reads it before
running any of the code.

Raise `Failure("...")` to fail the run with that message. An `iam.IamError`
that escapes `run` fails it with the error's `describe()`. Any other exception
is a bug in the runbook: the host records its traceback and stops the run.

Time: `now()` and `sleep()` go through the host, which records them, so a
replay sees what the recording saw. On import this package makes `time.sleep`
the host's recorded, deadline-bounded wait (`sleep`). WASI's own clocks
(`time.time()`, `time.monotonic()`, `datetime.now()`) only ever give the run's
virtual time, which moves only when the runbook waits; `random` is reseeded
from the host's recorded seed at every run (so a journal's holder can
reproduce it: never make a secret with it). Use `now()` for any time that
matters.

Import every module a runbook needs at the top of `app.py`: the component is
the interpreter as it stood after importing `app.py` at build time, with no
filesystem, so a module first imported during `run` is not found.
"""

import time

from . import iam, log
from ._clock import now, sleep
from ._core import Failure, Instant, Outcome, Params

__all__ = ["Failure", "Instant", "Outcome", "Params", "iam", "log", "now", "sleep"]

__version__ = "0.1.0"
"""This sdk's version (as `sdk/python/pyproject.toml` says); the host records
it in every journal header."""

# typeshed's time.sleep also takes SupportsIndex; runbooks pass ints and floats.
time.sleep = sleep  # type: ignore[assignment]
