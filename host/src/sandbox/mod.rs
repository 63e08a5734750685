//! The sandbox a runbook runs in, and the one path every host call takes.
//!
//! A runbook gets the `runbook` world's imports and a locked-down WASI (Rust's
//! `wasm32-wasip2` std imports some of it even when unused): no preopened
//! directories, no environment, no arguments, no sockets, a frozen clock and
//! seeded randomness, stdout and stderr captured into the journal. Anything
//! else it imports is refused before instantiation.
//!
//! Every IAM import is one line into the call path (`call`): check the grant
//! -> record the intent -> dispatch -> record the outcome -> hand the result to
//! the runbook. A call that cannot be journaled traps.
//!
//! Split by concern: `runtime` loads and links components, `call` is the call
//! path, `wasi` the locked-down WASI, `limits` the limits and the host's
//! aborts; this module runs a loaded runbook from start to footer.

mod call;
mod engine_config;
mod limits;
mod runtime;
mod wasi;

pub use call::{Consent, RunState};
pub use limits::{Abort, DEFAULT_FUEL, Limits};
pub use runtime::{Loaded, Runtime, shared_runtime};
pub use wasi::{WallTime, WasiWorld};

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::backend::{Backend, Recording};
use crate::bindings::WIT_PACKAGE;
use crate::exit;
use crate::grant::{Grant, Observed};
use crate::journal::{Footer, Header, JournalWriter, LogLine, Mode, Record, Resumes, RunOutcome};
use crate::request::Request;

use limits::{LOG_LINE_OVERHEAD, TICK, classify, outcome_bytes};

/// Everything one run needs besides the component.
pub struct RunSpec {
    /// The parameters, already checked against the manifest.
    pub params: BTreeMap<String, String>,
    /// How IAM is reached (recorded in the header).
    pub mode: Mode,
    /// Where IAM is reached (recorded in the header; never credentials).
    pub target: BTreeMap<String, String>,
    /// What answers the calls the grant allows.
    pub backend: Box<dyn Backend>,
    /// Whether mutations may be sent.
    pub consent: Consent,
    /// The sandbox's limits.
    pub limits: Limits,
    /// The journal to write.
    pub journal: JournalWriter,
    /// Print log lines to stderr as they happen.
    pub echo: bool,
    /// The recording that answers calls first: a replay (every call) or a
    /// resumed run's journal (the calls before the run goes live).
    pub replay: Option<Box<dyn Recording>>,
    /// The grant; `None` binds the manifest's capabilities to the parameters.
    pub grant: Option<Grant>,
    /// The run this one resumes (its answers come through `replay`).
    pub resumes: Option<Resumes>,
    /// Who signed the component (checked before it was loaded), for the
    /// journal's header.
    pub signed_by: Option<crate::signing::Signer>,
    /// The seed and clock start of the runbook's WASI: fresh for a live run,
    /// the recorded one for a replay or a resume (recorded in the header).
    pub world: WasiWorld,
    /// Who the run reaches IAM as, if STS is still being asked (the header's
    /// `target` has no `caller` then): recorded in the journal before the
    /// run's first change, else before the footer.
    pub caller: Option<crate::backend::Caller>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended (also the journal's footer).
    pub outcome: RunOutcome,
    /// The journal, complete with its footer.
    pub journal: JournalWriter,
    /// The documented exit code for this outcome.
    pub exit_code: u8,
    /// The changes the run made (planned, in a dry run; recorded, in a
    /// replay).
    pub changes: Vec<Request>,
}

/// The most WASI handles (streams, pollables, ...) a run may hold at once.
/// A runbook holds a handful; each lives in host memory, outside the guest's
/// memory cap, so a loop that subscribes and never drops is stopped here
/// (with a trap) rather than by the host's memory.
const MAX_WASI_HANDLES: usize = 10_000;

fn wasi_handles() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_WASI_HANDLES);
    table
}

