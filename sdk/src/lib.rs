//! The runbook sdk: what a runbook author writes against.
//!
//! A runbook is a reviewed procedure that the `runbook` host runs as a sandboxed
//! WebAssembly component. This crate hides the generated component bindings
//! (from `sdk/wit/runbook.wit`, the one contract shared with the host) behind a
//! small API in which a runbook reads like the procedure it implements:
//!
//! ```ignore
//! use runbook_sdk::{iam, log, Failure, Outcome, Params, Runbook};
//!
//! struct Hello;
//!
//! impl Runbook for Hello {
//!     fn run(params: &Params) -> Result<Outcome, Failure> {
//!         let user = params.require("user")?;
//!         let devices = iam::list_mfa_devices(user)?;
//!         log::info(format!("{user} has {} MFA device(s)", devices.len()));
//!         Ok(Outcome::new(format!("looked at {user}")))
//!     }
//! }
//!
//! runbook_sdk::runbook!(Hello);
//! ```
//!
//! The runbook's name, parameters and the IAM actions it needs are declared in a
//! `runbook.toml` beside its `Cargo.toml`; [`runbook!`] embeds that manifest in
//! the component, where the host reads it before running any of the code.
#![deny(missing_docs)]
// The generated bindings are FFI glue: they are `unsafe` by nature. Nothing else
// in this crate is.
#![allow(unsafe_code)]

use std::fmt;

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "runbook",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_runbook",
        default_bindings_module: "runbook_sdk::__bindings",
    });
}

use __bindings::runbook::runbook as wit;

/// The version of the WIT contract this sdk was built against; the host records
/// it in every journal header.
pub const WIT_VERSION: &str = "runbook:runbook@0.2.0";

/// This sdk's version; `runbook!` embeds it in the component's `runbook-sdk`
/// section, and the host records it in every journal header.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub const __SDK_VERSION_BYTES: [u8; SDK_VERSION.len()] = {
    let bytes = SDK_VERSION.as_bytes();
    let mut out = [0u8; SDK_VERSION.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
};

/// Typed AWS IAM calls. Each is checked against the run's grant and journaled by
/// the host; list calls return the whole list (the host paginates).
pub mod iam {
    use super::wit::iam as raw;

    pub use raw::{
        AccessKey, AccessKeyLastUsed, AccessKeyStatus, Applied, AssignmentStatus, AttachedPolicy,
        CredentialReportRow, Group, IamError, LoginProfile, MfaDevice, ServiceError, Tag, User,
        VirtualMfaDevice,
    };

    /// `iam:GetUser`: the named user, or [`IamError::NoSuchEntity`].
    pub fn get_user(user_name: &str) -> Result<User, IamError> {
        raw::get_user(user_name)
    }

    /// `iam:ListMFADevices`: every MFA device attached to `user_name`.
    pub fn list_mfa_devices(user_name: &str) -> Result<Vec<MfaDevice>, IamError> {
        raw::list_mfa_devices(user_name)
    }

    /// `iam:ListVirtualMFADevices`: the account's virtual MFA devices with the
    /// given assignment status. Seeds and QR codes never reach a runbook.
    pub fn list_virtual_mfa_devices(
        status: AssignmentStatus,
    ) -> Result<Vec<VirtualMfaDevice>, IamError> {
        raw::list_virtual_mfa_devices(status)
    }

    /// `iam:DeactivateMFADevice`: detach `serial_number` from `user_name`.
    /// The host allows it only for a device this run saw attached to that
    /// user (list the user's devices first). [`Applied::Planned`] in a dry run.
    pub fn deactivate_mfa_device(
        user_name: &str,
        serial_number: &str,
    ) -> Result<Applied, IamError> {
        raw::deactivate_mfa_device(user_name, serial_number)
    }

    /// `iam:DeleteVirtualMFADevice`: delete an unassigned virtual MFA device.
    /// [`Applied::Planned`] in a dry run.
    pub fn delete_virtual_mfa_device(serial_number: &str) -> Result<Applied, IamError> {
        raw::delete_virtual_mfa_device(serial_number)
    }

    /// `iam:ListAccessKeys`: every access key of `user_name` (ids and
    /// status; a secret never reaches a runbook).
    pub fn list_access_keys(user_name: &str) -> Result<Vec<AccessKey>, IamError> {
        raw::list_access_keys(user_name)
    }

    /// `iam:GetAccessKeyLastUsed`: when, with which service and in which
    /// region the key was last used. The host allows it only for a key this
    /// run saw listed for a user in scope.
    pub fn get_access_key_last_used(access_key_id: &str) -> Result<AccessKeyLastUsed, IamError> {
        raw::get_access_key_last_used(access_key_id)
    }

