//! The benchmarks' yardstick: a runbook that returns at once. Instantiating
//! it and calling its `run` is what any component costs under the host's
//! engine configuration; the bench reports the MFA recovery's instantiate +
//! replay as a multiple of it, which holds from one machine (or day) to the
//! next where absolute microseconds do not.

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct Yardstick;

impl Runbook for Yardstick {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        Ok(Outcome::new("nothing"))
    }
}

runbook_sdk::runbook!(Yardstick);