/// Now, RFC 3339 UTC, as journals record times.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Run a loaded runbook to the end and write its journal.
pub fn run(rt: &Runtime, loaded: &Loaded, spec: RunSpec) -> anyhow::Result<RunReport> {
    let grant = spec
        .grant
        .unwrap_or_else(|| Grant::bind(&loaded.manifest, &spec.params));
    let mut journal = spec.journal;
    journal
        .append(Record::Header(Box::new(Header {
            format: crate::journal::FORMAT,
            runbook: loaded.manifest.name.clone(),
            runbook_version: loaded.manifest.version.clone(),
            wasm_sha256: loaded.sha256.clone(),
            wit: WIT_PACKAGE.to_owned(),
            sdk_version: loaded.sdk_version.clone(),
            host_version: env!("CARGO_PKG_VERSION").to_owned(),
            parameters: spec.params.clone(),
            grant: grant.clone(),
            mode: spec.mode,
            target: spec.target,
            started_at: now_rfc3339(),
            resumes: spec.resumes,
            max_fuel: Some(spec.limits.max_fuel),
            signed_by: spec.signed_by,
            wasi: Some(spec.world),
        })))
        .context("cannot write the journal header")?;

    let stdout = MemoryOutputPipe::new(spec.limits.max_log_bytes);
    let stderr = MemoryOutputPipe::new(spec.limits.max_log_bytes);
    let time = wasi::VirtualTime::new(spec.world.clock_start);
    let wasi = wasi::locked_down(&stdout, &stderr, spec.world, &time);
    // `memory_size` caps each memory: allow only the few memories, tables and
    // instances a runbook component has (a Rust one, or componentize-py's
    // Python one: both at most 2 memories), so the cap bounds the whole run.
    let limits = StoreLimitsBuilder::new()
        .memory_size(spec.limits.memory_bytes)
        .memories(2)
        .tables(16)
        .table_elements(1 << 16)
        .instances(32)
        .trap_on_grow_failure(true)
        .build();
    // The planning pass before a prompt has a deadline of its own: the time
    // an operator takes to read the plan is not the run's.
    let deadline = std::time::Instant::now() + spec.limits.deadline;
    let deadline_ticks = (spec.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
    let mut store = Store::new(
        &rt.engine,
        RunState {
            wasi,
            table: wasi_handles(),
            time,
            caller: spec.caller,
            limits,
            grant,
            observed: Observed::default(),
            journal,
            backend: spec.backend,
            consent: spec.consent,
            sandbox: spec.limits.clone(),
            calls: 0,
            log_bytes: 0,
            echo: spec.echo,
            replay: spec.replay,
            changes: Vec::new(),
            applied: Vec::new(),
            deadline,
            retrying: None,
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(deadline_ticks);
    store.epoch_deadline_trap();
    store
        .set_fuel(spec.limits.max_fuel)
        .map_err(anyhow::Error::from)
        .context("the engine does not count fuel")?;

    let params: Vec<(String, String)> = spec.params.into_iter().collect();
    let ticking = rt.ticker.hold()?;
    let result = loaded
        .pre
        .instantiate(&mut store)
        .and_then(|instance| instance.call_run(&mut store, &params));
    drop(ticking);

    // What is left when the guest stopped (0 when it ran out).
    let fuel_used = store
        .get_fuel()
        .ok()
        .map(|left| spec.limits.max_fuel.saturating_sub(left));
    let mut state = store.into_data();
    // Guest stdout/stderr share the log budget; what does not fit is cut, and
    // the cut is said.
    'streams: for (stream, pipe) in [("stdout", &stdout), ("stderr", &stderr)] {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines() {
            state.log_bytes += line.len() + LOG_LINE_OVERHEAD;
            let message = if state.log_bytes > spec.limits.max_log_bytes {
                format!(
                    "[{stream} cut: over the {}-byte log limit]",
                    spec.limits.max_log_bytes
                )
            } else {
                line.to_owned()
            };
            let cut = state.log_bytes > spec.limits.max_log_bytes;
            let _ = state.journal.append(Record::Log(LogLine {
                level: stream.to_owned(),
                message,
            }));
            if cut {
                break 'streams;
            }
        }
    }

    let (outcome, exit_code) = match result {
        Ok(Ok(o)) => (
            RunOutcome::Succeeded {
                summary: o.summary,
                changes: o.changes,
                next_steps: o.next_steps,
            },
            exit::SUCCESS,
        ),
        Ok(Err(error)) => (RunOutcome::Failed { error }, exit::RUNBOOK_FAILED),
        Err(e) => classify(e.into(), &spec.limits, &stdout, &stderr),
    };
    // The runbook's outcome is its text too: it shares the log budget, so a
    // runbook cannot fill the disk (or the terminal) through its outcome.
    let (outcome, exit_code) = match outcome_bytes(&outcome) {
        Some(bytes) if state.log_bytes.saturating_add(bytes) > spec.limits.max_log_bytes => (
            RunOutcome::Trapped {
                reason: format!(
                    "the runbook's outcome is {bytes} bytes, more than the {} bytes left of its {}-byte budget for logs, output and outcome (--max-log-bytes); it was not recorded",
                    spec.limits.max_log_bytes.saturating_sub(state.log_bytes),
                    spec.limits.max_log_bytes
                ),
            },
            exit::TRAPPED,
        ),
        _ => (outcome, exit_code),
    };
    // A replay must also end as the recording did.
    let (outcome, exit_code) = match &state.replay {
        Some(replay) if !matches!(outcome, RunOutcome::Aborted { .. }) => {
            match replay.finished(state.calls, &outcome) {
                Ok(()) => (outcome, exit_code),
                Err(d) => (
                    RunOutcome::Aborted {
                        reason: d.to_string(),
                    },
                    exit::REPLAY_DIVERGED,
                ),
            }
        }
        _ => (outcome, exit_code),
    };
    // The caller, if STS's answer was not needed earlier (no change was
    // sent); a journal that cannot take it gets no footer either.
    let footer = state.record_caller().and_then(|()| {
        state.journal.append(Record::Footer(Footer {
            outcome: outcome.clone(),
            calls: state.calls,
            finished_at: now_rfc3339(),
            fuel_used,
            applied: Some(std::mem::take(&mut state.applied)),
        }))
    });
    if let Err(e) = footer {
        // The journal is incomplete: the operator still learns how the run
        // ended and what it changed.
        let changes: Vec<String> = state.changes.iter().map(Request::describe).collect();
        bail!(
            "cannot write the journal footer ({e}); the run ended: {}; changes sent to IAM: {}",
            crate::transcript::outcome_line(&outcome),
            if changes.is_empty() {
                "none".to_owned()
            } else {
                changes.join("; ")
            }
        );
    }
    Ok(RunReport {
        outcome,
        journal: state.journal,
        exit_code,
        changes: state.changes,
    })
}