    /// `iam:UpdateAccessKey`: make `access_key_id` of `user_name` active or
    /// inactive. The host allows it only for a key this run saw listed for
    /// that user. [`Applied::Planned`] in a dry run.
    pub fn update_access_key(
        user_name: &str,
        access_key_id: &str,
        status: AccessKeyStatus,
    ) -> Result<Applied, IamError> {
        raw::update_access_key(user_name, access_key_id, status)
    }

    /// `iam:DeleteAccessKey`: delete `access_key_id` of `user_name`. Its id is
    /// evidence: prefer [`update_access_key`] to inactive. Only for a key this
    /// run saw listed for that user. [`Applied::Planned`] in a dry run.
    pub fn delete_access_key(user_name: &str, access_key_id: &str) -> Result<Applied, IamError> {
        raw::delete_access_key(user_name, access_key_id)
    }

    /// `iam:AttachUserPolicy`: attach managed policy `policy_arn` to
    /// `user_name`. The manifest must list the ARN in the capability's
    /// `policies`. [`Applied::Planned`] in a dry run.
    pub fn attach_user_policy(user_name: &str, policy_arn: &str) -> Result<Applied, IamError> {
        raw::attach_user_policy(user_name, policy_arn)
    }

    /// `iam:TagUser`: add or overwrite `tags` on `user_name`.
    /// [`Applied::Planned`] in a dry run.
    pub fn tag_user(user_name: &str, tags: &[Tag]) -> Result<Applied, IamError> {
        raw::tag_user(user_name, tags)
    }

    /// `iam:GetCredentialReport`: the account's credential report, one row
    /// per user (the host generates it, waits, fetches and parses it: a few
    /// IAM calls whatever the account's size).
    pub fn get_credential_report() -> Result<Vec<CredentialReportRow>, IamError> {
        raw::get_credential_report()
    }

    /// `iam:GetLoginProfile`: the user's console password as IAM describes
    /// it (never the password), or `None` if the user has none.
    pub fn get_login_profile(user_name: &str) -> Result<Option<LoginProfile>, IamError> {
        raw::get_login_profile(user_name)
    }

    /// `iam:DeleteLoginProfile`: remove the user's console password.
    /// [`Applied::Planned`] in a dry run.
    pub fn delete_login_profile(user_name: &str) -> Result<Applied, IamError> {
        raw::delete_login_profile(user_name)
    }

    /// `iam:ListAttachedUserPolicies`: the managed policies attached to the user.
    pub fn list_attached_user_policies(user_name: &str) -> Result<Vec<AttachedPolicy>, IamError> {
        raw::list_attached_user_policies(user_name)
    }

    /// `iam:ListUserPolicies`: the names of the user's inline policies.
    pub fn list_user_policies(user_name: &str) -> Result<Vec<String>, IamError> {
        raw::list_user_policies(user_name)
    }

