//! The fleet journal: the record of one runbook run across many targets
//! (users, AWS accounts), kept as `DIR/fleet.jsonl` beside one ordinary run
//! journal per target.
//!
//! It is a journal in the same hash-chained JSON Lines format as a run's
//! ([`crate::journal`]): each line carries `prev`, the sha256 of the line
//! before it, the first line's is all zeros, and the same caps, torn-line
//! rule and errors apply. Its lines, by `kind`:
//!
//! - `fleet`: the header ([`FleetHeader`]): the runbook, who ran it, the
//!   concurrency and failure policy, and every target.
//! - `target-started` ([`TargetStarted`]): a target's run is about to start,
//!   and the file its journal goes to. A run killed part-way leaves this
//!   line without a `target-done`; a resume continues that journal.
//! - `target-done` ([`TargetDone`]): a target finished (or failed to run):
//!   its exit code, outcome, changes, and the sha256 of its journal's last
//!   line, which pins that journal as the chain pins this one's lines.
//! - `resumed` ([`Resumed`]): the fleet run was killed and resumed here.
//! - `fleet-footer` ([`FleetFooter`]): how many targets succeeded, failed,
//!   were not run.
//!
//! None of these kinds is one a run's journal has, so a reader of run
//! journals refuses a fleet journal at its first line, and the reverse.
//! Every line is on disk (synced) before its writer returns: the process can
//! be killed at any point and a resume loses nothing but a torn last line.
//!
//! Unlike a run's journal, no line here is pinned in the host's state
//! directory: a fleet journal answers no IAM call. What a resume trusts from
//! it is which targets are done, and it checks each done target's journal
//! against the hash recorded for it first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::{
    self, GENESIS, Journal, JournalError, Kind, Then, chained_line, create_private, parse_chain,
};
use crate::transcript::{printable, printable_path};

/// The fleet journal format this host writes and reads.
pub const FORMAT: u32 = 1;

/// The `kind` of a fleet journal's first line.
pub const HEADER_KIND: &str = "fleet";

/// The file name of the fleet journal in `--journal-dir`.
pub const FILE_NAME: &str = "fleet.jsonl";

const FLEET: Kind = Kind {
    header: HEADER_KIND,
    format: FORMAT,
    what: "a fleet journal header",
};

/// One line of a fleet journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FleetRecord {
    /// The first line (boxed: it lists every target).
    Fleet(Box<FleetHeader>),
    /// A target's run starts.
    TargetStarted(TargetStarted),
    /// A target's run ended.
    TargetDone(TargetDone),
    /// The fleet run was resumed.
    Resumed(Resumed),
    /// The last line.
    FleetFooter(FleetFooter),
}

/// The fleet journal's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetHeader {
    /// The fleet journal format ([`FORMAT`]; [`FleetWriter::create`] sets it).
    pub format: u32,
    /// The runbook's name, from its manifest.
    pub runbook: String,
    /// The runbook's version, from its manifest.
    pub runbook_version: String,
    /// The sha256 of the component every target runs.
    pub wasm_sha256: String,
    /// The host's version.
    pub host_version: String,
    /// Who ran the fleet: the caller's ARN (STS GetCallerIdentity), before
    /// any role was assumed.
    pub caller: String,
    /// When the fleet run started, RFC 3339 UTC.
    pub started_at: String,
    /// How many targets ran at once (`--concurrency`).
    pub concurrency: u32,
    /// The IAM calls per second allowed per account (`--max-rate`), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// After this many failed targets no new target starts (`--max-failures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
    /// Every target, in order; each one's `index` is its position here.
    pub targets: Vec<Target>,
}

/// One target: one run of the runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Its position in the header's `targets`, from 0.
    pub index: u32,
    /// The 12-digit AWS account it runs in; `None`: the caller's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The role (name or ARN) assumed in that account; `None`: none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The runbook's parameters for this target, by name.
    pub parameters: BTreeMap<String, String>,
}

