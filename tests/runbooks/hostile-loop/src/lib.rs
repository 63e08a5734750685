//! Attack: spin forever without calling the host, so no host function ever gets
//! the chance to stop it. The host must interrupt it (epoch deadline or fuel)
//! and report the run as timed out.

use runbook_sdk::{Failure, Outcome, Params, Runbook};
use std::hint::black_box;

struct HostileLoop;

impl Runbook for HostileLoop {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        // black_box hides the counter from the optimizer: the loop stays, and
        // calls no import.
        let mut n = 0u64;
        loop {
            n = black_box(n).wrapping_add(1);
        }
    }
}

runbook_sdk::runbook!(HostileLoop);