    /// `iam:PutUserPolicy`: add or replace inline policy `policy_name` of the
    /// user with `document` (JSON). The manifest must list the name in the
    /// capability's `policies`. [`Applied::Planned`] in a dry run.
    pub fn put_user_policy(
        user_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<Applied, IamError> {
        raw::put_user_policy(user_name, policy_name, document)
    }

    /// `iam:ListGroupsForUser`: the groups the user is in.
    pub fn list_groups_for_user(user_name: &str) -> Result<Vec<Group>, IamError> {
        raw::list_groups_for_user(user_name)
    }

    /// `iam:RemoveUserFromGroup`: only from a group this run saw the user in
    /// ([`list_groups_for_user`] first). [`Applied::Planned`] in a dry run.
    pub fn remove_user_from_group(user_name: &str, group_name: &str) -> Result<Applied, IamError> {
        raw::remove_user_from_group(user_name, group_name)
    }

    /// `iam:DetachUserPolicy`: detach a managed policy the manifest lists.
    /// [`Applied::Planned`] in a dry run.
    pub fn detach_user_policy(user_name: &str, policy_arn: &str) -> Result<Applied, IamError> {
        raw::detach_user_policy(user_name, policy_arn)
    }

    /// `iam:DeleteUserPolicy`: delete an inline policy the manifest lists.
    /// [`Applied::Planned`] in a dry run.
    pub fn delete_user_policy(user_name: &str, policy_name: &str) -> Result<Applied, IamError> {
        raw::delete_user_policy(user_name, policy_name)
    }

    /// `iam:ListUsers`: every user of the account.
    pub fn list_users() -> Result<Vec<User>, IamError> {
        raw::list_users()
    }

    /// `iam:ListUserTags`: the user's tags.
    pub fn list_user_tags(user_name: &str) -> Result<Vec<Tag>, IamError> {
        raw::list_user_tags(user_name)
    }

    impl Applied {
        /// `done` or `planned`: the past tense for a change IAM made, the
        /// conditional for one a dry run only planned (e.g.
        /// `applied.said("deactivated", "would deactivate")`).
        pub fn said<'a>(self, done: &'a str, planned: &'a str) -> &'a str {
            match self {
                Applied::Done => done,
                Applied::Planned => planned,
            }
        }
    }

    /// Whether `serial_number` names a FIDO security key
    /// (`arn:aws:iam::ACCOUNT:u2f/...`): hardware, so never deleted.
    pub fn is_fido_serial(serial_number: &str) -> bool {
        serial_number.starts_with("arn:aws") && serial_number.contains(":u2f/")
    }

    /// Whether `serial_number` names a virtual device
    /// (`arn:aws:iam::ACCOUNT:mfa/NAME`) rather than a hardware TOTP token or a
    /// FIDO security key.
    pub fn is_virtual_serial(serial_number: &str) -> bool {
        let mut parts = serial_number.splitn(6, ':');
        matches!(
            (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next()
            ),
            (Some("arn"), Some(_), Some("iam"), Some(""), Some(account), Some(resource))
                if account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.starts_with("mfa/")
                    && resource.len() > 4
        )
    }

    // The generated `Display` of `IamError` is its `Debug`; this is the form
    // for an operator.
    impl IamError {
        /// The error in words for the operator, e.g. `access denied: ...`.
        pub fn describe(&self) -> String {
            match self {
                IamError::AccessDenied(m) => format!("access denied: {m}"),
                IamError::NoSuchEntity(m) => format!("no such entity: {m}"),
                IamError::Throttled(m) => format!("throttled: {m}"),
                IamError::InvalidInput(m) => format!("invalid input: {m}"),
                IamError::ServiceFailure(e) => format!("{}: {}", e.code, e.message),
            }
        }
    }
}

/// Log lines, recorded in the journal and shown to the operator.
pub mod log {
    use super::wit::log::{self as raw, Level};

    /// Detail for whoever debugs the runbook.
    pub fn debug(message: impl AsRef<str>) {
        raw::log(Level::Debug, message.as_ref());
    }

    /// Progress the operator should see.
    pub fn info(message: impl AsRef<str>) {
        raw::log(Level::Info, message.as_ref());
    }

    /// Something the operator must act on or look at.
    pub fn warn(message: impl AsRef<str>) {
        raw::log(Level::Warn, message.as_ref());
    }

    /// A failure.
    pub fn error(message: impl AsRef<str>) {
        raw::log(Level::Error, message.as_ref());
    }
}

/// The current time, as the host reports it. Use this, never `std::time`: the
/// host records it, so a replay sees the time the recording saw.
pub fn now() -> Instant {
    let raw = wit::clock::now();
    Instant {
        seconds: raw.seconds,
        nanoseconds: raw.nanoseconds,
    }
}

/// Wait `duration` (rounded down to milliseconds, at most `u32::MAX` ms), e.g.
/// before reading again what IAM has not caught up with. The host records the
/// wait, replays it instantly, and counts it against the run's deadline: a
/// wait past the deadline stops the run there.
pub fn sleep(duration: core::time::Duration) {
    let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
    wit::clock::sleep(ms);
}

/// A point in time, UTC, as seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: u64,
    /// Nanoseconds past `seconds`.
    pub nanoseconds: u32,
}

impl Instant {
    /// The time as RFC 3339 UTC, to the second (`2026-11-25T22:08:43Z`): for
    /// tags and policy conditions (`aws:TokenIssueTime`).
    pub fn to_rfc3339(&self) -> String {
        let days = (self.seconds / 86_400) as i64;
        let rem = self.seconds % 86_400;
        // Days to a civil date (Howard Hinnant's `civil_from_days`).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        )
    }
}

/// The parameters the operator gave, as declared in the runbook's manifest.
/// The host has already checked that every required parameter is present.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: Vec<(String, String)>,
}

impl Params {
    /// Parameters from (name, value) pairs; for tests of runbook logic.
    pub fn new(values: Vec<(String, String)>) -> Self {
        Params { values }
    }

    /// The value of `name`, if it was given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or a failure naming the missing parameter.
    pub fn require(&self, name: &str) -> Result<&str, Failure> {
        self.get(name)
            .ok_or_else(|| Failure::new(format!("parameter --{name} is required; pass it")))
    }
}

/// What a finished run reports to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// One line saying what the run did.
    pub summary: String,
    /// What changed, one line each.
    pub changes: Vec<String>,
    /// What the operator must do next, one line each.
    pub next_steps: Vec<String>,
}

