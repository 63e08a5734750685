//! Replaying recordings with `runbook replay` and `runbook run --replay`: a
//! match ends as recorded with exit 0; a changed runbook stops at the first
//! differing call with a readable diff and exit 6.

use std::path::PathBuf;
use std::process::Command;

use runbook_host::journal::{Journal, Mode, RunOutcome};

use crate::support::{root, run, text};

const SEED: &str = "tests/fixtures/seed-case/journal.jsonl";

/// `runbook run mfa-recovery --user USER --replay SEED --journal (temporary)
/// EXTRA...`; the output and the journal it wrote, which must verify.
fn run_replaying_seed(user: &str, extra: &[&str]) -> (std::process::Output, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("replay.jsonl");
    let mut args = vec![
        "run",
        "mfa-recovery",
        "--user",
        user,
        "--replay",
        SEED,
        "--journal",
        journal.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let written = Journal::read(&journal).unwrap_or_else(|e| panic!("{e}: {:?}", text(&out)));
    (out, written)
}

#[test]
fn replaying_the_seed_fixture_matches_and_exits_zero() {
    let out = run(&["replay", SEED, "--runbook", "mfa-recovery"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("replay matched the recording: 5 call(s)"),
        "{stdout}"
    );
}

#[test]
fn run_with_replay_prints_what_a_real_run_prints_and_sends_nothing() {
    // No endpoint, no credentials needed: a live call would fail.
    let (out, written) = run_replaying_seed("mfa-test", &["--endpoint-url", "http://127.0.0.1:9"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("succeeded: 'mfa-test' has no MFA device now"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delete virtual MFA device arn:aws:iam::123456789012:mfa/mfa-test"),
        "{stdout}"
    );
    assert_eq!(written.header.mode, Mode::Replay);
}

#[test]
fn replay_with_other_parameters_diverges_at_the_first_call() {
    let (out, written) = run_replaying_seed("alice", &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    assert!(matches!(written.footer.outcome, RunOutcome::Aborted { .. }));
    assert!(
        stdout.contains("replay diverged at call 0 (list-mfa-devices)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"expected: {"op":"list-mfa-devices","user_name":"mfa-test"}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"actual:   {"op":"list-mfa-devices","user_name":"alice"}"#),
        "{stdout}"
    );
}

/// Build mfa-recovery from its source with `edit` applied, in a scratch
/// workspace under target/, and return the component.
fn mutant(edit: impl Fn(&str) -> String) -> PathBuf {
    let root = root();
    let ws = root.join("target/mutants/workspace");
    let crate_dir = ws.join("mfa-recovery");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::copy(root.join("runbooks/Cargo.toml"), ws.join("Cargo.toml")).unwrap();
    // The sdk the workspace names through its `sdk` link.
    let _ = std::fs::remove_file(ws.join("sdk"));
    std::os::unix::fs::symlink(root.join("sdk"), ws.join("sdk")).unwrap();
    std::fs::copy(root.join("runbooks/Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    // Every member of the runbooks workspace, as is (the lock file names them
    // all); only mfa-recovery's source is then edited.
    for entry in std::fs::read_dir(root.join("runbooks")).unwrap().flatten() {
        let from = entry.path();
        if !from.join("runbook.toml").is_file() {
            continue;
        }
        let to = ws.join(entry.file_name());
        std::fs::create_dir_all(to.join("src")).unwrap();
        for f in ["Cargo.toml", "runbook.toml", "src/lib.rs"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    let source = std::fs::read_to_string(root.join("runbooks/mfa-recovery/src/lib.rs")).unwrap();
    let edited = edit(&source);
    assert_ne!(edited, source, "the edit changed nothing");
    std::fs::write(crate_dir.join("src/lib.rs"), edited).unwrap();
    let target = root.join("target/mutants/target");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&ws)
        .args([
            "build",
            "--release",
            "--quiet",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "building the mutant failed");
    target.join("wasm32-wasip2/release/mfa_recovery.wasm")
}

#[test]
fn a_changed_argument_in_the_runbook_source_fails_replay_at_that_call() {
    let wasm = mutant(|s| {
        s.replace(
            "list_virtual_mfa_devices(AssignmentStatus::Unassigned)",
            "list_virtual_mfa_devices(AssignmentStatus::Any)",
        )
    });
    let out = run(&["replay", SEED, "--runbook", wasm.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}{stderr}");
    assert!(
        stdout.contains("replay diverged at call 3 (list-virtual-mfa-devices): the request differs from the recording"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"expected: {"op":"list-virtual-mfa-devices","assignment_status":"Unassigned"}"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"actual:   {"op":"list-virtual-mfa-devices","assignment_status":"Any"}"#),
        "{stdout}"
    );
}

#[test]
fn a_narrower_grant_than_the_recordings_diverges_at_the_call_it_denies() {
    let (out, written) = run_replaying_seed("mfa-test", &["--deny", "iam:DeleteVirtualMFADevice"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    assert!(
        stdout.contains(
            "replay diverged at call 4 (delete-virtual-mfa-device): the grant decides this call differently than in the recording"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("expected: allowed"), "{stdout}");
    assert!(matches!(written.footer.outcome, RunOutcome::Aborted { .. }));
}
