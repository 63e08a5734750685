//! Attack: call an IAM action the manifest does not declare. It declares only
//! `iam:ListMFADevices` and calls `iam:GetUser`. The host must refuse the call
//! with `access-denied` and never send it to the backend.

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct HostileUndeclared;

impl Runbook for HostileUndeclared {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        match iam::get_user(user) {
            Ok(u) => Ok(Outcome::new(format!("get_user succeeded: {}", u.arn))),
            Err(e) => Err(Failure::new(format!(
                "get_user was refused: {}",
                e.describe()
            ))),
        }
    }
}

runbook_sdk::runbook!(HostileUndeclared);
