//! The one place the host generates bindings from the WIT contract
//! (`sdk/wit/runbook.wit`), shared with the sdk so the two cannot drift.
//!
//! Every import is `trappable`: the outer `Result` of a host function is a trap
//! (an action that cannot be journaled must not happen), the inner one is the
//! runbook's own error. Generated types derive serde so they go straight into
//! the journal.

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "runbook",
    imports: { default: trappable },
    anyhow: true,
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

pub use runbook::runbook::clock::Instant;
pub use runbook::runbook::iam::{
    AccessKey, AccessKeyLastUsed, AccessKeyStatus, Applied, AssignmentStatus, AttachedPolicy,
    CredentialReportRow, Group, IamError, LoginProfile, MfaDevice, ServiceError, Tag, User,
    VirtualMfaDevice,
};
pub use runbook::runbook::log::Level;

/// The WIT package and version the host implements; recorded in journal headers.
pub const WIT_PACKAGE: &str = "runbook:runbook@0.2.0";

impl IamError {
    /// The error in words for the operator.
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
