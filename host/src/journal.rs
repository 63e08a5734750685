//! The journal: an append-only, hash-chained JSON Lines record of a run.
//!
//! Line 1 is a header (runbook, wasm sha256, WIT version, parameters, grant,
//! mode, start time); then, per host call, a `call` line (the intent, written
//! before the backend is asked) and a `result` line (the outcome, written before
//! the runbook sees it); `log` lines; and a footer with the run's outcome. Each
//! line carries `prev`, the sha256 of the line before it (the header's is all
//! zeros), so an edited, removed, reordered or truncated journal is detected.
//!
//! The chain detects damage, not a forger who rewrites every later line: for
//! that, keep the final hash the run prints somewhere the journal is not, or
//! sign it (`runbook run --sign-journal`, see [`crate::signing`]).
//! No credentials or MFA seeds can reach a journal: the WIT types that flow into
//! it have no field for them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bindings::{IamError, Level};
use crate::grant::Grant;
use crate::request::Request;

/// The journal format this host writes and reads.
pub const FORMAT: u32 = 1;

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Record {
    /// The first line (boxed: it is much larger than the other records).
    Header(Box<Header>),
    /// A call's intent, recorded before it is sent.
    Call(Call),
    /// A call's outcome, recorded before the runbook sees it.
    Result(CallEnd),
    /// A line the runbook logged (or wrote to stdout/stderr).
    Log(LogLine),
    /// Who the run reached IAM as, when the header could not say yet: STS
    /// answers while the run reads, and this is recorded before the run's
    /// first change is sent (else before the footer).
    Identity(Identity),
    /// The last line.
    Footer(Footer),
}

/// Who a run reached IAM as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The caller's ARN (STS GetCallerIdentity), or `unknown (...)`.
    pub caller: String,
}

/// How a run reaches IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Real calls to AWS (or the endpoint given).
    Live,
    /// Reads sent, mutations planned and not sent.
    DryRun,
    /// Answers from a recorded journal; nothing sent.
    Replay,
}

impl Mode {
    /// The mode's name as the journal spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
            Mode::Replay => "replay",
        }
    }
}

/// The journal's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The journal format ([`FORMAT`]).
    pub format: u32,
    /// The runbook's name, from its manifest.
    pub runbook: String,
    /// The runbook's version, from its manifest.
    pub runbook_version: String,
    /// The sha256 of the component that ran.
    pub wasm_sha256: String,
    /// The WIT contract, e.g. `runbook:runbook@0.2.0`.
    pub wit: String,
    /// The runbook-sdk version the component was built with, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// The host's version.
    pub host_version: String,
    /// The parameters the runbook was given.
    pub parameters: BTreeMap<String, String>,
    /// The grant in force.
    pub grant: Grant,
    /// How IAM was reached.
    pub mode: Mode,
    /// Where IAM was reached (endpoint, region, profile), never credentials.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, String>,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// The journal of the run this one resumes (`runbook run --resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumes: Option<Resumes>,
    /// The fuel budget the runbook had (`--max-fuel`); a replay gives it the
    /// same. Absent in journals written before fuel was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fuel: Option<u64>,
    /// Who signed the component, as checked against the operator's
    /// allowed_signers before it ran (`runbook run --trusted-signers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<crate::signing::Signer>,
    /// The seed of the runbook's WASI randomness and where its virtual
    /// clocks started; a replay gives it the same. Absent in journals
    /// written before it was recorded ([`crate::sandbox::WasiWorld::LEGACY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasi: Option<crate::sandbox::WasiWorld>,
}

/// The run a resumed run continues: its journal, pinned by its last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resumes {
    /// The journal resumed, as the operator named it.
    pub journal: String,
    /// The sha256 of its last line when it was resumed.
    pub last_hash: String,
    /// How many of its calls were answered from it (not sent again).
    pub calls_reused: u32,
}

