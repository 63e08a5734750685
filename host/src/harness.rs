//! The test harness for runbook authors: load a runbook, give it parameters,
//! back it with scripted answers or a recorded journal, run it in process, and
//! get the outcome and transcript back for assertions and snapshots.
//!
//! ```no_run
//! use runbook_host::harness::Harness;
//! use runbook_host::request::{Request, Response};
//!
//! let run = Harness::new("mfa-recovery")?
//!     .param("user", "mfa-test")
//!     .answer_with(|req| match req {
//!         Request::ListMfaDevices { .. } => Ok(Response::MfaDevices(vec![])),
//!         other => panic!("unexpected call {other:?}"),
//!     })
//!     .run()?;
//! assert_eq!(run.exit_code, 0);
//! # anyhow::Ok(())
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::backend::{Backend, Scripted};
use crate::journal::{Journal, JournalWriter, Mode, Record, RunOutcome};
use crate::project;
use crate::request::{CallResult, Request};
use crate::sandbox::{self, Consent, Limits, Loaded, RunSpec, Runtime};
use crate::transcript;

/// A runbook ready to run under test.
pub struct Harness {
    rt: &'static Runtime,
    loaded: Loaded,
    params: BTreeMap<String, String>,
    backend: Option<Box<dyn Backend>>,
    replay: Option<(String, Journal)>,
    mode: Mode,
    consent: Consent,
    limits: Limits,
    journal: Option<JournalWriter>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("runbook", &self.loaded.manifest.name)
            .field("params", &self.params)
            .finish()
    }
}

/// What a run under test did.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// How it ended.
    pub outcome: RunOutcome,
    /// The exit code `runbook run` would give.
    pub exit_code: u8,
    /// The journal's records (header to footer).
    pub records: Vec<Record>,
    /// The changes made or planned, in words.
    pub changes: Vec<String>,
}

impl TestRun {
    /// The transcript: a line per call and the outcome (see `runbook show`).
    pub fn transcript(&self) -> String {
        transcript::render(&self.records)
    }
}

impl Harness {
    /// A runbook by name (from the project's runbooks/, built if needed) or by
    /// path to a `.wasm` component.
    pub fn new(runbook: &str) -> anyhow::Result<Harness> {
        let (what, bytes) = project::read_runbook(runbook, None, &mut |m| {
            let _ = writeln!(std::io::stderr(), "{}", transcript::printable(m));
        })?;
        Harness::from_bytes(&what, &bytes)
    }

    /// A runbook component's bytes; `what` names it in errors.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> anyhow::Result<Harness> {
        let rt = sandbox::shared_runtime()?;
        let loaded = rt.load(what, bytes)?;
        Ok(Harness {
            rt,
            loaded,
            params: BTreeMap::new(),
            backend: None,
            replay: None,
            mode: Mode::Live,
            consent: Consent::Given,
            limits: Limits::default(),
            journal: None,
        })
    }

    /// The sha256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.loaded.sha256
    }

    /// Give the runbook a parameter.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Answer the calls the grant allows with this function.
    pub fn answer_with(
        mut self,
        answer: impl FnMut(&Request) -> CallResult + Send + 'static,
    ) -> Self {
        self.backend = Some(Box::new(Scripted(answer)));
        self
    }

    /// Answer the calls with this backend (e.g. a live one).
    pub fn backend(mut self, backend: impl Backend + 'static) -> Self {
        self.backend = Some(Box::new(backend));
        self
    }

    /// Answer every call from a recorded journal, with its parameters unless
    /// given otherwise; a divergence ends the run as `runbook replay` would.
    pub fn replay(mut self, journal: &Path) -> anyhow::Result<Self> {
        let j = Journal::read(journal)?;
        for (k, v) in &j.header.parameters {
            self.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self.mode = Mode::Replay;
        self.replay = Some((journal.display().to_string(), j));
        Ok(self)
    }

    /// Refuse mutations, as a run without `--yes` off a terminal does.
    pub fn without_consent(mut self) -> Self {
        self.consent = Consent::Refused;
        self
    }

    /// Allow exactly these changes, in order, as a run approved at the prompt
    /// does; any other change is refused.
    pub fn approving(mut self, changes: Vec<Request>) -> Self {
        self.consent = Consent::Approved(changes.into());
        self
    }

    /// Use these sandbox limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Write the journal to `journal` (e.g. one whose writes fail part-way,
    /// as on a full disk) instead of keeping it in memory.
    pub fn journal(mut self, journal: JournalWriter) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Run to the end. Errors are the host's (e.g. a journal it could not
    /// write); the runbook's failures and traps are in the [`TestRun`].
    pub fn run(self) -> anyhow::Result<TestRun> {
        self.loaded
            .manifest
            .check_params(&self.params)
            .map_err(anyhow::Error::msg)?;
        let report = match (&self.replay, self.backend) {
            (Some((source, journal)), _) => crate::offline::replay(
                self.rt,
                &self.loaded,
                source,
                journal,
                crate::offline::Replay {
                    params: self.params,
                    limits: self.limits,
                    journal: self.journal.unwrap_or_else(JournalWriter::in_memory),
                    ..Default::default()
                },
            ),
            (None, Some(backend)) => sandbox::run(
                self.rt,
                &self.loaded,
                RunSpec {
                    params: self.params,
                    mode: self.mode,
                    target: BTreeMap::new(),
                    backend,
                    consent: self.consent,
                    limits: self.limits,
                    journal: self.journal.unwrap_or_else(JournalWriter::in_memory),
                    echo: false,
                    replay: None,
                    grant: None,
                    resumes: None,
                    signed_by: None,
                    world: crate::sandbox::WasiWorld::fresh(),
                    caller: None,
                },
            ),
            (None, None) => anyhow::bail!(
                "the harness has nothing to answer calls: use answer_with, backend or replay"
            ),
        }
        .context("running the runbook")?;
        Ok(TestRun {
            outcome: report.outcome,
            exit_code: report.exit_code,
            records: report.journal.records().to_vec(),
            changes: report.changes.iter().map(Request::describe).collect(),
        })
    }
}
