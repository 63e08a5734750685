//! Backends answer the calls that pass the capability check: live AWS, a dry run
//! that plans mutations instead of sending them, or (in replay) a journal.
//!
//! They sit behind one trait so the call path (check, record intent, dispatch,
//! record outcome) is the same whatever answers. Every call carries the run's
//! deadline: a backend never waits past it (a stalled IAM, a retry's backoff, a
//! runbook's sleep), and says when it cut a call short.

mod dry_run;
mod live;

use std::time::Instant;

pub use dry_run::DryRun;
pub use live::{Live, LiveOptions};

use crate::bindings::{IamError, ServiceError};
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
}

impl From<CallResult> for Answer {
    fn from(result: CallResult) -> Answer {
        Answer {
            result,
            retries: Vec::new(),
            cut: false,
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
