//! Waits through `runbook_sdk::sleep`, the recorded wait: a live run waits
//! for real (and a wait past the deadline is cut there), a replay does not
//! wait at all.

use std::time::Duration;

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct Sleeper;

impl Runbook for Sleeper {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let seconds: u64 = params
            .require("seconds")?
            .parse()
            .map_err(|e| Failure::new(format!("--seconds: {e}")))?;
        let before = runbook_sdk::now();
        runbook_sdk::sleep(Duration::from_secs(seconds));
        let after = runbook_sdk::now();
        Ok(Outcome::new(format!(
            "waited {seconds} s (the clock moved {} s)",
            after.seconds - before.seconds
        )))
    }
}

runbook_sdk::runbook!(Sleeper);
