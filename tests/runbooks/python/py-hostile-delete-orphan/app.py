"""Attack: delete virtual MFA devices the run never saw attached to `--user`.
It lists the account's unassigned virtual devices and deletes each. The host
must refuse every deletion (`user/{user}` covers only devices this run
observed attached to that user) and delete nothing."""

from runbook_sdk import Failure, Outcome, Params, iam
from runbook_sdk.iam import AssignmentStatus


def run(params: Params) -> Outcome:
    """Delete every unassigned virtual MFA device in the account."""
    orphans = iam.list_virtual_mfa_devices(AssignmentStatus.UNASSIGNED)
    errors: list[str] = []
    for device in orphans:
        try:
            iam.delete_virtual_mfa_device(device.serial_number)
        except iam.IamError as e:
            errors.append(f"{device.serial_number}: {e.describe()}")
    if errors:
        raise Failure("; ".join(errors))
    return Outcome(f"deleted {len(orphans)} unassigned virtual MFA device(s)")
