//! MFA recovery: a user lost their MFA device and cannot sign in.
//!
//! The procedure, in AWS CLI terms:
//! 1. `list-mfa-devices --user-name U`: find the user's devices.
//! 2. `deactivate-mfa-device --user-name U --serial-number S`: for each device.
//! 3. `list-mfa-devices --user-name U`: confirm the list is now empty.
//! 4. `list-virtual-mfa-devices --assignment-status Unassigned`: the virtual
//!    devices just detached are still there, unassigned.
//! 5. `delete-virtual-mfa-device --serial-number S`: delete those, and only
//!    those: never another user's, never an unrelated orphan, never a hardware
//!    token.
//! 6. Tell the operator to have the user re-register MFA at once.

use runbook_sdk::iam::{self, AssignmentStatus, IamError};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct MfaRecovery;

impl Runbook for MfaRecovery {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;

        // 1. The user's devices.
        let devices = iam::list_mfa_devices(user).map_err(|e| match e {
            IamError::NoSuchEntity(_) => Failure::new(format!(
                "IAM user '{user}' does not exist; check the name and the AWS account"
            )),
            other => Failure::new(format!(
                "could not list the MFA devices of '{user}': {}",
                other.describe()
            )),
        })?;
        if devices.is_empty() {
            log::info(format!("'{user}' has no MFA device; nothing to change"));
            return Ok(
                Outcome::new(format!("'{user}' has no MFA device; nothing changed")).next_step(
                    format!("have '{user}' sign in and register an MFA device now"),
                ),
            );
        }
        log::info(format!("'{user}' has {} MFA device(s)", devices.len()));

        // 2. Deactivate each; remember the virtual ones this run detached.
        let mut outcome = Outcome::default();
        let mut detached_virtual = Vec::new();
        for device in &devices {
            let serial = device.serial_number.as_str();
            iam::deactivate_mfa_device(user, serial).map_err(|e| {
                Failure::new(format!(
                    "could not deactivate MFA device '{serial}' of '{user}': {}",
                    e.describe()
                ))
            })?;
            log::info(format!("deactivated '{serial}'"));
            outcome = outcome.changed(format!("deactivated MFA device {serial} of {user}"));
            if iam::is_virtual_serial(serial) {
                detached_virtual.push(serial.to_owned());
            } else {
                log::info(format!(
                    "'{serial}' is a hardware token: deactivated, not deleted"
                ));
            }
        }

        // 3. Confirm the user has no device left.
        let left = iam::list_mfa_devices(user)?;
        if !left.is_empty() {
            let serials: Vec<&str> = left.iter().map(|d| d.serial_number.as_str()).collect();
            return Err(Failure::new(format!(
                "'{user}' still has MFA device(s) after deactivation: {}; run again or deactivate them by hand",
                serials.join(", ")
            )));
        }

        // 4-5. Delete the virtual devices this run detached, if they are still
        // there and unassigned. Nothing else.
        if !detached_virtual.is_empty() {
            let unassigned = iam::list_virtual_mfa_devices(AssignmentStatus::Unassigned)?;
            for serial in &detached_virtual {
                if !unassigned.iter().any(|d| &d.serial_number == serial) {
                    log::warn(format!(
                        "'{serial}' is no longer an unassigned virtual device; left in place"
                    ));
                    continue;
                }
                iam::delete_virtual_mfa_device(serial).map_err(|e| {
                    Failure::new(format!(
                        "deactivated, but could not delete virtual MFA device '{serial}': {}",
                        e.describe()
                    ))
                })?;
                log::info(format!("deleted virtual MFA device '{serial}'"));
                outcome = outcome.changed(format!("deleted virtual MFA device {serial}"));
            }
        }

        // 6. What the operator does next.
        outcome.summary = format!(
            "'{user}' has no MFA device now; {} deactivated",
            devices.len()
        );
        Ok(outcome
            .next_step(format!(
                "have '{user}' sign in now and register a new MFA device at once"
            ))
            .next_step(format!(
                "until then '{user}' can sign in with a password alone: keep the window short"
            )))
    }
}

runbook_sdk::runbook!(MfaRecovery);
