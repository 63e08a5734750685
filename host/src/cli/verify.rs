//! `runbook verify`: check a journal's hash chain and structure.

use std::path::{Path, PathBuf};

use clap::Args;
use runbook_host::exit;
use runbook_host::journal::{Journal, JournalError, Partial};
use runbook_host::transcript::{self, printable, printable_path};

/// Verify a journal: the hash chain, the header and footer, call order, and
/// that it is complete. Names the first bad line. A resumed run's journal is
/// checked against the journal it resumes, where that file is at hand.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal to verify.
    journal: PathBuf,

    /// The sha256 of the journal's last line, as the run printed it and you
    /// kept it elsewhere: the chain detects edits inside the file, this also
    /// detects a rewrite of the whole file.
    #[arg(long, value_name = "SHA256")]
    last_hash: Option<String>,
}

pub fn main(args: VerifyArgs) -> anyhow::Result<u8> {
    let j = match Journal::read(&args.journal) {
        Ok(j) => j,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    if let Some(pinned) = &args.last_hash
        && !pinned.eq_ignore_ascii_case(&j.last_hash)
    {
        super::out::error(format!(
            "{}: the last line hashes to {}, not the pinned {}: the journal was rewritten or is not the one the hash was kept for",
            args.journal.display(),
            j.last_hash,
            pinned
        ));
        return Ok(exit::JOURNAL_INVALID);
    }
    // The journal a resumed run continued: its answers stand in this one, so
    // it must still end in the line it had when it was resumed.
    let mut resumed = String::new();
    if let Some(r) = &j.header.resumes {
        let path = Path::new(&r.journal);
        match Partial::read(path) {
            Ok(p) if p.last_hash == r.last_hash => {
                resumed = format!(
                    "; resumes {}, which still ends in the pinned line",
                    printable_path(path)
                );
            }
            Ok(p) => {
                super::out::error(format!(
                    "{}:1: it resumes {}, pinned at last line sha256 {}, but that journal now ends in sha256 {}: it changed after it was resumed",
                    args.journal.display(),
                    r.journal,
                    r.last_hash,
                    p.last_hash
                ));
                return Ok(exit::JOURNAL_INVALID);
            }
            Err(e) if !matches!(&e, JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) =>
            {
                super::out::error(format!(
                    "{}:1: it resumes {}, which is damaged: {e}",
                    args.journal.display(),
                    r.journal
                ));
                return Ok(exit::JOURNAL_INVALID);
            }
            Err(e) => {
                resumed = format!(
                    "; resumes {} (pinned at sha256 {}), which cannot be checked here: {}",
                    printable_path(path),
                    printable(&r.last_hash),
                    printable(&e.to_string())
                );
            }
        }
    }
    // The journal's values are escaped and cut (the outcome line is).
    outln!(
        "ok: {} is intact: {} line(s), {} call(s), runbook {} (sha256 {}), {}{resumed}; last line sha256 {}",
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