/// A target's run is about to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStarted {
    /// The target.
    pub index: u32,
    /// The file its journal goes to, relative to the fleet journal's
    /// directory (see [`check_journal_name`]).
    pub journal: String,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// A target's run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDone {
    /// The target.
    pub index: u32,
    /// Its journal, relative to the fleet journal's directory: a path of
    /// plain names, never absolute and never with `..` (refused on read).
    pub journal: String,
    /// The sha256 of that journal's last line (its footer).
    pub last_hash: String,
    /// The exit code the run would have had alone (0: it succeeded).
    pub exit_code: u8,
    /// How it ended, in one line (the writer joins lines with spaces).
    pub outcome: String,
    /// How many changes the host recorded it applying.
    pub changes: u32,
}

/// The fleet run was killed and is resumed from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The bytes of a partly written last line the resume cut off (the
    /// process died while writing it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub torn_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The fleet journal's last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetFooter {
    /// When the fleet run ended, RFC 3339 UTC.
    pub finished_at: String,
    /// Targets done with exit code 0.
    pub succeeded: u32,
    /// Targets done with another exit code.
    pub failed: u32,
    /// Targets with no `target-done` line (`--max-failures` stopped them, or
    /// they never started).
    pub not_run: u32,
}

/// Why a journal file name in a fleet journal is refused, if it is: it
/// must be a relative path of plain names (`run-3.jsonl`, `a/b.jsonl`),
/// never absolute, `..` or `.`, so a fleet journal names only files in its
/// own directory.
pub fn check_journal_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && !name.contains('\\')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "the journal '{}' is not a file name relative to the fleet journal's directory (absolute paths, '..' and '.' are refused)",
            printable(name)
        ))
    }
}

impl Target {
    /// The target as errors and tables name it: `target 3 (account
    /// 123456789012, user=bob)`, escaped.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.account {
            parts.push(format!("account {}", printable(a)));
        }
        if let Some(r) = &self.role {
            parts.push(format!("role {}", printable(r)));
        }
        parts.extend(
            self.parameters
                .iter()
                .map(|(k, v)| format!("{}={}", printable(k), printable(v))),
        );
        if parts.is_empty() {
            format!("target {}", self.index)
        } else {
            format!("target {} ({})", self.index, parts.join(", "))
        }
    }
}

/// Why a fleet journal or one of its targets failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The fleet journal itself (chain, structure, file).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A target's journal is missing, damaged, or not the one recorded.
    #[error("{target}: its journal {journal} {reason}")]
    Target {
        /// The target's index.
        index: u32,
        /// The target, described ([`Target::describe`]).
        target: String,
        /// Its journal's path.
        journal: String,
        /// What is wrong.
        reason: String,
    },
    /// The fleet journal cannot be resumed.
    #[error("{path}: {reason}")]
    Resume {
        /// The fleet journal.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A fleet journal read and verified as far as it goes, footer or not.
#[derive(Debug, Clone)]
pub struct PartialFleet {
    /// The header.
    pub header: FleetHeader,
    /// Every record verified, header (and footer, if any) included.
    pub records: Vec<FleetRecord>,
    /// The targets done, by index.
    pub done: BTreeMap<u32, TargetDone>,
    /// Targets started and not done: their latest start.
    pub unfinished: BTreeMap<u32, TargetStarted>,
    /// The footer, if the fleet run wrote one.
    pub footer: Option<FleetFooter>,
    /// The hash of the last verified line.
    pub last_hash: String,
    /// How many lines were verified.
    pub lines: usize,
    /// The file ended in a partly written line, left out.
    pub torn: bool,
    /// The bytes of the verified lines: where a torn line starts.
    verified_len: usize,
}

/// A complete fleet journal, read and verified.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The header.
    pub header: FleetHeader,
    /// Every record, header and footer included.
    pub records: Vec<FleetRecord>,
    /// The targets done, by index.
    pub done: BTreeMap<u32, TargetDone>,
    /// The footer.
    pub footer: FleetFooter,
    /// The hash of the last line.
    pub last_hash: String,
}

/// A target journal verified against its fleet journal.
#[derive(Debug, Clone)]
pub struct VerifiedTarget {
    /// The target.
    pub index: u32,
    /// Its journal's path (the fleet journal's directory joined with the
    /// recorded name).
    pub path: PathBuf,
    /// Its journal.
    pub journal: Journal,
}