/// A call's intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// 0 for the run's first call, then 1, 2, ...
    pub index: u32,
    /// The operation and its arguments.
    pub request: Request,
}

/// A call's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnd {
    /// The index of the call this ends.
    pub index: u32,
    /// What happened.
    #[serde(flatten)]
    pub outcome: CallOutcome,
    /// How long the backend took, in microseconds.
    pub duration_us: u64,
    /// The failed attempts before the one that answered (throttling, IAM's
    /// transient conflicts), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// Answered from the journal this run resumes: not sent again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// When the call went to the backend, RFC 3339 UTC (absent when it was
    /// not sent: denied, refused, replayed, or in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// The request id (`x-amzn-RequestId`) of every answer IAM sent for the
    /// call, in order: each failed attempt's, then each page's (a paginated
    /// list makes one request a page, and CloudTrail records each). They
    /// find the call's events in CloudTrail (`runbook show --cloudtrail`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
}

impl CallEnd {
    /// The end of call `index`, answered at once.
    pub fn new(index: u32, outcome: CallOutcome) -> CallEnd {
        CallEnd {
            index,
            outcome,
            duration_us: 0,
            retries: Vec::new(),
            resumed: false,
            sent_at: None,
            request_ids: Vec::new(),
        }
    }
}

/// What happened to one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum CallOutcome {
    /// The backend answered; `value` is what the runbook received.
    Ok {
        /// The answer.
        value: Value,
    },
    /// The backend (or AWS) returned an error, which the runbook received.
    Error {
        /// The error.
        error: IamError,
    },
    /// Outside the grant: not sent; the runbook received `access-denied`.
    Denied {
        /// Why, for the operator.
        reason: String,
    },
    /// A dry run planned this mutation and did not send it.
    Planned,
    /// A mutation refused for want of consent: not sent; the run stopped.
    Refused {
        /// Why, for the operator.
        reason: String,
    },
    /// Replay could not answer (the request diverged, or the recording is
    /// bad), or the backend could not send it (no AWS client): not sent; the
    /// run stopped.
    Unanswered {
        /// Why.
        reason: String,
    },
    /// The run's deadline passed while the call was in flight: it was cut
    /// short and may or may not have reached IAM; the run stopped.
    Cut {
        /// Why.
        reason: String,
    },
}

impl CallOutcome {
    /// Whether a mutation with this outcome changed IAM (or, planned in a
    /// dry run, would have): what the call path counts as a change.
    pub fn applied(&self) -> bool {
        matches!(self, CallOutcome::Ok { .. } | CallOutcome::Planned)
    }

    /// The outcome of a backend's answer.
    pub fn of(result: &crate::request::CallResult) -> CallOutcome {
        match result {
            Ok(crate::request::Response::Planned) => CallOutcome::Planned,
            Ok(response) => CallOutcome::Ok {
                value: response.to_value(),
            },
            Err(error) => CallOutcome::Error {
                error: error.clone(),
            },
        }
    }
}

/// A log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn`, `error`, or `stdout`/`stderr` for guest output.
    pub level: String,
    /// The text.
    pub message: String,
}

impl LogLine {
    /// A line the runbook logged at `level`.
    pub fn new(level: Level, message: String) -> LogLine {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        LogLine {
            level: level.to_owned(),
            message,
        }
    }
}

