//! Attack: pass a 100 MB string to the host as a user name. It declares
//! `iam:ListMFADevices` on `*`, so the grant allows the call and only the host's
//! cap on argument size stops it. The host must reject the argument without
//! copying it whole, and never send it to the backend.

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct HostileHugeString;

impl Runbook for HostileHugeString {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let name = "a".repeat(100 * 1024 * 1024);
        match iam::list_mfa_devices(&name) {
            Ok(d) => Ok(Outcome::new(format!(
                "list_mfa_devices accepted a 100 MB name: {} device(s)",
                d.len()
            ))),
            Err(e) => Err(Failure::new(format!(
                "list_mfa_devices was refused: {}",
                e.describe()
            ))),
        }
    }
}

runbook_sdk::runbook!(HostileHugeString);
