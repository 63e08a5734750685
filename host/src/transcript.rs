//! A journal as a transcript for people reviewing an incident: one line per
//! call (index, operation, key arguments, outcome), and as JSON for machines.
//!
//! A journal is untrusted input (anyone may hand one over, and a runbook chose
//! its log lines, outcome and arguments): the text transcript escapes every
//! value with [`printable`], the one function through which runbook-, journal-
//! and operator-supplied text reaches a terminal.

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
    /// The request ids of IAM's answers (see [`crate::journal::CallEnd`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
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
                    request_ids: end.request_ids.clone(),
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
            request_ids: Vec::new(),
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
            let keys: Vec<String> = items
                .iter()
                .filter_map(|i| {
                    let id = i.get("access_key_id")?.as_str()?;
                    let status = i.get("status").and_then(Value::as_str).unwrap_or("?");
                    Some(format!("{id} ({})", status.to_lowercase()))
                })
                .collect();
            if !serials.is_empty() {
                format!("{} device(s): {}", items.len(), serials.join(", "))
            } else if !keys.is_empty() {
                format!("{} key(s): {}", items.len(), keys.join(", "))
            } else {
                format!("{} item(s)", items.len())
            }
        }
        Value::Object(map) if map.contains_key("last_used_date") => {
            let field = |k: &str| map.get(k).and_then(Value::as_str);
            match field("last_used_date") {
                Some(when) => format!(
                    "last used {when} with {} in {}",
                    field("service_name").unwrap_or("?"),
                    field("region").unwrap_or("?")
                ),
                None => "never used".to_owned(),
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

/// The outcome in one line, escaped and cut ([`printable`]): the runbook's
/// summary or error as one value, the host's reason (which may quote a replay
/// diff) as a whole message.
pub fn outcome_line(outcome: &RunOutcome) -> String {
    let reason = |r: &str| printable_within(r, MAX_TEXT_CHARS);
    match outcome {
        RunOutcome::Succeeded { summary, .. } => format!("succeeded: {}", printable(summary)),
        RunOutcome::Failed { error } => format!("failed: {}", printable(error)),
        RunOutcome::Refused { reason: r } => format!("refused: {}", reason(r)),
        RunOutcome::Trapped { reason: r } => format!("stopped: {}", reason(r)),
        RunOutcome::Aborted { reason: r } => format!("aborted: {}", reason(r)),
    }
}

/// The transcript as text: a header line (runbook, parameters, mode; no
/// times, so it snapshots), a line per call, the outcome. Every value in it
/// is escaped and cut ([`printable`]).
pub fn render(records: &[Record]) -> String {
    let mut s = String::new();
    if let Some(Record::Header(h)) = records.first() {
        s.push_str(&header_line(h));
        s.push('\n');
        if let Some(signer) = &h.signed_by {
            s.push_str(&format!(
                "component signed by {} (key {})\n",
                printable(&signer.principal),
                printable(&signer.fingerprint)
            ));
        }
    }
    for l in lines(records) {
        // The request ids last: one per answer IAM sent (a page, an attempt).
        let ids = match l.request_ids.as_slice() {
            [] => String::new(),
            [id] => format!(" [request id {}]", printable(id)),
            ids => format!(
                " [request ids {}]",
                printable_within(&ids.join(", "), MAX_TEXT_CHARS)
            ),
        };
        s.push_str(&format!(
            "#{:<2} {:<26} {:<40} {:<7} {}{ids}\n",
            l.index,
            l.op,
            l.args
                .iter()
                .map(|a| printable(a))
                .collect::<Vec<_>>()
                .join(" "),
            l.status,
            printable(&l.result)
        ));
    }
    if let Some(Record::Footer(f)) = records.last() {
        s.push_str(&outcome_line(&f.outcome));
        s.push('\n');
    }
    s
}

/// For each change the run sent to IAM, the AWS CLI command that finds
/// AWS's own record of it in CloudTrail: its event (the IAM action), in
/// us-east-1 (where IAM, a global service, logs), in a window around the
/// time it was sent, filtered on its request ids. Every value is escaped.
pub fn cloudtrail(records: &[Record]) -> String {
    let mut s = String::new();
    let (header, footer) = match (records.first(), records.last()) {
        (Some(Record::Header(h)), Some(Record::Footer(f))) => (h, Some(f)),
        (Some(Record::Header(h)), _) => (h, None),
        _ => return s,
    };
    if header.mode != crate::journal::Mode::Live {
        s.push_str(&format!(
            "a {} run sends no change to IAM: nothing of it is in CloudTrail{}\n",
            header.mode.name(),
            if header.mode == crate::journal::Mode::Replay {
                " (show the recording it replayed with --cloudtrail)"
            } else {
                ""
            }
        ));
        return s;
    }
    // The whole run, for calls journaled without the time they were sent.
    let run_window = parse_time(&header.started_at).map(|start| {
        let end = footer
            .and_then(|f| parse_time(&f.finished_at))
            .unwrap_or(start + time::Duration::HOUR);
        (start, end)
    });
    s.push_str(
        "CloudTrail events of the changes this run sent to IAM (IAM logs them in us-east-1):\n",
    );
    let mut pending: Option<&crate::journal::Call> = None;
    let mut shown = 0;
    for r in records {
        let end = match r {
            Record::Call(c) => {
                pending = Some(c);
                continue;
            }
            Record::Result(end) => end,
            _ => continue,
        };
        let Some(call) = pending.take() else { continue };
        let sent = matches!(
            end.outcome,
            CallOutcome::Ok { .. } | CallOutcome::Error { .. } | CallOutcome::Cut { .. }
        );
        if !call.request.is_mutation() || !sent || end.resumed {
            continue;
        }
        let Some(event) = call.request.action().and_then(|a| a.strip_prefix("iam:")) else {
            continue;
        };
        shown += 1;
        s.push_str(&cloudtrail_call(
            call.index,
            &call.request,
            event,
            end,
            run_window,
        ));
    }
    if shown == 0 {
        s = "no change of this run reached IAM: nothing to look up in CloudTrail\n".to_owned();
    } else {
        s.push_str(
            "(CloudTrail delivers an event within about 15 minutes of the call; an empty answer sooner than that is not yet an absence)\n",
        );
    }
    s
}

/// One change's `lookup-events` command, with what it is looking for.
fn cloudtrail_call(
    index: u32,
    request: &Request,
    event: &str,
    end: &crate::journal::CallEnd,
    run_window: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
) -> String {
    let mut s = String::new();
    // Only what an AWS request id can be goes into the command: a journal is
    // untrusted, and these are pasted into a shell.
    let (ids, odd): (Vec<&String>, Vec<&String>) =
        end.request_ids.iter().partition(|id| is_request_id(id));
    let window = match end.sent_at.as_deref().and_then(parse_time) {
        Some(at) => Some((
            at - 5 * time::Duration::MINUTE,
            at + 15 * time::Duration::MINUTE,
        )),
        None => run_window.map(|(start, end)| {
            (
                start - 5 * time::Duration::MINUTE,
                end + 15 * time::Duration::MINUTE,
            )
        }),
    };
    s.push_str(&format!(
        "#{index} {}: event {event}, {}\n",
        printable_within(&request.describe(), MAX_TEXT_CHARS),
        match ids.as_slice() {
            [] => "no request id recorded".to_owned(),
            [id] => format!("request id {}", printable(id)),
            many => format!(
                "request ids {}",
                printable_within(
                    &many
                        .iter()
                        .map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    MAX_TEXT_CHARS
                )
            ),
        }
    ));
    let mut command = format!(
        "aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=EventName,AttributeValue={event}"
    );
    match window {
        Some((from, to)) => command.push_str(&format!(
            " --start-time {} --end-time {}",
            utc_time(from),
            utc_time(to)
        )),
        None => s.push_str(
            "  note: the journal records no usable time: the lookup covers the last 90 days\n",
        ),
    }
    if !ids.is_empty() {
        let filter: Vec<String> = ids
            .iter()
            .map(|id| format!("contains(CloudTrailEvent, '{id}')"))
            .collect();
        command.push_str(&format!(" --query \"Events[?{}]\"", filter.join(" || ")));
    } else {
        s.push_str(
            "  note: without a request id, tell the event by its requestParameters and time\n",
        );
    }
    if !odd.is_empty() {
        s.push_str(&format!(
            "  note: {} recorded request id(s) are not AWS request ids (letters, digits and '-') and are left out\n",
            odd.len()
        ));
    }
    s.push_str(&format!(
        "  {}\n",
        printable_within(&command, MAX_TEXT_CHARS)
    ));
    s
}

/// What an AWS request id looks like: a UUID, or letters and digits.
fn is_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_time(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// A time as CloudTrail takes it: UTC, to the second.
fn utc_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

fn header_line(h: &Header) -> String {
    let params: Vec<String> = h
        .parameters
        .iter()
        .map(|(k, v)| format!("--{} {}", printable(k), printable(v)))
        .collect();
    format!(
        "{} {} {} ({})",
        printable(&h.runbook),
        printable(&h.runbook_version),
        params.join(" "),
        h.mode.name()
    )
}

/// The most characters of one untrusted value (a name, an argument, a log
/// line, a summary) printed whole: longer ones are cut, with a note. IAM names
/// are at most 128 characters and ARNs 2048 bytes, but a value is read on a
/// terminal line; 512 keeps every real value whole and stops a runbook or a
/// journal from burying the screen (or the prompt's context) under one value.
pub const MAX_VALUE_CHARS: usize = 512;

/// The most characters of one whole message or line built from several
/// values (an error message with its causes, an outcome with a replay diff),
/// printed whole: each value in it is already cut at [`MAX_VALUE_CHARS`].
pub const MAX_TEXT_CHARS: usize = 4096;

/// Whether `c` may reach the operator's terminal as itself. Control
/// characters (C0, DEL, C1: escape sequences, carriage returns, bells,
/// newlines) move the cursor or rewrite what is shown; Unicode format and
/// bidirectional characters (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width
/// spaces and joiners, isolates, the byte-order mark, ...) make the text read
/// differently from what it is.
pub fn is_printable_char(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        ))
}

/// Whether all of `s` may reach the terminal as itself.
pub fn is_printable(s: &str) -> bool {
    s.chars().all(is_printable_char)
}

/// `s` made safe to print: control, format and bidirectional characters
/// escaped (`\u{1b}`, `\n`, `\u{202e}`), and cut after
/// [`MAX_VALUE_CHARS`] with a note saying how much was left out. Every path
/// that prints text a runbook, a journal or the operator supplied goes
/// through this (or [`printable_within`] for whole messages), so such text
/// cannot move the cursor, forge lines, or flood the screen.
pub fn printable(s: &str) -> String {
    printable_within(s, MAX_VALUE_CHARS)
}

/// A path for the terminal: escaped, and cut only past [`MAX_TEXT_CHARS`]
/// (a path is long but must stay whole to be found again).
pub fn printable_path(path: &std::path::Path) -> String {
    printable_within(&path.display().to_string(), MAX_TEXT_CHARS)
}

/// [`printable`] with another bound, in characters of the escaped text.
/// Escaping is idempotent (a backslash is kept as is), so text escaped once
/// may be escaped again as part of a whole message.
pub fn printable_within(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    let mut shown = 0;
    for (consumed, c) in s.chars().enumerate() {
        let piece = if is_printable_char(c) {
            c.to_string()
        } else {
            c.escape_default().to_string()
        };
        let len = piece.chars().count();
        if shown + len > max_chars {
            let rest = s.chars().count() - consumed;
            out.push_str(&format!("… [cut: {rest} more chars]"));
            return out;
        }
        shown += len;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("a\u{1b}[2J\r\u{7}\nb\u{9b}"),
            "a\\u{1b}[2J\\r\\u{7}\\nb\\u{9b}"
        );
    }

    #[test]
    fn bidi_and_format_characters_are_escaped() {
        for c in [
            '\u{202e}', '\u{200b}', '\u{200f}', '\u{2066}', '\u{2069}', '\u{feff}',
        ] {
            let s = printable(&format!("x{c}y"));
            assert!(s.starts_with("x\\u{"), "{c:?}: {s}");
            assert!(is_printable(&s), "{c:?}: {s}");
        }
        assert_eq!(printable("café ✓ ü"), "café ✓ ü");
    }

    #[test]
    fn long_values_are_cut_with_a_note() {
        let s = printable(&"a".repeat(5000));
        assert_eq!(
            s,
            format!("{}… [cut: {} more chars]", "a".repeat(512), 5000 - 512)
        );
        assert_eq!(printable(&"a".repeat(512)), "a".repeat(512));
        // An escape is not split: the cut falls before it.
        let s = printable_within("abc\u{1b}", 5);
        assert_eq!(s, "abc… [cut: 1 more chars]");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = printable("\u{1b}]0;title\u{7}\\");
        assert_eq!(printable(&once), once);
    }
}
