"""Attack: call an IAM action the manifest does not declare. It declares only
`iam:ListMFADevices` and calls `iam:GetUser`. The host must refuse the call
with `access-denied` and never send it to the backend."""

from runbook_sdk import Failure, Outcome, Params, iam


def run(params: Params) -> Outcome:
    """Call `iam:GetUser`, which the manifest never declared."""
    user = params.require("user")
    try:
        u = iam.get_user(user)
    except iam.IamError as e:
        raise Failure(f"get_user was refused: {e.describe()}") from None
    return Outcome(f"get_user succeeded: {u.arn}")