/// The journal's last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    /// How the run ended.
    pub outcome: RunOutcome,
    /// How many calls the runbook made.
    pub calls: u32,
    /// When the run ended, RFC 3339 UTC.
    pub finished_at: String,
    /// The fuel the runbook used (deterministic: a replay uses the same).
    /// Absent in journals written before fuel was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// The host's own record of what changed: the indices of the mutating
    /// calls IAM applied (planned, in a dry run), not counting calls answered
    /// from a resumed journal. The runbook's `changes` are its own words and
    /// cannot be checked; this can, and verification checks it against the
    /// calls. Absent in journals written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<u32>>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RunOutcome {
    /// The runbook finished and reported this.
    Succeeded {
        /// One line.
        summary: String,
        /// What changed (planned changes, in a dry run).
        changes: Vec<String>,
        /// What the operator must do next.
        next_steps: Vec<String>,
    },
    /// The runbook finished and reported a failure.
    Failed {
        /// The runbook's message.
        error: String,
    },
    /// The run stopped before a mutation it had no consent for.
    Refused {
        /// Why.
        reason: String,
    },
    /// The runbook trapped, panicked or hit a sandbox limit.
    Trapped {
        /// Why.
        reason: String,
    },
    /// The host stopped the run (e.g. a replay diverged).
    Aborted {
        /// Why.
        reason: String,
    },
}

#[derive(Serialize)]
struct LineRef<'a, R> {
    #[serde(flatten)]
    record: &'a R,
    prev: &'a str,
}

#[derive(Deserialize)]
struct LineOwned<R> {
    #[serde(flatten)]
    record: R,
    prev: String,
}

/// One line of a hash-chained journal (a run's or a fleet's): `record`
/// with `prev`, the hash of the line before it, without its newline.
pub(crate) fn chained_line<R: Serialize>(record: &R, prev: &str) -> io::Result<String> {
    serde_json::to_string(&LineRef { record, prev }).map_err(io::Error::other)
}

/// Create a journal file (a run's or a fleet's) at `path`, which must not
/// exist yet: a journal is evidence and is never overwritten. The file is
/// private to its owner; missing directories are created.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The sha256 of one journal line (without its newline), in hex.
pub fn line_hash(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

/// Appends records to a journal, chaining and flushing each.
pub struct JournalWriter {
    sink: Option<Sink>,
    path: Option<PathBuf>,
    prev: String,
    records: Vec<Record>,
    /// The host's pins of this journal (see [`crate::pins`]).
    pins: Option<crate::pins::Pins>,
    /// A mutation's intent was the last call line: its outcome is pinned too.
    mutation_open: bool,
    /// A write failed: the file may end in a partial line, so nothing more is
    /// appended (a line after a torn one would make the journal unreadable).
    broken: bool,
}

/// Where a journal's lines go: a file (synced at the footer), or any writer.
enum Sink {
    File(File),
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("path", &self.path)
            .field("records", &self.records.len())
            .finish()
    }
}

impl JournalWriter {
    /// A journal kept in memory only (planning passes, tests).
    pub fn in_memory() -> JournalWriter {
        JournalWriter {
            sink: None,
            path: None,
            prev: GENESIS.to_owned(),
            records: Vec::new(),
            pins: None,
            mutation_open: false,
            broken: false,
        }
    }

    /// A journal written to `writer`, keeping its records in memory too
    /// (tests of a journal that fails part-way, e.g. a full disk).
    pub fn to_writer(writer: impl Write + Send + 'static) -> JournalWriter {
        JournalWriter {
            sink: Some(Sink::Writer(Box::new(writer))),
            ..JournalWriter::in_memory()
        }
    }

