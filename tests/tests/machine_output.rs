//! `runbook run --output json`: one JSON document on stdout, whatever the
//! run's end, for a SOAR playbook or a CI job; the human transcript on
//! stderr.

use std::path::Path;
use std::process::Output;

use runbook_host::journal::Journal;
use serde_json::Value;

use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{run_against, runbook_bin, text};

/// Run mfa-recovery for `user` with `--output json` and `extra` flags,
/// journaling to `journal`; returns the output and the parsed document.
fn run_json(moto: &Moto, user: &str, journal: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["--output", "json"];
    args.extend_from_slice(extra);
    let out = run_against(moto, "mfa-recovery", user, journal, &args);
    let (stdout, stderr) = text(&out);
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout must be one JSON document ({e}):\n{stdout}\n{stderr}"));
    assert!(stdout.ends_with("}\n"), "{stdout:?}");
    assert!(stdout.is_ascii(), "{stdout}");
    (out, doc)
}

/// The document's one target, checked against the journal it names.
fn only_target<'a>(doc: &'a Value, journal: &Path) -> &'a Value {
    let targets = doc["targets"].as_array().expect("targets is a list");
    assert_eq!(targets.len(), 1, "{doc:#}");
    let t = &targets[0];
    assert_eq!(t["exit_code"], doc["exit_code"], "{doc:#}");
    assert_eq!(t["target"]["parameters"]["user"], "mfa-test", "{doc:#}");
    assert_eq!(t["journal"], journal.to_str().unwrap(), "{doc:#}");
    let partial = runbook_host::journal::Partial::read(journal).unwrap();
    assert_eq!(t["last_hash"], partial.last_hash.as_str(), "{doc:#}");
    t
}

#[test]
fn a_live_run_prints_its_report_on_stdout_and_its_transcript_on_stderr() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let (out, doc) = run_json(&moto, "mfa-test", &journal, &["--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["runbook"], "mfa-recovery");
    assert_eq!(doc["mode"], "live");

    let t = only_target(&doc, &journal);
    assert_eq!(t["outcome"], "succeeded");
    assert_eq!(t["target"]["account"], Value::Null);
    assert_eq!(
        t["changes"],
        serde_json::json!([
            format!("deactivate MFA device {} of user mfa-test", arn("mfa-test")),
            format!("delete virtual MFA device {}", arn("mfa-test")),
        ])
    );
    assert!(
        t["next_steps"][0]
            .as_str()
            .is_some_and(|s| s.contains("register a new MFA device")),
        "{doc:#}"
    );
    // The hash a SOAR playbook keeps is the one `verify --last-hash` checks.
    let verified = Journal::read(&journal).unwrap();
    assert_eq!(t["last_hash"], verified.last_hash.as_str());
    assert_eq!(verified.header.parameters["user"], "mfa-test");

    // Every human line went to stderr: the transcript, the outcome, the
    // journal path.
    for line in [
        "succeeded: 'mfa-test' has no MFA device now",
        "changed:",
        "next:",
        "journal: ",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
}

#[test]
fn a_failed_run_reports_failed_with_exit_1_and_a_resume_hint_on_stderr() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let (out, doc) = run_json(&moto, "no-such-user", &journal, &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert_eq!(doc["exit_code"], 1);
    let t = &doc["targets"][0];
    assert_eq!(t["outcome"], "failed", "{doc:#}");
    assert_eq!(t["exit_code"], 1);
    assert!(
        t["summary"]
            .as_str()
            .is_some_and(|s| s.contains("'no-such-user' does not exist")),
        "{doc:#}"
    );
    assert_eq!(t["changes"], serde_json::json!([]));
    assert_eq!(
        t["last_hash"],
        Journal::read(&journal).unwrap().last_hash.as_str()
    );
    assert!(text(&out).1.contains("--resume"), "{}", text(&out).1);
}

#[test]
fn a_run_refused_for_want_of_consent_reports_refused_with_exit_5() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    // No --yes, and stdin is not a terminal.
    let (out, doc) = run_json(&moto, "mfa-test", &journal, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out).1);
    assert_eq!(doc["exit_code"], 5);
    let t = only_target(&doc, &journal);
    assert_eq!(t["outcome"], "refused", "{doc:#}");
    assert_eq!(t["changes"], serde_json::json!([]), "nothing was changed");
    assert_eq!(moto.devices_of("mfa-test"), vec![arn("mfa-test")]);
}

#[test]
fn a_dry_run_reports_the_planned_changes() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let (out, doc) = run_json(&moto, "mfa-test", &journal, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(doc["mode"], "dry-run");
    let t = only_target(&doc, &journal);
    assert_eq!(t["outcome"], "succeeded");
    assert_eq!(t["changes"].as_array().map(Vec::len), Some(2), "{doc:#}");
    assert_eq!(moto.devices_of("mfa-test"), vec![arn("mfa-test")]);
}

#[test]
fn a_run_stopped_before_its_journal_reports_why_with_no_journal() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let missing = dir.path().join("missing.jsonl");
    let (out, doc) = run_json(
        &moto,
        "mfa-test",
        &journal,
        &["--yes", "--resume", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out).1);
    assert_eq!(doc["exit_code"], 7);
    let t = &doc["targets"][0];
    assert_eq!(t["outcome"], "journal-invalid", "{doc:#}");
    assert!(
        t["summary"]
            .as_str()
            .is_some_and(|s| s.contains("missing.jsonl")),
        "the error names the journal: {doc:#}"
    );
    assert_eq!(t["journal"], Value::Null, "{doc:#}");
    assert_eq!(t["last_hash"], Value::Null, "{doc:#}");
    assert!(!journal.exists());
    assert!(text(&out).1.contains("error: "), "{}", text(&out).1);
}

#[test]
fn a_usage_error_prints_no_document() {
    let out = crate::support::run(&[
        "run",
        "mfa-recovery",
        "--output",
        "json",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "", "usage errors stay on stderr");
    assert!(stderr.contains("--user"), "{stderr}");
}

#[test]
fn on_a_terminal_the_prompt_still_asks_and_the_report_says_what_was_answered() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let report = dir.path().join("report.json");
    let line = format!(
        "{} run mfa-recovery --user mfa-test --endpoint-url {} --journal {} --output json > {}",
        runbook_bin().display(),
        moto.url,
        journal.display(),
        report.display()
    );
    let (code, shown) = crate::support::on_a_terminal(&line, "n");
    assert_eq!(code, Some(5), "{shown}");
    assert!(shown.contains("apply these 2 change(s)?"), "{shown}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let t = only_target(&doc, &journal);
    assert_eq!(t["outcome"], "refused", "{doc:#}");
    assert!(
        t["summary"]
            .as_str()
            .is_some_and(|s| s.contains("declined")),
        "{doc:#}"
    );
    assert_eq!(moto.devices_of("mfa-test"), vec![arn("mfa-test")]);
}

#[test]
fn seed_case_report_matches_the_reviewed_snapshot() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let (_, doc) = run_json(&moto, "mfa-test", &journal, &["--yes"]);
    insta::assert_json_snapshot!("seed_case_report", doc, {
        ".sha256" => "[sha256]",
        ".targets[].journal" => "[path]",
        ".targets[].last_hash" => "[sha256]",
    });
}
