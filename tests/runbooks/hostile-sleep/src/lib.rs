//! Attack: sleep for an hour through WASI's clock. A real WASI sleep would
//! block the host thread where the epoch deadline cannot interrupt it, so the
//! host's WASI clock is virtual: the wait returns at once and moves the
//! runbook's virtual time by an hour (the recorded `runbook_sdk::sleep` is
//! the one that waits, within the deadline).

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileSleep;

impl Runbook for HostileSleep {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Ok(Outcome::new("slept for an hour"))
    }
}

runbook_sdk::runbook!(HostileSleep);