impl PartialFleet {
    /// Read and verify the fleet journal at `path`, footer or not.
    pub fn read(path: &Path) -> Result<PartialFleet, JournalError> {
        let shown = path.display().to_string();
        let text = journal::read_capped(path).map_err(|source| JournalError::Io {
            path: shown.clone(),
            source,
        })?;
        PartialFleet::parse(&shown, &text)
    }

    /// Verify fleet journal text, footer or not; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<PartialFleet, JournalError> {
        let mut targets = 0u32;
        // Line of each target's done record.
        let mut done_at: BTreeMap<u32, usize> = BTreeMap::new();
        let mut succeeded = 0u32;
        // Started since the run (re)started and not done.
        let mut running: BTreeSet<u32> = BTreeSet::new();
        let chain = parse_chain(path, text, &FLEET, |n, record: &FleetRecord| {
            let known = |index: u32| {
                if index < targets {
                    Ok(())
                } else {
                    Err(format!(
                        "target {index} is not one of the header's {targets} target(s)"
                    ))
                }
            };
            match record {
                FleetRecord::Fleet(_) if n != 1 => return Err("a second fleet header".into()),
                FleetRecord::Fleet(h) => {
                    if let Some((i, t)) = h
                        .targets
                        .iter()
                        .enumerate()
                        .find(|(i, t)| t.index as usize != *i)
                    {
                        return Err(format!(
                            "the header's target {i} has index {}: each target's index is its position",
                            t.index
                        ));
                    }
                    targets = u32::try_from(h.targets.len())
                        .map_err(|_| "more targets than a fleet holds".to_owned())?;
                }
                FleetRecord::TargetStarted(s) => {
                    known(s.index)?;
                    check_journal_name(&s.journal)?;
                    if let Some(line) = done_at.get(&s.index) {
                        return Err(format!(
                            "target {} starts again after it was done at line {line}",
                            s.index
                        ));
                    }
                    if !running.insert(s.index) {
                        return Err(format!(
                            "target {} starts twice in one run without a target-done line",
                            s.index
                        ));
                    }
                }
                FleetRecord::TargetDone(d) => {
                    known(d.index)?;
                    check_journal_name(&d.journal)?;
                    if let Some(line) = done_at.get(&d.index) {
                        return Err(format!(
                            "target {} is done twice: at line {line} and here",
                            d.index
                        ));
                    }
                    if !running.remove(&d.index) {
                        return Err(format!(
                            "target {} is done but has no target-started line since the run (re)started",
                            d.index
                        ));
                    }
                    if d.last_hash.len() != 64
                        || !d.last_hash.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return Err(format!(
                            "target {}'s last_hash '{}' is not a sha256 in hex",
                            d.index,
                            printable(&d.last_hash)
                        ));
                    }
                    done_at.insert(d.index, n);
                    if d.exit_code == 0 {
                        succeeded += 1;
                    }
                }
                FleetRecord::Resumed(_) => running.clear(),
                FleetRecord::FleetFooter(f) => {
                    if let Some(index) = running.first() {
                        return Err(format!(
                            "target {index} started and has no target-done line before the footer"
                        ));
                    }
                    let done = done_at.len() as u32;
                    let counted = (succeeded, done - succeeded, targets - done);
                    if (f.succeeded, f.failed, f.not_run) != counted {
                        return Err(format!(
                            "the footer counts {} succeeded, {} failed, {} not run, but the journal records {} succeeded, {} failed, {} not run",
                            f.succeeded, f.failed, f.not_run, counted.0, counted.1, counted.2
                        ));
                    }
                    return Ok(Then::End);
                }
            }
            Ok(Then::More)
        })?;
        let Some(FleetRecord::Fleet(header)) = chain.records.first().cloned() else {
            unreachable!("line 1 was checked to be a fleet header");
        };
        let mut done = BTreeMap::new();
        let mut unfinished = BTreeMap::new();
        for r in &chain.records {
            match r {
                FleetRecord::TargetStarted(s) => {
                    unfinished.insert(s.index, s.clone());
                }
                FleetRecord::TargetDone(d) => {
                    unfinished.remove(&d.index);
                    done.insert(d.index, d.clone());
                }
                _ => {}
            }
        }
        let footer = match chain.records.last() {
            Some(FleetRecord::FleetFooter(f)) => Some(f.clone()),
            _ => None,
        };
        Ok(PartialFleet {
            header: *header,
            records: chain.records,
            done,
            unfinished,
            footer,
            last_hash: chain.last_hash,
            lines: chain.lines,
            torn: chain.torn,
            verified_len: chain.verified_len,
        })
    }

    /// The fleet journal, if it is complete (ends with a footer).
    pub fn complete(self, path: &str) -> Result<Fleet, JournalError> {
        let Some(footer) = self.footer else {
            return Err(JournalError::Truncated {
                path: path.to_owned(),
                line: self.lines,
            });
        };
        Ok(Fleet {
            header: self.header,
            records: self.records,
            done: self.done,
            footer,
            last_hash: self.last_hash,
        })
    }
}