impl Outcome {
    /// An outcome with this summary and nothing changed.
    pub fn new(summary: impl Into<String>) -> Self {
        Outcome {
            summary: summary.into(),
            ..Outcome::default()
        }
    }

    /// Add a line saying what changed.
    pub fn changed(mut self, change: impl Into<String>) -> Self {
        self.changes.push(change.into());
        self
    }

    /// Add a line saying what the operator must do next.
    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_steps.push(step.into());
        self
    }
}

/// Why a runbook failed, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure with this message. Name the value at fault and how to fix it.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<iam::IamError> for Failure {
    fn from(e: iam::IamError) -> Self {
        Failure(e.describe())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure(message.to_owned())
    }
}

/// A runbook: implement this and name the type in [`runbook!`].
pub trait Runbook {
    /// Run the procedure. Return what was done, or why it failed.
    fn run(params: &Params) -> Result<Outcome, Failure>;
}

#[doc(hidden)]
pub fn __run<R: Runbook>(params: Vec<(String, String)>) -> Result<__bindings::Outcome, String> {
    let params = Params::new(params);
    match R::run(&params) {
        Ok(o) => Ok(__bindings::Outcome {
            summary: o.summary,
            changes: o.changes,
            next_steps: o.next_steps,
        }),
        Err(f) => Err(f.0),
    }
}

/// Export a [`Runbook`] implementation as the component's `run`, and embed the
/// manifest (`runbook.toml` beside the crate's `Cargo.toml`) in the component's
/// `runbook-manifest` custom section, and the sdk version in `runbook-sdk`,
/// where the host reads them without running any code.
///
/// `runbook!(MyRunbook)` reads `runbook.toml`; `runbook!(MyRunbook, "path")`
/// reads another file, relative to the crate root.
#[macro_export]
macro_rules! runbook {
    ($ty:ty) => {
        $crate::runbook!($ty, "runbook.toml");
    };
    ($ty:ty, $manifest:literal) => {
        #[doc(hidden)]
        #[unsafe(link_section = "runbook-manifest")]
        #[used]
        static __RUNBOOK_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $manifest
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $manifest));

        #[doc(hidden)]
        #[unsafe(link_section = "runbook-sdk")]
        #[used]
        static __RUNBOOK_SDK_VERSION: [u8; $crate::__SDK_VERSION_BYTES.len()] =
            $crate::__SDK_VERSION_BYTES;

        #[doc(hidden)]
        struct __RunbookExport;

        impl $crate::__bindings::Guest for __RunbookExport {
            fn run(
                params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<$crate::__bindings::Outcome, ::std::string::String> {
                $crate::__run::<$ty>(params)
            }
        }

        $crate::__bindings::__export_runbook!(__RunbookExport with_types_in $crate::__bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_serials_are_mfa_arns_and_hardware_tokens_are_not() {
        assert!(iam::is_virtual_serial(
            "arn:aws:iam::123456789012:mfa/mfa-test"
        ));
        assert!(iam::is_virtual_serial(
            "arn:aws-us-gov:iam::123456789012:mfa/a/b"
        ));
        assert!(!iam::is_virtual_serial("GAHT12345678"));
        assert!(!iam::is_virtual_serial("arn:aws:iam::123456789012:mfa/"));
        assert!(!iam::is_virtual_serial(
            "arn:aws:iam::123456789012:user/mfa-test"
        ));
        assert!(!iam::is_virtual_serial("arn:aws:iam::12345:mfa/x"));
        assert!(!iam::is_virtual_serial("arn:aws:sts::123456789012:mfa/x"));
    }

    #[test]
    fn fido_security_keys_are_named_and_never_virtual() {
        let key = "arn:aws:iam::123456789012:u2f/user/alice/fidokey-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        assert!(iam::is_fido_serial(key));
        assert!(!iam::is_virtual_serial(key));
        assert!(!iam::is_fido_serial("GAHT12345678"));
        assert!(!iam::is_fido_serial("arn:aws:iam::123456789012:mfa/alice"));
    }

    #[test]
    fn instants_format_as_rfc3339_utc() {
        let at = |seconds| Instant {
            seconds,
            nanoseconds: 0,
        };
        assert_eq!(at(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400).to_rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_649_130).to_rfc3339(), "2026-11-25T23:25:30Z");
        assert_eq!(at(4_102_444_799).to_rfc3339(), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn require_names_the_missing_parameter() {
        let p = Params::new(vec![("user".into(), "mfa-test".into())]);
        assert_eq!(p.require("user").unwrap(), "mfa-test");
        assert_eq!(
            p.require("role").unwrap_err().message(),
            "parameter --role is required; pass it"
        );
    }
}
