//! AWS set up beside the start of a run.
//!
//! Setting up the SDK (its configuration and its HTTPS client, whose trust
//! store is a few milliseconds of reading and parsing the system's
//! certificates) is most of what a short run waits for before its first call.
//! [`Connecting`] starts it on a thread of its own as the command line is
//! read, and the run goes on beside it: the component is read, checked and
//! loaded, the journal created, the instance started. The run's first call to
//! AWS waits for the client ([`Deferred`]), within the run's deadline.
//!
//! Setting up reads files and the environment; no credentials are resolved
//! and nothing is asked of AWS (only the instance metadata service, for a
//! region, on an EC2 instance where none is configured). The credentials are
//! resolved, and the caller found (remembered, or asked of STS), only after
//! [`Connecting::start`], once the run has passed its checks.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use super::live::{Caller, Live, LiveOptions, clock_call, find_caller};
use super::{Answer, Backend, NotReady, cut_error};
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
                Some((endpoint, config)) => find_caller(endpoint.as_deref(), &config),
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
    fn ready(&mut self, request: &Request, deadline: Instant) -> Result<(), NotReady> {
        // The host's clock needs no AWS.
        if request.operation().is_none() {
            return Ok(());
        }
        if let State::Waiting(setup) = &self.0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            self.0 = match setup.recv_timeout(wait) {
                Ok(Ok(live)) => State::Ready(Box::new(live)),
                Ok(Err(e)) => State::Failed(format!("cannot set up the AWS client: {e}")),
                Err(RecvTimeoutError::Disconnected) => State::Failed(
                    "cannot set up the AWS client: its thread stopped before it was done".into(),
                ),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(NotReady::Deadline(format!(
                        "the run's deadline passed while the AWS client was being set up: {} was not sent",
                        request.op()
                    )));
                }
            };
        }
        match &self.0 {
            State::Failed(why) => Err(NotReady::Unavailable(why.clone())),
            _ => Ok(()),
        }
    }

    fn call(&mut self, request: &Request, deadline: Instant) -> Answer {
        if let Some(answer) = clock_call(request, deadline) {
            return answer;
        }
        // The call path asks `ready` first; a caller that did not is told
        // the same, and nothing is sent.
        if let Err(NotReady::Deadline(why) | NotReady::Unavailable(why)) =
            self.ready(request, deadline)
        {
            return Answer {
                result: Err(cut_error(&why)),
                retries: Vec::new(),
                cut: true,
                request_ids: Vec::new(),
            };
        }
        match &mut self.0 {
            State::Ready(live) => live.call(request, deadline),
            State::Waiting(_) | State::Failed(_) => {
                unreachable!("`ready` said the client is set up")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::request::Response;

    fn waiting() -> (mpsc::Sender<io::Result<Live>>, Deferred) {
        let (tx, rx) = mpsc::channel();
        (tx, Deferred(State::Waiting(rx)))
    }

    fn list() -> Request {
        Request::ListMfaDevices {
            user_name: "mfa-test".into(),
        }
    }

    #[test]
    fn a_client_not_set_up_by_the_deadline_leaves_the_call_unsent() {
        let (_tx, mut backend) = waiting();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        assert_eq!(
            backend.ready(&list(), deadline),
            Err(NotReady::Deadline(
                "the run's deadline passed while the AWS client was being set up: list-mfa-devices was not sent".into()
            ))
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_set_up_that_failed_or_whose_thread_died_makes_every_call_unavailable() {
        let (tx, mut failed) = waiting();
        tx.send(Err(io::Error::other("no epoll"))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let why = NotReady::Unavailable("cannot set up the AWS client: no epoll".into());
        assert_eq!(failed.ready(&list(), deadline), Err(why.clone()));
        // Said again for the next call, without waiting.
        assert_eq!(failed.ready(&list(), deadline), Err(why));

        let (tx, mut orphaned) = waiting();
        drop(tx);
        assert_eq!(
            orphaned.ready(&list(), deadline),
            Err(NotReady::Unavailable(
                "cannot set up the AWS client: its thread stopped before it was done".into()
            ))
        );
        // A caller that did not ask `ready` first sends nothing either.
        let answer = orphaned.call(&list(), deadline);
        assert!(answer.cut && answer.result.is_err() && answer.request_ids.is_empty());
    }

    #[test]
    fn the_hosts_clock_does_not_wait_for_aws() {
        let (_tx, mut backend) = waiting();
        let deadline = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        assert_eq!(backend.ready(&Request::ClockNow, deadline), Ok(()));
        assert!(matches!(
            backend.call(&Request::ClockNow, deadline).result,
            Ok(Response::Instant(_))
        ));
        let slept = backend.call(&Request::ClockSleep { milliseconds: 20 }, deadline);
        assert_eq!(slept.result, Ok(Response::Done));
        assert!(started.elapsed() < Duration::from_secs(5));
        // A wait past the deadline is cut there.
        let soon = Instant::now() + Duration::from_millis(30);
        let cut = backend.call(
            &Request::ClockSleep {
                milliseconds: 60_000,
            },
            soon,
        );
        assert!(cut.cut && cut.result.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