impl Fleet {
    /// Read and verify the fleet journal at `path`: the chain, and its
    /// structure (each target done at most once, only the header's targets,
    /// footer counts that agree with the records); it must be complete.
    /// The target journals are checked by [`Fleet::verify_targets`].
    pub fn read(path: &Path) -> Result<Fleet, JournalError> {
        PartialFleet::read(path)?.complete(&path.display().to_string())
    }

    /// The directory target journal names are relative to: the fleet
    /// journal's own.
    pub fn dir_of(path: &Path) -> &Path {
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// Verify every target journal this fleet journal names, in `dir` (the
    /// fleet journal's directory, [`Fleet::dir_of`]): each is complete and
    /// verifies, ends in the line recorded for it, and is a run of this
    /// fleet's runbook with the target's parameters, in its account.
    pub fn verify_targets(&self, dir: &Path) -> Result<Vec<VerifiedTarget>, FleetError> {
        verify_done(&self.header, &self.done, dir)
    }
}

/// Verify the journals of the targets `done`, in `dir`.
fn verify_done(
    header: &FleetHeader,
    done: &BTreeMap<u32, TargetDone>,
    dir: &Path,
) -> Result<Vec<VerifiedTarget>, FleetError> {
    done.values()
        .map(|d| {
            let path = dir.join(&d.journal);
            let fail = |reason: String| FleetError::Target {
                index: d.index,
                target: header.targets[d.index as usize].describe(),
                journal: printable_path(&path),
                reason,
            };
            let journal = Journal::read(&path).map_err(|e| match e {
                JournalError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                    fail("is missing".into())
                }
                e => fail(format!("does not verify: {e}")),
            })?;
            if journal.last_hash != d.last_hash {
                return Err(fail(format!(
                    "ends in a line with sha256 {}, not the {} the fleet journal recorded: it changed after the target finished, or is another run's",
                    journal.last_hash,
                    printable(&d.last_hash)
                )));
            }
            check_run(header, &header.targets[d.index as usize], &journal).map_err(fail)?;
            Ok(VerifiedTarget {
                index: d.index,
                path,
                journal,
            })
        })
        .collect()
}

/// Whether `journal` is a run of the fleet's runbook for `target`.
fn check_run(header: &FleetHeader, target: &Target, journal: &Journal) -> Result<(), String> {
    let h = &journal.header;
    if h.runbook != header.runbook || h.wasm_sha256 != header.wasm_sha256 {
        return Err(format!(
            "is a run of {} (sha256 {}), not of the fleet's {} (sha256 {})",
            printable(&h.runbook),
            printable(&h.wasm_sha256),
            printable(&header.runbook),
            printable(&header.wasm_sha256)
        ));
    }
    for (k, v) in &target.parameters {
        if h.parameters.get(k) != Some(v) {
            return Err(format!(
                "ran with {}={}, not the target's {}={}",
                printable(k),
                printable(h.parameters.get(k).map_or("(none)", String::as_str)),
                printable(k),
                printable(v)
            ));
        }
    }
    // The caller's ARN names the account the run acted in.
    if let (Some(account), Some(caller)) = (&target.account, journal.caller())
        && caller.split(':').nth(4) != Some(account.as_str())
    {
        return Err(format!(
            "ran as {} in another account than the target's {}",
            printable(caller),
            printable(account)
        ));
    }
    Ok(())
}

