//! `runbook verify`: check a journal's hash chain and structure.

use std::path::{Path, PathBuf};

use clap::Args;
use runbook_host::exit;
use runbook_host::fleet::{self, Fleet};
use runbook_host::journal::{Journal, JournalError, Partial, first_kind};
use runbook_host::signing::{self, AllowedSigners, Signer};
use runbook_host::transcript::{self, printable, printable_path};

/// Verify a journal: the hash chain, the header and footer, call order, and
/// that it is complete. Names the first bad line. A resumed run's journal is
/// checked against the journal it resumes, where that file is at hand. A
/// fleet journal is verified, then every target journal it names: each must
/// verify and end in the line the fleet journal recorded for it.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal to verify.
    journal: PathBuf,

    /// The sha256 of the journal's last line, as the run printed it and you
    /// kept it elsewhere: the chain detects edits inside the file, this also
    /// detects a rewrite of the whole file.
    #[arg(long, value_name = "SHA256")]
    last_hash: Option<String>,

    /// Require the journal's signature (JOURNAL.sig, written by `runbook run
    /// --sign-journal KEY`) over its last line, by a key this
    /// allowed_signers file lists: a rewrite of the whole file, or of its
    /// footer, fails without the key.
    #[arg(long, value_name = "FILE")]
    trusted_signers: Option<PathBuf>,

    /// The journal's signature (default: JOURNAL.sig beside it).
    #[arg(long, value_name = "FILE", requires = "trusted_signers")]
    signature: Option<PathBuf>,
}

pub fn main(args: VerifyArgs) -> anyhow::Result<u8> {
    if first_kind(&args.journal).as_deref() == Some(fleet::HEADER_KIND) {
        return verify_fleet(&args);
    }
    let j = match Journal::read(&args.journal) {
        Ok(j) => j,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    if !pinned_matches(&args, &j.last_hash, "journal") {
        return Ok(exit::JOURNAL_INVALID);
    }
    let mut signed = String::new();
    if let Some(file) = &args.trusted_signers {
        match signed_by(&args, file, &j.last_hash) {
            Ok(s) => {
                signed = format!(
                    "; signed by {} (key {})",
                    printable(&s.principal),
                    printable(&s.fingerprint)
                );
            }
            Err((code, message)) => {
                super::out::error(message);
                return Ok(code);
            }
        }
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
        "ok: {} is intact: {} line(s), {} call(s), runbook {} (sha256 {}), {}{resumed}; last line sha256 {}{signed}",
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

/// Whether the last line hashes to `--last-hash`, if given; says why not.
/// The path and the operator's hash are printed escaped.
fn pinned_matches(args: &VerifyArgs, last_hash: &str, what: &str) -> bool {
    let Some(pinned) = &args.last_hash else {
        return true;
    };
    if pinned.eq_ignore_ascii_case(last_hash) {
        return true;
    }
    super::out::error(format!(
        "{}: the last line hashes to {last_hash}, not the pinned {}: the {what} was rewritten or is not the one the hash was kept for",
        printable_path(&args.journal),
        printable(pinned)
    ));
    false
}

/// Verify a fleet journal, then every target journal it names; `--last-hash`
/// and `--trusted-signers` apply to the fleet journal's last line.
fn verify_fleet(args: &VerifyArgs) -> anyhow::Result<u8> {
    let f = match Fleet::read(&args.journal) {
        Ok(f) => f,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    if !pinned_matches(args, &f.last_hash, "fleet journal") {
        return Ok(exit::JOURNAL_INVALID);
    }
    let mut signed = String::new();
    if let Some(file) = &args.trusted_signers {
        match signed_by(args, file, &f.last_hash) {
            Ok(s) => {
                signed = format!(
                    "; signed by {} (key {})",
                    printable(&s.principal),
                    printable(&s.fingerprint)
                );
            }
            Err((code, message)) => {
                super::out::error(message);
                return Ok(code);
            }
        }
    }
    let targets = match f.verify_targets(Fleet::dir_of(&args.journal)) {
        Ok(t) => t,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    outln!(
        "ok: fleet journal {} is intact: runbook {} (sha256 {}), {} target(s): {} succeeded, {} failed, {} not run; each of the {} target journal(s) verifies and ends in the line recorded for it; last line sha256 {}{signed}",
        printable_path(&args.journal),
        printable(&f.header.runbook),
        printable(&f.header.wasm_sha256),
        f.header.targets.len(),
        f.footer.succeeded,
        f.footer.failed,
        f.footer.not_run,
        targets.len(),
        f.last_hash
    );
    Ok(exit::SUCCESS)
}

/// Who signed the journal's last line `last_hash`, checked against the
/// allowed_signers `file`; else the exit code and why.
fn signed_by(args: &VerifyArgs, file: &Path, last_hash: &str) -> Result<Signer, (u8, String)> {
    let journal = printable_path(&args.journal);
    let signers =
        AllowedSigners::read(file).map_err(|e| (exit::USAGE, format!("--trusted-signers: {e}")))?;
    let sig_path = args
        .signature
        .clone()
        .unwrap_or_else(|| signing::signature_path(&args.journal));
    let shown = printable_path(&sig_path);
    let invalid = |m: String| (exit::JOURNAL_INVALID, format!("{journal}: {m}"));
    let armored = match signing::read_capped(&sig_path) {
        Ok(a) => a,
        Err(e) if !sig_path.exists() => {
            return Err(invalid(format!(
                "--trusted-signers requires a signed journal, and it has no signature ({shown} does not exist: {e}); a run signs its journal with --sign-journal KEY, and `runbook sign --journal {journal} --key KEY` signs one afterwards"
            )));
        }
        Err(e) => return Err(invalid(e.to_string())),
    };
    let what = format!("its last line (sha256 {last_hash})");
    signers
        .verify(
            signing::JOURNAL_NAMESPACE,
            last_hash.as_bytes(),
            &what,
            &armored,
            &shown,
        )
        .map_err(|e| invalid(e.to_string()))
}
