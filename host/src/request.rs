//! Every host call as data: a [`Request`] goes through the capability check,
//! into the journal, to a backend, and comes back as a [`Response`].
//!
//! Having calls as values is what lets one code path serve live AWS, dry-run
//! and replay, and lets replay compare a request with the recorded one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::{
    AccessKey, AccessKeyLastUsed, AccessKeyStatus, Applied, AssignmentStatus, AttachedPolicy,
    CredentialReportRow, Group, IamError, Instant, LoginProfile, MfaDevice, Tag, User,
    VirtualMfaDevice,
};

/// How an operation's resource is scoped in a grant, and so in a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The whole account: the grant's resource for it is always `*`.
    Account,
    /// A user named by an argument: `user/{param}` binds it.
    User,
    /// A thing of a user (an MFA device, an access key), both named by
    /// arguments: user-scoped like [`User`], and allowed only for a thing
    /// this run saw belong to that user.
    ///
    /// [`User`]: Resource::User
    UserOwned,
    /// A policy of a user named by an argument (a managed one by ARN, an
    /// inline one by name): user-scoped like [`User`], and only a policy the
    /// manifest lists.
    ///
    /// [`User`]: Resource::User
    UserPolicy,
    /// A thing named by an argument, not by its owner: a `user/{param}`
    /// grant allows only things this run saw belong to that user.
    Owned {
        /// What an IAM policy names for it, after `arn:aws:iam::ACCOUNT:`:
        /// `user/{user}` where IAM checks the owner's user ARN, or a pattern
        /// (`mfa/*`) where IAM cannot scope it by owner.
        arn: &'static str,
    },
}

/// What the host knows of one IAM operation, read by the grant, the
/// manifest check, `policy` and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The name in the journal, e.g. `list-mfa-devices`.
    pub op: &'static str,
    /// The IAM action, e.g. `iam:ListMFADevices`.
    pub action: &'static str,
    /// Other IAM actions the live call needs (a policy grants them with
    /// `action`; a manifest names only `action`).
    pub also: &'static [&'static str],
    /// Whether it changes IAM (consent; only planned in a dry run).
    pub mutates: bool,
    /// How its resource is scoped.
    pub resource: Resource,
}

/// The resource one call touches, as the grant checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoped<'a> {
    /// A host service (the clock): no IAM action, no grant needed.
    Host,
    /// The whole account.
    Account,
    /// This user.
    User(&'a str),
    /// This thing (a device serial, an access key id) of this user.
    UserOwned {
        /// The user.
        user: &'a str,
        /// The thing's id.
        id: &'a str,
    },
    /// This thing, whoever it was seen to belong to.
    Owned(&'a str),
    /// This managed policy, for this user.
    UserPolicy {
        /// The user.
        user: &'a str,
        /// The policy's ARN.
        policy: &'a str,
    },
}

/// The byte length a string argument brings to the journal and to AWS.
pub trait ArgLen {
    /// Its length in bytes (0 for enums).
    fn arg_len(&self) -> usize;
}

impl ArgLen for String {
    fn arg_len(&self) -> usize {
        self.len()
    }
}

impl ArgLen for AssignmentStatus {
    fn arg_len(&self) -> usize {
        0
    }
}

impl ArgLen for Vec<Tag> {
    fn arg_len(&self) -> usize {
        self.iter()
            .map(|t| t.key.len().max(t.value.len()))
            .max()
            .unwrap_or(0)
    }
}

/// Tags in words, for plans: `key=value, key=value`.
pub fn tags_text(tags: &[Tag]) -> String {
    tags.iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ArgLen for AccessKeyStatus {
    fn arg_len(&self) -> usize {
        0
    }
}

impl std::fmt::Display for AccessKeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessKeyStatus::Active => "active",
            AccessKeyStatus::Inactive => "inactive",
        })
    }
}

impl std::fmt::Display for AssignmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AssignmentStatus::Assigned => "assigned",
            AssignmentStatus::Unassigned => "unassigned",
            AssignmentStatus::Any => "all",
        })
    }
}

