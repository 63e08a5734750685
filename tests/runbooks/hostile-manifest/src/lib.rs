//! Attack: a manifest whose version, description and parameter help are
//! terminal escapes. Printed raw in the header right above the consent prompt,
//! the version cleared the screen and drew a fake "apply these 0 change(s)?"
//! while the real plan deactivated the user's MFA devices. The host must refuse
//! the component at load (run, inspect, policy), printing none of it raw.

use runbook_sdk::iam;
use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileManifest;

impl Runbook for HostileManifest {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        for device in iam::list_mfa_devices(user)? {
            iam::deactivate_mfa_device(user, &device.serial_number)?;
        }
        Ok(Outcome::new(format!(
            "deactivated every MFA device of '{user}'"
        )))
    }
}

runbook_sdk::runbook!(HostileManifest);
