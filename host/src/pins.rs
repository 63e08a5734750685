//! Pins: the host's own record of the journals it writes, kept where a
//! journal is not (the user's state directory, private to the user).
//!
//! `--resume` answers calls from a journal as if IAM had given those answers
//! again, and the grant learns from them which device belongs to whom. The
//! hash chain proves only that a journal is consistent with itself, not that
//! this host wrote it: anyone who can hand the operator a journal could
//! rewrite a line and its chain. So the host pins the hash of every journal
//! line that records a change (its intent, once the line is written; its
//! outcome; the footer), and a resume trusts a journal only up to its last
//! pinned line, or up to a last-line hash the operator vouches for
//! (`--last-hash`, the hash the run printed). A journal is resumed at most
//! once: a second resume is pointed at the journal that continued it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The host's state directory: `RUNBOOK_STATE_DIR`, else `runbook/` in the
/// user's state directory. Default journals and pins live here.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNBOOK_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("runbook")
}

/// The most a pin file holds: one 65-byte line per change a run records
/// (two per change, and a footer), far below this for any run.
const MAX_PIN_BYTES: u64 = 16 << 20;

/// Where the pins of `journal` are: keyed by its canonical path.
fn pin_path(journal: &Path) -> io::Result<PathBuf> {
    let canonical = std::fs::canonicalize(journal)?;
    let key = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    Ok(state_dir().join("pins").join(key))
}

/// The pins directory, created private to the user; `None` if it is not
/// (someone else could write pins there).
fn pins_dir() -> io::Result<PathBuf> {
    let dir = state_dir().join("pins");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    if !crate::cache::private_dir(&dir) {
        return Err(io::Error::other(format!(
            "{} is not a directory private to this user",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The open pin file of one journal being written.
#[derive(Debug)]
pub struct Pins {
    file: File,
}

impl Pins {
    /// Start pinning `journal` (which exists): its pin file starts empty.
    pub fn create(journal: &Path) -> io::Result<Pins> {
        pins_dir()?;
        let path = pin_path(journal)?;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Pins {
            file: options.open(path)?,
        })
    }

    /// Pin a line hash (the line was written already).
    pub fn pin(&mut self, hash: &str) -> io::Result<()> {
        self.file.write_all(format!("{hash}\n").as_bytes())
    }

    /// Put the pins on disk (with the journal's footer).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// The hashes pinned for `journal`: empty if none were (another machine,
/// another user, a moved or forged journal) or the pins are not private.
pub fn pinned(journal: &Path) -> HashSet<String> {
    let read = || -> io::Result<HashSet<String>> {
        let dir = state_dir().join("pins");
        if !crate::cache::private_dir(&dir) {
            return Ok(HashSet::new());
        }
        let file = File::open(pin_path(journal)?)?;
        let meta = file.metadata()?;
        if !meta.is_file() || !crate::cache::owned_privately(&meta) {
            return Ok(HashSet::new());
        }
        let mut text = String::new();
        file.take(MAX_PIN_BYTES).read_to_string(&mut text)?;
        Ok(text.lines().map(str::to_owned).collect())
    };
    read().unwrap_or_default()
}

/// Record that `journal` is resumed by `by`, once: if it was resumed
/// already, the journal that did (as recorded then).
pub fn claim_resume(journal: &Path, by: &Path) -> Result<(), String> {
    let claim = || -> io::Result<Result<(), String>> {
        pins_dir()?;
        let mut path = pin_path(journal)?.into_os_string();
        path.push(".resumed");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => {
                f.write_all(by.as_os_str().as_encoded_bytes())?;
                f.sync_data()?;
                Ok(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mut by = String::new();
                File::open(&path)?.take(64 << 10).read_to_string(&mut by)?;
                Ok(Err(by))
            }
            Err(e) => Err(e),
        }
    };
    // A state directory that cannot record the claim does not stop a
    // recovery: the pins it needs were checked already.
    claim().unwrap_or(Ok(()))
}