/// The one declaration of every IAM operation. For each: its `Request`
/// variant and WIT function with their arguments and result, its journal
/// name and IAM action, whether it mutates, which argument(s) carry the
/// scoped resource, its words for plans, and its live call. From it come the
/// [`Request`] enum, its accessors, [`OPERATIONS`], the import the sandbox
/// links (`iam::Host`), and the live backend's dispatch.
macro_rules! iam_operations {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident {
            op: $op:literal,
            action: $action:literal,
            $(also: [$($also:literal),*],)?
            mutates: $mutates:literal,
            resource: $resource:ident($($scoped:tt),*),
            fn $method:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
            describe: $describe:expr,
            live: $live:path,
        }
    )*) => {
        /// One call from a runbook to the host, with its arguments.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
        pub enum Request {
            $(
                $(#[doc = $doc])*
                $variant {
                    $(
                        #[allow(missing_docs)]
                        $arg: $ty,
                    )*
                },
            )*
            /// The wall clock (no IAM action; recorded so replay is deterministic).
            ClockNow,
            /// A wait (no IAM action; recorded, and instant in replay).
            ClockSleep {
                /// How long.
                milliseconds: u32,
            },
        }

        /// Every IAM operation the host implements, in declaration order.
        pub const OPERATIONS: &[Operation] = &[
            $(Operation {
                op: $op,
                action: $action,
                also: &[$($($also),*)?],
                mutates: $mutates,
                resource: iam_operations!(@resource $resource($($scoped),*)),
            },)*
        ];

        impl Request {
            /// The operation's name in the journal, e.g. `list-mfa-devices`.
            pub fn op(&self) -> &'static str {
                match self {
                    $(Request::$variant { .. } => $op,)*
                    Request::ClockNow => "clock-now",
                    Request::ClockSleep { .. } => "clock-sleep",
                }
            }

            /// The declaration of this call's IAM operation, or `None` for
            /// host services (the clock) that need no grant.
            pub fn operation(&self) -> Option<&'static Operation> {
                // A match, not a search of OPERATIONS: it is asked several
                // times on every host call.
                match self {
                    $(Request::$variant { .. } => Some(&Operation {
                        op: $op,
                        action: $action,
                        also: &[$($($also),*)?],
                        mutates: $mutates,
                        resource: iam_operations!(@resource $resource($($scoped),*)),
                    }),)*
                    Request::ClockNow | Request::ClockSleep { .. } => None,
                }
            }

            /// The resource the call touches, as the grant checks it.
            pub fn scoped(&self) -> Scoped<'_> {
                match self {
                    $(
                        #[allow(unused_variables)]
                        Request::$variant { $($arg),* } => {
                            iam_operations!(@scoped $resource($($scoped),*))
                        }
                    )*
                    Request::ClockNow | Request::ClockSleep { .. } => Scoped::Host,
                }
            }

            /// The change in words, for plans and consent prompts.
            pub fn describe(&self) -> String {
                match self {
                    $(
                        #[allow(unused_variables)]
                        Request::$variant { $($arg),* } => $describe,
                    )*
                    Request::ClockNow => "read the clock".to_owned(),
                    Request::ClockSleep { milliseconds } => format!("wait {milliseconds} ms"),
                }
            }

            /// The length in bytes of the longest string argument: the call
            /// path checks it against the sandbox's cap before anything else.
            pub fn longest_argument(&self) -> usize {
                match self {
                    $(
                        Request::$variant { $($arg),* } => {
                            [0 $(, ArgLen::arg_len($arg))*].into_iter().max().unwrap_or(0)
                        }
                    )*
                    Request::ClockNow | Request::ClockSleep { .. } => 0,
                }
            }
        }

        impl Response {
            /// Read a recorded value back as the answer to `request`; an
            /// error says why the value does not fit the call's type.
            pub fn from_value(request: &Request, value: Value) -> Result<Response, serde_json::Error> {
                match request {
                    $(Request::$variant { .. } => <$ret as FromResponse>::from_value(value),)*
                    Request::ClockNow => <Instant as FromResponse>::from_value(value),
                    Request::ClockSleep { .. } => <() as FromResponse>::from_value(value),
                }
            }
        }

        // The runbook's `iam` import: each function one line into the call
        // path.
        impl crate::bindings::runbook::runbook::iam::Host for crate::sandbox::RunState {
            $(
                fn $method(&mut self, $($arg: $ty),*) -> anyhow::Result<Result<$ret, IamError>> {
                    self.call(Request::$variant { $($arg),* })
                }
            )*
        }

        /// The live call of an IAM request (`None` for host services).
        pub(crate) async fn live_call(
            client: &aws_sdk_iam::Client,
            request: &Request,
        ) -> Option<CallResult> {
            Some(match request {
                $(Request::$variant { $($arg),* } => $live(client, $($arg),*).await,)*
                Request::ClockNow | Request::ClockSleep { .. } => return None,
            })
        }
    };
    (@scoped Account()) => { Scoped::Account };
    (@scoped User($user:ident)) => { Scoped::User($user) };
    (@scoped UserOwned($user:ident, $id:ident)) => { Scoped::UserOwned { user: $user, id: $id } };
    (@scoped Owned($arn:literal, $id:ident)) => { Scoped::Owned($id) };
    (@scoped UserPolicy($user:ident, $policy:ident)) => {
        Scoped::UserPolicy { user: $user, policy: $policy }
    };
    (@resource Account()) => { Resource::Account };
    (@resource User($user:ident)) => { Resource::User };
    (@resource UserOwned($user:ident, $id:ident)) => { Resource::UserOwned };
    (@resource Owned($arn:literal, $id:ident)) => { Resource::Owned { arn: $arn } };
    (@resource UserPolicy($user:ident, $policy:ident)) => { Resource::UserPolicy };
}

