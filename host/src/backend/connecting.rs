//! AWS set up beside the start of a run.
//!
//! Setting up the SDK (its configuration, the credentials, and its HTTPS
//! client, whose trust store is a few milliseconds of reading and parsing the
//! system's certificates) is most of what a short run waits for before its
//! first call. [`Connecting`] starts it on a thread of its own as the command
//! line is read, and the run goes on beside it: the component is read,
//! checked and loaded, the journal created, the instance started. The run's
//! first call waits for the client ([`Deferred`]), within the run's deadline.
//!
//! Nothing is sent to AWS before [`Connecting::start`]: the caller is asked of
//! STS (when it is not remembered) only once the run has passed every check.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use super::live::{Caller, Live, LiveOptions, ask_sts, remembered_caller};
use super::{Answer, Backend, cut_error};
use crate::bindings::{IamError, ServiceError};
use crate::request::Request;

/// AWS being set up on a thread of its own (see the module docs).
pub struct Connecting {
    options: LiveOptions,
    live: Receiver<io::Result<Live>>,
    /// Dropped without a word: the thread asks STS nothing.
    go: Sender<()>,
    caller: Receiver<String>,
}

impl Connecting {
    /// Start setting up AWS with `options`.
    pub fn spawn(options: LiveOptions) -> Connecting {
        let (live_tx, live) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let (caller_tx, caller) = mpsc::channel();
        let thread_options = options.clone();
        // A thread that cannot be made leaves both channels closed: the
        // first call and the caller say so.
        let _ = crate::threads::spawn_beside("runbook-aws-setup", move || {
            let connected = Live::connect(&thread_options);
            let identity = connected.as_ref().ok().map(Live::identity);
            let _ = live_tx.send(connected);
            if go_rx.recv().is_err() {
                return;
            }
            let arn = match identity {
                None => "unknown (the AWS client could not be set up)".to_owned(),
                Some((key, config)) => key
                    .as_deref()
                    .and_then(remembered_caller)
                    .unwrap_or_else(|| ask_sts(key, &config)),
            };
            let _ = caller_tx.send(arn);
        });
        Connecting {
            options,
            live,
            go,
            caller,
        }
    }

    /// The options it sets up AWS with.
    pub fn options(&self) -> &LiveOptions {
        &self.options
    }

    /// The run starts: the backend, whose first call waits for the client,
    /// and the caller, asked of STS from now on unless it is remembered.
    pub fn start(self) -> (Deferred, Caller) {
        let _ = self.go.send(());
        (
            Deferred(State::Waiting(self.live)),
            Caller::pending(self.caller),
        )
    }
}

/// The live backend once it is set up: its first call waits for the client
/// (see [`Connecting`]), at most until that call's deadline.
pub struct Deferred(State);

enum State {
    Waiting(Receiver<io::Result<Live>>),
    Ready(Box<Live>),
    Failed(String),
}

impl Deferred {
    /// A backend already set up.
    pub fn ready(live: Live) -> Deferred {
        Deferred(State::Ready(Box::new(live)))
    }
}

impl Backend for Deferred {
    fn ready(&mut self, request: &Request, deadline: Instant) -> Result<(), String> {
        if let State::Waiting(setup) = &self.0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            self.0 = match setup.recv_timeout(wait) {
                Ok(Ok(live)) => State::Ready(Box::new(live)),
                Ok(Err(e)) => State::Failed(format!("cannot set up the AWS client: {e}")),
                Err(RecvTimeoutError::Disconnected) => State::Failed(
                    "cannot set up the AWS client: its thread stopped before it was done".into(),
                ),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the run's deadline passed while the AWS client was being set up: {} was not sent",
                        request.op()
                    ));
                }
            };
        }
        Ok(())
    }

    fn call(&mut self, request: &Request, deadline: Instant) -> Answer {
        if let Err(why) = self.ready(request, deadline) {
            // The call path asks `ready` first; a caller that did not is
            // told the same.
            return Answer {
                result: Err(cut_error(&why)),
                retries: Vec::new(),
                cut: true,
                request_ids: Vec::new(),
            };
        }
        match &mut self.0 {
            State::Ready(live) => live.call(request, deadline),
            // Nothing was sent: the runbook learns it as a transport failure.
            State::Failed(why) => Answer::from(Err(IamError::ServiceFailure(ServiceError {
                code: "Transport".into(),
                message: why.clone(),
            }))),
            State::Waiting(_) => unreachable!("a wait that ends leaves a client or an error"),
        }
    }
}
