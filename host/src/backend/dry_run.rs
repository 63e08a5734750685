//! The dry-run backend: reads go to the real backend, mutations are planned and
//! not sent. So the runbook still runs to the end, later reads see the planned
//! changes as if they had happened (a deactivated device leaves the user's list
//! and shows up unassigned; a deleted device disappears).

use std::collections::{HashMap, HashSet};

use std::time::Instant;

use crate::backend::{Answer, Backend};
use crate::bindings::{AccessKeyStatus, AssignmentStatus, VirtualMfaDevice};
use crate::request::{CallResult, Request, Response};

/// Plans mutations on top of a backend that answers reads.
pub struct DryRun<B> {
    reads: B,
    /// Serial -> the user it was detached from.
    detached: HashMap<String, String>,
    deleted: HashSet<String>,
    /// Access key id -> the status a planned update gave it.
    key_status: HashMap<String, AccessKeyStatus>,
    deleted_keys: HashSet<String>,
    /// Users whose console password a planned change deleted (lowercase).
    no_login: HashSet<String>,
}

impl<B: Backend> DryRun<B> {
    /// Plan on top of `reads`.
    pub fn new(reads: B) -> Self {
        DryRun {
            reads,
            detached: HashMap::new(),
            deleted: HashSet::new(),
            key_status: HashMap::new(),
            deleted_keys: HashSet::new(),
            no_login: HashSet::new(),
        }
    }
}

impl<B: Backend> Backend for DryRun<B> {
    fn call(&mut self, request: &Request, deadline: Instant) -> Answer {
        // A change (as its operation declares) is planned, never sent.
        let mut answer = if request.is_mutation() {
            Answer::from(Ok(Response::Planned))
        } else {
            self.reads.call(request, deadline)
        };
        answer.result = answer.result.and_then(|r| self.simulate(request, r));
        answer
    }

    fn ready(&mut self, request: &Request, deadline: Instant) -> Result<(), super::NotReady> {
        // A planned change needs no client.
        if request.is_mutation() {
            Ok(())
        } else {
            self.reads.ready(request, deadline)
        }
    }
}

impl<B> DryRun<B> {
    /// Plan a mutation, or show a read's answer as if the planned changes had
    /// been made.
    fn simulate(&mut self, request: &Request, response: Response) -> CallResult {
        match request {
            Request::DeactivateMfaDevice {
                user_name,
                serial_number,
            } => {
                self.detached
                    .insert(serial_number.clone(), user_name.clone());
                Ok(Response::Planned)
            }
            Request::DeleteVirtualMfaDevice { serial_number } => {
                self.deleted.insert(serial_number.clone());
                Ok(Response::Planned)
            }
            Request::ListMfaDevices { .. } => match response {
                Response::MfaDevices(mut devices) => {
                    devices.retain(|d| !self.detached.contains_key(&d.serial_number));
                    Ok(Response::MfaDevices(devices))
                }
                other => Ok(other),
            },
            Request::ListVirtualMfaDevices { assignment_status } => {
                match response {
                    Response::VirtualMfaDevices(mut devices) => {
                        devices.retain(|d| !self.deleted.contains(&d.serial_number));
                        for d in &mut devices {
                            if self.detached.contains_key(&d.serial_number) {
                                d.user_name = None;
                                d.enable_date = None;
                            }
                        }
                        match assignment_status {
                            AssignmentStatus::Assigned => devices.retain(|d| d.user_name.is_some()),
                            AssignmentStatus::Unassigned => {
                                // Devices detached by the plan were assigned when
                                // listed: add the virtual ones as unassigned.
                                for serial in self.detached.keys() {
                                    if is_virtual(serial)
                                        && !self.deleted.contains(serial)
                                        && !devices.iter().any(|d| &d.serial_number == serial)
                                    {
                                        devices.push(VirtualMfaDevice {
                                            serial_number: serial.clone(),
                                            user_name: None,
                                            enable_date: None,
                                        });
                                    }
                                }
                                devices.sort_by(|a, b| a.serial_number.cmp(&b.serial_number));
                            }
                            AssignmentStatus::Any => {}
                        }
                        Ok(Response::VirtualMfaDevices(devices))
                    }
                    other => Ok(other),
                }
            }
            Request::UpdateAccessKey {
                access_key_id,
                status,
                ..
            } => {
                self.key_status.insert(access_key_id.clone(), *status);
                Ok(Response::Planned)
            }
            Request::DeleteAccessKey { access_key_id, .. } => {
                self.deleted_keys.insert(access_key_id.clone());
                Ok(Response::Planned)
            }
            Request::ListAccessKeys { .. } => match response {
                Response::AccessKeys(mut keys) => {
                    keys.retain(|k| !self.deleted_keys.contains(&k.access_key_id));
                    for k in &mut keys {
                        if let Some(status) = self.key_status.get(&k.access_key_id) {
                            k.status = *status;
                        }
                    }
                    Ok(Response::AccessKeys(keys))
                }
                other => Ok(other),
            },
            Request::DeleteLoginProfile { user_name } => {
                self.no_login.insert(user_name.to_lowercase());
                Ok(Response::Planned)
            }
            Request::GetLoginProfile { user_name }
                if self.no_login.contains(&user_name.to_lowercase()) =>
            {
                Ok(Response::LoginProfile(None))
            }
            // Every other call: a change is planned (its operation's
            // declaration says it mutates, so `call` never sent it), a read
            // is answered as IAM answered it. An operation whose planned
            // effect a later read must show gets its own case above.
            _ => Ok(response),
        }
    }
}

fn is_virtual(serial: &str) -> bool {
    serial.starts_with("arn:") && serial.contains(":mfa/")
}