    /// A journal written to `path`, which must not exist yet: a journal is
    /// evidence and is never overwritten. The file is private to its owner.
    pub fn create(path: &Path) -> io::Result<JournalWriter> {
        let file = create_private(path)?;
        // Without pins the run goes on (its journal is whole); only a later
        // `--resume` of it needs `--last-hash` to trust its answers.
        let pins = match crate::pins::Pins::create(path) {
            Ok(p) => Some(p),
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "runbook: cannot pin journal {} in {} ({e}); a later --resume of it will need --last-hash",
                    crate::transcript::printable_path(path),
                    crate::transcript::printable_path(&crate::pins::state_dir())
                );
                None
            }
        };
        Ok(JournalWriter {
            sink: Some(Sink::File(file)),
            path: Some(path.to_owned()),
            pins,
            ..JournalWriter::in_memory()
        })
    }

    /// Append one record; it is in the file (handed to the OS) when this
    /// returns. A change's intent and outcome, and the footer, are also
    /// pinned; the footer is synced to disk. After a failed write, every
    /// append fails.
    pub fn append(&mut self, record: Record) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier write to the journal failed; nothing more is appended",
            ));
        }
        let written = self.write(record);
        if written.is_err() {
            self.broken = true;
        }
        written
    }

    fn write(&mut self, record: Record) -> io::Result<()> {
        let line = chained_line(&record, &self.prev)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match &mut self.sink {
            Some(Sink::File(file)) => {
                file.write_all(&bytes)?;
                let pinned = match &record {
                    Record::Call(c) => {
                        self.mutation_open = c.request.is_mutation();
                        self.mutation_open
                    }
                    Record::Result(_) => std::mem::take(&mut self.mutation_open),
                    Record::Footer(_) => true,
                    Record::Header(_) | Record::Log(_) | Record::Identity(_) => false,
                };
                // Lines reach the OS before the call goes on (a killed
                // process loses nothing); the footer also reaches the disk.
                if pinned && let Some(pins) = &mut self.pins {
                    pins.pin(&line_hash(&line))?;
                }
                if matches!(record, Record::Footer(_)) {
                    match &mut self.pins {
                        // Both reach the disk at once: two syncs in a row
                        // would wait for two flushes.
                        Some(pins) => std::thread::scope(|s| {
                            let pinning = std::thread::Builder::new()
                                .name("runbook-pins-sync".into())
                                .spawn_scoped(s, || pins.sync());
                            let synced = file.sync_all();
                            let pinned = match pinning {
                                Ok(thread) => thread.join().unwrap_or_else(|_| {
                                    Err(io::Error::other("the thread syncing the pins panicked"))
                                }),
                                // No thread to be had: one after the other.
                                Err(_) => pins.sync(),
                            };
                            synced.and(pinned)
                        })?,
                        None => file.sync_all()?,
                    }
                }
            }
            Some(Sink::Writer(w)) => {
                w.write_all(&bytes)?;
                w.flush()?;
            }
            None => {}
        }
        self.prev = line_hash(&line);
        // A file journal is read back from the file; only an in-memory one
        // keeps its records (a long run must not grow the host's memory).
        if !matches!(self.sink, Some(Sink::File(_))) {
            self.records.push(record);
        }
        Ok(())
    }

    /// The records written so far, for a journal that is not a file (a file
    /// journal keeps none: read the file).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The hash of the last line: pin it elsewhere to detect a rewrite.
    pub fn last_hash(&self) -> &str {
        &self.prev
    }

    /// Where the journal is, if it is a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Why a journal failed verification. Lines are numbered from 1.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be read.
    #[error("cannot read journal {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The file is empty.
    #[error("{path}: the journal is empty (not a runbook journal)")]
    Empty {
        /// The file.
        path: String,
    },
    /// A line is not valid JSON of a journal record.
    #[error("{path}:{line}: not a journal record: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line's structure is wrong (header not first, index out of order, ...).
    #[error("{path}:{line}: {reason}")]
    Structure {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line's `prev` is not the hash of the line before it.
    #[error(
        "{path}:{line}: hash chain broken: this line's prev is {found}, but line {before} hashes to {expected}; line {before} or {line} was edited, or lines were removed or reordered"
    )]
    Chain {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// The line before.
        before: usize,
        /// The hash of the line before.
        expected: String,
        /// The `prev` found.
        found: String,
    },
    /// A newer journal format.
    #[error(
        "{path}:1: journal format {found} is newer than this host reads ({reads}); upgrade runbook"
    )]
    NewerFormat {
        /// The file.
        path: String,
        /// The format found.
        found: u32,
        /// The newest format this host reads.
        reads: u32,
    },
    /// No footer: the run was cut off (crash, kill) or the file truncated.
    #[error(
        "{path}:{line}: the journal ends without a footer: the run was cut off or the file truncated after line {line}"
    )]
    Truncated {
        /// The file.
        path: String,
        /// The last line.
        line: usize,
    },
}

