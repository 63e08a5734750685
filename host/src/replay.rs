//! Replay: answer a runbook's calls from a recorded journal, and stop at the
//! first call that differs from the recording.
//!
//! Every request must match the recorded one exactly (operation and every
//! argument); a call the recording does not have, or a recorded call the
//! runbook never made, is a divergence too. The error names the call index,
//! the operation, and shows expected and actual side by side.
//!
//! A resumed run (`runbook run --resume JOURNAL`) replays only a prefix of a
//! journal: every call up to the last mutation that IAM settled, so no change
//! that was made is sent twice; from there on the run is live again.

use crate::backend::{Recording, Stop};
use crate::bindings::IamError;
use crate::grant::access_denied;
use crate::journal::{Call, CallEnd, CallOutcome, Journal, Partial, Record, RunOutcome};
use crate::request::{CallResult, Request, Response};

/// Where a replay first differed from its recording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("replay diverged at call {index} ({op}): {what}\n{diff}")]
pub struct Divergence {
    /// The index of the call that differs.
    pub index: u32,
    /// The operation recorded or made at that index.
    pub op: String,
    /// What differs, in words.
    pub what: String,
    /// Expected and actual, one line each.
    pub diff: String,
}

impl From<Divergence> for Stop {
    fn from(d: Divergence) -> Stop {
        Stop::Diverged(d.to_string())
    }
}

/// Answers calls from a recording.
#[derive(Debug)]
pub struct Replayer {
    source: String,
    /// Each call: its line in the recording, its intent, and its outcome
    /// (none for a call the recorded run died in).
    calls: Vec<(usize, Call, Option<CallEnd>)>,
    /// How the recorded run ended (a full replay must end the same way).
    outcome: Option<RunOutcome>,
    /// For a resume: the calls below this index are answered from the
    /// recording, the rest go live.
    until: Option<u32>,
}

impl Replayer {
    /// Answer every call from `journal`, which `source` names in errors.
    pub fn new(source: &str, journal: &Journal) -> Replayer {
        Replayer {
            source: source.to_owned(),
            calls: calls_of(&journal.records),
            outcome: Some(journal.footer.outcome.clone()),
            until: None,
        }
    }

    /// Answer the calls of `journal` up to where a resumed run goes live
    /// again: through the last mutation IAM answered with success, or up to
    /// (not including) a later mutation whose outcome is unknown (sent, or
    /// about to be, when the run died or its deadline cut it), which is sent
    /// again so IAM's answer decides. Reads after that point are made again:
    /// they may have been stale.
    pub fn resuming(source: &str, journal: &Partial) -> Replayer {
        let calls = calls_of(&journal.records);
        let mut until = 0;
        for (_, call, end) in &calls {
            if !call.request.is_mutation() {
                continue;
            }
            match end.as_ref().map(|e| &e.outcome) {
                Some(CallOutcome::Ok { .. }) => until = call.index + 1,
                None | Some(CallOutcome::Cut { .. }) => until = call.index,
                Some(CallOutcome::Error {
                    error: IamError::ServiceFailure(e),
                }) if e.code == "Transport" => until = call.index,
                Some(_) => {}
            }
        }
        Replayer {
            source: source.to_owned(),
            calls,
            outcome: None,
            until: Some(until),
        }
    }

    /// Whether call `index` is answered from the recording (always, in a
    /// full replay; in a resume, only before the point where it goes live).
    pub fn answers(&self, index: u32) -> bool {
        self.until.is_none_or(|until| index < until)
    }

    /// For a resume, how many calls are answered from the recording.
    pub fn resume_point(&self) -> Option<u32> {
        self.until
    }