/// What a resumed fleet run has left to do.
#[derive(Debug, Clone)]
pub struct FleetState {
    /// The header, as first written.
    pub header: FleetHeader,
    /// The targets done (not to run again), by index; each one's journal
    /// was verified against its recorded last line.
    pub done: BTreeMap<u32, TargetDone>,
    /// For targets started and not done, the journal their last start
    /// wrote, resolved against the fleet journal's directory, where that
    /// file exists: a run killed part-way, to continue with `--resume`
    /// (or, if it is complete, to record as done). A target whose journal
    /// was never created is not here: it starts afresh.
    pub unfinished: BTreeMap<u32, PathBuf>,
    /// The bytes of a torn last line the resume cut off.
    pub torn_bytes: u64,
}

impl FleetState {
    /// The targets not done, in order.
    pub fn to_run(&self) -> impl Iterator<Item = &Target> {
        self.header
            .targets
            .iter()
            .filter(|t| !self.done.contains_key(&t.index))
    }
}

/// Appends to a fleet journal: every line chained, written and synced to
/// disk before the call returns. Worker threads share one through a
/// `Mutex<FleetWriter>`.
#[derive(Debug)]
pub struct FleetWriter {
    file: File,
    path: PathBuf,
    prev: String,
    targets: u32,
    /// Done targets and whether each succeeded.
    done: BTreeMap<u32, bool>,
    /// Started since the run (re)started and not done.
    running: BTreeSet<u32>,
    /// A write failed, or the footer is written: nothing more is appended.
    closed: Option<&'static str>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl FleetWriter {
    /// Create the fleet journal at `path` (which must not exist: a journal
    /// is never overwritten) and write its header, with `format` set to
    /// [`FORMAT`]. Each target's `index` must be its position.
    pub fn create(path: &Path, mut header: FleetHeader) -> io::Result<FleetWriter> {
        header.format = FORMAT;
        if let Some((i, _)) = header
            .targets
            .iter()
            .enumerate()
            .find(|(i, t)| t.index as usize != *i)
        {
            return Err(invalid(format!(
                "target {i} of the fleet header has another index: each target's index is its position"
            )));
        }
        let targets = u32::try_from(header.targets.len())
            .map_err(|_| invalid("more targets than a fleet holds".into()))?;
        let file = create_private(path)?;
        // The new file's name reaches the disk too.
        if let Ok(dir) = File::open(Fleet::dir_of(path)) {
            let _ = dir.sync_all();
        }
        let mut writer = FleetWriter {
            file,
            path: path.to_owned(),
            prev: GENESIS.to_owned(),
            targets,
            done: BTreeMap::new(),
            running: BTreeSet::new(),
            closed: None,
        };
        writer.append(&FleetRecord::Fleet(Box::new(header)))?;
        Ok(writer)
    }