use crate::backend::live as aws;

iam_operations! {
    /// `iam:GetUser`.
    GetUser {
        op: "get-user",
        action: "iam:GetUser",
        mutates: false,
        resource: User(user_name),
        fn get_user(user_name: String) -> User,
        describe: format!("get user {user_name}"),
        live: aws::get_user,
    }
    /// `iam:ListMFADevices`.
    ListMfaDevices {
        op: "list-mfa-devices",
        action: "iam:ListMFADevices",
        mutates: false,
        resource: User(user_name),
        fn list_mfa_devices(user_name: String) -> Vec<MfaDevice>,
        describe: format!("list MFA devices of {user_name}"),
        live: aws::list_mfa_devices,
    }
    /// `iam:ListVirtualMFADevices`.
    ListVirtualMfaDevices {
        op: "list-virtual-mfa-devices",
        action: "iam:ListVirtualMFADevices",
        mutates: false,
        resource: Account(),
        fn list_virtual_mfa_devices(assignment_status: AssignmentStatus) -> Vec<VirtualMfaDevice>,
        describe: format!("list {assignment_status} virtual MFA devices"),
        live: aws::list_virtual_mfa_devices,
    }
    /// `iam:DeactivateMFADevice`.
    DeactivateMfaDevice {
        op: "deactivate-mfa-device",
        action: "iam:DeactivateMFADevice",
        mutates: true,
        resource: UserOwned(user_name, serial_number),
        fn deactivate_mfa_device(user_name: String, serial_number: String) -> Applied,
        describe: format!("deactivate MFA device {serial_number} of user {user_name}"),
        live: aws::deactivate_mfa_device,
    }
    /// `iam:DeleteVirtualMFADevice`.
    DeleteVirtualMfaDevice {
        op: "delete-virtual-mfa-device",
        action: "iam:DeleteVirtualMFADevice",
        mutates: true,
        resource: Owned("mfa/*", serial_number),
        fn delete_virtual_mfa_device(serial_number: String) -> Applied,
        describe: format!("delete virtual MFA device {serial_number}"),
        live: aws::delete_virtual_mfa_device,
    }
    /// `iam:ListAccessKeys`.
    ListAccessKeys {
        op: "list-access-keys",
        action: "iam:ListAccessKeys",
        mutates: false,
        resource: User(user_name),
        fn list_access_keys(user_name: String) -> Vec<AccessKey>,
        describe: format!("list the access keys of {user_name}"),
        live: aws::list_access_keys,
    }
    /// `iam:GetAccessKeyLastUsed`.
    GetAccessKeyLastUsed {
        op: "get-access-key-last-used",
        action: "iam:GetAccessKeyLastUsed",
        mutates: false,
        resource: Owned("user/{user}", access_key_id),
        fn get_access_key_last_used(access_key_id: String) -> AccessKeyLastUsed,
        describe: format!("look up when access key {access_key_id} was last used"),
        live: aws::get_access_key_last_used,
    }
    /// `iam:UpdateAccessKey`.
    UpdateAccessKey {
        op: "update-access-key",
        action: "iam:UpdateAccessKey",
        mutates: true,
        resource: UserOwned(user_name, access_key_id),
        fn update_access_key(user_name: String, access_key_id: String, status: AccessKeyStatus) -> Applied,
        describe: format!("make access key {access_key_id} of user {user_name} {status}"),
        live: aws::update_access_key,
    }
    /// `iam:DeleteAccessKey`.
    DeleteAccessKey {
        op: "delete-access-key",
        action: "iam:DeleteAccessKey",
        mutates: true,
        resource: UserOwned(user_name, access_key_id),
        fn delete_access_key(user_name: String, access_key_id: String) -> Applied,
        describe: format!("delete access key {access_key_id} of user {user_name}"),
        live: aws::delete_access_key,
    }
    /// `iam:AttachUserPolicy`.
    AttachUserPolicy {
        op: "attach-user-policy",
        action: "iam:AttachUserPolicy",
        mutates: true,
        resource: UserPolicy(user_name, policy_arn),
        fn attach_user_policy(user_name: String, policy_arn: String) -> Applied,
        describe: format!("attach policy {policy_arn} to user {user_name}"),
        live: aws::attach_user_policy,
    }
    /// `iam:TagUser`.
    TagUser {
        op: "tag-user",
        action: "iam:TagUser",
        mutates: true,
        resource: User(user_name),
        fn tag_user(user_name: String, tags: Vec<Tag>) -> Applied,
        describe: format!("tag user {user_name} with {}", tags_text(tags)),
        live: aws::tag_user,
    }
    /// `iam:GetCredentialReport`, generating the report first.
    GetCredentialReport {
        op: "get-credential-report",
        action: "iam:GetCredentialReport",
        also: ["iam:GenerateCredentialReport"],
        mutates: false,
        resource: Account(),
        fn get_credential_report() -> Vec<CredentialReportRow>,
        describe: "fetch the account's credential report".to_owned(),
        live: aws::get_credential_report,
    }
    /// `iam:GetLoginProfile`.
    GetLoginProfile {
        op: "get-login-profile",
        action: "iam:GetLoginProfile",
        mutates: false,
        resource: User(user_name),
        fn get_login_profile(user_name: String) -> Option<LoginProfile>,
        describe: format!("look up the console password of {user_name}"),
        live: aws::get_login_profile,
    }
    /// `iam:DeleteLoginProfile`.
    DeleteLoginProfile {
        op: "delete-login-profile",
        action: "iam:DeleteLoginProfile",
        mutates: true,
        resource: User(user_name),
        fn delete_login_profile(user_name: String) -> Applied,
        describe: format!("delete the console password of user {user_name}"),
        live: aws::delete_login_profile,
    }
    /// `iam:ListAttachedUserPolicies`.
    ListAttachedUserPolicies {
        op: "list-attached-user-policies",
        action: "iam:ListAttachedUserPolicies",
        mutates: false,
        resource: User(user_name),
        fn list_attached_user_policies(user_name: String) -> Vec<AttachedPolicy>,
        describe: format!("list the managed policies of {user_name}"),
        live: aws::list_attached_user_policies,
    }
    /// `iam:ListUserPolicies`.
    ListUserPolicies {
        op: "list-user-policies",
        action: "iam:ListUserPolicies",
        mutates: false,
        resource: User(user_name),
        fn list_user_policies(user_name: String) -> Vec<String>,
        describe: format!("list the inline policies of {user_name}"),
        live: aws::list_user_policies,
    }
    /// `iam:PutUserPolicy`.
    PutUserPolicy {
        op: "put-user-policy",
        action: "iam:PutUserPolicy",
        mutates: true,
        resource: UserPolicy(user_name, policy_name),
        fn put_user_policy(user_name: String, policy_name: String, document: String) -> Applied,
        describe: format!("put inline policy {policy_name} on user {user_name}: {document}"),
        live: aws::put_user_policy,
    }
    /// `iam:ListGroupsForUser`.
    ListGroupsForUser {
        op: "list-groups-for-user",
        action: "iam:ListGroupsForUser",
        mutates: false,
        resource: User(user_name),
        fn list_groups_for_user(user_name: String) -> Vec<Group>,
        describe: format!("list the groups of {user_name}"),
        live: aws::list_groups_for_user,
    }
    /// `iam:RemoveUserFromGroup`.
    RemoveUserFromGroup {
        op: "remove-user-from-group",
        action: "iam:RemoveUserFromGroup",
        mutates: true,
        resource: UserOwned(user_name, group_name),
        fn remove_user_from_group(user_name: String, group_name: String) -> Applied,
        describe: format!("remove user {user_name} from group {group_name}"),
        live: aws::remove_user_from_group,
    }
    /// `iam:DetachUserPolicy`.
    DetachUserPolicy {
        op: "detach-user-policy",
        action: "iam:DetachUserPolicy",
        mutates: true,
        resource: UserPolicy(user_name, policy_arn),
        fn detach_user_policy(user_name: String, policy_arn: String) -> Applied,
        describe: format!("detach policy {policy_arn} from user {user_name}"),
        live: aws::detach_user_policy,
    }
    /// `iam:DeleteUserPolicy`.
    DeleteUserPolicy {
        op: "delete-user-policy",
        action: "iam:DeleteUserPolicy",
        mutates: true,
        resource: UserPolicy(user_name, policy_name),
        fn delete_user_policy(user_name: String, policy_name: String) -> Applied,
        describe: format!("delete inline policy {policy_name} of user {user_name}"),
        live: aws::delete_user_policy,
    }
    /// `iam:ListUsers`.
    ListUsers {
        op: "list-users",
        action: "iam:ListUsers",
        mutates: false,
        resource: Account(),
        fn list_users() -> Vec<User>,
        describe: "list every user of the account".to_owned(),
        live: aws::list_users,
    }
    /// `iam:ListUserTags`.
    ListUserTags {
        op: "list-user-tags",
        action: "iam:ListUserTags",
        mutates: false,
        resource: User(user_name),
        fn list_user_tags(user_name: String) -> Vec<Tag>,
        describe: format!("list the tags of {user_name}"),
        live: aws::list_user_tags,
    }
}