    /// The recorded answer to call `index`, if `request` is what was recorded.
    /// `denied` is the grant check's verdict in this run: it must agree with
    /// the recording, or the grant (or the runbook's scope) has changed.
    pub fn answer(
        &mut self,
        index: u32,
        request: &Request,
        denied: Option<&String>,
    ) -> Result<(CallOutcome, CallResult), Stop> {
        let Some((line, recorded, end)) = self.calls.get(index as usize) else {
            return Err(Divergence {
                index,
                op: request.op().to_owned(),
                what: format!(
                    "the runbook made a call the recording does not have (it holds {} calls)",
                    self.calls.len()
                ),
                diff: format!("  expected: (no call)\n  actual:   {}", show(request)),
            }
            .into());
        };
        if &recorded.request != request {
            return Err(Divergence {
                index,
                op: recorded.request.op().to_owned(),
                what: format!(
                    "the request differs from the recording ({}:{line})",
                    self.source
                ),
                diff: format!(
                    "  expected: {}\n  actual:   {}",
                    show(&recorded.request),
                    show(request)
                ),
            }
            .into());
        }
        let bad = |what: String| {
            Stop::BadRecording(format!(
                "{}:{}: the recorded answer to call {index} ({}) {what}",
                self.source,
                line + 1,
                request.op()
            ))
        };
        let Some(end) = end else {
            return Err(bad(
                "is missing: the recorded run died during this call".into()
            ));
        };
        let was_denied = matches!(end.outcome, CallOutcome::Denied { .. });
        if denied.is_some() != was_denied {
            let now = denied.map_or("allowed".to_owned(), |r| format!("denied ({r})"));
            let then = if was_denied { "denied" } else { "allowed" };
            return Err(Divergence {
                index,
                op: request.op().to_owned(),
                what: "the grant decides this call differently than in the recording".to_owned(),
                diff: format!("  expected: {then}\n  actual:   {now}"),
            }
            .into());
        }
        // The answer the runbook gets, checked against the call's type; the
        // outcome is rebuilt from it, so nothing the recording adds (an
        // unknown field, a seed) is copied into the new journal.
        let result = match &end.outcome {
            CallOutcome::Ok { value } => Ok(Response::from_value(request, value.clone())
                .map_err(|e| bad(format!("does not fit its type: {e}")))?),
            CallOutcome::Error { .. }
                if matches!(request, Request::ClockNow | Request::ClockSleep { .. }) =>
            {
                return Err(bad("is an error, which the clock never answers".into()));
            }
            CallOutcome::Cut { reason } => Err(crate::backend::cut_error(reason)),
            CallOutcome::Error { error } => Err(error.clone()),
            CallOutcome::Denied { .. } => Err(access_denied(request)),
            CallOutcome::Planned | CallOutcome::Refused { .. } if !request.is_mutation() => {
                return Err(bad(
                    "is a planned or refused change, but the call is a read".into(),
                ));
            }
            CallOutcome::Planned | CallOutcome::Refused { .. } => Ok(Response::Planned),
            CallOutcome::Unanswered { .. } => {
                return Err(bad("was never given: the recording stopped here".into()));
            }
        };
        let outcome = match &end.outcome {
            CallOutcome::Denied { .. } | CallOutcome::Refused { .. } | CallOutcome::Cut { .. } => {
                end.outcome.clone()
            }
            _ => CallOutcome::of(&result),
        };
        Ok((outcome, result))
    }

    /// Check, at the end of the run, that every recorded call was made and
    /// the run ended as the recording did.
    pub fn finished(&self, made: u32, outcome: &RunOutcome) -> Result<(), Divergence> {
        let Some(recorded) = &self.outcome else {
            // A resume went live after the recording: nothing to compare.
            return Ok(());
        };
        match self.calls.get(made as usize) {
            None if outcome == recorded => Ok(()),
            None => Err(Divergence {
                index: made,
                op: "(end of run)".to_owned(),
                what: "every call matched, but the run ended differently".to_owned(),
                diff: format!(
                    "  expected: {}\n  actual:   {}",
                    crate::transcript::outcome_line(recorded),
                    crate::transcript::outcome_line(outcome)
                ),
            }),
            Some((_, recorded, _)) => Err(Divergence {
                index: made,
                op: recorded.request.op().to_owned(),
                what: match outcome {
                    // Say why it stopped: a limit of this replay (a smaller
                    // --max-memory-mib, --max-calls) is not the runbook's doing.
                    RunOutcome::Trapped { .. } | RunOutcome::Aborted { .. } => format!(
                        "the runbook was stopped after {made} calls ({}), but the recording has {}",
                        crate::transcript::outcome_line(outcome),
                        self.calls.len()
                    ),
                    _ => format!(
                        "the runbook finished after {made} calls, but the recording has {}",
                        self.calls.len()
                    ),
                },
                diff: format!(
                    "  expected: {}\n  actual:   (no call)",
                    show(&recorded.request)
                ),
            }),
        }
    }
}

impl Recording for Replayer {
    fn answers(&self, index: u32) -> bool {
        Replayer::answers(self, index)
    }

    fn resumes(&self) -> bool {
        self.until.is_some()
    }

    fn answer(
        &mut self,
        index: u32,
        request: &Request,
        denied: Option<&String>,
    ) -> Result<(CallOutcome, CallResult), Stop> {
        Replayer::answer(self, index, request, denied)
    }

    fn finished(&self, calls: u32, outcome: &RunOutcome) -> Result<(), Stop> {
        Ok(Replayer::finished(self, calls, outcome)?)
    }
}

/// Each call of `records` with its line number and outcome, if it has one.
fn calls_of(records: &[Record]) -> Vec<(usize, Call, Option<CallEnd>)> {
    let mut calls = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match r {
            Record::Call(c) => calls.push((i + 1, c.clone(), None)),
            Record::Result(e) => {
                if let Some((_, c, end @ None)) = calls.last_mut()
                    && c.index == e.index
                {
                    *end = Some(e.clone());
                }
            }
            _ => {}
        }
    }
    calls
}

/// A request as JSON for a divergence report, cut to a length a person can
/// read (a recorded argument can be as long as a journal line).
fn show(request: &Request) -> String {
    let json = serde_json::to_string(request).unwrap_or_else(|_| format!("{request:?}"));
    crate::transcript::printable_within(&json, 1024)
}
