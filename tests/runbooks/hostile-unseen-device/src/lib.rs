//! Attack, under a grant on `*`: (1) list the devices of an empty user name
//! (IAM would answer for the caller); (2) deactivate alice's device without
//! ever listing alice's devices; (3) list mfa-test's devices, then claim
//! alice's serial is mfa-test's. The host must deny all three unsent.

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct HostileUnseenDevice;

const ALICE: &str = "arn:aws:iam::123456789012:mfa/alice";

impl Runbook for HostileUnseenDevice {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let mut got = Vec::new();
        got.push(match iam::list_mfa_devices("") {
            Ok(d) => format!("empty user: {} device(s)", d.len()),
            Err(e) => format!("empty user: {}", e.describe()),
        });
        got.push(match iam::deactivate_mfa_device("alice", ALICE) {
            Ok(_) => "unseen: deactivated".to_owned(),
            Err(e) => format!("unseen: {}", e.describe()),
        });
        let _ = iam::list_mfa_devices(user);
        got.push(match iam::deactivate_mfa_device(user, ALICE) {
            Ok(_) => "claimed: deactivated".to_owned(),
            Err(e) => format!("claimed: {}", e.describe()),
        });
        Err(Failure::new(got.join(" | ")))
    }
}

runbook_sdk::runbook!(HostileUnseenDevice);
