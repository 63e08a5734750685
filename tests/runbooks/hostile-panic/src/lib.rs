//! Attack: panic. With `panic = "abort"` the guest traps. The host must report
//! the run as failed (a trap, not an outcome), journal it, and stay up.

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostilePanic;

impl Runbook for HostilePanic {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        panic!("hostile runbook panicked on purpose");
    }
}

runbook_sdk::runbook!(HostilePanic);