/// A journal read and verified.
#[derive(Debug, Clone)]
pub struct Journal {
    /// The header.
    pub header: Header,
    /// Every record, header and footer included.
    pub records: Vec<Record>,
    /// The footer.
    pub footer: Footer,
    /// The hash of the last line.
    pub last_hash: String,
}

/// The most a journal file may hold. A run's journal is bounded by its
/// limits (1,000 calls of at most 4 KiB arguments, 1 MiB of logs and
/// outcome by default) to a few MiB; the cap keeps a hostile "journal" (a
/// device, a huge file) from exhausting memory.
pub const MAX_JOURNAL_BYTES: u64 = 256 << 20;

/// The longest line a journal may hold. The host's own lines are bounded by
/// the sandbox limits (a 1 MiB log budget, 4 KiB arguments, 1,000 calls);
/// parsing a longer one would cost memory for nothing.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A journal read and verified as far as it goes, with or without a footer:
/// the record of a run that crashed, was killed, or was cut off.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The header.
    pub header: Header,
    /// Every record verified, header (and footer, if any) included.
    pub records: Vec<Record>,
    /// The footer, if the run wrote one.
    pub footer: Option<Footer>,
    /// The hash of the last verified line.
    pub last_hash: String,
    /// How many lines were verified.
    pub lines: usize,
    /// The sha256 of each verified line, in order (one per record).
    pub hashes: Vec<String>,
    /// The file ended in a partly written line (no newline, not JSON), left
    /// out: the process died while writing it.
    pub torn: bool,
}

impl Partial {
    /// Read and verify the journal at `path`, footer or not.
    pub fn read(path: &Path) -> Result<Partial, JournalError> {
        let shown = path.display().to_string();
        let text = read_capped(path).map_err(|source| JournalError::Io {
            path: shown.clone(),
            source,
        })?;
        Partial::parse(&shown, &text)
    }

    /// The call whose intent is the journal's last call record and which has
    /// no outcome: it was about to be sent, or sent, when the run died.
    pub fn open_call(&self) -> Option<&Call> {
        match self
            .records
            .iter()
            .rev()
            .find(|r| !matches!(r, Record::Log(_)))
        {
            Some(Record::Call(c)) => Some(c),
            _ => None,
        }
    }

    /// The journal as far as one of `pinned` vouches for it: up to and
    /// including the last line whose hash is pinned (the header alone if
    /// none is). Lines after it were not pinned by the run that wrote them.
    pub fn up_to_pinned(&self, pinned: &std::collections::HashSet<String>) -> Partial {
        let keep = self
            .hashes
            .iter()
            .rposition(|h| pinned.contains(h))
            .map_or(1, |i| i + 1);
        let records: Vec<Record> = self.records[..keep].to_vec();
        Partial {
            header: self.header.clone(),
            footer: match records.last() {
                Some(Record::Footer(f)) => Some(f.clone()),
                _ => None,
            },
            records,
            last_hash: self.hashes[keep - 1].clone(),
            lines: keep,
            hashes: self.hashes[..keep].to_vec(),
            torn: false,
        }
    }

    /// The journal, if it is complete (ends with a footer).
    pub fn complete(self, path: &str) -> Result<Journal, JournalError> {
        let Some(footer) = self.footer else {
            return Err(JournalError::Truncated {
                path: path.to_owned(),
                line: self.lines,
            });
        };
        Ok(Journal {
            header: self.header,
            records: self.records,
            footer,
            last_hash: self.last_hash,
        })
    }

