//! Backends answer the calls that pass the capability check: live AWS, a dry run
//! that plans mutations instead of sending them, or (in replay) a journal.
//!
//! They sit behind one trait so the call path (check, record intent, dispatch,
//! record outcome) is the same whatever answers.

mod dry_run;
mod live;

pub use dry_run::DryRun;
pub use live::{Live, LiveOptions};

use crate::request::{CallResult, Request};

/// Something that answers host calls.
pub trait Backend: Send {
    /// Answer one call that the grant allowed.
    fn call(&mut self, request: &Request) -> CallResult;
}

/// A backend that answers every call from a closure: for tests and benchmarks.
pub struct Scripted<F>(pub F);

impl<F: FnMut(&Request) -> CallResult + Send> Backend for Scripted<F> {
    fn call(&mut self, request: &Request) -> CallResult {
        (self.0)(request)
    }
}
