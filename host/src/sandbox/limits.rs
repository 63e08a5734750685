//! The sandbox's limits, and the ways the host stops a run (its aborts),
//! told apart from the runbook's own traps when a run ends.

use std::time::Duration;

use wasmtime::Trap;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::backend::Stop;
use crate::exit;
use crate::journal::RunOutcome;

/// Resource limits for one run. Each default is generous for a real runbook
/// and small enough that a hostile one cannot hurt the operator's machine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time for the whole run. An MFA recovery takes seconds; five
    /// minutes covers slow IAM and throttling retries, and stops a loop.
    pub deadline: Duration,
    /// Linear memory. Rust runbooks hold a few lists of devices, a few MiB at
    /// most. A Python runbook carries its interpreter: componentize-py's
    /// snapshot of it starts at about 13 MiB, and the Python MFA recovery
    /// runs in 14 MiB (it fails at 12). 64 MiB, one default for both, is
    /// over four times that, leaves a Python runbook some 50 MiB for its data,
    /// and bounds an allocation loop.
    pub memory_bytes: usize,
    /// Host calls per run. The MFA recovery makes 5 for one device; 1,000
    /// allows large accounts and stops a runaway loop hammering IAM.
    pub max_calls: u32,
    /// Bytes in one string argument. IAM names are at most 128 characters and
    /// ARNs 2,048; 4 KiB bounds what reaches the journal and AWS.
    pub max_arg_bytes: usize,
    /// Bytes of log output (log lines plus stdout/stderr) per run, so a
    /// runbook cannot fill the disk through its journal.
    pub max_log_bytes: usize,
    /// Fuel: wasmtime's count of the guest's WebAssembly instructions (about
    /// one unit each). Unlike the deadline it is deterministic, so a replay
    /// given the recorded budget stops at the same call the live run did.
    /// See [`DEFAULT_FUEL`] for the default's reason.
    pub max_fuel: u64,
}

/// The default fuel budget. Measured against moto: mfa-recovery uses about
/// 23,000 units for one device, mfa-audit over a 503-user credential report
/// about 563,000, and the bench-calls test runbook about 116,000 for 999
/// calls (host calls cost the guest little: the host's work is not fuel).
/// `hostile-loop` burns about 10 billion a second here (wasmtime charges a
/// loop's whole body at once). Ten billion is over 10,000 times the heaviest
/// real run (an audit of 10,000 users would use about 11 million), and
/// stops an endless loop in about a second, well before the 300 s deadline.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(300),
            memory_bytes: 64 << 20,
            max_calls: 1000,
            max_arg_bytes: 4096,
            max_log_bytes: 1 << 20,
            max_fuel: DEFAULT_FUEL,
        }
    }
}

/// What one log line costs against `max_log_bytes` besides its text: its
/// journal line's JSON and hash, so empty lines cannot flood the journal.
pub(super) const LOG_LINE_OVERHEAD: usize = 128;

/// How long one epoch tick is: the deadline's granularity.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// Why the host stopped a run. These travel as the trap's error so the caller
/// can tell them apart from a runbook's own trap.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    /// A mutation was about to be sent without consent.
    #[error(
        "refused to {change}: changes need consent; pass --yes to apply them (or --dry-run to see the plan)"
    )]
    ConsentRequired {
        /// The change refused.
        change: String,
    },
    /// A mutation that was not in the plan the operator approved.
    #[error(
        "refused to {change}: it is not the next change of the plan approved at the prompt (IAM may have changed since); run again to see a new plan"
    )]
    NotApproved {
        /// The change refused.
        change: String,
    },
    /// A sandbox limit was hit.
    #[error("{0}")]
    Limit(String),
    /// The journal could not be written, so the call did not happen.
    #[error("cannot write the journal, so the call was not made: {0}")]
    Journal(#[source] std::io::Error),
    /// A call was sent, but its outcome could not be journaled.
    #[error(
        "{call}: sent to IAM and {ended}, but the journal could not record it ({source}); check IAM before running again"
    )]
    Unrecorded {
        /// The call, in words.
        call: String,
        /// How IAM answered, in words.
        ended: String,
        /// Why the journal could not be written.
        source: std::io::Error,
    },
    /// The runbook used up its fuel (`--max-fuel`).
    #[error(
        "the runbook used up its fuel, {budget} units of work (--max-fuel), and was stopped; if the runbook really needs more, raise --max-fuel"
    )]
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// The run's deadline passed during a call (a stalled IAM, a wait).
    #[error("stopped at the run's deadline (--deadline): {0}")]
    Cut(String),
    /// A replay diverged from the recording.
    #[error("{0}")]
    Diverged(String),
    /// A backend answer did not fit the call's type.
    #[error("{0}")]
    BadAnswer(String),
    /// A recorded answer did not fit the call's type: the journal is bad.
    #[error("{0}")]
    BadRecording(String),
    /// The backend could not send a call at all (its AWS client could not be
    /// set up); nothing was sent.
    #[error("{0}; the call was not sent")]
    Unavailable(String),
}

