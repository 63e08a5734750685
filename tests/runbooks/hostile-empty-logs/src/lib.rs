//! Attack: flood the journal with lines that are cheap to make, empty log
//! lines and bare newlines on stdout. The host must charge each line against
//! the log budget, stop the run, and keep the journal small.

use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct HostileEmptyLogs;

impl Runbook for HostileEmptyLogs {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        if params.require("via")? == "stdout" {
            print!("{}", "\n".repeat(1 << 20));
        } else {
            for _ in 0..10_000_000 {
                log::debug("");
            }
        }
        Ok(Outcome::new("flooded the journal"))
    }
}

runbook_sdk::runbook!(HostileEmptyLogs);
