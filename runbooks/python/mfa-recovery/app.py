"""MFA recovery: a user lost their MFA device and cannot sign in.

The procedure, in AWS CLI terms:
1. `list-mfa-devices --user-name U`: find the user's devices.
2. `deactivate-mfa-device --user-name U --serial-number S`: for each device.
3. `list-mfa-devices --user-name U`: confirm the list is now empty.
4. `list-virtual-mfa-devices --assignment-status Unassigned`: the virtual
   devices just detached are still there, unassigned.
5. `delete-virtual-mfa-device --serial-number S`: delete those, and only
   those: never another user's, never an unrelated orphan, never a
   hardware token or FIDO security key.
6. Tell the operator to have the user re-register MFA at once.

IAM is eventually consistent: right after a deactivation, a read can still
list the device as attached, miss it among the unassigned ones, or refuse to
delete it (`DeleteConflict`). Before deciding that, the runbook reads again
with backoff, about 20 s in all. A virtual device it detached and could not
delete is a failure, never a success: the host prints the `--resume` command
that finishes the job without repeating what was done.

The Rust runbook (runbooks/mfa-recovery) does the same, call for call and word
for word: a journal recorded from one replays against the other.
"""

from collections.abc import Iterator

from runbook_sdk import Failure, Outcome, Params, iam, log, sleep
from runbook_sdk.iam import Applied, AssignmentStatus

# The waits between re-reads while IAM catches up, in whole seconds (so the
# log says `1 s`, as the Rust runbook's does): 20 s in all, shared by the
# whole run. IAM usually converges within seconds.
WAITS = (1, 2, 4, 8, 5)


class Patience:
    """How long the run may still wait for IAM to catch up."""

    def __init__(self) -> None:
        self._waits: Iterator[int] = iter(WAITS)

    def wait(self, why: str) -> bool:
        """Wait before reading again, saying why; `False` once the 20 s are spent."""
        seconds = next(self._waits, None)
        if seconds is None:
            return False
        log.info(f"{why}; IAM may not have caught up yet: reading again in {seconds} s")
        sleep(seconds)
        return True


def run(params: Params) -> Outcome:
    """Deactivate the user's MFA devices and delete the virtual ones this run
    detached, so the user can sign in and re-register MFA."""
    user = params.require("user")
    patience = Patience()

    # 1. The user's devices.
    try:
        devices = iam.list_mfa_devices(user)
    except iam.NoSuchEntity:
        raise Failure(
            f"IAM user '{user}' does not exist; check the name and the AWS account"
        ) from None
    except iam.IamError as e:
        raise Failure(f"could not list the MFA devices of '{user}': {e.describe()}") from None
    if not devices:
        log.info(f"'{user}' has no MFA device; nothing to change")
        return Outcome(f"'{user}' has no MFA device; nothing changed").next_step(
            f"have '{user}' sign in and register an MFA device now"
        )
    log.info(f"'{user}' has {len(devices)} MFA device(s)")

    # 2. Deactivate each; remember the virtual ones this run detached.
    outcome = Outcome()
    detached_virtual: list[str] = []
    planned = False
    for device in devices:
        serial = device.serial_number
        try:
            applied = iam.deactivate_mfa_device(user, serial)
        except iam.NoSuchEntity as e:
            # An earlier attempt (a resumed run's) may have detached it
            # already: step 3 confirms.
            log.warn(
                f"IAM says '{serial}' is not attached to '{user}' ({e.message}): "
                "taken as already deactivated; checked below"
            )
            verb = "found deactivated"
        except iam.IamError as e:
            raise Failure(
                f"could not deactivate MFA device '{serial}' of '{user}': {e.describe()}"
            ) from None
        else:
            planned |= applied is Applied.PLANNED
            verb = iam.said(applied, "deactivated", "would deactivate")
        log.info(f"{verb} '{serial}'")
        outcome.changed(f"{verb} MFA device {serial} of {user}")
        if iam.is_virtual_serial(serial):
            detached_virtual.append(serial)
        elif iam.is_fido_serial(serial):
            log.info(f"'{serial}' is a FIDO security key: deactivated, never deleted")
        else:
            log.info(f"'{serial}' is a hardware MFA device: deactivated, never deleted")

    # 3. Confirm the user has no device left.
    left = iam.list_mfa_devices(user)
    while left and patience.wait(f"IAM still lists {len(left)} MFA device(s) of '{user}'"):
        left = iam.list_mfa_devices(user)
    if left:
        serials = ", ".join(d.serial_number for d in left)
        raise Failure(
            f"'{user}' still has MFA device(s) after deactivation and 20 s of re-reads: {serials}"
        )

    # 4-5. Delete the virtual devices this run detached once IAM lists them as
    # unassigned. Nothing else.
    pending = detached_virtual
    while pending:
        unassigned = {
            d.serial_number for d in iam.list_virtual_mfa_devices(AssignmentStatus.UNASSIGNED)
        }
        waiting: list[str] = []
        for serial in pending:
            if serial not in unassigned:
                waiting.append(serial)
                continue
            try:
                applied = iam.delete_virtual_mfa_device(serial)
            except iam.NoSuchEntity:
                # Deleted by an earlier attempt (a resumed run's).
                verb = "found deleted"
            except iam.IamError as e:
                if isinstance(e, iam.ServiceFailure) and e.code == "DeleteConflict":
                    # IAM still sees it attached.
                    waiting.append(serial)
                    continue
                raise Failure(
                    f"deactivated, but could not delete virtual MFA device '{serial}': "
                    f"{e.describe()}"
                ) from None
            else:
                verb = iam.said(applied, "deleted", "would delete")
            log.info(f"{verb} virtual MFA device '{serial}'")
            outcome.changed(f"{verb} virtual MFA device {serial}")
        pending = waiting
        if pending and not patience.wait(
            f"IAM does not yet list {', '.join(pending)} as unassigned and deletable"
        ):
            raise Failure(
                f"deactivated, but the detached virtual MFA device(s) {', '.join(pending)} "
                "are not deleted: after 20 s IAM still does not list them as unassigned or "
                "refuses to delete them; they are left in the account, unassigned: resume "
                "this run to delete them"
            )

    # 6. What the operator does next.
    if planned:
        outcome.summary = (
            f"dry run: '{user}' would have no MFA device; {len(devices)} would be deactivated"
        )
        return outcome.next_step("nothing was changed: run without --dry-run to apply")
    outcome.summary = f"'{user}' has no MFA device now; {len(devices)} deactivated"
    return outcome.next_step(
        f"have '{user}' sign in now and register a new MFA device at once"
    ).next_step(f"until then '{user}' can sign in with a password alone: keep the window short")
