//! MFA audit: who can sign in to the console with a password alone?
//!
//! Read-only. One credential report (a few IAM calls whatever the account's
//! size, never one call per user): every user with a console password and no
//! MFA device, with when they last signed in. The root user is named too.

use runbook_sdk::iam;
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct MfaAudit;

impl Runbook for MfaAudit {
    fn run(_params: &Params) -> Result<Outcome, Failure> {
        let rows = iam::get_credential_report()?;
        let exposed: Vec<_> = rows
            .iter()
            .filter(|r| r.password_enabled && !r.mfa_active)
            .collect();
        log::info(format!(
            "{} user(s) in the credential report, {} with a console password and no MFA",
            rows.len(),
            exposed.len()
        ));
        let mut outcome = Outcome::new(format!(
            "{} of {} user(s) can sign in to the console with a password alone (no MFA)",
            exposed.len(),
            rows.len()
        ));
        for r in exposed {
            outcome = outcome.next_step(format!(
                "{}: console password, no MFA; last sign-in {}",
                r.user_name,
                r.password_last_used.as_deref().unwrap_or("never")
            ));
        }
        Ok(outcome)
    }
}

runbook_sdk::runbook!(MfaAudit);
