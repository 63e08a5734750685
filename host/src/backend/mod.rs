//! Backends answer the calls that pass the capability check: live AWS, a dry run
//! that plans mutations instead of sending them, or (in replay) a journal.
//!
//! They sit behind one trait so the call path (check, record intent, dispatch,
//! record outcome) is the same whatever answers. Every call carries the run's
//! deadline: a backend never waits past it (a stalled IAM, a retry's backoff, a
//! runbook's sleep), and says when it cut a call short.

mod connecting;
mod dry_run;
pub(crate) mod live;

use std::time::Instant;

pub use connecting::{Connecting, Deferred};
pub use dry_run::DryRun;
pub use live::{
    AssumeRole, Caller, Live, LiveOptions, RateLimiter, Service, SharedCredentials, endpoint,
};

use crate::bindings::{IamError, ServiceError};
use crate::journal::{CallOutcome, RunOutcome};
use crate::request::{CallResult, Request, Response};

/// A backend's answer to one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// What the runbook receives.
    pub result: CallResult,
    /// The failed attempts before the last one, one line each (the AWS error
    /// code and message), oldest first; empty when the first attempt answered.
    pub retries: Vec<String>,
    /// The run's deadline passed while the call was in flight: it was cut
    /// short, and may or may not have reached IAM.
    pub cut: bool,
    /// The request id (`x-amzn-RequestId`) of every answer IAM sent for this
    /// call, in order: each failed attempt's, then each page's. Empty when
    /// nothing was sent (or nothing answered).
    pub request_ids: Vec<String>,
}

impl From<CallResult> for Answer {
    fn from(result: CallResult) -> Answer {
        Answer {
            result,
            retries: Vec::new(),
            cut: false,
            request_ids: Vec::new(),
        }
    }
}

/// The error of a call the run's deadline cut short, with `reason`. The
/// runbook never receives it: the run stops there.
pub fn cut_error(reason: &str) -> IamError {
    IamError::ServiceFailure(ServiceError {
        code: "DeadlineExceeded".into(),
        message: reason.to_owned(),
    })
}

/// Something that answers host calls.
pub trait Backend: Send {
    /// Answer one call that the grant allowed, giving up at `deadline`.
    fn call(&mut self, request: &Request, deadline: Instant) -> Answer;

    /// Wait until `request` can be sent (a live client still being set up),
    /// at most until `deadline`; why not, if it cannot be: then it is not
    /// sent, and the call path records it as such.
    fn ready(&mut self, _request: &Request, _deadline: Instant) -> Result<(), NotReady> {
        Ok(())
    }
}

/// Why a call cannot be sent (see [`Backend::ready`]): it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The run's deadline passed while waiting for the backend.
    Deadline(String),
    /// The backend cannot send at all (its client could not be set up).
    Unavailable(String),
}

/// A backend that answers every call from a closure: for tests and benchmarks.
/// Waits (`clock-sleep`) are answered at once without reaching the closure.
pub struct Scripted<F>(pub F);

impl<F: FnMut(&Request) -> CallResult + Send> Backend for Scripted<F> {
    fn call(&mut self, request: &Request, _deadline: Instant) -> Answer {
        if let Request::ClockSleep { .. } = request {
            return Ok(Response::Done).into();
        }
        (self.0)(request).into()
    }
}

/// Answers from a recording instead of a backend: a replay (every call), or
/// the prefix of a resumed run (the calls before it goes live). The call
/// path asks it first; the calls it does not answer go to the backend.
pub trait Recording: Send {
    /// Whether call `index` is answered from the recording.
    fn answers(&self, index: u32) -> bool;

    /// Whether this is a resume (its answers stand for a run that already
    /// happened; the run then goes on live, with no end to compare).
    fn resumes(&self) -> bool;

    /// The recorded outcome and answer of call `index`, if `request` is what
    /// was recorded and `denied` (this run's grant verdict) agrees with it.
    fn answer(
        &mut self,
        index: u32,
        request: &Request,
        denied: Option<&String>,
    ) -> Result<(CallOutcome, CallResult), Stop>;

    /// At the end of the run: every recorded call was made and the run
    /// ended as recorded (always true for a resume).
    fn finished(&self, calls: u32, outcome: &RunOutcome) -> Result<(), Stop>;
}

/// Why a recording could not answer: the run stops there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Stop {
    /// The run differs from the recording (exit 6).
    #[error("{0}")]
    Diverged(String),
    /// The recording itself is bad (exit 7).
    #[error("{0}")]
    BadRecording(String),
}
