//! Offline runs: a runbook re-run against a recorded journal, nothing sent.
//!
//! The one replay path of the host: `runbook run --replay`, `runbook replay`
//! and the test harness all come here. It joins the sandbox (which runs) and
//! the replayer (which answers), so neither has to know the other.

use std::collections::BTreeMap;

use crate::backend::{Answer, Backend};
use crate::grant::Grant;
use crate::journal::{Journal, JournalWriter, Mode};
use crate::replay::Replayer;
use crate::request::Request;
use crate::sandbox::{self, Consent, Limits, Loaded, RunReport, RunSpec, Runtime};

/// How to replay, beyond the component and the recording.
#[derive(Debug)]
pub struct Replay {
    /// The parameters: the recorded ones where not given.
    pub params: BTreeMap<String, String>,
    /// The grant: the recorded one if not given.
    pub grant: Option<Grant>,
    /// The sandbox's limits.
    pub limits: Limits,
    /// Where the replay's own journal goes.
    pub journal: JournalWriter,
    /// Print log lines as they happen.
    pub echo: bool,
    /// Who signed the component, if its signature was checked.
    pub signed_by: Option<crate::signing::Signer>,
}

impl Default for Replay {
    fn default() -> Replay {
        Replay {
            params: BTreeMap::new(),
            grant: None,
            limits: Limits::default(),
            journal: JournalWriter::in_memory(),
            echo: false,
            signed_by: None,
        }
    }
}

/// Run `loaded` against `journal` (named `source` in messages): every call
/// is answered from the recording and must match it; the run must end as
/// the recording did. A divergence ends the run with exit 6, a bad
/// recording with exit 7 (in the report).
pub fn replay(
    rt: &Runtime,
    loaded: &Loaded,
    source: &str,
    journal: &Journal,
    how: Replay,
) -> anyhow::Result<RunReport> {
    let mut params = journal.header.parameters.clone();
    params.extend(how.params);
    sandbox::run(
        rt,
        loaded,
        RunSpec {
            params,
            mode: Mode::Replay,
            target: BTreeMap::from([("recording".to_owned(), source.to_owned())]),
            backend: Box::new(Unreachable),
            consent: Consent::Given,
            limits: how.limits,
            journal: how.journal,
            echo: how.echo,
            replay: Some(Box::new(Replayer::new(source, journal))),
            grant: Some(how.grant.unwrap_or_else(|| journal.header.grant.clone())),
            resumes: None,
            signed_by: how.signed_by,
        },
    )
}

/// The backend of a replay: never reached, the recording answers every call.
struct Unreachable;

impl Backend for Unreachable {
    fn call(&mut self, request: &Request, _deadline: std::time::Instant) -> Answer {
        unreachable!("replay answers {} from the recording", request.op())
    }
}
