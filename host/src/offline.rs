//! Offline runs: a runbook re-run against a recorded journal, nothing sent.
//!
//! The one replay path of the host: `runbook run --replay`, `runbook replay`
//! and the test harness all come here. It joins the sandbox (which runs) and
//! the replayer (which answers), so neither has to know the other.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::{Answer, Backend};
use crate::grant::Grant;
use crate::journal::{Journal, JournalWriter, Mode};
use crate::replay::Replayer;
use crate::request::Request;
use crate::sandbox::{self, Consent, DEFAULT_FUEL, Limits, Loaded, RunReport, RunSpec, Runtime};

/// How to replay, beyond the component and the recording.
#[derive(Debug)]
pub struct Replay {
    /// The parameters: the recorded ones where not given.
    pub params: BTreeMap<String, String>,
    /// The grant: the recorded one if not given.
    pub grant: Option<Grant>,
    /// The sandbox's limits, but for two the replay takes from the
    /// recording: the fuel budget is the recorded run's, and the deadline is
    /// [`backstop`]'s.
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
    let limits = Limits {
        // The recorded budget, so a run that ran out of fuel runs out at the
        // same point (journals from before fuel had the default).
        max_fuel: journal.header.max_fuel.unwrap_or(DEFAULT_FUEL),
        deadline: backstop(journal),
        ..how.limits
    };
    sandbox::run(
        rt,
        loaded,
        RunSpec {
            params,
            mode: Mode::Replay,
            target: BTreeMap::from([("recording".to_owned(), source.to_owned())]),
            backend: Box::new(Unreachable),
            consent: Consent::Given,
            limits,
            journal: how.journal,
            echo: how.echo,
            replay: Some(Box::new(Replayer::new(source, journal))),
            grant: Some(how.grant.unwrap_or_else(|| journal.header.grant.clone())),
            resumes: None,
            signed_by: how.signed_by,
            world: crate::sandbox::WasiWorld::recorded(&journal.header),
            caller: None,
        },
    )
}

/// The wall-clock limit of a replay: a backstop, never what decides how a
/// replay ends. Fuel bounds the guest's work, and it is the recorded budget,
/// so a replay of a successful run has all the fuel it needs; the recorded
/// answers come from memory (no IAM, no waits: a recorded sleep is answered
/// at once). A replay of a successful run therefore does the same guest work
/// as the live run did in at most its recorded duration, minus every wait.
/// Why keep a backstop at all: a few instructions cost one unit of fuel
/// whatever their size (`memory.fill` and `memory.copy` of 64 MiB), so a
/// hostile runbook could make its budget last for years. The backstop is an
/// hour, or ten times the recorded run's duration if that is longer: only a
/// replaying machine ten times slower than the recording one (or a hostile
/// runbook) meets it.
pub fn backstop(journal: &Journal) -> Duration {
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    let recorded = match (
        parse(&journal.header.started_at),
        parse(&journal.footer.finished_at),
    ) {
        (Some(start), Some(end)) => Duration::try_from(end - start).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    BACKSTOP_FLOOR.max(recorded.saturating_mul(10))
}

/// The shortest [`backstop`]: an hour, 12 times the default deadline.
const BACKSTOP_FLOOR: Duration = Duration::from_secs(3600);

/// The backend of a replay: never reached, the recording answers every call.
struct Unreachable;

impl Backend for Unreachable {
    fn call(&mut self, request: &Request, _deadline: std::time::Instant) -> Answer {
        unreachable!("replay answers {} from the recording", request.op())
    }
}
