//! `runbook verify`: check a journal's hash chain and structure.

use std::path::PathBuf;

use clap::Args;
use runbook_host::journal::Journal;
use runbook_host::sandbox::exit;
use runbook_host::transcript::{self, printable, printable_path};

/// Verify a journal: the hash chain, the header and footer, call order, and
/// that it is complete. Names the first bad line.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal to verify.
    journal: PathBuf,
}

pub fn main(args: VerifyArgs) -> anyhow::Result<u8> {
    match Journal::read(&args.journal) {
        Ok(j) => {
            // The journal's values are escaped and cut (the outcome line is).
            outln!(
                "ok: {} is intact: {} line(s), {} call(s), runbook {} (sha256 {}), {}; last line sha256 {}",
                printable_path(&args.journal),
                j.records.len(),
                j.footer.calls,
                printable(&j.header.runbook),
                printable(&j.header.wasm_sha256),
                transcript::outcome_line(&j.footer.outcome),
                j.last_hash
            );
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            super::out::error(e);
            Ok(exit::JOURNAL_INVALID)
        }
    }
}