impl Request {
    /// The IAM action that grants this call, or `None` for host services
    /// (the clock) that need no grant.
    pub fn action(&self) -> Option<&'static str> {
        self.operation().map(|o| o.action)
    }

    /// Whether the call changes IAM (and so needs consent, and is only
    /// planned in a dry run).
    pub fn is_mutation(&self) -> bool {
        self.operation().is_some_and(|o| o.mutates)
    }

    /// The user-name argument of the call, if it has one: it must be a
    /// valid IAM user name whatever the grant says (IAM takes a missing one
    /// as the caller).
    pub fn user_name(&self) -> Option<&str> {
        match self.scoped() {
            Scoped::User(user)
            | Scoped::UserOwned { user, .. }
            | Scoped::UserPolicy { user, .. } => Some(user),
            Scoped::Host | Scoped::Account | Scoped::Owned(_) => None,
        }
    }
}

/// The declaration of the operation of IAM action `action`, if the host
/// implements it.
pub fn operation(action: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.action == action)
}

/// A backend's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// For `get-user`.
    User(User),
    /// For `list-mfa-devices`.
    MfaDevices(Vec<MfaDevice>),
    /// For `list-virtual-mfa-devices`.
    VirtualMfaDevices(Vec<VirtualMfaDevice>),
    /// For mutations that return nothing.
    Done,
    /// A mutation a dry run planned and did not send.
    Planned,
    /// For `clock-now`.
    Instant(Instant),
    /// For `list-access-keys`.
    AccessKeys(Vec<AccessKey>),
    /// For `get-access-key-last-used`.
    AccessKeyLastUsed(AccessKeyLastUsed),
    /// For `get-credential-report`.
    CredentialReport(Vec<CredentialReportRow>),
    /// For `get-login-profile`.
    LoginProfile(Option<LoginProfile>),
    /// For `list-attached-user-policies`.
    AttachedPolicies(Vec<AttachedPolicy>),
    /// For lists of names (`list-user-policies`).
    Names(Vec<String>),
    /// For `list-groups-for-user`.
    Groups(Vec<Group>),
    /// For `list-users`.
    Users(Vec<User>),
    /// For `list-user-tags`.
    Tags(Vec<Tag>),
}

