use std::time::Duration;

use runbook_host::journal::Journal;

use crate::support::moto::{Moto, arn};
use crate::support::{assert_no_terminal_controls, run, run_against, run_within, text};

#[test]
fn a_missing_required_parameter_is_a_usage_error() {
    let out = run(&["run", "mfa-recovery", "--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--user <VALUE>"), "{stderr}");
}

#[test]
fn an_undeclared_parameter_is_a_usage_error_naming_it() {
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "u",
        "--role",
        "admin",
        "--yes",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--role"), "{stderr}");
}

#[test]
fn an_unknown_runbook_names_the_ones_there_are() {
    let out = run(&["run", "mfa-recovry", "--user", "u"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no runbook named 'mfa-recovry'"),
        "{stderr}"
    );
    assert!(stderr.contains("mfa-recovery"), "{stderr}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("evil.wasm");
    std::fs::write(&fake, "#!/bin/sh\nrm -rf /\n").unwrap();
    let out = run(&["run", fake.to_str().unwrap(), "--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("is not a WebAssembly component"),
        "{stderr}"
    );
}

#[test]
fn an_existing_journal_is_never_overwritten_and_nothing_is_sent() {
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("evidence.jsonl");
    std::fs::write(&journal, "earlier evidence\n").unwrap();
    let out = run_against(&moto, "mfa-recovery", "mfa-test", &journal, &["--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        "earlier evidence\n"
    );
    assert_eq!(moto.devices_of("mfa-test"), vec![arn("mfa-test")]);
}

#[test]
fn an_unreachable_endpoint_fails_the_runbook_and_the_journal_stays_valid() {
    // A port nothing listens on: the SDK's transport error reaches the runbook
    // as service-failure("Transport"), which it reports.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--yes",
        "--endpoint-url",
        &format!("http://127.0.0.1:{port}"),
        "--journal",
        journal.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Transport"), "{stdout}");
    Journal::read(&journal).expect("the journal verifies");
}

/// `runbook ARGS` ends within 30 s with exit 3 and `needle` on stderr.
fn refused_quickly(args: &[&str], needle: &str) {
    let out = run_within(args, Duration::from_secs(30));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{args:?}: {stdout}{stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn a_device_a_fifo_or_a_directory_is_refused_as_a_component_without_reading_it() {
    for cmd in [
        &["run", "/dev/zero", "--user", "u", "--yes"][..],
        &["inspect", "/dev/zero"],
    ] {
        refused_quickly(
            cmd,
            "runbook component /dev/zero is a character device, not a regular file",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // Nothing ever writes to it: opening it to read would block forever.
    let fifo = dir.path().join("runbook.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    refused_quickly(
        &["run", fifo.to_str().unwrap(), "--user", "u", "--yes"],
        "is a FIFO (named pipe), not a regular file",
    );
    let sub = dir.path().join("sub.wasm");
    std::fs::create_dir(&sub).unwrap();
    refused_quickly(
        &["inspect", sub.to_str().unwrap()],
        "is a directory, not a regular file",
    );
}

#[test]
fn a_component_over_the_size_cap_is_refused_naming_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    // Sparse: 64 MiB and one byte, no disk used.
    let f = std::fs::File::create(&big).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    refused_quickly(
        &["run", big.to_str().unwrap(), "--user", "u", "--yes"],
        "is larger than 64 MiB, the most the host reads",
    );
}

#[test]
fn a_huge_parameter_in_a_usage_error_is_cut_and_escaped() {
    let huge = "a".repeat(5000);
    let out = run(&["run", "mfa-recovery", "--user", &huge, "--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.len() < 1000, "{} bytes: {stderr}", stderr.len());
    assert!(stderr.contains("is not an IAM user name"), "{stderr}");
    assert!(stderr.contains("… [cut: 4488 more chars]"), "{stderr}");

    let evil = "\u{1b}[2J\u{1b}[Hok\r\u{7}";
    let out = run(&["run", "mfa-recovery", "--user", evil, "--yes"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_no_terminal_controls("--user", &out);
    assert!(
        stderr.contains("--user '\\u{1b}[2J\\u{1b}[Hok\\r\\u{7}' is not an IAM user name"),
        "{stderr}"
    );
}

#[test]
fn command_line_text_in_clap_usage_errors_is_escaped() {
    let evil = "--\u{1b}[2J\u{1b}[Hfake\r\u{7}";
    for args in [
        &["verify", evil][..],
        &["run", "mfa-recovery", "--user", "u", evil],
        &["run", "mfa-recovery", "--user", "u", "--deadline", evil],
        &["show", "x", "--output", evil],
    ] {
        let out = run(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_no_terminal_controls("usage error", &out);
        assert!(
            stderr.contains("\\u{1b}[2J\\u{1b}[Hfake\\r\\u{7}"),
            "{stderr}"
        );
    }
    // A very long one is cut.
    let long = format!("--{}", "x".repeat(5000));
    let out = run(&["verify", &long]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.len() < 2000, "{} bytes: {stderr}", stderr.len());
    assert!(stderr.contains("[cut: "), "{stderr}");
}
