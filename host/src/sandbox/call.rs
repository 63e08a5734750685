//! The one path every host call takes, and the store's state it works on.
//!
//! Every IAM import is one line into [`RunState::call`]: check the grant ->
//! record the intent -> dispatch (a recording first, then the backend) ->
//! record the outcome -> hand the result to the runbook. A call that cannot
//! be journaled traps. Mutations also pass the operator's consent.

use std::io::Write;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::backend::{Backend, NotReady, Recording};
use crate::bindings::runbook::runbook::{clock, log};
use crate::bindings::{IamError, Instant, Level};
use crate::grant::{Grant, Observed, access_denied};
use crate::journal::{Call, CallEnd, CallOutcome, JournalWriter, LogLine, Record};
use crate::request::{FromResponse, Request, Response};

use super::limits::{Abort, LOG_LINE_OVERHEAD, Limits};

/// Whether mutations may be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Consent {
    /// The operator agreed to whatever the run does (`--yes`).
    Given,
    /// The operator approved exactly these changes, in this order (at the
    /// prompt, from a plan): anything else is refused, unsent.
    Approved(std::collections::VecDeque<Request>),
    /// No consent: the first mutation stops the run, unsent.
    Refused,
}

impl Consent {
    /// Why `request` (a mutation) may not be sent, if it may not.
    fn refuses(&mut self, request: &Request) -> Option<Abort> {
        match self {
            Consent::Given => None,
            Consent::Approved(plan) if plan.front() == Some(request) => {
                plan.pop_front();
                None
            }
            Consent::Approved(_) => Some(Abort::NotApproved {
                change: request.describe(),
            }),
            Consent::Refused => Some(Abort::ConsentRequired {
                change: request.describe(),
            }),
        }
    }
}

