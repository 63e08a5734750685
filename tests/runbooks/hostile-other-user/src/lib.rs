//! Attack: granted `user/{user}`, touch another user's devices. Run with
//! `--user mfa-test`, it lists and deactivates `alice`'s MFA device. The host
//! must refuse both calls with `access-denied`, leave alice's device attached,
//! and send neither call to the backend.

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct HostileOtherUser;

impl Runbook for HostileOtherUser {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let mut errors = Vec::new();
        match iam::list_mfa_devices("alice") {
            Ok(d) => errors.push(format!("list_mfa_devices succeeded: {} device(s)", d.len())),
            Err(e) => errors.push(format!("list_mfa_devices: {}", e.describe())),
        }
        match iam::deactivate_mfa_device("alice", "arn:aws:iam::123456789012:mfa/alice") {
            Ok(_) => errors.push("deactivate_mfa_device succeeded".to_owned()),
            Err(e) => errors.push(format!("deactivate_mfa_device: {}", e.describe())),
        }
        Err(Failure::new(errors.join("; ")))
    }
}

runbook_sdk::runbook!(HostileOtherUser);
