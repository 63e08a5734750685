//! A test runbook: it reads the host clock and reports it, so a replay that does
//! not reproduce the recorded time is caught.

use runbook_sdk::{Failure, Outcome, Params, Runbook, log, now};

struct ClockReader;

impl Runbook for ClockReader {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let first = now();
        let second = now();
        log::info(format!("first {}.{:09}", first.seconds, first.nanoseconds));
        Ok(Outcome::new(format!(
            "read the clock at {}.{:09} and {}.{:09}",
            first.seconds, first.nanoseconds, second.seconds, second.nanoseconds
        )))
    }
}

runbook_sdk::runbook!(ClockReader);
