"""Typed AWS IAM calls.

Each is checked against the run's grant and journaled by the host; list calls
return the whole list (the host paginates). A call that fails raises one of
the `IamError` subclasses: `AccessDenied`, `NoSuchEntity`, `Throttled`,
`InvalidInput` or `ServiceFailure` (with the AWS `code`). Changes return
`Applied.DONE`, or `Applied.PLANNED` in a dry run.

The records and enums are the ones generated from `sdk/wit/runbook.wit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from componentize_py_types import Err
from wit_world.imports import iam as _wit
from wit_world.imports.iam import (
    AccessKey,
    AccessKeyLastUsed,
    AccessKeyStatus,
    Applied,
    AssignmentStatus,
    AttachedPolicy,
    CredentialReportRow,
    Group,
    LoginProfile,
    MfaDevice,
    Tag,
    User,
    VirtualMfaDevice,
)

from ._core import (
    AccessDenied,
    IamError,
    InvalidInput,
    NoSuchEntity,
    ServiceFailure,
    Throttled,
    is_fido_serial,
    is_virtual_serial,
)

__all__ = [
    "AccessDenied",
    "AccessKey",
    "AccessKeyLastUsed",
    "AccessKeyStatus",
    "Applied",
    "AssignmentStatus",
    "AttachedPolicy",
    "CredentialReportRow",
    "Group",
    "IamError",
    "InvalidInput",
    "LoginProfile",
    "MfaDevice",
    "NoSuchEntity",
    "ServiceFailure",
    "Tag",
    "Throttled",
    "User",
    "VirtualMfaDevice",
    "attach_user_policy",
    "deactivate_mfa_device",
    "delete_access_key",
    "delete_login_profile",
    "delete_user_policy",
    "delete_virtual_mfa_device",
    "detach_user_policy",
    "get_access_key_last_used",
    "get_credential_report",
    "get_login_profile",
    "get_user",
    "is_fido_serial",
    "is_virtual_serial",
    "list_access_keys",
    "list_attached_user_policies",
    "list_groups_for_user",
    "list_mfa_devices",
    "list_user_policies",
    "list_user_tags",
    "list_users",
    "list_virtual_mfa_devices",
    "put_user_policy",
    "remove_user_from_group",
    "said",
    "tag_user",
    "update_access_key",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _typed(error: _wit.IamError) -> IamError:
    """The sdk's exception for the error variant the host returned."""
    match error:
        case _wit.IamError_AccessDenied(message):
            return AccessDenied(message)
        case _wit.IamError_NoSuchEntity(message):
            return NoSuchEntity(message)
        case _wit.IamError_Throttled(message):
            return Throttled(message)
        case _wit.IamError_InvalidInput(message):
            return InvalidInput(message)
        case _wit.IamError_ServiceFailure(_wit.ServiceError(code, message)):
            return ServiceFailure(code, message)
    raise TypeError(f"the host returned an unknown IAM error: {error!r}")


