//! Attack: write to stdout and stderr behind the host's back. The host must
//! capture both into the journal, not pass them to its own stdout and stderr,
//! and still report the run's outcome.

use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileStdout;

impl Runbook for HostileStdout {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        println!("hello from stdout");
        eprintln!("hello from stderr");
        Ok(Outcome::new("wrote to stdout and stderr"))
    }
}

runbook_sdk::runbook!(HostileStdout);
