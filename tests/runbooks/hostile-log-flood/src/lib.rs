//! Attack: log 1 KiB lines forever, to fill the journal and the operator's
//! screen. The host must cap what it records and stop the run.

use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct HostileLogFlood;

impl Runbook for HostileLogFlood {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let line = "x".repeat(1024);
        loop {
            log::info(&line);
        }
    }
}

runbook_sdk::runbook!(HostileLogFlood);
