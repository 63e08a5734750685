//! The dry-run backend: reads go to the real backend, mutations are planned and
//! not sent. So the runbook still runs to the end, later reads see the planned
//! changes as if they had happened (a deactivated device leaves the user's list
//! and shows up unassigned; a deleted device disappears).

use std::collections::{HashMap, HashSet};

use crate::backend::Backend;
use crate::bindings::{AssignmentStatus, VirtualMfaDevice};
use crate::request::{CallResult, Request, Response};

/// Plans mutations on top of a backend that answers reads.
pub struct DryRun<B> {
    reads: B,
    /// Serial -> the user it was detached from.
    detached: HashMap<String, String>,
    deleted: HashSet<String>,
}

impl<B: Backend> DryRun<B> {
    /// Plan on top of `reads`.
    pub fn new(reads: B) -> Self {
        DryRun {
            reads,
            detached: HashMap::new(),
            deleted: HashSet::new(),
        }
    }
}

impl<B: Backend> Backend for DryRun<B> {
    fn call(&mut self, request: &Request) -> CallResult {
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
            Request::ListMfaDevices { .. } => match self.reads.call(request)? {
                Response::MfaDevices(mut devices) => {
                    devices.retain(|d| !self.detached.contains_key(&d.serial_number));
                    Ok(Response::MfaDevices(devices))
                }
                other => Ok(other),
            },
            Request::ListVirtualMfaDevices { assignment_status } => {
                match self.reads.call(request)? {
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
            Request::GetUser { .. } | Request::ClockNow => self.reads.call(request),
        }
    }
}

fn is_virtual(serial: &str) -> bool {
    serial.starts_with("arn:") && serial.contains(":mfa/")
}
