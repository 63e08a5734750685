//! A benchmark runbook: `--calls N` host calls and nothing else, so the cost of
//! one call through the host's path (check, journal, dispatch) is the slope
//! between two values of N.

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct BenchCalls;

impl Runbook for BenchCalls {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let calls: u32 = params
            .require("calls")?
            .parse()
            .map_err(|e| Failure::new(format!("--calls must be a number: {e}")))?;
        let mut devices = 0;
        for _ in 0..calls {
            devices += iam::list_mfa_devices(user)?.len();
        }
        Ok(Outcome::new(format!("{calls} calls, {devices} devices")))
    }
}

runbook_sdk::runbook!(BenchCalls);