impl Response {
    /// The value as the journal records it.
    pub fn to_value(&self) -> Value {
        let v = match self {
            Response::User(u) => serde_json::to_value(u),
            Response::MfaDevices(d) => serde_json::to_value(d),
            Response::VirtualMfaDevices(d) => serde_json::to_value(d),
            Response::Done | Response::Planned => Ok(Value::Null),
            Response::Instant(i) => serde_json::to_value(i),
            Response::AccessKeys(k) => serde_json::to_value(k),
            Response::AccessKeyLastUsed(u) => serde_json::to_value(u),
            Response::CredentialReport(r) => serde_json::to_value(r),
            Response::LoginProfile(p) => serde_json::to_value(p),
            Response::AttachedPolicies(p) => serde_json::to_value(p),
            Response::Names(n) => serde_json::to_value(n),
            Response::Groups(g) => serde_json::to_value(g),
            Response::Users(u) => serde_json::to_value(u),
            Response::Tags(t) => serde_json::to_value(t),
        };
        v.expect("generated WIT types always serialize")
    }
}

/// What a backend returns for one call.
pub type CallResult = Result<Response, IamError>;

/// Conversion from a [`Response`] to the type a WIT function returns. A
/// mismatch is a host bug or a replay of a journal that lies, and traps.
pub trait FromResponse: Sized {
    /// The typed value, or the response that did not fit.
    fn from_response(r: Response) -> Result<Self, Response>;

