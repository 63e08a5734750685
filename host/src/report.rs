//! Machine output: what `runbook run --output json` prints on stdout, one
//! document per command, so a SOAR playbook or a CI job can act on a run
//! without reading its human transcript.
//!
//! A [`RunReport`] names the runbook and lists one [`TargetReport`] per
//! target (one, for a single run). Each target's report is built from what
//! its finished run has: its [`RunOutcome`] (the journal's footer), the
//! changes the host recorded, the journal's path and last-line sha256, and
//! the exit code. Never from printed text.
//!
//! Text in it (summaries, changes, next steps) is the runbook's or IAM's as
//! is, unescaped: [`RunReport::to_json`] writes every non-ASCII character as
//! a JSON `\u` escape, so the document is plain ASCII and safe to show on a
//! terminal, yet parses back to the exact text.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exit;
use crate::journal::{JournalWriter, Mode, Partial, RunOutcome};
use crate::request::Request;

/// How a target's run ended, by name: the journal's [`RunOutcome`], told
/// apart further by the exit code where one outcome has several (see
/// `crate::exit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The runbook finished and succeeded (exit 0).
    Succeeded,
    /// The runbook finished and reported a failure (exit 1).
    Failed,
    /// The runbook trapped, panicked or hit a sandbox limit (exit 4).
    Trapped,
    /// A change needed consent that was not given (exit 5).
    Refused,
    /// A replay (or the replayed part of a resume) diverged from its
    /// recording (exit 6).
    Diverged,
    /// A journal the run depended on (a recording, a resumed journal)
    /// failed verification (exit 7).
    JournalInvalid,
    /// The host could not do its part: AWS set-up, an answer it could not
    /// read, the journal (exit 3, or any other code without an outcome).
    HostError,
}

impl Outcome {
    /// The name of a run's outcome, given the exit code it ended with.
    pub fn of(outcome: &RunOutcome, exit_code: u8) -> Outcome {
        match outcome {
            RunOutcome::Succeeded { .. } => Outcome::Succeeded,
            RunOutcome::Failed { .. } => Outcome::Failed,
            RunOutcome::Trapped { .. } => Outcome::Trapped,
            RunOutcome::Refused { .. } => Outcome::Refused,
            RunOutcome::Aborted { .. } => Outcome::without_run(exit_code),
        }
    }

    /// The name for a run that has no outcome of its own (the host stopped
    /// it, or it never got to run), by its exit code.
    pub fn without_run(exit_code: u8) -> Outcome {
        match exit_code {
            exit::REPLAY_DIVERGED => Outcome::Diverged,
            exit::JOURNAL_INVALID => Outcome::JournalInvalid,
            exit::CONSENT_REFUSED => Outcome::Refused,
            _ => Outcome::HostError,
        }
    }
}

/// Which target a run was for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetId {
    /// The AWS account (12 digits); `null`: the caller's own account.
    pub account: Option<String>,
    /// The role assumed in that account; `null`: none, the caller's own
    /// credentials.
    pub role: Option<String>,
    /// The runbook's parameters, by name.
    pub parameters: BTreeMap<String, String>,
}

/// How one target's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Which target.
    pub target: TargetId,
    /// The exit code of this target's run (see the README's table).
    pub exit_code: u8,
    /// How it ended.
    pub outcome: Outcome,
    /// One line: the runbook's summary if it succeeded, its error if it
    /// failed, otherwise why the run stopped.
    pub summary: String,
    /// The changes the host sent to IAM (planned, in a dry run; recorded, in
    /// a replay), described.
    pub changes: Vec<String>,
    /// What the operator must do next, if the runbook said.
    pub next_steps: Vec<String>,
    /// The journal's path; `null` if the run ended before it had one.
    pub journal: Option<String>,
    /// The sha256 of the journal's last line (`runbook verify --last-hash`,
    /// `runbook run --resume --last-hash`); `null` without a readable
    /// journal.
    pub last_hash: Option<String>,
}

impl TargetReport {
    /// The report of `target`'s finished run (as `sandbox::run` or
    /// `offline::replay` return it).
    pub fn from_run(target: TargetId, run: &crate::sandbox::RunReport) -> TargetReport {
        TargetReport::from_journal(
            target,
            &run.journal,
            &run.outcome,
            run.exit_code,
            &run.changes,
        )
    }

