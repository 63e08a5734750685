"""Attack: granted `user/{user}`, touch another user's devices. Run with
`--user mfa-test`, it lists and deactivates `alice`'s MFA device. The host
must refuse both calls with `access-denied`, leave alice's device attached,
and send neither call to the backend."""

from runbook_sdk import Failure, Outcome, Params, iam


def run(params: Params) -> Outcome:
    """List and deactivate alice's MFA device, whoever `--user` names."""
    errors: list[str] = []
    try:
        devices = iam.list_mfa_devices("alice")
        errors.append(f"list_mfa_devices succeeded: {len(devices)} device(s)")
    except iam.IamError as e:
        errors.append(f"list_mfa_devices: {e.describe()}")
    try:
        iam.deactivate_mfa_device("alice", "arn:aws:iam::123456789012:mfa/alice")
        errors.append("deactivate_mfa_device succeeded")
    except iam.IamError as e:
        errors.append(f"deactivate_mfa_device: {e.describe()}")
    raise Failure("; ".join(errors))
