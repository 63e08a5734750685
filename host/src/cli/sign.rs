//! `runbook sign`: sign a runbook component (or a journal) with an SSH key,
//! into a detached signature `ssh-keygen -Y verify` reads.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use runbook_host::exit;
use runbook_host::journal::Partial;
use runbook_host::manifest::Manifest;
use runbook_host::project;
use runbook_host::signing::{self, SigningError, SigningKey};
use runbook_host::transcript::{printable, printable_path};

/// Sign a runbook component with an SSH private key: writes a detached
/// SSHSIG signature (namespace `runbook`) to COMPONENT.sig, which `runbook
/// run --trusted-signers` checks and `ssh-keygen -Y verify -n runbook`
/// accepts. With --journal, sign a journal's last line instead, as `run
/// --sign-journal` does.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The runbook component (.wasm) to sign, or with --journal the journal.
    file: PathBuf,

    /// The OpenSSH private key to sign with, e.g. ~/.ssh/id_ed25519. An
    /// encrypted key's passphrase comes from RUNBOOK_KEY_PASSPHRASE, or is
    /// asked for on a terminal.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,

    /// Write the signature here (default: FILE.sig beside FILE).
    #[arg(long, short, value_name = "SIG")]
    output: Option<PathBuf>,

    /// FILE is a journal: sign its last line's sha256 (namespace
    /// `runbook-journal`), for `runbook verify --trusted-signers`. A
    /// journal's signature file is never replaced.
    #[arg(long)]
    journal: bool,
}

pub fn main(args: SignArgs) -> anyhow::Result<u8> {
    let shown = printable_path(&args.file);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| signing::signature_path(&args.file));
    // What is signed, checked first: a wrong file is not signed.
    let (namespace, message, what) = if args.journal {
        let j = match Partial::read(&args.file) {
            Ok(j) => j,
            Err(e) => {
                super::out::error(e);
                return Ok(exit::JOURNAL_INVALID);
            }
        };
        if output.exists() {
            super::out::error(format!(
                "{} already exists: a journal's signature is never replaced; check it with `runbook verify {shown} --trusted-signers FILE`, or write another with --output",
                printable_path(&output)
            ));
            return Ok(exit::USAGE);
        }
        let what = format!("journal {shown} (last line sha256 {})", j.last_hash);
        (signing::JOURNAL_NAMESPACE, j.last_hash.into_bytes(), what)
    } else {
        let bytes = match project::read_component(&args.file) {
            Ok(b) => b,
            Err(e) => {
                super::out::error(e);
                return Ok(exit::HOST_ERROR);
            }
        };
        let manifest = match Manifest::from_wasm(&bytes) {
            Ok(m) => m,
            Err(e) => {
                super::out::error(format!(
                    "{shown} is not a runbook component ({e}); give the .wasm a runbook crate builds (with --journal, a journal)"
                ));
                return Ok(exit::HOST_ERROR);
            }
        };
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let what = format!(
            "runbook {} {} (sha256 {sha256})",
            printable(&manifest.name),
            printable(&manifest.version)
        );
        (signing::NAMESPACE, bytes, what)
    };
    let key = match load_key(&args.key) {
        Ok(k) => k,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::USAGE);
        }
    };
    let armored = match key.sign(namespace, &message) {
        Ok(s) => s,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::USAGE);
        }
    };
    if let Err(e) = write_signature(&output, &armored, args.journal) {
        super::out::error(e);
        return Ok(exit::HOST_ERROR);
    }
    outln!(
        "signed {what} with key {}: {}",
        key.fingerprint(),
        printable_path(&output)
    );
    Ok(exit::SUCCESS)
}

/// Read the private key at `path`; an encrypted one is opened with
/// RUNBOOK_KEY_PASSPHRASE, or a passphrase asked for on the terminal.
pub fn load_key(path: &Path) -> Result<SigningKey, SigningError> {
    match SigningKey::read(path, None) {
        Err(SigningError::Encrypted { path: shown }) => {
            if let Some(passphrase) = std::env::var_os("RUNBOOK_KEY_PASSPHRASE") {
                let passphrase = passphrase.into_string().map_err(|_| SigningError::Key {
                    path: shown.clone(),
                    reason: "RUNBOOK_KEY_PASSPHRASE is not UTF-8".into(),
                })?;
                return SigningKey::read(path, Some(&passphrase));
            }
            if !std::io::stdin().is_terminal() {
                return Err(SigningError::Encrypted { path: shown });
            }
            let passphrase = rpassword::prompt_password(format!("passphrase for {shown}: "))
                .map_err(|e| SigningError::Key {
                    path: shown.clone(),
                    reason: format!("cannot read the passphrase: {e}"),
                })?;
            SigningKey::read(path, Some(&passphrase))
        }
        other => other,
    }
}

/// Write `armored` to `path`: replacing a component's signature (re-signing
/// a rebuilt component, as `ssh-keygen -Y sign` does), never a journal's.
pub fn write_signature(path: &Path, armored: &str, journal: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut options = std::fs::File::options();
    options.write(true);
    if journal {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write the signature {}", printable_path(path)))?;
    file.write_all(armored.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the signature {}", printable_path(path)))
}
