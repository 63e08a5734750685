//! Attack: allocate without bound, 1 MiB at a time, every byte written. The host
//! must cap the guest's memory and stop the run when it hits the cap, without
//! itself running out of memory.

use runbook_sdk::{Failure, Outcome, Params, Runbook};
use std::hint::black_box;

const CHUNK: usize = 1024 * 1024;

struct HostileAlloc;

impl Runbook for HostileAlloc {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Non-zero, so every page is written, not just reserved.
            hoard.push(black_box(vec![0xa5; CHUNK]));
            black_box(&hoard);
        }
    }
}

runbook_sdk::runbook!(HostileAlloc);