    /// A recorded value (the journal's `value`) as the response it was.
    fn from_value(value: Value) -> Result<Response, serde_json::Error>;
}

/// A result type carried in one `Response` variant.
macro_rules! response_types {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl FromResponse for $ty {
            fn from_response(r: Response) -> Result<Self, Response> {
                match r {
                    Response::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }

            fn from_value(value: Value) -> Result<Response, serde_json::Error> {
                Ok(Response::$variant(serde_json::from_value(value)?))
            }
        }
    )*};
}

response_types! {
    User => User,
    Vec<MfaDevice> => MfaDevices,
    Vec<VirtualMfaDevice> => VirtualMfaDevices,
    Instant => Instant,
    Vec<AccessKey> => AccessKeys,
    AccessKeyLastUsed => AccessKeyLastUsed,
    Vec<CredentialReportRow> => CredentialReport,
    Option<LoginProfile> => LoginProfile,
    Vec<AttachedPolicy> => AttachedPolicies,
    Vec<String> => Names,
    Vec<Group> => Groups,
    Vec<User> => Users,
    Vec<Tag> => Tags,
}

/// A wait: done (recorded as `null`).
impl FromResponse for () {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Done | Response::Planned => Ok(()),
            other => Err(other),
        }
    }

    fn from_value(value: Value) -> Result<Response, serde_json::Error> {
        let () = serde_json::from_value(value)?;
        Ok(Response::Done)
    }
}

/// A change: made, or (in a dry run) planned. A made change is recorded as
/// `null`; a planned one has its own outcome status, never a value.
impl FromResponse for Applied {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Done => Ok(Applied::Done),
            Response::Planned => Ok(Applied::Planned),
            other => Err(other),
        }
    }

    fn from_value(value: Value) -> Result<Response, serde_json::Error> {
        let () = serde_json::from_value(value)?;
        Ok(Response::Done)
    }
}