    /// Who the run reached IAM as: the header's `target.caller`, or the
    /// identity recorded during the run; `None` if it stopped before either.
    pub fn caller(&self) -> Option<&str> {
        caller_of(&self.header, &self.records)
    }

    /// Verify journal text, footer or not; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Partial, JournalError> {
        let mut open_call: Option<u32> = None;
        let mut open_mutation = false;
        // The mutations that applied, as the call path counts them.
        let mut applied: Vec<u32> = Vec::new();
        let mut fuel_recorded = false;
        let mut identity_seen = false;
        let mut header_caller = false;
        let mut next_index = 0u32;
        let chain = parse_chain(path, text, &RUN, |n, record: &Record| {
            match record {
                Record::Header(_) if n != 1 => {
                    return Err("a second header".into());
                }
                Record::Header(h) => {
                    fuel_recorded = h.max_fuel.is_some();
                    header_caller = h.target.contains_key("caller");
                    if let Some(world) = &h.wasi {
                        world.check()?;
                    }
                }
                Record::Call(c) => {
                    if let Some(open) = open_call {
                        return Err(format!(
                            "call {} starts before call {open} has a result",
                            c.index
                        ));
                    }
                    if c.index != next_index {
                        return Err(format!(
                            "call index {} where {next_index} was expected",
                            c.index
                        ));
                    }
                    open_call = Some(c.index);
                    open_mutation = c.request.is_mutation();
                    next_index += 1;
                }
                Record::Result(r) => {
                    if open_call != Some(r.index) {
                        return Err(format!(
                            "a result for call {} which is not the open call",
                            r.index
                        ));
                    }
                    open_call = None;
                    if open_mutation && r.outcome.applied() && !r.resumed {
                        applied.push(r.index);
                    }
                }
                Record::Log(_) => {}
                Record::Identity(_) if identity_seen || header_caller => {
                    return Err("a second record of the caller".into());
                }
                Record::Identity(_) => identity_seen = true,
                Record::Footer(f) => {
                    if let Some(open) = open_call {
                        return Err(format!(
                            "call {open} has no recorded outcome: it may or may not have reached AWS"
                        ));
                    }
                    if f.calls != next_index {
                        return Err(format!(
                            "the footer counts {} calls but the journal holds {next_index}",
                            f.calls
                        ));
                    }
                    // A host that records the fuel budget also records the
                    // changes: a footer without them was edited (the header
                    // cannot be, without breaking the chain).
                    match &f.applied {
                        Some(listed) if *listed != applied => {
                            return Err(format!(
                                "the footer lists the changes of calls {} but the journal's calls applied {}: the footer was edited",
                                indices(listed),
                                indices(&applied)
                            ));
                        }
                        None if fuel_recorded => {
                            return Err(format!(
                                "the footer does not list the changes applied (the journal's calls applied {}), which the host that wrote this header always records: the footer was edited",
                                indices(&applied)
                            ));
                        }
                        _ => {}
                    }
                    return Ok(Then::End);
                }
            }
            Ok(Then::More)
        })?;
        let records = chain.records;
        let Some(Record::Header(header)) = records.first().cloned() else {
            unreachable!("line 1 was checked to be a header");
        };
        let header = *header;
        let footer = match records.last() {
            Some(Record::Footer(f)) => Some(f.clone()),
            _ => None,
        };
        Ok(Partial {
            header,
            records,
            footer,
            last_hash: chain.last_hash,
            lines: chain.lines,
            hashes: chain.hashes,
            torn: chain.torn,
        })
    }
}

/// A kind of hash-chained journal, told by its first line's `kind`.
pub(crate) struct Kind {
    /// The first line's `kind`.
    pub header: &'static str,
    /// The newest format of it this host reads.
    pub format: u32,
    /// What its first line is, for errors: "a journal header".
    pub what: &'static str,
}

/// A run's journal.
pub(crate) const RUN: Kind = Kind {
    header: "header",
    format: FORMAT,
    what: "a journal header",
};

