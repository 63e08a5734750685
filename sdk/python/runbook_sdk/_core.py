"""The parts of the sdk that never call the host.

Parameters, outcomes, failures, IAM errors, serial-number checks and instants
are plain Python: this module imports nothing from the generated bindings
(`wit_world`, which exists only inside a component), so its tests run under a
plain `python3`. The package re-exports everything here; runbooks import the
package, never this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Self

# The host takes a wait in milliseconds as a u32: about 49.7 days at most.
MAX_SLEEP_MS = 2**32 - 1


class Failure(Exception):
    """Why a runbook failed, in words for the operator.

    Raise it from `run`: the message becomes the run's error. Name the value at
    fault and how to fix it. `message` is the text the operator reads.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class IamError(Exception):
    """Why an IAM call failed: the base of the five cases the host reports.

    Catch a subclass to handle one case (`except iam.NoSuchEntity:`); one that
    escapes `run` fails the run with `describe()`, as a `Failure` would.
    `message` is the message AWS (or the host) gave.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def describe(self) -> str:
        """The error in words for the operator, e.g. `access denied: ...`
        (each case words it as the Rust sdk does)."""
        return self.message

    def __str__(self) -> str:
        return self.describe()


class AccessDenied(IamError):
    """The call is outside the runbook's grant, or AWS refused it. The message
    never says whether the resource exists."""

    def describe(self) -> str:
        """`access denied: MESSAGE`."""
        return f"access denied: {self.message}"


class NoSuchEntity(IamError):
    """The named user or device does not exist (AWS `NoSuchEntity`)."""

    def describe(self) -> str:
        """`no such entity: MESSAGE`."""
        return f"no such entity: {self.message}"


class Throttled(IamError):
    """AWS throttled the call after the host's retries ran out."""

    def describe(self) -> str:
        """`throttled: MESSAGE`."""
        return f"throttled: {self.message}"


class InvalidInput(IamError):
    """AWS rejected an argument (`InvalidInput`, `ValidationError`)."""

    def describe(self) -> str:
        """`invalid input: MESSAGE`."""
        return f"invalid input: {self.message}"


class ServiceFailure(IamError):
    """Any other failure: `code` is the AWS error code (e.g. `DeleteConflict`,
    `LimitExceeded`, or a host code such as `Transport`), `message` its
    message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def describe(self) -> str:
        """`CODE: MESSAGE`."""
        return f"{self.code}: {self.message}"


def is_fido_serial(serial_number: str) -> bool:
    """Whether `serial_number` names a FIDO security key
    (`arn:aws:iam::ACCOUNT:u2f/...`): hardware, so never deleted."""
    return serial_number.startswith("arn:aws") and ":u2f/" in serial_number


def is_virtual_serial(serial_number: str) -> bool:
    """Whether `serial_number` names a virtual device
    (`arn:aws:iam::ACCOUNT:mfa/NAME`) rather than a hardware TOTP token or a
    FIDO security key."""
    parts = serial_number.split(":", 5)
    if len(parts) != 6:
        return False
    arn, _partition, service, region, account, resource = parts
    return (
        arn == "arn"
        and service == "iam"
        and region == ""
        and len(account) == 12
        and all("0" <= c <= "9" for c in account)
        and resource.startswith("mfa/")
        and len(resource) > 4
    )


@dataclass(frozen=True, order=True)
class Instant:
    """A point in time, UTC, as seconds and nanoseconds since the Unix epoch."""

    seconds: int
    """Whole seconds since 1970-01-01T00:00:00Z."""
    nanoseconds: int = 0
    """Nanoseconds past `seconds`."""

    def to_rfc3339(self) -> str:
        """The time as RFC 3339 UTC, to the second (`2026-11-25T22:08:43Z`):
        for tags and policy conditions (`aws:TokenIssueTime`)."""
        days, rem = divmod(self.seconds, 86_400)
        # Days to a civil date (Howard Hinnant's `civil_from_days`), as the
        # Rust sdk does: any year, no `datetime` range limits.
        z = days + 719_468
        era, doe = divmod(z, 146_097)
        yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (month <= 2)
        hour, minute, second = rem // 3_600, rem % 3_600 // 60, rem % 60
        return f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"


def sleep_milliseconds(seconds: float) -> int:
    """The host's wait for `seconds`: rounded down to milliseconds, at most
    `MAX_SLEEP_MS`. A negative or NaN wait is a `ValueError`, as in
    `time.sleep`."""
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"sleep length must be non-negative, not {seconds!r}")
    return math.floor(min(seconds * 1000, MAX_SLEEP_MS))


class Params:
    """The parameters the operator gave, as declared in the runbook's manifest.
    The host has already checked that every required parameter is present."""

    def __init__(self, values: list[tuple[str, str]]) -> None:
        """Parameters from (name, value) pairs; for tests of runbook logic."""
        self._values = list(values)

    def get(self, name: str) -> str | None:
        """The value of `name`, if it was given."""
        return next((v for n, v in self._values if n == name), None)

    def require(self, name: str) -> str:
        """The value of `name`, or a `Failure` naming the missing parameter."""
        value = self.get(name)
        if value is None:
            raise Failure(f"parameter --{name} is required; pass it")
        return value

    def __repr__(self) -> str:
        return f"Params({self._values!r})"


@dataclass
class Outcome:
    """What a finished run reports to the operator: return it from `run`."""

    summary: str = ""
    """One line saying what the run did."""
    changes: list[str] = field(default_factory=list)
    """What changed, one line each (empty when nothing changed)."""
    next_steps: list[str] = field(default_factory=list)
    """What the operator must do next, one line each."""

    def changed(self, change: str) -> Self:
        """Add a line saying what changed; returns the outcome, to chain."""
        self.changes.append(change)
        return self

    def next_step(self, step: str) -> Self:
        """Add a line saying what the operator must do next; returns the
        outcome, to chain."""
        self.next_steps.append(step)
        return self
