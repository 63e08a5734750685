//! MFA recovery: a user lost their MFA device and cannot sign in.
//!
//! The procedure, in AWS CLI terms:
//! 1. `list-mfa-devices --user-name U`: find the user's devices.
//! 2. `deactivate-mfa-device --user-name U --serial-number S`: for each device.
//! 3. `list-mfa-devices --user-name U`: confirm the list is now empty.
//! 4. `list-virtual-mfa-devices --assignment-status Unassigned`: the virtual
//!    devices just detached are still there, unassigned.
//! 5. `delete-virtual-mfa-device --serial-number S`: delete those, and only
//!    those: never another user's, never an unrelated orphan, never a
//!    hardware token or FIDO security key.
//! 6. Tell the operator to have the user re-register MFA at once.
//!
//! IAM is eventually consistent: right after a deactivation, a read can still
//! list the device as attached, miss it among the unassigned ones, or refuse
//! to delete it (`DeleteConflict`). Before deciding that, the runbook reads
//! again with backoff, about 20 s in all. A virtual device it detached and
//! could not delete is a failure, never a success: the host prints the
//! `--resume` command that finishes the job without repeating what was done.

use std::time::Duration;

use runbook_sdk::iam::{self, Applied, AssignmentStatus, IamError};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct MfaRecovery;

/// The waits between re-reads while IAM catches up: 20 s in all, shared by
/// the whole run. IAM usually converges within seconds.
const WAITS_MS: [u64; 5] = [1_000, 2_000, 4_000, 8_000, 5_000];

/// How long the run may still wait for IAM to catch up.
struct Patience(std::slice::Iter<'static, u64>);

impl Patience {
    /// Wait before reading again, saying why; `false` once the 20 s are spent.
    fn wait(&mut self, why: &str) -> bool {
        let Some(&ms) = self.0.next() else {
            return false;
        };
        log::info(format!(
            "{why}; IAM may not have caught up yet: reading again in {} s",
            ms as f64 / 1000.0
        ));
        runbook_sdk::sleep(Duration::from_millis(ms));
        true
    }
}

impl Runbook for MfaRecovery {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let mut patience = Patience(WAITS_MS.iter());

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
        let mut planned = false;
        for device in &devices {
            let serial = device.serial_number.as_str();
            let verb = match iam::deactivate_mfa_device(user, serial) {
                Ok(applied) => {
                    planned |= applied == Applied::Planned;
                    applied.said("deactivated", "would deactivate")
                }
                // An earlier attempt (a resumed run's) may have detached it
                // already: step 3 confirms.
                Err(IamError::NoSuchEntity(m)) => {
                    log::warn(format!(
                        "IAM says '{serial}' is not attached to '{user}' ({m}): taken as already deactivated; checked below"
                    ));
                    "found deactivated"
                }
                Err(e) => {
                    return Err(Failure::new(format!(
                        "could not deactivate MFA device '{serial}' of '{user}': {}",
                        e.describe()
                    )));
                }
            };
            log::info(format!("{verb} '{serial}'"));
            outcome = outcome.changed(format!("{verb} MFA device {serial} of {user}"));
            if iam::is_virtual_serial(serial) {
                detached_virtual.push(serial.to_owned());
            } else if iam::is_fido_serial(serial) {
                log::info(format!(
                    "'{serial}' is a FIDO security key: deactivated, never deleted"
                ));
            } else {
                log::info(format!(
                    "'{serial}' is a hardware MFA device: deactivated, never deleted"
                ));
            }
        }

        // 3. Confirm the user has no device left.
        let mut left = iam::list_mfa_devices(user)?;
        while !left.is_empty()
            && patience.wait(&format!(
                "IAM still lists {} MFA device(s) of '{user}'",
                left.len()
            ))
        {
            left = iam::list_mfa_devices(user)?;
        }
        if !left.is_empty() {
            let serials: Vec<&str> = left.iter().map(|d| d.serial_number.as_str()).collect();
            return Err(Failure::new(format!(
                "'{user}' still has MFA device(s) after deactivation and 20 s of re-reads: {}",
                serials.join(", ")
            )));
        }

        // 4-5. Delete the virtual devices this run detached once IAM lists
        // them as unassigned. Nothing else.
        let mut pending = detached_virtual;
        while !pending.is_empty() {
            let unassigned = iam::list_virtual_mfa_devices(AssignmentStatus::Unassigned)?;
            let mut waiting = Vec::new();
            for serial in pending {
                if !unassigned.iter().any(|d| d.serial_number == serial) {
                    waiting.push(serial);
                    continue;
                }
                let verb = match iam::delete_virtual_mfa_device(&serial) {
                    Ok(applied) => applied.said("deleted", "would delete"),
                    // Deleted by an earlier attempt (a resumed run's).
                    Err(IamError::NoSuchEntity(_)) => "found deleted",
                    // IAM still sees it attached.
                    Err(IamError::ServiceFailure(e)) if e.code == "DeleteConflict" => {
                        waiting.push(serial);
                        continue;
                    }
                    Err(e) => {
                        return Err(Failure::new(format!(
                            "deactivated, but could not delete virtual MFA device '{serial}': {}",
                            e.describe()
                        )));
                    }
                };
                log::info(format!("{verb} virtual MFA device '{serial}'"));
                outcome = outcome.changed(format!("{verb} virtual MFA device {serial}"));
            }
            pending = waiting;
            if !pending.is_empty()
                && !patience.wait(&format!(
                    "IAM does not yet list {} as unassigned and deletable",
                    pending.join(", ")
                ))
            {
                return Err(Failure::new(format!(
                    "deactivated, but the detached virtual MFA device(s) {} are not deleted: after 20 s IAM still does not list them as unassigned or refuses to delete them; they are left in the account, unassigned: resume this run to delete them",
                    pending.join(", ")
                )));
            }
        }

        // 6. What the operator does next.
        if planned {
            outcome.summary = format!(
                "dry run: '{user}' would have no MFA device; {} would be deactivated",
                devices.len()
            );
            return Ok(outcome.next_step("nothing was changed: run without --dry-run to apply"));
        }
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