impl From<Stop> for Abort {
    fn from(stop: Stop) -> Abort {
        match stop {
            Stop::Diverged(d) => Abort::Diverged(d),
            Stop::BadRecording(r) => Abort::BadRecording(r),
        }
    }
}

/// The bytes of the runbook's own text in an outcome it returned (the host's
/// outcomes are not charged).
pub(super) fn outcome_bytes(outcome: &RunOutcome) -> Option<usize> {
    match outcome {
        RunOutcome::Succeeded {
            summary,
            changes,
            next_steps,
        } => Some(
            summary.len()
                + changes
                    .iter()
                    .chain(next_steps)
                    .map(|l| l.len() + LOG_LINE_OVERHEAD)
                    .sum::<usize>(),
        ),
        RunOutcome::Failed { error } => Some(error.len()),
        _ => None,
    }
}

/// Tell the host's own aborts from the runbook's traps, with a clear reason.
pub(super) fn classify(
    e: anyhow::Error,
    limits: &Limits,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> (RunOutcome, u8) {
    if let Some(abort) = e.downcast_ref::<Abort>() {
        let reason = abort.to_string();
        return match abort {
            Abort::ConsentRequired { .. } | Abort::NotApproved { .. } => {
                (RunOutcome::Refused { reason }, exit::CONSENT_REFUSED)
            }
            Abort::Limit(_) | Abort::Cut(_) | Abort::OutOfFuel { .. } => {
                (RunOutcome::Trapped { reason }, exit::TRAPPED)
            }
            Abort::Journal(_) | Abort::Unrecorded { .. } => {
                (RunOutcome::Aborted { reason }, exit::HOST_ERROR)
            }
            Abort::Diverged(_) => (RunOutcome::Aborted { reason }, exit::REPLAY_DIVERGED),
            Abort::BadAnswer(_) | Abort::Unavailable(_) => {
                (RunOutcome::Aborted { reason }, exit::HOST_ERROR)
            }
            Abort::BadRecording(_) => (RunOutcome::Aborted { reason }, exit::JOURNAL_INVALID),
        };
    }
    // A full output pipe fails the guest's next write, and Rust's print!
    // panics on that: say which limit it was.
    for (name, pipe) in [("stdout", stdout), ("stderr", stderr)] {
        if pipe.contents().len() >= limits.max_log_bytes {
            let reason = format!(
                "the runbook wrote more than {} bytes to {name} (--max-log-bytes); it was stopped",
                limits.max_log_bytes
            );
            return (RunOutcome::Trapped { reason }, exit::TRAPPED);
        }
    }
    let reason = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Abort::OutOfFuel {
            budget: limits.max_fuel,
        }
        .to_string(),
        Some(Trap::Interrupt) => format!(
            "the runbook ran past its {}s deadline (--deadline) and was stopped",
            limits.deadline.as_secs()
        ),
        Some(Trap::UnreachableCodeReached) => {
            let err = String::from_utf8_lossy(&stderr.contents())
                .trim()
                .to_owned();
            // Rust prints "thread ... panicked at FILE:LINE:COL:" and the
            // message on the next line.
            let panic = err
                .find("panicked at")
                .map(|at| err[at..].lines().take(2).collect::<Vec<_>>().join(" "));
            match panic {
                Some(p) => format!("the runbook panicked: {p}"),
                None if err.is_empty() => "the runbook trapped: unreachable code reached".into(),
                None => format!("the runbook trapped: {err}"),
            }
        }
        Some(trap) => format!("the runbook trapped: {trap}"),
        None if format!("{e:#}").contains("memory") => format!(
            "the runbook went over its {} MiB memory limit (--max-memory-mib) and was stopped: {e:#}",
            limits.memory_bytes >> 20
        ),
        None => format!("the runbook trapped: {e:#}"),
    };
    (RunOutcome::Trapped { reason }, exit::TRAPPED)
}
