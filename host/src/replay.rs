//! Replay: answer a runbook's calls from a recorded journal, and stop at the
//! first call that differs from the recording.
//!
//! Every request must match the recorded one exactly (operation and every
//! argument); a call the recording does not have, or a recorded call the
//! runbook never made, is a divergence too. The error names the call index,
//! the operation, and shows expected and actual side by side.

use crate::grant::access_denied;
use crate::journal::{Call, CallEnd, CallOutcome, Journal, Record, RunOutcome};
use crate::request::{CallResult, Request, Response};
use crate::sandbox::Abort;

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

/// Answers calls from a recording.
#[derive(Debug)]
pub struct Replayer {
    source: String,
    calls: Vec<(usize, Call, CallEnd)>,
    outcome: RunOutcome,
}

impl Replayer {
    /// Answer from `journal`, which `source` names in errors.
    pub fn new(source: &str, journal: &Journal) -> Replayer {
        let mut calls = Vec::new();
        let mut pending: Option<(usize, Call)> = None;
        for (i, r) in journal.records.iter().enumerate() {
            match r {
                Record::Call(c) => pending = Some((i + 1, c.clone())),
                Record::Result(e) => {
                    if let Some((line, c)) = pending.take() {
                        calls.push((line, c, e.clone()));
                    }
                }
                _ => {}
            }
        }
        Replayer {
            source: source.to_owned(),
            calls,
            outcome: journal.footer.outcome.clone(),
        }
    }

    /// The recorded answer to call `index`, if `request` is what was recorded.
    /// `denied` is the grant check's verdict in this run: it must agree with
    /// the recording, or the grant (or the runbook's scope) has changed.
    pub fn answer(
        &mut self,
        index: u32,
        request: &Request,
        denied: Option<&String>,
    ) -> Result<(CallOutcome, CallResult), Abort> {
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
        let bad = |what: String| {
            Abort::BadRecording(format!(
                "{}:{}: the recorded answer to call {index} ({}) {what}",
                self.source,
                line + 1,
                request.op()
            ))
        };
        // The answer the runbook gets, checked against the call's type; the
        // outcome is rebuilt from it, so nothing the recording adds (an
        // unknown field, a seed) is copied into the new journal.
        let result = match &end.outcome {
            CallOutcome::Ok { value } => Ok(Response::from_value(request, value.clone())
                .map_err(|e| bad(format!("does not fit its type: {e}")))?),
            CallOutcome::Error { .. } if request == &Request::ClockNow => {
                return Err(bad("is an error, which the clock never answers".into()));
            }
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
            CallOutcome::Denied { .. } | CallOutcome::Refused { .. } => end.outcome.clone(),
            _ => CallOutcome::of(&result),
        };
        Ok((outcome, result))
    }

    /// Check, at the end of the run, that every recorded call was made and
    /// the run ended as the recording did.
    pub fn finished(&self, made: u32, outcome: &RunOutcome) -> Result<(), Divergence> {
        match self.calls.get(made as usize) {
            None if outcome == &self.outcome => Ok(()),
            None => Err(Divergence {
                index: made,
                op: "(end of run)".to_owned(),
                what: "every call matched, but the run ended differently".to_owned(),
                diff: format!(
                    "  expected: {}\n  actual:   {}",
                    crate::transcript::outcome_line(&self.outcome),
                    crate::transcript::outcome_line(outcome)
                ),
            }),
            Some((_, recorded, _)) => Err(Divergence {
                index: made,
                op: recorded.request.op().to_owned(),
                what: format!(
                    "the runbook finished after {made} calls, but the recording has {}",
                    self.calls.len()
                ),
                diff: format!(
                    "  expected: {}\n  actual:   (no call)",
                    show(&recorded.request)
                ),
            }),
        }
    }
}

fn show(request: &Request) -> String {
    serde_json::to_string(request).unwrap_or_else(|_| format!("{request:?}"))
}