def _call(import_: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call a host import, raising the sdk's `IamError` for its error result."""
    try:
        return import_(*args, **kwargs)
    except Err as e:
        raise _typed(e.value) from None


def said(applied: Applied, done: str, planned: str) -> str:
    """`done` or `planned`: the past tense for a change IAM made, the
    conditional for one a dry run only planned (e.g.
    `said(applied, "deactivated", "would deactivate")`)."""
    return planned if applied is Applied.PLANNED else done


def get_user(user_name: str) -> User:
    """`iam:GetUser`: the named user, or `NoSuchEntity`."""
    return _call(_wit.get_user, user_name)


def list_mfa_devices(user_name: str) -> list[MfaDevice]:
    """`iam:ListMFADevices`: every MFA device attached to `user_name`."""
    return _call(_wit.list_mfa_devices, user_name)


def list_virtual_mfa_devices(assignment_status: AssignmentStatus) -> list[VirtualMfaDevice]:
    """`iam:ListVirtualMFADevices`: the account's virtual MFA devices with the
    given assignment status. Seeds and QR codes never reach a runbook."""
    return _call(_wit.list_virtual_mfa_devices, assignment_status)


def deactivate_mfa_device(user_name: str, serial_number: str) -> Applied:
    """`iam:DeactivateMFADevice`: detach `serial_number` from `user_name`.
    The host allows it only for a device this run saw attached to that user
    (list the user's devices first). `Applied.PLANNED` in a dry run."""
    return _call(_wit.deactivate_mfa_device, user_name, serial_number)


def delete_virtual_mfa_device(serial_number: str) -> Applied:
    """`iam:DeleteVirtualMFADevice`: delete an unassigned virtual MFA device.
    `Applied.PLANNED` in a dry run."""
    return _call(_wit.delete_virtual_mfa_device, serial_number)


def list_access_keys(user_name: str) -> list[AccessKey]:
    """`iam:ListAccessKeys`: every access key of `user_name` (ids and
    status; a secret never reaches a runbook)."""
    return _call(_wit.list_access_keys, user_name)


def get_access_key_last_used(access_key_id: str) -> AccessKeyLastUsed:
    """`iam:GetAccessKeyLastUsed`: when, with which service and in which
    region the key was last used. The host allows it only for a key this run
    saw listed for a user in scope."""
    return _call(_wit.get_access_key_last_used, access_key_id)


def update_access_key(user_name: str, access_key_id: str, status: AccessKeyStatus) -> Applied:
    """`iam:UpdateAccessKey`: make `access_key_id` of `user_name` active or
    inactive. The host allows it only for a key this run saw listed for that
    user. `Applied.PLANNED` in a dry run."""
    return _call(_wit.update_access_key, user_name, access_key_id, status)


def delete_access_key(user_name: str, access_key_id: str) -> Applied:
    """`iam:DeleteAccessKey`: delete `access_key_id` of `user_name`. Its id is
    evidence: prefer `update_access_key` to inactive. Only for a key this run
    saw listed for that user. `Applied.PLANNED` in a dry run."""
    return _call(_wit.delete_access_key, user_name, access_key_id)


def attach_user_policy(user_name: str, policy_arn: str) -> Applied:
    """`iam:AttachUserPolicy`: attach managed policy `policy_arn` to
    `user_name`. The manifest must list the ARN in the capability's
    `policies`. `Applied.PLANNED` in a dry run."""
    return _call(_wit.attach_user_policy, user_name, policy_arn)


def tag_user(user_name: str, tags: Sequence[Tag]) -> Applied:
    """`iam:TagUser`: add or overwrite `tags` on `user_name`.
    `Applied.PLANNED` in a dry run."""
    return _call(_wit.tag_user, user_name, list(tags))


def get_credential_report() -> list[CredentialReportRow]:
    """`iam:GetCredentialReport`: the account's credential report, one row
    per user (the host generates it, waits, fetches and parses it: a few IAM
    calls whatever the account's size)."""
    return _call(_wit.get_credential_report)


def get_login_profile(user_name: str) -> LoginProfile | None:
    """`iam:GetLoginProfile`: the user's console password as IAM describes it
    (never the password), or `None` if the user has none."""
    return _call(_wit.get_login_profile, user_name)


def delete_login_profile(user_name: str) -> Applied:
    """`iam:DeleteLoginProfile`: remove the user's console password.
    `Applied.PLANNED` in a dry run."""
    return _call(_wit.delete_login_profile, user_name)


def list_attached_user_policies(user_name: str) -> list[AttachedPolicy]:
    """`iam:ListAttachedUserPolicies`: the managed policies attached to the
    user."""
    return _call(_wit.list_attached_user_policies, user_name)


def list_user_policies(user_name: str) -> list[str]:
    """`iam:ListUserPolicies`: the names of the user's inline policies."""
    return _call(_wit.list_user_policies, user_name)


def put_user_policy(user_name: str, policy_name: str, document: str) -> Applied:
    """`iam:PutUserPolicy`: add or replace inline policy `policy_name` of the
    user with `document` (JSON). The manifest must list the name in the
    capability's `policies`. `Applied.PLANNED` in a dry run."""
    return _call(_wit.put_user_policy, user_name, policy_name, document)


def list_groups_for_user(user_name: str) -> list[Group]:
    """`iam:ListGroupsForUser`: the groups the user is in."""
    return _call(_wit.list_groups_for_user, user_name)


def remove_user_from_group(user_name: str, group_name: str) -> Applied:
    """`iam:RemoveUserFromGroup`: only from a group this run saw the user in
    (`list_groups_for_user` first). `Applied.PLANNED` in a dry run."""
    return _call(_wit.remove_user_from_group, user_name, group_name)


def detach_user_policy(user_name: str, policy_arn: str) -> Applied:
    """`iam:DetachUserPolicy`: detach a managed policy the manifest lists.
    `Applied.PLANNED` in a dry run."""
    return _call(_wit.detach_user_policy, user_name, policy_arn)


def delete_user_policy(user_name: str, policy_name: str) -> Applied:
    """`iam:DeleteUserPolicy`: delete an inline policy the manifest lists.
    `Applied.PLANNED` in a dry run."""
    return _call(_wit.delete_user_policy, user_name, policy_name)


def list_users() -> list[User]:
    """`iam:ListUsers`: every user of the account."""
    return _call(_wit.list_users)


def list_user_tags(user_name: str) -> list[Tag]:
    """`iam:ListUserTags`: the user's tags."""
    return _call(_wit.list_user_tags, user_name)