    /// Reopen the fleet journal at `path`, whose run was killed, to finish
    /// it: the journal is verified as far as it goes (a torn last line is
    /// cut off, as the crash left it half written), the journal of every
    /// target done is verified against its recorded last line, and a
    /// `resumed` line is appended. A fleet journal with a footer is refused.
    pub fn resume(path: &Path) -> Result<(FleetWriter, FleetState), FleetError> {
        let shown = path.display().to_string();
        let partial = PartialFleet::read(path)?;
        let refuse = |reason: String| FleetError::Resume {
            path: shown.clone(),
            reason,
        };
        if partial.footer.is_some() {
            return Err(refuse(
                "the fleet run finished (the journal has its footer): there is nothing to resume"
                    .into(),
            ));
        }
        let dir = Fleet::dir_of(path);
        verify_done(&partial.header, &partial.done, dir)?;
        let io_error = |e: io::Error| refuse(format!("cannot append to it: {e}"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let kept = partial.verified_len as u64;
        if kept < len {
            file.set_len(kept).map_err(io_error)?;
        }
        // A whole last line whose newline was never written gets one.
        use std::io::{Read, Seek, SeekFrom};
        file.seek(SeekFrom::Start(kept.saturating_sub(1)))
            .map_err(io_error)?;
        let mut last = [0u8; 1];
        let ends_in_newline = file.read(&mut last).map_err(io_error)? == 1 && last[0] == b'\n';
        file.seek(SeekFrom::End(0)).map_err(io_error)?;
        if !ends_in_newline {
            file.write_all(b"\n").map_err(io_error)?;
        }
        let torn_bytes = len.saturating_sub(kept);
        let mut writer = FleetWriter {
            file,
            path: path.to_owned(),
            prev: partial.last_hash.clone(),
            targets: partial.header.targets.len() as u32,
            done: partial
                .done
                .values()
                .map(|d| (d.index, d.exit_code == 0))
                .collect(),
            running: BTreeSet::new(),
            closed: None,
        };
        writer
            .append(&FleetRecord::Resumed(Resumed {
                at: crate::sandbox::now_rfc3339(),
                torn_bytes,
            }))
            .map_err(io_error)?;
        let unfinished = partial
            .unfinished
            .values()
            .map(|s| (s.index, dir.join(&s.journal)))
            .filter(|(_, p)| p.exists())
            .collect();
        Ok((
            writer,
            FleetState {
                header: partial.header,
                done: partial.done,
                unfinished,
                torn_bytes,
            },
        ))
    }

    /// Record that target `index` starts, its journal going to `journal`
    /// (relative to the fleet journal's directory). On disk when this
    /// returns.
    pub fn target_started(&mut self, index: u32, journal: &str) -> io::Result<()> {
        self.known(index)?;
        check_journal_name(journal).map_err(invalid)?;
        if self.done.contains_key(&index) {
            return Err(invalid(format!("target {index} is done already")));
        }
        if self.running.contains(&index) {
            return Err(invalid(format!("target {index} is running already")));
        }
        self.append(&FleetRecord::TargetStarted(TargetStarted {
            index,
            journal: journal.to_owned(),
            at: crate::sandbox::now_rfc3339(),
        }))?;
        self.running.insert(index);
        Ok(())
    }

    /// Record that a target (started with [`FleetWriter::target_started`])
    /// ended. Its outcome is joined into one line. On disk when this
    /// returns: a kill right after it does not run the target again.
    pub fn target_done(&mut self, mut done: TargetDone) -> io::Result<()> {
        self.known(done.index)?;
        check_journal_name(&done.journal).map_err(invalid)?;
        if !self.running.contains(&done.index) {
            return Err(invalid(format!(
                "target {} is not running (record target_started first; a target is done once)",
                done.index
            )));
        }
        done.outcome = done.outcome.lines().collect::<Vec<_>>().join(" ");
        let (index, ok) = (done.index, done.exit_code == 0);
        self.append(&FleetRecord::TargetDone(done))?;
        self.running.remove(&index);
        self.done.insert(index, ok);
        Ok(())
    }

    /// Write the footer, counting the targets from the records; every
    /// target started must be done. Returns the footer and the sha256 of
    /// the last line (print it: kept elsewhere it detects a rewrite).
    /// Nothing more is appended after it.
    pub fn finish(&mut self) -> io::Result<(FleetFooter, String)> {
        if let Some(index) = self.running.first() {
            return Err(invalid(format!(
                "target {index} started and is not done: record its end first"
            )));
        }
        let succeeded = self.done.values().filter(|ok| **ok).count() as u32;
        let done = self.done.len() as u32;
        let footer = FleetFooter {
            finished_at: crate::sandbox::now_rfc3339(),
            succeeded,
            failed: done - succeeded,
            not_run: self.targets - done,
        };
        self.append(&FleetRecord::FleetFooter(footer.clone()))?;
        self.closed = Some("the footer is written");
        Ok((footer, self.prev.clone()))
    }

    /// The hash of the last line written.
    pub fn last_hash(&self) -> &str {
        &self.prev
    }

    /// Where the fleet journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn known(&self, index: u32) -> io::Result<()> {
        if index < self.targets {
            Ok(())
        } else {
            Err(invalid(format!(
                "target {index} is not one of the fleet's {} target(s)",
                self.targets
            )))
        }
    }

    fn append(&mut self, record: &FleetRecord) -> io::Result<()> {
        if let Some(why) = self.closed {
            return Err(io::Error::other(format!(
                "nothing more is appended to fleet journal {}: {why}",
                self.path.display()
            )));
        }
        let line = chained_line(record, &self.prev)?;
        let written = self
            .file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.sync_data());
        if written.is_err() {
            // The file may end in a partial line: a line after it would
            // make the journal unreadable.
            self.closed = Some("an earlier write failed");
        }
        written?;
        self.prev = journal::line_hash(&line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(targets: u32) -> FleetRecord {
        FleetRecord::Fleet(Box::new(FleetHeader {
            format: FORMAT,
            runbook: "mfa-recovery".into(),
            runbook_version: "0.1.0".into(),
            wasm_sha256: "0".repeat(64),
            host_version: "0.1.0".into(),
            caller: "arn:aws:iam::123456789012:user/ops".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            concurrency: 1,
            max_rate: None,
            max_failures: None,
            targets: (0..targets)
                .map(|index| Target {
                    index,
                    account: None,
                    role: None,
                    parameters: BTreeMap::new(),
                })
                .collect(),
        }))
    }

    fn started(index: u32) -> FleetRecord {
        FleetRecord::TargetStarted(TargetStarted {
            index,
            journal: format!("{index}.jsonl"),
            at: "2026-01-01T00:00:00Z".into(),
        })
    }

    fn done(index: u32, exit_code: u8) -> FleetRecord {
        FleetRecord::TargetDone(TargetDone {
            index,
            journal: format!("{index}.jsonl"),
            last_hash: "a".repeat(64),
            exit_code,
            outcome: "x".into(),
            changes: 0,
        })
    }

    fn footer(succeeded: u32, failed: u32, not_run: u32) -> FleetRecord {
        FleetRecord::FleetFooter(FleetFooter {
            finished_at: "2026-01-01T00:00:01Z".into(),
            succeeded,
            failed,
            not_run,
        })
    }

    fn parse(records: &[FleetRecord]) -> Result<PartialFleet, String> {
        let mut prev = GENESIS.to_owned();
        let mut text = String::new();
        for r in records {
            let line = chained_line(r, &prev).unwrap();
            prev = journal::line_hash(&line);
            text.push_str(&line);
            text.push('\n');
        }
        PartialFleet::parse("fleet.jsonl", &text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_well_formed_fleet_journal_reads_with_its_counts() {
        let f = parse(&[
            header(3),
            started(0),
            started(1),
            done(1, 1),
            done(0, 0),
            FleetRecord::Resumed(Resumed {
                at: "t".into(),
                torn_bytes: 0,
            }),
            footer(1, 1, 1),
        ])
        .unwrap();
        assert_eq!(f.done.len(), 2);
        assert!(f.footer.is_some());
    }

    #[test]
    fn structure_errors_name_the_line() {
        let cases: &[(&[FleetRecord], &str)] = &[
            (
                &[header(2), started(0), done(0, 0), started(0)],
                "fleet.jsonl:4: target 0 starts again after it was done at line 3",
            ),
            (
                &[header(2), started(0), done(0, 0), done(0, 0)],
                "fleet.jsonl:4: target 0 is done twice: at line 3 and here",
            ),
            (
                &[header(2), done(1, 0)],
                "fleet.jsonl:2: target 1 is done but has no target-started line",
            ),
            (
                &[header(2), started(2)],
                "fleet.jsonl:2: target 2 is not one of the header's 2 target(s)",
            ),
            (
                &[header(2), started(0), footer(0, 0, 2)],
                "fleet.jsonl:3: target 0 started and has no target-done line before the footer",
            ),
            (
                &[header(2), started(0), done(0, 3), footer(1, 0, 1)],
                "fleet.jsonl:4: the footer counts 1 succeeded, 0 failed, 1 not run, but the journal records 0 succeeded, 1 failed, 1 not run",
            ),
            (
                &[header(1), footer(0, 0, 1), started(0)],
                "fleet.jsonl:3: a line after the footer",
            ),
            (
                &[header(1), header(1)],
                "fleet.jsonl:2: a second fleet header",
            ),
        ];
        for (records, expected) in cases {
            let e = parse(records).unwrap_err();
            assert!(e.starts_with(expected), "{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn journal_names_are_plain_relative_paths() {
        for ok in ["0.jsonl", "targets/0-bob.jsonl"] {
            check_journal_name(ok).unwrap();
        }
        for bad in ["", "/etc/passwd", "../x.jsonl", "a/../b", "./a", "a\\b"] {
            check_journal_name(bad).unwrap_err();
        }
    }
}