/// Every kind of journal, by its first line's `kind`, as errors name it.
const KINDS: &[(&str, &str)] = &[
    ("header", "a run's journal"),
    (
        "fleet",
        "a fleet journal (`runbook verify`, `show` and `replay` read it)",
    ),
];

/// The `kind` of the first line of the journal at `path`, if it has one:
/// which reader it is for. Errors are left to that reader.
pub fn first_kind(path: &Path) -> Option<String> {
    use std::io::{BufRead, Read};
    let file = open_regular(path).ok()?;
    let mut first = Vec::new();
    io::BufReader::new(file.take(MAX_LINE_BYTES as u64))
        .read_until(b'\n', &mut first)
        .ok()?;
    let value: Value = serde_json::from_slice(&first).ok()?;
    value.get("kind")?.as_str().map(str::to_owned)
}

/// Whether a record ends its journal (a footer).
pub(crate) enum Then {
    /// More lines may follow.
    More,
    /// The last line: any line after it is an error.
    End,
}

/// The lines of a hash-chained journal, each verified against the one
/// before it and parsed.
pub(crate) struct Chain<R> {
    /// Every record, in order.
    pub records: Vec<R>,
    /// The sha256 of each line, in order.
    pub hashes: Vec<String>,
    /// The hash of the last line verified.
    pub last_hash: String,
    /// How many lines were verified.
    pub lines: usize,
    /// The file ended in a partly written line, left out.
    pub torn: bool,
    /// The bytes of the lines verified, newlines included: where a torn
    /// line starts.
    pub verified_len: usize,
}

/// Verify the chain of journal `text` of `kind` line by line, with the
/// caps, the torn-line rule and the errors every journal shares; `check`
/// judges each record's place (line number, record) and says whether it is
/// the last. `path` names the file in errors.
pub(crate) fn parse_chain<R: serde::de::DeserializeOwned>(
    path: &str,
    text: &str,
    kind: &Kind,
    mut check: impl FnMut(usize, &R) -> Result<Then, String>,
) -> Result<Chain<R>, JournalError> {
    let path = path.to_owned();
    if text.trim().is_empty() {
        return Err(JournalError::Empty { path });
    }
    // A last line without its newline that is not JSON was being written
    // when the process died: leave it out, and say so.
    let mut text = text;
    let mut torn = false;
    if !text.ends_with('\n') {
        let start = text.rfind('\n').map_or(0, |i| i + 1);
        if start > 0 && serde_json::from_str::<Value>(&text[start..]).is_err() {
            text = &text[..start];
            torn = true;
        }
    }
    let mut prev_hash = GENESIS.to_owned();
    let mut hashes = Vec::new();
    let mut records = Vec::new();
    let mut ended = false;
    let mut last_line = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        last_line = n;
        let structure = |reason: String| JournalError::Structure {
            path: path.clone(),
            line: n,
            reason,
        };
        if ended {
            return Err(structure("a line after the footer".into()));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(structure(format!(
                "a {}-byte line, longer than any run writes ({} MiB at most)",
                line.len(),
                MAX_LINE_BYTES >> 20
            )));
        }
        let value: Value = serde_json::from_str(line).map_err(|e| JournalError::Malformed {
            path: path.clone(),
            line: n,
            reason: format!("invalid JSON: {e}"),
        })?;
        if n == 1 {
            let found = value.get("kind").and_then(Value::as_str);
            if found != Some(kind.header) {
                let mut reason = format!("the first line is not {}", kind.what);
                if let Some((_, is)) = KINDS.iter().find(|(k, _)| Some(*k) == found) {
                    reason.push_str(&format!(": this is {is}"));
                }
                return Err(JournalError::Malformed {
                    path,
                    line: 1,
                    reason,
                });
            }
            if let Some(found) = value.get("format").and_then(Value::as_u64)
                && found > u64::from(kind.format)
            {
                return Err(JournalError::NewerFormat {
                    path,
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                    reads: kind.format,
                });
            }
        }
        let parsed: LineOwned<R> =
            serde_json::from_value(value).map_err(|e| JournalError::Malformed {
                path: path.clone(),
                line: n,
                reason: e.to_string(),
            })?;
        if parsed.prev != prev_hash {
            return Err(JournalError::Chain {
                path,
                line: n,
                before: n - 1,
                expected: prev_hash,
                found: parsed.prev,
            });
        }
        prev_hash = line_hash(line);
        hashes.push(prev_hash.clone());
        ended = matches!(check(n, &parsed.record).map_err(structure)?, Then::End);
        records.push(parsed.record);
    }
    Ok(Chain {
        records,
        hashes,
        last_hash: prev_hash,
        lines: last_line,
        torn,
        verified_len: text.len(),
    })
}

