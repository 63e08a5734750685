//! The commands that describe a runbook without running it: `inspect`,
//! `policy`, and `run --help`.

use serde_json::Value;

use crate::support::{run, text};

#[test]
fn policy_names_exactly_the_needed_actions_scoped_to_the_users_arn() {
    let out = run(&["policy", "mfa-recovery", "--user", "mfa-test"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // stdout is the document alone, as IAM takes it; the note is on stderr.
    let doc: Value = serde_json::from_str(&stdout).expect("valid JSON");
    insta::assert_json_snapshot!("mfa_recovery_policy", doc);
    assert!(
        stderr.contains("note: IAM matches the user name in a resource ARN case-sensitively, while IAM user names are unique regardless of case: the user/mfa-test resources above match only the user spelled exactly 'mfa-test'"),
        "{stderr}"
    );
    let mut actions: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "iam:DeactivateMFADevice",
            "iam:DeleteVirtualMFADevice",
            "iam:ListMFADevices",
            "iam:ListVirtualMFADevices"
        ]
    );
}

#[test]
fn policy_with_an_account_uses_it_in_every_arn() {
    let out = run(&[
        "policy",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--account",
        "123456789012",
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("arn:aws:iam::123456789012:user/mfa-test"),
        "{stdout}"
    );
    assert!(!stdout.contains("arn:aws:iam::*:"), "{stdout}");
}

#[test]
fn a_wildcard_user_is_refused_rather_than_turned_into_a_policy_for_everyone() {
    for args in [
        &["policy", "mfa-recovery", "--user", "*"][..],
        &["run", "mfa-recovery", "--user", "*", "--yes"],
    ] {
        let cmd = args[0];
        let out = run(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains("--user '*' is not an IAM user name"),
            "{cmd}: {stderr}"
        );
    }
}

#[test]
fn inspect_reads_the_manifest_without_running_the_runbook() {
    let out = run(&["inspect", "mfa-recovery", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["manifest"]["name"], "mfa-recovery");
    assert_eq!(doc["manifest"]["params"][0]["name"], "user");
    assert_eq!(doc["wit"], "runbook:runbook@0.2.0");
    assert_eq!(doc["sdk_version"], "0.1.0");
    assert_eq!(doc["wasm_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn run_help_lists_the_runbooks_own_parameters() {
    let out = run(&["run", "mfa-recovery", "--help"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("Runbook parameters:"), "{stdout}");
    assert!(stdout.contains("--user <VALUE>"), "{stdout}");
    assert!(
        stdout.contains("The IAM user who lost their MFA device"),
        "{stdout}"
    );
}

#[test]
fn a_new_runbook_crate_outside_the_checkout_builds_and_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["new", "hello", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let crate_dir = dir.path().join("hello");
    for f in [
        "Cargo.toml",
        "runbook.toml",
        "src/lib.rs",
        "tests/harness.rs",
    ] {
        assert!(crate_dir.join(f).is_file(), "{f}");
    }
    // Not twice.
    let again = run(&["new", "hello", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).1.contains("exists already"),
        "{:?}",
        text(&again)
    );
    let bad = run(&["new", "Bad_Name"]);
    assert_eq!(bad.status.code(), Some(2));

    // `runbook run DIR` builds the crate and runs it like any runbook.
    let moto = crate::support::moto::Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let journal = dir.path().join("run.jsonl");
    let out = crate::support::run_against(
        &moto,
        crate_dir.to_str().unwrap(),
        "mfa-test",
        &journal,
        &["--yes"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("'mfa-test' has 1 MFA device(s)"),
        "{stdout}"
    );
}

#[test]
fn list_names_every_runbook_with_its_version_and_description() {
    let out = run(&["list"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for name in [
        "mfa-recovery",
        "access-key-quarantine",
        "user-lockout",
        "mfa-audit",
    ] {
        // The name and description, then one line per source: the
        // checkout's first, the one that runs.
        let mut block = stdout
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{name}  ")));
        assert!(block.next().is_some(), "{name}: {stdout}");
        let first = block.next().unwrap_or_default();
        assert!(
            first.starts_with("  * 0.1.0    sha256 ") && first.ends_with("/runbooks"),
            "{name}: {stdout}"
        );
    }
}
