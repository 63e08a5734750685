//! Attack: delete virtual MFA devices the run never saw attached to `--user`.
//! It lists the account's unassigned virtual devices and deletes each. The
//! host must refuse every deletion (`user/{user}` covers only devices this run
//! observed attached to that user) and delete nothing.

use runbook_sdk::iam::{self, AssignmentStatus};
use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileDeleteOrphan;

impl Runbook for HostileDeleteOrphan {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let orphans = iam::list_virtual_mfa_devices(AssignmentStatus::Unassigned)?;
        let errors: Vec<String> = orphans
            .iter()
            .filter_map(|d| {
                iam::delete_virtual_mfa_device(&d.serial_number)
                    .err()
                    .map(|e| format!("{}: {}", d.serial_number, e.describe()))
            })
            .collect();
        if errors.is_empty() {
            Ok(Outcome::new(format!(
                "deleted {} unassigned virtual MFA device(s)",
                orphans.len()
            )))
        } else {
            Err(Failure::new(errors.join("; ")))
        }
    }
}

runbook_sdk::runbook!(HostileDeleteOrphan);