    /// The report of `target`'s run that ended with `outcome` and
    /// `exit_code`, having sent `changes`, journaled in `journal`.
    pub fn from_journal(
        target: TargetId,
        journal: &JournalWriter,
        outcome: &RunOutcome,
        exit_code: u8,
        changes: &[Request],
    ) -> TargetReport {
        let (summary, next_steps) = match outcome {
            RunOutcome::Succeeded {
                summary,
                next_steps,
                ..
            } => (summary.clone(), next_steps.clone()),
            RunOutcome::Failed { error: why }
            | RunOutcome::Refused { reason: why }
            | RunOutcome::Trapped { reason: why }
            | RunOutcome::Aborted { reason: why } => (why.clone(), Vec::new()),
        };
        // An in-memory journal (a plan) has no path and nothing to pin.
        let path = journal.path();
        TargetReport {
            target,
            exit_code,
            outcome: Outcome::of(outcome, exit_code),
            summary,
            changes: changes.iter().map(Request::describe).collect(),
            next_steps,
            journal: path.map(|p| p.display().to_string()),
            last_hash: path.map(|_| journal.last_hash().to_owned()),
        }
    }

    /// The report of a run that did not finish: the host stopped with
    /// `exit_code` and `message` (an error) before the runbook's outcome was
    /// journaled. `journal` is its journal if the run created one: its last
    /// verified line is hashed, so what it holds can still be checked.
    pub fn unfinished(
        target: TargetId,
        exit_code: u8,
        message: String,
        journal: Option<&Path>,
    ) -> TargetReport {
        let last_hash = journal
            .and_then(|p| Partial::read(p).ok())
            .map(|j| j.last_hash);
        TargetReport {
            target,
            exit_code,
            outcome: Outcome::without_run(exit_code),
            summary: message,
            changes: Vec::new(),
            next_steps: Vec::new(),
            journal: journal.map(|p| p.display().to_string()),
            last_hash,
        }
    }
}

/// What `runbook run --output json` prints: the runbook and each target's
/// run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The runbook's name (from its manifest).
    pub runbook: String,
    /// The runbook's version (from its manifest).
    pub version: String,
    /// The sha256 of the component that ran.
    pub sha256: String,
    /// How the runs reached IAM: live, dry-run or replay.
    pub mode: Mode,
    /// The command's exit code (a single run's is its target's).
    pub exit_code: u8,
    /// One report per target.
    pub targets: Vec<TargetReport>,
}

impl RunReport {
    /// The report of a single run: its exit code is its target's.
    pub fn single(
        manifest: &crate::manifest::Manifest,
        sha256: &str,
        mode: Mode,
        target: TargetReport,
    ) -> RunReport {
        RunReport {
            runbook: manifest.name.clone(),
            version: manifest.version.clone(),
            sha256: sha256.to_owned(),
            mode,
            exit_code: target.exit_code,
            targets: vec![target],
        }
    }

    /// The document: pretty-printed JSON, ending in a newline, in plain
    /// ASCII (every other character `\u`-escaped, so no text from a
    /// runbook or IAM reaches a terminal raw: no control, bidirectional or
    /// look-alike characters).
    pub fn to_json(&self) -> String {
        let pretty = serde_json::to_string_pretty(self).expect("a report serializes");
        let mut ascii = String::with_capacity(pretty.len() + 1);
        // Outside strings JSON is ASCII, so every other character is inside
        // one, where a `\u` escape (UTF-16, a surrogate pair above U+FFFF)
        // stands for it.
        for c in pretty.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        ascii.push('\n');
        ascii
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(summary: &str) -> RunReport {
        RunReport {
            runbook: "r".to_owned(),
            version: "1".to_owned(),
            sha256: "00".to_owned(),
            mode: Mode::Live,
            exit_code: 0,
            targets: vec![TargetReport {
                target: TargetId::default(),
                exit_code: 0,
                outcome: Outcome::Succeeded,
                summary: summary.to_owned(),
                changes: Vec::new(),
                next_steps: Vec::new(),
                journal: None,
                last_hash: None,
            }],
        }
    }

    #[test]
    fn the_document_is_ascii_and_parses_back_to_the_exact_text() {
        let text = "caf\u{e9} \u{202e}evil\u{1b}[31m \u{1f600} \u{85}";
        let json = report(text).to_json();
        assert!(json.is_ascii(), "{json}");
        assert!(json.ends_with("}\n"), "{json}");
        assert!(json.contains(r"\u202e") && json.contains(r"\ud83d\ude00"));
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report(text));
    }

    #[test]
    fn outcome_names_follow_the_exit_codes() {
        let aborted = RunOutcome::Aborted {
            reason: String::new(),
        };
        assert_eq!(
            Outcome::of(&aborted, exit::REPLAY_DIVERGED),
            Outcome::Diverged
        );
        assert_eq!(
            Outcome::of(&aborted, exit::JOURNAL_INVALID),
            Outcome::JournalInvalid
        );
        assert_eq!(Outcome::of(&aborted, exit::HOST_ERROR), Outcome::HostError);
        assert_eq!(
            serde_json::to_string(&Outcome::HostError).unwrap(),
            "\"host-error\""
        );
        assert_eq!(
            serde_json::to_string(&Outcome::JournalInvalid).unwrap(),
            "\"journal-invalid\""
        );
    }
}