/// Call indices as `[0, 3]`, or `none`.
fn indices(list: &[u32]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    let items: Vec<String> = list.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Open a journal file for reading: a regular file, never a FIFO or device.
fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    // A FIFO would block the open until a writer came: open without
    // blocking, then look at what was opened.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(
            "not a regular file (a journal is a file `runbook run` wrote)",
        ));
    }
    Ok(file)
}

/// Read a journal file: a regular file of at most [`MAX_JOURNAL_BYTES`].
pub(crate) fn read_capped(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut text = String::new();
    file.take(MAX_JOURNAL_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(io::Error::other(format!(
            "larger than {} MiB, more than any run writes",
            MAX_JOURNAL_BYTES >> 20
        )));
    }
    Ok(text)
}

impl Journal {
    /// Read and verify the journal at `path`; it must be complete.
    pub fn read(path: &Path) -> Result<Journal, JournalError> {
        Partial::read(path)?.complete(&path.display().to_string())
    }

    /// Verify journal text, which must be complete; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Journal, JournalError> {
        Partial::parse(path, text)?.complete(path)
    }

    /// Who the run reached IAM as (see [`Partial::caller`]).
    pub fn caller(&self) -> Option<&str> {
        caller_of(&self.header, &self.records)
    }

    /// Each call with its outcome, in order.
    pub fn calls(&self) -> impl Iterator<Item = (&Call, &CallEnd)> {
        let mut pending: Option<&Call> = None;
        self.records.iter().filter_map(move |r| match r {
            Record::Call(c) => {
                pending = Some(c);
                None
            }
            Record::Result(e) => pending.take().map(|c| (c, e)),
            _ => None,
        })
    }
}

/// The caller a journal records, in its header or in an identity record.
fn caller_of<'a>(header: &'a Header, records: &'a [Record]) -> Option<&'a str> {
    header.target.get("caller").map(String::as_str).or_else(|| {
        records.iter().find_map(|r| match r {
            Record::Identity(i) => Some(i.caller.as_str()),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails its second write only, as a disk that fills and then frees up.
    struct FailsOnce(u32);

    impl Write for FailsOnce {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            if self.0 == 2 {
                return Err(io::Error::from_raw_os_error(28));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(m: &str) -> Record {
        Record::Log(LogLine {
            level: "info".into(),
            message: m.into(),
        })
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_appended() {
        let mut j = JournalWriter::to_writer(FailsOnce(0));
        j.append(log("one")).unwrap();
        j.append(log("two")).unwrap_err();
        // The sink would take this line, after a torn one: refused.
        let e = j.append(log("three")).unwrap_err();
        assert!(e.to_string().contains("an earlier write"), "{e}");
        assert_eq!(j.records().len(), 1);
    }

    #[test]
    fn a_line_past_the_cap_is_refused_before_it_is_parsed() {
        let long = format!("{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let e = Partial::parse("j", &long).unwrap_err().to_string();
        assert!(e.contains("longer than any run writes"), "{e}");
    }
}
