//! Burns fuel between two IAM calls: lists the user's MFA devices, goes
//! round a loop `--rounds` times without calling the host, then lists them
//! again. With a small `--max-fuel` it runs out in the loop, after the first
//! call and before the second, live and in replay alike.

use std::hint::black_box;

use runbook_sdk::{Failure, Outcome, Params, Runbook, iam};

struct FuelBurner;

impl Runbook for FuelBurner {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let rounds: u64 = params
            .require("rounds")?
            .parse()
            .map_err(|e| Failure::new(format!("--rounds: {e}")))?;
        let before = iam::list_mfa_devices(user)?.len();
        // black_box keeps the loop: the optimizer may not fold it away.
        let mut n = 0u64;
        for _ in 0..rounds {
            n = black_box(n).wrapping_add(1);
        }
        let after = iam::list_mfa_devices(user)?.len();
        Ok(Outcome::new(format!(
            "{user} had {before} device(s), went round {n} time(s), has {after}"
        )))
    }
}

runbook_sdk::runbook!(FuelBurner);
