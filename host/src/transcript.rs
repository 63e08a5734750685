//! A journal as a transcript for people reviewing an incident: one line per
//! call (index, operation, key arguments, outcome), and as JSON for machines.

use serde::Serialize;
use serde_json::Value;

use crate::journal::{CallOutcome, Header, Record, RunOutcome};
use crate::request::Request;

/// One call, summarized.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The call's index.
    pub index: u32,
    /// The operation, e.g. `list-mfa-devices`.
    pub op: &'static str,
    /// The key arguments, `name=value`.
    pub args: Vec<String>,
    /// `ok`, `error`, `denied`, `planned` or `refused`.
    pub status: &'static str,
    /// What came back, in a few words.
    pub result: String,
}

/// Summarize the calls of a journal's records.
pub fn lines(records: &[Record]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pending: Option<&Request> = None;
    for r in records {
        match r {
            Record::Call(c) => pending = Some(&c.request),
            Record::Result(end) => {
                let Some(req) = pending.take() else { continue };
                let (status, result) = match &end.outcome {
                    CallOutcome::Ok { value } => ("ok", summarize(value)),
                    CallOutcome::Error { error } => ("error", error.describe()),
                    CallOutcome::Denied { reason } => ("denied", reason.clone()),
                    CallOutcome::Planned => ("planned", "not sent (dry run)".to_owned()),
                    CallOutcome::Refused { reason } => ("refused", reason.clone()),
                    CallOutcome::Unanswered { reason } => ("stopped", reason.clone()),
                    CallOutcome::Cut { reason } => ("cut", reason.clone()),
                };
                let mut result = result;
                if !end.retries.is_empty() {
                    let codes: Vec<&str> = end
                        .retries
                        .iter()
                        .map(|r| r.split(':').next().unwrap_or(r))
                        .collect();
                    result.push_str(&format!(
                        " [after {} failed attempt(s): {}]",
                        codes.len(),
                        codes.join(", ")
                    ));
                }
                if end.resumed {
                    result.push_str(" [answered from the resumed journal, not sent]");
                }
                out.push(Line {
                    index: end.index,
                    op: req.op(),
                    args: args(req),
                    status,
                    result,
                });
            }
            _ => {}
        }
    }
    // A run that died with a call in flight: the intent is all there is.
    if let Some(req) = pending {
        out.push(Line {
            index: records
                .iter()
                .rev()
                .find_map(|r| match r {
                    Record::Call(c) => Some(c.index),
                    _ => None,
                })
                .unwrap_or_default(),
            op: req.op(),
            args: args(req),
            status: "unknown",
            result: if req.is_mutation() {
                "no outcome recorded: it may or may not have reached IAM".to_owned()
            } else {
                "no outcome recorded".to_owned()
            },
        });
    }
    out
}

fn args(req: &Request) -> Vec<String> {
    match serde_json::to_value(req) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter(|(k, _)| k != "op")
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn summarize(value: &Value) -> String {
    match value {
        Value::Null => "done".to_owned(),
        Value::Array(items) => {
            let serials: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("serial_number").and_then(Value::as_str))
                .collect();
            if serials.is_empty() {
                format!("{} item(s)", items.len())
            } else {
                format!("{} device(s): {}", items.len(), serials.join(", "))
            }
        }
        Value::Object(map) => {
            if let Some(arn) = map.get("arn").and_then(Value::as_str) {
                arn.to_owned()
            } else if let Some(s) = map.get("seconds") {
                format!("{s} s since the epoch")
            } else {
                value.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// The outcome in one line.
pub fn outcome_line(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::Succeeded { summary, .. } => format!("succeeded: {summary}"),
        RunOutcome::Failed { error } => format!("failed: {error}"),
        RunOutcome::Refused { reason } => format!("refused: {reason}"),
        RunOutcome::Trapped { reason } => format!("stopped: {reason}"),
        RunOutcome::Aborted { reason } => format!("aborted: {reason}"),
    }
}

/// The transcript as text: a header line (runbook, parameters, mode; no
/// times, so it snapshots), a line per call, the outcome.
pub fn render(records: &[Record]) -> String {
    let mut s = String::new();
    if let Some(Record::Header(h)) = records.first() {
        s.push_str(&header_line(h));
        s.push('\n');
    }
    for l in lines(records) {
        s.push_str(&format!(
            "#{:<2} {:<26} {:<40} {:<7} {}\n",
            l.index,
            l.op,
            l.args.join(" "),
            l.status,
            l.result
        ));
    }
    if let Some(Record::Footer(f)) = records.last() {
        s.push_str(&outcome_line(&f.outcome));
        s.push('\n');
    }
    s
}

fn header_line(h: &Header) -> String {
    let params: Vec<String> = h
        .parameters
        .iter()
        .map(|(k, v)| format!("--{k} {v}"))
        .collect();
    format!(
        "{} {} {} ({})",
        h.runbook,
        h.runbook_version,
        params.join(" "),
        h.mode.name()
    )
}

/// `s` with control characters escaped (`\u{1b}`), so text a runbook chose
/// cannot move the cursor or rewrite what the operator reads.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
