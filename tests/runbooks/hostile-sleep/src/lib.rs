//! Attack: sleep for an hour. A WASI sleep would block the host thread where
//! the epoch deadline cannot interrupt it, so the host must refuse the
//! component (it imports `wasi:clocks`) before it runs.

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileSleep;

impl Runbook for HostileSleep {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Ok(Outcome::new("slept for an hour"))
    }
}

runbook_sdk::runbook!(HostileSleep);
