//! Attack: log nothing, then return a 10 MB outcome. The outcome is the
//! runbook's text too: the host must charge it to the log budget and refuse
//! it, rather than write a 10 MB journal line and print 10 MB.

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileHugeOutcome;

impl Runbook for HostileHugeOutcome {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        Ok(Outcome::new("x".repeat(10 * 1024 * 1024)).next_step("y".repeat(1024)))
    }
}

runbook_sdk::runbook!(HostileHugeOutcome);