/// The store's data: WASI plus the call path's state.
pub struct RunState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The run's virtual time (WASI clocks; recorded waits move it).
    pub(super) time: std::sync::Arc<super::wasi::VirtualTime>,
    /// Who the run reaches IAM as, while STS answers in the background; taken
    /// (and journaled) before the first change, or at the footer.
    pub(super) caller: Option<crate::backend::Caller>,
    pub(super) limits: StoreLimits,
    pub(super) grant: Grant,
    pub(super) observed: Observed,
    pub(super) journal: JournalWriter,
    pub(super) backend: Box<dyn Backend>,
    pub(super) consent: Consent,
    pub(super) sandbox: Limits,
    pub(super) calls: u32,
    pub(super) log_bytes: usize,
    pub(super) echo: bool,
    pub(super) replay: Option<Box<dyn Recording>>,
    pub(super) changes: Vec<Request>,
    /// The indices of the calls in `changes`, for the footer.
    pub(super) applied: Vec<u32>,
    /// When the run must end: no call, retry or wait runs past it.
    pub(super) deadline: std::time::Instant,
    /// The last change sent, if IAM answered it with an error: the runbook
    /// may send it again without new consent.
    pub(super) retrying: Option<Request>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl RunState {
    /// Journal who the run reaches IAM as, if STS was still being asked when
    /// the header was written (waiting for its answer now); once.
    pub(super) fn record_caller(&mut self) -> std::io::Result<()> {
        let Some(caller) = self.caller.take() else {
            return Ok(());
        };
        self.journal
            .append(Record::Identity(crate::journal::Identity {
                caller: caller.get_until(Some(self.deadline)),
            }))
    }

    /// The one path of every IAM and clock import.
    pub(crate) fn call<T: FromResponse>(
        &mut self,
        request: Request,
    ) -> anyhow::Result<Result<T, IamError>> {
        if self.calls >= self.sandbox.max_calls {
            return Err(Abort::Limit(format!(
                "the runbook made more than {} host calls (--max-calls); it was stopped",
                self.sandbox.max_calls
            ))
            .into());
        }
        if request.longest_argument() > self.sandbox.max_arg_bytes {
            return Err(Abort::Limit(format!(
                "the runbook passed a {}-byte argument to {}, over the {}-byte limit (--max-arg-bytes); it was stopped",
                request.longest_argument(),
                request.op(),
                self.sandbox.max_arg_bytes
            ))
            .into());
        }
        // Who makes a change is journaled before the change's intent.
        if request.is_mutation() {
            self.record_caller().map_err(Abort::Journal)?;
        }
        let index = self.calls;
        self.calls += 1;
        let check = self.grant.check(&request, &self.observed);
        self.journal
            .append(Record::Call(Call {
                index,
                request: request.clone(),
            }))
            .map_err(Abort::Journal)?;

        let started = std::time::Instant::now();
        let mut sent = false;
        let mut refusal = None;
        let mut retries = Vec::new();
        let mut request_ids = Vec::new();
        let mut sent_at = None;
        let mut resumed = false;
        let (outcome, result) =
            if let Some(replay) = self.replay.as_mut().filter(|r| r.answers(index)) {
                resumed = replay.resumes();
                match replay.answer(index, &request, check.as_ref().err()) {
                    Ok(answer) => answer,
                    Err(stop) => return Err(self.unanswered(index, Abort::from(stop))),
                }
            } else if let Err(reason) = check {
                (CallOutcome::Denied { reason }, Err(access_denied(&request)))
            } else if let Some(abort) = (request.is_mutation()
                && self.retrying.as_ref() != Some(&request))
            .then(|| self.consent.refuses(&request))
            .flatten()
            {
                refusal = Some(abort);
                let reason = refusal
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                (CallOutcome::Refused { reason }, Ok(Response::Planned))
            } else if let Err(not_ready) = self.sendable(&request) {
                match not_ready {
                    NotReady::Deadline(reason) => (
                        CallOutcome::Cut {
                            reason: reason.clone(),
                        },
                        Err(crate::backend::cut_error(&reason)),
                    ),
                    // Nothing was sent, and the run stops: a host error.
                    NotReady::Unavailable(reason) => {
                        return Err(self.unanswered(index, Abort::Unavailable(reason)));
                    }
                }
            } else {
                sent = true;
                sent_at = Some(super::now_rfc3339());
                let answer = self.backend.call(&request, self.deadline);
                retries = answer.retries;
                request_ids = answer.request_ids;
                let outcome = match (&answer.result, answer.cut) {
                    (Err(IamError::ServiceFailure(e)), true) => CallOutcome::Cut {
                        reason: e.message.clone(),
                    },
                    _ => CallOutcome::of(&answer.result),
                };
                (outcome, answer.result)
            };
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Refused (here or in the recording): journaled, not sent, and the run
        // stops. Cut by the deadline: journaled, and the run stops.
        let refused = matches!(outcome, CallOutcome::Refused { .. });
        let cut = match &outcome {
            CallOutcome::Cut { reason } => Some(reason.clone()),
            _ => None,
        };
        // A change answered from a resumed journal was made by that run.
        // The same rule as verification's (`CallOutcome::applied`), so the
        // footer's list of changes can be checked against the calls.
        if request.is_mutation() && outcome.applied() && !resumed {
            self.changes.push(request.clone());
            self.applied.push(index);
        }
        // A change IAM refused (a conflict while it catches up) may be asked
        // for again: it is still the change the operator approved.
        if request.is_mutation() && sent {
            self.retrying = result.is_err().then(|| request.clone());
        }
        let written = self.journal.append(Record::Result(CallEnd {
            index,
            outcome,
            duration_us,
            retries,
            resumed,
            sent_at,
            request_ids,
        }));
        if let Err(source) = written {
            let abort = if sent {
                Abort::Unrecorded {
                    call: request.describe(),
                    ended: match (&result, &cut) {
                        (_, Some(_)) => "was cut short by the deadline".to_owned(),
                        (Ok(_), None) => "succeeded".to_owned(),
                        (Err(e), None) => format!("failed ({})", e.describe()),
                    },
                    source,
                }
            } else {
                Abort::Journal(source)
            };
            // Whatever fails after this (the footer, the disk), the operator
            // must learn that this call reached IAM: say it now.
            if sent && request.is_mutation() {
                let _ = writeln!(
                    std::io::stderr(),
                    "runbook: {}",
                    crate::transcript::printable(&abort.to_string())
                );
            }
            return Err(abort.into());
        }
        if refused {
            return Err(refusal
                .unwrap_or(Abort::ConsentRequired {
                    change: request.describe(),
                })
                .into());
        }
        if let Some(reason) = cut {
            return Err(Abort::Cut(reason).into());
        }

        match result {
            Ok(response) => {
                self.observed.learn(&request, &response);
                T::from_response(response).map(Ok).map_err(|r| {
                    Abort::BadAnswer(format!(
                        "the answer to {} does not fit its type: {r:?}",
                        request.op()
                    ))
                    .into()
                })
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Stop the run on call `index`, not sent, for `abort`: the call is
    /// closed in the journal first (its intent is there, and verify wants
    /// every call closed).
    fn unanswered(&mut self, index: u32, abort: Abort) -> anyhow::Error {
        let closed = self.journal.append(Record::Result(CallEnd::new(
            index,
            CallOutcome::Unanswered {
                reason: abort.to_string(),
            },
        )));
        match closed {
            Ok(()) => abort.into(),
            Err(e) => Abort::Journal(e).into(),
        }
    }

    /// Whether `request` can be sent now: the deadline has not passed, and
    /// the backend is ready for it before the deadline does; why not.
    fn sendable(&mut self, request: &Request) -> Result<(), NotReady> {
        if std::time::Instant::now() >= self.deadline {
            return Err(NotReady::Deadline(format!(
                "the run's deadline passed before {} was sent: it was not sent",
                request.op()
            )));
        }
        self.backend.ready(request, self.deadline)
    }

    fn log_line(&mut self, line: LogLine) -> anyhow::Result<()> {
        self.log_bytes += line.message.len() + LOG_LINE_OVERHEAD;
        if self.log_bytes > self.sandbox.max_log_bytes {
            return Err(Abort::Limit(format!(
                "the runbook logged more than {} bytes (--max-log-bytes); it was stopped",
                self.sandbox.max_log_bytes
            ))
            .into());
        }
        if self.echo {
            // Not eprintln!: it panics when stderr is a closed pipe. One
            // write: stderr is unbuffered, and each piece would be a syscall.
            let echoed = format!(
                "  {:<5} {}\n",
                line.level,
                crate::transcript::printable(&line.message)
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), echoed.as_bytes());
        }
        self.journal
            .append(Record::Log(line))
            .map_err(Abort::Journal)?;
        Ok(())
    }
}

impl log::Host for RunState {
    fn log(&mut self, level: Level, message: String) -> anyhow::Result<()> {
        self.log_line(LogLine::new(level, message))
    }
}

impl clock::Host for RunState {
    fn sleep(&mut self, milliseconds: u32) -> anyhow::Result<()> {
        match self.call::<()>(Request::ClockSleep { milliseconds })? {
            Ok(()) => {
                // WASI clocks see the wait too (in a replay, which answers
                // it at once, as much as in the live run).
                self.time.advance(u64::from(milliseconds) * 1_000_000);
                Ok(())
            }
            Err(e) => Err(Abort::BadAnswer(format!(
                "a wait answered with an error: {}",
                e.describe()
            ))
            .into()),
        }
    }

    fn now(&mut self) -> anyhow::Result<Instant> {
        match self.call::<Instant>(Request::ClockNow)? {
            Ok(i) => Ok(i),
            Err(e) => Err(Abort::BadAnswer(format!(
                "the clock answered with an error: {}",
                e.describe()
            ))
            .into()),
        }
    }
}
