//! Every host call as data: a [`Request`] goes through the capability check,
//! into the journal, to a backend, and comes back as a [`Response`].
//!
//! Having calls as values is what lets one code path serve live AWS, dry-run
//! and replay, and lets replay compare a request with the recorded one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::{
    Applied, AssignmentStatus, IamError, Instant, MfaDevice, User, VirtualMfaDevice,
};

/// One call from a runbook to the host, with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// `iam:GetUser`.
    GetUser {
        /// The user asked for.
        user_name: String,
    },
    /// `iam:ListMFADevices`.
    ListMfaDevices {
        /// Whose devices.
        user_name: String,
    },
    /// `iam:ListVirtualMFADevices`.
    ListVirtualMfaDevices {
        /// Which devices.
        assignment_status: AssignmentStatus,
    },
    /// `iam:DeactivateMFADevice`.
    DeactivateMfaDevice {
        /// The device's user.
        user_name: String,
        /// The device.
        serial_number: String,
    },
    /// `iam:DeleteVirtualMFADevice`.
    DeleteVirtualMfaDevice {
        /// The device.
        serial_number: String,
    },
    /// The wall clock (no IAM action; recorded so replay is deterministic).
    ClockNow,
    /// A wait (no IAM action; recorded, and instant in replay).
    ClockSleep {
        /// How long.
        milliseconds: u32,
    },
}

impl Request {
    /// The operation's name in the journal, e.g. `list-mfa-devices`.
    pub fn op(&self) -> &'static str {
        match self {
            Request::GetUser { .. } => "get-user",
            Request::ListMfaDevices { .. } => "list-mfa-devices",
            Request::ListVirtualMfaDevices { .. } => "list-virtual-mfa-devices",
            Request::DeactivateMfaDevice { .. } => "deactivate-mfa-device",
            Request::DeleteVirtualMfaDevice { .. } => "delete-virtual-mfa-device",
            Request::ClockNow => "clock-now",
            Request::ClockSleep { .. } => "clock-sleep",
        }
    }

    /// The IAM action that grants this call, or `None` for host services
    /// (the clock) that need no grant.
    pub fn action(&self) -> Option<&'static str> {
        match self {
            Request::GetUser { .. } => Some("iam:GetUser"),
            Request::ListMfaDevices { .. } => Some("iam:ListMFADevices"),
            Request::ListVirtualMfaDevices { .. } => Some("iam:ListVirtualMFADevices"),
            Request::DeactivateMfaDevice { .. } => Some("iam:DeactivateMFADevice"),
            Request::DeleteVirtualMfaDevice { .. } => Some("iam:DeleteVirtualMFADevice"),
            Request::ClockNow | Request::ClockSleep { .. } => None,
        }
    }

    /// Whether the call changes IAM (and so needs consent, and is only planned
    /// in a dry run).
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            Request::DeactivateMfaDevice { .. } | Request::DeleteVirtualMfaDevice { .. }
        )
    }

    /// The user-name argument of the call, if it has one: it must be a valid IAM user
    /// name whatever the grant says (IAM takes a missing one as the caller).
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Request::GetUser { user_name }
            | Request::ListMfaDevices { user_name }
            | Request::DeactivateMfaDevice { user_name, .. } => Some(user_name),
            Request::ListVirtualMfaDevices { .. }
            | Request::DeleteVirtualMfaDevice { .. }
            | Request::ClockNow
            | Request::ClockSleep { .. } => None,
        }
    }

    /// The change in words, for plans and consent prompts.
    pub fn describe(&self) -> String {
        match self {
            Request::GetUser { user_name } => format!("get user {user_name}"),
            Request::ListMfaDevices { user_name } => format!("list MFA devices of {user_name}"),
            Request::ListVirtualMfaDevices { assignment_status } => {
                format!(
                    "list {} virtual MFA devices",
                    status_name(*assignment_status)
                )
            }
            Request::DeactivateMfaDevice {
                user_name,
                serial_number,
            } => format!("deactivate MFA device {serial_number} of user {user_name}"),
            Request::DeleteVirtualMfaDevice { serial_number } => {
                format!("delete virtual MFA device {serial_number}")
            }
            Request::ClockNow => "read the clock".to_owned(),
            Request::ClockSleep { milliseconds } => format!("wait {milliseconds} ms"),
        }
    }

    /// The length in bytes of the longest string argument: the call path
    /// checks it against the sandbox's cap before anything else happens.
    pub fn longest_argument(&self) -> usize {
        match self {
            Request::GetUser { user_name } | Request::ListMfaDevices { user_name } => {
                user_name.len()
            }
            Request::DeactivateMfaDevice {
                user_name,
                serial_number,
            } => user_name.len().max(serial_number.len()),
            Request::DeleteVirtualMfaDevice { serial_number } => serial_number.len(),
            Request::ListVirtualMfaDevices { .. }
            | Request::ClockNow
            | Request::ClockSleep { .. } => 0,
        }
    }
}

fn status_name(s: AssignmentStatus) -> &'static str {
    match s {
        AssignmentStatus::Assigned => "assigned",
        AssignmentStatus::Unassigned => "unassigned",
        AssignmentStatus::Any => "all",
    }
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
        };
        v.expect("generated WIT types always serialize")
    }

    /// Read a recorded value back as the answer to `request`; an error says
    /// why the value does not fit the call's type.
    pub fn from_value(request: &Request, value: Value) -> Result<Response, serde_json::Error> {
        Ok(match request {
            Request::GetUser { .. } => Response::User(serde_json::from_value(value)?),
            Request::ListMfaDevices { .. } => Response::MfaDevices(serde_json::from_value(value)?),
            Request::ListVirtualMfaDevices { .. } => {
                Response::VirtualMfaDevices(serde_json::from_value(value)?)
            }
            Request::DeactivateMfaDevice { .. }
            | Request::DeleteVirtualMfaDevice { .. }
            | Request::ClockSleep { .. } => {
                let () = serde_json::from_value(value)?;
                Response::Done
            }
            Request::ClockNow => Response::Instant(serde_json::from_value(value)?),
        })
    }
}

/// What a backend returns for one call.
pub type CallResult = Result<Response, IamError>;

/// Conversion from a [`Response`] to the type a WIT function returns. A
/// mismatch is a host bug or a replay of a journal that lies, and traps.
pub trait FromResponse: Sized {
    /// The typed value, or the response that did not fit.
    fn from_response(r: Response) -> Result<Self, Response>;
}

impl FromResponse for User {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::User(u) => Ok(u),
            other => Err(other),
        }
    }
}

impl FromResponse for Vec<MfaDevice> {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::MfaDevices(d) => Ok(d),
            other => Err(other),
        }
    }
}

impl FromResponse for Vec<VirtualMfaDevice> {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::VirtualMfaDevices(d) => Ok(d),
            other => Err(other),
        }
    }
}

impl FromResponse for () {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Done | Response::Planned => Ok(()),
            other => Err(other),
        }
    }
}

impl FromResponse for Applied {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Done => Ok(Applied::Done),
            Response::Planned => Ok(Applied::Planned),
            other => Err(other),
        }
    }
}

impl FromResponse for Instant {
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Instant(i) => Ok(i),
            other => Err(other),
        }
    }
}
